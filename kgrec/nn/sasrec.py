"""SASRec: self-attentive sequential recommendation (Kang & McAuley, ICDM 2018).

A stack of causal self-attention blocks over a user's item sequence; the hidden state at a position
predicts the next item by a dot product with the item embedding table (shared input/output
embeddings, as in the paper). Blocks are pre-LN as in the paper's Eq. (residual
``x + Dropout(g(LayerNorm(x)))``, also the layout of the authors' code and of SASRec.pytorch),
followed by a final LayerNorm.

Sequences are LEFT-padded with id ``0``: item ``i`` of the catalogue is token ``i + 1``, so the
most recent item of every sequence sits at the last position ``L - 1``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["SASRec", "CausalSelfAttention", "SASRecBlock"]


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position ``t`` sees positions ``<= t`` that are not padding.

    Shapes: x ``[B, L, d]``, keep ``[B, L, L]`` bool (True = may attend) -> ``[B, L, d]``.
    """

    def __init__(self, dim: int, num_heads: int, dropout: float):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.dropout = dropout

    def forward(self, x: Tensor, keep: Tensor) -> Tensor:
        B, L, d = x.shape
        h = self.num_heads
        q, k, v = self.qkv(x).view(B, L, 3, h, d // h).permute(2, 0, 3, 1, 4)  # each [B, h, L, d/h]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=keep.unsqueeze(1),
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(B, L, d))


class SASRecBlock(nn.Module):
    """One pre-LN transformer block: causal attention then a point-wise two-layer feed-forward net.

    Shapes: x ``[B, L, d]``, keep ``[B, L, L]`` -> ``[B, L, d]``.
    """

    def __init__(self, dim: int, num_heads: int, dropout: float):
        super().__init__()
        self.ln_attn = nn.LayerNorm(dim)
        self.attn = CausalSelfAttention(dim, num_heads, dropout)
        self.ln_ffn = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(dim, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, keep: Tensor) -> Tensor:
        x = x + self.drop(self.attn(self.ln_attn(x), keep))
        return x + self.drop(self.ffn(self.ln_ffn(x)))


class SASRec(nn.Module):
    """The SASRec network.

    Args:
        num_items: catalogue size ``I`` (the embedding table has ``I + 1`` rows, row 0 = padding).
        dim: hidden size ``d``.
        num_layers: number of attention blocks.
        num_heads: attention heads (must divide ``dim``).
        dropout: dropout on the input embeddings, inside attention and after each sub-layer.
        max_len: longest sequence ``L`` (learned positions ``0..L-1``).

    Shapes:
        forward: seq ``[B, L']`` long tokens (``0`` = padding, item ``i`` = ``i + 1``), ``L' <= L``,
        left-padded -> hidden states ``[B, L', d]`` (zero at padded positions).
        item_vectors: ``[I, d]`` (the embedding table without the padding row).
    """

    def __init__(self, num_items: int, dim: int = 64, num_layers: int = 2, num_heads: int = 2,
                 dropout: float = 0.2, max_len: int = 50):
        super().__init__()
        self.num_items, self.max_len = num_items, max_len
        self.item_emb = nn.Embedding(num_items + 1, dim, padding_idx=0)
        self.pos_emb = nn.Embedding(max_len, dim)
        self.emb_drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(SASRecBlock(dim, num_heads, dropout) for _ in range(num_layers))
        self.ln_final = nn.LayerNorm(dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """RecBole's initialisation: normal(0, 0.02) weights, zero biases, unit LayerNorms."""
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, 0.02)
                if isinstance(m, nn.Linear) and m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()

    def item_vectors(self) -> Tensor:
        """``[I, d]`` output vectors of the items (shared with the input embedding)."""
        return self.item_emb.weight[1:]

    def forward(self, seq: Tensor) -> Tensor:
        B, L = seq.shape
        if L > self.max_len:
            seq, L = seq[:, -self.max_len:], self.max_len
        real = seq > 0  # [B, L]
        pos = torch.arange(self.max_len - L, self.max_len, device=seq.device)  # the last item is at L-1
        x = self.item_emb(seq) + self.pos_emb(pos).unsqueeze(0)
        x = self.emb_drop(x) * real.unsqueeze(-1)
        causal = torch.ones(L, L, dtype=torch.bool, device=seq.device).tril()
        # a query sees earlier real items; every position also sees itself, so no row is empty
        keep = (causal & real.unsqueeze(1)) | torch.eye(L, dtype=torch.bool, device=seq.device)
        for block in self.blocks:
            x = block(x, keep) * real.unsqueeze(-1)
        return self.ln_final(x) * real.unsqueeze(-1)
