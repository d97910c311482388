"""README tables made only from the committed ``results/<name>/`` files (never from ``runs/``).

    python -m paperlab.toys.report --results projects/toys/results --readme projects/toys/README.md

Replaces the text between ``<!-- report:NAME -->`` and ``<!-- /report:NAME -->`` for every NAME
below whose results exist (through :mod:`paperlab.shared.report`: a block without markers is an
error). Two layouts are read: a published run (``eval.json`` + ``summary.json``, see
``paperlab.toys.publish``) and the first version's single ``metrics.json`` (rand_transformer,
reverse_digits and flow_matching still have it; its ``train_seconds`` / ``train_cpu_seconds`` are
``summary.json``'s ``wall_time_s`` / ``cpu_time_s``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from paperlab.shared.cli import run_command
from paperlab.shared.report import update_markdown


def _load(results: Path, name: str) -> dict | None:
    folder = results / name
    if (folder / "eval.json").is_file():
        m = json.loads((folder / "eval.json").read_text())
        if (folder / "summary.json").is_file():
            summary = json.loads((folder / "summary.json").read_text())
            m["train_seconds"], m["train_cpu_seconds"] = summary["wall_time_s"], summary["cpu_time_s"]
        return m
    path = folder / "metrics.json"  # the first version's layout
    return json.loads(path.read_text()) if path.is_file() else None


def _x(value: float, floor: float) -> str:
    return f"{value / floor:.1f}×"


def cot_gain_range(m: dict) -> tuple[int, int] | None:
    """The longest run of consecutive sums a+b on which chain of thought has the lower mean exact TV."""
    if "cot_tv_by_sum" not in m:
        return None
    better = [c < d for c, d in zip(m["cot_tv_by_sum"], m["direct_tv_by_sum"])]
    best, start = None, None
    for s, b in enumerate([*better, False]):
        if b and start is None:
            start = s
        if not b and start is not None:
            if best is None or s - start > best[1] - best[0] + 1:
                best = (start, s - 1)
            start = None
    return best


def _sec(m: dict) -> str:
    """CPU seconds of compile + training (wall seconds on the shared machine in parentheses)."""
    if m.get("train_seconds") is None:
        return "-"
    cpu = m.get("train_cpu_seconds")
    return f"{cpu:.0f} ({m['train_seconds']:.0f})" if cpu is not None else f"({m['train_seconds']:.0f})"


def rand_table(m: dict) -> str:
    return "\n".join(
        [
            "| target | generated numbers | TV(p, samples) | TV floor: n exact samples of p | KL(p ‖ samples) "
            "| KL floor | exact TV of the model's next-number law, mean over positions | lag-1 correlation "
            "| train CPU s (wall) |",
            "|---|---|---|---|---|---|---|---|---|",
            f"| {m['target']} | {m['n_samples']} | {m['sample_tv']:.4f} "
            f"| {m['floor_tv_mean']:.4f} ± {m['floor_tv_std']:.4f} "
            f"| {m['sample_kl']:.4f} | {m['floor_kl_mean']:.4f} ± {m['floor_kl_std']:.4f} "
            f"| {m['exact_tv_mean_over_positions']:.4f} | {m['lag1_correlation']:+.3f} | {_sec(m)} |",
        ]
    )


def cot_table(m: dict) -> str:
    lines = [
        "| format | TV to U{0..a+b}: mean over prompts | median | max | mass above a+b "
        "| sum a+b written correctly (greedy) | thoughts left out of the sum (mass) |",
        "|---|---|---|---|---|---|---|",
    ]
    for fmt, name in (("direct", "direct (BOS a b x)"), ("cot", "chain of thought (BOS a b s x)")):
        acc = f"{m['cot_sum_accuracy_greedy']:.3f}" if fmt == "cot" else "-"
        lines.append(
            f"| {name} | {m[f'{fmt}_tv_mean']:.4f} | {m[f'{fmt}_tv_median']:.4f} | {m[f'{fmt}_tv_max']:.4f} "
            f"| {m[f'{fmt}_mass_out_of_range']:.4f} | {acc} | {m.get(f'{fmt}_left_out_mass_mean', 0.0):.1e} |"
        )
    lines.append(
        f"\nAll {m['n_prompts']} prompts (a, b ≤ {m['max_addend']}); both models: {m['n_params']} parameters, "
        f"{m['train_steps']} steps; training both took {_sec(m)} CPU s (wall)."
    )
    gain = cot_gain_range(m)
    if gain:
        by_sum = [(s, d - c) for s, (c, d) in enumerate(zip(m["cot_tv_by_sum"], m["direct_tv_by_sum"]))]
        n_better = sum(1 for _, g in by_sum if g > 0)
        lines.append(
            f"Chain of thought has the lower mean TV on {n_better} of the {len(by_sum)} sums a+b; the longest "
            f"run of consecutive sums where it wins is a+b = {gain[0]}..{gain[1]} (tv_by_sum in eval.json)."
        )
    return "\n".join(lines)


def reverse_table(m: dict) -> str:
    return "\n".join(
        [
            "| digits | vocab | parameters | steps | held-out sequences | exact-sequence accuracy | token accuracy "
            "| train CPU s (wall) |",
            "|---|---|---|---|---|---|---|---|",
            f"| {m['length']} | {m['vocab']} | {m['n_params']} | {m['train_steps']} | {m['n_test']} "
            f"| {m['test_exact_sequence_accuracy']:.4f} | {m['test_token_accuracy']:.4f} | {_sec(m)} |",
        ]
    )


GENERATIVE = (("flow_matching", "flow matching (Euler)"), ("diffusion", "DDPM (ancestral)"))


def _generative_label(name: str, m: dict) -> str:
    """Rows beyond the two same-budget runs (results/diffusion_*) say what differs."""
    for folder, label in GENERATIVE:
        if name == folder:
            return label
    if m["task"] == "flow_matching":
        return f"flow matching (Euler; `results/{name}`)"
    return f"DDPM ({m.get('schedule', 'linear')} β, T = {m['sample_steps']}; `results/{name}`)"


def generative_table(rows: list[tuple[str, dict]]) -> str:
    lines = [
        "| model | parameters | train steps | sampling steps | energy distance to held-out | real vs real "
        "(floor) | MMD² (RBF, h=0.2) | real vs real | MMD² / floor | train CPU s (wall) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in rows:
        lines.append(
            f"| {_generative_label(name, m)} | {m['n_params']} | {m['train_steps']} | {m['sample_steps']} "
            f"| {m['energy_distance']:.4f} | {m['energy_distance_real_vs_real']:.4f} | {m['mmd_rbf']:.5f} "
            f"| {m['mmd_rbf_real_vs_real']:.5f} | {_x(m['mmd_rbf'], m['mmd_rbf_real_vs_real'])} | {_sec(m)} |"
        )
    n = rows[0][1]["n_samples"]
    lines.append(f"\n{n} generated points against {n} held-out points; the floor compares two independent real draws.")
    return "\n".join(lines)


HDQN_AGENTS = {
    "flat": "Q-learning (tabular)",
    "hdqn": "h-DQN (tabular)",
    "flat_net": "DQN (network)",
    "hdqn_net": "h-DQN (networks, replay, target networks)",
}


def hdqn_table(m: dict) -> str:
    lines = [
        "| agent | greedy policy: reward per episode, mean over seeds | worst / best seed | seeds within 0.02 of "
        "the optimum | training reward per episode, last bin (ε-greedy) | visits per episode to s1..s6, last bin |",
        "|---|---|---|---|---|---|",
    ]
    best = m["optimal_expected_reward"]
    for agent in m.get("agents", ["flat", "hdqn"]):
        per = m[f"{agent}_greedy_reward_per_seed"]
        train = (
            f"{m[f'{agent}_training_reward_last_bin_mean']:.3f} ± {m[f'{agent}_training_reward_last_bin_std']:.3f}"
            if f"{agent}_training_reward_last_bin_mean" in m
            else "-"
        )
        visits = ", ".join(f"{v:.2f}" for v in m.get(f"{agent}_visits_per_episode_last_bin", []))
        near = sum(1 for x in per if x >= best - 0.02)
        lines.append(
            f"| {HDQN_AGENTS[agent]} | {m[f'{agent}_greedy_reward_mean']:.3f} | {min(per):.3f} / {max(per):.3f} "
            f"| {near}/{len(per)} | {train} | {visits} |"
        )
    if "random_greedy_reward_mean" in m:
        lines.append(f"| uniform random actions | {m['random_greedy_reward_mean']:.3f} | | | | |")
    lines.append(
        f"\nOptimum of the MDP (value iteration): {best:.3f} per episode; "
        f"{m['n_seeds']} seeds per agent, {m['train_steps']} environment steps each; {_sec(m)} CPU s (wall) for all."
    )
    return "\n".join(lines)


# ----------------------------------------------------------------------------- tasks 10-12 (MNIST)

OPT_LABELS = {"sgd_momentum": "SGD + momentum", "sgd_nesterov": "SGD + Nesterov", "adam": "Adam", "adamw": "AdamW"}


def _ms(values) -> str:
    a = np.asarray(values, float)
    return f"{a.mean():.4f} ± {a.std():.4f}"


def optimizers_table(m: dict) -> str:
    lines = [
        f"| optimiser | implementation | test accuracy (mean ± sd, {m['n_seeds']} seeds) | test loss "
        "| max abs(θ_hand − θ_optax) after training | test digits classified differently (hand vs optax) "
        "| µs per update | ms per training step |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in m["optimisers"]:
        for impl in ("hand", "optax"):
            t = m["timing"][f"{name}/{impl}"]
            gap = f"{m[f'{name}_final_max_param_gap']:.1e}" if impl == "hand" else ""
            dis = f"{m[f'{name}_prediction_disagreement']:.4f}" if impl == "hand" else ""
            lines.append(
                f"| {OPT_LABELS[name]} | {impl} | {_ms(m[f'{name}_{impl}_test_accuracy'])} "
                f"| {_ms(m[f'{name}_{impl}_test_loss'])} | {gap} | {dis} | {t['update_us']:.0f} "
                f"| {t['train_step_ms']:.2f} |"
            )
    load = m["timing_machine"]["load"]
    lines.append(
        f"\n{m['n_params']}-parameter CNN, {m['train_steps']} steps of {m['batch_size']} images; seed s starts every "
        f"optimiser from the same parameters and feeds it the same minibatches. Timings: one model, median of 3 "
        f"repeats of 100 jitted updates (or training steps) on {m['timing_machine']['cpu']}, load average "
        f"{load[0]:.1f} while measuring; {_sec(m)} CPU s (wall) for the whole run."
    )
    return "\n".join(lines)


DREAM_SCORES = (
    "p_target_dreamer",
    "p_target_other_model",
    "other_model_top1",
    "corr_with_class_mean",
    "corr_margin",
    "high_freq_fraction",
    "mean_intensity",
)


def _dream_row(label: str, s: dict) -> str:
    return f"| {label} | " + " | ".join(f"{s[k]:.3f}" for k in DREAM_SCORES) + " |"


def deep_dream_table(m: dict) -> str:
    acc = m["test_accuracy"]
    lines = [
        "| class dreams (10 classes) | p(target), dreaming model | p(target), other model | other model's top-1 "
        "= target | corr. with the class's mean digit | minus corr. with other classes' means "
        "| high-frequency energy share | mean intensity |",
        "|---|---|---|---|---|---|---|---|",
        _dream_row("from noise (default regularisers)", m["classes_from_noise"]),
        _dream_row("from a real digit of the next class (1 octave)", m["classes_from_digits"]),
    ]
    lines += [_dream_row(f"ablation: {name}", s) for name, s in m["ablation"].items()]
    lines.append(
        f"\nTest accuracy: dreaming model {acc[0]:.4f}"
        + (f", other model {acc[1]:.4f}" if len(acc) > 1 else "")
        + f" ({m['n_params']} parameters each, {m['train_steps']} steps); {_sec(m)} CPU s (wall) for training both."
    )
    return "\n".join(lines)


def scaling_table(m: dict) -> str:
    fn, fj = m["fit_N"], m["fit_joint"]
    lines = [
        "| law | exponent | 95% bootstrap interval (seeds resampled) | E (irreducible loss) | rms of log residuals |",
        "|---|---|---|---|---|",
        f"| L(N) = E + A N^-α (widths {', '.join(map(str, m['widths']))}, D = {m['data_sizes'][0]}) "
        f"| α = {fn['alpha']:.3f} | [{fn['alpha_95'][0]:.3f}, {fn['alpha_95'][1]:.3f}] | {fn['E']:.4f} "
        f"| {fn['rms_log_residual']:.3f} |",
    ]
    for w, f in m["fit_D"].items():
        lines.append(
            f"| L(D) = E + B D^-β (D = {m['data_sizes'][-1]}..{m['data_sizes'][0]}, width {w}) | β = {f['beta']:.3f} "
            f"| [{f['beta_95'][0]:.3f}, {f['beta_95'][1]:.3f}] | {f['E']:.4f} | {f['rms_log_residual']:.3f} |"
        )
    lines.append(
        f"| L(N, D) = E + A N^-α + B D^-β (every point) | α = {fj['alpha']:.3f}, β = {fj['beta']:.3f} "
        f"| α [{fj['alpha_95'][0]:.3f}, {fj['alpha_95'][1]:.3f}], β [{fj['beta_95'][0]:.3f}, {fj['beta_95'][1]:.3f}] "
        f"| {fj['E']:.4f} | {fj['rms_log_residual']:.3f} |"
    )
    lines += [
        "",
        "| sweep | width | parameters N | training images D | best validation loss (mean ± sd) "
        "| final validation loss | log residual of the L(N) fit |",
        "|---|---|---|---|---|---|---|",
    ]
    runs, d_max = m["runs"], m["data_sizes"][0]
    sweeps = [("width", w, d_max) for w in sorted({r["width"] for r in runs if r["D"] == d_max})]
    sweeps += [("data", w, d) for w in m["data_widths"] for d in m["data_sizes"]]
    for sweep, w, d in sweeps:
        rs = [r for r in runs if r["width"] == w and r["D"] == d]
        res = m["residual_N"].get(str(rs[0]["N"])) if sweep == "width" else None
        lines.append(
            f"| {sweep} | {w} | {rs[0]['N']} | {d} | {_ms([r['val_loss'] for r in rs])} "
            f"| {_ms([r['final_val_loss'] for r in rs])} | {'' if res is None else f'{res:+.3f}'} |"
        )
    lines.append(
        f"\n{m['n_seeds']} seeds per point; {m['train_steps']} Adam steps of {m['batch_size']} images for every model; "
        f"{_sec(m)} CPU s (wall) for all {len(runs)} runs (the width sweep's point at a data-sweep width is that "
        "sweep's largest D)."
    )
    return "\n".join(lines)


def _opt(v, fmt=".4f") -> str:
    return "-" if v is None else f"{v:{fmt}}"


def bmg_table(m: dict) -> str:
    lines = [
        f"| agent | reward per step, whole run (mean ± sd, {m['n_seeds']} seeds) | second half "
        "| first fifth after a switch | last fifth before a switch | ε after a switch | ε before a switch "
        "| final ε (mean of seeds) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n in m["agents"]:
        label = f"{n} (best fixed)" if n == m["best_fixed"] else n
        lines.append(
            f"| {label} | {_ms(m[f'{n}_reward_mean_per_seed'])} | {_ms(m[f'{n}_reward_second_half_per_seed'])} "
            f"| {_opt(m[f'{n}_reward_after_switch'])} | {_opt(m[f'{n}_reward_before_switch'])} "
            f"| {_opt(m[f'{n}_eps_after_switch'], '.4f')} | {_opt(m[f'{n}_eps_before_switch'], '.4f')} "
            f"| {np.mean(m[f'{n}_final_eps_per_seed']):.4f} |"
        )
    lines.append(
        f"\n{m['train_steps']} meta-steps, the rewarding colour switching every {m['flip_every']}; each meta-step is "
        f"{m['env_steps_per_env_per_meta_step']} steps in each of {m['n_envs']} environments for every agent; "
        f"{_sec(m)} CPU s (wall) for all agents and seeds."
    )
    return "\n".join(lines)


PV_LABELS = {
    "real": "real couplets (split A)",
    "mle": "MLE policy (PPO's start)",
    "ppo": "PPO",
    "ppo_no_penalty": "PPO without the repetition penalty",
}


def ppo_verse_table(m: dict) -> str:
    lines = [
        "| text | judge perplexity (bigram, split B) | reward-LM perplexity | reward R(x) | ten-syllable lines "
        "| rhyme rate (different words) | same end word | repeated words | distinct-1 | distinct-2 | words per line |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n in ["real", *m["policies"]]:
        r = m[n]
        rlm = f"{r['reward_lm_perplexity']:.0f}" if "reward_lm_perplexity" in r else "-"
        rew = f"{r['reward']:.2f}" if "reward" in r else "-"
        lines.append(
            f"| {PV_LABELS.get(n, n)} | {r['judge_perplexity']:.0f} | {rlm} | {rew} | {r['ten_syllable_lines']:.3f} "
            f"| {r['rhyme_rate']:.3f} | {r['same_end_word_rate']:.3f} | {r['repeated_word_share']:.3f} "
            f"| {r['distinct_1']:.3f} | {r['distinct_2']:.3f} | {r['words_per_line']:.1f} |"
        )
    c = m["couplets"]
    lines.append(
        f"\n{m['n_eval']} couplets sampled from each policy (temperature 1), all {c['A']} real couplets of split A; "
        f"vocabulary {m['vocab']} words; {c['A']} / {c['B']} training couplets in splits A / B. Held-out "
        f"perplexity of real verse: MLE policy {m['policy_heldout_perplexity']:.0f} (on split B), reward LM "
        f"{m['reward_lm_heldout_perplexity']:.0f} (on split A). {m['mle_steps']} MLE steps, {m['train_steps']} PPO "
        f"iterations; {_sec(m)} CPU s (wall) for everything (one seed)."
    )
    return "\n".join(lines)


def ppo_verse_samples(m: dict, k: int = 4) -> str:
    out = []
    for n in [*m["policies"], "real"]:
        out.append(f"**{PV_LABELS.get(n, n)}**\n")
        out += [f"    {s}" for s in m[n]["samples"][:k]]
        out.append("")
    return "\n".join(out).rstrip()


def overview(results: Path) -> str:
    rows = ["| task | headline (from results/) | train CPU s (wall) |", "|---|---|---|"]
    m = _load(results, "rand_transformer")
    if m:
        rows.append(
            f"| rand_transformer | sample TV {m['sample_tv']:.3f} vs floor {m['floor_tv_mean']:.3f} "
            f"({m['n_samples']} numbers) | {_sec(m)} |"
        )
    m = _load(results, "cot")
    if m:
        rows.append(
            f"| cot | exact TV direct {m['direct_tv_mean']:.3f} vs chain of thought {m['cot_tv_mean']:.3f} "
            f"| {_sec(m)} |"
        )
    m = _load(results, "reverse_digits")
    if m:
        rows.append(
            f"| reverse_digits | held-out exact-sequence accuracy {m['test_exact_sequence_accuracy']:.4f} | {_sec(m)} |"
        )
    for task, _ in GENERATIVE:
        m = _load(results, task)
        if m:
            rows.append(
                f"| {task} | energy distance {m['energy_distance']:.4f} (floor "
                f"{m['energy_distance_real_vs_real']:.4f}); MMD² {m['mmd_rbf']:.5f} = "
                f"{_x(m['mmd_rbf'], m['mmd_rbf_real_vs_real'])} its floor {m['mmd_rbf_real_vs_real']:.5f}"
                + "".join(
                    f"; {e['train_steps']} steps (`results/{p.name}`): energy distance "
                    f"{_x(e['energy_distance'], e['energy_distance_real_vs_real'])}, MMD² "
                    f"{_x(e['mmd_rbf'], e['mmd_rbf_real_vs_real'])} their floors"
                    for p in sorted(results.glob(f"{task}_*"))
                    if (e := _load(results, p.name))
                )
                + f" | {_sec(m)} |"
            )
    m = _load(results, "hdqn")
    if m:
        agents = m.get("agents", ["flat", "hdqn"])
        names = {"flat": "Q-learning", "hdqn": "h-DQN tabular", "flat_net": "DQN", "hdqn_net": "h-DQN networks"}
        rewards = ", ".join(f"{names[a]} {m[f'{a}_greedy_reward_mean']:.3f}" for a in agents)
        rows.append(
            f"| hdqn | greedy reward, mean of {m['n_seeds']} seeds: {rewards} (optimum "
            f"{m['optimal_expected_reward']:.3f}) | {_sec(m)} |"
        )
    m = _load(results, "optimizers")
    if m:
        accs = ", ".join(
            f"{OPT_LABELS[n]} {np.mean(m[f'{n}_hand_test_accuracy']):.4f} / "
            f"{np.mean(m[f'{n}_optax_test_accuracy']):.4f}"
            for n in m["optimisers"]
        )
        gap = max(m[f"{n}_final_max_param_gap"] for n in m["optimisers"])
        rows.append(
            f"| optimizers | test accuracy, hand / optax, mean of {m['n_seeds']} seeds: {accs}; largest "
            f"parameter difference hand vs optax {gap:.1e} | {_sec(m)} |"
        )
    m = _load(results, "scaling_laws")
    if m:
        fd = ", ".join(f"β = {f['beta']:.2f} (width {w})" for w, f in m["fit_D"].items())
        rows.append(
            f"| scaling_laws | α = {m['fit_N']['alpha']:.2f} [{m['fit_N']['alpha_95'][0]:.2f}, "
            f"{m['fit_N']['alpha_95'][1]:.2f}] in L(N); {fd} in L(D); {m['n_seeds']} seeds | {_sec(m)} |"
        )
    m = _load(results, "deep_dream")
    if m:
        ab = list(m["ablation"].values())  # the first row is plain ascent, the default is the one named so
        default = next(v for k, v in m["ablation"].items() if k.startswith("all (default"))
        rows.append(
            f"| deep_dream | test accuracy {m['test_accuracy'][0]:.4f}; class dreams from noise, correlation "
            f"with the class's mean digit: {ab[0]['corr_with_class_mean']:.2f} by plain ascent, "
            f"{default['corr_with_class_mean']:.2f} with jitter, octaves and blur | {_sec(m)} |"
        )
    m = _load(results, "bmg")
    if m:
        rew = ", ".join(f"{n} {np.mean(m[f'{n}_reward_mean_per_seed']):.4f}" for n in (m["best_fixed"], "mg", "bmg"))
        rows.append(f"| bmg | reward per step, mean of {m['n_seeds']} seeds: {rew} (best fixed first) | {_sec(m)} |")
    m = _load(results, "ppo_verse")
    if m:
        pol = ["mle", "ppo"] + (["ppo_no_penalty"] if "ppo_no_penalty" in m else [])
        judge = " → ".join(f"{m[n]['judge_perplexity']:.0f}" for n in pol)
        rhyme = " → ".join(f"{m[n]['rhyme_rate']:.2f}" for n in pol)
        ten = " → ".join(f"{m[n]['ten_syllable_lines']:.2f}" for n in pol)
        names = " → ".join(PV_LABELS[n].split(" (")[0] for n in pol)
        rows.append(
            f"| ppo_verse | {names}: judge perplexity {judge} (real verse {m['real']['judge_perplexity']:.0f}), rhyme "
            f"rate {rhyme} ({m['real']['rhyme_rate']:.2f}), ten-syllable lines {ten} "
            f"({m['real']['ten_syllable_lines']:.2f}); one seed | {_sec(m)} |"
        )
    return "\n".join(rows)


def blocks(results: Path) -> dict[str, str]:
    out = {"overview": overview(results)}
    for task, fn in (
        ("rand_transformer", rand_table),
        ("cot", cot_table),
        ("reverse_digits", reverse_table),
        ("hdqn", hdqn_table),
        ("optimizers", optimizers_table),
        ("deep_dream", deep_dream_table),
        ("scaling_laws", scaling_table),
        ("bmg", bmg_table),
        ("ppo_verse", ppo_verse_table),
        ("ppo_verse_samples", ppo_verse_samples),
        ("ppo_verse_run1", ppo_verse_table),
        ("ppo_verse_run1_samples", ppo_verse_samples),
    ):
        m = _load(results, task.removesuffix("_samples"))
        if m:
            out[task] = fn(m)
    extra = [p.name for task, _ in GENERATIVE for p in sorted(results.glob(f"{task}_*")) if p.is_dir()]
    names = [t for t, _ in GENERATIVE] + extra
    rows = [(n, m) for n in names if (m := _load(results, n))]
    if rows:
        out["generative"] = generative_table(rows)
    sweep = results / "diffusion_sweep.json"
    if sweep.is_file():
        out["ddpm_sweep"] = sweep_table(json.loads(sweep.read_text()))
    return out


def sweep_table(sweep: dict) -> str:
    lines = [
        "| overrides of configs/toys/diffusion.yaml | β schedule | T | train steps | energy distance / floor "
        "| MMD² / floor | final loss (mean of last 100) | train CPU s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in sweep["rows"]:
        lines.append(
            f"| `{r['overrides']}` | {r['schedule']} | {r['n_timesteps']} | {r['train_steps']} "
            f"| {r['energy_distance_over_floor']:.2f} | {r['mmd_rbf_over_floor']:.2f} "
            f"| {r['final_loss_mean_last_100']:.3f} | {r['train_cpu_seconds']:.0f} |"
        )
    lines.append(f"\nOne seed ({sweep['seed']}) per row; the same 2000-sample scoring as the table above.")
    return "\n".join(lines)


def _main(argv=None) -> None:
    p = argparse.ArgumentParser(description="toys: README tables from the committed results/ files.")
    p.add_argument("--results", default="projects/toys/results")
    p.add_argument("--readme", nargs="*", default=["projects/toys/README.md"])
    args = p.parse_args(argv)
    results = Path(args.results)
    if not results.is_dir():
        raise FileNotFoundError(f"no results folder {results}")
    for path, names in update_markdown(args.readme, blocks(results)).items():
        print(f"updated {path}: {', '.join(names)}")


def main(argv=None):
    return run_command(_main, argv)


if __name__ == "__main__":
    main()
