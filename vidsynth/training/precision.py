"""Which dtypes tuning computes and stores in.

Two independent levers: ``mixed_precision`` (autocast by accelerate) sets the dtype of the
arithmetic, ``frozen_dtype`` the dtype the *frozen* weights are stored in (see
``vidsynth/models/frozen_weights.py``). Trained parameters, their gradients and Adam's moments always stay float32
so that small updates are not rounded away.
"""


def resolve_mixed_precision(requested: str, device_type: str) -> str:
    """The mixed precision to run with on ``device_type``.

    fp16 autocast needs a GPU (accelerate refuses it on the CPU, and CPU fp16 kernels are slow),
    so on the CPU fp16 runs as bf16, the CPU's half-precision format with fp32's range. The caller
    tells the user when the result differs from the request.
    """
    if requested == "fp16" and device_type == "cpu":
        return "bf16"
    return requested
