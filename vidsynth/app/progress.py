"""A job's live progress, read from the events its commands write (:mod:`vidsynth.events`).

The queue starts each command with ``VIDSYNTH_EVENTS`` naming a file of its own and reads the new
lines of that file while the command runs (:class:`EventFile`). Each event updates the job's
:class:`Progress`: the stages open now, outermost first (tuning's steps, with the validation edits'
prompts, inversion and sampling inside it; an edit's prompts with their sampling inside; an animation's
segments with their sampling inside), the
tuning loss, and how the command ended. Progress bars stay on the terminal, for people.
"""

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

logger = logging.getLogger(__name__)

# How a stage reads on the page: "<label> <step>/<total>".
LABELS = {
    "tuning": "Tuning step",
    "training": "Training step",  # python -m vidsynth.scratch train, one stage of the cascade at a time
    "validation": "validation",
    "prompts": "prompt",
    "inversion": "DDIM inversion",
    "sampling": "Sampling",
    "img2img": "img2img frame",
    "evaluating": "Evaluating clip",
    "loading": "Loading the model",
    "segments": "Segment",
}
ENDINGS = ("done", "error", "interrupted")
LOSS_STAGES = ("tuning", "training")  # the stages whose progress events carry the loss


class EventFile:
    """The events file of one command, read a piece at a time as it grows: only whole lines are parsed."""

    def __init__(self, path: Path):
        self.path, self._offset, self._rest = Path(path), 0, b""

    def read_new(self) -> list[dict]:
        """The events appended since the last call (none while the file does not exist yet)."""
        try:
            with self.path.open("rb") as file:
                file.seek(self._offset)
                data = file.read()
        except FileNotFoundError:
            return []
        self._offset += len(data)
        *lines, self._rest = (self._rest + data).split(b"\n")
        events = []
        for line in lines:
            try:
                events.append(json.loads(line))
            except ValueError:
                logger.warning("skipping a line of %s that is not an event: %r", self.path, line[:200])
        return events


@dataclass
class Stage:
    name: str
    step: int = 0
    total: int | None = None
    eta_s: float | None = None
    fields: dict = field(default_factory=dict)  # what else the stage reports (tuning_step of a validation)

    def describe(self) -> str:
        label = LABELS.get(self.name, self.name)
        if self.name == "validation" and "tuning_step" in self.fields:
            return f"{label} at step {self.fields['tuning_step']}"
        return f"{label} {self.step}/{self.total}" if self.total else label


@dataclass
class Progress:
    """Where a job is, from its commands' events."""

    stages: list[Stage] = field(default_factory=list)  # open now, outermost first
    last: Stage | None = None  # the outermost stage that ended last: shown until the next one begins
    loss: float | None = None  # tuning's or training's, of the latest step
    ending: dict | None = None  # the current command's done, error or interrupted event

    def update(self, event: dict) -> None:
        kind = event.get("event")
        if kind == "stage":
            self._close(event["name"])
            self.stages.append(Stage(event["name"], event.get("step") or 0, event.get("total"), fields=_extra(event)))
        elif kind == "progress":
            stage = self._find(event["stage"]) or self._open(event["stage"])
            stage.step, stage.total, stage.eta_s = event["step"], event.get("total"), event.get("eta_s")
            if event["stage"] in LOSS_STAGES and event.get("loss") is not None:
                self.loss = event["loss"]
        elif kind == "stage_end":
            self._close(event["name"])
        elif kind in ENDINGS:
            self.ending = event

    @property
    def main(self) -> Stage | None:
        return self.stages[0] if self.stages else self.last

    @property
    def step(self) -> int:
        return self.main.step if self.main else 0

    @property
    def total(self) -> int:
        return (self.main.total or 0) if self.main else 0

    @property
    def eta_s(self) -> float | None:
        return self.main.eta_s if self.main else None

    def describe(self) -> str:
        """One line, e.g. "Tuning step 3/10 · loss 0.1234 · 00:05 left · validation at step 3 · Sampling 2/50"."""
        main = self.main
        if main is None:
            return "starting (loading the models)"
        parts = [main.describe()]
        if main.name in LOSS_STAGES and self.loss is not None:
            parts.append(f"loss {self.loss:.4f}")
        if main.eta_s is not None and self.stages:  # not for a stage that has ended
            parts.append(f"{tqdm.format_interval(main.eta_s)} left")
        parts += [stage.describe() for stage in self.stages[1:]]
        return " · ".join(parts)

    def _find(self, name: str) -> Stage | None:
        return next((stage for stage in self.stages if stage.name == name), None)

    def _open(self, name: str) -> Stage:
        self.stages.append(Stage(name))
        return self.stages[-1]

    def _close(self, name: str) -> None:
        """End the stage ``name`` and every stage inside it."""
        stage = self._find(name)
        if stage is not None:
            index = self.stages.index(stage)
            if index == 0:
                self.last = stage
            del self.stages[index:]


def _extra(event: dict) -> dict:
    return {key: value for key, value in event.items() if key not in ("event", "time", "name", "step", "total")}
