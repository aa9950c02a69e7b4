"""Loading settings: YAML files (ms_ppo's layout or MindSpore Reinforcement's), deep merging, ``--set``
overrides, validation into ``Settings`` with one-line errors that name the file and key."""

from __future__ import annotations

import copy
import os
from typing import Any, Callable, Dict, Optional, Tuple

import yaml
from pydantic import ValidationError

from ms_ppo.config.presets import is_bare_name, preset_names, resolve_yaml
from ms_ppo.config.reference import REFERENCE_SECTIONS, translate_reference
from ms_ppo.config.schema import Settings
from ms_ppo.config.suggest import suggest
from ms_ppo.errors import UserInputError

NATIVE_SECTIONS = tuple(Settings.model_fields)


MAX_YAML_VALUES = 100_000  # a settings file has a few hundred; an alias bomb has billions once expanded


def _expanded_size(node: Any, seen: Dict[int, int]) -> int:
    """How many values ``node`` holds once its aliases are expanded (the merge copies them), counted without
    expanding: a node shared through an alias is sized once."""
    if id(node) in seen:
        return seen[id(node)]
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    seen[id(node)] = size = 1 + sum(_expanded_size(child, seen) for child in children)
    return size


def read_yaml(path: str, kind: Optional[str] = None) -> Dict[str, Any]:
    """Read one YAML mapping with ``yaml.safe_load``; every problem becomes a one-line UserInputError.

    :param kind: env_yaml or algo_yaml: a missing bare name lists the shipped ones of that kind.
    """
    if not os.path.exists(path):
        shipped = f" (shipped {kind}s: {', '.join(preset_names(kind))})" if kind and is_bare_name(path) else ""
        raise UserInputError(f"YAML file not found: {path}{shipped}")
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
    if _expanded_size(data, {}) > MAX_YAML_VALUES:
        raise UserInputError(f"{path}: the YAML expands to more than {MAX_YAML_VALUES:,} values (aliases "
                             f"referring to aliases?); settings files are far smaller")
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


ENV_SECTIONS = ("env", "env_class", "env_type", "collect_env_params", "eval_env_params")
TUNED_ALGO_KEY = "algo_yaml"  # in an env YAML: the algo YAML tuned for it, a path relative to the env YAML


def _check_env_yaml(raw: Dict[str, Any], path: str) -> None:
    """An env YAML names its environment; it may also hold any other section (a run's config.yaml holds all)."""
    if "env" not in raw and "collect_env_params" not in raw:
        found = ", ".join(map(str, raw)) or "nothing"
        raise UserInputError(f"{path}: an env YAML must name its environment in section 'env' (or "
                             f"'collect_env_params'); found {found}: is it an algo YAML?")


def _check_algo_yaml(raw: Dict[str, Any], path: str) -> None:
    """An algo YAML holds the algorithm's sections (ppo, policy, normalize, train, runtime, precision, or
    MindSpore Reinforcement's learner_params, policy_params, trainer_params, algorithm_config), no environment."""
    found = [key for key in raw if key in ENV_SECTIONS or key == TUNED_ALGO_KEY]
    if found:
        raise UserInputError(f"{path}: an algo YAML may not hold environment sections (found {', '.join(found)}): "
                             f"is it an env YAML? Pass it as --env_yaml")


def tuned_algo_yaml(env_raw: Dict[str, Any], env_yaml: str) -> Optional[str]:
    """The algo YAML an env YAML names under ``algo_yaml`` (resolved against the env YAML's folder), or None."""
    name = env_raw.get(TUNED_ALGO_KEY)
    if name is None:
        return None
    if not isinstance(name, str) or not name.strip():
        raise UserInputError(f"{env_yaml}: {TUNED_ALGO_KEY} must be the path of an algo YAML, got {name!r}")
    path = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(env_yaml)), name))
    if not os.path.isfile(path):
        raise UserInputError(f"{env_yaml}: {TUNED_ALGO_KEY} names {name}, which does not exist ({path})")
    return path


def load_settings(env_yaml: Optional[str] = None, algo_yaml: Optional[str] = None,
                  overrides: Optional[Dict[str, Any]] = None,
                  notify: Optional[Callable[[str], None]] = None) -> Settings:
    """Build validated Settings from the YAML files and dotted-key overrides.

    :param env_yaml: path of the environment YAML (ms_ppo or MindSpore Reinforcement layout), or None.
    :param algo_yaml: path of the algorithm YAML; None takes the one the env YAML names (``algo_yaml``), if any.
    :param overrides: ``{"ppo.gamma": 0.98, ...}``; applied last (the command line's ``--set``).
    :param notify: receives a one-line notice when an env YAML names no tuned algo YAML and none is given.
    :raises UserInputError: on any unreadable file, a file of the wrong kind, an unknown key or an invalid value,
        naming the file and key.
    """
    files = []
    env_yaml, algo_yaml = resolve_yaml(env_yaml, "env_yaml"), resolve_yaml(algo_yaml, "algo_yaml")
    if env_yaml is not None:
        env_raw = read_yaml(env_yaml, "env_yaml")
        _check_env_yaml(env_raw, env_yaml)
        if algo_yaml is None:
            algo_yaml = tuned_algo_yaml(env_raw, env_yaml)
            if algo_yaml is None and notify is not None:
                notify(f"notice: {env_yaml} names no tuned algo YAML ({TUNED_ALGO_KEY}: ...) and none was given: "
                       f"training with the generic defaults (docs/configuration.md)")
        files.append((env_yaml, {key: value for key, value in env_raw.items() if key != TUNED_ALGO_KEY}))
    if algo_yaml is not None:
        algo_raw = read_yaml(algo_yaml, "algo_yaml")
        _check_algo_yaml(algo_raw, algo_yaml)
        files.append((algo_yaml, algo_raw))
    merged: Dict[str, Any] = {}
    origin: Dict[str, str] = {}
    for path, raw in files:
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
    """Write the fully resolved settings as YAML (loadable again as an env YAML: it holds every section)."""
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(settings.to_dict(), handle, sort_keys=False)
