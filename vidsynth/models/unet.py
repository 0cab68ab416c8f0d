"""The video UNet: a stock SD-1.x ``UNet2DConditionModel`` inflated for clips (Tune-A-Video).

Inflation is a handful of in-place changes to the stock model, nothing copied from diffusers:

1. convolutions, up/down sampling and the time embedding stay 2-D and run per frame;
2. every ``attn1`` becomes sparse-causal (frame i attends to frames 0 and i-1), ``attn2`` stays
   per-frame cross-attention (attention processors set by layer name);
3. every transformer block gains temporal attention after its feed-forward (``attn_temp``,
   ``norm_temp``), starting as the identity;
4. the GroupNorms of the ResNet blocks and ``conv_norm_out`` normalise over the whole clip
   (``frame_norm="joint"``, as the original) or per frame (``"per_frame"``).

Frames are folded into the batch in exactly one place, :meth:`VideoUNet.forward`, which passes
``num_frames`` to the attention layers through ``cross_attention_kwargs`` and sets it on the norms;
a ControlNet's maps are folded there too, and its residuals join the down and mid blocks per frame.
Every pretrained key is unchanged, so weights of SD-1.x models and of the original Tune-A-Video
load as they are.
"""

import inspect
import json
import logging
from pathlib import Path

import torch
from accelerate import init_empty_weights
from diffusers import UNet2DConditionModel
from diffusers.models.attention import BasicTransformerBlock
from diffusers.models.resnet import ResnetBlock2D
from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput
from einops import rearrange
from safetensors.torch import load_file

from vidsynth.errors import VidSynthError
from vidsynth.models.attention import video_attn_processors
from vidsynth.models.control import VideoControl
from vidsynth.models.norm import FrameGroupNorm
from vidsynth.models.transformer import VideoTransformerBlock

logger = logging.getLogger(__name__)

FRAME_NORMS = ("joint", "per_frame")
TEMPORAL_OUT_BIAS_INITS = ("zero", "pytorch")
TEMPORAL_KEY_SUFFIXES = (
    "attn_temp.to_q.weight",
    "attn_temp.to_k.weight",
    "attn_temp.to_v.weight",
    "attn_temp.to_out.0.weight",
    "attn_temp.to_out.0.bias",
    "norm_temp.weight",
    "norm_temp.bias",
)


class VideoUNet(UNet2DConditionModel):
    """SD-1.x UNet inflated for video; inputs and outputs are ``(batch, channels, frames, h, w)``.

    Its config is the 2-D UNet's plus the inflation options, so ``from_pretrained`` on a saved
    video UNet inflates *before* the weights load and the temporal weights load strictly.
    """

    def __init__(self, frame_norm: str = "joint", temporal_out_bias_init: str = "zero", **unet_config):
        _check_options(frame_norm, temporal_out_bias_init)
        super().__init__(**unet_config)
        self._inflate(frame_norm, temporal_out_bias_init)

    @classmethod
    def inflate(
        cls, unet_2d: UNet2DConditionModel, frame_norm: str = "joint", temporal_out_bias_init: str = "zero"
    ) -> "VideoUNet":
        """Turn a loaded 2-D UNet into a video UNet in place: its weights are kept, not copied.

        Building a second model and copying the weights into it would hold both at once (about
        7 GB for SD-1.4 in float32); in place, loading peaks at the model's own size.
        """
        _check_options(frame_norm, temporal_out_bias_init)
        unet_2d.__class__ = cls
        unet_2d._inflate(frame_norm, temporal_out_bias_init)
        return unet_2d

    @staticmethod
    def _get_init_keys(input_class: type) -> set[str]:
        # The constructor forwards the 2-D UNet's arguments; tell diffusers' config loader about them.
        keys = set(inspect.signature(input_class.__init__).parameters)
        if issubclass(input_class, VideoUNet):
            keys |= set(inspect.signature(UNet2DConditionModel.__init__).parameters)
        return keys

    def _inflate(self, frame_norm: str, temporal_out_bias_init: str) -> None:
        self.register_to_config(frame_norm=frame_norm, temporal_out_bias_init=temporal_out_bias_init)
        joint, zero_out_bias = frame_norm == "joint", temporal_out_bias_init == "zero"
        for module in list(self.modules()):
            if isinstance(module, BasicTransformerBlock):
                VideoTransformerBlock.inflate(module, zero_out_bias=zero_out_bias)
            elif isinstance(module, ResnetBlock2D):
                FrameGroupNorm.convert(module.norm1, joint)
                FrameGroupNorm.convert(module.norm2, joint)
        if self.conv_norm_out is not None:
            FrameGroupNorm.convert(self.conv_norm_out, joint)
        self.set_attn_processor(video_attn_processors(list(self.attn_processors)))

    def temporal_keys(self) -> set[str]:
        """State-dict keys added by inflation (exactly 7 per transformer block)."""
        return {key for key in self.state_dict() if key.endswith(TEMPORAL_KEY_SUFFIXES)}

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float | int,
        encoder_hidden_states: torch.Tensor,
        cross_attention_kwargs: dict | None = None,
        return_dict: bool = True,
        control: VideoControl | None = None,
        class_labels: torch.Tensor | None = None,
    ) -> UNet2DConditionOutput | tuple[torch.Tensor]:
        """Predict noise for clips.

        sample: (b, c, f, h, w); timestep: scalar or (b,), one per clip shared by its frames;
        encoder_hidden_states: (b, tokens, dim), the same text for every frame. ``control``: ControlNet(s)
        and their maps (1 or b, 3, f, H, W); each frame's residuals are added to its down and mid blocks.
        ``class_labels``: one label per frame, (b, f) class ids or (b, f, D) vectors, for a model with a class
        embedding: folded with the frames, each frame's label joins its own time embedding.
        """
        if sample.ndim != 5:
            raise ValueError(f"VideoUNet expects (batch, channels, frames, height, width), got {tuple(sample.shape)}")
        batch, _, num_frames = sample.shape[:3]
        timestep = torch.as_tensor(timestep, device=sample.device)
        if timestep.ndim == 0:
            timestep = timestep.expand(batch)
        frames = rearrange(sample, "b c f h w -> (b f) c h w")
        timestep = timestep.repeat_interleave(num_frames)  # (b f,)
        encoder_hidden_states = encoder_hidden_states.repeat_interleave(num_frames, dim=0)  # (b f, L, D)
        if class_labels is not None:
            class_labels = class_labels.flatten(0, 1)  # (b f,) or (b f, D)
        residuals = {}
        if control is not None:
            images = [rearrange(m.expand(batch, -1, -1, -1, -1), "b c f h w -> (b f) c h w") for m in control.frames]
            residuals = control.residuals(frames, timestep, encoder_hidden_states, images)
        for module in self.modules():
            if isinstance(module, FrameGroupNorm):
                module.num_frames = num_frames
        out = (
            super()
            .forward(
                frames,
                timestep,
                encoder_hidden_states,
                cross_attention_kwargs={**(cross_attention_kwargs or {}), "num_frames": num_frames},
                class_labels=class_labels,
                **residuals,
            )
            .sample
        )
        out = rearrange(out, "(b f) c h w -> b c f h w", f=num_frames)
        return UNet2DConditionOutput(sample=out) if return_dict else (out,)

    @classmethod
    def from_pretrained_2d(
        cls,
        pretrained_model_name_or_path: str | Path,
        subfolder: str | None = "unet",
        frame_norm: str = "joint",
        temporal_out_bias_init: str = "zero",
        variant: str | None = None,
        torch_dtype: torch.dtype | None = None,
    ) -> "VideoUNet":
        """Inflate the 2-D UNet of an SD-1.x model (local folder or hub id, safetensors or .bin).

        Loading goes through diffusers (``.bin`` files are read with ``weights_only=True``), which
        checks the weights against the 2-D config; the loaded model is then inflated in place.
        """
        source = str(pretrained_model_name_or_path)
        unet_2d = UNet2DConditionModel.from_pretrained(source, subfolder=subfolder, variant=variant)
        model = cls.inflate(unet_2d, frame_norm=frame_norm, temporal_out_bias_init=temporal_out_bias_init)
        model.config["_name_or_path"] = source
        return model.to(torch_dtype) if torch_dtype is not None else model

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, **kwargs) -> "VideoUNet":
        """Load a saved video UNet: inflate from its config, then load every key strictly."""
        wants_info = kwargs.pop("output_loading_info", False)
        model, info = super().from_pretrained(pretrained_model_name_or_path, output_loading_info=True, **kwargs)
        problems = {k: v for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
        if problems:
            raise VidSynthError(
                f"{pretrained_model_name_or_path} is not a complete video UNet ({_describe(problems)}). "
                "For a plain SD-1.x UNet use VideoUNet.from_pretrained_2d."
            )
        return (model, info) if wants_info else model

    @classmethod
    def from_tuneavideo(cls, unet_folder: str | Path, frame_norm: str = "joint") -> "VideoUNet":
        """Load the ``unet/`` folder of a pipeline saved by the original Tune-A-Video code.

        Its config names 3-D blocks (``CrossAttnDownBlock3D``...) and its weights carry the
        temporal keys under the same names as ours, so they load strictly.
        """
        folder = Path(unet_folder)
        config = json.loads((folder / "config.json").read_text())
        for key in ("down_block_types", "up_block_types"):
            config[key] = [name.replace("3D", "2D") for name in config[key]]
        config["mid_block_type"] = config.get("mid_block_type", "UNetMidBlock2DCrossAttn").replace("3D", "2D")
        config["_class_name"] = "UNet2DConditionModel"
        with init_empty_weights():  # no random weights to hold next to the loaded ones
            model = cls.from_config(config, frame_norm=frame_norm, temporal_out_bias_init="pytorch")
        weights = folder / "diffusion_pytorch_model.safetensors"
        if weights.exists():
            state_dict = load_file(weights)
        else:
            state_dict = torch.load(folder / "diffusion_pytorch_model.bin", map_location="cpu", weights_only=True)
        _load_exactly(model, state_dict, source=str(folder))
        return model


def _describe(problems: dict[str, list]) -> str:
    parts = [f"{len(v)} {kind.replace('_', ' ')}, e.g. {sorted(map(str, v))[:3]}" for kind, v in problems.items()]
    return "; ".join(parts)


def _check_options(frame_norm: str, temporal_out_bias_init: str) -> None:
    if frame_norm not in FRAME_NORMS:
        raise VidSynthError(f"frame_norm must be one of {FRAME_NORMS}, got {frame_norm!r}")
    if temporal_out_bias_init not in TEMPORAL_OUT_BIAS_INITS:
        raise VidSynthError(
            f"temporal_out_bias_init must be one of {TEMPORAL_OUT_BIAS_INITS}, got {temporal_out_bias_init!r}"
        )


def _load_exactly(model: torch.nn.Module, state_dict: dict, source: str) -> None:
    """Put ``state_dict``'s tensors into ``model`` (built on the meta device); fail unless the keys match exactly."""
    result = model.load_state_dict(state_dict, strict=False, assign=True)
    problems = {kind: keys for kind, keys in result._asdict().items() if keys}
    if problems:
        raise VidSynthError(f"weights in {source} do not fit an SD-1.x video UNet ({_describe(problems)})")
