r"""Recurrent networks from scratch: the Elman RNN, the LSTM and the GRU, as cells and as multi-layer stacks.

- Elman 1990, "Finding Structure in Time": the simple recurrent network, :math:`h_t = \tanh(W x_t + U h_{t-1} + b)`.
- Hochreiter & Schmidhuber 1997, "Long Short-Term Memory", with the forget gate of Gers, Schmidhuber & Cummins 2000,
  "Learning to Forget: Continual Prediction with LSTM".
- Cho et al. 2014, "Learning Phrase Representations using RNN Encoder-Decoder for Statistical Machine Translation":
  the gated recurrent unit.

Parameter names, shapes, gate order and initialisation are torch's, so a state dict of ``torch.nn.LSTM`` (or of
``RNN``, ``GRU`` and the three cells) loads with a plain ``load_state_dict``; ``tests/sequence/test_recurrent.py``
proves outputs and gradients equal. The stacks compute the input projection :math:`x_t W_{ih}^\top + b_{ih}` for all
time steps in one matmul per layer and direction and loop over time only for the recurrent part. Padded batches of
different lengths run with ``lengths``: a state stops changing after its sequence's last real step (so the backward
direction starts at that step, not at the padding) and the outputs at padded steps are zero, as
``pad_packed_sequence`` gives them. The gate non-linearities are torch's fused ``sigmoid``/``tanh`` kernels rather
than ``paperzoo.core.nn``'s, which take several kernels each and would run once per gate per time step.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from paperzoo.core.nn import dropout as dropout_fn

# A recurrent state: (h,) for the Elman RNN and the GRU, (h, c) for the LSTM.
State = tuple[Tensor, ...]
# One time step given the input projection x_t W_ih^T + b_ih, the previous state and the recurrent weights.
Step = Callable[[Tensor, State, Tensor, Tensor | None], State]


def _hidden_projection(h: Tensor, weight_hh: Tensor, bias_hh: Tensor | None) -> Tensor:
    """:math:`h W_{hh}^\\top + b_{hh}`, in one kernel when there is a bias."""
    if bias_hh is None:
        return h @ weight_hh.t()  # (B, H) @ (H, G) -> (B, G)
    return torch.addmm(bias_hh, h, weight_hh.t())  # (B, G)


def _tanh_step(gi: Tensor, state: State, weight_hh: Tensor, bias_hh: Tensor | None) -> State:
    r"""Elman step :math:`h' = \tanh(x W_{ih}^\top + b_{ih} + h W_{hh}^\top + b_{hh})`."""
    return (torch.tanh(gi + _hidden_projection(state[0], weight_hh, bias_hh)),)


def _relu_step(gi: Tensor, state: State, weight_hh: Tensor, bias_hh: Tensor | None) -> State:
    r"""Elman step with a rectifier, :math:`h' = \max(0, x W_{ih}^\top + b_{ih} + h W_{hh}^\top + b_{hh})`."""
    return (torch.relu(gi + _hidden_projection(state[0], weight_hh, bias_hh)),)


def _lstm_step(gi: Tensor, state: State, weight_hh: Tensor, bias_hh: Tensor | None) -> State:
    """LSTM step; the four gates are stacked input, forget, cell candidate, output (torch's and cuDNN's order)."""
    h, c = state
    gates = gi + _hidden_projection(h, weight_hh, bias_hh)  # (B, 4H)
    i, f, g, o = gates.chunk(4, dim=-1)  # 4 x (B, H)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    return h, c


def _gru_step(gi: Tensor, state: State, weight_hh: Tensor, bias_hh: Tensor | None) -> State:
    """GRU step; gates stacked reset, update, new. The reset gate scales :math:`h W_{hn}^\\top + b_{hn}` (cuDNN's
    form), so the recurrent projection of all three gates is one matmul."""
    h = state[0]
    gh = _hidden_projection(h, weight_hh, bias_hh)  # (B, 3H)
    i_r, i_z, i_n = gi.chunk(3, dim=-1)  # 3 x (B, H)
    h_r, h_z, h_n = gh.chunk(3, dim=-1)  # 3 x (B, H)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return ((1 - z) * n + z * h,)


_RNN_STEPS: dict[str, Step] = {"tanh": _tanh_step, "relu": _relu_step}


def _uniform_reset(module: nn.Module, hidden_size: int) -> None:
    r"""torch's recurrent default: every parameter :math:`U(\pm 1/\sqrt{H})`, drawn in registration order, which is
    torch's order too, so a module built under the same seed as its torch counterpart gets the same numbers."""
    bound = 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0.0
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(-bound, bound)


class _CellBase(nn.Module):
    """Parameters, initialisation and input checks shared by the three cells; ``num_gates`` blocks of ``H`` rows."""

    num_gates: int

    def __init__(self, input_size: int, hidden_size: int, bias: bool) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        gate_size = self.num_gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(gate_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(gate_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(gate_size)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(gate_size)) if bias else None

    def reset_parameters(self) -> None:
        _uniform_reset(self, self.hidden_size)

    def _apply_step(self, input: Tensor, state: State, step: Step) -> State:
        """Check shapes, add a batch dimension to unbatched input, take one step and remove it again."""
        if input.dim() not in (1, 2):
            raise ValueError(
                f"{type(self).__name__} expects input of shape (B, {self.input_size}) or "
                f"({self.input_size},), got {tuple(input.shape)}"
            )
        if input.size(-1) != self.input_size:
            raise ValueError(f"{type(self).__name__} expects {self.input_size} input features, got {input.size(-1)}")
        batched = input.dim() == 2
        expected = (input.size(0), self.hidden_size) if batched else (self.hidden_size,)
        for s in state:
            if tuple(s.shape) != expected:
                raise ValueError(
                    f"{type(self).__name__} expects a hidden state of shape {expected}, got {tuple(s.shape)}"
                )
        if not batched:
            input, state = input.unsqueeze(0), tuple(s.unsqueeze(0) for s in state)  # (1, I), (1, H)
        gi = input @ self.weight_ih.t()  # (B, I) @ (I, G) -> (B, G)
        if self.bias_ih is not None:
            gi = gi + self.bias_ih
        state = step(gi, state, self.weight_hh, self.bias_hh)
        return state if batched else tuple(s.squeeze(0) for s in state)

    def _zeros(self, input: Tensor) -> Tensor:
        shape = (*input.shape[:-1], self.hidden_size)
        return torch.zeros(shape, dtype=input.dtype, device=input.device)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += f", bias={self.bias}"
        return s


class RNNCell(_CellBase):
    r"""One step of the simple recurrent network of Elman 1990 ("Finding Structure in Time").

    .. math::
        h' = \phi(x W_{ih}^\top + b_{ih} + h W_{hh}^\top + b_{hh}), \qquad \phi \in \{\tanh, \mathrm{ReLU}\}

    Parameters are named and shaped as in ``torch.nn.RNNCell``: ``weight_ih`` :math:`(H, I)`, ``weight_hh``
    :math:`(H, H)`, ``bias_ih`` and ``bias_hh`` :math:`(H)`, all initialised :math:`U(\pm 1/\sqrt{H})`.

    Args:
        input_size: features of the input :math:`I`.
        hidden_size: features of the hidden state :math:`H`.
        bias: learn the biases :math:`b_{ih}` and :math:`b_{hh}`.
        nonlinearity: :math:`\phi`, ``"tanh"`` (Elman's squashing function) or ``"relu"``.

    Shapes:
        - **input:** :math:`(B, I)` or :math:`(I)`.
        - **hx:** :math:`(B, H)` or :math:`(H)`; zeros if ``None``.
        - **output:** :math:`h'`, the shape of ``hx``.
    """

    num_gates = 1

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: Literal["tanh", "relu"] = "tanh"
    ) -> None:
        if nonlinearity not in _RNN_STEPS:
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, bias)
        self.nonlinearity = nonlinearity
        self.reset_parameters()

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        h = self._zeros(input) if hx is None else hx
        return self._apply_step(input, (h,), _RNN_STEPS[self.nonlinearity])[0]

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s if self.nonlinearity == "tanh" else f"{s}, nonlinearity={self.nonlinearity}"


class LSTMCell(_CellBase):
    r"""One step of the long short-term memory of Hochreiter & Schmidhuber 1997 ("Long Short-Term Memory"), with
    the forget gate of Gers, Schmidhuber & Cummins 2000 ("Learning to Forget: Continual Prediction with LSTM").

    .. math::
        \begin{aligned}
        i &= \sigma(x W_{ii}^\top + b_{ii} + h W_{hi}^\top + b_{hi}) \\
        f &= \sigma(x W_{if}^\top + b_{if} + h W_{hf}^\top + b_{hf}) \\
        g &= \tanh(x W_{ig}^\top + b_{ig} + h W_{hg}^\top + b_{hg}) \\
        o &= \sigma(x W_{io}^\top + b_{io} + h W_{ho}^\top + b_{ho}) \\
        c' &= f \odot c + i \odot g \\
        h' &= o \odot \tanh(c')
        \end{aligned}

    There are no peephole connections (Gers & Schmidhuber 2000), as in torch and cuDNN. Parameters are named and
    shaped as in ``torch.nn.LSTMCell``, the gates stacked in the order :math:`i, f, g, o`: ``weight_ih``
    :math:`(4H, I)`, ``weight_hh`` :math:`(4H, H)`, ``bias_ih`` and ``bias_hh`` :math:`(4H)`, all initialised
    :math:`U(\pm 1/\sqrt{H})`.

    Args:
        input_size: features of the input :math:`I`.
        hidden_size: features of the hidden and cell states :math:`H`.
        bias: learn the biases :math:`b_{ih}` and :math:`b_{hh}`.

    Shapes:
        - **input:** :math:`(B, I)` or :math:`(I)`.
        - **hx:** a pair :math:`(h, c)`, each :math:`(B, H)` or :math:`(H)`; zeros if ``None``.
        - **output:** the pair :math:`(h', c')`, shaped as ``hx``.
    """

    num_gates = 4

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__(input_size, hidden_size, bias)
        self.reset_parameters()

    def forward(self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        if hx is None:
            hx = (self._zeros(input), self._zeros(input))
        elif len(hx) != 2:
            raise ValueError(f"LSTMCell expects hx as a pair (h, c), got {len(hx)} tensors")
        h, c = self._apply_step(input, tuple(hx), _lstm_step)
        return h, c


class GRUCell(_CellBase):
    r"""One step of the gated recurrent unit of Cho et al. 2014 ("Learning Phrase Representations using RNN
    Encoder-Decoder for Statistical Machine Translation").

    .. math::
        \begin{aligned}
        r &= \sigma(x W_{ir}^\top + b_{ir} + h W_{hr}^\top + b_{hr}) \\
        z &= \sigma(x W_{iz}^\top + b_{iz} + h W_{hz}^\top + b_{hz}) \\
        n &= \tanh(x W_{in}^\top + b_{in} + r \odot (h W_{hn}^\top + b_{hn})) \\
        h' &= (1 - z) \odot n + z \odot h
        \end{aligned}

    The paper resets the state before the recurrent product, :math:`n = \tanh(W x + U (r \odot h))`; here, as in
    torch and cuDNN, the reset gate scales the product instead, :math:`r \odot (h W_{hn}^\top + b_{hn})`, which lets
    one matmul serve all three gates. The two are different functions of the same parameters. The update gate
    :math:`z` keeps the old state, :math:`h' = (1 - z) n + z h`, as in the paper. Parameters are named and shaped as
    in ``torch.nn.GRUCell``, the gates stacked in the order :math:`r, z, n`: ``weight_ih`` :math:`(3H, I)`,
    ``weight_hh`` :math:`(3H, H)`, ``bias_ih`` and ``bias_hh`` :math:`(3H)`, all initialised
    :math:`U(\pm 1/\sqrt{H})`.

    Args:
        input_size: features of the input :math:`I`.
        hidden_size: features of the hidden state :math:`H`.
        bias: learn the biases :math:`b_{ih}` and :math:`b_{hh}`.

    Shapes:
        - **input:** :math:`(B, I)` or :math:`(I)`.
        - **hx:** :math:`(B, H)` or :math:`(H)`; zeros if ``None``.
        - **output:** :math:`h'`, the shape of ``hx``.
    """

    num_gates = 3

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__(input_size, hidden_size, bias)
        self.reset_parameters()

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        h = self._zeros(input) if hx is None else hx
        return self._apply_step(input, (h,), _gru_step)[0]


class _RecurrentStack(nn.Module):
    """Layers x directions of one step function over a whole sequence; the shared machinery of RNN, LSTM and GRU.

    Parameters are registered in torch's order (per layer, per direction: ``weight_ih``, ``weight_hh``, ``bias_ih``,
    ``bias_hh``, with the suffix ``_l{layer}`` and ``_reverse`` for the backward direction), so ``parameters()``
    lines up with torch's module and the default initialisation draws the same numbers under the same seed.
    """

    num_gates: int
    num_states: int

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        bias: bool,
        batch_first: bool,
        dropout: float,
        bidirectional: bool,
    ) -> None:
        super().__init__()
        if hidden_size <= 0 or num_layers <= 0:
            raise ValueError(f"hidden_size and num_layers must be positive, got {hidden_size} and {num_layers}")
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Number) or not 0 <= dropout <= 1:
            raise ValueError(f"dropout must be a number in [0, 1], got {dropout!r}")
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                f"dropout acts between recurrent layers, so dropout={dropout} does nothing with num_layers=1",
                stacklevel=3,
            )
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.num_directions = 2 if bidirectional else 1
        gate_size = self.num_gates * hidden_size
        for layer in range(num_layers):
            layer_input_size = input_size if layer == 0 else hidden_size * self.num_directions
            for suffix in self._suffixes(layer):
                self.register_parameter(f"weight_ih{suffix}", nn.Parameter(torch.empty(gate_size, layer_input_size)))
                self.register_parameter(f"weight_hh{suffix}", nn.Parameter(torch.empty(gate_size, hidden_size)))
                if bias:
                    self.register_parameter(f"bias_ih{suffix}", nn.Parameter(torch.empty(gate_size)))
                    self.register_parameter(f"bias_hh{suffix}", nn.Parameter(torch.empty(gate_size)))

    def _suffixes(self, layer: int) -> list[str]:
        return [f"_l{layer}", f"_l{layer}_reverse"][: self.num_directions]

    def reset_parameters(self) -> None:
        _uniform_reset(self, self.hidden_size)

    def _step_function(self) -> Step:
        raise NotImplementedError

    def _forward(
        self, input: Tensor | PackedSequence, hx: State | None, lengths: Tensor | Sequence[int] | None
    ) -> tuple[Tensor | PackedSequence, State]:
        """The forward pass of all three stacks on a padded tensor or a PackedSequence, with the state as a tuple."""
        if not isinstance(input, PackedSequence):
            return self._run(input, hx, lengths, self.batch_first)
        if lengths is not None:
            raise ValueError("a PackedSequence carries its own lengths; pass lengths only with a padded tensor")
        # Unpack to a padded batch in the caller's order, so that hx and the final states are in that order as in
        # torch, then pack the output again under the input's own sorted_indices (ties in length could sort
        # differently if pack_padded_sequence chose the order afresh).
        padded, lengths = pad_packed_sequence(input)  # (T, B, I), (B,) on the CPU
        output, h_n = self._run(padded, hx, lengths, batch_first=False)  # (T, B, DH)
        if input.sorted_indices is not None:
            output = output.index_select(1, input.sorted_indices)  # into decreasing length
            lengths = lengths[input.sorted_indices.cpu()]
        data = pack_padded_sequence(output, lengths, enforce_sorted=True).data  # (sum of lengths, DH)
        return PackedSequence(data, input.batch_sizes, input.sorted_indices, input.unsorted_indices), h_n

    def _run(
        self, input: Tensor, hx: State | None, lengths: Tensor | Sequence[int] | None, batch_first: bool
    ) -> tuple[Tensor, State]:
        """Check the arguments, bring them to time-major batched form, run every layer and undo the reshaping.

        ``hx`` holds ``num_states`` tensors of shape :math:`(D L, B, H)`, or :math:`(D L, H)` when unbatched.
        """
        name = type(self).__name__
        if input.dim() not in (2, 3):
            raise ValueError(f"{name} expects a 3-D batched or 2-D unbatched input, got shape {tuple(input.shape)}")
        if input.size(-1) != self.input_size:
            raise ValueError(f"{name} expects {self.input_size} input features, got {input.size(-1)}")
        batched = input.dim() == 3
        if not batched:
            if lengths is not None:
                raise ValueError(f"{name}: lengths needs a batched input, got an unbatched one")
            x = input.unsqueeze(1)  # (T, I) -> (T, 1, I)
        else:
            x = input.transpose(0, 1) if batch_first else input  # (B, T, I) -> (T, B, I)
        seq_len, batch = x.shape[:2]
        num_stacked = self.num_layers * self.num_directions
        if hx is None:
            zeros = x.new_zeros(num_stacked, batch, self.hidden_size)
            hx = (zeros,) * self.num_states
        else:
            expected = (num_stacked, batch, self.hidden_size) if batched else (num_stacked, self.hidden_size)
            for h in hx:
                if tuple(h.shape) != expected:
                    raise ValueError(f"{name} expects hidden states of shape {expected}, got {tuple(h.shape)}")
            if not batched:
                hx = tuple(h.unsqueeze(1) for h in hx)  # (DL, H) -> (DL, 1, H)
        mask = None if lengths is None else self._length_mask(lengths, seq_len, batch, x.device)
        output, h_n = self._forward_layers(x, hx, mask)
        if not batched:
            return output.squeeze(1), tuple(h.squeeze(1) for h in h_n)  # (T, DH), (DL, H)
        return (output.transpose(0, 1) if batch_first else output), h_n  # (B, T, DH) or (T, B, DH)

    def _length_mask(self, lengths: Tensor | Sequence[int], seq_len: int, batch: int, device: torch.device) -> Tensor:
        """:math:`(T, B, 1)` boolean mask, true where step :math:`t` is a real step of sequence :math:`b`."""
        lengths = torch.as_tensor(lengths, device=device)
        if lengths.shape != (batch,) or lengths.is_floating_point() or lengths.is_complex():
            raise ValueError(
                f"lengths must be integers of shape ({batch},), got {lengths.dtype} {tuple(lengths.shape)}"
            )
        if batch > 0 and (lengths.min() < 1 or lengths.max() > seq_len):
            raise ValueError(f"lengths must lie in [1, {seq_len}] (the padded length), got {lengths.tolist()}")
        return (torch.arange(seq_len, device=device)[:, None] < lengths[None, :]).unsqueeze(-1)  # (T, B, 1)

    def _forward_layers(self, x: Tensor, hx: State, mask: Tensor | None) -> tuple[Tensor, State]:
        """Run the stack on time-major ``x`` :math:`(T, B, I)`; returns the last layer's output :math:`(T, B, DH)`
        and the final states, each :math:`(D L, B, H)`."""
        step = self._step_function()
        finals: list[State] = []
        layer_input = x
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout > 0:
                layer_input = dropout_fn(layer_input, self.dropout, self.training)
            outputs = []
            for direction, suffix in enumerate(self._suffixes(layer)):
                index = layer * self.num_directions + direction
                state = tuple(h[index] for h in hx)  # num_states x (B, H)
                output, state = self._scan(layer_input, state, suffix, step, mask, reverse=direction == 1)
                outputs.append(output)
                finals.append(state)
            layer_input = torch.cat(outputs, dim=-1) if self.bidirectional else outputs[0]  # (T, B, DH)
        h_n = tuple(torch.stack(states) for states in zip(*finals, strict=True))  # num_states x (DL, B, H)
        return layer_input, h_n

    def _scan(
        self, x: Tensor, state: State, suffix: str, step: Step, mask: Tensor | None, reverse: bool
    ) -> tuple[Tensor, State]:
        """One layer in one direction over :math:`(T, B, I)`; returns the outputs :math:`(T, B, H)` and final state.

        With a mask, a step past a sequence's end keeps the state it had, so the forward direction ends holding the
        last real step's state and the backward direction, walking from the padded end, still holds the initial
        state when it reaches the last real step.
        """
        weight_ih = getattr(self, f"weight_ih{suffix}")
        weight_hh = getattr(self, f"weight_hh{suffix}")
        bias_ih = getattr(self, f"bias_ih{suffix}") if self.bias else None
        bias_hh = getattr(self, f"bias_hh{suffix}") if self.bias else None
        gi = x @ weight_ih.t()  # (T, B, I) @ (I, G) -> (T, B, G), every time step in one matmul
        if bias_ih is not None:
            gi = gi + bias_ih
        # unbind, not gi[t]: the backward of T separate index ops would each zero-fill and add a (T, B, G) gradient,
        # O(T^2) work that cost more than the recurrent matmuls; unbind's backward stacks the T slices once
        inputs = gi.unbind(0)
        seq_len = x.size(0)
        outputs = []
        for t in range(seq_len - 1, -1, -1) if reverse else range(seq_len):
            new_state = step(inputs[t], state, weight_hh, bias_hh)
            if mask is not None:
                new_state = tuple(torch.where(mask[t], new, old) for new, old in zip(new_state, state, strict=True))
            state = new_state
            outputs.append(state[0])
        if reverse:
            outputs.reverse()
        output = torch.stack(outputs)  # T x (B, H) -> (T, B, H)
        if mask is not None:
            output = output.masked_fill(~mask, 0.0)
        return output, state

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += f", bias={self.bias}"
        if self.batch_first:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += f", bidirectional={self.bidirectional}"
        return s


class RNN(_RecurrentStack):
    r"""A multi-layer Elman network (Elman 1990, "Finding Structure in Time"), :class:`RNNCell` over a sequence.

    The constructor, the parameter names (``weight_ih_l0``, ``weight_hh_l0_reverse``, ...) and their shapes are
    ``torch.nn.RNN``'s, so a ``torch.nn.RNN`` state dict loads as it is.

    Args:
        input_size: features of the input :math:`I`.
        hidden_size: features of the hidden state :math:`H`.
        num_layers: recurrent layers :math:`L`; layer :math:`l > 0` reads the outputs of layer :math:`l - 1`.
        nonlinearity: ``"tanh"`` or ``"relu"``.
        bias: learn the biases :math:`b_{ih}` and :math:`b_{hh}`.
        batch_first: input and output are :math:`(B, T, \cdot)` instead of :math:`(T, B, \cdot)`; the states are
            :math:`(D L, B, H)` either way.
        dropout: dropout probability on the outputs of every layer but the last (Zaremba, Sutskever & Vinyals 2014,
            "Recurrent Neural Network Regularization"), in training mode only.
        bidirectional: add a backward direction to each layer (Schuster & Paliwal 1997, "Bidirectional Recurrent
            Neural Networks") and concatenate the two outputs, :math:`D = 2`.

    Shapes:
        - **input:** :math:`(T, B, I)`, :math:`(B, T, I)` with ``batch_first``, :math:`(T, I)` unbatched, or a
          ``PackedSequence``.
        - **hx:** :math:`(D L, B, H)`, or :math:`(D L, H)` unbatched; zeros if ``None``.
        - **lengths:** :math:`(B)`, the real length of each padded sequence, in :math:`[1, T]`.
        - **output:** :math:`(T, B, D H)` (:math:`(B, T, D H)` with ``batch_first``), the last layer's states,
          zero at padded steps; a ``PackedSequence`` for a packed input.
        - **h_n:** :math:`(D L, B, H)`, each layer and direction's state after its sequence's last real step.
    """

    num_gates = 1
    num_states = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: Literal["tanh", "relu"] = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
    ) -> None:
        if nonlinearity not in _RNN_STEPS:
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional)
        self.nonlinearity = nonlinearity
        self.reset_parameters()

    def _step_function(self) -> Step:
        return _RNN_STEPS[self.nonlinearity]

    def forward(
        self, input: Tensor | PackedSequence, hx: Tensor | None = None, lengths: Tensor | Sequence[int] | None = None
    ) -> tuple[Tensor | PackedSequence, Tensor]:
        output, (h_n,) = self._forward(input, None if hx is None else (hx,), lengths)
        return output, h_n


class LSTM(_RecurrentStack):
    r"""A multi-layer LSTM (Hochreiter & Schmidhuber 1997, "Long Short-Term Memory", with the forget gate of Gers,
    Schmidhuber & Cummins 2000), :class:`LSTMCell` over a sequence.

    The constructor (without ``proj_size``), the parameter names (``weight_ih_l0``, ``weight_hh_l0_reverse``, ...),
    their shapes and the gate order :math:`i, f, g, o` are ``torch.nn.LSTM``'s, so a ``torch.nn.LSTM`` state dict
    loads as it is.

    Args:
        input_size: features of the input :math:`I`.
        hidden_size: features of the hidden state :math:`H`.
        num_layers: recurrent layers :math:`L`; layer :math:`l > 0` reads the outputs of layer :math:`l - 1`.
        bias: learn the biases :math:`b_{ih}` and :math:`b_{hh}`.
        batch_first: input and output are :math:`(B, T, \cdot)` instead of :math:`(T, B, \cdot)`; the states are
            :math:`(D L, B, H)` either way.
        dropout: dropout probability on the outputs of every layer but the last (Zaremba, Sutskever & Vinyals 2014,
            "Recurrent Neural Network Regularization"), in training mode only.
        bidirectional: add a backward direction to each layer (Schuster & Paliwal 1997, "Bidirectional Recurrent
            Neural Networks") and concatenate the two outputs, :math:`D = 2`.

    Shapes:
        - **input:** :math:`(T, B, I)`, :math:`(B, T, I)` with ``batch_first``, :math:`(T, I)` unbatched, or a
          ``PackedSequence``.
        - **hx:** a pair :math:`(h_0, c_0)`, each :math:`(D L, B, H)`, or :math:`(D L, H)` unbatched; zeros if
          ``None``.
        - **lengths:** :math:`(B)`, the real length of each padded sequence, in :math:`[1, T]`.
        - **output:** :math:`(T, B, D H)` (:math:`(B, T, D H)` with ``batch_first``), the last layer's hidden
          states, zero at padded steps; a ``PackedSequence`` for a packed input.
        - **(h_n, c_n):** each :math:`(D L, B, H)`, the states after each sequence's last real step.
    """

    num_gates = 4
    num_states = 2

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
    ) -> None:
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional)
        self.reset_parameters()

    def _step_function(self) -> Step:
        return _lstm_step

    def forward(
        self,
        input: Tensor | PackedSequence,
        hx: tuple[Tensor, Tensor] | None = None,
        lengths: Tensor | Sequence[int] | None = None,
    ) -> tuple[Tensor | PackedSequence, tuple[Tensor, Tensor]]:
        if hx is not None and len(hx) != 2:
            raise ValueError(f"LSTM expects hx as a pair (h_0, c_0), got {len(hx)} tensors")
        output, (h_n, c_n) = self._forward(input, None if hx is None else tuple(hx), lengths)
        return output, (h_n, c_n)


class GRU(_RecurrentStack):
    r"""A multi-layer gated recurrent unit network (Cho et al. 2014, "Learning Phrase Representations using RNN
    Encoder-Decoder for Statistical Machine Translation"), :class:`GRUCell` over a sequence.

    The reset gate scales :math:`h W_{hn}^\top + b_{hn}`, as in torch and cuDNN, rather than :math:`h` before the
    product as in the paper (see :class:`GRUCell`). The constructor, the parameter names (``weight_ih_l0``,
    ``weight_hh_l0_reverse``, ...), their shapes and the gate order :math:`r, z, n` are ``torch.nn.GRU``'s, so a
    ``torch.nn.GRU`` state dict loads as it is.

    Args:
        input_size: features of the input :math:`I`.
        hidden_size: features of the hidden state :math:`H`.
        num_layers: recurrent layers :math:`L`; layer :math:`l > 0` reads the outputs of layer :math:`l - 1`.
        bias: learn the biases :math:`b_{ih}` and :math:`b_{hh}`.
        batch_first: input and output are :math:`(B, T, \cdot)` instead of :math:`(T, B, \cdot)`; the states are
            :math:`(D L, B, H)` either way.
        dropout: dropout probability on the outputs of every layer but the last (Zaremba, Sutskever & Vinyals 2014,
            "Recurrent Neural Network Regularization"), in training mode only.
        bidirectional: add a backward direction to each layer (Schuster & Paliwal 1997, "Bidirectional Recurrent
            Neural Networks") and concatenate the two outputs, :math:`D = 2`.

    Shapes:
        - **input:** :math:`(T, B, I)`, :math:`(B, T, I)` with ``batch_first``, :math:`(T, I)` unbatched, or a
          ``PackedSequence``.
        - **hx:** :math:`(D L, B, H)`, or :math:`(D L, H)` unbatched; zeros if ``None``.
        - **lengths:** :math:`(B)`, the real length of each padded sequence, in :math:`[1, T]`.
        - **output:** :math:`(T, B, D H)` (:math:`(B, T, D H)` with ``batch_first``), the last layer's states,
          zero at padded steps; a ``PackedSequence`` for a packed input.
        - **h_n:** :math:`(D L, B, H)`, each layer and direction's state after its sequence's last real step.
    """

    num_gates = 3
    num_states = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
    ) -> None:
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional)
        self.reset_parameters()

    def _step_function(self) -> Step:
        return _gru_step

    def forward(
        self, input: Tensor | PackedSequence, hx: Tensor | None = None, lengths: Tensor | Sequence[int] | None = None
    ) -> tuple[Tensor | PackedSequence, Tensor]:
        output, (h_n,) = self._forward(input, None if hx is None else (hx,), lengths)
        return output, h_n
