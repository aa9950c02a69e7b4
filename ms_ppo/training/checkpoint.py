"""Checkpoints: MindSpore ``.ckpt`` weights (+ optimiser state) beside a JSON file of everything else.

A checkpoint ``<dir>/step_<N>.ckpt`` has ``<dir>/step_<N>.json`` next to it (format version, ms_ppo and
MindSpore versions, settings and their hash, step counters, normalisation statistics, RNG state), optionally
``<dir>/step_<N>.state.pkl`` (environments and episodes in progress, see ms_ppo.training.state), and
``<dir>/latest`` names the newest one.
Each file is written to a temporary name, flushed to disk and renamed, and the directory is flushed after the
rename; the side files go first and the ``.ckpt`` last, so a ``.ckpt`` on disk always has its metadata;
``latest`` is updated after that. The metadata holds the SHA-256 of the weights and of the environment state, so
a file damaged later (truncated, bit-flipped) is recognised: loading a directory picks the newest intact
checkpoint and says which damaged one it passed over. A crash at any moment leaves the previous checkpoints
intact.
"""

from __future__ import annotations

import errno
import glob
import hashlib
import json
import logging
import os
import shutil
import tempfile
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

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
MIN_FREE_BYTES = 1 << 20  # a failed write with less than this left on the device is taken for a full disk
# Settings that may change when a run is resumed without it being a different experiment.
RESUMABLE_KEYS = ("train.total_steps", "train.output_dir", "train.eval_every", "train.eval_episodes",
                  "train.save_every", "train.log_every", "runtime.")


def _fsync_directory(directory: str) -> None:
    """Make a rename in ``directory`` durable: without it a power loss can drop the renamed file."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_temporary(directory: str, suffix: str, write) -> str:
    """``write(tmp)`` into a new temporary file of ``directory``, flushed to disk; return its path."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp_", suffix=suffix)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
    except BaseException:
        if os.path.exists(tmp):  # MindSpore removes its own failed file
            os.remove(tmp)
        raise
    return tmp


def _publish(tmp: str, path: str) -> None:
    """Rename a finished temporary file to its name, durably."""
    try:
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    _fsync_directory(os.path.dirname(os.path.abspath(path)))


def _atomic_write(path: str, write) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    _publish(_write_temporary(directory, os.path.splitext(path)[1], write), path)


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
    records = [{"name": name, "data": param} for name, param in params.items()]
    weights = _write_temporary(directory, ".ckpt", lambda tmp: _save_weights(records, tmp))
    try:
        checksums = {"ckpt": sha256_of(weights)}  # verified on load: a damaged file is never loaded
        if state is not None:
            checksums["state"] = hashlib.sha256(state).hexdigest()
        _write_text(stem + ".json", json.dumps({**version_info(), **meta, "sha256": checksums}, indent=1))
        if state is not None:
            _write_bytes(stem + EPISODE_SUFFIX, state)
        _publish(weights, stem + ".ckpt")
    finally:  # a failed save (a full disk) leaves no temporary behind; the older checkpoints are untouched
        if os.path.exists(weights):
            os.remove(weights)
    _write_text(os.path.join(directory, LATEST), os.path.basename(stem) + "\n")
    for old in list_checkpoints(directory)[:-keep] if keep > 0 else []:
        for path in (old, *(old[:-len(".ckpt")] + suffix for suffix in SIDE_SUFFIXES)):
            if os.path.exists(path):
                os.remove(path)
    return stem + ".ckpt"


def _save_weights(records: List[Dict[str, Any]], path: str) -> None:
    """mindspore.save_checkpoint, with a full disk reported as the OSError it is (MindSpore logs a CRITICAL line
    and raises its own error; the caller reports the failure instead)."""
    logging.disable(logging.CRITICAL)  # for this call only: MindSpore's logger is a standard logging.Logger
    try:
        mindspore.save_checkpoint(records, path)
    except BaseException as error:
        for leftover in glob.glob(glob.escape(os.path.splitext(path)[0]) + ".*"):  # MindSpore's <stem>.tmp
            if leftover != path and os.path.exists(leftover):
                os.remove(leftover)
        if isinstance(error, (RuntimeError, ValueError)) and \
                shutil.disk_usage(os.path.dirname(path)).free < MIN_FREE_BYTES:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path) from error
        raise
    finally:
        logging.disable(logging.NOTSET)


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


def damage(ckpt: str) -> Optional[str]:
    """Why ``ckpt`` cannot be trusted (metadata missing or unreadable, a checksum that does not match), or None.
    Checkpoints written before checksums existed are checked for their metadata only."""
    meta_path = ckpt[:-len(".ckpt")] + ".json"
    try:
        with open(meta_path, encoding="utf-8") as handle:
            meta = json.load(handle)
    except FileNotFoundError:
        return "its metadata file is missing"
    except (OSError, ValueError):
        return "its metadata file is unreadable"
    checksums = meta.get("sha256", {}) if isinstance(meta, dict) else None
    if not isinstance(checksums, dict):
        return "its metadata is not a mapping of checksums"
    if "ckpt" in checksums and sha256_of(ckpt) != checksums["ckpt"]:
        return "its weights do not match their checksum (truncated or altered)"
    state = ckpt[:-len(".ckpt")] + EPISODE_SUFFIX
    if "state" in checksums and (not os.path.exists(state) or sha256_of(state) != checksums["state"]):
        return "its environment state does not match its checksum"
    return None


def resolve(path: str, notify: Optional[Callable[[str], None]] = None) -> str:
    """A ``.ckpt`` file, a checkpoint directory or a run directory (its ``ckpt/``) -> the ``.ckpt`` to load.

    A directory gives its newest intact checkpoint: a damaged one (``damage``) is passed over for the one before,
    with a notice naming both. A ``.ckpt`` named explicitly must be intact.
    """
    if os.path.isdir(path):
        # The newest .ckpt, not the `latest` pointer: a crash between the two writes leaves the pointer behind.
        run_ckpt = os.path.join(path, CHECKPOINT_DIR)
        directory = run_ckpt if os.path.isdir(run_ckpt) else path
        found = list_checkpoints(directory)
        if not found:
            raise UserInputError(f"no checkpoint found in {path}")
        damaged = []
        for ckpt in reversed(found):
            why = damage(ckpt)
            if why is None:
                if damaged and notify is not None:
                    notify(f"notice: checkpoint {damaged[0][0]} is damaged ({damaged[0][1]}); using the previous "
                           f"intact one, {ckpt}")
                return ckpt
            damaged.append((ckpt, why))
        raise UserInputError(f"no intact checkpoint in {path}: the newest, {damaged[0][0]}, is damaged "
                             f"({damaged[0][1]}), and so is every older one")
    if not os.path.exists(path):
        raise UserInputError(f"checkpoint not found: {path}")
    if not path.endswith(".ckpt"):
        raise UserInputError(f"not a checkpoint: {path} (expected a .ckpt file, a checkpoint directory or a run "
                             f"directory)")
    why = damage(path)
    if why is not None and os.path.exists(path[:-len(".ckpt")] + ".json"):
        raise UserInputError(f"checkpoint {path} is damaged ({why}); pass its run directory to use the newest "
                             f"intact one")
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


def load(path: str, params: Dict[str, Parameter], optional: Sequence[str] = (),
         notify: Optional[Callable[[str], None]] = None) -> Tuple[str, Dict[str, Any]]:
    """Load ``params`` (named as in ``save``) from a checkpoint path (see ``resolve``).

    Every parameter is checked before any is assigned, so a mismatch leaves them untouched. Names starting with
    one of ``optional`` may be absent (e.g. the loss scale of an fp16 run when the checkpoint came from fp32).
    :return: (the .ckpt path loaded, its metadata).
    :raises UserInputError: when the file is missing, unreadable, or made for a different network.
    """
    ckpt = resolve(path, notify)
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
