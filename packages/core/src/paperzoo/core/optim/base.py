"""What every paperzoo optimiser shares: the closure, the no-grad context and the per-group dispatch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

# Elements per update call on the CPU: 2**18 float32 values are 1 MiB per tensor, so a chunk's parameter,
# gradient and state tensors stay in the L2 cache from one elementwise pass to the next.
CPU_CHUNK = 1 << 18


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
            initialised = all(len(state) > 1 for state in update_states)
            for state in update_states:
                state["step"] = state.get("step", 0) + 1
            if initialised and params[0].device.type == "cpu":
                for chunk in _cpu_chunks(params, grads, update_states):
                    self.update_group(group, *chunk)
            else:
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


def _cpu_chunks(
    params: list[torch.Tensor], grads: list[torch.Tensor], states: list[dict[str, Any]]
) -> list[tuple[list[torch.Tensor], list[torch.Tensor], list[dict[str, Any]]]]:
    """Split a group's update into calls of about :data:`CPU_CHUNK` elements.

    On the CPU the ``_foreach_*`` ops are not fused: each one streams every tensor of the group through
    memory before the next starts, so a 25M-parameter step is bound by memory bandwidth. Running all the
    ops on one cache-sized piece before moving to the next keeps the data in cache. Large tensors are cut
    into flat views (their state tensors alike, so the in-place updates land in the real state); small
    ones are batched together so the foreach ops still see many tensors per call. The arithmetic is the
    same elementwise arithmetic, so the result is bit-identical to the unchunked update. Called only once
    every parameter's state exists: the first update creates the state tensors.
    """
    pieces: list[tuple[torch.Tensor, torch.Tensor, dict[str, Any]]] = []
    for p, g, state in zip(params, grads, states, strict=True):
        tensors = [p, g, *(v for v in state.values() if isinstance(v, torch.Tensor) and v.dim() > 0)]
        if p.numel() <= CPU_CHUNK or not all(t.is_contiguous() and t.shape == p.shape for t in tensors):
            pieces.append((p, g, state))
            continue
        flat_p, flat_g = p.view(-1), g.view(-1)
        for start in range(0, p.numel(), CPU_CHUNK):
            part = slice(start, start + CPU_CHUNK)
            view = {k: v.view(-1)[part] if isinstance(v, torch.Tensor) and v.dim() > 0 else v for k, v in state.items()}
            pieces.append((flat_p[part], flat_g[part], view))
    calls, current, size = [], [], 0
    for piece in pieces:
        if current and size + piece[0].numel() > CPU_CHUNK:
            calls.append(current)
            current, size = [], 0
        current.append(piece)
        size += piece[0].numel()
    if current:
        calls.append(current)
    return [([p for p, _, _ in c], [g for _, g, _ in c], [s for _, _, s in c]) for c in calls]
