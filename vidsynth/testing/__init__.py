"""Offline stand-ins for downloadable models, built from a seed (tests and the offline demo)."""

from vidsynth.testing.tiny_sd import build_tiny_sd
from vidsynth.testing.tokenizer import build_clip_tokenizer

__all__ = ["build_clip_tokenizer", "build_tiny_sd"]
