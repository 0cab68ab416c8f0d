"""The Tune-A-Video editing pipeline on current diffusers: text-to-video sampling with the video UNet.

A real ``DiffusionPipeline`` (components vae, text_encoder, tokenizer, unet, scheduler), so it moves
between devices and dtypes, shows progress bars and round-trips through ``save_pretrained`` /
``from_pretrained`` like any diffusers pipeline. What differs from an image pipeline:

* the UNet is :class:`~vidsynth.models.VideoUNet` and latents are ``(batch, 4, frames, h, w)``;
* :meth:`TuneAVideoPipeline.invert` runs DDIM inversion (the original's, see ``inversion.py``) so an
  edit can start from the clip instead of from noise;
* loading always builds the *video* UNet before its weights load: diffusers' generic loader cannot
  resolve a component class from a package outside its own list, and would otherwise fall back to a
  2-D UNet that drops the temporal weights.

Sampling follows the original ``TuneAVideoPipeline.__call__``: classifier-free guidance only when
``guidance_scale > 1``, the unconditional text padded to 77 tokens without attention mask, latents
decoded one frame at a time.
"""

import inspect
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL, DDIMScheduler, DiffusionPipeline
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor
from transformers import CLIPTextModel, CLIPTokenizer

from vidsynth.errors import VidSynthError
from vidsynth.models.frozen_weights import compute_dtype
from vidsynth.models.trainable import load_trained, read_trained_metadata
from vidsynth.models.unet import VideoUNet
from vidsynth.pipelines.inversion import ddim_invert, inversion_scheduler

logger = logging.getLogger(__name__)

OUTPUT_TYPES = ("np", "pt", "latent")


@dataclass
class TuneAVideoPipelineOutput(BaseOutput):
    """``videos``: (batch, 3, frames, H, W) float32 in [0, 1] (numpy or torch), or latents for ``"latent"``."""

    videos: torch.Tensor | np.ndarray


class TuneAVideoPipeline(DiffusionPipeline):
    """Text-driven video editing with an inflated, one-shot tuned SD-1.x UNet (Tune-A-Video)."""

    model_cpu_offload_seq = "text_encoder->unet->vae"

    def __init__(
        self,
        vae: AutoencoderKL,
        text_encoder: CLIPTextModel,
        tokenizer: CLIPTokenizer,
        unet: VideoUNet,
        scheduler: SchedulerMixin,
    ):
        super().__init__()
        self.register_modules(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler)
        self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        # The VAE sees one frame at a time (as the original decodes): a clip's frames at once would
        # need F times the activation memory. ``pipe.vae.disable_slicing()`` trades memory for speed.
        self.vae.enable_slicing()

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, **kwargs) -> "TuneAVideoPipeline":
        """Load a folder written by :meth:`save_pretrained` (keyword arguments as diffusers').

        The unet is loaded with :meth:`VideoUNet.from_pretrained` (inflated from its config, then a
        strict load). diffusers loads the other components; it is told to skip the unet
        (``unet=None``) because its type check cannot resolve a class recorded under a module outside
        its own libraries, and the video UNet is registered once the pipeline stands.
        """
        unet = kwargs.pop("unet", None)
        if unet is None:
            dtype = kwargs.get("dtype", kwargs.get("torch_dtype"))
            hub_kwargs = {k: kwargs[k] for k in ("cache_dir", "local_files_only", "revision", "token") if k in kwargs}
            unet = VideoUNet.from_pretrained(
                pretrained_model_name_or_path,
                subfolder="unet",
                dtype=dtype if isinstance(dtype, torch.dtype) else None,
                **hub_kwargs,
            )
        pipe = super().from_pretrained(pretrained_model_name_or_path, unet=None, **kwargs)
        pipe.register_modules(unet=unet)
        return pipe

    @classmethod
    def from_base(
        cls,
        base_model: str | Path,
        trained: str | Path | None = None,
        dtype: torch.dtype | None = None,
    ) -> "TuneAVideoPipeline":
        """Inflate a plain SD-1.x model (folder or hub id), optionally with a ``save_trained`` file.

        The trained file's metadata sets the inflation options (``frame_norm``,
        ``temporal_out_bias_init``); its keys must fit the UNet exactly. The scheduler is DDIM with
        the model's noise schedule, whatever the folder names (SD folders name PNDM).
        """
        options = {}
        if trained is not None:
            metadata = read_trained_metadata(trained)
            options = {k: metadata[k] for k in ("frame_norm", "temporal_out_bias_init")}
        unet = VideoUNet.from_pretrained_2d(base_model, subfolder="unet", **options)
        if trained is not None:
            load_trained(unet, trained)
        if dtype is not None and dtype != unet.dtype:
            unet = unet.to(dtype)
        scheduler = DDIMScheduler.from_pretrained(base_model, subfolder="scheduler")
        return cls.from_pretrained(base_model, unet=unet, scheduler=scheduler, dtype=dtype)

    @classmethod
    def from_tuneavideo(cls, folder: str | Path, dtype: torch.dtype | None = None) -> "TuneAVideoPipeline":
        """Load a pipeline folder saved by the original Tune-A-Video code (unet with ``attn_temp``).

        Its ``model_index.json`` names the original's own package for the unet, which is not
        installed, so every component is loaded from its subfolder by class.
        """
        folder = Path(folder)
        if not (folder / "unet" / "config.json").is_file():
            raise VidSynthError(
                f"{folder} has no unet/config.json. Point at the folder the original Tune-A-Video saved"
            )
        unet = VideoUNet.from_tuneavideo(folder / "unet")
        pipe = cls(
            vae=AutoencoderKL.from_pretrained(folder, subfolder="vae"),
            text_encoder=CLIPTextModel.from_pretrained(folder, subfolder="text_encoder"),
            tokenizer=CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer"),
            unet=unet,
            scheduler=DDIMScheduler.from_pretrained(folder, subfolder="scheduler"),
        )
        return pipe.to(dtype=dtype) if dtype is not None and dtype != torch.float32 else pipe

    @staticmethod
    def is_tuneavideo_folder(folder: str | Path) -> bool:
        """Whether ``folder`` is a pipeline saved by the original Tune-A-Video (its 3-D unet class)."""
        config = Path(folder) / "unet" / "config.json"
        return config.is_file() and json.loads(config.read_text()).get("_class_name") == "UNet3DConditionModel"

    # ------------------------------------------------------------------ encoders

    def encode_prompt(self, prompt: list[str], device: torch.device) -> torch.Tensor:
        """Text embeddings (b, 77, D): padded to the tokenizer's length, truncated, no attention mask."""
        max_length = self.tokenizer.model_max_length
        tokens = self.tokenizer(
            prompt, padding="max_length", max_length=max_length, truncation=True, return_tensors="pt"
        )
        untruncated = self.tokenizer(prompt, padding="longest", return_tensors="pt").input_ids
        if untruncated.shape[-1] > max_length:
            logger.warning("A prompt is longer than %d tokens; the text encoder sees only its start", max_length)
        embeddings = self.text_encoder(tokens.input_ids.to(device))[0]  # (b, 77, D)
        return embeddings.to(compute_dtype(self.unet))

    def encode_video(
        self,
        pixels: torch.Tensor,
        generator: torch.Generator | None = None,
        sample_posterior: bool = False,
    ) -> torch.Tensor:
        """Clip pixels in [-1, 1], (F, 3, H, W) or (b, 3, F, H, W) -> latents (b, 4, F, h, w) × scaling factor.

        The posterior mean by default (deterministic: cacheable inversions); ``sample_posterior``
        draws from it as the original's training does. The VAE runs frame by frame (slicing).
        """
        if pixels.ndim == 4:
            pixels = pixels.permute(1, 0, 2, 3).unsqueeze(0)  # (F, 3, H, W) -> (1, 3, F, H, W)
        if pixels.ndim != 5 or pixels.shape[1] != 3:
            raise VidSynthError(
                f"encode_video needs pixels as (frames, 3, H, W) or (batch, 3, frames, H, W), got "
                f"{tuple(pixels.shape)}. Pass Clip.pixels of vidsynth.video.read_clip"
            )
        batch, _, frames, height, width = pixels.shape
        self._check_size(height, width)
        flat = pixels.permute(0, 2, 1, 3, 4).reshape(batch * frames, 3, height, width)  # (b f, 3, H, W)
        flat = flat.to(self._execution_device, compute_dtype(self.vae))
        with torch.no_grad():
            posterior = self.vae.encode(flat).latent_dist
        latents = posterior.sample(generator) if sample_posterior else posterior.mean  # (b f, 4, h, w)
        latents = latents.reshape(batch, frames, *latents.shape[1:]).permute(0, 2, 1, 3, 4)  # (b, 4, F, h, w)
        return latents * self.vae.config.scaling_factor

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents (b, 4, F, h, w) -> frames (b, 3, F, H, W) float32 in [0, 1], one frame at a time."""
        batch, channels, frames, height, width = latents.shape
        flat = latents.permute(0, 2, 1, 3, 4).reshape(batch * frames, channels, height, width)  # (b f, 4, h, w)
        flat = flat.to(compute_dtype(self.vae)) / self.vae.config.scaling_factor
        decoded = self.vae.decode(flat).sample  # (b f, 3, H, W)
        video = decoded.reshape(batch, frames, *decoded.shape[1:]).permute(0, 2, 1, 3, 4)  # (b, 3, F, H, W)
        return (video / 2 + 0.5).clamp(0, 1).float()

    # ------------------------------------------------------------------ inversion

    @torch.no_grad()
    def invert(
        self,
        video_latents: torch.Tensor,
        prompt: str = "",
        num_inference_steps: int = 50,
        return_all: bool = False,
    ) -> torch.Tensor | list[torch.Tensor]:
        """DDIM-invert clip latents (b, 4, F, h, w) as Tune-A-Video does; see ``inversion.py``.

        The noise is predicted for ``prompt`` alone (no guidance). Returns the inverted latents at
        the last timestep, or with ``return_all`` every latent from the input to the inverted one.
        """
        self._check_latents(video_latents, "video_latents")
        self._check_steps(num_inference_steps, "num_inference_steps")
        if not isinstance(prompt, str):
            raise VidSynthError(f"the inversion prompt must be a string, got {type(prompt).__name__}. Pass e.g. ''")
        device = self._execution_device
        latents = video_latents.to(device, compute_dtype(self.unet))
        text = self.encode_prompt([prompt] * latents.shape[0], device)  # (b, 77, D)
        scheduler = inversion_scheduler(self.scheduler.config, num_inference_steps)

        def predict_noise(sample: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
            return self.unet(sample, timestep, encoder_hidden_states=text).sample

        def progress(timesteps):
            bar = self.progress_bar(timesteps)
            bar.set_description("DDIM inversion")
            return bar

        trajectory = ddim_invert(predict_noise, latents, scheduler, progress)
        return trajectory if return_all else trajectory[-1]

    # ------------------------------------------------------------------ checks

    def _check_size(self, height: int, width: int) -> None:
        for name, value in (("height", height), ("width", width)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0 or value % self.vae_scale_factor:
                raise VidSynthError(
                    f"{name} must be a positive multiple of {self.vae_scale_factor} (the VAE works on "
                    f"{self.vae_scale_factor}x{self.vae_scale_factor} blocks), got {value!r}. Round it to a multiple"
                )

    def _check_steps(self, steps: int, name: str) -> None:
        limit = self.scheduler.config.num_train_timesteps
        if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= limit:
            raise VidSynthError(f"{name} must be an integer from 1 to {limit}, got {steps!r}. Use e.g. 50")

    def _check_latents(self, latents: torch.Tensor, name: str) -> None:
        channels = self.unet.config.in_channels
        if not isinstance(latents, torch.Tensor) or latents.ndim != 5 or latents.shape[1] != channels:
            shape = tuple(latents.shape) if isinstance(latents, torch.Tensor) else type(latents).__name__
            raise VidSynthError(
                f"{name} must be a tensor (batch, {channels}, frames, h, w), got {shape}. "
                "Encode the clip with pipe.encode_video"
            )

    def check_inputs(
        self,
        prompt: str | list[str],
        video_length: int,
        height: int,
        width: int,
        num_inference_steps: int,
        guidance_scale: float,
        negative_prompt: str | list[str] | None,
        eta: float,
        latents: torch.Tensor | None,
        generator: torch.Generator | list[torch.Generator] | None,
        output_type: str,
    ) -> None:
        """Validate the arguments of :meth:`__call__`; every error says how to fix it."""
        prompts = [prompt] if isinstance(prompt, str) else prompt
        if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
            raise VidSynthError(f"prompt must be a string or a non-empty list of strings, got {prompt!r}. Pass a text")
        if isinstance(video_length, bool) or not isinstance(video_length, int) or video_length < 1:
            raise VidSynthError(f"video_length must be a positive integer, got {video_length!r}. Pass the frame count")
        self._check_size(height, width)
        self._check_steps(num_inference_steps, "num_inference_steps")
        if not isinstance(guidance_scale, int | float) or not math.isfinite(guidance_scale):
            raise VidSynthError(f"guidance_scale must be a finite number, got {guidance_scale!r}. Use e.g. 12.5")
        if isinstance(negative_prompt, list) and len(negative_prompt) != len(prompts):
            raise VidSynthError(
                f"{len(negative_prompt)} negative prompts for {len(prompts)} prompts. Pass one string for all, "
                "or one per prompt"
            )
        if negative_prompt is not None and not isinstance(negative_prompt, str | list):
            raise VidSynthError(f"negative_prompt must be a string or a list of strings, got {negative_prompt!r}")
        if not 0.0 <= eta <= 1.0:
            raise VidSynthError(f"eta must be in [0, 1], got {eta}. Use 0 for deterministic DDIM")
        if latents is not None:
            self._check_latents(latents, "latents")
            expected = (video_length, height // self.vae_scale_factor, width // self.vae_scale_factor)
            if tuple(latents.shape[2:]) != expected or latents.shape[0] not in (1, len(prompts)):
                raise VidSynthError(
                    f"latents of shape {tuple(latents.shape)} do not fit {len(prompts)} prompt(s), {video_length} "
                    f"frames at {width}x{height} (expected (1 or {len(prompts)}, {latents.shape[1]}, {expected[0]}, "
                    f"{expected[1]}, {expected[2]})). Pass video_length, height and width of the clip they come from"
                )
        if isinstance(generator, list) and len(generator) != len(prompts):
            raise VidSynthError(f"{len(generator)} generators for {len(prompts)} prompts. Pass one, or one per prompt")
        if output_type not in OUTPUT_TYPES:
            raise VidSynthError(f"output_type must be one of {', '.join(OUTPUT_TYPES)}, got {output_type!r}")

    # ------------------------------------------------------------------ sampling

    def prepare_latents(
        self,
        batch_size: int,
        video_length: int,
        height: int,
        width: int,
        dtype: torch.dtype,
        device: torch.device,
        generator: torch.Generator | list[torch.Generator] | None,
        latents: torch.Tensor | None,
    ) -> torch.Tensor:
        """Starting latents (b, 4, F, h, w): given ones as they are (one is shared by all prompts), else noise."""
        if latents is None:
            shape = (
                batch_size,
                self.unet.config.in_channels,
                video_length,
                height // self.vae_scale_factor,
                width // self.vae_scale_factor,
            )
            latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
        else:
            latents = latents.to(device, dtype).expand(batch_size, -1, -1, -1, -1)
        return latents * self.scheduler.init_noise_sigma

    def _step_kwargs(self, generator: torch.Generator | list[torch.Generator] | None, eta: float) -> dict:
        """``eta`` and ``generator`` for schedulers whose ``step`` takes them (DDIM does)."""
        accepted = set(inspect.signature(self.scheduler.step).parameters)
        return {k: v for k, v in (("eta", eta), ("generator", generator)) if k in accepted}

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str],
        video_length: int,
        height: int,
        width: int,
        num_inference_steps: int = 50,
        guidance_scale: float = 12.5,
        negative_prompt: str | list[str] | None = None,
        eta: float = 0.0,
        latents: torch.Tensor | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        output_type: str = "np",
        return_dict: bool = True,
    ) -> TuneAVideoPipelineOutput | tuple:
        """Sample videos for ``prompt``: (batch, 3, video_length, height, width) in [0, 1].

        ``latents`` (1 or batch, 4, F, h, w), e.g. from :meth:`invert`, start the sampling as they are
        (× the scheduler's ``init_noise_sigma``); one is shared by all prompts. Without them the
        start is noise from ``generator``. ``output_type``: "np", "pt" or "latent".
        """
        # 1. Check inputs
        self.check_inputs(
            prompt,
            video_length,
            height,
            width,
            num_inference_steps,
            guidance_scale,
            negative_prompt,
            eta,
            latents,
            generator,
            output_type,
        )

        # 2. Define call parameters
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        batch_size = len(prompts)
        device = self._execution_device
        do_guidance = guidance_scale > 1.0

        # 3. Encode the prompts: [uncond, cond] with guidance, the prompts alone without
        text_embeddings = self.encode_prompt(prompts, device)  # (b, 77, D)
        if do_guidance:
            negative = negative_prompt if isinstance(negative_prompt, list) else [negative_prompt or ""] * batch_size
            text_embeddings = torch.cat([self.encode_prompt(negative, device), text_embeddings])  # (2b, 77, D)

        # 4. Prepare timesteps
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        timesteps = self.scheduler.timesteps

        # 5. Prepare latent variables
        latents = self.prepare_latents(
            batch_size, video_length, height, width, compute_dtype(self.unet), device, generator, latents
        )  # (b, 4, F, h, w)

        # 6. Prepare extra step kwargs
        step_kwargs = self._step_kwargs(generator, eta)

        # 7. Denoising loop
        progress = self.progress_bar(timesteps)
        progress.set_description("Sampling")
        for t in progress:
            model_input = torch.cat([latents] * 2) if do_guidance else latents
            model_input = self.scheduler.scale_model_input(model_input, t)
            noise_pred = self.unet(model_input, t, encoder_hidden_states=text_embeddings).sample
            if do_guidance:
                noise_uncond, noise_text = noise_pred.chunk(2)
                noise_pred = noise_uncond + guidance_scale * (noise_text - noise_uncond)
            latents = self.scheduler.step(noise_pred, t, latents, **step_kwargs).prev_sample

        # 8. Post-processing
        if output_type == "latent":
            videos = latents
        else:
            videos = self.decode_latents(latents)  # (b, 3, F, H, W) float32 in [0, 1]
            videos = videos.cpu().numpy() if output_type == "np" else videos

        # 9. Offload all models
        self.maybe_free_model_hooks()
        return TuneAVideoPipelineOutput(videos=videos) if return_dict else (videos,)
