"""Tests for greedy and beam search (paperzoo.sequence.decoding).

On a toy model whose next-token distribution is a random table indexed by the sentence and the whole prefix, small
enough to enumerate every hypothesis: beam search with a wide beam finds the exact best under the GNMT length
penalty; beam 1 is greedy; batched equals one sentence at a time; scores are log-probabilities over the penalty. Then
the adapters: Seq2Seq and the Transformer decode with the same functions, padded batches as single sentences, and
beam 1 as their own argmax loops.
"""

import itertools

import pytest
import torch

from paperzoo.sequence.decoding import (
    beam_search,
    greedy_decode,
    length_penalty,
    seq2seq_step_fn,
    transformer_step_fn,
)
from paperzoo.sequence.models import Seq2Seq, Seq2SeqConfig
from paperzoo.sequence.registry import create_model

BOS, EOS = 0, 1


class ToyModel:
    """``log p(y | sentence, prefix)`` from a random table; the state of a hypothesis is (sentence, prefix code).

    The code numbers the prefix, BOS included, in bijective base V (``code * V + token + 1``), so every prefix has its
    own row and its own distribution. Standard-normal logits with EOS's lowered by 1 make the best hypotheses of all
    lengths and the search hard enough that narrow beams miss some.
    """

    def __init__(self, num_sentences: int, vocab: int, max_len: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        codes = vocab ** (max_len + 1)  # above every code of BOS and up to max_len - 1 tokens
        logits = torch.randn(num_sentences, codes, vocab, generator=g, dtype=torch.float64)
        logits[..., EOS] -= 1.0
        self.table = logits.log_softmax(-1)
        self.vocab, self.max_len, self.num_sentences = vocab, max_len, num_sentences

    def init_state(self, sentences: list[int]) -> torch.Tensor:
        return torch.tensor([[s, 0] for s in sentences])  # (N, 2)

    def step(self, prev: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        code = state[:, 1] * self.vocab + prev + 1
        return self.table[state[:, 0], code], torch.stack([state[:, 0], code], dim=1)

    @staticmethod
    def reindex(state: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        return state.index_select(0, indices)

    def log_prob(self, sentence: int, tokens: list[int]) -> float:
        """Summed log-probability of ``tokens`` (EOS included if it ended), written out prefix by prefix."""
        total, code = 0.0, BOS + 1
        for token in tokens:
            total += float(self.table[sentence, code, token])
            code = code * self.vocab + token + 1
        return total

    def all_hypotheses(self) -> list[list[int]]:
        """Every complete hypothesis: EOS-terminated, or max_len tokens long, with no EOS before its end."""
        others = [v for v in range(self.vocab) if v != EOS]
        hypotheses = []
        for n in range(1, self.max_len + 1):
            for prefix in itertools.product(others, repeat=n - 1):
                hypotheses.append([*prefix, EOS])
                if n == self.max_len:
                    hypotheses.extend([*prefix, v] for v in others)
        return hypotheses

    def best(self, sentence: int, alpha: float) -> tuple[list[int], float]:
        """The exact argmax of log P(Y) / lp(Y) over all hypotheses, by enumeration; EOS stripped."""
        scored = [(self.log_prob(sentence, y) / length_penalty(len(y), alpha), y) for y in self.all_hypotheses()]
        score, y = max(scored)
        return (y[:-1] if y[-1] == EOS else y), score


def _beam(toy: ToyModel, sentences: list[int], beam_size: int, alpha: float):
    return beam_search(
        toy.step, toy.init_state(sentences), toy.reindex, len(sentences), beam_size, BOS, EOS, toy.max_len, alpha
    )


def _greedy(toy: ToyModel, sentences: list[int]):
    return greedy_decode(toy.step, toy.init_state(sentences), len(sentences), BOS, EOS, toy.max_len)


def test_length_penalty_is_gnmts():
    """lp(Y) = (5 + |Y|)^alpha / (5 + 1)^alpha (Wu et al. 2016, section 7)."""
    for length, alpha in [(1, 0.6), (4, 0.6), (9, 1.0), (3, 0.0)]:
        assert length_penalty(length, alpha) == pytest.approx((5 + length) ** alpha / 6**alpha, rel=1e-14)


def test_greedy_takes_the_argmax_until_eos():
    toy = ToyModel(num_sentences=8, vocab=4, max_len=6, seed=0)
    decoded = _greedy(toy, list(range(8)))
    ended_early = 0
    for sentence, (sequence, score) in enumerate(zip(decoded.sequences, decoded.scores.tolist(), strict=True)):
        tokens, code = [], BOS + 1
        while len(tokens) < toy.max_len:
            token = int(toy.table[sentence, code].argmax())
            tokens.append(token)
            if token == EOS:
                break
            code = code * toy.vocab + token + 1
        ended_early += tokens[-1] == EOS
        assert sequence == (tokens[:-1] if tokens[-1] == EOS else tokens)
        assert score == pytest.approx(toy.log_prob(sentence, tokens), abs=1e-12)
    assert 0 < ended_early < 8  # both ways of ending occur


@pytest.mark.parametrize("alpha", [0.0, 0.6, 2.0])
@pytest.mark.parametrize("beam_size", [108, 150])
def test_wide_beam_finds_the_exact_best_hypothesis(beam_size, alpha):
    """Vocabulary 4, max_len 4: 121 complete hypotheses, at most 4 * 3^3 = 108 extensions in a step, so a beam of 108
    sees them all and must return the enumerated best, score included."""
    toy = ToyModel(num_sentences=8, vocab=4, max_len=4, seed=1)
    decoded, narrow = _beam(toy, list(range(8)), beam_size, alpha), _beam(toy, list(range(8)), 2, alpha)
    narrow_misses, lengths = 0, set()
    for sentence in range(8):
        best, best_score = toy.best(sentence, alpha)
        assert decoded.sequences[sentence] == best
        assert float(decoded.scores[sentence]) == pytest.approx(best_score, abs=1e-12)
        narrow_misses += narrow.sequences[sentence] != best
        lengths.add(len(best))
    assert narrow_misses > 0  # a beam of 2 gets some wrong: the search is not trivial
    assert len(lengths) >= 3  # the best hypotheses are of several lengths


@pytest.mark.parametrize("beam_size", [1, 2, 3, 5])
def test_beam_scores_are_log_probs_over_the_length_penalty(beam_size):
    toy = ToyModel(num_sentences=6, vocab=5, max_len=5, seed=2)
    decoded = _beam(toy, list(range(6)), beam_size, alpha=0.6)
    for sentence, sequence in enumerate(decoded.sequences):
        # EOS is part of the hypothesis (and of its length) unless it was cut at max_len
        tokens = sequence if len(sequence) == toy.max_len else [*sequence, EOS]
        expected = toy.log_prob(sentence, tokens) / length_penalty(len(tokens), 0.6)
        assert float(decoded.scores[sentence]) == pytest.approx(expected, abs=1e-12)
        assert float(decoded.scores[sentence]) <= toy.best(sentence, 0.6)[1] + 1e-12


def test_beam_of_one_is_greedy():
    toy = ToyModel(num_sentences=16, vocab=5, max_len=6, seed=3)
    beam, greedy = _beam(toy, list(range(16)), beam_size=1, alpha=0.0), _greedy(toy, list(range(16)))
    assert beam.sequences == greedy.sequences
    assert torch.allclose(beam.scores, greedy.scores, atol=1e-12, rtol=0)


@pytest.mark.parametrize("beam_size, alpha", [(2, 0.6), (3, 0.0), (4, 1.0)])
def test_batched_beam_search_equals_one_sentence_at_a_time(beam_size, alpha):
    toy = ToyModel(num_sentences=5, vocab=4, max_len=6, seed=4)
    batched = _beam(toy, list(range(5)), beam_size, alpha)
    for sentence in range(5):
        alone = _beam(toy, [sentence], beam_size, alpha)
        assert batched.sequences[sentence] == alone.sequences[0]
        assert float(batched.scores[sentence]) == float(alone.scores[0])


def test_beam_search_rejects_bad_arguments():
    toy = ToyModel(num_sentences=1, vocab=3, max_len=2, seed=0)
    with pytest.raises(ValueError, match="alpha"):
        _beam(toy, [0], beam_size=2, alpha=-0.5)
    with pytest.raises(ValueError, match="beam_size"):
        _beam(toy, [0], beam_size=0, alpha=0.6)


# --- the adapters -----------------------------------------------------------------------------------------------------

PAD, V_SRC, V_TGT = 3, 11, 9
LENGTHS = [6, 3, 4]


def _source(g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    src = torch.randint(4, V_SRC, (len(LENGTHS), max(LENGTHS)), generator=g)
    lengths = torch.tensor(LENGTHS)
    src[torch.arange(src.size(1))[None, :] >= lengths[:, None]] = PAD
    return src, lengths


class PrefixReference:
    """A stateless step function for checking an adapter: the state is each row's sentence and token prefix, and every
    step runs ``next_log_probs(sentence, prefix)``, the model's plain forward on that sentence alone, unpadded. Nothing
    is carried between steps, so there is nothing to re-index wrongly."""

    def __init__(self, next_log_probs) -> None:
        self.next_log_probs = next_log_probs

    @staticmethod
    def init_state(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.arange(batch), torch.empty(batch, 0, dtype=torch.long)

    def step(self, prev, state):
        sentences, prefix = state
        prefix = torch.cat([prefix, prev[:, None]], dim=1)  # (N, t + 1)
        with torch.no_grad():
            log_probs = torch.stack([self.next_log_probs(int(s), p) for s, p in zip(sentences, prefix, strict=True)])
        return log_probs, (sentences, prefix)

    @staticmethod
    def reindex(state, indices):
        return state[0].index_select(0, indices), state[1].index_select(0, indices)

    def decode(self, beam_size: int | None, max_len: int):
        init = self.init_state(len(LENGTHS))
        if beam_size is None:
            return greedy_decode(self.step, init, len(LENGTHS), BOS, EOS, max_len)
        return beam_search(self.step, init, self.reindex, len(LENGTHS), beam_size, BOS, EOS, max_len)


def _assert_same(decoded, expected) -> None:
    assert decoded.sequences == expected.sequences
    assert torch.allclose(decoded.scores, expected.scores, atol=1e-10, rtol=0)


@pytest.mark.parametrize(
    "config",
    [
        dict(attention="bahdanau", cell="gru", bidirectional=True, num_layers=1),
        dict(attention="luong-general", cell="lstm", bidirectional=False, num_layers=2),
        dict(attention="luong-dot", cell="gru", bidirectional=True, num_layers=1),
        dict(attention="none", cell="lstm", bidirectional=True, num_layers=2),
    ],
    ids=lambda c: c["attention"],
)
def test_seq2seq_adapter_decodes_a_padded_batch_as_the_model_does_each_sentence(config):
    """Greedy and beam search through seq2seq_step_fn (state carried, re-indexed along the beams, padded batch) give
    the sequences and scores of the same searches over the model's forward on each sentence alone."""
    torch.manual_seed(0)
    config = Seq2SeqConfig(
        V_SRC, V_TGT, embed_dim=8, hidden_size=12, init_range=1.0, pad_id=PAD, bos_id=BOS, eos_id=EOS, **config
    )
    model = Seq2Seq(config).double().eval()
    with torch.no_grad():
        model.output_proj.bias[EOS] -= 5.0  # the random model would end most hypotheses at once
    src, lengths = _source(torch.Generator().manual_seed(0))

    def next_log_probs(sentence: int, prefix: torch.Tensor) -> torch.Tensor:
        length = LENGTHS[sentence]
        logits, _ = model(src[sentence : sentence + 1, :length], [length], prefix[None])
        return logits[0, -1].log_softmax(-1)

    reference = PrefixReference(next_log_probs)
    step, state, reindex = seq2seq_step_fn(model, src, lengths)
    _assert_same(greedy_decode(step, state, 3, BOS, EOS, max_len=8), reference.decode(None, max_len=8))
    _assert_same(beam_search(step, state, reindex, 3, 4, BOS, EOS, max_len=8), reference.decode(4, max_len=8))


def _transformer_argmax_loop(model, src, src_padding_mask, max_len: int) -> list[list[int]]:
    """Greedy decoding the plain way: the full forward on the growing prefix, one sentence at a time."""
    sequences = []
    for b in range(src.size(0)):
        prefix = torch.tensor([[BOS]])
        for _ in range(max_len):
            logits = model(src[b : b + 1], prefix, src_padding_mask[b : b + 1], torch.zeros_like(prefix, dtype=bool))
            token = int(logits[0, -1].argmax())
            if token == EOS:
                break
            prefix = torch.cat([prefix, torch.tensor([[token]])], dim=1)
        sequences.append(prefix[0, 1:].tolist())
    return sequences


def test_transformer_adapter_decodes_as_the_argmax_loop_and_as_each_sentence_alone():
    """Beam 1 and greedy through transformer_step_fn are the argmax loop over the model's forward; beam 3 over the
    padded batch equals beam 3 over each sentence's forward alone. The output projection is untied and widened so that
    the random model's predictions depend on the source and prefix instead of echoing the last input token."""
    torch.manual_seed(1)
    model = create_model(
        "transformer_tiny", src_vocab_size=V_SRC, tgt_vocab_size=V_TGT, pad_id=PAD, tie_output_projection=False
    )
    model = model.double().eval()
    with torch.no_grad():
        torch.nn.init.normal_(model.output_proj.weight, std=0.5)
    src, _ = _source(torch.Generator().manual_seed(1))
    mask = src == PAD
    with torch.no_grad():
        expected = _transformer_argmax_loop(model, src, mask, max_len=7)
    step, state, reindex = transformer_step_fn(model, src)
    greedy = greedy_decode(step, state, 3, BOS, EOS, max_len=7)
    beam = beam_search(step, state, reindex, 3, 1, BOS, EOS, max_len=7, alpha=0.0)
    assert greedy.sequences == expected
    _assert_same(beam, greedy)

    def next_log_probs(sentence: int, prefix: torch.Tensor) -> torch.Tensor:
        source = src[sentence : sentence + 1, : LENGTHS[sentence]]
        no_padding = torch.zeros(1, prefix.numel(), dtype=torch.bool)
        return model(source, prefix[None], None, no_padding)[0, -1].log_softmax(-1)

    reference = PrefixReference(next_log_probs)
    _assert_same(beam_search(step, state, reindex, 3, 3, BOS, EOS, max_len=7), reference.decode(3, max_len=7))
