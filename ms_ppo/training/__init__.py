"""Training: the loop (PPOTrainer) over one TrainerState, the Collector and the Learner it alternates, the
numerical guard, callbacks and loggers, and the checkpoint files."""

from ms_ppo.training.collector import Collector
from ms_ppo.training.learner import Learner
from ms_ppo.training.state import TrainerState
from ms_ppo.training.trainer import PPOTrainer

__all__ = ["Collector", "Learner", "PPOTrainer", "TrainerState"]
