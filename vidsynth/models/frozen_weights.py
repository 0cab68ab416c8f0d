"""Frozen weights stored in bf16 and computed in the activations' dtype (``frozen_dtype: bf16``).

About 90% of the inflated SD-1.x UNet is frozen during tuning, and nearly all of it sits in the
matrices and kernels of ``nn.Linear`` and ``nn.Conv2d`` layers. Storing those in bf16 halves most of
the model's memory. Computing in bf16 as well (bf16 autocast) is fast on GPUs and on CPUs with
bf16 instructions, but several times slower than float32 on CPUs without them, so the storage
dtype is kept independent of the compute dtype: without autocast each frozen layer computes in
float32, casting its weight (and a lower-precision input) for its own op only; under autocast,
autocast casts as usual.

The cast copy must not be kept for the backward pass (that would bring back the float32 memory),
so the layers use an autograd function that saves the *stored* bf16 weight and casts it again when
the input gradient is needed. Frozen weights get no gradient; norm layers keep float32 (they are
tiny). Parameter names and the state dict are unchanged: the layers are swapped by class only.

The cast copies go into one reusable buffer per thread, device and dtype (as large as the largest
weight): a fresh allocation of tens of MB costs page faults that take longer than the cast itself.
"""

import threading

import torch
import torch.nn.functional as F
from torch import nn

_scratch = threading.local()  # (device, dtype) -> 1-D buffer for the cast copy of one weight at a time


def _cast(weight: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``weight`` in ``dtype``, copied into the reusable buffer: valid until the next call in this thread."""
    if weight.dtype == dtype:
        return weight
    buffers = _scratch.__dict__.setdefault("buffers", {})
    key = (weight.device, dtype)
    if key not in buffers or buffers[key].numel() < weight.numel():
        buffers[key] = torch.empty(weight.numel(), dtype=dtype, device=weight.device)
    return buffers[key][: weight.numel()].view(weight.shape).copy_(weight)


def _operands(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> tuple:
    """The op's inputs: as they are under autocast (it casts), else float32."""
    if torch.is_autocast_enabled(x.device.type):
        return x, weight, bias
    return x.float(), _cast(weight, torch.float32), None if bias is None else bias.float()


class _FrozenLinearFunction(torch.autograd.Function):
    """``F.linear`` with a frozen weight: backward saves the stored weight, not a cast copy."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(weight)
        ctx.input_dtype = x.dtype
        return F.linear(*_operands(x, weight, bias))

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (weight,) = ctx.saved_tensors
        grad_input = grad_output.matmul(_cast(weight, grad_output.dtype))  # (..., in)
        return grad_input.to(ctx.input_dtype), None, None


class _FrozenConv2dFunction(torch.autograd.Function):
    """``F.conv2d`` with a frozen weight: backward saves the stored weight, not a cast copy."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation, groups) -> torch.Tensor:
        ctx.save_for_backward(weight)
        ctx.input_shape, ctx.input_dtype = x.shape, x.dtype
        ctx.conv = (stride, padding, dilation, groups)
        return F.conv2d(*_operands(x, weight, bias), stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (weight,) = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.conv
        grad_input = torch.nn.grad.conv2d_input(
            ctx.input_shape, _cast(weight, grad_output.dtype), grad_output, stride, padding, dilation, groups
        )  # (b, c_in, h, w)
        return grad_input.to(ctx.input_dtype), None, None, None, None, None, None


class FrozenLinear(nn.Linear):
    """An ``nn.Linear`` whose frozen weight may be stored in another dtype than it computes in."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _FrozenLinearFunction.apply(x, self.weight, self.bias)


class FrozenConv2d(nn.Conv2d):
    """An ``nn.Conv2d`` whose frozen weight may be stored in another dtype than it computes in."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = (self.stride, self.padding, self.dilation, self.groups)
        return _FrozenConv2dFunction.apply(x, self.weight, self.bias, *conv)


def compute_dtype(model: nn.Module) -> torch.dtype:
    """The dtype ``model`` computes in, for the tensors a pipeline feeds it.

    diffusers' ``model.dtype`` is its first floating-point parameter's: once the frozen layers are
    stored in bf16 that is the storage dtype, and inputs cast to it (latents between DDIM steps,
    text embeddings) would be rounded to bf16 although every layer computes in float32. So the
    layers that only store their weights in another dtype are skipped.
    """
    for module in model.modules():
        if isinstance(module, (FrozenLinear, FrozenConv2d)):
            continue
        for param in module.parameters(recurse=False):
            if param.is_floating_point():
                return param.dtype
    return torch.float32


def _is_frozen(module: nn.Module) -> bool:
    return not any(param.requires_grad for param in module.parameters(recurse=False))


def store_frozen_weights(model: nn.Module, dtype: torch.dtype) -> int:
    """Store the weights of every frozen Linear and (zero-padded) Conv2d layer in ``dtype``; returns how many layers.

    Call after the trainable parameters are selected. Layers with a trainable parameter, norms and
    anything else keep their dtype. diffusers memory-maps safetensors weights; converting reads every
    page of the file, and the mapping (counted in the resident set) lives while any tensor still
    points into it, so the parameters left in their dtype are copied into memory of their own.
    """
    count = 0
    for module in model.modules():
        if type(module) is nn.Linear and _is_frozen(module):
            module.__class__ = FrozenLinear
        elif type(module) is nn.Conv2d and _is_frozen(module) and module.padding_mode == "zeros":
            if isinstance(module.padding, str):
                continue  # "same"/"valid" padding: conv2d_input needs explicit numbers
            module.__class__ = FrozenConv2d
        else:
            continue
        module.to(dtype)
        count += 1
    for param in model.parameters():
        if param.dtype != dtype:
            param.data = param.data.clone()  # off a memory-mapped checkpoint, so its read pages are released
    return count
