"""The output folder of one tuning run, and the rules that protect what is already in it.

The layout is a contract: tuning writes it, and editing, the app and experiments read it.
Layout: ``config.yaml`` (the resolved config), ``samples/sample-<step>/`` (validation edits),
``checkpoints/checkpoint-<step>/`` (resumable states), ``logs/`` (TensorBoard),
``tuned_unet.safetensors`` (the result; its presence marks a finished run), a LoRA run's adapters
``pytorch_lora_weights.safetensors`` (written before it) and, on request, ``pipeline/``. A finished result is never
replaced unless ``overwrite: true``, and a fresh run refuses to mix its checkpoints with those of an
earlier run; both are checked before any model loads, and nothing is created until every check has
passed. A resumed run redoes the steps after its checkpoint, so the samples rendered after it go too:
the resumed run renders them again from the same weights.
"""

import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from vidsynth.atomic import discard, remove_stale_partials
from vidsynth.errors import VidSynthError

logger = logging.getLogger(__name__)

RESULT_FILE = "tuned_unet.safetensors"
LORA_FILE = "pytorch_lora_weights.safetensors"  # a LoRA run's adapters, in diffusers' LoRA format
CONFIG_FILE = "config.yaml"  # the resolved config, next to every output (tuning runs and edits)
CHECKPOINT_FILE = "trained_params.safetensors"  # the trained parameters inside a checkpoint folder
_CHECKPOINT = re.compile(r"checkpoint-(\d+)")
_SAMPLE = re.compile(r"sample-(\d+)")


def checkpoint_step(path: str | Path) -> int:
    """The global step a ``checkpoint-N`` folder was saved at."""
    match = _CHECKPOINT.fullmatch(Path(path).name)
    if not match:
        raise VidSynthError(f"{path} is not a checkpoint folder (checkpoint-N). Point at one, or use 'latest'")
    return int(match[1])


def list_checkpoints(folder: str | Path) -> list[Path]:
    """Complete ``checkpoint-N`` folders in ``folder``, oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [path for path in folder.iterdir() if path.is_dir() and _CHECKPOINT.fullmatch(path.name)]
    return sorted(found, key=checkpoint_step)


def find_checkpoint(spec: str | None, folder: str | Path) -> Path | None:
    """The checkpoint ``resume_from_checkpoint`` names: ``latest`` in ``folder``, a path, or none."""
    if spec is None:
        return None
    if spec == "latest":
        found = list_checkpoints(folder)
        return found[-1] if found else None
    path = Path(spec)
    if not (path / CHECKPOINT_FILE).is_file():
        raise VidSynthError(
            f"resume_from_checkpoint {spec} is not a checkpoint folder of train.py (no {CHECKPOINT_FILE} in it). "
            f"Use 'latest' or a folder such as {Path(folder) / 'checkpoint-100'}"
        )
    checkpoint_step(path)
    return path


@dataclass(frozen=True)
class RunFolder:
    """Paths inside a run's output folder."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    def sample(self, step: int) -> Path:
        """The folder of the validation edits rendered after ``step``."""
        return self.samples / f"sample-{step}"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def result(self) -> Path:
        return self.root / RESULT_FILE

    @property
    def lora(self) -> Path:
        return self.root / LORA_FILE

    def result_bytes(self) -> int:
        """The size of the result a run leaves to edit with: ``tuned_unet.safetensors`` plus a LoRA run's adapters."""
        return sum(path.stat().st_size for path in (self.result, self.lora) if path.is_file())

    @property
    def pipeline(self) -> Path:
        return self.root / "pipeline"

    def check_start(self, resuming: bool, overwrite: bool) -> None:
        """Refuse to start where a run would replace a finished result or mix with old checkpoints."""
        if self.root.exists() and not self.root.is_dir():
            raise VidSynthError(f"output_dir {self.root} is a file. Point output_dir at a folder")
        if self.result.exists() and not overwrite:
            raise VidSynthError(
                f"output_dir {self.root} already holds a finished result ({RESULT_FILE}). "
                "Choose another output_dir, or set overwrite=true to replace it"
            )
        found = list_checkpoints(self.checkpoints)
        if found and not resuming and not overwrite:
            raise VidSynthError(
                f"output_dir {self.root} holds checkpoints of an earlier run (latest: {found[-1].name}). "
                "Continue it with resume_from_checkpoint=latest, or set overwrite=true to start over"
            )

    def prepare(self, resumed_at: int | None, overwrite: bool) -> None:
        """Create the folder. A run resumed at step ``resumed_at`` keeps what is there up to that step; a new
        one (allowed by :meth:`check_start`: ``overwrite``, or the earlier run saved no checkpoint) clears the
        earlier run's states."""
        if resumed_at is None:
            why = "overwrite: true" if overwrite else "it saved no checkpoint to resume from"
            for old in (self.checkpoints, self.samples, self.logs):
                if old.exists():
                    logger.info("Removing %s of an earlier run (%s)", old, why)
                    shutil.rmtree(old)
        else:
            for sample in self.samples.glob("sample-*"):
                if (match := _SAMPLE.fullmatch(sample.name)) and int(match[1]) > resumed_at:
                    logger.info(
                        "Removing %s, rendered after the checkpoint of step %d: rendered again", sample, resumed_at
                    )
                    discard(sample)
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        for folder in (self.root, self.checkpoints, self.samples):
            remove_stale_partials(folder)
