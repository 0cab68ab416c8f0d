"""An edit job: the Edit tab's values as ``inference.py``'s options, checked as ``inference.py`` checks them,
run as ``python inference.py --run ...``, then scored by ``python -m vidsynth.evaluate``.

The edit goes where ``inference.py`` puts it by default, ``<run>/edits/<time>/``, decided when the job
starts; ``inference.py`` writes that folder under a temporary name and renames it when every file is
complete, so a cancelled or crashed edit leaves nothing (its temporaries are removed when it ends).
The metrics are the command line's ``results.md`` and ``results.json`` in the edit's folder, so they
are read back from disk like everything else.
"""

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from vidsynth.app.region import region_args
from vidsynth.atomic import remove_stale_partials
from vidsynth.commands import command
from vidsynth.config.inference import InferenceConfig
from vidsynth.config.loader import config_from_layers
from vidsynth.editing.request import resolve_request
from vidsynth.errors import VidSynthError
from vidsynth.run_folder import LORA_FILE
from vidsynth.workspace import new_output_folder


@dataclass(frozen=True)
class EditForm:
    """The Edit tab's values, in ``inference.py``'s terms."""

    run: Path
    prompts: list[str]
    steps: int  # DDIM sampling steps, and inversion steps
    guidance: float
    seed: int
    inversion: bool
    method: str  # tuneavideo | img2img
    compare: bool
    strength: float  # img2img
    controls: list[str] = field(default_factory=list)  # structure guidance: maps made from the clip (canny, depth)
    control_videos: list[Path] = field(default_factory=list)  # maps made elsewhere
    controlnets: list[str] = field(default_factory=list)  # one per control, or none for the defaults
    control_scales: list[float] = field(default_factory=list)
    loras: list[str] = field(default_factory=list)  # style LoRAs stacked on the model: FILE:SCALE each
    lora_scale: float = 1.0  # a LoRA run's adapters: 0 = the base projections, 1 = as tuned
    region: dict = field(default_factory=dict)  # the region keys (vidsynth.app.region.region_keys)


def inference_config(form: EditForm) -> InferenceConfig:
    """The form as ``inference.py``'s config (its schema's checks run)."""
    return InferenceConfig(
        run=str(form.run),
        prompts=[prompt.strip() for prompt in form.prompts],
        num_inference_steps=form.steps,
        inversion_steps=form.steps,
        guidance_scale=form.guidance,
        seed=form.seed,
        inversion=form.inversion,
        method=form.method,
        compare=form.compare,
        strength=form.strength,
        controls=list(form.controls),
        control_videos=[str(video) for video in form.control_videos],
        controlnets=list(form.controlnets),
        control_scales=list(form.control_scales),
        lora_scale=form.lora_scale,
        loras=list(form.loras),
        **form.region,
    )


def edit_config(form: EditForm) -> InferenceConfig:
    """The editing config, after every check ``inference.py`` makes before loading a model, and the one it makes
    after: a tuned LoRA scale needs a LoRA run."""
    config = inference_config(form)
    resolve_request(config)
    if config.lora_scale != 1.0 and not (form.run / LORA_FILE).is_file():
        raise VidSynthError(
            f"lora_scale {config.lora_scale:g} scales the adapters of a LoRA tuning run, and run {form.run.name} has "
            "none. Leave it at 1, or pick a run tuned with a LoRA rank"
        )
    return config


def inference_args(config: InferenceConfig, out: Path) -> list[str]:
    """``inference.py`` and its flags for ``config``, writing into ``out``."""
    args = command("inference", "--run", config.run, *(f"--prompt={prompt}" for prompt in config.prompts))
    args += ["--steps", str(config.num_inference_steps), "--inversion-steps", str(config.inversion_steps)]
    args += ["--guidance", str(config.guidance_scale), "--seed", str(config.seed), "--method", config.method]
    args += ["--strength", str(config.strength), "--out", str(out)]
    for flag, values in (
        ("--control", config.controls),
        ("--control-video", config.control_videos),
        ("--controlnet", config.controlnets),
        ("--control-scale", config.control_scales),
        ("--lora", config.loras),
    ):
        args += [f"{flag}={value}" for value in values]
    if config.lora_scale != 1.0:
        args.append(f"--lora-scale={config.lora_scale}")
    args += region_args(config)
    if config.compare:
        args.append("--compare")
    if not config.inversion:
        args.append("--no-inversion")
    return args


class EditTask:
    """``python -m vidsynth.inference ...`` into ``<run>/edits/<time>``, then ``python -m vidsynth.evaluate`` on it."""

    kind = "edit"

    def __init__(self, config: InferenceConfig, clip_model: str):
        self.config, self.clip_model = config, clip_model
        run = Path(config.run).name
        prompts = config.prompts or [config.background_prompt]  # a new background's prompt is the edit's
        self.title = f"edit {run}: " + ", ".join(repr(prompt) for prompt in prompts)
        self.output: Path | None = None  # decided when it begins (the queue stores it)

    def spec(self) -> dict:
        return {"config": dataclasses.asdict(self.config), "clip_model": self.clip_model}

    @classmethod
    def from_spec(cls, spec: dict) -> "EditTask":
        return cls(config_from_layers(InferenceConfig, [(spec["config"], "the job queue")]), spec["clip_model"])

    def begin(self) -> list[tuple[str, list[str]]]:
        self.output = new_output_folder(self.config.out, Path(self.config.run) / "edits")  # the app edits runs
        metrics = command("evaluate", str(self.output), "--clip-model", self.clip_model)
        return [("editing", inference_args(self.config, self.output)), ("metrics", metrics)]

    def finish(self, succeeded: bool) -> None:
        """Remove the temporaries a stopped edit was writing: its folder's, and its run's cached latents'."""
        if self.output is not None:
            remove_stale_partials(self.output.parent)
            remove_stale_partials(Path(self.config.run) / ".cache")
