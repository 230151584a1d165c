r"""Attention for recurrent encoder-decoders: one decoder state queries every encoder output.

- Bahdanau, Cho & Bengio 2015, "Neural Machine Translation by Jointly Learning to Align and Translate" (ICLR 2015,
  arXiv 1409.0473): additive attention, :class:`BahdanauAttention`.
- Luong, Pham & Manning 2015, "Effective Approaches to Attention-based Neural Machine Translation" (EMNLP 2015, arXiv
  1508.04025): global attention with the dot, general and concat scores, :class:`LuongAttention`.

Both score one query against every key, mask the padded keys, normalise with a softmax over the source and return the
weighted sum of the keys (the context vector) with the weights. A decoder calls them once per target step on the same
source, so the part of the score that depends on the keys alone, :math:`U_a h_j` or :math:`W_a \bar h_s`, is computed
once per source by :meth:`precompute_keys` and passed back in on every step.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn


def _masked_softmax(scores: Tensor, padding_mask: Tensor | None) -> Tensor:
    """Softmax over the source, exactly zero where ``padding_mask`` is True (``exp(-inf)`` is 0)."""
    if padding_mask is not None:
        scores = scores.masked_fill(padding_mask, float("-inf"))
    return scores.softmax(dim=-1)  # (B, S)


def _read(weights: Tensor, keys: Tensor) -> Tensor:
    r"""The context vector :math:`c = \sum_j \alpha_j h_j`."""
    return torch.bmm(weights.unsqueeze(1), keys).squeeze(1)  # (B, 1, S) @ (B, S, H_k) -> (B, H_k)


class _AdditiveScore(nn.Module):
    r""":math:`v^\top \tanh(W_q q + W_k k_j)`, the score of Bahdanau's attention and of Luong's concat.

    Luong's :math:`v_a^\top \tanh(W_a [h_t; \bar h_s])` is this with :math:`W_a = [W_q, W_k]`.
    """

    def __init__(self, query_size: int, key_size: int, attention_size: int) -> None:
        super().__init__()
        self.query_proj = nn.Linear(query_size, attention_size, bias=False)
        self.key_proj = nn.Linear(key_size, attention_size, bias=False)
        self.v = nn.Parameter(torch.empty(attention_size))

    def reset_parameters(self) -> None:
        self.query_proj.reset_parameters()
        self.key_proj.reset_parameters()
        bound = 1 / math.sqrt(self.v.numel())
        nn.init.uniform_(self.v, -bound, bound)

    def precompute_keys(self, keys: Tensor) -> Tensor:
        return self.key_proj(keys)  # (B, S, A)

    def forward(self, query: Tensor, projected_keys: Tensor) -> Tensor:
        hidden = torch.tanh(self.query_proj(query).unsqueeze(1) + projected_keys)  # (B, 1, A) + (B, S, A) -> (B, S, A)
        return hidden @ self.v  # (B, S)


class BahdanauAttention(nn.Module):
    r"""Additive attention from Bahdanau, Cho & Bengio 2015, "Neural Machine Translation by Jointly Learning to Align
    and Translate", section 3.1 and appendix A.1.2.

    .. math::
        e_{ij} = v_a^\top \tanh(W_a s_{i-1} + U_a h_j), \qquad
        \alpha_{ij} = \frac{\exp e_{ij}}{\sum_k \exp e_{ik}}, \qquad
        c_i = \sum_j \alpha_{ij} h_j

    where :math:`s_{i-1}` is the decoder state *before* target step :math:`i` and :math:`h_j` the encoder's annotation
    of source word :math:`j`. As in the paper there are no biases. Padded source positions get weight exactly zero.

    Args:
        query_size: features of the decoder state :math:`s`, :math:`H_q`.
        key_size: features of the annotations :math:`h_j`, :math:`H_k`.
        attention_size: width :math:`A` of the hidden layer of the alignment model (the paper's :math:`n'`).

    Shapes:
        - query: :math:`(B, H_q)`
        - keys: :math:`(B, S, H_k)`
        - padding_mask: :math:`(B, S)`, True at padding
        - projected_keys: :math:`(B, S, A)`, :meth:`precompute_keys` of ``keys``
        - output: the context :math:`(B, H_k)` and the weights :math:`(B, S)`
    """

    def __init__(self, query_size: int, key_size: int, attention_size: int) -> None:
        super().__init__()
        self.query_size = query_size
        self.key_size = key_size
        self.attention_size = attention_size
        self.score = _AdditiveScore(query_size, key_size, attention_size)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``nn.Linear``'s default for :math:`W_a` and :math:`U_a`, and the same bound, :math:`1/\\sqrt{A}`, for v."""
        self.score.reset_parameters()

    def precompute_keys(self, keys: Tensor) -> Tensor:
        """:math:`U_a h_j` for every source position, ``(B, S, A)``: the part of the score that the query leaves
        unchanged, computed once per source instead of once per target step."""
        return self.score.precompute_keys(keys)

    def forward(
        self,
        query: Tensor,
        keys: Tensor,
        padding_mask: Tensor | None = None,
        projected_keys: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Attend from ``query`` to ``keys``; ``projected_keys`` is computed here when not given."""
        if projected_keys is None:
            projected_keys = self.precompute_keys(keys)
        weights = _masked_softmax(self.score(query, projected_keys), padding_mask)  # (B, S)
        return _read(weights, keys), weights

    def extra_repr(self) -> str:
        return f"query_size={self.query_size}, key_size={self.key_size}, attention_size={self.attention_size}"


class LuongAttention(nn.Module):
    r"""Global attention from Luong, Pham & Manning 2015, "Effective Approaches to Attention-based Neural Machine
    Translation", section 3.1, with the three content-based scores of Eq. 8.

    .. math::
        \mathrm{score}(h_t, \bar h_s) =
        \begin{cases}
            h_t^\top \bar h_s & \text{dot} \\
            h_t^\top W_a \bar h_s & \text{general} \\
            v_a^\top \tanh(W_a [h_t; \bar h_s]) & \text{concat}
        \end{cases}, \qquad
        a_t(s) = \frac{\exp \mathrm{score}(h_t, \bar h_s)}{\sum_{s'} \exp \mathrm{score}(h_t, \bar h_{s'})}, \qquad
        c_t = \sum_s a_t(s) \bar h_s

    where :math:`h_t` is the decoder's *current* top-layer state and :math:`\bar h_s` the encoder's outputs. The
    concat score stores :math:`W_a` as its query and key blocks, :math:`W_a [h_t; \bar h_s] = W_q h_t + W_k \bar h_s`,
    so that the key block can be precomputed. No score has a bias, as in the paper. Padded source positions get weight
    exactly zero.

    Args:
        query_size: features of the decoder state :math:`h_t`, :math:`H_q`.
        key_size: features of the encoder outputs :math:`\bar h_s`, :math:`H_k`; must equal ``query_size`` for
            ``"dot"``.
        score: ``"dot"``, ``"general"`` or ``"concat"``.
        attention_size: width :math:`A` of :math:`W_a`'s output for ``"concat"``; ``query_size`` if ``None``. The
            other scores have no such width.

    Shapes:
        - query: :math:`(B, H_q)`
        - keys: :math:`(B, S, H_k)`
        - padding_mask: :math:`(B, S)`, True at padding
        - projected_keys: :meth:`precompute_keys` of ``keys``: ``keys`` itself for dot, :math:`(B, S, H_q)` for
          general, :math:`(B, S, A)` for concat
        - output: the context :math:`(B, H_k)` and the weights :math:`(B, S)`
    """

    def __init__(
        self,
        query_size: int,
        key_size: int,
        score: Literal["dot", "general", "concat"] = "general",
        attention_size: int | None = None,
    ) -> None:
        super().__init__()
        if score not in ("dot", "general", "concat"):
            raise ValueError(f"score must be 'dot', 'general' or 'concat', got {score!r}")
        if score == "dot" and query_size != key_size:
            raise ValueError(f"the dot score needs query_size == key_size, got {query_size} and {key_size}")
        self.query_size = query_size
        self.key_size = key_size
        self.score_name = score
        self.attention_size = (attention_size or query_size) if score == "concat" else None
        # general: h_t^T (W_a h_s), so W_a maps the keys into the query's space and is applied once per source
        self.weight = nn.Linear(key_size, query_size, bias=False) if score == "general" else None
        self.concat = _AdditiveScore(query_size, key_size, self.attention_size) if score == "concat" else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``nn.Linear``'s default for :math:`W_a` (general and concat), :math:`1/\\sqrt{A}` bounds for :math:`v_a`."""
        if self.weight is not None:
            self.weight.reset_parameters()
        if self.concat is not None:
            self.concat.reset_parameters()

    def precompute_keys(self, keys: Tensor) -> Tensor:
        r"""The key side of the score for every source position: :math:`\bar h_s` (dot, the keys themselves),
        :math:`W_a \bar h_s` (general) or :math:`W_k \bar h_s` (concat)."""
        if self.weight is not None:
            return self.weight(keys)  # (B, S, H_q)
        if self.concat is not None:
            return self.concat.precompute_keys(keys)  # (B, S, A)
        return keys

    def forward(
        self,
        query: Tensor,
        keys: Tensor,
        padding_mask: Tensor | None = None,
        projected_keys: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Attend from ``query`` to ``keys``; ``projected_keys`` is computed here when not given."""
        if projected_keys is None:
            projected_keys = self.precompute_keys(keys)
        if self.concat is not None:
            scores = self.concat(query, projected_keys)  # (B, S)
        else:
            scores = torch.bmm(projected_keys, query.unsqueeze(-1)).squeeze(-1)  # (B, S, H_q) @ (B, H_q, 1) -> (B, S)
        weights = _masked_softmax(scores, padding_mask)
        return _read(weights, keys), weights

    def extra_repr(self) -> str:
        s = f"query_size={self.query_size}, key_size={self.key_size}, score={self.score_name!r}"
        return s if self.attention_size is None else f"{s}, attention_size={self.attention_size}"
