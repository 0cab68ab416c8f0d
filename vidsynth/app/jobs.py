"""The job queue: tuning, edit and animation jobs, one at a time, each run as the commands a user would type.

A job is ``python -m vidsynth.train --config ...`` or ``python -m vidsynth.inference ...`` (then ``python -m
vidsynth.evaluate``) in a process of its own (:mod:`vidsynth.app.child`), so it takes the command line's code
paths, checks and atomic writes; a crash in it cannot take the app down; it ends with the app; and cancelling
it is what Ctrl-C does at a terminal, so the command removes what it was writing. What an unfinished job
still leaves (a tuning run's folder) its :class:`Task` removes.

The queue is kept in the outputs folder (:mod:`vidsynth.app.store`): every tab and every app process on
it sees the same jobs; jobs waiting when the app stops run when it starts again; a job running when the
app was killed is marked failed and its partial output removed. One job runs at a time (one device).

A command's progress, result and error message come from the events it writes to a file of its own
(:mod:`vidsynth.events`, read by :mod:`vidsynth.app.progress`).
"""

import logging
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from vidsynth.app import child
from vidsynth.app.progress import EventFile, Progress
from vidsynth.app.store import CANCELLED, DONE, FAILED, RUNNING, WAITING, JobStore, Row
from vidsynth.errors import VidSynthError

logger = logging.getLogger(__name__)

POLL_S = 1.0  # how often an idle queue looks for jobs that another app process on the same outputs added
FOLLOW_S = 0.25  # how often a running command's new events are read
ORPHANED = "the app stopped while this job ran (killed or crashed); what the job had written was removed"


class Task(Protocol):
    """What a job does: :meth:`begin` when it leaves the queue (so a job cancelled while it waits creates
    nothing), :meth:`finish` after its commands, whatever happened. Stored as its :meth:`spec`."""

    kind: str  # "tune", "edit" or "animate"
    title: str
    output: Path | None  # the folder the job writes (known once it began)

    def begin(self) -> list[tuple[str, list[str]]]: ...  # the commands to run in order, each (label, argv)

    def finish(self, succeeded: bool) -> None: ...  # remove what an unfinished job left behind

    def spec(self) -> dict: ...  # plain data (JSON) that from_spec builds this task again from, as it is now

    @classmethod
    def from_spec(cls, spec: dict) -> "Task": ...


@dataclass
class Job:
    id: int
    task: Task
    submitted: float
    state: str = WAITING
    started: float | None = None
    ended: float | None = None
    progress: Progress = field(default_factory=Progress)  # while this process runs it
    message: str = ""  # why it failed, or what it wrote
    process: subprocess.Popen | None = None
    cancelling: bool = False

    @property
    def active(self) -> bool:
        return self.state in (WAITING, RUNNING)


class JobQueue:
    """Jobs in order, kept in ``folder``, run one at a time by a worker thread; safe to call from any thread.
    ``kinds``: each task's ``kind`` and its class, which rebuilds the stored tasks."""

    def __init__(self, folder: Path, kinds: dict[str, type[Task]]):
        self._store = JobStore(folder)
        self._kinds = kinds
        self._lock = threading.Condition()
        self._jobs: dict[int, Job] = {}  # every job seen, by id, updated from the store when listed
        self._running: Job | None = None  # the job this process runs
        self._closed = False
        self._clean_orphans()
        self._worker = threading.Thread(target=self._work, name="vidsynth-jobs", daemon=True)
        self._worker.start()

    # ------------------------------------------------------------ what the page calls

    def submit(self, task: Task) -> Job:
        with self._lock:
            if self._closed:
                raise VidSynthError("the app is shutting down; no new jobs are taken")
            output = str(task.output) if task.output else None
            job = self._job(self._store.add(task.kind, task.title, task.spec(), output), task)
            self._lock.notify_all()
            return job

    def cancel(self, job_id: int) -> Job:
        """A waiting job leaves the queue at once; a running one is interrupted (see the module's docstring)."""
        with self._lock:
            job = self._find(job_id)
            if job.state == WAITING and self._store.cancel_waiting(job.id, "cancelled before it started"):
                return self._find(job_id)
            job = self._find(job_id)  # another app process may have started it meanwhile
            if job is self._running:
                job.cancelling = True
                if job.process is not None:
                    child.interrupt(job.process)
                return job
            if job.state == RUNNING:
                raise VidSynthError(f"job {job_id} runs in another app process on these outputs. Cancel it there")
            raise VidSynthError(f"job {job_id} has already ended ({job.state}); there is nothing to cancel")

    def jobs(self) -> list[Job]:
        """The waiting and running jobs and the newest ended ones (of every app process on these outputs)."""
        with self._lock:
            return [self._job(row) for row in self._store.rows()]

    def events(self) -> list[dict]:
        return self._store.events()

    def position(self, job: Job) -> int | None:
        """1 for the next job to run, 2 for the one after it, ...; None unless it waits (as last listed)."""
        with self._lock:
            waiting = sorted(j.id for j in self._jobs.values() if j.state == WAITING)
            return waiting.index(job.id) + 1 if job.state == WAITING and job.id in waiting else None

    def snapshot(self, job: Job) -> dict:
        """The job as plain data (what the page and the API show)."""
        with self._lock:
            progress = ""
            if job is self._running:
                progress = job.progress.describe()
            elif job.state == RUNNING:
                progress = "running in another app process on these outputs"
            return {
                "id": job.id,
                "kind": job.task.kind,
                "title": job.task.title,
                "state": job.state,
                "position": self.position(job),
                "submitted": job.submitted,
                "started": job.started,
                "ended": job.ended,
                "progress": progress,
                "step": job.progress.step,
                "total": job.progress.total,
                "loss": job.progress.loss,
                "eta_s": job.progress.eta_s,
                "output": str(job.task.output) if job.task.output else None,
                "message": job.message,
            }

    def close(self) -> None:
        """Stop: the running job is cancelled (and waited for); the waiting ones stay queued for the next start."""
        with self._lock:
            self._closed = True
            if self._running is not None:
                self.cancel(self._running.id)
            self._lock.notify_all()
        self._worker.join(timeout=child.GRACE_S + 5)
        if not self._worker.is_alive():
            self._store.close()

    # ------------------------------------------------------------ the worker

    def _job(self, row: Row, task: Task | None = None) -> Job:
        """The job of ``row``, its state as stored (the one this process runs keeps its own until it ends)."""
        job = self._jobs.get(row.id)
        if job is None:
            job = self._jobs[row.id] = Job(id=row.id, task=task or self._task(row), submitted=row.submitted)
        if job is not self._running:
            job.state, job.started, job.ended, job.message = row.state, row.started, row.ended, row.message
            job.task.output = job.task.output or (Path(row.output) if row.output else None)
        return job

    def _task(self, row: Row) -> Task:
        """The task of a stored job, rebuilt, with the output it began writing."""
        task = self._kinds[row.kind].from_spec(row.spec)
        task.output = task.output or (Path(row.output) if row.output else None)
        return task

    def _find(self, job_id: int) -> Job:
        row = self._store.row(job_id)
        if row is None:
            raise VidSynthError(f"there is no job {job_id}. Pick one from the queue")
        return self._job(row)

    def _clean_orphans(self) -> None:
        """Jobs left running by an app that was killed: their partial output removed, each marked failed."""
        for row in self._store.orphans():
            message = ORPHANED
            try:
                self._task(row).finish(False)
            except Exception as err:
                logger.exception("cleaning up after job %d failed", row.id)
                message += f", but its clean-up failed: {type(err).__name__}: {err}"
            self._store.end(row.id, FAILED, message)

    def _next(self) -> Job | None:
        with self._lock:
            while not self._closed:
                self._clean_orphans()
                row = self._store.claim()
                if row is not None:
                    self._running = job = self._job(row)
                    job.state, job.started = RUNNING, row.started
                    return job
                self._lock.wait(POLL_S)
            return None

    def _work(self) -> None:
        while (job := self._next()) is not None:
            state, message = self._execute(job)
            with self._lock:
                self._running = None
                job.state, job.message, job.ended = state, message, self._store.end(job.id, state, message)

    def _execute(self, job: Job) -> tuple[str, str]:
        """Run the job's commands, then its clean-up; how it ended. Any exception of its task is its failure."""
        succeeded, message = False, ""
        try:
            commands = job.task.begin()
            output = str(job.task.output) if job.task.output else None
            self._store.update(job.id, job.task.spec(), output)  # what a clean-up needs if the app is killed
            for label, args in commands:
                message = self._run(job, label, args)
                if message is not None:
                    break
            else:
                succeeded, message = True, f"wrote {job.task.output}"
        except VidSynthError as err:  # the output folder was taken while the job waited, e.g.
            message = str(err)
        except Exception as err:  # the queue must outlive any one job
            logger.exception("job %d failed", job.id)
            message = f"{type(err).__name__}: {err}"
        try:
            job.task.finish(succeeded)
        except Exception as err:  # so must it outlive a clean-up that fails
            logger.exception("cleaning up after job %d failed", job.id)
            failed = f"its clean-up failed: {type(err).__name__}: {err}"
            succeeded, message = False, failed if succeeded or not message else f"{message}; {failed}"
        if succeeded:
            return DONE, message
        return (CANCELLED, "cancelled") if job.cancelling else (FAILED, message)

    def _run(self, job: Job, label: str, args: list[str]) -> str | None:
        """Run one command of ``job`` to its end, following its events; None if it succeeded, else why not."""
        with tempfile.TemporaryDirectory(prefix="vidsynth-job-") as scratch:
            feed, log = EventFile(Path(scratch) / "events.jsonl"), Path(scratch) / "output.log"
            process = child.start(args, feed.path, log)
            with self._lock:
                job.process, job.progress.ending = process, None
                if job.cancelling:
                    child.interrupt(process)
            code = None
            while code is None:
                try:
                    code = process.wait(timeout=FOLLOW_S)
                except subprocess.TimeoutExpired:
                    pass
                self._follow(job, feed)
            last = child.last_lines(log)
        with self._lock:
            job.process = None
            if job.cancelling:
                return "cancelled"
            ending = job.progress.ending or {}
        if code == 0:
            return None
        if ending.get("event") in ("error", "interrupted"):
            why = ending["message"] if ending["event"] == "error" else f"interrupted: {ending['message']}"
        else:  # it died without a word (killed, or crashed before it could say)
            why = f"exit code {code}; its last output: {' / '.join(last[-3:])}"
        return f"{label} failed: {why}"

    def _follow(self, job: Job, feed: EventFile) -> None:
        new = feed.read_new()
        with self._lock:
            for event in new:
                job.progress.update(event)
