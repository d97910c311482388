"""README tables made only from the committed ``results/<task>/metrics.json`` files.

    python -m paperlab.toys.report --results projects/toys/results --readme projects/toys/README.md

Replaces the text between ``<!-- report:NAME -->`` and ``<!-- /report:NAME -->`` for every NAME
below whose metrics exist; a missing task's block is left alone.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path


def _load(results: Path, task: str) -> dict | None:
    path = results / task / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else None


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


def generative_table(fm: dict | None, dd: dict | None) -> str:
    lines = [
        "| model | parameters | train steps | sampling steps | energy distance to held-out | real vs real "
        "(floor) | MMD² (RBF, h=0.2) | real vs real | train CPU s (wall) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in (("flow matching (Euler)", fm), ("DDPM (ancestral)", dd)):
        if m is None:
            continue
        lines.append(
            f"| {name} | {m['n_params']} | {m['train_steps']} | {m['sample_steps']} "
            f"| {m['energy_distance']:.4f} | {m['energy_distance_real_vs_real']:.4f} | {m['mmd_rbf']:.5f} "
            f"| {m['mmd_rbf_real_vs_real']:.5f} | {_sec(m)} |"
        )
    n = (fm or dd)["n_samples"]
    lines.append(f"\n{n} generated points against {n} held-out points; the floor compares two independent real draws.")
    return "\n".join(lines)


def hdqn_table(m: dict) -> str:
    lines = [
        "| agent | greedy policy: reward per episode, mean over seeds | worst / best seed | training reward per "
        "episode, last bin (ε-greedy) | visits per episode to s1..s6, last bin |",
        "|---|---|---|---|---|",
    ]
    for agent, name in (("flat", "Q-learning"), ("hdqn", "h-DQN (tabular)")):
        per = m[f"{agent}_greedy_reward_per_seed"]
        train = (
            f"{m[f'{agent}_training_reward_last_bin_mean']:.3f} ± {m[f'{agent}_training_reward_last_bin_std']:.3f}"
            if f"{agent}_training_reward_last_bin_mean" in m
            else "-"
        )
        visits = ", ".join(f"{v:.2f}" for v in m.get(f"{agent}_visits_per_episode_last_bin", []))
        lines.append(
            f"| {name} | {m[f'{agent}_greedy_reward_mean']:.3f} | {min(per):.3f} / {max(per):.3f} | {train} "
            f"| {visits} |"
        )
    lines.append(
        f"\nOptimum of the MDP (value iteration): {m['optimal_expected_reward']:.3f} per episode; "
        f"{m['n_seeds']} seeds per agent, {m['train_steps']} environment steps each; {_sec(m)} CPU s (wall) for all."
    )
    return "\n".join(lines)


def overview(results: Path) -> str:
    rows = ["| task | headline (from metrics.json) | train CPU s (wall) |", "|---|---|---|"]
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
    for task in ("flow_matching", "diffusion"):
        m = _load(results, task)
        if m:
            rows.append(
                f"| {task} | energy distance {m['energy_distance']:.4f} (floor "
                f"{m['energy_distance_real_vs_real']:.4f}) | {_sec(m)} |"
            )
    m = _load(results, "hdqn")
    if m:
        rows.append(
            f"| hdqn | greedy reward h-DQN {m['hdqn_greedy_reward_mean']:.3f}, Q-learning "
            f"{m['flat_greedy_reward_mean']:.3f} (optimum {m['optimal_expected_reward']:.3f}) | {_sec(m)} |"
        )
    return "\n".join(rows)


def blocks(results: Path) -> dict[str, str]:
    out = {"overview": overview(results)}
    for task, fn in (
        ("rand_transformer", rand_table),
        ("cot", cot_table),
        ("reverse_digits", reverse_table),
        ("hdqn", hdqn_table),
    ):
        m = _load(results, task)
        if m:
            out[task] = fn(m)
    fm, dd = _load(results, "flow_matching"), _load(results, "diffusion")
    if fm or dd:
        out["generative"] = generative_table(fm, dd)
    return out


def replace_block(text: str, name: str, content: str) -> str:
    pattern = re.compile(rf"(<!-- report:{name} -->\n).*?(<!-- /report:{name} -->)", re.S)
    if not pattern.search(text):
        raise ValueError(f"README has no <!-- report:{name} --> ... <!-- /report:{name} --> block")
    return pattern.sub(lambda m: m.group(1) + content + "\n" + m.group(2), text)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="toys: README tables from the committed metrics.json files.")
    p.add_argument("--results", default="projects/toys/results")
    p.add_argument("--readme", nargs="*", default=["projects/toys/README.md"])
    args = p.parse_args(argv)
    results = Path(args.results)
    if not results.is_dir():
        raise SystemExit(f"error: no results folder {results}")
    content = blocks(results)
    for readme in map(Path, args.readme):
        text = readme.read_text()
        for name, table in content.items():
            if f"<!-- report:{name} -->" in text:
                text = replace_block(text, name, table)
        readme.write_text(text)
        print(f"updated {readme}: {', '.join(n for n in content if f'<!-- report:{n} -->' in text)}")


if __name__ == "__main__":
    main()
