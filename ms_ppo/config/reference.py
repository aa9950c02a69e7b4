"""MindSpore Reinforcement's YAML layout (``collect_env_params``, ``learner_params``, ``policy_params``,
``trainer_params``, ...), translated onto ms_ppo's sections on load."""

from __future__ import annotations

import copy
import math
from typing import Any, Dict, Optional, Tuple

from ms_ppo.config.suggest import suggest
from ms_ppo.errors import UserInputError

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
REFERENCE_SECTIONS = {"learner_params", "policy_params", "trainer_params", "algorithm_config",
                      "collect_env_params", "eval_env_params", "env_class", "env_type"}


def _gym_params(value: Any, where: str) -> Tuple[Optional[str], Dict[str, Any]]:
    """``{"GymEnvironment": {"name": id, **kwargs}}`` -> (id, kwargs)."""
    if not isinstance(value, dict) or len(value) != 1:
        raise UserInputError(f"{where}: expected a mapping like {{GymEnvironment: {{name: CartPole-v1}}}}")
    (env_type, params), = value.items()
    if env_type != "GymEnvironment":
        raise UserInputError(f"{where}: environment type '{env_type}' is not supported; use GymEnvironment")
    params = dict(params or {})
    return params.pop("name", None), params


def translate_reference(raw: Dict[str, Any], source: str) -> Dict[str, Any]:
    """Map MindSpore Reinforcement keys in ``raw`` onto ms_ppo's sections; native keys pass through."""
    out: Dict[str, Any] = {k: copy.deepcopy(v) for k, v in raw.items() if k not in REFERENCE_SECTIONS}
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
                raise UserInputError(f"{source}: unknown key '{ref_section}.{key}'{suggest(key, known)}")
            section, name, convert = _REFERENCE_KEYS[(ref_section, key)]
            out.setdefault(section, {})[name] = convert(value) if convert else value
    algo = raw.get("algorithm_config")
    if algo is not None:
        number = (algo.get("collect_environment") or {}).get("number") if isinstance(algo, dict) else None
        if number is None:
            raise UserInputError(f"{source}: algorithm_config supports only collect_environment.number")
        out.setdefault("ppo", {})["num_envs"] = number
    return out

