r"""The forward process and the ancestral sampler of Ho, Jain & Abbeel 2020, "Denoising Diffusion Probabilistic
Models" (arXiv 2006.11239).

Forward (Eq. 4): :math:`q(x_t | x_0) = \mathcal{N}(\sqrt{\bar\alpha_t}\,x_0, (1 - \bar\alpha_t) I)`, so
:math:`x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1 - \bar\alpha_t}\,\epsilon` (:func:`q_sample`), and the network
predicts :math:`\epsilon`.

Reverse (Eq. 6-7, Algorithm 2): from the prediction :math:`\hat x_0 = (x_t - \sqrt{1 - \bar\alpha_t}\,\hat\epsilon) /
\sqrt{\bar\alpha_t}` (optionally clipped to :math:`[-1, 1]`, as the paper's code does), step to

.. math::
    x_{t'} = \frac{\sqrt{\bar\alpha_{t'}}\,\beta}{1 - \bar\alpha_t}\,\hat x_0
        + \frac{\sqrt{\alpha}\,(1 - \bar\alpha_{t'})}{1 - \bar\alpha_t}\,x_t + \sigma z, \qquad
    \alpha = \bar\alpha_t / \bar\alpha_{t'}, \quad \beta = 1 - \alpha

the mean of the posterior :math:`q(x_{t'} | x_t, \hat x_0)`, with :math:`\sigma^2 = \tilde\beta =
\frac{1 - \bar\alpha_{t'}}{1 - \bar\alpha_t}\beta` ("fixed small", the posterior variance) or :math:`\sigma^2 =
\beta` ("fixed large"), the two choices of section 3.2; :math:`t' = t - 1` in the paper, or the next step of a
shorter sub-sequence (:func:`~paperzoo.generative.diffusion.schedules.sampling_timesteps`), for which :math:`\beta`
is the respaced one. No noise is added on the last step, to :math:`x_0`.

Indices are 0-based as in :mod:`~paperzoo.generative.diffusion.schedules`; these are diffusers' ``DDPMScheduler``
formulas (``prediction_type="epsilon"``), proved equal step for step in ``tests/generative/test_diffusion.py``. One
difference: diffusers adds noise on every step from :math:`t > 0`, also on a last step that goes from :math:`t > 0`
straight to :math:`x_0` (with the ``"trailing"`` spacing); here the step to :math:`x_0` never adds noise, as
Algorithm 2's :math:`z = 0` at :math:`t = 1`. With every step, or the ``"leading"`` spacing, the two agree.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor

from paperzoo.core.errors import ConfigError
from paperzoo.generative.diffusion.schedules import NoiseSchedule, TimestepSpacing, sampling_timesteps

Variance = Literal["fixed_small", "fixed_large"]
EpsilonFn = Callable[[Tensor, Tensor], Tensor]
StepCallback = Callable[[int, Tensor], None]


def q_sample(schedule: NoiseSchedule, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
    r""":math:`x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1 - \bar\alpha_t}\,\epsilon`, a sample of :math:`q(x_t | x_0)`.

    Args:
        schedule: the noise schedule.
        x0: clean data ``(B, ...)``.
        t: 0-based steps ``(B,)``.
        noise: :math:`\epsilon`, shaped like ``x0``.
    """
    alpha_bar = schedule.gather(schedule.alphas_cumprod, t, x0)  # (B, 1, ..., 1)
    return alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * noise


def predict_x0(x_t: Tensor, eps: Tensor, alpha_bar: float) -> Tensor:
    r""":math:`\hat x_0 = (x_t - \sqrt{1 - \bar\alpha_t}\,\hat\epsilon) / \sqrt{\bar\alpha_t}`, inverting
    :func:`q_sample` with the predicted noise."""
    return (x_t - math.sqrt(1 - alpha_bar) * eps) / math.sqrt(alpha_bar)


def draw_noise(x: Tensor, noise: Tensor | None, generator: torch.Generator | None) -> Tensor:
    """``noise`` if given, else a standard normal draw shaped like ``x`` (its dtype and device) from ``generator``."""
    if noise is not None:
        return noise
    return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def ddpm_step(
    schedule: NoiseSchedule,
    eps: Tensor,
    t: int,
    x_t: Tensor,
    t_prev: int | None = None,
    variance: Variance = "fixed_small",
    clip_denoised: bool = True,
    noise: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    r"""One ancestral step :math:`x_t \to x_{t'}` (Algorithm 2's loop body); see the module's docstring.

    Args:
        schedule: the noise schedule.
        eps: the predicted noise :math:`\hat\epsilon(x_t, t)`, shaped like ``x_t``.
        t: the current 0-based step.
        x_t: the current sample.
        t_prev: the step to go to (< t); ``None`` for ``t - 1``, -1 for the data.
        variance: ``"fixed_small"`` (:math:`\tilde\beta`) or ``"fixed_large"`` (:math:`\beta`).
        clip_denoised: clip :math:`\hat x_0` to :math:`[-1, 1]` before forming the posterior mean.
        noise: the :math:`z` to add; ``None`` draws it from ``generator`` (only when ``t_prev >= 0``).
        generator: the random source for :math:`z`.

    Returns:
        :math:`x_{t'}` and :math:`\hat x_0`.
    """
    t_prev = t - 1 if t_prev is None else t_prev
    alpha_bar, alpha_bar_prev = schedule.alpha_bar(t), schedule.alpha_bar(t_prev)
    alpha = alpha_bar / alpha_bar_prev
    beta = 1 - alpha
    x0 = predict_x0(x_t, eps, alpha_bar)
    if clip_denoised:
        x0 = x0.clamp(-1, 1)
    x0_coefficient = math.sqrt(alpha_bar_prev) * beta / (1 - alpha_bar)
    x_t_coefficient = math.sqrt(alpha) * (1 - alpha_bar_prev) / (1 - alpha_bar)
    x_prev = x0_coefficient * x0 + x_t_coefficient * x_t
    if t_prev >= 0:
        if variance == "fixed_small":
            sigma2 = (1 - alpha_bar_prev) / (1 - alpha_bar) * beta
        elif variance == "fixed_large":
            sigma2 = beta
        else:
            raise ConfigError(f"unknown DDPM variance {variance!r}; choose 'fixed_small' or 'fixed_large'")
        x_prev = x_prev + math.sqrt(sigma2) * draw_noise(x_t, noise, generator)
    return x_prev, x0


@torch.no_grad()
def ddpm_sample(
    eps_fn: EpsilonFn,
    schedule: NoiseSchedule,
    x_start: Tensor,
    num_steps: int | None = None,
    spacing: TimestepSpacing = "leading",
    variance: Variance = "fixed_small",
    clip_denoised: bool = True,
    generator: torch.Generator | None = None,
    callback: StepCallback | None = None,
) -> Tensor:
    r"""Ancestral sampling (Algorithm 2) from :math:`x_T`, over every step or a sub-sequence of ``num_steps``.

    Args:
        eps_fn: maps a sample ``(B, ...)`` and its steps ``(B,)`` (int64) to the predicted noise.
        schedule: the noise schedule.
        x_start: the starting noise :math:`x_T \sim \mathcal{N}(0, I)`.
        num_steps: how many steps to take (``None``: all :math:`T`).
        spacing: how a shorter sub-sequence is spread (see ``sampling_timesteps``).
        variance: see :func:`ddpm_step`.
        clip_denoised: see :func:`ddpm_step`.
        generator: the random source of the step noise.
        callback: called as ``callback(t_prev, x_prev)`` after each step (``t_prev`` is -1 for the data).

    Returns:
        :math:`x_0`.
    """
    timesteps = sampling_timesteps(schedule.num_timesteps, num_steps, spacing)
    x = x_start
    for index, t in enumerate(timesteps):
        t_prev = timesteps[index + 1] if index + 1 < len(timesteps) else -1
        eps = eps_fn(x, torch.full((x.shape[0],), t, dtype=torch.long, device=x.device))
        x, _ = ddpm_step(schedule, eps, t, x, t_prev, variance, clip_denoised, generator=generator)
        if callback is not None:
            callback(t_prev, x)
    return x
