"""The package's shape: layers that import one way, no import cycles, no oversized modules, a clean lint.

The import contract lives in .importlinter; these tests also check, on a copy of the package, that it fails when a
model imports the algorithm or when two modules of a folder import each other (a contract that cannot fail
proves nothing).
"""

import os
import shutil
import subprocess
import sys

import pytest
from paths import ROOT

PACKAGE = os.path.join(ROOT, "ms_ppo")
LINT_IMPORTS = os.path.join(os.path.dirname(sys.executable), "lint-imports")
MAX_MODULE_LINES = 400


def lint_imports(root: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=root)
    return subprocess.run([LINT_IMPORTS, os.path.join(ROOT, ".importlinter"), "--no-cache"], cwd=root,
                          env=env, capture_output=True, text=True, timeout=120)


def mutated_copy(tmp_path, module: str, line: str) -> str:
    """A copy of the package with ``line`` appended to ``module`` (a path under ms_ppo/)."""
    root = str(tmp_path / "copy")
    shutil.copytree(PACKAGE, os.path.join(root, "ms_ppo"), ignore=shutil.ignore_patterns("__pycache__"))
    with open(os.path.join(root, "ms_ppo", module), "a", encoding="utf-8") as handle:
        handle.write(f"\n{line}\n")
    return root


def test_the_import_contract_holds():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "3 kept, 0 broken" in result.stdout


@pytest.mark.parametrize("module, line, broken", [
    ("models/mlp.py", "from ms_ppo.algo.loss import STAT_NAMES  # noqa",
     "ms_ppo.models is not allowed to import ms_ppo.algo"),
    ("envs/atari.py", "from ms_ppo.envs.pixels import WRAPPER_SETS  # noqa", "No cycles are allowed in ms_ppo.envs"),
    ("training/trainer.py", "from ms_ppo.app.cli import train_main  # noqa",
     "ms_ppo.training is not allowed to import ms_ppo.app"),
])
def test_the_import_contract_fails_on_a_wrong_way_import(tmp_path, module, line, broken):
    result = lint_imports(mutated_copy(tmp_path, module, line))
    assert result.returncode == 1 and broken in result.stdout, result.stdout[-3000:]


def test_no_module_is_over_400_lines():
    long = {}
    for folder, _, names in os.walk(PACKAGE):
        for name in names:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                with open(path, encoding="utf-8") as handle:
                    count = sum(1 for _ in handle)
                if count > MAX_MODULE_LINES:
                    long[os.path.relpath(path, ROOT)] = count
    assert not long


def test_ruff_finds_nothing():
    ruff = os.path.join(os.path.dirname(sys.executable), "ruff")
    result = subprocess.run([ruff, "check", "ms_ppo", "tests", "benchmarks", "examples", "train.py", "eval.py",
                             "export.py"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]
