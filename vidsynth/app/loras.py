"""The page's LoRA choices: a LoRA rank (or full tuning) when tuning, style LoRAs when editing.

A tuning job gets ``lora_rank`` and ``lora_temporal`` in the config ``train.py`` runs (and its checks,
so temporal adapters without a rank are refused there). A style LoRA is only ever one of the files
the app lists, by its name in ``checkpoints/loras/`` (:func:`vidsynth.app.models.lora_files`): a typed
path, a ``..`` or a hub id is refused, so nobody who reaches the page makes the server read a file of
their choosing. Each becomes ``inference.py``'s ``--lora FILE:SCALE``.
"""

import math
from pathlib import Path

from vidsynth.errors import VidSynthError

RANKS = {"full": None, "4": 4, "16": 16}  # the page's choices: full tuning, or adapters of that rank
RANK_LABELS = {"full": "full tuning", "4": "LoRA, rank 4", "16": "LoRA, rank 16"}


def lora_rank(choice: str | int | None) -> int | None:
    """``lora_rank`` of the page's choice (None: full tuning); a choice the page does not offer is refused."""
    key = str(choice) if isinstance(choice, int) else choice
    if key not in RANKS:
        raise VidSynthError(f"LoRA rank {choice!r} is not one the app offers. Pick one of {', '.join(RANKS)}")
    return RANKS[key]


def style_loras(chosen: list[str] | None, scales: list[float], offered: dict[str, Path]) -> list[str]:
    """``FILE:SCALE`` of each chosen style LoRA, by its name in ``offered``; ``scales``: none (1.0 each), one for
    all, or one per LoRA."""
    chosen = list(chosen or [])
    for name in chosen:
        if name not in offered:
            listed = ", ".join(offered) or "none yet"
            raise VidSynthError(
                f"style LoRA {name!r} is not one this app offers. Pick one of the LoRA files in checkpoints/loras/: "
                f"{listed} (a file put there is offered once the app restarts)"
            )
    if (scales and not chosen) or len(scales) not in (0, 1, len(chosen)):
        raise VidSynthError(
            f"lora_scales gives {len(scales)} scales for {len(chosen)} style LoRAs. Give one per LoRA, one for all, "
            "or none for 1.0 each"
        )
    for scale in scales:
        if not math.isfinite(scale):
            raise VidSynthError(f"lora_scales must hold numbers, got {scale}. Use e.g. 0.8")
    each = scales * len(chosen) if len(scales) == 1 else scales or [1.0] * len(chosen)
    return [f"{offered[name]}:{scale:g}" for name, scale in zip(chosen, each, strict=True)]
