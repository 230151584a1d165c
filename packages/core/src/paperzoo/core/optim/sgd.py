"""Stochastic gradient descent with Polyak's heavy-ball or Nesterov's momentum."""

from __future__ import annotations

from typing import Any

import torch
from torch.optim.optimizer import ParamsT

from paperzoo.core.optim.base import MultiTensorOptimizer, check_non_negative


class SGD(MultiTensorOptimizer):
    """SGD with momentum (Polyak 1964) and Nesterov momentum as Sutskever et al. (2013) formulate it.

    With gradient ``g_t`` (plus ``weight_decay * theta_t``, an L2 penalty), momentum ``mu`` and
    dampening ``d``::

        v_t = g_t                                 at the first step
        v_t = mu * v_{t-1} + (1 - d) * g_t        afterwards
        theta_{t+1} = theta_t - lr * v_t                      (heavy ball)
        theta_{t+1} = theta_t - lr * (g_t + mu * v_t)         (Nesterov)

    Sutskever et al.'s Nesterov step evaluates the gradient at the look-ahead point
    ``theta + mu * v``; substituting the look-ahead point for the parameters turns it into the form
    above, which needs only the gradient at the current parameters. The velocity here is the sum of
    past gradients, not of past steps, so the LR can change during training without rescaling it.

    Args:
        params: the parameters to optimise, or a list of parameter-group dicts.
        lr: the learning rate.
        momentum: the momentum factor ``mu``; 0 for plain SGD.
        dampening: scales the new gradient in the velocity by ``1 - dampening``.
        weight_decay: L2 penalty coefficient added to the gradient.
        nesterov: use Nesterov momentum; needs ``momentum > 0`` and ``dampening == 0``.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        check_non_negative(lr=lr, momentum=momentum, weight_decay=weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum needs momentum > 0 and dampening == 0")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov)
        super().__init__(params, defaults)

    def update_group(
        self,
        group: dict[str, Any],
        params: list[torch.Tensor],
        grads: list[torch.Tensor],
        states: list[dict[str, Any]],
    ) -> None:
        mu = group["momentum"]
        if group["weight_decay"] != 0:
            grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
        if mu == 0:
            torch._foreach_add_(params, grads, alpha=-group["lr"])
            return
        # Parameters seen before carry a velocity; a new one starts it at its gradient.
        old = [i for i, state in enumerate(states) if "momentum_buffer" in state]
        if old:
            velocities = [states[i]["momentum_buffer"] for i in old]
            torch._foreach_mul_(velocities, mu)
            torch._foreach_add_(velocities, [grads[i] for i in old], alpha=1 - group["dampening"])
        for state, grad in zip(states, grads, strict=True):
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = grad.detach().clone()
        velocities = [state["momentum_buffer"] for state in states]
        direction = torch._foreach_add(grads, velocities, alpha=mu) if group["nesterov"] else velocities
        torch._foreach_add_(params, direction, alpha=-group["lr"])
