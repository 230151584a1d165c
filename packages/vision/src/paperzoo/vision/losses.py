"""Losses of the self-supervised methods in paperzoo.vision."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def nt_xent_loss(z1: Tensor, z2: Tensor, temperature: float = 0.5) -> Tensor:
    r"""The NT-Xent loss of Chen et al. 2020, "A Simple Framework for Contrastive Learning of Visual
    Representations" (SimCLR), equation (1) averaged over all positive pairs as in Algorithm 1.

    The ``2N`` embeddings of ``N`` images seen twice are L2-normalised, so that their dot products are cosine
    similarities, and every one of them is an anchor whose positive is the other view of its image and whose
    negatives are the other ``2N - 2`` embeddings:

    .. math::
        \ell_{i,j} = -\log \frac{\exp(\mathrm{sim}(z_i, z_j) / \tau)}
                                 {\sum_{k=1}^{2N} \mathbb{1}_{[k \ne i]} \exp(\mathrm{sim}(z_i, z_k) / \tau)},
        \qquad \mathcal{L} = \frac{1}{2N} \sum_{\text{positive pairs } (i, j)} \ell_{i,j}.

    That is a ``2N``-way cross-entropy over the rows of the ``(2N, 2N)`` similarity matrix with its diagonal
    removed, which is how it is computed here.

    Args:
        z1: the first view's embeddings.
        z2: the second view's embeddings, ``z2[n]`` the positive of ``z1[n]``.
        temperature: :math:`\tau`.

    Returns:
        The mean loss over the ``2N`` anchors, a scalar.

    Shapes:
        - z1, z2: :math:`(N, D)`
        - output: :math:`()`
    """
    if z1.shape != z2.shape or z1.dim() != 2:
        raise ValueError(f"z1 and z2 must both be (N, D), got {tuple(z1.shape)} and {tuple(z2.shape)}")
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)  # (2N, D), unit rows
    logits = z @ z.T / temperature  # (2N, 2N) cosine similarities / tau
    self_pairs = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_pairs, float("-inf"))  # the indicator k != i
    index = torch.arange(n, device=z.device)
    positives = torch.cat([index + n, index])  # row i < N pairs with i + N, row N + i with i
    return F.cross_entropy(logits, positives)


class NTXentLoss(nn.Module):
    r"""The NT-Xent loss of Chen et al. 2020 (SimCLR), equation (1); see :func:`nt_xent_loss`.

    Args:
        temperature: :math:`\tau`, which sets how hard the negatives are weighted (Table 5 of the paper).

    Shapes:
        - z1, z2: :math:`(N, D)`
        - output: :math:`()`
    """

    def __init__(self, temperature: float = 0.5) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.temperature = temperature

    def forward(self, z1: Tensor, z2: Tensor) -> Tensor:
        return nt_xent_loss(z1, z2, self.temperature)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"
