"""Validation clips of a stage while it trains: sampled with the EMA weights into ``samples/<stage>-<step>/``.

Every ``validation_steps`` steps (and after the last), the stage samples ``validation_samples`` clips:
a base with the labels of evenly spaced windows of the footage (so the clips can be compared with what
the labels show), an upsampler from those windows shrunk to the size of the stage before it, shown
next to its input. DDIM with ``validation_inference_steps`` steps and a fixed seed: from one validation
to the next only the weights change.
"""

import torch
from torch.utils.data import default_collate

from vidsynth import events
from vidsynth.media.writers import write_gif_grid
from vidsynth.scratch.batches import StageBatch
from vidsynth.scratch.config import ScratchConfig, StageConfig
from vidsynth.scratch.diffusion import ddim_sample
from vidsynth.scratch.layout import ScratchRunFolder
from vidsynth.scratch.request import label_runs


def as_frames(clip: torch.Tensor) -> torch.Tensor:
    """One clip (3, f, s, s) in [-1, 1] as the writers take it: (3, f, s, s) in [0, 1]."""
    return (clip.float().cpu() + 1) / 2


class Validation:
    def __init__(self, cfg: ScratchConfig, stage: StageConfig, dataset, run: ScratchRunFolder, scheduler_config: dict):
        self.cfg, self.stage, self.run, self.scheduler_config = cfg, stage, run, scheduler_config
        self.before = cfg.previous(stage)
        count = min(cfg.validation_samples, len(dataset))
        indices = torch.linspace(0, len(dataset) - 1, count).round().long().tolist()
        self.windows = default_collate([dataset[i] for i in indices])
        self.class_names = dataset.class_names
        self.fps = dataset.fps

    def due(self, step: int) -> bool:
        last = self.cfg.stage_steps(self.stage)
        return step % self.cfg.validation_steps == 0 or (step == last and self.cfg.validation_steps <= last)

    def captions(self, batch: StageBatch) -> list[str]:
        if batch.labels is None or self.class_names is None:
            return [self.stage.name] * len(batch.clips)
        return [label_runs([self.class_names[i] for i in labels.tolist()]) for labels in batch.labels]

    def render(self, unet: torch.nn.Module, step: int, device: torch.device) -> None:
        batch = StageBatch.of(self.windows, self.stage, self.before, device)
        unet.eval()
        clips = ddim_sample(
            unet,
            self.scheduler_config,
            tuple(batch.clips.shape),
            batch.labels,
            batch.low_res,
            self.cfg.validation_inference_steps,
            torch.Generator().manual_seed(self.cfg.seed),
            device,
        )
        unet.train()
        columns = []
        for index, (clip, caption) in enumerate(zip(clips, self.captions(batch), strict=True)):
            if batch.low_res is not None:
                columns.append((f"input {self.before.resolution}px", as_frames(batch.low_res[index])))
            columns.append((caption, as_frames(clip)))
        path = write_gif_grid(self.run.sample(self.stage.name, step) / "grid.gif", columns, self.fps)
        events.emit("sample", path=str(path), step=step, model=self.stage.name)
