"""The typed hyperparameters of a GNN run on ZINC-12k. Presets live in ``configs/gnn/*.yaml``."""

from __future__ import annotations

from dataclasses import dataclass

MODELS = ("gcn", "gin", "gine", "gatedgcn", "gt", "gtn", "gps")
DATASETS = ("synthetic", "zinc", "pyg")
POOLS = ("sum", "mean")
NORMS = ("batch", "layer")
PES = ("lap", "rwse")


@dataclass
class Config:
    # --- experiment ---
    model: str = "gine"  # gcn | gin | gine | gatedgcn | gt (Dwivedi & Bresson) | gtn (Yun et al.) | gps (GraphGPS)
    dataset: str = "synthetic"  # synthetic (generated here, offline) | zinc (built from SMILES with RDKit) | pyg
    data_dir: str = "data/zinc"  # zinc: folder with zinc12k_smiles_score.csv; pyg: the root of PyG's ZINC
    cache_dir: str = "runs/gnn/cache"  # zinc: graphs built from SMILES are cached here
    seed: int = 1
    run_dir: str = "runs/gnn/${dataset}/${model}-seed${seed}"
    threads: int = 1  # torch CPU threads

    # --- network ---
    hidden: int = 64
    layers: int = 4
    pool: str = "sum"  # global pooling: sum | mean
    norm: str = "batch"  # gt: batch | layer (the other models use batch norm)
    dropout: float = 0.0  # gps: also the dropout of the attention weights
    heads: int = 4  # gt, gps
    pe: str = "lap"  # gt, gps: lap (Laplacian eigenvectors, random sign flips in training) | rwse (random-walk returns)
    pe_dim: int = 8  # gt, gps: number of eigenvectors (lap) or walk lengths 1..pe_dim (rwse); 0 disables
    gtn_channels: int = 2  # gtn: C soft meta-path channels
    gtn_layers: int = 2  # gtn: meta-paths have gtn_layers + 1 soft edge-type selections
    gtn_gcn_layers: int = 3  # gtn: GCN layers on each learned adjacency

    # --- optimisation (L1 loss = MAE, as in Benchmarking GNNs) ---
    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    min_lr: float = 1e-5  # cosine decay from lr to min_lr over all steps
    weight_decay: float = 0.0
    max_train: int = 0  # train on the first max_train training graphs (0: all)

    # --- synthetic data (the offline default) ---
    synthetic_graphs: int = 1200

    # --- checkpoints, logging ---
    checkpoint_every: int = 200  # steps (and at every epoch end and on Ctrl-C)

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)}, got {self.model!r}")
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {', '.join(DATASETS)}, got {self.dataset!r}")
        if self.pool not in POOLS:
            raise ValueError(f"pool must be one of {', '.join(POOLS)}, got {self.pool!r}")
        if self.pe not in PES:
            raise ValueError(f"pe must be one of {', '.join(PES)}, got {self.pe!r}")
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {self.norm!r}")
        if self.model in ("gt", "gps") and self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be divisible by heads ({self.heads})")
        if self.model == "gtn" and self.hidden % self.gtn_channels:
            raise ValueError(f"hidden ({self.hidden}) must be divisible by gtn_channels ({self.gtn_channels})")
        for name in ("hidden", "layers", "epochs", "batch_size", "threads", "checkpoint_every", "gtn_channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.pe_dim < 0 or self.max_train < 0 or not 0 <= self.dropout < 1 or self.lr <= 0:
            raise ValueError("pe_dim and max_train must be >= 0, dropout in [0, 1) and lr > 0")
