"""The result of a tuning run: the trained parameters, and on request a complete pipeline folder.

``tuned_unet.safetensors`` holds only the temporal layers and the tuned modules (tens of MB for
SD-1.x), with the base model, the inflation options, the clip (path, fps, frame indices, size) and
the prompt in its metadata: ``inference.py`` rebuilds the tuned model from it and the base model.
It is renamed into place last, after the optional ``pipeline/``, so its presence means the run
finished; nothing is visible under a final name before it is complete.
"""

import logging
import os
import shutil
from pathlib import Path

from vidsynth.config.train import TrainConfig
from vidsynth.models.trainable import save_trained
from vidsynth.models.unet import VideoUNet
from vidsynth.pipelines import TuneAVideoPipeline
from vidsynth.training.run_folder import RunFolder
from vidsynth.video import Clip

logger = logging.getLogger(__name__)


def write_pipeline(trained: Path, base_model: str, folder: Path) -> Path:
    """Save base model + trained parameters as a diffusers pipeline folder, atomically.

    The UNet is rebuilt in float32 from the base model and the trained file, so the folder holds the
    base weights exactly even when tuning stored the frozen weights in bf16.
    """
    partial = folder.with_name(f".{folder.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        TuneAVideoPipeline.from_base(base_model, trained=trained).save_pretrained(partial)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(partial, folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return folder


def write_result(unet: VideoUNet, run: RunFolder, cfg: TrainConfig, clip: Clip, steps: int, seed: int) -> Path:
    """Write ``tuned_unet.safetensors`` (and ``pipeline/`` with ``save_full_pipeline``); returns its path."""
    partial = run.root / f".{run.result.stem}.partial{run.result.suffix}"
    metadata = {
        "clip": clip.metadata(),
        "prompt": cfg.train_data.prompt,
        "n_sample_frames": cfg.train_data.n_sample_frames,
        "steps": steps,
        "seed": seed,
    }
    try:
        save_trained(
            unet,
            partial,
            base_model=cfg.pretrained_model_path,
            trainable_modules=cfg.trainable_modules,
            extra_metadata=metadata,
        )
        if cfg.save_full_pipeline:
            write_pipeline(partial, cfg.pretrained_model_path, run.pipeline)
            logger.info("Wrote the full pipeline to %s", run.pipeline)
        os.replace(partial, run.result)
    finally:
        partial.unlink(missing_ok=True)
    return run.result
