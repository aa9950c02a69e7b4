"""Networks: the actor-critic interface, the MLP and Nature-CNN actor-critics, their distributions, their
precision, and the NumPy mirror of the MLP used for collection on CPU."""

from ms_ppo.models.cnn import CnnActorCritic, is_image_space, wants_cnn
from ms_ppo.models.mlp import ActorCritic
from ms_ppo.models.protocol import ActorCriticNetwork

__all__ = ["ActorCritic", "ActorCriticNetwork", "CnnActorCritic", "is_image_space", "wants_cnn"]
