"""The mathematics of PPO / PPO-EWMA against hand computation."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from paperlab.ppo.config import Config, scaled_hparams
from paperlab.ppo.core import EwmaModel, EwmaMoments, RewardScaler, RunningMeanStd, gae, policy_loss, value_loss
from paperlab.shared.config import ConfigError, load_config


def test_gae_with_a_terminal_in_the_middle():
    # one env, 4 steps; the episode ends at t=1, a new one starts at t=2
    r = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    v = torch.tensor([[0.5], [1.5], [2.5], [3.5]])
    d = torch.tensor([[0.0], [1.0], [0.0], [0.0]])
    last = torch.tensor([10.0])
    g, lam = 0.9, 0.8
    # by hand, backwards
    d3 = 4 + g * 10.0 - 3.5  # 9.5
    d2 = 3 + g * 3.5 - 2.5  # 3.65
    d1 = 2 + 0.0 - 1.5  # terminal: no bootstrap
    d0 = 1 + g * 1.5 - 0.5  # 1.85
    a3 = d3
    a2 = d2 + g * lam * a3
    a1 = d1  # nothing flows back across the episode end
    a0 = d0 + g * lam * a1
    adv, ret = gae(r, v, d, last, g, lam)
    expected = torch.tensor([[a0], [a1], [a2], [a3]])
    assert torch.allclose(adv, expected, atol=1e-6)
    assert torch.allclose(ret, expected + v, atol=1e-6)


def test_gae_lambda_one_is_discounted_return_minus_value():
    torch.manual_seed(0)
    r, v = torch.randn(6, 3), torch.randn(6, 3)
    d = torch.zeros(6, 3)
    last = torch.zeros(3)
    adv, _ = gae(r, v, d, last, 0.95, 1.0)
    disc = torch.zeros(3)
    for t in reversed(range(6)):
        disc = r[t] + 0.95 * disc
        assert torch.allclose(adv[t], disc - v[t], atol=1e-5)


def _grad_of_loss(logratio: float, adv: float, eps: float = 0.2) -> float:
    logp = torch.tensor([logratio], requires_grad=True)
    old = torch.tensor([0.0])
    loss, _ = policy_loss(logp, old, old, torch.tensor([adv]), eps)
    loss.backward()
    return float(logp.grad)


@pytest.mark.parametrize(
    "ratio,adv,zero",
    [
        (1.5, 1.0, True),  # positive advantage, ratio above 1 + eps: clipped, no gradient
        (0.5, -1.0, True),  # negative advantage, ratio below 1 - eps: clipped, no gradient
        (1.1, 1.0, False),  # inside the range: the plain policy gradient
        (0.9, -1.0, False),
        (0.5, 1.0, False),  # outside, but on the side that *worsens* the objective: not clipped (pessimism)
        (1.5, -1.0, False),
    ],
)
def test_clipped_objective_gradient(ratio, adv, zero):
    g = _grad_of_loss(math.log(ratio), adv)
    if zero:
        assert g == 0.0
    else:
        assert abs(g - (-adv * ratio)) < 1e-5  # d/dlogp of -A * exp(logp - old)


def test_decoupled_loss_reduces_to_ppo_and_weights_by_behaviour_ratio():
    torch.manual_seed(1)
    logp, behav, adv = torch.randn(50) * 0.3, torch.randn(50) * 0.3, torch.randn(50)
    loss, _ = policy_loss(logp, behav, behav, adv, 0.2)
    ratio = (logp - behav).exp()
    ppo = -torch.min(ratio * adv, ratio.clamp(0.8, 1.2) * adv).mean()
    assert torch.allclose(loss, ppo, atol=1e-6)
    # decoupled: clip pi/pi_prox, importance-weight by pi_prox/pi_behav
    prox = torch.randn(50) * 0.3
    loss2, _ = policy_loss(logp, behav, prox, adv, 0.2)
    r = (logp - prox).exp()
    w = (prox - behav).exp()
    assert torch.allclose(loss2, -(w * torch.min(r * adv, r.clamp(0.8, 1.2) * adv)).mean(), atol=1e-5)


def test_value_loss_clipping():
    v, old, tgt = torch.tensor([2.0]), torch.tensor([0.0]), torch.tensor([0.0])
    assert float(value_loss(v, old, tgt, None)) == pytest.approx(2.0)
    # the clipped prediction (0.2) is closer to the target, the max keeps the unclipped error
    assert float(value_loss(v, old, tgt, 0.2)) == pytest.approx(2.0)
    v2, tgt2 = torch.tensor([2.0]), torch.tensor([3.0])  # clipped (0.2) is further: its error counts
    assert float(value_loss(v2, old, tgt2, 0.2)) == pytest.approx(0.5 * 2.8**2)


def test_ewma_model_arithmetic():
    lin = nn.Linear(1, 1, bias=False)
    beta = 0.5
    history = [1.0, 3.0, -2.0, 5.0]
    with torch.no_grad():
        lin.weight.fill_(history[0])
    ewma = EwmaModel(lin, beta)
    for w in history[1:]:
        with torch.no_grad():
            lin.weight.fill_(w)
        ewma.update(lin)
    k = len(history) - 1
    weights = [beta ** (k - i) for i in range(k + 1)]
    expected = sum(wt * x for wt, x in zip(weights, history)) / sum(weights)
    assert float(ewma.model.weight) == pytest.approx(expected)
    assert not ewma.model.weight.requires_grad


def test_ewma_age_matches_decay_over_long_runs():
    # constant drift theta_k = k: the average lags by beta / (1 - beta) steps once the start is forgotten
    lin = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        lin.weight.fill_(0.0)
    beta = 0.9
    ewma = EwmaModel(lin, beta)
    for k in range(1, 400):
        with torch.no_grad():
            lin.weight.fill_(float(k))
        ewma.update(lin)
    assert 399 - float(ewma.model.weight) == pytest.approx(beta / (1 - beta), rel=1e-3)


def test_batch_size_rule_scales_lr_and_keeps_ewma_age_in_examples():
    ref = load_config(Config, None, ["num_envs=32", "ref_num_envs=32", "ewma_decay=0.95", "adv_ewma_decay=0.9"])
    small = load_config(Config, None, ["num_envs=8", "ref_num_envs=32", "ewma_decay=0.95", "adv_ewma_decay=0.9"])
    a, b = scaled_hparams(ref), scaled_hparams(small)
    assert a.lr == ref.lr and a.ewma_decay == 0.95 and a.c == 1.0
    assert b.c == 0.25 and b.lr == pytest.approx(ref.lr / 4)
    assert b.ewma_decay == pytest.approx(0.95**0.25) and b.adv_ewma_decay == pytest.approx(0.9**0.25)
    assert b.adam_beta2 == pytest.approx(0.999**0.25)

    # the proximal policy's age in *examples* is (nearly) unchanged: steps are 4x smaller, 4x more of them
    def age_in_examples(decay, cfg):
        return decay / (1 - decay) * cfg.minibatch_size

    assert age_in_examples(b.ewma_decay, small) == pytest.approx(age_in_examples(a.ewma_decay, ref), rel=0.05)
    # a decay applied 4 times at the small batch equals one application at the reference batch
    assert b.ewma_decay**4 == pytest.approx(a.ewma_decay)
    off = scaled_hparams(load_config(Config, None, ["num_envs=8"]))
    assert off.c == 1.0 and off.lr == Config().lr


def test_running_mean_std_matches_numpy():
    rng = np.random.default_rng(0)
    chunks = [rng.normal(3.0, 2.0, size=(n, 4)) for n in (7, 1, 30, 12)]
    rms = RunningMeanStd((4,), epsilon=0.0)
    for c in chunks:
        rms.update(c)
    allx = np.concatenate(chunks)
    assert np.allclose(rms.mean, allx.mean(0))
    assert np.allclose(rms.var, allx.var(0))
    y = rms.normalize(allx.astype(np.float32), clip=10.0)
    assert y.dtype == np.float32
    assert np.allclose(y.mean(0), 0.0, atol=1e-5) and np.allclose(y.std(0), 1, atol=1e-3)
    assert float(rms.normalize(np.full((1, 4), 1e6), clip=5.0).max()) == 5.0
    # its state dict holds torch tensors (as in committed model.pt files) and loads back
    other = RunningMeanStd((4,))
    other.load_state_dict(rms.state_dict())
    assert np.array_equal(other.mean, rms.mean) and other.count == rms.count


def test_reward_scaler_divides_by_return_std():
    sc = RewardScaler(num_envs=1, gamma=0.0)  # gamma 0: the "return" is the reward itself
    rewards = [2.0, -2.0] * 50
    for r in rewards:
        out = sc(np.array([r], np.float32), np.array([False]), clip=100.0)
    assert float(sc.rms.var) == pytest.approx(4.0, rel=0.01)
    assert float(out[0]) == pytest.approx(-1.0, rel=0.01)


def test_ewma_moments():
    x1, x2 = torch.tensor([1.0, 3.0]), torch.tensor([10.0, 10.0, 12.0, 12.0])
    m0 = EwmaMoments(0.0)
    m0.update(x1)
    assert m0.update(x2) == pytest.approx((11.0, 1.0))  # decay 0: the last batch only
    m = EwmaMoments(1.0)  # decay 1: all data, weighted by count
    m.update(x1)
    mean, var = m.update(x2)
    allx = torch.cat([x1, x2])
    assert mean == pytest.approx(float(allx.mean())) and var == pytest.approx(float(allx.var(unbiased=False)))


def test_bad_configs_are_refused():
    with pytest.raises(ConfigError, match="lr_typo"):
        load_config(Config, None, ["lr_typo=1"])
    with pytest.raises(ConfigError, match="divisible"):
        load_config(Config, None, ["num_envs=3", "num_steps=5", "num_minibatches=4"])
    with pytest.raises(ConfigError, match="algo"):
        load_config(Config, None, ["algo=trpo"])
