"""The config of a from-scratch video model: every key ``python -m vidsynth.scratch train`` reads, with its default.

A run trains a cascade of stages in order: one ``base`` model that makes clips from noise (steered by
per-frame labels when the footage has them), then ``upsampler`` stages, each conditioned on the clip of
the stage before it (SR3: the low-resolution clip, upsampled bicubically, is concatenated to the noisy
input). Training settings are per stage (``max_train_steps`` may be set on a stage). Every value is
checked here, before anything loads or is written: a stage list whose first stage is not a base, an
upsampler that does not enlarge the stage before it, a resolution the UNet cannot halve as often as it
has levels.
"""

from dataclasses import dataclass, field

from vidsynth.config.loader import check_choice
from vidsynth.errors import VidSynthError

STAGE_KINDS = ("base", "upsampler")
MIXED_PRECISIONS = ("no", "fp16", "bf16")


def _at_least(key: str, value: int | float | None, low: int | float) -> None:
    if value is not None and value < low:
        raise VidSynthError(f"config key '{key}' must be at least {low}; got {value}. Set {key}={low} or more")


@dataclass
class ScratchDataConfig:
    path: str = "???"  # a video, a folder of videos, or a folder of frame folders
    labels: str | None = None  # a CSV of time ranges (start,end,label) or per-frame vectors (CSV/NPY); null: none
    num_frames: int = 8  # frames per training window
    frame_skip: int = 0  # source frames skipped between two frames of a window
    resolution: int | None = None  # square size the frames are resized and padded to; null: the last stage's
    cache_dir: str | None = None  # a folder for decoded small frames (fast epochs over long footage); null: none
    num_workers: int = 0  # data-loading processes (0: in the training process)


@dataclass
class StageConfig:
    name: str = "???"  # folder name of the stage's weights in the run, e.g. base or up64
    kind: str = "base"  # base (from noise) | upsampler (from the previous stage's clip)
    resolution: int = 32  # square size of the clips this stage makes
    block_out_channels: list[int] = field(default_factory=lambda: [32, 64])  # channels per UNet level
    layers: int = 1  # ResNet layers per UNet level
    attention_heads: int = 1  # heads of every attention layer; 1 is fastest
    attention_from: int = 1  # the first UNet level with attention (0: all); the middle block always has it
    norm_num_groups: int = 8  # GroupNorm groups (must divide every channel count)
    max_train_steps: int | None = None  # this stage's steps; null: the run's max_train_steps

    def __post_init__(self):
        check_choice(f"stages[{self.name}].kind", self.kind, STAGE_KINDS)
        factor = self.downsampling_factor
        if self.resolution % factor:
            low, high = self.resolution // factor * factor, (self.resolution // factor + 1) * factor
            raise VidSynthError(
                f"stage {self.name!r}: resolution {self.resolution} is not divisible by {factor}, the UNet's "
                f"down-sampling factor ({len(self.block_out_channels)} levels). Use {low or high} or {high}"
            )
        for channels in self.block_out_channels:
            if channels % self.norm_num_groups or channels % self.attention_heads:
                raise VidSynthError(
                    f"stage {self.name!r}: {channels} channels do not split into norm_num_groups "
                    f"{self.norm_num_groups} and attention_heads {self.attention_heads}. Use multiples of both"
                )
        _at_least(f"stages[{self.name}].layers", self.layers, 1)
        _at_least(f"stages[{self.name}].attention_from", self.attention_from, 0)
        if self.attention_from > len(self.block_out_channels):
            raise VidSynthError(
                f"stage {self.name!r}: attention_from {self.attention_from} is beyond its "
                f"{len(self.block_out_channels)} levels. Use at most {len(self.block_out_channels)} (the middle only)"
            )
        _at_least(f"stages[{self.name}].max_train_steps", self.max_train_steps, 1)

    @property
    def downsampling_factor(self) -> int:
        """The UNet halves the size once between two levels."""
        if not self.block_out_channels:
            raise VidSynthError(f"stage {self.name!r}: block_out_channels is empty. Give e.g. [32, 64]")
        return 2 ** (len(self.block_out_channels) - 1)


def _default_stages() -> list[StageConfig]:
    return [StageConfig(name="base")]


@dataclass
class ScratchConfig:
    data: ScratchDataConfig = field(default_factory=ScratchDataConfig)  # the footage and its labels
    stages: list[StageConfig] = field(default_factory=_default_stages)  # base first, then upsamplers
    stage: str | None = None  # train only the stage of this name; null: every stage not yet trained, in order
    output_dir: str = "outputs/scratch"  # the run folder: config.yaml, <stage>/, checkpoints/, samples/, logs/
    max_train_steps: int = 2000  # optimizer steps per stage
    learning_rate: float = 2e-4  # AdamW
    adam_weight_decay: float = 0.0  # AdamW (decoupled) weight decay
    max_grad_norm: float = 1.0  # clip the gradient norm to this
    train_batch_size: int = 8  # windows per micro-step and process
    gradient_accumulation_steps: int = 1  # micro-steps whose gradients add up to one optimizer step
    checkpointing_steps: int = 500  # save a resumable checkpoint every this many steps
    checkpoints_total_limit: int | None = 2  # keep only the newest checkpoints of a stage (null: keep all)
    resume_from_checkpoint: str | None = None  # latest: go on from the newest checkpoint of the stage in progress
    seed: int = 0  # seeds the weights' init and every step's windows, noise and timesteps
    mixed_precision: str = "no"  # no | fp16 | bf16 (autocast by accelerate; fp16 on CPU runs as bf16)
    ema: bool = True  # keep an exponential moving average of the weights: what is saved and sampled
    ema_decay: float = 0.999  # its decay (diffusers' EMAModel, with warm-up)
    label_dropout: float = 0.1  # share of clips trained with the null class instead of their labels (guidance)
    num_train_timesteps: int = 1000  # DDPM noise levels
    beta_schedule: str = "squaredcos_cap_v2"  # DDPM schedule: squaredcos_cap_v2 (cosine) | linear
    validation_steps: int = 500  # sample clips every this many steps into samples/
    validation_samples: int = 4  # clips per validation (labels of the first windows of the footage)
    validation_inference_steps: int = 25  # DDIM steps of a validation sample
    report_to: str | None = "tensorboard"  # log loss and lr to output_dir/logs (when tensorboard is installed)
    overwrite: bool = False  # start over in an output_dir that holds a run (else refused)

    def __post_init__(self):
        check_choice("mixed_precision", self.mixed_precision, MIXED_PRECISIONS)
        check_choice("beta_schedule", self.beta_schedule, ("squaredcos_cap_v2", "linear"))
        if self.report_to is not None:
            check_choice("report_to", self.report_to, ("tensorboard",))
        for key in ("max_train_steps", "train_batch_size", "gradient_accumulation_steps", "checkpointing_steps"):
            _at_least(key, getattr(self, key), 1)
        for key in ("checkpoints_total_limit", "validation_steps", "validation_inference_steps"):
            _at_least(key, getattr(self, key), 1)
        for key in ("data.num_frames", "data.resolution", "num_train_timesteps", "validation_samples"):
            owner, name = (self.data, key[5:]) if key.startswith("data.") else (self, key)
            _at_least(key, getattr(owner, name), 1)
        _at_least("data.frame_skip", self.data.frame_skip, 0)
        _at_least("data.num_workers", self.data.num_workers, 0)
        if not self.learning_rate > 0:
            raise VidSynthError(f"config key 'learning_rate' must be positive; got {self.learning_rate}. Use e.g. 2e-4")
        if not 0 <= self.label_dropout < 1:
            raise VidSynthError(f"config key 'label_dropout' must be in [0, 1); got {self.label_dropout}. Use 0.1")
        if not 0 < self.ema_decay < 1:
            raise VidSynthError(f"config key 'ema_decay' must be between 0 and 1; got {self.ema_decay}. Use 0.999")
        self._check_stages()
        if self.data.resolution is None:
            self.data.resolution = self.stages[-1].resolution

    def _check_stages(self) -> None:
        """A base first; every upsampler enlarges the stage before it; unique names; a known ``stage``."""
        if not self.stages:
            raise VidSynthError("config key 'stages' is empty. Give at least a base stage, e.g. {name: base}")
        names = [stage.name for stage in self.stages]
        if len(set(names)) < len(names):
            raise VidSynthError(f"stage names must differ, got {names}. Rename one")
        if self.stages[0].kind != "base":
            raise VidSynthError(
                f"upsampler stage {self.stages[0].name!r} has no base before it. "
                "Put a stage of kind base first in stages"
            )
        for before, stage in zip(self.stages, self.stages[1:], strict=False):
            if stage.kind == "base":
                raise VidSynthError(f"stage {stage.name!r} is a second base. Only the first stage is a base")
            if stage.resolution <= before.resolution:
                raise VidSynthError(
                    f"upsampler {stage.name!r} ({stage.resolution}px) does not enlarge {before.name!r} "
                    f"({before.resolution}px). Give it a larger resolution"
                )
        largest = self.stages[-1].resolution
        if self.data.resolution is not None and self.data.resolution < largest:
            raise VidSynthError(
                f"data.resolution {self.data.resolution} is smaller than stage {self.stages[-1].name!r} "
                f"({largest}px). Set data.resolution={largest} or null"
            )
        if self.stage is not None and self.stage not in names:
            raise VidSynthError(f"stage={self.stage!r} is not one of the stages {names}. Pick one of them")

    def stage_steps(self, stage: StageConfig) -> int:
        return stage.max_train_steps or self.max_train_steps

    def previous(self, stage: StageConfig) -> StageConfig | None:
        """The stage whose clips ``stage`` upsamples (None for the base)."""
        index = [s.name for s in self.stages].index(stage.name)
        return self.stages[index - 1] if index else None
