"""Checkpoints: MindSpore ``.ckpt`` weights (+ optimiser state) beside a JSON file of everything else.

A checkpoint ``<dir>/step_<N>.ckpt`` has ``<dir>/step_<N>.json`` next to it (step counters, normalisation
statistics, RNG state, settings, versions) and ``<dir>/latest`` names the newest one. Each file is written to a
temporary name, flushed to disk and renamed, and ``latest`` is updated last: a crash leaves the previous
checkpoint intact.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Dict, List, Tuple

import mindspore
from mindspore import Parameter, Tensor, nn

from ms_ppo.errors import UserInputError

LATEST = "latest"


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


def _write_text(path: str, text: str) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
    _atomic_write(path, write)


def _named_parameters(cells: Dict[str, nn.Cell]) -> Dict[str, Parameter]:
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


def save(directory: str, step: int, cells: Dict[str, nn.Cell], meta: Dict[str, Any], keep: int = 5) -> str:
    """Write ``step_<step>.ckpt`` (parameters of ``cells``) and its JSON metadata; keep the newest ``keep``.

    :return: the path of the ``.ckpt`` file.
    """
    os.makedirs(directory, exist_ok=True)
    stem = os.path.join(directory, f"step_{step:010d}")
    params = [{"name": name, "data": param} for name, param in _named_parameters(cells).items()]
    _atomic_write(stem + ".ckpt", lambda tmp: mindspore.save_checkpoint(params, tmp))
    _write_text(stem + ".json", json.dumps(meta, indent=1))
    _write_text(os.path.join(directory, LATEST), os.path.basename(stem) + "\n")
    for old in list_checkpoints(directory)[:-keep] if keep > 0 else []:
        for path in (old, old[:-len(".ckpt")] + ".json"):
            if os.path.exists(path):
                os.remove(path)
    return stem + ".ckpt"


def list_checkpoints(directory: str) -> List[str]:
    """The ``.ckpt`` files of a checkpoint directory, oldest first."""
    if not os.path.isdir(directory):
        return []
    return sorted(os.path.join(directory, name) for name in os.listdir(directory)
                  if name.startswith("step_") and name.endswith(".ckpt"))


def resolve(path: str) -> str:
    """A ``.ckpt`` file, a checkpoint directory or a run directory (its ``ckpt/``) -> the ``.ckpt`` to load."""
    if os.path.isdir(path):
        directory = os.path.join(path, "ckpt") if os.path.isdir(os.path.join(path, "ckpt")) else path
        pointer = os.path.join(directory, LATEST)
        if os.path.exists(pointer):
            with open(pointer, encoding="utf-8") as handle:
                candidate = os.path.join(directory, handle.read().strip() + ".ckpt")
            if os.path.exists(candidate):
                return candidate
        found = list_checkpoints(directory)
        if not found:
            raise UserInputError(f"no checkpoint found in {path}")
        return found[-1]
    if not os.path.exists(path):
        raise UserInputError(f"checkpoint not found: {path}")
    return path


def load(path: str, cells: Dict[str, nn.Cell]) -> Tuple[str, Dict[str, Any]]:
    """Load parameters into ``cells`` (named as in ``save``) from a checkpoint path (see ``resolve``).

    Every parameter is checked before any is assigned, so a mismatch leaves the cells untouched.
    :return: (the .ckpt path loaded, its metadata).
    :raises UserInputError: when the file is missing, unreadable, or made for a different network.
    """
    ckpt = resolve(path)
    try:
        stored = mindspore.load_checkpoint(ckpt)
    except Exception as error:  # MindSpore raises ValueError/RuntimeError for corrupt or foreign files
        raise UserInputError(f"cannot read checkpoint {ckpt}: {str(error).splitlines()[0]}") from None
    expected = _named_parameters(cells)
    for name, param in expected.items():
        hint = "(was it trained on another environment or network shape?)"
        if name not in stored:
            raise UserInputError(f"checkpoint {ckpt} does not fit this network: no parameter '{name}' {hint}")
        if tuple(stored[name].shape) != tuple(param.shape):
            raise UserInputError(f"checkpoint {ckpt} does not fit this network: '{name}' has shape "
                                 f"{tuple(stored[name].shape)}, the network needs {tuple(param.shape)} {hint}")
    for name, param in expected.items():
        param.set_data(Tensor(stored[name].asnumpy(), param.dtype))
    return ckpt, read_meta(ckpt)


def read_meta(ckpt: str) -> Dict[str, Any]:
    meta_path = ckpt[:-len(".ckpt")] + ".json" if ckpt.endswith(".ckpt") else ckpt + ".json"
    if not os.path.exists(meta_path):
        return {}
    try:
        with open(meta_path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as error:
        raise UserInputError(f"cannot read checkpoint metadata {meta_path}: {error}") from None

