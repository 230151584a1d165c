r"""The Transformer from Vaswani et al. 2017, "Attention Is All You Need" (NeurIPS 2017, arXiv 1706.03762).

An encoder-decoder built from attention alone (section 3, Figure 1). Source and target tokens are embedded, scaled by
:math:`\sqrt{d}` (section 3.4) and given sinusoidal positions (section 3.5); N encoder layers of self-attention and a
position-wise feed-forward network (section 3.3) read the source; N decoder layers add masked (causal) self-attention
and attention over the encoder's output; a linear map to the target vocabulary, by default tied to the target
embedding (section 3.4), gives the logits.

The paper normalises after each residual sum (post-LN). ``norm_first=True`` normalises each sub-layer's input instead
(pre-LN, Xiong et al. 2020, "On Layer Normalization in the Transformer Architecture"); they train it without warm-up.
Pre-LN needs a final LayerNorm after each stack.

Parameter names are ``torch.nn.Transformer``'s (``encoder.layers.{i}``, ``decoder.layers.{i}``, ``self_attn``,
``linear1``, ``linear2``, ``norm1``-``norm3``, ``encoder.norm``, ``decoder.norm``) except the decoder's attention over
the encoder output, ``cross_attn`` here and ``multihead_attn`` there: :func:`from_torch_state_dict` renames it.

Registered variants (vocabulary sizes are arguments: ``create_model("transformer_base", src_vocab_size=...,
tgt_vocab_size=...)``):

=====================  ====  =====  =====  ====  =======  ==========================================
name                      d  heads      N  d_ff  dropout  source
=====================  ====  =====  =====  ====  =======  ==========================================
``transformer_base``    512      8  6 + 6  2048      0.1  the paper's base model (Table 3)
``transformer_small``   256      4  3 + 3  1024      0.1  a CPU- or single-GPU-sized translation model
``transformer_tiny``     64      4  2 + 2   128      0.1  for tests and toy tasks
=====================  ====  =====  =====  ====  =======  ==========================================
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from paperzoo.sequence.layers.attention import MultiHeadAttention
from paperzoo.sequence.layers.positional import SinusoidalPositionalEncoding
from paperzoo.sequence.registry import register_model


class TransformerEncoderLayer(nn.Module):
    r"""One encoder layer from Vaswani et al. 2017, section 3.1: self-attention, then a feed-forward network.

    .. math::
        \text{post-LN (the paper):}\quad x \leftarrow \mathrm{LN}(x + \mathrm{Sublayer}(x)), \qquad
        \text{pre-LN:}\quad x \leftarrow x + \mathrm{Sublayer}(\mathrm{LN}(x))

    for the sub-layers multi-head self-attention and :math:`\mathrm{FFN}(x) = \max(0, x W_1 + b_1) W_2 + b_2` (Eq. 2).
    Matches ``torch.nn.TransformerEncoderLayer(batch_first=True, activation="relu")``, names included.

    Args:
        d_model: model width d.
        num_heads: attention heads h.
        dim_feedforward: inner width of the feed-forward network, :math:`d_{ff}`.
        dropout: dropout on the attention weights, after the ReLU and on each sub-layer's output before the residual
            sum. The paper's :math:`P_{drop}` (section 5.4) is the last; the first two are tensor2tensor's and torch's.
        norm_first: pre-LN (Xiong et al. 2020) instead of the paper's post-LN.
        layer_norm_eps: LayerNorm epsilon.

    Shapes:
        - src: :math:`(B, S, d)`
        - src_key_padding_mask: :math:`(B, S)`, True at padding
        - output: :math:`(B, S, d)`
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        norm_first: bool = False,
        layer_norm_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, num_heads, dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def _self_attention(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None) -> torch.Tensor:
        return self.dropout1(self.self_attn(x, x, x, key_padding_mask=key_padding_mask)[0])

    def _feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout2(self.linear2(self.dropout(F.relu(self.linear1(x)))))

    def forward(self, src: torch.Tensor, src_key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = src
        if self.norm_first:
            x = x + self._self_attention(self.norm1(x), src_key_padding_mask)
            return x + self._feed_forward(self.norm2(x))
        x = self.norm1(x + self._self_attention(x, src_key_padding_mask))
        return self.norm2(x + self._feed_forward(x))


class TransformerDecoderLayer(nn.Module):
    r"""One decoder layer from Vaswani et al. 2017, section 3.1: causal self-attention, cross-attention, feed-forward.

    Each sub-layer is wrapped as in :class:`TransformerEncoderLayer`; the cross-attention reads the encoder's output.
    The self-attention is always causal: position t attends to target positions up to t only, which with the
    right-shifted target keeps the prediction of token t from seeing it (section 3.2.3). Matches
    ``torch.nn.TransformerDecoderLayer(batch_first=True, activation="relu")`` called with a causal ``tgt_mask``;
    its ``multihead_attn`` is ``cross_attn`` here.

    Args:
        d_model: model width d.
        num_heads: attention heads h.
        dim_feedforward: inner width of the feed-forward network, :math:`d_{ff}`.
        dropout: dropout on the attention weights, after the ReLU and on each sub-layer's output (see
            :class:`TransformerEncoderLayer`).
        norm_first: pre-LN (Xiong et al. 2020) instead of the paper's post-LN.
        layer_norm_eps: LayerNorm epsilon.

    Shapes:
        - tgt: :math:`(B, T, d)`
        - memory: :math:`(B, S, d)`, the encoder's output
        - tgt_key_padding_mask: :math:`(B, T)`, True at padding
        - memory_key_padding_mask: :math:`(B, S)`, True at padding
        - output: :math:`(B, T, d)`
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        norm_first: bool = False,
        layer_norm_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, num_heads, dropout)
        self.cross_attn = MultiHeadAttention(d_model, num_heads, dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.norm3 = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    def _self_attention(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None) -> torch.Tensor:
        return self.dropout1(self.self_attn(x, x, x, key_padding_mask=key_padding_mask, is_causal=True)[0])

    def _cross_attention(
        self, x: torch.Tensor, memory: torch.Tensor, key_padding_mask: torch.Tensor | None
    ) -> torch.Tensor:
        return self.dropout2(self.cross_attn(x, memory, memory, key_padding_mask=key_padding_mask)[0])

    def _feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout3(self.linear2(self.dropout(F.relu(self.linear1(x)))))

    def forward(
        self,
        tgt: torch.Tensor,
        memory: torch.Tensor,
        tgt_key_padding_mask: torch.Tensor | None = None,
        memory_key_padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = tgt
        if self.norm_first:
            x = x + self._self_attention(self.norm1(x), tgt_key_padding_mask)
            x = x + self._cross_attention(self.norm2(x), memory, memory_key_padding_mask)
            return x + self._feed_forward(self.norm3(x))
        x = self.norm1(x + self._self_attention(x, tgt_key_padding_mask))
        x = self.norm2(x + self._cross_attention(x, memory, memory_key_padding_mask))
        return self.norm3(x + self._feed_forward(x))


class TransformerEncoder(nn.Module):
    """The encoder stack of Vaswani et al. 2017, section 3.1: N :class:`TransformerEncoderLayer`.

    With pre-LN a final LayerNorm follows the last layer, whose residual stream is otherwise never normalised (Xiong
    et al. 2020); post-LN ends normalised already, as in the paper.

    Args:
        num_layers: number of layers N.
        d_model: model width d.
        num_heads: attention heads h.
        dim_feedforward: inner width of the feed-forward networks.
        dropout: see :class:`TransformerEncoderLayer`.
        norm_first: pre-LN instead of post-LN.
        layer_norm_eps: LayerNorm epsilon.

    Shapes:
        - src: :math:`(B, S, d)`
        - src_key_padding_mask: :math:`(B, S)`, True at padding
        - output: :math:`(B, S, d)`
    """

    def __init__(
        self,
        num_layers: int,
        d_model: int,
        num_heads: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        norm_first: bool = False,
        layer_norm_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TransformerEncoderLayer(d_model, num_heads, dim_feedforward, dropout, norm_first, layer_norm_eps)
            for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(d_model, eps=layer_norm_eps) if norm_first else nn.Identity()

    def forward(self, src: torch.Tensor, src_key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = src
        for layer in self.layers:
            x = layer(x, src_key_padding_mask)
        return self.norm(x)


class TransformerDecoder(nn.Module):
    """The decoder stack of Vaswani et al. 2017, section 3.1: N :class:`TransformerDecoderLayer`.

    A final LayerNorm follows the last layer with pre-LN, as in :class:`TransformerEncoder`.

    Args:
        num_layers: number of layers N.
        d_model: model width d.
        num_heads: attention heads h.
        dim_feedforward: inner width of the feed-forward networks.
        dropout: see :class:`TransformerEncoderLayer`.
        norm_first: pre-LN instead of post-LN.
        layer_norm_eps: LayerNorm epsilon.

    Shapes:
        - tgt: :math:`(B, T, d)`
        - memory: :math:`(B, S, d)`
        - tgt_key_padding_mask: :math:`(B, T)`, True at padding
        - memory_key_padding_mask: :math:`(B, S)`, True at padding
        - output: :math:`(B, T, d)`
    """

    def __init__(
        self,
        num_layers: int,
        d_model: int,
        num_heads: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        norm_first: bool = False,
        layer_norm_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TransformerDecoderLayer(d_model, num_heads, dim_feedforward, dropout, norm_first, layer_norm_eps)
            for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(d_model, eps=layer_norm_eps) if norm_first else nn.Identity()

    def forward(
        self,
        tgt: torch.Tensor,
        memory: torch.Tensor,
        tgt_key_padding_mask: torch.Tensor | None = None,
        memory_key_padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = tgt
        for layer in self.layers:
            x = layer(x, memory, tgt_key_padding_mask, memory_key_padding_mask)
        return self.norm(x)


@dataclass
class TransformerConfig:
    """Hyper-parameters of :class:`Transformer`; the defaults are the paper's base model (Table 3).

    Attributes:
        src_vocab_size: source vocabulary size.
        tgt_vocab_size: target vocabulary size.
        d_model: model width d.
        num_heads: attention heads h.
        num_encoder_layers: encoder layers N.
        num_decoder_layers: decoder layers N.
        dim_feedforward: inner width of the feed-forward networks, :math:`d_{ff}`.
        dropout: :math:`P_{drop}`, on the embeddings plus positions and inside every layer (see
            :class:`TransformerEncoderLayer`).
        norm_first: pre-LN (Xiong et al. 2020) instead of the paper's post-LN.
        share_embeddings: one embedding for source and target, for a joint vocabulary (the paper's byte-pair
            vocabulary shared by English and German, section 5.1); needs equal vocabulary sizes.
        tie_output_projection: the pre-softmax projection is the target embedding's matrix (section 3.4).
        pad_id: padding token of both vocabularies; tokens equal to it are masked when no padding mask is given, and
            its embedding starts at zero and gets no gradient from the lookups (a tied output projection still trains
            it through the padding logit).
        max_len: the longest sequence the positional encoding covers.
        layer_norm_eps: LayerNorm epsilon.
    """

    src_vocab_size: int
    tgt_vocab_size: int
    d_model: int = 512
    num_heads: int = 8
    num_encoder_layers: int = 6
    num_decoder_layers: int = 6
    dim_feedforward: int = 2048
    dropout: float = 0.1
    norm_first: bool = False
    share_embeddings: bool = False
    tie_output_projection: bool = True
    pad_id: int = 0
    max_len: int = 1024
    layer_norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        if self.share_embeddings and self.src_vocab_size != self.tgt_vocab_size:
            raise ValueError(
                f"shared embeddings need one vocabulary: src_vocab_size={self.src_vocab_size}, "
                f"tgt_vocab_size={self.tgt_vocab_size}"
            )


class Transformer(nn.Module):
    r"""The encoder-decoder Transformer from Vaswani et al. 2017, "Attention Is All You Need", Figure 1.

    Tokens are embedded, multiplied by :math:`\sqrt{d}` (section 3.4) and added to sinusoidal positions (section
    3.5), then dropped out; the encoder reads the source, the decoder the right-shifted target and the encoder's output;
    a linear map gives next-token logits over the target vocabulary (the softmax is the loss's).

    Args:
        config: the hyper-parameters; see :class:`TransformerConfig`.

    Shapes:
        - src: :math:`(B, S)` token ids
        - tgt: :math:`(B, T)` token ids, the target shifted right (starting with a begin-of-sequence token)
        - src_padding_mask: :math:`(B, S)`, True at padding; defaults to ``src == pad_id``
        - tgt_padding_mask: :math:`(B, T)`, True at padding; defaults to ``tgt == pad_id``
        - output: :math:`(B, T, V_{tgt})` logits
    """

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.src_embed = nn.Embedding(c.src_vocab_size, c.d_model, padding_idx=c.pad_id)
        self.tgt_embed = (
            self.src_embed if c.share_embeddings else nn.Embedding(c.tgt_vocab_size, c.d_model, padding_idx=c.pad_id)
        )
        self.positional = SinusoidalPositionalEncoding(c.d_model, c.max_len, c.dropout)
        layer_args = (c.d_model, c.num_heads, c.dim_feedforward, c.dropout, c.norm_first, c.layer_norm_eps)
        self.encoder = TransformerEncoder(c.num_encoder_layers, *layer_args)
        self.decoder = TransformerDecoder(c.num_decoder_layers, *layer_args)
        self.output_proj = nn.Linear(c.d_model, c.tgt_vocab_size, bias=False)
        if c.tie_output_projection:
            self.output_proj.weight = self.tgt_embed.weight
        self.reset_parameters()

    def reset_parameters(self) -> None:
        r"""Xavier-uniform matrices and zero biases in the layers, :math:`N(0, 1/d)` embeddings.

        The paper gives no initialisation. Xavier-uniform is what ``torch.nn.Transformer`` and the Annotated
        Transformer use; the embeddings' standard deviation :math:`d^{-1/2}` (tensor2tensor's and fairseq's) makes
        them unit-variance after the :math:`\sqrt{d}` scale, the range of the positional encoding, and keeps the
        logits of a tied output projection of order one. An untied output projection is drawn the same way.
        """
        std = self.config.d_model**-0.5
        for stack in (self.encoder, self.decoder):
            for module in stack.modules():
                if isinstance(module, nn.LayerNorm):
                    module.reset_parameters()
                elif isinstance(module, nn.Linear):
                    nn.init.xavier_uniform_(module.weight)
                    nn.init.zeros_(module.bias)
                elif isinstance(module, MultiHeadAttention):  # its out_proj is an nn.Linear, met on its own
                    nn.init.xavier_uniform_(module.in_proj_weight)
                    nn.init.zeros_(module.in_proj_bias)
        for embedding in dict.fromkeys((self.src_embed, self.tgt_embed)):
            nn.init.normal_(embedding.weight, std=std)
            with torch.no_grad():
                embedding.weight[self.config.pad_id].zero_()
        if not self.config.tie_output_projection:
            nn.init.normal_(self.output_proj.weight, std=std)

    def _embed(self, tokens: torch.Tensor, embedding: nn.Embedding) -> torch.Tensor:
        return self.positional(embedding(tokens) * math.sqrt(self.config.d_model))  # (B, T, d)

    def encode(self, src: torch.Tensor, src_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The encoder's output ("memory"), ``(B, S, d)``; ``src_padding_mask`` defaults to ``src == pad_id``."""
        if src_padding_mask is None:
            src_padding_mask = src == self.config.pad_id
        return self.encoder(self._embed(src, self.src_embed), src_padding_mask)

    def decode(
        self,
        tgt: torch.Tensor,
        memory: torch.Tensor,
        src_padding_mask: torch.Tensor | None = None,
        tgt_padding_mask: torch.Tensor | None = None,
        last_only: bool = False,
    ) -> torch.Tensor:
        """Next-token logits ``(B, T, V_tgt)`` for every target position, or ``(B, 1, V_tgt)`` for the last one.

        Args:
            tgt: target tokens, shifted right.
            memory: :meth:`encode`'s output.
            src_padding_mask: True at the padded source positions of ``memory``; ``None`` when the source has none
                (unlike the other masks it cannot be read from tokens here: pass the one :meth:`encode` used).
            tgt_padding_mask: True at padded target positions; defaults to ``tgt == pad_id``.
            last_only: project only the last position onto the vocabulary, as decoding needs: with a large
                vocabulary the projection is about as much work as the decoder layers.
        """
        if tgt_padding_mask is None:
            tgt_padding_mask = tgt == self.config.pad_id
        y = self.decoder(self._embed(tgt, self.tgt_embed), memory, tgt_padding_mask, src_padding_mask)  # (B, T, d)
        return self.output_proj(y[:, -1:] if last_only else y)  # (B, T or 1, V_tgt)

    def forward(
        self,
        src: torch.Tensor,
        tgt: torch.Tensor,
        src_padding_mask: torch.Tensor | None = None,
        tgt_padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if src_padding_mask is None:
            src_padding_mask = src == self.config.pad_id
        memory = self.encode(src, src_padding_mask)
        return self.decode(tgt, memory, src_padding_mask, tgt_padding_mask)


def from_torch_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our state dict from that of a ``torch.nn`` transformer module with ``batch_first=True`` and ReLU.

    Works for ``TransformerEncoderLayer``, ``TransformerDecoderLayer``, ``TransformerEncoder``, ``TransformerDecoder``
    (load into ours of the same kind) and ``Transformer`` (load into :class:`Transformer` with ``strict=False``: torch's
    has no embeddings, and always a final norm, which post-LN lacks here). The names are equal but for the decoder's
    attention over the encoder output: ``multihead_attn`` there, ``cross_attn`` here.
    """
    return {name.replace("multihead_attn.", "cross_attn."): tensor for name, tensor in state_dict.items()}


# (d_model, num_heads, num_layers (encoder and decoder each), dim_feedforward, dropout); see the module docstring
_ARCHS: dict[str, tuple[int, int, int, int, float]] = {
    "transformer_base": (512, 8, 6, 2048, 0.1),
    "transformer_small": (256, 4, 3, 1024, 0.1),
    "transformer_tiny": (64, 4, 2, 128, 0.1),
}


def _create_transformer(variant: str, **kwargs) -> Transformer:
    d_model, num_heads, num_layers, dim_feedforward, dropout = _ARCHS[variant]
    arch = dict(
        d_model=d_model,
        num_heads=num_heads,
        num_encoder_layers=num_layers,
        num_decoder_layers=num_layers,
        dim_feedforward=dim_feedforward,
        dropout=dropout,
    )
    return Transformer(TransformerConfig(**{**arch, **kwargs}))


@register_model
def transformer_base(**kwargs) -> Transformer:
    """The paper's base model (Table 3): d = 512, 8 heads, 6 + 6 layers, d_ff = 2048, dropout 0.1.

    With the paper's shared 37000-token vocabulary (``share_embeddings=True``) it has 63M parameters (Table 3: 65M).
    """
    return _create_transformer("transformer_base", **kwargs)


@register_model
def transformer_small(**kwargs) -> Transformer:
    """A smaller translation model: d = 256, 4 heads, 3 + 3 layers, d_ff = 1024, dropout 0.1."""
    return _create_transformer("transformer_small", **kwargs)


@register_model
def transformer_tiny(**kwargs) -> Transformer:
    """A toy model for tests: d = 64, 4 heads, 2 + 2 layers, d_ff = 128, dropout 0.1."""
    return _create_transformer("transformer_tiny", **kwargs)
