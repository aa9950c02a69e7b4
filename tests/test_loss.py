"""The clipped surrogate, value loss and entropy against a NumPy computation."""

import numpy as np
import pytest
from mindspore import Tensor

from ms_ppo.algo import PPOLoss
from ms_ppo.config import PPOSettings
from ms_ppo.models import ActorCritic


def numpy_loss(log_prob, old_log_prob, adv, values, returns, old_values, entropy, cfg, clip):
    ratio = np.exp(log_prob - old_log_prob)
    if cfg.normalize_advantage:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    pg = np.maximum(-adv * ratio, -adv * np.clip(ratio, 1 - clip, 1 + clip)).mean()
    if cfg.clip_range_vf is None:
        vl = ((returns - values) ** 2).mean()
    else:
        vc = old_values + np.clip(values - old_values, -cfg.clip_range_vf, cfg.clip_range_vf)
        vl = np.maximum((returns - values) ** 2, (returns - vc) ** 2).mean()
    return pg + cfg.vf_coef * vl - cfg.ent_coef * entropy.mean(), pg, vl


@pytest.mark.parametrize("clip_vf, norm_adv", [(None, True), (0.1, False)])
def test_ppo_loss_matches_numpy(clip_vf, norm_adv):
    rng = np.random.default_rng(0)
    cfg = PPOSettings(clip_range_vf=clip_vf, normalize_advantage=norm_adv, ent_coef=0.01, vf_coef=0.5)
    net = ActorCritic(3, 2, False, [8])
    obs = rng.standard_normal((16, 3)).astype(np.float32)
    actions = rng.standard_normal((16, 2)).astype(np.float32)
    log_prob, entropy, values = (x.asnumpy() for x in net.evaluate_actions(Tensor(obs), Tensor(actions)))
    old_log_prob = (log_prob + rng.normal(0, 0.3, 16)).astype(np.float32)  # ratios both inside and outside the clip
    adv = rng.standard_normal(16).astype(np.float32)
    returns = rng.standard_normal(16).astype(np.float32)
    old_values = (values + rng.normal(0, 0.3, 16)).astype(np.float32)
    out = PPOLoss(net, cfg)(Tensor(obs), Tensor(actions), Tensor(old_log_prob), Tensor(adv), Tensor(returns),
                            Tensor(old_values), Tensor(0.2), Tensor(np.ones(1, np.float32)))  # unweighted
    loss, pg, vl = numpy_loss(log_prob, old_log_prob, adv, values, returns, old_values, entropy, cfg, 0.2)
    np.testing.assert_allclose([o.asnumpy() for o in out[:3]], [loss, pg, vl], rtol=1e-4, atol=1e-6)
    ratio = np.exp(log_prob - old_log_prob)
    np.testing.assert_allclose(out[5].asnumpy(), (np.abs(ratio - 1) > 0.2).mean(), atol=1e-6)


def test_ratio_is_one_and_kl_zero_for_unchanged_policy():
    cfg = PPOSettings()
    net = ActorCritic(3, 2, True, [8])
    obs = np.random.default_rng(0).standard_normal((8, 3)).astype(np.float32)
    actions = np.array([0, 1] * 4, np.int32)
    log_prob = net.evaluate_actions(Tensor(obs), Tensor(actions))[0]
    out = PPOLoss(net, cfg)(Tensor(obs), Tensor(actions), log_prob, Tensor(np.ones(8, np.float32)),
                            Tensor(np.zeros(8, np.float32)), Tensor(np.zeros(8, np.float32)), Tensor(0.2),
                            Tensor(np.ones(1, np.float32)))
    assert abs(float(out[4].asnumpy())) < 1e-6  # approx KL
    assert float(out[5].asnumpy()) == 0.0  # clip fraction
