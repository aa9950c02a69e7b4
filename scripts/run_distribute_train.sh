#!/usr/bin/env bash
# Data-parallel training on this machine with msrun:
#   bash scripts/run_distribute_train.sh WORKERS ENV_YAML ALGO_YAML [extra train.py flags]
# One log per worker in <run dir>/msrun_logs/worker_<rank>.log; rank 0 writes the run (result.json, ckpt/).
set -euo pipefail
source "$(dirname "$0")/_args.sh"
[ $# -ge 3 ] || usage "WORKERS ENV_YAML ALGO_YAML [train.py flags] (e.g. 2 env_yaml/CartPole-v1.yaml algo_yaml/ppo_classic.yaml --total_steps 50000)"
positive_int WORKERS "$1"
WORKERS=$1
ENV_YAML=$(yaml_arg ENV_YAML "$2")
ALGO_YAML=$(yaml_arg ALGO_YAML "$3")
shift 3
# train.py --enable_distribute checks the settings, creates the run directory and starts msrun itself.
exec "$PYTHON" "$ROOT/train.py" --env_yaml "$ENV_YAML" --algo_yaml "$ALGO_YAML" \
  --enable_distribute --worker_num "$WORKERS" "$@"
