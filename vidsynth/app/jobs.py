"""The job queue: tuning and edit jobs, one at a time, each run as the commands a user would type.

A job is ``python train.py --config ...`` or ``python inference.py ...`` (then ``python -m
vidsynth.evaluate``) in a process of its own, so it takes the same code paths, checks and atomic
writes as the command line; a crash in it cannot take the app down; and cancelling it is stopping a
process group: Ctrl-C's signal first, so the command removes what it was writing and exits as it
does at a terminal, then a kill if it has not ended after :data:`GRACE_S`. What an unfinished job
still leaves (a tuning run's folder) its :class:`Task` removes.

A command's progress, result and error message come from the events it writes to a file of its own
(:mod:`vidsynth.events`, read by :mod:`vidsynth.app.progress`); its terminal output goes to a log, whose
last lines explain a command that died without a word.

The queue lives in the server, not in a browser session, so every tab sees the same jobs. The
machine has one device: one job runs, the others wait in the order they came, their position shown.
"""

import logging
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from vidsynth import events
from vidsynth.app.progress import EventFile, Progress
from vidsynth.commands import child_env
from vidsynth.errors import VidSynthError

logger = logging.getLogger(__name__)

WAITING, RUNNING, DONE, FAILED, CANCELLED = "waiting", "running", "done", "failed", "cancelled"
GRACE_S = 10.0  # seconds a cancelled command gets to clean up after Ctrl-C's signal before it is killed
POLL_S = 0.25  # how often a running command's new events are read
_LOG_LINES = 40
_LOG_TAIL_BYTES = 16384


class Task(Protocol):
    """What a job does. :meth:`begin` runs when the job leaves the queue (a job cancelled while it waits
    never calls it, so it never creates anything); :meth:`finish` after its commands, whatever happened."""

    kind: str  # "tune" or "edit"
    title: str
    output: Path | None  # the folder the job writes (known once it began)

    def begin(self) -> list[tuple[str, list[str]]]:
        """The commands to run in order, each (label, arguments of ``python``)."""
        ...

    def finish(self, succeeded: bool) -> None:
        """Remove what an unfinished job left behind."""
        ...


@dataclass
class Job:
    id: int
    task: Task
    submitted: float
    state: str = WAITING
    started: float | None = None
    ended: float | None = None
    progress: Progress = field(default_factory=Progress)
    message: str = ""  # why it failed, or what it wrote
    log: deque = field(default_factory=lambda: deque(maxlen=_LOG_LINES))  # the last command's last output lines
    process: subprocess.Popen | None = None
    cancelling: bool = False

    @property
    def active(self) -> bool:
        return self.state in (WAITING, RUNNING)


class JobQueue:
    """Jobs in order, run one at a time by a worker thread; every method is safe to call from any thread."""

    def __init__(self):
        self._lock = threading.Condition()
        self._jobs: list[Job] = []
        self._events: list[dict] = []  # submitted / started / ended, in the order they happened
        self._closed = False
        self._worker = threading.Thread(target=self._work, name="vidsynth-jobs", daemon=True)
        self._worker.start()

    # ------------------------------------------------------------ what the page calls

    def submit(self, task: Task) -> Job:
        with self._lock:
            if self._closed:
                raise VidSynthError("the app is shutting down; no new jobs are taken")
            job = Job(id=len(self._jobs) + 1, task=task, submitted=time.time())
            self._jobs.append(job)
            self._event(job, "submitted")
            self._lock.notify_all()
            return job

    def cancel(self, job_id: int) -> Job:
        """A waiting job leaves the queue at once; a running one is interrupted (see the module's docstring)."""
        with self._lock:
            job = self._find(job_id)
            if job.state == WAITING:
                self._end(job, CANCELLED, "cancelled before it started")
            elif job.state == RUNNING:
                job.cancelling = True
                if job.process is not None:
                    self._interrupt(job.process)
            else:
                raise VidSynthError(f"job {job_id} has already ended ({job.state}); there is nothing to cancel")
            return job

    def jobs(self) -> list[Job]:
        with self._lock:
            return list(self._jobs)

    def events(self) -> list[dict]:
        with self._lock:
            return [dict(event) for event in self._events]

    def position(self, job: Job) -> int | None:
        """1 for the next job to run, 2 for the one after it, ...; None unless it waits."""
        with self._lock:
            waiting = [j for j in self._jobs if j.state == WAITING]
            return waiting.index(job) + 1 if job in waiting else None

    def snapshot(self, job: Job) -> dict:
        """The job as plain data (what the page and the API show)."""
        with self._lock:
            return {
                "id": job.id,
                "kind": job.task.kind,
                "title": job.task.title,
                "state": job.state,
                "position": self.position(job),
                "submitted": job.submitted,
                "started": job.started,
                "ended": job.ended,
                "progress": job.progress.describe() if job.state == RUNNING else "",
                "step": job.progress.step,
                "total": job.progress.total,
                "loss": job.progress.loss,
                "eta_s": job.progress.eta_s,
                "output": str(job.task.output) if job.task.output else None,
                "message": job.message,
            }

    def close(self) -> None:
        """Cancel every job and wait for the running one to end (the app is stopping)."""
        with self._lock:
            self._closed = True
            for job in self._jobs:
                if job.active:
                    self.cancel(job.id)
            self._lock.notify_all()
        self._worker.join(timeout=GRACE_S + 5)

    # ------------------------------------------------------------ the worker

    def _find(self, job_id: int) -> Job:
        for job in self._jobs:
            if job.id == job_id:
                return job
        raise VidSynthError(f"there is no job {job_id}. Pick one from the queue")

    def _event(self, job: Job, what: str) -> None:
        self._events.append({"time": time.time(), "job": job.id, "event": what})

    def _end(self, job: Job, state: str, message: str) -> None:
        job.state, job.ended, job.message = state, time.time(), message
        self._event(job, state)

    def _next(self) -> Job | None:
        with self._lock:
            while not self._closed and not any(j.state == WAITING for j in self._jobs):
                self._lock.wait()
            if self._closed:
                return None
            job = next(j for j in self._jobs if j.state == WAITING)
            job.state, job.started = RUNNING, time.time()
            self._event(job, "started")
            return job

    def _work(self) -> None:
        while (job := self._next()) is not None:
            succeeded, message = False, ""
            try:
                for label, args in job.task.begin():
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
            finally:
                job.task.finish(succeeded)
            with self._lock:
                state = DONE if succeeded else CANCELLED if job.cancelling else FAILED
                self._end(job, state, "cancelled" if state == CANCELLED else message)

    def _run(self, job: Job, label: str, args: list[str]) -> str | None:
        """Run one command of ``job`` to its end, following its events; None if it succeeded, else why not."""
        with tempfile.TemporaryDirectory(prefix="vidsynth-job-") as scratch:
            feed, log = EventFile(Path(scratch) / "events.jsonl"), Path(scratch) / "output.log"
            with log.open("wb") as output:
                process = subprocess.Popen(
                    args,
                    env={**child_env(), "PYTHONUNBUFFERED": "1", events.ENV: str(feed.path)},
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group, so a cancel stops its children too
                )
            with self._lock:
                job.process, job.progress.ending = process, None
                if job.cancelling:
                    self._interrupt(process)
            code = None
            while code is None:
                try:
                    code = process.wait(timeout=POLL_S)
                except subprocess.TimeoutExpired:
                    pass
                self._follow(job, feed)
            job.log.extend(_last_lines(log))
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
            why = f"exit code {code}; its last output: {' / '.join(list(job.log)[-3:])}"
        return f"{label} failed: {why}"

    def _follow(self, job: Job, feed: EventFile) -> None:
        new = feed.read_new()
        with self._lock:
            for event in new:
                job.progress.update(event)

    def _interrupt(self, process: subprocess.Popen) -> None:
        """Ctrl-C's signal to the process group now, a kill after :data:`GRACE_S` if it is still running."""
        _signal_group(process, signal.SIGINT)
        timer = threading.Timer(GRACE_S, _signal_group, (process, signal.SIGKILL))
        timer.daemon = True
        timer.start()


def _last_lines(log: Path) -> list[str]:
    """The last lines of a command's output, each tqdm redraw (``\\r``) a line of its own."""
    with log.open("rb") as file:
        file.seek(max(0, log.stat().st_size - _LOG_TAIL_BYTES))
        text = file.read().decode("utf-8", errors="replace")
    return [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()][-_LOG_LINES:]


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
