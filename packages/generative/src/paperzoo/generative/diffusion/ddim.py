r"""The sampler of Song, Meng & Ermon 2021, "Denoising Diffusion Implicit Models" (ICLR 2021, arXiv 2010.02502).

A model trained as a DDPM defines a family of non-Markovian reverse processes with the same marginals (Eq. 12):

.. math::
    x_{t'} = \sqrt{\bar\alpha_{t'}}\,\hat x_0 + \sqrt{1 - \bar\alpha_{t'} - \sigma_t^2}\;\hat\epsilon + \sigma_t z,
    \qquad \hat x_0 = \frac{x_t - \sqrt{1 - \bar\alpha_t}\,\hat\epsilon}{\sqrt{\bar\alpha_t}}

with (Eq. 16) :math:`\sigma_t = \eta \sqrt{\frac{1 - \bar\alpha_{t'}}{1 - \bar\alpha_t}}
\sqrt{1 - \frac{\bar\alpha_t}{\bar\alpha_{t'}}}`: :math:`\eta = 0` is the deterministic DDIM, :math:`\eta = 1` the
DDPM ancestral step ("fixed small"). :math:`t'` is the next step of a sub-sequence :math:`\tau` of the training steps
(section 4.2), so 50 steps can replace 1000; the last step goes to :math:`\bar\alpha = 1`.

These are diffusers' ``DDIMScheduler`` formulas (``prediction_type="epsilon"``, ``set_alpha_to_one=True``,
``use_clipped_model_output=False``: with ``clip_denoised`` the clipped :math:`\hat x_0` enters the first term and
the model's :math:`\hat\epsilon` the second), proved equal step for step in ``tests/generative/test_diffusion.py``.
One difference: diffusers always steps to :math:`t - \lfloor T / n \rfloor`, which is the next step of the
sub-sequence for the ``"leading"`` spacing (and for ``"trailing"`` when :math:`n` divides :math:`T`) but not in
general for ``"linspace"``; here :math:`t'` is always the next step of the sub-sequence, as in the paper.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from paperzoo.generative.diffusion.ddpm import EpsilonFn, StepCallback, draw_noise, predict_x0
from paperzoo.generative.diffusion.schedules import NoiseSchedule, TimestepSpacing, sampling_timesteps


def ddim_step(
    schedule: NoiseSchedule,
    eps: Tensor,
    t: int,
    x_t: Tensor,
    t_prev: int,
    eta: float = 0.0,
    clip_denoised: bool = False,
    noise: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    r"""One generalised step :math:`x_t \to x_{t'}` (Eq. 12); see the module's docstring.

    Args:
        schedule: the noise schedule.
        eps: the predicted noise :math:`\hat\epsilon(x_t, t)`.
        t: the current 0-based step.
        x_t: the current sample.
        t_prev: the step to go to (< t), -1 for the data.
        eta: :math:`\eta` >= 0; 0 is deterministic.
        clip_denoised: clip :math:`\hat x_0` to :math:`[-1, 1]`.
        noise: the :math:`z` to add; ``None`` draws it from ``generator`` (only when ``eta > 0``).
        generator: the random source for :math:`z`.

    Returns:
        :math:`x_{t'}` and :math:`\hat x_0`.
    """
    alpha_bar, alpha_bar_prev = schedule.alpha_bar(t), schedule.alpha_bar(t_prev)
    x0 = predict_x0(x_t, eps, alpha_bar)
    if clip_denoised:
        x0 = x0.clamp(-1, 1)
    sigma = eta * math.sqrt((1 - alpha_bar_prev) / (1 - alpha_bar) * (1 - alpha_bar / alpha_bar_prev))
    x_prev = math.sqrt(alpha_bar_prev) * x0 + math.sqrt(max(1 - alpha_bar_prev - sigma**2, 0.0)) * eps
    if eta > 0:
        x_prev = x_prev + sigma * draw_noise(x_t, noise, generator)
    return x_prev, x0


@torch.no_grad()
def ddim_sample(
    eps_fn: EpsilonFn,
    schedule: NoiseSchedule,
    x_start: Tensor,
    num_steps: int | None = 50,
    spacing: TimestepSpacing = "leading",
    eta: float = 0.0,
    clip_denoised: bool = False,
    generator: torch.Generator | None = None,
    callback: StepCallback | None = None,
) -> Tensor:
    r"""DDIM sampling from :math:`x_T` over a sub-sequence of ``num_steps`` steps.

    Args:
        eps_fn: maps a sample ``(B, ...)`` and its steps ``(B,)`` (int64) to the predicted noise.
        schedule: the noise schedule.
        x_start: the starting noise :math:`x_T`.
        num_steps: length of the sub-sequence (``None``: all :math:`T` steps).
        spacing: how it is spread (see ``sampling_timesteps``).
        eta: see :func:`ddim_step`.
        clip_denoised: see :func:`ddim_step`.
        generator: the random source of the step noise (used only when ``eta > 0``).
        callback: called as ``callback(t_prev, x_prev)`` after each step.

    Returns:
        :math:`x_0`.
    """
    timesteps = sampling_timesteps(schedule.num_timesteps, num_steps, spacing)
    x = x_start
    for index, t in enumerate(timesteps):
        t_prev = timesteps[index + 1] if index + 1 < len(timesteps) else -1
        eps = eps_fn(x, torch.full((x.shape[0],), t, dtype=torch.long, device=x.device))
        x, _ = ddim_step(schedule, eps, t, x, t_prev, eta, clip_denoised, generator=generator)
        if callback is not None:
            callback(t_prev, x)
    return x
