r"""StyleGAN2 training: Karras, Laine, Aittala, Hellsten, Lehtinen & Aila 2020, "Analyzing and Improving the Image
Quality of StyleGAN" (CVPR 2020, arXiv 1912.04958), section 3 and Appendix B.

The losses are the non-saturating logistic loss of Goodfellow et al. 2014, the R1 penalty of Mescheder et al. 2018
on the discriminator and the paper's path length regularisation on the generator, both computed lazily (every 16 and
every 4 minibatches, with weights multiplied by the interval), plus style mixing and an exponential moving average of
the generator's weights used for sampling.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from lightning.pytorch.cli import OptimizerCallable
from torch import Tensor, nn

from paperzoo.core.errors import ConfigError
from paperzoo.generative.layers.stylegan2 import NoiseMode
from paperzoo.generative.modules.base import GenerativeModule


def _default_adam(params) -> torch.optim.Optimizer:
    """The paper's optimiser: Adam, lr 0.002, betas (0, 0.99), eps 1e-8 (before the lazy-regularisation correction)."""
    return torch.optim.Adam(params, lr=0.002, betas=(0.0, 0.99), eps=1e-8)


def r1_penalty(discriminator: nn.Module, reals: Tensor, labels: Tensor | None = None) -> Tensor:
    r"""The R1 penalty of Mescheder, Geiger & Nowozin 2018 ("Which Training Methods for GANs do actually Converge?",
    Eq. 9) per sample: :math:`\lVert \nabla_x D(x) \rVert^2` at the real images, with a graph for its own gradient.

    Shapes:
        - **reals:** :math:`(B, C, H, W)`; **output:** :math:`(B,)`.
    """
    reals = reals.detach().requires_grad_(True)
    logits = discriminator(reals) if labels is None else discriminator(reals, labels)
    (grad,) = torch.autograd.grad(logits.sum(), reals, create_graph=True)
    return grad.square().sum(dim=(1, 2, 3))


def path_lengths(images: Tensor, ws: Tensor, noise: Tensor) -> Tensor:
    r"""The path lengths of section 3.2, :math:`\lVert J_w^\top y \rVert_2` per sample, with :math:`J_w` the Jacobian of
    the images with respect to :math:`w` and :math:`y` = ``noise`` (the Jacobian-vector product is one backward pass
    of :math:`\sum y \cdot g(w)`); as in the official code the squared norm is averaged over the ``num_ws`` copies of
    :math:`w` before the square root. Keeps the graph, for the penalty's own gradient.

    Shapes:
        - **images:** :math:`(B, C, H, W)`, computed from **ws:** :math:`(B, \text{num\_ws}, w_{dim})`;
          **noise:** like images; **output:** :math:`(B,)`.
    """
    (grad,) = torch.autograd.grad((images * noise).sum(), ws, create_graph=True)
    return grad.square().sum(dim=2).mean(dim=1).sqrt()


def lazy_regularization_correction(optimizer: torch.optim.Optimizer, interval: int) -> None:
    r"""Appendix B: a regulariser applied as its own optimiser step every ``interval`` minibatches adds one step per
    ``interval``, so Adam's learning rate and betas are raised to the power :math:`c = k / (k + 1)`
    (:math:`\eta \leftarrow c\,\eta`, :math:`\beta \leftarrow \beta^c`) to keep their time scales in minibatches."""
    c = interval / (interval + 1)
    for group in optimizer.param_groups:
        group["lr"] = group["lr"] * c
        if "betas" in group:
            group["betas"] = tuple(beta**c for beta in group["betas"])


class StyleGAN2Module(GenerativeModule):
    r"""Trains a StyleGAN2 generator and discriminator as in the paper's config F (manual optimisation).

    Each training batch runs four phases, in the order of the official code:

    1. **G main**: latents :math:`z` (with style mixing: with probability ``style_mixing_prob`` a second latent's
       :math:`w` takes over from a uniformly drawn crossover layer), the non-saturating loss
       :math:`\mathrm{softplus}(-D(G(z)))`, an optimiser step.
    2. **G reg**, every ``pl_interval`` batches: path length regularisation (section 3.2) on
       ``B // pl_batch_shrink`` fresh samples, :math:`(\lVert J_w^\top y \rVert - a)^2` with
       :math:`y \sim \mathcal{N}(0, I) / \sqrt{HW}` and :math:`a` the running mean of the lengths (decay
       ``pl_decay``, the buffer ``pl_mean``), times ``pl_weight * pl_interval``, its own optimiser step.
    3. **D main**: :math:`\mathrm{softplus}(D(G(z))) + \mathrm{softplus}(-D(x))`, an optimiser step.
    4. **D reg**, every ``r1_interval`` batches: :math:`\frac{\gamma}{2}\lVert\nabla_x D(x)\rVert^2` on the reals,
       times ``r1_interval``, its own optimiser step.

    Adam's learning rate and betas of a lazily regularised network are corrected by :math:`c = k/(k+1)`
    (:func:`lazy_regularization_correction`). After the phases the EMA generator ``generator_ema`` moves towards the
    generator with :math:`\beta = 0.5^{B / (1000\,\text{ema\_kimg})}` (a half-life of ``ema_kimg`` thousand images;
    with ``ema_rampup`` the half-life is at most ``ema_rampup`` times the images seen so far); its buffers
    (:math:`\bar w`) are copied. :meth:`sample` and :meth:`preview` draw from it.

    Lightning's ``trainer.global_step`` counts optimiser steps: two per batch plus one every ``pl_interval`` and one
    every ``r1_interval`` batches (2.3125 per batch with the defaults); the buffers ``iteration`` and
    ``images_seen`` count batches and images.

    Logged: ``train/loss_g``, ``train/loss_d``, ``train/logits_real``, ``train/logits_fake``, ``train/r1_penalty``,
    ``train/pl_penalty``, ``train/pl_mean``, ``train/kimg``; in validation ``val/loss_d`` (the discriminator's loss
    on held-out real images and EMA samples), ``val/logits_real`` and ``val/logits_fake``.

    Args:
        generator: a :class:`~paperzoo.generative.models.stylegan2.StyleGAN2Generator` (``mapping``, ``synthesis``,
            ``mix_styles``, ``z_dim``, ``num_ws``, ``num_classes``).
        discriminator: a :class:`~paperzoo.generative.models.stylegan2.StyleGAN2Discriminator` (or any network
            mapping images, and labels when conditional, to ``(B,)`` logits).
        r1_gamma: :math:`\gamma` of the R1 penalty (10 for FFHQ 1024 in config F; 1 for 256x256 in StyleGAN2-ADA's
            "paper256"); 0 turns it off.
        r1_interval: apply R1 every this many batches (16).
        pl_weight: weight of the path length penalty (2); 0 turns it off.
        pl_interval: apply it every this many batches (4).
        pl_batch_shrink: its batch is the training batch divided by this (2).
        pl_decay: decay of the running mean of path lengths (0.01).
        style_mixing_prob: probability of style mixing per batch (0.9).
        ema_kimg: half-life of the generator EMA, in thousands of images (10).
        ema_rampup: if set, the half-life is at most ``ema_rampup`` times the images seen (StyleGAN2-ADA's 0.05);
            None for the paper's fixed half-life.
        lazy_regularization: correct Adam's lr and betas for the extra regularisation steps (Appendix B).
        preview_truncation_psi: :math:`\psi` of the truncated sheet of :meth:`preview` (0.7).
        preview_mixing_crossover: first layer index taken from the column latents in the style-mixing sheet;
            None for ``num_ws // 2``.
        sample_batch_size: :meth:`sample` runs the EMA generator in chunks of this many latents.
        optimizer: builds the generator's optimiser (default: the paper's Adam).
        discriminator_optimizer: builds the discriminator's optimiser (default: the paper's Adam).
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        r1_gamma: float = 10.0,
        r1_interval: int = 16,
        pl_weight: float = 2.0,
        pl_interval: int = 4,
        pl_batch_shrink: int = 2,
        pl_decay: float = 0.01,
        style_mixing_prob: float = 0.9,
        ema_kimg: float = 10.0,
        ema_rampup: float | None = None,
        lazy_regularization: bool = True,
        preview_truncation_psi: float = 0.7,
        preview_mixing_crossover: int | None = None,
        sample_batch_size: int = 64,
        optimizer: OptimizerCallable = _default_adam,
        discriminator_optimizer: OptimizerCallable = _default_adam,
    ) -> None:
        super().__init__(optimizer=optimizer)
        self.save_hyperparameters(ignore=["generator", "discriminator", "optimizer", "discriminator_optimizer"])
        if r1_gamma < 0 or pl_weight < 0 or r1_interval < 1 or pl_interval < 1 or pl_batch_shrink < 1:
            raise ConfigError(
                f"r1_gamma={r1_gamma} and pl_weight={pl_weight} must be >= 0, r1_interval={r1_interval}, "
                f"pl_interval={pl_interval} and pl_batch_shrink={pl_batch_shrink} >= 1"
            )
        if not 0 <= style_mixing_prob <= 1 or not 0 < pl_decay <= 1 or ema_kimg < 0 or sample_batch_size < 1:
            raise ConfigError(
                f"style_mixing_prob={style_mixing_prob} must lie in [0, 1], pl_decay={pl_decay} in (0, 1], "
                f"ema_kimg={ema_kimg} >= 0 and sample_batch_size={sample_batch_size} >= 1"
            )
        for name in ("mapping", "synthesis", "mix_styles", "z_dim", "num_ws", "num_classes"):
            if not hasattr(generator, name):
                raise ConfigError(f"the generator has no {name!r}: StyleGAN2Module needs a StyleGAN2Generator")
        self.automatic_optimization = False
        self.generator = generator
        self.discriminator = discriminator
        self.generator_ema = copy.deepcopy(generator).requires_grad_(False)
        self.discriminator_optimizer_factory = discriminator_optimizer
        self.r1_gamma = r1_gamma
        self.r1_interval = r1_interval
        self.pl_weight = pl_weight
        self.pl_interval = pl_interval
        self.pl_batch_shrink = pl_batch_shrink
        self.pl_decay = pl_decay
        self.style_mixing_prob = style_mixing_prob
        self.ema_kimg = ema_kimg
        self.ema_rampup = ema_rampup
        self.lazy_regularization = lazy_regularization
        self.preview_truncation_psi = preview_truncation_psi
        self.preview_mixing_crossover = preview_mixing_crossover
        self.sample_batch_size = sample_batch_size
        self.register_buffer("pl_mean", torch.zeros(()))
        self.register_buffer("iteration", torch.zeros((), dtype=torch.long))
        self.register_buffer("images_seen", torch.zeros((), dtype=torch.long))

    # --- optimisers -----------------------------------------------------------------------------------------------

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        generator_optimizer = self.optimizer_factory(self.generator.parameters())
        discriminator_optimizer = self.discriminator_optimizer_factory(self.discriminator.parameters())
        if self.lazy_regularization:
            if self.pl_weight > 0:
                lazy_regularization_correction(generator_optimizer, self.pl_interval)
            if self.r1_gamma > 0:
                lazy_regularization_correction(discriminator_optimizer, self.r1_interval)
        return [generator_optimizer, discriminator_optimizer]

    # --- the pieces of a step -------------------------------------------------------------------------------------

    def _labels(self, labels: Tensor | None) -> Tensor | None:
        """The labels for a conditional generator, None for an unconditional one."""
        return labels if self.generator.num_classes > 0 else None

    def generate(
        self, batch_size: int, labels: Tensor | None = None, update_w_avg: bool = False
    ) -> tuple[Tensor, Tensor]:
        """Images from the (training) generator with style mixing, and the ``(B, num_ws, w_dim)`` styles they were
        synthesised from (after mixing)."""
        generator = self.generator
        labels = self._labels(labels)
        z = torch.randn(batch_size, generator.z_dim, device=self.device)
        ws = generator.mapping(z, labels, update_w_avg=update_w_avg)
        if generator.num_ws > 1 and float(torch.rand(())) < self.style_mixing_prob:
            crossover = int(torch.randint(1, generator.num_ws, ()))
            ws = generator.mix_styles(ws, generator.mapping(torch.randn_like(z), labels), crossover)
        return generator.synthesis(ws), ws

    def path_length_penalty(self, batch_size: int, labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Section 3.2: the penalty :math:`\\mathrm{mean}((\\lVert J_w^\\top y\\rVert - a)^2)` on fresh samples and
        their path lengths; updates the running mean :math:`a` (``pl_mean``) first, as the official code does."""
        images, ws = self.generate(batch_size, None if labels is None else labels[:batch_size])
        noise = torch.randn_like(images) / math.sqrt(images.shape[2] * images.shape[3])
        lengths = path_lengths(images, ws, noise)
        pl_mean = self.pl_mean.lerp(lengths.mean(), self.pl_decay)
        self.pl_mean.copy_(pl_mean.detach())
        return (lengths - pl_mean).square().mean(), lengths

    def _discriminate(self, images: Tensor, labels: Tensor | None) -> Tensor:
        labels = self._labels(labels)
        return self.discriminator(images) if labels is None else self.discriminator(images, labels)

    @torch.no_grad()
    def update_ema(self, batch_size: int) -> float:
        """Move ``generator_ema`` towards the generator after a batch of ``batch_size`` images; returns the decay."""
        ema_nimg = self.ema_kimg * 1000
        if self.ema_rampup is not None:
            ema_nimg = min(ema_nimg, float(self.images_seen) * self.ema_rampup)
        beta = 0.5 ** (batch_size / max(ema_nimg, 1e-8))
        for p_ema, p in zip(self.generator_ema.parameters(), self.generator.parameters(), strict=True):
            p_ema.copy_(p.detach().lerp(p_ema, beta))
        for b_ema, b in zip(self.generator_ema.buffers(), self.generator.buffers(), strict=True):
            b_ema.copy_(b)
        return beta

    # --- training and validation ----------------------------------------------------------------------------------

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        reals, labels = batch
        batch_size = reals.shape[0]
        generator_optimizer, discriminator_optimizer = self.optimizers()
        iteration = int(self.iteration)
        logs: dict[str, Tensor | float] = {}

        self.toggle_optimizer(generator_optimizer)
        fakes, _ = self.generate(batch_size, labels, update_w_avg=True)
        loss_g = F.softplus(-self._discriminate(fakes, labels)).mean()
        generator_optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss_g)
        generator_optimizer.step()
        logs["loss_g"] = loss_g.detach()
        if self.pl_weight > 0 and iteration % self.pl_interval == 0:
            penalty, _ = self.path_length_penalty(max(1, batch_size // self.pl_batch_shrink), labels)
            generator_optimizer.zero_grad(set_to_none=True)
            self.manual_backward(penalty * (self.pl_weight * self.pl_interval))
            generator_optimizer.step()
            logs.update(pl_penalty=penalty.detach(), pl_mean=self.pl_mean.clone())
        self.untoggle_optimizer(generator_optimizer)

        self.toggle_optimizer(discriminator_optimizer)
        with torch.no_grad():
            fakes, _ = self.generate(batch_size, labels, update_w_avg=True)
        logits_fake = self._discriminate(fakes, labels)
        logits_real = self._discriminate(reals, labels)
        loss_d = F.softplus(logits_fake).mean() + F.softplus(-logits_real).mean()
        discriminator_optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss_d)
        discriminator_optimizer.step()
        logs.update(loss_d=loss_d.detach(), logits_real=logits_real.detach().mean())
        logs["logits_fake"] = logits_fake.detach().mean()
        if self.r1_gamma > 0 and iteration % self.r1_interval == 0:
            penalty = r1_penalty(self.discriminator, reals, self._labels(labels)).mean()
            discriminator_optimizer.zero_grad(set_to_none=True)
            self.manual_backward(penalty * (self.r1_gamma / 2 * self.r1_interval))
            discriminator_optimizer.step()
            logs["r1_penalty"] = penalty.detach()
        self.untoggle_optimizer(discriminator_optimizer)

        self.update_ema(batch_size)
        self.iteration += 1
        self.images_seen += batch_size
        logs["kimg"] = float(self.images_seen) / 1000
        for name, value in logs.items():
            self.log(f"train/{name}", value, on_step=True, on_epoch=False, prog_bar=name in ("loss_g", "loss_d"))

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        reals, labels = batch
        z = torch.randn(reals.shape[0], self.generator_ema.z_dim, device=self.device)
        fakes = self.generator_ema(z, self._labels(labels))
        logits_real = self._discriminate(reals, labels)
        logits_fake = self._discriminate(fakes, labels)
        loss_d = F.softplus(logits_fake).mean() + F.softplus(-logits_real).mean()
        for name, value in (
            ("loss_d", loss_d),
            ("logits_real", logits_real.mean()),
            ("logits_fake", logits_fake.mean()),
        ):
            self.log(f"val/{name}", value, on_epoch=True, prog_bar=name == "loss_d", sync_dist=True)

    # --- sampling -------------------------------------------------------------------------------------------------

    def _latents(self, num_samples: int, generator: torch.Generator | None) -> Tensor:
        return torch.randn(num_samples, self.generator_ema.z_dim, generator=generator, device=self.device)

    @torch.no_grad()
    def sample(
        self,
        num_samples: int,
        generator: torch.Generator | None = None,
        labels: Tensor | None = None,
        truncation_psi: float = 1.0,
        noise_mode: NoiseMode = "const",
    ) -> Tensor:
        """``num_samples`` images of the EMA generator, clamped to ``[-1, 1]``.

        Args:
            num_samples: how many images.
            generator: the random source of the latents (and labels), on the module's device.
            labels: ``(num_samples,)`` classes of a conditional generator; None draws them uniformly.
            truncation_psi: :math:`\\psi` of the truncation trick (1: none, 0: the mean image).
            noise_mode: ``"const"`` (the fixed noise images: the latents alone decide the image), ``"random"``
                or ``"none"``.
        """
        z = self._latents(num_samples, generator)
        num_classes = self.generator_ema.num_classes
        if num_classes > 0 and labels is None:
            labels = torch.randint(0, num_classes, (num_samples,), generator=generator, device=self.device)
        images = [
            self.generator_ema(
                z[i : i + self.sample_batch_size],
                None if num_classes == 0 else labels[i : i + self.sample_batch_size],
                truncation_psi=truncation_psi,
                noise_mode=noise_mode,
            )
            for i in range(0, num_samples, self.sample_batch_size)
        ]
        return torch.cat(images).clamp(-1, 1)

    @torch.no_grad()
    def preview(
        self, num_samples: int, generator: torch.Generator | None = None
    ) -> dict[str, Tensor | tuple[Tensor, int]]:
        r"""Three sheets from the EMA generator, with the const noise:

        - ``samples``: ``num_samples`` images from fixed latents (a CPU generator seeded with 0 when ``generator`` is
          None, so every call shows the same latents);
        - ``truncated``: the same latents with :math:`\psi` = ``preview_truncation_psi``;
        - ``style_mixing``: ``(images, k + 1)``, a square sheet of :math:`(k+1)^2 \le` ``num_samples`` images, k + 1
          a row: the top row is k column sources after a blank, the left column k row sources, and cell (i, j) takes
          the layers before the crossover (the coarse styles) from row source i and the rest from column source j
          (Figure 3 of StyleGAN, Karras et al. 2019).
        """
        g = self.generator_ema
        if generator is None:
            z = torch.randn(num_samples, g.z_dim, generator=torch.Generator().manual_seed(0)).to(self.device)
        else:
            z = self._latents(num_samples, generator)
        labels = torch.arange(num_samples, device=self.device) % g.num_classes if g.num_classes > 0 else None
        ws = g.mapping(z, labels)
        truncated = g.mapping.truncate(ws, self.preview_truncation_psi)
        previews: dict[str, Tensor | tuple[Tensor, int]] = {
            "samples": g.synthesis(ws, noise_mode="const").clamp(-1, 1),
            "truncated": g.synthesis(truncated, noise_mode="const").clamp(-1, 1),
        }
        k = max(1, math.isqrt(num_samples) - 1)
        if 2 * k <= num_samples:
            crossover = self.preview_mixing_crossover or g.num_ws // 2
            columns, rows = ws[:k], ws[k : 2 * k]  # (k, num_ws, w_dim) each
            mixed = g.mix_styles(rows.repeat_interleave(k, dim=0), columns.repeat(k, 1, 1), crossover)  # (k*k, ...)
            images = g.synthesis(torch.cat([columns, rows, mixed]), noise_mode="const").clamp(-1, 1)
            column_images, row_images, cells = images[:k], images[k : 2 * k], images[2 * k :]
            grid = [torch.zeros_like(images[:1]), column_images]  # a blank corner, then the column sources
            for i in range(k):
                grid += [row_images[i : i + 1], cells[i * k : (i + 1) * k]]
            previews["style_mixing"] = (torch.cat(grid), k + 1)
        return previews
