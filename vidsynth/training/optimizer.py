"""The optimizer over the trained parameters only (AdamW, or bitsandbytes' 8-bit AdamW) and its lr schedule.

Only parameters that require a gradient are handed to the optimizer, so Adam keeps moments for
the few tuned modules and none for the frozen rest of the UNet. The 8-bit AdamW keeps both moments
block-wise quantised to one byte each instead of four (bitsandbytes runs it on CPUs as well as on
CUDA), which saves 6 bytes per tuned parameter: about 0.4 GiB for SD-1.4's 74M tuned parameters.
"""

import importlib
from collections.abc import Iterable

import torch
from diffusers.optimization import get_scheduler

from vidsynth.config.train import TrainConfig
from vidsynth.errors import VidSynthError


def check_8bit_adam() -> None:
    """Fail before any model loads when 8-bit Adam is asked for but bitsandbytes is missing."""
    try:
        importlib.import_module("bitsandbytes")
    except ImportError as err:
        raise VidSynthError(
            f"use_8bit_adam: true needs the bitsandbytes package, which cannot be imported ({err}). "
            "Install it (pip install -r requirements.txt) or set use_8bit_adam=false"
        ) from err


def build_optimizer(params: Iterable[torch.nn.Parameter], cfg: TrainConfig, learning_rate: float):
    """AdamW with the config's betas, weight decay and epsilon (8-bit when ``use_8bit_adam``)."""
    params = [p for p in params if p.requires_grad]
    if not params:
        raise VidSynthError("no parameter is selected for training. Check trainable_modules")
    if cfg.use_8bit_adam:
        check_8bit_adam()
        optimizer_class = importlib.import_module("bitsandbytes").optim.AdamW8bit
    else:
        optimizer_class = torch.optim.AdamW
    return optimizer_class(
        params,
        lr=learning_rate,
        betas=(cfg.adam_beta1, cfg.adam_beta2),
        weight_decay=cfg.adam_weight_decay,
        eps=cfg.adam_epsilon,
    )


def scaled_learning_rate(cfg: TrainConfig, num_processes: int) -> float:
    """``learning_rate``, multiplied by accumulation steps x batch size x processes with ``scale_lr``."""
    if not cfg.scale_lr:
        return cfg.learning_rate
    return cfg.learning_rate * cfg.gradient_accumulation_steps * cfg.train_batch_size * num_processes


def build_lr_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, num_processes: int):
    """The ``lr_scheduler`` schedule; accelerate steps a prepared scheduler once per process: hence the factor."""
    return get_scheduler(
        cfg.lr_scheduler,
        optimizer=optimizer,
        num_warmup_steps=cfg.lr_warmup_steps * num_processes,
        num_training_steps=cfg.max_train_steps * num_processes,
    )
