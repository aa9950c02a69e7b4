"""Shared fixtures: the repository root, YAML writers, a CPU graph-mode MindSpore context."""

import sys

import pytest
from paths import ROOT

sys.path.insert(0, ROOT)


@pytest.fixture(scope="session", autouse=True)
def cpu_graph_mode():
    from ms_ppo.runtime.device import configure_device

    configure_device("CPU")


@pytest.fixture
def write_yaml(tmp_path):
    """Write text to a YAML file under tmp_path and return its path."""
    def write(text: str, name: str = "settings.yaml") -> str:
        path = tmp_path / name
        path.write_text(text)
        return str(path)
    return write
