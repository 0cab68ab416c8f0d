"""Per-frame labels for footage: class ids from time ranges in a CSV, or vectors from a CSV or NPY file.

Time ranges: a CSV whose header is ``video,start,end,label`` (times in seconds) or
``video,start_frame,end_frame,label`` (source frame numbers); the header chooses the unit. Ranges are
half-open, ``[start, end)``, so ``0,4`` and ``4,8`` touch without overlapping; a frame at time
``i / fps`` belongs to the range that contains that time. The ``video`` column names a source by its path
under the footage folder, its file name or its stem; it may be left out when there is one source. Class
names are sorted, and a frame's class id is its label's place in that list. Frames no range covers get
:data:`UNLABELLED` (the dataset leaves out the windows that contain one); a source with no range at all,
overlapping ranges and ranges outside the source are refused.

Vectors (e.g. 17x2 pose keypoints, flattened to 34 numbers per frame): a ``.npy`` array of shape
``(frames, ...)`` for a single source, a ``.npz`` with one such array per source (keyed like the
``video`` column), or a CSV with header ``video,frame,<one column per number>`` (``video`` optional) and
one row per frame. Every source needs exactly one vector per frame.
"""

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from vidsynth.errors import VidSynthError

UNLABELLED = -1  # class id of a frame no time range covers
_EPS = 1e-3  # of a frame: times written with a few decimals still land on the frame they mean
_UNITS = {("start", "end"): "seconds", ("start_frame", "end_frame"): "frames"}


class Track(NamedTuple):
    """A source as labels see it: its name under the footage folder, its frame count and rate."""

    name: str
    num_frames: int
    fps: float


@dataclass(frozen=True, eq=False)
class FrameLabels:
    """Per-frame labels of every source: (N,) int64 class ids, or (N, D) float32 vectors, by source name."""

    per_source: dict[str, np.ndarray]
    class_names: list[str] | None  # None for vectors

    @property
    def label_dim(self) -> int | None:
        """D of the vectors (None for class ids)."""
        return None if self.class_names is not None else next(iter(self.per_source.values())).shape[1]


def _match(value: str, tracks: list[Track], where: str) -> Track:
    """The track a ``video`` value names: its path under the folder, its file name or its stem."""
    for key in (lambda t: t.name, lambda t: Path(t.name).name, lambda t: Path(t.name).stem):
        found = [t for t in tracks if key(t) == value]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise VidSynthError(f"{where}: {value!r} matches several sources. Name it by its path under data.path.")
    known = ", ".join(t.name for t in tracks[:5]) + (", ..." if len(tracks) > 5 else "")
    raise VidSynthError(f"{where}: no source is called {value!r} (found: {known}). Fix the name or data.path.")


def _track_of(row: dict, tracks: list[Track], where: str) -> Track:
    if row.get("video") is not None:
        return _match(row["video"].strip(), tracks, where)
    if len(tracks) != 1:
        raise VidSynthError(f"{where}: no video column, but there are {len(tracks)} sources. Add a video column.")
    return tracks[0]


def _number(text: str | None, kind, where: str, column: str):
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise VidSynthError(f"{where}: {column} must be a number, got {text!r}. Fix that row.") from None
    if not math.isfinite(value):
        raise VidSynthError(f"{where}: {column} must be finite, got {text!r}. Fix that row.")
    return value


def _frame_range(row: dict, unit: str, track: Track, where: str) -> tuple[int, int]:
    """The source frames ``[first, stop)`` of one row, checked against the source's length."""
    start_col, end_col = ("start", "end") if unit == "seconds" else ("start_frame", "end_frame")
    kind = float if unit == "seconds" else int
    start, end = (_number(row[c], kind, where, c) for c in (start_col, end_col))
    if start < 0 or end <= start:
        raise VidSynthError(f"{where}: the range {start}-{end} must have 0 <= start < end. Fix that row.")
    scale = track.fps if unit == "seconds" else 1
    length = track.num_frames / scale
    if end * scale > track.num_frames + _EPS:
        raise VidSynthError(
            f"{where}: the range {start}-{end} ({unit}) ends after {track.name}, which lasts {length:g} {unit}. "
            f"Fix the end (at most {length:g})."
        )
    return math.ceil(start * scale - _EPS), math.ceil(end * scale - _EPS)


def _read_ranges(path: Path, rows: list[dict], unit: str, tracks: list[Track], known: list[str] | None) -> FrameLabels:
    spans: dict[str, list[tuple[int, int, str, int]]] = {t.name: [] for t in tracks}
    for line, row in enumerate(rows, start=2):
        where = f"{path.name} line {line}"
        track = _track_of(row, tracks, where)
        label = (row.get("label") or "").strip()
        if not label:
            raise VidSynthError(f"{where}: the label is empty. Give every row a label.")
        spans[track.name].append((*_frame_range(row, unit, track, where), label, line))
    class_names = sorted({label for ranges in spans.values() for *_, label, _ in ranges})
    if known is not None:
        if unknown := [name for name in class_names if name not in known]:
            raise VidSynthError(
                f"{path.name}: unknown label {unknown[0]!r}; the model knows {', '.join(known)}. Use one of those."
            )
        class_names = list(known)
    per_source = {}
    for track in tracks:
        ranges = sorted(spans[track.name])
        if not ranges:
            raise VidSynthError(f"{path.name} has no range for {track.name}. Label it, or move it out of data.path.")
        ids = np.full(track.num_frames, UNLABELLED, dtype=np.int64)
        for (_, stop, _, line), (first, _, _, next_line) in zip(ranges, ranges[1:], strict=False):
            if first < stop:
                raise VidSynthError(
                    f"{path.name} lines {line} and {next_line} overlap in {track.name}. Make the ranges disjoint "
                    "(ranges are [start, end): one may start where the previous ends)."
                )
        for first, stop, label, _ in ranges:
            ids[first:stop] = class_names.index(label)
        per_source[track.name] = ids
    return FrameLabels(per_source, class_names)


def _checked_vectors(array: np.ndarray, track: Track, where: str) -> np.ndarray:
    if array.ndim < 1 or len(array) != track.num_frames:
        frames = len(array) if array.ndim else 0
        raise VidSynthError(
            f"{where} gives {frames} frames of vectors for {track.name}, which has {track.num_frames} frames. "
            "Give one vector per frame."
        )
    vectors = np.asarray(array, dtype=np.float32).reshape(track.num_frames, -1)
    if not np.isfinite(vectors).all():
        raise VidSynthError(f"{where}: the vectors for {track.name} contain NaN or infinity. Fix them.")
    return vectors


def _read_vector_csv(path: Path, rows: list[dict], columns: list[str], tracks: list[Track]) -> dict[str, np.ndarray]:
    values = [c for c in columns if c not in ("video", "frame")]
    if not values:
        raise VidSynthError(f"{path.name} has a frame column but no value columns. Add one column per number.")
    frames: dict[str, dict[int, list[float]]] = {t.name: {} for t in tracks}
    for line, row in enumerate(rows, start=2):
        where = f"{path.name} line {line}"
        track = _track_of(row, tracks, where)
        frame = _number(row["frame"], int, where, "frame")
        if not 0 <= frame < track.num_frames or frame in frames[track.name]:
            raise VidSynthError(
                f"{where}: frame {frame} of {track.name} is repeated or outside 0..{track.num_frames - 1}. Fix it."
            )
        frames[track.name][frame] = [_number(row[c], float, where, c) for c in values]
    return {
        name: np.array([by_frame[i] for i in sorted(by_frame)], dtype=np.float32).reshape(len(by_frame), len(values))
        for name, by_frame in frames.items()
    }


def _read_csv(path: Path, tracks: list[Track], known: list[str] | None) -> FrameLabels:
    with open(path, newline="", encoding="utf-8-sig") as file:  # -sig: spreadsheets start the file with a BOM
        reader = csv.DictReader(file, skipinitialspace=True)
        columns = [c.strip() for c in reader.fieldnames or []]
        reader.fieldnames = columns
        rows = list(reader)
    for (start, end), unit in _UNITS.items():
        if {start, end, "label"} <= set(columns):
            return _read_ranges(path, rows, unit, tracks, known)
    if "frame" in columns:
        arrays = _read_vector_csv(path, rows, columns, tracks)
        return FrameLabels({t.name: _checked_vectors(arrays[t.name], t, path.name) for t in tracks}, None)
    raise VidSynthError(
        f"{path.name} has the columns {columns}; expected video,start,end,label (seconds), "
        "video,start_frame,end_frame,label (frames) or video,frame,<values> (vectors). Fix its header."
    )


def _read_numpy(path: Path, tracks: list[Track]) -> FrameLabels:
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise VidSynthError(f"Cannot read {path} as a NumPy file ({err}). Save it with numpy.save or savez.") from err
    if isinstance(loaded, np.ndarray):
        if len(tracks) != 1:
            raise VidSynthError(
                f"{path.name} holds one array, but there are {len(tracks)} sources. "
                "Use a .npz with one array per source (keyed by its name)."
            )
        arrays = {tracks[0].name: loaded}
    else:
        with loaded:
            arrays = {_match(key, tracks, path.name).name: loaded[key] for key in loaded.files}
        if missing := [t.name for t in tracks if t.name not in arrays]:
            raise VidSynthError(f"{path.name} has no vectors for {missing[0]}. Add an array for every source.")
    return FrameLabels({t.name: _checked_vectors(arrays[t.name], t, path.name) for t in tracks}, None)


def read_labels(path: str | os.PathLike, tracks: list[Track], class_names: list[str] | None = None) -> FrameLabels:
    """Per-frame labels of ``tracks`` from a range CSV, a vector CSV, a ``.npy`` or a ``.npz`` file.

    ``class_names``: the classes a model was trained with (a range CSV's ids then index this list, and a
    label outside it is refused), e.g. for labels given at sampling; by default, the labels the file uses.
    """
    path = Path(path).expanduser().absolute()
    if not path.is_file():
        raise VidSynthError(f"Label file not found: {path}. Point data.labels at a CSV, .npy or .npz file, or null.")
    if path.suffix.lower() in (".npy", ".npz"):
        labels = _read_numpy(path, tracks)
    elif path.suffix.lower() == ".csv":
        labels = _read_csv(path, tracks, class_names)
    else:
        raise VidSynthError(f"{path.name}: labels must be a .csv, .npy or .npz file. Convert it to one of those.")
    if labels.class_names is None and len({a.shape[1] for a in labels.per_source.values()}) > 1:
        raise VidSynthError(f"{path.name}: the sources' vectors differ in length. Give every frame the same size.")
    return labels
