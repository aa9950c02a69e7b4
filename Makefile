# Two commands set everything up on a fresh machine: `make train` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ms_ppo-installed
# Extra flags for train.py, e.g. make train ARGS="--total_steps 100000"
ARGS ?=

.PHONY: install train test test-all bench-speed compare-precision clean

$(STAMP): setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

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

# fp32 vs fp16 on the same seeds: Markdown table and PNG in benchmarks/results/.
compare-precision: $(STAMP)
	PYTHON=$(PY) bash scripts/compare_precision.sh

clean:
	rm -rf runs build *.egg-info .pytest_cache
