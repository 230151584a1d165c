"""Elementwise activations, written with basic tensor ops and checked against ``torch.nn.functional``.

Each function is paired with a stateless :class:`torch.nn.Module` wrapper so that it can be named in a
config or placed in an ``nn.Sequential``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def sigmoid(x: Tensor) -> Tensor:
    r"""The logistic function :math:`\sigma(x) = 1 / (1 + e^{-x})`.

    Evaluated as :math:`1 / (1 + e^{-x})` for :math:`x \ge 0` and :math:`e^{x} / (1 + e^{x})` for
    :math:`x < 0`, so that no exponential overflows. Each branch only ever sees inputs from its own half
    of the line (the other entries are replaced by 0), because ``torch.where`` multiplies the gradient of
    the unused branch by zero, and ``0 * inf`` would still be NaN.
    """
    positive = x >= 0
    x_pos = torch.where(positive, x, torch.zeros_like(x))
    x_neg = torch.where(positive, torch.zeros_like(x), x)
    exp_neg = torch.exp(x_neg)
    return torch.where(positive, 1.0 / (1.0 + torch.exp(-x_pos)), exp_neg / (1.0 + exp_neg))


def tanh(x: Tensor) -> Tensor:
    r"""The hyperbolic tangent :math:`\tanh(x) = (1 - e^{-2x}) / (1 + e^{-2x})`.

    ``expm1`` keeps the numerator accurate near 0, where ``1 - e^{-2x}`` would cancel; the two halves
    of the line are evaluated separately for the same overflow reason as in :func:`sigmoid`.
    """
    positive = x >= 0
    x_pos = torch.where(positive, x, torch.zeros_like(x))
    x_neg = torch.where(positive, torch.zeros_like(x), x)
    tanh_pos = -torch.expm1(-2.0 * x_pos) / (1.0 + torch.exp(-2.0 * x_pos))
    tanh_neg = torch.expm1(2.0 * x_neg) / (1.0 + torch.exp(2.0 * x_neg))
    return torch.where(positive, tanh_pos, tanh_neg)


def relu(x: Tensor) -> Tensor:
    r"""The rectifier :math:`\max(0, x)` (Nair & Hinton 2010); its gradient at 0 is 0, as in torch."""
    return torch.where(x > 0, x, torch.zeros_like(x))


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    r"""Leaky rectifier :math:`x` for :math:`x > 0`, else :math:`a x` (Maas et al. 2013)."""
    return torch.where(x > 0, x, negative_slope * x)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    r"""Gaussian error linear unit :math:`x \Phi(x)` (Hendrycks & Gimpel 2016, "Gaussian Error Linear Units").

    Args:
        x: input.
        approximate: ``"none"`` for the exact :math:`\frac{x}{2}(1 + \mathrm{erf}(x / \sqrt{2}))`, or
            ``"tanh"`` for the paper's approximation
            :math:`\frac{x}{2}(1 + \tanh(\sqrt{2/\pi}\,(x + 0.044715 x^3)))`.
    """
    if approximate == "none":
        return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))
    if approximate == "tanh":
        return 0.5 * x * (1.0 + tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)))
    raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")


class Sigmoid(nn.Module):
    """Module form of :func:`sigmoid`.

    Shapes:
        - **input:** any shape.
        - **output:** the input's shape.
    """

    def forward(self, x: Tensor) -> Tensor:
        return sigmoid(x)


class Tanh(nn.Module):
    """Module form of :func:`tanh`.

    Shapes:
        - **input:** any shape.
        - **output:** the input's shape.
    """

    def forward(self, x: Tensor) -> Tensor:
        return tanh(x)


class ReLU(nn.Module):
    """Module form of :func:`relu` (Nair & Hinton 2010).

    Shapes:
        - **input:** any shape.
        - **output:** the input's shape.
    """

    def forward(self, x: Tensor) -> Tensor:
        return relu(x)


class LeakyReLU(nn.Module):
    """Module form of :func:`leaky_relu` (Maas et al. 2013).

    Args:
        negative_slope: the slope :math:`a` for negative inputs.

    Shapes:
        - **input:** any shape.
        - **output:** the input's shape.
    """

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: Tensor) -> Tensor:
        return leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class GELU(nn.Module):
    """Module form of :func:`gelu` (Hendrycks & Gimpel 2016).

    Args:
        approximate: ``"none"`` (exact, erf) or ``"tanh"`` (the paper's tanh approximation).

    Shapes:
        - **input:** any shape.
        - **output:** the input's shape.
    """

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return gelu(x, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"
