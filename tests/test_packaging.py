"""``pip install .`` installs the whole package and nothing else; ``requirements.txt`` installs every extra."""

import ast
import re
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LEFT_OUT = {"outputs", "checkpoints", "venv", "build", "dist"}  # results and models, not sources


def test_wheel_holds_the_packages_and_not_the_tests(tmp_path):
    """A wheel built from a copy of the sources: every module of vidsynth/ and postprocess/, no tests, the pins."""
    source = tmp_path / "src"
    source.mkdir()
    for entry in ROOT.iterdir():
        if entry.name.startswith(".") or entry.name in LEFT_OUT or entry.name.endswith(".egg-info"):
            continue
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(entry, source / entry.name, ignore=ignore) if entry.is_dir() else shutil.copy(entry, source)
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index"]
    result = subprocess.run([*build, "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = (tmp_path / "dist").glob("vidsynth-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())

    modules = {p.relative_to(ROOT).as_posix() for d in ("vidsynth", "postprocess") for p in (ROOT / d).rglob("*.py")}
    assert modules <= names, f"missing from the wheel: {sorted(modules - names)}"
    assert {name.split("/")[0] for name in names} == {
        "vidsynth",
        "postprocess",
        wheel.name.split("-py3")[0] + ".dist-info",
    }

    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    requires = re.findall(r"^Requires-Dist: (.+)$", metadata, re.M)
    assert "torch==2.13.0" in requires
    assert {extra for extra in re.findall(r"^Provides-Extra: (.+)$", metadata, re.M)} >= {"app", "experiments", "dev"}


def test_requirements_install_every_extra():
    """README's first command installs everything: requirements.txt names the project with all its extras."""
    pyproject = (ROOT / "pyproject.toml").read_text()  # (tomllib is Python 3.11+; 3.10 is supported)
    section = pyproject.split("[project.optional-dependencies]\n")[1].split("\n[")[0]
    extras = set(re.findall(r"^([\w-]+) = \[", section, re.M))
    assert {"app", "experiments", "dev"} <= extras
    lines = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    (project,) = [line for line in lines if line]
    match = re.fullmatch(r"-e \.\[(.+)\]", project)
    assert match and set(match[1].split(",")) == extras


def _requirement_names(requirements: list[str]) -> set[str]:
    """Normalised distribution names (PEP 503) of requirement strings."""
    return {re.sub(r"[-_.]+", "-", re.match(r"[\w.-]+", r)[0]).lower() for r in requirements}


def test_every_third_party_import_is_a_declared_dependency():
    """Each top-level module vidsynth/ and postprocess/ import comes from a distribution pyproject.toml names."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = _requirement_names(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        declared |= _requirement_names(extra)
    distributions = packages_distributions()
    undeclared = {}
    for path in (p for d in ("vidsynth", "postprocess") for p in (ROOT / d).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            tops = {name.split(".")[0] for name in names} - set(sys.stdlib_module_names) - {"vidsynth", "postprocess"}
            for top in tops:
                if not _requirement_names(distributions.get(top, [top])) & declared:
                    undeclared.setdefault(top, path.relative_to(ROOT).as_posix())
    assert not undeclared, f"imported but not in pyproject.toml's dependencies or extras: {undeclared}"
