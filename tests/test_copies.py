"""Code marked as copied from diffusers stays a copy: each marked body equals diffusers' installed source.

A marker is diffusers' own form (its ``utils/check_copies.py``), a comment right above a ``def`` or
``class``: ``Copied from diffusers.<module>.<Object>[.<method>] [with Old->New[, Old2->New2]]``. The
body runs to the first line indented no deeper than the marker (a multi-line signature's ``):`` aside).
When diffusers changes the original (a new version), the copy is updated, or the marker is removed
where the code now differs on purpose.
"""

import difflib
import importlib
import inspect
import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [
    *sorted(ROOT.glob("*.py")),
    *(p for d in ("vidsynth", "postprocess", "bench") for p in (ROOT / d).rglob("*.py")),
]
MARKER = re.compile(r"^(?P<indent>\s*)#\s*Copied from\s+diffusers\.(?P<name>\S+\.\S+)\s*(?P<rest>.*)$")
REPLACEMENT = re.compile(r"(\S+)->(\S+)")


def in_body(line: str, indent: str) -> bool:
    """Still the marked definition: deeper than the marker, blank, or a signature's closing ``):``."""
    return line.startswith(indent) or not line.strip() or re.match(r"^\s*\)(\s*->.*)?:\s*$", line) is not None


def find_copies(paths: list[Path]) -> list[tuple[str, int, str, str, list[str]]]:
    """(file, line, dotted name, replacements text, the marked body's lines) for every marker in ``paths``."""
    copies = []
    for path in paths:
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            match = MARKER.match(line)
            if not match:
                continue
            end = i + 2  # the def line, then its body
            while end < len(lines) and in_body(lines[end], match["indent"] + "    "):
                end += 1
            body = lines[i + 1 : end]
            while body and not body[-1].strip():
                body.pop()
            rest = re.sub(r"#\s*noqa.*$", "", match["rest"]).strip()
            copies.append((str(path), i + 1, match["name"], rest, body))
    return copies


def resolve(name: str):
    """The object ``diffusers.<name>``: the longest importable module, then attributes."""
    parts = f"diffusers.{name}".split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(name)


def apply_replacements(code: str, rest: str) -> str:
    """diffusers' ``with Old->New`` replacements, applied to the original as its check does."""
    if not rest:
        return code
    assert rest.startswith("with "), f"unreadable marker options {rest!r}"
    for old, new in REPLACEMENT.findall(rest[len("with ") :]):
        code = code.replace(old, new)
    return code


def drift(path: str, line: int, name: str, rest: str, body: list[str]) -> str | None:
    """None if the marked body is diffusers' source (with the replacements), else a message with the diff."""
    original = apply_replacements(textwrap.dedent(inspect.getsource(resolve(name))), rest).rstrip("\n")
    copy = textwrap.dedent("\n".join(body))
    if copy == original:
        return None
    diff = "\n".join(difflib.unified_diff(original.splitlines(), copy.splitlines(), "diffusers", path, lineterm=""))
    return f"{path}:{line} drifted from diffusers.{name}; update the copy or remove the marker:\n{diff}"


COPIES = find_copies(SOURCES)


def test_markers_are_found():
    """The marker search sees the pipeline's copies (a broken search would let every copy drift)."""
    assert any(path.endswith("pipeline_tuneavideo.py") for path, *_ in COPIES)


@pytest.mark.parametrize("copy", COPIES, ids=[f"{Path(c[0]).relative_to(ROOT)}:{c[1]}" for c in COPIES])
def test_copy_matches_diffusers(copy):
    message = drift(*copy)
    if message:
        pytest.fail(message)


EXTRA_STEP_KWARGS = (
    "pipelines.stable_diffusion.pipeline_stable_diffusion.StableDiffusionPipeline.prepare_extra_step_kwargs"
)


def test_drift_and_replacements_are_seen(tmp_path):
    """A copy made with ``with Old->New`` passes; one changed line fails with a diff naming the file and line."""
    original = inspect.getsource(resolve(EXTRA_STEP_KWARGS))  # a method: indented as in its class
    renamed = original.replace("extra_step_kwargs", "step_kwargs")
    changed = renamed.replace("eta (η) is only used", "eta is used")
    marker = f"    # Copied from diffusers.{EXTRA_STEP_KWARGS} with extra_step_kwargs->step_kwargs  # noqa: E501\n"
    source = tmp_path / "copies.py"
    source.write_text(f"class A:\n{marker}{renamed}\n    other = 1\n\n\nclass B:\n{marker}{changed}")
    good, bad = find_copies([source])
    assert drift(*good) is None
    message = drift(*bad)
    assert message.startswith(f"{source}:{8 + renamed.count(chr(10))} drifted")  # B's marker line
    assert "-    # eta (η) is only used" in message and "+    # eta is used" in message
