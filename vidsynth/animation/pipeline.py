"""Loading diffusers' ``StableVideoDiffusionPipeline`` and placing it in memory: none, model or sequential offload.

The pipeline is used as diffusers ships it, so its frames are exactly what its own users get. Only
two things are chosen here: the CLIP image processor is loaded as transformers' PIL class
(``CLIPImageProcessorPil``: the default class needs torchvision, which VidSynth does without), and the
memory mode. ``model`` offload keeps each model on the GPU only while it runs (diffusers'
``enable_model_cpu_offload``), ``sequential`` each layer (slowest, least memory); forward chunking runs
the UNet's feed-forward layers one frame at a time.
"""

import torch
from diffusers import StableVideoDiffusionPipeline
from transformers import CLIPImageProcessorPil

from vidsynth.animation.model import FETCH, ModelFacts
from vidsynth.errors import VidSynthError


def load_animation_pipeline(model: ModelFacts, dtype: torch.dtype) -> StableVideoDiffusionPipeline:
    """The pipeline of ``model`` (a folder or hub id, checked by :func:`vidsynth.animation.model.model_facts`)."""
    try:
        feature_extractor = CLIPImageProcessorPil.from_pretrained(model.path, subfolder="feature_extractor")
        pipe = StableVideoDiffusionPipeline.from_pretrained(
            model.path, dtype=dtype, variant=model.variant, feature_extractor=feature_extractor
        )
    except OSError as err:  # a file missing or unreadable, or a hub download that failed
        reason = str(err).strip().splitlines()[0].rstrip(".") if str(err).strip() else type(err).__name__
        raise VidSynthError(f"cannot load the image-to-video model {model.path}: {reason}. {FETCH}") from err
    return pipe


def place(pipe: StableVideoDiffusionPipeline, device: torch.device, offload: str, forward_chunking: bool) -> None:
    """Put ``pipe`` on ``device`` in memory mode ``offload`` (none | model | sequential; the last two need a GPU)."""
    if offload == "none":
        pipe.to(device)
    elif offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.enable_sequential_cpu_offload(device=device)
    if forward_chunking:
        pipe.unet.enable_forward_chunking()
