"""Cache files named by what their content depends on: the inverted latents, the control maps and the region masks
of a span.

A file is ``<cache>/<name>-<hash of its key><suffix>``: the key lists everything the content depends
on (the model's and the clip's files by name, size and modification time, the span, the size, the
settings), so a changed input gives another name and a stale file is never read. The cache folder
is ``cache_dir`` when given, else the tuning run's ``.cache``, else the user's cache folder.
"""

import hashlib
import json
import os
from pathlib import Path
from typing import Protocol


class Span(Protocol):
    """The frames results are made from (a :class:`vidsynth.media.span.ClipSpan`)."""

    path: str
    start_frame: int
    stride: int
    num_frames: int
    width: int
    height: int
    window: int
    window_overlap: int


def fingerprint(ref: str) -> list:
    """What identifies a model or clip for the cache: (name, size, mtime) of its files, or a hub id."""
    path = Path(ref)
    if not path.exists():
        return [ref]
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file() and ".cache" not in p.parts)
    return [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in files]


def span_key(span: Span) -> dict:
    """The part of a key that names the frames: the clip's files, the span and the size."""
    return {
        "clip": [fingerprint(span.path), span.start_frame, span.stride],
        "frames": span.num_frames,
        "size": [span.width, span.height],
    }


def cache_file(cache_dir: str | None, run: str | None, name: str, key: dict, suffix: str) -> Path:
    """``<cache>/<name>-<hash of key><suffix>``; the cache is ``cache_dir``, else the run's .cache, else the user's."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    if cache_dir:
        folder = Path(cache_dir).expanduser()
    elif run:
        folder = Path(run) / ".cache"
    else:
        folder = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vidsynth"
    return folder.absolute() / f"{name}-{digest}{suffix}"


def windows_key(span: Span) -> list[int] | None:
    """The part of a key that names how the UNet ran over the span: its windows, when it needs more than one."""
    return [span.window, span.window_overlap] if span.num_frames > span.window else None


def inversion_cache_path(
    cache_dir: str | None,
    run: str | None,
    model_files: list[str],
    span: Span,
    steps: int,
    dtype: str,
    device_type: str,
    loras: dict | None = None,
) -> Path:
    """``<cache>/inversion-<hash>.pt``, keyed by model, clip span, size, windows, steps, dtype and device type.

    The inversion runs without ControlNets, so the controls are not part of the key; it runs with the
    LoRAs fused in, so ``loras`` (the tuned adapters' scale and the stacked LoRAs, when not the default) is.
    """
    key = {
        **span_key(span),
        "model": [fingerprint(ref) for ref in model_files],
        "windows": windows_key(span),
        "steps": steps,
        "dtype": dtype,
        "device": device_type,
        **({"loras": loras} if loras else {}),
    }
    return cache_file(cache_dir, run, "inversion", key, ".pt")


class Region(Protocol):
    """What a region's masks are made from (a :class:`vidsynth.config.region.RegionSpec`)."""

    source: str
    text: str | None
    threshold: float
    dilate: int
    word_prompt: str | None
    point: tuple[float, float] | None
    box: tuple[float, float, float, float] | None
    segment_model: str | None
    segment_text_model: str | None


def mask_cache_path(
    cache_dir: str | None,
    run: str | None,
    span: Span,
    region: Region,
    dtype: str,
    device_type: str,
    model_files: list[str],
    steps: int,
    loras: dict | None = None,
) -> Path:
    """``<cache>/mask-<hash>.pt``: a region's masks, keyed by span, size, the region's source and settings, dtype and
    device type; a word's masks also by what the UNet they come from ran with: the model (``model_files``) with
    its ``loras`` fused in (as for :func:`inversion_cache_path`), the inversion ``steps`` and the windows."""
    key = {**span_key(span), "source": region.source, "text": region.text, "threshold": region.threshold}
    key.update(dilate=region.dilate, device=device_type, dtype=dtype)
    if region.source == "word":
        key.update(word_prompt=region.word_prompt, model=[fingerprint(ref) for ref in model_files], steps=steps)
        key.update(windows=windows_key(span), **({"loras": loras} if loras else {}))
    else:
        key.update(point=region.point, box=region.box, segment_model=region.segment_model)
        key["segment_text_model"] = region.segment_text_model
    return cache_file(cache_dir, run, "mask", key, ".pt")
