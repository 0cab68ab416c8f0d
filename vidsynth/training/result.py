"""The result of a tuning run: the trained parameters, and on request a complete pipeline folder.

``tuned_unet.safetensors`` holds only the temporal layers and the tuned modules (for SD-1.x with
the default modules 74.4 M parameters: 297.5 MB in float32, 148.8 MB with ``save_dtype`` fp16 or
bf16), with the base model, the inflation options, the clip (path, fps, frame indices, size) and
the prompt in its metadata: ``inference.py`` rebuilds the tuned model from it and the base model.
The clip is the frames tuned on: the one window of a fixed run, the whole span of a random one
(``window_sampling``, also in the metadata, with the window's ``n_sample_frames``).
It is renamed into place last, after the optional ``pipeline/``, so its presence means the run
finished; nothing is visible under a final name before it is complete.
"""

import logging
from pathlib import Path

from vidsynth.atomic import atomic_path
from vidsynth.config.train import TrainConfig
from vidsynth.dtypes import torch_dtype
from vidsynth.media.video import Clip
from vidsynth.models.trainable import save_trained
from vidsynth.models.unet import VideoUNet
from vidsynth.pipelines import ModelSource, load_pipeline
from vidsynth.run_folder import RunFolder

logger = logging.getLogger(__name__)


def write_pipeline(trained: Path, base_model: str, folder: Path) -> Path:
    """Save base model + trained parameters as a diffusers pipeline folder, atomically.

    The UNet is rebuilt in float32 from the base model and the trained file, so the folder holds the
    base weights exactly even when tuning stored the frozen weights in bf16, and the tuned parameters
    as the result holds them (rounded to 16 bits with ``save_dtype`` fp16 or bf16).
    """
    with atomic_path(folder, folder=True, replace=True) as partial:
        load_pipeline(ModelSource("trained", str(trained), base=base_model)).save_pretrained(partial)
    return folder


def write_result(unet: VideoUNet, run: RunFolder, cfg: TrainConfig, clip: Clip, steps: int, seed: int) -> Path:
    """Write ``tuned_unet.safetensors`` (and ``pipeline/`` with ``save_full_pipeline``); returns its path."""
    metadata = {
        "clip": clip.metadata(),
        "prompt": cfg.train_data.prompt,
        "n_sample_frames": cfg.train_data.n_sample_frames,
        "window_sampling": cfg.train_data.window_sampling,
        "steps": steps,
        "seed": seed,
    }
    with atomic_path(run.result) as partial:
        save_trained(
            unet,
            partial,
            base_model=cfg.pretrained_model_path,
            trainable_modules=cfg.trainable_modules,
            extra_metadata=metadata,
            dtype=torch_dtype(cfg.save_dtype),
        )
        if cfg.save_full_pipeline:
            write_pipeline(partial, cfg.pretrained_model_path, run.pipeline)
            logger.info("Wrote the full pipeline to %s", run.pipeline)
    return run.result
