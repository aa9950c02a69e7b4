"""Checkpoints: MindSpore ``.ckpt`` weights (+ optimiser state) beside a JSON file of everything else.

A checkpoint ``<dir>/step_<N>.ckpt`` has ``<dir>/step_<N>.json`` next to it (format version, ms_ppo and
MindSpore versions, settings and their hash, step counters, normalisation statistics, RNG state), optionally
``<dir>/step_<N>.state.pkl`` (environments and episodes in progress, see ms_ppo.training.state), and
``<dir>/latest`` names the newest one.
Each file is written to a temporary name, flushed to disk and renamed; the side files go first and the
``.ckpt`` last, so a ``.ckpt`` on disk always has its metadata; ``latest`` is updated after that. A crash at any
moment leaves the previous checkpoints intact, and loading a directory picks the newest ``.ckpt``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from typing import Any, Dict, List, Optional, Sequence, Tuple

import mindspore
from mindspore import Parameter, Tensor, nn

from ms_ppo.errors import UserInputError
from ms_ppo.version import __version__

LATEST = "latest"
CHECKPOINT_DIR = "ckpt"  # RUN_DIR/ckpt: the newest checkpoints
BEST_DIR = "best"  # RUN_DIR/best: the checkpoint of the best evaluation
EPISODE_SUFFIX = ".state.pkl"
FORMAT_VERSION = 1
SIDE_SUFFIXES = (".json", EPISODE_SUFFIX)
# Settings that may change when a run is resumed without it being a different experiment.
RESUMABLE_KEYS = ("train.total_steps", "train.output_dir", "train.eval_every", "train.eval_episodes",
                  "train.save_every", "train.log_every", "runtime.")


def _atomic_write(path: str, write) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp_", suffix=os.path.splitext(path)[1])
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _write_bytes(path: str, data: bytes) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            handle.write(data)
    _atomic_write(path, write)


def _write_text(path: str, text: str) -> None:
    _write_bytes(path, text.encode("utf-8"))


def named_parameters(cells: Dict[str, nn.Cell]) -> Dict[str, Parameter]:
    """``{"net": net, "optimizer": opt}`` -> ``{"net.actor.0.weight": p, "optimizer.moment1.actor.0.weight": m}``.

    Names follow each Cell's structure, not ``Parameter.name`` (graph compilation renames those), and a
    parameter shared by several cells (an optimiser lists the weights it updates) is stored once.
    """
    named: Dict[str, Parameter] = {}
    seen = set()
    for prefix, cell in cells.items():
        for name, param in cell.parameters_and_names():
            if id(param) not in seen:
                seen.add(id(param))
                named[f"{prefix}.{name}"] = param
    return named


def settings_hash(settings: Dict[str, Any]) -> str:
    """A short hash of the settings that define the experiment (``RESUMABLE_KEYS`` left out)."""
    flat = {key: value for key, value in _flatten(settings).items() if not key.startswith(RESUMABLE_KEYS)}
    return hashlib.sha256(json.dumps(flat, sort_keys=True).encode()).hexdigest()[:16]


def settings_diff(saved: Dict[str, Any], current: Dict[str, Any]) -> List[str]:
    """``["ppo.learning_rate: 0.0003 -> 0.001", ...]`` for experiment settings that differ (RESUMABLE_KEYS aside)."""
    old, new = _flatten(saved), _flatten(current)
    return [f"{key}: {old.get(key)!r} -> {new.get(key)!r}" for key in sorted(set(old) | set(new))
            if not key.startswith(RESUMABLE_KEYS) and old.get(key) != new.get(key)]


def _flatten(tree: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    flat: Dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value and prefix == "":
            flat.update(_flatten(value, f"{key}."))
        else:
            flat[prefix + key] = value
    return flat


def version_info() -> Dict[str, Any]:
    return {"format": FORMAT_VERSION, "ms_ppo_version": __version__, "mindspore_version": mindspore.__version__}


def save(directory: str, step: int, params: Dict[str, Parameter], meta: Dict[str, Any],
         state: Optional[bytes] = None, keep: int = 5) -> str:
    """Write ``step_<step>.ckpt`` (``params``, named as in ``named_parameters``), its JSON metadata and the
    optional opaque ``state``; keep the newest ``keep`` checkpoints.

    :return: the path of the ``.ckpt`` file.
    """
    os.makedirs(directory, exist_ok=True)
    _remove_stale_temporaries(directory)
    stem = os.path.join(directory, f"step_{step:010d}")
    _write_text(stem + ".json", json.dumps({**version_info(), **meta}, indent=1))
    if state is not None:
        _write_bytes(stem + EPISODE_SUFFIX, state)
    records = [{"name": name, "data": param} for name, param in params.items()]
    _atomic_write(stem + ".ckpt", lambda tmp: mindspore.save_checkpoint(records, tmp))
    _write_text(os.path.join(directory, LATEST), os.path.basename(stem) + "\n")
    for old in list_checkpoints(directory)[:-keep] if keep > 0 else []:
        for path in (old, *(old[:-len(".ckpt")] + suffix for suffix in SIDE_SUFFIXES)):
            if os.path.exists(path):
                os.remove(path)
    return stem + ".ckpt"


def _remove_stale_temporaries(directory: str) -> None:
    """Temporary files left by a process killed mid-write (never valid checkpoints)."""
    for name in os.listdir(directory):
        if name.startswith(".tmp_"):
            try:
                os.remove(os.path.join(directory, name))
            except OSError:
                pass


def list_checkpoints(directory: str) -> List[str]:
    """The ``.ckpt`` files of a checkpoint directory, oldest first."""
    if not os.path.isdir(directory):
        return []
    return sorted(os.path.join(directory, name) for name in os.listdir(directory)
                  if name.startswith("step_") and name.endswith(".ckpt"))


def resolve(path: str) -> str:
    """A ``.ckpt`` file, a checkpoint directory or a run directory (its ``ckpt/``) -> the ``.ckpt`` to load."""
    if os.path.isdir(path):
        # The newest .ckpt, not the `latest` pointer: a crash between the two writes leaves the pointer behind.
        run_ckpt = os.path.join(path, CHECKPOINT_DIR)
        directory = run_ckpt if os.path.isdir(run_ckpt) else path
        found = list_checkpoints(directory)
        if not found:
            raise UserInputError(f"no checkpoint found in {path}")
        return found[-1]
    if not os.path.exists(path):
        raise UserInputError(f"checkpoint not found: {path}")
    if not path.endswith(".ckpt"):
        raise UserInputError(f"not a checkpoint: {path} (expected a .ckpt file, a checkpoint directory or a run "
                             f"directory)")
    return path


def best_checkpoint_dir(run_dir: str) -> str:
    """``RUN_DIR/best`` for ``eval.py --best``, checked to hold a checkpoint."""
    if not os.path.isdir(run_dir):
        raise UserInputError(f"--best needs a run directory, not {run_dir}")
    best = os.path.join(run_dir, BEST_DIR)
    if not list_checkpoints(best):
        raise UserInputError(f"{run_dir} has no best checkpoint ({BEST_DIR}/ is written after the first "
                             f"evaluation)")
    return best


def load(path: str, params: Dict[str, Parameter], optional: Sequence[str] = ()) -> Tuple[str, Dict[str, Any]]:
    """Load ``params`` (named as in ``save``) from a checkpoint path (see ``resolve``).

    Every parameter is checked before any is assigned, so a mismatch leaves them untouched. Names starting with
    one of ``optional`` may be absent (e.g. the loss scale of an fp16 run when the checkpoint came from fp32).
    :return: (the .ckpt path loaded, its metadata).
    :raises UserInputError: when the file is missing, unreadable, or made for a different network.
    """
    ckpt = resolve(path)
    meta = read_meta(ckpt)
    if meta.get("format", FORMAT_VERSION) > FORMAT_VERSION:
        raise UserInputError(f"checkpoint {ckpt} has format {meta['format']}, newer than this ms_ppo "
                             f"({FORMAT_VERSION}, version {version_info()['ms_ppo_version']}): upgrade ms_ppo")
    try:
        stored = mindspore.load_checkpoint(ckpt)
    except Exception as error:  # MindSpore raises ValueError/RuntimeError for corrupt or foreign files
        raise UserInputError(f"cannot read checkpoint {ckpt}: {str(error).splitlines()[0]}") from None
    expected = {name: param for name, param in params.items()
                if name in stored or not (optional and name.startswith(tuple(optional)))}
    for name, param in expected.items():
        hint = "(was it trained on another environment or network shape?)"
        if name not in stored:
            raise UserInputError(f"checkpoint {ckpt} does not fit this network: no parameter '{name}' {hint}")
        if tuple(stored[name].shape) != tuple(param.shape):
            raise UserInputError(f"checkpoint {ckpt} does not fit this network: '{name}' has shape "
                                 f"{tuple(stored[name].shape)}, the network needs {tuple(param.shape)} {hint}")
    for name, param in expected.items():
        param.set_data(Tensor(stored[name].asnumpy(), param.dtype))
    return ckpt, meta


def read_meta(ckpt: str) -> Dict[str, Any]:
    meta_path = ckpt[:-len(".ckpt")] + ".json" if ckpt.endswith(".ckpt") else ckpt + ".json"
    if not os.path.exists(meta_path):
        return {}
    try:
        with open(meta_path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as error:
        raise UserInputError(f"cannot read checkpoint metadata {meta_path}: {error}") from None


def read_episode_state(ckpt: str) -> Optional[bytes]:
    """The opaque ``state`` saved with a ``.ckpt`` (see ``save``), or None when it has none."""
    path = ckpt[:-len(".ckpt")] + EPISODE_SUFFIX
    if not os.path.exists(path):
        return None
    with open(path, "rb") as handle:
        return handle.read()
