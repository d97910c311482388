"""The batched multi-seed trainer: agent k of a batched run is the solo run with seed k."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from paperlab.dqn.config import Config
from paperlab.dqn.networks import MinAtarQNetwork, MLPQNetwork, batched_q_values, stack_params
from paperlab.dqn.train import train
from paperlab.dqn.train_batched import batched_td_update, train_batched
from paperlab.shared.checkpoint import CheckpointError

# short runs that still update (300 updates), copy the target, end episodes and evaluate
SHORT = dict(
    total_steps=400,
    learning_starts=100,
    buffer_size=500,
    batch_size=16,
    target_update_period=50,
    eps_decay_steps=200,
    checkpoint_every=150,
    log_every=100,
    eval_episodes=3,
    optimizer="rmsprop",
    lr=1e-3,
    return_window=10,
)
CASES = {
    "minatar-dqn": dict(env_id="MinAtar/Breakout-v0", agent="dqn"),
    "cartpole-mdqn": dict(env_id="CartPole-v1", agent="mdqn", hidden_sizes=[32, 32], eps_end=0.01),
}


def _cfg(tmp_path, name, **kw) -> Config:
    return Config(**{**SHORT, "run_dir": str(tmp_path / name), **kw})


def _weights(path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=False)["q_net"]


def test_batched_forward_is_the_solo_forward_bit_for_bit():
    torch.manual_seed(0)
    for nets, obs in [
        ([MinAtarQNetwork(4, 6) for _ in range(3)], (torch.rand(3, 7, 4, 10, 10) < 0.3).to(torch.uint8)),
        ([MLPQNetwork(4, 2, (32, 32)) for _ in range(3)], torch.randn(3, 7, 4)),
    ]:
        q = batched_q_values(stack_params(nets), obs)
        assert q.shape == (3, 7, nets[0](obs[0]).shape[1])
        for k, net in enumerate(nets):  # grouped conv == conv2d, baddbmm == addmm, exactly
            assert torch.equal(q[k], net(obs[k]))


def test_each_agent_gets_only_its_own_gradient():
    torch.manual_seed(0)
    nets = [MinAtarQNetwork(4, 6) for _ in range(3)]
    params = stack_params(nets)
    obs = (torch.rand(3, 8, 4, 10, 10) < 0.3).to(torch.uint8)
    batched_q_values(params, obs)[1].sum().backward()  # a loss of agent 1 only
    for p in params.values():
        assert p.grad[0].abs().max() == 0 and p.grad[2].abs().max() == 0 and p.grad[1].abs().max() > 0
    # and the gradient of the summed losses is, agent by agent, the solo gradient (to rounding)
    cfg = Config(env_id="MinAtar/Breakout-v0", optimizer="rmsprop", lr=1e-3)
    params = stack_params(nets)
    opt = torch.optim.SGD(list(params.values()), lr=1.0)  # one step of lr 1: the parameters move by -grad
    batch = {
        "obs": obs,
        "next_obs": obs.flip(1),
        "actions": torch.randint(0, 6, (3, 8)),
        "rewards": torch.randn(3, 8),
        "terminated": torch.zeros(3, 8),
    }
    before = {k: v.detach().clone() for k, v in params.items()}
    loss, _ = batched_td_update(cfg, params, {k: v.detach().clone() for k, v in params.items()}, opt, batch)
    net = nets[2]
    q_sa = net(obs[2]).gather(1, batch["actions"][2].unsqueeze(1)).squeeze(1)
    y = batch["rewards"][2] + cfg.gamma * net(obs[2].flip(0)).max(1).values.detach()
    solo = F.smooth_l1_loss(q_sa, y)
    solo.backward()
    assert torch.equal(loss[2], solo.detach())
    for name, p in net.named_parameters():
        torch.testing.assert_close(before[name][2] - params[name][2].detach(), p.grad, rtol=0, atol=1e-7)


@pytest.mark.parametrize("case", CASES)
def test_agent_k_of_a_batched_run_is_the_solo_run_with_seed_k(tmp_path, case):
    """Forward passes are bit-exact (previous test); the weight gradient of the grouped convolution
    (MinAtar) and of ``baddbmm`` sum their products in another order than the solo kernels, which
    leaves differences of order 1e-9 per step. Over this run (300 updates) every action, episode and
    evaluation return is identical and the weights agree to 1e-6."""
    kw = CASES[case]
    train_batched(_cfg(tmp_path, "batched", seed=1, num_seeds=3, **kw))
    for seed in (1, 3):
        train(_cfg(tmp_path, f"solo{seed}", seed=seed, **kw))
        agent, solo = tmp_path / "batched" / f"seed{seed}", tmp_path / f"solo{seed}"
        assert (agent / "episodes.csv").read_text() == (solo / "episodes.csv").read_text()
        assert len((solo / "episodes.csv").read_text().splitlines()) > 3  # episodes did end
        a, s = json.loads((agent / "eval.json").read_text()), json.loads((solo / "eval.json").read_text())
        assert a == s  # every evaluation return (MinAtar) or their statistics (CartPole), and the seed
        wa, ws = _weights(agent / "model.pt"), _weights(solo / "model.pt")
        assert wa.keys() == ws.keys()
        for name in ws:
            torch.testing.assert_close(wa[name], ws[name], rtol=0, atol=1e-6)
        summary = json.loads((agent / "summary.json").read_text())
        assert summary["finished"] and summary["seed"] == seed and summary["num_seeds"] == 3
    w1, w2 = _weights(tmp_path / "batched/seed1/model.pt"), _weights(tmp_path / "batched/seed2/model.pt")
    assert not torch.equal(
        w1["out.weight" if "out.weight" in w1 else "net.4.weight"],
        w2["out.weight" if "out.weight" in w2 else "net.4.weight"],
    )  # independent agents


def test_a_stopped_batched_run_resumes_to_exactly_the_uninterrupted_result(tmp_path):
    kw = dict(CASES["minatar-dqn"], seed=1, num_seeds=2)
    train_batched(_cfg(tmp_path, "whole", **kw))
    part = train_batched(_cfg(tmp_path, "parts", **kw), stop_after_steps=230)  # mid-interval: not a checkpoint step
    assert part[0]["steps"] == 230 and not part[0]["finished"]
    with pytest.raises(ValueError, match="already holds a run"):
        train_batched(_cfg(tmp_path, "parts", **kw))
    with pytest.raises(CheckpointError, match="num_seeds=3"):
        train_batched(_cfg(tmp_path, "parts", **{**kw, "num_seeds": 3}), resume=True)
    train_batched(_cfg(tmp_path, "parts", **kw), resume=True)
    for seed in (1, 2):
        whole, parts = tmp_path / "whole" / f"seed{seed}", tmp_path / "parts" / f"seed{seed}"
        wa, wb = _weights(whole / "model.pt"), _weights(parts / "model.pt")
        assert all(torch.equal(wa[k], wb[k]) for k in wa)
        assert (whole / "episodes.csv").read_text() == (parts / "episodes.csv").read_text()
        assert (whole / "eval.json").read_text() == (parts / "eval.json").read_text()


@pytest.mark.parametrize(
    "override, message",
    [
        (dict(num_seeds=0), "num_seeds must be positive"),
        (dict(eval_every=100, stop_return=400.0), "train_batched trains every seed for total_steps"),
    ],
)
def test_bad_batched_configs_raise(tmp_path, override, message):
    with pytest.raises(ValueError, match=message):
        train_batched(_cfg(tmp_path, "bad", **{**CASES["minatar-dqn"], **override}))
    assert not (tmp_path / "bad").exists()  # refused before anything was written


def test_the_solo_trainer_refuses_several_seeds(tmp_path):
    with pytest.raises(ValueError, match="paperlab.dqn.train_batched"):
        train(_cfg(tmp_path, "solo", num_seeds=2, **CASES["minatar-dqn"]))


@pytest.mark.slow  # two short trainings and a 2048^3 matmul: ~20 s
def test_the_seeds_benchmark_reports_every_row_with_flops_and_the_machine():
    from paperlab.dqn.bench_seeds import run

    result = run(
        str(Path(__file__).resolve().parents[3] / "configs/dqn/minatar.yaml"),
        [2],
        frames=1500,
        overrides=["compile_optimizer=false", "buffer_size=2000", "conv_hidden=16"],
    )
    solo, batched = result["rows"]
    assert solo["num_seeds"] == 1 and batched["num_seeds"] == 2 and solo["speedup_vs_solo_trainer"] == 1.0
    assert batched["update_mflop"] == pytest.approx(2 * solo["update_mflop"], abs=0.02) and solo["update_mflop"] > 0
    assert 0 < batched["share_of_matmul_peak"] < 1 and result["matmul_peak_gflops"] > 0
    assert result["cpu_model"] and len(batched["load_before"]) == 3


def test_evaluation_episodes_are_cut_at_eval_max_steps():
    from paperlab.dqn.evaluate import evaluate_agents

    torch.manual_seed(0)
    params = stack_params([MinAtarQNetwork(7, 6) for _ in range(2)])  # Freeway: 7 channels, 2500-frame episodes
    results = evaluate_agents(params, "MinAtar/Freeway-v0", seeds=[1, 2], episodes=2, max_steps_per_episode=50)
    assert [r["length_mean"] for r in results] == [50.0, 50.0] and [r["seed"] for r in results] == [1, 2]
    with pytest.raises(ValueError, match="eval_max_steps must be positive"):
        Config(eval_max_steps=0)
