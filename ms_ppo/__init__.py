"""ms_ppo: Proximal Policy Optimization on MindSpore for Gymnasium environments."""

import os

os.environ.setdefault("GLOG_v", "3")  # MindSpore's C++ log: errors only (its device probes warn loudly)

from ms_ppo.app.evaluate import evaluate_checkpoint  # noqa: E402
from ms_ppo.app.session import PPOSession  # noqa: E402
from ms_ppo.config import Settings, load_settings  # noqa: E402
from ms_ppo.errors import UserInputError  # noqa: E402
from ms_ppo.training import PPOTrainer  # noqa: E402
from ms_ppo.version import __version__  # noqa: E402

__all__ = ["PPOSession", "PPOTrainer", "Settings", "UserInputError", "evaluate_checkpoint", "load_settings",
           "__version__"]
