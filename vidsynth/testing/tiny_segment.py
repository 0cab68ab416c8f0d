"""Tiny random segmentation models laid out like ``CIDAS/clipseg-rd64-refined`` and ``facebook/sam2.1-hiera-tiny``.

The segmentation path loads CLIPSeg with ``CLIPSegForImageSegmentation.from_pretrained``, its image processor
with ``AutoImageProcessor.from_pretrained(..., backend="pil")`` and its tokenizer with
``AutoTokenizer.from_pretrained``, and SAM 2 with ``Sam2VideoModel.from_pretrained`` (its inputs are
prepared by hand: SAM 2's processors need torchvision). These folders have the files those calls read, at
toy width, so the very code that runs the real models is what the tests exercise; the masks mean nothing.

SAM 2's sizes are tied together the way the real model's are: the Hiera backbone's four stages (stride 4,
then 2 each) give feature maps of 1/4, 1/8 and 1/16 of the image for the FPN, the prompt encoder and the
memory attention's rotary embedding work on the 1/16 grid, and the memory channels (64, fixed in
transformers) divide the hidden size.
"""

import json
from pathlib import Path

import torch
from transformers import CLIPSegConfig, CLIPSegForImageSegmentation, Sam2VideoConfig, Sam2VideoModel

from vidsynth.hub import RANDOM_WEIGHTS_FILE
from vidsynth.testing.tokenizer import build_clip_tokenizer

CLIPSEG_IMAGE_SIZE = 32  # the real model's is 352
SAM2_IMAGE_SIZE = 64  # the real model's is 1024
SAM2_HIDDEN = 128  # the real model's is 256; transformers needs a multiple of the 64 memory channels, above 64
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def build_tiny_clipseg(path: str | Path, seed: int = 0) -> Path:
    """Write a tiny random CLIPSeg + tokenizer + ViT image processor config into ``path``; the global RNG is kept."""
    path = Path(path)
    tokenizer = build_clip_tokenizer()
    special_ids = {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    width = {"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 4}
    config = CLIPSegConfig(
        text_config={"vocab_size": len(tokenizer), "num_hidden_layers": 2, "max_position_embeddings": 77, **width}
        | special_ids,
        vision_config={"num_hidden_layers": 3, "image_size": CLIPSEG_IMAGE_SIZE, "patch_size": 8, **width},
        projection_dim=16,
        extract_layers=[1, 2],  # the real model taps 3 of its 12 layers
        reduce_dim=16,
        decoder_num_attention_heads=2,
        decoder_intermediate_size=32,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIPSegForImageSegmentation(config).eval()
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    processor = {  # the real checkpoint's preprocessor_config.json, at the tiny size
        "do_normalize": True,
        "do_resize": True,
        "image_mean": IMAGENET_MEAN,
        "image_std": IMAGENET_STD,
        "image_processor_type": "ViTImageProcessor",
        "processor_class": "CLIPSegProcessor",
        "resample": 2,  # PIL bilinear
        "size": CLIPSEG_IMAGE_SIZE,
    }
    (path / "preprocessor_config.json").write_text(json.dumps(processor, indent=2) + "\n")
    (path / RANDOM_WEIGHTS_FILE).write_text("A tiny CLIPSeg with random weights: its masks mean nothing.\n")
    return path


def tiny_sam2_video_config() -> Sam2VideoConfig:
    """SAM 2.1 (Hiera) at toy width: one or two blocks per stage, one memory-attention layer, two memory slots."""
    size, hidden = SAM2_IMAGE_SIZE, SAM2_HIDDEN
    backbone = {
        "model_type": "sam2_hiera_det_model",
        "hidden_size": 8,
        "image_size": [size, size],
        "blocks_per_stage": [1, 1, 2, 1],
        "embed_dim_per_stage": [8, 16, 32, 64],
        "num_attention_heads_per_stage": [1, 1, 1, 1],
        "window_size_per_stage": [4, 4, 4, 2],
        "global_attention_blocks": [3],
        "window_positional_embedding_background_size": [2, 2],
    }
    vision = {
        "model_type": "sam2_vision_model",
        "backbone_config": backbone,
        "backbone_channel_list": [64, 32, 16, 8],
        "backbone_feature_sizes": [[size // 4] * 2, [size // 8] * 2, [size // 16] * 2],
        "fpn_hidden_size": hidden,
    }
    return Sam2VideoConfig(
        vision_config=vision,
        prompt_encoder_config={"hidden_size": hidden, "image_size": size, "patch_size": 16, "mask_input_channels": 4},
        mask_decoder_config={"hidden_size": hidden, "mlp_dim": 32, "num_attention_heads": 2, "iou_head_hidden_dim": 16},
        image_size=size,
        num_maskmem=2,
        max_object_pointers_in_encoder=4,
        memory_attention_hidden_size=hidden,
        memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=32,
        memory_attention_rope_feat_sizes=[size // 16, size // 16],
        memory_encoder_hidden_size=hidden,
        memory_encoder_output_channels=64,
        mask_downsampler_embed_dim=hidden,
        memory_fuser_embed_dim=hidden,
        memory_fuser_intermediate_dim=32,
    )


def build_tiny_sam2_video(path: str | Path, seed: int = 0) -> Path:
    """Write a tiny random ``Sam2VideoModel`` (config.json, model.safetensors) into ``path``; the global RNG is kept."""
    path = Path(path)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Sam2VideoModel(tiny_sam2_video_config()).eval()
    model.save_pretrained(path)
    (path / RANDOM_WEIGHTS_FILE).write_text("A tiny SAM 2 video model with random weights: its masks mean nothing.\n")
    return path
