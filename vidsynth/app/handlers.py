"""What the page's controls compute, as plain values: the page (:mod:`vidsynth.app.ui`) only lays them out.

One :class:`PageHandlers` per server wraps the :class:`~vidsynth.app.service.Studio`: each method takes
the values a control sends (numbers may be blank) and returns what the page shows: messages, which
parts are visible, tables, file paths. A :class:`~vidsynth.errors.VidSynthError` becomes its message in
the page's terms (:mod:`vidsynth.app.wording`) in the status line under the button, never a stack
trace. The methods' parameter names are the page's API names (``gradio_client``), so they stay put.
"""

import html
from dataclasses import dataclass, field
from pathlib import Path

from vidsynth.app.clips import describe_clip
from vidsynth.app.jobs import RUNNING, WAITING, Job
from vidsynth.app.region import RegionChoice
from vidsynth.app.runs import run_edits, validation_samples
from vidsynth.app.service import Studio
from vidsynth.app.wording import ANIMATE_FIELDS, EDIT_FIELDS, QUEUE_FIELDS, TUNE_FIELDS, in_page_terms
from vidsynth.errors import VidSynthError

MAX_VIDEOS = 4  # edits shown side by side with the source; every file is in the downloads
QUEUE_COLUMNS = ["job", "what", "state", "progress or result"]
SPAN_KEYS = ("start", "end", "stride", "frames", "width", "height")


def problem(err: VidSynthError, fields: dict, uploads: tuple = ()) -> str:
    return f"⚠️ {in_page_terms(str(err), fields, uploads)}"


@dataclass
class ClipShown:
    """The clip part of the Tune tab after an upload or a pick; None: leave that part as it is."""

    preview: str | None  # the clip's file (None: nothing to show)
    facts: str  # its facts, or what is wrong
    name: str | None = None  # the clip as listed, and the list
    clips: list[str] | None = None
    span: dict | None = None  # SPAN_KEYS: a span the clip holds
    span_status: str | None = None


@dataclass
class EditShown:
    """The Edit tab's results for one edit; ``problem`` set: leave them as they are, show it."""

    source: Path | None = None
    videos: list[tuple[str, Path]] = field(default_factory=list)  # (caption, MP4), at most MAX_VIDEOS
    grid: Path | None = None
    note: str = ""
    metrics: list[list] = field(default_factory=list)  # rows of vidsynth.app.runs.METRIC_COLUMNS
    files: list[str] = field(default_factory=list)
    problem: str | None = None


@dataclass
class AnimationShown:
    """The Animate tab's results for one animation; ``problem`` set: leave them as they are, show it."""

    video: Path | None = None
    grid: Path | None = None
    note: str = ""  # its settings and joints, and what scored its metrics
    metrics: list[list] = field(default_factory=list)  # rows of vidsynth.app.animations.ANIMATION_COLUMNS
    files: list[str] = field(default_factory=list)
    problem: str | None = None


class PageHandlers:
    def __init__(self, studio: Studio):
        self.studio = studio

    # ------------------------------------------------------------ clip and span

    def show_clip(self, name: str) -> ClipShown:
        info = self.studio.clip_info(name)
        span = {key: value for key, value in self.studio.span_defaults(info).items() if key in SPAN_KEYS}
        status = self.check_span(name, *(span[key] for key in SPAN_KEYS), "fixed")
        return ClipShown(info.path, describe_clip(info), name, self.studio.clip_names(), span, status)

    def upload_clip(self, file: str | None) -> ClipShown | None:
        """Keep an uploaded file as a clip and show it; None when the upload was cleared."""
        if file is None:
            return None
        try:
            return self.show_clip(self.studio.keep_upload(file))
        except VidSynthError as err:
            return ClipShown(None, problem(err, TUNE_FIELDS, uploads=(file,)), span_status="")

    def pick_clip(self, name: str | None) -> ClipShown:
        try:
            return self.show_clip(name)
        except VidSynthError as err:
            return ClipShown(None, problem(err, TUNE_FIELDS))

    def check_span(self, clip, start, end, stride, frames, width, height, sampling) -> str:
        """What the span holds, checked as ``train.py`` checks it."""
        try:
            return self.studio.check_span(clip, start, end, stride, frames, width, height, sampling)
        except VidSynthError as err:
            return problem(err, TUNE_FIELDS, uploads=self._clip_file(clip))

    def _clip_file(self, name) -> tuple:
        """The clip's file, so that a message names the clip as the list does, not by the server's folder."""
        return (self.studio.clips / name,) if isinstance(name, str) and name else ()

    # ------------------------------------------------------------ jobs

    def tune(
        self, clip, prompt, run_name, steps, learning_rate, base, start, end, stride, frames, width, height, sampling,
        validation_prompts, validation_steps, validation_ddim_steps, lora_rank="full", lora_temporal=False,
    ) -> str:  # fmt: skip
        """Queue a tuning job; the job's number, or what is wrong."""
        span = {"start": start, "end": end, "stride": stride, "frames": frames, "width": width, "height": height}
        validation = {"prompts": validation_prompts, "every": validation_steps, "ddim_steps": validation_ddim_steps}
        lora = {"rank": lora_rank, "temporal": lora_temporal}
        try:
            job = self.studio.tune(
                clip, prompt, run_name, steps, learning_rate, base, span | {"sampling": sampling}, validation, lora
            )
        except VidSynthError as err:
            return problem(err, TUNE_FIELDS, uploads=self._clip_file(clip))
        return f"Job {job.id} queued: {job.task.title}"

    def edit(
        self, run, prompts, steps, guidance, seed, inversion, method, compare, strength,
        controls, control_video, controlnets, control_scales, loras=(), lora_scales="", lora_scale=1.0,
        region_word="", segment="", segment_point="", mask_video=None, region_edit="inside", background=None,
        background_colour="", background_prompt="",
    ) -> str:  # fmt: skip
        """Queue an edit job; the job's number, or what is wrong."""
        control = {"kinds": controls, "video": control_video, "controlnets": controlnets, "scales": control_scales}
        lora = {"styles": loras, "scales": lora_scales, "tuned": lora_scale}
        region = RegionChoice(region_word, segment, segment_point, mask_video, background, background_colour,
                              background_prompt, region_edit)  # fmt: skip
        try:
            job = self.studio.edit(
                run, prompts, steps, guidance, seed, inversion, method, compare, strength, control, lora, region
            )
        except VidSynthError as err:
            return problem(err, EDIT_FIELDS, uploads=(control_video, mask_video, background))
        return f"Job {job.id} queued: {job.task.title}"

    def animate(
        self, image, video, frame, model, frames, seconds, fps, motion_bucket_id, noise_aug_strength, steps, seed,
        decode_chunk_size,
    ) -> str:  # fmt: skip
        """Queue an animation of an uploaded image or of a frame of a listed video; the job's number, or what is
        wrong."""
        settings = {"num_frames": frames, "seconds": seconds, "fps": fps, "motion_bucket_id": motion_bucket_id}
        settings |= {"noise_aug_strength": noise_aug_strength, "num_inference_steps": steps, "seed": seed}
        try:
            job = self.studio.animate(image, video, frame, model, settings | {"decode_chunk_size": decode_chunk_size})
        except VidSynthError as err:
            return problem(err, ANIMATE_FIELDS, uploads=(image,))
        return f"Job {job.id} queued: {job.task.title}"

    def cancel(self, job_id) -> str:
        try:
            job = self.studio.cancel(job_id)
        except VidSynthError as err:
            return problem(err, QUEUE_FIELDS)
        return f"Job {job.id}: {'cancelled' if job.state != RUNNING else 'stopping'}"

    # ------------------------------------------------------------ results

    def edits_of(self, run_name: str | None) -> list[str]:
        """The edits of a run, the newest first (none for a run that is not there)."""
        try:
            return self.studio.edits(run_name)
        except VidSynthError:
            return []

    def show_edit(self, run_name: str | None, edit_name: str | None) -> EditShown:
        """One edit: its source, videos, GIF grid, metrics (with what scored them) and files."""
        try:
            view = self.studio.edit_view(run_name, edit_name)
        except VidSynthError as err:
            return EditShown(problem=problem(err, EDIT_FIELDS))
        notes = []
        if view.metrics:
            notes.append(f"Metrics by `python -m vidsynth.evaluate` with CLIP `{Path(view.clip_model).name}`.")
            models = self.studio.models
            if models.clip_notice and view.clip_model == models.clip_model:
                notes.append(f"⚠️ {models.clip_notice}")
        elif edit_name:
            notes.append("No metrics for this edit yet.")
        if len(view.videos) > MAX_VIDEOS:
            notes.append(f"The first {MAX_VIDEOS} of {len(view.videos)} edits are shown; all are in the files.")
        return EditShown(
            source=view.source,
            videos=view.videos[:MAX_VIDEOS],
            grid=view.grids[0] if view.grids else None,
            note="\n\n".join(notes),
            metrics=view.metrics,
            files=[str(path) for path in view.files],
        )

    def show_animation(self, name: str | None) -> AnimationShown:
        """One animation: its MP4, GIF grid, settings, metrics (with what scored them) and files."""
        try:
            view = self.studio.animation_view(name)
        except VidSynthError as err:
            return AnimationShown(problem=problem(err, ANIMATE_FIELDS))
        notes = [view.settings] if view.settings else []
        if view.metrics:
            notes.append(f"Metrics by `python -m vidsynth.evaluate` with CLIP `{Path(view.clip_model).name}`.")
        elif name:
            notes.append("No metrics for this animation yet.")
        files = [str(path) for path in view.files]
        return AnimationShown(view.video, view.grid, "\n\n".join(notes), view.metrics, files)

    # ------------------------------------------------------------ what every tab shows, every second

    def progress_html(self, job: Job | None) -> str:
        """A bar with the job's step, loss and time left while it runs, else its state."""
        if job is None:
            return ""
        info = self.studio.queue.snapshot(job)
        head = f"Job {info['id']} ({html.escape(info['title'])})"
        if info["state"] == RUNNING:
            bar = f'<progress value="{info["step"]}" max="{max(info["total"], 1)}"></progress>'
            return f'<div class="vs-progress">{bar}<span>{head}: {html.escape(info["progress"])}</span></div>'
        if info["state"] == WAITING:
            return f"<div>{head} waits: position {info['position']} in the queue</div>"
        return f"<div>{head} {info['state']}: {html.escape(info['message'])}</div>"

    def queue_rows(self, jobs: list[Job]) -> list[list]:
        rows = []
        for job in reversed(jobs):
            info = self.studio.queue.snapshot(job)
            state = f"waiting ({info['position']} in line)" if info["state"] == WAITING else info["state"]
            rows.append([info["id"], info["title"], state, info["progress"] or info["message"]])
        return rows

    def shared_state(self, run_name: str | None) -> dict:
        """The queue, the newest jobs' progress, the newest tuning's validation samples, the runs, the edits of
        ``run_name`` (each with whether its metrics are written: they come after its videos), the clips, the
        animations (each with the same) and the videos a frame may be animated from."""
        studio = self.studio
        jobs = studio.queue.jobs()  # read once: every part below shows the same moment
        latest_tune, latest_edit, latest_animation = (_latest(jobs, kind) for kind in ("tune", "edit", "animate"))
        try:
            folder = studio.run_path(run_name)
        except VidSynthError:
            folder = None
        edits = (
            [(name, (folder / "edits" / name / "results.json").is_file()) for name in run_edits(folder)]
            if folder
            else []
        )
        scored = studio.animations_folder
        animations = [(name, (scored / name / "results.json").is_file()) for name in studio.animations()]
        return {
            "queue": self.queue_rows(jobs),
            "to_cancel": [(f"{job.id}: {job.task.title}", job.id) for job in jobs if job.active],
            "tune_progress": self.progress_html(latest_tune),
            "samples": validation_samples(latest_tune.task.output) if latest_tune else [],
            "edit_progress": self.progress_html(latest_edit),
            "runs": studio.runs(),
            "edits": edits,
            "edit_signal": edits,
            "clips": studio.clip_names(),
            "animate_progress": self.progress_html(latest_animation),
            "animations": animations,
            "animation_signal": animations,
            "frame_sources": studio.frame_sources(),
        }

    def jobs(self) -> dict:
        """Every job (id, kind, title, state, position, times, progress, output, message) and the queue's events."""
        queue = self.studio.queue
        return {"jobs": [queue.snapshot(job) for job in queue.jobs()], "events": queue.events()}

    def finished(self) -> dict:
        """Each finished run with its edits, newest first."""
        return {name: self.studio.edits(name) for name in self.studio.runs()}


def _latest(jobs: list[Job], kind: str) -> Job | None:
    """The running job of ``kind``, else its newest one."""
    of_kind = [job for job in jobs if job.task.kind == kind]
    running = [job for job in of_kind if job.state == RUNNING]
    return (running or of_kind or [None])[-1]
