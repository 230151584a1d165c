"""Sinusoidal positional encoding from Vaswani et al. 2017, "Attention Is All You Need" (arXiv 1706.03762)."""

from __future__ import annotations

import torch
from torch import nn


class SinusoidalPositionalEncoding(nn.Module):
    r"""Fixed sinusoidal positional encoding from Vaswani et al. 2017, section 3.5.

    .. math::
        PE_{(pos, 2i)} = \sin(pos / 10000^{2i / d}), \qquad PE_{(pos, 2i + 1)} = \cos(pos / 10000^{2i / d})

    The encoding is added to the input and the sum goes through dropout (section 5.4). Scaling the embeddings by
    :math:`\sqrt{d}` first (section 3.4) is the model's job, since it belongs to the embedding.

    The table is computed and kept in float64 and cast to the input's dtype on use: the angles reach ``max_len``
    radians, where float32 would already round them by ~1e-4, and keeping float64 makes a model cast to float64 exact.
    It is a non-persistent buffer, so it follows the module across devices but stays out of the state dict.

    Args:
        d_model: model width d; must be even.
        max_len: the longest sequence the table covers.
        dropout: dropout on the sum.

    Shapes:
        - input: :math:`(B, T, d)` with :math:`T \le` ``max_len``
        - output: :math:`(B, T, d)`
    """

    def __init__(self, d_model: int, max_len: int = 1024, dropout: float = 0.0) -> None:
        super().__init__()
        if d_model % 2:
            raise ValueError(f"the sinusoidal encoding pairs sin and cos dimensions: d_model={d_model} must be even")
        self.d_model = d_model
        self.max_len = max_len
        position = torch.arange(max_len, dtype=torch.float64)[:, None]  # (L, 1)
        two_i = torch.arange(0, d_model, 2, dtype=torch.float64)  # (d / 2,): the even dimensions 2i
        angle = position / 10000.0 ** (two_i / d_model)  # (L, d / 2)
        pe = torch.stack([angle.sin(), angle.cos()], dim=-1).flatten(1)  # (L, d): sin at even dims, cos at odd
        self.register_buffer("pe", pe, persistent=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length = x.shape[1]
        if length > self.max_len:
            raise ValueError(f"sequence of {length} positions is longer than max_len={self.max_len}")
        return self.dropout(x + self.pe[:length].to(x.dtype))

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, max_len={self.max_len}"
