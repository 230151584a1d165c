"""Adagrad: per-coordinate learning rates from the sum of squared gradients."""

from __future__ import annotations

from typing import Any

import torch
from torch.optim.optimizer import ParamsT

from paperzoo.core.optim.base import MultiTensorOptimizer, check_non_negative


class Adagrad(MultiTensorOptimizer):
    """Adagrad, the diagonal form of Duchi, Hazan & Singer (2011), "Adaptive Subgradient Methods".

    Each coordinate's step is divided by the root of the sum of its squared gradients, so rarely
    updated coordinates keep a large step. With ``g_t`` the gradient plus ``weight_decay * theta_t``::

        G_t = G_{t-1} + g_t ** 2                  (G_0 = initial_accumulator_value)
        eta_t = lr / (1 + (t - 1) * lr_decay)
        theta_{t+1} = theta_t - eta_t * g_t / (sqrt(G_t) + eps)

    Args:
        params: the parameters to optimise, or a list of parameter-group dicts.
        lr: the learning rate ``lr``.
        lr_decay: the LR at step ``t`` is ``lr / (1 + (t - 1) * lr_decay)``.
        weight_decay: L2 penalty coefficient added to the gradient.
        initial_accumulator_value: the starting value of every coordinate's sum of squares.
        eps: added to the root of the sum, so an unvisited coordinate does not divide by zero.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
    ) -> None:
        check_non_negative(
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
        )
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
        )
        super().__init__(params, defaults)

    def update_group(
        self,
        group: dict[str, Any],
        params: list[torch.Tensor],
        grads: list[torch.Tensor],
        states: list[dict[str, Any]],
    ) -> None:
        for state, p in zip(states, params, strict=True):
            if "sum" not in state:
                state["sum"] = torch.full_like(
                    p, group["initial_accumulator_value"], memory_format=torch.preserve_format
                )
        if group["weight_decay"] != 0:
            grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
        sums = [state["sum"] for state in states]
        torch._foreach_addcmul_(sums, grads, grads)
        denominators = torch._foreach_sqrt(sums)
        torch._foreach_add_(denominators, group["eps"])
        step_sizes = [-group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"]) for state in states]
        torch._foreach_addcdiv_(params, grads, denominators, step_sizes)
