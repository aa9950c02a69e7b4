"""The oneDNN instruction-set choice for the CNN on CPU: the decision logic, its cache and where it applies.

These test the logic with stated CPUs and probe timings, not the host the tests run on (the machines differ)."""

import os

import pytest

from ms_ppo.runtime import cpu_kernels
from ms_ppo.runtime.cpu_kernels import CAPPED_ISA, ISA_VARIABLE, choose_cpu_isa_cap

AVX512_HOST = {"model": "AMD EPYC (AVX-512)", "flags": {"sse4_2", "avx2", "avx512f", "avx512bw"}}
AVX2_HOST = {"model": "AMD EPYC (AVX2)", "flags": {"sse4_2", "avx2"}}


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MS_PPO_CACHE_DIR", str(tmp_path / "cache"))


def probe_from(timings):
    """A probe that returns ``timings[cap]`` and records each call."""
    calls = []

    def probe(cap):
        calls.append(cap)
        return timings[cap]
    probe.calls = calls
    return probe


def choose(setting="auto", cnn=True, device="CPU", cpu=AVX512_HOST, environ=None, probe=None):
    return choose_cpu_isa_cap(setting, cnn, device, cpu, environ or {}, "2.10.0",
                              probe or probe_from({None: 1.0, CAPPED_ISA: 1.0}))


def test_slow_native_convolutions_get_the_cap_and_the_verdict_is_cached():
    probe = probe_from({None: 160.0, CAPPED_ISA: 5.0})  # the AMD AVX-512 host of FACTS.md
    choice = choose(probe=probe)
    assert choice["cap"] == CAPPED_ISA and "160.0 ms as installed" in choice["why"]
    assert probe.calls == [None, CAPPED_ISA]
    again = probe_from({None: 1.0, CAPPED_ISA: 100.0})  # would say the opposite: must not be asked
    assert choose(probe=again)["cap"] == CAPPED_ISA and again.calls == []


@pytest.mark.parametrize("native, capped", [(5.0, 5.0), (5.0, 4.5), (4.0, 6.0)])
def test_no_cap_where_it_does_not_clearly_help(native, capped):
    assert choose(probe=probe_from({None: native, CAPPED_ISA: capped})) is None


def test_another_cpu_or_mindspore_version_is_measured_again():
    choose(probe=probe_from({None: 160.0, CAPPED_ISA: 5.0}))
    other_cpu = dict(AVX512_HOST, model="Intel Xeon (AVX-512)")
    probe = probe_from({None: 3.0, CAPPED_ISA: 5.0})
    assert choose_cpu_isa_cap("auto", True, "CPU", other_cpu, {}, "2.10.0", probe) is None
    assert probe.calls == [None, CAPPED_ISA]


@pytest.mark.parametrize("kwargs", [
    {"cnn": False},  # the MLP path is never capped (it is slower capped)
    {"device": "Ascend"},
    {"setting": "none"},
    {"environ": {ISA_VARIABLE: "AVX512_CORE"}},  # the user's own choice stands
    {"cpu": AVX2_HOST},  # nothing above AVX2 to cap
])
def test_cases_that_never_measure_nor_cap(kwargs):
    probe = probe_from({None: 160.0, CAPPED_ISA: 5.0})
    assert choose(probe=probe, **kwargs) is None and probe.calls == []


def test_avx2_setting_caps_without_measuring():
    probe = probe_from({})
    assert choose(setting="avx2", cpu=AVX2_HOST, probe=probe)["cap"] == CAPPED_ISA and probe.calls == []


def test_the_cap_is_set_before_the_cnn_is_built(monkeypatch):
    """build_network chooses before any CNN kernel exists; the MLP leaves the variable alone."""
    import gymnasium as gym
    import numpy as np

    from ms_ppo.app import assembly
    from ms_ppo.config import load_settings

    monkeypatch.setenv(ISA_VARIABLE, "unset")  # restored to this process's own state afterwards
    monkeypatch.delenv(ISA_VARIABLE)
    seen = []
    monkeypatch.setattr(cpu_kernels, "cpu_description", lambda: AVX512_HOST)
    monkeypatch.setattr(cpu_kernels, "probe_convolution_ms", lambda cap: 160.0 if cap is None else 5.0)
    real_cnn = assembly.CnnActorCritic

    def cnn(*args, **kwargs):
        seen.append(os.environ.get(ISA_VARIABLE))
        return real_cnn(*args, **kwargs)
    monkeypatch.setattr(assembly, "CnnActorCritic", cnn)
    settings = load_settings(overrides={"runtime.device_target": "CPU"})
    assembly.build_network(settings, gym.spaces.Box(-1, 1, (3,), np.float32), gym.spaces.Discrete(2),
                           log=lambda line: None)
    assert ISA_VARIABLE not in os.environ
    logs = []
    assembly.build_network(settings, gym.spaces.Box(0, 255, (4, 84, 84), np.uint8), gym.spaces.Discrete(4),
                           log=logs.append)
    assert seen == [CAPPED_ISA] and "capped at AVX2" in logs[0]


def test_the_real_probe_runs_here():
    """One real measurement on this host (whatever it is): a positive time, as installed."""
    assert cpu_kernels.probe_convolution_ms(None) > 0
