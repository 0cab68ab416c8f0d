"""The files of an animation: the MP4 (with the clip's sound for its part), the sidecar, the GIF grid, PNGs.

The folder is written under a temporary name and renamed when every file is complete
(:func:`vidsynth.atomic.atomic_path`), so a failed or interrupted run leaves nothing and never touches
an earlier result. With ``--extend`` the output is the clip's frames, then the generated ones (the
clip's last frame, which the generation starts from, is not repeated); the sound of the clip's part is
kept and the rest is silent.
"""

import logging
from pathlib import Path

import numpy as np
from PIL import Image

from vidsynth.animation.generate import joint_flicker
from vidsynth.animation.request import AnimateRequest
from vidsynth.atomic import atomic_path, remove_stale_partials
from vidsynth.config import save_config
from vidsynth.media.sound import sound_track
from vidsynth.media.span import frame_indices_record
from vidsynth.media.writers import gif_step, write_gif_grid, write_json, write_video
from vidsynth.run_folder import CONFIG_FILE

logger = logging.getLogger(__name__)


def assemble(request: AnimateRequest, generated: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """The output's frames (F, H, W, 3) uint8 and its joints (the index of the first frame after each)."""
    starts = [segment.start for segment in request.segments[1:]]
    if request.clip is None:
        return generated, starts
    kept = len(request.clip.frames)  # the generation's first frame repeats the clip's last: dropped
    return np.concatenate([request.clip.frames, generated[1:]]), [kept, *(start + kept - 1 for start in starts)]


def sidecar(request: AnimateRequest, joints: list[dict]) -> dict:
    """Everything that made the animation: the input, the model, every setting, the segments, the joints."""
    config = request.config
    offset = 0 if request.clip is None else len(request.clip.frames) - 1
    record = {
        "video": f"{request.stem}.mp4",
        "kind": "animation",
        "image": request.still_ref,
        "model": request.model.path,
        "seed": config.seed,
        "num_inference_steps": config.num_inference_steps,
        "fps": request.fps,
        "num_frames": request.num_frames + offset,
        "width": request.width,
        "height": request.height,
        "motion_bucket_id": config.motion_bucket_id,
        "noise_aug_strength": float(config.noise_aug_strength),
        "min_guidance_scale": float(config.min_guidance_scale),
        "max_guidance_scale": float(config.max_guidance_scale),
        "decode_chunk_size": config.decode_chunk_size,
        "offload": config.offload,
        "segments": [{"start": s.start + offset, "stop": s.stop + offset, "seed": s.seed} for s in request.segments],
        "joints": joints,
    }
    if request.clip is not None:
        clip = request.clip
        record["segments"][0]["start"] += 1  # the generation's first frame is the clip's, not in the output
        record["source"] = {
            "path": clip.path,
            "fps": clip.source_fps,
            "frame_indices": frame_indices_record(clip.frame_indices, clip.stride),
            "start": clip.start,
            "duration": clip.duration,
            "num_frames": len(clip.frames),
        }
    return record


def _grid_columns(request: AnimateRequest, video: np.ndarray, step: int) -> list[tuple[str, np.ndarray]]:
    """The input (the still, held) beside the frames, every ``step``-th frame."""
    shown = video[::step]  # (f, H, W, 3)
    still = np.asarray(request.still.resize((request.width, request.height), Image.LANCZOS))
    name = Path(request.still_ref["path"]).name
    frame = request.still_ref["frame"]
    caption = f"input: {name}" if frame is None else f"input: {name}, frame {frame}"
    return [(caption, np.broadcast_to(still, shown.shape)), (f"animation ({request.model.path})", shown)]


def write_results(request: AnimateRequest, generated: np.ndarray) -> list[str]:
    """Write the animation so that ``request.out`` appears only once complete; returns the names in it."""
    video, joints = assemble(request, generated)
    record = sidecar(request, joint_flicker(video, joints))
    step = gif_step(len(video))
    with sound_track(request.sound) as track, atomic_path(request.out, folder=True) as tmp:
        remove_stale_partials(request.out.parent)  # temporaries of runs that were killed
        write_video(tmp / f"{request.stem}.mp4", video, request.fps, sound=track)
        write_json(tmp / f"{request.stem}.json", {**record, "grid_gif": {"every_nth_frame": step}})
        write_gif_grid(tmp / "grid.gif", _grid_columns(request, video, step), request.fps / step)
        if request.config.png:
            frames = tmp / request.stem
            frames.mkdir()
            for i, frame in enumerate(video):
                Image.fromarray(frame).save(frames / f"{i:05d}.png")
        save_config(request.config, tmp / CONFIG_FILE)
    return sorted(p.name + "/" * p.is_dir() for p in request.out.iterdir())
