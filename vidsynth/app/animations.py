"""Finished animations, read from disk like runs and edits: ``<outputs>/animations/<time>/``.

An animation folder (``python -m vidsynth.animate``) holds the MP4, its sidecar, the GIF grid and the
config, and the metrics once scored (``results.json``, :mod:`vidsynth.evaluation.animation`: image
alignment in place of text alignment). Animations made on the command line into that folder show up
like the app's own.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

from vidsynth.app.runs import metrics_table
from vidsynth.app.served import RESULT_SUFFIXES
from vidsynth.run_folder import CONFIG_FILE

COLUMNS = ("clip", "kind", "frames", "consistency_all_pairs", "consistency_consecutive", "image_alignment", "flicker")

ANIMATION_COLUMNS = ("animation", "kind", "frames", "CLIP all pairs", "CLIP consecutive", "CLIP image", "flicker")


@dataclass
class AnimationView:
    """What the page shows of one animation."""

    video: Path | None = None
    grid: Path | None = None
    settings: str = ""  # what made it, from its sidecar, in one paragraph
    metrics: list[list] = field(default_factory=list)  # rows of ANIMATION_COLUMNS
    clip_model: str | None = None  # what scored the metrics
    files: list[Path] = field(default_factory=list)  # the results, for download


def finished_animations(folder: Path) -> list[str]:
    """Names of the finished animations in ``folder`` (temporaries, hidden, skipped), the newest first."""
    found = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")] if folder.is_dir() else []
    done = [p for p in found if (p / CONFIG_FILE).is_file()]
    return [p.name for p in sorted(done, key=lambda p: (p / CONFIG_FILE).stat().st_mtime, reverse=True)]


def describe_settings(sidecar: dict) -> str:
    """The sidecar's settings and joints in a line or two."""
    image = sidecar["image"]
    frame = "" if image["frame"] is None else f", frame {image['frame']}"
    text = (
        f"From `{Path(image['path']).name}`{frame} with `{Path(sidecar['model']).name}`: {sidecar['num_frames']} "
        f"frames of {sidecar['width']}×{sidecar['height']} at {sidecar['fps']:g} fps, {sidecar['num_inference_steps']} "
        f"steps, seed {sidecar['seed']}, motion bucket id {sidecar['motion_bucket_id']}, noise aug strength "
        f"{sidecar['noise_aug_strength']:g}, decode chunk size {sidecar['decode_chunk_size'] or 'all frames'}."
    )
    joints = [
        f"frame {joint['frame']}: {joint['flicker']:.2f}" if joint["flicker"] is not None else f"frame {joint['frame']}"
        for joint in sidecar["joints"]
    ]
    if joints:
        text += f" Made in {len(sidecar['segments'])} segments; flicker at the joints (1 = seamless): "
        text += ", ".join(joints) + "."
    return text


def read_animation(folder: Path) -> AnimationView:
    """The files of the animation in ``folder``."""
    view = AnimationView()
    sidecars = [p for p in sorted(folder.glob("*.json")) if p.name != "results.json"]
    if sidecars:
        try:
            sidecar = json.loads(sidecars[0].read_text())
            view.settings = describe_settings(sidecar)
            video = folder / sidecar["video"]
        except (KeyError, TypeError, ValueError) as err:  # not written by python -m vidsynth.animate
            view.settings = f"⚠️ {sidecars[0].name} is not an animation's sidecar ({type(err).__name__}: {err})."
        else:
            view.video = video if video.is_file() else None
    grid = folder / "grid.gif"
    view.grid = grid if grid.is_file() else None
    view.metrics, view.clip_model = metrics_table(folder, COLUMNS)
    view.files = sorted(  # results only: its config names absolute paths
        p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".") and p.suffix in RESULT_SUFFIXES
    )
    return view
