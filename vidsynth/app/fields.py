"""The page's field values as the commands' values: numbers that may be blank, prompts one per line, lists."""

import re

from vidsynth.errors import VidSynthError


def number(value: float | None, key: str, kind: type = int) -> int | float:
    """A number field of the page as ``kind``; a blank one is refused, naming its config key."""
    if value is None or value == "":
        raise VidSynthError(f"{key} is empty. Enter a number")
    return kind(value)


def optional(value: float | None, key: str, kind: type = int) -> int | float | None:
    """A number field that may be blank (None: the command's default)."""
    return None if value is None or value == "" else number(value, key, kind)


def lines(text: str | None) -> list[str]:
    """One prompt per line; blank lines are skipped."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def numbers(text: str | None, key: str) -> list[float]:
    """Comma-separated numbers ("0.8, 0.4"); none when blank."""
    try:
        return [float(value) for value in re.split(r"[,\s]+", (text or "").strip()) if value]
    except ValueError:
        raise VidSynthError(f"{key} must be numbers separated by commas, got {text!r}. Write e.g. 0.8, 0.4") from None
