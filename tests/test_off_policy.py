"""The decoupled objective for stale rollouts (AsyncMultiActorSingleLearnerDP): clipped around the learner's policy
at the start of the update, each transition weighted by that policy's probability over the behaviour policy's."""

import numpy as np
import pytest
from mindspore import Tensor

from ms_ppo.algo import PPOAgent, PPOLoss, RolloutBatch
from ms_ppo.config import PPOSettings
from ms_ppo.models import ActorCritic
from ms_ppo.models.compiled import ActionLogProbability

OBS, ACT, ROWS = 3, 2, 32
CFG = PPOSettings(num_envs=1, rollout_steps=ROWS, num_minibatches=2, epochs=2, max_grad_norm=None, ent_coef=0.0)


def network(seed=0):
    import mindspore

    mindspore.set_seed(seed)
    return ActorCritic(OBS, ACT, False, [8])


def rollout(net, shift=0.0, seed=1):
    """A Gaussian rollout whose behaviour log-probabilities are the network's own plus ``shift``."""
    rng = np.random.default_rng(seed)
    obs = rng.standard_normal((ROWS, OBS)).astype(np.float32)
    actions = rng.standard_normal((ROWS, ACT)).astype(np.float32)
    own = ActionLogProbability(net)(Tensor(obs), Tensor(actions)).asnumpy()
    return RolloutBatch(obs=obs, actions=actions, log_probs=(own + shift).astype(np.float32),
                        advantages=rng.standard_normal(ROWS).astype(np.float32),
                        returns=rng.standard_normal(ROWS).astype(np.float32),
                        values=np.zeros(ROWS, np.float32))


def actor_weights(net):
    """The policy's parameters (log std, actor layers), in order (the optimiser may prefix their names)."""
    return [p.asnumpy().copy() for p in net.trainable_params() if "critic" not in p.name]


def test_the_weighted_surrogate_is_each_transitions_clipped_term_times_its_weight():
    net = network()
    batch = rollout(net, shift=0.1)
    weights = np.random.default_rng(2).uniform(0.0, 2.0, ROWS).astype(np.float32)
    cfg = CFG.model_copy(update={"normalize_advantage": False})
    inputs = [Tensor(column) for column in batch] + [Tensor(np.float32(0.2))]
    weighted = PPOLoss(net, cfg, weighted=True)(*inputs, Tensor(weights))
    ratio = np.exp(-0.1)  # the network's probability over the shifted behaviour one, for every row
    terms = np.maximum(-batch.advantages * ratio, -batch.advantages * np.clip(ratio, 0.8, 1.2))
    assert float(weighted[1].asnumpy()) == pytest.approx(float((terms * weights).mean()), rel=1e-5)
    unweighted = PPOLoss(net, cfg)(*inputs, Tensor(weights))  # on-policy: the weights input is ignored
    assert float(unweighted[1].asnumpy()) == pytest.approx(float(terms.mean()), rel=1e-5)


def test_weights_are_proximal_over_behaviour_probability_capped():
    net = network()
    agent = PPOAgent(net, CFG.model_copy(update={"importance_weight_cap": 1.5}), off_policy=True)
    batch = rollout(net)
    shift = np.linspace(-1.0, 1.0, ROWS).astype(np.float32)  # behaviour log-prob = own - shift
    stale = batch._replace(log_probs=batch.log_probs - shift)
    proximal, weights = agent.decoupled_inputs(Tensor(stale.obs), Tensor(stale.actions), stale.log_probs)
    np.testing.assert_allclose(proximal, batch.log_probs, rtol=0, atol=1e-6)  # the current policy's
    np.testing.assert_allclose(weights.asnumpy(), np.minimum(np.exp(shift), 1.5), rtol=1e-5)


def test_a_fresh_rollout_updates_as_on_policy():
    """Behaviour = the learner's policy: every weight is 1 and the decoupled update is the ordinary one."""
    fresh, plain = network(), network()
    batch = rollout(fresh)
    PPOAgent(fresh, CFG, off_policy=True).update(batch, np.random.default_rng(0), 0.2)
    PPOAgent(plain, CFG).update(batch, np.random.default_rng(0), 0.2)
    for decoupled, ordinary in zip(actor_weights(fresh), actor_weights(plain)):
        np.testing.assert_allclose(decoupled, ordinary, rtol=0, atol=1e-6)


def test_stale_transitions_outside_the_clip_still_teach_the_policy():
    """Every behaviour ratio starts at e^0.5, outside clip 0.2, with a positive advantage: clipped around the
    behaviour policy nothing moves the actor; clipped around the learner's own policy it learns."""
    def actor_change(correction):
        net = network()
        batch = rollout(net, shift=-0.5)._replace(advantages=np.ones(ROWS, np.float32))
        cfg = CFG.model_copy(update={"off_policy_correction": correction, "normalize_advantage": False})
        before = actor_weights(net)
        PPOAgent(net, cfg, off_policy=True).update(batch, np.random.default_rng(0), 0.2)
        return max(np.abs(after - start).max() for after, start in zip(actor_weights(net), before))

    assert actor_change("none") == 0.0
    assert actor_change("decoupled") > 1e-4
