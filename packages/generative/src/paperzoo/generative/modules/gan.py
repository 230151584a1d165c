r"""Adversarial training of a generator against a discriminator: DCGAN, WGAN and WGAN-GP in one module."""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from paperzoo.core.errors import ConfigError
from paperzoo.core.modules.base import _unset_argument
from paperzoo.generative.modules.base import GenerativeModule


def dcgan_adam(params) -> torch.optim.Optimizer:
    """Adam with the learning rate 2e-4 and momentum 0.5 of Radford et al. 2016 (section 4)."""
    return torch.optim.Adam(params, lr=2e-4, betas=(0.5, 0.999))


def gradient_penalty(
    critic: nn.Module,
    real: Tensor,
    fake: Tensor,
    labels: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""The gradient penalty of Gulrajani et al. 2017, "Improved Training of Wasserstein GANs", Eq. 3 and
    Algorithm 1:

    .. math::
        \mathbb{E}_{\hat{x}} \big[(\lVert \nabla_{\hat{x}} D(\hat{x}) \rVert_2 - 1)^2\big], \qquad
        \hat{x} = \epsilon x + (1 - \epsilon) \tilde{x}, \quad \epsilon \sim U[0, 1]

    with one :math:`\epsilon` per pair of a real image :math:`x` and a generated one :math:`\tilde{x}`. The
    gradient is taken with ``create_graph=True``, so the penalty can be differentiated w.r.t. the critic.

    Args:
        critic: maps images (and labels, when given) to ``(B,)`` values.
        real: real images ``(B, C, H, W)``.
        fake: generated images of the same shape (detached from the generator).
        labels: classes ``(B,)`` of a conditional critic, else ``None``.
        generator: the random source of :math:`\epsilon`; ``None`` for the global one.

    Returns:
        The penalty, a scalar (without the weight :math:`\lambda`).
    """
    eps = torch.rand(real.size(0), *([1] * (real.dim() - 1)), generator=generator, device=real.device)
    mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)  # (B, C, H, W)
    values = critic(mixed) if labels is None else critic(mixed, labels)
    (grad,) = torch.autograd.grad(values.sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def build_schedules(module: GenerativeModule, optimizers: list[torch.optim.Optimizer]) -> list[dict[str, Any]]:
    """One ``{"optimizer", "lr_scheduler"}`` config per optimiser, each with its own copy of the injected schedule.

    With manual optimisation Lightning saves and restores the schedules but does not step them: the module does,
    after each of that optimiser's steps (``scheduler_interval="step"``) or at the end of each epoch.
    """
    configs = []
    for optimizer in optimizers:
        config: dict[str, Any] = {"optimizer": optimizer}
        if module.lr_scheduler_factory is not None:
            kwargs = {}
            if _unset_argument(module.lr_scheduler_factory, "total_steps"):
                kwargs["total_steps"] = int(module.trainer.estimated_stepping_batches)
            scheduler = module.lr_scheduler_factory(optimizer, **kwargs)
            config["lr_scheduler"] = {"scheduler": scheduler, "interval": module.scheduler_interval}
        configs.append(config)
    return configs


def set_requires_grad(module: nn.Module, flag: bool) -> None:
    """Freeze or unfreeze a network, so that the other player's backward pass skips its weight gradients."""
    for p in module.parameters():
        p.requires_grad_(flag)


class GANModule(GenerativeModule):
    r"""Generative adversarial networks (Goodfellow et al. 2014) trained with the losses of DCGAN, WGAN and WGAN-GP.

    Each training step takes one batch of real images and updates the discriminator (critic) :math:`D` once;
    every ``n_critic``-th step (counted across epochs, and saved in checkpoints) then updates the generator
    :math:`G` once on a fresh latent batch. The losses, with :math:`x` real, :math:`z \sim \mathcal{N}(0, I)`:

    - ``loss="bce"`` (Goodfellow et al. 2014, with the non-saturating generator loss of their section 3; the
      DCGAN of Radford et al. 2016):
      :math:`L_D = -\log \sigma(D(x)) - \log(1 - \sigma(D(G(z))))`, :math:`L_G = -\log \sigma(D(G(z)))`.
    - ``loss="wasserstein"`` (Arjovsky, Chintala & Bottou 2017, Algorithm 1):
      :math:`L_D = D(G(z)) - D(x)`, :math:`L_G = -D(G(z))`, so :math:`D(x) - D(G(z))` (logged as
      ``train/wasserstein``) estimates the Wasserstein-1 distance up to a constant factor. The critic must be
      kept Lipschitz: by clipping every critic weight to ``[-clip_value, clip_value]`` after each critic step
      (WGAN), or by adding ``gp_weight`` times the :func:`gradient_penalty` (Gulrajani et al. 2017, Algorithm 1;
      WGAN-GP).

    The papers' settings (the defaults are DCGAN's):

    ========  ==========  ============  =========  ========  ===========================================
    method    loss        clip_value    gp_weight  n_critic  optimisers (both)
    ========  ==========  ============  =========  ========  ===========================================
    DCGAN     bce         None          0          1         Adam(lr=2e-4, betas=(0.5, 0.999))
    WGAN      wasserstein 0.01          0          5         RMSprop(lr=5e-5)
    WGAN-GP   wasserstein None          10         5         Adam(lr=1e-4, betas=(0.0, 0.9))
    ========  ==========  ============  =========  ========  ===========================================

    The latent vectors are drawn from :math:`\mathcal{N}(0, I)` throughout (Radford et al. draw theirs uniformly
    from :math:`[-1, 1]^{100}`; the WGAN and WGAN-GP code use the normal). Arjovsky et al.'s code also runs 100
    critic steps for the first 25 generator steps and every 500th one; this module keeps ``n_critic`` fixed. The
    gradient penalty needs a critic without batch norm, since batch norm makes each output depend on the whole
    batch (section 4 of Gulrajani et al.): such a critic is refused.

    With manual optimisation Lightning's ``global_step`` counts optimiser steps of both players, so a run of
    ``B`` batches takes ``B + B // n_critic`` of them; size ``max_steps`` accordingly, or use epochs.

    A conditional generator and discriminator (``num_classes > 0``, e.g. the conditional
    :class:`~paperzoo.generative.models.dcgan.DCGANGenerator`) get the batch's labels, and generated images the
    same labels.

    Logged: ``train/d_loss`` (with the penalty), ``train/g_loss``; for BCE ``train/d_real_acc`` and
    ``train/d_fake_acc`` (the fraction of real and generated images on the right side of the decision), for the
    Wasserstein loss ``train/wasserstein`` and, with a penalty, ``train/gp``. On the validation images the same
    quantities under ``val/``, against as many freshly generated images: ``val/d_loss`` always (without the
    penalty), and ``val/wasserstein`` (a useful monitor for WGAN: it falls as samples improve, Arjovsky et al.
    section 4.2) or ``val/d_real_acc`` and ``val/d_fake_acc``.

    Args:
        generator: maps :math:`z` ``(B, latent_dim)`` (and labels when conditional) to images in ``[-1, 1]``; it
            must expose ``latent_dim`` and may expose ``num_classes``.
        discriminator: maps images (and labels when conditional) to ``(B,)`` logits or critic values.
        loss: ``"bce"`` or ``"wasserstein"``.
        clip_value: clip the critic's weights to this magnitude after each of its steps (WGAN); ``None`` for no
            clipping.
        gp_weight: the weight :math:`\lambda` of the gradient penalty (10 in WGAN-GP); 0 for none.
        n_critic: discriminator steps per generator step.
        num_preview: latent vectors fixed at construction (and saved with the checkpoint) for :meth:`preview`.
        interpolation_rows: pairs of fixed latent vectors interpolated in :meth:`preview`.
        interpolation_steps: images per interpolation row, the end points included.
        preview_seed: the seed that draws the fixed latent vectors.
        optimizer: builds the generator's optimiser (DCGAN's Adam by default).
        discriminator_optimizer: builds the discriminator's optimiser (DCGAN's Adam by default).
        lr_scheduler: builds a schedule for each optimiser; ``None`` for constant rates.
        scheduler_interval: step each schedule after each step of its optimiser (``"step"``) or every ``"epoch"``.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        loss: Literal["bce", "wasserstein"] = "bce",
        clip_value: float | None = None,
        gp_weight: float = 0.0,
        n_critic: int = 1,
        num_preview: int = 64,
        interpolation_rows: int = 8,
        interpolation_steps: int = 8,
        preview_seed: int = 0,
        optimizer: OptimizerCallable = dcgan_adam,
        discriminator_optimizer: OptimizerCallable = dcgan_adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: Literal["step", "epoch"] = "step",
    ) -> None:
        super().__init__(optimizer=optimizer, lr_scheduler=lr_scheduler, scheduler_interval=scheduler_interval)
        self.save_hyperparameters(
            ignore=["generator", "discriminator", "optimizer", "discriminator_optimizer", "lr_scheduler"]
        )
        if loss not in ("bce", "wasserstein"):
            raise ConfigError(f"loss={loss!r} must be 'bce' or 'wasserstein'")
        if clip_value is not None and clip_value <= 0:
            raise ConfigError(f"clip_value={clip_value} must be positive, or null for no clipping")
        if gp_weight < 0 or n_critic < 1 or num_preview < 1 or interpolation_rows < 1 or interpolation_steps < 2:
            raise ConfigError(
                f"gp_weight={gp_weight} must be >= 0, n_critic={n_critic}, num_preview={num_preview} and "
                f"interpolation_rows={interpolation_rows} >= 1, interpolation_steps={interpolation_steps} >= 2"
            )
        if gp_weight > 0 and any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in discriminator.modules()):
            raise ConfigError(
                "a gradient penalty needs a critic without batch norm (Gulrajani et al. 2017, section 4); use "
                "wgan_critic (layer norm) or set the discriminator's norm to 'layer' or 'none'"
            )
        if not hasattr(generator, "latent_dim"):
            raise ConfigError(f"the generator {type(generator).__name__} must expose latent_dim")
        self.automatic_optimization = False
        self.generator = generator
        self.discriminator = discriminator
        self.discriminator_optimizer_factory = discriminator_optimizer
        self.loss = loss
        self.clip_value = clip_value
        self.gp_weight = gp_weight
        self.n_critic = n_critic
        self.interpolation_steps = interpolation_steps
        self.critic_steps = 0
        self.latent_dim = int(generator.latent_dim)
        self.num_classes = int(getattr(generator, "num_classes", 0) or 0)
        seeded = torch.Generator().manual_seed(preview_seed)
        self.register_buffer("preview_z", torch.randn(num_preview, self.latent_dim, generator=seeded))
        self.register_buffer("interpolation_z", torch.randn(interpolation_rows, 2, self.latent_dim, generator=seeded))

    # ----------------------------------------------------------------------------------------------------- networks

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Images ``(B, C, H, W)`` from latent vectors ``(B, latent_dim)`` (and labels when conditional)."""
        return self.generator(z) if not self.num_classes else self.generator(z, labels)

    def discriminate(self, images: Tensor, labels: Tensor | None = None) -> Tensor:
        """The discriminator's logits or critic values ``(B,)``."""
        return self.discriminator(images) if not self.num_classes else self.discriminator(images, labels)

    def _latents(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn(n, self.latent_dim, generator=generator, device=self.device)

    def _labels(self, n: int, labels: Tensor | None, generator: torch.Generator | None = None) -> Tensor | None:
        if not self.num_classes:
            return None
        if labels is not None:
            return labels.to(self.device)
        return torch.randint(self.num_classes, (n,), generator=generator, device=self.device)

    @torch.no_grad()
    def sample(
        self, num_samples: int, generator: torch.Generator | None = None, labels: Tensor | None = None
    ) -> Tensor:
        """``num_samples`` images from :math:`z \\sim \\mathcal{N}(0, I)` (labels drawn uniformly if conditional and
        not given), in the networks' current mode."""
        z = self._latents(num_samples, generator)
        return self(z, self._labels(num_samples, labels, generator)).clamp(-1, 1)

    @torch.no_grad()
    def preview(
        self, num_samples: int, generator: torch.Generator | None = None
    ) -> dict[str, Tensor | tuple[Tensor, int]]:
        """Fixed-latent samples and latent interpolations, so that sheets of successive epochs compare.

        Returns:
            ``"samples"``: the images of the first ``num_samples`` fixed latent vectors (more are drawn from
            ``generator`` if ``num_samples`` exceeds ``num_preview``); for a conditional model their labels cycle
            through the classes.
            ``"interpolation"``: ``(images, interpolation_steps)``, ``interpolation_rows * interpolation_steps`` images
            row-major: each row walks in
            a straight line from one fixed latent vector to another (Radford et al. 2016, section 6.1; a
            conditional model keeps one class, the row's index modulo the classes, along the row).
        """
        z = self.preview_z[:num_samples]
        if num_samples > len(z):
            z = torch.cat([z, self._latents(num_samples - len(z), generator)])
        labels = torch.arange(num_samples, device=self.device) % max(self.num_classes, 1)
        samples = self(z, labels if self.num_classes else None)
        rows, steps = len(self.interpolation_z), self.interpolation_steps
        t = torch.linspace(0, 1, steps, device=self.device)[None, :, None]  # (1, T, 1)
        start, end = self.interpolation_z[:, :1], self.interpolation_z[:, 1:]  # (R, 1, d) each
        path = ((1 - t) * start + t * end).flatten(0, 1)  # (R * T, d)
        row_labels = (torch.arange(rows, device=self.device) % max(self.num_classes, 1)).repeat_interleave(steps)
        interpolation = self(path, row_labels if self.num_classes else None)
        return {"samples": samples.clamp(-1, 1), "interpolation": (interpolation.clamp(-1, 1), steps)}

    # ----------------------------------------------------------------------------------------------------- losses

    def discriminator_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        """:math:`L_D` from the outputs on real and generated images (without the penalty)."""
        if self.loss == "bce":
            return F.binary_cross_entropy_with_logits(
                real_out, torch.ones_like(real_out)
            ) + F.binary_cross_entropy_with_logits(fake_out, torch.zeros_like(fake_out))
        return fake_out.mean() - real_out.mean()

    def generator_loss(self, fake_out: Tensor) -> Tensor:
        """:math:`L_G` from the outputs on generated images: non-saturating BCE or :math:`-D(G(z))`."""
        if self.loss == "bce":
            return F.binary_cross_entropy_with_logits(fake_out, torch.ones_like(fake_out))
        return -fake_out.mean()

    def _log_outputs(self, stage: str, real_out: Tensor, fake_out: Tensor, d_loss: Tensor) -> None:
        on_step = stage == "train"
        kwargs = {"on_step": on_step, "on_epoch": True, "batch_size": len(real_out), "sync_dist": not on_step}
        self.log(f"{stage}/d_loss", d_loss, prog_bar=True, **kwargs)
        if self.loss == "bce":
            self.log(f"{stage}/d_real_acc", (real_out > 0).float().mean(), **kwargs)
            self.log(f"{stage}/d_fake_acc", (fake_out < 0).float().mean(), **kwargs)
        else:
            self.log(f"{stage}/wasserstein", real_out.mean() - fake_out.mean(), prog_bar=True, **kwargs)

    # ----------------------------------------------------------------------------------------------------- training

    def configure_optimizers(self) -> list[dict[str, Any]]:
        g_opt = self.optimizer_factory(self.generator.parameters())
        d_opt = self.discriminator_optimizer_factory(self.discriminator.parameters())
        return build_schedules(self, [g_opt, d_opt])

    def _schedulers(self) -> list:
        """The generator's and the discriminator's schedules, ``None`` for constant rates."""
        schedulers = self.lr_schedulers()
        return [None, None] if schedulers is None else list(schedulers)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        images, labels = batch
        labels = labels if self.num_classes else None
        g_opt, d_opt = self.optimizers()
        g_sched, d_sched = self._schedulers()
        batch_size = len(images)

        # the discriminator (critic) step, on one real batch and as many generated images
        with torch.no_grad():
            fake = self(self._latents(batch_size), labels)
        real_out = self.discriminate(images, labels)
        fake_out = self.discriminate(fake, labels)
        d_loss = self.discriminator_loss(real_out, fake_out)
        if self.gp_weight > 0:
            penalty = gradient_penalty(self.discriminate, images, fake, labels)
            self.log("train/gp", penalty.detach(), on_step=True, on_epoch=True, batch_size=batch_size)
            d_loss = d_loss + self.gp_weight * penalty
        self._log_outputs("train", real_out.detach(), fake_out.detach(), d_loss.detach())
        d_opt.zero_grad(set_to_none=True)
        self.manual_backward(d_loss)
        d_opt.step()
        if self.clip_value is not None:
            with torch.no_grad():
                for p in self.discriminator.parameters():
                    p.clamp_(-self.clip_value, self.clip_value)
        if d_sched is not None and self.scheduler_interval == "step":
            d_sched.step()

        self.critic_steps += 1
        if self.critic_steps % self.n_critic:
            return
        # the generator step, through a frozen discriminator
        set_requires_grad(self.discriminator, False)
        fake = self(self._latents(batch_size), labels)
        g_loss = self.generator_loss(self.discriminate(fake, labels))
        g_opt.zero_grad(set_to_none=True)
        self.manual_backward(g_loss)
        g_opt.step()
        set_requires_grad(self.discriminator, True)
        self.log("train/g_loss", g_loss.detach(), on_step=True, on_epoch=True, prog_bar=True, batch_size=batch_size)
        if g_sched is not None and self.scheduler_interval == "step":
            g_sched.step()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["critic_steps"] = self.critic_steps

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        self.critic_steps = int(checkpoint.get("critic_steps", 0))

    def on_train_epoch_end(self) -> None:
        if self.scheduler_interval == "epoch":
            for scheduler in self._schedulers():
                if scheduler is not None:
                    scheduler.step()

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        images, labels = batch
        labels = labels if self.num_classes else None
        real_out = self.discriminate(images, labels)
        fake_out = self.discriminate(self(self._latents(len(images)), labels), labels)
        self._log_outputs("val", real_out, fake_out, self.discriminator_loss(real_out, fake_out))
