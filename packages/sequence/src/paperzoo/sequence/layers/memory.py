r"""External memories read and written by a neural controller: the Neural Turing Machine and the Differentiable
Neural Computer.

- Graves, Wayne & Danihelka 2014, "Neural Turing Machines" (arXiv 1410.5401): a memory matrix :math:`M \in
  \mathbb{R}^{N \times W}` addressed by content (a key compared with every row by cosine similarity, sharpened by a
  key strength :math:`\beta`) and by location (interpolation with the previous weighting, a circular shift and a
  sharpening exponent :math:`\gamma`); heads write with erase and add vectors and read weighted sums of the rows.
- Graves et al. 2016, "Hybrid computing using a neural network with dynamic external memory" (Nature 538): the
  Differentiable Neural Computer replaces the NTM's location addressing with dynamic allocation (a usage vector
  freed by the read heads' free gates, and an allocation weighting that favours the least used rows) and with a
  temporal link matrix that remembers the order of the writes, so a read head can step forwards or backwards
  through them.

Every function works on a batch and on all heads at once: weightings are :math:`(B, H, N)`, keys and vectors
:math:`(B, H, W)`, memories :math:`(B, N, W)`; only the time loop of a model is in Python. The numbered equations in
the docstrings are those of the papers (NTM section 3.3, DNC Methods).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_EPS = 1e-6


def oneplus(x: Tensor) -> Tensor:
    r"""The DNC's :math:`\mathrm{oneplus}(x) = 1 + \log(1 + e^x)`, a smooth map onto :math:`[1, \infty)` for key
    strengths and sharpening exponents."""
    return 1.0 + F.softplus(x)


def cosine_similarity(keys: Tensor, memory: Tensor, eps: float = _EPS) -> Tensor:
    r""":math:`K(k, M_i) = \frac{k \cdot M_i}{\lVert k \rVert \lVert M_i \rVert + \epsilon}` of every key with every
    memory row; the :math:`\epsilon` keeps an all-zero row or key (a fresh memory) at similarity 0 instead of NaN.

    Shapes:
        - **keys:** :math:`(B, H, W)`.
        - **memory:** :math:`(B, N, W)`.
        - **output:** :math:`(B, H, N)`.
    """
    dot = keys @ memory.transpose(1, 2)  # (B, H, W) @ (B, W, N) -> (B, H, N)
    norms = keys.norm(dim=-1, keepdim=True) * memory.norm(dim=-1).unsqueeze(1)  # (B, H, 1) * (B, 1, N)
    return dot / (norms + eps)


def content_weighting(memory: Tensor, keys: Tensor, strengths: Tensor, eps: float = _EPS) -> Tensor:
    r"""Content addressing (NTM eq. 5, DNC's :math:`\mathcal{C}(M, k, \beta)`): a softmax over the rows of the key
    strength times the cosine similarity,

    .. math::
        w^c(i) = \frac{\exp(\beta K(k, M_i))}{\sum_j \exp(\beta K(k, M_j))}.

    Shapes:
        - **memory:** :math:`(B, N, W)`.
        - **keys:** :math:`(B, H, W)`.
        - **strengths:** :math:`\beta \ge 0`, :math:`(B, H)`.
        - **output:** :math:`(B, H, N)`, each row summing to 1.
    """
    return torch.softmax(strengths.unsqueeze(-1) * cosine_similarity(keys, memory, eps), dim=-1)


def circular_shift(weights: Tensor, shift: Tensor) -> Tensor:
    r"""The NTM's rotation of a weighting by a distribution over shifts (eq. 8), a circular convolution:

    .. math::
        \tilde w(i) = \sum_{k=-S}^{S} w\big((i - k) \bmod N\big)\, s(k).

    ``shift[..., S + k]`` is the weight of a shift by :math:`k` rows, so a one-hot ``shift`` at index :math:`S + 1`
    moves the whole weighting one row forwards (``torch.roll(weights, 1, -1)``).

    Shapes:
        - **weights:** :math:`(B, H, N)`.
        - **shift:** :math:`(B, H, 2S + 1)`, each row summing to 1, with :math:`2S + 1 \le N`.
        - **output:** :math:`(B, H, N)`.
    """
    reach = (shift.size(-1) - 1) // 2
    padded = torch.cat([weights[..., weights.size(-1) - reach :], weights, weights[..., :reach]], dim=-1)  # (B,H,N+2S)
    windows = padded.unfold(-1, 2 * reach + 1, 1)  # (B, H, N, 2S+1); windows[..., i, j] = w((i + j - S) mod N)
    return (windows * shift.flip(-1).unsqueeze(-2)).sum(-1)  # column j pairs with the shift k = S - j


def sharpen(weights: Tensor, gamma: Tensor, eps: float = _EPS) -> Tensor:
    r"""The NTM's sharpening (eq. 9), :math:`w(i) = \tilde w(i)^{\gamma} / \sum_j \tilde w(j)^{\gamma}` with
    :math:`\gamma \ge 1`, computed as :math:`\mathrm{softmax}(\gamma \log(\tilde w + \epsilon))`: the same numbers, but
    a row of weights that underflowed to 0 neither divides by zero nor sends :math:`0 \cdot \log 0` into the gradient
    of :math:`\gamma`.

    Shapes:
        - **weights:** :math:`(B, H, N)`, non-negative.
        - **gamma:** :math:`(B, H)`.
        - **output:** :math:`(B, H, N)`, each row summing to 1.
    """
    return torch.softmax(gamma.unsqueeze(-1) * torch.log(weights + eps), dim=-1)


def ntm_address(
    memory: Tensor,
    previous: Tensor,
    key: Tensor,
    strength: Tensor,
    gate: Tensor,
    shift: Tensor,
    gamma: Tensor,
) -> Tensor:
    r"""The NTM's full addressing (Graves et al. 2014, figure 2): content, interpolation, shift, sharpening.

    .. math::
        w^c = \mathrm{softmax}(\beta K(k, M)), \quad w^g = g\, w^c + (1 - g)\, w_{t-1}, \quad
        \tilde w = w^g \circledast s, \quad w = \tilde w^{\gamma} / \textstyle\sum \tilde w^{\gamma}.

    Shapes:
        - **memory:** :math:`(B, N, W)`.
        - **previous:** :math:`w_{t-1}`, :math:`(B, H, N)`.
        - **key:** :math:`(B, H, W)`; **strength**, **gate** and **gamma**: :math:`(B, H)`.
        - **shift:** :math:`(B, H, 2S + 1)`.
        - **output:** :math:`(B, H, N)`.
    """
    content = content_weighting(memory, key, strength)
    gated = gate.unsqueeze(-1) * content + (1 - gate.unsqueeze(-1)) * previous
    return sharpen(circular_shift(gated, shift), gamma)


def memory_write(memory: Tensor, weights: Tensor, erase: Tensor, add: Tensor) -> Tensor:
    r"""Erase then add (NTM eqs. 3-4, DNC's :math:`M_t = M_{t-1} \circ (E - w e^\top) + w v^\top`), for any number
    of write heads: every head's erase multiplies (so their order does not matter), then every head's add sums,

    .. math::
        M_t = M_{t-1} \circ \prod_h \big(\mathbf{1} - w_h e_h^\top\big) + \sum_h w_h a_h^\top.

    Shapes:
        - **memory:** :math:`(B, N, W)`.
        - **weights:** :math:`(B, H, N)`.
        - **erase:** :math:`(B, H, W)`, in :math:`[0, 1]`.
        - **add:** :math:`(B, H, W)`.
        - **output:** :math:`(B, N, W)`.
    """
    if weights.size(1) == 1:  # the usual single write head: no (B, H, N, W) product to build
        keep = 1 - weights.transpose(1, 2) @ erase  # (B, N, 1) @ (B, 1, W) -> (B, N, W)
    else:
        keep = torch.prod(1 - weights.unsqueeze(-1) * erase.unsqueeze(-2), dim=1)  # (B, H, N, W) -> (B, N, W)
    return memory * keep + weights.transpose(1, 2) @ add  # (B, N, H) @ (B, H, W) -> (B, N, W)


def memory_read(memory: Tensor, weights: Tensor) -> Tensor:
    r"""Read vectors :math:`r = \sum_i w(i) M_i` (NTM eq. 2, DNC's :math:`M_t^\top w^r`).

    Shapes:
        - **memory:** :math:`(B, N, W)`.
        - **weights:** :math:`(B, H, N)`.
        - **output:** :math:`(B, H, W)`.
    """
    return weights @ memory


# ----------------------------------------------------------------------------------------------------- the DNC


def retention(free_gates: Tensor, read_weights: Tensor) -> Tensor:
    r"""The DNC's memory retention vector :math:`\psi_t = \prod_{i=1}^{R} (\mathbf{1} - f_t^i w_{t-1}^{r,i})`: how
    much of each row survives being freed by the read heads.

    Shapes:
        - **free_gates:** :math:`(B, R)`, in :math:`[0, 1]`.
        - **read_weights:** :math:`w_{t-1}^r`, :math:`(B, R, N)`.
        - **output:** :math:`(B, N)`.
    """
    return torch.prod(1 - free_gates.unsqueeze(-1) * read_weights, dim=1)


def update_usage(usage: Tensor, write_weights: Tensor, retention: Tensor) -> Tensor:
    r"""The DNC's usage vector :math:`u_t = (u_{t-1} + w_{t-1}^w - u_{t-1} \circ w_{t-1}^w) \circ \psi_t`: written
    rows become used, freed rows unused.

    Shapes:
        - **usage**, **write_weights** (:math:`w_{t-1}^w`), **retention**: :math:`(B, N)`.
        - **output:** :math:`(B, N)`.
    """
    return (usage + write_weights - usage * write_weights) * retention


def allocation_weighting(usage: Tensor) -> Tensor:
    r"""The DNC's allocation weighting: with :math:`\phi_t` the row indices sorted by ascending usage,

    .. math::
        a_t[\phi_t[j]] = (1 - u_t[\phi_t[j]]) \prod_{i=1}^{j-1} u_t[\phi_t[i]],

    so the least used row gets almost all of the weight when it is free. As in the paper the sort is treated as a
    constant: the permutation comes from ``torch.sort`` and the gradient flows through the gathered usage values to
    :math:`u_t`, not through the indices (the paper ignores the discontinuities where the order changes). The sort is
    stable, so tied rows (a fresh memory) are allocated in index order.

    Shapes:
        - **usage:** :math:`(B, N)`, in :math:`[0, 1]`.
        - **output:** :math:`(B, N)`, summing to :math:`1 - \prod_i u_t[i]`.
    """
    order = torch.sort(usage.detach(), dim=-1, stable=True).indices  # phi_t: no gradient through the indices
    sorted_usage = usage.gather(-1, order)  # (B, N), differentiable in the usage values
    free_before = torch.cumprod(torch.cat([torch.ones_like(sorted_usage[:, :1]), sorted_usage[:, :-1]], -1), -1)
    return torch.zeros_like(usage).scatter(-1, order, (1 - sorted_usage) * free_before)


def update_link(link: Tensor, precedence: Tensor, write_weights: Tensor) -> Tensor:
    r"""The DNC's temporal link matrix, :math:`L_t[i, j]` the degree to which row :math:`i` was written right after
    row :math:`j`:

    .. math::
        L_t[i, j] = (1 - w_t^w[i] - w_t^w[j])\, L_{t-1}[i, j] + w_t^w[i]\, p_{t-1}[j], \qquad L_t[i, i] = 0.

    Shapes:
        - **link:** :math:`L_{t-1}`, :math:`(B, N, N)`.
        - **precedence:** :math:`p_{t-1}`, :math:`(B, N)`.
        - **write_weights:** :math:`w_t^w`, :math:`(B, N)`.
        - **output:** :math:`L_t`, :math:`(B, N, N)`.
    """
    w_i, w_j = write_weights.unsqueeze(-1), write_weights.unsqueeze(-2)  # (B, N, 1), (B, 1, N)
    # Three passes over the (B, N, N) matrix, the cost of a DNC step: the scale, its product and the fused outer add.
    link = torch.baddbmm((1 - w_i - w_j) * link, w_i, precedence.unsqueeze(-2))  # + w_i p_j^T, (B, N, N)
    link.diagonal(dim1=-2, dim2=-1).zero_()  # baddbmm's backward does not need its output, so in place is safe
    return link


def update_precedence(precedence: Tensor, write_weights: Tensor) -> Tensor:
    r"""The DNC's precedence weighting :math:`p_t = (1 - \sum_i w_t^w[i])\, p_{t-1} + w_t^w`: where the last write
    went, fading only as much as the new write is complete.

    Shapes:
        - **precedence**, **write_weights**: :math:`(B, N)`.
        - **output:** :math:`(B, N)`.
    """
    return (1 - write_weights.sum(-1, keepdim=True)) * precedence + write_weights


def directional_weightings(link: Tensor, read_weights: Tensor) -> tuple[Tensor, Tensor]:
    r"""The DNC's forward and backward weightings :math:`f_t^i = L_t w_{t-1}^{r,i}` and
    :math:`b_t^i = L_t^\top w_{t-1}^{r,i}`: one step along the order of the writes, after or before each head's last
    read.

    Shapes:
        - **link:** :math:`L_t`, :math:`(B, N, N)`.
        - **read_weights:** :math:`w_{t-1}^r`, :math:`(B, R, N)`.
        - **output:** ``(forward, backward)``, each :math:`(B, R, N)`.
    """
    forward = read_weights @ link.transpose(1, 2)  # f[b, r, i] = sum_j L[b, i, j] w[b, r, j]
    backward = read_weights @ link  # b[b, r, j] = sum_i L[b, i, j] w[b, r, i]
    return forward, backward


# ----------------------------------------------------------------------------------------------------- NTM heads


class NTMState(NamedTuple):
    """The recurrent state of an NTM memory: the matrix, the heads' last weightings and the last read vectors."""

    memory: Tensor  # (B, N, W)
    read_weights: Tensor  # (B, R, N)
    write_weights: Tensor  # (B, Hw, N)
    reads: Tensor  # (B, R, W)


class NTMMemory(nn.Module):
    r"""The memory and the read and write heads of a Neural Turing Machine (Graves, Wayne & Danihelka 2014).

    One linear layer maps the controller's output :math:`h_t` to every head's parameters: a key :math:`k`, a key
    strength :math:`\beta = \mathrm{softplus}(\cdot) \ge 0`, an interpolation gate :math:`g = \sigma(\cdot)`, a shift
    weighting :math:`s = \mathrm{softmax}(\cdot)` over the shifts :math:`-S, \dots, S` and a sharpening exponent
    :math:`\gamma = \mathrm{oneplus}(\cdot) \ge 1`; a write head also emits an erase vector :math:`e = \sigma(\cdot)`
    and an add vector :math:`a`. Each step the write heads address the memory :math:`M_{t-1}` (:func:`ntm_address`)
    and write (:func:`memory_write`); then the read heads address the new memory :math:`M_t` and read
    (:func:`memory_read`). The paper leaves the key's activation open; it is linear here, so a key can match any row.

    The paper leaves initialisation open too. Here the memory starts as the constant :math:`10^{-6}` (the best of the
    schemes compared by Collier & Beel 2018, "Implementing Neural Turing Machines"), every head's previous weighting
    as one-hot on row 0 (a constant memory gives uniform content weights, and shifting or sharpening a uniform
    weighting leaves it uniform, so location addressing needs a start that is not), and the read vectors before the
    first step are learned (``initial_reads``).

    Args:
        controller_size: features of the controller output :math:`h_t`.
        memory_slots: rows :math:`N`.
        memory_width: row width :math:`W` (the paper's :math:`M`).
        read_heads: read heads :math:`R`.
        write_heads: write heads :math:`H_w`.
        shift_range: the largest shift :math:`S`; the paper allows :math:`-1, 0, 1`.

    Shapes:
        - **controller_output:** :math:`(B, C)`.
        - **state:** an :class:`NTMState`, e.g. from :meth:`initial_state`.
        - **output:** the read vectors :math:`(B, R, W)` and the new state.
    """

    def __init__(
        self,
        controller_size: int,
        memory_slots: int = 128,
        memory_width: int = 20,
        read_heads: int = 1,
        write_heads: int = 1,
        shift_range: int = 1,
    ) -> None:
        super().__init__()
        if min(memory_slots, memory_width, read_heads, write_heads) < 1:
            raise ValueError(
                f"memory_slots, memory_width, read_heads and write_heads must be positive, got {memory_slots}, "
                f"{memory_width}, {read_heads} and {write_heads}"
            )
        if shift_range < 0 or 2 * shift_range + 1 > memory_slots:
            raise ValueError(f"shift_range must lie in [0, {(memory_slots - 1) // 2}], got {shift_range}")
        self.controller_size = controller_size
        self.memory_slots = memory_slots
        self.memory_width = memory_width
        self.read_heads = read_heads
        self.write_heads = write_heads
        self.shift_range = shift_range
        self.address_size = memory_width + 3 + 2 * shift_range + 1  # k, beta, g, s, gamma
        heads = read_heads + write_heads
        self.interface = nn.Linear(controller_size, heads * self.address_size + write_heads * 2 * memory_width)
        self.initial_reads = nn.Parameter(torch.empty(read_heads, memory_width))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.interface.reset_parameters()
        nn.init.normal_(self.initial_reads, std=0.01)

    def initial_state(self, batch_size: int, reference: Tensor) -> NTMState:
        """The state before the first step, on ``reference``'s device and dtype."""
        options = {"dtype": reference.dtype, "device": reference.device}
        memory = torch.full((batch_size, self.memory_slots, self.memory_width), 1e-6, **options)
        first_row = torch.zeros(self.memory_slots, **options)
        first_row[0] = 1
        return NTMState(
            memory=memory,
            read_weights=first_row.expand(batch_size, self.read_heads, -1),
            write_weights=first_row.expand(batch_size, self.write_heads, -1),
            reads=self.initial_reads.to(reference.dtype).expand(batch_size, -1, -1),
        )

    def _address(self, memory: Tensor, previous: Tensor, params: Tensor) -> Tensor:
        """Addressing of heads whose raw parameters are ``params`` :math:`(B, H, W + 2S + 4)`."""
        W = self.memory_width
        key, strength, gate, shift, gamma = params.split([W, 1, 1, 2 * self.shift_range + 1, 1], dim=-1)
        return ntm_address(
            memory,
            previous,
            key,
            F.softplus(strength.squeeze(-1)),
            torch.sigmoid(gate.squeeze(-1)),
            torch.softmax(shift, dim=-1),
            oneplus(gamma.squeeze(-1)),
        )

    def forward(self, controller_output: Tensor, state: NTMState) -> tuple[Tensor, NTMState]:
        R, Hw, W = self.read_heads, self.write_heads, self.memory_width
        interface = self.interface(controller_output)  # (B, (R + Hw) * A + Hw * 2W)
        address, vectors = interface.split([(R + Hw) * self.address_size, Hw * 2 * W], dim=-1)
        address = address.unflatten(-1, (R + Hw, self.address_size))  # (B, R + Hw, A)
        erase, add = vectors.unflatten(-1, (Hw, 2 * W)).split(W, dim=-1)  # 2 x (B, Hw, W)
        write_weights = self._address(state.memory, state.write_weights, address[:, R:])  # (B, Hw, N)
        memory = memory_write(state.memory, write_weights, torch.sigmoid(erase), add)  # (B, N, W)
        read_weights = self._address(memory, state.read_weights, address[:, :R])  # (B, R, N)
        reads = memory_read(memory, read_weights)  # (B, R, W)
        return reads, NTMState(memory, read_weights, write_weights, reads)

    def extra_repr(self) -> str:
        return (
            f"slots={self.memory_slots}, width={self.memory_width}, read_heads={self.read_heads}, "
            f"write_heads={self.write_heads}, shift_range={self.shift_range}"
        )


# ----------------------------------------------------------------------------------------------------- DNC memory


class DNCState(NamedTuple):
    """The recurrent state of a DNC memory (all zeros before the first step, as in the paper)."""

    memory: Tensor  # (B, N, W)
    usage: Tensor  # (B, N)
    link: Tensor  # (B, N, N)
    precedence: Tensor  # (B, N)
    read_weights: Tensor  # (B, R, N)
    write_weights: Tensor  # (B, N)
    reads: Tensor  # (B, R, W)


class DNCMemory(nn.Module):
    r"""The memory of a Differentiable Neural Computer (Graves et al. 2016), with its interface.

    One linear layer maps the controller's output to the interface vector :math:`\xi_t`, split into :math:`R` read
    keys and read strengths :math:`\beta^r = \mathrm{oneplus}(\cdot)`, a write key and strength, an erase vector
    :math:`e = \sigma(\cdot)`, a write vector :math:`v`, :math:`R` free gates :math:`f = \sigma(\cdot)`, the
    allocation gate :math:`g^a = \sigma(\cdot)`, the write gate :math:`g^w = \sigma(\cdot)` and :math:`R` read modes
    :math:`\pi = \mathrm{softmax}(\cdot)` over (backward, content, forward). One step, in the paper's order:

    .. math::
        \begin{aligned}
        \psi_t &= \textstyle\prod_i (1 - f^i w_{t-1}^{r,i}), \quad
        u_t = (u_{t-1} + w_{t-1}^w - u_{t-1} \circ w_{t-1}^w) \circ \psi_t, \quad a_t = \mathrm{alloc}(u_t) \\
        w_t^w &= g^w \big(g^a a_t + (1 - g^a)\, \mathcal{C}(M_{t-1}, k^w, \beta^w)\big), \quad
        M_t = M_{t-1} \circ (E - w_t^w e^\top) + w_t^w v^\top \\
        L_t &= \text{see } :func:`update_link`, \quad p_t = (1 - \textstyle\sum w_t^w) p_{t-1} + w_t^w, \quad
        f_t^i = L_t w_{t-1}^{r,i}, \quad b_t^i = L_t^\top w_{t-1}^{r,i} \\
        w_t^{r,i} &= \pi^i[1]\, b_t^i + \pi^i[2]\, \mathcal{C}(M_t, k^{r,i}, \beta^{r,i}) + \pi^i[3]\, f_t^i, \quad
        r_t^i = M_t^\top w_t^{r,i}.
        \end{aligned}

    Args:
        controller_size: features of the controller output.
        memory_slots: rows :math:`N`.
        memory_width: row width :math:`W`.
        read_heads: read heads :math:`R`.

    Shapes:
        - **controller_output:** :math:`(B, C)`.
        - **state:** a :class:`DNCState`, e.g. from :meth:`initial_state`.
        - **output:** the read vectors :math:`(B, R, W)` and the new state.
    """

    def __init__(
        self, controller_size: int, memory_slots: int = 128, memory_width: int = 20, read_heads: int = 1
    ) -> None:
        super().__init__()
        if min(memory_slots, memory_width, read_heads) < 1:
            raise ValueError(
                f"memory_slots, memory_width and read_heads must be positive, got {memory_slots}, {memory_width} and "
                f"{read_heads}"
            )
        self.controller_size = controller_size
        self.memory_slots = memory_slots
        self.memory_width = memory_width
        self.read_heads = read_heads
        R, W = read_heads, memory_width
        # read keys, read strengths, write key, write strength, erase, write vector, free gates, g^a, g^w, read modes
        self.splits = [R * W, R, W, 1, W, W, R, 1, 1, 3 * R]
        self.interface = nn.Linear(controller_size, sum(self.splits))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.interface.reset_parameters()

    def initial_state(self, batch_size: int, reference: Tensor) -> DNCState:
        """The all-zero state before the first step, on ``reference``'s device and dtype."""
        B, N, W, R = batch_size, self.memory_slots, self.memory_width, self.read_heads
        zeros = reference.new_zeros
        return DNCState(
            memory=zeros(B, N, W),
            usage=zeros(B, N),
            link=zeros(B, N, N),
            precedence=zeros(B, N),
            read_weights=zeros(B, R, N),
            write_weights=zeros(B, N),
            reads=zeros(B, R, W),
        )

    def forward(self, controller_output: Tensor, state: DNCState) -> tuple[Tensor, DNCState]:
        R, W = self.read_heads, self.memory_width
        parts = self.interface(controller_output).split(self.splits, dim=-1)
        read_keys, read_strengths, write_key, write_strength, erase, write_vector = parts[:6]
        free_gates, allocation_gate, write_gate, read_modes = parts[6:]
        read_keys = read_keys.unflatten(-1, (R, W))  # (B, R, W)
        read_modes = torch.softmax(read_modes.unflatten(-1, (R, 3)), dim=-1)  # (B, R, 3): backward, content, forward

        usage = update_usage(
            state.usage, state.write_weights, retention(torch.sigmoid(free_gates), state.read_weights)
        )  # (B, N)
        write_content = content_weighting(state.memory, write_key.unsqueeze(1), oneplus(write_strength))  # (B, 1, N)
        allocation_gate, write_gate = torch.sigmoid(allocation_gate), torch.sigmoid(write_gate)  # (B, 1) each
        write_weights = write_gate * (
            allocation_gate * allocation_weighting(usage) + (1 - allocation_gate) * write_content.squeeze(1)
        )  # (B, N)
        memory = memory_write(
            state.memory, write_weights.unsqueeze(1), torch.sigmoid(erase).unsqueeze(1), write_vector.unsqueeze(1)
        )  # (B, N, W)
        link = update_link(state.link, state.precedence, write_weights)  # (B, N, N)
        precedence = update_precedence(state.precedence, write_weights)  # (B, N)

        forward, backward = directional_weightings(link, state.read_weights)  # 2 x (B, R, N)
        read_content = content_weighting(memory, read_keys, oneplus(read_strengths))  # (B, R, N)
        read_weights = (
            read_modes[..., 0:1] * backward + read_modes[..., 1:2] * read_content + read_modes[..., 2:3] * forward
        )  # (B, R, N)
        reads = memory_read(memory, read_weights)  # (B, R, W)
        return reads, DNCState(memory, usage, link, precedence, read_weights, write_weights, reads)

    def extra_repr(self) -> str:
        return f"slots={self.memory_slots}, width={self.memory_width}, read_heads={self.read_heads}"
