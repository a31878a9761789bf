"""Relational graph encoder for the collaborative knowledge graph (full-graph message passing).

The encoder takes the initial node states as input (free id embeddings, projected text vectors,
or their sum: the caller decides) and returns refined node states of the same size. It keeps no
embedding table for nodes and no graph preprocessing between calls, so one module serves any graph
with the same relation set.

Edge convention (see :func:`kgrec.data.graph.collaborative_edges`): ``edge_index[0]`` is the
source ``j`` and ``edge_index[1]`` the target ``i`` of a message ``j -> i`` (PyG's
``source_to_target``); KG relation ``r`` has type ``2r`` and its inverse ``2r + 1``, so even types
are "original" edges and odd types "inverse" edges.

Only ``torch`` and ``torch_geometric.utils`` are used: no pyg-lib, no torch-sparse, no samplers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.utils import scatter, softmax

from kgrec.checks import check_int, check_rate
from kgrec.nn.sparse import SparseOperator, sparse_mm, spmm

__all__ = ["KGEncoder", "CONVS"]

#: The convolutions :class:`KGEncoder` offers.
CONVS = ("compgcn", "kgat", "rgcn")
_COMPS = ("mult", "sub")
_ACTS = {
    "relu": F.relu,
    "tanh": torch.tanh,
    "leaky_relu": F.leaky_relu,
    "identity": lambda t: t,
}
#: Bound on the (relation, target, source) sort keys of :class:`_Graph` (int64 without overflow).
_MAX_KEY = 2**62
#: Each convolution's activation in its paper, used when ``act`` is ``None``.
_DEFAULT_ACT = {"rgcn": "relu", "compgcn": "tanh", "kgat": "leaky_relu"}


class KGEncoder(nn.Module):
    r"""Stacked relational graph convolutions with a LightGCN-style layer combination.

    Layer ``l`` maps node states ``h^(l)`` to ``h^(l+1)`` with one of three convolutions; the output
    is the mean of all layer states *including the input*,
    :math:`\frac{1}{L+1}\sum_{l=0}^{L} h^{(l)}`, as in LightGCN (He et al., SIGIR 2020), which
    keeps the id/text signal of layer 0 and is stable to train for ranking.

    * ``"rgcn"``: R-GCN (Schlichtkrull et al., "Modeling Relational Data with Graph Convolutional
      Networks", ESWC 2018), :math:`h_i' = \sigma(W_0 h_i + b + \sum_r \frac{1}{|N_i^r|}
      \sum_{j \in N_i^r} W_r h_j)`, with optional basis decomposition
      :math:`W_r = \sum_b a_{rb} V_b`.
    * ``"compgcn"``: CompGCN (Vashishth et al., "Composition-based Multi-Relational Graph
      Convolutional Networks", ICLR 2020), :math:`h_i' = \tanh(\frac{1}{3}(W_O \sum_{orig}
      n_{ij}\phi(h_j, z_r) + W_I \sum_{inv} n_{ij}\phi(h_j, z_r) + W_S \phi(h_i, z_{self})) + b)`
      with :math:`\phi` = ``mult`` (:math:`h \odot z`) or ``sub`` (:math:`h - z`), symmetric
      normalisation :math:`n_{ij} = (d^{out}_j d^{in}_i)^{-1/2}` within each direction, and
      relation embeddings updated per layer, :math:`z^{(l+1)} = z^{(l)} W_{rel}`.
    * ``"kgat"``: KGAT-style attention (Wang et al., "KGAT: Knowledge Graph Attention Network for
      Recommendation", KDD 2019): :math:`\pi(i, r, j) = (W h_j)^\top \tanh(W h_i + z_r)`,
      softmax over each node's incoming edges, :math:`e_N = \sum_j \pi h_j`, and the
      bi-interaction aggregator :math:`\sigma(W_1(h_i + e_N)) + \sigma(W_2(h_i \odot e_N))`.
      KGAT's per-relation TransR projection :math:`W_r` is shared across relations here
      (relation identity enters through :math:`z_r`), which avoids a per-edge ``[d, d]`` gather.

    ``rgcn`` and ``compgcn`` aggregate neighbours per (target node, relation) pair *before*
    transforming (both are linear in the neighbour states), so the ``[d, d]`` products run over
    pairs (about 50k on MovieLens-100K's CKG) instead of edges (about 350k), and no ``[M, d]``
    tensor is kept for the backward pass.

    Measured choice: ``benchmarks/kg_encoder_speed.py`` times forward+backward and the tensors kept
    for backward of the three convolutions and of PyG's ``RGCNConv`` (which, without pyg-lib, loops
    over relations on ``[N, d]`` tensors) on a synthetic CKG the size of MovieLens-100K's; the
    figures are in ``benchmarks/results/kg_encoder_speed.md``.
    ``compgcn`` is the default: fastest, lean, and the only one of the three that learns
    relation vectors, which the scorer can reuse.

    Args:
        num_relations (int): Number of edge types ``R`` (KG relations with inverses plus the
            user-item types: ``2 * kg.num_relations + 2`` for the collaborative graph).
        dim (int): Size ``d`` of the node states in and out.
        num_layers (int, optional): Number of convolutions ``L``; ``0`` returns ``x``.
            (default: :obj:`2`)
        conv (str, optional): ``"compgcn"``, ``"rgcn"`` or ``"kgat"``. (default: :obj:`"compgcn"`)
        num_bases (int, optional): Basis decomposition of the relation parameters: R-GCN's
            ``W_r`` (``R`` matrices become ``num_bases``), CompGCN's and KGAT's relation
            embeddings ``z_r`` (as in CompGCN's paper). ``None`` gives every relation its own
            parameters. (default: :obj:`None`)
        dropout (float, optional): Dropout on each layer's output during training (message
            dropout, as in KGAT). (default: :obj:`0.0`)
        edge_dropout (float, optional): Fraction of edges removed at random in each training
            forward pass (each direction of an edge independently); normalisers are computed on
            the kept edges. (default: :obj:`0.0`)
        comp (str, optional): CompGCN's composition, ``"sub"`` or ``"mult"``; ignored by the
            other convolutions. (default: :obj:`"sub"`)
        act (str, optional): Nonlinearity after each convolution: ``"relu"``, ``"tanh"``,
            ``"leaky_relu"`` or ``"identity"``. ``None`` picks the paper's: ReLU for R-GCN, tanh
            for CompGCN, LeakyReLU for KGAT. (default: :obj:`None`)

    Shapes:
        - **input:** node states ``x`` ``[N, d]`` (float), ``edge_index`` ``[2, M]`` (long, values in
          ``[0, N)``), ``edge_type`` ``[M]`` (long, values in ``[0, R)``)
        - **output:** ``[N, d]``, same dtype as ``x``
    """

    def __init__(
        self,
        num_relations: int,
        dim: int,
        num_layers: int = 2,
        conv: str = "compgcn",
        num_bases: int | None = None,
        dropout: float = 0.0,
        edge_dropout: float = 0.0,
        comp: str = "sub",
        act: str | None = None,
    ) -> None:
        super().__init__()
        check_int(num_relations, "num_relations", 1, ValueError)
        check_int(dim, "dim", 1, ValueError)
        check_int(num_layers, "num_layers", 0, ValueError)
        if conv not in CONVS:
            raise ValueError(f"'conv' must be one of {', '.join(map(repr, CONVS))} (got {conv!r})")
        if num_bases is not None:
            check_int(num_bases, "num_bases", 1, ValueError)
        check_rate(dropout, "dropout", ValueError)
        check_rate(edge_dropout, "edge_dropout", ValueError)
        if comp not in _COMPS:
            raise ValueError(f"'comp' must be one of {', '.join(map(repr, _COMPS))} (got {comp!r})")
        if act is not None and act not in _ACTS:
            raise ValueError(f"'act' must be None or one of {', '.join(map(repr, _ACTS))} (got {act!r})")

        self.num_relations = num_relations
        self.dim = dim
        self.num_layers = num_layers
        self.conv = conv
        self.num_bases = num_bases
        self.dropout = dropout
        self.edge_dropout = edge_dropout
        self.comp = comp
        self.act = act

        act_fn = _ACTS[act if act is not None else _DEFAULT_ACT[conv]]
        if conv == "rgcn":
            self.rel_emb = self.rel_basis = self.rel_comp = None
            self.layers = nn.ModuleList(
                [_RGCNLayer(num_relations, dim, num_bases, act_fn) for _ in range(num_layers)])
        else:
            # Relation vectors are parameters of the encoder, not of a layer: CompGCN updates
            # them layer by layer from one shared starting table, KGAT uses one table throughout.
            if num_bases is None:
                self.rel_emb = nn.Parameter(torch.empty(num_relations, dim))
                self.rel_basis = self.rel_comp = None
            else:
                self.rel_emb = None
                self.rel_basis = nn.Parameter(torch.empty(num_bases, dim))
                self.rel_comp = nn.Parameter(torch.empty(num_relations, num_bases))
            if conv == "compgcn":
                # The last layer's relation update would feed nothing, so it has no W_rel.
                self.layers = nn.ModuleList([_CompGCNLayer(dim, comp, act_fn, update_rel=l < num_layers - 1)
                                             for l in range(num_layers)])
            else:
                self.layers = nn.ModuleList([_KGATLayer(dim, act_fn) for _ in range(num_layers)])
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise every parameter (Glorot for matrices and relation vectors, zero biases)."""
        for t in (self.rel_emb, self.rel_basis, self.rel_comp):
            if t is not None:
                nn.init.xavier_uniform_(t)
        for layer in self.layers:
            layer.reset_parameters()

    def relation_embeddings(self) -> Tensor | None:
        """The layer-0 relation vectors ``[R, d]`` (``None`` for ``"rgcn"``, which has none).

        Shapes:
            - **output:** ``[R, d]``
        """
        if self.conv == "rgcn":
            return None
        if self.rel_emb is not None:
            return self.rel_emb
        return self.rel_comp @ self.rel_basis

    def prepare_graph(self, edge_index: Tensor, edge_type: Tensor, num_nodes: int,
                      targets: Tensor | None = None) -> "_Graph":
        """Index structures of a fixed graph, to pass as ``forward(..., graph=)`` on every call.

        Building them sorts all edges (the bulk of a forward pass on CPU); a caller that trains on
        one graph builds them once. The sparse aggregation matrix also gets a cached transpose, so
        the backward pass does not rebuild it either. Ignores ``edge_dropout``. ``targets``: the
        nodes a caller will ask ``forward`` for (its ``targets``), whose last-layer view is then
        built here too instead of at the first call.
        """
        g = _Graph.build(self.conv, edge_index, edge_type, num_nodes, self.num_relations, torch.float32)
        g.freeze()
        if targets is not None:
            g.restricted(targets)
        return g

    def forward(self, x: Tensor, edge_index: Tensor, edge_type: Tensor, graph: "_Graph | None" = None,
                targets: Tensor | None = None) -> Tensor:
        """Refine node states by ``num_layers`` relational convolutions.

        Args:
            x (Tensor): Initial node states.
            edge_index (Tensor): Messages ``edge_index[0] -> edge_index[1]``.
            edge_type (Tensor): Edge type of each column of ``edge_index``.
            graph (optional): the result of :meth:`prepare_graph` for these edges; when given,
                ``edge_index``/``edge_type`` are not read again.
            targets (Tensor, optional): distinct node ids whose outputs the caller needs (default:
                every node). Every layer but the last must still update every node the last layer
                reads, but the last layer only computes the rows of ``targets``: on a collaborative
                KG scored through its users and items, that skips the attribute entities (most of
                the nodes) in the last layer's aggregation and its dense ``[N, d] x [d, d]``
                products. The result equals the full output's rows ``targets``.

        Shapes:
            - **input:** ``x`` ``[N, d]``, ``edge_index`` ``[2, M]``, ``edge_type`` ``[M]``,
              ``targets`` ``[T]``
            - **output:** ``[N, d]``, or ``[T, d]`` with ``targets``
        """
        if graph is None:
            self._check_inputs(x, edge_index, edge_type)
        if targets is not None:
            _check_targets(targets, x.size(0))
        if self.num_layers == 0:
            return x if targets is None else x[targets]
        if graph is None:
            if self.training and self.edge_dropout > 0 and edge_type.numel() > 0:
                keep = torch.rand(edge_type.numel(), device=edge_type.device) >= self.edge_dropout
                edge_index, edge_type = edge_index[:, keep], edge_type[keep]
            graph = _Graph.build(self.conv, edge_index, edge_type, x.size(0), self.num_relations, x.dtype)
        z = self.relation_embeddings()
        total = x
        h = x
        for l, layer in enumerate(self.layers):
            g, h_dst = graph, h
            if targets is not None and l == self.num_layers - 1:
                g, h_dst, total = graph.restricted(targets), h[targets], total[targets]
            h, z = layer(h, h_dst, z, g)
            h = F.dropout(h, self.dropout, self.training)
            total = total + h
        return total / (self.num_layers + 1)

    def _check_inputs(self, x: Tensor, edge_index: Tensor, edge_type: Tensor) -> None:
        if x.dim() != 2 or x.size(1) != self.dim or not x.is_floating_point():
            raise ValueError(f"'x' must be a float tensor of shape [N, {self.dim}] "
                             f"(got {x.dtype} of shape {list(x.shape)})")
        if edge_index.dim() != 2 or edge_index.size(0) != 2 or edge_index.dtype != torch.long:
            raise ValueError(f"'edge_index' must be a long tensor of shape [2, M] "
                             f"(got {edge_index.dtype} of shape {list(edge_index.shape)})")
        if edge_type.dim() != 1 or edge_type.numel() != edge_index.size(1) or edge_type.dtype != torch.long:
            raise ValueError(f"'edge_type' must be a long tensor of shape [{edge_index.size(1)}] "
                             f"matching 'edge_index' (got {edge_type.dtype} of shape {list(edge_type.shape)})")
        if edge_type.numel():
            lo, hi = int(edge_index.min()), int(edge_index.max())
            if lo < 0 or hi >= x.size(0):
                raise ValueError(f"'edge_index' must hold node ids in [0, {x.size(0)}) for 'x' "
                                 f"with {x.size(0)} rows (got values in [{lo}, {hi}])")
            lo, hi = int(edge_type.min()), int(edge_type.max())
            if lo < 0 or hi >= self.num_relations:
                raise ValueError(f"'edge_type' must hold types in [0, {self.num_relations}) "
                                 f"('num_relations'={self.num_relations}) (got values in [{lo}, {hi}])")

    def __repr__(self) -> str:
        extra = f", comp={self.comp!r}" if self.conv == "compgcn" else ""
        return (f"{self.__class__.__name__}(conv={self.conv!r}{extra}, "
                f"num_relations={self.num_relations}, dim={self.dim}, "
                f"num_layers={self.num_layers}, num_bases={self.num_bases}, "
                f"dropout={self.dropout}, edge_dropout={self.edge_dropout}, "
                f"act={self.act or _DEFAULT_ACT[self.conv]!r})")


# --------------------------------------------------------------------------- graph view
@dataclass
class _Graph:
    """Index tensors one forward pass shares across its layers (never stored on a module).

    For ``rgcn``/``compgcn`` the edges are grouped into (target node, relation) pairs, sorted by
    relation then target, and ``adj`` is the ``[P, N]`` sparse matrix whose row ``p`` holds the
    normalised weights of pair ``p``'s source nodes, so ``adj @ x`` aggregates every pair at once.
    A sparse product keeps only ``adj`` for the backward pass; gathering ``x[src]`` and
    scattering would allocate an ``[M, d]`` tensor each way.
    """

    num_nodes: int
    src: Tensor                         # [M]
    dst: Tensor                         # [M] in [0, num_dst)
    etype: Tensor                       # [M]
    adj: Tensor | None = None           # [P, N] sparse COO, coalesced
    pair_dst: Tensor | None = None      # [P] in [0, num_dst)
    pair_rel: Tensor | None = None      # [P]
    rel_sizes: list[int] | None = None  # R ints summing to P
    pair_scale: Tensor | None = None    # [P] compgcn: sum of the pair's edge norms
    op: SparseOperator | None = None    # adj with a cached transpose (graphs reused across calls)
    num_dst: int | None = None          # rows of a layer's output: num_nodes, or |targets| (restricted)
    num_relations: int = 0
    # the last-layer view of a reused graph, for the targets it was last asked for
    _restricted: "tuple[Tensor, _Graph] | None" = None

    def __post_init__(self) -> None:
        if self.num_dst is None:
            self.num_dst = self.num_nodes

    def aggregate(self, x: Tensor) -> Tensor:
        """``adj @ x``: ``[N, d]`` -> ``[P, d]``."""
        if self.op is not None:
            return spmm(self.op, x)
        return sparse_mm(self.adj, x)

    def freeze(self) -> None:
        """Cache the aggregation matrix's transpose: for a graph reused across calls."""
        if self.adj is not None and self.op is None:
            a = self.adj.coalesce()
            self.op = SparseOperator(a.indices(), a.values(), tuple(a.shape))

    def restricted(self, targets: Tensor) -> "_Graph":
        """The messages into ``targets`` only, their targets renumbered ``0 .. T-1`` in the order of
        ``targets``; sources keep their ids. Every weight (CompGCN's degree normalisation counts
        all of a node's edges) is the full graph's, so a layer over this view gives the full
        layer's rows ``targets``. Cached for the last ``targets`` asked for.
        """
        if self._restricted is not None and torch.equal(self._restricted[0], targets):
            return self._restricted[1]
        N, dev = self.num_nodes, self.src.device
        pos = torch.full((N,), -1, dtype=torch.long, device=dev)
        pos[targets] = torch.arange(targets.numel(), device=dev)
        keep_e = pos[self.dst] >= 0
        g = _Graph(N, self.src[keep_e], pos[self.dst[keep_e]], self.etype[keep_e], num_dst=targets.numel(),
                   num_relations=self.num_relations)
        if self.adj is not None:
            keep = pos[self.pair_dst] >= 0                          # [P] pairs into a target
            new_row = torch.cumsum(keep, 0) - 1                     # order kept: rows stay sorted
            idx, val = self.adj.indices(), self.adj.values()
            keep_nz = keep[idx[0]]
            P = int(keep.sum())
            g.adj = torch.sparse_coo_tensor(torch.stack([new_row[idx[0][keep_nz]], idx[1][keep_nz]]),
                                            val[keep_nz], (P, N), is_coalesced=True, check_invariants=False)
            g.pair_dst = pos[self.pair_dst[keep]]
            g.pair_rel = self.pair_rel[keep]
            g.rel_sizes = torch.bincount(g.pair_rel, minlength=self.num_relations).tolist()
            g.pair_scale = self.pair_scale[keep] if self.pair_scale is not None else None
            if self.op is not None:
                g.freeze()
        self._restricted = (targets.clone(), g)
        return g

    @classmethod
    def build(cls, conv: str, edge_index: Tensor, edge_type: Tensor, num_nodes: int,
              num_relations: int, dtype: torch.dtype) -> "_Graph":
        src, dst = edge_index[0], edge_index[1]
        g = cls(num_nodes, src, dst, edge_type, num_relations=num_relations)
        if conv == "kgat":
            return g
        N, dev = num_nodes, src.device
        # Sorting keys by relation first makes each relation's pairs one contiguous block.
        if num_relations * N * N < _MAX_KEY:
            # One sort of (relation, target, source) keys yields the pairs and the sparse
            # matrix's indices already coalesced (row-major, duplicates merged), sparing a
            # second sort in coalesce().
            edge_key, mult = torch.unique((edge_type * N + dst) * N + src, sorted=True, return_counts=True)
            col = edge_key % N
            pair_key, slot = torch.unique_consecutive(torch.div(edge_key, N, rounding_mode="floor"),
                                                      return_inverse=True)
            e_dst = pair_key[slot] % N
            e_inv = (torch.div(pair_key[slot], N, rounding_mode="floor") % 2) * N
            coalesced = True
        else:  # keys would overflow int64
            pair_key, slot = torch.unique(edge_type * N + dst, sorted=True, return_inverse=True)
            col, e_dst, e_inv = src, dst, (edge_type % 2) * N
            mult = torch.ones_like(src)
            coalesced = False
        mult = mult.to(dtype)
        g.pair_rel = torch.div(pair_key, N, rounding_mode="floor")
        g.pair_dst = pair_key - g.pair_rel * N
        g.rel_sizes = torch.bincount(g.pair_rel, minlength=num_relations).tolist()
        P = pair_key.numel()
        if conv == "rgcn":
            count = torch.zeros(P, dtype=dtype, device=dev).index_add_(0, slot, mult)
            value = mult / count[slot]
        else:
            # Degrees are counted within each direction (original / inverse), as CompGCN
            # normalises its in- and out-edge sets separately.
            deg_out = torch.zeros(2 * N, dtype=dtype, device=dev).index_add_(0, col + e_inv, mult)
            deg_in = torch.zeros(2 * N, dtype=dtype, device=dev).index_add_(0, e_dst + e_inv, mult)
            value = mult * (deg_out[col + e_inv] * deg_in[e_dst + e_inv]).rsqrt()
            g.pair_scale = torch.zeros(P, dtype=dtype, device=dev).index_add_(0, slot, value)
        adj = torch.sparse_coo_tensor(torch.stack([slot, col]), value, (P, N),
                                      is_coalesced=coalesced or None, check_invariants=False)
        g.adj = adj if coalesced else adj.coalesce()
        return g


# --------------------------------------------------------------------------- layers
class _RGCNLayer(nn.Module):
    """One R-GCN layer (mean per relation, self-connection, bias, activation)."""

    def __init__(self, num_relations: int, dim: int, num_bases: int | None, act) -> None:
        super().__init__()
        self.num_relations = num_relations
        self.dim = dim
        self.num_bases = num_bases
        self.act = act
        if num_bases is None:
            self.weight = nn.Parameter(torch.empty(num_relations, dim, dim))
            self.comp = None
        else:
            self.weight = nn.Parameter(torch.empty(num_bases, dim, dim))
            self.comp = nn.Parameter(torch.empty(num_relations, num_bases))
        self.root = nn.Parameter(torch.empty(dim, dim))
        self.bias = nn.Parameter(torch.empty(dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = math.sqrt(6.0 / (2 * self.dim))
        nn.init.uniform_(self.weight, -bound, bound)
        if self.comp is not None:
            nn.init.xavier_uniform_(self.comp)
        nn.init.xavier_uniform_(self.root)
        nn.init.zeros_(self.bias)

    def forward(self, x: Tensor, x_dst: Tensor, z: Tensor | None, g: _Graph) -> tuple[Tensor, Tensor | None]:
        """``x`` ``[N, d]`` every node's state, ``x_dst`` ``[g.num_dst, d]`` those of the output rows."""
        weight = self.weight
        if self.comp is not None:
            weight = (self.comp @ weight.view(self.num_bases, -1)).view(self.num_relations, self.dim, self.dim)
        agg = g.aggregate(x)  # per-pair means
        # One [P_r, d] x [d, d] product per relation present; unbind (not weight[r]) keeps the
        # backward to one stack instead of R zero-filled [R, d, d] gradients.
        parts = [chunk @ w for chunk, w in zip(agg.split(g.rel_sizes), weight.unbind(0)) if chunk.size(0)]
        out = x_dst @ self.root + self.bias
        if parts:
            out = out + scatter(torch.cat(parts), g.pair_dst, 0, g.num_dst, reduce="sum")
        return self.act(out), z


class _CompGCNLayer(nn.Module):
    """One CompGCN layer (direction-specific weights, composition, relation update)."""

    def __init__(self, dim: int, comp: str, act, update_rel: bool = True) -> None:
        super().__init__()
        self.dim = dim
        self.comp = comp
        self.act = act
        self.update_rel = update_rel
        self.w_orig = nn.Parameter(torch.empty(dim, dim))
        self.w_inv = nn.Parameter(torch.empty(dim, dim))
        self.w_loop = nn.Parameter(torch.empty(dim, dim))
        self.w_rel = nn.Parameter(torch.empty(dim, dim)) if update_rel else None
        self.loop_rel = nn.Parameter(torch.empty(1, dim))
        self.bias = nn.Parameter(torch.empty(dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for w in (self.w_orig, self.w_inv, self.w_loop, self.w_rel, self.loop_rel):
            if w is not None:
                nn.init.xavier_uniform_(w)
        nn.init.zeros_(self.bias)

    def _compose(self, h: Tensor, z: Tensor, scale: Tensor | None = None) -> Tensor:
        if self.comp == "mult":
            return h * z
        # sum_e n_e (h_e - z) = sum_e n_e h_e - (sum_e n_e) z: ``scale`` carries sum_e n_e.
        return h - z if scale is None else h - scale.unsqueeze(-1) * z

    def forward(self, x: Tensor, x_dst: Tensor, z: Tensor, g: _Graph) -> tuple[Tensor, Tensor]:
        """``x`` ``[N, d]`` every node's state, ``x_dst`` ``[g.num_dst, d]`` those of the output rows."""
        N = g.num_dst
        # phi is linear in h for a fixed relation, so composing the per-pair normalised sum
        # equals summing the composed messages.
        agg = g.aggregate(x)
        msg = self._compose(agg, z.index_select(0, g.pair_rel), g.pair_scale)
        by_dir = scatter(msg, g.pair_dst + (g.pair_rel % 2) * N, 0, 2 * N, reduce="sum")
        out = (by_dir[:N] @ self.w_orig + by_dir[N:] @ self.w_inv
               + self._compose(x_dst, self.loop_rel) @ self.w_loop) / 3.0
        return self.act(out + self.bias), (z @ self.w_rel if self.update_rel else z)


class _KGATLayer(nn.Module):
    """One KGAT-style layer (knowledge-aware attention + bi-interaction aggregator)."""

    def __init__(self, dim: int, act) -> None:
        super().__init__()
        self.dim = dim
        self.act = act
        self.w_att = nn.Parameter(torch.empty(dim, dim))
        self.lin_sum = nn.Linear(dim, dim)
        self.lin_prod = nn.Linear(dim, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.w_att)
        for lin in (self.lin_sum, self.lin_prod):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, x: Tensor, x_dst: Tensor, z: Tensor, g: _Graph) -> tuple[Tensor, Tensor]:
        """``x`` ``[N, d]`` every node's state, ``x_dst`` ``[g.num_dst, d]`` those of the output rows."""
        N = g.num_dst
        p = x @ self.w_att
        p_dst = p if x_dst is x else x_dst @ self.w_att
        # pi(i, r, j) = (W h_j)^T tanh(W h_i + z_r): i is the node being updated (KGAT's head).
        logit = (p.index_select(0, g.src)
                 * torch.tanh(p_dst.index_select(0, g.dst) + z.index_select(0, g.etype))).sum(-1)
        alpha = softmax(logit, g.dst, num_nodes=N)
        e_n = scatter(x.index_select(0, g.src) * alpha.unsqueeze(-1), g.dst, 0, N, reduce="sum")
        return self.act(self.lin_sum(x_dst + e_n)) + self.act(self.lin_prod(x_dst * e_n)), z


# --------------------------------------------------------------------------- checks


def _check_targets(targets: Tensor, num_nodes: int) -> None:
    if targets.dim() != 1 or targets.dtype != torch.long:
        raise ValueError(f"'targets' must be a long tensor of shape [T] "
                         f"(got {targets.dtype} of shape {list(targets.shape)})")
    if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= num_nodes):
        raise ValueError(f"'targets' must hold node ids in [0, {num_nodes}) "
                         f"(got values in [{int(targets.min())}, {int(targets.max())}])")
    if torch.unique(targets).numel() != targets.numel():
        raise ValueError("'targets' must not repeat a node")
