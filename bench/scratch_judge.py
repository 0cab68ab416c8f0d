"""What ``bench/scratch.py`` measures samples with: a classifier of real windows, the motion direction, PSNR.

A generated clip has no ground truth, so it is judged by what the real footage teaches: a small
classifier trained on real windows of the synthetic set (its accuracy on held-out real windows says
how far its verdict on samples can be trusted), and the direction its content moves, which the
shapes set ties to the label (``left``, ``right``, ``up``, ``down``). Clips are tensors
``(N, F, 3, S, S)`` in [-1, 1], as ``FootageWindows`` gives them and the sampler returns them.
"""

import torch
import torch.nn.functional as F
from torch import nn

from vidsynth.scratch.shapes import DIRECTIONS  # label -> (dx, dy), y downwards


def shift_errors(clips: torch.Tensor) -> torch.Tensor:
    """(N, len(DIRECTIONS)): per clip and direction, how much better (negative) or worse than standing still a
    one-pixel shift that way (wrapping round the edges, as the shapes do) maps each frame onto the next,
    relative to standing still."""
    before, after = clips[:, :-1], clips[:, 1:]
    still = (before - after).abs().mean(dim=(1, 2, 3, 4))
    shifted = [
        (torch.roll(before, shifts=(dy, dx), dims=(-2, -1)) - after).abs().mean(dim=(1, 2, 3, 4))
        for dx, dy in DIRECTIONS.values()
    ]
    return (torch.stack(shifted, dim=1) - still[:, None]) / (still[:, None] + 1e-6)


class MotionClassifier(nn.Module):
    """Logistic regression on :func:`shift_errors`: the labels are motions, while colours and shapes are drawn at
    random, so motion features generalise from a few hundred windows where a small conv net over the frames
    over-fitted (100 % on its training windows, about 60 % on held-out ones)."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.linear = nn.Linear(len(DIRECTIONS), num_classes)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.linear(shift_errors(clips))


def train_classifier(clips: torch.Tensor, labels: torch.Tensor, num_classes: int, *, steps: int = 300, seed: int = 0):
    """A :class:`MotionClassifier` fitted to real windows ``clips`` with one class id each (``labels``, (N,))."""
    torch.manual_seed(seed)
    model = MotionClassifier(num_classes)
    features = torch.cat([shift_errors(part) for part in clips.split(64)])
    optimizer = torch.optim.AdamW(model.linear.parameters(), lr=0.05)
    for _ in range(steps):
        loss = F.cross_entropy(model.linear(features), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@torch.no_grad()
def classify(model: MotionClassifier, clips: torch.Tensor) -> torch.Tensor:
    """The class id the classifier gives each clip, (N,)."""
    return torch.cat([model(part).argmax(dim=1) for part in clips.split(64)])


def direction(clip: torch.Tensor) -> str | None:
    """The label whose direction the clip's content moves in: the one-pixel shift (wrapping round the edges,
    as the shapes do) that best turns each frame into the next, summed over the clip; None when no shift
    beats standing still (nothing moves, or nothing moves one way)."""
    before, after = clip[:-1], clip[1:]
    errors = {
        name: (torch.roll(before, shifts=(dy, dx), dims=(-2, -1)) - after).abs().mean().item()
        for name, (dx, dy) in DIRECTIONS.items()
    }
    best = min(errors, key=errors.get)
    return best if errors[best] < (before - after).abs().mean().item() else None


def direction_matches(clips: torch.Tensor, names: list[str]) -> tuple[int, int]:
    """How many clips move in the direction of their label ``names[i]``, of those whose label has one."""
    judged = [(clip, name) for clip, name in zip(clips, names, strict=True) if name in DIRECTIONS]
    return sum(direction(clip) == name for clip, name in judged), len(judged)


def psnr(estimate: torch.Tensor, truth: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of clips in [-1, 1] (over all their pixels)."""
    mse = ((estimate.clamp(-1, 1) - truth) / 2).pow(2).mean().item()
    return float("inf") if mse == 0 else -10 * torch.log10(torch.tensor(mse)).item()


def bicubic(clips: torch.Tensor, size: int) -> torch.Tensor:
    """``clips`` (N, F, 3, s, s) resized to ``size`` with bicubic interpolation, clamped to [-1, 1]."""
    frames = clips.flatten(0, 1)
    up = F.interpolate(frames, size=(size, size), mode="bicubic", align_corners=False).clamp(-1, 1)
    return up.view(*clips.shape[:3], size, size)
