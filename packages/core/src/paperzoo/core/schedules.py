"""Learning-rate schedules that torch does not ship in a config-friendly form."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.optim.lr_scheduler import LambdaLR


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
