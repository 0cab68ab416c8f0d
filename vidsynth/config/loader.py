"""Typed configs: dataclass defaults, then a YAML file, then ``key=value`` overrides.

The dataclass schema is the single source of defaults; YAML and command-line entries only
override. Unknown keys are rejected before anything expensive happens, naming the key and the
closest valid one, and wrong types name the key, where it was set and what it must be, in words (never
Python's type hints).
"""

import dataclasses
import difflib
import re
import types
import typing
from argparse import Namespace
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException
from yaml import YAMLError

from vidsynth.atomic import atomic_path
from vidsynth.errors import VidSynthError
from vidsynth.workspace import CONFIGS

T = TypeVar("T")


def _field_types(schema: type) -> dict[str, Any]:
    return {f.name: f.type for f in fields(schema)}


def _optional(hint: Any) -> tuple[Any, bool]:
    """``X | None`` -> (X, True); anything else -> (hint, False). A union of several types stays as it is."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        rest = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(rest) == 1:
            return rest[0], len(rest) < len(typing.get_args(hint))
    return hint, False


def _kind(hint: Any) -> str | None:
    """What shape a value of ``hint`` has: "list", "mapping", "scalar", or None (anything goes)."""
    hint, _ = _optional(hint)
    origin = typing.get_origin(hint) or hint
    if origin in (list, tuple):
        return "list"
    if origin is dict or is_dataclass(hint):
        return "mapping"
    return "scalar" if hint in (bool, int, float, str) else None


def describe_type(hint: Any) -> str | None:
    """A type hint in words ("a number", "a list of values", ... "(or null)"); None for one that takes anything."""
    inner, optional = _optional(hint)
    words = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}.get(inner)
    kind = _kind(inner)
    if words is None and kind in ("list", "mapping"):
        words = "a list of values" if kind == "list" else "a mapping of keys to values"
    return f"{words} (or null)" if words and optional else words


def _check_keys(data: Any, schema: type, source: str, prefix: str = "") -> None:
    """Reject keys the schema does not have (suggesting the closest valid key), and values of the wrong shape."""
    if not isinstance(data, dict):
        return
    known = _field_types(schema)
    for key, value in data.items():
        full = f"{prefix}{key}"
        if key not in known:
            aliases = getattr(schema, "ALIASES", {})  # "stepz" -> "steps", the name its user typed
            close = difflib.get_close_matches(str(key), [*known, *aliases], n=1, cutoff=0.5)
            hint = f"Did you mean '{prefix}{close[0]}'?" if close else f"Valid keys here: {', '.join(known)}."
            raise VidSynthError(f"unknown config key '{full}' in {source}. {hint}")
        kind = _kind(known[key])
        given = "mapping" if isinstance(value, dict) else "list" if isinstance(value, list | tuple) else "scalar"
        if value is not None and kind is not None and kind != given:  # a list for a number, a number for a mapping
            raise VidSynthError(_wrong_value(full, source, value, known[key]))
        if is_dataclass(known[key]) and isinstance(value, dict):
            _check_keys(value, known[key], source, prefix=f"{full}.")
        item_schema = (typing.get_args(_optional(known[key])[0]) or [None])[0]
        if is_dataclass(item_schema) and isinstance(value, list):  # a list of mappings, e.g. stages: [{...}, ...]
            for index, item in enumerate(value):
                _check_keys(item, item_schema, source, prefix=f"{full}[{index}].")


def _wrong_value(key: str, source: str, value: Any, hint: Any) -> str:
    expected = describe_type(hint)
    must = f" must be {expected}" if expected else " has a wrong value"
    return f"config key '{key}' in {source}{must}; got {value!r}"


def _hint_at(schema: type, key: str) -> Any:
    """The type hint of the config entry at the dotted ``key`` (``train_data.width``), or None if unknown."""
    hint: Any = schema
    for part in key.split("."):
        hint, _ = _optional(hint)
        if not is_dataclass(hint) or part not in _field_types(hint):
            return None
        hint = _field_types(hint)[part]
    return hint


def _restore_yaml_words(data: Any, schema: type) -> Any:
    """YAML 1.1 reads a bare ``no``/``yes`` as a boolean; for text-valued keys, give the word back.

    (``mixed_precision: no`` in the original configs, or ``mixed_precision=no`` on the command line,
    would otherwise arrive as the string "False".)
    """
    if not isinstance(data, dict):
        return data
    types = _field_types(schema)
    fixed = {}
    for key, value in data.items():
        kind = types.get(key)
        if isinstance(value, bool) and kind in (str, str | None):
            value = "yes" if value else "no"
        elif is_dataclass(kind):
            value = _restore_yaml_words(value, kind)
        fixed[key] = value
    return fixed


def _apply_aliases(data: Any, schema: type, source: str, prefix: str = "") -> Any:
    """Rename other accepted names of keys (a schema's ``ALIASES``, e.g. the original's) to the schema's own."""
    if not isinstance(data, dict):
        return data
    aliases = getattr(schema, "ALIASES", {})
    types = _field_types(schema)
    renamed, given_as = {}, {}
    for key, value in data.items():
        name = aliases.get(key, key)
        if name in renamed:
            first, second = sorted([given_as[name], key], key=lambda k: k == name)  # the alias first
            raise VidSynthError(
                f"config keys '{prefix}{first}' and '{prefix}{second}' in {source} name the same setting. Keep one"
            )
        if is_dataclass(types.get(name)):
            value = _apply_aliases(value, types[name], source, f"{prefix}{name}.")
        renamed[name], given_as[name] = value, key
    return renamed


def _layer(data: Any, schema: type, source: str) -> DictConfig:
    """One checked config layer: aliases renamed, unknown keys refused, YAML's bare no/yes given back."""
    data = _apply_aliases(data, schema, source)
    _check_keys(data, schema, source)
    return OmegaConf.create(_restore_yaml_words(data, schema))


def parse_overrides(overrides: list[str]) -> DictConfig:
    """``["a.b=1", "c=x"]`` -> config; every entry must be ``key=value``."""
    for item in overrides:
        if "=" not in item or item.startswith("="):
            raise VidSynthError(f"command-line override {item!r} is not key=value. Write e.g. max_train_steps=100")
    try:
        return OmegaConf.from_dotlist(overrides)
    except OmegaConfBaseException as err:
        raise VidSynthError(f"cannot parse command-line overrides {overrides}: {err}") from err


def load_config(schema: type[T], yaml_paths: list[str | Path] = (), overrides: list[str] = ()) -> T:
    """Build a ``schema`` instance from its defaults, YAML files (in order) and overrides."""
    layers = [(read_yaml(path), str(path)) for path in yaml_paths]
    if overrides:
        layers.append((OmegaConf.to_container(parse_overrides(list(overrides))), "the command line"))
    return config_from_layers(schema, layers)


def read_yaml(path: str | Path) -> dict:
    """A YAML file's mapping, or a message saying what is wrong with the file."""
    path = Path(path)
    if not path.is_file():
        raise VidSynthError(
            f"config file {path} does not exist. Check the path (relative paths start at the current folder)"
        )
    try:
        layer = OmegaConf.load(path)
    except (YAMLError, OmegaConfBaseException) as err:
        raise VidSynthError(f"config file {path} is not valid YAML: {err}") from err
    if not isinstance(layer, DictConfig):
        raise VidSynthError(f"config file {path} must hold a mapping of keys to values")
    return OmegaConf.to_container(layer)


def config_from_layers(schema: type[T], layers: list[tuple[dict, str]]) -> T:
    """A ``schema`` instance from its defaults and ``(mapping, where it came from)`` layers, later ones winning.

    Every layer is checked on its own, so a typo is reported with the file (or other source) it is in.
    """
    checked = [(_layer(data, schema, source), source) for data, source in layers]
    merged = OmegaConf.structured(schema)
    for layer, source in checked:  # one at a time, so a wrong value is reported with the layer that set it
        try:
            merged = OmegaConf.merge(merged, layer)
        except OmegaConfBaseException as err:
            raise _merge_error(err, schema, source) from err
    try:
        return OmegaConf.to_object(merged)
    except MissingMandatoryValue as err:
        raise VidSynthError(
            f"config key '{err.full_key}' is required: set it in the YAML or as {err.full_key}=..."
        ) from err
    except OmegaConfBaseException as err:
        raise _merge_error(err, schema, "the config") from err


def _merge_error(err: OmegaConfBaseException, schema: type, source: str) -> VidSynthError:
    """OmegaConf's complaint about a value, in words: the key, where it was set, what it must be."""
    key, value = getattr(err, "full_key", None), getattr(err, "value", None)
    hint = _hint_at(schema, key) if key else None
    if hint is not None:
        return VidSynthError(
            _wrong_value(key, source, OmegaConf.to_container(value) if OmegaConf.is_config(value) else value, hint)
        )
    reason = re.sub(r"\btyping\.", "", str(err).splitlines()[0])  # never Python's type hints in a user's message
    return VidSynthError(f"config {f'key {key!r} ' if key else ''}in {source} has a wrong value: {reason}")


def config_to_yaml(config: Any) -> str:
    """The resolved config as YAML (what is saved next to every output)."""
    return OmegaConf.to_yaml(OmegaConf.structured(config))


def save_config(config: Any, path: str | Path) -> Path:
    """Write the resolved config to ``path`` atomically."""
    text = config_to_yaml(config)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def check_choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    """For ``__post_init__`` of schemas: a string option must be one of ``choices``."""
    if value not in choices:
        close = difflib.get_close_matches(str(value), choices, n=1, cutoff=0.4)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise VidSynthError(f"config key '{key}' must be one of {', '.join(choices)}; got {value!r}.{hint}")


def config_from_command(schema: type[T], args: Namespace) -> T:
    """A command's config: defaults, ``--profile NAME`` (``configs/NAME.yaml``), ``--config FILE``, ``key=value``
    entries (``args.overrides``), then every other argument given (the flags, under the schema's key names)."""
    layers = []
    if args.profile:
        profile = CONFIGS / f"{args.profile}.yaml"
        if not profile.is_file():
            known = sorted(p.stem for p in CONFIGS.glob("*.yaml"))
            raise VidSynthError(f"no profile {args.profile!r} ({profile} does not exist). Known profiles: {known}")
        layers.append(profile)
    if args.config:
        layers.append(args.config)
    config = load_config(schema, layers, args.overrides)
    layer_args = ("overrides", "profile", "config")
    flags = {key: value for key, value in vars(args).items() if key not in layer_args and value is not None}
    return dataclasses.replace(config, **flags)  # re-runs the schema's checks on the flags
