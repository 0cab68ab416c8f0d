"""Shared fixtures. Every test runs offline with a private Hugging Face cache."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _private_hf_home(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path_factory.mktemp("hf_home")))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_sd(tmp_path_factory):
    """A tiny random SD-1.x checkpoint folder in the real diffusers layout (built once)."""
    from vidsynth.testing import build_tiny_sd  # imported here: torch and diffusers are slow to import

    return build_tiny_sd(tmp_path_factory.mktemp("tiny-sd") / "tiny-sd", seed=0)
