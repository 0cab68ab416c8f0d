"""When a tuning run renders its validation prompts: one rule, so that a run's cost is known before it starts.

A validation inverts the clip and samples every prompt at the clip's size: at SD-1.x's 512x512 with
50 + 50 DDIM steps that is minutes, far longer than a short run's tuning. So validations come only
where the config puts them: after every step that is a multiple of ``validation_steps``, and after
the last step when ``validation_steps <= max_train_steps`` (so a run whose length is not a multiple
still ends with edits of its final weights). A run shorter than ``validation_steps`` renders none:
``validation_steps=<max_train_steps>`` asks for edits at its end. The start of a run says which steps
validate.
"""

from dataclasses import dataclass

from vidsynth.config.train import TrainConfig

_LISTED = 5  # steps written out in the start-of-run line; more are elided


@dataclass(frozen=True)
class ValidationSchedule:
    """The steps after which the validation prompts are rendered."""

    every: int  # validation_steps
    last: int  # max_train_steps
    prompts: int  # how many validation prompts (none: no validation at all)

    @classmethod
    def of(cls, cfg: TrainConfig) -> "ValidationSchedule":
        return cls(cfg.validation_steps, cfg.max_train_steps, len(cfg.validation_data.prompts))

    def due(self, step: int) -> bool:
        """Whether validation runs after ``step`` (1-based: the steps done)."""
        return step in self.steps()

    def steps(self) -> list[int]:
        """Every step after which validation runs, in order."""
        if not self.prompts:
            return []
        return sorted(
            {*range(self.every, self.last + 1, self.every), *([self.last] if self.every <= self.last else [])}
        )

    def describe(self) -> str:
        """One line for the start of a run: which steps validate, or why none does."""
        if not self.prompts:
            return "none (no validation_data.prompts)"
        steps = self.steps()
        if not steps:
            return (
                f"none: validation_steps {self.every} > max_train_steps {self.last} "
                f"(set validation_steps={self.last} for edits of the final weights)"
            )
        shown = ", ".join(map(str, steps)) if len(steps) <= _LISTED else f"{steps[0]}, {steps[1]}, ..., {steps[-1]}"
        return f"after step{'s' * (len(steps) > 1)} {shown} ({len(steps)} time{'s' * (len(steps) > 1)})"
