#!/usr/bin/env bash
# Train on one device: bash scripts/run_standalone_train.sh ENV_YAML ALGO_YAML [DEVICE] [extra train.py flags]
# Writes the run into runs/ and its console output to <run dir>.log.
set -euo pipefail
source "$(dirname "$0")/_args.sh"
[ $# -ge 2 ] || usage "ENV_YAML ALGO_YAML [Auto|CPU|GPU|Ascend] [train.py flags] (e.g. env_yaml/CartPole-v1.yaml algo_yaml/ppo_classic.yaml CPU --total_steps 50000)"
ENV_YAML=$(yaml_arg ENV_YAML "$1")
ALGO_YAML=$(yaml_arg ALGO_YAML "$2")
DEVICE=Auto
if [ $# -ge 3 ] && [[ "$3" != -* ]]; then
  DEVICE=$3
  shift 3
else
  shift 2
fi
case "$DEVICE" in Auto|CPU|GPU|Ascend) ;; *) die "DEVICE must be Auto, CPU, GPU or Ascend, got '$DEVICE'" ;; esac
mkdir -p "$ROOT/runs"
RUN_DIR="$ROOT/runs/$(basename "$ENV_YAML" .yaml)_$(date +%Y%m%d-%H%M%S)"
echo "training: log in $RUN_DIR.log"
"$PYTHON" "$ROOT/train.py" --env_yaml "$ENV_YAML" --algo_yaml "$ALGO_YAML" --device_target "$DEVICE" \
  --output_dir "$RUN_DIR" "$@" 2>&1 | tee "$RUN_DIR.log"
