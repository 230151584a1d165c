r"""Decoding an autoregressive model: greedy search and beam search with the GNMT length penalty.

Both algorithms are generic over the model. A model is seen through two functions:

- ``step_fn(prev_tokens, state) -> (log_probs, state)``: the next-token log-probabilities ``(N, V)`` of ``N``
  hypotheses, given their last tokens ``(N,)`` and their state;
- ``reindex_fn(state, indices) -> state``: the state of the hypotheses ``indices`` ``(N',)``, in that order, rows
  repeating as needed, to follow beam search's back-pointers.

:func:`seq2seq_step_fn` and :func:`transformer_step_fn` build these for :class:`~paperzoo.sequence.models.Seq2Seq` and
:class:`~paperzoo.sequence.models.Transformer`.

A hypothesis ends when it emits ``eos_id`` or reaches ``max_len`` tokens. Its length :math:`|Y|` counts its tokens,
the end token included, and its log-probability sums their log-probabilities; the sequences returned leave out the
begin token and the end token.

- Beam search: Sutskever, Vinyals & Le 2014, "Sequence to Sequence Learning with Neural Networks", section 3.1.
- Length penalty: Wu et al. 2016, "Google's Neural Machine Translation System" (arXiv 1609.08144), section 7,
  :math:`s(Y) = \log P(Y) / lp(Y)` with :math:`lp(Y) = (5 + |Y|)^\alpha / (5 + 1)^\alpha` (without GNMT's coverage
  penalty); Vaswani et al. 2017 decode with :math:`\alpha = 0.6` and beam 4.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor

from paperzoo.sequence.models.seq2seq import Seq2Seq, Seq2SeqState
from paperzoo.sequence.models.transformer import Transformer

StepFn = Callable[[Tensor, Any], tuple[Tensor, Any]]
ReindexFn = Callable[[Any, Tensor], Any]


class Hypotheses(NamedTuple):
    """The decoded sequence of every sentence and its score.

    Attributes:
        sequences: one list of token ids per sentence, without the begin and end tokens.
        scores: ``(B,)``, the summed log-probability (greedy), divided by the length penalty (beam search).
    """

    sequences: list[list[int]]
    scores: Tensor


def length_penalty(length: int, alpha: float) -> float:
    r"""GNMT's :math:`lp(Y) = (5 + |Y|)^\alpha / 6^\alpha` (Wu et al. 2016, section 7); 1 for :math:`\alpha = 0`."""
    return ((5 + length) / 6) ** alpha


def _strip(tokens: Tensor, lengths: Tensor, eos_id: int) -> list[list[int]]:
    """Each row's first ``length`` tokens, without a final end token."""
    sequences = []
    for row, length in zip(tokens.tolist(), lengths.tolist(), strict=True):
        row = row[:length]
        sequences.append(row[:-1] if row and row[-1] == eos_id else row)
    return sequences


@torch.no_grad()
def greedy_decode(
    step_fn: StepFn,
    init_state: Any,
    batch_size: int,
    bos_id: int,
    eos_id: int,
    max_len: int,
    device: torch.device | str | None = None,
) -> Hypotheses:
    """Take the most probable token at every step, until every sentence has emitted ``eos_id`` or ``max_len`` tokens.

    Args:
        step_fn: the model's step, see the module docstring.
        init_state: the state of the ``batch_size`` sentences before the first step.
        batch_size: number of sentences :math:`B`.
        bos_id: the first input token.
        eos_id: the token that ends a hypothesis.
        max_len: the most tokens a hypothesis may have, its end token included.
        device: where the tokens live; the CPU if ``None``.

    Returns:
        The sequences and their summed log-probabilities.
    """
    prev = torch.full((batch_size,), bos_id, dtype=torch.long, device=device)
    state = init_state
    finished = torch.zeros(batch_size, dtype=torch.bool, device=device)
    lengths = torch.full((batch_size,), max_len, dtype=torch.long, device=device)
    scores = torch.zeros(batch_size, device=device)
    tokens = []
    for t in range(max_len):
        log_probs, state = step_fn(prev, state)  # (B, V)
        best, prev = log_probs.max(dim=-1)  # (B,), (B,)
        scores = scores + best.where(~finished, 0.0)  # promotes to the log-probabilities' dtype
        tokens.append(prev)
        ended = ~finished & (prev == eos_id)
        lengths = torch.where(ended, t + 1, lengths)
        finished = finished | ended
        if finished.all():
            break
    return Hypotheses(_strip(torch.stack(tokens, dim=1), lengths, eos_id), scores)


@torch.no_grad()
def beam_search(
    step_fn: StepFn,
    init_state: Any,
    reindex_fn: ReindexFn,
    batch_size: int,
    beam_size: int,
    bos_id: int,
    eos_id: int,
    max_len: int,
    alpha: float = 0.6,
    device: torch.device | str | None = None,
) -> Hypotheses:
    r"""Beam search over all sentences and beams at once, with the GNMT length penalty.

    Every step extends each of a sentence's ``beam_size`` live hypotheses by every token and ranks the extensions by
    their summed log-probability. Those among the ``beam_size`` best that end with ``eos_id`` (all of them at
    ``max_len``) are finished, scored :math:`\log P(Y) / lp(Y)`, and the best finished hypothesis is kept; the
    ``beam_size`` best extensions that do not end live on. A sentence is done when no live hypothesis can beat its
    best finished one any more: log-probabilities are at most 0, so a hypothesis's sum only falls, and its penalty
    grows at most to :math:`lp(\text{max\_len})`, so :math:`\log P / lp(\text{max\_len})` of the best live
    hypothesis bounds every score still to come. The search stops when every sentence is done, or at ``max_len``.

    With ``beam_size`` 1 and ``alpha`` 0 this is :func:`greedy_decode`. With a beam as wide as the number of
    extensions at every step, :math:`V (V - 1)^{\text{max\_len} - 1}` for :math:`V` tokens, it scores every
    hypothesis and finds the best exactly.

    Args:
        step_fn: the model's step, see the module docstring.
        init_state: the state of the ``batch_size`` sentences before the first step; ``reindex_fn`` expands it to
            ``batch_size * beam_size`` rows, sentence by sentence.
        reindex_fn: selects rows of a state, see the module docstring.
        batch_size: number of sentences :math:`B`.
        beam_size: live hypotheses per sentence :math:`K`.
        bos_id: the first input token.
        eos_id: the token that ends a hypothesis.
        max_len: the most tokens a hypothesis may have, its end token included.
        alpha: the length penalty's exponent, at least 0; 0 ranks by log-probability alone, larger values favour
            longer hypotheses.
        device: where the tokens live; the CPU if ``None``.

    Returns:
        The best sequence of every sentence and its score :math:`\log P(Y) / lp(Y)`.
    """
    if beam_size < 1 or max_len < 1:
        raise ValueError(f"beam_size and max_len must be positive, got {beam_size} and {max_len}")
    if alpha < 0:
        raise ValueError(f"alpha must be at least 0 (the stopping rule needs a penalty that grows), got {alpha}")
    B, K = batch_size, beam_size
    rows = torch.arange(B, device=device)
    offsets = rows[:, None] * K  # (B, 1): the first row of each sentence's beam
    state = reindex_fn(init_state, rows.repeat_interleave(K))  # B K rows, each sentence's beam contiguous
    prev = torch.full((B * K,), bos_id, dtype=torch.long, device=device)
    # one live hypothesis per sentence at first, so that the K copies of the start do not fill the beam with duplicates
    live_scores = torch.full((B, K), float("-inf"), device=device)
    live_scores[:, 0] = 0.0
    live_tokens = torch.empty(B, K, 0, dtype=torch.long, device=device)
    best_scores = torch.full((B,), float("-inf"), device=device)
    best_tokens = torch.full((B, max_len), eos_id, dtype=torch.long, device=device)
    best_lengths = torch.zeros(B, dtype=torch.long, device=device)
    done = torch.zeros(B, dtype=torch.bool, device=device)
    bound_penalty = length_penalty(max_len, alpha)
    for t in range(max_len):
        log_probs, state = step_fn(prev, state)  # (B K, V)
        vocab = log_probs.size(-1)
        scores = live_scores.unsqueeze(-1) + log_probs.view(B, K, vocab)  # (B, K, V), in float64 for float64 models
        length, last = t + 1, t + 1 == max_len

        # finished: the K best extensions that end with eos, or all K of them at max_len
        top_scores, top = scores.view(B, K * vocab).topk(K, dim=-1)  # (B, K)
        top_beam, top_token = top // vocab, top % vocab  # back-pointers into the live beam, new tokens
        ends = torch.ones_like(top_token, dtype=torch.bool) if last else top_token == eos_id
        finished_scores = top_scores.masked_fill(~ends, float("-inf")) / length_penalty(length, alpha)
        candidate_scores, pick = finished_scores.max(dim=-1)  # (B,)
        better = candidate_scores > best_scores  # never true for a done sentence: its bound says so
        if better.any():
            beam = top_beam[rows, pick]  # (B,)
            candidate = torch.cat([live_tokens[rows, beam], top_token[rows, pick, None]], dim=-1)  # (B, t + 1)
            best_tokens[better, :length] = candidate[better]
            best_lengths = torch.where(better, length, best_lengths)
            best_scores = torch.where(better, candidate_scores, best_scores)
        if last:
            break

        # live: the K best extensions that do not end
        scores[..., eos_id] = float("-inf")
        live_scores, top = scores.view(B, K * vocab).topk(K, dim=-1)  # (B, K)
        beam, token = top // vocab, top % vocab  # (B, K) each
        live_tokens = torch.cat([live_tokens.gather(1, beam[..., None].expand(-1, -1, t)), token[..., None]], dim=-1)
        done = done | (best_scores >= live_scores[:, 0] / bound_penalty)
        if done.all():
            break
        state = reindex_fn(state, (offsets + beam).view(-1))
        prev = token.view(-1)  # (B K,)
    return Hypotheses(_strip(best_tokens, best_lengths, eos_id), best_scores)


def seq2seq_step_fn(
    model: Seq2Seq, src: Tensor, src_lengths: Tensor | None = None
) -> tuple[StepFn, Seq2SeqState, ReindexFn]:
    """``step_fn``, the initial state and ``reindex_fn`` that decode ``model`` on ``src``.

    Pass them on with ``bos_id=model.config.bos_id`` and ``eos_id=model.config.eos_id``. Put the model in eval mode
    first: in training mode its dropout would be drawn anew on every step.
    """

    def step(prev_tokens: Tensor, state: Seq2SeqState) -> tuple[Tensor, Seq2SeqState]:
        log_probs, state, _ = model.decode_step(prev_tokens, state)
        return log_probs, state

    with torch.no_grad():
        init_state = model.encode(src, src_lengths)
    return step, init_state, Seq2SeqState.index_select


@dataclass
class TransformerDecodeState:
    """What :func:`transformer_step_fn` carries between steps: the encoder's output, its mask and the prefix.

    Attributes:
        memory: :meth:`Transformer.encode`'s output ``(N, S, d)``.
        src_padding_mask: ``(N, S)``, True at padded source positions.
        prefix: ``(N, t)``, the tokens fed so far, the begin token first.
    """

    memory: Tensor
    src_padding_mask: Tensor
    prefix: Tensor

    def index_select(self, indices: Tensor) -> TransformerDecodeState:
        """The state of the rows ``indices``, in that order."""
        return TransformerDecodeState(
            self.memory.index_select(0, indices),
            self.src_padding_mask.index_select(0, indices),
            self.prefix.index_select(0, indices),
        )


def transformer_step_fn(
    model: Transformer, src: Tensor, src_padding_mask: Tensor | None = None
) -> tuple[StepFn, TransformerDecodeState, ReindexFn]:
    """``step_fn``, the initial state and ``reindex_fn`` that decode ``model`` on ``src``.

    Each step runs the decoder on the whole prefix and projects only the last position onto the vocabulary:
    :math:`O(t^2)` work over a sentence, with no key-value cache, and the same numbers as the model's training-time
    forward. The prefix is never
    masked as padding, whatever tokens it holds. ``src_padding_mask`` defaults to ``src == pad_id``. Put the model in
    eval mode first.
    """
    if src_padding_mask is None:
        src_padding_mask = src == model.config.pad_id

    def step(prev_tokens: Tensor, state: TransformerDecodeState) -> tuple[Tensor, TransformerDecodeState]:
        prefix = torch.cat([state.prefix, prev_tokens[:, None]], dim=1)  # (N, t + 1)
        no_padding = torch.zeros_like(prefix, dtype=torch.bool)
        logits = model.decode(prefix, state.memory, state.src_padding_mask, no_padding, last_only=True)[:, -1]  # (N, V)
        return logits.log_softmax(dim=-1), TransformerDecodeState(state.memory, state.src_padding_mask, prefix)

    with torch.no_grad():
        memory = model.encode(src, src_padding_mask)
    empty = torch.empty(src.size(0), 0, dtype=torch.long, device=src.device)
    return step, TransformerDecodeState(memory, src_padding_mask, empty), TransformerDecodeState.index_select
