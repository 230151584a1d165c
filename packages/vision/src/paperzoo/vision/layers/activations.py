"""Activations and the string resolver that model constructors use to pick one."""

from __future__ import annotations

import torch
from torch import nn


class ScaledTanh(nn.Module):
    r"""The squashing function of LeCun et al. 1998, "Gradient-based learning applied to document recognition".

    Appendix A of the paper:

    .. math::
        f(a) = A \tanh(S a), \qquad A = 1.7159,\ S = 2/3,

    chosen so that :math:`f(\pm 1) = \pm 1` and the second derivative is largest at :math:`a = \pm 1`.

    Shapes:
        - input: any shape
        - output: same shape as the input
    """

    amplitude = 1.7159
    slope = 2.0 / 3.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.amplitude * torch.tanh(self.slope * x)


_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "tanh": ScaledTanh,
    "relu": nn.ReLU,
}


def create_act(name: str) -> nn.Module:
    """Build an activation from its name.

    Args:
        name: ``"tanh"`` for LeCun's scaled tanh :class:`ScaledTanh`, or ``"relu"``.

    Returns:
        A fresh activation module.
    """
    try:
        return _ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose from {sorted(_ACTIVATIONS)}") from None
