"""The run folder of a from-scratch model, and the rules that protect what is already in it.

Layout: ``config.yaml`` (the resolved config), ``data.json`` (what the footage gave: class names or the
label vectors' size, frames per window, their frame rate, the pad value), ``scheduler/`` (the noise
schedule), one folder per trained stage with its weights in diffusers' layout (``<stage>/``, loadable with
``ScratchUNet.from_pretrained``; its presence marks the stage as trained), ``checkpoints/<stage>/checkpoint-N``
(resumable states), ``samples/<stage>-<step>/grid.gif`` (validation clips) and ``logs/<stage>/`` (TensorBoard).
A new run refuses a folder that holds an earlier run's stages or checkpoints unless ``overwrite: true``;
``resume_from_checkpoint: latest`` keeps the trained stages and goes on with the others.
"""

import shutil
from dataclasses import dataclass
from pathlib import Path

from vidsynth.errors import VidSynthError
from vidsynth.run_folder import CONFIG_FILE, list_checkpoints

DATA_FILE = "data.json"
WEIGHTS_FILE = "diffusion_pytorch_model.safetensors"


@dataclass(frozen=True)
class ScratchRunFolder:
    """Paths inside a from-scratch run's folder."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def data(self) -> Path:
        return self.root / DATA_FILE

    @property
    def scheduler(self) -> Path:
        return self.root / "scheduler"

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def stage(self, name: str) -> Path:
        """The trained weights of stage ``name``."""
        return self.root / name

    def trained(self, name: str) -> bool:
        return (self.stage(name) / WEIGHTS_FILE).is_file()

    def checkpoints(self, name: str) -> Path:
        return self.root / "checkpoints" / name

    def sample(self, name: str, step: int) -> Path:
        return self.samples / f"{name}-{step}"

    def check_start(self, stages: list[str], resuming: bool, overwrite: bool) -> None:
        """Refuse to start where a new run would mix with, or silently replace, an earlier run's stages."""
        if self.root.exists() and not self.root.is_dir():
            raise VidSynthError(f"output_dir {self.root} is a file. Point output_dir at a folder")
        if resuming or overwrite:
            return
        earlier = [name for name in stages if self.trained(name) or list_checkpoints(self.checkpoints(name))]
        if earlier:
            raise VidSynthError(
                f"output_dir {self.root} holds stage {earlier[0]!r} of an earlier run. Continue it with "
                "resume_from_checkpoint=latest, set overwrite=true to start over, or choose another output_dir"
            )

    def clear(self, stages: list[str]) -> None:
        """``overwrite: true``: remove the earlier run's weights, checkpoints and samples of ``stages``."""
        for name in stages:
            for old in (self.stage(name), self.checkpoints(name), self.logs / name):
                if old.exists():
                    shutil.rmtree(old)
            for sample in self.samples.glob(f"{name}-*"):
                shutil.rmtree(sample)
