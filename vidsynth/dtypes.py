"""The dtype names configs and flags use, and the torch dtypes they stand for (the one map)."""

import torch

TORCH_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
FROZEN_DTYPES = ("fp32", "bf16")  # frozen_dtype: storage of frozen weights while tuning (see frozen_weights.py)


def torch_dtype(name: str) -> torch.dtype:
    """``"bf16"`` -> ``torch.bfloat16``; names are checked by the config schemas before they get here."""
    return TORCH_DTYPES[name]
