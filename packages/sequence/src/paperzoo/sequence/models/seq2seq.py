r"""Recurrent encoder-decoders, with and without attention.

- Sutskever, Vinyals & Le 2014, "Sequence to Sequence Learning with Neural Networks" (NeurIPS 2014, arXiv 1409.3215)
  and Cho et al. 2014, "Learning Phrase Representations using RNN Encoder-Decoder for Statistical Machine Translation"
  (EMNLP 2014, arXiv 1406.1078): an encoder RNN reads the source into its final state, from which a decoder RNN
  generates the target one token at a time (``attention="none"``).
- Bahdanau, Cho & Bengio 2015, "Neural Machine Translation by Jointly Learning to Align and Translate" (ICLR 2015):
  the previous decoder state queries the encoder's outputs, and the context enters the recurrence
  (``attention="bahdanau"``).
- Luong, Pham & Manning 2015, "Effective Approaches to Attention-based Neural Machine Translation" (EMNLP 2015):
  the current decoder state queries, the attentional state :math:`\tilde h_t = \tanh(W_c [c_t; h_t])` predicts the
  token and is fed into the next step's input (``attention="luong-dot" | "luong-general" | "luong-concat"``).
- Bengio et al. 2015, "Scheduled Sampling for Sequence Prediction with Recurrent Neural Networks" (NeurIPS 2015):
  ``teacher_forcing_ratio`` below one and the decay schedules :func:`inverse_sigmoid_schedule`,
  :func:`linear_schedule` and :func:`exponential_schedule`.

The encoder and the decoder cells are ``paperzoo.sequence.layers``' from-scratch GRU and LSTM. For decoding,
:meth:`Seq2Seq.encode` and :meth:`Seq2Seq.decode_step` expose one step at a time, on a :class:`Seq2SeqState` that
beam search re-indexes along the batch (see ``paperzoo.sequence.decoding``).

Registered variants (vocabulary sizes are arguments: ``create_model("seq2seq_bahdanau", src_vocab_size=...,
tgt_vocab_size=...)``); every one has 256-dimensional embeddings and 512-dimensional decoder states, modest sizes
next to the papers' 620-1000:

=====================  ====  ======  ================  ===============  ========================================
name                   cell  layers  encoder           attention        after
=====================  ====  ======  ================  ===============  ========================================
``seq2seq_bahdanau``   GRU        1  bidirectional     Bahdanau         Bahdanau et al. 2015 (RNNsearch)
``seq2seq_luong``      LSTM       2  unidirectional    Luong, general   Luong et al. 2015, with input feeding
``seq2seq_plain``      LSTM       2  unidirectional    none             Sutskever et al. 2014
=====================  ====  ======  ================  ===============  ========================================
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import torch
from torch import Tensor, nn

from paperzoo.sequence.layers.recurrent import GRU, LSTM, GRUCell, LSTMCell
from paperzoo.sequence.layers.seq2seq_attention import BahdanauAttention, LuongAttention
from paperzoo.sequence.registry import register_model

AttentionKind = Literal["bahdanau", "luong-dot", "luong-general", "luong-concat", "none"]
_ATTENTIONS = ("bahdanau", "luong-dot", "luong-general", "luong-concat", "none")


@dataclass
class Seq2SeqConfig:
    """Hyper-parameters of :class:`Seq2Seq`.

    Attributes:
        src_vocab_size: source vocabulary size.
        tgt_vocab_size: target vocabulary size.
        embed_dim: width of the source and target embeddings.
        hidden_size: width :math:`H` of the decoder's states and of the encoder's outputs; a bidirectional encoder
            gives each direction :math:`H / 2` and concatenates them (so it must be even), which keeps Luong's dot
            score possible.
        num_layers: recurrent layers of the encoder and of the decoder, each.
        cell: ``"gru"`` (Cho et al. 2014) or ``"lstm"`` (Hochreiter & Schmidhuber 1997), for both.
        bidirectional: a bidirectional encoder (Bahdanau et al. 2015, section 3.2).
        attention: ``"bahdanau"``, ``"luong-dot"``, ``"luong-general"``, ``"luong-concat"`` or ``"none"``.
        attention_size: hidden width of the additive scores (Bahdanau, Luong concat); ``hidden_size`` if ``None``.
        input_feeding: with Luong attention, feed :math:`\\tilde h_{t-1}` into step :math:`t`'s input (Luong et al.
            2015, section 3.3).
        reverse_source: the encoder reads each source's real tokens last to first (Sutskever et al. 2014, section
            3.3: it puts the first source words next to the first target words); the encoder's outputs are put back
            in source order, so attention still lines up with the source.
        dropout: on the embeddings, between recurrent layers and before the output projection, in training only.
        init_range: every parameter starts :math:`U(-r, r)`: Luong et al. 2015 use 0.1 (section 4.1), Sutskever et al.
            2014 0.08 (section 3.4).
        pad_id: padding token of both vocabularies; its embeddings are zero and get no gradient.
        bos_id: begin-of-sequence token, the first decoder input.
        eos_id: end-of-sequence token.
    """

    src_vocab_size: int
    tgt_vocab_size: int
    embed_dim: int = 256
    hidden_size: int = 512
    num_layers: int = 1
    cell: Literal["gru", "lstm"] = "gru"
    bidirectional: bool = True
    attention: AttentionKind = "bahdanau"
    attention_size: int | None = None
    input_feeding: bool = True
    reverse_source: bool = False
    dropout: float = 0.0
    init_range: float = 0.1
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2

    def __post_init__(self) -> None:
        if self.cell not in ("gru", "lstm"):
            raise ValueError(f"cell must be 'gru' or 'lstm', got {self.cell!r}")
        if self.attention not in _ATTENTIONS:
            raise ValueError(f"attention must be one of {', '.join(_ATTENTIONS)}; got {self.attention!r}")
        if self.bidirectional and self.hidden_size % 2:
            raise ValueError(f"a bidirectional encoder splits hidden_size in two; got the odd {self.hidden_size}")


@dataclass
class Seq2SeqState:
    """What :meth:`Seq2Seq.decode_step` carries from one target step to the next.

    Attributes:
        hidden: the decoder's recurrent state, ``(h,)`` for a GRU or ``(h, c)`` for an LSTM, each ``(L, B, H)``.
        memory: the encoder's outputs ``(B, S, H)``; ``None`` without attention.
        keys: the attention's :meth:`precompute_keys` of ``memory``; ``None`` without attention.
        src_padding_mask: ``(B, S)``, True at padded source positions.
        feed: Luong's attentional state :math:`\\tilde h_{t-1}` ``(B, H)`` for input feeding, else ``None``.
    """

    hidden: tuple[Tensor, ...]
    memory: Tensor | None
    keys: Tensor | None
    src_padding_mask: Tensor
    feed: Tensor | None

    def index_select(self, indices: Tensor) -> Seq2SeqState:
        """The state of the batch rows ``indices``, in that order (rows may repeat): beam search's re-indexing."""
        memory = None if self.memory is None else self.memory.index_select(0, indices)
        # Luong's dot score uses the memory itself as keys: select it once
        keys = memory if self.keys is self.memory else self.keys.index_select(0, indices)
        return Seq2SeqState(
            hidden=tuple(h.index_select(1, indices) for h in self.hidden),
            memory=memory,
            keys=keys,
            src_padding_mask=self.src_padding_mask.index_select(0, indices),
            feed=None if self.feed is None else self.feed.index_select(0, indices),
        )


class Seq2Seq(nn.Module):
    r"""The RNN encoder-decoder of Sutskever et al. 2014 and Cho et al. 2014, with the attention of Bahdanau et al. 2015
    or of Luong et al. 2015.

    **Encoder.** The source is embedded and read by a GRU or LSTM, bidirectional if configured, with the real lengths
    of a padded batch; its outputs :math:`\bar h_s` (both directions concatenated) are the attention's keys.

    **Bridge.** Each decoder state starts from the encoder's final state of the same kind (every layer, both
    directions): :math:`h_0 = \tanh(W_b [\overrightarrow{h}; \overleftarrow{h}] + b_b)`, as Bahdanau et al. 2015
    (appendix A.2.2) initialise :math:`s_0 = \tanh(W_s \overleftarrow{h}_1)`; an LSTM's cell state, unbounded, gets
    a linear map :math:`c_0 = W_c [\overrightarrow{c}; \overleftarrow{c}] + b_c` without the tanh.

    **Decoder step**, from the previous target token :math:`y_{t-1}` with embedding :math:`e`:

    - ``"none"``: :math:`h_t = \mathrm{RNN}(e, h_{t-1})`, logits :math:`W_s h_t + b_s` (Sutskever et al.; Cho et
      al. also feed the source summary to every step, this does not).
    - ``"bahdanau"``: :math:`c_t = \mathrm{attn}(h_{t-1}, \bar h)`, :math:`h_t = \mathrm{RNN}([e; c_t], h_{t-1})`,
      and the deep output of appendix A.2.2, a maxout of pool 2 over :math:`U_o [h_t; c_t; e] + b_o` with
      :math:`H` units, then :math:`W_s \cdot + b_s`. The output reads :math:`h_t` as in Eq. 4,
      :math:`p(y_t) = g(y_{t-1}, s_t, c_t)`.
    - ``"luong-*"``: :math:`h_t = \mathrm{RNN}([e; \tilde h_{t-1}], h_{t-1})` (input feeding, section 3.3, with
      :math:`\tilde h_0 = 0`), :math:`c_t = \mathrm{attn}(h_t, \bar h)`, :math:`\tilde h_t = \tanh(W_c [c_t; h_t])`
      (Eq. 5), logits :math:`W_s \tilde h_t + b_s` (Eq. 6).

    With several layers, the top layer's state queries and predicts; the layers' inputs are the outputs of the layer
    below. The GRU and LSTM cells carry the conventions of ``paperzoo.sequence.layers.recurrent`` (torch's): the
    concatenated decoder input is the papers' separate input matrices (e.g. Bahdanau's :math:`W E y` and
    :math:`C c`) stacked into one.

    Args:
        config: the hyper-parameters; see :class:`Seq2SeqConfig`.

    Shapes:
        - src: :math:`(B, S)` token ids, padded with ``pad_id``
        - src_lengths: :math:`(B)`, the real lengths, in :math:`[1, S]`
        - tgt_in: :math:`(B, T)` token ids, the target shifted right (starting with ``bos_id``)
        - output: logits :math:`(B, T, V_{tgt})` and attention weights :math:`(B, T, S)` (``None`` without
          attention), zero at padded source positions
    """

    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        self.config = c = config
        H, E = c.hidden_size, c.embed_dim
        self._kind = c.attention.split("-")[0]  # "bahdanau", "luong" or "none"
        self._lstm = c.cell == "lstm"
        self.src_embed = nn.Embedding(c.src_vocab_size, E, padding_idx=c.pad_id)
        self.tgt_embed = nn.Embedding(c.tgt_vocab_size, E, padding_idx=c.pad_id)
        self.dropout = nn.Dropout(c.dropout)
        directions = 2 if c.bidirectional else 1
        encoder = LSTM if self._lstm else GRU
        self.encoder = encoder(
            E,
            H // directions,
            c.num_layers,
            batch_first=True,
            dropout=c.dropout if c.num_layers > 1 else 0.0,
            bidirectional=c.bidirectional,
        )
        # one bridge per kind of state, h (and c), over all layers at once
        self.bridge = nn.ModuleList(
            nn.Linear(c.num_layers * H, c.num_layers * H) for _ in range(2 if self._lstm else 1)
        )
        attention_size = c.attention_size or H
        decoder_input = E
        if self._kind == "bahdanau":
            self.attention: BahdanauAttention | LuongAttention | None = BahdanauAttention(H, H, attention_size)
            decoder_input += H  # the context
        elif self._kind == "luong":
            self.attention = LuongAttention(H, H, c.attention.removeprefix("luong-"), attention_size)
            if c.input_feeding:
                decoder_input += H  # the previous attentional state
        else:
            self.attention = None
        cell = LSTMCell if self._lstm else GRUCell
        self.cells = nn.ModuleList(cell(decoder_input if layer == 0 else H, H) for layer in range(c.num_layers))
        # Bahdanau's deep output: 2H pre-activations, maxout over pairs; Luong's W_c
        self.deep_output = nn.Linear(2 * H + E, 2 * H) if self._kind == "bahdanau" else None
        self.combine = nn.Linear(2 * H, H, bias=False) if self._kind == "luong" else None
        self.output_proj = nn.Linear(H, c.tgt_vocab_size)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every parameter :math:`U(-r, r)` with ``r = init_range`` (Luong et al. 2015, section 4.1; Sutskever et al.
        2014, section 3.4), then the padding embeddings zero."""
        r = self.config.init_range
        with torch.no_grad():
            for param in self.parameters():
                param.uniform_(-r, r)
            self.src_embed.weight[self.config.pad_id].zero_()
            self.tgt_embed.weight[self.config.pad_id].zero_()

    def _bridge(self, finals: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        """The decoder's initial state from the encoder's final one: ``num_states x (D L, B, H / D)`` to
        ``num_states x (L, B, H)``."""
        c = self.config
        L, H = c.num_layers, c.hidden_size
        directions = 2 if c.bidirectional else 1
        batch = finals[0].size(1)
        states = []
        for kind, (final, linear) in enumerate(zip(finals, self.bridge, strict=True)):
            # each layer's directions side by side, as the encoder concatenates its outputs
            flat = final.view(L, directions, batch, H // directions).permute(2, 0, 1, 3).reshape(batch, L * H)
            state = linear(flat)  # (B, L H)
            if kind == 0:  # h is a tanh (GRU) or tanh-bounded (LSTM) state; the LSTM's c is not bounded
                state = torch.tanh(state)
            states.append(state.view(batch, L, H).transpose(0, 1).contiguous())  # (L, B, H)
        return tuple(states)

    def encode(self, src: Tensor, src_lengths: Tensor | Sequence[int] | None = None) -> Seq2SeqState:
        """Read the source; returns the decoder's initial state. ``src_lengths`` defaults to the count of non-padding
        tokens."""
        if src_lengths is None:
            src_lengths = (src != self.config.pad_id).sum(dim=1)
        src_lengths = torch.as_tensor(src_lengths, device=src.device)
        positions = torch.arange(src.size(1), device=src.device)[None, :]
        padding_mask = positions >= src_lengths[:, None]  # (B, S)
        if self.config.reverse_source:  # position i < length reads token length-1-i; the padding stays where it is
            order = torch.where(padding_mask, positions, src_lengths[:, None] - 1 - positions)  # an involution
            src = src.gather(1, order)
        memory, final = self.encoder(self.dropout(self.src_embed(src)), lengths=src_lengths)  # (B, S, H)
        if self.config.reverse_source:
            memory = memory.gather(1, order[:, :, None].expand_as(memory))
        hidden = self._bridge(final if self._lstm else (final,))
        if self.attention is None:
            return Seq2SeqState(hidden, None, None, padding_mask, None)
        keys = self.attention.precompute_keys(memory)
        feed = None
        if self._kind == "luong" and self.config.input_feeding:
            feed = memory.new_zeros(memory.size(0), self.config.hidden_size)  # (B, H): no attentional state yet
        return Seq2SeqState(hidden, memory, keys, padding_mask, feed)

    def _recur(self, x: Tensor, hidden: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        """One step of the decoder's stacked cells; ``hidden`` and the result are ``num_states x (L, B, H)``."""
        states = []
        for layer, cell in enumerate(self.cells):
            if layer > 0:
                x = self.dropout(x)
            previous = tuple(h[layer] for h in hidden)  # num_states x (B, H)
            state = tuple(cell(x, previous)) if self._lstm else (cell(x, previous[0]),)
            states.append(state)
            x = state[0]
        return tuple(torch.stack(s) for s in zip(*states, strict=True))  # num_states x (L, B, H)

    def _step(self, prev_tokens: Tensor, state: Seq2SeqState) -> tuple[Tensor, Seq2SeqState, Tensor | None]:
        """One target step: logits ``(B, V)``, the next state and the attention weights ``(B, S)`` (or ``None``)."""
        emb = self.dropout(self.tgt_embed(prev_tokens))  # (B, E)
        context = weights = None
        if self._kind == "bahdanau":
            # the query is the state before this step, s_{i-1} (section 3.1), so the context can enter the recurrence
            context, weights = self.attention(state.hidden[0][-1], state.memory, state.src_padding_mask, state.keys)
            x = torch.cat([emb, context], dim=-1)  # (B, E + H)
        elif state.feed is not None:
            x = torch.cat([emb, state.feed], dim=-1)  # (B, E + H)
        else:
            x = emb
        hidden = self._recur(x, hidden=state.hidden)
        top = hidden[0][-1]  # (B, H)
        feed = None
        if self._kind == "bahdanau":
            pre_maxout = self.deep_output(torch.cat([top, context, emb], dim=-1))  # (B, 2H)
            out = pre_maxout.unflatten(-1, (-1, 2)).amax(dim=-1)  # (B, H, 2) -> (B, H)
        elif self._kind == "luong":
            # the query is the current state h_t (section 3.1)
            context, weights = self.attention(top, state.memory, state.src_padding_mask, state.keys)
            out = torch.tanh(self.combine(torch.cat([context, top], dim=-1)))  # h~_t (B, H), Eq. 5
            feed = out if self.config.input_feeding else None
        else:
            out = top
        logits = self.output_proj(self.dropout(out))  # (B, V)
        return logits, replace(state, hidden=hidden, feed=feed), weights

    def decode_step(self, prev_tokens: Tensor, state: Seq2SeqState) -> tuple[Tensor, Seq2SeqState, Tensor | None]:
        """One target step for decoding.

        Args:
            prev_tokens: ``(B,)``, the previous target tokens (``bos_id`` at the first step).
            state: :meth:`encode`'s output, or the previous step's state.

        Returns:
            Next-token log-probabilities ``(B, V_tgt)``, the new state and the attention weights ``(B, S)`` (``None``
            without attention).
        """
        logits, state, weights = self._step(prev_tokens, state)
        return logits.log_softmax(dim=-1), state, weights

    def forward(
        self,
        src: Tensor,
        src_lengths: Tensor | Sequence[int] | None,
        tgt_in: Tensor,
        teacher_forcing_ratio: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Logits for every target position, decoding ``tgt_in``'s length.

        Args:
            src: source tokens.
            src_lengths: real source lengths; ``None`` counts the non-padding tokens.
            tgt_in: the target shifted right; its first column is always the first input.
            teacher_forcing_ratio: the probability of feeding the gold token ``tgt_in[:, t]`` at step ``t >= 1``;
                otherwise the model's own argmax of step ``t - 1`` is fed (scheduled sampling, Bengio et al. 2015,
                section 2.4). 1 is teacher forcing, 0 is greedy decoding.
            generator: the random source for the coins, one ``torch.rand(B)`` per step ``t >= 1``, drawn only when
                the ratio is below 1.

        Returns:
            Logits ``(B, T, V_tgt)`` and attention weights ``(B, T, S)`` (``None`` without attention).
        """
        if not 0.0 <= teacher_forcing_ratio <= 1.0:
            raise ValueError(f"teacher_forcing_ratio must lie in [0, 1], got {teacher_forcing_ratio}")
        state = self.encode(src, src_lengths)
        batch, length = tgt_in.shape
        prev = tgt_in[:, 0]
        logits, weights = [], []
        for t in range(length):
            step_logits, state, step_weights = self._step(prev, state)
            logits.append(step_logits)
            weights.append(step_weights)
            if t + 1 == length:
                break
            prev = tgt_in[:, t + 1]
            if teacher_forcing_ratio < 1.0:
                gold = torch.rand(batch, generator=generator, device=tgt_in.device) < teacher_forcing_ratio
                prev = torch.where(gold, prev, step_logits.argmax(dim=-1))
        attention = None if self.attention is None else torch.stack(weights, dim=1)  # (B, T, S)
        return torch.stack(logits, dim=1), attention  # (B, T, V)


def inverse_sigmoid_schedule(step: int, k: float) -> float:
    r"""Scheduled sampling's inverse sigmoid decay (Bengio et al. 2015, section 2.4): the teacher-forcing ratio
    :math:`\epsilon_i = k / (k + \exp(i / k))` at training step :math:`i`, for :math:`k \ge 1`; it starts near 1 and
    passes 1/2 at :math:`i = k \ln k`."""
    if k < 1:
        raise ValueError(f"the inverse sigmoid decay needs k >= 1, got {k}")
    # k / (k + e^x) = sigmoid(ln k - x), computed without overflowing e^x for large steps
    z = math.log(k) - step / k
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def linear_schedule(step: int, slope: float, start: float = 1.0, minimum: float = 0.0) -> float:
    r"""Scheduled sampling's linear decay (Bengio et al. 2015, section 2.4): :math:`\epsilon_i = \max(\epsilon,
    k - c\,i)` with ``start`` :math:`k`, ``slope`` :math:`c` and ``minimum`` :math:`\epsilon`."""
    return max(minimum, start - slope * step)


def exponential_schedule(step: int, k: float) -> float:
    r"""Scheduled sampling's exponential decay (Bengio et al. 2015, section 2.4): :math:`\epsilon_i = k^i`,
    :math:`0 < k < 1`."""
    if not 0 < k < 1:
        raise ValueError(f"the exponential decay needs 0 < k < 1, got {k}")
    return k**step


# (cell, num_layers, bidirectional, attention); see the module docstring
_ARCHS: dict[str, tuple[str, int, bool, str]] = {
    "seq2seq_bahdanau": ("gru", 1, True, "bahdanau"),
    "seq2seq_luong": ("lstm", 2, False, "luong-general"),
    "seq2seq_plain": ("lstm", 2, False, "none"),
}
_DEFAULTS: dict[str, dict] = {"seq2seq_plain": {"reverse_source": True}}


def _create_seq2seq(variant: str, **kwargs) -> Seq2Seq:
    cell, num_layers, bidirectional, attention = _ARCHS[variant]
    arch = dict(cell=cell, num_layers=num_layers, bidirectional=bidirectional, attention=attention)
    return Seq2Seq(Seq2SeqConfig(**{**arch, **_DEFAULTS.get(variant, {}), **kwargs}))


@register_model
def seq2seq_bahdanau(**kwargs) -> Seq2Seq:
    """RNNsearch after Bahdanau et al. 2015: bidirectional GRU encoder, GRU decoder with additive attention."""
    return _create_seq2seq("seq2seq_bahdanau", **kwargs)


@register_model
def seq2seq_luong(**kwargs) -> Seq2Seq:
    """After Luong et al. 2015: 2-layer LSTMs, global attention with the general score, input feeding."""
    return _create_seq2seq("seq2seq_luong", **kwargs)


@register_model
def seq2seq_plain(**kwargs) -> Seq2Seq:
    """After Sutskever et al. 2014: 2-layer LSTMs, the source read in reverse and reaching the decoder only through
    its initial state."""
    return _create_seq2seq("seq2seq_plain", **kwargs)
