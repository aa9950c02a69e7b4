"""Distribution policies beyond DataParallelDP (ms_ppo/runtime/distributed.py): which rank does what
(placement), the actor-learner policies (actor_learner) and environments stepped on other ranks (remote_envs)."""
