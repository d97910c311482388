"""The models: PyG baselines (GCN, GIN, GINE), GatedGCN, a Graph Transformer and a Graph Transformer Network.

Every model maps a PyG batch (``x`` [N] atom types, ``edge_index`` [2, E], ``edge_attr`` [E] bond types,
``batch`` [N], and ``pe`` [N, k] for the GT) to one prediction per graph, [B]: embed the atoms (and bonds),
run L message-passing layers that are permutation *equivariant* (relabelling the nodes relabels the node
states), pool the nodes with a permutation *invariant* sum or mean, and regress with an MLP.

    GCN       Kipf & Welling 2017, PyG ``GCNConv`` (ignores bond types)
    GIN       Xu et al. 2019, PyG ``GINConv`` (ignores bond types)
    GINE      Hu et al. 2020, PyG ``GINEConv``: bond embeddings added to the messages
    GatedGCN  Bresson & Laurent 2017 as in Dwivedi et al.'s benchmark, written here (:class:`GatedGCNLayer`)
    GT        Dwivedi & Bresson 2020, written here (:class:`GraphTransformerLayer`)
    GTN       Yun et al. 2019, written here (:class:`GTN`)
    GPS       Rampášek et al. 2022 (GraphGPS), PyG ``GPSConv``: a local GINE layer with bond features and a
              global multi-head attention over all atoms of the molecule, in parallel, summed; RWSE as PE
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from paperlab.gnn.data import NUM_ATOM_TYPES, NUM_BOND_TYPES


def scatter_sum(src: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
    """out[i] = sum of src[e] over e with index[e] == i (works without torch_scatter)."""
    out = src.new_zeros((size, *src.shape[1:]))
    return out.index_add_(0, index, src)


def global_pool(h: torch.Tensor, batch: torch.Tensor, num_graphs: int, how: str) -> torch.Tensor:
    out = scatter_sum(h, batch, num_graphs)
    if how == "mean":
        out = out / scatter_sum(torch.ones_like(batch, dtype=h.dtype), batch, num_graphs).clamp(min=1)[:, None]
    return out


class Readout(nn.Module):
    """Pool, then an MLP h -> h/2 -> h/4 -> 1 (the benchmark's readout)."""

    def __init__(self, hidden: int, pool: str):
        super().__init__()
        self.pool = pool
        self.mlp = nn.Sequential(
            nn.Linear(hidden, hidden // 2),
            nn.ReLU(),
            nn.Linear(hidden // 2, hidden // 4),
            nn.ReLU(),
            nn.Linear(hidden // 4, 1),
        )

    def forward(self, h, batch, num_graphs):
        return self.mlp(global_pool(h, batch, num_graphs, self.pool)).squeeze(-1)


# ---------------------------------------------------------------- GatedGCN (written here)
class GatedGCNLayer(nn.Module):
    """Residual gated graph convnet layer with edge features (Bresson & Laurent 2017; Dwivedi et al. 2020).

    For an edge j -> i with features e_ij:
        ê_ij = C e_ij + D h_j + E h_i,             sigma_ij = sigmoid(ê_ij)
        h_i' = A h_i + sum_j sigma_ij * B h_j / (sum_j sigma_ij + eps)     (soft, per-channel gated mean)
        h_i <- h_i + dropout(relu(BN(h_i'))),      e_ij <- e_ij + dropout(relu(BN(ê_ij)))
    """

    def __init__(self, hidden: int, dropout: float = 0.0, eps: float = 1e-6):
        super().__init__()
        self.A, self.B, self.C, self.D, self.E = (nn.Linear(hidden, hidden) for _ in range(5))
        self.bn_h, self.bn_e = nn.BatchNorm1d(hidden), nn.BatchNorm1d(hidden)
        self.dropout, self.eps = dropout, eps

    def messages(self, h, e, edge_index):
        """(h' before BN, ê): the layer's message passing alone (tested against a dense computation)."""
        src, dst = edge_index
        e_hat = self.C(e) + self.D(h)[src] + self.E(h)[dst]
        sigma = torch.sigmoid(e_hat)
        num = scatter_sum(sigma * self.B(h)[src], dst, h.size(0))
        den = scatter_sum(sigma, dst, h.size(0))
        return self.A(h) + num / (den + self.eps), e_hat

    def forward(self, h, e, edge_index):
        h_new, e_new = self.messages(h, e, edge_index)
        h_new = F.dropout(F.relu(self.bn_h(h_new)), self.dropout, self.training)
        e_new = F.dropout(F.relu(self.bn_e(e_new)), self.dropout, self.training)
        return h + h_new, e + e_new


# ---------------------------------------------------------------- Graph Transformer (written here)
class GraphTransformerLayer(nn.Module):
    """Dwivedi & Bresson 2020, "A generalization of transformer networks to graphs", with edge features.

    Attention is restricted to the edges of the graph. For head k and edge j -> i:
        s_ij = (Q h_i) * (K h_j) / sqrt(d) * (E e_ij)        (elementwise, [d]; the edge *gates* the score)
        w_ij = softmax_j( clamp(sum_d s_ij, -5, 5) )          (over the in-neighbours j of i)
        h_i' = O_h concat_k sum_j w_ij V h_j,                 e_ij' = O_e concat_k s_ij
    each followed by a residual, a norm, a 2-layer FFN, a residual and a norm.
    """

    def __init__(self, hidden: int, heads: int, dropout: float = 0.0, norm: str = "batch"):
        super().__init__()
        self.heads, self.d = heads, hidden // heads
        self.Q, self.K, self.V, self.E = (nn.Linear(hidden, hidden, bias=False) for _ in range(4))
        self.O_h, self.O_e = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)
        self.ffn_h = nn.Sequential(nn.Linear(hidden, 2 * hidden), nn.ReLU(), nn.Linear(2 * hidden, hidden))
        self.ffn_e = nn.Sequential(nn.Linear(hidden, 2 * hidden), nn.ReLU(), nn.Linear(2 * hidden, hidden))
        make = (lambda: nn.BatchNorm1d(hidden)) if norm == "batch" else (lambda: nn.LayerNorm(hidden))
        self.n1_h, self.n2_h, self.n1_e, self.n2_e = make(), make(), make(), make()
        self.dropout = dropout

    def attention(self, h, e, edge_index):
        """(node output [N, H*d], edge scores [E, H*d], weights [E, H]) of the multi-head edge attention."""
        from torch_geometric.utils import softmax

        src, dst = edge_index
        n, H, d = h.size(0), self.heads, self.d
        q, k, v = self.Q(h).view(n, H, d), self.K(h).view(n, H, d), self.V(h).view(n, H, d)
        s = q[dst] * k[src] / math.sqrt(d) * self.E(e).view(-1, H, d)  # [E, H, d]
        w = softmax(s.sum(-1).clamp(-5, 5), dst, num_nodes=n)  # [E, H]
        out = scatter_sum(w.unsqueeze(-1) * v[src], dst, n)  # [N, H, d]
        return out.reshape(n, H * d), s.reshape(-1, H * d), w

    def forward(self, h, e, edge_index):
        a_h, a_e, _ = self.attention(h, e, edge_index)
        drop = lambda t: F.dropout(t, self.dropout, self.training)  # noqa: E731
        h = self.n1_h(h + drop(self.O_h(a_h)))
        e = self.n1_e(e + drop(self.O_e(a_e)))
        h = self.n2_h(h + drop(self.ffn_h(h)))
        e = self.n2_e(e + drop(self.ffn_e(e)))
        return h, e


# ---------------------------------------------------------------- the message-passing models
class GNN(nn.Module):
    """Embeddings, ``layers`` message-passing layers with residuals and batch norm, a readout."""

    def __init__(
        self,
        kind: str,
        hidden: int,
        layers: int,
        pool: str = "sum",
        dropout: float = 0.0,
        heads: int = 4,
        pe_dim: int = 0,
        norm: str = "batch",
        pe: str = "lap",
    ):
        super().__init__()
        from torch_geometric.nn import GCNConv, GINConv, GINEConv, GPSConv

        self.kind, self.dropout, self.pe_dim, self.pe = kind, dropout, pe_dim, pe
        self.atom = nn.Embedding(NUM_ATOM_TYPES, hidden)
        self.uses_edges = kind in ("gine", "gatedgcn", "gt", "gps")
        if self.uses_edges:
            self.bond = nn.Embedding(NUM_BOND_TYPES, hidden)
        if kind == "gt" and pe_dim:
            self.pe_proj = nn.Linear(pe_dim, hidden)
        if kind == "gps" and pe_dim:  # GraphGPS normalises the raw encodings with batch norm, then a linear map
            self.pe_proj = nn.Sequential(nn.BatchNorm1d(pe_dim), nn.Linear(pe_dim, hidden))

        def mlp():
            return nn.Sequential(
                nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, hidden)
            )

        if kind == "gcn":
            self.convs = nn.ModuleList(GCNConv(hidden, hidden) for _ in range(layers))
        elif kind == "gin":
            self.convs = nn.ModuleList(GINConv(mlp(), train_eps=True) for _ in range(layers))
        elif kind == "gine":
            self.convs = nn.ModuleList(GINEConv(mlp(), train_eps=True) for _ in range(layers))
        elif kind == "gatedgcn":
            self.convs = nn.ModuleList(GatedGCNLayer(hidden, dropout) for _ in range(layers))
        elif kind == "gt":
            self.convs = nn.ModuleList(GraphTransformerLayer(hidden, heads, dropout, norm) for _ in range(layers))
        elif kind == "gps":
            # GPSConv: h_local = BN(h + GINE(h, e)), h_global = BN(h + MHA(h over all atoms of the graph)),
            # h = BN(h_local + h_global + MLP(h_local + h_global)); the GINE MLP is GraphGPS's Linear-ReLU-Linear
            self.convs = nn.ModuleList(
                GPSConv(
                    hidden,
                    GINEConv(nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, hidden))),
                    heads=heads,
                    dropout=dropout,
                    norm="batch_norm",
                    attn_kwargs={"dropout": dropout},
                )
                for _ in range(layers)
            )
        else:
            raise ValueError(f"unknown model {kind!r}")
        if kind in ("gcn", "gin", "gine"):
            self.norms = nn.ModuleList(nn.BatchNorm1d(hidden) for _ in range(layers))
        self.readout = Readout(hidden, pool)

    def node_states(self, batch) -> torch.Tensor:
        h = self.atom(batch.x)
        if self.kind in ("gt", "gps") and self.pe_dim:
            pe = batch.pe
            if self.training and self.pe == "lap":  # RWSE has no sign ambiguity
                from paperlab.gnn.pe import random_sign_flip

                pe = random_sign_flip(pe, batch.batch, batch.num_graphs)
            h = h + self.pe_proj(pe)
        e = self.bond(batch.edge_attr) if self.uses_edges else None
        for i, conv in enumerate(self.convs):
            if self.kind in ("gatedgcn", "gt"):
                h, e = conv(h, e, batch.edge_index)
                continue
            if self.kind == "gps":  # residuals and norms are inside GPSConv; the bond states are not updated
                h = conv(h, batch.edge_index, batch.batch, edge_attr=e)
                continue
            out = conv(h, batch.edge_index, e) if self.kind == "gine" else conv(h, batch.edge_index)
            h = h + F.dropout(F.relu(self.norms[i](out)), self.dropout, self.training)
        return h

    def forward(self, batch) -> torch.Tensor:
        return self.readout(self.node_states(batch), batch.batch, batch.num_graphs)


# ---------------------------------------------------------------- Graph Transformer Network (written here)
def edge_type_adjacency(edge_index, edge_attr, batch, num_graphs: int):
    """(A [B, K, Nmax, Nmax], mask [B, Nmax]): one dense adjacency per edge type k = 1..3 (bond types) and
    k = 0 the identity (on real nodes), per graph of the batch."""
    from torch_geometric.utils import to_dense_adj, to_dense_batch

    _, mask = to_dense_batch(batch.new_zeros(batch.size(0), 1), batch, batch_size=num_graphs)
    onehot = F.one_hot(edge_attr, NUM_BOND_TYPES).float()
    A = to_dense_adj(edge_index, batch, edge_attr=onehot, max_num_nodes=mask.size(1), batch_size=num_graphs)
    A = A.permute(0, 3, 1, 2).clone()  # [B, K, N, N]
    A[:, 0] = torch.diag_embed(mask.float())
    return A, mask


def row_normalize(A: torch.Tensor) -> torch.Tensor:
    """D^{-1} A over the last axis (rows with no entries stay zero)."""
    return A / A.sum(-1, keepdim=True).clamp(min=1e-12)


class GTN(nn.Module):
    """Graph Transformer Network (Yun et al., NeurIPS 2019) for graph regression.

    The graph is K adjacency matrices A_k, one per edge type (here: identity, single, double, triple bond).
    Layer l of the *graph transformer* softly selects one edge type per channel c,
        Q_l^c = sum_k softmax(W_l^c)_k A_k,
    and a meta-path adjacency is the product of selections, normalised after each product,
        A^c = D^{-1}( ... D^{-1}(Q_0^c Q_1^c) ... Q_L^c ),
    so A^c_ij is a soft count of paths i -> j whose edge types follow the learned sequence (the identity lets
    shorter paths through). A GCN then runs on the C learned graphs at once,
        h <- h + relu(BN( W concat_c D~^{-1}(A^c + I) h )),
    and the nodes are pooled and regressed as in the other models.
    """

    def __init__(
        self,
        hidden: int,
        channels: int = 2,
        gtn_layers: int = 2,
        gcn_layers: int = 3,
        pool: str = "sum",
        dropout: float = 0.0,
    ):
        super().__init__()
        self.channels, self.dropout = channels, dropout
        self.atom = nn.Embedding(NUM_ATOM_TYPES, hidden)
        # one selection per channel for each of the gtn_layers + 1 factors of the meta-path
        self.select = nn.Parameter(torch.randn(gtn_layers + 1, channels, NUM_BOND_TYPES) * 0.1)
        self.gcn = nn.ModuleList(nn.Linear(channels * hidden, hidden) for _ in range(gcn_layers))
        self.norms = nn.ModuleList(nn.BatchNorm1d(hidden) for _ in range(gcn_layers))
        self.readout = Readout(hidden, pool)

    def selection_weights(self) -> torch.Tensor:
        """[L+1, C, K] softmax weights over edge types (0 identity, 1 single, 2 double, 3 triple)."""
        return self.select.softmax(-1)

    def metapath_adjacency(self, A: torch.Tensor) -> torch.Tensor:
        """[B, C, N, N] learned meta-path adjacencies from the edge-type adjacencies A [B, K, N, N]."""
        alpha = self.selection_weights()
        Q = torch.einsum("ck,bkij->bcij", alpha[0], A)
        for a in alpha[1:]:
            Q = row_normalize(Q) @ torch.einsum("ck,bkij->bcij", a, A)
        return row_normalize(Q)

    def forward(self, batch) -> torch.Tensor:
        from torch_geometric.utils import to_dense_batch

        A, mask = edge_type_adjacency(batch.edge_index, batch.edge_attr, batch.batch, batch.num_graphs)
        M = self.metapath_adjacency(A)
        eye = A[:, 0:1]  # the identity on real nodes, [B, 1, N, N]
        M = row_normalize(M + eye)  # D~^{-1}(A^c + I)
        h, _ = to_dense_batch(self.atom(batch.x), batch.batch, batch_size=batch.num_graphs)  # [B, N, h]
        for lin, norm in zip(self.gcn, self.norms, strict=True):
            msg = torch.einsum("bcij,bjd->bicd", M, h).flatten(2)  # [B, N, C*h]
            out = lin(msg)[mask]  # real nodes only: [N_total, h] in batch order
            out = F.dropout(F.relu(norm(out)), self.dropout, self.training)
            h = h.clone()
            h[mask] = h[mask] + out
        return self.readout(h[mask], batch.batch, batch.num_graphs)


def build_model(cfg) -> nn.Module:
    if cfg.model == "gtn":
        return GTN(cfg.hidden, cfg.gtn_channels, cfg.gtn_layers, cfg.gtn_gcn_layers, cfg.pool, cfg.dropout)
    return GNN(
        cfg.model,
        cfg.hidden,
        cfg.layers,
        cfg.pool,
        cfg.dropout,
        cfg.heads,
        cfg.pe_dim if cfg.model in ("gt", "gps") else 0,
        cfg.norm,
        cfg.pe,
    )


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def metapaths(model: GTN, top: int = 5) -> list[dict]:
    """The ``top`` meta-paths (sequences of edge types) of each channel with their weight prod_l alpha_l[k_l]."""
    import itertools

    names = ("I", "single", "double", "triple")
    alpha = model.selection_weights().detach()
    L1, C, K = alpha.shape
    out = []
    for c in range(C):
        scores = [
            (math.prod(float(alpha[i, c, k]) for i, k in enumerate(p)), p)
            for p in itertools.product(range(K), repeat=L1)
        ]
        scores.sort(reverse=True)
        for w, p in scores[:top]:
            out.append({"channel": c, "path": "-".join(names[k] for k in p), "weight": round(w, 4)})
    return out
