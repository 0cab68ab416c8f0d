"""The job queue: tuning and edit jobs, one at a time, each run as the commands a user would type.

A job is ``python train.py --config ...`` or ``python inference.py ...`` (then ``python -m
vidsynth.evaluate``) in a process of its own, so it takes the same code paths, checks and atomic
writes as the command line; a crash in it cannot take the app down; and cancelling it is stopping a
process group: Ctrl-C's signal first, so the command removes what it was writing and exits as it
does at a terminal, then a kill if it has not ended after :data:`GRACE_S`. What an unfinished job
still leaves (a tuning run's folder) its :class:`Task` removes.

The queue lives in the server, not in a browser session, so every tab sees the same jobs. The
machine has one device: one job runs, the others wait in the order they came, their position shown.
"""

import codecs
import logging
import os
import signal
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from vidsynth.app.progress import Progress, parse_bar, split_output
from vidsynth.commands import child_env
from vidsynth.errors import VidSynthError

logger = logging.getLogger(__name__)

WAITING, RUNNING, DONE, FAILED, CANCELLED = "waiting", "running", "done", "failed", "cancelled"
GRACE_S = 10.0  # seconds a cancelled command gets to clean up after Ctrl-C's signal before it is killed
_LOG_LINES = 40


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
    log: deque = field(default_factory=lambda: deque(maxlen=_LOG_LINES))
    process: subprocess.Popen | None = None
    cancelling: bool = False

    @property
    def active(self) -> bool:
        return self.state in (WAITING, RUNNING)


def error_line(lines: list[str]) -> str | None:
    """The one-line message ``vidsynth.cli.run_main`` ends a failed command with, without its level."""
    for line in reversed(lines):
        for prefix in ("error: ", "interrupted: "):
            if line.startswith(prefix):
                return line.removeprefix("error: ")
    return None


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
        """Run one command of ``job`` to its end, following its progress; None if it succeeded, else why not."""
        process = subprocess.Popen(
            args,
            env={**child_env(), "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so a cancel stops its children too
        )
        with self._lock:
            job.process = process
            if job.cancelling:
                self._interrupt(process)
        decoder, pending = codecs.getincrementaldecoder("utf-8")(errors="replace"), ""
        while chunk := os.read(process.stdout.fileno(), 65536):
            lines, pending = split_output(pending + decoder.decode(chunk))
            self._follow(job, lines)
        self._follow(job, [pending] if pending.strip() else [])
        process.stdout.close()
        code = process.wait()
        with self._lock:
            job.process = None
            if job.cancelling:
                return "cancelled"
        if code == 0:
            return None
        why = error_line(list(job.log)) or f"exit code {code}; its last output: {' / '.join(list(job.log)[-3:])}"
        return f"{label} failed: {why}"

    def _follow(self, job: Job, lines: list[str]) -> None:
        with self._lock:
            for line in lines:
                bar = parse_bar(line)
                if bar is not None:
                    job.progress.update(bar)
                else:
                    job.log.append(line.strip())

    def _interrupt(self, process: subprocess.Popen) -> None:
        """Ctrl-C's signal to the process group now, a kill after :data:`GRACE_S` if it is still running."""
        _signal_group(process, signal.SIGINT)
        timer = threading.Timer(GRACE_S, _signal_group, (process, signal.SIGKILL))
        timer.daemon = True
        timer.start()


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
