"""Typed, validated settings: the only place where defaults live.

Settings come from, in increasing priority: the defaults below, the env YAML, the algo YAML, and
``--set section.key=value`` overrides from the command line. Both ms_ppo's own layout (sections ``env``, ``ppo``,
``policy``, ``normalize``, ``train``) and MindSpore Reinforcement's layout (``collect_env_params``,
``learner_params``, ``policy_params``, ``trainer_params``, ...) are accepted; the latter is translated on load.
"""

from __future__ import annotations

import copy
import difflib
import math
import os
from typing import Any, Dict, List, Literal, Optional, Tuple

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ms_ppo.errors import UserInputError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class EnvSettings(_Section):
    """Which Gymnasium environment to train on and how to step it."""

    id: str = Field("HalfCheetah-v5", description="Gymnasium id; old MuJoCo ids (-v2/-v3/-v4) run on -v5")
    kwargs: Dict[str, Any] = Field(default_factory=dict, description="keyword arguments for gymnasium.make")
    eval_kwargs: Optional[Dict[str, Any]] = Field(None, description="gymnasium.make kwargs for eval envs (default: kwargs)")
    vector_env: Literal["sync", "async"] = Field(
        "sync", description="sync: envs step in this process; async: one subprocess per env")
    wrappers: Literal["none", "atari", "mario"] = Field(
        "none", description="pixel wrapper set: atari (ALE ids) or mario (SuperMarioBros-<w>-<s>-v0); "
                            "84x84 grayscale, 4 stacked frames")


class PPOSettings(_Section):
    """PPO hyperparameters (names follow CleanRL / Stable-Baselines3)."""

    num_envs: int = Field(8, ge=1, description="parallel collection environments")
    rollout_steps: int = Field(256, ge=1, description="steps per environment per rollout (one training iteration)")
    epochs: int = Field(10, ge=1, description="passes over each rollout")
    num_minibatches: int = Field(8, ge=1, description="minibatches per epoch (1 = the whole rollout)")
    learning_rate: float = Field(3e-4, gt=0, description="Adam learning rate")
    anneal_lr: bool = Field(True, description="decay the learning rate linearly to 0 over training")
    gamma: float = Field(0.99, ge=0, le=1, description="discount factor")
    gae_lambda: float = Field(0.95, ge=0, le=1, description="GAE lambda")
    clip_range: float = Field(0.2, gt=0, description="PPO ratio clip epsilon")
    clip_range_vf: Optional[float] = Field(None, gt=0, description="value clip around old values (None: off)")
    ent_coef: float = Field(0.0, ge=0, description="entropy bonus coefficient")
    vf_coef: float = Field(0.5, ge=0, description="value loss coefficient")
    max_grad_norm: Optional[float] = Field(0.5, gt=0, description="global gradient-norm clip (None: off)")
    normalize_advantage: bool = Field(True, description="normalise advantages per minibatch")
    target_kl: Optional[float] = Field(None, gt=0, description="stop the epochs when approx KL > 1.5 x target_kl")
    adam_eps: float = Field(1e-5, gt=0, description="Adam epsilon")
    anneal_clip_range: bool = Field(False, description="decay the clip range linearly to 0 over training, "
                                                       "like the learning rate")

    @property
    def batch_size(self) -> int:
        """Transitions per rollout."""
        return self.num_envs * self.rollout_steps

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches

    @model_validator(mode="after")
    def _minibatches_fit(self) -> "PPOSettings":
        if self.num_minibatches > self.batch_size:
            raise ValueError(f"num_minibatches ({self.num_minibatches}) exceeds the rollout size "
                             f"num_envs x rollout_steps = {self.batch_size}")
        return self


class PolicySettings(_Section):
    """Actor-critic network shape."""

    hidden_sizes: List[int] = Field(default_factory=lambda: [64, 64], description="units per hidden layer")
    activation: Literal["tanh", "relu"] = Field("tanh", description="hidden activation")
    log_std_init: float = Field(0.0, description="initial log std of the Gaussian policy (Box actions)")
    ortho_init: bool = Field(True, description="orthogonal init: gain sqrt(2) hidden, 0.01 policy head, 1 value head")
    network: Literal["auto", "mlp", "cnn"] = Field(
        "auto", description="auto: the Nature CNN for uint8 (C, H, W) image observations, else the MLP")
    distribution: Literal["gaussian", "tanh_normal"] = Field(
        "gaussian", description="Box actions: gaussian (clipped to the bounds for the env) or tanh_normal "
                                "(tanh-squashed Gaussian rescaled to the bounds)")

    @model_validator(mode="after")
    def _positive_sizes(self) -> "PolicySettings":
        if not self.hidden_sizes or min(self.hidden_sizes) < 1:
            raise ValueError("hidden_sizes must be a non-empty list of positive integers")
        return self


class NormalizeSettings(_Section):
    """Running normalisation of observations and rewards (statistics are saved in checkpoints)."""

    observations: bool = Field(False, description="normalise observations by running mean/std")
    rewards: bool = Field(False, description="scale rewards by the running std of the discounted return")
    clip_obs: float = Field(10.0, gt=0, description="clip normalised observations to +-clip_obs")
    clip_reward: float = Field(10.0, gt=0, description="clip scaled rewards to +-clip_reward")


class TrainSettings(_Section):
    """The training run: budget, seed, evaluation, checkpoints."""

    total_steps: int = Field(1_000_000, ge=1, description="environment steps to train for")
    seed: int = Field(0, ge=0, description="seeds NumPy, MindSpore and the environments")
    eval_every: int = Field(0, ge=0, description="evaluate every N iterations (0: only at the end)")
    eval_episodes: int = Field(10, ge=1, description="episodes per deterministic evaluation")
    save_every: int = Field(50, ge=0, description="checkpoint every N iterations (0: only at the end)")
    log_every: int = Field(1, ge=1, description="print a log line every N iterations")
    video: Optional[Literal["gif", "mp4"]] = Field(None, description="record before/after clips of one "
                                                                     "evaluation episode in this format")
    max_bad_updates: int = Field(5, ge=1, description="stop after N consecutive updates in which every optimiser "
                                                      "step was skipped for non-finite values")
    output_dir: Optional[str] = Field(None, description="run directory (default runs/<env>_seed<seed>_<time>)")


class RuntimeSettings(_Section):
    """Where and how the computation runs (normally set by command-line flags)."""

    device_target: Literal["Auto", "CPU", "GPU", "Ascend"] = "Auto"
    precision_mode: Literal["fp32", "fp16", "bf16"] = "fp32"
    graph_op_run: int = Field(1, ge=0, le=1, description="Ascend: 1 runs kernel by kernel (jit level O0)")
    enable_distribute: bool = False
    worker_num: int = Field(2, ge=1)
    host_policy: bool = Field(True, description="collect with a NumPy copy of the policy when it is an fp32 MLP on "
                                                "CPU (ms_ppo/host_policy.py); False: the compiled call")
    cpu_threads: Optional[int] = Field(None, ge=1, description="threads of MindSpore's CPU kernels per process "
                                                               "(default: MindSpore's own choice)")


class PrecisionSettings(_Section):
    """Mixed precision for ``--precision_mode fp16`` (ignored in fp32); see ms_ppo/precision.py."""

    amp_level: Literal["O1", "O2", "O3"] = Field(
        "O2", description="mindspore.amp level for the MLPs: O1 white-listed ops (MatMul), O2 all but the "
                          "black list, O3 everything")
    loss_scale_init: float = Field(2.0 ** 16, ge=1, description="initial dynamic loss scale")
    loss_scale_factor: int = Field(2, ge=2, description="divide the scale by this on non-finite gradients, "
                                                        "multiply by it after loss_scale_window finite steps")
    loss_scale_window: int = Field(1000, ge=1, description="consecutive finite optimiser steps before the scale "
                                                           "grows")


class Settings(_Section):
    """Every setting of a run."""

    env: EnvSettings = Field(default_factory=EnvSettings)
    ppo: PPOSettings = Field(default_factory=PPOSettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    normalize: NormalizeSettings = Field(default_factory=NormalizeSettings)
    train: TrainSettings = Field(default_factory=TrainSettings)
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)
    precision: PrecisionSettings = Field(default_factory=PrecisionSettings)

    def to_dict(self) -> Dict[str, Any]:
        return self.model_dump(mode="json")


# ---------------------------------------------------------------------------------------------------------------
# MindSpore Reinforcement layouts
# ---------------------------------------------------------------------------------------------------------------

# (reference section, reference key) -> (ms_ppo section, ms_ppo key, converter)
_REFERENCE_KEYS = {
    ("learner_params", "gamma"): ("ppo", "gamma", None),
    ("learner_params", "iter_times"): ("ppo", "epochs", None),
    ("learner_params", "epsilon"): ("ppo", "clip_range", None),
    ("learner_params", "lr"): ("ppo", "learning_rate", None),
    ("learner_params", "critic_coef"): ("ppo", "vf_coef", None),
    ("policy_params", "sigma_init_std"): ("policy", "log_std_init", lambda std: math.log(float(std))),
    ("trainer_params", "duration"): ("ppo", "rollout_steps", None),
    # The reference's learner sampled the replay buffer in `batch_size` pieces: 1 means the whole rollout.
    ("trainer_params", "batch_size"): ("ppo", "num_minibatches", None),
    ("trainer_params", "num_eval_episode"): ("train", "eval_every", None),
    ("trainer_params", "num_save_episode"): ("train", "save_every", None),
    ("trainer_params", "ckpt_path"): ("train", "output_dir", None),
}
_REFERENCE_SECTIONS = {"learner_params", "policy_params", "trainer_params", "algorithm_config",
                       "collect_env_params", "eval_env_params", "env_class", "env_type"}
_NATIVE_SECTIONS = tuple(Settings.model_fields)


def _gym_params(value: Any, where: str) -> Tuple[Optional[str], Dict[str, Any]]:
    """``{"GymEnvironment": {"name": id, **kwargs}}`` -> (id, kwargs)."""
    if not isinstance(value, dict) or len(value) != 1:
        raise UserInputError(f"{where}: expected a mapping like {{GymEnvironment: {{name: CartPole-v1}}}}")
    (env_type, params), = value.items()
    if env_type != "GymEnvironment":
        raise UserInputError(f"{where}: environment type '{env_type}' is not supported; use GymEnvironment")
    params = dict(params or {})
    return params.pop("name", None), params


def _translate_reference(raw: Dict[str, Any], source: str) -> Dict[str, Any]:
    """Map MindSpore Reinforcement keys in ``raw`` onto ms_ppo's sections; native keys pass through."""
    out: Dict[str, Any] = {k: copy.deepcopy(v) for k, v in raw.items() if k not in _REFERENCE_SECTIONS}
    env = out.get("env")
    if isinstance(env, str):  # reference env YAML: `env: HalfCheetah-v2`
        out["env"] = {"id": env}
    if raw.get("env_type", "GymEnvironment") != "GymEnvironment":
        raise UserInputError(f"{source}: env_type '{raw['env_type']}' is not supported; use GymEnvironment")
    for key, target in (("collect_env_params", "kwargs"), ("eval_env_params", "eval_kwargs")):
        if key in raw:
            env_id, kwargs = _gym_params(raw[key], f"{source}: {key}")
            section = out.setdefault("env", {})
            if env_id and (key == "collect_env_params" or "id" not in section):
                section["id"] = env_id
            section[target] = kwargs
    for ref_section in ("learner_params", "policy_params", "trainer_params"):
        values = raw.get(ref_section)
        if values is None:
            continue
        if not isinstance(values, dict):
            raise UserInputError(f"{source}: {ref_section} must be a mapping, got {type(values).__name__}")
        hidden = [values.pop(k) for k in ("hidden_size1", "hidden_size2") if k in values] \
            if ref_section == "policy_params" else []
        if hidden:
            out.setdefault("policy", {})["hidden_sizes"] = hidden
        for key, value in values.items():
            if (ref_section, key) not in _REFERENCE_KEYS:
                known = sorted(k for s, k in _REFERENCE_KEYS if s == ref_section)
                raise UserInputError(f"{source}: unknown key '{ref_section}.{key}'{_suggest(key, known)}")
            section, name, convert = _REFERENCE_KEYS[(ref_section, key)]
            out.setdefault(section, {})[name] = convert(value) if convert else value
    algo = raw.get("algorithm_config")
    if algo is not None:
        number = (algo.get("collect_environment") or {}).get("number") if isinstance(algo, dict) else None
        if number is None:
            raise UserInputError(f"{source}: algorithm_config supports only collect_environment.number")
        out.setdefault("ppo", {})["num_envs"] = number
    return out


# ---------------------------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------------------------

def _suggest(name: str, candidates) -> str:
    close = difflib.get_close_matches(str(name), list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


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
        return f"{source}: unknown key '{path}'{_suggest(loc[-1], known)}"
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
            if key not in _NATIVE_SECTIONS and key not in _REFERENCE_SECTIONS:
                raise UserInputError(f"{path}: unknown key '{key}'"
                                     f"{_suggest(key, _NATIVE_SECTIONS + tuple(_REFERENCE_SECTIONS))}")
        translated = _translate_reference(raw, path)
        for key, value in translated.items():
            if not isinstance(value, dict):
                raise UserInputError(f"{path}: section '{key}' must be a mapping, got {type(value).__name__}")
        _merge(merged, translated, origin, path)
    return _validate(merged, origin, overrides)


def _validate(merged: Dict[str, Any], origin: Dict[str, str], overrides: Optional[Dict[str, Any]]) -> Settings:
    """Apply ``--set`` overrides to the merged tree and validate it into Settings."""
    for dotted, value in (overrides or {}).items():
        if dotted.split(".")[0] not in _NATIVE_SECTIONS or "." not in dotted:
            raise UserInputError(f"--set {dotted}: keys look like section.key with section one of "
                                 f"{', '.join(_NATIVE_SECTIONS)}{_suggest(dotted.split('.')[0], _NATIVE_SECTIONS)}")
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
