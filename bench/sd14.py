"""Full-size SD-1.4 architectures with random weights, built in memory (no download).

The configs are those of ``CompVis/stable-diffusion-v1-4`` (unet/, vae/, text_encoder/), so the
benchmarks measure the real model's compute and memory.
"""

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

from vidsynth import VideoUNet

SD14_UNET = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "layers_per_block": 2,
    "block_out_channels": (320, 640, 1280, 1280),
    "down_block_types": ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    "attention_head_dim": 8,
    "cross_attention_dim": 768,
    "norm_num_groups": 32,
}
SD14_VAE = {
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 4,
    "block_out_channels": (128, 256, 512, 512),
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "sample_size": 512,
}
SD14_TEXT = {
    "vocab_size": 49408,
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
}


def unet_2d(seed: int = 0) -> UNet2DConditionModel:
    torch.manual_seed(seed)
    return UNet2DConditionModel(**SD14_UNET)


def video_unet(seed: int = 0, **inflation) -> VideoUNet:
    torch.manual_seed(seed)
    return VideoUNet(**inflation, **SD14_UNET)


def pipeline(seed: int = 0):
    """The editing pipeline with every SD-1.4 component at full size (random weights)."""
    from diffusers import DDIMScheduler

    from vidsynth.pipelines import TuneAVideoPipeline
    from vidsynth.testing.tiny_sd import SD14_SCHEDULER
    from vidsynth.testing.tokenizer import build_clip_tokenizer

    return TuneAVideoPipeline(
        vae=vae(seed),
        text_encoder=text_encoder(seed),
        tokenizer=build_clip_tokenizer(),
        unet=video_unet(seed),
        scheduler=DDIMScheduler(**SD14_SCHEDULER),
    )


def vae(seed: int = 0) -> AutoencoderKL:
    torch.manual_seed(seed)
    return AutoencoderKL(**SD14_VAE)


def text_encoder(seed: int = 0) -> CLIPTextModel:
    torch.manual_seed(seed)
    return CLIPTextModel(CLIPTextConfig(**SD14_TEXT))
