"""Loading settings: YAML files (ms_ppo's layout or MindSpore Reinforcement's), deep merging, ``--set``
overrides, validation into ``Settings`` with one-line errors that name the file and key."""

from __future__ import annotations

import copy
import os
from typing import Any, Dict, Optional, Tuple

import yaml
from pydantic import ValidationError

from ms_ppo.config.reference import REFERENCE_SECTIONS, translate_reference
from ms_ppo.config.schema import Settings
from ms_ppo.config.suggest import suggest
from ms_ppo.errors import UserInputError

NATIVE_SECTIONS = tuple(Settings.model_fields)


def read_yaml(path: str) -> Dict[str, Any]:
    """Read one YAML mapping with ``yaml.safe_load``; every problem becomes a one-line UserInputError."""
    if not os.path.exists(path):
        raise UserInputError(f"YAML file not found: {path}")
    if os.path.isdir(path):
        raise UserInputError(f"expected a YAML file but got a directory: {path}")
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        if isinstance(error, yaml.constructor.ConstructorError):  # e.g. !!python/object: safe_load refuses it
            raise UserInputError(f"{path}: YAML tag not allowed{where}: {problem} (only plain YAML is read)") \
                from None
        raise UserInputError(f"{path}: YAML syntax error{where}: {problem}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UserInputError(f"cannot read YAML file {path}: {error}") from None
    if data is None:
        raise UserInputError(f"{path}: the file is empty; expected a mapping of settings")
    if not isinstance(data, dict):
        raise UserInputError(f"{path}: expected a mapping of settings at the top level, got {type(data).__name__}")
    return data


def _merge(base: Dict[str, Any], update: Dict[str, Any], origin: Dict[str, str], source: str,
           prefix: str = "") -> None:
    """Deep-merge ``update`` into ``base`` in place, remembering which source set each key."""
    for key, value in update.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and isinstance(base.get(key), dict) and key not in ("kwargs", "eval_kwargs"):
            _merge(base[key], value, origin, source, path + ".")
        else:
            base[key] = copy.deepcopy(value)
            origin[path] = source


def parse_override(text: str) -> Tuple[str, Any]:
    """``"ppo.gamma=0.98"`` -> ("ppo.gamma", 0.98); the value is parsed as YAML."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise UserInputError(f"--set expects section.key=value, got '{text}'")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError:
        parsed = value
    return key.strip(), parsed


def _nest(dotted: str, value: Any) -> Dict[str, Any]:
    parts = dotted.split(".")
    tree: Dict[str, Any] = {parts[-1]: value}
    for part in reversed(parts[:-1]):
        tree = {part: tree}
    return tree


def _format_validation_error(error: ValidationError, origin: Dict[str, str]) -> str:
    first = error.errors()[0]
    loc = [str(part) for part in first["loc"]]
    path = ".".join(loc)
    source = next((origin[p] for p in (".".join(loc[:i]) for i in range(len(loc), 0, -1)) if p in origin),
                  "settings")
    if first["type"] == "extra_forbidden":
        model: Any = Settings
        for part in loc[:-1]:
            model = model.model_fields[part].annotation
        known = list(getattr(model, "model_fields", {}))
        return f"{source}: unknown key '{path}'{suggest(loc[-1], known)}"
    message = first["msg"].replace("Value error, ", "")
    if not loc:
        return f"{source}: {message}"
    return f"{source}: {path}: {message} (got {first.get('input')!r})"


def load_settings(env_yaml: Optional[str] = None, algo_yaml: Optional[str] = None,
                  overrides: Optional[Dict[str, Any]] = None) -> Settings:
    """Build validated Settings from the YAML files and dotted-key overrides.

    :param env_yaml: path of the environment YAML (ms_ppo or MindSpore Reinforcement layout), or None.
    :param algo_yaml: path of the algorithm YAML, or None.
    :param overrides: ``{"ppo.gamma": 0.98, ...}``; applied last (the command line's ``--set``).
    :raises UserInputError: on any unreadable file, unknown key or invalid value, naming the file and key.
    """
    merged: Dict[str, Any] = {}
    origin: Dict[str, str] = {}
    for path in (env_yaml, algo_yaml):
        if path is None:
            continue
        raw = read_yaml(path)
        for key in raw:
            if key not in NATIVE_SECTIONS and key not in REFERENCE_SECTIONS:
                raise UserInputError(f"{path}: unknown key '{key}'"
                                     f"{suggest(key, NATIVE_SECTIONS + tuple(REFERENCE_SECTIONS))}")
        translated = translate_reference(raw, path)
        for key, value in translated.items():
            if not isinstance(value, dict):
                raise UserInputError(f"{path}: section '{key}' must be a mapping, got {type(value).__name__}")
        _merge(merged, translated, origin, path)
    return _validate(merged, origin, overrides)


def _validate(merged: Dict[str, Any], origin: Dict[str, str], overrides: Optional[Dict[str, Any]]) -> Settings:
    """Apply ``--set`` overrides to the merged tree and validate it into Settings."""
    for dotted, value in (overrides or {}).items():
        if dotted.split(".")[0] not in NATIVE_SECTIONS or "." not in dotted:
            raise UserInputError(f"--set {dotted}: keys look like section.key with section one of "
                                 f"{', '.join(NATIVE_SECTIONS)}{suggest(dotted.split('.')[0], NATIVE_SECTIONS)}")
        _merge(merged, _nest(dotted, value), origin, f"--set {dotted}")
    try:
        return Settings.model_validate(merged)
    except ValidationError as error:
        raise UserInputError(_format_validation_error(error, origin)) from None


def settings_from_dict(data: Dict[str, Any], overrides: Optional[Dict[str, Any]] = None,
                       source: str = "settings") -> Settings:
    """Validate a settings mapping (e.g. one saved with a checkpoint), with dotted-key overrides applied."""
    merged: Dict[str, Any] = {}
    origin: Dict[str, str] = {}
    _merge(merged, data, origin, source)
    return _validate(merged, origin, overrides)


def save_settings(settings: Settings, path: str) -> None:
    """Write the fully resolved settings as YAML (loadable again as an algo YAML)."""
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(settings.to_dict(), handle, sort_keys=False)
