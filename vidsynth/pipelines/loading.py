"""The one way to build the editing pipeline: :func:`load_pipeline` from a :class:`ModelSource`.

A model comes in four shapes, and each needs its own recipe, so callers name the shape once (in
``vidsynth.pipelines.source``) and never branch on it again:

* ``base``: a plain SD-1.x model (folder or hub id), inflated as it loads (zero-shot editing);
* ``trained``: a base model plus the small ``tuned_unet.safetensors`` of a tuning run, whose metadata
  sets the inflation options; a LoRA run's adapters (``pytorch_lora_weights.safetensors`` next to it)
  load under the adapter name ``tuned``, after its temporal layers' seeded start (``lora_temporal``);
* ``pipeline``: a folder written by ``TuneAVideoPipeline.save_pretrained`` (diffusers' own loader);
* ``tuneavideo``: a pipeline folder saved by the original Tune-A-Video code, whose ``model_index.json``
  names a package that is not installed, so each component is loaded from its subfolder by class.

The sampling scheduler is always DDIM with the model's noise schedule, whatever a folder names (SD
folders name PNDM), as the original does. A ControlNet is not part of a model source: the caller
loads it (``vidsynth.control``) and passes it in; a ControlNet saved in a pipeline folder is used only
through ``TuneAVideoPipeline.from_pretrained``.
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import AutoencoderKL, ControlNetModel, DDIMScheduler, MultiControlNetModel
from huggingface_hub import constants as hub_constants
from transformers import CLIPTextModel, CLIPTokenizer

from vidsynth.errors import VidSynthError
from vidsynth.hub import require_model
from vidsynth.models.lora import seed_temporal_layers
from vidsynth.models.lora_stack import TUNED_ADAPTER
from vidsynth.models.trainable import load_trained, read_trained_metadata
from vidsynth.models.unet import VideoUNet
from vidsynth.pipelines.pipeline_tuneavideo import TuneAVideoPipeline
from vidsynth.run_folder import LORA_FILE

KINDS = ("base", "trained", "pipeline", "tuneavideo")
MODEL_FIX = "Download it with ./download_models.sh, or point at a local SD-1.x folder"


@dataclass(frozen=True)
class ModelSource:
    """Which model to build. ``path``: the base model, the trained file, or the pipeline folder."""

    kind: str
    path: str
    base: str | None = None  # for ``trained``: the base model; for a run's ``pipeline``: the one it was made from

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"ModelSource kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "trained" and not self.base:
            raise ValueError("a trained ModelSource needs the base model it was tuned from")

    @property
    def name(self) -> str:
        """How sidecars and messages name the model."""
        return f"{self.base} + {self.path}" if self.kind == "trained" else self.path

    @property
    def unet_root(self) -> str:
        """The model folder (or hub id) whose ``unet/`` config names the base UNet: the base of a trained source."""
        return self.base if self.kind == "trained" else self.path

    @property
    def files(self) -> list[str]:
        """The paths (or hub ids) the model is read from: what a cache of its outputs depends on."""
        adapters = Path(self.path).parent / LORA_FILE
        if self.kind == "trained" and adapters.is_file():
            return [self.path, str(adapters), self.base]
        return [self.path, self.base] if self.base else [self.path]


def is_tuneavideo_folder(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` is a pipeline saved by the original Tune-A-Video (its 3-D unet class)."""
    config = Path(folder) / "unet" / "config.json"
    return config.is_file() and json.loads(config.read_text()).get("_class_name") == "UNet3DConditionModel"


Controlnet = ControlNetModel | MultiControlNetModel | None


def _components(folder: str, unet: VideoUNet, controlnet: Controlnet) -> TuneAVideoPipeline:
    """VAE, text encoder, tokenizer and DDIM scheduler from ``folder``, around ``unet`` (and ``controlnet``)."""
    return TuneAVideoPipeline(
        vae=AutoencoderKL.from_pretrained(folder, subfolder="vae"),
        text_encoder=CLIPTextModel.from_pretrained(folder, subfolder="text_encoder"),
        tokenizer=CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer"),
        unet=unet,
        scheduler=DDIMScheduler.from_pretrained(folder, subfolder="scheduler"),
        controlnet=controlnet,
    )


def _video_unet(source: ModelSource) -> VideoUNet:
    """The video UNet of a model other than a saved pipeline: converted, or inflated from the base (+ tuned weights)."""
    if source.kind == "tuneavideo":
        return VideoUNet.from_tuneavideo(Path(source.path) / "unet")
    if source.kind == "base":
        return VideoUNet.from_pretrained_2d(source.path, subfolder="unet")
    metadata = read_trained_metadata(source.path)
    options = {key: metadata[key] for key in ("frame_norm", "temporal_out_bias_init")}
    unet = VideoUNet.from_pretrained_2d(source.base, subfolder="unet", **options)
    lora = metadata.get("lora")
    if lora and lora["temporal"]:
        seed_temporal_layers(unet, lora["init_seed"])  # the start the adapters were tuned on, drawn again
    load_trained(unet, source.path)
    if lora:
        adapters = Path(source.path).parent / LORA_FILE
        if not adapters.is_file():
            raise VidSynthError(f"{source.path} is a LoRA result but {adapters} is missing. Re-run train.py")
        unet.load_lora_adapter(str(adapters.parent), weight_name=LORA_FILE, prefix="unet", adapter_name=TUNED_ADAPTER)
        unet.eval().requires_grad_(False)  # for editing: peft adds its layers in training mode, trainable
    return unet


def _build(source: ModelSource, unet: VideoUNet | None, controlnet: Controlnet) -> TuneAVideoPipeline:
    if source.kind == "pipeline":
        given = {"unet": unet} if unet is not None else {}
        pipe = TuneAVideoPipeline.from_pretrained(source.path, controlnet=controlnet, **given)
        pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
        return pipe
    return _components(source.unet_root, unet or _video_unet(source), controlnet)


def _is_hub_id(ref: str) -> bool:
    return not Path(ref).expanduser().exists()


def load_pipeline(
    source: ModelSource,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    unet: VideoUNet | None = None,
    controlnet: Controlnet = None,
) -> TuneAVideoPipeline:
    """Build the editing pipeline for ``source`` in ``dtype`` on ``device``.

    ``unet``: use this video UNet instead of loading one (validation while tuning passes the UNet
    being tuned; it is not cast or moved). ``controlnet``: the ControlNet(s) to guide with, cast and
    moved like the models; without it the pipeline has none. Missing files and an unreachable hub
    become a :class:`VidSynthError` with the fix.
    """
    for ref in source.files:
        require_model(ref, "unet/config.json", "model", MODEL_FIX)
    try:
        pipe = _build(source, unet, controlnet)
    except OSError as err:  # missing or unreadable files, or a hub id that cannot be fetched
        raise _load_error(source, err) from err
    names = (
        ("vae", "text_encoder")
        + (() if unet is not None else ("unet",))
        + (() if controlnet is None else ("controlnet",))
    )
    for name in names:
        getattr(pipe, name).to(device=device, dtype=dtype)
    pipe.set_progress_bar_config(leave=False)  # finished bars vanish: the next stage's bar takes the line
    return pipe


def _load_error(source: ModelSource, err: OSError) -> VidSynthError:
    remote = [ref for ref in source.files if _is_hub_id(ref)]
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if remote:
        why = "HF_HUB_OFFLINE is set" if hub_constants.HF_HUB_OFFLINE else "no network, or the id is wrong"
        return VidSynthError(
            f"cannot reach the Hugging Face hub for {remote[0]} ({why}) and it is not in the local cache. {MODEL_FIX}"
        )
    return VidSynthError(f"cannot load the model {source.name}: {reason}. Check the path, or download it again")
