r"""Noise-conditional score networks: Song & Ermon 2019, "Generative Modeling by Estimating Gradients of the Data
Distribution" (NeurIPS 2019, arXiv 1907.05600).

A network :math:`s_\theta(x, \sigma)` learns the score :math:`\nabla_x \log q_\sigma(x)` of the data blurred by
Gaussian noise, at every level of a geometric sequence :math:`\sigma_1 > \dots > \sigma_L` (:func:`geometric_sigmas`),
by denoising score matching (Vincent 2011): for :math:`\tilde x = x + \sigma z` the target is
:math:`-(\tilde x - x) / \sigma^2 = -z / \sigma`, and the loss of level :math:`\sigma` is weighted by
:math:`\lambda(\sigma) = \sigma^2` (Eq. 5-6), which makes every level's term of the same size:

.. math::
    \ell(\theta; \sigma) = \tfrac{1}{2}\,\mathbb{E}\,\big\|\sigma\,s_\theta(x + \sigma z, \sigma) + z\big\|_2^2

(:func:`dsm_loss`, summed over dimensions and averaged over the batch as in the paper's code). Samples come from
annealed Langevin dynamics (Algorithm 1; :func:`annealed_langevin_dynamics`): :math:`T` steps of Langevin dynamics
at each level, from the largest, with step :math:`\alpha_i = \epsilon\,\sigma_i^2 / \sigma_L^2`:

.. math::
    x \leftarrow x + \frac{\alpha_i}{2}\,s_\theta(x, \sigma_i) + \sqrt{\alpha_i}\,z

optionally followed by one denoising step :math:`x + \sigma_L^2 s_\theta(x, \sigma_L)` (Tweedie's formula; Song &
Ermon 2020, "Improved Techniques for Training Score-Based Generative Models", and Jolicoeur-Martineau et al. 2021),
which removes the last level's noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from paperzoo.core.errors import ConfigError

ScoreFn = Callable[[Tensor, int], Tensor]


def geometric_sigmas(sigma_max: float = 1.0, sigma_min: float = 0.01, num_scales: int = 10) -> Tensor:
    r"""The noise levels :math:`\sigma_1 > \dots > \sigma_L`, a geometric sequence from ``sigma_max`` to ``sigma_min``
    (both included), float64 ``(L,)``; the paper's are 1 to 0.01 in 10 levels, for data in :math:`[0, 1]`."""
    if not 0 < sigma_min < sigma_max or num_scales < 2:
        raise ConfigError(
            f"need 0 < sigma_min < sigma_max and at least 2 levels, got {sigma_min}, {sigma_max}, {num_scales}"
        )
    return torch.logspace(math.log10(sigma_max), math.log10(sigma_min), num_scales, dtype=torch.float64)


def dsm_loss(scores: Tensor, noise: Tensor, sigmas: Tensor) -> Tensor:
    r"""The :math:`\sigma^2`-weighted denoising score matching loss :math:`\frac{1}{2}\|\sigma s + z\|^2`, summed over
    each sample's dimensions and averaged over the batch.

    Args:
        scores: the network's scores :math:`s_\theta(x + \sigma z, \sigma)` ``(B, ...)``.
        noise: the standard normal :math:`z` ``(B, ...)`` that was scaled by :math:`\sigma` and added to the data.
        sigmas: each sample's :math:`\sigma` ``(B,)``.
    """
    sigmas = sigmas.to(scores.dtype).reshape(-1, *([1] * (scores.ndim - 1)))  # (B, 1, ..., 1)
    return 0.5 * (sigmas * scores + noise).square().flatten(1).sum(dim=1).mean()


@torch.no_grad()
def annealed_langevin_dynamics(
    score_fn: ScoreFn,
    x: Tensor,
    sigmas: Tensor,
    steps_per_sigma: int = 100,
    step_lr: float = 2e-5,
    denoise_final: bool = True,
    generator: torch.Generator | None = None,
    callback: Callable[[int, Tensor], None] | None = None,
) -> Tensor:
    r"""Algorithm 1 of Song & Ermon 2019 from the starting point ``x``; see the module's docstring.

    Args:
        score_fn: ``score_fn(x, i)`` is the score :math:`s(x, \sigma_i)` at level index ``i`` (0 for the largest).
        x: the starting samples (uniform noise in the paper).
        sigmas: the levels, decreasing ``(L,)``.
        steps_per_sigma: Langevin steps per level :math:`T` (100 in the paper).
        step_lr: :math:`\epsilon` (2e-5 in the paper, for data in :math:`[0, 1]`).
        denoise_final: end with the denoising step :math:`x + \sigma_L^2 s(x, \sigma_L)`.
        generator: the random source of the Langevin noise.
        callback: called as ``callback(i, x)`` after level ``i``'s steps.

    Returns:
        The samples.
    """
    sigma_min = float(sigmas[-1])
    for index, sigma in enumerate(sigmas.tolist()):
        step = step_lr * (sigma / sigma_min) ** 2  # alpha_i
        for _ in range(steps_per_sigma):
            z = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            x = x + 0.5 * step * score_fn(x, index) + math.sqrt(step) * z
        if callback is not None:
            callback(index, x)
    if denoise_final:
        x = x + sigma_min**2 * score_fn(x, len(sigmas) - 1)
    return x
