"""Typed configs: a dataclass schema, a YAML preset, and ``key=value`` overrides from the command line.

A run is ``preset + overrides``. The merge goes through OmegaConf's structured configs, so an
unknown key or a value of the wrong type stops with a message that names the key, before any work
starts. The resolved config is what gets saved into the run directory.

    cfg = load_config(Config, "configs/dqn/cartpole.yaml", ["seed=3", "agent=mdqn"])
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

T = TypeVar("T")


class ConfigError(ValueError):
    """A config that cannot be used: unknown key, wrong type, bad value or missing preset."""


def _field_names(schema: type) -> list[str]:
    return sorted(f.name for f in dataclasses.fields(schema))


def _key_of(err: OmegaConfBaseException) -> str:
    key = getattr(err, "full_key", None) or getattr(err, "key", None)
    return str(key) if key is not None else "?"


def load_config(schema: type[T], preset: str | Path | None = None, overrides: Sequence[str] = ()) -> T:
    """Build a ``schema`` instance from defaults, then ``preset`` (a YAML file), then ``overrides``.

    Raises :class:`ConfigError` naming the offending key for unknown keys, values that do not fit
    the field's type, malformed overrides and values rejected by the dataclass' ``__post_init__``.
    """
    data = None
    if preset is not None:
        path = Path(preset)
        if not path.is_file():
            raise ConfigError(f"config preset not found: {path}")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from e
    return _build(schema, data, str(preset), overrides)


def config_from_dict(
    schema: type[T], data: dict[str, Any], overrides: Sequence[str] = (), source: str = "checkpoint"
) -> T:
    """Validate ``data`` (e.g. the config dict saved in a checkpoint) into ``schema``.

    Same checks and errors as a YAML preset: an unknown key or a bad value names the key and
    ``source``. Nothing is filtered out silently.
    """
    return _build(schema, data, source, overrides)


def _build(schema: type[T], data: Any, source: str, overrides: Sequence[str]) -> T:
    if not dataclasses.is_dataclass(schema):
        raise TypeError(f"{schema!r} is not a dataclass")
    base = OmegaConf.structured(schema)
    layers = []
    if data is not None:
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: a config must be a mapping of config keys, got {type(data).__name__}")
        layers.append((source, OmegaConf.create(data)))
    for item in overrides:
        if "=" not in item or item.startswith("="):
            raise ConfigError(f"override {item!r} is not of the form key=value")
    if overrides:
        try:
            layers.append(("command line", OmegaConf.from_dotlist(list(overrides))))
        except OmegaConfBaseException as e:
            raise ConfigError(f"bad override: {e}") from e
    merged = base
    for source, layer in layers:
        try:
            merged = OmegaConf.merge(merged, layer)
        except ConfigKeyError as e:
            key = _key_of(e)
            raise ConfigError(
                f"unknown config key '{key}' (from {source}); valid keys of {schema.__name__}: "
                + ", ".join(_field_names(schema))
            ) from e
        except ValidationError as e:
            key = _key_of(e)
            raise ConfigError(f"bad value for config key '{key}' (from {source}): {e.msg}") from e
    try:
        return OmegaConf.to_object(merged)  # type: ignore[return-value]
    except OmegaConfBaseException as e:
        raise ConfigError(f"config key '{_key_of(e)}': {e.msg}") from e
    except (ValueError, TypeError) as e:  # raised by the dataclass' own __post_init__ checks
        raise ConfigError(str(e)) from e


def to_dict(cfg: Any) -> dict[str, Any]:
    """A plain, YAML-safe dict of a config dataclass."""
    return OmegaConf.to_container(OmegaConf.structured(cfg), enum_to_str=True)  # type: ignore[return-value]


def save_config(cfg: Any, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))


def add_config_args(parser: argparse.ArgumentParser, resume: bool = False) -> None:
    """``--config PRESET.yaml``, ``key=value`` overrides and (optionally) ``--resume``.

    Parse with :func:`parse_args` so that options and overrides may come in any order
    (``--resume lr=5e-4`` as well as ``lr=5e-4 --resume``).
    """
    parser.add_argument("--config", "-c", default=None, help="YAML preset (e.g. configs/dqn/cartpole.yaml)")
    parser.add_argument("overrides", nargs="*", help="config overrides, key=value (e.g. seed=3 lr=1e-3)")
    if resume:
        parser.add_argument(
            "--resume", action="store_true", help="continue the run in run_dir from its checkpoints/last.pt"
        )


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """``parser.parse_intermixed_args``: flags may stand anywhere between the ``key=value`` overrides."""
    return parser.parse_intermixed_args(argv)


def config_from_args(schema: type[T], args: argparse.Namespace) -> T:
    return load_config(schema, args.config, args.overrides)
