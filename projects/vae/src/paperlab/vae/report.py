"""Tables and plots for the README, made only from the files committed under ``results/``.

    python -m paperlab.vae.report --collect runs/vae --results projects/vae/results   # copy small files
    python -m paperlab.vae.report --results projects/vae/results --readme projects/vae/README.md

``--collect`` copies, for every finished run under ``runs/vae/<dataset>/<model>-seed<k>``, the small
files (config, metrics, summaries, eval.json, figures) into ``results/<dataset>/<model>-seed<k>``. The
report then draws ``results/<dataset>/components.png`` (the ELBO's two terms over training) and
``codebook.png`` (VQ-VAE), and rewrites the text between ``<!-- report:NAME -->`` and
``<!-- /report:NAME -->`` in the README (a block with no marker is an error); ``--index README.md``
also writes the ``<!-- headline:vae -->`` cell of the top-level index.

``summary.json``: runs made since the shared contract have ``steps`` and ``wall_time_s``; the committed
results made before it have ``step`` and ``train_seconds`` (and the prior's ``train_seconds``); the
report reads both.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from paperlab.shared.cli import run_command
from paperlab.shared.config import parse_args
from paperlab.shared.report import update_markdown, write_headline
from paperlab.shared.runlog import read_metrics

SMALL_FILES = (
    "config.yaml",
    "metrics.jsonl",
    "summary.json",
    "eval.json",
    "recon.png",
    "samples.png",
    "samples-t0.7.png",
    "interpolation.png",
    "prior/config.yaml",
    "prior/summary.json",
    "prior/metrics.jsonl",
)
MODEL_NAMES = {"vae": "VAE", "ae": "plain autoencoder", "vqvae": "VQ-VAE + transformer prior"}
DATASET_ORDER = ("mnist", "olivetti", "celeba", "digits")


def collect(runs: Path, results: Path) -> int:
    n = 0
    for summary in sorted(runs.rglob("summary.json")):
        run = summary.parent
        if run.name == "prior" or not json.loads(summary.read_text()).get("finished", True):
            continue  # the prior is copied with its run; a stopped run is not a result
        dest = results / run.relative_to(runs)
        for name in SMALL_FILES:
            if (run / name).exists():
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(run / name, dest / name)
        n += 1
    return n


def _runs(results: Path):
    """(dataset, run folder) of every collected run with an eval.json, in a fixed order."""
    found = [(p.parent.parent.name, p.parent) for p in results.glob("*/*/eval.json")]
    order = {d: i for i, d in enumerate(DATASET_ORDER)}
    model_order = {"vae": 0, "ae": 1, "vqvae": 2}
    return sorted(
        found, key=lambda dr: (order.get(dr[0], 99), model_order.get(dr[1].name.split("-")[0], 9), dr[1].name)
    )


def _fmt(x, f="{:.1f}") -> str:
    return "-" if x is None else f.format(x)


def _summary_get(summary: dict, key: str, old_key: str):
    """``summary[key]``, or the key the committed results made before the shared contract used."""
    return summary.get(key, summary.get(old_key))


def prior_config(run: Path) -> dict:
    """The settings the code prior ran with: ``prior/config.yaml`` (written by the prior since it
    records itself), else the run's ``config.yaml``."""
    return _config(run / "prior") if (run / "prior" / "config.yaml").exists() else _config(run)


def check_prior_record(run: Path) -> dict | None:
    """The prior's summary, after checking that its config, summary and metrics name the same number of
    steps (a recorded config that disagrees with what ran is an error, not a footnote)."""
    path = run / "prior" / "summary.json"
    if not path.exists():
        return None
    summary = json.loads(path.read_text())
    steps = {"summary.json steps": summary.get("steps"), "config prior_steps": prior_config(run).get("prior_steps")}
    if (run / "prior" / "metrics.jsonl").exists():
        steps["last step in metrics.jsonl"] = max(r["step"] for r in read_metrics(run / "prior" / "metrics.jsonl"))
    if len(set(steps.values())) != 1:
        raise ValueError(
            f"{run / 'prior'}: the recorded prior steps disagree: " + ", ".join(f"{k} = {v}" for k, v in steps.items())
        )
    return summary


def results_table(results: Path) -> str:
    lines = [
        "| dataset | model | params | test −log p(x) bound (nats) | bits/dim | reconstruction term (nats) | "
        "KL / code-prior term (nats) | importance-sampled −log p(x) (nats) | steps | train time (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for dataset, run in _runs(results):
        ev = json.loads((run / "eval.json").read_text())
        summ = json.loads((run / "summary.json").read_text()) if (run / "summary.json").exists() else {}
        t = ev["test"]
        model = MODEL_NAMES.get(ev["model"], ev["model"]) + _decoder_label(run)
        if ev["model"] == "vae" and not ev.get("plain_elbo", True):
            model += f" (beta={ev['beta']}, not the ELBO)"
        param_s = f"{ev['n_params'] / 1e3:.0f}k" + (
            f" + {ev['prior_params'] / 1e3:.0f}k prior" if ev.get("prior_params") else ""
        )
        offset = t.get("discrete_offset_nats", 0.0)
        if ev["model"] == "vae":
            bound, second = t["nelbo"] + offset, t["kl"]
        elif ev["model"] == "vqvae":
            bound, second = (t["nll_bound"] + offset, t["prior_nll"]) if "nll_bound" in t else (None, None)
        else:
            bound, second = None, None
        bpd = t.get("bits_per_dim")
        iw = ev.get("importance")
        iw_s = "-"
        if iw:
            iw_s = f"k={iw['k']}: {iw['nll'] + offset:.1f} ({iw['bits_per_dim']:.3f} b/d)"
            if "nelbo_same_images" in iw:
                iw_s += f"; −ELBO on the same {iw['n_images']} images: {iw['nelbo_same_images'] + offset:.1f}"
            else:
                iw_s += f" on the first {iw['n_images']} test images"
        lines.append(
            f"| {dataset} | {model} | {param_s} | {_fmt(bound)} | {_fmt(bpd, '{:.3f}')} | "
            f"{t['recon'] + offset:.1f} | {_fmt(second)} | {iw_s} | {_summary_get(summ, 'steps', 'step') or '-'} | "
            f"{_fmt(_summary_get(summ, 'wall_time_s', 'train_seconds'), '{:.0f}')} |"
        )
    return "\n".join(lines)


def vq_table(results: Path) -> str:
    lines = [
        "| dataset | code grid | K | test perplexity | codes used per test batch | code prior −log p(z) "
        "test / train (nats) | uniform prior L log K (nats) | bound with uniform prior (nats) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for dataset, run in _runs(results):
        ev = json.loads((run / "eval.json").read_text())
        if ev["model"] != "vqvae":
            continue
        cfg = _config(run)
        t = ev["test"]
        ps = check_prior_record(run)
        prior_s = f"{ps['test_nll']:.1f} / {ps['train_nll']:.1f}" if ps else "-"
        uni = f"{ps['uniform_nll']:.1f}" if ps else "-"
        offset = t.get("discrete_offset_nats", 0.0)
        g = ev["code_grid"]
        lines.append(
            f"| {dataset} | {g[0]}x{g[1]} | {cfg.get('codebook_size')} | {t['perplexity']:.1f} | "
            f"{t['code_usage']:.2f} | {prior_s} | {uni} | {ev['uniform_prior_bound']['nll'] + offset:.1f} |"
        )
    return "\n".join(lines)


def _window_mean(rows: list[dict], key: str, end: int, width: int = 50) -> float | None:
    vals = [r[key] for r in rows if r.get(key) is not None and end - width < r["step"] <= end]
    return float(np.mean(vals)) if vals else None


def comparison_table(results: Path) -> str:
    """VAE against VQ-VAE at the same training step (the VQ-VAE's last): training-batch means of the
    last 50 steps, from the per-step metrics of both runs."""
    lines = [
        "| dataset | step | VAE reconstruction term | VAE KL | VAE −ELBO | VQ-VAE reconstruction term | "
        "VQ-VAE recon + L log K (uniform prior) |",
        "|---|---|---|---|---|---|---|",
    ]
    by_data: dict[str, dict[str, Path]] = {}
    for dataset, run in _runs(results):
        by_data.setdefault(dataset, {})[run.name.split("-")[0]] = run
    for dataset, runs in by_data.items():
        if "vae" not in runs or "vqvae" not in runs:
            continue
        vae = read_metrics(runs["vae"] / "metrics.jsonl")
        vq = read_metrics(runs["vqvae"] / "metrics.jsonl")
        step = max(r["step"] for r in vq)
        ev = json.loads((runs["vqvae"] / "eval.json").read_text())
        cfg = _config(runs["vqvae"])
        off = ev["test"].get("discrete_offset_nats", 0.0)
        lk = float(np.prod(ev["code_grid"])) * np.log(cfg["codebook_size"])
        r_vae, kl, nelbo = (_window_mean(vae, k, step) for k in ("recon", "kl", "nelbo"))
        r_vq = _window_mean(vq, "recon", step)
        if r_vae is None or r_vq is None:
            continue
        lines.append(
            f"| {dataset} | {step - 49}-{step} | {r_vae + off:.1f} | {kl:.1f} | {nelbo + off:.1f} | "
            f"{r_vq + off:.1f} | {r_vq + off + lk:.1f} |"
        )
    return "\n".join(lines)


def _decoder_label(run: Path) -> str:
    """How the decoder upsampled and which Gaussian sigma it used, from the run's recorded config/metrics."""
    cfg = _config(run)
    parts = ["transposed-conv decoder"] if cfg.get("upsample", "resize") == "transposed" else []
    if cfg.get("likelihood") == "gaussian":
        if cfg.get("learn_sigma"):
            sig = [r["sigma"] for r in read_metrics(run / "metrics.jsonl") if r.get("sigma") is not None]
            parts.append(f"learned σ → {sig[-1]:.3f}" if sig else "learned σ")
        else:
            parts.append(f"fixed σ = {cfg.get('gaussian_sigma', 0.1):g}")
    return f" ({', '.join(parts)})" if parts else ""


def terms_table(results: Path, dataset: str = "celeba") -> str:
    """The two ELBO terms of the ``dataset`` VAE over training (50-step training-batch means, nats per image;
    the reconstruction term and the -ELBO include D log 256, so they are discrete 8-bit bounds), the learned
    sigma, and the test-set values where they were measured."""
    lines = [
        "| steps | reconstruction term | KL | −ELBO | bits/dim | decoder σ | test reconstruction | test KL |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for ds, run in _runs(results):
        ev = json.loads((run / "eval.json").read_text())
        if ds != dataset or ev["model"] != "vae":
            continue
        rows = read_metrics(run / "metrics.jsonl")
        train = [r for r in rows if r.get("recon") is not None]
        last = max(r["step"] for r in train)
        off = ev["test"].get("discrete_offset_nats", 0.0)
        n_dims = float(np.prod(ev["image_shape"]))
        ends = sorted({e for e in (50, 100, 250, 500, 750, 1000, 1500, 2000, 3000, 5000) if e <= last} | {last})
        tests = {r["step"]: r for r in rows if r.get("test_kl") is not None}
        for end in ends:
            rec, kl, sig = (_window_mean(train, k, end) for k in ("recon", "kl", "sigma"))
            t = tests.get(end)
            test_s = f"{t['test_recon'] + off:.0f} | {t['test_kl']:.1f}" if t else "- | -"
            lines.append(
                f"| {max(1, end - 49)}-{end} | {rec + off:.0f} | {kl:.1f} | {rec + kl + off:.0f} | "
                f"{(rec + kl + off) / (n_dims * np.log(2)):.3f} | {_fmt(sig, '{:.4f}')} | {test_s} |"
            )
    return "\n".join(lines)


def _config(run: Path) -> dict:
    import yaml

    return yaml.safe_load((run / "config.yaml").read_text()) if (run / "config.yaml").exists() else {}


def _smooth(y: np.ndarray, w: int = 50) -> np.ndarray:
    if len(y) < w:
        return y
    c = np.cumsum(np.insert(y, 0, 0.0))
    out = (c[w:] - c[:-w]) / w
    return np.concatenate([y[: w - 1].cumsum() / np.arange(1, w), out])


def components_plot(run: Path, out: Path) -> None:
    """Reconstruction and KL terms of the VAE over training: training batches (smoothed) and test set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(run / "metrics.jsonl")
    train = [r for r in rows if r.get("recon") is not None]
    test = [r for r in rows if r.get("test_recon") is not None]
    s = np.array([r["step"] for r in train])
    has_sigma = any(r.get("sigma") is not None for r in train)
    fig, axes = plt.subplots(1, 3 + has_sigma, figsize=(13 + 4 * has_sigma, 3.6))
    if has_sigma:
        axes[3].plot(s, [r["sigma"] for r in train], color="C2")
        axes[3].set(title="learned decoder σ (pixel scale [0, 1])", xlabel="step", yscale="log")
    for ax, key, title in zip(
        axes, ("nelbo", "recon", "kl"), ("negative ELBO", "reconstruction −E_q log p(x|z)", "KL(q(z|x) ‖ p(z))")
    ):
        y = np.array([r[key] for r in train])
        ax.plot(s, y, color="0.8", lw=0.5, label="train batch")
        ax.plot(s, _smooth(y), color="C0", label="train (50-step mean)")
        ax.plot([r["step"] for r in test], [r["test_" + key] for r in test], "o-", color="C3", ms=3, label="test set")
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.set_ylabel("nats / image")
        lo, hi = np.percentile(y, 1), np.percentile(y, 99.5)
        ax.set_ylim(max(0.0, lo - 0.1 * (hi - lo)) if key == "kl" else lo - 0.1 * (hi - lo), hi)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def codebook_plot(run: Path, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in read_metrics(run / "metrics.jsonl") if r.get("perplexity") is not None]
    cfg = _config(run)
    s = np.array([r["step"] for r in rows])
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].plot(s, _smooth(np.array([r["recon"] for r in rows])), label="reconstruction (nats)")
    axes[0].set_title("VQ-VAE reconstruction term (50-step mean)")
    axes[1].plot(s, _smooth(np.array([r["perplexity"] for r in rows])), label="perplexity")
    axes[1].axhline(cfg.get("codebook_size", 0), color="0.5", ls="--", label="K")
    axes[1].set_title("codebook perplexity per batch")
    axes[1].legend(fontsize=8)
    resets = [(r["step"], r["dead_codes_reset"]) for r in rows if r.get("dead_codes_reset") is not None]
    axes[2].plot(s, _smooth(np.array([r["code_usage"] for r in rows])), label="fraction of codes used in the batch")
    if resets:
        ax2 = axes[2].twinx()
        ax2.bar([a for a, _ in resets], [b for _, b in resets], width=max(1, s[-1] / 150), color="C3", alpha=0.5)
        ax2.set_ylabel("dead codes reset", color="C3")
    axes[2].set_title("code usage and dead-code resets")
    for ax in axes:
        ax.set_xlabel("step")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def make_plots(results: Path) -> list[Path]:
    written = []
    for _, run in _runs(results):
        name = run.name.split("-")[0]
        if name == "vae":
            components_plot(run, run / "components.png")
            written.append(run / "components.png")
        elif name == "vqvae":
            codebook_plot(run, run / "codebook.png")
            written.append(run / "codebook.png")
    return written


def headline(results: Path) -> str:
    """One line for the top-level index, with the caveats the README gives (seeds, training length)."""
    parts, seeds = [], set()
    for dataset, run in _runs(results):
        ev = json.loads((run / "eval.json").read_text())
        summ = json.loads((run / "summary.json").read_text()) if (run / "summary.json").exists() else {}
        steps = _summary_get(summ, "steps", "step")
        t = ev["test"]
        seeds.add(run.name.split("-seed")[-1])
        name = {"mnist": "MNIST", "olivetti": "Olivetti", "celeba": "CelebA 64x64"}.get(dataset, dataset)
        if _config(run).get("upsample") == "transposed" and dataset == "olivetti":
            continue  # the superseded decoder: kept in the README for the before/after comparison only
        if ev["model"] == "vae":
            parts.append(
                f"{name} VAE test −ELBO {t['nelbo'] + t.get('discrete_offset_nats', 0):.1f} nats "
                f"({t['bits_per_dim']:.3f} bits/dim, {steps} steps)"
            )
        elif ev["model"] == "vqvae" and "nll_bound" in t:
            parts.append(
                f"{name} VQ-VAE+prior bound {t['nll_bound'] + t.get('discrete_offset_nats', 0):.1f} nats "
                f"({t['bits_per_dim']:.3f} bits/dim, {steps} steps)"
            )
    if not parts:
        return "no results yet"
    caveat = "one seed, short CPU runs, not converged" if len(seeds) == 1 else f"{len(seeds)} seeds"
    return "; ".join(parts) + f" ({caveat})"


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collect", type=Path, help="copy the small files of finished runs from this folder first")
    parser.add_argument("--results", type=Path, default=Path("projects/vae/results"))
    parser.add_argument("--readme", type=Path, nargs="*", default=[Path("projects/vae/README.md")])
    parser.add_argument(
        "--index", type=Path, default=None, help="top-level README whose <!-- headline:vae --> cell is updated"
    )
    args = parse_args(parser, argv)
    if not args.results.is_dir():
        raise FileNotFoundError(f"no results folder at {args.results}")
    if args.collect:
        print(f"collected {collect(args.collect, args.results)} runs")
    blocks = {
        "results": results_table(args.results),
        "vq": vq_table(args.results),
        "compare": comparison_table(args.results),
        "celeba-terms": terms_table(args.results, "celeba"),
    }
    (args.results / "results.md").write_text(
        "\n\n".join(blocks[k] for k in ("results", "vq", "compare", "celeba-terms")) + "\n"
    )
    for p in make_plots(args.results):
        print(f"wrote {p}")
    for path, names in update_markdown(args.readme, blocks).items():
        print(f"updated {path}: {', '.join(names) or 'no blocks'}")
    line = headline(args.results)
    if args.index:
        write_headline(args.index, "vae", line)
    print(f"--- headline\n{line}")


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
