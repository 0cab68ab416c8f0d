"""What an image-to-video model is, read from its small JSON files before any weights load.

The size, frame count and kind of a model decide what a request may ask for (a width the VAE
cannot take, an SD folder given as the model), so they are read from ``model_index.json``,
``unet/config.json`` and ``vae/config.json`` first: from the folder, or for a hub id from the
Hugging Face cache (fetched if the hub answers). Then a bad request fails in a second, not after
gigabytes have loaded.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from vidsynth.errors import VidSynthError
from vidsynth.hub import is_repo_id, require_model
from vidsynth.testing.tiny_models import TINY, resolve_model

PIPELINE_CLASS = "StableVideoDiffusionPipeline"
FETCH = "Fetch it with ./download_models.sh stabilityai/stable-video-diffusion-img2vid-xt, or pass --model tiny"


@dataclass(frozen=True)
class ModelFacts:
    """The model's location and the numbers a request is checked against."""

    path: str  # a folder, or a hub id
    num_frames: int  # frames the UNet was trained to make at once
    size_multiple: int  # width and height must be multiples of this (the VAE's downsampling)
    native_long_side: int  # the longer side of its training frames
    variant: str | None = None  # "fp16" for a folder with only the fp16 weights (download_models.sh --fp16)

    def __post_init__(self):
        if self.native_long_side % self.size_multiple:
            raise ValueError("the native size must be a multiple of the size multiple")


def _read_json(model: str, name: str) -> dict:
    """``name`` from the folder ``model``, or from the hub repository ``model`` through the cache."""
    folder = Path(model).expanduser()
    if folder.is_dir():
        file = folder / name
        if not file.is_file():
            raise VidSynthError(f"{folder} has no {name}, so it is not a diffusers model folder. {FETCH}")
    else:
        from huggingface_hub import hf_hub_download

        file = Path(hf_hub_download(model, name))
    return json.loads(file.read_text())


def model_facts(model: str) -> ModelFacts:
    """Check that ``model`` (folder, hub id or ``tiny``) is an image-to-video pipeline; read its numbers.

    SVD's UNet records ``sample_size`` 96 latents (768 px): the side of a square with the area of its
    1024x576 training frames. The native frame at 16:9 has that area, so its longer side is 4/3 of it.
    """
    path = resolve_model(model, "svd") if model == TINY else model
    if not Path(path).expanduser().is_dir():
        if not is_repo_id(path):
            raise VidSynthError(f"model {path} not found. {FETCH}")
        require_model(path, "model_index.json", "image-to-video model", FETCH)
    kind = _read_json(path, "model_index.json").get("_class_name")
    if kind != PIPELINE_CLASS:
        raise VidSynthError(
            f"model {path} is a {kind or 'model of unknown kind'}, not an image-to-video pipeline "
            f"({PIPELINE_CLASS}). Pass --model with a Stable Video Diffusion folder or hub id. {FETCH}"
        )
    unet, vae = _read_json(path, "unet/config.json"), _read_json(path, "vae/config.json")
    multiple = 2 ** (len(vae["block_out_channels"]) - 1)
    square_side = unet["sample_size"] * multiple
    folder = Path(path).expanduser()
    unet_weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    fp16_only = (
        folder.is_dir() and not unet_weights.is_file() and unet_weights.with_suffix(".fp16.safetensors").is_file()
    )
    return ModelFacts(
        path=str(folder.absolute()) if folder.is_dir() else path,
        num_frames=unet["num_frames"],
        size_multiple=multiple,
        native_long_side=round(square_side * 4 / 3 / multiple) * multiple,
        variant="fp16" if fp16_only else None,
    )
