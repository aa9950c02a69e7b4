"""ms-ppo-tune (tune.py): the search space, the pruning callback, a small CartPole study that resumes, its
trials.csv and best.yaml, and bad inputs (one line, exit status 2, nothing written)."""

import csv
import json
import os
import subprocess
import sys

import pytest
from paths import CARTPOLE, CLASSIC, ROOT

optuna = pytest.importorskip("optuna")

from ms_ppo.app import tune  # noqa: E402
from ms_ppo.app.session import PPOSession  # noqa: E402
from ms_ppo.app.tune import Job, PruningCallback, read_space, run_trial, tune_main  # noqa: E402
from ms_ppo.config import load_settings, read_yaml  # noqa: E402

SPACE = """
ppo.learning_rate: {low: 1e-4, high: 3e-3, log: true}   # 1e-4 is a string to PyYAML: read as a number
ppo.epochs: {low: 2, high: 4}
ppo.gamma: {choices: [0.98, 0.99, 0.995]}
policy.hidden_sizes: {choices: [[32, 32], [64, 64]]}
"""
BATCH = 8 * 32  # ppo_classic.yaml: num_envs x rollout_steps


def tune_args(space, study_dir, trials, *extra):
    return ["--env_yaml", CARTPOLE, "--algo_yaml", CLASSIC, "--space", space, "--trials", str(trials),
            "--steps", "1024", "--eval_every", "2", "--study_dir", str(study_dir), "--set", "train.eval_episodes=2",
            *extra]


def trial_rows(study_dir):
    with open(os.path.join(study_dir, "trials.csv"), newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


class FakeTrial:
    """What PruningCallback uses of an optuna.Trial: report and should_prune."""

    def __init__(self, prune):
        self.prune = prune
        self.reports = []

    def report(self, value, step):
        self.reports.append((step, value))

    def should_prune(self):
        return self.prune


class FakeTrainer:
    def __init__(self, global_step):
        self.global_step = global_step


def test_space_yaml_becomes_optuna_distributions(write_yaml):
    space = read_space(write_yaml(SPACE, "space.yaml"))
    lr, epochs, gamma, hidden = (space[k].distribution for k in space)
    assert isinstance(lr, optuna.distributions.FloatDistribution) and lr.log and (lr.low, lr.high) == (1e-4, 3e-3)
    assert isinstance(epochs, optuna.distributions.IntDistribution) and (epochs.low, epochs.high) == (2, 4)
    assert gamma.choices == (0.98, 0.99, 0.995)
    assert [space["policy.hidden_sizes"].value(c) for c in hidden.choices] == [[32, 32], [64, 64]]


def test_pruning_callback_reports_evaluations_and_raises_when_told():
    trial = FakeTrial(prune=False)
    callback = PruningCallback(trial, log=lambda line: None)
    callback.on_iteration_end(FakeTrainer(256), {"iteration": 1, "global_step": 256})  # no evaluation: no report
    assert trial.reports == []
    callback.on_iteration_end(FakeTrainer(512), {"iteration": 2, "eval/return_mean": 12.5})
    assert trial.reports == [(512, 12.5)]
    trial.prune = True
    with pytest.raises(optuna.TrialPruned):
        callback.on_iteration_end(FakeTrainer(768), {"iteration": 3, "eval/return_mean": 3.0})
    assert trial.reports == [(512, 12.5), (768, 3.0)]


def test_a_pruned_trial_stops_at_its_first_evaluation_and_closes_its_envs(tmp_path, monkeypatch):
    trainers = []
    build = PPOSession.build
    monkeypatch.setattr(PPOSession, "build", lambda self, **kw: trainers.append(build(self, **kw)) or trainers[-1])
    trial = FakeTrial(prune=True)
    job = Job(CARTPOLE, CLASSIC, steps=1024, seed=0, eval_every=1, sets={"train.eval_episodes": 2})
    with pytest.raises(optuna.TrialPruned):
        run_trial(job, trial, {"ppo.epochs": 2}, str(tmp_path / "trial_0"), log=lambda line: None)
    with open(tmp_path / "trial_0" / "progress.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1  # stopped after the first of four iterations
    assert trial.reports == [(BATCH, float(rows[0]["eval/return_mean"]))]
    assert trainers[0].envs.closed


def test_a_study_writes_trials_and_best_yaml_and_resumes(tmp_path, write_yaml, capsys):
    space, study_dir = write_yaml(SPACE, "space.yaml"), tmp_path / "study"
    assert tune_main(tune_args(space, study_dir, 2)) == 0
    first = trial_rows(study_dir)
    assert [(r["number"], r["state"]) for r in first] == [("0", "COMPLETE"), ("1", "COMPLETE")]
    for row in first:
        result = json.loads((study_dir / f"trial_{row['number']}" / "result.json").read_text())
        assert float(row["value"]) == result["eval_return_mean"] and result["total_steps"] == 1024

    # Resumed: the same command with a larger --trials adds trial 2, with values of its own.
    assert tune_main(tune_args(space, study_dir, 3)) == 0
    rows = trial_rows(study_dir)
    assert [r["number"] for r in rows] == ["0", "1", "2"] and rows[:2] == first
    assert rows[2]["state"] == "COMPLETE" and (study_dir / "trial_2" / "result.json").exists()
    assert rows[2]["ppo.learning_rate"] not in {r["ppo.learning_rate"] for r in first}
    out = capsys.readouterr().out
    assert "Best value:" in out and "best.yaml" in out

    # best.yaml: an algo YAML holding the best trial's values (the first of equal ones, as Optuna counts).
    best = max(rows, key=lambda r: float(r["value"]))
    assert "env" not in read_yaml(str(study_dir / "best.yaml"))
    settings = load_settings(CARTPOLE, str(study_dir / "best.yaml"))
    assert settings.ppo.learning_rate == float(best["ppo.learning_rate"])
    assert settings.ppo.epochs == int(best["ppo.epochs"]) and settings.ppo.gamma == float(best["ppo.gamma"])
    assert settings.policy.hidden_sizes == json.loads(best["policy.hidden_sizes"])
    assert settings.train.eval_episodes == 2 and settings.train.total_steps == 100000  # --set kept, budget not

    # Run again as is: nothing to run. A trial left RUNNING by a killed invocation is recorded as failed.
    optuna.load_study(study_name=tune.STUDY_NAME, storage=f"sqlite:///{study_dir}/study.db").ask()
    assert tune_main(tune_args(space, study_dir, 3)) == 0
    assert [(r["number"], r["state"]) for r in trial_rows(study_dir)][2:] == [("2", "COMPLETE"), ("3", "FAIL")]
    assert "nothing to run" in capsys.readouterr().out

    # Other arguments on the same directory are refused before anything changes.
    before = (study_dir / "trials.csv").read_text()
    assert tune_main(tune_args(space, study_dir, 4, "--steps", "2048")) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(err) == 1 and "other arguments (steps differ)" in err[0], err
    assert (study_dir / "trials.csv").read_text() == before and not (study_dir / "trial_4").exists()


@pytest.mark.bad_input
@pytest.mark.parametrize("space, extra, fragments", [
    ("ppo.lerning_rate: {low: 1e-4, high: 3e-3, log: true}\n", [], ["space.yaml", "unknown key 'ppo.lerning_rate'"]),
    ("ppo.epochs: {low: 20, high: 3}\n", [], ["space.yaml: ppo.epochs", "low <= high"]),
    ("ppo.epochs: {lo: 3, high: 20}\n", [], ["ppo.epochs", "unexpected field lo"]),
    ("ppo.gamma: [0.98, 0.99]\n", [], ["ppo.gamma", "expected {low"]),
    ("ppo.gamma: {choices: []}\n", [], ["ppo.gamma", "non-empty list"]),
    ("ppo.learning_rate: {low: 0, high: 1e-3, log: true}\n", [], ["ppo.learning_rate", "low > 0"]),
    ("ppo.gamma: {low: 0.9, high: 1.5}\n", [], ["ppo.gamma", "less than or equal to 1", "1.5"]),
    ("ppo.epochs: {low: 3.0, high: 20.0}\n", [], ["ppo.epochs", "valid integer"]),
    ("train.total_steps: {low: 1, high: 5}\n", [], ["train.total_steps", "--steps"]),
    ("ppo.gamma: {choices: [0.98, 0.99]}\n", ["--set", "ppo.gamma=0.9"], ["--set ppo.gamma", "space"]),
    ("ppo.gamma: {choices: [0.98, 0.99]}\n", ["--set", "train.seed=3"], ["--set train.seed", "--seed"]),
    ("ppo.gamma: {choices: [0.98, 0.99]}\n", ["--trials", "0"], ["--trials", "at least 1"]),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, write_yaml, capsys, space, extra, fragments):
    study_dir = tmp_path / "study"
    assert tune_main(tune_args(write_yaml(space, "space.yaml"), study_dir, 1) + extra) == 2
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in captured.err, captured.err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert sorted(os.listdir(tmp_path)) == ["space.yaml"]


@pytest.mark.bad_input
def test_the_script_reports_bad_input_in_one_line(tmp_path, write_yaml):
    space = write_yaml("ppo.gamma: {choices: [0.98, 0.99]}\n", "space.yaml")
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tune.py"), *tune_args(space, tmp_path / "s", 0)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "--trials" in proc.stderr, proc.stderr
    assert not (tmp_path / "s").exists()
