#!/usr/bin/env bash
# Train one environment in fp32 and fp16 with the same seeds; write a Markdown table and a PNG of both learning
# curves to benchmarks/results/precision_<env>.{md,png}.
# usage: bash scripts/compare_precision.sh [ENV_YAML] [ALGO_YAML] [TOTAL_STEPS] [SEED ...]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ENV_YAML=$(realpath "${1:-$ROOT/env_yaml/CartPole-v1.yaml}")
ALGO_YAML=$(realpath "${2:-$ROOT/algo_yaml/ppo_classic.yaml}")
TOTAL_STEPS=${3:-50000}
shift $(( $# < 3 ? $# : 3 ))
SEEDS=("$@")
[ ${#SEEDS[@]} -gt 0 ] || SEEDS=(0 1)
for f in "$ENV_YAML" "$ALGO_YAML"; do
  [ -f "$f" ] || { echo "error: YAML file not found: $f" >&2; exit 2; }
done
PYTHON=${PYTHON:-"$ROOT/.venv/bin/python"}
[ -x "$PYTHON" ] || PYTHON=python3
"$PYTHON" "$ROOT/benchmarks/precision.py" --env_yaml "$ENV_YAML" --algo_yaml "$ALGO_YAML" \
  --total_steps "$TOTAL_STEPS" --seeds "${SEEDS[@]}"
