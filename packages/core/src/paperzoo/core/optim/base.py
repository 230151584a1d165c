"""What every paperzoo optimiser shares: the closure, the no-grad context and the per-group dispatch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


def check_non_negative(**values: float) -> None:
    """Raise a ValueError naming the first of ``values`` that is negative."""
    for name, value in values.items():
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")


class MultiTensorOptimizer(torch.optim.Optimizer):
    """An optimiser whose update is written once per parameter group, on lists of tensors.

    ``step`` evaluates the closure (with gradients enabled, as the optimiser itself runs under
    ``torch.no_grad``), collects the parameters of each group that received a gradient and hands them to
    :meth:`update_group`. Handing over whole lists lets the subclasses use the ``torch._foreach_*``
    kernels, which launch one kernel per operation for the group instead of one per parameter.
    """

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """Take one optimisation step.

        Args:
            closure: re-evaluates the model and returns the loss; needed by none of these optimisers, but
                accepted as ``torch.optim`` accepts it.

        Returns:
            The closure's loss, or None without a closure.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            if any(g.is_sparse for g in grads):
                raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
            update_states = [self.state[p] for p in params]
            for state in update_states:
                state["step"] = state.get("step", 0) + 1
            self.update_group(group, params, grads, update_states)
        return loss

    def update_group(
        self,
        group: dict[str, Any],
        params: list[torch.Tensor],
        grads: list[torch.Tensor],
        states: list[dict[str, Any]],
    ) -> None:
        """Update ``params`` in place from ``grads``; ``states[i]["step"]`` already counts this step.

        Args:
            group: the parameter group's hyper-parameters.
            params: the group's parameters that have a gradient.
            grads: their gradients, which must not be modified.
            states: their per-parameter state dicts, to read and fill.
        """
        raise NotImplementedError
