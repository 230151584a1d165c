"""L1 and L2 penalties on a module's parameters, to be added to the training loss."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _trainable(module: nn.Module) -> list[Tensor]:
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"{type(module).__name__} has no trainable parameters to penalise")
    return params


def l1_penalty(module: nn.Module, weight: float) -> Tensor:
    r"""The lasso penalty :math:`\lambda \sum_i |\theta_i|` over the trainable parameters (Tibshirani 1996).

    Its subgradient :math:`\lambda\,\mathrm{sign}(\theta)` pushes every parameter towards 0 at a constant
    rate, which drives small ones to exactly 0 (sparsity) rather than merely shrinking them.
    """
    return weight * torch.stack([p.abs().sum() for p in _trainable(module)]).sum()


def l2_penalty(module: nn.Module, weight: float) -> Tensor:
    r"""The ridge penalty :math:`\frac{\lambda}{2} \sum_i \theta_i^2` over the trainable parameters.

    The factor :math:`\frac{1}{2}` makes its gradient :math:`\lambda \theta`, which is exactly the term
    that ``torch.optim.SGD(weight_decay=λ)`` adds to each gradient: one SGD step on
    ``loss + l2_penalty(module, λ)`` equals one step on ``loss`` with ``weight_decay=λ``
    (weight decay of Hanson & Pratt 1988 / Krogh & Hertz 1992). The equivalence holds for plain SGD
    (with or without momentum) but not for adaptive methods such as Adam, where decoupled weight decay
    differs from an L2 penalty (Loshchilov & Hutter 2019).
    """
    return 0.5 * weight * torch.stack([(p * p).sum() for p in _trainable(module)]).sum()
