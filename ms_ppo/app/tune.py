"""Hyperparameter search with Optuna (``tune.py`` / ``ms-ppo-tune``): each trial trains a PPOSession with values a
seeded TPE sampler draws from a search-space YAML; the objective is the final deterministic eval return; a median
pruner stops trials whose intermediate evaluations lag. The study lives in ``DIR/study.db`` (SQLite: the same
command continues it); ``DIR/best.yaml`` (an algo YAML) and ``DIR/trials.csv`` are rewritten after every trial."""

from __future__ import annotations

import argparse
import contextlib
import csv
import fcntl
import json
import math
import os
import signal
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

import yaml

from ms_ppo.app.arguments import Parser, non_negative, positive, run_command
from ms_ppo.app.session import PPOSession
from ms_ppo.config import load_settings, parse_override, read_yaml
from ms_ppo.config.loading import tuned_algo_yaml
from ms_ppo.config.reference import translate_reference
from ms_ppo.errors import TrainingDiverged, TrainingFailed, UserInputError
from ms_ppo.training.callbacks import Callback, CheckpointCallback, EvaluateCallback, LossCallback, TimeCallback
from ms_ppo.training.loggers import CSVLogger

STUDY_NAME = "ms_ppo_tune"
TUNER_KEYS = {"train.total_steps": "--steps", "train.seed": "--seed", "train.eval_every": "--eval_every",
              "train.output_dir": "--study_dir"}  # set by ms-ppo-tune for every trial: not in a space or --set
SPEC_HELP = "expected {low: L, high: H[, log: true][, step: S]} or {choices: [...]}"
EVALS_PER_TRIAL = 10  # the default --eval_every: about this many evaluations per trial


def _optuna():
    try:
        import optuna
    except ImportError:
        raise UserInputError("ms-ppo-tune needs Optuna: pip install -e '.[tune]' (or pip install optuna)") from None
    return optuna


@dataclass
class Param:
    """One dimension of the search space: its Optuna distribution; list/dict choices are stored as JSON text."""

    distribution: Any
    encoded: bool = False

    def value(self, raw: Any) -> Any:
        return json.loads(raw) if self.encoded else raw

    def probes(self) -> List[Any]:
        """Values checked against the settings schema before the study starts: the ends and, for floats, an inner
        point with a fraction part (so that a float range on an int setting is refused up front)."""
        dist = self.distribution
        if hasattr(dist, "choices"):
            return [self.value(choice) for choice in dist.choices]
        inner = [] if isinstance(dist.low, int) or dist.step else [dist.low + 0.377 * (dist.high - dist.low)]
        return [dist.low, dist.high, *inner]  # the ends first: an error names the one out of bounds


def _number(value: Any, where: str) -> Any:
    if isinstance(value, str):  # PyYAML reads 1e-4 (no dot) as a string
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserInputError(f"{where} must be a finite number, got {value!r}")
    return value


def _distribution(spec: Any, where: str) -> Param:
    dists = _optuna().distributions
    if not isinstance(spec, dict) or not spec:
        raise UserInputError(f"{where}: {SPEC_HELP}, got {spec!r}")
    unknown = [str(name) for name in spec if name not in (("choices",) if "choices" in spec else
                                                          ("low", "high", "log", "step"))]
    if unknown:
        raise UserInputError(f"{where}: unexpected field {', '.join(unknown)}; {SPEC_HELP}")
    if "choices" in spec:
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            raise UserInputError(f"{where}: choices must be a non-empty list, got {choices!r}")
        try:
            texts = [json.dumps(choice, sort_keys=True) for choice in choices]
        except TypeError:  # e.g. a YAML date
            raise UserInputError(f"{where}: choices must be plain values (numbers, strings, lists)") from None
        encoded = any(isinstance(choice, (list, dict)) for choice in choices)
        return Param(dists.CategoricalDistribution(texts if encoded else choices), encoded)
    missing = [name for name in ("low", "high") if name not in spec]
    if missing:
        raise UserInputError(f"{where}: missing {' and '.join(missing)}; {SPEC_HELP}")
    low, high = _number(spec["low"], f"{where}: low"), _number(spec["high"], f"{where}: high")
    step = None if spec.get("step") is None else _number(spec["step"], f"{where}: step")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise UserInputError(f"{where}: log must be true or false, got {log!r}")
    try:
        if all(isinstance(v, int) for v in (low, high, 1 if step is None else step)):
            return Param(dists.IntDistribution(low, high, log=log, step=1 if step is None else step))
        return Param(dists.FloatDistribution(float(low), float(high), log=log, step=step))
    except ValueError as error:  # low > high, log with low <= 0, step <= 0, log with step
        raise UserInputError(f"{where}: {error}") from None


def read_space(path: str) -> Dict[str, Param]:
    """The search space YAML: ``section.key: {low, high[, log][, step]}`` or ``section.key: {choices: [...]}``."""
    space: Dict[str, Param] = {}
    for key, spec in read_yaml(path).items():
        where = f"{path}: {key}"
        if not isinstance(key, str) or "." not in key:
            raise UserInputError(f"{where}: keys are dotted settings keys like ppo.learning_rate")
        if key in TUNER_KEYS:
            raise UserInputError(f"{where}: set by ms-ppo-tune for every trial ({TUNER_KEYS[key]}), not tunable")
        if key.split(".")[0] in ("env", "runtime"):
            raise UserInputError(f"{where}: not a hyperparameter (best.yaml is an algo YAML: no env section); "
                                 f"pass it with --set")
        space[key] = _distribution(spec, where)
    return space


def _blame(space_path: str, key: str, error: UserInputError) -> UserInputError:
    """A settings error for one drawn value, as a line naming the space file and key."""
    message = str(error)
    message = message[len(f"--set {key}: "):] if message.startswith(f"--set {key}: ") else message
    return UserInputError(f"{space_path}: {message if key in message else f'{key}: {message}'}")


@dataclass
class Job:
    """What every trial of a study shares."""

    env_yaml: str
    algo_yaml: Optional[str]
    steps: int
    seed: int
    eval_every: Optional[int]  # None: about EVALS_PER_TRIAL evaluations per trial
    sets: Dict[str, Any] = field(default_factory=dict)

    def overrides(self, params: Dict[str, Any], run_dir: str) -> Dict[str, Any]:
        every = {} if self.eval_every is None else {"train.eval_every": self.eval_every}
        return {**params, "train.total_steps": self.steps, "train.seed": self.seed, "train.output_dir": run_dir,
                **every, **self.sets}


class PruningCallback(Callback):
    """Reports each intermediate evaluation to the Optuna trial and stops the trial when the pruner says so. Put
    it after EvaluateCallback (which adds ``eval/return_mean``) and the loggers (the pruned iteration is logged)."""

    def __init__(self, trial: Any, log: Callable[[str], None] = print):
        self.trial = trial
        self.log = log

    def on_iteration_end(self, trainer, metrics):
        value = metrics.get("eval/return_mean")
        if value is None:
            return
        self.trial.report(float(value), step=int(trainer.global_step))
        if self.trial.should_prune():  # run_trial closes the envs
            message = f"pruned at step {trainer.global_step} (eval return {value:.3f} below the median)"
            self.log(message)
            raise _optuna().TrialPruned(message)


def run_trial(job: Job, trial: Any, params: Dict[str, Any], run_dir: str,
              log: Callable[[str], None]) -> Dict[str, Any]:
    """Train one trial in ``run_dir``; the envs are closed whether it finishes, is pruned or fails."""
    session = PPOSession(job.env_yaml, job.algo_yaml, overrides=job.overrides(params, run_dir), overwrite=True,
                         quiet=True, log=log)
    train = session.settings.train
    if job.eval_every is None:
        iterations = -(-train.total_steps // session.settings.ppo.batch_size)
        train.eval_every = max(1, iterations // EVALS_PER_TRIAL)
    # build(callbacks=...) replaces its defaults: the run's own minus TensorBoard, plot, progress bar and video.
    callbacks = [TimeCallback(), EvaluateCallback(train.eval_every), LossCallback(train.log_every),
                 CSVLogger(os.path.join(run_dir, "progress.csv")), CheckpointCallback(train.save_every),
                 PruningCallback(trial, log)]
    trainer = session.build(callbacks=callbacks)
    try:
        return trainer.train()
    finally:
        trainer.envs.close()


def _trial_log(run_dir: str, number: int) -> Callable[[str], None]:
    """Log lines go to RUN_DIR/train.log; evaluations, notices and pruning are echoed to stdout."""
    def log(line: str) -> None:
        os.makedirs(run_dir, exist_ok=True)
        with open(os.path.join(run_dir, "train.log"), "a", encoding="utf-8") as handle:
            print(line, file=handle)
        if line.startswith(("Evaluate result", "notice", "pruned")):
            print(f"trial {number}: {line}", flush=True)
    return log


def _one_trial(study: Any, job: Job, space: Dict[str, Param], study_dir: str) -> Optional[int]:
    """Ask, train, tell; returns an exit status when a signal stopped the trial, else None."""
    states = _optuna().trial.TrialState
    trial = study.ask({key: param.distribution for key, param in space.items()})
    params = {key: param.value(trial.params[key]) for key, param in space.items()}
    run_dir = os.path.join(study_dir, f"trial_{trial.number}")
    trial.set_user_attr("run_dir", run_dir)
    shown = ", ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
    print(f"trial {trial.number}: {shown}", flush=True)
    try:
        result = run_trial(job, trial, params, run_dir, _trial_log(run_dir, trial.number))
    except _optuna().TrialPruned:
        study.tell(trial, state=states.PRUNED)
        return None
    except (UserInputError, TrainingDiverged) as error:  # values that do not fit together, or diverge
        trial.set_user_attr("error", str(error))
        study.tell(trial, state=states.FAIL)
        print(f"trial {trial.number}: failed: {error}", flush=True)
        return None
    except BaseException:
        study.tell(trial, state=states.FAIL)
        raise
    if "interrupted" in result:  # SIGINT/SIGTERM: the trainer stopped after an iteration
        trial.set_user_attr("error", f"stopped by {result['interrupted']}")
        study.tell(trial, state=states.FAIL)
        print(f"stopped by {result['interrupted']} in trial {trial.number} (recorded as failed); continue with the "
              f"same command", file=sys.stderr)
        return 128 + int(getattr(signal, result["interrupted"]))
    study.tell(trial, result["eval_return_mean"])
    best = study.best_trial
    print(f"trial {trial.number}: final eval return {result['eval_return_mean']:.3f} (best: trial {best.number}, "
          f"{best.value:.3f})", flush=True)
    return None


def write_trials_csv(study: Any, space: Dict[str, Param], path: str) -> None:
    """One row per trial: number, state, value (a pruned trial's: its last evaluation), the drawn values."""
    with open(path + ".tmp", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["number", "state", "value", *space, "last_step", "duration_seconds", "run_dir", "error"])
        for t in study.get_trials(deepcopy=False):
            duration = t.duration and round(t.duration.total_seconds(), 1)
            writer.writerow([t.number, t.state.name, t.value, *(t.params.get(key) for key in space), t.last_step,
                             duration, t.user_attrs.get("run_dir"), t.user_attrs.get("error")])
    os.replace(path + ".tmp", path)


def write_best_yaml(job: Job, best: Any, space: Dict[str, Param], path: str) -> None:
    """The algo YAML's sections (translated to ms_ppo's layout) with --set and the best trial's values merged
    in; checked to load with ``--env_yaml ENV --algo_yaml best.yaml`` before it replaces the old one."""
    algo = job.algo_yaml or tuned_algo_yaml(read_yaml(job.env_yaml), job.env_yaml)
    tree: Dict[str, Any] = translate_reference(read_yaml(algo), algo) if algo else {}
    values = {**job.sets, **{key: param.value(best.params[key]) for key, param in space.items()}}
    dropped = "".join(f" --set {key}={json.dumps(value)}" for key, value in values.items() if key[:4] == "env.")
    for key, value in ((k, v) for k, v in values.items() if k[:4] != "env."):  # an algo YAML holds no env section
        *sections, name = key.split(".")
        node = tree
        for section in sections:
            node = node.setdefault(section, {})
        node[name] = value
    header = (f"# ms-ppo-tune: trial {best.number} of {os.path.dirname(path)}, final deterministic eval return "
              f"{best.value:.3f} after {job.steps} steps (seed {job.seed}); train.total_steps is the algo YAML's.\n"
              f"# train with: python train.py --env_yaml {job.env_yaml} --algo_yaml {path}{dropped}\n")
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        handle.write(header + yaml.safe_dump(tree, sort_keys=False))
    try:
        load_settings(job.env_yaml, path + ".tmp")
    except UserInputError as error:
        os.remove(path + ".tmp")
        raise TrainingFailed(f"best.yaml would not load: {error}") from None
    os.replace(path + ".tmp", path)


def _complete(study: Any) -> List[Any]:
    return study.get_trials(deepcopy=False, states=(_optuna().trial.TrialState.COMPLETE,))


def _write_outputs(study: Any, job: Job, space: Dict[str, Param], study_dir: str) -> None:
    write_trials_csv(study, space, os.path.join(study_dir, "trials.csv"))
    if _complete(study):  # else no best yet
        write_best_yaml(job, study.best_trial, space, os.path.join(study_dir, "best.yaml"))


def summary_lines(study: Any, job: Job, study_dir: str) -> List[str]:
    states = [t.state.name for t in study.get_trials(deepcopy=False)]
    counts = ", ".join(f"{states.count(s)} {s.lower()}" for s in ("COMPLETE", "PRUNED", "FAIL") if s in states)
    lines = [f"Study {os.path.join(study_dir, 'study.db')}: {len(states)} trials ({counts}), {job.steps} steps "
             f"each, seed {job.seed}; objective: the final deterministic eval return (maximised)"]
    if _complete(study):
        best, best_yaml = study.best_trial, os.path.join(study_dir, "best.yaml")
        lines.append(f"Best value: {best.value:.3f} (trial {best.number}, {best.user_attrs.get('run_dir')})")
        lines += [f"  {key}: {value}" for key, value in best.params.items()]
        lines.append(f"Best settings: {best_yaml} (train with: python train.py --env_yaml {job.env_yaml} "
                     f"--algo_yaml {best_yaml})")
    lines.append(f"All trials: {os.path.join(study_dir, 'trials.csv')}; runs: {study_dir}/trial_<n>")
    return lines


def _check_resumable(study_dir: str, url: str, config: Dict[str, Any]) -> None:
    """A new directory, or one whose study.db was made with the same arguments (``config``); writes nothing."""
    db = os.path.join(study_dir, "study.db")
    if os.path.isfile(study_dir) or (os.path.isdir(study_dir) and os.listdir(study_dir) and not os.path.isfile(db)):
        raise UserInputError(f"--study_dir {study_dir} is not a study directory (a file, or files but no study.db): "
                             f"choose another one")
    try:
        study = _optuna().load_study(study_name=STUDY_NAME, storage=url) if os.path.isfile(db) else None
        saved = study.user_attrs.get("config", config) if study else config
    except Exception as error:  # noqa: BLE001 - a foreign or damaged database: one line, not a traceback
        raise UserInputError(f"cannot open the study in {db}: {str(error).splitlines()[0]}") from None
    differ = [name for name in config if saved.get(name) != config[name]]
    if differ:
        raise UserInputError(f"--study_dir {study_dir} holds a study made with other arguments ({', '.join(differ)} "
                             f"differ): repeat its command to continue it, or choose another --study_dir")


def build_tune_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="tune.py", description="Search PPO hyperparameters with Optuna (TPE + median pruning).")
    parser.add_argument("--env_yaml", required=True, help="environment YAML")
    parser.add_argument("--algo_yaml", default=None, help="algorithm YAML (default: the one the env YAML names)")
    parser.add_argument("--space", required=True, help="search space YAML: section.key: {low: L, high: H} ...")
    parser.add_argument("--trials", type=positive, required=True, help="finished (complete or pruned) trials the "
                        "study should hold; a resumed study runs the missing ones")
    parser.add_argument("--steps", type=positive, required=True, help="environment steps per trial")
    parser.add_argument("--seed", type=non_negative, default=0, help="training seed of every trial; seeds TPE")
    parser.add_argument("--study_dir", default=None, help="study directory (default runs/tune_<env>_<space>)")
    parser.add_argument("--eval_every", type=non_negative, default=None, help="iterations between evaluations "
                        f"(default: about {EVALS_PER_TRIAL} per trial; 0: only the final one, no pruning)")
    parser.add_argument("--startup_trials", type=non_negative, default=5,
                        help="trials drawn at random before TPE; pruning starts once this many completed (default 5)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a YAML key")
    return parser


def _prepare(args: argparse.Namespace) -> tuple:
    """Everything checked before anything is written: the space, --set, the settings each drawn value makes."""
    space = read_space(args.space)
    sets: Dict[str, Any] = {}
    for text in args.set:
        key, value = parse_override(text)
        if key in TUNER_KEYS or key in space:
            raise UserInputError(f"--set {key}: " + (f"set by ms-ppo-tune for every trial; use {TUNER_KEYS[key]}"
                                                     if key in TUNER_KEYS else f"also in the space {args.space}"))
        sets[key] = value
    job = Job(args.env_yaml, args.algo_yaml, args.steps, args.seed, args.eval_every, sets)
    study_dir = args.study_dir or os.path.join("runs", "tune_" + "_".join(
        os.path.splitext(os.path.basename(path))[0] for path in (args.env_yaml, args.space)))
    base = job.overrides({}, os.path.join(study_dir, "trial_0"))
    PPOSession(job.env_yaml, job.algo_yaml, overrides=base, log=print)  # the YAMLs, --set and the env id
    for key, param in space.items():
        for value in param.probes():
            try:
                load_settings(job.env_yaml, job.algo_yaml, {**base, key: value})
            except UserInputError as error:
                raise _blame(args.space, key, error) from None
    config = {"env_yaml": os.path.abspath(job.env_yaml), "steps": job.steps, "seed": job.seed,
              "algo_yaml": job.algo_yaml and os.path.abspath(job.algo_yaml), "eval_every": job.eval_every,
              "set": job.sets, "space": read_yaml(args.space)}
    return space, job, study_dir, json.loads(json.dumps(config, default=str))  # as study.db stores it


def _tune(argv: List[str]) -> Optional[int]:
    args = build_tune_parser().parse_args(argv)
    space, job, study_dir, config = _prepare(args)
    url = "sqlite:///" + os.path.abspath(os.path.join(study_dir, "study.db"))
    _check_resumable(study_dir, url, config)
    optuna = _optuna()
    states = optuna.trial.TrialState
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    os.makedirs(study_dir, exist_ok=True)
    with open(os.path.join(study_dir, ".lock"), "w", encoding="utf-8") as lock:
        try:  # one process per study: a RUNNING trial found below was left by a killed one
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise UserInputError(f"another ms-ppo-tune is running the study in {study_dir}") from None
        study = optuna.create_study(storage=url, study_name=STUDY_NAME, direction="maximize", load_if_exists=True,
                                    pruner=optuna.pruners.MedianPruner(n_startup_trials=args.startup_trials))
        if "config" not in study.user_attrs:
            study.set_user_attr("config", config)
        for stale in study.get_trials(deepcopy=False, states=(states.RUNNING,)):
            print(f"notice: trial {stale.number} was left running by an earlier invocation: recorded as failed")
            study.tell(stale.number, state=states.FAIL)
        study.sampler = optuna.samplers.TPESampler(  # seeded by the history: a resumed study draws new values
            n_startup_trials=args.startup_trials, seed=args.seed + len(study.trials))
        todo = args.trials - len(study.get_trials(deepcopy=False, states=(states.COMPLETE, states.PRUNED)))
        if todo <= 0:
            print(f"the study already has {args.trials} finished trials (--trials {args.trials}): nothing to run")
        for _ in range(max(todo, 0)):
            status = _one_trial(study, job, space, study_dir)
            _write_outputs(study, job, space, study_dir)
            if status is not None:
                return status
        _write_outputs(study, job, space, study_dir)
        print("\n".join(summary_lines(study, job, study_dir)))
    if not _complete(study):
        raise TrainingFailed(f"no trial of the study in {study_dir} completed: see {study_dir}/trials.csv")
    return 0


def tune_main(argv: Optional[List[str]] = None) -> int:
    """``python tune.py ...``; returns the exit status (2 on bad input, 1 when no trial completed)."""
    return run_command(_tune, argv)
