"""RMSprop: steps divided by a running root-mean-square of the gradients."""

from __future__ import annotations

from typing import Any

import torch
from torch.optim.optimizer import ParamsT

from paperzoo.core.optim.base import MultiTensorOptimizer, check_non_negative


class RMSprop(MultiTensorOptimizer):
    """RMSprop (Tieleman & Hinton 2012, Coursera lecture 6.5), centred as in Graves (2013).

    Adagrad's sum of squares only grows; RMSprop replaces it by an exponential moving average, so the
    step size recovers after a stretch of large gradients. The centred variant of Graves (2013,
    "Generating Sequences With Recurrent Neural Networks", eq. 38-41) subtracts the squared mean
    gradient, dividing by an estimate of the gradient's standard deviation instead of its RMS. With
    ``g_t`` the gradient plus ``weight_decay * theta_t``::

        s_t = alpha * s_{t-1} + (1 - alpha) * g_t ** 2
        m_t = alpha * m_{t-1} + (1 - alpha) * g_t                  (centred only)
        r_t = sqrt(s_t) + eps,  or  sqrt(s_t - m_t ** 2) + eps     (centred)
        b_t = mu * b_{t-1} + g_t / r_t                             (b_t = g_t / r_t without momentum)
        theta_{t+1} = theta_t - lr * b_t

    Args:
        params: the parameters to optimise, or a list of parameter-group dicts.
        lr: the learning rate.
        alpha: the smoothing constant of the moving averages.
        eps: added to the root, so a coordinate with no gradient does not divide by zero.
        weight_decay: L2 penalty coefficient added to the gradient.
        momentum: the momentum factor ``mu`` applied to the normalised step; 0 for none.
        centered: normalise by the gradient's estimated standard deviation instead of its RMS.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ) -> None:
        check_non_negative(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum)
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum, centered=centered)
        super().__init__(params, defaults)

    def update_group(
        self,
        group: dict[str, Any],
        params: list[torch.Tensor],
        grads: list[torch.Tensor],
        states: list[dict[str, Any]],
    ) -> None:
        alpha, mu = group["alpha"], group["momentum"]
        for state, p in zip(states, params, strict=True):
            if "square_avg" not in state:
                state["square_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                if mu > 0:
                    state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                if group["centered"]:
                    state["grad_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        if group["weight_decay"] != 0:
            grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
        square_avgs = [state["square_avg"] for state in states]
        torch._foreach_mul_(square_avgs, alpha)
        torch._foreach_addcmul_(square_avgs, grads, grads, value=1 - alpha)
        if group["centered"]:
            grad_avgs = [state["grad_avg"] for state in states]
            torch._foreach_lerp_(grad_avgs, grads, 1 - alpha)
            variances = torch._foreach_addcmul(square_avgs, grad_avgs, grad_avgs, value=-1)
            denominators = torch._foreach_sqrt(variances)
        else:
            denominators = torch._foreach_sqrt(square_avgs)
        torch._foreach_add_(denominators, group["eps"])
        if mu > 0:
            buffers = [state["momentum_buffer"] for state in states]
            torch._foreach_mul_(buffers, mu)
            torch._foreach_addcdiv_(buffers, grads, denominators)
            torch._foreach_add_(params, buffers, alpha=-group["lr"])
        else:
            torch._foreach_addcdiv_(params, grads, denominators, value=-group["lr"])
