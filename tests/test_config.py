"""Typed configs: defaults from the schema, YAML and key=value only override, typos rejected."""

import pytest

from vidsynth.config import InferenceConfig, TrainConfig, load_config, save_config
from vidsynth.errors import VidSynthError

REQUIRED = ["train_data.video_path=clip.mp4", "train_data.prompt=a ball"]


def test_defaults_are_the_original_tune_a_video_settings():
    cfg = load_config(TrainConfig, [], REQUIRED)
    assert (cfg.learning_rate, cfg.adam_beta1, cfg.adam_beta2) == (3e-5, 0.9, 0.999)
    assert (cfg.adam_weight_decay, cfg.adam_epsilon, cfg.max_grad_norm) == (1e-2, 1e-8, 1.0)
    assert (cfg.lr_scheduler, cfg.train_batch_size, cfg.max_train_steps, cfg.seed) == ("constant", 1, 500, 33)
    assert cfg.trainable_modules == ["attn1.to_q", "attn2.to_q", "attn_temp"]


def test_yaml_then_command_line_override_in_order(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("learning_rate: 3e-5\nmax_train_steps: 7\ntrain_data:\n  n_sample_frames: 6\n  prompt: x\n")
    cfg = load_config(TrainConfig, [path], ["max_train_steps=9", "train_data.video_path=v.mp4"])
    assert isinstance(cfg.learning_rate, float) and cfg.learning_rate == 3e-5
    assert cfg.max_train_steps == 9 and cfg.train_data.n_sample_frames == 6 and cfg.train_data.prompt == "x"


@pytest.mark.parametrize(
    ("yaml_text", "overrides", "message"),
    [
        (
            "train_data:\n  n_sampl_frames: 8\n",
            [],
            "unknown config key 'train_data.n_sampl_frames'.*'train_data.n_sample_frames'",
        ),
        ("", ["max_train_step=3"], "unknown config key 'max_train_step' in the command line.*'max_train_steps'"),
        ("", ["max_train_steps=many"], "'max_train_steps'.*many"),
        ("", ["frame_norm=joitn"], "frame_norm.*'joint'"),
        ("", ["max_train_steps"], "not key=value"),
        ("a: [1,\n", [], "not valid YAML"),
    ],
)
def test_bad_config_is_rejected_with_the_key_and_the_fix(tmp_path, yaml_text, overrides, message):
    path = tmp_path / "c.yaml"
    path.write_text(yaml_text)
    with pytest.raises(VidSynthError, match=message):
        load_config(TrainConfig, [path], [*REQUIRED, *overrides])


def test_missing_file_and_missing_required_key(tmp_path):
    with pytest.raises(VidSynthError, match="does not exist"):
        load_config(TrainConfig, [tmp_path / "nope.yaml"])
    with pytest.raises(VidSynthError, match="'train_data.video_path' is required"):
        load_config(TrainConfig, [], [])


def test_saved_config_reloads_to_the_same_config(tmp_path):
    cfg = load_config(TrainConfig, [], [*REQUIRED, "validation_data.prompts=[a,b]", "frozen_dtype=bf16"])
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(TrainConfig, [tmp_path / "config.yaml"]) == cfg


def test_yaml_no_stays_the_word_for_text_keys(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("mixed_precision: no\ngradient_checkpointing: no\nreport_to: null\n")
    cfg = load_config(TrainConfig, [path], REQUIRED)
    assert cfg.mixed_precision == "no" and cfg.gradient_checkpointing is False


@pytest.mark.parametrize("value", ["no", "fp16"])
def test_text_keys_take_the_same_words_on_the_command_line_as_in_yaml(value):
    cfg = load_config(TrainConfig, [], [*REQUIRED, f"mixed_precision={value}", "gradient_checkpointing=no"])
    assert cfg.mixed_precision == value and cfg.gradient_checkpointing is False


def test_the_original_s_names_are_accepted_for_editing_keys(tmp_path):
    path = tmp_path / "edit.yaml"
    path.write_text("video_length: 8\nsample_frame_rate: 1\nnum_inv_steps: 20\nsample_start_idx: 3\n")
    cfg = load_config(InferenceConfig, [path], ["guidance=7.5", "steps=25"])
    assert (cfg.num_frames, cfg.stride, cfg.inversion_steps, cfg.start_frame) == (8, 1, 20, 3)
    assert (cfg.guidance_scale, cfg.num_inference_steps) == (7.5, 25)
    with pytest.raises(VidSynthError, match="'n_sample_frames' and 'num_frames'.*name the same setting"):
        load_config(InferenceConfig, [], ["n_sample_frames=8", "num_frames=4"])


def test_negative_guidance_is_refused_with_the_fix():
    with pytest.raises(VidSynthError, match="'guidance_scale' must not be negative, got -3.0. Use e.g. 12.5"):
        load_config(InferenceConfig, [], ["guidance_scale=-3"])


def test_a_typo_of_an_accepted_other_name_suggests_that_name():
    with pytest.raises(VidSynthError, match="unknown config key 'stepz' in the command line. Did you mean 'steps'?"):
        load_config(InferenceConfig, [], ["stepz=3"])
