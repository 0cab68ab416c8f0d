"""The web app's LoRA choices, called as the page calls them (:class:`PageHandlers`), with the queued commands
parsed back as ``train.py`` and ``inference.py`` parse them.

Tuning: a LoRA rank (and temporal adapters) reaches ``train.py``'s config; bad choices are a message in
the Tune tab's words. Editing: style LoRAs come only from the app's list of the LoRA files in
``checkpoints/loras/`` (never a typed path, ``..``, an absolute path, a link out of the folder or a hub
id), each reaching ``inference.py`` as ``--lora FILE:SCALE``; a tuned LoRA scale needs a LoRA run.
"""

import types

import pytest
import torch
from safetensors.torch import save_file

from vidsynth import inference, train
from vidsynth.app.handlers import PageHandlers
from vidsynth.app.loras import style_loras
from vidsynth.app.service import Studio
from vidsynth.app.wording import TUNE_FIELDS
from vidsynth.config import TrainConfig, load_config
from vidsynth.errors import VidSynthError
from vidsynth.media.scene import render_scene
from vidsynth.models.trainable import FORMAT
from vidsynth.run_folder import CONFIG_FILE, LORA_FILE, RESULT_FILE

pytestmark = pytest.mark.filterwarnings("ignore:.*(no_silent_downcasting|copy keyword is deprecated).*")

SPAN = {"start": 0, "end": None, "stride": 1, "frames": 4, "width": 32, "height": 32, "sampling": "fixed"}
DIFFUSERS_KEY = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora.{}.weight"
KOHYA_KEY = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_{}.weight"


def write_lora(path, key: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({key.format("down"): torch.zeros(4, 32), key.format("up"): torch.zeros(32, 4)}, path)


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """An app whose checkpoints/loras/ holds a diffusers LoRA, a kohya one in a subfolder, a .safetensors that is no
    LoRA, a text file and a link to a LoRA file outside the folder."""
    root = tmp_path_factory.mktemp("lora-app")
    loras = root / "checkpoints" / "loras"
    write_lora(loras / "style.safetensors", DIFFUSERS_KEY)
    write_lora(loras / "kohya" / "ink.safetensors", KOHYA_KEY)
    save_file({"conv.weight": torch.zeros(2)}, loras / "not-a-lora.safetensors")
    (loras / "notes.txt").write_text("notes")
    write_lora(root / "checkpoints" / "secret.safetensors", DIFFUSERS_KEY)
    (loras / "outside.safetensors").symlink_to(root / "checkpoints" / "secret.safetensors")
    studio = Studio(root / "outputs", checkpoints=root / "checkpoints")
    yield studio
    studio.close()


@pytest.fixture(scope="module")
def page(studio) -> PageHandlers:
    return PageHandlers(studio)


@pytest.fixture(scope="module")
def clip(page, tmp_path_factory) -> str:
    upload = render_scene(tmp_path_factory.mktemp("upload") / "flight.mp4", 8, 64, 64, 8.0)
    return page.upload_clip(str(upload)).name


@pytest.fixture
def submitted(studio, monkeypatch) -> list:
    """The tasks the page queues, kept here instead of run."""
    tasks = []

    def submit(task):
        tasks.append(task)
        return types.SimpleNamespace(id=len(tasks), task=task)

    monkeypatch.setattr(studio.queue, "submit", submit)
    return tasks


def fake_run(studio: Studio, clip: str, name: str, lora: bool) -> str:
    """A finished run, as ``inference.py`` resolves it before loading a model (its files hold no weights)."""
    run = studio.outputs / name
    run.mkdir()
    metadata = {"format": FORMAT, "base_model": str(studio.models.bases[0])}
    save_file({"unused": torch.zeros(1)}, run / RESULT_FILE, metadata=metadata)
    if lora:
        write_lora(run / LORA_FILE, DIFFUSERS_KEY)
    train_data = {"video_path": str(studio.clips / clip), "prompt": "a ball", "n_sample_frames": 4}
    (run / CONFIG_FILE).write_text("train_data: " + repr(train_data | {"width": 32, "height": 32}) + "\n")
    return name


@pytest.fixture(scope="module")
def lora_run(studio, clip) -> str:
    return fake_run(studio, clip, "lora-run", lora=True)


def tune_values(studio: Studio, clip: str, run_name: str) -> dict:
    values = {"clip": clip, "prompt": "a ball", "run_name": run_name, "steps": 2, "learning_rate": 3e-5}
    values |= {"base": str(studio.models.bases[0])} | SPAN
    return values | {"validation_prompts": "", "validation_steps": 10, "validation_ddim_steps": 2}


def edit_values(run: str) -> dict:
    values = {"run": run, "prompts": "a ball", "steps": 2, "guidance": 7.5, "seed": 1, "inversion": True}
    values |= {"method": "tuneavideo", "compare": False, "strength": 0.5, "controls": [], "control_video": None}
    return values | {"controlnets": [], "control_scales": ""}


def queued_train_config(task) -> TrainConfig:
    """The config the queued ``train.py`` command runs, read as ``train.py`` reads its arguments."""
    ((label, (_, _, module, *flags)),) = task.begin()
    assert (label, module) == ("tuning", "vidsynth.train")
    args = train.parse_args(flags)
    return load_config(TrainConfig, [args.config] if args.config else [], args.overrides)


def test_a_lora_rank_reaches_train_py(page, studio, clip, submitted):
    status = page.tune(**tune_values(studio, clip, "lora-4") | {"lora_rank": "4", "lora_temporal": True})
    assert status == "Job 1 queued: tune lora-4: 'a ball', 2 steps, LoRA rank 4 with temporal adapters"
    config = queued_train_config(submitted[0])
    assert (config.lora_rank, config.lora_temporal) == (4, True)
    assert page.tune(**tune_values(studio, clip, "lora-16") | {"lora_rank": "16"}).startswith("Job 2 queued")
    assert (queued_train_config(submitted[1]).lora_rank, queued_train_config(submitted[1]).lora_temporal) == (16, False)
    assert page.tune(**tune_values(studio, clip, "full")).startswith("Job 3 queued")  # the default: full tuning
    assert queued_train_config(submitted[2]).lora_rank is None


def test_bad_lora_choices_are_a_message_in_the_tune_tabs_words(page, studio, clip, submitted):
    values = tune_values(studio, clip, "bad")
    assert page.tune(**values | {"lora_rank": "8"}) == (
        "⚠️ LoRA rank '8' is not one the app offers. Pick one of full, 4, 16"
    )
    temporal = page.tune(**values | {"lora_temporal": True})
    assert temporal == (
        '⚠️ the adapters on the temporal layers need LoRA tuning. Pick a "LoRA rank" (e.g. 4), or untick '
        '"adapters on the temporal layers too"'
    )
    assert not any(name in temporal for names in TUNE_FIELDS.values() for name in names if "_" in name)
    assert submitted == []


def test_the_lora_list_holds_only_lora_files_under_the_lora_folder(studio):
    folder = studio.checkpoints / "loras"
    assert studio.models.loras == {
        "kohya/ink.safetensors": folder / "kohya" / "ink.safetensors",
        "style.safetensors": folder / "style.safetensors",
    }
    assert all(path.resolve().is_relative_to(folder.resolve()) for path in studio.models.loras.values())


def test_each_chosen_style_lora_reaches_inference_py_with_its_scale(page, studio, lora_run, submitted):
    chosen = {"loras": ["style.safetensors", "kohya/ink.safetensors"], "lora_scales": "0.8, 0.5", "lora_scale": 0.7}
    assert page.edit(**edit_values(lora_run) | chosen) == "Job 1 queued: edit lora-run: 'a ball'"
    (_, (_, _, module, *flags)), _ = submitted[0].begin()
    folder = studio.checkpoints / "loras"
    style, ink = f"{folder / 'style.safetensors'}:0.8", f"{folder / 'kohya' / 'ink.safetensors'}:0.5"
    assert module == "vidsynth.inference" and f"--lora={style}" in flags and f"--lora={ink}" in flags
    config = inference.resolve_config(inference.parse_args(flags))
    assert (config.loras, config.lora_scale) == ([style, ink], 0.7)
    page.edit(**edit_values(lora_run) | {"loras": ["style.safetensors"]})  # no scale given: 1.0
    (_, (_, _, _, *flags)), _ = submitted[1].begin()
    assert inference.resolve_config(inference.parse_args(flags)).loras == [f"{folder / 'style.safetensors'}:1"]


@pytest.mark.parametrize(
    "typed",
    [
        "secret.safetensors",
        "../secret.safetensors",
        "kohya/../../secret.safetensors",
        "outside.safetensors",
        "not-a-lora.safetensors",
        "notes.txt",
        "someone/some-style-lora",
    ],
)
def test_a_lora_not_in_the_list_is_refused(page, studio, lora_run, submitted, typed):
    message = page.edit(**edit_values(lora_run) | {"loras": [typed]})
    assert message.startswith(f"⚠️ style LoRA {typed!r} is not one this app offers. Pick one of the LoRA files in ")
    assert "kohya/ink.safetensors, style.safetensors" in message
    absolute = str(studio.checkpoints / "loras" / "style.safetensors")
    assert page.edit(**edit_values(lora_run) | {"loras": [absolute]}).startswith(f"⚠️ style LoRA {absolute!r} is not")
    assert submitted == []


def test_a_tuned_lora_scale_needs_a_lora_run(page, studio, clip, submitted):
    fake_run(studio, clip, "full-run", lora=False)
    message = page.edit(**edit_values("full-run") | {"lora_scale": 0.5})
    assert message == (
        '⚠️ "tuned LoRA scale" 0.5 scales the adapters of a LoRA tuning run, and run full-run has none. Leave it at '
        "1, or pick a run tuned with a LoRA rank"
    )
    assert submitted == []


def test_style_lora_scales_one_each_one_for_all_or_none():
    offered = {"a.safetensors": "/l/a.safetensors", "b.safetensors": "/l/b.safetensors"}
    both = ["a.safetensors", "b.safetensors"]
    assert style_loras(both, [0.5], offered) == ["/l/a.safetensors:0.5", "/l/b.safetensors:0.5"]
    assert style_loras(both, [], offered) == ["/l/a.safetensors:1", "/l/b.safetensors:1"]
    assert style_loras([], [], offered) == []
    for chosen, scales in ((both, [0.5, 0.5, 1.0]), ([], [0.5])):
        with pytest.raises(VidSynthError, match=f"gives {len(scales)} scales for {len(chosen)} style LoRAs"):
            style_loras(chosen, scales, offered)
    with pytest.raises(VidSynthError, match="must hold numbers, got nan"):
        style_loras(both, [float("nan")], offered)
