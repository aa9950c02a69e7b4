#!/usr/bin/env bash
# Evaluate a checkpoint: bash scripts/run_eval.sh CKPT_OR_RUN_DIR [EPISODES] [extra eval.py flags]
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: bash $0 CKPT_OR_RUN_DIR [EPISODES] [extra eval.py flags]" >&2
  echo "example: bash $0 runs/CartPole-v1_20260101-120000 10" >&2
  exit 2
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CKPT=$(realpath "$1")
EPISODES=${2:-10}
shift $(( $# < 2 ? $# : 2 ))
[ -e "$CKPT" ] || { echo "error: checkpoint not found: $CKPT" >&2; exit 2; }
PYTHON=${PYTHON:-"$ROOT/.venv/bin/python"}
[ -x "$PYTHON" ] || PYTHON=python3
"$PYTHON" "$ROOT/eval.py" --ckpt "$CKPT" --episodes "$EPISODES" "$@"
