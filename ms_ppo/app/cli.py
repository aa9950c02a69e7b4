"""Command-line entry points: ``train.py`` / ``ms-ppo-train`` and ``eval.py`` / ``ms-ppo-eval``."""

from __future__ import annotations

import argparse
import faulthandler
import io
import os
import signal
import sys
import typing
from typing import Any, Callable, Dict, List, Optional

from pydantic.fields import FieldInfo

from ms_ppo.app.arguments import Parser, at_most, boolean, non_negative, positive, run_command
from ms_ppo.app.evaluate import evaluate_checkpoint
from ms_ppo.app.export import FORMATS, export_policy
from ms_ppo.app.session import PPOSession
from ms_ppo.config import Settings, parse_override
from ms_ppo.distribution.placement import check_policy
from ms_ppo.errors import TrainingFailed
from ms_ppo.runtime.device import require_device
from ms_ppo.runtime.distributed import (
    FINISHED_MARK,
    check_local_workers,
    failed_workers,
    launch,
    start_heartbeat,
    under_msrun,
    worker_banner,
)
from ms_ppo.training.checkpoint import best_checkpoint_dir

_HERE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Shipped YAMLs by name (ms_ppo/config/presets.py); the env YAML names its tuned algo YAML itself.
DEFAULT_ENV_YAML = "HalfCheetah-v5"
DEFAULT_ALGO_YAML = "ppo_halfcheetah"


# Flag -> settings key: the only part of the command line written by hand. Type, choices, default and help of
# each flag are read from the schema (ms_ppo/config/schema.py).
FLAG_KEYS = {
    "device_target": "runtime.device_target", "precision_mode": "runtime.precision_mode",
    "enable_distribute": "runtime.enable_distribute", "worker_num": "runtime.worker_num",
    "distribution_policy": "runtime.distribution_policy",
    "cpu_threads": "runtime.cpu_threads", "graph_op_run": "runtime.graph_op_run",
    "total_steps": "train.total_steps", "seed": "train.seed", "output_dir": "train.output_dir",
    "eval_every": "train.eval_every", "save_every": "train.save_every", "video": "train.video",
    "log_format": "train.log_format", "track": "train.track",
}
EVAL_FLAGS = ("device_target", "seed")  # eval.py takes these; the others are training flags
# Flags that may be given without a value (MindSpore Reinforcement's `--enable_distribute`, `--video`).
FLAG_CONST = {"enable_distribute": True, "video": "gif"}


def _schema_field(key: str) -> FieldInfo:
    section, name = key.split(".")
    return Settings.model_fields[section].annotation.model_fields[name]


def _literal_choices(annotation: Any) -> Optional[List[Any]]:
    """The values of a Literal (or Optional[Literal]) annotation, else None."""
    if typing.get_origin(annotation) is typing.Literal:
        return list(typing.get_args(annotation))
    for arg in typing.get_args(annotation):
        choices = _literal_choices(arg)
        if choices is not None:
            return choices
    return None


def _bounds(info: FieldInfo) -> Dict[str, Any]:
    return {name: getattr(item, name) for item in info.metadata for name in ("ge", "le") if hasattr(item, name)}


def flag_options(flag: str) -> Dict[str, Any]:
    """argparse options for ``--flag``, derived from its settings field: choices from a Literal (or a small
    bounded int), whole numbers with the field's lower bound, booleans; help from the field's description."""
    key = FLAG_KEYS[flag]
    info = _schema_field(key)
    default = "none" if info.default is None else info.default
    options: Dict[str, Any] = {"default": None, "help": f"{info.description} (default: {default}; {key})"}
    choices = _literal_choices(info.annotation)
    bounds = _bounds(info)
    if choices is not None:
        options["choices"] = choices
    elif info.annotation is bool:
        # A switch: absent means its default, also over a YAML or a resumed run's settings (a run resumed
        # without --enable_distribute runs in one process).
        options.update(type=boolean, default=info.default)
    elif "ge" in bounds and "le" in bounds and bounds["le"] - bounds["ge"] <= 10:  # a few values: list them
        options.update(type=int, choices=list(range(bounds["ge"], bounds["le"] + 1)))
    elif "ge" in bounds:
        options["type"] = positive if bounds["ge"] >= 1 else non_negative
        if "le" in bounds:
            options["type"] = at_most(bounds["le"], options["type"])
    if flag in FLAG_CONST:
        options.update(nargs="?", const=FLAG_CONST[flag])
    return options


def _add_setting_flags(parser: argparse.ArgumentParser, flags) -> None:
    for flag in flags:
        parser.add_argument(f"--{flag}", **flag_options(flag))


def _common_flags(parser: argparse.ArgumentParser, env_yaml_help: str) -> None:
    parser.add_argument("--env_yaml", default=None, help=env_yaml_help)
    parser.add_argument("--algo_yaml", default=None,
                        help="algorithm YAML (default: the one the env YAML names under algo_yaml, else the "
                             "generic defaults)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override any YAML key, e.g. --set ppo.gamma=0.98 (repeatable)")


def build_train_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="train.py", description="Train PPO with MindSpore on a Gymnasium environment.")
    parser.add_argument("--episode", type=positive, default=None,
                        help="training iterations (rollout + update), as in MindSpore Reinforcement; "
                             "overrides train.total_steps")
    _add_setting_flags(parser, FLAG_KEYS)
    parser.add_argument("--overwrite", action="store_true", help="allow an existing, non-empty --output_dir")
    parser.add_argument("--quiet", action="store_true", help="no progress bar, log lines only")
    parser.add_argument("--resume", default=None, metavar="RUN_DIR|CKPT",
                        help="continue a run from its newest checkpoint (or the given .ckpt), with the settings "
                             "saved in it unless YAMLs are given")
    _common_flags(parser, "environment YAML (default: env_yaml/HalfCheetah-v5.yaml)")
    return parser


def _overrides(args: argparse.Namespace) -> Dict[str, Any]:
    overrides: Dict[str, Any] = {}
    for text in args.set:
        key, value = parse_override(text)
        overrides[key] = value
    for flag, key in FLAG_KEYS.items():
        value = getattr(args, flag, None)
        if value is not None:
            overrides[key] = value
    return overrides


def _session(args: argparse.Namespace, log: Callable[[str], None]):
    """The training session: from the YAMLs, or from the checkpoint's own settings for ``--resume`` alone."""
    kwargs = dict(overrides=_overrides(args), overwrite=args.overwrite, quiet=args.quiet, log=log)
    if args.resume and args.env_yaml is None and args.algo_yaml is None:
        return PPOSession.from_checkpoint(args.resume, **kwargs)
    args.env_yaml = args.env_yaml or DEFAULT_ENV_YAML
    return PPOSession(args.env_yaml, args.algo_yaml, **kwargs)


def _train(argv: List[str]) -> Optional[int]:
    args = build_train_parser().parse_args(argv)
    from tqdm import tqdm

    # `kill -USR1 <pid>` prints every thread's Python stack to stderr and training goes on: where is a slow or
    # hung run (a worker waiting in a collective, an environment stuck in step)?
    try:
        faulthandler.register(signal.SIGUSR1, all_threads=True, chain=False)
    except (AttributeError, ValueError, io.UnsupportedOperation):  # stderr is not a file (captured, in a notebook)
        pass
    if os.environ.get("MS_ROLE") == "MS_WORKER":
        print(worker_banner(), flush=True)
        log_dir = os.path.join(args.output_dir or "", "msrun_logs")
        if args.output_dir and os.path.isdir(log_dir):  # launched by train.py --enable_distribute: it watches
            start_heartbeat(log_dir, int(os.environ.get("RANK_ID", "0")))
    session = _session(args, tqdm.write)
    if args.enable_distribute and not under_msrun():
        runtime = session.settings.runtime
        check_local_workers(runtime.worker_num, runtime.device_target)
        check_policy(runtime.distribution_policy, runtime.worker_num, runtime.device_target)
        require_device(runtime.device_target)  # here, in one line, rather than in every worker
        # This process only launches: it checks the settings and the run directory, then msrun starts the
        # workers with the same flags, writing into that directory.
        if args.resume:
            session.continue_in_run_dir(args.resume)
        output_dir = session.prepare_output_dir()
        script = os.path.join(_HERE, "train.py")
        log_dir = os.path.join(output_dir, "msrun_logs")
        status = launch(session.settings.runtime.worker_num, script,
                        [*argv, "--output_dir", output_dir, "--overwrite"], log_dir)
        if status:
            raise TrainingFailed(f"distributed training failed (msrun exit status {status}): "
                                 f"{failed_workers(log_dir)}; the last checkpoint is in {output_dir}/ckpt")
        print(f"result written to {os.path.join(output_dir, 'result.json')}")
        return 0
    result = session.run(episode=args.episode, resume=args.resume)
    if under_msrun():
        print(FINISHED_MARK, flush=True)  # the launcher tells finished workers from failed ones by this line
    if "interrupted" in result:
        run_dir = session.settings.train.output_dir
        print(f"stopped by {result['interrupted']}; continue with: python train.py --resume {run_dir}",
              file=sys.stderr)
        return 128 + int(getattr(signal, result["interrupted"]))
    return 0


def train_main(argv: Optional[List[str]] = None) -> int:
    """``python train.py ...``; returns the exit status (2 on bad input)."""
    return run_command(_train, argv)


def build_eval_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="eval.py", description="Evaluate a ms_ppo checkpoint.")
    parser.add_argument("--ckpt", required=True, help="a .ckpt file, a checkpoint directory or a run directory")
    parser.add_argument("--best", action="store_true",
                        help="evaluate the run's best checkpoint (RUN_DIR/best) instead of its newest")
    parser.add_argument("--episodes", type=positive, default=10, help="evaluation episodes (default: 10)")
    parser.add_argument("--video", dest="video_file", default=None, metavar="OUT.gif|OUT.mp4",
                        help="also record the first evaluation episode to this file")
    parser.add_argument("--render", default=None, choices=["human"],
                        help="also play the first evaluation episode in a window (needs a display)")
    _add_setting_flags(parser, EVAL_FLAGS)
    _common_flags(parser, "environment YAML (default: the settings stored with the checkpoint)")
    return parser


def _eval(argv: List[str]) -> Optional[int]:
    args = build_eval_parser().parse_args(argv)
    ckpt = best_checkpoint_dir(args.ckpt) if args.best else args.ckpt
    returns = evaluate_checkpoint(ckpt, args.env_yaml, args.algo_yaml, _overrides(args), args.episodes,
                                  video=args.video_file, render=args.render)
    print(f"Evaluate result over {returns.size} episodes: return {returns.mean():.2f} +- {returns.std():.2f}")
    return 0


def eval_main(argv: Optional[List[str]] = None) -> int:
    """``python eval.py --ckpt ...``; returns the exit status (2 on bad input)."""
    return run_command(_eval, argv)


def build_export_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="export.py", description="Export a trained policy for deployment (MindIR or ONNX).")
    parser.add_argument("--ckpt", required=True, help="a .ckpt file, a checkpoint directory or a run directory")
    parser.add_argument("--best", action="store_true", help="export the run's best checkpoint (RUN_DIR/best)")
    parser.add_argument("--format", default="MINDIR", type=str.upper, choices=sorted(FORMATS),
                        help="MINDIR (mindspore.load + nn.GraphCell) or ONNX (default: MINDIR)")
    parser.add_argument("--out", required=True, help="output file (the format's extension is added if missing)")
    parser.add_argument("--batch", type=positive, default=1, help="batch size the graph is exported for (default 1)")
    parser.add_argument("--device_target", **flag_options("device_target"))
    return parser


def _export(argv: List[str]) -> Optional[int]:
    args = build_export_parser().parse_args(argv)
    ckpt = best_checkpoint_dir(args.ckpt) if args.best else args.ckpt
    export_policy(ckpt, args.out, args.format, args.batch)
    return 0


def export_main(argv: Optional[List[str]] = None) -> int:
    """``python export.py --ckpt RUN_DIR --out policy``; returns the exit status (2 on bad input)."""
    return run_command(_export, argv)
