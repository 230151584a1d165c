"""The position-wise feed-forward network of transformer blocks, shared by ViT and Swin."""

from __future__ import annotations

import torch
from torch import nn


class Mlp(nn.Module):
    r"""Transformer MLP from Vaswani et al. 2017, "Attention Is All You Need", with the GELU of ViT and Swin.

    .. math::
        \mathrm{MLP}(x) = W_2\, \mathrm{GELU}(W_1 x + b_1) + b_2

    (Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words", section 3.1: "two layers with a GELU
    non-linearity"). Dropout follows the activation and the second layer, as in the paper's appendix B.1.
    Parameter names (``fc1``, ``fc2``) are timm's.

    Args:
        dim: input and output width.
        hidden_dim: width of the hidden layer (``4 * dim`` in ViT and Swin).
        dropout: dropout probability after the activation and after the output layer.

    Shapes:
        - input: :math:`(*, D)`
        - output: :math:`(*, D)`
    """

    def __init__(self, dim: int, hidden_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.drop1 = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop2 = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop1(self.act(self.fc1(x)))  # (*, hidden_dim)
        return self.drop2(self.fc2(x))  # (*, D)
