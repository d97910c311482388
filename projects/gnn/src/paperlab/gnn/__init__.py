"""GNNs on ZINC-12k: PyG baselines, a Graph Transformer, a Graph Transformer Network and GraphGPS."""
