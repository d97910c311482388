"""Outlier features (LLM.int8 section 4): where they are in the model, and what the decomposition buys.

    python -m paperlab.quantization.outliers --config configs/quantization/shakespeare.yaml

1. Hooks on the inputs of every block ``nn.Linear`` (the hidden states that get quantized) over held-out
   windows: per layer the largest |x|, quantiles of |x|, the number of feature dimensions with any
   |x| >= 6, and for each such dimension the fraction of tokens and of layers where it crosses 6 (the
   paper's criterion for a systematic outlier: magnitude >= 6, in >= 25% of the layers, in >= 6% of
   the sequence positions).
2. The threshold sweep: perplexity of plain vector-wise int8 and of LLM.int8 at several thresholds, with
   the share of feature columns sent through floating point.
3. The same on the model with outliers injected by a function-preserving rescaling (:func:`inject_outliers`),
   for a small model that has none of its own.
Writes ``<run_dir>/outliers/outliers.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from paperlab.quantization.config import Config
from paperlab.quantization.data import encode, load_text, split_text, windows
from paperlab.quantization.evaluate import perplexity
from paperlab.quantization.int8 import Int8Linear, swap_linear
from paperlab.quantization.model import check_llama_dir, load_llama, load_tokenizer
from paperlab.shared.checkpoint import atomic_write_text
from paperlab.shared.cli import run_command
from paperlab.shared.config import add_config_args, config_from_args, parse_args
from paperlab.shared.runlog import cpu_model, machine_load

SWEEP = (0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0)
QUANTILES = (0.5, 0.99, 0.999, 1.0)
INJECT_FACTOR = 20.0  # the function-preserving outlier injection (see inject_outliers)


@torch.no_grad()
def feature_stats(model, val: torch.Tensor, threshold: float = 6.0, batch_size: int = 8) -> dict:
    """Magnitude statistics of the inputs of every block Linear; one input is shared by q/k/v (and gate/up),
    so each distinct input is recorded once under the first Linear that reads it. Accumulated batch by batch
    (a 1B model's hidden states do not fit in memory at once); quantiles from a seeded random subsample."""
    acc: dict[str, dict] = {}
    gen = torch.Generator().manual_seed(0)

    def record(key: str, x: torch.Tensor) -> None:
        x = x.detach().reshape(-1, x.shape[-1]).abs().float()
        hits = x >= threshold
        a = acc.setdefault(key, {"max": 0.0, "hits": torch.zeros(x.shape[1]), "any": 0, "n": 0, "sample": []})
        a["max"] = max(a["max"], float(x.max()))
        a["hits"] += hits.sum(0)
        a["any"] += int(hits.any(1).sum())
        a["n"] += x.shape[0]
        a["sample"].append(x.flatten()[torch.randint(0, x.numel(), (20000,), generator=gen)])

    hooks, seen = [], set()
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Linear) and name.split(".")[-1] != "lm_head":
            parent, leaf = name.rsplit(".", 1)
            key = parent + (f".{leaf}" if leaf in ("o_proj", "down_proj") else ".in")
            if key not in seen:
                seen.add(key)
                hooks.append(m.register_forward_pre_hook(lambda mod, args, key=key: record(key, args[0])))
    for i in range(0, len(val), batch_size):
        model(val[i : i + batch_size])
    for h in hooks:
        h.remove()
    layers, hit_by_layer = {}, {}
    for key, a in acc.items():
        sample = torch.cat(a["sample"])
        hit_by_layer[key] = a["hits"] / a["n"]  # per feature: fraction of tokens crossing the threshold
        cols = a["hits"] > 0
        layers[key] = {
            "features": len(a["hits"]),
            "max_abs": a["max"],
            **{f"q{q}": float(torch.quantile(sample, q)) for q in QUANTILES},
            "outlier_dims": int(cols.sum()),
            "outlier_dims_list": cols.nonzero().flatten().tolist()[:32],
            "tokens_with_outlier": a["any"] / a["n"],
        }
    # the emergence criterion on the residual stream: the q/k/v and gate/up inputs have d_model features
    resid = {k: v for k, v in hit_by_layer.items() if k.endswith(".in")}
    n_layers = max(1, len(resid))
    systematic = []
    if resid:
        stacked = torch.stack(list(resid.values()))  # (layers, d_model)
        for dim in range(stacked.shape[1]):
            in_layers = (stacked[:, dim] > 0).float().mean().item()
            token_frac = stacked[:, dim].max().item()
            if in_layers >= 0.25 and token_frac >= 0.06:
                systematic.append({"dim": dim, "layer_fraction": in_layers, "max_token_fraction": token_frac})
    return {"threshold": threshold, "layers": layers, "systematic": systematic, "residual_layers": n_layers}


@torch.no_grad()
def inject_outliers(model, dims: list[int], factor: float) -> None:
    """Make feature dimensions ``dims`` of every block's normalised input ``factor`` times larger, and divide
    the weight columns that read them by ``factor``: the function is unchanged (up to rounding), but the
    Linear inputs now hold large-magnitude features in a few fixed dimensions, in every layer and token,
    which is the pattern the paper finds in models of 6.7B parameters and more."""
    for layer in model.model.layers:
        for norm, linears in (
            (layer.input_layernorm, ("q_proj", "k_proj", "v_proj")),
            (layer.post_attention_layernorm, ("gate_proj", "up_proj")),
        ):
            norm.weight[dims] *= factor
            block = layer.self_attn if linears[0] == "q_proj" else layer.mlp
            for name in linears:
                getattr(block, name).weight[:, dims] /= factor


def _load(model_dir: Path, inject: tuple[list[int], float] | None):
    model = load_llama(model_dir)
    if inject is not None:
        inject_outliers(model, *inject)
    return model


def sweep(
    model_dir: Path, val: torch.Tensor, thresholds=SWEEP, inject: tuple[list[int], float] | None = None
) -> list[dict]:
    """Perplexity of fp32, of vector-wise int8 without decomposition, and of LLM.int8 per threshold, with the
    mean share of feature columns that went through floating point."""
    fp32 = perplexity(_load(model_dir, inject), val)["perplexity"]
    rows = [{"method": "fp32", "threshold": None, "perplexity": fp32, "fp_columns": 1.0}]
    model = _load(model_dir, inject)  # the floor: int8 weights, activations untouched
    swap_linear(model, mode="weight-only")
    rows.append(
        {
            "method": "int8-weight-only",
            "threshold": None,
            "perplexity": perplexity(model, val)["perplexity"],
            "fp_columns": 1.0,
        }
    )
    model = _load(model_dir, inject)
    swap_linear(model, mode="vectorwise")
    rows.append(
        {
            "method": "int8-vectorwise",
            "threshold": None,  # no decomposition: every column in int8
            "perplexity": perplexity(model, val)["perplexity"],
            "fp_columns": 0.0,
        }
    )
    for t in thresholds:
        model = _load(model_dir, inject)
        swap_linear(model, mode="llm-int8", threshold=t)
        layers = [m for m in model.modules() if isinstance(m, Int8Linear)]
        shares = []
        hooks = [
            m.register_forward_hook(
                lambda mod, a, o, shares=shares: shares.append(mod.outlier_columns_seen / mod.in_features)
            )
            for m in layers
        ]
        ppl = perplexity(model, val)["perplexity"]
        for h in hooks:
            h.remove()
        rows.append(
            {"method": "llm-int8", "threshold": t, "perplexity": ppl, "fp_columns": sum(shares) / max(1, len(shares))}
        )
    return rows


def _main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_config_args(parser)
    cfg = config_from_args(Config, parse_args(parser, argv))
    path = check_llama_dir(cfg.model_path or Path(cfg.run_dir) / "model")
    tokenizer = load_tokenizer(path)
    _, val_text = split_text(load_text(cfg.data_dir), cfg.val_fraction)
    val = windows(encode(tokenizer, val_text), cfg.ppl_window, cfg.ppl_tokens)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    stats = feature_stats(load_llama(path), val[: max(1, len(val) // 4)], cfg.threshold)
    rows = sweep(path, val)
    hidden = load_llama(path).config.hidden_size
    inject = (sorted({int(hidden * f) for f in (0.1, 0.37, 0.71)}), INJECT_FACTOR)
    injected_stats = feature_stats(_load(path, inject), val[: max(1, len(val) // 4)], cfg.threshold)
    injected_rows = sweep(path, val, inject=inject)
    out = {
        "model": str(path),
        "stats": stats,
        "sweep": rows,
        "injected": {"dims": inject[0], "factor": inject[1], "stats": injected_stats, "sweep": injected_rows},
        "ppl_tokens": int(val[:, 1:].numel()),
        "cpu_model": cpu_model(),
        "machine_load": machine_load(),
    }
    out_dir = Path(cfg.run_dir) / "outliers"
    atomic_write_text(out_dir / "outliers.json", json.dumps(out, indent=2) + "\n")
    for key, s in stats["layers"].items():
        print(
            f"{key:40s} max|x| {s['max_abs']:7.2f}  q0.999 {s['q0.999']:6.2f}  dims>=6: {s['outlier_dims']:3d}  "
            f"tokens with one: {s['tokens_with_outlier']:.3f}"
        )
    print(f"systematic outlier dims (paper's criterion): {[d['dim'] for d in stats['systematic']]}")
    for r in rows + injected_rows:
        print(
            f"{r['method']:16s} threshold {r['threshold']!s:5s} ppl {r['perplexity']:.4f} "
            f"fp columns {r['fp_columns']:.3f}"
        )
    print(f"wrote {out_dir / 'outliers.json'}")


def main(argv=None):
    run_command(_main, argv)


if __name__ == "__main__":
    main()
