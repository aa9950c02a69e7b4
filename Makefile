# Two commands set everything up on a fresh machine: `make train` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ms_ppo-installed
# Extra flags for train.py, e.g. make train ARGS="--total_steps 100000"
ARGS ?=

.PHONY: check-python install train test test-all bench-speed bench-learning bench-distributed bench-policies bench-scaling compare-precision clean

$(STAMP): setup.py
	@test -x $(PY) || $(MAKE) --no-print-directory check-python
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,atari]"
	touch $(STAMP)

install: $(STAMP)

# MindSpore 2.10's wheels exist for Python 3.9-3.11 only: say so before a venv of another version is made.
check-python:
	@version=$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || \
		{ echo "error: PYTHON=$(PYTHON) does not run; name a Python 3.9-3.11: make PYTHON=python3.11" >&2; exit 2; }; \
	case "$$version" in 3.9|3.10|3.11) ;; *) echo "error: ms_ppo needs Python 3.9-3.11 (MindSpore 2.10), \
	$(PYTHON) is $$version: make PYTHON=python3.11" >&2; exit 2 ;; esac

# Train PPO on HalfCheetah-v5 (MuJoCo ships inside its wheel) on CPU with the default YAMLs.
train: $(STAMP)
	$(PY) train.py --device_target CPU $(ARGS)

# The default suite: unit tests plus short learning tests.
test: $(STAMP)
	$(PY) -m pytest -q tests

# Everything, including the long learning tests marked `slow`.
test-all: $(STAMP)
	$(PY) -m pytest -q -m "slow or not slow" tests

# Side-by-side speed: physics limit, ms_ppo, Stable-Baselines3 (its own venv, made on first use).
bench-speed: $(STAMP)
	$(PY) benchmarks/speed.py --steps 100000 --cartpole --out benchmarks/results/speed_halfcheetah.json

# Final deterministic return over seeds vs Stable-Baselines3 PPO with RL-Zoo settings: JSON, Markdown, PNG in
# benchmarks/results/ (runs one after the other; the MuJoCo ones take hours, and SB3 is not run on them).
bench-learning: $(STAMP)
	$(PY) benchmarks/learning.py --env env_yaml/CartPole-v1.yaml --algo algo_yaml/ppo_classic.yaml --steps 50000 --seeds 0 1 2 3 4 --target 475 --peer sb3 --out benchmarks/results/learning_CartPole-v1.json
	$(PY) benchmarks/learning.py --env env_yaml/FrozenLake-v1.yaml --algo algo_yaml/ppo_frozenlake.yaml --steps 20000 --seeds 0 1 2 3 4 --target 1 --peer sb3 --out benchmarks/results/learning_FrozenLake-v1.json
	$(PY) benchmarks/learning.py --env env_yaml/FrozenLake-v1-slippery.yaml --algo algo_yaml/ppo_frozenlake_slippery.yaml --steps 200000 --seeds 0 1 2 --target 0.7 --peer sb3 --out benchmarks/results/learning_FrozenLake-v1-slippery.json
	$(PY) benchmarks/learning.py --env env_yaml/InvertedDoublePendulum-v5.yaml --algo algo_yaml/ppo_double_pendulum.yaml --steps 500000 --seeds 0 1 2 --target 9000 --out benchmarks/results/learning_InvertedDoublePendulum-v5.json
	$(PY) benchmarks/learning.py --env env_yaml/HalfCheetah-v5.yaml --algo algo_yaml/ppo_halfcheetah.yaml --steps 1000000 --seeds 0 1 2 --target 5000 --out benchmarks/results/learning_HalfCheetah-v5.json

# SPS of 1 worker against 2 msrun workers on HalfCheetah (JSON and Markdown in benchmarks/results/).
bench-distributed: $(STAMP)
	$(PY) benchmarks/distributed_speed.py --steps 50000

# Every distribution policy against one process on HalfCheetah-v5, 300k steps (benchmarks/results/policies_*).
bench-policies: $(STAMP)
	$(PY) benchmarks/policies.py --env HalfCheetah-v5 --algo ppo_halfcheetah --steps 300000 --seeds 0

# Scaling model of every distribution policy, checked against 1-3 process runs (benchmarks/results/scaling_model.*).
bench-scaling: $(STAMP)
	$(PY) benchmarks/scaling_model.py

# fp32 vs fp16 on the same seeds: Markdown table and PNG in benchmarks/results/.
compare-precision: $(STAMP)
	PYTHON=$(PY) bash scripts/compare_precision.sh

clean:
	rm -rf runs build *.egg-info .pytest_cache
