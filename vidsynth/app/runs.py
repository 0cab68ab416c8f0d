"""Finished runs and edits, read from disk: the app keeps no state of its own, so nothing is lost on a restart,
and runs made with ``train.py`` and edits made with ``inference.py`` show up like the app's own.

A run is a folder of ``<outputs>`` with the finished result (``tuned_unet.safetensors``); its
validation samples are ``samples/sample-<step>/grid.gif``; its edits are the folders of ``edits/``
(temporaries, hidden, are skipped). An edit folder holds, per prompt, an MP4 and its sidecar, the GIF
grid, the config, and the metrics once scored (``results.json``); with ``--compare``, a folder per
method and a side-by-side MP4 and GIF per prompt.
"""

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from vidsynth.app.served import RESULT_SUFFIXES
from vidsynth.config import InferenceConfig, load_config
from vidsynth.naming import unique_slugs
from vidsynth.run_folder import CONFIG_FILE, RESULT_FILE

METRIC_COLUMNS = ("edit", "method", "prompt", "frames", "CLIP all pairs", "CLIP consecutive", "CLIP text", "flicker")


def _visible_dirs(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")] if folder.is_dir() else []


def finished_runs(outputs: Path) -> list[str]:
    """Names of the finished runs in ``outputs``, the newest first."""
    runs = [p for p in _visible_dirs(outputs) if (p / RESULT_FILE).is_file()]
    return [p.name for p in sorted(runs, key=lambda p: (p / RESULT_FILE).stat().st_mtime, reverse=True)]


def run_edits(run: Path) -> list[str]:
    """Names of the finished edits of ``run`` (``edits/<time>``), the newest first."""
    edits = [p for p in _visible_dirs(run / "edits") if (p / CONFIG_FILE).is_file()]
    return [p.name for p in sorted(edits, key=lambda p: (p / CONFIG_FILE).stat().st_mtime, reverse=True)]


def validation_samples(run: Path) -> list[tuple[str, str]]:
    """(grid GIF, "step N") of every validation rendered so far, in step order."""
    samples = []
    for folder in _visible_dirs(run / "samples"):
        step = re.fullmatch(r"sample-(\d+)", folder.name)
        if step and (folder / "grid.gif").is_file():
            samples.append((int(step[1]), str(folder / "grid.gif")))
    return [(path, f"step {step}") for step, path in sorted(samples)]


@dataclass
class EditView:
    """What the page shows of one edit."""

    source: Path | None = None  # the clip it was made from
    videos: list[tuple[str, Path]] = field(default_factory=list)  # (caption, MP4): per prompt, or side by side
    grids: list[Path] = field(default_factory=list)
    metrics: list[list] = field(default_factory=list)  # rows of METRIC_COLUMNS
    clip_model: str | None = None  # what scored the metrics
    files: list[Path] = field(default_factory=list)  # the results, for download


def metric(value: float | None, digits: int) -> float | None:
    """A metric rounded for the table; None (blank) where it does not apply (an animation's text alignment)."""
    return None if value is None else round(value, digits)


EDIT_COLUMNS = ("clip", "method", "prompt", "frames", "consistency_all_pairs", "consistency_consecutive",
                "text_alignment", "flicker")  # fmt: skip
_DIGITS = {"flicker": 3}  # other scores: 2 digits; names, counts: as they are
_TEXT = {"clip", "method", "prompt", "kind", "frames"}


def metrics_table(folder: Path, columns: tuple[str, ...] = EDIT_COLUMNS) -> tuple[list[list], str | None]:
    """The rows of the ``results.json`` that evaluate wrote in ``folder``, as the page's table, and its CLIP model."""
    results = folder / "results.json"
    if not results.is_file():
        return [], None
    data = json.loads(results.read_text())
    rows = [
        [row.get(key) if key in _TEXT else metric(row.get(key), _DIGITS.get(key, 2)) for key in columns]
        for row in data["rows"]
    ]
    return rows, data.get("clip_model")


def read_edit(folder: Path) -> EditView:
    """The files of the edit in ``folder``, in the order of its prompts."""
    config = load_config(InferenceConfig, [folder / CONFIG_FILE])
    names = unique_slugs(config.prompts)
    view = EditView()
    compared = [(prompt, folder / f"compare-{name}") for prompt, name in zip(config.prompts, names, strict=True)]
    if config.compare:
        view.videos = [(f"source | img2img | Tune-A-Video: {p}", path.with_suffix(".mp4")) for p, path in compared]
        view.grids = [path.with_suffix(".gif") for _, path in compared]
        sidecars = folder / "tuneavideo"
    else:
        view.videos = [(prompt, folder / f"{name}.mp4") for prompt, name in zip(config.prompts, names, strict=True)]
        view.grids = [folder / "grid.gif"]
        sidecars = folder
    view.videos = [(caption, path) for caption, path in view.videos if path.is_file()]
    view.grids = [path for path in view.grids if path.is_file()]
    sidecar = sidecars / f"{names[0]}.json"
    if sidecar.is_file():
        view.source = Path(json.loads(sidecar.read_text())["source"]["path"])
    view.metrics, view.clip_model = metrics_table(folder)
    view.files = sorted(  # results only: its config names absolute paths
        p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".") and p.suffix in RESULT_SUFFIXES
    )
    return view
