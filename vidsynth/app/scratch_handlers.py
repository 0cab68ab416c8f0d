"""What the From scratch tab's controls compute, as plain values (laid out by :mod:`vidsynth.app.scratch_tab`).

Each method takes the values a control sends and returns what the tab shows; a
:class:`~vidsynth.errors.VidSynthError` becomes its message in the tab's words (:data:`SCRATCH_FIELDS`).
The methods' parameter names are the page's API names (``/scratch_train``, ``/scratch_sample``, ...).
"""

from dataclasses import dataclass, field
from pathlib import Path

from vidsynth.app.handlers import PageHandlers, problem
from vidsynth.app.jobs import RUNNING, Job
from vidsynth.app.scratch_studio import ScratchStudio
from vidsynth.errors import VidSynthError

MAX_SAMPLES = 4  # MP4s shown; every file is in the downloads
SCRATCH_FIELDS = {
    "footage": ("data.path",),
    "label CSV": ("data.labels",),
    "run name": ("output_dir",),
    "steps": ("max_train_steps",),
    "learning rate": ("learning_rate",),
    "frames per window": ("num_frames", "--frames"),
    "frame skip": ("frame_skip",),
    "seed": ("seed", "--seed"),
    "trained run": ("--run",),
    "labels": ("--labels", "--label"),
    "samples": ("--num",),
    "DDIM steps": ("--steps",),
    "guidance": ("--guidance",),
}


@dataclass
class SamplesShown:
    """One sample folder: its MP4s (caption, file), GIF grid and files; ``problem`` set: show only that."""

    videos: list[tuple[str, Path]] = field(default_factory=list)
    grid: Path | None = None
    note: str = ""
    files: list[str] = field(default_factory=list)
    problem: str | None = None


def _latest(jobs: list[Job], kind: str) -> Job | None:
    """The running job of ``kind``, else its newest one."""
    of_kind = [job for job in jobs if job.task.kind == kind]
    running = [job for job in of_kind if job.state == RUNNING]
    return (running or of_kind or [None])[-1]


class ScratchHandlers:
    """The tab's handlers over the app's :class:`ScratchStudio` (``page``: the other tabs', for the queue)."""

    def __init__(self, page: PageHandlers, scratch: ScratchStudio):
        self.page, self.scratch = page, scratch

    def upload_footage(self, file: str | None) -> tuple[list[str], str | None, str]:
        """Keep an uploaded video as a clip: the footage list, the clip chosen, and a message."""
        if file is None:
            return self.scratch.footage_choices(), None, ""
        try:
            name = self.page.studio.keep_upload(file)
        except VidSynthError as err:
            return self.scratch.footage_choices(), None, problem(err, SCRATCH_FIELDS, uploads=(file,))
        return self.scratch.footage_choices(), name, f"Kept {name} in clips/"

    def train(self, footage, labels, run_name, steps, learning_rate, frames, frame_skip, seed) -> str:
        """Queue a training job; the job's number, or what is wrong."""
        try:
            job = self.scratch.train(footage, labels, run_name, steps, learning_rate, frames, frame_skip, seed)
        except VidSynthError as err:
            clip = (self.scratch.clips / footage,) if isinstance(footage, str) and footage else ()
            return problem(err, SCRATCH_FIELDS, uploads=(labels, *clip))
        return f"Job {job.id} queued: {job.task.title}"

    def sample(self, run, labels, num, steps, seed, guidance=1.0) -> str:
        """Queue a sampling job; the job's number, or what is wrong."""
        try:
            job = self.scratch.sample(run, labels, num, steps, seed, guidance)
        except VidSynthError as err:  # the sampler's "--labels/--label" is one field here
            return problem(VidSynthError(str(err).replace("--labels/--label", "--labels")), SCRATCH_FIELDS)
        return f"Job {job.id} queued: {job.task.title}"

    def show_samples(self, run: str | None, name: str | None) -> SamplesShown:
        if not name:
            return SamplesShown()
        try:
            videos, grid, files = self.scratch.sample_files(run, name)
        except VidSynthError as err:
            return SamplesShown(problem=problem(err, SCRATCH_FIELDS))
        note = f"The first {MAX_SAMPLES} of {len(videos)} samples are shown." if len(videos) > MAX_SAMPLES else ""
        return SamplesShown(videos[:MAX_SAMPLES], grid, note, [str(path) for path in files])

    def state(self, run: str | None) -> dict:
        """What the tab refreshes every second: both jobs' progress, the footage, the runs and ``run``'s samples."""
        jobs = self.scratch.queue.jobs()
        return {
            "train_progress": self.page.progress_html(_latest(jobs, "scratch-train")),
            "sample_progress": self.page.progress_html(_latest(jobs, "scratch-sample")),
            "footage": self.scratch.footage_choices(),
            "runs": self.scratch.runs(),
            "samples": self.scratch.samples(run),
        }
