"""Per-frame labels as people write them: ``--labels walking:8,sitting:8``, a CSV, or one ``--label`` for the clip.

Runs of ``name:count`` add up to the clip's frames (``walking:8,sitting:8`` is 16 frames). A CSV for a model
trained on class labels holds frame ranges ``start,end,label`` (frames, end exclusive, a header line
allowed); for a model trained on label vectors, one row of numbers per frame (or an ``.npy`` of
(frames, D)). Names are checked against the classes the model was trained on, before anything loads.
"""

import csv
from pathlib import Path

import numpy as np

from vidsynth.errors import VidSynthError


def label_runs(names: list[str]) -> str:
    """``["a", "a", "b"]`` -> ``"a:2,b:1"``, the ``--labels`` syntax (also the caption of a sample)."""
    runs: list[list] = []
    for name in names:
        if runs and runs[-1][0] == name:
            runs[-1][1] += 1
        else:
            runs.append([name, 1])
    return ",".join(f"{name}:{count}" for name, count in runs)


def parse_label_runs(spec: str) -> list[str]:
    """``"walking:8,sitting:8"`` -> one name per frame."""
    names = []
    for part in spec.split(","):
        name, sep, count = part.strip().rpartition(":")
        if not sep or not name or not count.isdigit() or int(count) < 1:
            raise VidSynthError(
                f"--labels {spec!r}: {part.strip()!r} is not name:count. Write e.g. --labels walking:8,sitting:8"
            )
        names += [name] * int(count)
    return names


def _class_csv(path: Path) -> list[str]:
    rows = [row for row in csv.reader(path.read_text().splitlines()) if row and any(cell.strip() for cell in row)]
    if rows and not rows[0][0].strip().isdigit():
        rows = rows[1:]  # a header
    names: list[str] = []
    for number, row in enumerate(rows, start=1):
        if len(row) != 3 or not row[0].strip().isdigit() or not row[1].strip().isdigit():
            raise VidSynthError(f"{path} row {number}: {row} is not start,end,label in frames. Write e.g. 0,8,walking")
        start, end, name = int(row[0]), int(row[1]), row[2].strip()
        if start != len(names) or end <= start:
            raise VidSynthError(
                f"{path} row {number}: frames {start}-{end} do not follow on from frame {len(names)}. "
                "Give consecutive ranges from frame 0"
            )
        names += [name] * (end - start)
    if not names:
        raise VidSynthError(f"{path} holds no label ranges. Write rows start,end,label, e.g. 0,8,walking")
    return names


def _vector_file(path: Path, label_dim: int) -> np.ndarray:
    try:
        vectors = np.load(path) if path.suffix == ".npy" else np.loadtxt(path, delimiter=",", ndmin=2)
    except ValueError as err:
        raise VidSynthError(f"{path} is not a table of numbers ({err}). Give one row of {label_dim} per frame") from err
    vectors = np.asarray(vectors, dtype=np.float32).reshape(len(vectors), -1)
    if vectors.shape[1] != label_dim:
        raise VidSynthError(f"{path} has {vectors.shape[1]} numbers per frame; the model takes {label_dim}")
    return vectors


def frame_labels(
    labels: str | None, label: str | None, class_names: list[str] | None, label_dim: int | None
) -> list[str] | np.ndarray | None:
    """The per-frame labels asked for (names, or a (frames, D) array), checked against the model's labels."""
    if labels and label:
        raise VidSynthError("--labels and --label both given. Keep one")
    if not (labels or label):
        return None
    if class_names is None and label_dim is None:
        raise VidSynthError("this model was trained without labels. Sample it without --labels/--label")
    if label_dim is not None:
        if label or not Path(labels).is_file():
            raise VidSynthError(f"this model takes label vectors of {label_dim} numbers: give --labels FILE.csv|.npy")
        return _vector_file(Path(labels), label_dim)
    if label:
        names = [label]
    elif Path(labels).suffix.lower() == ".csv":
        names = _class_csv(Path(labels)) if Path(labels).is_file() else _missing(labels)
    else:
        names = parse_label_runs(labels)
    unknown = sorted(set(names) - set(class_names))
    if unknown:
        raise VidSynthError(f"unknown label {unknown[0]!r}: the model knows {', '.join(class_names)}. Use one of them")
    return names


def _missing(path: str) -> list[str]:
    raise VidSynthError(f"label file {path} does not exist. Check the path")
