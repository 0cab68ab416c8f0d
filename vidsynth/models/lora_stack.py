"""LoRAs at edit time: the tuned run's adapters at a scale, plus community SD-1.x LoRAs stacked on top.

A LoRA tuning result loads with its adapters under the name :data:`TUNED_ADAPTER`
(:func:`vidsynth.pipelines.loading.load_pipeline`). An edit then adds any SD-1.x LoRA from the ecosystem
(a file or folder in diffusers' or kohya's key format, or a hub id) with diffusers' ``load_lora_weights``,
sets each adapter's scale with ``set_adapters`` (``lora_scale`` for the tuned adapters: 0 gives the base
projections, 1 the tuned ones) and fuses them all into the weights once (``fuse_lora``): the scales are
fixed for the whole edit, so sampling runs at the speed of a model without adapters.

A LoRA made for another base is refused before anything of it loads: every layer it adapts must exist
in the model with the widths its matrices expect (SD-2's cross-attention, for one, reads 1024-wide text
features where SD-1.x's reads 768).
"""

import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers.loaders import StableDiffusionLoraLoaderMixin
from torch import nn

from vidsynth.errors import VidSynthError
from vidsynth.hub import is_repo_id

TUNED_ADAPTER = "tuned"
_DOWN = (".lora_A.", ".lora.down.", ".lora_down.", ".lora_linear_layer.down.")
_UP = (".lora_B.", ".lora.up.", ".lora_up.", ".lora_linear_layer.up.")


@dataclass(frozen=True)
class StyleLora:
    """A community LoRA to stack on the model: a file, folder or hub id, and its scale."""

    ref: str
    scale: float = 1.0

    @classmethod
    def parse(cls, text: str) -> "StyleLora":
        """``PATH_OR_ID[:SCALE]``; a missing local file is refused (a hub id is checked when it loads)."""
        ref, sep, scale = text.rpartition(":")
        if not sep or not _is_number(scale):
            ref, scale = text, "1"
        looks_like_file = Path(ref).suffix in (".safetensors", ".bin", ".pt", ".ckpt")
        if not Path(ref).expanduser().exists() and (looks_like_file or not is_repo_id(ref)):
            raise VidSynthError(
                f"LoRA {ref} not found. Pass --lora with an SD-1.x LoRA file (.safetensors), folder or hub id, "
                "optionally with :SCALE"
            )
        return cls(ref, float(scale))

    @property
    def spec(self) -> str:
        return f"{self.ref}:{self.scale:g}"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _load_kwargs(ref: str) -> tuple[str, dict]:
    """``load_lora_weights``' source and arguments for a file (its folder and name), a folder or a hub id."""
    path = Path(ref).expanduser()
    if path.is_file():
        return str(path.parent), {"weight_name": path.name}
    return ref, {}


def _width_problem(model: nn.Module, module_name: str, tensor: torch.Tensor, down: bool) -> str | None:
    """Why a LoRA matrix does not fit ``model``'s layer ``module_name`` (None if it does)."""
    try:
        layer = model.get_submodule(module_name)
    except AttributeError:
        return f"it adapts a layer {module_name} that this model does not have"
    if hasattr(layer, "base_layer"):
        layer = layer.base_layer
    width = getattr(layer, "in_features" if down else "out_features", None)
    if width is None:
        width = getattr(layer, "in_channels" if down else "out_channels", None)
    got = tensor.shape[1] if down else tensor.shape[0]
    if width is not None and got != width:
        side = "inputs" if down else "outputs"
        return f"its {module_name} has {got}-wide {side} but this model's has {width}"
    return None


def check_lora_fits(pipe: StableDiffusionLoraLoaderMixin, lora: StyleLora) -> None:
    """Refuse a LoRA whose layers are not this model's (another base: another width, or layers it lacks)."""
    source, kwargs = _load_kwargs(lora.ref)
    try:
        state_dict, _ = pipe.lora_state_dict(source, **kwargs)
    except (OSError, ValueError, KeyError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise VidSynthError(f"cannot read the LoRA {lora.ref} ({reason}). Pass an SD-1.x LoRA file") from err
    components = {"unet": pipe.unet, "text_encoder": pipe.text_encoder}
    for key, tensor in state_dict.items():
        marker = next((m for m in _DOWN + _UP if m in key), None)
        component, _, name = key.partition(".")
        if marker is None or component not in components:
            continue
        module_name = name.split(marker)[0]
        problem = _width_problem(components[component], module_name, tensor, down=marker in _DOWN)
        if problem:
            raise VidSynthError(
                f"LoRA {lora.ref} does not fit this model: {problem} (a LoRA for another base model, such as "
                "SD-2's 1024-wide cross-attention). Use a LoRA made for SD-1.x"
            )


def apply_loras(
    pipe: StableDiffusionLoraLoaderMixin, lora_scale: float, styles: list[StyleLora], fuse: bool = True
) -> None:
    """Load ``styles`` on top of the model, scale every adapter, and fuse them into the weights (``fuse``)."""
    has_tuned = TUNED_ADAPTER in getattr(pipe.unet, "peft_config", {})
    if not has_tuned and lora_scale != 1.0:
        raise VidSynthError(
            f"lora_scale {lora_scale:g} applies to the adapters of a LoRA tuning result (lora_rank), and this model "
            "has none. Leave --lora-scale at 1, or edit with a LoRA run"
        )
    names, scales = ([TUNED_ADAPTER], [lora_scale]) if has_tuned else ([], [])
    for i, style in enumerate(styles):
        check_lora_fits(pipe, style)
        source, kwargs = _load_kwargs(style.ref)
        name = f"style_{i}"
        try:
            with warnings.catch_warnings():  # peft warns that a model has an adapter already: stacking is the point
                warnings.filterwarnings("ignore", "Already found a `peft_config`", UserWarning)
                pipe.load_lora_weights(source, adapter_name=name, **kwargs)
        except (OSError, ValueError, RuntimeError) as err:
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise VidSynthError(f"cannot load the LoRA {style.ref} ({reason}). Pass an SD-1.x LoRA file") from err
        names.append(name)
        scales.append(style.scale)
    if not names:
        return
    pipe.set_adapters(names, scales)
    for model in (pipe.unet, pipe.text_encoder):
        model.requires_grad_(False)  # peft's set_adapter makes the adapters trainable; CPU kernels differ then
    if fuse:
        pipe.fuse_lora(components=["unet", "text_encoder"], adapter_names=names)
