"""The result of a tuning run: the trained parameters, and on request a complete pipeline folder.

``tuned_unet.safetensors`` holds only the temporal layers and the tuned modules (for SD-1.x with
the default modules 74.4 M parameters: 297.5 MB in float32, 148.8 MB with ``save_dtype`` fp16 or
bf16), with the base model, the inflation options, the clip (path, fps, frame indices, size) and
the prompt in its metadata: ``inference.py`` rebuilds the tuned model from it and the base model.
The clip is the frames tuned on: the one window of a fixed run, the whole span of a random one
(``window_sampling``, also in the metadata, with the window's ``n_sample_frames``).
A LoRA run (``lora_rank``) keeps the adapters in ``pytorch_lora_weights.safetensors`` (diffusers' LoRA
format) and in ``tuned_unet.safetensors`` only what trains fully: the temporal layers, or nothing with
``lora_temporal`` (then only the metadata, which names the LoRA set-up and the seed the temporal layers
start from). It is renamed into place last, after the optional ``pipeline/``, so its presence means the run
finished; nothing is visible under a final name before it is complete.
"""

import logging
from pathlib import Path

from vidsynth.atomic import atomic_path
from vidsynth.config.train import TrainConfig
from vidsynth.dtypes import torch_dtype
from vidsynth.media.video import Clip
from vidsynth.models.lora import LoraSpec, save_lora
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
        pipe = load_pipeline(ModelSource("trained", str(trained), base=base_model))
        if getattr(pipe.unet, "peft_config", None):  # a LoRA run: its adapters fused into the weights they adapt
            pipe.unet.fuse_lora()
            pipe.unet.unload_lora()
        pipe.save_pretrained(partial)
    return folder


def write_result(
    unet: VideoUNet, run: RunFolder, cfg: TrainConfig, clip: Clip, steps: int, seed: int, lora: LoraSpec | None = None
) -> Path:
    """Write ``tuned_unet.safetensors`` (and ``pipeline/`` with ``save_full_pipeline``); returns its path.

    A LoRA run (``lora``) writes its adapters first, to ``pytorch_lora_weights.safetensors`` in diffusers'
    LoRA format, with the base model, the inflation options and the LoRA set-up in its metadata.
    """
    metadata = {
        "clip": clip.metadata(),
        "prompt": cfg.train_data.prompt,
        "n_sample_frames": cfg.train_data.n_sample_frames,
        "window_sampling": cfg.train_data.window_sampling,
        "steps": steps,
        "seed": seed,
    }
    record = lora.record() if lora is not None else None
    if lora is not None:
        inflation = {key: unet.config[key] for key in ("frame_norm", "temporal_out_bias_init")}
        adapter_metadata = {"base_model": cfg.pretrained_model_path, **inflation, "lora": record, "seed": seed}
        save_lora(unet, run.lora, adapter_metadata, torch_dtype(cfg.save_dtype))
    with atomic_path(run.result) as partial:
        save_trained(
            unet,
            partial,
            base_model=cfg.pretrained_model_path,
            trainable_modules=cfg.trainable_modules,
            extra_metadata=metadata,
            dtype=torch_dtype(cfg.save_dtype),
            lora=record,
        )
        if cfg.save_full_pipeline:
            write_pipeline(partial, cfg.pretrained_model_path, run.pipeline)
            logger.info("Wrote the full pipeline to %s", run.pipeline)
        if lora is None:  # an earlier LoRA run's adapters in this folder would make the new result look like one
            run.lora.unlink(missing_ok=True)
    return run.result
