"""What a stage trains on: which windows each micro-step draws, and the tensors a batch becomes for a stage.

Windows are drawn with replacement, by a generator seeded from (seed, step, micro-step, process), not by a
shuffling ``DataLoader``: a run resumed at step N draws the windows the uninterrupted run drew after step N,
and each process of a distributed run draws its own. The ``DataLoader`` only decodes them (in
``data.num_workers`` processes). A stage sees the windows at its own size: a base the clip itself, an
upsampler the (low-resolution, high-resolution) pair made from the same window.
"""

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from vidsynth.scratch.config import ScratchConfig, StageConfig
from vidsynth.scratch.model import resize_clips


@dataclass
class StepSampler(Sampler[int]):
    """Window indices for the micro-steps of steps ``first`` .. ``last - 1``, ``batch`` per micro-step."""

    size: int  # windows in the dataset
    batch: int
    seed: int
    first: int
    last: int
    accumulation: int
    process: int

    def __iter__(self) -> Iterator[int]:
        for step in range(self.first, self.last):
            for micro_step in range(self.accumulation):
                entropy = np.random.SeedSequence([self.seed, step, micro_step, self.process, 1]).generate_state(1)
                generator = torch.Generator().manual_seed(int(entropy[0]))
                yield from torch.randint(self.size, (self.batch,), generator=generator).tolist()

    def __len__(self) -> int:
        return (self.last - self.first) * self.accumulation * self.batch


def window_loader(dataset: Dataset, cfg: ScratchConfig, steps: range, process: int) -> DataLoader:
    """The batches of ``steps``, one per micro-step, in order."""
    sampler = StepSampler(
        len(dataset), cfg.train_batch_size, cfg.seed, steps.start, steps.stop, cfg.gradient_accumulation_steps, process
    )
    workers = cfg.data.num_workers
    return DataLoader(dataset, batch_size=cfg.train_batch_size, sampler=sampler, num_workers=workers)


@dataclass(frozen=True)
class StageBatch:
    """One batch as a stage sees it: ``clips`` (b, 3, f, s, s) in [-1, 1], the per-frame ``labels`` (base only)
    and the ``low_res`` clips an upsampler starts from."""

    clips: torch.Tensor
    labels: torch.Tensor | None
    low_res: torch.Tensor | None

    @classmethod
    def of(cls, batch: dict, stage: StageConfig, before: StageConfig | None, device: torch.device) -> "StageBatch":
        """``batch``: the collated items of the footage, ``pixel_values`` (b, f, 3, R, R)."""
        windows = batch["pixel_values"].to(device).permute(0, 2, 1, 3, 4)  # (b, 3, f, R, R)
        clips = resize_clips(windows, stage.resolution)
        labels = batch.get("labels")
        if before is not None:
            return cls(clips, None, resize_clips(windows, before.resolution))
        return cls(clips, None if labels is None else labels.to(device), None)
