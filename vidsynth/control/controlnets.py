"""Reading ControlNets: their config first (to refuse one made for another base before any weights load), then them.

A ControlNet's residuals are added to the UNet's blocks, so it must come from the same family of base
model. Its cross-attention width (the text encoder's: 768 for SD-1.x, 1024 for SD-2.x) is the check
that its config answers in a second.
"""

from pathlib import Path

import torch
from diffusers import ControlNetModel, MultiControlNetModel

from vidsynth.control.spec import DOWNLOAD_FIX, ControlSpec, load_error
from vidsynth.errors import VidSynthError
from vidsynth.hub import require_model

WEIGHTS = "diffusion_pytorch_model.safetensors"


def check_controlnet(source: str, cross_attention_dim: int | None) -> None:
    """Refuse ``source`` unless it is a ControlNet whose cross-attention width is the base UNet's (None: unknown)."""
    require_model(source, "config.json", "ControlNet", DOWNLOAD_FIX.format(what="ControlNet"))
    try:
        config = ControlNetModel.load_config(source)
    except (OSError, ValueError) as err:
        raise load_error(source, "ControlNet", err) from err
    kind = config.get("_class_name")
    if kind != "ControlNetModel":
        raise VidSynthError(
            f"{source} is not a ControlNet (its config.json names {kind}). Pass --controlnet with a diffusers "
            "ControlNet folder or hub id, e.g. lllyasviel/control_v11p_sd15_canny"
        )
    width = config.get("cross_attention_dim")
    if cross_attention_dim is not None and width != cross_attention_dim:
        raise VidSynthError(
            f"ControlNet {source} has cross-attention width {width}, but the base model's UNet has "
            f"{cross_attention_dim}: it was made for another base model. Pass --controlnet with one made for this "
            "base (SD-1.x: width 768, e.g. lllyasviel/control_v11p_sd15_canny)"
        )


def _variant(source: str) -> str | None:
    """ "fp16" for a folder that holds only the fp16 weights (``download_models.sh --fp16``)."""
    folder = Path(source)
    fp16 = folder / WEIGHTS.replace(".safetensors", ".fp16.safetensors")
    return "fp16" if folder.is_dir() and not (folder / WEIGHTS).is_file() and fp16.is_file() else None


def load_controlnets(
    controls: tuple[ControlSpec, ...], dtype: torch.dtype | None, device: torch.device | str | None
) -> ControlNetModel | MultiControlNetModel | None:
    """The controls' ControlNets in ``dtype`` on ``device``: one, several (a ``MultiControlNetModel``), or None."""
    nets = []
    for spec in controls:
        require_model(spec.controlnet, "config.json", "ControlNet", DOWNLOAD_FIX.format(what="ControlNet"))
        try:
            net = ControlNetModel.from_pretrained(spec.controlnet, variant=_variant(spec.controlnet), dtype=dtype)
        except (OSError, ValueError) as err:
            raise load_error(spec.controlnet, "ControlNet", err) from err
        nets.append(net.to(device).eval())
    if not nets:
        return None
    return nets[0] if len(nets) == 1 else MultiControlNetModel(nets)
