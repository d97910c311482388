"""Task 2: PPO's token loss against a hand computation, GAE against a direct loop, the reward's terms on
hand-made lines, the sampler and the judge; a whole run on generated sonnets (slow)."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from paperlab.toys import ppo_verse as pv
from paperlab.toys.config import Config

LINES = [
    "shall i compare thee to a summer's day",
    "thou art more lovely and more temperate",
    "rough winds do shake the darling buds of may",
    "and summer's lease hath all too short a date",
]


def _sonnets(n: int, seed: int = 0) -> list[list[str]]:
    """n 14-line 'sonnets' of shuffled words from LINES (every word occurs often, so all are in the vocabulary)."""
    rng = np.random.default_rng(seed)
    pool = " ".join(LINES).split()
    return [[" ".join(rng.choice(pool, 6)) for _ in range(12)] + LINES[:2] for _ in range(n)]


@pytest.fixture(scope="module")
def corpus():
    return pv.Corpus(_sonnets(6) + [LINES * 3 + LINES[:2]], min_count=1, max_len=24)


def _encode(corpus, text: str) -> np.ndarray:
    """'line / line' -> tokens after BOS ending in EOS (no '/': one line)."""
    parts = text.split(" / ")
    ids = [corpus.index[w] for w in parts[0].split()]
    for p in parts[1:]:
        ids += [pv.NL] + [corpus.index[w] for w in p.split()]
    return np.array(ids + [pv.EOS] + [pv.PAD] * (24 - len(ids) - 1), np.int32)


def test_ppo_loss_by_hand():
    # token 1: ratio 1.1, A = +1 (inside the clip range); token 2: ratio 0.5, A = -2 (clipped: 0.8 * -2 = -1.6
    # is the minimum); token 3: masked out, whatever its numbers
    logp_old = jnp.array([[-1.0, -2.0, -3.0]])
    logp = logp_old + jnp.log(jnp.array([[1.1, 0.5, 3.0]]))
    adv = jnp.array([[1.0, -2.0, 10.0]])
    values, returns = jnp.array([[0.5, -1.0, 7.0]]), jnp.array([[1.0, 1.0, 0.0]])
    mask = jnp.array([[1.0, 1.0, 0.0]])
    loss, (pg, vf, clipped) = pv.ppo_loss(logp, logp_old, adv, values, returns, mask, 0.2, 0.5)
    assert float(pg) == pytest.approx(-(1.1 * 1.0 + (-1.6)) / 2)  # 0.25
    assert float(vf) == pytest.approx((0.5**2 + 2.0**2) / 2)  # 2.125
    assert float(clipped) == pytest.approx(0.5)
    assert float(loss) == pytest.approx(0.25 + 0.5 * 2.125)
    # gradient: -rho A / n where the unclipped term is the minimum, 0 where the clipped one is, 0 when masked
    g = jax.grad(lambda lp: pv.ppo_loss(lp, logp_old, adv, values, returns, mask, 0.2, 0.5)[1][0])(logp)
    np.testing.assert_allclose(np.asarray(g), [[-1.1 / 2, 0.0, 0.0]], rtol=1e-5, atol=1e-7)
    # equal policies: the surrogate is -mean(A), nothing clipped
    _, (pg0, _, c0) = pv.ppo_loss(logp_old, logp_old, adv, values, returns, mask, 0.2, 0.5)
    assert float(pg0) == pytest.approx(-(1.0 - 2.0) / 2) and float(c0) == 0.0


def test_gae_equals_a_direct_loop():
    rng = np.random.default_rng(0)
    B, L, gamma, lam = 5, 7, 0.97, 0.9
    r, v = rng.normal(size=(B, L)), rng.normal(size=(B, L))
    lengths = np.array([7, 1, 4, 6, 3])
    mask = (np.arange(L)[None] < lengths[:, None]).astype(float)
    adv, ret = pv.gae(jnp.asarray(r * mask), jnp.asarray(v), jnp.asarray(mask), gamma, lam)
    want = np.zeros((B, L))
    for b in range(B):
        a_next = 0.0
        for t in reversed(range(lengths[b])):
            v_next = v[b, t + 1] if t + 1 < lengths[b] else 0.0  # the episode ends at its last token
            delta = r[b, t] + gamma * v_next - v[b, t]
            a_next = delta + gamma * lam * a_next
            want[b, t] = a_next
    np.testing.assert_allclose(np.asarray(adv), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(ret), (want + v) * mask, rtol=1e-5, atol=1e-6)
    # lambda = 1, gamma = 1: the advantage is the sum of the remaining rewards minus V
    adv1, _ = pv.gae(jnp.asarray(r * mask), jnp.asarray(v), jnp.asarray(mask), 1.0, 1.0)
    tail = np.cumsum((r * mask)[:, ::-1], 1)[:, ::-1]
    np.testing.assert_allclose(np.asarray(adv1), (tail - v) * mask, rtol=1e-5, atol=1e-5)


def test_syllables_and_rhymes_from_the_dictionary():
    assert [sum(pv.syllables(w) for w in line.split()) for line in (LINES[0], LINES[2], LINES[3])] == [10, 10, 10]
    assert pv.rhyme_key("day") == pv.rhyme_key("may") != pv.rhyme_key("date")
    assert pv.syllables("beauty's") == 2 and pv.rhyme_key("beauty's").endswith("Z")  # via "beauty"
    assert pv.syllables("xqzzle") >= 1 and pv.rhyme_key("xqzzle").startswith("~")  # not in the dictionary
    assert pv.words("From fairest creatures, we desire 'increase'!") == [
        "from", "fairest", "creatures", "we", "desire", "increase",
    ]  # fmt: skip


def test_reward_terms_on_hand_made_lines(corpus):
    cases = {
        # ten syllables each, day / may rhyme, no word repeated
        "good": LINES[0] + " / " + LINES[2],
        # the hack: the same end word "rhymes", and counts as a repetition
        "same": LINES[0] + " / rough winds do shake the darling buds of day",
        # no line break: malformed (no rhyme; line 1 has 20 syllables, line 2 none)
        "one_line": LINES[0] + " " + LINES[2],
        # repetition: 5 of 6 words repeat an earlier one
        "loop": "day day day day / day day",
    }
    x = jnp.asarray(np.stack([_encode(corpus, t) for t in cases.values()]))
    lm = jnp.full(x.shape, -2.0)
    t = {
        k: np.asarray(v)
        for k, v in jax.jit(pv.reward_terms)(x, lm, jnp.asarray(corpus.syllables), jnp.asarray(corpus.rhyme)).items()
    }
    np.testing.assert_allclose(t["form_ok"], [1, 1, 0, 1])
    np.testing.assert_allclose(t["rhyme"], [1, 1, 0, 1])
    np.testing.assert_allclose(t["same_end"], [0, 1, 0, 1])
    np.testing.assert_allclose(t["metre"], [0, 0, (10 + 10) / 2 / 10, (6 + 8) / 2 / 10], atol=1e-6)
    np.testing.assert_allclose(t["ten_syllables"], [1, 1, 0, 0])
    np.testing.assert_allclose(t["repeated"], [0, 1 / 17, 0, 5 / 6], atol=1e-6)
    np.testing.assert_allclose(t["lm"], -2.0)
    np.testing.assert_allclose(t["length"], [19, 19, 18, 8])
    vc = Config(task="ppo_verse").ppo_verse
    R = np.asarray(pv.total_reward({k: jnp.asarray(v) for k, v in t.items()}, vc, 2.0))
    c_m, c_r, c_f = vc.metre_coef, vc.rhyme_coef, vc.form_coef
    by_hand = [
        -2.0 + c_r,
        -2.0 + c_r - 2.0 * (1 / 17 + 1),
        -2.0 - c_m * 1.0 - c_f,
        -2.0 - c_m * 0.7 + c_r - 2.0 * (5 / 6 + 1),
    ]
    np.testing.assert_allclose(R, by_hand, rtol=1e-5)
    empty = jnp.asarray(np.array([[pv.NL, pv.EOS] + [pv.PAD] * 22], np.int32))
    syl, rhy = jnp.asarray(corpus.syllables), jnp.asarray(corpus.rhyme)
    assert float(pv.reward_terms(empty, lm[:1], syl, rhy, min_words=1)["form_ok"][0]) == 0.0
    assert float(pv.reward_terms(empty, lm[:1], syl, rhy, min_words=0)["form_ok"][0]) == 1.0
    # the same measures from the words agree with the token tables
    pairs = [corpus.decode(row) for row in np.asarray(x)]
    m = pv.text_measures(pairs[:2])
    assert m["ten_syllable_lines"] == 1.0 and m["rhyme_rate"] == 0.5 and m["same_end_word_rate"] == 0.5


@pytest.mark.slow  # compiles the sampling loop (about 10 s)
def test_sampler_respects_the_vocabulary_and_stops_at_eos(corpus):
    model = pv.VerseLM(len(corpus.vocab), 24, d_model=16, n_heads=2, n_layers=1)
    params = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 24), jnp.int32))["params"]
    x = np.asarray(jax.jit(lambda p, k: pv.sample(model, p, k, 64, 24))(params, jax.random.key(1)))
    assert not np.isin(x, [pv.BOS, pv.UNK]).any()
    m = np.asarray(pv.valid_mask(jnp.asarray(x)))
    assert ((x == pv.PAD) == (m == 0)).all()  # PAD exactly after the first EOS, never before
    lp, v, ent = jax.jit(lambda p, x: pv.token_logp(model, p, x))(params, jnp.asarray(x))
    assert lp.shape == v.shape == ent.shape == x.shape and float(lp.max()) <= 0.0


def test_the_judge_is_a_distribution_and_prefers_seen_bigrams(corpus):
    judge = pv.BigramJudge(corpus.tokens["B"], len(corpus.vocab))
    V = len(corpus.vocab)
    for prev in (pv.BOS, corpus.index["day"], pv.NL):
        p = np.exp(judge.logp(np.full(V, prev), np.arange(V)))
        assert p.sum() == pytest.approx(1.0) and p[pv.PAD] == 0 and p[pv.BOS] == 0
    real = _encode(corpus, LINES[0] + " / " + LINES[1])[None]
    shuffled = _encode(corpus, " ".join(LINES[1].split()[::-1]) + " / " + " ".join(LINES[0].split()[::-1]))[None]
    assert judge.perplexity(real) < judge.perplexity(shuffled)


@pytest.mark.slow
def test_a_tiny_run_end_to_end(tmp_path):
    """The whole command on generated sonnets (slow: it compiles the pretraining and the vmapped PPO step)."""
    data = tmp_path / "sonnets"
    data.mkdir()
    (data / "sonnets.txt").write_text("\r\n" + "\r\n\r\n".join("\r\n".join(s) for s in _sonnets(8)) + "\r\n")
    run = tmp_path / "run"
    args = [
        f"ppo_verse.data_dir={data}", f"run_dir={run}", "ppo_verse.min_count=1", "ppo_verse.d_model=16",
        "ppo_verse.n_heads=2", "ppo_verse.n_layers=1", "ppo_verse.mle_steps=30", "ppo_verse.train_steps=4",
        "ppo_verse.rollout_batch=8", "ppo_verse.minibatches=2", "ppo_verse.ppo_epochs=1", "ppo_verse.n_eval=16",
        "checkpoint_every=2",
    ]  # fmt: skip
    m = pv.main(args)
    assert m["policies"] == ["mle", "ppo", "ppo_no_penalty"]
    for name in m["policies"]:
        assert len(m[name]["samples"]) == 8 and np.isfinite(m[name]["judge_perplexity"])
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and rows[0]["ppo/kl"] == pytest.approx(0.0, abs=1e-4)
    assert (run / "ppo_verse.png").is_file()
    again = pv.main([*args, "eval_only=true"])
    assert again["ppo"]["samples"] == m["ppo"]["samples"]


def test_missing_sonnets_is_one_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="sonnets.txt"):
        pv.read_sonnets(tmp_path)
