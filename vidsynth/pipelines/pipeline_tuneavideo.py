"""The Tune-A-Video editing pipeline on current diffusers: text-to-video sampling with the video UNet.

A real ``DiffusionPipeline`` (components vae, text_encoder, tokenizer, unet, scheduler and an optional
controlnet), so it moves between devices and dtypes, shows progress bars and round-trips through
``save_pretrained`` / ``from_pretrained`` like any diffusers pipeline. What differs from an image pipeline:

* the UNet is :class:`~vidsynth.models.VideoUNet` and latents are ``(batch, 4, frames, h, w)``;
* :meth:`TuneAVideoPipeline.invert` runs DDIM inversion (the original's, see ``inversion.py``) so an
  edit can start from the clip instead of from noise;
* a ``controlnet`` (diffusers' ``ControlNetModel``, or several as ``MultiControlNetModel``) guides the
  sampling with one map per frame (``conditioning_frames``), with the arguments and meaning of
  diffusers' ``StableDiffusionControlNetPipeline``. It runs per frame inside the video UNet's forward
  (``vidsynth/models/control.py``). The inversion runs without it: the inverted latents depend on the
  model and the clip only, so one inversion serves every control, scale and prompt;
* ``callback_on_step_end`` (with ``callback_on_step_end_tensor_inputs``) is diffusers': a function
  (or a ``PipelineCallback``) called after every sampling step with the step's tensors, whose returned
  ``latents`` replace the step's. Region edits blend with the source's latents this way
  (``vidsynth/regions/blend.py``);
* ``from_pretrained`` builds the *video* UNet before its weights load: diffusers' generic loader
  cannot resolve a component class from a package outside its own list, and would otherwise fall
  back to a 2-D UNet that drops the temporal weights. Every other model source (a base SD model, a
  tuning result, the original's folders) is loaded by :func:`vidsynth.pipelines.loading.load_pipeline`.

Sampling follows the original ``TuneAVideoPipeline.__call__``: classifier-free guidance only when
``guidance_scale > 1``, the unconditional text padded to 77 tokens without attention mask, latents
decoded one frame at a time.
"""

import inspect
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image
import torch
from diffusers import AutoencoderKL, ControlNetModel, DiffusionPipeline, MultiControlNetModel
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.image_processor import VaeImageProcessor
from diffusers.loaders import StableDiffusionLoraLoaderMixin
from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import StableDiffusionPipeline
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import is_compiled_module, randn_tensor
from tqdm.auto import tqdm
from transformers import CLIPTextModel, CLIPTokenizer

from vidsynth import events
from vidsynth.errors import VidSynthError
from vidsynth.media.writers import to_uint8
from vidsynth.models.control import VideoControl
from vidsynth.models.frozen_weights import compute_dtype
from vidsynth.models.unet import VideoUNet
from vidsynth.models.windows import check_windows, windowed_unet
from vidsynth.pipelines.inversion import ddim_invert, inversion_scheduler

logger = logging.getLogger(__name__)

OUTPUT_TYPES = ("np", "pt", "latent")


@dataclass
class TuneAVideoPipelineOutput(BaseOutput):
    """``videos``: (batch, 3, frames, H, W) float32 in [0, 1] (numpy or torch), or latents for ``"latent"``."""

    videos: torch.Tensor | np.ndarray


class TuneAVideoPipeline(DiffusionPipeline, StableDiffusionLoraLoaderMixin):
    """Text-driven video editing with an inflated, one-shot tuned SD-1.x UNet (Tune-A-Video).

    diffusers' ``StableDiffusionLoraLoaderMixin`` gives it ``load_lora_weights``, ``set_adapters`` and
    ``fuse_lora``: SD-1.x LoRAs (diffusers' or kohya's format) load into its UNet and text encoder.
    """

    model_cpu_offload_seq = "text_encoder->unet->vae"
    _optional_components = ["controlnet"]  # folders saved before ControlNets load with controlnet None
    _callback_tensor_inputs = ["latents", "text_embeddings"]  # what a callback_on_step_end may ask for

    def __init__(
        self,
        vae: AutoencoderKL,
        text_encoder: CLIPTextModel,
        tokenizer: CLIPTokenizer,
        unet: VideoUNet,
        scheduler: SchedulerMixin,
        controlnet: ControlNetModel | list[ControlNetModel] | MultiControlNetModel | None = None,
    ):
        super().__init__()
        if isinstance(controlnet, list | tuple):
            controlnet = MultiControlNetModel(controlnet)
        modules = {"vae": vae, "text_encoder": text_encoder, "tokenizer": tokenizer, "unet": unet}
        self.register_modules(**modules, scheduler=scheduler, controlnet=controlnet)
        self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        # Maps stay in [0, 1] (no normalisation), as in diffusers' ControlNet pipelines.
        self.control_image_processor = VaeImageProcessor(
            vae_scale_factor=self.vae_scale_factor, do_convert_rgb=True, do_normalize=False
        )
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

    # ------------------------------------------------------------------ encoders

    def encode_prompt(
        self,
        prompt: str | list[str],
        device: torch.device,
        num_videos_per_prompt: int,
        do_classifier_free_guidance: bool,
        negative_prompt: str | list[str] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Text embeddings (b, 77, D) of ``prompt`` and, with guidance, of ``negative_prompt`` ("" when None).

        diffusers' ``StableDiffusionPipeline.encode_prompt`` does the work: padded to 77 tokens,
        truncated, no attention mask (as the original Tune-A-Video), the unconditional text padded
        to the same length. The embeddings come back in the dtype the UNet computes in.
        """
        embeds, negative = StableDiffusionPipeline.encode_prompt(
            self, prompt, device, num_videos_per_prompt, do_classifier_free_guidance, negative_prompt
        )
        dtype = compute_dtype(self.unet)
        return embeds.to(dtype), None if negative is None else negative.to(dtype)

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
                f"{tuple(pixels.shape)}. Pass Clip.pixels of vidsynth.media.video.read_clip"
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

    @torch.no_grad()
    def decode_video(self, latents: torch.Tensor, chunk_size: int) -> np.ndarray:
        """Latents (1, 4, F, h, w) -> frames (F, H, W, 3) uint8, decoded ``chunk_size`` frames at a time.

        Only one chunk is ever in float, so the frames of a long clip fit in memory as uint8.
        """
        num_frames = latents.shape[2]
        frames = None
        for start in range(0, num_frames, chunk_size):
            chunk = latents[:, :, start : start + chunk_size].to(compute_dtype(self.vae))
            video = (self.decode_latents(chunk, chunk_size)[0] / 2 + 0.5).clamp(0, 1)  # (3, chunk, H, W) in [0, 1]
            decoded = to_uint8(video)  # (chunk, H, W, 3)
            if frames is None:
                frames = np.empty((num_frames, *decoded.shape[1:]), np.uint8)
            frames[start : start + len(decoded)] = decoded
        return frames

    # Copied from diffusers.pipelines.animatediff.pipeline_animatediff.AnimateDiffPipeline.decode_latents
    def decode_latents(self, latents, decode_chunk_size: int = 16):
        latents = 1 / self.vae.config.scaling_factor * latents

        batch_size, channels, num_frames, height, width = latents.shape
        latents = latents.permute(0, 2, 1, 3, 4).reshape(batch_size * num_frames, channels, height, width)

        video = []
        for i in range(0, latents.shape[0], decode_chunk_size):
            batch_latents = latents[i : i + decode_chunk_size]
            batch_latents = self.vae.decode(batch_latents).sample
            video.append(batch_latents)

        video = torch.cat(video)
        video = video[None, :].reshape((batch_size, num_frames, -1) + video.shape[2:]).permute(0, 2, 1, 3, 4)
        # we always cast to float32 as this does not cause significant overhead and is compatible with bfloat16
        video = video.float()
        return video

    # ------------------------------------------------------------------ inversion

    @torch.no_grad()
    def invert(
        self,
        video_latents: torch.Tensor,
        prompt: str = "",
        num_inference_steps: int = 50,
        return_all: bool = False,
        window: int | None = None,
        window_overlap: int = 4,
    ) -> torch.Tensor | list[torch.Tensor]:
        """DDIM-invert clip latents (b, 4, F, h, w) as Tune-A-Video does; see ``inversion.py``.

        The noise is predicted for ``prompt`` alone (no guidance). Returns the inverted latents at
        the last timestep, or with ``return_all`` every latent from the input to the inverted one.
        ``window``: clips longer than this many frames go through the UNet in overlapping windows
        (``window_overlap`` frames shared; see ``vidsynth/models/windows.py``).
        """
        self._check_latents(video_latents, "video_latents")
        self._check_steps(num_inference_steps, "num_inference_steps")
        window = self._check_window(window, window_overlap, video_latents.shape[2])
        if not isinstance(prompt, str):
            raise VidSynthError(f"the inversion prompt must be a string, got {type(prompt).__name__}. Pass e.g. ''")
        device = self._execution_device
        latents = video_latents.to(device, compute_dtype(self.unet))
        text, _ = self.encode_prompt([prompt] * latents.shape[0], device, 1, False)  # (b, 77, D)
        scheduler = inversion_scheduler(self.scheduler.config, num_inference_steps)

        def predict_noise(sample: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
            return windowed_unet(self.unet, sample, timestep, text, window, window_overlap)

        trajectory = ddim_invert(
            predict_noise, latents, scheduler, lambda steps: self._progress(steps, "DDIM inversion", "inversion")
        )
        return trajectory if return_all else trajectory[-1]

    def _progress(self, iterable, desc: str, stage: str):
        """diffusers' ``progress_bar`` labelled with its stage (``set_progress_bar_config`` still applies; a ``desc``
        there names what the stages belong to: "Validation: DDIM inversion"), and the ``stage``'s events for a
        program following the command (:mod:`vidsynth.events`)."""
        config = dict(getattr(self, "_progress_bar_config", {}))
        if "desc" in config:
            desc = f"{config.pop('desc')}: {desc}"
        return events.steps(tqdm(iterable, desc=desc, **config), stage)

    def _videos(self, latents: torch.Tensor, output_type: str) -> torch.Tensor | np.ndarray:
        """(b, 4, F, h, w) latents as (b, 3, F, H, W) float32 videos in [0, 1], a tensor or (``"np"``) an array."""
        # All frames in one call: the VAE's slicing (on by default) still decodes them one at a time.
        everything = latents.shape[0] * latents.shape[2]
        videos = self.decode_latents(latents.to(compute_dtype(self.vae)), everything)  # (b, 3, F, H, W)
        videos = (videos / 2 + 0.5).clamp(0, 1)
        return videos.cpu().numpy() if output_type == "np" else videos

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

    @staticmethod
    def _check_window(window: int | None, overlap: int, num_frames: int) -> int:
        """The window to run (``num_frames`` when None: one ordinary forward); a bad one says the fix."""
        if window is None or window >= num_frames:
            if window is not None and window < 1:
                raise VidSynthError(f"window must be a positive number of frames, got {window}. Use e.g. 24")
            return num_frames
        check_windows(num_frames, window, overlap)
        return window

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
        num_frames: int,
        height: int,
        width: int,
        num_inference_steps: int,
        guidance_scale: float,
        negative_prompt: str | list[str] | None,
        eta: float,
        latents: torch.Tensor | None,
        generator: torch.Generator | list[torch.Generator] | None,
        output_type: str,
        conditioning_frames: torch.Tensor | list | None = None,
        controlnet_conditioning_scale: float | list[float] = 1.0,
        control_guidance_start: list[float] = (0.0,),
        control_guidance_end: list[float] = (1.0,),
    ) -> None:
        """Validate the arguments of :meth:`__call__`; every error says how to fix it."""
        prompts = [prompt] if isinstance(prompt, str) else prompt
        if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
            raise VidSynthError(f"prompt must be a string or a non-empty list of strings, got {prompt!r}. Pass a text")
        if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1:
            raise VidSynthError(f"num_frames must be a positive integer, got {num_frames!r}. Pass the frame count")
        self._check_size(height, width)
        self._check_steps(num_inference_steps, "num_inference_steps")
        if not isinstance(guidance_scale, int | float) or not math.isfinite(guidance_scale) or guidance_scale < 0:
            raise VidSynthError(
                f"guidance_scale must be a number >= 0, got {guidance_scale!r}. Use e.g. 12.5 (1 or less: no guidance)"
            )
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
            expected = (num_frames, height // self.vae_scale_factor, width // self.vae_scale_factor)
            if tuple(latents.shape[2:]) != expected or latents.shape[0] not in (1, len(prompts)):
                raise VidSynthError(
                    f"latents of shape {tuple(latents.shape)} do not fit {len(prompts)} prompt(s), {num_frames} "
                    f"frames at {width}x{height} (expected (1 or {len(prompts)}, {latents.shape[1]}, {expected[0]}, "
                    f"{expected[1]}, {expected[2]})). Pass num_frames, height and width of the clip they come from"
                )
        if isinstance(generator, list) and len(generator) != len(prompts):
            raise VidSynthError(f"{len(generator)} generators for {len(prompts)} prompts. Pass one, or one per prompt")
        if output_type not in OUTPUT_TYPES:
            raise VidSynthError(f"output_type must be one of {', '.join(OUTPUT_TYPES)}, got {output_type!r}")
        self.check_control_inputs(
            num_frames, conditioning_frames, controlnet_conditioning_scale, control_guidance_start, control_guidance_end
        )

    def _controlnet(self) -> ControlNetModel | MultiControlNetModel | None:
        controlnet = getattr(self, "controlnet", None)
        return controlnet._orig_mod if is_compiled_module(controlnet) else controlnet

    def check_control_inputs(
        self,
        num_frames: int,
        conditioning_frames: torch.Tensor | list | None,
        controlnet_conditioning_scale: float | list[float],
        control_guidance_start: list[float],
        control_guidance_end: list[float],
    ) -> None:
        """The ControlNet arguments (guidance start/end already lists, as diffusers aligns them); errors say the fix."""
        controlnet = self._controlnet()
        if controlnet is None:
            if conditioning_frames is not None:
                raise VidSynthError(
                    "conditioning_frames were given, but the pipeline has no controlnet. Build it with "
                    "controlnet=ControlNetModel.from_pretrained(...), or leave conditioning_frames out"
                )
            return
        multi = isinstance(controlnet, MultiControlNetModel)
        nets = list(controlnet.nets) if multi else [controlnet]
        width = self.unet.config.cross_attention_dim
        for i, net in enumerate(nets, start=1):
            if net.config.cross_attention_dim != width:
                raise VidSynthError(
                    f"ControlNet {i} ({net.config._name_or_path}) has cross-attention width "
                    f"{net.config.cross_attention_dim}, the UNet {width}: it belongs to another base model. "
                    "Use a ControlNet made for this base (SD-1.x: width 768, e.g. lllyasviel/control_v11p_sd15_canny)"
                )
        if conditioning_frames is None:
            raise VidSynthError(
                "the pipeline has a controlnet, but no conditioning_frames were given. Pass one map per frame "
                "((frames, 3, H, W) in [0, 1], or a list of PIL images), or set pipe.controlnet = None"
            )
        if multi and (not isinstance(conditioning_frames, list) or len(conditioning_frames) != len(nets)):
            given = len(conditioning_frames) if isinstance(conditioning_frames, list) else type(conditioning_frames)
            raise VidSynthError(
                f"with {len(nets)} ControlNets, conditioning_frames must be a list of {len(nets)} map videos (one per "
                f"ControlNet, in order), got {given!r}"
            )
        for i, maps in enumerate(conditioning_frames if multi else [conditioning_frames], start=1):
            _check_maps(maps, num_frames, f"conditioning_frames[{i - 1}]" if multi else "conditioning_frames")
        scales = controlnet_conditioning_scale
        if multi and isinstance(scales, list):
            valid = len(scales) == len(nets) and all(_is_number(scale) for scale in scales)
        else:
            valid = _is_number(scales)
        if not valid:
            raise VidSynthError(
                f"controlnet_conditioning_scale must be a number{' or a list of one per ControlNet' if multi else ''}, "
                f"got {controlnet_conditioning_scale!r}. Use e.g. 1.0"
            )
        if len(control_guidance_start) != len(control_guidance_end) or len(control_guidance_start) != len(nets):
            raise VidSynthError(
                f"control_guidance_start and control_guidance_end must be one number, or a list of one per ControlNet "
                f"({len(nets)}); got {control_guidance_start} and {control_guidance_end}"
            )
        for start, end in zip(control_guidance_start, control_guidance_end, strict=True):
            if not (_is_number(start) and _is_number(end) and 0.0 <= start < end <= 1.0):
                raise VidSynthError(
                    f"control guidance must satisfy 0 <= start < end <= 1 (fractions of the sampling steps), got "
                    f"start {start!r} and end {end!r}. Use e.g. start 0.0 and end 1.0"
                )

    # ------------------------------------------------------------------ sampling

    # Copied from diffusers.pipelines.controlnet.pipeline_controlnet.StableDiffusionControlNetPipeline.prepare_image
    def prepare_image(
        self,
        image,
        width,
        height,
        batch_size,
        num_images_per_prompt,
        device,
        dtype,
        do_classifier_free_guidance=False,
        guess_mode=False,
    ):
        image = self.control_image_processor.preprocess(image, height=height, width=width).to(dtype=torch.float32)
        image_batch_size = image.shape[0]

        if image_batch_size == 1:
            repeat_by = batch_size
        else:
            # image batch size is the same as prompt batch size
            repeat_by = num_images_per_prompt

        image = image.repeat_interleave(repeat_by, dim=0)

        image = image.to(device=device, dtype=dtype)

        if do_classifier_free_guidance and not guess_mode:
            image = torch.cat([image] * 2)

        return image

    def prepare_conditioning_frames(
        self, maps: torch.Tensor | list, width: int, height: int, device: torch.device, dtype: torch.dtype
    ) -> torch.Tensor:
        """One map per frame, (F, 3, H, W) in [0, 1] or F PIL images -> (1, 3, F, height, width) in ``dtype``.

        Resized to the frame size as diffusers' ControlNet pipelines do. One clip's maps serve every
        prompt and both halves of guidance: the video UNet expands them to the batch as it folds them.
        """
        frames = self.prepare_image(maps, width, height, 1, 1, device, dtype)  # (F, 3, H, W)
        return frames.permute(1, 0, 2, 3).unsqueeze(0)  # (1, 3, F, H, W)

    def prepare_latents(
        self,
        batch_size: int,
        num_frames: int,
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
                num_frames,
                height // self.vae_scale_factor,
                width // self.vae_scale_factor,
            )
            latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
        else:
            latents = latents.to(device, dtype).expand(batch_size, -1, -1, -1, -1)
        return latents * self.scheduler.init_noise_sigma

    # Copied from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion.StableDiffusionPipeline.prepare_extra_step_kwargs  # noqa: E501
    def prepare_extra_step_kwargs(self, generator, eta):
        # prepare extra kwargs for the scheduler step, since not all schedulers have the same signature
        # eta (η) is only used with the DDIMScheduler, it will be ignored for other schedulers.
        # eta corresponds to η in DDIM paper: https://huggingface.co/papers/2010.02502
        # and should be between [0, 1]

        accepts_eta = "eta" in set(inspect.signature(self.scheduler.step).parameters.keys())
        extra_step_kwargs = {}
        if accepts_eta:
            extra_step_kwargs["eta"] = eta

        # check if the scheduler accepts generator
        accepts_generator = "generator" in set(inspect.signature(self.scheduler.step).parameters.keys())
        if accepts_generator:
            extra_step_kwargs["generator"] = generator
        return extra_step_kwargs

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str],
        num_frames: int,
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
        window: int | None = None,
        window_overlap: int = 4,
        conditioning_frames: torch.Tensor | list[PIL.Image.Image] | list | None = None,
        controlnet_conditioning_scale: float | list[float] = 1.0,
        control_guidance_start: float | list[float] = 0.0,
        control_guidance_end: float | list[float] = 1.0,
        callback_on_step_end=None,
        callback_on_step_end_tensor_inputs: list[str] = ("latents",),
    ) -> TuneAVideoPipelineOutput | tuple:
        """Sample videos for ``prompt``: (batch, 3, num_frames, height, width) in [0, 1].

        ``latents`` (1 or batch, 4, F, h, w), e.g. from :meth:`invert`, start the sampling as they are
        (× the scheduler's ``init_noise_sigma``); one is shared by all prompts. Without them the
        start is noise from ``generator``. ``output_type``: "np", "pt" or "latent". ``window``: clips
        longer than this many frames go through the UNet in overlapping windows (``window_overlap``
        frames shared), so its memory does not grow with the clip; see ``vidsynth/models/windows.py``.

        With a ``controlnet``, as diffusers' ``StableDiffusionControlNetPipeline``: ``conditioning_frames``
        are its maps, one per frame ((F, 3, H, W) in [0, 1] or F PIL images; for several ControlNets a
        list of those, in order); ``controlnet_conditioning_scale`` weighs its residuals (one number, or
        one per ControlNet); it acts from ``control_guidance_start`` to ``control_guidance_end``, as
        fractions of the sampling steps.

        ``callback_on_step_end(pipe, i, t, tensors)``: called after step ``i`` (timestep ``t``) with the
        tensors named in ``callback_on_step_end_tensor_inputs`` (``latents`` (b, 4, F, h, w) after the
        step, ``text_embeddings``); the ``latents`` it returns replace the step's, as in diffusers.
        """
        if isinstance(callback_on_step_end, PipelineCallback | MultiPipelineCallbacks):
            callback_on_step_end_tensor_inputs = callback_on_step_end.tensor_inputs
        if unknown := [k for k in callback_on_step_end_tensor_inputs if k not in self._callback_tensor_inputs]:
            raise VidSynthError(
                f"callback_on_step_end_tensor_inputs {unknown} are not tensors of this pipeline. Pick from "
                f"{self._callback_tensor_inputs}"
            )
        controlnet = self._controlnet()
        control_guidance_start, control_guidance_end = _align_control_guidance(
            controlnet, control_guidance_start, control_guidance_end
        )

        # 1. Check inputs
        self.check_inputs(
            prompt,
            num_frames,
            height,
            width,
            num_inference_steps,
            guidance_scale,
            negative_prompt,
            eta,
            latents,
            generator,
            output_type,
            conditioning_frames,
            controlnet_conditioning_scale,
            control_guidance_start,
            control_guidance_end,
        )

        window = self._check_window(window, window_overlap, num_frames)

        # 2. Define call parameters
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        batch_size = len(prompts)
        device = self._execution_device
        do_guidance = guidance_scale > 1.0

        # 3. Encode the prompts: [uncond, cond] with guidance, the prompts alone without
        negative = [negative_prompt] * batch_size if isinstance(negative_prompt, str) else negative_prompt
        text_embeddings, negative_embeddings = self.encode_prompt(prompts, device, 1, do_guidance, negative)
        if do_guidance:
            text_embeddings = torch.cat([negative_embeddings, text_embeddings])  # (2b, 77, D)

        # 4. Prepare timesteps
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        timesteps = self.scheduler.timesteps

        # 5. Prepare latent variables
        latents = self.prepare_latents(
            batch_size, num_frames, height, width, compute_dtype(self.unet), device, generator, latents
        )  # (b, 4, F, h, w)

        # 6. Prepare extra step kwargs
        step_kwargs = self.prepare_extra_step_kwargs(generator, eta)

        # 7. Prepare the ControlNet maps, (1, 3, F, H, W) each, and which steps each ControlNet acts in
        if controlnet is not None:
            multi = isinstance(controlnet, MultiControlNetModel)
            maps = tuple(
                self.prepare_conditioning_frames(m, width, height, device, compute_dtype(controlnet))
                for m in (conditioning_frames if multi else [conditioning_frames])
            )
            scales = controlnet_conditioning_scale
            scales = scales if isinstance(scales, list) else [scales] * len(maps)
            controlnet_keep = _controlnet_keep(len(timesteps), control_guidance_start, control_guidance_end)

        # 8. Denoising loop
        progress = self._progress(timesteps, "Sampling", "sampling")
        for i, t in enumerate(progress):
            model_input = torch.cat([latents] * 2) if do_guidance else latents
            model_input = self.scheduler.scale_model_input(model_input, t)
            control = None
            if controlnet is not None and any(controlnet_keep[i]):  # outside every ControlNet's steps: skip it
                step_scales = tuple(float(c * k) for c, k in zip(scales, controlnet_keep[i], strict=True))
                control = VideoControl(controlnet, maps, step_scales)
            noise_pred = windowed_unet(self.unet, model_input, t, text_embeddings, window, window_overlap, control)
            if do_guidance:
                noise_uncond, noise_text = noise_pred.chunk(2)
                noise_pred = noise_uncond + guidance_scale * (noise_text - noise_uncond)
            latents = self.scheduler.step(noise_pred, t, latents, **step_kwargs).prev_sample
            if callback_on_step_end is not None:
                tensors = {"latents": latents, "text_embeddings": text_embeddings}
                asked = {k: tensors[k] for k in callback_on_step_end_tensor_inputs}
                returned = callback_on_step_end(self, i, t, asked)
                latents = returned.pop("latents", latents)
                text_embeddings = returned.pop("text_embeddings", text_embeddings)

        # 9. Post-processing
        videos = latents if output_type == "latent" else self._videos(latents, output_type)

        # 10. Offload all models
        self.maybe_free_model_hooks()
        return TuneAVideoPipelineOutput(videos=videos) if return_dict else (videos,)


def _align_control_guidance(controlnet, start, end) -> tuple[list[float], list[float]]:
    """``control_guidance_start`` and ``_end`` as one value per ControlNet each (as diffusers' ControlNet pipelines)."""
    if not isinstance(start, list) and isinstance(end, list):
        start = len(end) * [start]
    elif not isinstance(end, list) and isinstance(start, list):
        end = len(start) * [end]
    elif not isinstance(start, list) and not isinstance(end, list):
        mult = len(controlnet.nets) if isinstance(controlnet, MultiControlNetModel) else 1
        start, end = mult * [start], mult * [end]
    return start, end


def _controlnet_keep(num_steps: int, starts: list[float], ends: list[float]) -> list[list[float]]:
    """Per sampling step, per ControlNet: 1.0 inside its [start, end] fraction of the steps, else 0.0."""
    return [
        [1.0 - float(i / num_steps < s or (i + 1) / num_steps > e) for s, e in zip(starts, ends, strict=True)]
        for i in range(num_steps)
    ]


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_maps(maps: torch.Tensor | list, num_frames: int, name: str) -> None:
    """One ControlNet's maps: a (F, 3, H, W) tensor in [0, 1] or a list of F PIL images, one per frame."""
    if isinstance(maps, torch.Tensor) and maps.ndim == 4 and maps.shape[1] == 3:
        count = maps.shape[0]
        low, high = maps.min().item(), maps.max().item()
        if low < 0 or high > 1:
            raise VidSynthError(f"{name} must be in [0, 1], got {low:g} to {high:g}. Divide uint8 maps by 255")
    elif isinstance(maps, list) and maps and all(isinstance(m, PIL.Image.Image) for m in maps):
        count = len(maps)
    else:
        shape = tuple(maps.shape) if isinstance(maps, torch.Tensor) else type(maps).__name__
        raise VidSynthError(
            f"{name} must be a tensor (frames, 3, H, W) in [0, 1] or a list of PIL images, one per frame; got {shape}"
        )
    if count != num_frames:
        raise VidSynthError(f"{name} has {count} maps for {num_frames} frames. Pass one map per frame")
