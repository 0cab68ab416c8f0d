"""A tiny random Stable Video Diffusion checkpoint in the real diffusers layout.

Like :mod:`vidsynth.testing.tiny_sd`, this writes a complete image-to-video folder from a seed
(``model_index.json``, ``unet/``, ``vae/``, ``image_encoder/``, ``feature_extractor/``,
``scheduler/``, safetensors) that ``StableVideoDiffusionPipeline.from_pretrained`` loads: SVD's
block types at toy width. Its CLIP image encoder takes 224x224 images, because the pipeline resizes
every input to 224 for it. The UNet's ``sample_size`` of 6 latents (48 px, the side of a square of
the native area) makes the native frame 64x36; ``num_frames`` 4 is its default clip length.
"""

from pathlib import Path

import torch
from diffusers import (
    AutoencoderKLTemporalDecoder,
    EulerDiscreteScheduler,
    StableVideoDiffusionPipeline,
    UNetSpatioTemporalConditionModel,
)
from transformers import CLIPImageProcessorPil, CLIPVisionConfig, CLIPVisionModelWithProjection

# SVD-XT's scheduler settings (its scheduler/scheduler_config.json): Euler with Karras sigmas, v-prediction.
SVD_SCHEDULER = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "interpolation_type": "linear",
    "prediction_type": "v_prediction",
    "sigma_max": 700.0,
    "sigma_min": 0.002,
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "timestep_type": "continuous",
    "use_karras_sigmas": True,
}
TINY_FRAMES = 4
_EMBED = 32  # the image encoder's projection = the UNet's cross-attention width


def tiny_svd_unet(seed: int = 0) -> UNetSpatioTemporalConditionModel:
    """SVD's spatio-temporal blocks at two levels; added time ids (fps, motion, noise) embedded in 3 x 8."""
    torch.manual_seed(seed)
    return UNetSpatioTemporalConditionModel(
        sample_size=6,
        in_channels=8,  # the noisy latents and the still's latents, stacked
        out_channels=4,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
        block_out_channels=(32, 64),
        addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=24,
        layers_per_block=1,
        cross_attention_dim=_EMBED,
        num_attention_heads=(2, 4),
        num_frames=TINY_FRAMES,
    )


def tiny_svd_vae(seed: int = 0) -> AutoencoderKLTemporalDecoder:
    """Four levels, so it downsamples by 8 like SVD's; 32 channels, as its fixed 32 norm groups need."""
    torch.manual_seed(seed)
    return AutoencoderKLTemporalDecoder(
        down_block_types=("DownEncoderBlock2D",) * 4,
        block_out_channels=(32, 32, 32, 32),
        layers_per_block=1,
        latent_channels=4,
        sample_size=64,
    )


def tiny_image_encoder(seed: int = 0) -> CLIPVisionModelWithProjection:
    """A CLIP ViT that takes 224x224 images (what the pipeline feeds it) in 32-pixel patches."""
    torch.manual_seed(seed)
    return CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            image_size=224,
            patch_size=32,
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            projection_dim=_EMBED,
        )
    )


def build_tiny_svd(path: str | Path, seed: int = 0) -> Path:
    """Write the tiny SVD checkpoint to ``path`` (deterministic for a seed) and return it."""
    path = Path(path)
    pipe = StableVideoDiffusionPipeline(
        vae=tiny_svd_vae(seed),
        image_encoder=tiny_image_encoder(seed),
        unet=tiny_svd_unet(seed),
        scheduler=EulerDiscreteScheduler(**SVD_SCHEDULER),
        feature_extractor=CLIPImageProcessorPil(crop_size=224, size={"shortest_edge": 224}),
    )
    pipe.save_pretrained(path, safe_serialization=True)
    return path
