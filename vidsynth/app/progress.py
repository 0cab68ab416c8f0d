"""A job's live progress, read from the tqdm bars its process writes (``train.py``'s "Tuning", the pipeline's
"DDIM inversion" and "Sampling", img2img's and the metrics' bars).

The commands are run unchanged, so the app learns how far they are the way a user at a terminal does:
from the bars' text. tqdm redraws a bar by writing ``\\r`` and the whole line again (``\\x1b[A`` moves up
to a nested bar), so the output is split on both line ends and every piece that looks like a bar updates
the job's :class:`Progress`; anything else is a log line.
"""

import re
from dataclasses import dataclass

# "Tuning:  50%|█████     | 1/2 [00:01<00:01,  1.20s/step, loss=0.1234, lr=3.00e-05]"
_BAR = re.compile(
    r"(?P<desc>[^|]*?):\s*\d+%\|[^|]*\|\s*(?P<n>\d+)/(?P<total>\d+)\s*"
    r"\[(?P<elapsed>[^<\]]*)<(?P<remaining>[^,\]]*)(?P<postfix>[^\]]*)\]"
)
_LOSS = re.compile(r"loss=([-+\w.]+)")
_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
MAIN_BAR = "Tuning"  # train.py's bar; the validation edits' bars inside it are details


@dataclass
class Bar:
    """One redraw of a tqdm bar."""

    desc: str
    n: int
    total: int
    remaining: str | None  # tqdm's "mm:ss" estimate; None while it has none ("?")
    loss: float | None


def parse_bar(line: str) -> Bar | None:
    """The bar drawn by ``line``, or None when it is not a bar."""
    match = _BAR.search(_ESCAPE.sub("", line))
    if match is None:
        return None
    remaining = match["remaining"].strip()
    loss = _LOSS.search(match["postfix"])
    try:
        loss_value = float(loss[1]) if loss else None
    except ValueError:
        loss_value = None
    return Bar(
        desc=match["desc"].strip(),
        n=int(match["n"]),
        total=int(match["total"]),
        remaining=None if not remaining or "?" in remaining else remaining,
        loss=loss_value,
    )


@dataclass
class Progress:
    """Where a job is: its main bar (tuning steps, or the edit's current stage) and what runs inside it."""

    stage: str = ""
    step: int = 0
    total: int = 0
    remaining: str | None = None
    loss: float | None = None
    detail: str = ""  # a validation edit's bar while tuning

    def update(self, bar: Bar) -> None:
        """Tuning's bar is the main one while it lasts (validation edits become the detail); otherwise the newest."""
        if self.stage == MAIN_BAR and bar.desc != MAIN_BAR:
            self.detail = f"validation: {bar.desc} {bar.n}/{bar.total}"
            return
        if bar.desc == MAIN_BAR:
            self.detail = ""
        self.stage, self.step, self.total, self.remaining = bar.desc, bar.n, bar.total, bar.remaining
        if bar.loss is not None:
            self.loss = bar.loss

    def describe(self) -> str:
        """One line, e.g. "Tuning step 3/10 · loss 0.1234 · 00:05 left"."""
        if not self.stage:
            return "starting (loading the models)"
        unit = "step" if self.stage == MAIN_BAR else ""
        parts = [f"{self.stage} {unit} {self.step}/{self.total}".replace("  ", " ")]
        if self.loss is not None:
            parts.append(f"loss {self.loss:.4f}")
        if self.remaining:
            parts.append(f"{self.remaining} left")
        if self.detail:
            parts.append(self.detail)
        return " · ".join(parts)


def split_output(buffer: str) -> tuple[list[str], str]:
    """Complete pieces of ``buffer`` (ended by ``\\r`` or ``\\n``) and the unfinished rest."""
    pieces = re.split(r"[\r\n]", buffer)
    return [piece for piece in pieces[:-1] if piece.strip()], pieces[-1]
