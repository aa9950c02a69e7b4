#!/usr/bin/env bash
# Data-parallel training across machines. Run the same command on every node, changing NODE_RANK:
#   bash scripts/run_distribute_train_cluster.sh TOTAL_WORKERS WORKERS_PER_NODE MASTER_ADDR MASTER_PORT \
#        NODE_RANK OUTPUT_DIR ENV_YAML ALGO_YAML [extra train.py flags]
# Node 0 hosts the scheduler at MASTER_ADDR:MASTER_PORT; rank 0 (on node 0) writes OUTPUT_DIR.
# Logs: OUTPUT_DIR/msrun_logs_node<NODE_RANK>/worker_<rank>.log on each node.
set -euo pipefail
if [ $# -lt 8 ]; then
  echo "usage: bash $0 TOTAL_WORKERS WORKERS_PER_NODE MASTER_ADDR MASTER_PORT NODE_RANK OUTPUT_DIR ENV_YAML ALGO_YAML [flags]" >&2
  echo "example (2 nodes x 1 worker): on node 0: bash $0 2 1 192.0.2.10 8118 0 runs/cheetah_dp env_yaml/HalfCheetah-v5.yaml algo_yaml/ppo_mujoco.yaml" >&2
  echo "                              on node 1: the same with NODE_RANK 1" >&2
  exit 2
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TOTAL=$1; PER_NODE=$2; MASTER_ADDR=$3; MASTER_PORT=$4; NODE_RANK=$5; OUTPUT_DIR=$6
ENV_YAML=$(realpath "$7"); ALGO_YAML=$(realpath "$8")
shift 8
for n in "$TOTAL" "$PER_NODE" "$MASTER_PORT"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "error: expected a positive integer, got '$n'" >&2; exit 2; }
done
[[ "$NODE_RANK" =~ ^[0-9]+$ ]] || { echo "error: NODE_RANK must be a non-negative integer, got '$NODE_RANK'" >&2; exit 2; }
PYTHON=${PYTHON:-"$ROOT/.venv/bin/python"}
[ -x "$PYTHON" ] || PYTHON=python3
export PATH="$(dirname "$PYTHON"):$PATH"   # msrun starts `python`: make it this environment's
mkdir -p "$OUTPUT_DIR"
msrun --worker_num="$TOTAL" --local_worker_num="$PER_NODE" --master_addr="$MASTER_ADDR" \
  --master_port="$MASTER_PORT" --node_rank="$NODE_RANK" --log_dir="$OUTPUT_DIR/msrun_logs_node$NODE_RANK" \
  --join=True "$ROOT/train.py" --env_yaml "$ENV_YAML" --algo_yaml "$ALGO_YAML" --enable_distribute \
  --worker_num "$TOTAL" --output_dir "$OUTPUT_DIR" --overwrite "$@"
echo "node $NODE_RANK done; rank 0 writes $OUTPUT_DIR/result.json"
