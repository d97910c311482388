"""The layers against dense computations, permutation invariance, positional encodings, GTN meta-paths."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch, Data

from paperlab.gnn.config import MODELS, Config
from paperlab.gnn.data import synthetic_graphs
from paperlab.gnn.evaluate import mae
from paperlab.gnn.model import GTN, GatedGCNLayer, GraphTransformerLayer, build_model, edge_type_adjacency, n_params
from paperlab.gnn.pe import add_lap_pe, add_rwse, laplacian, laplacian_pe, random_sign_flip, rwse

# a small graph: a 4-cycle 0-1-2-3 with a pendant 4 on node 2, both directions stored
EDGES = [(0, 1), (1, 2), (2, 3), (3, 0), (2, 4)]
BONDS = [1, 2, 1, 3, 1]


def small_graph(hidden: int = 6, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    src = [i for i, j in EDGES] + [j for i, j in EDGES]
    dst = [j for i, j in EDGES] + [i for i, j in EDGES]
    edge_index = torch.tensor([src, dst])
    h = torch.randn(5, hidden, generator=g)
    e = torch.randn(edge_index.size(1), hidden, generator=g)
    A = torch.zeros(5, 5)
    A[edge_index[1], edge_index[0]] = 1.0  # A[i, j] = 1 for an edge j -> i
    E = torch.zeros(5, 5, hidden)
    E[edge_index[1], edge_index[0]] = e
    return h, e, edge_index, A, E


def test_gcnconv_is_the_normalised_adjacency_product():
    from torch_geometric.nn import GCNConv

    h, _, edge_index, A, _ = small_graph()
    conv = GCNConv(6, 4)
    A_hat = A + torch.eye(5)
    d = A_hat.sum(1).rsqrt()
    dense = (d[:, None] * A_hat * d[None, :]) @ (h @ conv.lin.weight.T) + conv.bias
    torch.testing.assert_close(conv(h, edge_index), dense, atol=1e-5, rtol=1e-5)


def test_gineconv_is_a_sum_of_relu_messages():
    from torch_geometric.nn import GINEConv

    h, e, edge_index, A, E = small_graph()
    mlp = torch.nn.Linear(6, 3)
    conv = GINEConv(mlp, eps=0.3)
    msg = torch.relu(h[None, :, :] + E) * A[:, :, None]  # [i, j, d] for edges j -> i
    dense = mlp(1.3 * h + msg.sum(1))
    torch.testing.assert_close(conv(h, edge_index, e), dense, atol=1e-5, rtol=1e-5)


def test_gatedgcn_messages_match_a_dense_computation():
    torch.manual_seed(0)
    h, e, edge_index, A, E = small_graph()
    layer = GatedGCNLayer(6)
    h_new, e_hat = layer.messages(h, e, edge_index)
    # dense: ê[i, j] = C e_ij + D h_j + E h_i for each edge j -> i
    e_dense = layer.C(E) + layer.D(h)[None, :, :] + layer.E(h)[:, None, :]
    sigma = torch.sigmoid(e_dense) * A[:, :, None]
    agg = (sigma * layer.B(h)[None, :, :]).sum(1) / (sigma.sum(1) + layer.eps)
    torch.testing.assert_close(h_new, layer.A(h) + agg, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(e_hat, e_dense[edge_index[1], edge_index[0]], atol=1e-5, rtol=1e-5)


def test_graph_transformer_attention_is_a_masked_softmax_over_neighbours():
    torch.manual_seed(0)
    h, e, edge_index, A, E = small_graph(hidden=8)
    layer = GraphTransformerLayer(8, heads=2)
    out, _, w = layer.attention(h, e, edge_index)
    H, d = 2, 4
    q, k, v = layer.Q(h).view(5, H, d), layer.K(h).view(5, H, d), layer.V(h).view(5, H, d)
    s = (q[:, None] * k[None, :] / math.sqrt(d) * layer.E(E).view(5, 5, H, d)).sum(-1).clamp(-5, 5)  # [i, j, H]
    s = s.masked_fill(A[:, :, None] == 0, float("-inf"))
    att = s.softmax(1)  # over neighbours j of i
    dense = torch.einsum("ijh,jhd->ihd", att, v).reshape(5, H * d)
    torch.testing.assert_close(out, dense, atol=1e-5, rtol=1e-5)
    # the weights into each node sum to one
    sums = torch.zeros(5, H).index_add_(0, edge_index[1], w)
    torch.testing.assert_close(sums, torch.ones(5, H))


def test_gtn_metapath_adjacency_is_the_product_of_soft_selections():
    torch.manual_seed(0)
    graph = Data(x=torch.zeros(5, dtype=torch.long), edge_index=small_graph()[2], edge_attr=torch.tensor(BONDS * 2))
    batch = Batch.from_data_list([graph])
    A, mask = edge_type_adjacency(batch.edge_index, batch.edge_attr, batch.batch, 1)
    assert mask.all() and A.shape == (1, 4, 5, 5)
    torch.testing.assert_close(A[0, 0], torch.eye(5))
    assert A[0, 2, 1, 2] == 1 and A[0, 2, 2, 1] == 1 and A[0, 3, 3, 0] == 1 and A[0, 1, 0, 1] == 1
    assert A[0, 2, 0, 1] == 0 and A[:, 1:].sum() == 2 * len(EDGES)
    model = GTN(hidden=8, channels=2, gtn_layers=2)
    alpha = model.selection_weights()
    for c in range(2):
        Q = [sum(alpha[i, c, k] * A[0, k] for k in range(4)) for i in range(3)]
        norm = lambda M: M / M.sum(-1, keepdim=True).clamp(min=1e-12)  # noqa: E731
        manual = norm(norm(Q[0] @ Q[1]) @ Q[2])
        torch.testing.assert_close(model.metapath_adjacency(A)[0, c], manual, atol=1e-6, rtol=1e-5)


def _permute(d: Data, perm: torch.Tensor) -> Data:
    """The same graph with node i renamed to inv[i] (node states reordered by perm)."""
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(len(perm))
    out = Data(x=d.x[perm], edge_index=inv[d.edge_index], edge_attr=d.edge_attr, y=d.y)
    if hasattr(d, "pe"):
        out.pe = d.pe[perm]
    return out


@pytest.mark.parametrize("model_name", [*MODELS, "gt-rwse", "gps-rwse"])
def test_graph_output_is_invariant_to_node_permutation(model_name):
    torch.manual_seed(0)
    pe = "rwse" if model_name == "gt-rwse" else "lap"
    graphs = (add_rwse if pe == "rwse" else add_lap_pe)(synthetic_graphs(6, seed=3), 4)
    cfg = Config(model=model_name.removesuffix("-rwse"), hidden=16, layers=2, heads=2, pe_dim=4, pe=pe)
    model = build_model(cfg).eval()
    g = torch.Generator().manual_seed(1)
    permuted = [_permute(d, torch.randperm(d.num_nodes, generator=g)) for d in graphs]
    with torch.no_grad():
        a = model(Batch.from_data_list(graphs))
        b = model(Batch.from_data_list(permuted))
    assert a.shape == (6,)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    # and the output does depend on the graph (a rewired graph gives another value)
    rewired = [
        Data(x=d.x, edge_index=d.edge_index.flip(0)[:, :2], edge_attr=d.edge_attr[:2], y=d.y, pe=d.pe) for d in graphs
    ]
    with torch.no_grad():
        assert not torch.allclose(a, model(Batch.from_data_list(rewired)), atol=1e-4)


PRESETS = sorted((Path(__file__).parents[3] / "configs" / "gnn").glob("zinc-*.yaml"))


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
def test_every_zinc_preset_is_within_the_100k_parameter_budget(preset):
    """The benchmark's small budget is ~100k parameters; every ZINC row is compared at it."""
    from paperlab.shared.config import load_config

    cfg = load_config(Config, preset, [])
    assert 90_000 <= n_params(build_model(cfg)) <= 110_000


def test_gps_layer_is_a_local_gine_plus_global_attention_over_each_graph():
    """GPSConv's global attention mixes all atoms of a graph (not only neighbours) and never two graphs of a
    batch: changing an atom changes the states of a non-adjacent atom of the same graph and of no other graph."""
    torch.manual_seed(0)
    graphs = add_rwse(synthetic_graphs(3, seed=4), 4)
    model = build_model(Config(model="gps", hidden=16, layers=1, heads=2, pe_dim=4, pe="rwse")).eval()
    batch = Batch.from_data_list(graphs)
    with torch.no_grad():
        h0 = model.node_states(batch)
        changed = batch.clone()
        changed.x = batch.x.clone()
        changed.x[0] = (batch.x[0] + 1) % 28  # atom 0 of graph 0
        h1 = model.node_states(changed)
    moved = (h1 - h0).abs().amax(1) > 1e-6
    neighbours = set(batch.edge_index[1][batch.edge_index[0] == 0].tolist()) | {0}
    far = [i for i in range(graphs[0].num_nodes) if i not in neighbours]
    assert far and moved[far].all()  # one layer reaches every atom of its graph
    assert not moved[batch.batch != 0].any()  # and no atom of the other graphs


def test_laplacian_pe_is_an_eigenvector_basis_of_a_cycle():
    n, k = 6, 4
    edge_index = torch.tensor(
        [
            [i for i in range(n)] + [(i + 1) % n for i in range(n)],
            [(i + 1) % n for i in range(n)] + [i for i in range(n)],
        ]
    )
    L = laplacian(edge_index, n)
    pe, vals = laplacian_pe(edge_index, n, k)
    V = pe.double().numpy()
    np.testing.assert_allclose(L @ V, V * vals.double().numpy()[None, :], atol=1e-6)  # L v = lambda v
    np.testing.assert_allclose(V.T @ V, np.eye(k), atol=1e-6)  # orthonormal
    # normalised Laplacian of C_n: 1 - cos(2 pi m / n); the trivial 0 is dropped
    expected = np.sort(1 - np.cos(2 * np.pi * np.arange(n) / n))[1 : k + 1]
    np.testing.assert_allclose(vals.numpy(), expected, atol=1e-6)
    # any sign flip is again an eigenvector basis: the PE the network sees is still valid
    flipped = random_sign_flip(pe, torch.zeros(n, dtype=torch.long), 1).double().numpy()
    np.testing.assert_allclose(np.abs(flipped), np.abs(V), atol=1e-7)
    np.testing.assert_allclose(L @ flipped, flipped * vals.double().numpy()[None, :], atol=1e-6)


def test_laplacian_pe_pads_small_graphs():
    pe, vals = laplacian_pe(torch.tensor([[0, 1], [1, 0]]), 2, 4)
    assert pe.shape == (2, 4) and (pe[:, 1:] == 0).all() and vals[0] == pytest.approx(2.0)


def test_sign_flips_are_per_graph_and_the_training_loss_stays_finite():
    torch.manual_seed(0)
    graphs = add_lap_pe(synthetic_graphs(4, seed=5), 4)
    batch = Batch.from_data_list(graphs)
    flipped = random_sign_flip(batch.pe, batch.batch, batch.num_graphs)
    ratio = flipped / batch.pe.masked_fill(batch.pe == 0, 1)
    for gi in range(4):
        rows = ratio[batch.batch == gi][batch.pe[batch.batch == gi].abs().sum(1) > 0]
        assert set(rows.flatten().round().tolist()) <= {-1.0, 1.0}
        assert (rows == rows[0]).all()  # one sign per graph and eigenvector
    model = build_model(Config(model="gt", hidden=16, layers=2, heads=2, pe_dim=4)).train()
    losses = [(model(batch) - batch.y).abs().mean() for _ in range(3)]
    assert all(torch.isfinite(x) for x in losses)


def test_rwse_on_a_triangle_and_a_square():
    tri = torch.tensor([[0, 1, 1, 2, 2, 0], [1, 0, 2, 1, 0, 2]])
    np.testing.assert_allclose(rwse(tri, 3, 3).numpy(), [[0, 0.5, 0.25]] * 3, atol=1e-7)
    sq = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 0], [1, 0, 2, 1, 3, 2, 0, 3]])
    np.testing.assert_allclose(rwse(sq, 4, 3).numpy(), [[0, 0.5, 0]] * 4, atol=1e-7)  # bipartite: no odd returns


def test_rwse_is_not_sign_flipped_but_lap_pe_is():
    """In training mode the LapPE GT sees random signs (two passes differ); RWSE has none to flip."""
    outs = {}
    for pe in ("lap", "rwse"):
        torch.manual_seed(0)
        graphs = (add_rwse if pe == "rwse" else add_lap_pe)(synthetic_graphs(4, seed=5), 4)
        batch = Batch.from_data_list(graphs)
        model = build_model(Config(model="gt", hidden=16, layers=2, heads=2, pe_dim=4, pe=pe)).train()
        outs[pe] = (model(batch), model(batch))
    assert not torch.allclose(*outs["lap"])
    torch.testing.assert_close(*outs["rwse"])


def test_softmax_attention_without_pe_cannot_tell_adamantane_from_cyclodecane():
    """Both are ten sp3 carbons joined by single bonds; cyclodecane carries a ring penalty of 4, adamantane (by
    the target's cycle basis) of 2. Attention averages its neighbours (weights sum to one), so with every
    atom and bond alike each node's state stays the same whatever its degree: the GT without a PE gives both
    the same output. GINE's sum sees the degrees (3 at adamantane's bridgeheads) and RWSE the ring lengths."""
    from paperlab.gnn.data import smiles_to_data

    graphs = [smiles_to_data(s, y=0.0) for s in ("C1C2CC3CC1CC(C2)C3", "C1CCCCCCCCC1")]
    assert [g.num_nodes for g in graphs] == [10, 10] and graphs[0].num_edges == 2 * 12
    out = {}
    for name, cfg in {
        "gt": Config(model="gt", hidden=16, layers=3, heads=2, pe_dim=0),
        "gt-rwse": Config(model="gt", hidden=16, layers=3, heads=2, pe_dim=8, pe="rwse"),
        "gine": Config(model="gine", hidden=16, layers=3),
    }.items():
        torch.manual_seed(0)
        model = build_model(cfg).eval()
        gs = add_rwse([g.clone() for g in graphs], 8) if cfg.pe_dim else graphs
        with torch.no_grad():
            out[name] = model(Batch.from_data_list(gs))
    torch.testing.assert_close(out["gt"][0], out["gt"][1])
    assert abs(out["gt-rwse"][0] - out["gt-rwse"][1]) > 1e-4
    assert abs(out["gine"][0] - out["gine"][1]) > 1e-4


def test_mae():
    assert mae(torch.tensor([1.0, 2.0, 4.0]), torch.tensor([1.0, 3.0, 1.0])) == pytest.approx(4 / 3)
    with pytest.raises(ValueError, match="shape"):
        mae(torch.zeros(3), torch.zeros(2))
