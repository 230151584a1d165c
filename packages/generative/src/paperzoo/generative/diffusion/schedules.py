r"""Noise schedules of Gaussian diffusion: the variances :math:`\beta_t` of the forward process and their products.

- Ho, Jain & Abbeel 2020, "Denoising Diffusion Probabilistic Models" (arXiv 2006.11239), section 4: :math:`\beta_t`
  rising linearly from :math:`10^{-4}` to :math:`0.02` over :math:`T = 1000` steps (:func:`linear_betas`).
- Nichol & Dhariwal 2021, "Improved Denoising Diffusion Probabilistic Models" (ICML 2021, arXiv 2102.09672), Eq. 17:
  the cosine schedule :math:`\bar\alpha_t = f(t) / f(0)`, :math:`f(t) = \cos^2\big(\frac{t/T + s}{1 + s}
  \frac{\pi}{2}\big)`, :math:`s = 0.008`, with :math:`\beta_t = 1 - \bar\alpha_t / \bar\alpha_{t-1}` clipped to at most
  0.999 (:func:`cosine_betas`; diffusers calls it ``squaredcos_cap_v2``).

Everything is computed in float64. :class:`NoiseSchedule` holds :math:`\beta_t`, :math:`\alpha_t = 1 - \beta_t` and
:math:`\bar\alpha_t = \prod_{s \le t} \alpha_s` (0-based: index ``t`` is the paper's step :math:`t + 1`, diffusers'
convention) as float64 buffers that follow the module's device, plus a Python copy of :math:`\bar\alpha_t` for the
per-step coefficients of the samplers, so that a sampling step reads no device memory.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from paperzoo.core.errors import ConfigError

BetaSchedule = Literal["linear", "cosine"]


def linear_betas(num_timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> Tensor:
    r""":math:`\beta_t` evenly spaced from ``beta_start`` to ``beta_end`` (both included), float64 ``(T,)``."""
    return torch.linspace(beta_start, beta_end, num_timesteps, dtype=torch.float64)


def cosine_betas(num_timesteps: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> Tensor:
    r"""Nichol & Dhariwal's cosine schedule: :math:`\beta_t = \min(1 - \bar\alpha(\frac{t+1}{T}) /
    \bar\alpha(\frac{t}{T}), \beta_{max})` with :math:`\bar\alpha(u) = \cos^2(\frac{u + s}{1 + s}\frac{\pi}{2})`,
    float64 ``(T,)``."""
    u = torch.arange(num_timesteps + 1, dtype=torch.float64) / num_timesteps
    alpha_bar = torch.cos((u + s) / (1 + s) * math.pi / 2) ** 2  # (T + 1,)
    return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=max_beta)


class NoiseSchedule(nn.Module):
    r"""The variances :math:`\beta_t` of a diffusion's forward process :math:`q(x_t | x_{t-1}) =
    \mathcal{N}(\sqrt{1 - \beta_t}\,x_{t-1}, \beta_t I)`, and the quantities its samplers need.

    Build it from a named schedule (``NoiseSchedule("cosine")``) or from given betas
    (:meth:`from_betas`). Indices are 0-based: ``alphas_cumprod[t]`` is :math:`\bar\alpha_{t+1}` in the paper's
    1-based notation, and :meth:`alpha_bar` of ``-1`` is 1 (no noise).

    Args:
        kind: ``"linear"`` (Ho et al. 2020) or ``"cosine"`` (Nichol & Dhariwal 2021).
        num_timesteps: :math:`T` (1000 in both papers).
        beta_start: first :math:`\beta` of the linear schedule.
        beta_end: last :math:`\beta` of the linear schedule.
        cosine_s: the offset :math:`s` of the cosine schedule.
        max_beta: the cosine schedule's cap on :math:`\beta_t`.
    """

    betas: Tensor
    alphas: Tensor
    alphas_cumprod: Tensor

    def __init__(
        self,
        kind: BetaSchedule = "linear",
        num_timesteps: int = 1000,
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
        cosine_s: float = 0.008,
        max_beta: float = 0.999,
    ) -> None:
        super().__init__()
        if num_timesteps < 1:
            raise ConfigError(f"num_timesteps must be >= 1, got {num_timesteps}")
        if kind == "linear":
            betas = linear_betas(num_timesteps, beta_start, beta_end)
        elif kind == "cosine":
            betas = cosine_betas(num_timesteps, cosine_s, max_beta)
        else:
            raise ConfigError(f"unknown beta schedule {kind!r}; choose 'linear' or 'cosine'")
        self.kind = kind
        self._set_betas(betas)

    @classmethod
    def from_betas(cls, betas: Tensor) -> NoiseSchedule:
        """A schedule with the given ``(T,)`` betas (converted to float64)."""
        schedule = cls(num_timesteps=1)
        schedule.kind = "custom"
        schedule._set_betas(torch.as_tensor(betas, dtype=torch.float64).cpu())
        return schedule

    def _set_betas(self, betas: Tensor) -> None:
        if betas.ndim != 1 or not bool(((betas > 0) & (betas < 1)).all()):
            raise ConfigError("betas must be a 1-D tensor of values in (0, 1)")
        alphas = 1 - betas
        # Derived from the arguments, so not saved in checkpoints (persistent=False).
        self.register_buffer("betas", betas, persistent=False)
        self.register_buffer("alphas", alphas, persistent=False)
        self.register_buffer("alphas_cumprod", torch.cumprod(alphas, dim=0), persistent=False)
        self._alpha_bar = self.alphas_cumprod.tolist()

    @property
    def num_timesteps(self) -> int:
        return len(self._alpha_bar)

    def alpha_bar(self, t: int) -> float:
        r""":math:`\bar\alpha` at 0-based step ``t`` as a Python float; 1 for ``t < 0`` (the clean data)."""
        return 1.0 if t < 0 else self._alpha_bar[t]

    def gather(self, values: Tensor, t: Tensor, like: Tensor) -> Tensor:
        """``values[t]`` in ``like``'s dtype and device, shaped ``(B, 1, ..., 1)`` to broadcast over ``like``."""
        out = values.to(like.device)[t.to(like.device)].to(like.dtype)  # (B,)
        return out.reshape(-1, *([1] * (like.ndim - 1)))  # (B, 1, ..., 1)

    def extra_repr(self) -> str:
        return f"{self.kind!r}, num_timesteps={self.num_timesteps}"


TimestepSpacing = Literal["leading", "trailing", "linspace"]


def sampling_timesteps(
    num_timesteps: int, num_steps: int | None = None, spacing: TimestepSpacing = "leading", steps_offset: int = 0
) -> list[int]:
    r"""The decreasing 0-based steps a sampler visits when it takes ``num_steps`` of the ``num_timesteps`` steps
    (the sub-sequence :math:`\tau` of Song et al. 2021, "Denoising Diffusion Implicit Models", section 4.2).

    Spacings (Lin et al. 2024, "Common Diffusion Noise Schedules and Sample Steps are Flawed", table 2), the same as
    diffusers' ``timestep_spacing``:

    - ``"leading"``: :math:`0, k, 2k, \dots` with :math:`k = \lfloor T / n \rfloor`, plus ``steps_offset``: the
      DDIM paper's uniform sub-sequence (``range(0, T, k)`` in its code); the last step reaches :math:`x_0` from
      step 0.
    - ``"trailing"``: :math:`\mathrm{round}(T, T - T/n, \dots) - 1`: starts at the last step :math:`T - 1`.
    - ``"linspace"``: ``round(linspace(0, T - 1, n))``.

    ``num_steps=None`` is every step, ``T - 1`` down to 0.
    """
    if num_steps is None:
        return list(range(num_timesteps - 1, -1, -1))
    if not 1 <= num_steps <= num_timesteps:
        raise ConfigError(f"the number of sampling steps must lie in [1, {num_timesteps}], got {num_steps}")
    if spacing == "leading":
        ratio = num_timesteps // num_steps
        steps = [i * ratio + steps_offset for i in range(num_steps)]
    elif spacing == "trailing":
        # numpy's rounding, as diffusers computes it; for some n the float arange has n + 1 values (the last one
        # rounding to step -1), of which diffusers keeps all, and this the first n
        descending = np.round(np.arange(num_timesteps, 0, -num_timesteps / num_steps)[:num_steps]) - 1
        steps = descending.astype(np.int64).tolist()[::-1]
    elif spacing == "linspace":
        steps = np.linspace(0, num_timesteps - 1, num_steps).round().astype(np.int64).tolist()
    else:
        raise ConfigError(f"unknown timestep spacing {spacing!r}; choose 'leading', 'trailing' or 'linspace'")
    return steps[::-1]
