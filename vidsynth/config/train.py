"""The tuning config: every key ``train.py`` reads, with its default.

Key names are the original Tune-A-Video's, so its ``configs/*.yaml`` run unchanged; keys that only
VidSynth has are grouped at the end. Defaults follow the original (lr 3e-5, AdamW (0.9, 0.999),
weight decay 1e-2, eps 1e-8, constant schedule, grad-norm clip 1.0, batch 1, 500 steps, seed 33).
"""

from dataclasses import dataclass, field

from vidsynth.config.loader import check_choice
from vidsynth.dtypes import DTYPE_NAMES, FROZEN_DTYPES
from vidsynth.errors import VidSynthError

# Written out, so that a config is checked without importing diffusers or torch; tests/test_config.py keeps
# them equal to diffusers' SchedulerType (less piecewise_constant, which needs step rules no key here sets)
# and to vidsynth.models.trainable's default.
LR_SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup")
DEFAULT_TRAINABLE_MODULES = ("attn1.to_q", "attn2.to_q", "attn_temp")
# fixed: tune on the span's first n_sample_frames, as the original; random: a window anywhere in the span per step.
WINDOW_SAMPLING = ("fixed", "random")


def _check_at_least(key: str, value: int | float | None, low: int | float) -> None:
    """For ``__post_init__``: a count or rate below ``low`` would silently do nothing or loop forever."""
    if value is not None and value < low:
        raise VidSynthError(f"config key '{key}' must be at least {low}; got {value}. Set {key}={low} or more")


@dataclass
class TrainDataConfig:
    video_path: str = "???"  # the clip to tune on (any format ffmpeg reads)
    prompt: str = "???"  # what the clip shows, e.g. "a man is skiing"
    n_sample_frames: int = 24  # frames seen per step: the window
    width: int = 512  # frames are resized to width x height (multiples of 8)
    height: int = 512  # see width; any aspect ratio
    sample_start_idx: int = 0  # first frame index of the span
    sample_frame_rate: int = 2  # stride between used frames
    sample_end_idx: int | None = None  # end (exclusive) of the span: range(start, end, stride); none: the clip's end
    window_sampling: str = "fixed"  # fixed: the span's first window (original) | random: any window, drawn per step

    def __post_init__(self):
        check_choice("train_data.window_sampling", self.window_sampling, WINDOW_SAMPLING)


@dataclass
class ValidationDataConfig:
    prompts: list[str] = field(default_factory=list)  # edits rendered every validation_steps (none: no validation)
    video_length: int = 24  # frames of each edit (= train_data.n_sample_frames when use_inv_latent)
    width: int = 512  # size of each edit (= the training size when use_inv_latent)
    height: int = 512  # see width
    num_inference_steps: int = 50  # DDIM sampling steps
    guidance_scale: float = 12.5  # classifier-free guidance scale (1 or less: no guidance)
    use_inv_latent: bool = True  # start sampling from the DDIM-inverted clip (else from noise)
    num_inv_steps: int = 50  # DDIM inversion steps
    negative_prompt: str | None = None  # what to steer away from (classifier-free guidance only)

    def __post_init__(self):
        for key in ("video_length", "width", "height", "num_inference_steps", "num_inv_steps"):
            _check_at_least(f"validation_data.{key}", getattr(self, key), 1)


@dataclass
class TrainConfig:
    pretrained_model_path: str = "./checkpoints/stable-diffusion-v1-4"  # SD-1.x folder or hub id
    output_dir: str = "./outputs/clip"  # where config.yaml, samples/, checkpoints/ and the result go
    train_data: TrainDataConfig = field(default_factory=TrainDataConfig)  # the clip and its prompt
    validation_data: ValidationDataConfig = field(default_factory=ValidationDataConfig)  # edits rendered while tuning
    validation_steps: int = 100  # render the prompts every this many steps, and at the end if <= max_train_steps
    trainable_modules: list[str] = field(default_factory=lambda: list(DEFAULT_TRAINABLE_MODULES))  # module suffixes
    train_batch_size: int = 1  # copies of the clip per step, each with its own timestep and noise
    max_train_steps: int = 500  # optimizer steps
    learning_rate: float = 3e-5  # AdamW learning rate
    scale_lr: bool = False  # multiply lr by accumulation steps x batch size x processes
    lr_scheduler: str = "constant"  # any name diffusers' get_scheduler knows
    lr_warmup_steps: int = 0  # steps of linear warm-up (for schedules that have one)
    adam_beta1: float = 0.9  # AdamW beta1
    adam_beta2: float = 0.999  # AdamW beta2
    adam_weight_decay: float = 1e-2  # AdamW (decoupled) weight decay
    adam_epsilon: float = 1e-8  # AdamW epsilon
    max_grad_norm: float = 1.0  # clip the gradient norm of the trained parameters to this
    gradient_accumulation_steps: int = 1  # micro-steps whose gradients add up to one optimizer step
    gradient_checkpointing: bool = True  # recompute activations in backward: less memory, ~30% slower
    checkpointing_steps: int = 500  # save a resumable checkpoint every this many steps
    resume_from_checkpoint: str | None = None  # "latest" (in output_dir/checkpoints) or a checkpoint-N folder
    mixed_precision: str = "no"  # no | fp16 | bf16 (autocast by accelerate; fp16 on CPU runs as bf16)
    use_8bit_adam: bool = False  # bitsandbytes' 8-bit AdamW (CPU or CUDA): Adam's state in 1/4 of the memory
    enable_xformers_memory_efficient_attention: bool = False  # accepted and ignored: SDPA is always used
    seed: int | None = 33  # seeds the temporal-layer init and every step's noise (none: a random seed, logged)
    # --- VidSynth additions ---
    checkpoints_total_limit: int | None = 2  # keep only the newest checkpoints (none: keep all)
    frame_norm: str = "joint"  # ResNet GroupNorm statistics: joint (over the clip, as the original) | per_frame
    temporal_out_bias_init: str = "zero"  # zero (exact inflation) | pytorch (the original's init)
    latent_sampling: str = "sample"  # sample a fresh VAE posterior latent each step (original) | mean
    frozen_dtype: str = "fp32"  # fp32 | bf16: storage of the frozen weights (compute: mixed_precision); tuned stay fp32
    report_to: str | None = None  # tensorboard: log loss and lr to output_dir/logs
    save_dtype: str = "fp32"  # fp32 | fp16 | bf16: tuned_unet.safetensors (16-bit halves it); checkpoints stay fp32
    save_full_pipeline: bool = False  # also write a complete diffusers pipeline folder (output_dir/pipeline)
    overwrite: bool = False  # replace a finished result in output_dir (else a new run there is refused)
    # --- LoRA tuning (lora_rank set): adapters instead of the pretrained projections' full weights ---
    lora_rank: int | None = None  # null: full tuning | the adapters' rank, e.g. 4
    lora_alpha: float | None = None  # adapter scale numerator (scale alpha / rank); null: the rank
    lora_target_modules: list[str] | None = None  # module suffixes; null: the non-temporal trainable_modules
    lora_dropout: float = 0.0  # dropout on the adapters' input while tuning
    lora_temporal: bool = False  # true: temporal layers get adapters on their seeded init; false: tuned fully

    def __post_init__(self):
        check_choice("mixed_precision", self.mixed_precision, ("no", "fp16", "bf16"))
        check_choice("frame_norm", self.frame_norm, ("joint", "per_frame"))
        check_choice("temporal_out_bias_init", self.temporal_out_bias_init, ("zero", "pytorch"))
        check_choice("latent_sampling", self.latent_sampling, ("sample", "mean"))
        check_choice("frozen_dtype", self.frozen_dtype, FROZEN_DTYPES)
        check_choice("save_dtype", self.save_dtype, DTYPE_NAMES)
        check_choice("lr_scheduler", self.lr_scheduler, LR_SCHEDULERS)
        if self.report_to is not None:
            check_choice("report_to", self.report_to, ("tensorboard",))
        for key in (
            "validation_steps",
            "train_batch_size",
            "max_train_steps",
            "gradient_accumulation_steps",
            "checkpointing_steps",
            "checkpoints_total_limit",
        ):
            _check_at_least(key, getattr(self, key), 1)
        for key in ("lr_warmup_steps", "max_grad_norm", "adam_weight_decay"):
            _check_at_least(key, getattr(self, key), 0)
        if self.seed is not None:
            _check_at_least("seed", self.seed, 0)
        self._check_lora()
        if not self.learning_rate > 0:
            raise VidSynthError(f"config key 'learning_rate' must be positive; got {self.learning_rate}. Use e.g. 3e-5")

    def _check_lora(self) -> None:
        """The LoRA keys: a rank of 1 or more (null: full tuning), a positive alpha, a dropout in [0, 1)."""
        if self.lora_rank is not None and self.lora_rank < 1:
            raise VidSynthError(
                f"config key 'lora_rank' must be at least 1; got {self.lora_rank}. "
                "Set e.g. lora_rank=4, or lora_rank=null for full tuning"
            )
        if self.lora_alpha is not None and not self.lora_alpha > 0:
            raise VidSynthError(f"config key 'lora_alpha' must be positive; got {self.lora_alpha}. Use e.g. the rank")
        if not 0 <= self.lora_dropout < 1:
            raise VidSynthError(f"config key 'lora_dropout' must be in [0, 1); got {self.lora_dropout}. Use e.g. 0.0")
        if self.lora_temporal and self.lora_rank is None:
            raise VidSynthError("lora_temporal: true needs LoRA tuning. Set lora_rank (e.g. 4), or lora_temporal=false")
        unused = [key for key in ("lora_alpha", "lora_target_modules") if getattr(self, key) is not None]
        unused += ["lora_dropout"] if self.lora_dropout and self.lora_rank is None else []
        if unused and self.lora_rank is None:
            raise VidSynthError(
                f"{', '.join(unused)} set, but tuning is full (lora_rank: null). Set lora_rank (e.g. 4), or drop them"
            )
