"""Small, resumable checkpoints: ``accelerator.save_state`` with only the trained parameters.

accelerate would store the whole UNet in every checkpoint (3.4 GB for SD-1.x, the reason the
original's checkpoints are several GB per clip). Save/load hooks replace that with the
trained-parameter file of :func:`vidsynth.models.trainable.save_trained` (the frozen weights are
the base model's and never change); the optimizer, lr schedule and RNG states are still saved by
accelerate. A checkpoint is written under a hidden temporary name and renamed when complete, so a
run killed while saving never leaves a checkpoint that "latest" would pick up half-written; an old
one is renamed away before it is deleted, for the same reason, and only once the new one is complete.

Why not accelerate's own rotation (``ProjectConfiguration(automatic_checkpoint_naming=True,
total_limit=N)``): its ``save_state`` (accelerate 1.16) deletes the oldest folders *before* it writes
the new one, with ``shutil.rmtree`` under their real names, and writes the new one in place under its
final name. With ``total_limit: 1`` a run killed while saving keeps no complete checkpoint at all, and
one killed while deleting or writing leaves a half folder that "latest" would resume from. It also
numbers folders by save count (``checkpoint_<n>``), not by the step a resume needs, and counts every
folder in ``checkpoints/`` (a temporary included) towards the limit.
"""

import logging
from collections.abc import Sequence
from pathlib import Path

from accelerate import Accelerator

from vidsynth.atomic import atomic_path, discard
from vidsynth.models.trainable import load_trained, read_trained_metadata, save_trained
from vidsynth.run_folder import CHECKPOINT_FILE, list_checkpoints

logger = logging.getLogger(__name__)


def checkpoint_seed(path: str | Path) -> int:
    """The seed the run that saved the checkpoint drew its step noise with."""
    return int(read_trained_metadata(Path(path) / CHECKPOINT_FILE)["seed"])


def register_trained_param_hooks(
    accelerator: Accelerator, base_model: str, trainable_modules: Sequence[str], seed: int, lora: dict | None = None
) -> None:
    """Make ``save_state``/``load_state`` store the UNet as its trained-parameter file only (LoRA adapters
    included: ``lora`` is the run's :class:`~vidsynth.models.lora.LoraSpec` record)."""

    def save_hook(models: list, weights: list, output_dir: str) -> None:
        for model in models:
            save_trained(
                accelerator.unwrap_model(model),
                Path(output_dir) / CHECKPOINT_FILE,
                base_model=base_model,
                trainable_modules=trainable_modules,
                extra_metadata={"seed": seed},
                lora=lora,
                adapters=lora is not None,
            )
            weights.pop()  # accelerate must not write the full model as well

    def load_hook(models: list, input_dir: str) -> None:
        while models:
            load_trained(accelerator.unwrap_model(models.pop()), Path(input_dir) / CHECKPOINT_FILE)

    accelerator.register_save_state_pre_hook(save_hook)
    accelerator.register_load_state_pre_hook(load_hook)


def save_checkpoint(accelerator: Accelerator, folder: str | Path, step: int, total_limit: int | None) -> Path:
    """``accelerator.save_state`` into ``folder/checkpoint-<step>``, atomically; keep the newest ``total_limit``."""
    folder = Path(folder)
    final = folder / f"checkpoint-{step}"
    with atomic_path(final, folder=True, replace=True) as partial:
        accelerator.save_state(str(partial))
    if total_limit is not None:
        for old in list_checkpoints(folder)[:-total_limit]:
            discard(old)  # renamed away first: a run stopped while deleting leaves no half checkpoint under its name
            logger.info("Removed %s (checkpoints_total_limit %d)", old, total_limit)
    return final
