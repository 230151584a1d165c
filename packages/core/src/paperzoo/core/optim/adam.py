"""Adam and AdamW: bias-corrected moment estimates, with L2 or decoupled weight decay."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.optim.optimizer import ParamsT

from paperzoo.core.optim.base import MultiTensorOptimizer, check_non_negative


class Adam(MultiTensorOptimizer):
    """Adam, Kingma & Ba (2015), "Adam: A Method for Stochastic Optimization", Algorithm 1.

    With ``g_t`` the gradient plus ``weight_decay * theta_t`` (an L2 penalty, which Adam rescales along
    with the gradient) and ``t`` counted from 1::

        m_t = beta1 * m_{t-1} + (1 - beta1) * g_t
        v_t = beta2 * v_{t-1} + (1 - beta2) * g_t ** 2
        v_t = max(v_{t-1}, v_t)                                    (AMSGrad, Reddi et al. 2018)
        theta_{t+1} = theta_t - lr * (m_t / (1 - beta1 ** t)) / (sqrt(v_t / (1 - beta2 ** t)) + eps)

    The two divisions by ``1 - beta ** t`` undo the bias of moments started at zero (section 3). AMSGrad
    keeps the running maximum of ``v`` separately (``max_exp_avg_sq``) so the denominator never shrinks.

    Args:
        params: the parameters to optimise, or a list of parameter-group dicts.
        lr: the step size ``alpha`` of the paper.
        betas: the decay rates ``(beta1, beta2)`` of the first and second moment estimates.
        eps: added to the denominator for numerical stability.
        weight_decay: L2 penalty coefficient added to the gradient.
        amsgrad: use the maximum of past second-moment estimates (Reddi et al. 2018).
    """

    decoupled_weight_decay = False

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ) -> None:
        check_non_negative(lr=lr, eps=eps, weight_decay=weight_decay)
        if not all(0 <= beta < 1 for beta in betas):
            raise ValueError(f"betas must lie in [0, 1), got {betas}")
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
        super().__init__(params, defaults)

    def update_group(
        self,
        group: dict[str, Any],
        params: list[torch.Tensor],
        grads: list[torch.Tensor],
        states: list[dict[str, Any]],
    ) -> None:
        beta1, beta2 = group["betas"]
        lr, weight_decay = group["lr"], group["weight_decay"]
        for state, p in zip(states, params, strict=True):
            if "exp_avg" not in state:
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                if group["amsgrad"]:
                    state["max_exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        if weight_decay != 0:
            if self.decoupled_weight_decay:
                torch._foreach_mul_(params, 1 - lr * weight_decay)
            else:
                grads = torch._foreach_add(grads, params, alpha=weight_decay)
        exp_avgs = [state["exp_avg"] for state in states]
        exp_avg_sqs = [state["exp_avg_sq"] for state in states]
        torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1 - beta2)
        if group["amsgrad"]:
            second_moments = [state["max_exp_avg_sq"] for state in states]
            torch._foreach_maximum_(second_moments, exp_avg_sqs)
        else:
            second_moments = exp_avg_sqs
        # Fold the first-moment correction into the step size and the second into the denominator,
        # which keeps the arithmetic on the moments themselves and avoids two extra tensor passes.
        denominators = torch._foreach_sqrt(second_moments)
        torch._foreach_div_(denominators, [math.sqrt(1 - beta2 ** state["step"]) for state in states])
        torch._foreach_add_(denominators, group["eps"])
        step_sizes = [-lr / (1 - beta1 ** state["step"]) for state in states]
        torch._foreach_addcdiv_(params, exp_avgs, denominators, step_sizes)


class AdamW(Adam):
    """AdamW, Loshchilov & Hutter (2019), "Decoupled Weight Decay Regularization", Algorithm 2.

    Adam with an L2 penalty divides the penalty's gradient by ``sqrt(v)``, so heavily updated weights
    are barely regularised. AdamW instead shrinks every weight directly, before the Adam step on the
    plain gradient::

        theta_t = theta_t * (1 - lr * weight_decay)
        theta_{t+1} = Adam step from theta_t with the unpenalised gradient

    The decay is multiplied by ``lr`` (the paper's schedule multiplier ``eta_t`` times its base rate), so
    an LR schedule anneals the decay too.

    Args:
        params: the parameters to optimise, or a list of parameter-group dicts.
        lr: the step size.
        betas: the decay rates ``(beta1, beta2)`` of the first and second moment estimates.
        eps: added to the denominator for numerical stability.
        weight_decay: the decoupled decay rate ``lambda``.
        amsgrad: use the maximum of past second-moment estimates (Reddi et al. 2018).
    """

    decoupled_weight_decay = True

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
