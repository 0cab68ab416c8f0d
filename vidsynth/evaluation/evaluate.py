"""Score edited clips and animations with the built-in metrics: print a markdown table, write it as markdown and JSON.

    python -m vidsynth.evaluate OUTPUT_DIR_OR_MP4 [more ...] [--clip-model ID_OR_PATH] [--out STEM] [--device cpu]

Each edited MP4 is paired with the sidecar JSON that inference.py writes next to it; the sidecar says
which prompt and method made it and which source frames it was made from, so the source frames for the
flicker ratio are read back at exactly those indices and that size. One row per MP4, i.e. per clip and
method, so baselines and Tune-A-Video edits of the same clip sit side by side. An MP4 whose sidecar says
``"kind": "animation"`` (``python -m vidsynth.animate``) is scored by :mod:`vidsynth.evaluation.animation`:
image alignment in place of text alignment, and its own flicker; the table's kind column says which applies.
An edit limited to a region (its sidecar names its ``<prompt>.mask.mp4``) also gets "change outside region":
the mean absolute difference from the source, in pixel levels (0-255), over the pixels outside the mask;
the column appears only when such an edit is among the rows.

Folders are searched with their subfolders, because inference.py writes each run into its own
``edits/<time>/`` (and ``--compare`` into ``img2img/`` and ``tuneavideo/`` below that). The results
go next to what was evaluated, ``results.md`` and ``results.json`` in the first folder given, never
into whatever the current directory happens to be.
"""

import argparse
import json
import logging
from collections.abc import Iterable
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
from tqdm import tqdm

from vidsynth import events
from vidsynth.atomic import atomic_path
from vidsynth.errors import VidSynthError
from vidsynth.evaluation.animation import animation_row, load_animation_sidecar
from vidsynth.evaluation.metrics import (
    DEFAULT_CLIP_MODEL,
    ClipScorer,
    change_outside,
    flicker,
    frame_consistency_all_pairs,
    frame_consistency_consecutive,
    text_alignment,
)
from vidsynth.media.span import frame_indices_from
from vidsynth.media.video import read_frames
from vidsynth.media.writers import write_json

logger = logging.getLogger(__name__)

# Markdown column header -> (row key, number format); the JSON rows carry the same keys. The last two
# columns are shown only when an animation is among the rows, so a table of edits alone reads as before.
_COLUMNS = {
    "clip": ("clip", "{}"),
    "method": ("method", "{}"),
    "prompt": ("prompt", "{}"),
    "frames": ("frames", "{}"),
    "consistency all-pairs": ("consistency_all_pairs", "{:.2f}"),
    "consistency consecutive": ("consistency_consecutive", "{:.2f}"),
    "text alignment": ("text_alignment", "{:.2f}"),
    "image alignment": ("image_alignment", "{:.2f}"),
    "flicker": ("flicker", "{:.3f}"),
    "change outside region": ("change_outside_region", "{:.2f}"),
    "kind": ("kind", "{}"),
}
_REGION = "change outside region"  # shown only when a region edit is among the rows
_EDIT_COLUMNS = [header for header in _COLUMNS if header not in ("image alignment", "kind", _REGION)]
# What the flicker column means for each kind of row.
_FLICKER = {
    "edit": "the edit's frame-to-frame change ÷ its source's (1.0 = as steady as the source)",
    "animation": "the mean frame-to-frame change, in units of the pixel range (0 = frozen)",
    "extension": "the generated frames' change (from the clip's last frame on) ÷ the clip's own frames' "
    "(1.0 = as steady as the clip)",
}


def _edits_in(folder: Path) -> tuple[dict[Path, str], list[Path]]:
    """The edited MP4s under ``folder`` (labelled by their path in it) and the MP4s there without a sidecar.

    Hidden files and folders (half-written temporaries, caches) are skipped. An MP4 without a sidecar is
    not an edit (``--compare``'s side-by-side grids): the caller skips it, or names it when nothing else is found.
    """
    edits, others = {}, []
    for video in sorted(folder.rglob("*.mp4")):
        relative = video.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if video.with_suffix(".json").is_file():
            edits[video] = relative.with_suffix("").as_posix()
        else:
            others.append(video)
    return edits, others


def find_videos(paths: Iterable[str | Path]) -> dict[Path, str]:
    """Edited MP4s given directly or found in folders and their subfolders, each with the label of its row."""
    videos, skipped = {}, []
    for path in map(Path, paths):
        if path.is_dir():
            edits, others = _edits_in(path)
            videos.update(edits)
            skipped += others
        elif path.is_file() and path.suffix.lower() == ".mp4":
            videos[path] = path.stem
        else:
            raise VidSynthError(
                f"{path} is neither an MP4 file nor a folder. Pass edited MP4s or the folders holding them."
            )
    if not videos and skipped:
        raise _no_sidecar(skipped[0])
    if not videos:
        raise VidSynthError("No MP4 files found in the given paths. Pass the output folder of inference.py.")
    if skipped:
        names = ", ".join(str(video) for video in skipped[:3]) + (", ..." if len(skipped) > 3 else "")
        logger.info("Skipping %d MP4(s) without a sidecar (not edits, e.g. --compare grids): %s", len(skipped), names)
    return videos


def _no_sidecar(video: Path) -> VidSynthError:
    return VidSynthError(
        f"{video} has no sidecar {video.with_suffix('.json').name}; it is written by inference.py (and "
        "python -m vidsynth.animate) next to each video it makes. Evaluate videos made by those, or re-run them."
    )


def load_sidecar(video: Path) -> dict:
    """The sidecar JSON next to ``video``, checked for the keys evaluation needs (an animation's or an edit's)."""
    sidecar = video.with_suffix(".json")
    if not sidecar.is_file():
        raise _no_sidecar(video)
    try:
        meta = json.loads(sidecar.read_text())
        if isinstance(meta, dict) and meta.get("kind") == "animation":
            return load_animation_sidecar(sidecar, meta)
        mask = video.parent / meta["region"]["mask"] if (meta.get("region") or {}).get("mask") else None
        if mask is not None and not mask.is_file():
            raise VidSynthError(
                f"mask video {mask} named by the sidecar {sidecar.name} is missing. Re-run inference.py"
            )
        return {
            "kind": "edit",
            "prompt": str(meta["prompt"]),
            "method": str(meta["method"]),
            "width": int(meta["width"]),
            "height": int(meta["height"]),
            "source_path": Path(meta["source"]["path"]),
            "frame_indices": frame_indices_from(meta["source"]["frame_indices"]),
            "mask": mask,
        }
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise VidSynthError(
            f"Sidecar {sidecar} is unreadable or incomplete ({type(err).__name__}: {err}). "
            "Re-run inference.py to rewrite it."
        ) from err


def read_edit_and_source(video: Path, meta: dict) -> tuple[np.ndarray, np.ndarray]:
    """Edited frames and the matching source frames, both uint8 (F, H, W, 3)."""
    edited = iio.imread(video, index=None, plugin="FFMPEG")  # (F, H, W, 3)
    if len(edited) < 2:
        raise VidSynthError(
            f"{video} has {len(edited)} frame; frame consistency and flicker compare frames, so they need at least 2. "
            "Evaluate clips edited with 2 or more frames."
        )
    if len(edited) != len(meta["frame_indices"]) or edited.shape[1:3] != (meta["height"], meta["width"]):
        raise VidSynthError(
            f"{video} has {len(edited)} frames of {edited.shape[2]}x{edited.shape[1]} but its sidecar says "
            f"{len(meta['frame_indices'])} frames of {meta['width']}x{meta['height']}. "
            "Re-run inference.py for this clip."
        )
    if not meta["source_path"].is_file():
        raise VidSynthError(
            f"Source video {meta['source_path']} of {video} is missing. "
            "Put it back at that path or re-run inference.py."
        )
    source = read_frames(meta["source_path"], meta["frame_indices"], meta["width"], meta["height"])  # (F, H, W, 3)
    return edited, source


def evaluate(
    paths: Iterable[str | Path],
    clip_model: str | Path | ClipScorer = DEFAULT_CLIP_MODEL,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    progress: bool = True,
) -> list[dict]:
    """Score every edited or animated MP4 found in ``paths``; one dict per MP4 with its metrics.

    ``clip_model`` is a hub id, a local CLIP folder, or an already loaded :class:`ClipScorer` (so a
    benchmark scoring many runs loads CLIP once). ``progress``: a bar over the clips (off where a caller shows its own).
    """
    videos = find_videos(paths)
    sidecars = [load_sidecar(video) for video in videos]  # all checked before the slow work starts
    scorer = clip_model if isinstance(clip_model, ClipScorer) else ClipScorer(clip_model, device=device, dtype=dtype)
    rows = []
    for (video, label), meta in zip(
        events.steps(tqdm(videos.items(), desc="Evaluating clips", unit="clip", disable=not progress), "evaluating"),
        sidecars,
        strict=True,
    ):
        score = _edit_row if meta["kind"] == "edit" else animation_row
        rows.append(score(video, label, meta, scorer))
    return rows


def _edit_row(video: Path, label: str, meta: dict, scorer: ClipScorer) -> dict:
    """The row of one edit: its consistency, its alignment with its prompt, its flicker against its source."""
    edited, source = read_edit_and_source(video, meta)  # (F, H, W, 3) each
    image_emb = scorer.image_embeddings(edited)  # (F, D)
    return {
        "clip": label,
        "video": str(video.resolve()),
        "kind": "edit",
        "method": meta["method"],
        "prompt": meta["prompt"],
        "frames": len(edited),
        "consistency_all_pairs": frame_consistency_all_pairs(image_emb),
        "consistency_consecutive": frame_consistency_consecutive(image_emb),
        "text_alignment": text_alignment(image_emb, scorer.text_embedding(meta["prompt"])),
        "image_alignment": None,
        "flicker": flicker(edited, source),
        "change_outside_region": None if meta["mask"] is None else change_outside(edited, source, meta["mask"]),
    }


def _cell(value: object, fmt: str) -> str:
    """A markdown table cell: blank for a metric that does not apply, escaped where text would break the table."""
    return "" if value is None else fmt.format(value).replace("|", "\\|").replace("\n", " ")


def format_markdown(rows: list[dict], clip_model: str) -> str:
    """The results as a markdown table, with the CLIP model named above it (and, with animations, a kind
    column and what flicker means for each kind below it)."""
    kinds = list(dict.fromkeys(row["kind"] for row in rows))
    if kinds == ["edit"]:
        columns = list(_EDIT_COLUMNS)
        intro = "Consistency and text alignment are 100 × cosine; flicker 1.0 = as steady as the source."
    else:
        columns = [header for header in _COLUMNS if header != _REGION]
        intro = (
            "Consistency, text alignment and image alignment (of each frame with the animated image) are 100 × cosine."
        )
    if any(row.get("change_outside_region") is not None for row in rows):
        columns.insert(columns.index("flicker") + 1, _REGION)
        intro += " Change outside region: mean |edit - source| in pixel levels outside the mask."
    lines = [f"CLIP model: `{clip_model}`. {intro}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = (_cell(row.get(_COLUMNS[header][0]), _COLUMNS[header][1]) for header in columns)
        lines.append("| " + " | ".join(cells) + " |")
    if kinds != ["edit"]:
        lines += ["", "Flicker of " + "; of ".join(f"{kind}s: {_FLICKER[kind]}" for kind in kinds) + "."]
    return "\n".join(lines) + "\n"


def write_results(rows: list[dict], clip_model: str, out: str | Path) -> tuple[Path, Path]:
    """Write ``<out>.md`` and ``<out>.json`` (each atomically); return their paths."""
    out = Path(out)
    if out.suffix in (".md", ".json"):
        out = out.with_suffix("")
    markdown = format_markdown(rows, clip_model)
    json_path = write_json(out.with_name(out.name + ".json"), {"clip_model": clip_model, "rows": rows})
    md_path = out.with_name(out.name + ".md")
    with atomic_path(md_path) as tmp:
        tmp.write_text(markdown)
    return md_path, json_path


def default_out(paths: list[str]) -> Path:
    """``results`` in the first folder given (the folder of the first MP4 when only files are given)."""
    first = next((Path(p) for p in paths if Path(p).is_dir()), Path(paths[0]).parent)
    return first / "results"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vidsynth.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument(
        "paths",
        nargs="+",
        help="edited or animated MP4s or folders of them, searched with their subfolders (sidecar JSON each)",
    )
    parser.add_argument(
        "--clip-model", default=DEFAULT_CLIP_MODEL, help="CLIP hub id, local folder, or tiny (offline, random weights)"
    )
    parser.add_argument(
        "--out", help="output stem: writes <out>.md and <out>.json (default: results.* in the first folder given)"
    )
    parser.add_argument("--device", default="cpu", help="torch device for CLIP, e.g. cpu or cuda")
    args = parser.parse_args(argv)
    rows = evaluate(args.paths, args.clip_model, device=args.device)
    md_path, json_path = write_results(rows, args.clip_model, args.out or default_out(args.paths))
    print(format_markdown(rows, args.clip_model), end="")
    logger.info("Evaluated %d videos: table in %s, rows in %s", len(rows), md_path, json_path)
    events.emit("done", output=str(json_path))
