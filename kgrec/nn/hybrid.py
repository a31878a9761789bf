"""The hybrid scorer: relational KG GNN + BERT text + cross-attention fusion + a CF branch."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kgrec.nn.cf import LightGCNEmbed
from kgrec.nn.fusion import ConcatFusion, CrossAttentionFusion
from kgrec.nn.kg_encoder import KGEncoder

__all__ = ["HybridModel", "FUSIONS", "GATES"]

#: the accepted values of ``fusion`` and ``gates`` (the hybrid's config checks against these too)
FUSIONS = ("cross", "sequence", "concat")
GATES = ("softmax", "free")


class HybridModel(nn.Module):
    r"""Late-fusion hybrid of a collaborative KG encoder, text encodings and a CF branch.

    Three branches each give a user vector and an item vector; the score is a learned positive
    combination of per-branch dot products, i.e. one dot product of concatenated vectors, so full
    ranking stays a matrix product:

    .. math::
        s(u, i) = \alpha_{cf} \langle p_u, q_i \rangle + \alpha_{kg} \langle h_u, h_i \rangle
                + \alpha_{x} \langle \tilde u, \tilde i \rangle

    * CF: LightGCN (He et al., SIGIR 2020) on training user-item edges (:math:`p, q`).
    * KG: a relational GNN over the collaborative KG (users, items, attribute entities;
      KGAT's CKG) whose layer-0 states add projected text to free id embeddings (:math:`h`).
    * Fusion: the user's behaviour-text vector attends over the KG embeddings of the items in
      their history (with a recency encoding) -> :math:`\tilde u`; an item's KG embedding attends
      over its text segments -> :math:`\tilde i` (multi-head cross-attention, padding masked).

    Items with no training interaction ("cold") get no free-id contribution, so they are
    represented by their KG neighbourhood and text alone.

    Args:
        num_users: users ``U``.
        num_items: items ``I`` (the first ``I`` entities).
        num_entities: entities ``E`` (items + attribute entities); CKG nodes are ``E + U``.
        num_edge_types: edge types of the CKG (KG relations, inverses, interaction both ways).
        text_dim: width ``H`` of the text vectors (0 disables text).
        dim: width ``d`` of every branch (default ``64``).
        kg_layers: KG encoder layers (default ``2``). kg_conv: KG convolution (see :class:`KGEncoder`).
        cf_layers: LightGCN layers (default ``2``).
        num_heads: attention heads (default ``4``). dropout: attention dropout (default ``0.1``).
        use_kg / use_text / use_cf: switch branches off for ablations.
        fusion: ``"cross"`` (the behaviour-text vector attends over the history items' KG vectors:
            one query per user), ``"sequence"`` (cross-attention between the behaviour sequence's text
            and KG views, one query per history position, both ways, then pooled by the behaviour
            text: :meth:`user_sequence_vector`) or ``"concat"`` (pooled concatenation, an ablation).
        decay_days: time constant of the recency encoding of history items (default ``365``).
        gates: how the branch gates are parametrised. ``"softmax"`` (default): learnable logits,
            gates ``= branch_init x n x softmax(logits)`` over the ``n`` active branches, so the
            branches' relative weights are learnt but their total is fixed. ``"free"``: each gate a
            free scalar (models saved before ``gates`` existed). A free gate is not L2-regularised,
            so training can grow it while shrinking the regularised embeddings it multiplies: the
            ``reg`` penalty is escaped, and the branches overfit and stop early (the gate ablation
            in ``benchmarks/results/hybrid-gates.md``).
        branch_init: the average gate (default ``1``; with ``"free"`` the initial value of each).
        item_dropout: during training, the share of warm items whose free id embeddings are
            dropped at each step (DropoutNet, Volkovs et al. 2017), so the KG and text branches
            learn to score an item from its content alone, as they must for cold items; these
            pseudo-cold items also train ``cold_gate``, a per-branch scale of the item vectors of
            cold items, so a branch that ranks content-only items badly is turned down for them
            (default ``0``: no dropout, ``cold_gate`` stays 1).
    """

    def __init__(self, num_users: int, num_items: int, num_entities: int, num_edge_types: int,
                 text_dim: int = 0, dim: int = 64, kg_layers: int = 2, kg_conv: str = "compgcn",
                 cf_layers: int = 2, num_heads: int = 4, dropout: float = 0.1, use_kg: bool = True,
                 use_text: bool = True, use_cf: bool = True, fusion: str = "cross",
                 decay_days: float = 365.0, branch_init: float = 1.0, item_dropout: float = 0.0,
                 gates: str = "softmax"):
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"'fusion' must be 'cross', 'sequence' or 'concat' (got {fusion!r})")
        if gates not in GATES:
            raise ValueError(f"'gates' must be 'softmax' or 'free' (got {gates!r})")
        self.gates = gates
        if not (use_kg or use_text or use_cf):
            raise ValueError("at least one of 'use_kg', 'use_text', 'use_cf' must be True")
        self.num_users = num_users
        self.num_items = num_items
        self.num_entities = num_entities
        self.num_edge_types = num_edge_types
        self.text_dim = text_dim
        self.dim = dim
        self.kg_layers = kg_layers
        self.kg_conv = kg_conv
        self.cf_layers = cf_layers
        self.num_heads = num_heads
        self.dropout = dropout
        self.use_kg = use_kg
        self.use_text = use_text and text_dim > 0
        self.use_cf = use_cf
        self.fusion = fusion
        self.decay_days = decay_days
        if not 0.0 <= item_dropout < 1.0:
            raise ValueError(f"'item_dropout' must be in [0, 1) (got {item_dropout})")
        self.item_dropout = item_dropout

        self.cf = LightGCNEmbed(num_users, num_items, dim, cf_layers) if use_cf else None
        if use_kg:
            self.node_emb = nn.Embedding(num_entities + num_users, dim)
            self.kg_encoder = KGEncoder(num_edge_types, dim, num_layers=kg_layers, conv=kg_conv)
        if self.use_text:
            self.item_text_proj = nn.Linear(text_dim, dim)
            self.user_text_proj = nn.Linear(text_dim, dim)
            fuse = ConcatFusion if fusion == "concat" else CrossAttentionFusion
            self.user_fusion = fuse(dim, num_heads=num_heads, dropout=dropout)
            self.item_fusion = fuse(dim, num_heads=num_heads, dropout=dropout)
            self.recency = nn.Linear(1, dim)
            if fusion == "sequence":  # the reverse direction, and the pooling by the behaviour text
                self.user_fusion_rev = CrossAttentionFusion(dim, num_heads=num_heads, dropout=dropout)
                self.user_pool = CrossAttentionFusion(dim, num_heads=num_heads, dropout=dropout, ffn=False)
        # gates of the branches (cf, kg, fused text): logits ("softmax") or the gates ("free")
        self.branch_gate = nn.Parameter(torch.empty(3))
        self.cold_gate = nn.Parameter(torch.empty(3))  # item-side scale of each branch for cold items
        self.register_buffer("prior_gate", torch.zeros(1))
        self.register_buffer("seq_gate", torch.zeros(1))  # weight of an optional sequential prior
        self.branch_init = branch_init
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.cf is not None:
            self.cf.reset_parameters()
        if self.use_kg:
            nn.init.normal_(self.node_emb.weight, std=0.1)
            self.kg_encoder.reset_parameters()
        if self.use_text:
            for m in (self.item_text_proj, self.user_text_proj, self.recency):
                m.reset_parameters()
            self.user_fusion.reset_parameters()
            self.item_fusion.reset_parameters()
            if self.fusion == "sequence":
                self.user_fusion_rev.reset_parameters()
                self.user_pool.reset_parameters()
        nn.init.constant_(self.branch_gate, 0.0 if self.gates == "softmax" else self.branch_init)
        nn.init.ones_(self.cold_gate)
        # the prior's weight is chosen after training, on validation data (see HybridEstimator)
        nn.init.zeros_(self.prior_gate)
        nn.init.zeros_(self.seq_gate)

    def branch_weights(self) -> Tensor:
        """Shape ``[3]``: the gates of the (cf, kg, text) branches (0 when off); with ``gates="softmax"``
        they sum to ``branch_init`` x the number of active branches.
        """
        on = torch.tensor([self.use_cf, self.use_kg, self.use_text], device=self.branch_gate.device)
        if self.gates == "free":
            return self.branch_gate * on
        share = torch.softmax(self.branch_gate.masked_fill(~on, -torch.inf), dim=0)
        return share * (self.branch_init * on.sum())

    def forward(self, cf_edge_index: Tensor | None, edge_index: Tensor | None, edge_type: Tensor | None,
                item_warm: Tensor, item_text: Tensor | None = None, item_text_mask: Tensor | None = None,
                user_text: Tensor | None = None, hist_items: Tensor | None = None,
                hist_mask: Tensor | None = None, hist_age: Tensor | None = None,
                kg_graph=None, prior_user: Tensor | None = None,
                prior_item: Tensor | None = None, seq_user: Tensor | None = None,
                seq_item: Tensor | None = None,
                return_attention: bool = False, parts: dict | None = None,
                item_cold: Tensor | None = None,
                users: Tensor | None = None) -> tuple[Tensor, Tensor] | tuple[Tensor, Tensor, Tensor]:
        r"""All user and item vectors (or those of some users and all items).

        Shapes:
            cf_edge_index ``[2, 2N]`` (users ``[0, U)``, items ``[U, U+I)``); edge_index ``[2, M]``,
            edge_type ``[M]`` over CKG nodes ``[0, E + U)``; item_warm ``[I]`` bool;
            item_text ``[I, S, H]`` text segments with mask ``[I, S]``; user_text ``[U, H]``;
            hist_items ``[U, L]`` item ids (padding any id, masked by hist_mask ``[U, L]``);
            hist_age ``[U, L]`` days before the user's latest interaction; kg_graph: optional
            ``KGEncoder.prepare_graph`` result for ``edge_index`` (built once by the caller);
            prior_user ``[U, P]`` / prior_item ``[I, P]``: a fixed linear CF model whose dot
            product is added with weight ``prior_gate`` (EASE: history rows and its item-item matrix);
            seq_user ``[U, Q]`` / seq_item ``[I, Q]``: a second one, weight ``seq_gate`` (sequential
            rules: recency-weighted history rows and the rule matrix).

        Returns:
            users ``[U, 3d]`` and items ``[I, 3d]`` (``[., 3d + P + Q]`` with priors); the dot product of
            the two is the score, and :meth:`branch_slices` names its parts. With
            ``return_attention=True`` also the user fusion's attention over the history items
            ``[U, L]`` (head-averaged, 0 on padding; all 0 without the text branch).
            ``item_cold`` ``[I]`` bool: items treated as cold in this call (their id embeddings
            zeroed, ``cold_gate`` applied), drawn by the caller, which also removes their
            user-item edges from the graphs it passes; when ``None``, a training call draws
            ``item_dropout`` of the warm items itself (their edges then stay).
            ``parts``, when a dict, receives ``"item_ctx"`` ``[I, d]``: the item vectors the user
            fusion attends over (before the recency term), for users scored outside the model.
            ``users`` ``[B]``: only these users' vectors are returned (``[B, .]``, in this order),
            equal to those rows of the full output. The graph branches still propagate over every
            node, but the text branch's per-user work (the fusion over each history, the largest
            per-user cost) runs for these users only: a training step needs just its batch's users.
        """
        U, I, d = self.num_users, self.num_items, self.dim
        if users is not None:  # the per-user inputs of the chosen users only
            user_text = user_text[users] if user_text is not None else None
            hist_items, hist_mask, hist_age = (t[users] if t is not None else None
                                               for t in (hist_items, hist_mask, hist_age))
            prior_user = prior_user[users] if prior_user is not None else None
            seq_user = seq_user[users] if seq_user is not None else None
            U = users.numel()
        ref = self.branch_gate
        zeros_u, zeros_i = ref.new_zeros(U, d), ref.new_zeros(I, d)
        warm = self._warm(item_warm, item_cold, ref.dtype)
        p, q = zeros_u, zeros_i
        if self.use_cf:
            p, q = self.cf(cf_edge_index)
            p = p if users is None else p[users]
            q = q * warm  # a cold item's id embedding is untrained noise
        seg = item_txt = None
        if self.use_text:
            seg = self.item_text_proj(item_text)  # [I, S, d]
            seg_mask = item_text_mask.unsqueeze(-1).to(seg.dtype)
            item_txt = (seg * seg_mask).sum(1) / seg_mask.sum(1).clamp(min=1.0)  # [I, d]
        h_u, h_i = zeros_u, zeros_i
        if self.use_kg:
            h_u, h_i = self._kg_branch(warm, item_txt, edge_index, edge_type, kg_graph)
            h_u = h_u if users is None else h_u[users]
        t_u, t_i, attn = zeros_u, zeros_i, None
        if self.use_text:
            t_u, t_i, attn = self._text_branch(h_i, q, item_txt, seg, item_text_mask, user_text, hist_items,
                                               hist_mask, hist_age, return_attention, parts)
        users, items = self._assemble(p, q, h_u, h_i, t_u, t_i, warm, prior_user, prior_item, seq_user, seq_item)
        if not return_attention:
            return users, items
        if attn is None:
            attn = hist_mask.new_zeros(hist_mask.shape, dtype=ref.dtype)
        return users, items, attn

    def _warm(self, item_warm: Tensor, item_cold: Tensor | None, dtype) -> Tensor:
        """``[I, 1]``: 1 for the items scored as warm in this call, 0 for cold ones (never trained, the
        caller's pseudo-cold items, or ``item_dropout`` drawn here when the caller drew none).
        """
        warm = item_warm.to(dtype).unsqueeze(-1)  # [I, 1]
        if item_cold is not None:  # the caller's pseudo-cold items
            warm = warm * (~item_cold.bool()).to(warm.dtype).unsqueeze(-1)
        elif self.training and self.item_dropout > 0:  # items seen as cold at this step
            warm = warm * (torch.rand(self.num_items, 1, device=warm.device) >= self.item_dropout).to(warm.dtype)
        return warm

    def _kg_branch(self, warm: Tensor, item_txt: Tensor | None, edge_index: Tensor, edge_type: Tensor,
                   kg_graph) -> tuple[Tensor, Tensor]:
        """Users ``[U, d]`` and items ``[I, d]`` from the KG encoder over the collaborative KG; a cold
        item's node starts from its text (its id row zeroed), attribute entities and users from theirs.
        """
        I = self.num_items
        x = self.node_emb.weight
        x = x * torch.cat([warm, warm.new_ones(x.shape[0] - I, 1)])
        if item_txt is not None:
            x = x + F.pad(item_txt, (0, 0, 0, x.shape[0] - I))
        # only items and users are read: the encoder's last layer skips the attribute entities
        h = self.kg_encoder(x, edge_index, edge_type, graph=kg_graph, targets=self.kg_targets(x.device))
        return h[I:], h[:I]  # [U, d], [I, d]

    def kg_targets(self, device=None) -> Tensor:
        """``[I + U]``: the collaborative KG's item nodes ``[0, I)`` then its user nodes ``[E, E + U)``,
        the rows of the KG encoder's output the scorer reads.
        """
        I, E, U = self.num_items, self.num_entities, self.num_users
        return torch.cat([torch.arange(I, device=device), torch.arange(E, E + U, device=device)])

    def _text_branch(self, h_i, q, item_txt, seg, item_text_mask, user_text, hist_items, hist_mask, hist_age,
                     return_attention: bool, parts: dict | None) -> tuple[Tensor, Tensor, Tensor | None]:
        """Users ``[U, d]``, items ``[I, d]`` of the text branch, and the users' attention over their
        history ``[U, L]`` when asked: an item's KG (or CF) view attends over its text segments; a user's
        behaviour-text vector attends over the KG vectors of their history items.
        """
        item_query = h_i if self.use_kg else (q if self.use_cf else item_txt)
        t_i = self.item_fusion(item_query.unsqueeze(1), seg, item_text_mask).squeeze(1)  # [I, d]
        item_ctx = item_query
        if parts is not None:
            parts["item_ctx"], parts["item_txt"] = item_ctx, item_txt
        if return_attention:
            t_u, attn = self.user_text_vector(item_ctx, user_text, hist_items, hist_mask, hist_age, True,
                                              item_txt=item_txt)
            return t_u, t_i, attn
        return self.user_text_vector(item_ctx, user_text, hist_items, hist_mask, hist_age, item_txt=item_txt), t_i, None

    def _assemble(self, p, q, h_u, h_i, t_u, t_i, warm, prior_user, prior_item, seq_user,
                  seq_item) -> tuple[Tensor, Tensor]:
        """The branches side by side, weighted (``branch_weights``; ``cold_gate`` for cold items), and the
        fixed priors' parts: users ``[U, 3d (+ P + Q)]``, items ``[I, 3d (+ P + Q)]``.
        """
        dtype = self.branch_gate.dtype
        w = self.branch_weights()
        users = [w[0] * p, w[1] * h_u, w[2] * t_u]
        c = warm + (1.0 - warm) * self.cold_gate  # [I, 3]: 1 for warm items, cold_gate for cold ones
        items = [q * c[:, :1], h_i * c[:, 1:2], t_i * c[:, 2:]]
        if prior_user is not None:
            users.append(self.prior_gate * prior_user.to(dtype))
            items.append(prior_item.to(dtype))
        if seq_user is not None:
            users.append(self.seq_gate * seq_user.to(dtype))
            items.append(seq_item.to(dtype))
        return torch.cat(users, dim=-1), torch.cat(items, dim=-1)

    def user_text_vector(self, item_ctx: Tensor, user_text: Tensor, hist_items: Tensor, hist_mask: Tensor,
                         hist_age: Tensor, return_attention: bool = False,
                         item_txt: Tensor | None = None) -> Tensor | tuple[Tensor, Tensor]:
        """The text branch of users: their behaviour-text vector attends over the vectors of their
        history items (KG view, plus a recency encoding); with ``fusion="sequence"`` over the fused
        behaviour sequence (:meth:`user_sequence_vector`, which needs ``item_txt``).

        Shapes: item_ctx ``[I, d]``; user_text ``[N, H]``; hist_items / hist_mask / hist_age
        ``[N, L]``; item_txt ``[I, d]`` -> ``[N, d]`` (and the attention ``[N, L]`` with
        ``return_attention``).
        """
        if self.fusion == "sequence":
            return self.user_sequence_vector(item_ctx, item_txt, user_text, hist_items, hist_mask, hist_age,
                                             return_attention)
        ctx = item_ctx[hist_items.clamp(min=0)]  # [N, L, d]
        ctx = ctx + self.recency(torch.exp(-hist_age / self.decay_days).unsqueeze(-1))
        query = self.user_text_proj(user_text).unsqueeze(1)  # [N, 1, d]
        if return_attention:
            t_u, attn = self.user_fusion(query, ctx, hist_mask, return_attention=True)
            return t_u.squeeze(1), attn.squeeze(1)
        return self.user_fusion(query, ctx, hist_mask).squeeze(1)

    def user_sequence_vector(self, item_ctx: Tensor, item_txt: Tensor, user_text: Tensor, hist_items: Tensor,
                             hist_mask: Tensor, hist_age: Tensor,
                             return_attention: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        r"""Cross-attention between the two views of a user's behaviour sequence, then pooling.

        Each of the user's ``L`` latest interactions is a position with two views, both with the
        same time encoding :math:`r_j = W_r\,e^{-\mathrm{age}_j / \tau}`: its item's text
        :math:`x_j` (MiniLM segments, projected and averaged) and its item's KG vector :math:`g_j`.
        Every text position attends over the KG positions and every KG position over the text ones
        (padding masked both ways); the behaviour-text vector :math:`b_u` (BERT of the rendered
        history) then attends over the sum of the two fused sequences:

        .. math::
            A = \mathrm{CA}(x + r,\ g + r), \quad B = \mathrm{CA}'(g + r,\ x + r), \quad
            \tilde u = \mathrm{Pool}(W_b b_u,\ A + B)

        Shapes: item_ctx ``[I, d]`` (KG view), item_txt ``[I, d]`` (text view), user_text
        ``[N, H]``, hist_items / hist_mask / hist_age ``[N, L]`` -> ``[N, d]`` (and the pooling's
        attention over the positions ``[N, L]`` with ``return_attention``: the history items the
        vector drew on, as with ``"cross"``).
        """
        if item_txt is None:
            raise ValueError("fusion='sequence' needs the items' text vectors 'item_txt' [I, d]")
        h = hist_items.clamp(min=0)
        time = self.recency(torch.exp(-hist_age / self.decay_days).unsqueeze(-1))  # [N, L, d]
        text_seq, kg_seq = item_txt[h] + time, item_ctx[h] + time
        fused = self.user_fusion(text_seq, kg_seq, hist_mask) + self.user_fusion_rev(kg_seq, text_seq, hist_mask)
        query = self.user_text_proj(user_text).unsqueeze(1)  # [N, 1, d]
        if return_attention:
            t_u, attn = self.user_pool(query, fused, hist_mask, return_attention=True)
            return t_u.squeeze(1), attn.squeeze(1)
        return self.user_pool(query, fused, hist_mask).squeeze(1)

    def branch_slices(self, width: int | None = None) -> dict[str, slice]:
        """Where each branch sits in the vectors :meth:`forward` returns.

        The score is the sum over these slices of the per-slice dot products (``"prior"``, both
        fixed priors together, only when the vectors are wider than ``3d``, i.e. a prior was passed;
        ``width`` is their size).
        """
        d = self.dim
        out = {"cf": slice(0, d), "kg": slice(d, 2 * d), "text": slice(2 * d, 3 * d)}
        if width is not None and width > 3 * d:
            out["prior"] = slice(3 * d, width)
        return out

    def ego(self, users: Tensor, items: Tensor) -> list[Tensor]:
        """Free id embeddings a batch touches (L2-regularised by the trainer)."""
        out_u, out_i = [], []
        if self.use_cf:
            eu, ei = self.cf.ego(users, items)
            out_u.append(eu)
            out_i.append(ei)
        if self.use_kg:
            out_u.append(self.node_emb.weight[users + self.num_entities])
            out_i.append(self.node_emb.weight[items])
        return [torch.cat(out_u, -1), torch.cat(out_i, -1)]

    def __repr__(self) -> str:
        parts = [n for n, on in (("cf", self.use_cf), ("kg", self.use_kg), ("text", self.use_text)) if on]
        return (f"{self.__class__.__name__}(users={self.num_users}, items={self.num_items}, "
                f"entities={self.num_entities}, edge_types={self.num_edge_types}, dim={self.dim}, "
                f"branches={'+'.join(parts)}, fusion={self.fusion}, gates={self.gates})")
