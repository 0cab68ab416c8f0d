"""The lines that open a tuning run: the clip, the prompt, the steps, the device, and when it validates.

A run's cost is mostly its steps and its validations, so both are stated before the first step: a
short run with validation prompts says here that (and how much) it will render, or that it renders
nothing (see :mod:`vidsynth.training.schedule`).
"""

from typing import TYPE_CHECKING

from vidsynth.config.train import TrainConfig
from vidsynth.media.video import Clip
from vidsynth.training.schedule import ValidationSchedule
from vidsynth.training.span import TuningSpan

if TYPE_CHECKING:
    from accelerate import Accelerator


def tuning_header(
    cfg: TrainConfig,
    clip: Clip,
    span: TuningSpan,
    trainable_count: int,
    accelerator: "Accelerator",
    schedule: ValidationSchedule,
    validation: str,
) -> list[str]:
    """The opening lines; ``cfg`` as resolved (seed, mixed precision), ``validation`` what one validation renders."""
    frames = clip.frame_indices
    lines = [
        "***** Tuning *****",
        f"  Clip: {clip.path}, {len(frames)} frames ({frames[0]} to {frames[-1]}, stride {clip.stride}) "
        f"at {clip.width}x{clip.height}",
    ]
    if span.sampling == "random":
        lines.append(f"  Windows: {span.window} consecutive of these frames per step, drawn at random")
    lines += [
        f"  Prompt: {cfg.train_data.prompt!r}; trained parameters: {trainable_count / 1e6:.2f}M",
        f"  Steps: {cfg.max_train_steps}, batch {cfg.train_batch_size}, accumulation {cfg.gradient_accumulation_steps}",
        f"  Device: {accelerator.device} x {accelerator.num_processes} process(es); "
        f"mixed precision {cfg.mixed_precision}, frozen weights {cfg.frozen_dtype}; seed {cfg.seed}",
    ]
    when = schedule.describe()
    lines.append(f"  Validation: {when}" + (f"; each: {validation}" if schedule.steps() else ""))
    return lines
