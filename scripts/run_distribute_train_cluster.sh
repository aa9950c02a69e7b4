#!/usr/bin/env bash
# Distributed training across machines. Run the same command on every node, changing NODE_RANK:
#   bash scripts/run_distribute_train_cluster.sh TOTAL_WORKERS WORKERS_PER_NODE MASTER_ADDR MASTER_PORT \
#        NODE_RANK OUTPUT_DIR ENV_YAML ALGO_YAML [POLICY] [extra train.py flags]
# POLICY: as in run_distribute_train.sh (default DataParallelDP); rank 0, the learner of the actor-learner
# policies, is on node 0.
# Node 0 hosts the scheduler at MASTER_ADDR:MASTER_PORT; rank 0 (on node 0) writes OUTPUT_DIR.
# Logs: OUTPUT_DIR/msrun_logs_node<NODE_RANK>/worker_<rank>.log on each node.
set -euo pipefail
source "$(dirname "$0")/_args.sh"
[ $# -ge 8 ] || usage "TOTAL_WORKERS WORKERS_PER_NODE MASTER_ADDR MASTER_PORT NODE_RANK OUTPUT_DIR ENV_YAML ALGO_YAML [POLICY] [train.py flags] (2 nodes x 1 worker: on node 0 2 1 192.0.2.10 8118 0 runs/cheetah_dp env_yaml/HalfCheetah-v5.yaml algo_yaml/ppo_halfcheetah.yaml, on node 1 the same with NODE_RANK 1)"
positive_int TOTAL_WORKERS "$1"
positive_int WORKERS_PER_NODE "$2"
positive_int MASTER_PORT "$4"
[[ "$5" =~ ^[0-9]+$ ]] || die "NODE_RANK must be a non-negative integer, got '$5'"
TOTAL=$1; PER_NODE=$2; MASTER_ADDR=$3; MASTER_PORT=$4; NODE_RANK=$5; OUTPUT_DIR=$6
[[ "$OUTPUT_DIR" == -* ]] && die "OUTPUT_DIR expected, got the flag '$OUTPUT_DIR'"
ENV_YAML=$(yaml_arg ENV_YAML "$7"); ALGO_YAML=$(yaml_arg ALGO_YAML "$8")
shift 8
POLICY=DataParallelDP
if [ $# -ge 1 ] && [[ "$1" != -* ]]; then POLICY=$(policy_arg "$1"); shift; fi
export PATH="$(dirname "$PYTHON"):$PATH"   # msrun starts `python`: make it this environment's
# a rank may wait this long (s) in a collective while rank 0 evaluates or saves (as ms_ppo/runtime/distributed.py)
export MS_NODE_TIMEOUT=${MS_NODE_TIMEOUT:-600}
mkdir -p "$OUTPUT_DIR"
LOG_DIR="$OUTPUT_DIR/msrun_logs_node$NODE_RANK"
TRAIN_ARGS=("$ROOT/train.py" --env_yaml "$ENV_YAML" --algo_yaml "$ALGO_YAML" --enable_distribute
            --worker_num "$TOTAL" --distribution_policy "$POLICY" --output_dir "$OUTPUT_DIR" --overwrite "$@")
# msrun starts a scheduler on every node whose own address is MASTER_ADDR. On separate machines that is node 0
# only; when several "nodes" share one machine (a loopback rehearsal), node 1.. would start a second scheduler
# on the same port. Those nodes start their workers with MindSpore's dynamic-cluster variables instead.
MASTER_IS_LOCAL=$("$PYTHON" -c 'import socket, subprocess, sys
ip = socket.gethostbyname(sys.argv[1])
mine = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
print(int(ip.startswith("127.") or ip in mine))' "$MASTER_ADDR")
if [ "$NODE_RANK" -gt 0 ] && [ "$MASTER_IS_LOCAL" = 1 ]; then
  mkdir -p "$LOG_DIR"
  PIDS=()
  for ((LOCAL=0; LOCAL<PER_NODE; LOCAL++)); do
    RANK=$((NODE_RANK * PER_NODE + LOCAL))
    MS_ROLE=MS_WORKER MS_WORKER_NUM="$TOTAL" MS_SCHED_HOST="$MASTER_ADDR" MS_SCHED_PORT="$MASTER_PORT" \
      MS_NODE_ID="$RANK" RANK_ID="$RANK" "$PYTHON" "${TRAIN_ARGS[@]}" > "$LOG_DIR/worker_$RANK.log" 2>&1 &
    PIDS+=($!)
  done
  STATUS=0
  for PID in "${PIDS[@]}"; do wait "$PID" || STATUS=$?; done
  [ "$STATUS" = 0 ] || { echo "node $NODE_RANK: a worker failed (exit $STATUS); see $LOG_DIR" >&2; exit "$STATUS"; }
else
  msrun --worker_num="$TOTAL" --local_worker_num="$PER_NODE" --master_addr="$MASTER_ADDR" \
    --master_port="$MASTER_PORT" --node_rank="$NODE_RANK" --log_dir="$LOG_DIR" --join=True "${TRAIN_ARGS[@]}"
fi
echo "node $NODE_RANK done; rank 0 writes $OUTPUT_DIR/result.json"
