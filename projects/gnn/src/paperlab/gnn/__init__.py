"""GNNs on ZINC-12k: PyG baselines, a Graph Transformer and a Graph Transformer Network."""
