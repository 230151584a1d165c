"""Cross-entropy and mean squared error, written with basic tensor ops and checked against torch."""

from __future__ import annotations

import torch
from torch import Tensor, nn

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def log_softmax(x: Tensor, dim: int) -> Tensor:
    r"""Log of the softmax along ``dim``: :math:`x_i - \log \sum_j e^{x_j}`.

    The maximum is subtracted before exponentiating so that no exponential overflows; it is detached
    because it cancels in the result, so no gradient needs to flow through it.
    """
    shifted = x - x.amax(dim=dim, keepdim=True).detach()
    return shifted - torch.log(torch.exp(shifted).sum(dim=dim, keepdim=True))


def cross_entropy(
    logits: Tensor,
    target: Tensor,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    r"""Cross-entropy between class logits and integer targets, with torch's label smoothing.

    With :math:`C` classes and smoothing :math:`\varepsilon` (Szegedy et al. 2016, "Rethinking the
    Inception Architecture", section 7) the target distribution is
    :math:`(1 - \varepsilon)\,\mathrm{onehot}(y) + \varepsilon / C`, so the loss of one example is

    .. math::
        \ell = -(1 - \varepsilon) \log p_y - \frac{\varepsilon}{C} \sum_{c=1}^{C} \log p_c .

    Targets equal to ``ignore_index`` contribute 0, and ``"mean"`` divides by the number of targets
    that are *not* ignored (NaN if all are), exactly as ``torch.nn.functional.cross_entropy`` does.

    Args:
        logits: unnormalised scores, classes along dim 1.
        target: class indices.
        ignore_index: target value whose positions are left out of the loss and of the mean.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        label_smoothing: :math:`\varepsilon \in [0, 1]`.

    Shapes:
        - **logits:** :math:`(N, C)` or :math:`(N, C, d_1, \dots, d_k)`.
        - **target:** :math:`(N)` or :math:`(N, d_1, \dots, d_k)`.
        - **output:** a scalar, or the target's shape for ``reduction="none"``.
    """
    _check_reduction(reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    log_p = log_softmax(logits, dim=1)  # (N, C, d...)
    keep = target != ignore_index  # (N, d...)
    # Ignored positions hold an arbitrary value (often -100), which is not a valid index to gather.
    safe_target = torch.where(keep, target, torch.zeros_like(target))
    nll = -log_p.gather(1, safe_target.unsqueeze(1)).squeeze(1)  # (N, d...)
    smooth = -log_p.mean(dim=1)  # (N, d...)
    loss = (1.0 - label_smoothing) * nll + label_smoothing * smooth
    loss = torch.where(keep, loss, torch.zeros_like(loss))
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / keep.sum()


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    r"""Mean squared error :math:`(x - y)^2`, averaged, summed or kept elementwise.

    Shapes:
        - **input:** any shape.
        - **target:** the input's shape.
        - **output:** a scalar, or the input's shape for ``reduction="none"``.
    """
    _check_reduction(reduction)
    if input.shape != target.shape:
        raise ValueError(f"input shape {tuple(input.shape)} and target shape {tuple(target.shape)} differ")
    squared = (input - target) ** 2
    if reduction == "none":
        return squared
    if reduction == "sum":
        return squared.sum()
    return squared.mean()


class CrossEntropyLoss(nn.Module):
    """Module form of :func:`cross_entropy`, with label smoothing (Szegedy et al. 2016).

    Args:
        ignore_index: target value left out of the loss and of the mean.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        label_smoothing: weight of the uniform distribution mixed into the one-hot target.

    Shapes:
        - **logits:** :math:`(N, C)` or :math:`(N, C, d_1, \\dots, d_k)`.
        - **target:** :math:`(N)` or :math:`(N, d_1, \\dots, d_k)`.
        - **output:** a scalar, or the target's shape for ``reduction="none"``.
    """

    def __init__(self, ignore_index: int = -100, reduction: str = "mean", label_smoothing: float = 0.0) -> None:
        super().__init__()
        _check_reduction(reduction)
        self.ignore_index = ignore_index
        self.reduction = reduction
        self.label_smoothing = label_smoothing

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return cross_entropy(logits, target, self.ignore_index, self.reduction, self.label_smoothing)

    def extra_repr(self) -> str:
        return f"ignore_index={self.ignore_index}, reduction={self.reduction!r}, label_smoothing={self.label_smoothing}"


class MSELoss(nn.Module):
    """Module form of :func:`mse_loss`.

    Args:
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Shapes:
        - **input:** any shape.
        - **target:** the input's shape.
        - **output:** a scalar, or the input's shape for ``reduction="none"``.
    """

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        _check_reduction(reduction)
        self.reduction = reduction

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return mse_loss(input, target, self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"
