"""A tuning job: the page's values on top of ``configs/clip.yaml``, checked as ``train.py`` checks them, and
run as ``python train.py --config <that config>``.

The run folder is ``<outputs>/<run name>``, the one ``train.py`` writes, so a run started here can be
edited from the command line and the other way round. A job that does not finish (cancelled,
crashed) leaves no run behind: the folder it created is removed unless it holds the finished result.
"""

import dataclasses
import shutil
from dataclasses import dataclass
from pathlib import Path

from vidsynth.commands import command
from vidsynth.config import TrainConfig, save_config
from vidsynth.config.loader import config_from_layers
from vidsynth.errors import VidSynthError
from vidsynth.naming import slugify
from vidsynth.run_folder import RESULT_FILE, RunFolder
from vidsynth.training.preflight import check_request


@dataclass(frozen=True)
class TuneForm:
    """The Tune tab's values (sizes and span in train.py's terms)."""

    clip: Path
    prompt: str
    run_name: str
    steps: int
    learning_rate: float
    base_model: Path
    start: int
    end: int | None  # exclusive; None: the clip's end
    stride: int
    frames: int  # the window: n_sample_frames
    width: int
    height: int
    window_sampling: str
    validation_prompts: list[str]
    validation_steps: int
    validation_ddim_steps: int  # sampling and inversion steps of the validation edits
    lora_rank: int | None = None  # None: full tuning
    lora_temporal: bool = False  # adapters on the temporal layers too (the result: the adapters alone)


def tuning_defaults() -> TrainConfig:
    return TrainConfig()  # configs/clip.yaml's values: steps, learning rate, ...


def train_data(form: TuneForm, defaults: TrainConfig):
    """``train_data`` of the form (re-checked by its dataclass)."""
    return dataclasses.replace(
        defaults.train_data,
        video_path=str(form.clip),
        prompt=form.prompt.strip(),
        n_sample_frames=form.frames,
        width=form.width,
        height=form.height,
        sample_start_idx=form.start,
        sample_frame_rate=form.stride,
        sample_end_idx=form.end,
        window_sampling=form.window_sampling,
    )


def run_folder(outputs: Path, form: TuneForm) -> Path:
    """``<outputs>/<run name>``: the name as a safe folder name, the prompt's when no name is given."""
    return outputs / slugify(form.run_name.strip() or form.prompt)


def tuning_config(form: TuneForm, outputs: Path) -> TrainConfig:
    """The config ``train.py`` will run, after every check it makes before loading a model."""
    if not form.prompt.strip():
        raise VidSynthError('the prompt is empty. Describe what the clip shows, e.g. "a man is skiing"')
    defaults = tuning_defaults()
    data = train_data(form, defaults)
    validation = dataclasses.replace(
        defaults.validation_data,
        prompts=form.validation_prompts,
        num_inference_steps=form.validation_ddim_steps,
        num_inv_steps=form.validation_ddim_steps,
        video_length=form.frames,
        width=form.width,
        height=form.height,
    )
    cfg = dataclasses.replace(
        defaults,
        pretrained_model_path=str(form.base_model),
        output_dir=str(run_folder(outputs, form)),
        train_data=data,
        validation_data=validation,
        max_train_steps=form.steps,
        learning_rate=form.learning_rate,
        validation_steps=form.validation_steps,
        lora_rank=form.lora_rank,
        lora_temporal=form.lora_temporal,
    )
    check_request(cfg)  # the model, the clip, the sizes and the span
    RunFolder(Path(cfg.output_dir)).check_start(resuming=False, overwrite=False)
    return cfg


class TuneTask:
    """``python -m vidsynth.train --config FILE`` (written when it begins); removes the run folder it created
    if it did not finish."""

    kind = "tune"

    def __init__(self, cfg: TrainConfig, config_file: Path, created: bool = False):
        self.cfg, self.config_file = cfg, Path(config_file)
        self.output = Path(cfg.output_dir)
        self.title = f"tune {self.output.name}: {cfg.train_data.prompt!r}, {cfg.max_train_steps} steps"
        if cfg.lora_rank is not None:
            self.title += f", LoRA rank {cfg.lora_rank}" + (" with temporal adapters" if cfg.lora_temporal else "")
        self._created = created

    def spec(self) -> dict:
        return {"config": dataclasses.asdict(self.cfg), "config_file": str(self.config_file), "created": self._created}

    @classmethod
    def from_spec(cls, spec: dict) -> "TuneTask":
        cfg = config_from_layers(TrainConfig, [(spec["config"], "the job queue")])
        return cls(cfg, Path(spec["config_file"]), spec["created"])

    def begin(self) -> list[tuple[str, list[str]]]:
        self._created = not self.output.exists()
        save_config(self.cfg, self.config_file)
        return [("tuning", command("train", "--config", str(self.config_file)))]

    def finish(self, succeeded: bool) -> None:
        if not succeeded and self._created and self.output.is_dir() and not (self.output / RESULT_FILE).is_file():
            shutil.rmtree(self.output)
        self.config_file.unlink(missing_ok=True)
