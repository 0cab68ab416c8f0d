"""The tuning config: every key ``train.py`` reads, with its default.

Key names are the original Tune-A-Video's, so its ``configs/*.yaml`` run unchanged; keys that only
VidSynth has are grouped at the end. Defaults follow the original (lr 3e-5, AdamW (0.9, 0.999),
weight decay 1e-2, eps 1e-8, constant schedule, grad-norm clip 1.0, batch 1, 500 steps, seed 33).
"""

from dataclasses import dataclass, field

from vidsynth.config.loader import check_choice
from vidsynth.models.trainable import DEFAULT_TRAINABLE_MODULES


@dataclass
class TrainDataConfig:
    video_path: str = "???"  # the clip to tune on (any format ffmpeg reads)
    prompt: str = "???"  # what the clip shows, e.g. "a man is skiing"
    n_sample_frames: int = 24  # frames used for tuning
    width: int = 512  # frames are resized to width x height (multiples of 8; of 64 for full SD)
    height: int = 512
    sample_start_idx: int = 0  # first frame index used
    sample_frame_rate: int = 2  # stride between used frames


@dataclass
class ValidationDataConfig:
    prompts: list[str] = field(default_factory=list)  # edits rendered every validation_steps
    video_length: int = 24
    width: int = 512
    height: int = 512
    num_inference_steps: int = 50
    guidance_scale: float = 12.5
    use_inv_latent: bool = True  # start sampling from the DDIM-inverted clip (else from noise)
    num_inv_steps: int = 50
    negative_prompt: str | None = None


@dataclass
class TrainConfig:
    pretrained_model_path: str = "./checkpoints/stable-diffusion-v1-4"  # SD-1.x folder or hub id
    output_dir: str = "./outputs/clip"
    train_data: TrainDataConfig = field(default_factory=TrainDataConfig)
    validation_data: ValidationDataConfig = field(default_factory=ValidationDataConfig)
    validation_steps: int = 100
    trainable_modules: list[str] = field(default_factory=lambda: list(DEFAULT_TRAINABLE_MODULES))
    train_batch_size: int = 1
    max_train_steps: int = 500
    learning_rate: float = 3e-5
    scale_lr: bool = False  # multiply lr by accumulation steps x batch size x processes
    lr_scheduler: str = "constant"  # any name diffusers' get_scheduler knows
    lr_warmup_steps: int = 0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_weight_decay: float = 1e-2
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0
    gradient_accumulation_steps: int = 1
    gradient_checkpointing: bool = True
    checkpointing_steps: int = 500
    resume_from_checkpoint: str | None = None  # a checkpoint folder, or "latest"
    mixed_precision: str = "no"  # no | fp16 | bf16
    use_8bit_adam: bool = False  # needs bitsandbytes and a GPU
    enable_xformers_memory_efficient_attention: bool = False  # accepted and ignored: SDPA is always used
    seed: int | None = 33
    # --- VidSynth additions ---
    checkpoints_total_limit: int | None = 2  # keep only the newest checkpoints
    frame_norm: str = "joint"  # ResNet GroupNorm statistics: joint (over the clip, as the original) | per_frame
    temporal_out_bias_init: str = "zero"  # zero (exact inflation) | pytorch (the original's init)
    latent_sampling: str = "sample"  # sample a fresh VAE posterior latent each step (original) | mean
    frozen_dtype: str = "fp32"  # fp32 | bf16: dtype of the frozen weights; trainables and Adam stay fp32
    report_to: str | None = None  # tensorboard to log the loss
    save_full_pipeline: bool = False  # also write a complete diffusers pipeline folder
    overwrite: bool = False  # replace a finished result in output_dir

    def __post_init__(self):
        check_choice("mixed_precision", self.mixed_precision, ("no", "fp16", "bf16"))
        check_choice("frame_norm", self.frame_norm, ("joint", "per_frame"))
        check_choice("temporal_out_bias_init", self.temporal_out_bias_init, ("zero", "pytorch"))
        check_choice("latent_sampling", self.latent_sampling, ("sample", "mean"))
        check_choice("frozen_dtype", self.frozen_dtype, ("fp32", "bf16"))
