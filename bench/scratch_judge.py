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

# Image axes of the labels the shapes set moves in: (dx, dy) with y downwards. Other labels have no direction.
DIRECTIONS = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
FOREGROUND = 0.3  # a pixel this far (mean over channels, in [-1, 1]) from the clip's background colour is a shape


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


def centroids(clip: torch.Tensor) -> torch.Tensor:
    """Per frame, the centre of the pixels that differ from the clip's background colour, (F, 2) as (x, y);
    NaN for a frame without such pixels. The background is the clip's median colour (shapes are small)."""
    background = clip.permute(1, 0, 2, 3).flatten(1).median(dim=1).values.view(1, 3, 1, 1)
    mask = (clip - background).abs().mean(dim=1) > FOREGROUND  # (F, S, S)
    size = clip.shape[-1]
    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij")
    weight = mask.float().sum(dim=(1, 2))
    x = (mask * xs).sum(dim=(1, 2)) / weight
    y = (mask * ys).sum(dim=(1, 2)) / weight
    return torch.stack([x, y], dim=1)  # 0/0: NaN


def motion(clip: torch.Tensor) -> tuple[float, float] | None:
    """The median displacement of the centroid between consecutive frames, (dx, dy) in pixels per frame
    (the median ignores the jump of a shape that wraps round the edge); None without two frames with shapes."""
    steps = centroids(clip).diff(dim=0)
    steps = steps[~steps.isnan().any(dim=1)]
    if len(steps) == 0:
        return None
    dx, dy = steps.median(dim=0).values.tolist()
    return dx, dy


def direction(clip: torch.Tensor, min_speed: float = 0.25) -> str | None:
    """The label whose direction the clip's shapes move in (the larger axis decides); None when they barely
    move (under ``min_speed`` pixels per frame) or none are seen."""
    moved = motion(clip)
    if moved is None or max(abs(moved[0]), abs(moved[1])) < min_speed:
        return None
    dx, dy = moved
    axis = (1 if dx > 0 else -1, 0) if abs(dx) >= abs(dy) else (0, 1 if dy > 0 else -1)
    return next(name for name, way in DIRECTIONS.items() if way == axis)


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
