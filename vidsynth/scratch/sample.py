"""Sampling a trained run: its stages loaded, then the cascade from noise to the last trained stage's size.

The Python API the sample command, the bench and the web app share:

* :func:`load_run` reads a run folder (``config.yaml``, ``data.json``, ``scheduler/`` and every trained
  stage's ``<stage>/``, from the base on, in the config's order) onto a device;
* :func:`sample_cascade` makes clips: the base from noise with DDIM, steered by per-frame labels, then every
  upsampler from the clips of the stage before it.

Stage k draws its start noise from a generator seeded with ``seed + k``, so the clips of a shorter cascade
(``upto_stage``) are exactly the first stages of the longer one's.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vidsynth.config.loader import load_config
from vidsynth.errors import VidSynthError
from vidsynth.scratch.config import ScratchConfig, StageConfig
from vidsynth.scratch.diffusion import ddim_sample
from vidsynth.scratch.layout import ScratchRunFolder
from vidsynth.scratch.model import ScratchUNet

FrameLabels = Sequence[str] | Sequence[int] | np.ndarray | torch.Tensor | None


@dataclass
class ScratchRun:
    """A trained run, loaded: its config, what its footage gave (labels, frame rate) and its trained stages."""

    root: Path
    config: ScratchConfig
    stages: list[tuple[StageConfig, ScratchUNet]]  # the trained ones, base first
    scheduler_config: dict
    class_names: list[str] | None  # a class-conditional base: its labels, in class-id order
    label_dim: int | None  # a base conditioned on vectors: their size
    fps: float  # the frame rate of the training windows
    device: torch.device

    @property
    def num_frames(self) -> int:
        """Frames of the windows the run trained on (a clip may have more or fewer)."""
        return self.config.data.num_frames


def read_run(run_dir: str | Path) -> tuple[ScratchRunFolder, ScratchConfig, dict]:
    """A run folder's config and footage record, checked without loading a model."""
    folder = ScratchRunFolder(Path(run_dir).expanduser().absolute())
    if not folder.config.is_file() or not folder.data.is_file():
        raise VidSynthError(
            f"{folder.root} is not a run of python -m vidsynth.scratch train (no config.yaml and data.json). "
            "Point --run at its output_dir"
        )
    config = load_config(ScratchConfig, [folder.config])
    if not folder.trained(config.stages[0].name):
        raise VidSynthError(
            f"{folder.root} has no trained base stage yet ({config.stages[0].name}/). Let its training finish, "
            "or resume it with resume_from_checkpoint=latest"
        )
    return folder, config, json.loads(folder.data.read_text())


def load_run(run_dir: str | Path, device: str | torch.device = "cpu") -> ScratchRun:
    """Every trained stage of the run at ``run_dir`` on ``device``, in evaluation mode."""
    folder, config, footage = read_run(run_dir)
    stages = []
    for stage in config.stages:
        if not folder.trained(stage.name):
            break  # the cascade ends at the first stage not trained yet
        stages.append((stage, ScratchUNet.from_pretrained(folder.stage(stage.name)).to(device).eval()))
    scheduler_config = json.loads((folder.scheduler / "scheduler_config.json").read_text())
    return ScratchRun(
        folder.root,
        config,
        stages,
        scheduler_config,
        footage["class_names"],
        footage["label_dim"],
        footage["fps"],
        torch.device(device),
    )


def label_tensor(run: ScratchRun, labels_per_sample: Sequence[FrameLabels], num_frames: int) -> torch.Tensor | None:
    """(N, F) class ids or (N, F, D) vectors for the base, or None for an unconditional one."""
    if all(labels is None for labels in labels_per_sample):
        return None
    if any(labels is None for labels in labels_per_sample):
        raise VidSynthError("labels are given for some samples and not others. Give them for every sample")
    rows = []
    for labels in labels_per_sample:
        if run.class_names is not None:
            ids = [run.class_names.index(x) if isinstance(x, str) else int(x) for x in labels]
            rows.append(torch.tensor(ids, dtype=torch.long))
        else:
            rows.append(torch.as_tensor(np.asarray(labels), dtype=torch.float32))
        if len(rows[-1]) != num_frames:
            raise VidSynthError(f"{len(rows[-1])} labels for a clip of {num_frames} frames. Give one per frame")
    return torch.stack(rows).to(run.device)


def sample_cascade(
    run: ScratchRun,
    labels_per_sample: Sequence[FrameLabels],
    num_frames: int,
    steps: int,
    seed: int,
    upto_stage: str | None = None,
    guidance_scale: float = 1.0,
) -> torch.Tensor:
    """Clips (N, F, 3, S, S) in [-1, 1], S the size of the last stage sampled.

    ``labels_per_sample``: one entry per clip (N = its length): for a class-conditional model a sequence
    of ``num_frames`` class names (str) or class ids (int); for a vector-conditional one a (num_frames, D)
    array or tensor; ``None`` for an unconditional model. ``steps``: DDIM steps of every stage. ``seed``:
    stage k draws its noise with ``seed + k``. ``upto_stage``: the name of the last stage to run (default:
    the last trained one). ``guidance_scale`` > 1: classifier-free guidance of the base (a class model trained
    with ``label_dropout``); 1: none.
    """
    names = [stage.name for stage, _ in run.stages]
    if upto_stage is not None and upto_stage not in names:
        raise VidSynthError(f"stage {upto_stage!r} is not trained in {run.root}; trained: {', '.join(names)}")
    labels = label_tensor(run, labels_per_sample, num_frames)
    if guidance_scale > 1 and (labels is None or labels.is_floating_point() or not run.config.label_dropout):
        raise VidSynthError(
            "guidance needs a model trained on class labels with label_dropout > 0, and labels. Drop --guidance"
        )
    clips = None
    for index, (stage, unet) in enumerate(run.stages):
        shape = (len(labels_per_sample), 3, num_frames, stage.resolution, stage.resolution)
        generator = torch.Generator().manual_seed(seed + index)
        stage_labels = labels if index == 0 else None
        clips = ddim_sample(
            unet, run.scheduler_config, shape, stage_labels, clips, steps, generator, run.device, guidance_scale
        )
        if stage.name == upto_stage:
            break
    return clips.permute(0, 2, 1, 3, 4).cpu()  # (N, F, 3, S, S)
