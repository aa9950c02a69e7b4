# Argument checks shared by the run_*.sh scripts (sourced, not run). Each problem is one line and exit status 2.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-"$ROOT/.venv/bin/python"}
[ -x "$PYTHON" ] || PYTHON=python3

die() { echo "error: $*" >&2; exit 2; }

# usage TEXT: the script's one-line usage, on stderr, exit 2
usage() { echo "usage: bash $0 $*" >&2; exit 2; }

# yaml_arg NAME VALUE: the absolute path of an existing YAML file, or a shipped YAML's bare name (CartPole-v1)
yaml_arg() {
  local name=$1 value=$2
  [[ "$value" == -* ]] && die "$name expected, got the flag '$value' (flags go after the positional arguments)"
  if [ -f "$value" ]; then
    realpath "$value"
  elif [ -d "$value" ]; then
    die "$name must be a YAML file, got a directory: $value"
  elif [[ "$value" != */* ]]; then
    echo "$value"  # train.py looks the name up among the shipped YAMLs and says so if it is not one
  else
    die "$name not found: $value"
  fi
}

# positive_int NAME VALUE
positive_int() { [[ "$2" =~ ^[1-9][0-9]*$ ]] || die "$1 must be a positive integer, got '$2'"; }

# POLICIES: the distribution policies train.py knows (ms_ppo/distribution/placement.py)
POLICIES="DataParallelDP MultiActorSingleLearnerDP AsyncMultiActorSingleLearnerDP SingleActorLearnerMultiEnvDP SingleActorLearnerMultiEnvHeterDP"

# is_policy VALUE: whether VALUE names a distribution policy (an optional positional argument of the launchers)
is_policy() { [[ " $POLICIES " == *" $1 "* ]]; }

# policy_arg VALUE: VALUE if it names a policy; a word that is neither a policy nor a flag is refused
policy_arg() {
  is_policy "$1" && { echo "$1"; return; }
  die "POLICY must be one of: $POLICIES (got '$1')"
}
