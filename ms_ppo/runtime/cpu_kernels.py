"""Which oneDNN instruction set MindSpore's CPU convolutions may use, chosen per host for the CNN.

Why: MindSpore 2.10's CPU convolutions go through oneDNN. On some AVX-512 hosts (an AMD EPYC, family 25 model 17)
oneDNN picks its ``jit_uni_ncsp`` convolutions for the plain NCHW layout and the Nature CNN runs 30-50x slower
than with the instruction set capped at AVX2 (``ONEDNN_MAX_CPU_ISA=AVX2``, which makes it pick ``gemm:jit``);
on other hosts the cap changes nothing or costs a little, and it slows the MLP path (2,226 against 2,541 SPS on
HalfCheetah). So the cap is never applied to MLPs, and for the CNN it is measured, not assumed:

- ``runtime.cpu_isa_cap: auto`` (default): on an x86 CPU with AVX-512, time a convolution forward of the Nature
  CNN's first layers in two short subprocesses, as installed and capped at AVX2, and cap when that is faster
  (by more than ``CAP_MARGIN``). The verdict is cached per CPU model, flags and MindSpore version in
  ``~/.cache/ms_ppo/cpu_isa.json`` (``MS_PPO_CACHE_DIR`` moves it), so the probe runs once per kind of host.
  A CPU without AVX-512 has nothing above AVX2 to cap.
- ``none``: never cap; ``avx2``: always cap (for the CNN).
- ``ONEDNN_MAX_CPU_ISA`` already set in the environment is the user's choice and is left as it is.

oneDNN reads the variable when it creates its first primitive (checked: set in-process after ``import
mindspore`` and ``set_device``, it still takes effect), so ``apply_cpu_isa_cap`` runs before the network's first
compiled call.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from typing import Callable, Dict, Optional, Set

ISA_VARIABLE = "ONEDNN_MAX_CPU_ISA"
CAPPED_ISA = "AVX2"
CAP_MARGIN = 1.2  # cap only when the capped convolution is this much faster: noise must not flip the choice
CHOICES = ("auto", "none", "avx2")

# Timed in a fresh process per setting (oneDNN fixes its instruction set for the whole process): the Nature CNN's
# convolutions on a batch of 32 frames, after one warm-up call. Prints milliseconds per call.
_PROBE = """
import time
import numpy as np
import mindspore as ms
from mindspore import nn
ms.set_context(mode=ms.GRAPH_MODE)
ms.set_device("CPU")
net = nn.SequentialCell([nn.Conv2d(4, 32, 8, 4, pad_mode="valid", has_bias=True), nn.ReLU(),
                         nn.Conv2d(32, 64, 4, 2, pad_mode="valid", has_bias=True), nn.ReLU(),
                         nn.Conv2d(64, 64, 3, 1, pad_mode="valid", has_bias=True)])
x = ms.Tensor(np.random.rand(32, 4, 84, 84).astype(np.float32))
net(x).asnumpy()
start = time.perf_counter()
for _ in range(3):
    net(x).asnumpy()
print((time.perf_counter() - start) / 3 * 1000)
"""


def cpu_description() -> Dict[str, object]:
    """The CPU's model name and instruction-set flags (Linux /proc/cpuinfo; empty elsewhere)."""
    model, flags = platform.processor() or "", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and not model:
                    model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return {"model": model, "flags": flags}


def has_avx512(flags: Set[str]) -> bool:
    return "avx512f" in flags


def probe_convolution_ms(cap: Optional[str], timeout: float = 300.0) -> float:
    """Milliseconds per Nature-CNN convolution forward (batch 32) in a fresh process, capped at ``cap`` or not."""
    env = dict(os.environ, GLOG_v="3")
    env.pop(ISA_VARIABLE, None)
    if cap is not None:
        env[ISA_VARIABLE] = cap
    result = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True,
                            timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"convolution probe failed: {(result.stderr or result.stdout).strip()[-300:]}")
    return float(result.stdout.strip().splitlines()[-1])


def _cache_path() -> str:
    base = os.environ.get("MS_PPO_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "ms_ppo")
    return os.path.join(base, "cpu_isa.json")


def _cache_key(cpu: Dict[str, object], mindspore_version: str) -> str:
    flags = " ".join(sorted(cpu["flags"]))  # type: ignore[arg-type]
    return hashlib.sha256(f"{cpu['model']}|{flags}|{mindspore_version}".encode()).hexdigest()[:16]


def _read_cache() -> Dict[str, Dict[str, object]]:
    try:
        with open(_cache_path(), encoding="utf-8") as handle:
            data = json.load(handle)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_cache(cache: Dict[str, Dict[str, object]]) -> None:
    path = _cache_path()
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(cache, handle, indent=1)
        os.replace(tmp, path)
    except OSError:  # a read-only home: the probe simply runs again next time
        pass


def measured_cap(cpu: Dict[str, object], mindspore_version: str,
                 probe: Optional[Callable[[Optional[str]], float]] = None) -> Dict[str, object]:
    """The measured verdict for this host (cached): ``{"cap": "AVX2" or None, "native_ms", "capped_ms"}``.

    :param probe: ``cap -> milliseconds``; default ``probe_convolution_ms``."""
    probe = probe or probe_convolution_ms
    cache = _read_cache()
    key = _cache_key(cpu, mindspore_version)
    if key in cache:
        return cache[key]
    native_ms, capped_ms = probe(None), probe(CAPPED_ISA)
    verdict = {"cap": CAPPED_ISA if capped_ms * CAP_MARGIN < native_ms else None, "native_ms": round(native_ms, 2),
               "capped_ms": round(capped_ms, 2), "cpu_model": cpu["model"], "mindspore_version": mindspore_version}
    cache[key] = verdict
    _write_cache(cache)
    return verdict


def choose_cpu_isa_cap(setting: str, cnn: bool, device_target: str, cpu: Dict[str, object], environ: Dict[str, str],
                       mindspore_version: str, probe: Optional[Callable[[Optional[str]], float]] = None
                       ) -> Optional[Dict[str, object]]:
    """What to set ``ONEDNN_MAX_CPU_ISA`` to for this run, or None to leave oneDNN's own choice.

    :param setting: ``runtime.cpu_isa_cap`` (auto, none, avx2).
    :param cnn: the run's network is the CNN (the MLP path is never capped).
    :return: None, or ``{"cap": ISA, "why": text, ...}`` with the probe's timings when it measured.
    """
    if not cnn or device_target != "CPU" or setting == "none" or ISA_VARIABLE in environ:
        return None
    if setting == "avx2":
        return {"cap": CAPPED_ISA, "why": "runtime.cpu_isa_cap avx2"}
    if not has_avx512(cpu["flags"]):  # type: ignore[arg-type]
        return None  # nothing above AVX2 to cap
    verdict = measured_cap(cpu, mindspore_version, probe)
    if verdict["cap"] is None:
        return None
    return {**verdict, "why": f"convolutions measured {verdict['native_ms']} ms as installed, {verdict['capped_ms']} "
                              f"ms capped at {CAPPED_ISA}"}


def apply_cpu_isa_cap(setting: str, cnn: bool, device_target: str, log: Callable[[str], None]) -> Optional[str]:
    """Choose (``choose_cpu_isa_cap``) and set ``ONEDNN_MAX_CPU_ISA`` in this process; return the cap set."""
    import mindspore

    choice = choose_cpu_isa_cap(setting, cnn, device_target, cpu_description(), dict(os.environ),
                                mindspore.__version__)
    if choice is None:
        return None
    os.environ[ISA_VARIABLE] = str(choice["cap"])
    log(f"notice: CNN on this CPU: oneDNN capped at {choice['cap']} ({choice['why']}; runtime.cpu_isa_cap "
        f"none turns it off)")
    return str(choice["cap"])
