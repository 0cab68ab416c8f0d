"""LoRA tuning of the video UNet: which layers get adapters, the temporal layers' seeded start, the adapter file.

With ``lora_rank`` set, the pretrained projections that full tuning trains (``attn1.to_q``,
``attn2.to_q``) get peft LoRA adapters instead, added with diffusers' ``unet.add_adapter`` and saved in
diffusers' LoRA format (``pytorch_lora_weights.safetensors``, keys ``unet.<module>.lora.down.weight``),
so ``load_lora_weights`` reads it like any SD-1.x LoRA. The temporal layers are new: trained fully
(``lora_temporal: false``), or given adapters too (``true``). Then their starting values must come
back at load time, so :func:`seed_temporal_layers` draws them on the CPU from a generator seeded with the
run's seed (the same values on every device), and the whole result is the adapters, a few MB.

Target modules are resolved to full module names (:func:`lora_target_names`), so a suffix such as
``to_q`` never reaches the temporal layers unless ``lora_temporal`` asks for them.
"""

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from diffusers.loaders.lora_base import LORA_ADAPTER_METADATA_KEY
from diffusers.utils import convert_state_dict_to_diffusers
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict
from safetensors.torch import save_file
from torch import nn

from vidsynth.atomic import atomic_path
from vidsynth.errors import VidSynthError
from vidsynth.models.transformer import VideoTransformerBlock

TEMPORAL_MODULES = ("attn_temp", "norm_temp")
TEMPORAL_PROJECTIONS = ("attn_temp.to_q", "attn_temp.to_k", "attn_temp.to_v", "attn_temp.to_out.0")
METADATA_KEY = "vidsynth"  # the adapter file's VidSynth metadata (JSON), next to diffusers' own keys


@dataclass(frozen=True)
class LoraSpec:
    """What a LoRA run adapts: the rank, alpha, target suffixes, dropout, the temporal choice and its init seed."""

    rank: int
    alpha: float
    targets: tuple[str, ...]
    dropout: float = 0.0
    temporal: bool = False
    init_seed: int | None = None  # seeds the temporal layers' start (lora_temporal only)

    def record(self) -> dict:
        """The spec as JSON-ready values, for the result's metadata."""
        return {**asdict(self), "targets": list(self.targets)}


def is_temporal(name: str) -> bool:
    """Whether a module or parameter name lies inside a temporal layer that inflation added."""
    return any(part in TEMPORAL_MODULES for part in name.split("."))


def _linear_names(unet: nn.Module) -> list[str]:
    return [name for name, module in unet.named_modules() if isinstance(module, nn.Linear)]


def lora_candidates(unet: nn.Module) -> list[str]:
    """The suffixes a target may name: the Linear layers of the transformer blocks, relative to their block."""
    found = {
        name.split(".transformer_blocks.")[1].split(".", 1)[1]
        for name in _linear_names(unet)
        if ".transformer_blocks." in name
    }
    return sorted(suffix for suffix in found if not is_temporal(suffix))


def pretrained_targets(unet: nn.Module, trainable_modules: Sequence[str]) -> list[str]:
    """The default targets: the ``trainable_modules`` suffixes that name pretrained Linear layers (not temporal)."""
    linears = [name for name in _linear_names(unet) if not is_temporal(name)]
    return [suffix for suffix in trainable_modules if any(name.endswith(suffix) for name in linears)]


def lora_target_names(unet: nn.Module, targets: Sequence[str], temporal: bool) -> list[str]:
    """Full names of the Linear layers that get adapters; a suffix that matches none is refused with the candidates."""
    linears = _linear_names(unet)
    names = []
    for suffix in targets:
        matched = [name for name in linears if name.endswith(suffix) and not is_temporal(name)]
        if not matched:
            raise VidSynthError(
                f"lora_target_modules entry {suffix!r} matches no pretrained Linear layer of the UNet. "
                f"Use suffixes among: {', '.join(lora_candidates(unet))} (lora_temporal: true adapts temporal layers)"
            )
        names += matched
    if temporal:
        names += [name for name in linears if name.endswith(TEMPORAL_PROJECTIONS)]
    return sorted(set(names))


def adapter_parameter_count(unet: nn.Module, spec: LoraSpec) -> int:
    """Parameters the adapters add: rank x (inputs + outputs) per adapted layer (works on the meta device)."""
    layers = [unet.get_submodule(name) for name in lora_target_names(unet, spec.targets, spec.temporal)]
    return sum(spec.rank * (layer.in_features + layer.out_features) for layer in layers)


def add_lora(unet: nn.Module, spec: LoraSpec, adapter_name: str = "default") -> None:
    """Add peft LoRA adapters (B starts at zero: the adapted UNet starts as the un-adapted one) to the targets."""
    unet.add_adapter(
        LoraConfig(
            r=spec.rank,
            lora_alpha=spec.alpha,
            target_modules=lora_target_names(unet, spec.targets, spec.temporal),
            lora_dropout=spec.dropout,
            init_lora_weights=True,
        ),
        adapter_name=adapter_name,
    )


def seed_temporal_layers(unet: nn.Module, seed: int) -> None:
    """Give every temporal layer its starting values, drawn on the CPU from a generator seeded with ``seed``.

    Block by block in module order, as ``nn.Linear`` initialises itself: Kaiming-uniform weights for
    ``to_q``, ``to_k``, ``to_v``, then the output projection's weight (set to zero: the inflated model starts as
    the image model) and bias (zero with ``temporal_out_bias_init: zero``, else PyTorch's uniform draw);
    the LayerNorm at one and zero. The same seed gives the same values on any device.
    """
    generator = torch.Generator("cpu").manual_seed(seed)
    zero_bias = unet.config.temporal_out_bias_init == "zero"
    with torch.no_grad():
        for block in unet.modules():
            if not isinstance(block, VideoTransformerBlock):
                continue
            attn = block.attn_temp
            for layer in (attn.to_q, attn.to_k, attn.to_v, attn.to_out[0]):
                weight = torch.empty(layer.weight.shape)
                nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
                layer.weight.copy_(weight)
                if layer.bias is not None:
                    bound = 1 / math.sqrt(layer.in_features)
                    layer.bias.copy_(torch.empty(layer.bias.shape).uniform_(-bound, bound, generator=generator))
            attn.to_out[0].weight.zero_()
            if zero_bias:
                attn.to_out[0].bias.zero_()
            block.norm_temp.weight.fill_(1.0)
            block.norm_temp.bias.zero_()


def save_lora(unet: nn.Module, path: str | Path, metadata: dict, dtype: torch.dtype = torch.float32) -> Path:
    """Write the adapters in diffusers' LoRA format, with the peft config diffusers reads back and VidSynth's metadata.

    As diffusers' ``StableDiffusionLoraLoaderMixin.save_lora_weights`` writes them (train_dreambooth_lora.py):
    ``convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))`` under the ``unet.`` prefix, the
    adapter's ``LoraConfig`` in ``lora_adapter_metadata``; here atomically, with ``metadata`` added.
    """
    path = Path(path)
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    tensors = {f"unet.{key}": value.detach().to("cpu", dtype).contiguous() for key, value in layers.items()}
    config = unet.peft_config["default"].to_dict()
    config = {f"unet.{key}": sorted(value) if isinstance(value, set) else value for key, value in config.items()}
    header = {
        "format": "pt",
        LORA_ADAPTER_METADATA_KEY: json.dumps(config, indent=2, sort_keys=True),
        METADATA_KEY: json.dumps(metadata),
    }
    with atomic_path(path) as tmp:
        save_file(tensors, tmp, metadata=header)
    return path
