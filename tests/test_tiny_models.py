"""The name ``tiny``: one offline model per kind, built once into one cache folder under HF_HOME, found everywhere."""

import json
import os
from pathlib import Path

import pytest

from vidsynth.testing import tiny_models
from vidsynth.testing.tiny_models import TINY, resolve_model, tiny_folder


def test_tiny_is_built_once_into_hf_home_and_reused(monkeypatch):
    folder = tiny_folder("sd")
    assert folder == Path(os.environ["HF_HOME"]).absolute() / "vidsynth-tiny" / "sd"
    assert not folder.exists()
    assert resolve_model(TINY) == str(folder)
    assert json.loads((folder / "model_index.json").read_text())["_class_name"] == "StableDiffusionPipeline"
    assert [p.name for p in folder.parent.iterdir()] == ["sd"]  # no temporary left beside it
    monkeypatch.setattr(tiny_models, "_build", lambda *a: pytest.fail("built a second time"))
    assert resolve_model(TINY) == str(folder)


def test_other_names_are_left_as_given():
    assert resolve_model("openai/clip-vit-large-patch14", "clip") == "openai/clip-vit-large-patch14"
    assert resolve_model("./tiny") == "./tiny"
    assert not tiny_folder("sd").parent.exists()


def test_every_kind_loads_where_that_kind_is_named(tmp_path):
    """The CLIP scores frames, the ControlNet fits the tiny SD's UNet, the depth model passes its check."""
    import numpy as np

    from vidsynth.control.controlnets import check_controlnet
    from vidsynth.control.depth import check_depth_model
    from vidsynth.control.spec import local_copy
    from vidsynth.evaluation.metrics import ClipScorer
    from vidsynth.testing.tiny_sd import tiny_unet

    scorer = ClipScorer(TINY)
    assert scorer.name == str(tiny_folder("clip"))
    assert scorer.image_embeddings(np.zeros((2, 40, 40, 3), np.uint8)).shape[0] == 2
    assert local_copy(TINY) == str(tiny_folder("controlnet"))
    check_controlnet(local_copy(TINY), tiny_unet().config.cross_attention_dim)
    assert local_copy(TINY, "depth") == str(tiny_folder("depth"))
    check_depth_model(local_copy(TINY, "depth"))
