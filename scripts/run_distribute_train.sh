#!/usr/bin/env bash
# Data-parallel training on this machine with msrun:
#   bash scripts/run_distribute_train.sh WORKERS ENV_YAML ALGO_YAML [extra train.py flags]
# One log per worker in <run dir>/msrun_logs/worker_<rank>.log; rank 0 writes the run (result.json, ckpt/).
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: bash $0 WORKERS ENV_YAML ALGO_YAML [extra train.py flags]" >&2
  echo "example: bash $0 2 env_yaml/CartPole-v1.yaml algo_yaml/ppo_classic.yaml --total_steps 50000" >&2
  exit 2
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORKERS=$1
[[ "$WORKERS" =~ ^[1-9][0-9]*$ ]] || { echo "error: WORKERS must be a positive integer, got '$WORKERS'" >&2; exit 2; }
ENV_YAML=$(realpath "$2")
ALGO_YAML=$(realpath "$3")
shift 3
PYTHON=${PYTHON:-"$ROOT/.venv/bin/python"}
[ -x "$PYTHON" ] || PYTHON=python3
# train.py --enable_distribute checks the settings, creates the run directory and starts msrun itself.
exec "$PYTHON" "$ROOT/train.py" --env_yaml "$ENV_YAML" --algo_yaml "$ALGO_YAML" \
  --enable_distribute --worker_num "$WORKERS" "$@"
