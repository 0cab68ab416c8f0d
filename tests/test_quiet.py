"""The libraries' warnings: hidden for the commands, shown on a plain import, errors in the test suite."""

import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# A deprecation as diffusers raises it from its own code (diffusers.utils.deprecate, stacklevel into diffusers).
WARN = "import warnings; warnings.warn_explicit('old api', FutureWarning, 'x.py', 1, module='diffusers.models.x')"


def _stderr(code: str, *options: str) -> str:
    result = subprocess.run([sys.executable, *options, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stderr


def test_a_command_hides_the_libraries_deprecations():
    assert "old api" not in _stderr(f"from vidsynth.cli import run_main\nrun_main(lambda: exec({WARN!r}))")


def test_a_plain_import_and_a_warning_option_show_them():
    assert "FutureWarning: old api" in _stderr(f"import vidsynth\n{WARN}")
    assert "old api" in _stderr(f"from vidsynth.cli import run_main\nrun_main(lambda: exec({WARN!r}))", "-W", "default")


def test_the_suite_fails_on_a_library_deprecation():
    """pyproject.toml's filterwarnings: a FutureWarning here is an error, even after a command ran in-process."""
    from vidsynth.cli import run_main

    run_main(lambda: None)
    with pytest.raises(FutureWarning, match="old api"):
        warnings.warn_explicit("old api", FutureWarning, "x.py", 1, module="diffusers.models.x")
