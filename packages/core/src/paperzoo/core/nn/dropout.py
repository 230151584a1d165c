"""Inverted dropout (Srivastava et al. 2014, "Dropout: A Simple Way to Prevent Neural Networks from Overfitting")."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def dropout(x: Tensor, p: float = 0.5, training: bool = True, generator: torch.Generator | None = None) -> Tensor:
    r"""Zero each element with probability :math:`p` and scale the survivors by :math:`1 / (1 - p)`.

    The paper keeps units with probability :math:`1 - p` at training time and multiplies the weights by
    :math:`1 - p` at test time; scaling by :math:`1 / (1 - p)` during training instead ("inverted"
    dropout) keeps :math:`\mathbb{E}[\mathrm{output}] = x` so that evaluation is the identity.

    Args:
        x: input.
        p: probability of zeroing an element.
        training: if ``False``, return ``x`` unchanged.
        generator: source of the mask's randomness; the default generator if ``None``.

    Shapes:
        - **input:** any shape.
        - **output:** the input's shape.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        # 1 / (1 - p) is undefined; every element is dropped.
        return x * torch.zeros_like(x)
    keep = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device) >= p
    return x * keep.to(x.dtype) / (1.0 - p)


class Dropout(nn.Module):
    """Module form of :func:`dropout` (Srivastava et al. 2014); the identity in eval mode.

    Args:
        p: probability of zeroing an element.

    Shapes:
        - **input:** any shape.
        - **output:** the input's shape.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return dropout(x, self.p, self.training, generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"
