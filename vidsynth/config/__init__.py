"""Typed configs (dataclass schemas) and their loader."""

from vidsynth.config.animate import AnimateConfig
from vidsynth.config.inference import InferenceConfig
from vidsynth.config.loader import (
    check_choice,
    config_from_command,
    config_to_yaml,
    load_config,
    parse_overrides,
    save_config,
)
from vidsynth.config.train import TrainConfig, TrainDataConfig, ValidationDataConfig

__all__ = [
    "AnimateConfig",
    "InferenceConfig",
    "TrainConfig",
    "TrainDataConfig",
    "ValidationDataConfig",
    "check_choice",
    "config_from_command",
    "config_to_yaml",
    "load_config",
    "parse_overrides",
    "save_config",
]
