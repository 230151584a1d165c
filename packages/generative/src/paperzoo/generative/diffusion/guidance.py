r"""Classifier-free guidance: Ho & Salimans 2021, "Classifier-Free Diffusion Guidance" (NeurIPS 2021 workshop,
arXiv 2207.12598).

One network is trained both conditionally and unconditionally: each training label is replaced by a "null" label
with probability :math:`p_{uncond}` (0.1 or 0.2 in the paper; :func:`drop_labels`). At sampling time the two
predictions are combined (Algorithm 2, Eq. 6):

.. math::
    \tilde\epsilon = (1 + w)\,\epsilon_\theta(x_t, c) - w\,\epsilon_\theta(x_t)

with guidance strength :math:`w \ge 0`: :math:`w = 0` is the plain conditional model, larger :math:`w` trades
diversity for fidelity. diffusers (and Stable Diffusion) write the same rule as :math:`\epsilon_u + s(\epsilon_c -
\epsilon_u)` with ``guidance_scale`` :math:`s = 1 + w`; here ``guidance_scale`` is always :math:`w`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def classifier_free_guidance(eps_cond: Tensor, eps_uncond: Tensor, guidance_scale: float) -> Tensor:
    r""":math:`(1 + w)\,\epsilon_c - w\,\epsilon_u` with :math:`w` = ``guidance_scale``."""
    return (1 + guidance_scale) * eps_cond - guidance_scale * eps_uncond


def drop_labels(labels: Tensor, p_uncond: float, null_label: int, generator: torch.Generator | None = None) -> Tensor:
    """A copy of ``labels`` ``(B,)`` with each entry replaced by ``null_label`` with probability ``p_uncond``."""
    if p_uncond <= 0:
        return labels
    drop = torch.rand(labels.shape, generator=generator, device=labels.device) < p_uncond
    return torch.where(drop, torch.full_like(labels, null_label), labels)


def guided_epsilon(
    network: nn.Module, x: Tensor, t: Tensor, labels: Tensor, guidance_scale: float, null_label: int
) -> Tensor:
    r"""The guided noise prediction of a class-conditional ``network(x, t, labels)``.

    With :math:`w = 0` it is one conditional forward pass; otherwise the conditional and unconditional
    predictions come from one forward pass over the batch twice (labels, then ``null_label``).

    Args:
        network: the noise predictor, taking ``(x, t, labels)``.
        x: the samples ``(B, ...)``.
        t: their steps ``(B,)``.
        labels: their labels ``(B,)``.
        guidance_scale: :math:`w`.
        null_label: the label meaning "no label".
    """
    if guidance_scale == 0:
        return network(x, t, labels)
    null = torch.full_like(labels, null_label)
    eps = network(torch.cat([x, x]), torch.cat([t, t]), torch.cat([labels, null]))  # (2B, ...)
    eps_cond, eps_uncond = eps.chunk(2)
    return classifier_free_guidance(eps_cond, eps_uncond, guidance_scale)
