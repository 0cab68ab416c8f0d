"""Machine-readable progress of a command: JSON lines appended to the file named by ``VIDSYNTH_EVENTS``.

A program that starts ``python -m vidsynth.train`` (``inference``, ``evaluate``) and wants to follow it
(the web app's job queue) sets ``VIDSYNTH_EVENTS=/path/events.jsonl`` in the child's environment and
reads the file as it grows, instead of reading progress bars meant for people. Unset, every call here
returns at once and nothing is written. One event per line, each an object with ``event`` and ``time``
(seconds since the epoch):

* ``{"event": "stage", "name": "tuning", "total": 500, "step": 0}``: a stage began (``total`` steps, when known);
* ``{"event": "progress", "stage": "tuning", "step": 3, "total": 500, "eta_s": 41.0, "loss": 0.12}``:
  ``step`` of ``total`` done (``eta_s``: seconds left at the stage's rate so far; more keys per stage);
* ``{"event": "stage_end", "name": "tuning"}``: the stage ended;
* ``{"event": "sample", "path": ".../samples/sample-3/grid.gif", "step": 3}``: a validation sample is written;
* ``{"event": "done", "output": ...}``: the command's result is in place;
* ``{"event": "error", "message": ...}``: the command failed; the message is its one ``error:`` line;
* ``{"event": "interrupted", "message": ...}``: Ctrl-C; the message says what was kept.

Stages nest: an edit's ``inversion``, then ``prompts`` with each prompt's ``sampling`` inside, all
inside a tuning run's ``validation`` when it validates. Each line is written by one ``write`` to a file
opened for appending, so a reader sees whole lines, and the line is on disk before the call returns.
Only process 0 of a distributed launch (``RANK``) writes, so every event is written once.
"""

import json
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

ENV = "VIDSYNTH_EVENTS"

_started: dict[str, tuple[float, int]] = {}  # stage -> (monotonic time, step) when it began: for eta_s


def _target() -> str | None:
    path = os.environ.get(ENV)
    return path if path and os.environ.get("RANK", "0") == "0" else None


def enabled() -> bool:
    return _target() is not None


def emit(event: str, **fields) -> None:
    """Append one event (``fields`` must be JSON values); nothing when ``VIDSYNTH_EVENTS`` is unset."""
    path = _target()
    if path is None:
        return
    line = json.dumps({"event": event, "time": time.time(), **fields}, ensure_ascii=False) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def begin(name: str, total: int | None = None, step: int = 0, **fields) -> None:
    """A stage begins at ``step`` (a resumed run's first step) of ``total``."""
    _started[name] = (time.monotonic(), step)
    emit("stage", name=name, total=total, step=step, **fields)


def end(name: str) -> None:
    _started.pop(name, None)
    emit("stage_end", name=name)


def progress(stage: str, step: int, total: int | None, **fields) -> None:
    """``step`` of ``total`` done in ``stage``, with the time left at the rate since the stage began."""
    if not enabled():
        return
    began, first = _started.setdefault(stage, (time.monotonic(), step))
    eta_s = None
    if total is not None and step > first:
        eta_s = round((time.monotonic() - began) / (step - first) * (total - step), 1)
    emit("progress", stage=stage, step=step, total=total, eta_s=eta_s, **fields)


@contextmanager
def stage(name: str, total: int | None = None, **fields) -> Iterator[None]:
    """A stage around a block: its begin and, when the block ends without an exception, its end."""
    begin(name, total, **fields)
    yield
    end(name)


def steps(iterable: Iterable, name: str, total: int | None = None) -> Iterable:
    """``iterable`` as a stage: its begin, a progress event after each item, its end; itself when events are off."""
    if not enabled():
        return iterable
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)
    return _steps(iterable, name, total)


def _steps(iterable: Iterable, name: str, total: int | None) -> Iterator:
    begin(name, total)
    for step, item in enumerate(iterable, start=1):
        yield item
        progress(name, step, total)
    end(name)
