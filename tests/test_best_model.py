"""The best evaluation's checkpoint is kept in RUN_DIR/best; eval.py --best evaluates it; result.json names it."""

import csv
import json

import pytest
from paths import CARTPOLE

from ms_ppo.app.cli import eval_main
from ms_ppo.app.session import PPOSession
from ms_ppo.training import checkpoint


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """CartPole, 10 iterations of 256 steps, evaluated every 2 (5 evaluations) and at the end."""
    out = tmp_path_factory.mktemp("best") / "run"
    PPOSession(CARTPOLE, overrides={"train.total_steps": 2560, "train.eval_every": 2, "train.eval_episodes": 3,
                                    "train.output_dir": str(out), "train.seed": 1}, quiet=True,
               log=lambda line: None).run()
    return out


def test_the_best_evaluation_is_kept_and_named(run):
    result = json.loads((run / "result.json").read_text())
    with open(run / "progress.csv", newline="", encoding="utf-8") as handle:
        evals = [float(row["eval/return_mean"]) for row in csv.DictReader(handle) if row["eval/return_mean"]]
    assert len(evals) == 5
    best = max(evals + [result["eval_return_mean"]])
    assert result["best_eval_return"] == pytest.approx(best)
    kept = checkpoint.list_checkpoints(str(run / "best"))
    assert len(kept) == 1 and result["best_checkpoint"] == f"best/{kept[0].split('/')[-1]}"
    assert checkpoint.read_meta(kept[0])["best_eval_return"] == pytest.approx(best)
    assert result["checkpoint"].startswith("ckpt/step_")


def test_eval_best_reproduces_the_best_evaluation(run, capsys):
    """Deterministic evaluation on the same starts: the best checkpoint evaluates to the best return again."""
    result = json.loads((run / "result.json").read_text())
    assert eval_main(["--ckpt", str(run), "--best", "--episodes", "3"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert f"return {result['best_eval_return']:.2f}" in line, line


def test_best_needs_a_run_directory_with_a_best_checkpoint(tmp_path, run, capsys):
    assert eval_main(["--ckpt", checkpoint.resolve(str(run)), "--best"]) == 2
    assert "--best needs a run directory" in capsys.readouterr().err
    assert eval_main(["--ckpt", str(tmp_path), "--best"]) == 2
    assert "has no best checkpoint" in capsys.readouterr().err
