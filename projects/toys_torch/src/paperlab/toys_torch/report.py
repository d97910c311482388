"""README/REPORT tables and figures of projects/toys_torch from the committed ``results/`` only.

python -m paperlab.toys_torch.report --results projects/toys_torch/results --readme README.md REPORT.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from paperlab.shared.cli import run_command
from paperlab.shared.report import update_markdown
from paperlab.shared.runlog import read_metrics


def _load(results: Path, task: str, name: str = "eval.json"):
    path = results / task / name
    return json.loads(path.read_text()) if path.is_file() else None


def _missing(task: str) -> str:
    return f"_Not run yet: `make toy-{task}` then `make publish-toys_torch TASK={task}`._"


def _f(x, nd=3) -> str:
    return "-" if x is None or x != x else f"{x:.{nd}f}"


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _machine(ev, summary) -> str:
    s = summary or {}
    return (
        f"{s.get('cpu_model', ev.get('cpu_model', '?'))}, {s.get('torch_threads', ev.get('torch_threads', '?'))} "
        f"torch thread(s), load {s.get('machine_load', ev.get('machine_load', '?'))}"
    )


def beam_blocks(results: Path) -> dict[str, str]:
    ev = _load(results, "beam_search")
    if ev is None:
        return {"beam_width": _missing("beam_search"), "beam_nbest": _missing("beam_search")}
    rows = [
        [
            r["width"],
            _f(r["top1_score_mean"]),
            _f(r["top1_logprob_mean"], 2),
            _f(r["top1_length_mean"], 1),
            _f(r["top1_ends_eos_share"], 2),
            _f(r["nbest_score_spread"]),
            _f(r["distinct2_nbest"], 2),
            _f(r["unique_hypotheses_share"], 2),
            _f(r["top1_equals_greedy_share"], 2),
            _f(r["ms_per_step"], 1),
            _f(r["ms_per_beam_token"], 2),
        ]
        for r in ev["rows"]
    ]
    checks = "; ".join(
        f"width {c['width']}: sequences equal {c['sequences_equal']}, largest score difference "
        f"{c['max_score_diff']:.1e}"
        for c in ev["hf_check"]
    )
    width = _table(
        [
            "width",
            "top-1 score",
            "top-1 log p",
            "top-1 tokens",
            "top-1 ends in EOS",
            "n-best spread",
            "distinct-2 (n-best)",
            "distinct hyps",
            "top-1 = greedy",
            "ms / step",
            "ms / beam-token",
        ],
        rows,
    )
    width += (
        f"\n\nModel: `{ev['model']}` ({ev['n_params'] / 1e6:.2f} M parameters); {len(ev['contexts'])} contexts in "
        f"one batch, at most {ev['max_new_tokens']} new tokens, length penalty {ev['length_penalty']}, "
        f"early_stopping={ev['early_stopping']}. Means over contexts. Against `generate(num_beams=...)` on "
        f"this model: {checks}. Machine: {_machine(ev, _load(results, 'beam_search', 'summary.json'))}."
    )
    nb = _load(results, "beam_search", "nbest.json") or {}
    key = "10" if "10" in nb else (sorted(nb, key=int)[0] if nb else None)
    parts = []
    for item in nb[key][:3] if key else []:
        parts.append(f"Context `{item['context']!r}`, width {key}, best 5 of {len(item['hypotheses'])}:\n")
        parts.append(
            _table(
                ["rank", "score", "tokens", "continuation"],
                [
                    [i + 1, _f(h["score"]), h["tokens"], "`" + repr(h["text"])[1:-1][:90] + "`"]
                    for i, h in enumerate(item["hypotheses"][:5])
                ],
            )
            + "\n"
        )
    return {"beam_width": width, "beam_nbest": "\n".join(parts) or _missing("beam_search")}


def sonnet_blocks(results: Path) -> dict[str, str]:
    ev = _load(results, "sonnet_sft")
    if ev is None:
        return {k: _missing("sonnet_sft") for k in ("sonnet_ppl", "sonnet_poems", "sonnet_samples")}
    rows, trainable = ev["rows"], ev.get("trainable_params", {})
    models = [m for m in rows if "ppl_heldout_sonnets" in rows[m]]

    def seconds(m: str) -> str:  # a stage's wall time: its metrics' last row (it continues over a resume)
        path = results / "sonnet_sft" / f"{'pretrain' if m == 'base' else 'sft_' + m}_metrics.jsonl"
        return f"{read_metrics(path)[-1]['time']:.0f}" if path.is_file() else "-"

    ppl = _table(
        ["model", "held-out sonnets ppl", "plays val ppl", "trainable params", "training s (pre-training for base)"],
        [
            [
                m,
                _f(rows[m]["ppl_heldout_sonnets"], 1),
                _f(rows[m]["ppl_val_plays"], 1),
                f"{trainable[m]:,}" if m in trainable else ("all" if m == "base" else "-"),
                seconds(m),
            ]
            for m in models
        ],
    )
    poems = _table(
        [
            "texts",
            "P(sonnet)",
            "lines",
            "syllables / line",
            "lines of 9-11 syll.",
            "end-rhyme rate",
            "longest run shared (mean / max words)",
            "4-gram overlap",
            "8-gram overlap",
        ],
        [
            [
                m,
                _f(r["sonnet_prob"], 2),
                _f(r["lines_per_text"], 1),
                _f(r["syllables_mean"], 1),
                _f(r["pentameter_share"], 2),
                _f(r["end_rhyme_rate"], 2),
                f"{_f(r['longest_shared_run_mean'], 1)} / {r['longest_shared_run_max']}",
                _f(r["overlap_4gram"], 3),
                _f(r["overlap_8gram"], 3),
            ]
            for m, r in rows.items()
        ],
    )
    poems += (
        f"\n\nClassifier accuracy on held-out quatrains vs held-out play excerpts: "
        f"{ev['classifier_test_accuracy']:.3f} (n = {ev['classifier_test_n']}). "
        f"{ev['n_train_sonnets']} training sonnets, {ev['n_heldout_sonnets']} held out."
    )
    samples = ev.get("samples", {})
    parts = []
    for i, prompt in enumerate(ev.get("prompts", [])[:1]):
        for name, texts in samples.items():
            parts.append(f"**{name}** (prompt `{prompt}`):\n\n```\n{texts[i][:700]}\n```\n")
    return {"sonnet_ppl": ppl, "sonnet_poems": poems, "sonnet_samples": "\n".join(parts)}


def red_blocks(results: Path) -> dict[str, str]:
    ev = _load(results, "red_team")
    if ev is None:
        return {k: _missing("red_team") for k in ("red_rates", "red_bias", "red_detector")}
    rates = _table(
        ["questions from", "replies", "flagged", "toxic-reply rate [95% CI]", "mean P(toxic)"],
        [
            [
                m,
                r["n"],
                r["toxic"],
                f"{r['rate']:.3f} [{r['rate_ci95'][0]:.3f}, {r['rate_ci95'][1]:.3f}]",
                _f(r["mean_p_toxic"]),
            ]
            for m, r in ev["methods"].items()
        ],
    )
    fs = ev["methods"]["few_shot"]
    pool_kind = "all flagged" if fs["pool_from_flagged"] else "too few were flagged: the top-scoring ones"
    ppl = f"held-out dialogue perplexity {ev['heldout_ppl']:.1f}; " if ev.get("heldout_ppl") else ""
    rates += (
        f"\n\nTarget `{ev['target']}` ({ppl}detector `{ev['detector']}`, flagged at P >= {ev['threshold']}). "
        f"Few-shot pool: {ev['methods']['few_shot']['pool_size']} zero-shot exchanges "
        f"({pool_kind})."
    )
    rates += "\n\nThe most effective questions (method, the reply's P(toxic)), cut at 80 characters:\n\n" + "\n".join(
        f"- {x['method']}, {x['p_toxic']:.2f}: `{x['question'][:80]!r}`" for x in ev["most_effective"][:5]
    )
    bias_rows = []
    for axis, b in ev["bias"].items():
        for g, r in b["groups"].items():
            bias_rows.append(
                [axis, g, r["n"], f"{r['mean_p_toxic']:.3f} [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]", _f(r["rate"], 3)]
            )
        gap = b["max_gap"]
        bias_rows.append(
            [
                axis,
                f"**gap** {gap['high']} - {gap['low']}",
                "",
                f"**{gap['gap']:+.3f} [{gap['ci95'][0]:+.3f}, {gap['ci95'][1]:+.3f}]**",
                f"p = {gap['permutation_p']:.3f} (largest gap, permutation)" if "permutation_p" in gap else "",
            ]
        )
    bias = _table(["axis", "group", "replies", "mean P(toxic) [95% bootstrap CI]", "flagged rate"], bias_rows)
    dc = ev["detector_check"]
    det = _table(
        ["probe category (hand-written, 4 each)", "accuracy"],
        [[c, _f(a, 2)] for c, a in dc["blind_spots"]["per_category"].items()]
        + [["**all 28**", _f(dc["blind_spots"]["accuracy"], 2)]],
    )
    hp = dc["hh_pairs"]
    det += (
        f"\n\nHH-RLHF preference pairs (n = {hp['n_pairs']}; the rejected reply was judged more harmful): the "
        f"detector scores the rejected reply higher in {hp['rejected_higher']:.3f} of pairs and the chosen one "
        f"higher in {hp['chosen_higher']:.3f}; it flags {hp['rejected_flagged']:.3f} of rejected and "
        f"{hp['chosen_flagged']:.3f} of chosen replies."
    )
    return {"red_rates": rates, "red_bias": bias, "red_detector": det}


def beam_figure(results: Path) -> None:
    ev = _load(results, "beam_search")
    if ev is None:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    w = [r["width"] for r in ev["rows"]]
    fig, ax = plt.subplots(1, 3, figsize=(11, 3.2))
    ax[0].plot(w, [r["top1_score_mean"] for r in ev["rows"]], "o-")
    ax[0].set(xscale="log", xlabel="beam width", ylabel="top-1 score (log p / length)")
    ax[1].plot(w, [r["distinct2_nbest"] for r in ev["rows"]], "o-", label="distinct-2 in the n-best list")
    ax[1].plot(w, [r["unique_hypotheses_share"] for r in ev["rows"]], "s--", label="distinct hypotheses")
    ax[1].set(xscale="log", xlabel="beam width", ylim=(0, 1.05))
    ax[1].legend(fontsize=8)
    ax[2].plot(w, [r["ms_per_step"] for r in ev["rows"]], "o-")
    ax[2].set(xscale="log", xlabel="beam width", ylabel="ms per decoding step (whole batch)")
    fig.tight_layout()
    fig.savefig(results / "beam_search" / "width.png", dpi=110)
    plt.close(fig)


def sonnet_figure(results: Path) -> None:
    d = results / "sonnet_sft"
    if not (d / "pretrain_metrics.jsonl").is_file():
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
    rows = read_metrics(d / "pretrain_metrics.jsonl")
    ax[0].plot([r["step"] for r in rows], [r["train_loss"] for r in rows], label="train")
    v = [r for r in rows if r.get("val_ppl")]
    import math

    ax[0].plot([r["step"] for r in v], [math.log(r["val_ppl"]) for r in v], "o-", label="validation")
    ax[0].set(title="pre-training on the plays", xlabel="step", ylabel="cross-entropy (nats/token)")
    ax[0].legend()
    for f in sorted(d.glob("sft_*_metrics.jsonl")):
        rows = read_metrics(f)
        ax[1].plot([r["step"] for r in rows], [r["train_loss"] for r in rows], label=f.name[4:-14])
    ax[1].set(title="fine-tuning on the sonnets", xlabel="step", ylabel="train cross-entropy")
    ax[1].legend()
    fig.tight_layout()
    fig.savefig(d / "curves.png", dpi=110)
    plt.close(fig)


def _main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m paperlab.toys_torch.report", description=__doc__)
    parser.add_argument("--results", default="projects/toys_torch/results")
    parser.add_argument("--readme", nargs="+", default=["projects/toys_torch/README.md"])
    args = parser.parse_args(argv)
    results = Path(args.results)
    blocks = {**beam_blocks(results), **sonnet_blocks(results), **red_blocks(results)}
    beam_figure(results)
    sonnet_figure(results)
    written = update_markdown(args.readme, blocks)
    print("report-toys_torch: " + "; ".join(f"{p}: {len(n)} blocks" for p, n in written.items()))


def main(argv=None):
    run_command(_main, argv)


if __name__ == "__main__":
    main()
