"""What the page's controls do, apart from the page: one object per server, shared by every browser tab.

It holds the outputs folder, the models, the clips and the job queue; everything else is read from
disk when asked (:mod:`vidsynth.app.runs`). Values arrive as the page (or anyone calling its API)
sends them (numbers may be blank; a model or a file only ever one of the lists the app offers); every
check raises :class:`~vidsynth.errors.VidSynthError` with the command line's message, which the page
shows in place of a result.
"""

import dataclasses
import re
import uuid
from pathlib import Path

from vidsynth.app.animate import AnimateTask, animate_config, frame_sources, frame_still, keep_still
from vidsynth.app.animations import AnimationView, finished_animations, read_animation
from vidsynth.app.clips import (
    check_tuning_span,
    clip_path,
    default_span,
    describe_span,
    keep_clip,
    list_clips,
    render_sample,
)
from vidsynth.app.edit import EditForm, EditTask, edit_config
from vidsynth.app.jobs import Job, JobQueue
from vidsynth.app.loras import lora_rank, style_loras
from vidsynth.app.models import find_models
from vidsynth.app.region import RegionChoice, keep_uploads, region_keys, upload_folders
from vidsynth.app.runs import EditView, finished_runs, read_edit, run_edits
from vidsynth.app.scratch_studio import ScratchStudio
from vidsynth.app.tune import TuneForm, TuneTask, train_data, tuning_config, tuning_defaults
from vidsynth.app.uploads import check_upload, names_in_use, prune_uploads
from vidsynth.config import AnimateConfig
from vidsynth.errors import VidSynthError
from vidsynth.media.span import default_size
from vidsynth.media.video import VideoInfo, probe_video
from vidsynth.workspace import CHECKPOINTS


def number(value: float | None, key: str, kind: type = int) -> int | float:
    """A number field of the page as ``kind``; a blank one is refused, naming its config key."""
    if value is None or value == "":
        raise VidSynthError(f"{key} is empty. Enter a number")
    return kind(value)


ANIMATE_OPTIONAL = {"num_frames", "seconds", "fps", "decode_chunk_size"}  # blank: the command's default
ANIMATE_FLOATS = {"seconds", "fps", "noise_aug_strength"}


def optional(value: float | None, key: str, kind: type = int) -> int | float | None:
    """A number field that may be blank (None: the command's default)."""
    return None if value is None or value == "" else number(value, key, kind)


def lines(text: str | None) -> list[str]:
    """One prompt per line; blank lines are skipped."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def numbers(text: str | None, key: str) -> list[float]:
    """Comma-separated numbers ("0.8, 0.4"); none when blank."""
    try:
        return [float(value) for value in re.split(r"[,\s]+", (text or "").strip()) if value]
    except ValueError:
        raise VidSynthError(f"{key} must be numbers separated by commas, got {text!r}. Write e.g. 0.8, 0.4") from None


class Studio:
    """The app's state: ``outputs`` (runs, ``clips/``, ``control-videos/``, ``stills/``, ``animations/``, ``.queue/``,
    the region uploads), the models and the job queue. Uploads are refused above ``max_upload_mb``; at start-up,
    kept ones older than ``keep_uploads_days`` that nothing uses are removed (:mod:`vidsynth.app.uploads`)."""

    def __init__(
        self, outputs: Path, checkpoints: Path = CHECKPOINTS, max_upload_mb: int = 200, keep_uploads_days: float = 30
    ):
        self.outputs = Path(outputs).absolute()
        self.checkpoints = Path(checkpoints).absolute()
        self.clips = self.outputs / "clips"
        self.control_videos = self.outputs / "control-videos"
        self.stills, self.animations_folder = self.outputs / "stills", self.outputs / "animations"
        self.clips.mkdir(parents=True, exist_ok=True)
        self.max_upload_mb = max_upload_mb
        self.models = find_models(checkpoints)
        self.defaults = tuning_defaults()
        kinds = {TuneTask.kind: TuneTask, EditTask.kind: EditTask, AnimateTask.kind: AnimateTask, **ScratchStudio.KINDS}
        self.queue = JobQueue(self.outputs / ".queue", kinds)
        self.scratch = ScratchStudio(self.outputs, self.queue, max_upload_mb)
        unfinished = [job.task.spec() for job in self.queue.jobs() if job.active]
        uploads = [self.clips, self.control_videos, self.stills, *upload_folders(self.outputs)]
        prune_uploads(uploads, names_in_use(self.outputs, unfinished), keep_uploads_days)
        render_sample(self.clips)

    def close(self) -> None:
        self.queue.close()

    # ------------------------------------------------------------ clips

    def keep_upload(self, upload: str | Path) -> str:
        """Keep an uploaded file as a clip (refused if it is too large, or with the reader's message if it is not
        a video); its name."""
        check_upload(Path(upload), self.max_upload_mb)
        return keep_clip(Path(upload), self.clips).name

    def clip_names(self) -> list[str]:
        return list_clips(self.clips)

    def clip_info(self, name: str | None) -> VideoInfo:
        return probe_video(clip_path(self.clips, name))

    def span_defaults(self, info: VideoInfo) -> dict:
        return default_span(info, self.defaults.train_data, default_size(info))

    def check_span(self, name, start, end, stride, frames, width, height, sampling) -> str:
        """``train.py``'s checks of the span and sizes on the clip; what the span holds."""
        info = self.clip_info(name)
        form = self._span_form(info, start, end, stride, frames, width, height, sampling)
        return describe_span(info, check_tuning_span(info, train_data(form, self.defaults)))

    def _span_form(self, info, start, end, stride, frames, width, height, sampling, **tune) -> TuneForm:
        """The Tune tab's values as a form: the span's as given, the rest from ``tune`` or the defaults."""
        values = {
            "clip": Path(info.path),
            "prompt": "",
            "run_name": "",
            "steps": self.defaults.max_train_steps,
            "learning_rate": self.defaults.learning_rate,
            "base_model": self.models.bases[0],
            "validation_prompts": [],
            "validation_steps": self.defaults.validation_steps,
            "validation_ddim_steps": self.defaults.validation_data.num_inference_steps,
            **tune,
        }
        return TuneForm(
            start=number(start, "sample_start_idx"),
            end=None if end is None or end == "" else number(end, "sample_end_idx"),
            stride=number(stride, "sample_frame_rate"),
            frames=number(frames, "n_sample_frames"),
            width=number(width, "width"),
            height=number(height, "height"),
            window_sampling=sampling,
            **values,
        )

    # ------------------------------------------------------------ jobs

    def base_model(self, choice: str | None) -> Path:
        for base in self.models.bases:
            if str(base) == choice:
                return base
        raise VidSynthError(f"base model {choice!r} is not one of {[str(b) for b in self.models.bases]}. Pick one")

    def tune(self, name, prompt, run_name, steps, learning_rate, base, span: dict, validation: dict, lora=None) -> Job:
        """Check a tuning request as train.py would, then queue it. ``lora``: {"rank": a LoRA rank choice,
        "temporal": adapters on the temporal layers too}; none: full tuning."""
        lora = lora or {}
        info = self.clip_info(name)
        form = self._span_form(
            info,
            **span,
            prompt=prompt or "",
            run_name=run_name or "",
            steps=number(steps, "max_train_steps"),
            learning_rate=number(learning_rate, "learning_rate", float),
            base_model=self.base_model(base),
            validation_prompts=lines(validation["prompts"]),
            validation_steps=number(validation["every"], "validation_steps"),
            validation_ddim_steps=number(validation["ddim_steps"], "validation_data.num_inference_steps"),
            lora_rank=lora_rank(lora.get("rank", "full")),
            lora_temporal=bool(lora.get("temporal")),
        )
        cfg = tuning_config(form, self.outputs)
        taken = [j for j in self.queue.jobs() if j.active and j.task.output == Path(cfg.output_dir)]
        if taken:
            raise VidSynthError(f"job {taken[0].id} already tunes into {cfg.output_dir}. Give this run another name")
        return self.queue.submit(TuneTask(cfg, self.outputs / ".queue" / f"tune-{uuid.uuid4().hex[:12]}.yaml"))

    def edit(self, run, prompts, steps, guidance, seed, inversion, method, compare, strength, control=None, lora=None,
             region: RegionChoice | None = None):  # fmt: skip
        """Check an edit request as inference.py would, then queue it.

        ``control``: the structure guidance, {"kinds": ["canny", ...], "video": an uploaded map video or None,
        "controlnets": a list of :meth:`controlnets`' choices, "scales": comma-separated}. ``lora``: {"styles":
        names of ``models.loras``, "scales": comma-separated, "tuned": a LoRA run's adapters' scale}. ``region``:
        the region options; its uploads are kept as control videos are."""
        control, lora, region = control or {}, lora or {}, region or RegionChoice()
        video = control.get("video")
        for upload in (video, region.mask_video, region.background_file):
            if upload:
                check_upload(Path(upload), self.max_upload_mb)
        form = EditForm(
            run=self.run_path(run),
            prompts=lines(prompts),
            steps=number(steps, "num_inference_steps"),
            guidance=number(guidance, "guidance_scale", float),
            seed=number(seed, "seed"),
            inversion=bool(inversion),
            method=method,
            compare=bool(compare),
            strength=number(strength, "strength", float),
            controls=list(control.get("kinds") or []),
            control_videos=[Path(video)] if video else [],
            controlnets=self.controlnets(control.get("controlnets")),
            control_scales=numbers(control.get("scales"), "control_scales"),
            loras=style_loras(lora.get("styles"), numbers(lora.get("scales"), "lora_scales"), self.models.loras),
            lora_scale=number(lora.get("tuned", 1.0), "lora_scale", float),
            region=region_keys(region, self.models.segment_models),
        )
        config = keep_uploads(edit_config(form), self.outputs)
        if video:  # checked; kept, as uploads are, so that it outlives the upload while the job waits
            kept = keep_clip(Path(video), self.control_videos)
            config = dataclasses.replace(config, control_videos=[str(kept)])
        return self.queue.submit(EditTask(config, self.models.clip_model))

    def controlnets(self, chosen: list[str] | str | None) -> list[str]:
        """The chosen ControlNets (a list, or one a line), each one the app offers: nothing else is ever read."""
        chosen = lines(chosen) if isinstance(chosen, str) else list(chosen or [])
        for ref in chosen:
            if ref not in self.models.controlnets:
                raise VidSynthError(
                    f"ControlNet {ref!r} is not one this app offers. Pick one of {', '.join(self.models.controlnets)} "
                    f"(a ControlNet folder in {self.checkpoints} is offered once the app restarts)"
                )
        return chosen

    def animate(self, image, source, frame, model, settings: dict) -> Job:
        """Check an animation request as ``python -m vidsynth.animate`` would, then queue it.

        The still: an uploaded ``image``, or frame ``frame`` of ``source`` (one of :meth:`frame_sources`).
        ``settings``: the page's AnimateConfig keys (numbers; blank ones are the command's defaults).
        """
        numbers = {
            key: (optional if key in ANIMATE_OPTIONAL else number)(value, key, float if key in ANIMATE_FLOATS else int)
            for key, value in settings.items()
        }
        config = AnimateConfig(model=self.animator(model), **numbers)  # the schema's checks
        still = self._still(image, source, frame)
        config = animate_config(dataclasses.replace(config, image=str(still)))
        return self.queue.submit(AnimateTask(config, self.models.clip_model, self.animations_folder))

    def _still(self, image, source, frame) -> Path:
        """The still to animate, kept in ``stills/``: the uploaded image, or the frame of a listed video."""
        if image and source:
            raise VidSynthError("both an image and a video are given. Clear the image, or the video to take a frame of")
        if image:
            check_upload(Path(image), self.max_upload_mb)
            return keep_still(Path(image), self.stills)
        if not source:
            raise VidSynthError("no still given. Upload an image, or pick a clip or an edit and a frame of it")
        if source not in self.frame_sources():
            raise VidSynthError(f"there is no video {source!r} among the clips and edits. Pick one from the list")
        return frame_still(self.outputs / source, number(frame, "frame"), self.stills)

    def animator(self, choice: str | None) -> str:
        """The chosen image-to-video model, one the app offers: nothing else is ever read."""
        if choice not in self.models.animators:
            raise VidSynthError(f"model {choice!r} is not one this app offers. Pick one of {self.models.animators}")
        return choice

    def frame_sources(self) -> list[str]:
        return frame_sources(self.outputs)

    def cancel(self, job_id) -> Job:
        return self.queue.cancel(number(job_id, "job"))

    # ------------------------------------------------------------ runs

    def runs(self) -> list[str]:
        return finished_runs(self.outputs)

    def run_path(self, name: str | None) -> Path:
        if not name:
            raise VidSynthError("no run chosen. Tune one first, or pick a finished run")
        if name not in self.runs():
            raise VidSynthError(f"{self.outputs / name} is not a finished run. Pick one from the list")
        return self.outputs / name

    def edits(self, run: str | None) -> list[str]:
        return run_edits(self.run_path(run)) if run else []

    def edit_view(self, run: str | None, edit: str | None) -> EditView:
        if not edit:
            return EditView()
        if edit not in self.edits(run):
            raise VidSynthError(f"run {run} has no edit {edit!r}. Pick one from the list")
        view = read_edit(self.run_path(run) / "edits" / edit)
        if view.source is not None and not view.source.is_relative_to(self.outputs) and view.source.is_file():
            view.source = keep_clip(view.source, self.clips)  # the page serves clips and results of outputs/ only
        return view

    # ------------------------------------------------------------ animations

    def animations(self) -> list[str]:
        return finished_animations(self.animations_folder)

    def animation_view(self, name: str | None) -> AnimationView:
        if not name:
            return AnimationView()
        if name not in self.animations():
            raise VidSynthError(f"there is no animation {name!r}. Pick one from the list")
        return read_animation(self.animations_folder / name)
