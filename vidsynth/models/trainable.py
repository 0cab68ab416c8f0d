"""Which parameters one-shot tuning trains, and the small file that holds them.

A tuned result is only what differs from the base model: the temporal layers that inflation adds
and the modules that were trained (by default ``attn1.to_q``, ``attn2.to_q``, ``attn_temp``). For
SD-1.x that is 74.4 M parameters, 297.5 MB in float32 (148.8 MB in fp16 or bf16), instead of a
multi-GB pipeline per clip. The file is safetensors;
its metadata names the base model, the inflation options and the trained modules, so loading can
check the key set exactly and fail loudly on any mismatch.
"""

import json
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from vidsynth.atomic import atomic_path
from vidsynth.errors import VidSynthError
from vidsynth.models.unet import VideoUNet

DEFAULT_TRAINABLE_MODULES = ("attn1.to_q", "attn2.to_q", "attn_temp")
FORMAT = "vidsynth-trained-params-v1"


def trainable_parameter_names(unet: torch.nn.Module, module_suffixes: Sequence[str]) -> list[str]:
    """Names of all parameters of modules whose name ends with one of ``module_suffixes``."""
    names = []
    for suffix in module_suffixes:
        matched = [name for name, _ in unet.named_modules() if name.endswith(suffix)]
        if not matched:
            raise VidSynthError(
                f"trainable module {suffix!r} matches no module of the UNet. "
                f"Use module-name suffixes such as {', '.join(DEFAULT_TRAINABLE_MODULES)}, attn1.to_k, ff.net"
            )
        for module_name in matched:
            names += [f"{module_name}.{p}" for p, _ in unet.get_submodule(module_name).named_parameters()]
    return sorted(set(names))


def select_trainable(unet: torch.nn.Module, module_suffixes: Sequence[str]) -> list[str]:
    """Freeze everything, then unfreeze the selected modules; returns the trainable names."""
    names = set(trainable_parameter_names(unet, module_suffixes))
    for name, param in unet.named_parameters():
        param.requires_grad_(name in names)
    return sorted(names)


def _saved_names(
    unet: VideoUNet, module_suffixes: Sequence[str], lora: dict | None = None, adapters: bool = False
) -> list[str]:
    """What a file holds: the temporal layers and the tuned modules; with LoRA (``lora``: its record) the temporal
    layers unless they have adapters (their start comes back from the seed), plus the adapters with ``adapters``."""
    if lora is None:
        return sorted(unet.temporal_keys() | set(trainable_parameter_names(unet, module_suffixes)))
    names = set() if lora["temporal"] else unet.temporal_keys()
    if adapters:
        names |= {name for name, _ in unet.named_parameters() if ".lora_" in name}
    return sorted(names)


def save_trained(
    unet: VideoUNet,
    path: str | Path,
    base_model: str,
    trainable_modules: Sequence[str],
    extra_metadata: dict | None = None,
    dtype: torch.dtype = torch.float32,
    lora: dict | None = None,
    adapters: bool = False,
) -> Path:
    """Write the new and trained parameters to ``path`` in ``dtype``, atomically.

    float32 keeps them exactly (checkpoints must, so that a resumed run ends where an uninterrupted
    one does); fp16 or bf16 halves a result, rounding each parameter to 16 bits. ``lora``: the record of a
    LoRA run (:class:`vidsynth.models.lora.LoraSpec`), whose adapters go in the file only with ``adapters``
    (checkpoints); a result keeps them in diffusers' LoRA file. The file may hold no tensor at all.
    """
    path = Path(path)
    state = unet.state_dict()
    names = _saved_names(unet, trainable_modules, lora, adapters)
    tensors = {name: state[name].detach().to("cpu", dtype).contiguous() for name in names}
    metadata = {
        "format": FORMAT,
        "base_model": str(base_model),
        "frame_norm": unet.config.frame_norm,
        "temporal_out_bias_init": unet.config.temporal_out_bias_init,
        "trainable_modules": json.dumps(list(trainable_modules)),
        **({"lora": json.dumps(lora), "adapters": json.dumps(adapters)} if lora is not None else {}),
        **{key: json.dumps(value) for key, value in (extra_metadata or {}).items()},
    }
    with atomic_path(path) as tmp:
        save_file(tensors, tmp, metadata=metadata)
    return path


def read_trained_metadata(path: str | Path) -> dict:
    """The metadata of a trained-parameter file (JSON values decoded), without loading tensors."""
    path = Path(path)
    if not path.is_file():
        raise VidSynthError(f"trained-parameter file {path} does not exist. Point at the result of train.py")
    try:
        with safe_open(path, framework="pt") as f:
            raw = f.metadata() or {}
    except Exception as err:  # safetensors raises several types for a damaged header
        raise VidSynthError(f"{path} is not a readable safetensors file ({err}). Re-run train.py") from err
    if raw.get("format") != FORMAT:
        raise VidSynthError(f"{path} is not a VidSynth trained-parameter file (format {raw.get('format')!r})")
    plain = {"format", "base_model", "frame_norm", "temporal_out_bias_init"}
    return {key: value if key in plain else json.loads(value) for key, value in raw.items()}


def load_trained(unet: VideoUNet, path: str | Path) -> dict:
    """Load a trained-parameter file into ``unet``; the key set must match exactly.

    ``load_state_dict`` copies each tensor into the parameter it replaces, in that parameter's dtype,
    so a result saved in fp16 or bf16 (``save_dtype``) loads into a float32 UNet. Returns the file's
    metadata.
    """
    metadata = read_trained_metadata(path)
    if metadata["frame_norm"] != unet.config.frame_norm:
        raise VidSynthError(
            f"{path} was trained with frame_norm={metadata['frame_norm']!r} but the UNet uses "
            f"{unet.config.frame_norm!r}. Build the UNet with the file's frame_norm"
        )
    with safe_open(path, framework="pt") as f:
        tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
    lora, adapters = metadata.get("lora"), metadata.get("adapters", False)
    expected = set(_saved_names(unet, metadata["trainable_modules"], lora, adapters))
    missing, extra = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
    if missing or extra:
        raise VidSynthError(
            f"{path} does not fit this UNet: {len(missing)} missing keys {missing[:3]}, {len(extra)} unexpected keys "
            f"{extra[:3]}. Was it trained on another base model? Its base model is {metadata['base_model']!r}"
        )
    result = unet.load_state_dict(tensors, strict=False)
    assert not result.unexpected_keys
    return metadata
