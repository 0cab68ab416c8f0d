"""Running a plan: tunings, then each tuning's edits, on this machine or as Ray tasks; the table after every cell.

An image entry's animations run as the edits of a tuning with nothing to tune (as img2img edits do).

The driver is the same for both: it submits the tunings that are not finished, submits a tuning's
edits when it ends (on the node it ran on), and records each cell as its edit job ends. Finished
jobs are recognised here, from the files they wrote last, and never submitted. Every event goes
to ``out/experiment.log``; the terminal shows the progress bar over cells and the failures.
"""

import logging
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tqdm.auto import tqdm

from vidsynth.experiment.cells import Outcome, edit, edit_finished, run_job, tune, tuning_finished
from vidsynth.experiment.plan import AnimateJob, EditJob, Plan, TuningJob
from vidsynth.experiment.table import cell_rows, write_tables

logger = logging.getLogger(__name__)
EVENTS_FILE = "experiment.log"


class LocalExecutor:
    """Runs jobs one at a time in this process: a clip's edits before the next tuning, so its rows come early."""

    def __init__(self):
        self._edits: list[tuple[Any, Callable, tuple]] = []
        self._tunings: list[tuple[Any, Callable, tuple]] = []

    def submit(self, key: Any, fn: Callable, *args, node: str | None = None) -> None:
        (self._edits if fn is edit else self._tunings).append((key, fn, args))

    @property
    def pending(self) -> bool:
        return bool(self._edits or self._tunings)

    def next_done(self) -> tuple[Any, Outcome, str | None]:
        key, fn, args = (self._edits or self._tunings).pop(0)
        return key, run_job(fn, *args), None

    def close(self) -> None:
        pass


@dataclass
class _Events:
    """Lines of ``experiment.log`` (what ran, was skipped or failed, and how long it took)."""

    log: logging.Logger

    def __call__(self, kind: str, where: str, outcome: Outcome, warn: bool = True) -> None:
        if outcome.status == "failed":
            self.log.info("%s %s: failed: %s", kind, where, outcome.error)
            if outcome.trace:  # an unexpected exception: its traceback, indented under the event
                self.log.info("%s", textwrap.indent(outcome.trace.rstrip(), "    "))
            if warn:
                logger.warning("%s %s failed: %s", kind, where, outcome.error)
        elif outcome.status == "done":
            self.log.info("%s %s: done in %.1f s", kind, where, outcome.stage.seconds)
        else:
            self.log.info("%s %s: %s, skipped", kind, where, outcome.status)


def _events(plan: Plan) -> tuple[_Events, logging.Handler]:
    plan.out.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(plan.out / EVENTS_FILE)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log = logging.getLogger(f"vidsynth.experiment.events.{id(plan)}")
    log.propagate, log.level = False, logging.INFO
    log.addHandler(handler)
    log.info(
        "experiment %s: %d cells, %d edit jobs, %d tunings",
        plan.out,
        len(plan.cells),
        len(plan.edits),
        len(plan.tunings),
    )
    return _Events(log), handler


def run_plan(plan: Plan, executor) -> list[dict]:
    """Run every unfinished job of ``plan`` with ``executor``; return the table's rows (also written)."""
    events, handler = _events(plan)
    tunings: dict[Any, Outcome] = {}
    edits: dict[Any, Outcome] = {}
    progress = tqdm(total=len(plan.edits), desc="Experiment cells", unit="cell")

    def where(job: TuningJob | EditJob | AnimateJob) -> str:
        return job.folder.relative_to(plan.out / "cells").as_posix()

    def finish_edit(job: EditJob | AnimateJob, outcome: Outcome, warn: bool = True) -> None:
        edits[job.folder] = outcome
        events(job.kind, where(job), outcome, warn)
        progress.update(1)
        progress.set_postfix(failed=sum(not o.ok for o in edits.values()))
        write_tables(plan, table_rows(plan, tunings, edits))

    def start_edits(tuning: TuningJob, outcome: Outcome, node: str | None) -> None:
        tunings[tuning.folder] = outcome
        events("tune", where(tuning), outcome)
        for job in plan.edits_of(tuning):
            done = edit_finished(job)
            if not outcome.ok:
                finish_edit(job, Outcome("failed", error=f"tuning failed: {outcome.error}"), warn=False)
            elif done:
                finish_edit(job, done)
            else:
                executor.submit(job, edit, job, plan.experiment.clip_model, node=node)

    try:
        for tuning in plan.tunings:
            done = tuning_finished(tuning)
            if done:
                start_edits(tuning, done, None)
            else:
                executor.submit(tuning, tune, tuning)
        while executor.pending:
            job, outcome, node = executor.next_done()
            if isinstance(job, TuningJob):
                start_edits(job, outcome, node)
            else:
                finish_edit(job, outcome)
    finally:
        progress.close()
        executor.close()
        events.log.removeHandler(handler)
        handler.close()
    return table_rows(plan, tunings, edits)


def table_rows(plan: Plan, tunings: dict, edits: dict) -> list[dict]:
    """The rows of every cell whose edit job has ended, in the plan's order."""
    rows = []
    for cell in plan.cells:
        if cell.edit.folder in edits:
            rows += cell_rows(cell, tunings[cell.edit.tuning.folder], edits[cell.edit.folder])
    return rows
