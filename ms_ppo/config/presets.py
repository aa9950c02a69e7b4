"""The shipped YAMLs (env_yaml/, algo_yaml/) by bare name: ``--env_yaml CartPole-v1``, ``--algo_yaml ppo_classic``.

In a source checkout they are the repository's own folders; a built wheel carries copies in ``ms_ppo/presets/``
(setup.py's build step puts them there), so the names work after ``pip install .`` too.
"""

from __future__ import annotations

import os
from typing import List, Optional

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WHEEL_PRESETS = os.path.join(_PACKAGE, "presets")
SOURCE_PRESETS = os.path.dirname(_PACKAGE)  # the repository root, holding env_yaml/ and algo_yaml/
KINDS = ("env_yaml", "algo_yaml")


def preset_dir(kind: str) -> str:
    """The folder of shipped ``kind`` YAMLs (env_yaml or algo_yaml)."""
    root = WHEEL_PRESETS if os.path.isdir(os.path.join(WHEEL_PRESETS, kind)) else SOURCE_PRESETS
    return os.path.join(root, kind)


def preset_names(kind: str) -> List[str]:
    folder = preset_dir(kind)
    if not os.path.isdir(folder):
        return []
    return sorted(name[:-len(".yaml")] for name in os.listdir(folder) if name.endswith(".yaml"))


def is_bare_name(value: str) -> bool:
    return "/" not in value and os.sep not in value


def resolve_yaml(value: Optional[str], kind: str) -> Optional[str]:
    """A path that exists stays as it is; a bare name of a shipped YAML (with or without .yaml) becomes its path;
    anything else is returned unchanged, for the loader to report as missing."""
    if value is None or os.path.exists(value) or not is_bare_name(value):
        return value
    candidate = os.path.join(preset_dir(kind), value if value.endswith(".yaml") else value + ".yaml")
    return candidate if os.path.isfile(candidate) else value
