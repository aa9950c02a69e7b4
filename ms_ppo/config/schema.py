"""Typed, validated settings: the only place where defaults live.

Settings come from, in increasing priority: the defaults below, the env YAML, the algo YAML, and
``--set section.key=value`` overrides from the command line (ms_ppo.config.loading). The command-line flags take
their choices and defaults from here too (ms_ppo.app.cli).
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_ITERATIONS = re.compile(r"\s*(\d+)\s*(?:it|iter|iters|iterations?)?\s*", re.IGNORECASE)
_STEPS = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([km]?)\s*_?\s*steps?\s*", re.IGNORECASE)
EVERY_HELP = ("N iterations (20 or '20 it'), or N environment steps ('100000 steps', '100k steps'; rounded up to whole "
              "iterations)")

# MindSpore takes seeds below 2**32; evaluation starts from seed + 1,000,000 + episode, workers from seed + rank.
MAX_SEED = 2 ** 32 - 1 - 10_000_000


class _Section(BaseModel):
    # NaN and infinities are never a setting: an infinite learning rate would pass gt=0 and wreck a run.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class EnvSettings(_Section):
    """Which Gymnasium environment to train on and how to step it."""

    id: str = Field("HalfCheetah-v5", description="Gymnasium id, or module:EnvId (the module is imported and "
                                                  "registers EnvId); MuJoCo -v2/-v3 ids (mujoco-py) run on -v5")
    entry_point: Optional[str] = Field(None, description="your own environment class (package.module:ClassName), "
                                                         "registered as env.id and made with env.kwargs")
    kwargs: Dict[str, Any] = Field(default_factory=dict, description="keyword arguments for gymnasium.make")
    eval_kwargs: Optional[Dict[str, Any]] = Field(None, description="gymnasium.make kwargs for eval envs "
                                                                     "(default: kwargs)")
    vector_env: Literal["sync", "async"] = Field(
        "sync", description="sync: envs step in this process; async: one subprocess per env")
    wrappers: Literal["none", "atari", "mario"] = Field(
        "none", description="pixel wrapper set: atari (ALE ids) or mario (SuperMarioBros-<w>-<s>-v0); "
                            "84x84 grayscale, 4 stacked frames")

    @property
    def evaluation_kwargs(self) -> Dict[str, Any]:
        """The gymnasium.make kwargs of evaluation environments: ``eval_kwargs``, else ``kwargs``."""
        return self.kwargs if self.eval_kwargs is None else self.eval_kwargs


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
    off_policy_correction: Literal["decoupled", "none"] = Field(
        "decoupled", description="rollouts of an older policy (AsyncMultiActorSingleLearnerDP, policy lag 1): "
                                 "decoupled clips the ratio around the learner's policy at the start of the update "
                                 "and weights each transition by that policy's probability over the behaviour "
                                 "policy's (capped at importance_weight_cap); none clips around the behaviour policy")
    importance_weight_cap: float = Field(2.0, gt=0, description="decoupled: the largest weight a stale transition "
                                                                "gets (bounds the variance of the correction)")

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
    seed: int = Field(0, ge=0, le=MAX_SEED, description="seeds NumPy, MindSpore and the environments")
    eval_every: Union[int, str] = Field(0, description=f"evaluate every {EVERY_HELP}; 0: only at the end")
    eval_episodes: int = Field(10, ge=1, description="episodes per deterministic evaluation")
    eval_max_steps: Optional[int] = Field(None, ge=1, description="stop each evaluation episode after this many "
                                                                  "steps, counting its return so far (null: no cap)")
    save_every: Union[int, str] = Field(50, description=f"checkpoint every {EVERY_HELP}; 0: only at the end")
    log_every: int = Field(1, ge=1, description="print a log line every N iterations")
    log_format: Literal["ms_ppo", "mindrl"] = Field(
        "ms_ppo", description="log lines: ms_ppo (iteration, steps, episodes, mean return, SPS) or mindrl "
                              "(MindSpore Reinforcement's 'Episode N, loss is ...', for scripts that parse it)")
    track: Literal["none", "wandb", "mlflow"] = Field(
        "none", description="also send metrics, settings, the learning curve and videos to Weights & Biases or "
                            "MLflow (pip install 'ms_ppo[track]'; docs/training.md)")
    track_project: str = Field("ms_ppo", min_length=1, description="W&B project / MLflow experiment name")
    video: Optional[Literal["gif", "mp4"]] = Field(None, description="record before/after clips of one "
                                                                     "evaluation episode in this format")
    max_bad_updates: int = Field(5, ge=1, description="stop after N consecutive updates in which every optimiser "
                                                      "step was skipped for non-finite values")
    output_dir: Optional[str] = Field(None, description="run directory (default runs/<env>_seed<seed>_<time>)")

    @field_validator("eval_every", "save_every", mode="before")
    @classmethod
    def _every(cls, value: Any) -> Union[int, str]:
        """Whole iterations stay an int; a number of steps becomes the canonical text "N steps"."""
        if isinstance(value, bool):
            raise ValueError("must be a number of iterations or of steps, not a boolean")
        if isinstance(value, int):
            if value < 0:
                raise ValueError("must be >= 0")
            return value
        if isinstance(value, str):
            if _ITERATIONS.fullmatch(value):
                return int(_ITERATIONS.fullmatch(value).group(1))
            steps = _STEPS.fullmatch(value)
            if steps:
                number = float(steps.group(1)) * {"": 1, "k": 1e3, "m": 1e6}[steps.group(2).lower()]
                if number != int(number):
                    raise ValueError(f"{value!r} is not a whole number of steps")
                return f"{int(number)} steps"
        raise ValueError(f"{value!r} is not {EVERY_HELP}")

    def iterations_between(self, key: str, steps_per_iteration: int) -> int:
        """``eval_every`` or ``save_every`` in iterations (0: off), converting a number of steps."""
        value = getattr(self, key)
        if isinstance(value, int):
            return value
        steps = int(value.split()[0])
        return 0 if steps == 0 else -(-steps // steps_per_iteration)


class RuntimeSettings(_Section):
    """Where and how the computation runs (normally set by command-line flags)."""

    device_target: Literal["Auto", "CPU", "GPU", "Ascend"] = Field(
        "Auto", description="device to run on; Auto picks Ascend, then GPU, then CPU")
    precision_mode: Literal["fp32", "fp16", "bf16"] = Field(
        "fp32", description="compute precision; fp16 runs the networks in float16 with dynamic loss scaling "
                            "(settings precision.*, e.g. --set precision.amp_level=O3); bf16 on Ascend only")
    graph_op_run: int = Field(1, ge=0, le=1, description="Ascend only: 1 runs kernel by kernel (jit level O0)")
    enable_distribute: bool = Field(False, description="train across workers with msrun")
    worker_num: int = Field(2, ge=1, description="workers for enable_distribute")
    distribution_policy: Literal[
        "DataParallelDP", "MultiActorSingleLearnerDP", "AsyncMultiActorSingleLearnerDP",
        "SingleActorLearnerMultiEnvDP", "SingleActorLearnerMultiEnvHeterDP"] = Field(
        "DataParallelDP", description="how enable_distribute splits the work (docs/distributed.md): DataParallelDP "
                                      "replicas all-reduce gradients; MultiActorSingleLearnerDP actors collect, rank "
                                      "0 learns; Async... actors collect while rank 0 learns (policy lag 1); "
                                      "SingleActorLearnerMultiEnvDP rank 0 acts and learns, the other ranks step "
                                      "environments; ...HeterDP the same with rank 0 on GPU/Ascend, the others on CPU")
    host_policy: bool = Field(True, description="collect with a NumPy copy of the policy when it is an fp32 MLP on "
                                                "CPU (ms_ppo/models/host_policy.py); False: the compiled call")
    host_blas_threads: Optional[int] = Field(1, ge=1, description="NumPy BLAS threads while the host policy "
                                                                  "collects (its matmuls have a row per env: one "
                                                                  "thread is as fast idle and far faster on a busy "
                                                                  "CPU); null: NumPy's own choice")
    cpu_isa_cap: Literal["auto", "none", "avx2"] = Field(
        "auto", description="CNN on CPU: cap oneDNN's instruction set at AVX2 where that makes convolutions "
                            "faster (auto: measured once per kind of host; ms_ppo/runtime/cpu_kernels.py)")
    cpu_threads: Optional[int] = Field(None, ge=1, description="threads of MindSpore's CPU kernels per process "
                                                               "(default: MindSpore's own choice)")


class PrecisionSettings(_Section):
    """Mixed precision for ``--precision_mode fp16`` (ignored in fp32); see ms_ppo/models/precision.py."""

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

