"""A tiny random CLIP checkpoint laid out like ``openai/clip-vit-large-patch14``, for offline tests.

The metrics load CLIP with ``CLIPModel.from_pretrained`` / ``CLIPTokenizer.from_pretrained`` and read
``preprocessor_config.json`` for the crop size and normalisation; this folder has the same files
(``config.json``, ``model.safetensors``, tokenizer files, ``preprocessor_config.json``) so the very code
that scores with the real model is what the tests exercise. The weights are random: the embeddings
mean nothing, but shapes, dtypes and the whole loading path are real.
"""

import json
from pathlib import Path

import torch
from transformers import CLIPConfig, CLIPModel

from vidsynth.hub import RANDOM_WEIGHTS_FILE
from vidsynth.testing.tokenizer import build_clip_tokenizer

IMAGE_SIZE = 32
PATCH_SIZE = 8
PROJECTION_DIM = 16
# OpenAI's CLIP normalisation, as in the real checkpoint's preprocessor_config.json.
OPENAI_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def _preprocessor_config() -> dict:
    """The real checkpoint's preprocessor_config.json with the tiny image size (written by hand: no image
    processor is instantiated, so torchvision is never needed)."""
    return {
        "crop_size": IMAGE_SIZE,
        "do_center_crop": True,
        "do_normalize": True,
        "do_resize": True,
        "feature_extractor_type": "CLIPFeatureExtractor",
        "image_mean": OPENAI_CLIP_MEAN,
        "image_std": OPENAI_CLIP_STD,
        "resample": 3,  # PIL bicubic
        "size": IMAGE_SIZE,
    }


def build_tiny_clip(path: str | Path, seed: int = 0) -> Path:
    """Write a tiny random ``CLIPModel`` + tokenizer + preprocessor config into ``path``; return it.

    The same seed gives the same weights; the global torch RNG is left as it was.
    """
    path = Path(path)
    tokenizer = build_clip_tokenizer()
    special_ids = {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    config = CLIPConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "max_position_embeddings": tokenizer.model_max_length,
            "hidden_act": "quick_gelu",
            "projection_dim": PROJECTION_DIM,
            **special_ids,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "image_size": IMAGE_SIZE,
            "patch_size": PATCH_SIZE,
            "hidden_act": "quick_gelu",
            "projection_dim": PROJECTION_DIM,
        },
        projection_dim=PROJECTION_DIM,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIPModel(config).eval()
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    (path / "preprocessor_config.json").write_text(json.dumps(_preprocessor_config(), indent=2) + "\n")
    (path / RANDOM_WEIGHTS_FILE).write_text("A tiny CLIP with random weights: its scores mean nothing.\n")
    return path
