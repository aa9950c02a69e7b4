"""A small environment of your own, the way ms_ppo trains it: a point on a plane steered to a goal.

Observation: a Dict of the point's position and the goal's, both in [-1, 1]^2 (ms_ppo flattens Dict observations
into one vector). Action: a velocity in [-1, 1]^2, scaled by 0.1 per step. Reward: minus the distance to the goal
at each step, so the return is higher the sooner the point gets there. Episodes end after ``episode_steps`` steps.

Importing this module registers ``PointGoal-v0``, so an env YAML can name it as
``examples.custom_env.point_goal:PointGoal-v0`` (Gymnasium's module:EnvId form); or name the class itself as
``env.entry_point: examples.custom_env.point_goal:PointGoal``.
"""

from typing import Any, Dict, Optional

import gymnasium as gym
import numpy as np


class PointGoal(gym.Env):
    """Steer a point to a goal drawn at random in each episode.

    :param episode_steps: steps per episode (the episode is truncated after them).
    :param speed: how far one step at full action moves the point.
    """

    metadata = {"render_modes": []}

    def __init__(self, episode_steps: int = 50, speed: float = 0.1, render_mode: Optional[str] = None):
        box = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.observation_space = gym.spaces.Dict({"position": box, "goal": box})
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.episode_steps = episode_steps
        self.speed = speed
        self.render_mode = render_mode
        self.position = np.zeros(2, np.float32)
        self.goal = np.zeros(2, np.float32)
        self.steps = 0

    def _observation(self) -> Dict[str, np.ndarray]:
        return {"position": self.position.copy(), "goal": self.goal.copy()}

    def reset(self, *, seed: Optional[int] = None, options: Optional[Dict[str, Any]] = None):
        super().reset(seed=seed)
        self.position = self.np_random.uniform(-1.0, 1.0, 2).astype(np.float32)
        self.goal = self.np_random.uniform(-1.0, 1.0, 2).astype(np.float32)
        self.steps = 0
        return self._observation(), {}

    def step(self, action):
        velocity = np.clip(np.asarray(action, np.float32), -1.0, 1.0) * self.speed
        self.position = np.clip(self.position + velocity, -1.0, 1.0)
        self.steps += 1
        distance = float(np.linalg.norm(self.position - self.goal))
        return self._observation(), -distance, False, self.steps >= self.episode_steps, {"distance": distance}


if "PointGoal-v0" not in gym.envs.registry:
    gym.register("PointGoal-v0", entry_point=PointGoal)
