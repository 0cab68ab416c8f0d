"""The files of an edit: per prompt an MP4 with the source's sound and a JSON sidecar, a GIF grid, the config.

The output folder is written under a temporary name and renamed when every file is complete
(:func:`vidsynth.atomic.atomic_path`), so a failed or interrupted edit leaves nothing behind and
never touches an earlier result. With ``--compare`` each method gets a subfolder and every prompt a
side-by-side GIF and MP4 (source | img2img | Tune-A-Video). With structure guidance every grid shows
each control's maps in a column after the source, and the sidecars name the controls.

The MP4s hold every edited frame; a GIF of a long clip shows every k-th frame (at most
:data:`GIF_MAX_FRAMES`, at fps / k so it still plays in real time), and the sidecar says which.
"""

import logging
import math
from pathlib import Path

import numpy as np

from vidsynth.atomic import atomic_path, remove_stale_partials
from vidsynth.config import save_config
from vidsynth.editing.request import EditRequest
from vidsynth.media.sound import SoundSpan, sound_track
from vidsynth.media.span import frame_indices_record
from vidsynth.media.video import Clip
from vidsynth.media.writers import write_gif_grid, write_grid_video, write_json, write_video
from vidsynth.naming import unique_slugs
from vidsynth.run_folder import CONFIG_FILE

logger = logging.getLogger(__name__)

GIF_MAX_FRAMES = 48  # a GIF holds every frame uncompressed-ish: 240 frames of a 3-column grid would be ~100 MB


def gif_step(num_frames: int) -> int:
    """Show every k-th frame in a GIF grid so it has at most :data:`GIF_MAX_FRAMES` frames."""
    return max(1, math.ceil(num_frames / GIF_MAX_FRAMES))


def _write_gif(path: Path, columns: list[tuple[str, np.ndarray]], clip: Clip) -> None:
    """The grid of ``columns`` (each a video of the clip's frames), every k-th frame of a long clip."""
    step = gif_step(len(clip.frames))
    write_gif_grid(path, [(caption, _every(video, step)) for caption, video in columns], clip.fps / step)


def _every(video: np.ndarray, step: int) -> np.ndarray:
    """Every ``step``-th frame of a video laid out (F, H, W, 3) or (3, F, H, W)."""
    return video[::step] if video.shape[-1] == 3 else video[:, ::step]


def _source_column(clip: Clip) -> tuple[str, np.ndarray]:
    return f"source: {Path(clip.path).name}", clip.frames  # (F, H, W, 3) uint8


def _control_columns(request: EditRequest, control_maps: list[np.ndarray]) -> list[tuple[str, np.ndarray]]:
    """One column per control: its maps (F, H, W, 3) uint8, captioned with what made them."""
    return [(f"control: {spec.label}", maps) for spec, maps in zip(request.controls, control_maps, strict=True)]


def _sound(request: EditRequest, clip: Clip) -> SoundSpan | None:
    """The source's sound for exactly the edited span, or None (no sound asked, or the source has none)."""
    return (
        SoundSpan(clip.path, clip.start, clip.duration)
        if request.config.audio and request.clip.info.has_audio
        else None
    )


def sidecar(request: EditRequest, prompt: str, name: str, clip: Clip, model: str, method: str) -> dict:
    """The JSON written next to each MP4: what made it, and from which source frames."""
    config = request.config
    span = request.clip
    windows = {"frames": span.window, "overlap": span.window_overlap} if span.num_frames > span.window else None
    step = gif_step(span.num_frames)
    return {
        "video": f"{name}.mp4",
        "prompt": prompt,
        "negative_prompt": config.negative_prompt,
        "method": method,
        "seed": config.seed,
        "num_inference_steps": config.num_inference_steps,
        "guidance_scale": float(config.guidance_scale),
        "inversion_steps": config.inversion_steps if config.inversion and method == "tuneavideo" else None,
        "strength": float(config.strength) if method == "img2img" else None,
        "model": model,
        "fps": clip.fps,
        "num_frames": len(clip.frame_indices),
        "width": clip.width,
        "height": clip.height,
        "window": windows if method == "tuneavideo" else None,
        "control": _control_note(request),
        "grid_gif": {"every_nth_frame": step, "fps": clip.fps / step} if "gif" in config.formats else None,
        "source": {
            "path": clip.path,
            "fps": clip.source_fps,
            "frame_indices": frame_indices_record(clip.frame_indices, clip.stride),
            "start": clip.start,
            "duration": clip.duration,
        },
    }


def _control_note(request: EditRequest) -> dict | None:
    """The sidecar's record of the structure guidance: each control, and the steps the ControlNets acted in."""
    if not request.controls:
        return None
    config = request.config
    return {
        "controls": [spec.describe() for spec in request.controls],
        "guidance_start": config.control_guidance_start,
        "guidance_end": config.control_guidance_end,
    }


def write_edits(
    folder: Path,
    request: EditRequest,
    clip: Clip,
    videos: list[np.ndarray],
    model: str,
    method: str,
    sound: Path | None,
    control_maps: list[np.ndarray] = (),
) -> None:
    """One method's files in ``folder``: per prompt an MP4 (with the ``sound`` track) and its sidecar, the GIF grid.

    ``control_maps``: one (F, H, W, 3) uint8 video per control of ``request``, shown after the source.
    """
    config = request.config
    folder.mkdir(exist_ok=True)
    if "mp4" in config.formats:
        for prompt, video, name in zip(config.prompts, videos, unique_slugs(config.prompts), strict=True):
            write_video(folder / f"{name}.mp4", video, clip.fps, sound=sound)
            write_json(folder / f"{name}.json", sidecar(request, prompt, name, clip, model, method))
    if "gif" in config.formats:
        controls = _control_columns(request, control_maps)
        columns = [_source_column(clip), *controls, *zip(config.prompts, videos, strict=True)]
        _write_gif(folder / "grid.gif", columns, clip)


def write_comparison(
    folder: Path,
    request: EditRequest,
    clip: Clip,
    img2img: list[np.ndarray],
    tuned: list[np.ndarray],
    sound: Path | None,
    control_maps: list[np.ndarray] = (),
) -> None:
    """Per prompt, ``compare-<prompt>.gif`` and ``.mp4`` (with sound): source | (controls |) img2img | Tune-A-Video."""
    config = request.config
    names = unique_slugs(config.prompts)
    for prompt, name, baseline, edit in zip(config.prompts, names, img2img, tuned, strict=True):
        columns = [
            _source_column(clip),
            *_control_columns(request, control_maps),
            (f"img2img (strength {config.strength:g}): {prompt}", baseline),
            (f"Tune-A-Video: {prompt}", edit),
        ]
        if "gif" in config.formats:
            _write_gif(folder / f"compare-{name}.gif", columns, clip)
        if "mp4" in config.formats:
            write_grid_video(folder / f"compare-{name}.mp4", columns, clip.fps, sound=sound)


def write_results(
    request: EditRequest,
    clip: Clip,
    edits: dict[str, tuple[str, list[np.ndarray]]],
    control_maps: list[np.ndarray] = (),
) -> list[str]:
    """Write ``edits`` (method -> (model name, videos)) so that ``request.out`` appears only once complete.

    One method: its files in the folder itself. Two (``--compare``): a subfolder each, plus the
    side-by-side grids. ``control_maps``: the controls' maps, a grid column each. Returns the names in
    the folder.
    """
    if request.config.audio and not request.clip.info.has_audio and "mp4" in request.config.formats:
        logger.info("%s has no sound track; the MP4s are silent", clip.path)
    remove_stale_partials(request.out.parent)  # temporaries of edits that were killed
    mp4 = "mp4" in request.config.formats
    with sound_track(_sound(request, clip) if mp4 else None) as sound, atomic_path(request.out, folder=True) as tmp:
        if len(edits) == 1:
            ((method, (model, videos)),) = edits.items()
            write_edits(tmp, request, clip, videos, model, method, sound, control_maps)
        else:
            for method, (model, videos) in edits.items():
                write_edits(tmp / method, request, clip, videos, model, method, sound, control_maps)
            write_comparison(tmp, request, clip, edits["img2img"][1], edits["tuneavideo"][1], sound, control_maps)
        save_config(request.config, tmp / CONFIG_FILE)
    return sorted(p.name + "/" * p.is_dir() for p in request.out.iterdir())
