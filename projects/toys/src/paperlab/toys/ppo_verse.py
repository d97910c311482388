"""Task 2: PPO that writes Shakespeare-like verse: a word-level policy over the sonnets' vocabulary, trained
by maximum likelihood, then fine-tuned with PPO (clipped objective, value head, GAE over tokens, a KL
penalty to the maximum-likelihood policy) on a reward that is hard to game.

Data (``data/shakespeare-sonnets/sonnets.txt``, 154 sonnets): an episode is one **rhymed pair of lines**
of a sonnet (lines 1 & 3, 2 & 4, 5 & 7, 6 & 8, 9 & 11, 10 & 12, 13 & 14 of the 14-line sonnets), written
as words, lower case, without punctuation: ``BOS w .. w / w .. w EOS``. The vocabulary is every word
that occurs at least ``min_count`` times in the sonnets (the rest is ``<unk>``, which is never sampled).
The sonnets are split by number: the even ones (split A) train the policy, the odd ones (split B)
train the reward's language model and the judge. Nothing the policy is trained on by MLE is seen by
the models that score it.

Models: the policy is a small causal transformer with a softmax over the words and a **value head** (a
linear read-out of the same last hidden state; by default its loss trains the head only, since in the
first run a value loss that also moved the shared layers went with a policy that blew up); the reward
model is a separate transformer of the same shape trained on split B; the judge is a count-based
bigram model (absolute discounting, also split B), a different family, so that a quirk of the neural
reward model that PPO exploits does not carry over.

The reward of a finished couplet x (``reward_terms``; every term computed in JAX from per-word tables
built with the CMU pronouncing dictionary, so the whole PPO iteration is one jitted function):

    R(x) = c_lm * mean_t log p_RM(x_t | x_<t)                   log-likelihood under the reward LM
         - c_metre * mean_lines min(|syllables - 10|, 10) / 10   iambic pentameter has ten syllables
         + c_rhyme * 1[the two end words share their rhyming part]
         - c_rep * (share of words repeating an earlier word + 1[the two end words are the same word])
         - c_form * 1[not two lines of at least min_words words, ending in EOS]

PPO (Schulman et al. 2017) at the token level, as in Ziegler et al. 2019 / Stiennon et al. 2020: the
per-token reward is r_t = -beta (log pi(x_t) - log pi_MLE(x_t)) plus R(x) at the last token;
advantages by GAE over the tokens (gamma, lambda), whitened over the batch; the loss is the clipped
surrogate plus c_v times the squared error of the value head, a few epochs of minibatches per batch.
``ablate_penalty`` trains a second policy from the same start with c_rep = 0 (the reward without its
repetition penalty): the run that shows which hack the penalty closes.

Evaluation (numbers a reader can trust, none of them the reward itself): the judge's perplexity of
the samples, distinct-1/2, the share of lines with ten syllables, the rate of true rhymes (different
words), the rate of identical end words and of repeated words, for the MLE policy, each PPO policy and
real held-out couplets.

    python -m paperlab.toys.ppo_verse --config configs/toys/ppo_verse.yaml
"""

from __future__ import annotations

import re
from collections import Counter
from functools import cache
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from paperlab.shared.cli import run_command
from paperlab.toys.common import Trainer, run_task

PAD, BOS, NL, EOS, UNK = 0, 1, 2, 3, 4
SPECIALS = ("<pad>", "<bos>", "/", "<eos>", "<unk>")
N_SPECIAL = len(SPECIALS)
BANNED = (PAD, BOS, UNK)  # never sampled
# the rhyming pairs (0-based line numbers) of a 14-line sonnet: abab cdcd efef gg
RHYME_PAIRS = ((0, 2), (1, 3), (4, 6), (5, 7), (8, 10), (9, 11), (12, 13))

# ----------------------------------------------------------------------------- words: syllables and rhymes


def words(line: str) -> list[str]:
    """Lower-case words of a line, punctuation dropped, inner apostrophes kept ("beauty's", "o'er")."""
    return [w.strip("'") for w in re.findall(r"[a-z']+", line.lower()) if w.strip("'")]


@cache
def _phones(word: str) -> str | None:
    import pronouncing

    p = pronouncing.phones_for_word(word)
    return p[0] if p else None


def syllables(word: str) -> int:
    """Syllables from the CMU dictionary (first pronunciation); a possessive or a word it lacks: the base
    word's count, else the number of vowel groups in the spelling (a final silent e dropped)."""
    p = _phones(word)
    if p is None and word.endswith("'s") and _phones(word[:-2]):
        p = _phones(word[:-2])
    if p is not None:
        import pronouncing

        return pronouncing.syllable_count(p)
    w = word.replace("'", "")
    n = len(re.findall(r"[aeiouy]+", w))
    if w.endswith("e") and not w.endswith(("le", "ee")) and n > 1:
        n -= 1
    return max(n, 1)


def rhyme_key(word: str) -> str:
    """The rhyming part (last stressed vowel to the end) from the CMU dictionary; for a word it lacks, the
    spelling from the last vowel group on (prefixed '~', so it only matches other spelled endings)."""
    import pronouncing

    p = _phones(word)
    if p is None and word.endswith("'s") and _phones(word[:-2]):
        p = _phones(word[:-2]) + " Z"
    if p is not None:
        return re.sub(r"\d", "", pronouncing.rhyming_part(p))  # stress marks dropped
    m = re.search(r"[aeiouy]+[^aeiouy]*$", word.replace("'", ""))
    return "~" + (m.group(0) if m else word)


# ----------------------------------------------------------------------------- data


def read_sonnets(data_dir: str | Path) -> list[list[str]]:
    """The sonnets as lists of lines (CRLF text, one blank line between sonnets)."""
    path = Path(data_dir) / "sonnets.txt"
    if not path.is_file():
        raise FileNotFoundError(
            f"no {path}: the task needs Shakespeare's sonnets (sonnets.txt, 154 sonnets separated by blank lines; "
            "see data/shakespeare-sonnets/README.md) or ppo_verse.data_dir=<folder holding sonnets.txt>"
        )
    text = path.read_bytes().decode("utf-8").replace("\r\n", "\n")
    return [b.strip().split("\n") for b in re.split(r"\n\s*\n", text) if b.strip()]


def couplets(sonnets: list[list[str]]) -> list[tuple[list[str], list[str]]]:
    """The rhymed pairs of lines of every 14-line sonnet, as word lists."""
    return [(words(s[a]), words(s[b])) for s in sonnets if len(s) == 14 for a, b in RHYME_PAIRS]


class Corpus:
    """Vocabulary, encoded couplets of the two splits, and the per-token tables the reward needs."""

    def __init__(self, sonnets: list[list[str]], min_count: int, max_len: int):
        counts = Counter(w for s in sonnets for line in s for w in words(line))
        self.vocab = list(SPECIALS) + sorted(w for w, n in counts.items() if n >= min_count)
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.max_len = max_len
        split = {"A": sonnets[0::2], "B": sonnets[1::2]}
        self.text = {k: [c for c in couplets(v) if len(c[0]) + len(c[1]) + 2 <= max_len] for k, v in split.items()}
        self.tokens = {k: np.stack([self.encode(*c) for c in v]) for k, v in self.text.items()}
        words_ = self.vocab[N_SPECIAL:]
        self.syllables = np.array([0] * N_SPECIAL + [syllables(w) for w in words_], np.int32)
        keys = sorted({rhyme_key(w) for w in words_})
        self.rhyme = np.array([-1] * N_SPECIAL + [keys.index(rhyme_key(w)) for w in words_], np.int32)

    def encode(self, line1: list[str], line2: list[str]) -> np.ndarray:
        """BOS line1 / line2 EOS, padded to 1 + max_len tokens."""
        ids = [BOS] + [self.index.get(w, UNK) for w in line1] + [NL] + [self.index.get(w, UNK) for w in line2] + [EOS]
        return np.array(ids + [PAD] * (self.max_len + 1 - len(ids)), np.int32)

    def decode(self, x: np.ndarray) -> tuple[list[str], list[str]]:
        """Tokens after BOS -> (line 1 words, line 2 words); stops at EOS, words after a second '/' dropped."""
        lines: list[list[str]] = [[]]
        for t in np.asarray(x).tolist():
            if t == EOS or t == PAD:
                break
            if t == NL:
                lines.append([])
            else:
                lines[-1].append(self.vocab[t])
        return (lines + [[]])[0], (lines + [[]])[1] if len(lines) >= 2 else []


# ----------------------------------------------------------------------------- the models


class VerseLM(nn.Module):
    """Causal transformer (pre-LN, flax attention) returning next-token logits and a value per position."""

    vocab: int
    max_len: int
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    value_stop_gradient: bool = True  # the value loss trains the value head only, not the shared layers

    @nn.compact
    def __call__(self, tokens_BxL):
        L = tokens_BxL.shape[1]
        x = nn.Embed(self.vocab, self.d_model)(tokens_BxL) + nn.Embed(self.max_len, self.d_model)(jnp.arange(L))
        mask = nn.make_causal_mask(tokens_BxL)
        for _ in range(self.n_layers):
            x = x + nn.SelfAttention(self.n_heads, deterministic=True)(nn.LayerNorm()(x), mask=mask)
            x = x + nn.Dense(self.d_model)(nn.gelu(nn.Dense(4 * self.d_model)(nn.LayerNorm()(x))))
        h = nn.LayerNorm()(x)
        logits = nn.Dense(self.vocab)(h)
        allowed = ~jnp.isin(jnp.arange(self.vocab), jnp.array(BANNED))
        hv = jax.lax.stop_gradient(h) if self.value_stop_gradient else h
        return jnp.where(allowed, logits, -1e9), nn.Dense(1, name="value")(hv)[..., 0]


def token_logp(model, params, x_BxL):
    """(log pi(x_t | BOS x_<t), V before x_t, entropy of pi(. | BOS x_<t)), each (B, L)."""
    inp = jnp.concatenate([jnp.full((x_BxL.shape[0], 1), BOS), x_BxL[:, :-1]], axis=1)
    logits, values = model.apply({"params": params}, inp)
    logp = jax.nn.log_softmax(logits)
    entropy = -(jnp.exp(logp) * logp).sum(-1)
    return jnp.take_along_axis(logp, x_BxL[..., None], -1)[..., 0], values, entropy


def valid_mask(x_BxL):
    """1 up to and including the first EOS, 0 after it."""
    eos = (x_BxL == EOS).astype(jnp.int32)
    return (jnp.cumsum(eos, axis=1) - eos == 0).astype(jnp.float32)


def sample(model, params, key, n: int, length: int):
    """n sequences of ``length`` tokens after BOS at temperature 1; PAD after the first EOS."""
    buf = jnp.concatenate([jnp.full((n, 1), BOS, jnp.int32), jnp.zeros((n, length), jnp.int32)], axis=1)

    def body(i, buf):
        logits, _ = model.apply({"params": params}, buf[:, :-1])
        tok = jax.random.categorical(jax.random.fold_in(key, i), jax.lax.dynamic_index_in_dim(logits, i, 1, False))
        done = jnp.any(buf == EOS, axis=1)
        return buf.at[:, i + 1].set(jnp.where(done, PAD, tok))

    return jax.lax.fori_loop(0, length, body, buf)[:, 1:]


# ----------------------------------------------------------------------------- the reward


def reward_terms(x_BxL, lm_logp_BxL, syllables_V, rhyme_V, min_words: int = 1) -> dict:
    """Every term of R(x) for sequences x (tokens after BOS) given the reward LM's log p of each token.
    A couplet is well formed when it has two lines of at least ``min_words`` words each and ends in EOS."""
    m = valid_mask(x_BxL)
    word = (x_BxL >= N_SPECIAL) * m
    nl = (x_BxL == NL) * m
    eos_pos = jnp.argmax(x_BxL == EOS, axis=1)
    has_eos = jnp.any(x_BxL == EOS, axis=1)
    line = jnp.cumsum(nl, axis=1) - nl  # 0 on the first line, 1 on the second
    words_per_line = jnp.stack([(word * (line == k)).sum(1) for k in (0, 1)], 1)
    form_ok = has_eos & (nl.sum(1) == 1) & (words_per_line.min(1) >= min_words)
    syl = syllables_V[x_BxL] * word
    per_line = jnp.stack([(syl * (line == k)).sum(1) for k in (0, 1)], 1)
    metre = jnp.minimum(jnp.abs(per_line - 10), 10).mean(1) / 10
    nl_pos = jnp.argmax(x_BxL == NL, axis=1)
    take = lambda pos: jnp.take_along_axis(x_BxL, jnp.maximum(pos - 1, 0)[:, None], 1)[:, 0]
    end1, end2 = take(nl_pos), take(eos_pos)
    ends_are_words = form_ok & (nl_pos >= 1) & (eos_pos > nl_pos + 1) & (end1 >= N_SPECIAL) & (end2 >= N_SPECIAL)
    rhyme = ends_are_words & (rhyme_V[end1] == rhyme_V[end2])
    same_end = ends_are_words & (end1 == end2)
    L = x_BxL.shape[1]
    earlier = jnp.tril(jnp.ones((L, L), bool), -1)  # [t, s]: s < t
    repeats = ((x_BxL[:, :, None] == x_BxL[:, None, :]) & earlier & (word[:, None, :] > 0)).any(2) * word
    rep_share = repeats.sum(1) / jnp.maximum(word.sum(1), 1)
    return {
        "lm": (lm_logp_BxL * m).sum(1) / m.sum(1),
        "metre": metre,
        "ten_syllables": ((per_line == 10).sum(1) * form_ok) / 2,
        "rhyme": rhyme.astype(jnp.float32),
        "same_end": same_end.astype(jnp.float32),
        "repeated": rep_share,
        "form_ok": form_ok.astype(jnp.float32),
        "length": m.sum(1),
    }


def total_reward(t: dict, vc, rep_coef) -> jnp.ndarray:
    return (
        vc.lm_coef * t["lm"]
        - vc.metre_coef * t["metre"]
        + vc.rhyme_coef * t["rhyme"]
        - rep_coef * (t["repeated"] + t["same_end"])
        - vc.form_coef * (1.0 - t["form_ok"])
    )


# ----------------------------------------------------------------------------- PPO


def gae(rewards_BxL, values_BxL, mask_BxL, gamma: float, lam: float):
    """Generalised advantage estimation over the tokens of each sequence (Schulman et al. 2016):

    delta_t = r_t + gamma m_{t+1} V_{t+1} - V_t,  A_t = delta_t + gamma lam m_{t+1} A_{t+1},  A = 0 past the end.
    Returns (advantages, returns = A + V), both zero where mask is 0."""
    nxt = lambda a: jnp.concatenate([a[:, 1:], jnp.zeros_like(a[:, :1])], axis=1)
    m_next = nxt(mask_BxL)
    delta = rewards_BxL + gamma * m_next * nxt(values_BxL) - values_BxL

    def back(a_next, inp):
        d, mn = inp
        a = d + gamma * lam * mn * a_next
        return a, a

    _, adv = jax.lax.scan(back, jnp.zeros(rewards_BxL.shape[0]), (delta.T, m_next.T), reverse=True)
    adv = adv.T * mask_BxL
    return adv, (adv + values_BxL) * mask_BxL


def ppo_loss(logp, logp_old, adv, values, returns, mask, clip: float, value_coef: float):
    """Clipped surrogate + value loss, means over the valid tokens: (loss, (policy loss, value loss, clip fraction)).

    L = -mean_t min(rho_t A_t, clip(rho_t, 1 - clip, 1 + clip) A_t) + c_v mean_t (V_t - G_t)^2,
    rho_t = pi(x_t) / pi_old(x_t)."""
    n = jnp.maximum(mask.sum(), 1.0)
    ratio = jnp.exp(logp - logp_old)
    surrogate = jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - clip, 1 + clip) * adv)
    pg = -(surrogate * mask).sum() / n
    vf = (((values - returns) ** 2) * mask).sum() / n
    clipped = ((jnp.abs(ratio - 1) > clip) * mask).sum() / n
    return pg + value_coef * vf, (pg, vf, clipped)


def whiten(a, mask):
    n = jnp.maximum(mask.sum(), 1.0)
    mean = (a * mask).sum() / n
    std = jnp.sqrt((((a - mean) ** 2) * mask).sum() / n + 1e-8)
    return (a - mean) / std * mask


def variants(vc) -> list[tuple[str, float]]:
    """(name, repetition-penalty weight) of every PPO policy trained from the MLE start."""
    return [("ppo", vc.rep_coef)] + ([("ppo_no_penalty", 0.0)] if vc.ablate_penalty else [])


def make_model(vc, corpus: Corpus) -> VerseLM:
    return VerseLM(len(corpus.vocab), vc.max_len, vc.d_model, vc.n_heads, vc.n_layers, vc.value_stop_gradient)


def mle_loss(model, params, tokens_BxL1):
    """Mean next-token cross-entropy over the real tokens (BOS .. EOS) of a batch of encoded couplets; <unk>
    is context but never a target (the models give it probability 0: it is never sampled)."""
    x = tokens_BxL1[:, 1:]
    logp, _, _ = token_logp(model, params, x)
    m = ((x != PAD) & (x != UNK)).astype(jnp.float32)
    return -(logp * m).sum() / m.sum()


def pretrain(model, key, data, steps: int, batch: int, lr: float):
    """MLE of a VerseLM on encoded couplets: (params, loss per step). One jitted lax.scan."""
    schedule = optax.warmup_cosine_decay_schedule(0.0, lr, min(100, steps // 10 + 1), steps + 1)
    tx = optax.adamw(schedule, weight_decay=0.1)
    k_init, k_data = jax.random.split(key)
    params = model.init(k_init, data[:1, :-1])["params"]
    data = jnp.asarray(data)

    def step(carry, i):
        params, opt = carry
        idx = jax.random.randint(jax.random.fold_in(k_data, i), (batch,), 0, len(data))
        loss, g = jax.value_and_grad(lambda p: mle_loss(model, p, data[idx]))(params)
        u, opt = tx.update(g, opt, params)
        return (optax.apply_updates(params, u), opt), loss

    (params, _), losses = jax.lax.scan(step, (params, tx.init(params)), jnp.arange(steps))
    return params, losses


def load_corpus(vc) -> Corpus:
    return Corpus(read_sonnets(vc.data_dir), vc.min_count, vc.max_len)


def make_trainer(cfg, corpus: Corpus | None = None) -> Trainer:
    """State: the PPO policies (stacked over the variants) with their Adam states, the fixed MLE policy
    (the KL reference and every variant's start), the reward LM and the pretraining losses.

    ``init`` does the pretraining (the policy on split A, the reward LM on split B: two jitted scans);
    each training step is one PPO iteration of every variant (vmap)."""
    vc = cfg.ppo_verse
    corpus = corpus or load_corpus(vc)
    model = make_model(vc, corpus)
    names = variants(vc)
    rep = jnp.array([r for _, r in names])
    syl_V, rhyme_V = jnp.asarray(corpus.syllables), jnp.asarray(corpus.rhyme)
    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(vc.lr))
    base = jax.random.key(cfg.seed)
    n_mb = vc.minibatches
    mb = vc.rollout_batch // n_mb

    def init():
        k_pol, k_rm = jax.random.split(jax.random.fold_in(base, 1))
        ref, pol_losses = pretrain(model, k_pol, corpus.tokens["A"], vc.mle_steps, vc.mle_batch, vc.mle_lr)
        rm, rm_losses = pretrain(model, k_rm, corpus.tokens["B"], vc.mle_steps, vc.mle_batch, vc.mle_lr)
        stack = lambda t: jax.tree_util.tree_map(lambda a: jnp.stack([a] * len(names)), t)
        return {
            "policy": stack(ref),
            "opt": stack(tx.init(ref)),
            "ref": ref,
            "rm": rm,
            "pretrain": {"policy_loss": pol_losses, "reward_lm_loss": rm_losses},
        }

    def iteration(params, opt, rep_coef, key, ref, rm):
        k_sample, k_perm = jax.random.split(key)
        x = sample(model, params, k_sample, vc.rollout_batch, vc.max_len)
        m = valid_mask(x)
        logp_old, v_old, _ = token_logp(model, params, x)
        logp_ref, _, _ = token_logp(model, ref, x)
        logp_rm, _, _ = token_logp(model, rm, x)
        terms = reward_terms(x, logp_rm, syl_V, rhyme_V, vc.min_words)
        R = total_reward(terms, vc, rep_coef)
        kl_t = (logp_old - logp_ref) * m
        last = jax.nn.one_hot(m.sum(1).astype(jnp.int32) - 1, x.shape[1])
        r_t = -vc.kl_coef * kl_t + last * R[:, None]
        adv, ret = gae(r_t, v_old, m, vc.gamma, vc.lam)
        adv = whiten(adv, m)

        def update(carry, idx):
            params, opt = carry

            def loss_fn(p):
                lp, v, ent = token_logp(model, p, x[idx])
                loss, aux = ppo_loss(lp, logp_old[idx], adv[idx], v, ret[idx], m[idx], vc.clip, vc.value_coef)
                return loss, (*aux, (ent * m[idx]).sum() / m[idx].sum())

            (_, aux), g = jax.value_and_grad(loss_fn, has_aux=True)(params)
            u, opt = tx.update(g, opt, params)
            return (optax.apply_updates(params, u), opt), aux

        # each epoch: a random partition of the batch into n_mb minibatches
        perms = jax.vmap(lambda k: jax.random.permutation(k, vc.rollout_batch))(jax.random.split(k_perm, vc.ppo_epochs))
        (params, opt), (pg, vf, clipped, ent) = jax.lax.scan(update, (params, opt), perms.reshape(-1, mb))
        out = {k: v.mean() for k, v in terms.items()}
        out.update(
            reward=R.mean(),
            reward_penalised=total_reward(terms, vc, vc.rep_coef).mean(),
            kl=kl_t.sum(1).mean(),
            pg_loss=pg.mean(),
            value_loss=vf.mean(),
            clip_frac=clipped.mean(),
            entropy=ent.mean(),
        )
        return params, opt, out

    def step(state, i):
        keys = jax.vmap(lambda v: jax.random.fold_in(jax.random.fold_in(base, i + 1000), v))(jnp.arange(len(names)))
        pol, opt, out = jax.vmap(iteration, in_axes=(0, 0, 0, 0, None, None))(
            state["policy"], state["opt"], rep, keys, state["ref"], state["rm"]
        )
        flat = {f"{n}/{k}": v[j] for k, v in out.items() for j, (n, _) in enumerate(names)}
        return {**state, "policy": pol, "opt": opt}, flat

    @jax.jit
    def run_chunk(state, start, steps):
        return jax.lax.scan(step, state, start + steps)

    def run(state, start, n):
        state, out = run_chunk(state, start, jnp.arange(n))
        return state, {k: np.asarray(v) for k, v in out.items()}

    params = lambda s: {k: s[k] for k in ("policy", "ref", "rm", "pretrain")}
    return Trainer(jax.jit(init), run, params)


# ----------------------------------------------------------------------------- the judge and the measures


class BigramJudge:
    """Interpolated absolute-discounting bigram LM on token ids (D = 0.75, add-one unigram backoff)."""

    def __init__(self, tokens_NxL1: np.ndarray, vocab: int, discount: float = 0.75):
        self.V, self.D = vocab, discount
        self.big = np.zeros((vocab, vocab))
        for row in tokens_NxL1:
            row = row[row != PAD]
            np.add.at(self.big, (row[:-1], row[1:]), 1)
        uni = self.big.sum(0) + 1.0
        uni[list(BANNED)] = 0.0
        self.uni = uni / uni.sum()

    def logp(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        c = self.big[prev]  # (n, V) counts after each context
        total, types = c.sum(1), (c > 0).sum(1)
        seen = total > 0
        p_disc = np.where(seen, np.maximum(c[np.arange(len(nxt)), nxt] - self.D, 0) / np.maximum(total, 1), 0.0)
        backoff = np.where(seen, self.D * types / np.maximum(total, 1), 1.0)
        with np.errstate(divide="ignore"):  # log 0 = -inf for the never-sampled tokens
            return np.log(p_disc + backoff * self.uni[nxt])

    def perplexity(self, x_NxL: np.ndarray) -> float:
        """exp of the mean negative log-likelihood per token over BOS x (up to each EOS; <unk> is no target)."""
        seq = np.concatenate([np.full((len(x_NxL), 1), BOS), x_NxL], 1)
        m = np.asarray(valid_mask(jnp.asarray(x_NxL)), bool) & (x_NxL != PAD) & (x_NxL != UNK)
        lp = self.logp(seq[:, :-1][m], seq[:, 1:][m])
        return float(np.exp(-lp.mean()))


def text_measures(pairs: list[tuple[list[str], list[str]]]) -> dict:
    """Measures of couplets as words (cmudict), for generated and real text alike."""
    lines = [line for p in pairs for line in p]
    toks = [w for p in pairs for w in (*p[0], "/", *p[1])]
    distinct = lambda n: len({tuple(toks[i : i + n]) for i in range(len(toks) - n + 1)}) / max(len(toks) - n + 1, 1)
    ended = [(a[-1], b[-1]) for a, b in pairs if a and b]
    rep = [sum(w in ws[:i] for i, w in enumerate(ws)) / max(len(ws), 1) for ws in (p[0] + p[1] for p in pairs)]
    return {
        "ten_syllable_lines": float(np.mean([sum(syllables(w) for w in line) == 10 for line in lines])),
        "rhyme_rate": float(np.mean([a != b and rhyme_key(a) == rhyme_key(b) for a, b in ended] or [0])),
        "same_end_word_rate": float(np.mean([a == b for a, b in ended] or [0])),
        "repeated_word_share": float(np.mean(rep)),
        "distinct_1": distinct(1),
        "distinct_2": distinct(2),
        "words_per_line": float(np.mean([len(line) for line in lines])),
    }


def evaluate(cfg, params, corpus: Corpus | None = None) -> dict:
    import json

    vc = cfg.ppo_verse
    corpus = corpus or load_corpus(vc)
    model = make_model(vc, corpus)
    names = [n for n, _ in variants(vc)]
    judge = BigramJudge(corpus.tokens["B"], len(corpus.vocab))
    syl_V, rhyme_V = jnp.asarray(corpus.syllables), jnp.asarray(corpus.rhyme)
    policies = {"mle": params["ref"]}
    policies.update({n: jax.tree_util.tree_map(lambda a, j=j: a[j], params["policy"]) for j, n in enumerate(names)})
    draw = jax.jit(lambda p, k: sample(model, p, k, vc.n_eval, vc.max_len))
    score = jax.jit(lambda x: reward_terms(x, token_logp(model, params["rm"], x)[0], syl_V, rhyme_V, vc.min_words))
    heldout = jax.jit(lambda p, data: mle_loss(model, p, data))
    out: dict = {
        "policies": list(policies),
        "n_eval": vc.n_eval,
        "train_steps": vc.train_steps,
        "mle_steps": vc.mle_steps,
        "vocab": len(corpus.vocab),
        "couplets": {k: len(v) for k, v in corpus.text.items()},
    }
    # held-out cross-entropy of real verse: the policy on split B, the reward LM on split A
    for who, p, split in (("policy", params["ref"], "B"), ("reward_lm", params["rm"], "A")):
        out[f"{who}_heldout_perplexity"] = float(np.exp(heldout(p, jnp.asarray(corpus.tokens[split]))))
    out["policy_train_loss_final"] = float(np.mean(np.asarray(params["pretrain"]["policy_loss"])[-50:]))
    for name, p in policies.items():
        x = np.asarray(draw(p, jax.random.key(cfg.seed + 7)))
        terms = score(jnp.asarray(x))
        pairs = [corpus.decode(row) for row in x]
        out[name] = {
            "reward": float(total_reward(terms, vc, vc.rep_coef).mean()),  # with the penalty, for every policy
            **{f"term_{k}": float(v.mean()) for k, v in terms.items()},
            "judge_perplexity": judge.perplexity(x),
            "reward_lm_perplexity": float(np.exp(-np.asarray(terms["lm"]).mean())),
            **text_measures(pairs),
            "samples": [" / ".join(" ".join(line) for line in pr) for pr in pairs[:8]],
        }
    real = corpus.text["A"]
    rng = np.random.default_rng(0)
    out["real"] = {
        "judge_perplexity": judge.perplexity(corpus.tokens["A"][:, 1:]),
        **text_measures(real),
        "samples": [" / ".join(" ".join(line) for line in real[i]) for i in rng.choice(len(real), 8, replace=False)],
    }
    curves_path = Path(cfg.run_dir) / "metrics.jsonl"
    rows = [json.loads(line) for line in curves_path.read_text().splitlines()] if curves_path.is_file() else []
    figure(cfg, rows, names, params["pretrain"], out)
    return out


def figure(cfg, rows: list[dict], names: list[str], pretrain: dict, out: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(20, 3.8))
    for k, lab in (("policy_loss", "policy (split A)"), ("reward_lm_loss", "reward LM (split B)")):
        axes[0].plot(np.asarray(pretrain[k]), lw=0.6, label=lab)
    axes[0].set(xlabel="MLE step", ylabel="train cross-entropy (nats/token)", title="pretraining")
    axes[0].legend(fontsize=8)
    steps = [r["step"] for r in rows]
    panels = (
        (1, "reward", "reward R(x) (each policy's own reward)"),
        (2, "kl", "KL to the MLE policy (nats/couplet)"),
    )
    for j, n in enumerate(names):
        for ax, key, title in panels:
            axes[ax].plot(steps, [r.get(f"{n}/{key}", np.nan) for r in rows], f"C{j}", lw=0.8, label=n)
            axes[ax].set(xlabel="PPO iteration", title=title)
        for key, ls in (("rhyme", "-"), ("same_end", ":"), ("repeated", "--")):
            axes[3].plot(
                steps, [r.get(f"{n}/{key}", np.nan) for r in rows], f"C{j}", ls=ls, lw=0.8, label=f"{n}: {key}"
            )
    axes[1].legend(fontsize=8)
    axes[3].set(xlabel="PPO iteration", title="rhyme (solid), same end word (dotted), repeated words (dashed)")
    axes[3].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(f"{cfg.run_dir}/ppo_verse.png", dpi=80)
    plt.close(fig)


def main(argv=None):
    return run_command(lambda a: run_task("ppo_verse", make_trainer, evaluate, a, __doc__), argv)


if __name__ == "__main__":
    main()
