"""What one job does: tune a clip with ``train.py``; edit its prompts with ``inference.py`` and score them.

Both are plain functions of a job, run in this process by the local runner or as Ray tasks. A job
writes only inside its own folder, and says it is finished by the file it writes last (``train.py``'s
result, then the cell's ``cell.json``, each renamed into place), so an experiment killed at any point
reruns exactly the unfinished jobs. A job's failure is returned, never raised: the experiment records
it and goes on.
"""

import functools
import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from vidsynth.config import save_config
from vidsynth.errors import VidSynthError
from vidsynth.experiment.plan import EditJob, TuningJob
from vidsynth.experiment.stage import StageResult, run_stage
from vidsynth.media.writers import write_json
from vidsynth.run_folder import RESULT_FILE

logger = logging.getLogger(__name__)

CELL_FILE = "cell.json"  # in an edit folder: its rows and figures, written last
TUNING_FILE = "tune.json"  # in a tuning folder: the tuning's figures, written when train.py has ended


@dataclass
class Outcome:
    """A job's end: ``status`` done (ran now), finished (done by an earlier run), failed or untuned."""

    status: str
    stage: StageResult | None = None
    error: str | None = None
    rows: list[dict] = field(default_factory=list)  # edit jobs: vidsynth.evaluation.evaluate's rows, one per edited MP4

    @property
    def ok(self) -> bool:
        return self.status != "failed"


def _figures(path: Path) -> StageResult | None:
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return StageResult(data["seconds"], data["peak_ram_gib"], data["peak_gpu_gib"], None)  # a finished one


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
    from vidsynth.training.preflight import check_request

    try:
        check_request(job.config)  # what train.py checks first; a missing clip fails here, without a process
    except VidSynthError as err:
        return Outcome("failed", error=str(err))
    job.folder.mkdir(parents=True, exist_ok=True)
    config = save_config(job.config, job.folder / "tune.yaml")
    stage = run_stage("tune", ["--config", str(config)], job.folder / "tune.log", job.folder / TUNING_FILE)
    return Outcome("failed", stage, stage.error) if stage.error else Outcome("done", stage)


# ---------------------------------------------------------------- editing


def edit_finished(job: EditJob) -> Outcome | None:
    """The outcome recorded by an earlier run of this edit job, else None: it has to run."""
    cell = job.folder / CELL_FILE
    if not cell.is_file():
        return None
    data = json.loads(cell.read_text())
    rows = data.pop("rows")
    return Outcome("finished", StageResult(**data), rows=rows)


@functools.cache
def _scorer(clip_model: str, device: str):
    from vidsynth.evaluation.metrics import ClipScorer  # loaded once per process, for every cell it scores

    return ClipScorer(clip_model, device=device)


def edit(job: EditJob, clip_model: str) -> Outcome:
    """Run ``inference.py`` for the job's prompts into its folder, score the edits, write ``cell.json`` last."""
    import torch

    from vidsynth.evaluation.evaluate import evaluate

    if job.folder.exists():  # an earlier run stopped between the edit and its cell.json: edit again
        shutil.rmtree(job.folder)
    job.folder.parent.mkdir(parents=True, exist_ok=True)
    config = save_config(job.config, job.folder.with_name(job.folder.name + ".yaml"))
    stats = job.folder.with_name(f".{job.folder.name}.stats.json")  # its figures go into cell.json
    stage = run_stage("edit", ["--config", str(config)], job.folder.with_name(job.folder.name + ".log"), stats)
    stats.unlink(missing_ok=True)
    if stage.error:
        return Outcome("failed", stage, stage.error)
    try:
        device = "cuda" if torch.cuda.is_available() else "cpu"
        rows = evaluate([job.folder], _scorer(clip_model, device), device=device, progress=False)
    except VidSynthError as err:
        return Outcome("failed", stage, f"evaluation: {err}")
    write_json(job.folder / CELL_FILE, {**vars(stage), "rows": rows})
    return Outcome("done", stage, rows=rows)
