"""paperzoo.sequence.layers.recurrent against torch's RNN, LSTM and GRU, in float64.

Parity: each of our modules loads the torch module's state dict as it is (the parameter names are torch's) and gives
the same outputs, final states and gradients (of the input, the initial state and every parameter, for a random
cotangent on every output) within ``TOL``. Padded batches with ``lengths`` are compared with torch on the packed
batch, and checked against the invariant that padding does not change a sequence's real steps.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor
from torch import nn as tnn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pack_sequence, pad_packed_sequence

from paperzoo.sequence import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell

# Float64; the sums run in a different order from torch's kernels (one matmul for all time steps, addmm for the
# recurrence), so allow a few ulps more than equality.
TOL = {"rtol": 1e-10, "atol": 1e-10}

INPUT, HIDDEN = 5, 4

CELLS = {
    "rnn_tanh": (RNNCell, tnn.RNNCell, {"nonlinearity": "tanh"}),
    "rnn_relu": (RNNCell, tnn.RNNCell, {"nonlinearity": "relu"}),
    "lstm": (LSTMCell, tnn.LSTMCell, {}),
    "gru": (GRUCell, tnn.GRUCell, {}),
}
STACKS = {
    "rnn_tanh": (RNN, tnn.RNN, {"nonlinearity": "tanh"}),
    "rnn_relu": (RNN, tnn.RNN, {"nonlinearity": "relu"}),
    "lstm": (LSTM, tnn.LSTM, {}),
    "gru": (GRU, tnn.GRU, {}),
}


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _flatten(out: Tensor | PackedSequence | tuple) -> list[Tensor]:
    """The tensors of a nested (output, state) result; a PackedSequence contributes its data."""
    if isinstance(out, PackedSequence):
        return [out.data]
    if isinstance(out, Tensor):
        return [out]
    return [t for item in out for t in _flatten(item)]


def _pair(ours: tnn.Module, ref_cls: type[tnn.Module], *args, **kwargs) -> tnn.Module:
    """A float64 torch module whose weights ``ours``, also made float64, loads by a plain, strict load_state_dict."""
    ref = ref_cls(*args, **kwargs).double()
    ours.double().load_state_dict(ref.state_dict())
    return ref


def _random_state(mode: str, *shape: int) -> Tensor | tuple[Tensor, Tensor]:
    if mode == "lstm":
        return torch.randn(*shape, dtype=torch.float64), torch.randn(*shape, dtype=torch.float64)
    return torch.randn(*shape, dtype=torch.float64)


def _hx(mode: str, states: list[Tensor]) -> Tensor | tuple[Tensor, ...]:
    """The initial state argument from its tensors: a pair for the LSTM, one tensor otherwise."""
    return tuple(states) if mode == "lstm" else states[0]


def _leaves(*tensors: Tensor | tuple | None) -> list[Tensor]:
    """Fresh leaf copies that require grad, in the nesting of the arguments."""
    return [t.detach().clone().requires_grad_(True) for t in _flatten(tuple(x for x in tensors if x is not None))]


def assert_agree(
    out_ours, out_ref, inputs_ours: list[Tensor], inputs_ref: list[Tensor], ours: tnn.Module, ref: tnn.Module
) -> None:
    """Same outputs, and the same gradients of the inputs and of every parameter (matched by name)."""
    flat_ours, flat_ref = _flatten(out_ours), _flatten(out_ref)
    assert len(flat_ours) == len(flat_ref)
    for i, (a, b) in enumerate(zip(flat_ours, flat_ref, strict=True)):
        torch.testing.assert_close(a, b, **TOL, msg=lambda m, i=i: f"output {i}: {m}")
    cotangents = [torch.randn_like(b) for b in flat_ref]
    names = [name for name, _ in ours.named_parameters()]
    ref_params = dict(ref.named_parameters())
    assert sorted(names) == sorted(ref_params)
    grads_ours = torch.autograd.grad(flat_ours, [*inputs_ours, *ours.parameters()], cotangents)
    grads_ref = torch.autograd.grad(flat_ref, [*inputs_ref, *(ref_params[n] for n in names)], cotangents)
    labels = [f"input {i}" for i in range(len(inputs_ours))] + names
    for label, a, b in zip(labels, grads_ours, grads_ref, strict=True):
        torch.testing.assert_close(a, b, **TOL, msg=lambda m, label=label: f"gradient of {label}: {m}")


# ----------------------------------------------------------------------------------------------------------- cells


@pytest.mark.parametrize("mode", CELLS)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batched", [True, False])
def test_cell_matches_torch(mode, bias, batched) -> None:
    ours_cls, ref_cls, kwargs = CELLS[mode]
    ours = ours_cls(INPUT, HIDDEN, bias=bias, **kwargs)
    ref = _pair(ours, ref_cls, INPUT, HIDDEN, bias=bias, **kwargs)
    batch = (3,) if batched else ()
    x = torch.randn(*batch, INPUT, dtype=torch.float64)
    hx = _random_state(mode, *batch, HIDDEN)
    (x_ours, *h_ours), (x_ref, *h_ref) = _leaves(x, hx), _leaves(x, hx)
    hx_ours = _hx(mode, h_ours)
    hx_ref = _hx(mode, h_ref)
    assert_agree(ours(x_ours, hx_ours), ref(x_ref, hx_ref), [x_ours, *h_ours], [x_ref, *h_ref], ours, ref)


@pytest.mark.parametrize("mode", CELLS)
def test_cell_starts_from_zeros(mode) -> None:
    ours_cls, ref_cls, kwargs = CELLS[mode]
    ours = ours_cls(INPUT, HIDDEN, **kwargs)
    ref = _pair(ours, ref_cls, INPUT, HIDDEN, **kwargs)
    x = torch.randn(3, INPUT, dtype=torch.float64)
    for a, b in zip(_flatten(ours(x)), _flatten(ref(x)), strict=True):
        torch.testing.assert_close(a, b, **TOL)


@pytest.mark.parametrize("mode", CELLS)
def test_cell_init_and_repr_match_torch(mode) -> None:
    ours_cls, ref_cls, kwargs = CELLS[mode]
    for bias in (True, False):
        torch.manual_seed(1)
        ours = ours_cls(INPUT, HIDDEN, bias=bias, **kwargs)
        torch.manual_seed(1)
        ref = ref_cls(INPUT, HIDDEN, bias=bias, **kwargs)
        assert ours.state_dict().keys() == ref.state_dict().keys()
        for name, p in ref.state_dict().items():
            torch.testing.assert_close(ours.state_dict()[name], p, rtol=0, atol=0, msg=name)
        assert repr(ours) == repr(ref)


# ---------------------------------------------------------------------------------------------------------- stacks


@pytest.mark.parametrize("mode", STACKS)
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_stack_matches_torch(mode, num_layers, bidirectional, batch_first, bias) -> None:
    ours_cls, ref_cls, kwargs = STACKS[mode]
    config = dict(num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first, bias=bias, **kwargs)
    ours = ours_cls(INPUT, HIDDEN, **config)
    ref = _pair(ours, ref_cls, INPUT, HIDDEN, **config)
    steps, batch = 6, 3
    x = torch.randn(*((batch, steps) if batch_first else (steps, batch)), INPUT, dtype=torch.float64)
    hx = _random_state(mode, num_layers * (2 if bidirectional else 1), batch, HIDDEN)
    (x_ours, *h_ours), (x_ref, *h_ref) = _leaves(x, hx), _leaves(x, hx)
    hx_ours = _hx(mode, h_ours)
    hx_ref = _hx(mode, h_ref)
    assert_agree(ours(x_ours, hx_ours), ref(x_ref, hx_ref), [x_ours, *h_ours], [x_ref, *h_ref], ours, ref)


@pytest.mark.parametrize("mode", STACKS)
def test_stack_without_hx_and_unbatched_matches_torch(mode) -> None:
    ours_cls, ref_cls, kwargs = STACKS[mode]
    ours = ours_cls(INPUT, HIDDEN, num_layers=2, bidirectional=True, **kwargs)
    ref = _pair(ours, ref_cls, INPUT, HIDDEN, num_layers=2, bidirectional=True, **kwargs)
    for shape in [(6, 3, INPUT), (6, INPUT)]:
        x = torch.randn(*shape, dtype=torch.float64)
        [x_ours], [x_ref] = _leaves(x), _leaves(x)
        assert_agree(ours(x_ours), ref(x_ref), [x_ours], [x_ref], ours, ref)
    hx = _random_state(mode, 4, HIDDEN)
    x = torch.randn(6, INPUT, dtype=torch.float64)
    for a, b in zip(_flatten(ours(x, hx)), _flatten(ref(x, hx)), strict=True):
        torch.testing.assert_close(a, b, **TOL)


@pytest.mark.parametrize("mode", STACKS)
def test_dropout_between_layers(mode) -> None:
    """Eval mode ignores dropout; in training, p=1 zeroes every layer's input but the first's, deterministically, so
    even the training-mode placement of dropout can be compared with torch."""
    ours_cls, ref_cls, kwargs = STACKS[mode]
    x = torch.randn(6, 3, INPUT, dtype=torch.float64)
    for p, training in [(0.5, False), (1.0, True)]:
        ours = ours_cls(INPUT, HIDDEN, num_layers=3, dropout=p, bidirectional=True, **kwargs).train(training)
        ref = _pair(ours, ref_cls, INPUT, HIDDEN, num_layers=3, dropout=p, bidirectional=True, **kwargs).train(training)
        [x_ours], [x_ref] = _leaves(x), _leaves(x)
        assert_agree(ours(x_ours), ref(x_ref), [x_ours], [x_ref], ours, ref)
    assert not torch.allclose(_flatten(ours.eval()(x))[0], _flatten(ours.train()(x))[0])


@pytest.mark.parametrize("mode", STACKS)
def test_stack_init_and_repr_match_torch(mode) -> None:
    ours_cls, ref_cls, kwargs = STACKS[mode]
    config = dict(num_layers=2, bias=False, batch_first=True, dropout=0.25, bidirectional=True, **kwargs)
    torch.manual_seed(1)
    ours = ours_cls(INPUT, HIDDEN, **config)
    torch.manual_seed(1)
    ref = ref_cls(INPUT, HIDDEN, **config)
    assert list(ours.state_dict()) == list(ref.state_dict())
    for name, p in ref.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[name], p, rtol=0, atol=0, msg=name)
    assert repr(ours) == repr(ref)


# ----------------------------------------------------------------------------------------- variable-length batches

LENGTHS = [5, 2, 7, 1, 5]  # unsorted, with a tie, one sequence as long as the padded batch and one of a single step
STEPS = 7


def _padded_batch(batch_first: bool) -> Tensor:
    """A padded batch whose padding is large garbage, so that any leak of it into a real step shows."""
    x = torch.randn(STEPS, len(LENGTHS), INPUT, dtype=torch.float64)
    for b, length in enumerate(LENGTHS):
        x[length:, b] = 1e3 * torch.randn(STEPS - length, INPUT, dtype=torch.float64)
    return x.transpose(0, 1) if batch_first else x


@pytest.mark.parametrize("mode", STACKS)
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_lengths_match_torch_on_packed_batch(mode, bidirectional, batch_first) -> None:
    ours_cls, ref_cls, kwargs = STACKS[mode]
    config = dict(num_layers=2, bidirectional=bidirectional, batch_first=batch_first, **kwargs)
    ours = ours_cls(INPUT, HIDDEN, **config)
    ref = _pair(ours, ref_cls, INPUT, HIDDEN, **config)
    x = _padded_batch(batch_first)
    hx = _random_state(mode, 2 * (2 if bidirectional else 1), len(LENGTHS), HIDDEN)
    (x_ours, *h_ours), (x_ref, *h_ref) = _leaves(x, hx), _leaves(x, hx)
    hx_ours = _hx(mode, h_ours)
    hx_ref = _hx(mode, h_ref)

    out_ours = ours(x_ours, hx_ours, lengths=torch.tensor(LENGTHS))
    packed = pack_padded_sequence(x_ref, torch.tensor(LENGTHS), batch_first=batch_first, enforce_sorted=False)
    packed_out, state_ref = ref(packed, hx_ref)
    output_ref, _ = pad_packed_sequence(packed_out, batch_first=batch_first, total_length=STEPS)
    assert_agree(out_ours, (output_ref, state_ref), [x_ours, *h_ours], [x_ref, *h_ref], ours, ref)


@pytest.mark.parametrize("mode", STACKS)
def test_padding_does_not_change_real_steps(mode) -> None:
    """Each sequence of a padded batch gives what it gives alone, and more padding changes nothing but adds zeros."""
    ours_cls, _, kwargs = STACKS[mode]
    ours = ours_cls(INPUT, HIDDEN, num_layers=2, bidirectional=True, **kwargs).double()
    x = _padded_batch(batch_first=False)
    output, state = ours(x, lengths=LENGTHS)
    states = _flatten(state)
    for b, length in enumerate(LENGTHS):
        alone_output, alone_state = ours(x[:length, b : b + 1])
        torch.testing.assert_close(output[:length, b : b + 1], alone_output, **TOL)
        assert torch.all(output[length:, b] == 0)
        for s, alone in zip(states, _flatten(alone_state), strict=True):
            torch.testing.assert_close(s[:, b : b + 1], alone, **TOL)

    more_padding = torch.cat([x, 1e3 * torch.randn(3, *x.shape[1:], dtype=torch.float64)])
    longer_output, longer_state = ours(more_padding, lengths=LENGTHS)
    torch.testing.assert_close(longer_output[:STEPS], output, **TOL)
    assert torch.all(longer_output[STEPS:] == 0)
    for s, longer in zip(states, _flatten(longer_state), strict=True):
        torch.testing.assert_close(longer, s, **TOL)


@pytest.mark.parametrize("mode", STACKS)
@pytest.mark.parametrize("enforce_sorted", [False, True])
def test_packed_sequence_in_packed_sequence_out(mode, enforce_sorted) -> None:
    ours_cls, ref_cls, kwargs = STACKS[mode]
    # batch_first must not matter for a PackedSequence, as in torch.
    ours = ours_cls(INPUT, HIDDEN, num_layers=2, bidirectional=True, batch_first=True, **kwargs)
    ref = _pair(ours, ref_cls, INPUT, HIDDEN, num_layers=2, bidirectional=True, batch_first=True, **kwargs)
    lengths = sorted(LENGTHS, reverse=True) if enforce_sorted else LENGTHS
    sequences = [torch.randn(length, INPUT, dtype=torch.float64) for length in lengths]
    hx = _random_state(mode, 4, len(lengths), HIDDEN)
    leaves_ours, leaves_ref = _leaves(*sequences, hx), _leaves(*sequences, hx)
    x_ours, h_ours = leaves_ours[: len(lengths)], leaves_ours[len(lengths) :]
    x_ref, h_ref = leaves_ref[: len(lengths)], leaves_ref[len(lengths) :]
    hx_ours = _hx(mode, h_ours)
    hx_ref = _hx(mode, h_ref)

    out_ours, state_ours = ours(pack_sequence(x_ours, enforce_sorted=enforce_sorted), hx_ours)
    out_ref, state_ref = ref(pack_sequence(x_ref, enforce_sorted=enforce_sorted), hx_ref)
    assert isinstance(out_ours, PackedSequence)
    assert torch.equal(out_ours.batch_sizes, out_ref.batch_sizes)
    for ours_indices, ref_indices in [
        (out_ours.sorted_indices, out_ref.sorted_indices),
        (out_ours.unsorted_indices, out_ref.unsorted_indices),
    ]:
        assert (ours_indices is None) == enforce_sorted
        assert ours_indices is None or torch.equal(ours_indices, ref_indices)
    assert_agree((out_ours, state_ours), (out_ref, state_ref), leaves_ours, leaves_ref, ours, ref)


# ------------------------------------------------------------------------------------------------------ bad input


def test_bad_input_raises_value_error() -> None:
    lstm = LSTM(INPUT, HIDDEN, num_layers=2)
    gru_cell = GRUCell(INPUT, HIDDEN)
    x = torch.randn(6, 3, INPUT)
    with pytest.raises(ValueError, match="expects 5 input features, got 4"):
        lstm(torch.randn(6, 3, 4))
    with pytest.raises(ValueError, match="expects 5 input features, got 4"):
        gru_cell(torch.randn(3, 4))
    with pytest.raises(ValueError, match="3-D batched or 2-D unbatched"):
        lstm(torch.randn(2, 6, 3, INPUT))
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, 6\]"):
        lstm(x, lengths=[6, 7, 2])
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, 6\]"):
        lstm(x, lengths=torch.tensor([6, 0, 2]))
    with pytest.raises(ValueError, match=r"lengths must be integers of shape \(3,\)"):
        lstm(x, lengths=[6, 2])
    with pytest.raises(ValueError, match=r"lengths must be integers"):
        lstm(x, lengths=torch.tensor([6.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="lengths needs a batched input"):
        lstm(torch.randn(6, INPUT), lengths=[6])
    with pytest.raises(ValueError, match="carries its own lengths"):
        lstm(pack_sequence([torch.randn(3, INPUT)]), lengths=[3])
    with pytest.raises(ValueError, match=r"hidden states of shape \(2, 3, 4\), got \(1, 3, 4\)"):
        lstm(x, (torch.zeros(1, 3, HIDDEN), torch.zeros(2, 3, HIDDEN)))
    with pytest.raises(ValueError, match=r"hidden states of shape \(2, 3, 4\), got \(2, 3, 5\)"):
        lstm(x, (torch.zeros(2, 3, HIDDEN), torch.zeros(2, 3, 5)))
    with pytest.raises(ValueError, match=r"pair \(h_0, c_0\)"):
        lstm(x, (torch.zeros(2, 3, HIDDEN),))
    with pytest.raises(ValueError, match=r"hidden states of shape \(1, 3, 4\), got \(1, 2, 4\)"):
        GRU(INPUT, HIDDEN)(x, torch.zeros(1, 2, HIDDEN))
    with pytest.raises(ValueError, match=r"hidden state of shape \(3, 4\), got \(2, 4\)"):
        gru_cell(torch.randn(3, INPUT), torch.zeros(2, HIDDEN))
    with pytest.raises(ValueError, match="nonlinearity must be 'tanh' or 'relu'"):
        RNN(INPUT, HIDDEN, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="dropout must be a number in"):
        LSTM(INPUT, HIDDEN, num_layers=2, dropout=1.5)
    with pytest.warns(UserWarning, match="does nothing with num_layers=1"):
        LSTM(INPUT, HIDDEN, dropout=0.5)
