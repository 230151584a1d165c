"""Multi-head attention from Vaswani et al. 2017, "Attention Is All You Need" (NeurIPS 2017, arXiv 1706.03762)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _additive(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A boolean mask (True = may not attend) as a float mask added to the scores; a float mask as it is."""
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(mask, float("-inf"))
    return mask.to(dtype)


class MultiHeadAttention(nn.Module):
    r"""Multi-head scaled dot-product attention from Vaswani et al. 2017, section 3.2.

    .. math::
        \mathrm{Attention}(Q, K, V) = \mathrm{softmax}\Big(\frac{Q K^\top}{\sqrt{d_k}}\Big) V \quad \text{(Eq. 1)},
        \mathrm{MultiHead}(Q, K, V) = [\mathrm{head}_1; \dots; \mathrm{head}_h]\, W^O, \quad
        \mathrm{head}_i = \mathrm{Attention}(Q W_i^Q, K W_i^K, V W_i^V)

    with :math:`d_k = d_v = D / h`, computed by ``torch.nn.functional.scaled_dot_product_attention``, or explicitly
    when the attention weights are asked for.

    The parameters are laid out, and named, as in ``torch.nn.MultiheadAttention``, so its state dict loads as it is:
    ``in_proj_weight`` is :math:`[W^Q; W^K; W^V]`, every head's projection stacked, ``(3D, D)``; ``in_proj_bias`` is
    the matching ``(3D,)`` bias; ``out_proj`` is :math:`W^O`. Only torch's default ``kdim = vdim = embed_dim`` and
    ``add_bias_kv=False`` have a counterpart here.

    Masks follow ``torch.nn.MultiheadAttention``: in a boolean mask True marks a position that may *not* be attended
    to (the opposite of ``scaled_dot_product_attention``'s convention); a float mask is added to the scores.

    Args:
        embed_dim: model width D.
        num_heads: number of heads h; must divide D.
        dropout: dropout on the attention weights (training only).
        bias: learn biases in the input and output projections.

    Shapes:
        - query: :math:`(B, T, D)`
        - key, value: :math:`(B, S, D)`
        - key_padding_mask: :math:`(B, S)`
        - attn_mask: :math:`(T, S)`, or anything that broadcasts to :math:`(B, h, T, S)`
        - output: :math:`(B, T, D)`; attention weights :math:`(B, T, S)`, averaged over heads
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"width {embed_dim} is not divisible by {num_heads} heads")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.dropout = dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * embed_dim)) if bias else None
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``torch.nn.MultiheadAttention``'s initialisation: Xavier-uniform projections and zero biases."""
        nn.init.xavier_uniform_(self.in_proj_weight)
        self.out_proj.reset_parameters()
        if self.in_proj_bias is not None:
            nn.init.zeros_(self.in_proj_bias)
            nn.init.zeros_(self.out_proj.bias)

    def _mask(
        self,
        query_len: int,
        key_len: int,
        key_padding_mask: torch.Tensor | None,
        attn_mask: torch.Tensor | None,
        is_causal: bool,
        dtype: torch.dtype,
        device: torch.device,
    ) -> torch.Tensor | None:
        """All the masks that apply, summed into one additive mask that broadcasts to ``(B, h, T, S)``."""
        masks = []
        if attn_mask is not None:
            masks.append(_additive(attn_mask, dtype))  # (T, S)
        if is_causal:
            # query t sees keys 0..t (section 3.2.3: no leftward information flow in the decoder)
            future = torch.ones(query_len, key_len, dtype=torch.bool, device=device).triu(1)
            masks.append(_additive(future, dtype))  # (T, S)
        if key_padding_mask is not None:
            masks.append(_additive(key_padding_mask, dtype)[:, None, None, :])  # (B, 1, 1, S)
        if not masks:
            return None
        mask = masks[0]
        for other in masks[1:]:
            mask = mask + other
        return mask

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        attn_mask: torch.Tensor | None = None,
        is_causal: bool = False,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attend from ``query`` to ``key``/``value``.

        Args:
            query: the positions that attend.
            key: the positions attended to.
            value: what is read at those positions.
            key_padding_mask: True (or ``-inf``) at padded keys, which no query may attend to.
            attn_mask: a mask on the ``(T, S)`` scores, in ``torch.nn.MultiheadAttention``'s convention.
            is_causal: also mask every key after the query's own position (added to ``attn_mask`` if both are given).
            need_weights: also return the attention weights, averaged over heads, before dropout.

        Returns:
            The output and, if ``need_weights``, the attention weights (else ``None``).
        """
        B, T, D = query.shape
        S = key.shape[1]
        H, D_h = self.num_heads, self.head_dim
        w_q, w_k, w_v = self.in_proj_weight.chunk(3)
        b_q, b_k, b_v = (None, None, None) if self.in_proj_bias is None else self.in_proj_bias.chunk(3)
        q = F.linear(query, w_q, b_q).view(B, T, H, D_h).transpose(1, 2)  # (B, h, T, D_h)
        k = F.linear(key, w_k, b_k).view(B, S, H, D_h).transpose(1, 2)  # (B, h, S, D_h)
        v = F.linear(value, w_v, b_v).view(B, S, H, D_h).transpose(1, 2)  # (B, h, S, D_h)
        dropout_p = self.dropout if self.training else 0.0

        if need_weights:
            mask = self._mask(T, S, key_padding_mask, attn_mask, is_causal, q.dtype, q.device)
            scores = q @ k.transpose(-2, -1) / math.sqrt(D_h)  # (B, h, T, S)
            if mask is not None:
                scores = scores + mask
            weights = scores.softmax(dim=-1)
            x = F.dropout(weights, dropout_p) @ v  # (B, h, T, D_h)
            weights = weights.mean(dim=1)  # (B, T, S)
        else:
            # a causal mask alone is left to the kernel, which can then skip the masked blocks
            causal_only = is_causal and key_padding_mask is None and attn_mask is None
            mask = None if causal_only else self._mask(T, S, key_padding_mask, attn_mask, is_causal, q.dtype, q.device)
            x = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, is_causal=causal_only)
            weights = None
        x = x.transpose(1, 2).reshape(B, T, D)  # (B, T, D), heads concatenated
        return self.out_proj(x), weights

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}"
