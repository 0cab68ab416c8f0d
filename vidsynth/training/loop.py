"""One optimizer step of tuning: its micro-steps, their windows and draws, the backward pass, the update.

The parts a step changes (the prepared UNet, optimizer and schedule) are settled before the first
one, so a step is a frozen set of them, called with the number of steps done and the data it tunes
on (the cached clip latents, the prompt's embedding, the span its window comes from); ``train.py``
keeps the loop itself (progress, logging, checkpoints, validation), so that its story reads from top
to bottom.
"""

import math
from dataclasses import dataclass

import torch
from accelerate import Accelerator
from diffusers import DDPMScheduler

from vidsynth.config.train import TrainConfig
from vidsynth.errors import VidSynthError
from vidsynth.training.encode import ClipLatents
from vidsynth.training.span import TuningSpan
from vidsynth.training.step import diffusion_loss, step_generator


@dataclass(frozen=True, eq=False)  # eq=False: tensors have no single truth value
class TuningStep:
    """Runs one optimizer step: ``gradient_accumulation_steps`` micro-steps, each on the window it draws."""

    accelerator: Accelerator
    unet: torch.nn.Module  # as prepared by accelerate
    optimizer: torch.optim.Optimizer  # over the trained parameters only
    lr_scheduler: torch.optim.lr_scheduler.LRScheduler
    noise_scheduler: DDPMScheduler
    cfg: TrainConfig
    seed: int

    def __call__(
        self, steps_done: int, clip_latents: ClipLatents, text_embeddings: torch.Tensor, span: TuningSpan
    ) -> float:
        """Step ``steps_done + 1`` on windows of ``clip_latents`` (the posterior of every frame read, (1, 4, F, h, w))
        with the prompt's ``text_embeddings`` (1, 77, D); its loss, averaged over micro-steps and processes."""
        accelerator, cfg = self.accelerator, self.cfg
        trained_params = [param for group in self.optimizer.param_groups for param in group["params"]]
        step_loss = 0.0
        for micro_step in range(cfg.gradient_accumulation_steps):
            with accelerator.accumulate(self.unet):
                generator = step_generator(self.seed, steps_done, micro_step, accelerator.process_index)
                window_start = span.draw(generator)  # each process its own window: data parallel over the span
                loss = diffusion_loss(
                    self.unet,
                    self.noise_scheduler,
                    clip_latents.window(window_start, span.window),
                    text_embeddings,
                    generator,
                    batch_size=cfg.train_batch_size,
                    sample_posterior=cfg.latent_sampling == "sample",
                )
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(trained_params, cfg.max_grad_norm)
                self.optimizer.step()
                self.lr_scheduler.step()
                self.optimizer.zero_grad()
            step_loss += accelerator.gather(loss.detach()).mean().item() / cfg.gradient_accumulation_steps
            if span.sampling == "random":  # where each process's window starts, in source frames
                starts = accelerator.gather(torch.tensor([span.frames[window_start]], device=accelerator.device))
                windows = {f"window_start/process_{i}": start for i, start in enumerate(starts.tolist())}
                accelerator.log(windows, step=steps_done + 1)
        if not math.isfinite(step_loss):  # diverged: every later step would be NaN too
            raise VidSynthError(
                f"the loss is {step_loss} at step {steps_done + 1}: tuning diverged. "
                "Lower learning_rate, or set mixed_precision=no"
            )
        return step_loss
