"""What ``bench/scratch.py`` measures samples with: a classifier of real windows, the motion direction, PSNR.

A generated clip has no ground truth, so it is judged by what the real footage teaches: a small
classifier trained on real windows of the synthetic set (its accuracy on held-out real windows says
how far its verdict on samples can be trusted), and the direction the non-background pixels move,
which the shapes set ties to the label (``left``, ``right``, ``up``, ``down``). Clips are tensors
``(N, F, 3, S, S)`` in [-1, 1], as ``FootageWindows`` gives them and the sampler returns them.
"""

import torch
import torch.nn.functional as F
from torch import nn

from vidsynth.scratch.shapes import DIRECTIONS  # label -> (dx, dy), y downwards


class WindowClassifier(nn.Module):
    """A tiny conv net on a window's frames stacked as channels: it sees appearance and motion at once."""

    def __init__(self, num_frames: int, num_classes: int, width: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3 * num_frames, width, 3, stride=2, padding=1),
            nn.SiLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
            nn.SiLU(),
            nn.Conv2d(2 * width, 2 * width, 3, stride=2, padding=1),
            nn.SiLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(2 * width, num_classes),
        )

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.net(clips.flatten(1, 2))


def train_classifier(
    clips: torch.Tensor, labels: torch.Tensor, num_classes: int, *, steps: int = 300, seed: int = 0
) -> WindowClassifier:
    """A :class:`WindowClassifier` fitted to real windows ``clips`` with one class id each (``labels``, (N,))."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = WindowClassifier(clips.shape[1], num_classes)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    for _ in range(steps):
        batch = torch.randint(len(clips), (min(32, len(clips)),), generator=generator)
        loss = F.cross_entropy(model(clips[batch]), labels[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@torch.no_grad()
def classify(model: WindowClassifier, clips: torch.Tensor) -> torch.Tensor:
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
