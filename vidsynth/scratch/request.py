"""Per-frame labels as people write them: ``--labels walking:8,sitting:8``, a CSV, or one ``--label`` for the clip.

Runs of ``name:count`` add up to the clip's frames (``walking:8,sitting:8`` is 16 frames). A label file is
in the format of the training labels (:mod:`vidsynth.scratch.labels`) for one clip: a CSV of time ranges
``start,end,label`` (seconds at the clip's frame rate) or ``start_frame,end_frame,label``, or for a model
trained on label vectors a CSV or ``.npy`` with one vector per frame. Names are checked against the classes
the model was trained on, before anything loads.
"""

from pathlib import Path

import numpy as np

from vidsynth.errors import VidSynthError
from vidsynth.scratch.labels import UNLABELLED, Track, read_labels

LABEL_FILES = (".csv", ".npy")


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


def _label_file(path: Path, class_names: list[str] | None, num_frames: int, fps: float) -> list[str] | np.ndarray:
    """A label file in the training format (:mod:`vidsynth.scratch.labels`) for one clip of ``num_frames``."""
    if not path.is_file():
        raise VidSynthError(f"label file {path} does not exist. Check the path")
    read = read_labels(path, [Track(path.stem, num_frames, fps)], class_names)
    (per_frame,) = read.per_source.values()
    if class_names is None:
        return per_frame.reshape(num_frames, -1)
    missing = np.flatnonzero(per_frame == UNLABELLED)
    if len(missing):
        raise VidSynthError(
            f"{path}: frame {missing[0]} of the {num_frames} has no label. Cover every frame (or set --frames)"
        )
    return [class_names[i] for i in per_frame]


def frame_labels(
    labels: str | None, label: str | None, footage: dict, num_frames: int, fps: float
) -> list[str] | np.ndarray | None:
    """The per-frame labels asked for (names, or a (frames, D) array), checked against the run's ``footage``
    record (its ``class_names`` or ``label_dim``). A label file and ``--label`` cover ``num_frames`` frames at
    ``fps``; ``name:count`` runs give their own count."""
    class_names, label_dim = footage["class_names"], footage["label_dim"]
    if labels and label:
        raise VidSynthError("--labels and --label both given. Keep one")
    if not (labels or label):
        if label_dim is not None:
            raise VidSynthError(f"this model takes label vectors of {label_dim} numbers: give --labels FILE.csv|.npy")
        return None
    if class_names is None and label_dim is None:
        raise VidSynthError("this model was trained without labels. Sample it without --labels/--label")
    if label_dim is not None:
        if label or Path(labels).suffix.lower() not in LABEL_FILES:
            raise VidSynthError(f"this model takes label vectors of {label_dim} numbers: give --labels FILE.csv|.npy")
        vectors = _label_file(Path(labels), None, num_frames, fps)
        if vectors.shape[1] != label_dim:
            raise VidSynthError(f"{labels} has {vectors.shape[1]} numbers per frame; the model takes {label_dim}")
        return vectors
    if label:
        names = [label] * num_frames
    elif Path(labels).suffix.lower() in LABEL_FILES:
        names = _label_file(Path(labels), class_names, num_frames, fps)
    else:
        names = parse_label_runs(labels)
    unknown = sorted(set(names) - set(class_names))
    if unknown:
        raise VidSynthError(f"unknown label {unknown[0]!r}: the model knows {', '.join(class_names)}. Use one of them")
    return names
