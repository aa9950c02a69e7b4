"""Device and execution-mode set-up for MindSpore: Auto/CPU/GPU/Ascend, graph mode, which precision runs where."""

from __future__ import annotations

import os
from typing import Optional

import mindspore
from mindspore import device_context

from ms_ppo.errors import UserInputError

BF16_DEVICES = ("Ascend",)  # CPU: MatMul rejects bfloat16 (checked); GPU: not verified, so not offered


def _available(device: str) -> bool:
    if device == "CPU":
        return True
    module = device_context.ascend if device == "Ascend" else device_context.gpu
    try:
        return bool(module.is_available())
    except Exception:  # a plugin that cannot even load means the device is absent
        return False


_cpu_threads: Optional[int] = None  # MindSpore accepts the CPU kernel thread count once per process
_device: Optional[str] = None  # the device this process's set_device chose


def set_cpu_threads(threads: Optional[int]) -> None:
    """Set the thread count of MindSpore's CPU kernels (None keeps MindSpore's default)."""
    global _cpu_threads
    if threads is None or threads == _cpu_threads:
        return
    if _cpu_threads is not None:
        raise UserInputError(f"runtime.cpu_threads: this process already runs {_cpu_threads} CPU kernel threads "
                             f"and MindSpore cannot change it to {threads}")
    device_context.cpu.op_tuning.threads_num(threads)
    _cpu_threads = threads


def require_device(device_target: str) -> None:
    """Refuse a device this machine does not have (Auto always resolves), e.g. before launching workers.

    :raises UserInputError: when the requested device is not present on this machine.
    """
    if device_target != "Auto" and not _available(device_target):
        raise UserInputError(f"--device_target {device_target}: no usable {device_target} device or driver on "
                             f"this machine (use --device_target CPU or Auto)")


def configure_device(device_target: str, graph_op_run: int = 1, cpu_threads: Optional[int] = None) -> str:
    """Select the device (Auto picks Ascend, then GPU, then CPU) and compile every Cell in graph mode.

    :return: the device actually used.
    :raises UserInputError: when the requested device is not present on this machine.
    """
    if device_target == "Auto":
        device_target = next(d for d in ("Ascend", "GPU", "CPU") if _available(d))
    require_device(device_target)
    if device_target == "Ascend" and graph_op_run:
        os.environ["GRAPH_OP_RUN"] = "1"  # kernel-by-kernel execution, as the reference example does
    global _device
    if device_target != _device:  # MindSpore refuses set_device once the device is in use, even to the same one
        mindspore.set_device(device_target)
        _device = device_target
    set_cpu_threads(cpu_threads)
    # Graph mode compiles each Cell call; on CPU it is ~2.5x faster per update than jit inside PyNative.
    mindspore.set_context(mode=mindspore.GRAPH_MODE)
    return device_target


def check_precision(precision_mode: str, device_target: str) -> None:
    """Refuse a precision the device cannot run (``device_target`` as resolved by configure_device)."""
    if precision_mode == "bf16" and device_target not in BF16_DEVICES:
        raise UserInputError(f"--precision_mode bf16 is supported on Ascend only, not on {device_target} "
                             f"(MindSpore 2.10's CPU MatMul kernel rejects bfloat16); use fp16 or fp32")
