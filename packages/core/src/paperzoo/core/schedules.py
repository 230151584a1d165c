"""Learning-rate schedules, each a closed-form multiplier of the base LR.

Every schedule is a ``LambdaLR`` whose factor depends only on the step count, so the LR at a step does
not depend on the path that reached it (resuming, or building the schedule at ``last_epoch=k``, gives
the same LR as stepping from 0). All take typed arguments, so an experiment config can name them::

    lr_scheduler:
      class_path: paperzoo.core.schedules.CosineWithWarmup
      init_args: {warmup_steps: 500}

A schedule whose ``total_steps`` is left unset gets ``trainer.estimated_stepping_batches`` from
``PaperzooModule`` (see ``paperzoo.core.modules.base``); built by hand, it must be given.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch.optim.lr_scheduler import LambdaLR

from paperzoo.core.errors import ConfigError


def _check_total_steps(total_steps: int | None, warmup_steps: int = 0) -> int:
    """Return ``total_steps``, raising a ConfigError (a ValueError) where it is missing or shorter than the warm-up."""
    if total_steps is None:
        raise ConfigError(
            "total_steps is required: PaperzooModule fills it in from the trainer when the config leaves it "
            "unset; pass it when building the schedule yourself"
        )
    if total_steps < 1:
        raise ConfigError(f"total_steps must be >= 1, got {total_steps}")
    if not 0 <= warmup_steps <= total_steps:
        raise ConfigError(
            f"warmup_steps must lie in [0, total_steps={total_steps}], got {warmup_steps}: shorten the warm-up "
            "(--model.init_args.lr_scheduler.init_args.warmup_steps) or train for more steps"
        )
    return total_steps


class StepLR(LambdaLR):
    """Step decay: the LR is multiplied by ``gamma`` every ``step_size`` steps.

    The classic schedule of AlexNet (Krizhevsky et al. 2012) and VGG, here in closed form::

        factor(t) = gamma ** (t // step_size)

    Args:
        optimizer: the optimiser whose base LRs are scaled.
        step_size: the number of scheduler steps between two decays.
        gamma: the decay factor.
        last_epoch: the index of the last step taken; -1 to start afresh.
    """

    def __init__(
        self, optimizer: torch.optim.Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1
    ) -> None:
        if step_size < 1:
            raise ValueError(f"step_size must be >= 1, got {step_size}")
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, self._factor, last_epoch=last_epoch)

    def _factor(self, step: int) -> float:
        return self.gamma ** (step // self.step_size)


class MultiStepLR(LambdaLR):
    """Piecewise-constant decay: the LR is multiplied by ``gamma`` at each milestone (He et al. 2016).

    ::

        factor(t) = gamma ** (number of milestones <= t)

    A milestone listed twice decays twice.

    Args:
        optimizer: the optimiser whose base LRs are scaled.
        milestones: the steps at which the LR is multiplied by ``gamma``.
        gamma: the decay factor.
        last_epoch: the index of the last step taken; -1 to start afresh.
    """

    def __init__(
        self, optimizer: torch.optim.Optimizer, milestones: Sequence[int], gamma: float = 0.1, last_epoch: int = -1
    ) -> None:
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = gamma
        super().__init__(optimizer, self._factor, last_epoch=last_epoch)

    def _factor(self, step: int) -> float:
        return self.gamma ** bisect.bisect_right(self.milestones, step)


class WarmupMultiStepLR(LambdaLR):
    """Multi-step decay with a constant warm-up at a reduced rate (He et al. 2016, section 4.2).

    For ResNet-110 on CIFAR-10 He et al. "use 0.01 to warm up the training until the training error is
    below 80% (about 400 iterations), and then go back to 0.1": a factor of 0.1 for 400 steps, then the
    usual division by 10 at each milestone. The factor at step ``t`` is::

        warmup_factor                         if t < warmup_steps
        gamma ** (number of milestones <= t)  otherwise

    Args:
        optimizer: the optimiser whose base LRs are scaled.
        milestones: steps at which the LR is multiplied by ``gamma``.
        gamma: the decay factor.
        warmup_steps: length of the warm-up, in scheduler steps.
        warmup_factor: the LR multiplier during warm-up.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        milestones: Sequence[int],
        gamma: float = 0.1,
        warmup_steps: int = 0,
        warmup_factor: float = 0.1,
        last_epoch: int = -1,
    ) -> None:
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = gamma
        self.warmup_steps = warmup_steps
        self.warmup_factor = warmup_factor
        super().__init__(optimizer, self._factor, last_epoch=last_epoch)

    def _factor(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.warmup_factor
        return self.gamma ** sum(step >= m for m in self.milestones)


class CosineWithWarmup(LambdaLR):
    """Linear warm-up, then a half-cosine decay (SGDR without restarts, Loshchilov & Hutter 2017).

    The warm-up is the gradual one of Goyal et al. (2017), which keeps large-batch training stable in its
    first steps; the decay is one period of SGDR's cosine annealing (eq. 5) stretched over the rest of
    training::

        factor(t) = t / warmup_steps                                           if t < warmup_steps
        factor(t) = r + (1 - r) * (1 + cos(pi * (t - warmup_steps) / (total_steps - warmup_steps))) / 2

    with ``r = min_lr_ratio``. The LR peaks at the base LR at ``t = warmup_steps`` and reaches
    ``min_lr_ratio`` times it at ``t = total_steps``, where it stays.

    Args:
        optimizer: the optimiser whose base LRs are scaled.
        warmup_steps: the length of the linear warm-up from 0, in scheduler steps.
        total_steps: the length of the whole schedule; None lets ``PaperzooModule`` fill it in.
        min_lr_ratio: the final LR as a fraction of the base LR.
        last_epoch: the index of the last step taken; -1 to start afresh.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        warmup_steps: int,
        total_steps: int | None = None,
        min_lr_ratio: float = 0.0,
        last_epoch: int = -1,
    ) -> None:
        self.total_steps = _check_total_steps(total_steps, warmup_steps)
        if not 0 <= min_lr_ratio <= 1:
            raise ValueError(f"min_lr_ratio must lie in [0, 1], got {min_lr_ratio}")
        self.warmup_steps = warmup_steps
        self.min_lr_ratio = min_lr_ratio
        super().__init__(optimizer, self._factor, last_epoch=last_epoch)

    def _factor(self, step: int) -> float:
        if step < self.warmup_steps:
            return step / self.warmup_steps
        progress = min(1.0, (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
        return self.min_lr_ratio + (1 - self.min_lr_ratio) * (1 + math.cos(math.pi * progress)) / 2


class LinearWarmupDecay(LambdaLR):
    """Linear warm-up from 0, then linear decay to 0: BERT's schedule (Devlin et al. 2019, appendix A.2).

    ::

        factor(t) = t / warmup_steps                                        if t < warmup_steps
        factor(t) = (total_steps - t) / (total_steps - warmup_steps)        until 0 at total_steps

    Args:
        optimizer: the optimiser whose base LRs are scaled.
        warmup_steps: the length of the linear warm-up, in scheduler steps.
        total_steps: the step at which the LR reaches 0; None lets ``PaperzooModule`` fill it in.
        warmup_fraction: the warm-up as a fraction of ``total_steps`` instead (Hu et al. 2021 warm up over 6% of
            training: ``0.06``); it replaces ``warmup_steps``.
        last_epoch: the index of the last step taken; -1 to start afresh.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        warmup_steps: int = 0,
        total_steps: int | None = None,
        warmup_fraction: float | None = None,
        last_epoch: int = -1,
    ) -> None:
        if warmup_fraction is not None:
            if not 0 <= warmup_fraction < 1:
                raise ValueError(f"warmup_fraction must lie in [0, 1), got {warmup_fraction}")
            warmup_steps = round(warmup_fraction * _check_total_steps(total_steps))
        self.total_steps = _check_total_steps(total_steps, warmup_steps)
        self.warmup_steps = warmup_steps
        super().__init__(optimizer, self._factor, last_epoch=last_epoch)

    def _factor(self, step: int) -> float:
        if step < self.warmup_steps:
            return step / self.warmup_steps
        return max(0.0, (self.total_steps - step) / max(1, self.total_steps - self.warmup_steps))


class InverseSqrt(LambdaLR):
    """The Transformer's schedule (Vaswani et al. 2017, eq. 3): linear warm-up, then ``1/sqrt(step)``.

    With ``s = t + 1`` the paper's step number, counted from 1 so the first step does not have LR 0::

        factor(t) = d_model ** -0.5 * min(s ** -0.5, s * warmup_steps ** -1.5)

    Both branches meet at ``s = warmup_steps``, where the LR peaks. With ``d_model`` given and base LR 1
    this is the paper's ``lrate``; a base LR other than 1 scales it. With ``d_model=None`` the factor is
    normalised to peak at 1, so the base LR is the peak LR.

    Args:
        optimizer: the optimiser whose base LRs are scaled.
        warmup_steps: the step number ``s`` at which the warm-up ends and the LR peaks.
        d_model: the model width of the paper's formula; None to make the peak equal the base LR.
        last_epoch: the index of the last step taken; -1 to start afresh.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        warmup_steps: int,
        d_model: int | None = None,
        last_epoch: int = -1,
    ) -> None:
        if warmup_steps < 1:
            raise ValueError(f"warmup_steps must be >= 1, got {warmup_steps}")
        self.warmup_steps = warmup_steps
        self.d_model = d_model
        super().__init__(optimizer, self._factor, last_epoch=last_epoch)

    def _factor(self, step: int) -> float:
        s = step + 1
        scale = self.warmup_steps**0.5 if self.d_model is None else self.d_model**-0.5
        return scale * min(s**-0.5, s * self.warmup_steps**-1.5)


class OneCycle(LambdaLR):
    """The 1cycle policy (Smith & Topin 2019, "Super-Convergence"), in its two-phase form.

    The LR rises from ``max_lr / div_factor`` to ``max_lr`` over the first ``pct_start`` of training,
    then anneals to ``max_lr / (div_factor * final_div_factor)`` at the last step, both by a half cosine
    (``anneal="cos"``) or linearly. With ``p = pct_start * total_steps - 1`` the step of the peak::

        lr(t) = anneal(max_lr / div_factor, max_lr, t / p)                                  if t <= p
        lr(t) = anneal(max_lr, max_lr / (div_factor * final_div_factor), (t - p) / (total_steps - 1 - p))

    The LR is set from ``max_lr``, not from the optimiser's LR (a list gives one per parameter group);
    past ``total_steps`` it stays at its final value. Only the LR cycles; momentum is left alone.

    Args:
        optimizer: the optimiser whose LRs are set.
        max_lr: the peak LR, or one per parameter group.
        total_steps: the number of optimiser steps in the cycle; None lets ``PaperzooModule`` fill it in.
        pct_start: the fraction of the cycle spent increasing the LR.
        div_factor: the initial LR is ``max_lr / div_factor``.
        final_div_factor: the final LR is the initial LR divided by this.
        anneal: ``"cos"`` for half-cosine ramps, ``"linear"`` for straight ones.
        last_epoch: the index of the last step taken; -1 to start afresh.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        max_lr: float | Sequence[float],
        total_steps: int | None = None,
        pct_start: float = 0.3,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        anneal: Literal["cos", "linear"] = "cos",
        last_epoch: int = -1,
    ) -> None:
        self.total_steps = _check_total_steps(total_steps)
        if not 0 <= pct_start < 1:
            raise ValueError(f"pct_start must lie in [0, 1), got {pct_start}")
        if anneal not in ("cos", "linear"):
            raise ValueError(f"anneal must be 'cos' or 'linear', got {anneal!r}")
        max_lrs = [max_lr] * len(optimizer.param_groups) if isinstance(max_lr, int | float) else list(max_lr)
        if len(max_lrs) != len(optimizer.param_groups):
            raise ValueError(f"got {len(max_lrs)} max_lr values for {len(optimizer.param_groups)} parameter groups")
        if last_epoch == -1:
            # LambdaLR scales each group's ``initial_lr``; making that the peak turns factors into fractions of it.
            for group, lr in zip(optimizer.param_groups, max_lrs, strict=True):
                group["initial_lr"] = lr
        self.peak_step = pct_start * self.total_steps - 1
        self.initial_factor = 1 / div_factor
        self.final_factor = 1 / (div_factor * final_div_factor)
        self.anneal = anneal
        super().__init__(optimizer, self._factor, last_epoch=last_epoch)

    def _interpolate(self, start: float, end: float, pct: float) -> float:
        if self.anneal == "cos":
            return end + (start - end) * (1 + math.cos(math.pi * pct)) / 2
        return start + (end - start) * pct

    def _factor(self, step: int) -> float:
        if step <= self.peak_step:
            return self._interpolate(self.initial_factor, 1.0, step / self.peak_step if self.peak_step > 0 else 1.0)
        pct = min(1.0, (step - self.peak_step) / (self.total_steps - 1 - self.peak_step))
        return self._interpolate(1.0, self.final_factor, pct)
