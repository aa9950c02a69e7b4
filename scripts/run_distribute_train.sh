#!/usr/bin/env bash
# Distributed training on this machine with msrun:
#   bash scripts/run_distribute_train.sh WORKERS ENV_YAML ALGO_YAML [POLICY] [extra train.py flags]
# POLICY (default DataParallelDP): DataParallelDP, MultiActorSingleLearnerDP, AsyncMultiActorSingleLearnerDP,
# SingleActorLearnerMultiEnvDP or SingleActorLearnerMultiEnvHeterDP (docs/distributed.md).
# One log per worker in <run dir>/msrun_logs/worker_<rank>.log; rank 0 writes the run (result.json, ckpt/).
set -euo pipefail
source "$(dirname "$0")/_args.sh"
[ $# -ge 3 ] || usage "WORKERS ENV_YAML ALGO_YAML [POLICY] [train.py flags] (e.g. 3 env_yaml/CartPole-v1.yaml algo_yaml/ppo_classic.yaml MultiActorSingleLearnerDP --total_steps 50000)"
positive_int WORKERS "$1"
WORKERS=$1
ENV_YAML=$(yaml_arg ENV_YAML "$2")
ALGO_YAML=$(yaml_arg ALGO_YAML "$3")
shift 3
POLICY=DataParallelDP
if [ $# -ge 1 ] && [[ "$1" != -* ]]; then POLICY=$(policy_arg "$1"); shift; fi
# train.py --enable_distribute checks the settings, creates the run directory and starts msrun itself.
exec "$PYTHON" "$ROOT/train.py" --env_yaml "$ENV_YAML" --algo_yaml "$ALGO_YAML" \
  --enable_distribute --worker_num "$WORKERS" --distribution_policy "$POLICY" "$@"
