"""The job queue's store: SQLite (standard library) in ``<outputs>/.queue/``, so the queue outlives the app.

A restarted app finds the jobs that were waiting and runs them; the ended ones stay as history. Several
app processes may share one outputs folder: a job is claimed with one ``UPDATE ... WHERE
state='waiting'`` inside a write transaction, so no two processes run the same job.

While a process runs a job it holds an exclusive lock (``flock``) on ``job-<id>.lock``; the
operating system drops it when that process dies, however it dies. So a job marked running whose
lock can be taken was left by an app that was killed or crashed (:meth:`JobStore.orphans`): it is
marked failed and its partial output removed, by the next app that looks.
"""

import fcntl
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

WAITING, RUNNING, DONE, FAILED, CANCELLED = "waiting", "running", "done", "failed", "cancelled"
DATABASE = "jobs.sqlite3"
HISTORY = 100  # ended jobs listed, the newest; the waiting and running ones are always listed
EVENTS = 1000  # events listed, the newest
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    spec TEXT NOT NULL,
    state TEXT NOT NULL,
    submitted REAL NOT NULL,
    started REAL,
    ended REAL,
    output TEXT,
    message TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    job INTEGER NOT NULL,
    event TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Row:
    """One job as stored. ``spec``: what rebuilds its task (see :class:`vidsynth.app.jobs.Task`)."""

    id: int
    kind: str
    title: str
    spec: dict
    state: str
    submitted: float
    started: float | None
    ended: float | None
    output: str | None
    message: str


class JobStore:
    """The jobs and their events in ``folder/jobs.sqlite3``; every method is safe to call from any thread."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.folder / DATABASE, timeout=60, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._mutex = threading.RLock()
        self._locks = {}  # job id -> the open lock file of a job this process runs
        with self._mutex:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._mutex:
            self._db.close()

    def _event(self, job_id: int, event: str) -> None:
        self._db.execute("INSERT INTO events (time, job, event) VALUES (?, ?, ?)", (time.time(), job_id, event))

    # ------------------------------------------------------------ reading

    def row(self, job_id: int) -> Row | None:
        with self._mutex:
            found = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _row(found) if found else None

    def rows(self) -> list[Row]:
        """The waiting and running jobs and the newest :data:`HISTORY` ended ones, in the order they came."""
        with self._mutex:
            found = self._db.execute(
                "SELECT * FROM jobs WHERE state IN (?, ?) OR id IN "
                "(SELECT id FROM jobs WHERE state NOT IN (?, ?) ORDER BY id DESC LIMIT ?) ORDER BY id",
                (WAITING, RUNNING, WAITING, RUNNING, HISTORY),
            ).fetchall()
        return [_row(row) for row in found]

    def events(self) -> list[dict]:
        """The newest :data:`EVENTS` submitted / started / ended events of the jobs, in the order they happened."""
        with self._mutex:
            found = self._db.execute("SELECT time, job, event FROM events ORDER BY seq DESC LIMIT ?", (EVENTS,))
            return [dict(event) for event in reversed(found.fetchall())]

    # ------------------------------------------------------------ writing

    def add(self, kind: str, title: str, spec: dict, output: str | None) -> Row:
        with self._mutex, self._transaction():
            cursor = self._db.execute(
                "INSERT INTO jobs (kind, title, spec, state, submitted, output) VALUES (?, ?, ?, ?, ?, ?)",
                (kind, title, json.dumps(spec), WAITING, time.time(), output),
            )
            self._event(cursor.lastrowid, "submitted")
        return self.row(cursor.lastrowid)

    def cancel_waiting(self, job_id: int, message: str) -> bool:
        """Cancel the job if it still waits; False when it has left the queue meanwhile."""
        with self._mutex, self._transaction():
            cursor = self._db.execute(
                "UPDATE jobs SET state = ?, ended = ?, message = ? WHERE id = ? AND state = ?",
                (CANCELLED, time.time(), message, job_id, WAITING),
            )
            if cursor.rowcount:
                self._event(job_id, CANCELLED)
        return bool(cursor.rowcount)

    def claim(self) -> Row | None:
        """The oldest waiting job, now running in this process (its lock held), or None when none waits."""
        with self._mutex, self._transaction():
            first = self._db.execute("SELECT id FROM jobs WHERE state = ? ORDER BY id LIMIT 1", (WAITING,)).fetchone()
            if first is None:
                return None
            job_id = first["id"]
            self._db.execute(  # the write lock is ours since BEGIN IMMEDIATE: no other process claims it meanwhile
                "UPDATE jobs SET state = ?, started = ? WHERE id = ? AND state = ?",
                (RUNNING, time.time(), job_id, WAITING),
            )
            self._locks[job_id] = self._lock(job_id)  # taken before the commit makes it "running" for others
            self._event(job_id, "started")
        return self.row(job_id)

    def update(self, job_id: int, spec: dict, output: str | None) -> None:
        """What a job's task knows once it began (its output, what it created): what a clean-up after a crash needs."""
        with self._mutex:
            self._db.execute("UPDATE jobs SET spec = ?, output = ? WHERE id = ?", (json.dumps(spec), output, job_id))

    def end(self, job_id: int, state: str, message: str) -> float:
        """Record how a job ended, then let go of its lock; when it ended."""
        ended = time.time()
        with self._mutex:
            with self._transaction():
                self._db.execute(
                    "UPDATE jobs SET state = ?, ended = ?, message = ? WHERE id = ?", (state, ended, message, job_id)
                )
                self._event(job_id, state)
            lock = self._locks.pop(job_id, None)
            if lock is not None:
                (self.folder / f"job-{job_id}.lock").unlink(missing_ok=True)
                lock.close()
        return ended

    def orphans(self) -> list[Row]:
        """Jobs marked running whose process is gone; each is now this process's to clean up and :meth:`end`."""
        with self._mutex, self._transaction():
            found = []
            for row in self._db.execute("SELECT * FROM jobs WHERE state = ?", (RUNNING,)).fetchall():
                if row["id"] not in self._locks and (lock := self._lock(row["id"], wait=False)) is not None:
                    self._locks[row["id"]] = lock
                    found.append(_row(row))
        return found

    def _lock(self, job_id: int, wait: bool = True):
        """The job's lock file, locked by this process; with ``wait=False``, None when another process holds it."""
        lock = open(self.folder / f"job-{job_id}.lock", "a")  # noqa: SIM115 (held while the job runs)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            lock.close()
            return None
        return lock

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction, taken at once: no other connection writes until it ends."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")


def _row(found: sqlite3.Row) -> Row:
    return Row(**{**dict(found), "spec": json.loads(found["spec"])})
