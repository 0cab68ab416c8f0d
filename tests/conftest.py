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
    from vidsynth.testing.tiny_sd import build_tiny_sd  # imported here: torch and diffusers are slow to import

    return build_tiny_sd(tmp_path_factory.mktemp("tiny-sd") / "tiny-sd", seed=0)


@pytest.fixture(scope="module")
def pipe(tiny_sd):
    """Tiny video pipeline whose temporal attention is not the identity, so frames interact."""
    import torch

    from vidsynth.pipelines import ModelSource, load_pipeline

    pipe = load_pipeline(ModelSource("base", str(tiny_sd)))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in pipe.unet.named_parameters():
            if "attn_temp.to_out" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.1)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="session")
def tiny_svd(tmp_path_factory):
    """A tiny random Stable Video Diffusion checkpoint folder in the real diffusers layout (built once)."""
    from vidsynth.testing.tiny_svd import build_tiny_svd

    return build_tiny_svd(tmp_path_factory.mktemp("tiny-svd") / "tiny-svd", seed=0)


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module: bit-identical results, and tiny models gain nothing from threads that
    fight other processes for 2 cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
