"""Fusion of graph vectors with text token vectors: cross-attention and its concat ablation.

Both modules take a query sequence (e.g. one KG node vector per user or item, ``Lq = 1``) and a
context sequence (e.g. the BERT token vectors of that item's text) with a padding mask, and return
a fused sequence the size of the query, so a scorer can take a dot product of fused vectors.

Padding convention: ``context_mask[b, k]`` is ``True`` for a real token and ``False`` for padding
(the Hugging Face ``attention_mask`` convention, the opposite of ``key_padding_mask`` in
``torch.nn.MultiheadAttention``). Padded context rows are zeroed before use, so their content
(even ``nan``) never reaches the output.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kgrec.checks import check_int, check_rate

__all__ = ["CrossAttentionFusion", "ConcatFusion"]


class CrossAttentionFusion(nn.Module):
    r"""A transformer cross-attention block: the query attends over the context.

    The cross-attention sub-layer of a transformer decoder (Vaswani et al., "Attention Is All You
    Need", NeurIPS 2017), post-norm as in BERT's ``BertAttention`` used as cross-attention:

    .. math::
        h = \mathrm{LN}(q + \mathrm{Drop}(\mathrm{MHA}(q, c, c))), \qquad
        \mathrm{out} = \mathrm{LN}(h + \mathrm{Drop}(W_2\,\mathrm{GELU}(W_1 h)))

    (the second sub-layer only with ``ffn=True``; its hidden size is ``4 * dim``). A query row
    whose context is all padding receives no attention contribution at all (not even the output
    projection's bias): its output is ``LN(q)`` followed by the FFN sub-layer, finite and equal to
    what the block gives with the attention term removed.

    Args:
        dim (int): Size ``d`` of query, context and output vectors.
        num_heads (int, optional): Attention heads; must divide ``dim``. (default: :obj:`4`)
        dropout (float, optional): Dropout on attention weights and on each sub-layer's output
            before its residual. (default: :obj:`0.1`)
        ffn (bool, optional): Add the position-wise feed-forward sub-layer. (default: :obj:`True`)

    Shapes:
        - **input:** ``query`` ``[B, Lq, d]``, ``context`` ``[B, Lk, d]``, ``context_mask``
          ``[B, Lk]`` bool (``True`` = real token) or ``None`` (all real)
        - **output:** ``[B, Lq, d]``; with ``return_attention=True`` also the attention weights
          ``[B, Lq, Lk]``, averaged over heads, before dropout (rows sum to 1 over real tokens,
          0 on padding, all 0 where the context is all padding)
    """

    def __init__(self, dim: int, num_heads: int = 4, dropout: float = 0.1, ffn: bool = True) -> None:
        super().__init__()
        check_int(dim, "dim", 1, ValueError)
        check_int(num_heads, "num_heads", 1, ValueError)
        if dim % num_heads:
            raise ValueError(f"'dim' ({dim}) must be divisible by 'num_heads' ({num_heads}); "
                             f"got remainder {dim % num_heads}")
        check_rate(dropout, "dropout", ValueError)
        self.dim = dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.ffn = ffn
        self.head_dim = dim // num_heads

        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        self.norm_attn = nn.LayerNorm(dim)
        if ffn:
            self.ffn_in = nn.Linear(dim, 4 * dim)
            self.ffn_out = nn.Linear(4 * dim, dim)
            self.norm_ffn = nn.LayerNorm(dim)
        else:
            self.ffn_in = self.ffn_out = self.norm_ffn = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform projections and zero biases (as ``nn.MultiheadAttention``), unit LayerNorms."""
        for lin in (self.q_proj, self.k_proj, self.v_proj, self.out_proj, self.ffn_in, self.ffn_out):
            if lin is not None:
                nn.init.xavier_uniform_(lin.weight)
                nn.init.zeros_(lin.bias)
        for norm in (self.norm_attn, self.norm_ffn):
            if norm is not None:
                norm.reset_parameters()

    def forward(self, query: Tensor, context: Tensor, context_mask: Tensor | None = None,
                return_attention: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Fuse ``context`` into ``query``.

        Args:
            query (Tensor): Vectors that attend (e.g. graph node vectors).
            context (Tensor): Vectors attended to (e.g. text token vectors).
            context_mask (Tensor, optional): ``True`` for real context tokens.
            return_attention (bool, optional): Also return head-averaged attention weights.

        Shapes:
            - **input:** ``query`` ``[B, Lq, d]``, ``context`` ``[B, Lk, d]``,
              ``context_mask`` ``[B, Lk]``
            - **output:** ``[B, Lq, d]`` (and ``[B, Lq, Lk]`` weights)
        """
        mask = _check_inputs(query, context, context_mask, self.dim)
        B, Lq, _ = query.shape
        Lk = context.size(1)
        context = context.masked_fill(~mask.unsqueeze(-1), 0.0)
        empty = ~mask.any(dim=1)  # [B] rows with no real token
        # Softmax over an all-masked row is nan; let such rows see every (zeroed) token and drop
        # their attention output below, so no nan is ever produced, even in the gradient.
        attn_mask = (mask | empty.unsqueeze(1)).view(B, 1, 1, Lk)

        def heads(t: Tensor) -> Tensor:
            return t.view(B, -1, self.num_heads, self.head_dim).transpose(1, 2)

        q, k, v = heads(self.q_proj(query)), heads(self.k_proj(context)), heads(self.v_proj(context))
        p_drop = self.dropout if self.training else 0.0
        weights = None
        if return_attention:
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.head_dim)
            probs = scores.masked_fill(~attn_mask, float("-inf")).softmax(dim=-1)
            weights = probs.mean(dim=1).masked_fill(empty.view(B, 1, 1), 0.0)
            attn = F.dropout(probs, p_drop, self.training) @ v
        else:
            attn = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=p_drop)
        attn = self.out_proj(attn.transpose(1, 2).reshape(B, Lq, self.dim))
        attn = torch.where(empty.view(B, 1, 1), torch.zeros_like(attn), attn)

        h = self.norm_attn(query + F.dropout(attn, self.dropout, self.training))
        if self.ffn:
            h = self.norm_ffn(h + F.dropout(self.ffn_out(F.dropout(F.gelu(self.ffn_in(h)), self.dropout,
                                                                   self.training)),
                                            self.dropout, self.training))
        return (h, weights) if return_attention else h

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(dim={self.dim}, num_heads={self.num_heads}, "
                f"dropout={self.dropout}, ffn={self.ffn})")


class ConcatFusion(nn.Module):
    r"""Ablation baseline for :class:`CrossAttentionFusion`: mean-pool the text, concatenate, MLP.

    .. math::
        \bar c = \frac{\sum_k m_k c_k}{\max(1, \sum_k m_k)}, \qquad
        \mathrm{out}_t = W_2\,\mathrm{Drop}(\mathrm{GELU}(W_1 [q_t \,\|\, \bar c]))

    Every query position sees the same pooled context (late fusion as in the concat baselines of
    multimodal recommenders); an all-padding context pools to the zero vector.

    Args:
        dim (int): Size ``d`` of query, context and output vectors.
        num_heads (int, optional): Unused; accepted so that both fusion classes are built with the
            same arguments (``fuse(dim, num_heads=..., dropout=...)``). (default: :obj:`4`)
        dropout (float, optional): Dropout after the hidden activation. (default: :obj:`0.1`)
        hidden (int, optional): Hidden size of the MLP; ``None`` means ``dim``. (default: :obj:`None`)

    Shapes:
        - **input:** ``query`` ``[B, Lq, d]``, ``context`` ``[B, Lk, d]``, ``context_mask``
          ``[B, Lk]`` bool (``True`` = real token) or ``None``
        - **output:** ``[B, Lq, d]``; with ``return_attention=True`` also the pooling weights
          ``[B, Lq, Lk]`` (``1 / #real`` on real tokens, 0 on padding)
    """

    def __init__(self, dim: int, num_heads: int = 4, dropout: float = 0.1, hidden: int | None = None) -> None:
        super().__init__()
        check_int(dim, "dim", 1, ValueError)
        check_int(num_heads, "num_heads", 1, ValueError)
        check_rate(dropout, "dropout", ValueError)
        if hidden is not None:
            check_int(hidden, "hidden", 1, ValueError)
        self.dim = dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.hidden = hidden
        self.lin1 = nn.Linear(2 * dim, hidden or dim)
        self.lin2 = nn.Linear(hidden or dim, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform weights, zero biases."""
        for lin in (self.lin1, self.lin2):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, query: Tensor, context: Tensor, context_mask: Tensor | None = None,
                return_attention: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Fuse the pooled ``context`` into every ``query`` position.

        Shapes:
            - **input:** ``query`` ``[B, Lq, d]``, ``context`` ``[B, Lk, d]``,
              ``context_mask`` ``[B, Lk]``
            - **output:** ``[B, Lq, d]`` (and ``[B, Lq, Lk]`` pooling weights)
        """
        mask = _check_inputs(query, context, context_mask, self.dim)
        Lq = query.size(1)
        w = mask.to(query.dtype)
        w = w / w.sum(dim=1, keepdim=True).clamp_min(1.0)           # [B, Lk]
        # masked_fill (not a product) so that nan/inf in padding cannot leak through 0 * nan.
        pooled = (context.masked_fill(~mask.unsqueeze(-1), 0.0) * w.unsqueeze(-1)).sum(dim=1)  # [B, d]
        h = torch.cat([query, pooled.unsqueeze(1).expand(-1, Lq, -1)], dim=-1)
        out = self.lin2(F.dropout(F.gelu(self.lin1(h)), self.dropout, self.training))
        if return_attention:
            return out, w.unsqueeze(1).expand(-1, Lq, -1)
        return out

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(dim={self.dim}, dropout={self.dropout}, "
                f"hidden={self.hidden})")


def _check_inputs(query: Tensor, context: Tensor, context_mask: Tensor | None, dim: int) -> Tensor:
    """Validate shapes; return the mask as bool ``[B, Lk]`` (all ``True`` when ``None``)."""
    if query.dim() != 3 or query.size(-1) != dim:
        raise ValueError(f"'query' must have shape [B, Lq, {dim}] (got {list(query.shape)})")
    if context.dim() != 3 or context.size(-1) != dim or context.size(0) != query.size(0):
        raise ValueError(f"'context' must have shape [{query.size(0)}, Lk, {dim}] matching 'query' "
                         f"(got {list(context.shape)})")
    B, Lk = context.shape[:2]
    if context_mask is None:
        return torch.ones(B, Lk, dtype=torch.bool, device=context.device)
    if context_mask.shape != (B, Lk) or context_mask.dtype != torch.bool:
        raise ValueError(f"'context_mask' must be a bool tensor of shape [{B}, {Lk}] "
                         f"(got {context_mask.dtype} of shape {list(context_mask.shape)})")
    return context_mask


