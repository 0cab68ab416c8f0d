"""Run tuning (``vidsynth.train``) or editing (or animating) and scoring (:mod:`~.edit_cell`) for one job in a
process of its own.

Each stage is a child process: its memory is returned when it ends (an experiment of a hundred
tunings does not accumulate one), a crash fails one cell and not the experiment, and its peak
memory is its own. The child is this module's ``main``, which runs the command exactly as
``python -m vidsynth.train ...`` would and, on the way out, writes the stage's seconds, exit code and peak
memory (the process's peak resident set, and on a GPU torch's peak allocation) to a JSON file. A child
dies with the process that started it (:func:`~vidsynth.commands.die_with_parent`): an experiment killed
even with SIGKILL leaves no stage running on in its folder.

    python -m vidsynth.experiment.stage STATS_JSON MODULE [command arguments ...]
"""

import json
import resource
import runpy
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from vidsynth.commands import child_env, die_with_parent
from vidsynth.media.writers import write_json

MODULES = {"tune": "vidsynth.train", "edit": "vidsynth.experiment.edit_cell"}
GIB = 2**30


@dataclass(frozen=True)
class StageResult:
    """How a stage went: ``error`` is None when it succeeded, else the message it ended with."""

    seconds: float
    peak_ram_gib: float | None
    peak_gpu_gib: float | None
    error: str | None
    result_mb: float | None = None  # a tuning's result (RunFolder.result_bytes), 10^6 bytes; set by cells.tune


def _last_error(log: Path, code: int) -> str:
    """The ``error:`` line a VidSynth command ends with, else the last line of the log."""
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    if errors:
        return errors[-1].removeprefix("error:").strip()
    last = lines[-1] if lines else "no output"
    return f"exit code {code}: {last} (log: {log})"


def run_stage(kind: str, argv: list[str], log: Path, stats: Path) -> StageResult:
    """Run the ``kind`` stage (tune | edit) with ``argv``; its output goes to ``log``, its figures to ``stats``."""
    stats.unlink(missing_ok=True)
    env = child_env()
    env.setdefault("TQDM_MININTERVAL", "10")  # progress bars in a log file: a line every 10 s, not every step
    command = [sys.executable, "-m", "vidsynth.experiment.stage", str(stats), MODULES[kind], *argv]
    started = time.perf_counter()
    with log.open("w") as output:
        # A process group of its own: a Ctrl-C in the terminal reaches the experiment, which ends the stage.
        code = subprocess.run(
            command, stdout=output, stderr=subprocess.STDOUT, env=env, preexec_fn=die_with_parent, process_group=0
        ).returncode
    figures = json.loads(stats.read_text()) if stats.is_file() else {}
    seconds = figures.get("seconds", time.perf_counter() - started)
    error = None if code == 0 else _last_error(log, code)
    return StageResult(seconds, figures.get("peak_ram_gib"), figures.get("peak_gpu_gib"), error)


def _peak_gpu_gib() -> float | None:
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_initialized():
        return None
    return max(torch.cuda.max_memory_allocated(i) for i in range(torch.cuda.device_count())) / GIB


def main() -> None:
    stats, module, *args = sys.argv[1:]
    sys.argv = [module, *args]
    started, code = time.perf_counter(), 1
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
    finally:
        peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
        figures = {
            "seconds": time.perf_counter() - started,
            "exit_code": code,
            "peak_ram_gib": peak_rss / GIB,
            "peak_gpu_gib": _peak_gpu_gib(),
        }
        write_json(stats, figures)
    sys.exit(code)


if __name__ == "__main__":
    main()
