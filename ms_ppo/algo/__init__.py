"""PPO itself: advantages (GAE), the clipped loss, the compiled epoch update (fp32 or loss-scaled), the agent that
holds network and optimiser, and the typed rollout batch the update takes."""

from ms_ppo.algo.agent import PPOAgent, build_agent
from ms_ppo.algo.batch import RolloutBatch
from ms_ppo.algo.gae import compute_gae
from ms_ppo.algo.loss import STAT_NAMES, PPOLoss
from ms_ppo.algo.update import COUNTER_NAMES, EpochUpdate

__all__ = ["COUNTER_NAMES", "STAT_NAMES", "EpochUpdate", "PPOAgent", "PPOLoss", "RolloutBatch", "build_agent",
           "compute_gae"]
