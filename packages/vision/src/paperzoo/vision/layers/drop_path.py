"""Stochastic depth for residual branches, shared by the vision transformers."""

from __future__ import annotations

import torch
from torch import nn


class DropPath(nn.Module):
    r"""Stochastic depth from Huang et al. 2016, "Deep Networks with Stochastic Depth", per example.

    In training, each example's residual branch is dropped with probability ``p`` and the kept ones are scaled by
    :math:`1 / (1 - p)`, so that ``x + drop_path(f(x))`` equals ``x + f(x)`` in expectation; in eval mode it is the
    identity. The per-example (rather than per-batch) draw is what DeiT, Swin and timm use.

    Args:
        p: probability of dropping the branch.

    Shapes:
        - input: :math:`(B, *)`
        - output: same shape as the input
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop path probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)  # (B, 1, ..., 1)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"
