"""Memory-augmented networks for algorithmic tasks: the Neural Turing Machine, the Differentiable Neural Computer and
the LSTM they are measured against.

- Graves, Wayne & Danihelka 2014, "Neural Turing Machines" (arXiv 1410.5401).
- Graves et al. 2016, "Hybrid computing using a neural network with dynamic external memory" (Nature 538).
- The baseline is the LSTM of Hochreiter & Schmidhuber 1997 (with the forget gate of Gers et al. 2000), stacked as in
  the NTM paper's comparison (three layers of 256 units there).

All three map a sequence of input vectors to one vector of logits per step, :math:`(B, T, I) \\to (B, T, O)`; the
task decides which steps count (the output period of a copy, say). NTM and DNC share one loop: an LSTM controller
(:class:`~paperzoo.sequence.layers.LSTMCell`) reads the input and the previous step's read vectors, its output drives
the memory's heads, and a linear layer maps the controller output and the new read vectors to the step's logits.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from paperzoo.sequence.layers.memory import DNCMemory, NTMMemory
from paperzoo.sequence.layers.recurrent import LSTM, LSTMCell
from paperzoo.sequence.registry import register_model


class _MemoryNetwork(nn.Module):
    """An LSTM controller driving a memory (an :class:`NTMMemory` or a :class:`DNCMemory`), one step at a time.

    Step :math:`t`: :math:`h_t = \\mathrm{LSTM}([x_t; r_{t-1}], h_{t-1})`, the memory reads :math:`r_t` with the heads
    :math:`h_t` drives, and :math:`y_t = W_y [h_t; r_t] + b_y` (the DNC's :math:`v_t + W_r r_t`; the NTM paper feeds the
    reads to the controller only, but reading the memory in the step that outputs helps both on copies).
    """

    memory: NTMMemory | DNCMemory

    def __init__(self, input_size: int, output_size: int, controller_size: int, memory: NTMMemory | DNCMemory) -> None:
        super().__init__()
        if min(input_size, output_size, controller_size) < 1:
            raise ValueError(
                f"input_size, output_size and controller_size must be positive, got {input_size}, {output_size} and "
                f"{controller_size}"
            )
        self.input_size = input_size
        self.output_size = output_size
        self.controller_size = controller_size
        read_size = memory.read_heads * memory.memory_width
        self.controller = LSTMCell(input_size + read_size, controller_size)
        self.memory = memory
        self.output = nn.Linear(controller_size + read_size, output_size)

    def forward(self, x: Tensor, return_weightings: bool = False) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
        """The logits of every step; with ``return_weightings`` also ``{"read": (B, T, R, N), "write": (B, T, H_w,
        N)}``, the heads' weightings over the memory rows at every step (for plots)."""
        if x.dim() != 3 or x.size(-1) != self.input_size:
            raise ValueError(
                f"{type(self).__name__} expects input of shape (B, T, {self.input_size}), got {tuple(x.shape)}"
            )
        batch, steps = x.shape[:2]
        state = self.memory.initial_state(batch, x)
        hidden = (x.new_zeros(batch, self.controller_size), x.new_zeros(batch, self.controller_size))
        features, reads, writes = [], [], []
        for t in range(steps):
            hidden = self.controller(torch.cat([x[:, t], state.reads.flatten(1)], dim=-1), hidden)  # 2 x (B, C)
            read, state = self.memory(hidden[0], state)  # (B, R, W)
            features.append(torch.cat([hidden[0], read.flatten(1)], dim=-1))  # (B, C + R W)
            if return_weightings:
                reads.append(state.read_weights)
                writes.append(state.write_weights.view(batch, -1, self.memory.memory_slots))
        logits = self.output(torch.stack(features, dim=1))  # (B, T, C + R W) -> (B, T, O)
        if not return_weightings:
            return logits
        return logits, {"read": torch.stack(reads, dim=1), "write": torch.stack(writes, dim=1)}


class NTM(_MemoryNetwork):
    """The Neural Turing Machine of Graves, Wayne & Danihelka 2014 with an LSTM controller.

    An :class:`~paperzoo.sequence.layers.LSTMCell` controller drives the read and write heads of an
    :class:`~paperzoo.sequence.layers.memory.NTMMemory` (content and location addressing, erase and add). The
    defaults are the paper's copy-task NTM: 100 controller units, one read and one write head, a 128 x 20 memory and
    shifts of -1, 0 and +1.

    Args:
        input_size: features of each input vector.
        output_size: logits of each output vector.
        controller_size: units of the LSTM controller.
        memory_slots: memory rows :math:`N`.
        memory_width: memory row width :math:`W`.
        read_heads: read heads.
        write_heads: write heads.
        shift_range: the largest shift :math:`S` of the location addressing.

    Shapes:
        - **input:** :math:`(B, T, I)`.
        - **output:** :math:`(B, T, O)` logits; with ``return_weightings`` also the weightings, see ``forward``.
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        controller_size: int = 100,
        memory_slots: int = 128,
        memory_width: int = 20,
        read_heads: int = 1,
        write_heads: int = 1,
        shift_range: int = 1,
    ) -> None:
        memory = NTMMemory(controller_size, memory_slots, memory_width, read_heads, write_heads, shift_range)
        super().__init__(input_size, output_size, controller_size, memory)


class DNC(_MemoryNetwork):
    """The Differentiable Neural Computer of Graves et al. 2016 with an LSTM controller.

    An :class:`~paperzoo.sequence.layers.LSTMCell` controller drives a
    :class:`~paperzoo.sequence.layers.memory.DNCMemory`: one write head with content lookup and usage-based
    allocation, and ``read_heads`` read heads with content, forward and backward (temporal link) read modes. The
    paper's controllers are deeper (and its memories task-dependent); one layer of 100 units and a 128 x 20 memory
    match the NTM here, so the two memories are compared with the same controller.

    Args:
        input_size: features of each input vector.
        output_size: logits of each output vector.
        controller_size: units of the LSTM controller.
        memory_slots: memory rows :math:`N`.
        memory_width: memory row width :math:`W`.
        read_heads: read heads :math:`R`.

    Shapes:
        - **input:** :math:`(B, T, I)`.
        - **output:** :math:`(B, T, O)` logits; with ``return_weightings`` also the weightings, see ``forward``.
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        controller_size: int = 100,
        memory_slots: int = 128,
        memory_width: int = 20,
        read_heads: int = 1,
    ) -> None:
        memory = DNCMemory(controller_size, memory_slots, memory_width, read_heads)
        super().__init__(input_size, output_size, controller_size, memory)


class LSTMBaseline(nn.Module):
    """The NTM paper's baseline: a stack of LSTMs (Hochreiter & Schmidhuber 1997) with a linear read-out per step.

    Our :class:`~paperzoo.sequence.layers.LSTM` reads the whole sequence and a linear layer maps the last layer's
    state at every step to that step's logits. The paper's copy-task LSTM has three layers of 256 units.

    Args:
        input_size: features of each input vector.
        output_size: logits of each output vector.
        hidden_size: units of each LSTM layer.
        num_layers: stacked LSTM layers.

    Shapes:
        - **input:** :math:`(B, T, I)`.
        - **output:** :math:`(B, T, O)` logits.
    """

    def __init__(self, input_size: int, output_size: int, hidden_size: int = 256, num_layers: int = 3) -> None:
        super().__init__()
        self.input_size = input_size
        self.output_size = output_size
        self.lstm = LSTM(input_size, hidden_size, num_layers=num_layers, batch_first=True)
        self.output = nn.Linear(hidden_size, output_size)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 3 or x.size(-1) != self.input_size:
            raise ValueError(f"LSTMBaseline expects input of shape (B, T, {self.input_size}), got {tuple(x.shape)}")
        outputs, _ = self.lstm(x)  # (B, T, H)
        return self.output(outputs)  # (B, T, O)


@register_model
def ntm(input_size: int = 9, output_size: int = 8, **kwargs) -> NTM:
    """The copy-task NTM: 8-bit vectors and a delimiter channel in, 8 bits out, 100 LSTM units, 128 x 20 memory."""
    return NTM(input_size, output_size, **kwargs)


@register_model
def dnc(input_size: int = 9, output_size: int = 8, **kwargs) -> DNC:
    """A DNC for the copy task: 100 LSTM units, a 128 x 20 memory, one read head."""
    return DNC(input_size, output_size, **kwargs)


@register_model
def lstm_copy_baseline(input_size: int = 9, output_size: int = 8, **kwargs) -> LSTMBaseline:
    """The NTM paper's copy-task LSTM: three layers of 256 units."""
    return LSTMBaseline(input_size, output_size, **kwargs)
