"""Test a saved GNN: MAE on a split, predictions, and (GTN) the learned meta-paths.

    python -m paperlab.gnn.evaluate runs/gnn/zinc/gine-seed1            # writes eval.json there
    python -m paperlab.gnn.evaluate runs/gnn/zinc/*-seed* --split official-test   # eval-official-test.json

``eval.json`` holds the test MAE, the per-graph predictions and targets (for the predicted-vs-true plot)
and, for the GTN, its meta-path weights. Never imports :mod:`paperlab.gnn.train`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from paperlab.shared.checkpoint import atomic_write_text
from paperlab.shared.cli import run_command


def mae(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean absolute error, the benchmark's metric."""
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    return (pred - target).abs().mean().item()


def batches(graphs: list, batch_size: int, index: torch.Tensor | None = None):
    from torch_geometric.data import Batch

    index = torch.arange(len(graphs)) if index is None else index
    for i in range(0, len(index), batch_size):
        yield Batch.from_data_list([graphs[j] for j in index[i : i + batch_size].tolist()])


@torch.no_grad()
def predict(model, graphs: list, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """(predictions [n], targets [n]) in eval mode (batch-norm running statistics, no PE sign flips)."""
    was = model.training
    model.eval()
    preds, ys = [], []
    for b in batches(graphs, batch_size):
        preds.append(model(b))
        ys.append(b.y.view(-1))
    model.train(was)
    return torch.cat(preds), torch.cat(ys)


def prepare(graphs: list, cfg) -> list:
    """Add what the model reads besides the graph (the GT's/GPS's Laplacian PE or RWSE, as ``pe`` [N, pe_dim])."""
    if cfg.model in ("gt", "gps") and cfg.pe_dim and graphs and not hasattr(graphs[0], "pe"):
        from paperlab.gnn.pe import add_lap_pe, add_rwse

        (add_lap_pe if cfg.pe == "lap" else add_rwse)(graphs, cfg.pe_dim)
    return graphs


def evaluate_run(run_dir: str | Path, split: str = "test", data_dir: str | None = None) -> dict:
    from paperlab.gnn.checkpoint import load_model
    from paperlab.gnn.data import load_data
    from paperlab.gnn.model import GTN, metapaths

    run_dir = Path(run_dir)
    model, cfg = load_model(run_dir / "model.pt")
    if data_dir:
        cfg.data_dir = data_dir
    if split.startswith("official-"):  # the official PyG graphs shipped with the data (other Kekule structures)
        from paperlab.gnn.data import load_official

        graphs = prepare(load_official(cfg.data_dir, split.removeprefix("official-")), cfg)
    else:
        graphs = prepare(getattr(load_data(cfg), split), cfg)
    pred, y = predict(model, graphs)
    out = {
        "split": split,
        "dataset": cfg.dataset,
        "model": cfg.model,
        "graphs": len(graphs),
        "mae": mae(pred, y),
        "pred": [round(p, 4) for p in pred.tolist()],
        "target": [round(t, 4) for t in y.tolist()],
    }
    if isinstance(model, GTN):
        out["metapaths"] = metapaths(model)
        out["selection_weights"] = model.selection_weights().detach().tolist()
    return out


def _main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", nargs="+")
    parser.add_argument(
        "--split",
        default="test",
        choices=("val", "test", "official-val", "official-test"),
        help="official-*: the official PyG graphs zinc12k_{val,test}.pt instead of our rebuild",
    )
    parser.add_argument("--data-dir", default=None, help="override the run's data_dir")
    args = parser.parse_args(argv)
    for run_dir in args.run_dirs:
        out = evaluate_run(run_dir, args.split, args.data_dir)
        name = "eval.json" if args.split == "test" else f"eval-{args.split}.json"
        atomic_write_text(Path(run_dir) / name, json.dumps(out) + "\n")
        print(f"{out['model']} {out['split']} MAE {out['mae']:.4f} on {out['graphs']} graphs -> {run_dir}/{name}")


def main(argv=None) -> None:
    run_command(_main, argv)


if __name__ == "__main__":
    main()
