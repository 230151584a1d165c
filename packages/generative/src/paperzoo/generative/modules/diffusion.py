r"""Diffusion and score-based generative models: a denoising network injected by ``class_path``, trained to remove
Gaussian noise, sampled by running a reverse process from noise.

- :class:`DiffusionModule`: Ho, Jain & Abbeel 2020, "Denoising Diffusion Probabilistic Models" (arXiv 2006.11239),
  sampled by its ancestral sampler or by DDIM (Song, Meng & Ermon 2021, arXiv 2010.02502), optionally
  class-conditional with classifier-free guidance (Ho & Salimans 2021, arXiv 2207.12598).
- :class:`ScoreModule`: Song & Ermon 2019, "Generative Modeling by Estimating Gradients of the Data Distribution"
  (arXiv 1907.05600): denoising score matching over geometric noise levels, annealed Langevin dynamics.

Both keep an exponential moving average of the network's weights (Polyak averaging; decay 0.9999 in Ho et al.),
which they sample from and validate; it is part of the module (``ema_network``), so it is saved in checkpoints and
needs no callback. Do not add :class:`paperzoo.core.callbacks.EMA` as well: it would average the average.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from paperzoo.core.errors import ConfigError
from paperzoo.generative.diffusion.ddim import ddim_sample
from paperzoo.generative.diffusion.ddpm import Variance, ddpm_sample, q_sample
from paperzoo.generative.diffusion.guidance import drop_labels, guided_epsilon
from paperzoo.generative.diffusion.schedules import BetaSchedule, NoiseSchedule, TimestepSpacing, sampling_timesteps
from paperzoo.generative.diffusion.score import annealed_langevin_dynamics, dsm_loss, geometric_sigmas
from paperzoo.generative.modules.base import GenerativeModule


def _adam_ddpm(params) -> torch.optim.Optimizer:
    """Ho et al. 2020's optimiser: Adam, learning rate 2e-4 (CIFAR-10)."""
    return torch.optim.Adam(params, lr=2e-4)


def _adam_ncsn(params) -> torch.optim.Optimizer:
    """Song & Ermon 2019's optimiser: Adam, learning rate 1e-3."""
    return torch.optim.Adam(params, lr=1e-3)


@contextmanager
def _evaluating(network: nn.Module) -> Iterator[nn.Module]:
    """``network`` in eval mode (no dropout) for the duration, then back in the mode it was in."""
    was_training = network.training
    network.eval()
    try:
        yield network
    finally:
        network.train(was_training)


def _evenly_spaced(items: list, count: int) -> list:
    """``count`` items spread evenly over ``items``, the last one included."""
    if count >= len(items):
        return list(items)
    if count <= 1:
        return items[-1:]
    return [items[round(i * (len(items) - 1) / (count - 1))] for i in range(count)]


class _AveragedDenoiser(GenerativeModule):
    """The network, its exponential moving average, the image shape and fixed-seed validation noise.

    Args:
        network: the denoiser; it must expose ``in_channels`` and ``image_size``.
        ema_decay: decay of the weights' moving average; ``None`` samples from the trained weights.
        ema_warmup: use decay ``min(ema_decay, (1 + n) / (10 + n))`` at update n (TensorFlow's
            ``ExponentialMovingAverage`` with ``num_updates``), so a short run's average is not its initialisation.
        val_seed: seed of the validation noise: batch ``i`` always gets the draws of seed ``val_seed + i``.
        sample_with_ema: sample and validate with the moving average (when there is one); false uses the trained
            weights, which the average is still kept alongside.
    """

    def __init__(
        self,
        network: nn.Module,
        ema_decay: float | None,
        ema_warmup: bool,
        val_seed: int,
        optimizer: OptimizerCallable,
        lr_scheduler: LRSchedulerCallable | None,
        scheduler_interval: Literal["step", "epoch"],
        sample_with_ema: bool = True,
    ) -> None:
        super().__init__(optimizer=optimizer, lr_scheduler=lr_scheduler, scheduler_interval=scheduler_interval)
        if not hasattr(network, "in_channels") or not hasattr(network, "image_size"):
            raise ConfigError(f"{type(network).__name__} must expose in_channels and image_size to be sampled from")
        if ema_decay is not None and not 0.0 <= ema_decay < 1.0:
            raise ConfigError(f"ema_decay must lie in [0, 1) or be null, got {ema_decay}")
        self.network = network
        self.image_shape = (int(network.in_channels), int(network.image_size), int(network.image_size))
        self.ema_decay = ema_decay
        self.ema_warmup = ema_warmup
        self.val_seed = val_seed
        self.sample_with_ema = sample_with_ema
        self.ema_network: nn.Module | None = None
        if ema_decay is not None:
            self.ema_network = copy.deepcopy(network).requires_grad_(False)
        self._ema_step = 0

    @property
    def sampling_network(self) -> nn.Module:
        """The weights that sample and validate: the moving average if there is one and ``sample_with_ema``."""
        return self.ema_network if self.ema_network is not None and self.sample_with_ema else self.network

    def on_train_start(self) -> None:
        self._ema_step = self.trainer.global_step

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        # Once per optimiser step (global_step counts them), also under gradient accumulation.
        step = self.trainer.global_step
        if self.ema_network is None or step == self._ema_step:
            return
        self._ema_step = step
        decay = self.ema_decay
        if self.ema_warmup:
            decay = min(decay, (1 + step) / (10 + step))
        self.update_ema(decay)

    @torch.no_grad()
    def update_ema(self, decay: float) -> None:
        """``ema <- decay * ema + (1 - decay) * weights`` for every parameter; buffers are copied."""
        ema_params = list(self.ema_network.parameters())
        params = [p.detach() for p in self.network.parameters()]
        torch._foreach_lerp_(ema_params, params, 1.0 - decay)
        for ema_buffer, buffer in zip(self.ema_network.buffers(), self.network.buffers(), strict=True):
            ema_buffer.copy_(buffer)

    def _validation_generator(self, batch_idx: int) -> torch.Generator:
        return torch.Generator().manual_seed(self.val_seed + batch_idx)

    def _draw(self, shape: tuple[int, ...], generator: torch.Generator | None, uniform: bool = False) -> Tensor:
        draw = torch.rand if uniform else torch.randn
        return draw(shape, generator=generator, device=self.device)


class DiffusionModule(_AveragedDenoiser):
    r"""A denoising diffusion probabilistic model (Ho, Jain & Abbeel 2020).

    Training (Algorithm 1): draw :math:`t` uniformly from the :math:`T` steps and :math:`\epsilon \sim
    \mathcal{N}(0, I)`, noise the batch to :math:`x_t = \sqrt{\bar\alpha_t}x_0 + \sqrt{1 - \bar\alpha_t}\epsilon`,
    and regress the network's prediction on :math:`\epsilon` (:math:`L_{simple}`, the mean squared error). A
    class-conditional network (one with ``num_classes``) is trained with each label replaced by its null label with
    probability ``p_uncond``, and sampled with classifier-free guidance of strength ``guidance_scale``.

    Sampling starts from :math:`x_T \sim \mathcal{N}(0, I)` and runs the ancestral sampler (``sampler="ddpm"``,
    Algorithm 2) or DDIM (``"ddim"``, with ``eta``) over all steps or ``sample_steps`` of them, with the moving
    average of the weights. Logged: ``train/loss``, and ``val/loss``, the same loss of the averaged weights at
    the same steps and noise in every validation (seeded per batch, so the curve is smooth and a good checkpoint
    monitor), plus ``val/loss_online`` for the trained weights when they differ.

    Args:
        network: the noise predictor ``network(x_t, t)`` or, class-conditional, ``network(x_t, t, labels)``, e.g.
            :class:`~paperzoo.generative.models.unet.DDPMUNet`; it must expose ``in_channels`` and ``image_size``,
            and a class-conditional one ``num_classes`` and ``null_label``.
        num_timesteps: :math:`T` (1000 in the paper).
        beta_schedule: ``"linear"`` (the paper's) or ``"cosine"`` (Nichol & Dhariwal 2021).
        beta_start: :math:`\beta_1` of the linear schedule (1e-4).
        beta_end: :math:`\beta_T` of the linear schedule (0.02).
        sampler: ``"ddpm"`` (ancestral) or ``"ddim"``.
        sample_steps: steps taken when sampling; ``None`` for all :math:`T` (DDIM is usually run with 50-100).
        timestep_spacing: how a shorter sequence of steps is spread (``"leading"`` is DDIM's uniform spacing).
        eta: DDIM's :math:`\eta` (0: deterministic; 1: ancestral with the posterior variance).
        variance: the ancestral sampler's variance, ``"fixed_small"`` (:math:`\tilde\beta_t`) or ``"fixed_large"``
            (:math:`\beta_t`); the paper found both give similar samples.
        clip_denoised: clip the predicted :math:`x_0` to :math:`[-1, 1]` at every step (the paper's code does).
        guidance_scale: classifier-free guidance strength :math:`w` in Ho & Salimans' notation,
            :math:`(1 + w)\epsilon_c - w\epsilon_u` (diffusers' ``guidance_scale`` is :math:`1 + w`); 0 is the plain
            conditional model. Only for a class-conditional network.
        p_uncond: probability of training on the null label (0.1 or 0.2 in Ho & Salimans).
        ema_decay: decay of the weights' moving average (0.9999 in the paper); ``None`` for none.
        ema_warmup: average with decay ``min(ema_decay, (1 + n) / (10 + n))`` at update n (TensorFlow's
            ``ExponentialMovingAverage`` with ``num_updates``), so a short run's average is not its initialisation;
            off in the paper.
        sample_with_ema: sample and validate with the moving average; false uses the trained weights (for example to
            test a run too short for a 0.999 average to have left its initialisation).
        val_seed: seed of the validation steps and noise.
        trajectory_frames: how many intermediate :math:`x_t` the preview's trajectory shows.
        optimizer: see :class:`~paperzoo.core.modules.PaperzooModule`; default Adam(lr=2e-4), the paper's.
        lr_scheduler: see :class:`~paperzoo.core.modules.PaperzooModule` (the paper warms the LR up linearly over
            5000 steps).
        scheduler_interval: see :class:`~paperzoo.core.modules.PaperzooModule`.
    """

    def __init__(
        self,
        network: nn.Module,
        num_timesteps: int = 1000,
        beta_schedule: BetaSchedule = "linear",
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
        sampler: Literal["ddpm", "ddim"] = "ddpm",
        sample_steps: int | None = None,
        timestep_spacing: TimestepSpacing = "leading",
        eta: float = 0.0,
        variance: Variance = "fixed_small",
        clip_denoised: bool = True,
        guidance_scale: float = 0.0,
        p_uncond: float = 0.1,
        ema_decay: float | None = 0.9999,
        ema_warmup: bool = False,
        sample_with_ema: bool = True,
        val_seed: int = 0,
        trajectory_frames: int = 8,
        optimizer: OptimizerCallable = _adam_ddpm,
        lr_scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: Literal["step", "epoch"] = "step",
    ) -> None:
        super().__init__(
            network, ema_decay, ema_warmup, val_seed, optimizer, lr_scheduler, scheduler_interval, sample_with_ema
        )
        self.save_hyperparameters(ignore=["network", "optimizer", "lr_scheduler"])
        if sampler not in ("ddpm", "ddim"):
            raise ConfigError(f"unknown sampler {sampler!r}; choose 'ddpm' or 'ddim'")
        if variance not in ("fixed_small", "fixed_large"):
            raise ConfigError(f"unknown variance {variance!r}; choose 'fixed_small' or 'fixed_large'")
        if eta < 0 or guidance_scale < 0 or not 0 <= p_uncond < 1:
            raise ConfigError(
                f"eta={eta} and guidance_scale={guidance_scale} must be >= 0 and p_uncond={p_uncond} in [0, 1)"
            )
        self.num_classes: int | None = getattr(network, "num_classes", None)
        if guidance_scale > 0 and self.num_classes is None:
            raise ConfigError(
                "guidance_scale > 0 needs a class-conditional network; give the network num_classes or set "
                "guidance_scale to 0"
            )
        self.schedule = NoiseSchedule(beta_schedule, num_timesteps, beta_start, beta_end)
        self.sampler = sampler
        self.sample_steps = sample_steps
        self.timestep_spacing = timestep_spacing
        self.eta = eta
        self.variance = variance
        self.clip_denoised = clip_denoised
        self.guidance_scale = guidance_scale
        self.p_uncond = p_uncond
        self.trajectory_frames = trajectory_frames
        sampling_timesteps(num_timesteps, sample_steps, timestep_spacing)  # a bad sample_steps fails here, not later

    @property
    def conditional(self) -> bool:
        return self.num_classes is not None

    def setup(self, stage: str) -> None:
        data_classes = getattr(getattr(self.trainer, "datamodule", None), "num_classes", None)
        if self.conditional and data_classes is not None and data_classes != self.num_classes:
            raise ConfigError(
                f"the network is conditioned on {self.num_classes} classes but the data has {data_classes}; set "
                f"model.init_args.network.init_args.num_classes to {data_classes}"
            )

    def forward(self, x_t: Tensor, t: Tensor, labels: Tensor | None = None) -> Tensor:
        """The trained network's noise prediction."""
        return self.network(x_t, t, labels) if self.conditional else self.network(x_t, t)

    def _loss(self, network: nn.Module, x0: Tensor, labels: Tensor | None, t: Tensor, noise: Tensor) -> Tensor:
        x_t = q_sample(self.schedule, x0, t, noise)
        eps = network(x_t, t, labels) if self.conditional else network(x_t, t)
        return F.mse_loss(eps, noise)

    def training_step(self, batch, batch_idx: int) -> Tensor:
        x0, labels = batch[0], batch[1] if len(batch) > 1 else None
        t = torch.randint(0, self.schedule.num_timesteps, (x0.shape[0],), device=x0.device)
        noise = torch.randn_like(x0)
        if self.conditional:
            labels = drop_labels(labels, self.p_uncond, self.network.null_label)
        loss = self._loss(self.network, x0, labels, t, noise)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        x0, labels = batch[0], batch[1] if len(batch) > 1 else None
        generator = self._validation_generator(batch_idx)
        t = torch.randint(0, self.schedule.num_timesteps, (x0.shape[0],), generator=generator).to(x0.device)
        noise = torch.randn(x0.shape, generator=generator).to(device=x0.device, dtype=x0.dtype)
        labels = labels if self.conditional else None
        loss = self._loss(self.sampling_network, x0, labels, t, noise)
        self.log("val/loss", loss, on_epoch=True, prog_bar=True, sync_dist=True)
        if self.ema_network is not None:  # the same loss when sampling with the trained weights: not computed twice
            online = loss if self.sampling_network is self.network else self._loss(self.network, x0, labels, t, noise)
            self.log("val/loss_online", online, on_epoch=True, sync_dist=True)

    def _timesteps(self) -> list[int]:
        return sampling_timesteps(self.schedule.num_timesteps, self.sample_steps, self.timestep_spacing)

    @torch.no_grad()
    def _run_sampler(
        self, x_start: Tensor, labels: Tensor | None, generator: torch.Generator | None, callback=None
    ) -> Tensor:
        with _evaluating(self.sampling_network) as network:
            if self.conditional:
                null = self.network.null_label

                def eps_fn(x: Tensor, t: Tensor) -> Tensor:
                    return guided_epsilon(network, x, t, labels, self.guidance_scale, null)
            else:

                def eps_fn(x: Tensor, t: Tensor) -> Tensor:
                    return network(x, t)

            common = dict(
                num_steps=self.sample_steps,
                spacing=self.timestep_spacing,
                clip_denoised=self.clip_denoised,
                generator=generator,
                callback=callback,
            )
            if self.sampler == "ddpm":
                x0 = ddpm_sample(eps_fn, self.schedule, x_start, variance=self.variance, **common)
            else:
                x0 = ddim_sample(eps_fn, self.schedule, x_start, eta=self.eta, **common)
        return x0.clamp(-1, 1)

    def _labels_for(self, num_samples: int, labels: Tensor | None, generator: torch.Generator | None) -> Tensor | None:
        if not self.conditional:
            return None
        if labels is None:
            return torch.randint(0, self.num_classes, (num_samples,), generator=generator, device=self.device)
        if labels.shape != (num_samples,):
            raise ValueError(f"labels must have shape ({num_samples},), got {tuple(labels.shape)}")
        return labels.to(self.device)

    @torch.no_grad()
    def sample(
        self, num_samples: int, generator: torch.Generator | None = None, labels: Tensor | None = None
    ) -> Tensor:
        """Draw ``num_samples`` images with the configured sampler, in ``[-1, 1]``; ``labels`` (class-conditional
        network only) default to uniformly drawn classes."""
        x_start = self._draw((num_samples, *self.image_shape), generator)
        labels = self._labels_for(num_samples, labels, generator)
        return self._run_sampler(x_start, labels, generator)

    @torch.no_grad()
    def preview(
        self, num_samples: int, generator: torch.Generator | None = None
    ) -> dict[str, Tensor | tuple[Tensor, int]]:
        """``samples``; ``trajectory``, one row: the first sample's :math:`x_T`, ``trajectory_frames`` evenly spaced
        intermediate :math:`x_t` and :math:`x_0` (clipped to ``[-1, 1]``); for a class-conditional network also
        ``classes``: one row of ``max(1, num_samples // shown)`` guided samples for each of the first ``shown =
        min(num_classes, 10)`` classes."""
        x_start = self._draw((num_samples, *self.image_shape), generator)
        labels = self._labels_for(num_samples, None, generator)
        visited = [*self._timesteps()[1:], -1]
        keep = set(_evenly_spaced(visited, self.trajectory_frames + 1)[:-1])
        frames = [x_start[:1]]

        def record(t_prev: int, x: Tensor) -> None:
            if t_prev in keep:
                frames.append(x[:1].clamp(-1, 1))

        samples = self._run_sampler(x_start, labels, generator, record)
        trajectory = torch.cat([*frames, samples[:1]]).clamp(-1, 1)
        previews: dict[str, Tensor | tuple[Tensor, int]] = {
            "samples": samples,
            "trajectory": (trajectory, len(trajectory)),
        }
        if self.conditional:
            shown = min(self.num_classes, 10)
            per_class = max(1, num_samples // shown)
            classes = torch.arange(shown, device=self.device).repeat_interleave(per_class)
            previews["classes"] = (self.sample(len(classes), generator, classes), per_class)
        return previews


class ScoreModule(_AveragedDenoiser):
    r"""A noise-conditional score network (Song & Ermon 2019), trained by :math:`\sigma^2`-weighted denoising score
    matching and sampled by annealed Langevin dynamics (see :mod:`paperzoo.generative.diffusion.score`).

    Each training image gets a noise level :math:`\sigma_i` drawn uniformly from the geometric sequence; the network
    sees :math:`\tilde x = x + \sigma_i z` and its noise level as the "time" input
    :math:`c(\sigma) = 999 \frac{\log(\sigma / \sigma_L)}{\log(\sigma_1 / \sigma_L)}` (an affine function of
    :math:`\log\sigma` onto the range of a DDPM UNet's time steps, where its sinusoidal embedding resolves it).
    With ``scale_by_sigma`` the score is the network's output divided by :math:`\sigma` (Song & Ermon 2020,
    "Improved Techniques for Training Score-Based Generative Models", technique 3), so the network predicts
    :math:`-z`-sized outputs at every level and the weighted loss is :math:`\frac{1}{2}\|f_\theta + z\|^2`.

    The paper's data lie in :math:`[0, 1]` with :math:`\sigma` from 1 to 0.01 and :math:`\epsilon = 2\times10^{-5}`;
    ours lie in :math:`[-1, 1]`, twice as spread, so the defaults are the same problem rescaled: :math:`\sigma` from
    2 to 0.02 and :math:`\epsilon = 8\times10^{-5}` (step sizes scale as variances). Sampling starts from uniform
    noise in :math:`[-1, 1]`, as the paper's from uniform noise in its data range.

    Logged: ``train/loss`` and ``val/loss`` (the weighted loss at seeded levels and noise; the averaged weights),
    ``val/loss_online`` for the trained weights when averaging.

    Args:
        network: the score network ``network(x, c)``, e.g. :class:`~paperzoo.generative.models.unet.DDPMUNet`;
            it must expose ``in_channels`` and ``image_size``.
        sigma_max: the largest noise level :math:`\sigma_1`.
        sigma_min: the smallest :math:`\sigma_L`.
        num_scales: the number of levels :math:`L` (10 in the paper).
        steps_per_sigma: Langevin steps per level :math:`T` (100 in the paper).
        step_lr: the Langevin step constant :math:`\epsilon`.
        denoise_final: end sampling with the denoising step :math:`x + \sigma_L^2 s(x, \sigma_L)`.
        scale_by_sigma: divide the network's output by :math:`\sigma`.
        ema_decay: decay of the weights' moving average; ``None`` (the 2019 paper's choice) for none.
        ema_warmup: average with decay ``min(ema_decay, (1 + n) / (10 + n))`` at update n.
        sample_with_ema: sample and validate with the moving average; false uses the trained weights.
        val_seed: seed of the validation levels and noise.
        optimizer: see :class:`~paperzoo.core.modules.PaperzooModule`; default Adam(lr=1e-3), the paper's.
        lr_scheduler: see :class:`~paperzoo.core.modules.PaperzooModule`.
        scheduler_interval: see :class:`~paperzoo.core.modules.PaperzooModule`.
    """

    sigmas: Tensor

    def __init__(
        self,
        network: nn.Module,
        sigma_max: float = 2.0,
        sigma_min: float = 0.02,
        num_scales: int = 10,
        steps_per_sigma: int = 100,
        step_lr: float = 8e-5,
        denoise_final: bool = True,
        scale_by_sigma: bool = True,
        ema_decay: float | None = None,
        ema_warmup: bool = False,
        sample_with_ema: bool = True,
        val_seed: int = 0,
        optimizer: OptimizerCallable = _adam_ncsn,
        lr_scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: Literal["step", "epoch"] = "step",
    ) -> None:
        super().__init__(
            network, ema_decay, ema_warmup, val_seed, optimizer, lr_scheduler, scheduler_interval, sample_with_ema
        )
        self.save_hyperparameters(ignore=["network", "optimizer", "lr_scheduler"])
        if steps_per_sigma < 1 or step_lr <= 0:
            raise ConfigError(f"steps_per_sigma={steps_per_sigma} must be >= 1 and step_lr={step_lr} > 0")
        self.register_buffer("sigmas", geometric_sigmas(sigma_max, sigma_min, num_scales).float(), persistent=False)
        self.steps_per_sigma = steps_per_sigma
        self.step_lr = step_lr
        self.denoise_final = denoise_final
        self.scale_by_sigma = scale_by_sigma
        self._log_sigma_range = (math.log(sigma_min), math.log(sigma_max))

    def noise_conditioning(self, sigma: Tensor) -> Tensor:
        r""":math:`c(\sigma)`: 0 at :math:`\sigma_L`, 999 at :math:`\sigma_1`, affine in :math:`\log\sigma`."""
        low, high = self._log_sigma_range
        return 999.0 * (sigma.log() - low) / (high - low)

    def score(self, network: nn.Module, x: Tensor, sigma: Tensor) -> Tensor:
        r""":math:`s_\theta(x, \sigma)` for a batch ``x`` and its noise levels ``sigma`` ``(B,)``."""
        out = network(x, self.noise_conditioning(sigma))
        if self.scale_by_sigma:
            out = out / sigma.to(out.dtype).reshape(-1, *([1] * (out.ndim - 1)))
        return out

    def forward(self, x: Tensor, sigma: Tensor) -> Tensor:
        """The trained network's score at noise levels ``sigma`` ``(B,)``."""
        return self.score(self.network, x, sigma)

    def _loss(self, network: nn.Module, x: Tensor, levels: Tensor, noise: Tensor) -> Tensor:
        sigma = self.sigmas[levels]  # (B,)
        noisy = x + sigma.to(x.dtype).reshape(-1, *([1] * (x.ndim - 1))) * noise
        return dsm_loss(self.score(network, noisy, sigma), noise, sigma)

    def training_step(self, batch, batch_idx: int) -> Tensor:
        x = batch[0]
        levels = torch.randint(0, len(self.sigmas), (x.shape[0],), device=x.device)
        loss = self._loss(self.network, x, levels, torch.randn_like(x))
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        x = batch[0]
        generator = self._validation_generator(batch_idx)
        levels = torch.randint(0, len(self.sigmas), (x.shape[0],), generator=generator).to(x.device)
        noise = torch.randn(x.shape, generator=generator).to(device=x.device, dtype=x.dtype)
        loss = self._loss(self.sampling_network, x, levels, noise)
        self.log("val/loss", loss, on_epoch=True, sync_dist=True)
        if self.ema_network is not None:  # the same loss when sampling with the trained weights: not computed twice
            online = loss if self.sampling_network is self.network else self._loss(self.network, x, levels, noise)
            self.log("val/loss_online", online, on_epoch=True, sync_dist=True)

    @torch.no_grad()
    def _langevin(self, num_samples: int, generator: torch.Generator | None, callback=None) -> Tensor:
        x = 2 * self._draw((num_samples, *self.image_shape), generator, uniform=True) - 1  # U[-1, 1]
        with _evaluating(self.sampling_network) as network:

            def score_fn(x: Tensor, level: int) -> Tensor:
                return self.score(network, x, self.sigmas[level].expand(x.shape[0]))

            x = annealed_langevin_dynamics(
                score_fn, x, self.sigmas, self.steps_per_sigma, self.step_lr, self.denoise_final, generator, callback
            )
        return x.clamp(-1, 1)

    @torch.no_grad()
    def sample(
        self, num_samples: int, generator: torch.Generator | None = None, labels: Tensor | None = None
    ) -> Tensor:
        """Draw ``num_samples`` images by annealed Langevin dynamics, in ``[-1, 1]``; ``labels`` are ignored."""
        return self._langevin(num_samples, generator)

    @torch.no_grad()
    def preview(
        self, num_samples: int, generator: torch.Generator | None = None
    ) -> dict[str, Tensor | tuple[Tensor, int]]:
        """``samples``, and ``annealing``, one row: the first sample after each noise level's Langevin steps, then
        denoised."""
        frames = []
        samples = self._langevin(num_samples, generator, lambda level, x: frames.append(x[:1].clamp(-1, 1)))
        annealing = torch.cat([*frames, samples[:1]])
        return {"samples": samples, "annealing": (annealing, len(annealing))}
