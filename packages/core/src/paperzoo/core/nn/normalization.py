"""Batch normalisation (Ioffe & Szegedy 2015) and layer normalisation (Ba et al. 2016)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


def batch_norm(
    x: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    r"""Normalise each channel (dim 1) over the batch and every other dim, then scale and shift.

    .. math::
        y = \frac{x - \mu_B}{\sqrt{\sigma_B^2 + \epsilon}} \gamma + \beta

    In training, :math:`\mu_B` and the biased :math:`\sigma_B^2` come from the batch (Ioffe & Szegedy
    2015, Algorithm 1), and the running estimates are updated in place with torch's convention
    ``running = (1 - momentum) * running + momentum * batch``, where the variance fed to the running
    estimate is the unbiased :math:`\frac{n}{n-1}\sigma_B^2` (Algorithm 2, step 10). Out of training the
    running estimates are used.

    Args:
        x: input, channels along dim 1.
        running_mean: running mean, updated in place when training; may be ``None``.
        running_var: running (unbiased) variance, updated in place when training; may be ``None``.
        weight: per-channel scale :math:`\gamma`, or ``None`` for 1.
        bias: per-channel shift :math:`\beta`, or ``None`` for 0.
        training: use batch statistics (and update the running ones) rather than the running ones.
        momentum: weight of the batch statistic in the running update.
        eps: added to the variance for numerical stability.

    Shapes:
        - **input:** :math:`(N, C, *)`.
        - **running_mean, running_var, weight, bias:** :math:`(C)`.
        - **output:** the input's shape.
    """
    reduce_dims = [d for d in range(x.dim()) if d != 1]
    # Per-channel vectors broadcast against (N, C, *).
    channel_shape = [1, x.shape[1]] + [1] * (x.dim() - 2)
    if training:
        n = x.numel() // x.shape[1]
        if n <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size {tuple(x.shape)}")
        mean = x.mean(dim=reduce_dims)  # (C,)
        var = ((x - mean.view(channel_shape)) ** 2).mean(dim=reduce_dims)  # (C,), biased
        if running_mean is not None and running_var is not None:
            with torch.no_grad():
                running_mean.mul_(1.0 - momentum).add_(momentum * mean)
                running_var.mul_(1.0 - momentum).add_(momentum * var * n / (n - 1))
    else:
        if running_mean is None or running_var is None:
            raise ValueError("running_mean and running_var are needed when not training")
        mean, var = running_mean, running_var
    y = (x - mean.view(channel_shape)) / torch.sqrt(var.view(channel_shape) + eps)
    if weight is not None:
        y = y * weight.view(channel_shape)
    if bias is not None:
        y = y + bias.view(channel_shape)
    return y


def layer_norm(
    x: Tensor,
    normalized_shape: Sequence[int],
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    r"""Normalise over the last ``len(normalized_shape)`` dims of each sample (Ba et al. 2016).

    .. math::
        y = \frac{x - \mathrm{E}[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}} \odot \gamma + \beta

    with the mean and biased variance taken over the normalised dims only, so the result does not
    depend on the other samples in the batch.

    Shapes:
        - **input:** :math:`(*, \text{normalized\_shape})`.
        - **weight, bias:** ``normalized_shape``.
        - **output:** the input's shape.
    """
    normalized_shape = tuple(normalized_shape)
    if tuple(x.shape[x.dim() - len(normalized_shape) :]) != normalized_shape:
        raise ValueError(f"input shape {tuple(x.shape)} does not end with normalized_shape {normalized_shape}")
    dims = tuple(range(-len(normalized_shape), 0))
    mean = x.mean(dim=dims, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=dims, keepdim=True)
    y = (x - mean) / torch.sqrt(var + eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


class _BatchNorm(nn.Module):
    """Shared state and training logic of :class:`BatchNorm1d` and :class:`BatchNorm2d`."""

    _expected_dims: tuple[int, ...] = ()

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        self.weight = nn.Parameter(torch.empty(num_features)) if affine else None
        self.bias = nn.Parameter(torch.empty(num_features)) if affine and bias else None
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features))
            self.register_buffer("running_var", torch.ones(num_features))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        """Forget the running statistics: mean 0, variance 1, no batches seen."""
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1.0)
            self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        """Reset the running statistics and set :math:`\\gamma = 1`, :math:`\\beta = 0`."""
        self.reset_running_stats()
        if self.weight is not None:
            nn.init.ones_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() not in self._expected_dims:
            raise ValueError(f"{type(self).__name__} expects a {self._expected_dims}-dim input, got {x.dim()}-dim")
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                # No momentum: the running statistics are the plain average over all batches seen.
                momentum = 1.0 / float(self.num_batches_tracked)
        # Without running statistics there is nothing else to normalise with, even in eval mode.
        use_batch_stats = self.training or not self.track_running_stats
        return batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, use_batch_stats, momentum, self.eps
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    r"""Batch normalisation over a batch of vectors or sequences (Ioffe & Szegedy 2015).

    .. math::
        y = \frac{x - \mathrm{E}[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}} \gamma + \beta

    with the statistics of each channel taken over the batch (and the length) in training, and from the
    running estimates in eval mode; see :func:`batch_norm`.

    Args:
        num_features: the number of channels :math:`C`.
        eps: added to the variance for numerical stability.
        momentum: weight of the batch statistic in the running update; ``None`` for a cumulative average.
        affine: learn :math:`\gamma` (and :math:`\beta` if ``bias``).
        track_running_stats: keep running estimates; if ``False``, batch statistics are used in eval too.
        bias: learn :math:`\beta` when ``affine``.

    Shapes:
        - **input:** :math:`(N, C)` or :math:`(N, C, L)`.
        - **output:** the input's shape.
    """

    _expected_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    r"""Batch normalisation over a batch of images (Ioffe & Szegedy 2015, section 3.2).

    .. math::
        y = \frac{x - \mathrm{E}[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}} \gamma + \beta

    with the statistics of each channel taken over the batch and all positions, as the paper prescribes
    for convolutional layers; see :func:`batch_norm`.

    Args:
        num_features: the number of channels :math:`C`.
        eps: added to the variance for numerical stability.
        momentum: weight of the batch statistic in the running update; ``None`` for a cumulative average.
        affine: learn :math:`\gamma` (and :math:`\beta` if ``bias``).
        track_running_stats: keep running estimates; if ``False``, batch statistics are used in eval too.
        bias: learn :math:`\beta` when ``affine``.

    Shapes:
        - **input:** :math:`(N, C, H, W)`.
        - **output:** the input's shape.
    """

    _expected_dims = (4,)


class LayerNorm(nn.Module):
    r"""Layer normalisation (Ba et al. 2016, "Layer Normalization").

    .. math::
        y = \frac{x - \mathrm{E}[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}} \odot \gamma + \beta

    with the statistics taken over the last ``len(normalized_shape)`` dims of each sample.

    Args:
        normalized_shape: the trailing shape to normalise over.
        eps: added to the variance for numerical stability.
        elementwise_affine: learn an elementwise :math:`\gamma` (and :math:`\beta` if ``bias``).
        bias: learn :math:`\beta` when ``elementwise_affine``.

    Shapes:
        - **input:** :math:`(*, \text{normalized\_shape})`.
        - **output:** the input's shape.
    """

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        self.weight = nn.Parameter(torch.empty(self.normalized_shape)) if elementwise_affine else None
        self.bias = nn.Parameter(torch.empty(self.normalized_shape)) if elementwise_affine and bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Set :math:`\\gamma = 1` and :math:`\\beta = 0`."""
        if self.weight is not None:
            nn.init.ones_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: Tensor) -> Tensor:
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
            f"bias={self.bias is not None}"
        )
