"""The files of an edit: per prompt an MP4 with the source's sound and a JSON sidecar, a GIF grid, the config.

The output folder is written under a temporary name and renamed when every file is complete
(:func:`vidsynth.atomic.atomic_path`), so a failed or interrupted edit leaves nothing behind and
never touches an earlier result. With ``--compare`` each method gets a subfolder and every prompt a
side-by-side GIF and MP4 (source | img2img | Tune-A-Video). With structure guidance every grid shows
each control's maps in a column after the source, and the sidecars name the controls. With a region
every edit gets its mask as ``<prompt>.mask.mp4`` (white: the region), every grid a mask column, and
the sidecars record where the region came from and what was done with it.

The MP4s hold every edited frame; a GIF of a long clip shows every k-th frame (at most
:data:`~vidsynth.media.writers.GIF_MAX_FRAMES`, at fps / k so it still plays in real time), and the sidecar says which.
"""

import logging
from pathlib import Path

import numpy as np
import torch

from vidsynth.atomic import atomic_path, remove_stale_partials
from vidsynth.config import save_config
from vidsynth.editing.request import EditRequest
from vidsynth.media.sound import SoundSpan, sound_track
from vidsynth.media.span import frame_indices_record
from vidsynth.media.video import Clip
from vidsynth.media.writers import gif_step, write_gif_grid, write_grid_video, write_json, write_video
from vidsynth.naming import unique_slugs
from vidsynth.run_folder import CONFIG_FILE, LORA_FILE

logger = logging.getLogger(__name__)


def _every(columns: list[tuple[str, np.ndarray]], step: int) -> list[tuple[str, np.ndarray]]:
    """The grid ``columns`` with every ``step``-th frame of each video, laid out (F, H, W, 3) or (3, F, H, W)."""
    return [(caption, video[::step] if video.shape[-1] == 3 else video[:, ::step]) for caption, video in columns]


def _source_column(clip: Clip) -> tuple[str, np.ndarray]:
    return f"source: {Path(clip.path).name}", clip.frames  # (F, H, W, 3) uint8


def _control_columns(request: EditRequest, control_maps: list[np.ndarray]) -> list[tuple[str, np.ndarray]]:
    """One column per control: its maps (F, H, W, 3) uint8, captioned with what made them."""
    return [(f"control: {spec.label}", maps) for spec, maps in zip(request.controls, control_maps, strict=True)]


def _mask_frames(masks: torch.Tensor) -> np.ndarray:
    """(F, H, W) {0, 1} masks as a black-and-white video, (F, H, W, 3) uint8."""
    return np.repeat((masks.numpy() * 255).round().astype(np.uint8)[..., None], 3, axis=-1)


def _mask_column(request: EditRequest, masks: torch.Tensor | None) -> list[tuple[str, np.ndarray]]:
    if masks is None:
        return []
    region = request.region
    what = {"word": f"'{region.text}'", "segment": region.text or "a point/box", "mask-video": "mask video"}
    return [
        (
            f"mask: {what[region.source]} ({region.edit if region.background is None else 'subject'})",
            _mask_frames(masks),
        )
    ]


def _sound(request: EditRequest, clip: Clip) -> SoundSpan | None:
    """The source's sound for exactly the edited span, or None (no sound asked, or the source has none)."""
    return (
        SoundSpan(clip.path, clip.start, clip.duration)
        if request.config.audio and request.clip.info.has_audio
        else None
    )


def _lora_note(request: EditRequest) -> dict | None:
    """The sidecar's record of the LoRAs: the tuned adapters' scale (a LoRA run) and each stacked LoRA's."""
    lora_run = any(Path(ref).name == LORA_FILE for ref in request.model.files)
    if not (lora_run or request.loras):
        return None
    styles = [{"lora": style.ref, "scale": style.scale} for style in request.loras]
    return {"scale": request.config.lora_scale if lora_run else None, "stacked": styles}


def sidecar(request: EditRequest, prompt: str, clip: Clip, model: str, method: str) -> dict:
    """The JSON written next to each MP4 (after its ``video`` name): what made it, and from which source frames."""
    config = request.config
    span = request.clip
    windows = {"frames": span.window, "overlap": span.window_overlap} if span.num_frames > span.window else None
    step = gif_step(span.num_frames)
    return {
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
        "lora": _lora_note(request) if method == "tuneavideo" else None,
        "region": request.region.describe() if request.region is not None else None,
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


def _comparisons(
    request: EditRequest, head: list[tuple[str, np.ndarray]], img2img: list[np.ndarray], tuned: list[np.ndarray]
) -> list[list[tuple[str, np.ndarray]]]:
    """Per prompt, the side-by-side columns: source | (controls |) img2img | Tune-A-Video."""
    config = request.config
    return [
        [*head, (f"img2img (strength {config.strength:g}): {prompt}", baseline), (f"Tune-A-Video: {prompt}", edit)]
        for prompt, baseline, edit in zip(config.prompts, img2img, tuned, strict=True)
    ]


def write_results(
    request: EditRequest,
    clip: Clip,
    edits: dict[str, tuple[str, list[np.ndarray]]],
    control_maps: list[np.ndarray] = (),
    masks: torch.Tensor | None = None,
) -> list[str]:
    """Write ``edits`` (method -> (model name, videos)) so that ``request.out`` appears only once complete.

    One method: per prompt an MP4 and its sidecar, and the GIF grid, in the folder itself. Two
    (``--compare``): a subfolder each, plus per prompt ``compare-<prompt>.gif`` and ``.mp4``.
    ``control_maps``: one (F, H, W, 3) uint8 video per control of ``request``, a grid column each after
    the source; ``masks``: a region edit's (F, H, W) masks, a column after those and a ``<prompt>.mask.mp4``
    per edit. What goes in the files is put together first, then everything is written. Returns the
    names in the folder.
    """
    config = request.config
    mp4, gif = "mp4" in config.formats, "gif" in config.formats
    if config.audio and not request.clip.info.has_audio and mp4:
        logger.info("%s has no sound track; the MP4s are silent", clip.path)
    sound = _sound(request, clip) if mp4 else None
    sidecars = {
        method: [sidecar(request, prompt, clip, model, method) for prompt in config.prompts]
        for method, (model, _) in edits.items()
    }
    head = [_source_column(clip), *_control_columns(request, control_maps), *_mask_column(request, masks)]
    grids = {method: [*head, *zip(config.prompts, videos, strict=True)] for method, (_, videos) in edits.items()}
    comparisons = _comparisons(request, head, edits["img2img"][1], edits["tuneavideo"][1]) if len(edits) > 1 else []
    step = gif_step(len(clip.frames))  # a GIF shows every step-th frame, at fps / step
    with sound_track(sound) as track, atomic_path(request.out, folder=True) as tmp:
        remove_stale_partials(request.out.parent)  # temporaries of edits that were killed
        names = unique_slugs(config.prompts)
        for method, (_, videos) in edits.items():
            folder = tmp / method if len(edits) > 1 else tmp
            folder.mkdir(exist_ok=True)
            if mp4:
                for name, video, record in zip(names, videos, sidecars[method], strict=True):
                    write_video(folder / f"{name}.mp4", video, clip.fps, sound=track)
                    if masks is not None:
                        write_video(folder / f"{name}.mask.mp4", _mask_frames(masks), clip.fps)
                        record["region"]["mask"] = f"{name}.mask.mp4"
                    write_json(folder / f"{name}.json", {"video": f"{name}.mp4", **record})
            if gif:
                write_gif_grid(folder / "grid.gif", _every(grids[method], step), clip.fps / step)
        if comparisons:
            for name, columns in zip(names, comparisons, strict=True):
                if gif:
                    write_gif_grid(tmp / f"compare-{name}.gif", _every(columns, step), clip.fps / step)
                if mp4:
                    write_grid_video(tmp / f"compare-{name}.mp4", columns, clip.fps, sound=track)
        save_config(config, tmp / CONFIG_FILE)
    return sorted(p.name + "/" * p.is_dir() for p in request.out.iterdir())
