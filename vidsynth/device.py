"""The device a command runs on: ``auto`` (CUDA, else Apple's MPS, else the CPU) or the one named, if present."""

import torch

from vidsynth.errors import VidSynthError


def resolve_device(name: str) -> torch.device:
    """``name`` (auto | cpu | cuda | cuda:N | mps) as a device torch has here; refused with the fix otherwise."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise VidSynthError(f"unknown device {name!r}. Use auto, cpu, cuda, cuda:N or mps") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise VidSynthError(f"device {name} asked but torch sees no CUDA GPU. Use --device cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise VidSynthError(f"device {name} asked but MPS is not available. Use --device cpu")
    return device
