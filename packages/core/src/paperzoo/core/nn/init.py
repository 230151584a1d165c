"""Weight initialisers, in place, drawing from an optional ``torch.Generator``.

Each draws exactly the numbers ``torch.nn.init`` draws, in the same order, so that with the same
generator state the results are bit-identical to torch's; the tests hold them to that.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """The fans of a weight laid out as ``(out_features, in_features, *kernel)``.

    Returns:
        ``(in_features * prod(kernel), out_features * prod(kernel))``: the number of inputs feeding one
        output unit and of outputs fed by one input unit.
    """
    if tensor.dim() < 2:
        raise ValueError(f"fans need a tensor with at least 2 dims, got {tensor.dim()}")
    receptive_field = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive_field, tensor.shape[0] * receptive_field


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The factor by which to scale a unit-variance init so that ``nonlinearity`` preserves variance.

    ``"relu"`` gives :math:`\\sqrt{2}` (He et al. 2015, eq. 10); ``"leaky_relu"`` with slope ``param``
    (default 0.01) gives :math:`\\sqrt{2 / (1 + a^2)}` (eq. 15); ``"tanh"`` gives 5/3 and
    ``"linear"``/``"sigmoid"`` give 1, as in ``torch.nn.init.calculate_gain``.
    """
    if nonlinearity in ("linear", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        negative_slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + negative_slope**2))
    raise ValueError(f"unsupported nonlinearity {nonlinearity!r}")


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
    r"""Glorot & Bengio (2010) "normalized initialization", eq. 16: :math:`U(-a, a)`.

    :math:`a = \text{gain} \sqrt{6 / (\text{fan\_in} + \text{fan\_out})}`, i.e. a variance of
    :math:`\text{gain}^2 \cdot 2 / (\text{fan\_in} + \text{fan\_out})`.
    """
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    bound = math.sqrt(3.0) * std
    with torch.no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
    r"""The Gaussian form of Glorot & Bengio (2010).

    Draws from :math:`N(0, \sigma^2)`, :math:`\sigma^2 = \text{gain}^2 \cdot 2 / (\text{fan\_in} + \text{fan\_out})`.
    """
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    with torch.no_grad():
        return tensor.normal_(0.0, std, generator=generator)


def _kaiming_std(tensor: Tensor, a: float, mode: str, nonlinearity: str) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(
    tensor: Tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""He et al. (2015) "Delving Deep into Rectifiers", uniform form: :math:`U(-b, b)`.

    :math:`b = \sqrt{3}\,\text{gain} / \sqrt{\text{fan}}`, i.e. a variance of
    :math:`\text{gain}^2 / \text{fan}`; ``fan_in`` preserves the forward variance (eq. 10), ``fan_out``
    the backward one (eq. 14).

    Args:
        tensor: the weight to fill.
        a: the negative slope of the leaky rectifier that follows (ignored for other nonlinearities).
        mode: ``"fan_in"`` or ``"fan_out"``.
        nonlinearity: passed to :func:`calculate_gain`.
        generator: source of randomness; the default generator if ``None``.
    """
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    with torch.no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)


def kaiming_normal_(
    tensor: Tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""He et al. (2015), Gaussian form: :math:`N(0, \text{gain}^2 / \text{fan})`.

    Arguments as in :func:`kaiming_uniform_`.
    """
    std = _kaiming_std(tensor, a, mode, nonlinearity)
    with torch.no_grad():
        return tensor.normal_(0.0, std, generator=generator)


def orthogonal_(tensor: Tensor, gain: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
    r"""A (semi-)orthogonal matrix (Saxe et al. 2014, "Exact solutions to the nonlinear dynamics of learning").

    The tensor is viewed as ``(rows, prod(other dims))``. A Gaussian matrix is QR-factorised and
    :math:`Q` is multiplied column-wise by :math:`\mathrm{sign}(\mathrm{diag}(R))`: without that
    correction the factorisation's sign convention skews the distribution, with it :math:`Q` is uniform
    (Haar) over the orthogonal matrices (Mezzadri 2007). The rows are orthonormal if ``rows <= cols``,
    the columns otherwise, then everything is scaled by ``gain``.
    """
    if tensor.dim() < 2:
        raise ValueError(f"orthogonal_ needs a tensor with at least 2 dims, got {tensor.dim()}")
    if tensor.numel() == 0:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    gaussian = tensor.new_empty((rows, cols)).normal_(0.0, 1.0, generator=generator)
    if rows < cols:
        # QR of a wide matrix would not give orthonormal rows; factorise its transpose instead.
        gaussian = gaussian.T
    q, r = torch.linalg.qr(gaussian)
    q = q * torch.diagonal(r).sign()  # (max(rows, cols), min(rows, cols))
    if rows < cols:
        q = q.T
    with torch.no_grad():
        tensor.view_as(q).copy_(q)
        tensor.mul_(gain)
    return tensor
