# Two commands set everything up on a fresh machine: `make train` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ms_ppo-installed
# Extra flags for train.py, e.g. make train ARGS="--total_steps 100000"
ARGS ?=

.PHONY: install train test test-all clean

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

clean:
	rm -rf runs build *.egg-info .pytest_cache
