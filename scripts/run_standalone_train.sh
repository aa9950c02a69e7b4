#!/usr/bin/env bash
# Train on one device: bash scripts/run_standalone_train.sh ENV_YAML ALGO_YAML [DEVICE] [extra train.py flags]
# Writes the run into runs/ and its console output to <run dir>.log.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: bash $0 ENV_YAML ALGO_YAML [Auto|CPU|GPU|Ascend] [extra train.py flags]" >&2
  echo "example: bash $0 env_yaml/CartPole-v1.yaml algo_yaml/ppo_classic.yaml CPU --total_steps 50000" >&2
  exit 2
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ENV_YAML=$(realpath "$1")
ALGO_YAML=$(realpath "$2")
DEVICE=${3:-Auto}
shift $(( $# < 3 ? $# : 3 ))
for f in "$ENV_YAML" "$ALGO_YAML"; do
  [ -f "$f" ] || { echo "error: YAML file not found: $f" >&2; exit 2; }
done
PYTHON=${PYTHON:-"$ROOT/.venv/bin/python"}
[ -x "$PYTHON" ] || PYTHON=python3
RUN_DIR="$ROOT/runs/$(basename "$ENV_YAML" .yaml)_$(date +%Y%m%d-%H%M%S)"
echo "training: log in $RUN_DIR.log"
"$PYTHON" "$ROOT/train.py" --env_yaml "$ENV_YAML" --algo_yaml "$ALGO_YAML" --device_target "$DEVICE" \
  --output_dir "$RUN_DIR" "$@" 2>&1 | tee "$RUN_DIR.log"
