"""The full-size SVD-XT architecture with random weights, built in memory (no download).

The configs are those of ``stabilityai/stable-video-diffusion-img2vid-xt`` (unet/, vae/,
image_encoder/ (OpenCLIP ViT-H/14's vision tower), feature_extractor/, scheduler/), so the benchmarks
measure the real model's compute and memory: a 1.5 B-parameter UNet, a 0.6 B-parameter image encoder
and a 0.1 B-parameter VAE.
"""

import torch
from diffusers import (
    AutoencoderKLTemporalDecoder,
    EulerDiscreteScheduler,
    StableVideoDiffusionPipeline,
    UNetSpatioTemporalConditionModel,
)
from transformers import CLIPImageProcessorPil, CLIPVisionConfig, CLIPVisionModelWithProjection

from vidsynth.testing.tiny_svd import SVD_SCHEDULER

SVD_XT_UNET = {
    "sample_size": 96,  # 768 px: the side of a square with the area of its 1024x576 frames
    "in_channels": 8,  # the noisy latents and the still's latents, stacked
    "out_channels": 4,
    "down_block_types": ("CrossAttnDownBlockSpatioTemporal",) * 3 + ("DownBlockSpatioTemporal",),
    "up_block_types": ("UpBlockSpatioTemporal",) + ("CrossAttnUpBlockSpatioTemporal",) * 3,
    "block_out_channels": (320, 640, 1280, 1280),
    "addition_time_embed_dim": 256,  # fps, motion bucket and noise strength, each embedded in 256
    "projection_class_embeddings_input_dim": 768,
    "layers_per_block": 2,
    "cross_attention_dim": 1024,  # the image encoder's projection
    "transformer_layers_per_block": 1,
    "num_attention_heads": (5, 10, 20, 20),
    "num_frames": 25,
}
SVD_VAE = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "block_out_channels": (128, 256, 512, 512),
    "layers_per_block": 2,
    "latent_channels": 4,
    "sample_size": 768,
    "scaling_factor": 0.18215,
    "force_upcast": True,
}
VIT_H_14 = {
    "hidden_size": 1280,
    "intermediate_size": 5120,
    "num_hidden_layers": 32,
    "num_attention_heads": 16,
    "patch_size": 14,
    "image_size": 224,
    "projection_dim": 1024,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-5,
}


def pipeline(seed: int = 0) -> StableVideoDiffusionPipeline:
    """Every SVD-XT component at full size, random weights (in the default dtype)."""
    torch.manual_seed(seed)
    return StableVideoDiffusionPipeline(
        vae=AutoencoderKLTemporalDecoder(**SVD_VAE),
        image_encoder=CLIPVisionModelWithProjection(CLIPVisionConfig(**VIT_H_14)),
        unet=UNetSpatioTemporalConditionModel(**SVD_XT_UNET),
        scheduler=EulerDiscreteScheduler(**SVD_SCHEDULER),
        feature_extractor=CLIPImageProcessorPil(crop_size=224, size={"shortest_edge": 224}),
    )
