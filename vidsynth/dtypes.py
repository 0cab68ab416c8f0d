"""The dtype names configs and flags use, and the torch dtypes they stand for (the one map).

The names are plain text, so the configs that check them are read without importing torch.
"""

DTYPE_NAMES = ("fp32", "fp16", "bf16")
FROZEN_DTYPES = ("fp32", "bf16")  # frozen_dtype: storage of frozen weights while tuning (see frozen_weights.py)
_TORCH_NAMES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def torch_dtype(name: str):
    """``"bf16"`` -> ``torch.bfloat16``; names are checked by the config schemas before they get here."""
    import torch

    return getattr(torch, _TORCH_NAMES[name])
