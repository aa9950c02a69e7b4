#!/usr/bin/env bash
# Evaluate a checkpoint: bash scripts/run_eval.sh CKPT_OR_RUN_DIR [EPISODES] [extra eval.py flags]
set -euo pipefail
source "$(dirname "$0")/_args.sh"
[ $# -ge 1 ] || usage "CKPT_OR_RUN_DIR [EPISODES] [eval.py flags] (e.g. runs/CartPole-v1_20260101-120000 10)"
[[ "$1" == -* ]] && die "CKPT_OR_RUN_DIR expected, got the flag '$1' (flags go after the positional arguments)"
[ -e "$1" ] || die "checkpoint not found: $1"
CKPT=$(realpath "$1")
EPISODES=10
if [ $# -ge 2 ] && [[ "$2" != -* ]]; then
  positive_int EPISODES "$2"
  EPISODES=$2
  shift 2
else
  shift 1
fi
"$PYTHON" "$ROOT/eval.py" --ckpt "$CKPT" --episodes "$EPISODES" "$@"
