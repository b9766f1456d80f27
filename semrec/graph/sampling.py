"""Neighbour sampling on the bipartite interaction graph: L-hop blocks for mini-batch
LightGCN when full-graph propagation does not fit.

For a batch of seed nodes (the batch's users, and its positive and negative items) a
:class:`Block` holds nested node sets ``N_0 ⊆ N_1 ⊆ … ⊆ N_L`` (users and items kept in
their own index spaces, as in :class:`~semrec.graph.interaction.InteractionGraph`):
``N_0`` are the seeds, ``N_k`` adds up to ``fanouts[k-1]`` sampled neighbours of every node
first reached at hop ``k-1``. Local indices are prefix-ordered: the nodes of ``N_k`` are the
first ``|N_k|`` local indices, so the nodes of a smaller set are a prefix of every larger
one and a layer's output restricted to the seeds is its first rows.

Layer ``l = 1..L`` of LightGCN is computed on the destinations ``N_{L-l}`` from the sources
``N_{L-l+1}``:

    U⁽ˡ⁾[N_{L-l}] = B̂_ui⁽ˡ⁾ V⁽ˡ⁻¹⁾[N_{L-l+1}],   V⁽ˡ⁾[N_{L-l}] = B̂_iu⁽ˡ⁾ U⁽ˡ⁻¹⁾[N_{L-l+1}]

with ``B̂`` the sampled rows of the FULL graph's ``R̂ = D_u^{-1/2} R D_i^{-1/2}`` (full-graph
degrees, not the block's), each sampled entry scaled by ``deg(v) / fanout`` when node ``v``
has more neighbours than its fanout (``fanout`` draws uniformly with replacement, so the
row's expectation is the full row: an unbiased estimate of one layer). A node with at most
``fanout`` neighbours keeps them all with weight 1, so with every fanout at least the
largest degree the block reproduces full-graph LightGCN at the seeds exactly.

Size: ``|N_k| ≤ |N_0| · (1 + f_1 + f_1 f_2 + … + f_1⋯f_k)`` and the block's edges are at
most ``|N_{L-1}| · f_L`` (at most every node of the graph, whichever is smaller) — bounded
by ``batch × fanout^L``, independent of the graph's size.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from semrec.graph.interaction import sparse_product, to_torch_csr


@dataclass
class LayerBlock:
    """One propagation layer: destinations ``N_m`` from sources ``N_{m+1}``.

    ``ui`` ``(n_dst_users, n_src_items)`` and ``iu`` ``(n_dst_items, n_src_users)`` are torch
    sparse CSR; ``ui_t``, ``iu_t`` their transposes (for the backward of the products).
    """

    ui: torch.Tensor
    ui_t: torch.Tensor
    iu: torch.Tensor
    iu_t: torch.Tensor

    def users_from_items(self, v: torch.Tensor) -> torch.Tensor:
        """``(n_dst_users, d)`` from source item rows ``(n_src_items, d)``."""
        return sparse_product(self.ui, self.ui_t, v)

    def items_from_users(self, u: torch.Tensor) -> torch.Tensor:
        """``(n_dst_items, d)`` from source user rows ``(n_src_users, d)``."""
        return sparse_product(self.iu, self.iu_t, u)

    @property
    def nnz(self) -> int:
        return int(self.ui._nnz() + self.iu._nnz())


@dataclass
class Block:
    """A sampled L-hop neighbourhood of a batch.

    Attributes:
        users: ``(|N_L users|,)`` global user indices, local order (seeds first).
        items: ``(|N_L items|,)`` global item indices, local order (seeds first).
        user_sizes: ``|N_k|`` users for ``k = 0..L``.
        item_sizes: ``|N_k|`` items for ``k = 0..L``.
        layers: ``L`` :class:`LayerBlock` s, ``layers[l-1]`` computes layer ``l`` (destinations
            ``N_{L-l}``, sources ``N_{L-l+1}``).
        seed_users: ``(B,)`` local index of each batch user (``< user_sizes[0]``).
        seed_items: local index of each requested item, in the shape it was given
            (``(B,)`` positives, ``(B, n_neg)`` negatives, ...), a tuple.
    """

    users: torch.Tensor
    items: torch.Tensor
    user_sizes: list[int]
    item_sizes: list[int]
    layers: list[LayerBlock]
    seed_users: torch.Tensor
    seed_items: tuple[torch.Tensor, ...]

    @property
    def n_nodes(self) -> int:
        return int(self.users.shape[0] + self.items.shape[0])

    @property
    def n_edges(self) -> int:
        """Sampled (node, neighbour) entries over all layers' blocks."""
        return sum(layer.nnz for layer in self.layers)

    def to(self, device: torch.device | str) -> Block:
        mv = lambda t: t.to(device)  # noqa: E731
        return Block(
            mv(self.users), mv(self.items), self.user_sizes, self.item_sizes,
            [LayerBlock(mv(b.ui), mv(b.ui_t), mv(b.iu), mv(b.iu_t)) for b in self.layers],
            mv(self.seed_users), tuple(mv(s) for s in self.seed_items),
        )


def propagate_block(
    block: Block, user_emb: torch.Tensor, item_emb: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """LightGCN's layer mean at the block's seeds.

    Args:
        block: a sampled neighbourhood with ``L = len(block.layers)``.
        user_emb: ``(|N_L users|, d)`` layer-0 embeddings of ``block.users`` (local order).
        item_emb: ``(|N_L items|, d)`` layer-0 embeddings of ``block.items``.

    Returns:
        ``(U (|N_0 users|, d), V (|N_0 items|, d))``: ``1/(L+1) Σ_{l=0..L}`` of each layer's
        output restricted to the seeds — :func:`semrec.models.lightgcn.propagate` at those
        nodes when nothing was cut by sampling.
    """
    nu0, ni0 = block.user_sizes[0], block.item_sizes[0]
    u, v = user_emb, item_emb
    sum_u, sum_v = u[:nu0], v[:ni0]
    for layer in block.layers:
        u, v = layer.users_from_items(v), layer.items_from_users(u)  # rows N_{L-l}
        sum_u = sum_u + u[:nu0]
        sum_v = sum_v + v[:ni0]
    n = len(block.layers) + 1
    return sum_u / n, sum_v / n


class NeighborSampler:
    """Draws :class:`Block` s from a training matrix.

    Args:
        train: ``(n_users, n_items)`` CSR of training interactions (binary).
        fanouts: neighbours kept per node at each hop, ``[f_1, …, f_L]`` (hop 1 first);
            ``-1`` keeps every neighbour at that hop.
        rng: numpy generator for the draws.

    Per-batch cost is proportional to the block (no array of the graph's size is
    allocated: the global-to-local maps are scratch arrays reset after each batch).
    """

    def __init__(self, train: sp.csr_matrix, fanouts: list[int], rng: np.random.Generator) -> None:
        if not fanouts or any(f == 0 or f < -1 for f in fanouts):
            raise ValueError(f"fanouts: expected a non-empty list of positive ints (or -1), got {fanouts}")
        train = sp.csr_matrix(train)
        self.fanouts = [int(f) for f in fanouts]
        self.rng = rng
        self.n_users, self.n_items = train.shape
        self.ui_ptr = train.indptr.astype(np.int64)
        self.ui_idx = train.indices.astype(np.int64)
        t = train.T.tocsr()
        self.iu_ptr = t.indptr.astype(np.int64)
        self.iu_idx = t.indices.astype(np.int64)
        self.du = np.diff(self.ui_ptr)  # (n_users,) full-graph degrees
        self.di = np.diff(self.iu_ptr)  # (n_items,)
        with np.errstate(divide="ignore"):
            self.su = np.where(self.du > 0, self.du ** -0.5, 0.0)  # (n_users,) D_u^{-1/2}
            self.si = np.where(self.di > 0, self.di ** -0.5, 0.0)  # (n_items,)
        self._local_u = np.full(self.n_users, -1, dtype=np.int64)  # scratch maps
        self._local_i = np.full(self.n_items, -1, dtype=np.int64)

    @property
    def layers(self) -> int:
        return len(self.fanouts)

    def _draw(self, nodes: np.ndarray, ptr: np.ndarray, idx: np.ndarray, fanout: int):
        """Sampled neighbours of ``nodes``: ``(dst position (E,), neighbour (E,), scale (E,))``.

        Nodes with degree ``<= fanout`` (or ``fanout == -1``) keep all neighbours with scale 1;
        others draw ``fanout`` uniformly with replacement, each with scale ``deg / fanout``.
        """
        deg = ptr[nodes + 1] - ptr[nodes]  # (n,)
        full = deg <= fanout if fanout > 0 else np.ones(len(nodes), dtype=bool)
        # keep-all rows: every position in [ptr, ptr + deg)
        fn = np.flatnonzero(full)
        counts = deg[fn]
        pos_full = np.repeat(fn, counts)
        starts = np.repeat(ptr[nodes[fn]], counts)
        offs = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        nb_full = idx[starts + offs]
        sc_full = np.ones(len(pos_full))
        # sampled rows: fanout draws with replacement
        sn = np.flatnonzero(~full)
        pos_s = np.repeat(sn, fanout)
        d = np.repeat(deg[sn], fanout)
        r = (self.rng.random(len(pos_s)) * d).astype(np.int64)
        nb_s = idx[np.repeat(ptr[nodes[sn]], fanout) + np.minimum(r, d - 1)]
        sc_s = d / fanout
        return (np.concatenate([pos_full, pos_s]), np.concatenate([nb_full, nb_s]),
                np.concatenate([sc_full, sc_s]))

    def sample(self, users: np.ndarray | torch.Tensor, *items: np.ndarray | torch.Tensor) -> Block:
        """The block of seed ``users`` ``(B,)`` and seed item arrays (any shapes)."""
        users = np.asarray(torch.as_tensor(users).cpu(), dtype=np.int64)
        items_in = [np.asarray(torch.as_tensor(i).cpu(), dtype=np.int64) for i in items]
        lu, li = self._local_u, self._local_i
        all_u = list(np.unique(users))
        all_i = list(np.unique(np.concatenate([i.ravel() for i in items_in]))) if items_in else []
        u_nodes = [np.asarray(all_u, dtype=np.int64)]  # per hop: nodes first reached there
        i_nodes = [np.asarray(all_i, dtype=np.int64)]
        lu[u_nodes[0]] = np.arange(len(u_nodes[0]))
        li[i_nodes[0]] = np.arange(len(i_nodes[0]))
        n_u, n_i = len(u_nodes[0]), len(i_nodes[0])
        user_sizes, item_sizes = [n_u], [n_i]
        # edges per hop: user-destination (dst local user, src local item, weight) and item-dst
        ui_edges, iu_edges = [], []
        try:
            for fanout in self.fanouts:
                fu, fi = u_nodes[-1], i_nodes[-1]
                # users of the frontier draw items
                pos, nb, sc = self._draw(fu, self.ui_ptr, self.ui_idx, fanout)
                new_i = np.unique(nb[li[nb] < 0]) if len(nb) else np.zeros(0, np.int64)
                li[new_i] = n_i + np.arange(len(new_i))
                # items of the frontier draw users
                pos2, nb2, sc2 = self._draw(fi, self.iu_ptr, self.iu_idx, fanout)
                new_u = np.unique(nb2[lu[nb2] < 0]) if len(nb2) else np.zeros(0, np.int64)
                lu[new_u] = n_u + np.arange(len(new_u))
                w = sc * self.su[fu[pos]] * self.si[nb]  # full-graph R̂ entries, scaled
                ui_edges.append((lu[fu[pos]], li[nb], w))
                w2 = sc2 * self.si[fi[pos2]] * self.su[nb2]
                iu_edges.append((li[fi[pos2]], lu[nb2], w2))
                n_u += len(new_u)
                n_i += len(new_i)
                u_nodes.append(new_u)
                i_nodes.append(new_i)
                user_sizes.append(n_u)
                item_sizes.append(n_i)
            g_users = np.concatenate(u_nodes)
            g_items = np.concatenate(i_nodes)
            seed_users = torch.from_numpy(lu[users])
            seed_items = tuple(torch.from_numpy(li[i]) for i in items_in)
        finally:
            for arr in u_nodes:
                lu[arr] = -1
            for arr in i_nodes:
                li[arr] = -1
        L = self.layers
        layers = []
        for layer in range(1, L + 1):
            m = L - layer  # destinations N_m, sources N_{m+1}; edges of hops 0..m
            ui = _csr(ui_edges[: m + 1], user_sizes[m], item_sizes[m + 1])
            iu = _csr(iu_edges[: m + 1], item_sizes[m], user_sizes[m + 1])
            layers.append(LayerBlock(to_torch_csr(ui), to_torch_csr(ui.T.tocsr()),
                                     to_torch_csr(iu), to_torch_csr(iu.T.tocsr())))
        return Block(torch.from_numpy(g_users), torch.from_numpy(g_items), user_sizes, item_sizes,
                     layers, seed_users, seed_items)


def _csr(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], n_rows: int, n_cols: int) -> sp.csr_matrix:
    rows = np.concatenate([p[0] for p in parts])
    cols = np.concatenate([p[1] for p in parts])
    vals = np.concatenate([p[2] for p in parts]).astype(np.float32)
    m = sp.csr_matrix((vals, (rows, cols)), shape=(n_rows, n_cols))  # duplicates summed
    m.sum_duplicates()
    return m


def block_size_bound(n_seeds: int, fanouts: list[int]) -> int:
    """``n_seeds · (1 + f_1 + f_1 f_2 + … + f_1⋯f_L)``: most nodes a block can hold."""
    total, prod = 1, 1
    for f in fanouts:
        prod *= f
        total += prod
    return n_seeds * total
