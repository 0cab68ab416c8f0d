"""The README stays true: its config reference lists every key, and its commands' flags exist."""

import dataclasses
import os
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

from vidsynth.config import AnimateConfig, InferenceConfig, TrainConfig

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def flat_keys(schema: type, prefix: str = "") -> set[str]:
    keys = set()
    for f in dataclasses.fields(schema):
        if dataclasses.is_dataclass(f.type):
            keys |= flat_keys(f.type, f"{prefix}{f.name}.")
        else:
            keys.add(f"{prefix}{f.name}")
    return keys


def table_keys(header: str) -> set[str]:
    """Keys named in the first column of the README table whose header starts with ``header``."""
    section = README.split(header, 1)[1].split("\n\n", 1)[0]
    keys = set()
    for row in section.splitlines()[2:]:
        first = row.split("|")[1]
        names = re.findall(r"`([\w.]+)`", first)
        parent = names[0].rsplit(".", 1)[0] if names and "." in names[0] else ""
        keys |= {name if "." in name or not parent else f"{parent}.{name}" for name in names}
        keys |= {f"{parent}.{name.lstrip('.')}" for name in re.findall(r"`(\.\w+)`", first)}
    return keys


def test_config_reference_lists_every_tuning_key():
    documented = table_keys("| tuning key")
    assert flat_keys(TrainConfig) <= documented, flat_keys(TrainConfig) - documented


def test_config_reference_lists_every_editing_key():
    documented = table_keys("| editing key")
    assert flat_keys(InferenceConfig) <= documented, flat_keys(InferenceConfig) - documented


def test_config_reference_lists_every_animate_key():
    documented = table_keys("| animate key")
    assert flat_keys(AnimateConfig) <= documented, flat_keys(AnimateConfig) - documented


def test_every_tuning_key_is_documented_in_clip_yaml():
    text = (ROOT / "configs" / "clip.yaml").read_text()
    for key in flat_keys(TrainConfig):
        assert re.search(rf"^\s*{re.escape(key.split('.')[-1])}:.*#", text, re.M), key


def readme_commands() -> list[list[str]]:
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README, re.S):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            for part in line.split("&&"):
                words = shlex.split(part)
                if words and (words[0].endswith("python") or words[0] in ("./download_models.sh", "accelerate")):
                    commands.append(words)
    return commands


def entry_point(words: list[str]) -> tuple[list[str], list[str]]:
    """(command that prints its help, the rest of the words)."""
    if words[0] == "./download_models.sh":
        return [str(ROOT / "download_models.sh")], words[1:]
    words = words[2:] if words[0] == "accelerate" else words[1:]  # accelerate launch X / python X
    if words[0] == "-m":
        return [sys.executable, "-m", words[1]], words[2:]
    return [sys.executable, words[0]], words[1:]


@cache
def help_text(command: tuple[str, ...]) -> str:
    result = subprocess.run([*command, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{command} --help failed: {result.stderr[-2000:]}"
    return result.stdout


def test_every_readme_command_exists_and_accepts_its_flags():
    commands = readme_commands()
    assert len(commands) >= 15
    skip = {("-m", "pytest"), ("-m", "pip"), ("-m", "venv")}
    checked = [entry_point(words) for words in commands]
    checked = [
        (command, rest) for command, rest in checked if tuple(command[1:3]) not in skip and command[-1] != "venv"
    ]
    with ThreadPoolExecutor(max_workers=4) as pool:  # the bench scripts' --help import torch: a few at a time
        list(pool.map(help_text, {tuple(command) for command, _ in checked}))
    for command, rest in checked:
        text = help_text(tuple(command))
        subcommands = re.search(r"\{([\w,-]+)\}", text)
        if rest and subcommands and rest[0] in subcommands.group(1).split(","):
            text = help_text((*command, rest[0]))
        for flag in (w.split("=")[0] for w in rest if w.startswith("--")):
            assert flag in text, f"README uses {flag} with {' '.join(command[1:])}, which does not accept it"


def smoke_block() -> list[list[str]]:
    """The commands of the README's "Smoke run" section (its first bash block)."""
    section = README.split("## Smoke run", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)[1]
    return [shlex.split(line) for line in block.splitlines() if line.strip()]


def test_the_smoke_run_block_tunes_edits_runs_an_experiment_and_animates_on_tiny(tmp_path):
    """The four commands, run as written from a folder holding the project's scripts, configs and sample clip."""
    from vidsynth.commands import child_env

    commands = smoke_block()
    assert [words[1:3] for words in commands][2:] == [["-m", "vidsynth.experiment"], ["-m", "vidsynth.animate"]]
    assert [words[1] for words in commands][:2] == ["train.py", "inference.py"] and len(commands) == 4
    for name in ("train.py", "inference.py", "configs", "data"):
        (tmp_path / name).symlink_to(ROOT / name)
    for words in commands:
        result = subprocess.run(
            [sys.executable, *words[1:]], cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, f"{shlex.join(words)} failed:\n{result.stderr[-3000:]}"
    assert (tmp_path / "outputs" / "smoke" / "tuned_unet.safetensors").is_file()
    (edit,) = (tmp_path / "outputs" / "smoke" / "edits").iterdir()
    assert (edit / "a-red-ball-over-the-sea.mp4").is_file()
    table = (tmp_path / "outputs" / "experiments" / "smoke" / "results.csv").read_text().splitlines()
    assert len(table) == 3 and "guidance_scale=7.5" in table[1]  # a header and one row per grid value
    assert (tmp_path / "outputs" / "smoke-animation" / "scene.mp4").is_file()
    assert (Path(os.environ["HF_HOME"]) / "vidsynth-tiny").is_dir()  # built into the one cache folder
