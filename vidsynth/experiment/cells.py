"""What one job does: tune a clip with ``train.py``; edit its prompts with ``inference.py`` (or animate an
image entry's still with ``vidsynth.animate``) and score the results.

Both are plain functions of a job, run in this process by the local runner or as Ray tasks; the work
itself runs in a child process (:mod:`~.stage`), scoring included. A job writes only inside its own
folder, and says it is finished by the file it writes last (``train.py``'s result, then the cell's
``cell.json``, each renamed into place), so an experiment killed at any point reruns exactly the
unfinished jobs. A job's failure is returned, never raised (:func:`run_job` turns any exception into
one): the experiment records it and goes on.
"""

import dataclasses
import json
import logging
import shutil
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vidsynth.config import save_config
from vidsynth.errors import VidSynthError
from vidsynth.experiment.plan import AnimateJob, EditJob, TuningJob
from vidsynth.experiment.stage import StageResult, run_stage
from vidsynth.media.writers import write_json
from vidsynth.run_folder import RESULT_FILE, RunFolder

logger = logging.getLogger(__name__)

CELL_FILE = "cell.json"  # in an edit (or animation) folder: its rows and figures, written last
COMMANDS = {"edit": "inference", "animate": "animate"}  # the command a job kind runs (vidsynth.<command>)
TUNING_FILE = "tune.json"  # in a tuning folder: the tuning's figures (and its result's size), written when it ended


@dataclass
class Outcome:
    """A job's end: ``status`` done (ran now), finished (done by an earlier run), failed or untuned."""

    status: str
    stage: StageResult | None = None
    error: str | None = None
    rows: list[dict] = field(default_factory=list)  # edit jobs: vidsynth.evaluation.evaluate's rows, one per edited MP4
    trace: str | None = None  # an unexpected exception's traceback, for experiment.log

    @property
    def ok(self) -> bool:
        return self.status != "failed"


def _figures(path: Path) -> StageResult | None:
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return StageResult(data["seconds"], data["peak_ram_gib"], data["peak_gpu_gib"], None, data.get("result_mb"))


def run_job(fn: Callable[..., Outcome], *args) -> Outcome:
    """``fn(*args)``, any exception it raises made that job's failure: one bad cell never stops the others."""
    try:
        return fn(*args)
    except Exception as err:  # whatever a job raises is its own failure, recorded in the table
        if isinstance(err, VidSynthError):
            return Outcome("failed", error=str(err))
        message = (str(err).strip().splitlines() or [""])[0]
        error = f"{type(err).__name__}: {message}" if message else type(err).__name__
        return Outcome("failed", error=error, trace=traceback.format_exc())


# ---------------------------------------------------------------- tuning


def tuning_finished(job: TuningJob) -> Outcome | None:
    """The outcome of a tuning done earlier (or with nothing to tune), else None: it has to run."""
    if job.config is None:
        return Outcome("untuned")
    if (job.folder / RESULT_FILE).is_file():
        return Outcome("finished", _figures(job.folder / TUNING_FILE))
    return None


def tune(job: TuningJob) -> Outcome:
    """Run ``train.py`` on the job's config (resuming from its last checkpoint if an earlier run left one)."""
    from vidsynth.training.preflight import check_inputs

    try:
        check_inputs(
            job.config
        )  # what train.py checks before torch loads; a missing clip fails here, without a process
    except VidSynthError as err:
        return Outcome("failed", error=str(err))
    job.folder.mkdir(parents=True, exist_ok=True)
    config = save_config(job.config, job.folder / "tune.yaml")
    figures = job.folder / TUNING_FILE
    stage = run_stage("tune", ["--config", str(config)], job.folder / "tune.log", figures)
    if stage.error:
        return Outcome("failed", stage, stage.error)
    # The result's size beside the stage's figures: what a setting costs to keep (a LoRA run's is a few MB).
    stage = dataclasses.replace(stage, result_mb=RunFolder(job.folder).result_bytes() / 1e6)
    write_json(figures, {**json.loads(figures.read_text()), "result_mb": stage.result_mb})
    return Outcome("done", stage)


# ---------------------------------------------------------------- editing


def edit_finished(job: EditJob | AnimateJob) -> Outcome | None:
    """The outcome recorded by an earlier run of this edit (or animate) job, else None: it has to run."""
    cell = job.folder / CELL_FILE
    if not cell.is_file():
        return None
    data = json.loads(cell.read_text())
    rows = data.pop("rows")
    return Outcome("finished", StageResult(**data), rows=rows)


def edit(job: EditJob | AnimateJob, clip_model: str) -> Outcome:
    """Edit the job's prompts (or animate its still) into its folder and score the results, in one child
    process; write ``cell.json`` last."""
    if job.kind == "animate":
        from vidsynth.media.still import read_still

        try:
            read_still(job.config.image)  # what animate checks first; a missing or bad still fails here, no process
        except VidSynthError as err:
            return Outcome("failed", error=str(err))
    if job.folder.exists():  # an earlier run stopped between the edit and its cell.json: edit again
        shutil.rmtree(job.folder)
    job.folder.parent.mkdir(parents=True, exist_ok=True)
    config = save_config(job.config, job.folder.with_name(job.folder.name + ".yaml"))
    stats = job.folder.with_name(f".{job.folder.name}.stats.json")  # its figures go into cell.json
    scores = job.folder.with_name(f".{job.folder.name}.rows.json")  # so do the metrics' rows
    scores.unlink(missing_ok=True)
    log = job.folder.with_name(job.folder.name + ".log")
    stage = run_stage("edit", [COMMANDS[job.kind], str(config), clip_model, str(scores)], log, stats)
    stats.unlink(missing_ok=True)
    if stage.error:
        scores.unlink(missing_ok=True)
        return Outcome("failed", stage, stage.error)
    rows = json.loads(scores.read_text())
    write_json(job.folder / CELL_FILE, {**vars(stage), "rows": rows})
    scores.unlink()
    return Outcome("done", stage, rows=rows)
