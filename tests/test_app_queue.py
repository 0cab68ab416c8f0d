"""The app's job queue as a service: it survives its tasks' errors, outlives a restart, is shared safely by two
app processes on one outputs folder, and its commands end with the app, even a killed one.

The tasks here run small ``python -c`` scripts (no model), so each test takes seconds.
"""

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vidsynth.app.jobs import CANCELLED, DONE, FAILED, ORPHANED, JobQueue
from vidsynth.app.store import JobStore

ROOT = Path(__file__).resolve().parents[1]
WAIT_S = 120  # a guard against a hang, not a speed requirement
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")

# Creates its output folder, says it started (a file beside it, written whole), then works until stopped.
ENDLESS = (
    "import os, pathlib, sys, time; out = pathlib.Path(sys.argv[1]); out.mkdir()\n"
    "(out.parent / 'pid.tmp').write_text(str(os.getpid())); (out.parent / 'pid.tmp').rename(out.parent / 'pid')\n"
    "while True: time.sleep(0.05)"
)
QUICK = "import pathlib, sys; out = pathlib.Path(sys.argv[1]); out.mkdir(); (out / 'result.txt').write_text('ok')"


class ScriptTask:
    """``python -c SCRIPT OUTPUT``; an unfinished job's output is removed. ``fail``: "begin" or "finish" raise."""

    kind = "script"

    def __init__(self, output: str | Path, script: str = QUICK, fail: str = ""):
        self.output, self.script, self.fail = Path(output), script, fail
        self.title = f"script into {self.output.name}"

    def spec(self) -> dict:
        return {"output": str(self.output), "script": self.script, "fail": self.fail}

    @classmethod
    def from_spec(cls, spec: dict) -> "ScriptTask":
        return cls(spec["output"], spec["script"], spec["fail"])

    def begin(self) -> list[tuple[str, list[str]]]:
        if self.fail == "begin":
            raise RuntimeError("the task could not begin")
        return [("script", [sys.executable, "-c", self.script, str(self.output)])]

    def finish(self, succeeded: bool) -> None:
        if self.fail == "finish":
            raise RuntimeError("the clean-up broke")
        if not succeeded and self.output.is_dir():
            shutil.rmtree(self.output)


KINDS = {ScriptTask.kind: ScriptTask}


def wait_for_event(queue: JobQueue, job_id: int, event: str) -> list[tuple[int, str]]:
    """The queue's events, (job, event) in order, once the job's ``event`` is among them."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        events = [(e["job"], e["event"]) for e in queue.events()]
        if (job_id, event) in events:
            return events
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never got the event {event!r}: {queue.events()}")


def wait_for_file(path: Path, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + WAIT_S
    while not path.exists():
        assert process is None or process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie nobody reaped yet has ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def wait_until_gone(pid: int) -> None:
    deadline = time.monotonic() + WAIT_S
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid), f"process {pid} outlived its parent"


def test_the_worker_survives_any_error_of_a_task_as_that_jobs_failure(tmp_path):
    queue = JobQueue(tmp_path / "queue", KINDS)
    try:
        broken_finish = queue.submit(ScriptTask(tmp_path / "a", fail="finish"))
        broken_begin = queue.submit(ScriptTask(tmp_path / "b", fail="begin"))
        fine = queue.submit(ScriptTask(tmp_path / "c"))
        wait_for_event(queue, fine.id, DONE)
        jobs = {job.id: job for job in queue.jobs()}
    finally:
        queue.close()
    assert jobs[broken_finish.id].state == FAILED
    assert jobs[broken_finish.id].message == "its clean-up failed: RuntimeError: the clean-up broke"
    assert (jobs[broken_begin.id].state, jobs[broken_begin.id].message) == (
        FAILED,
        "RuntimeError: the task could not begin",
    )
    assert jobs[fine.id].state == DONE and (tmp_path / "c" / "result.txt").is_file()


def test_jobs_waiting_when_the_app_stops_run_when_it_starts_again(tmp_path):
    queue = JobQueue(tmp_path / "queue", KINDS)
    running = queue.submit(ScriptTask(tmp_path / "a", ENDLESS))
    waiting = queue.submit(ScriptTask(tmp_path / "b"))
    wait_for_event(queue, running.id, "started")
    queue.close()  # as Ctrl-C does: the running job is cancelled, the waiting one stays queued
    assert not (tmp_path / "b").exists()

    again = JobQueue(tmp_path / "queue", KINDS)
    try:
        events = wait_for_event(again, waiting.id, DONE)
        states = {job.id: job.state for job in again.jobs()}
    finally:
        again.close()
    assert states == {running.id: CANCELLED, waiting.id: DONE}
    assert events.index((running.id, CANCELLED)) < events.index((waiting.id, "started"))
    assert not (tmp_path / "a").exists() and (tmp_path / "b" / "result.txt").is_file()


CLAIMER = """
import sys, time
from pathlib import Path
from vidsynth.app.store import DONE, JobStore
store = JobStore(Path(sys.argv[1]))
print("ready", flush=True)
while not Path(sys.argv[2]).exists():
    time.sleep(0.01)
while (row := store.claim()) is not None:
    print(row.id, flush=True)
    store.end(row.id, DONE, "")
"""


def test_two_app_processes_on_one_outputs_folder_never_run_the_same_job(tmp_path):
    store = JobStore(tmp_path / "queue")
    ids = [store.add("script", f"job {n}", {}, None).id for n in range(150)]
    store.close()
    go = tmp_path / "go"
    claimers = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER, str(tmp_path / "queue"), str(go)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for claimer in claimers:
        assert claimer.stdout.readline() == "ready\n"
    go.touch()  # both claim at once
    claimed = [[int(line) for line in claimer.communicate(timeout=WAIT_S)[0].split()] for claimer in claimers]
    assert [claimer.returncode for claimer in claimers] == [0, 0]
    assert sorted(claimed[0] + claimed[1]) == ids  # each job claimed once, by one of them


PARENT = """
import subprocess, sys
from vidsynth.commands import die_with_parent
child = subprocess.Popen([sys.executable, "-c", "import time\\nwhile True: time.sleep(0.05)"],
                         preexec_fn=die_with_parent, start_new_session=True)
print(child.pid, flush=True)
child.wait()
"""


@linux_only
def test_a_child_started_with_die_with_parent_ends_when_its_parent_is_killed():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    assert alive(child)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    wait_until_gone(child)


APP = """
import sys, threading
from pathlib import Path
from tests.test_app_queue import ENDLESS, KINDS, ScriptTask
from vidsynth.app.jobs import JobQueue
queue = JobQueue(Path(sys.argv[1]), KINDS)
queue.submit(ScriptTask(sys.argv[2], ENDLESS))
threading.Event().wait()
"""


@linux_only
def test_a_job_running_when_the_app_is_killed_ends_with_it_then_is_marked_failed_and_its_output_removed(tmp_path):
    run = tmp_path / "run"
    app = subprocess.Popen([sys.executable, "-c", APP, str(tmp_path / "queue"), str(run)], cwd=ROOT)
    wait_for_file(tmp_path / "pid", app)
    command = int((tmp_path / "pid").read_text())
    app.send_signal(signal.SIGKILL)
    app.wait()
    wait_until_gone(command)  # the job's command did not go on writing into the run
    assert run.is_dir()  # what it was writing, left by the crash

    again = JobQueue(tmp_path / "queue", KINDS)
    try:
        (job,) = again.jobs()
    finally:
        again.close()
    assert (job.state, job.message) == (FAILED, ORPHANED)
    assert not run.exists()
