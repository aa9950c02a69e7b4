"""Where does a training iteration's time go? cProfile over a short run, grouped into phases.

    python benchmarks/profile_training.py --env_yaml env_yaml/HalfCheetah-v5.yaml --steps 20480
"""

import argparse
import cProfile
import os
import pstats
import tempfile

import _common  # noqa: F401 - puts the repository on sys.path for ms_ppo

from ms_ppo import PPOSession
from ms_ppo.config import parse_override

PHASES = {  # phase -> function names whose cumulative time is that phase
    "env step": ["step"],
    "policy inference": ["act"],
    "value bootstrap": ["value"],
    "update (compiled epochs)": ["update"],
    "GAE": ["compute_gae"],
    "normalisation": ["__call__"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env_yaml", default="env_yaml/HalfCheetah-v5.yaml")
    parser.add_argument("--algo_yaml", default="algo_yaml/ppo_halfcheetah.yaml")
    parser.add_argument("--steps", type=int, default=20480)
    parser.add_argument("--set", action="append", default=[])
    args = parser.parse_args()
    overrides = dict(parse_override(text) for text in args.set)
    with tempfile.TemporaryDirectory() as out:
        overrides.update({"train.total_steps": args.steps, "train.output_dir": out, "train.log_every": 10**9,
                          "train.save_every": 0})
        session = PPOSession(args.env_yaml, args.algo_yaml, overrides=overrides, log=lambda line: None)
        trainer = session.build()
        trainer.train(trainer.settings.ppo.batch_size)  # warm-up: compiles every graph
        profile = cProfile.Profile()
        profile.enable()
        result = trainer.train(args.steps)
        profile.disable()
    stats = pstats.Stats(profile)
    total = result["wall_seconds"]
    print(f"{result['total_steps']} steps, {result['sps']:.0f} steps/s, {total:.1f} s")
    rows = {}
    for (filename, _, name), (_, _, _, cumulative, _) in stats.stats.items():
        for phase, names in PHASES.items():
            module = os.path.basename(filename)
            if name in names and (phase != "env step" or "vector" in filename) and \
                    (phase != "normalisation" or module == "normalize.py") and \
                    (phase not in ("policy inference", "value bootstrap", "update (compiled epochs)")
                     or module == "agent.py"):
                rows[phase] = rows.get(phase, 0.0) + cumulative
    for phase, seconds in rows.items():
        print(f"{phase:28s} {seconds:7.2f} s  {100 * seconds / total:5.1f} %")
    stats.sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    main()
