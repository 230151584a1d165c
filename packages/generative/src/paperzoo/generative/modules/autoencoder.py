"""Training autoencoders (sparse, denoising) and variational autoencoders (VAE, beta-VAE, conditional VAE)."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from paperzoo.core.errors import ConfigError
from paperzoo.generative.losses import (
    BinarizeMode,
    binarize,
    bits_per_dim,
    gaussian_kl,
    importance_weighted_bound,
    kl_sparsity_penalty,
    l1_sparsity_penalty,
    to_unit_interval,
)
from paperzoo.generative.modules.base import GenerativeModule

# how many images of the first validation batch are kept for the preview sheets
_PREVIEW_CACHE = 64


def _adam(params) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=1e-3)


def check_network_fits_data(network: nn.Module, datamodule: object, classes: bool) -> None:
    """Raise :class:`~paperzoo.core.errors.ConfigError` when the network's image channels, size or (``classes``)
    class count differ from the DataModule's ``channels``, ``resolution`` and ``num_classes``; attributes either side
    lacks are not checked."""
    pairs = [("in_channels", "channels"), ("image_size", "resolution")]
    if classes:
        pairs.append(("num_classes", "num_classes"))
    for network_name, data_name in pairs:
        try:
            data_value = getattr(datamodule, data_name, None)
        except RuntimeError:  # a native resolution that is only known later
            continue
        network_value = getattr(network, network_name, None)
        if data_value is not None and network_value is not None and data_value != network_value:
            raise ConfigError(
                f"the network has {network_name}={network_value} but the data has {data_name}={data_value}; "
                f"set model.init_args.network.init_args.{network_name} to {data_value}"
            )


class _PreviewImages:
    """Keeps the first images (and labels) of a batch to show in the preview sheets; not part of the checkpoint."""

    def __init__(self) -> None:
        self.images: Tensor | None = None
        self.labels: Tensor | None = None

    def remember(self, images: Tensor, labels: Tensor, overwrite: bool) -> None:
        if self.images is None or overwrite:
            self.images = images[:_PREVIEW_CACHE].detach().clone()
            self.labels = labels[:_PREVIEW_CACHE].detach().clone()


class AutoencoderModule(GenerativeModule):
    r"""An autoencoder trained to reconstruct its input, with the sparse and denoising variants.

    The network maps images in ``[-1, 1]`` to ``(logits, code)``
    (:class:`~paperzoo.generative.models.autoencoder.MLPAutoencoder`,
    :class:`~paperzoo.generative.models.autoencoder.ConvAutoencoder`); ``sigmoid(logits)`` is the reconstruction in
    ``[0, 1]``, compared with the clean input mapped to ``[0, 1]``. Per example,

    .. math::
        J = \ell(x, \hat x) + \beta\, \Omega(h), \qquad
        \ell_{\text{bce}} = -\sum_i x_i \log \hat x_i + (1 - x_i) \log(1 - \hat x_i), \quad
        \ell_{\text{mse}} = \tfrac12 \lVert x - \hat x \rVert^2,

    averaged over the batch: the cross-entropy of Vincent et al. 2008 or the squared error of Ng's sparse autoencoder
    notes, whose penalty :math:`\Omega` is the KL between a target activation :math:`\rho` and each code unit's batch
    mean activation (``sparsity="kl"``, sigmoid codes; the notes' example is :math:`\rho = 0.05`, and the exercise uses
    :math:`\beta = 3`), or the codes' L1 norm (``sparsity="l1"``). Weight decay is the optimiser's.

    The denoising autoencoder (Vincent et al. 2008) encodes a corrupted :math:`\tilde x` and reconstructs the clean
    :math:`x`: ``corruption="mask"`` sets each pixel to 0 (black) with probability ``corruption_level`` (the paper
    zeroes a fixed number of randomly chosen pixels, the same fraction in expectation), ``"gaussian"`` adds noise of
    standard deviation ``corruption_level`` (in ``[0, 1]`` units).

    It logs ``train/loss``, ``train/recon``, ``train/sparsity``, ``train/code_mean`` (mean code activation) and
    ``val/loss``, ``val/recon``, ``val/mse`` (per-pixel squared error of the clean reconstruction in ``[0, 1]``, the
    checkpoint monitor) and, when corrupting, ``val/denoise_mse`` (the same from a corrupted input); testing logs the
    same as ``test/...``.
    :meth:`preview` shows inputs, their corrupted versions (denoising) and the reconstructions. An autoencoder has no
    prior to sample from, so :meth:`sample` is not implemented.

    Args:
        network: the autoencoder.
        loss: ``"bce"`` or ``"mse"``.
        sparsity: ``"none"``, ``"kl"`` (needs sigmoid codes) or ``"l1"``.
        sparsity_weight: :math:`\beta`.
        sparsity_target: :math:`\rho` of the KL penalty.
        corruption: ``"none"``, ``"mask"`` or ``"gaussian"``.
        corruption_level: the fraction of masked pixels, or the noise's standard deviation.
        optimizer: see :class:`~paperzoo.core.modules.PaperzooModule`; default Adam, lr 1e-3.
        lr_scheduler: see :class:`~paperzoo.core.modules.PaperzooModule`.
        scheduler_interval: see :class:`~paperzoo.core.modules.PaperzooModule`.
    """

    def __init__(
        self,
        network: nn.Module,
        loss: Literal["bce", "mse"] = "bce",
        sparsity: Literal["none", "kl", "l1"] = "none",
        sparsity_weight: float = 0.0,
        sparsity_target: float = 0.05,
        corruption: Literal["none", "mask", "gaussian"] = "none",
        corruption_level: float = 0.0,
        optimizer: OptimizerCallable = _adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: Literal["step", "epoch"] = "step",
    ) -> None:
        super().__init__(optimizer=optimizer, lr_scheduler=lr_scheduler, scheduler_interval=scheduler_interval)
        self.save_hyperparameters(ignore=["network", "optimizer", "lr_scheduler"])
        if loss not in ("bce", "mse"):
            raise ConfigError(f"loss must be 'bce' or 'mse', got {loss!r}")
        if sparsity not in ("none", "kl", "l1"):
            raise ConfigError(f"sparsity must be 'none', 'kl' or 'l1', got {sparsity!r}")
        if corruption not in ("none", "mask", "gaussian"):
            raise ConfigError(f"corruption must be 'none', 'mask' or 'gaussian', got {corruption!r}")
        if corruption == "mask" and not 0.0 <= corruption_level < 1.0:
            raise ConfigError(f"the masked fraction corruption_level must lie in [0, 1), got {corruption_level}")
        if sparsity == "kl" and not isinstance(getattr(network, "code_activation", None), nn.Sigmoid):
            raise ConfigError("sparsity='kl' needs codes in (0, 1): build the network with code_activation='sigmoid'")
        if sparsity == "kl" and not 0.0 < sparsity_target < 1.0:
            raise ConfigError(f"the sparsity target must lie in (0, 1), got {sparsity_target}")
        self.network = network
        self.loss_kind = loss
        self.sparsity = sparsity
        self.sparsity_weight = sparsity_weight
        self.sparsity_target = sparsity_target
        self.corruption = corruption
        self.corruption_level = corruption_level
        self._preview = _PreviewImages()

    def setup(self, stage: str) -> None:
        check_network_fits_data(self.network, getattr(self.trainer, "datamodule", None), classes=False)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.network(x)

    def corrupt(self, x01: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The corrupted input :math:`\\tilde x` of the denoising autoencoder, in ``[0, 1]`` units."""
        if self.corruption == "none" or self.corruption_level == 0:
            return x01
        if self.corruption == "mask":
            keep = torch.rand(x01.shape, generator=generator, device=x01.device) >= self.corruption_level
            return x01 * keep
        return x01 + self.corruption_level * torch.randn(x01.shape, generator=generator, device=x01.device)

    def reconstruction_loss(self, logits: Tensor, target: Tensor) -> Tensor:
        """The per-example reconstruction term, summed over pixels, averaged over the batch."""
        if self.loss_kind == "bce":
            per_pixel = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        else:
            per_pixel = 0.5 * (torch.sigmoid(logits) - target).pow(2)
        return per_pixel.flatten(1).sum(dim=1).mean()

    def sparsity_penalty(self, code: Tensor) -> Tensor:
        if self.sparsity == "kl":
            return kl_sparsity_penalty(code, self.sparsity_target)
        if self.sparsity == "l1":
            return l1_sparsity_penalty(code)
        return code.new_zeros(())

    def training_step(self, batch, batch_idx: int) -> Tensor:
        x, y = batch
        self._preview.remember(x, y, overwrite=False)
        target = to_unit_interval(x)
        logits, code = self.network(self.corrupt(target) * 2 - 1)
        recon = self.reconstruction_loss(logits, target)
        penalty = self.sparsity_penalty(code)
        loss = recon + self.sparsity_weight * penalty
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/recon", recon)
        self.log("train/sparsity", penalty)
        self.log("train/code_mean", code.detach().mean())
        return loss

    def _evaluate(self, batch, batch_idx: int, stage: str) -> None:
        x, _ = batch
        target = to_unit_interval(x)
        logits, code = self.network(x)
        recon = self.reconstruction_loss(logits, target)
        loss = recon + self.sparsity_weight * self.sparsity_penalty(code)
        self.log(f"{stage}/loss", loss, prog_bar=True, sync_dist=True)
        self.log(f"{stage}/recon", recon, sync_dist=True)
        self.log(f"{stage}/mse", (torch.sigmoid(logits) - target).pow(2).mean(), sync_dist=True)
        if self.corruption != "none":
            generator = torch.Generator(device=x.device).manual_seed(batch_idx)
            denoised = torch.sigmoid(self.network(self.corrupt(target, generator) * 2 - 1)[0])
            self.log(f"{stage}/denoise_mse", (denoised - target).pow(2).mean(), sync_dist=True)

    def validation_step(self, batch, batch_idx: int) -> None:
        if batch_idx == 0:
            self._preview.remember(*batch, overwrite=True)
        self._evaluate(batch, batch_idx, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        """The validation metrics on the test set, as ``test/...``."""
        self._evaluate(batch, batch_idx, "test")

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """Reconstructions in ``[-1, 1]`` of images in ``[-1, 1]``."""
        return torch.sigmoid(self.network(x)[0]) * 2 - 1

    @torch.no_grad()
    def preview(self, num_samples: int, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Inputs, (corrupted inputs,) reconstructions: the first validation images (or, before any validation,
        the first training ones); empty before the module has seen a batch."""
        if self._preview.images is None:
            return {}
        x = self._preview.images[:num_samples].to(self.device)
        sheets = {"inputs": x}
        if self.corruption != "none":
            corrupted = (self.corrupt(to_unit_interval(x), generator) * 2 - 1).clamp(-1, 1)
            sheets["corrupted"] = corrupted
            x = corrupted
        sheets["reconstructions"] = self.reconstruct(x)
        return sheets


class VAEModule(GenerativeModule):
    r"""The variational autoencoder (Kingma & Welling 2014), beta-VAE (Higgins et al. 2017) and conditional VAE
    (Sohn et al. 2015), trained on the negative ELBO

    .. math::
        \mathcal{L} = -\mathbb{E}_{q(z \mid x)}[\log p(x \mid z)] + \beta_t\, \mathrm{KL}(q(z \mid x) \,\|\, p(z)),

    one reparameterised sample per image and the analytic Gaussian KL (Kingma & Welling 2014, Eq. 10), averaged
    over the batch, in nats per image. :math:`\beta = 1` is the VAE; :math:`\beta > 1` is the beta-VAE;
    ``kl_warmup_steps`` ramps :math:`\beta_t` linearly from 0 to :math:`\beta` (KL annealing, Bowman et al. 2016;
    Sonderby et al. 2016).

    The likelihood is over ``[0, 1]`` pixels: the ``[-1, 1]`` images are mapped to ``[0, 1]`` and, with
    ``binarize``, binarised (stochastically per batch, as Burda et al. 2016's dynamically binarised MNIST; the
    validation and test images with a seed fixed per batch index). The encoder reads the same (binarised) image
    in ``[-1, 1]``. A conditional network (``network.num_classes > 0``) gets the batch's labels.

    Validation logs ``val/elbo`` (:math:`\beta = 1`, nats per image), ``val/loss`` (the training objective at the
    final :math:`\beta`, the checkpoint monitor), ``val/recon`` and ``val/kl``; on the first ``iwae_num_images``
    images of the first batch, the importance-weighted estimate of :math:`-\log p(x)` with ``iwae_samples`` samples
    (Burda et al. 2016) as ``val/nll_iw`` (nats) and ``val/bpd_iw`` (bits per dimension). Testing logs
    ``test/elbo`` and, with ``test_iwae_samples`` samples (5000 in Burda et al.), ``test/nll_iw`` and
    ``test/bpd_iw`` over the whole test set.

    :meth:`sample` decodes prior samples to the decoder's mean; :meth:`preview` adds reconstructions of validation
    images, latent interpolations between pairs of them and, for a conditional VAE, a sheet with one row per class
    and the same :math:`z` down each column.

    Args:
        network: a :class:`~paperzoo.generative.models.vae.VAE`.
        beta: the KL weight :math:`\beta`.
        kl_warmup_steps: optimiser steps over which :math:`\beta_t` ramps up from 0 (0: no warm-up).
        binarize: ``"none"``, ``"stochastic"`` or ``"threshold"``.
        iwae_samples: K for ``val/nll_iw`` (0 turns it off).
        iwae_num_images: how many validation images it is estimated on.
        test_iwae_samples: K for ``test/nll_iw`` (0 turns it off).
        iwae_chunk_size: samples decoded at once per image in the importance-weighted estimates.
        interpolation_steps: images per interpolation row, both ends included.
        optimizer: see :class:`~paperzoo.core.modules.PaperzooModule`; default Adam, lr 1e-3.
        lr_scheduler: see :class:`~paperzoo.core.modules.PaperzooModule`.
        scheduler_interval: see :class:`~paperzoo.core.modules.PaperzooModule`.
    """

    def __init__(
        self,
        network: nn.Module,
        beta: float = 1.0,
        kl_warmup_steps: int = 0,
        binarize: BinarizeMode = "none",
        iwae_samples: int = 1000,
        iwae_num_images: int = 32,
        test_iwae_samples: int = 5000,
        iwae_chunk_size: int = 100,
        interpolation_steps: int = 8,
        optimizer: OptimizerCallable = _adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: Literal["step", "epoch"] = "step",
    ) -> None:
        super().__init__(optimizer=optimizer, lr_scheduler=lr_scheduler, scheduler_interval=scheduler_interval)
        self.save_hyperparameters(ignore=["network", "optimizer", "lr_scheduler"])
        if beta < 0 or kl_warmup_steps < 0 or iwae_samples < 0 or test_iwae_samples < 0 or interpolation_steps < 2:
            raise ConfigError(
                f"need beta, kl_warmup_steps, iwae_samples, test_iwae_samples >= 0 and interpolation_steps >= 2, got "
                f"{beta}, {kl_warmup_steps}, {iwae_samples}, {test_iwae_samples}, {interpolation_steps}"
            )
        if binarize not in ("none", "stochastic", "threshold"):
            raise ConfigError(f"binarize must be 'none', 'stochastic' or 'threshold', got {binarize!r}")
        self.network = network
        self.beta = beta
        self.kl_warmup_steps = kl_warmup_steps
        self.binarize = binarize
        self.iwae_samples = iwae_samples
        self.iwae_num_images = iwae_num_images
        self.test_iwae_samples = test_iwae_samples
        self.iwae_chunk_size = iwae_chunk_size
        self.interpolation_steps = interpolation_steps
        self._preview = _PreviewImages()

    def setup(self, stage: str) -> None:
        check_network_fits_data(self.network, getattr(self.trainer, "datamodule", None), classes=self.conditional)

    @property
    def conditional(self) -> bool:
        return getattr(self.network, "num_classes", 0) > 0

    @property
    def num_dims(self) -> int:
        return self.network.in_channels * self.network.image_size**2

    def current_beta(self) -> float:
        """:math:`\\beta_t`: ``beta``, ramped linearly over the first ``kl_warmup_steps`` optimiser steps."""
        if self.kl_warmup_steps == 0:
            return self.beta
        return self.beta * min(1.0, self.global_step / self.kl_warmup_steps)

    def prepare(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Images in ``[-1, 1]`` -> the encoder's input in ``[-1, 1]`` and the likelihood's target in ``[0, 1]``."""
        target = binarize(to_unit_interval(x), self.binarize, generator)
        return target * 2 - 1, target

    def elbo_terms(
        self, x_in: Tensor, target: Tensor, labels: Tensor | None = None, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """One-sample :math:`\\log p(x \\mid z)` and the analytic KL, ``(B,)`` each; the ELBO is their difference."""
        decoded, mu, logvar, _ = self.network(x_in, labels, generator)
        return self.network.log_likelihood(decoded, target), gaussian_kl(mu, logvar)

    def _labels(self, labels: Tensor) -> Tensor | None:
        return labels if self.conditional else None

    def _evaluation_generator(self, seed: int) -> torch.Generator:
        return torch.Generator(device=self.device).manual_seed(seed)

    def training_step(self, batch, batch_idx: int) -> Tensor:
        x, y = batch
        self._preview.remember(x, y, overwrite=False)
        x_in, target = self.prepare(x)
        log_px, kl = self.elbo_terms(x_in, target, self._labels(y))
        beta = self.current_beta()
        loss = (-log_px + beta * kl).mean()
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/elbo", (log_px - kl).mean().detach())
        self.log("train/recon", -log_px.mean().detach())
        self.log("train/kl", kl.mean().detach())
        self.log("train/beta", beta)
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        x, y = batch
        if batch_idx == 0:
            self._preview.remember(x, y, overwrite=True)
        generator = self._evaluation_generator(batch_idx)
        x_in, target = self.prepare(x, generator)
        labels = self._labels(y)
        log_px, kl = self.elbo_terms(x_in, target, labels, generator)
        self.log("val/elbo", (log_px - kl).mean(), prog_bar=True, sync_dist=True)
        self.log("val/loss", (-log_px + self.beta * kl).mean(), sync_dist=True)
        self.log("val/recon", -log_px.mean(), sync_dist=True)
        self.log("val/kl", kl.mean(), sync_dist=True)
        if batch_idx == 0 and self.iwae_samples > 0 and self.iwae_num_images > 0:
            n = self.iwae_num_images
            subset_labels = None if labels is None else labels[:n]
            nll = -self.importance_weighted_bound(x_in[:n], target[:n], self.iwae_samples, subset_labels, generator)
            self.log("val/nll_iw", nll.mean(), sync_dist=True, batch_size=len(nll))
            self.log("val/bpd_iw", bits_per_dim(nll.mean(), self.num_dims), sync_dist=True, batch_size=len(nll))

    def test_step(self, batch, batch_idx: int) -> None:
        x, y = batch
        generator = self._evaluation_generator(batch_idx)
        x_in, target = self.prepare(x, generator)
        labels = self._labels(y)
        log_px, kl = self.elbo_terms(x_in, target, labels, generator)
        self.log("test/elbo", (log_px - kl).mean(), sync_dist=True)
        if self.test_iwae_samples > 0:
            nll = -self.importance_weighted_bound(x_in, target, self.test_iwae_samples, labels, generator)
            self.log("test/nll_iw", nll.mean(), sync_dist=True)
            self.log("test/bpd_iw", bits_per_dim(nll.mean(), self.num_dims), sync_dist=True)

    @torch.no_grad()
    def importance_weighted_bound(
        self,
        x_in: Tensor,
        target: Tensor,
        num_samples: int,
        labels: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """The K-sample bound :math:`\\mathcal{L}_K` per image, ``(B,)`` nats (see
        :func:`~paperzoo.generative.losses.importance_weighted_bound`)."""
        return importance_weighted_bound(
            self.network, x_in, target, num_samples, labels, self.iwae_chunk_size, generator
        )

    def _sample_labels(self, num_samples: int, generator: torch.Generator | None, labels: Tensor | None):
        if not self.conditional:
            return None
        if labels is None:
            return torch.randint(self.network.num_classes, (num_samples,), generator=generator, device=self.device)
        return labels.to(self.device)

    @torch.no_grad()
    def decode_to_images(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Latents -> the decoder's mean images in ``[-1, 1]``."""
        return self.network.mean_image(self.network.decode(z, labels)) * 2 - 1

    @torch.no_grad()
    def sample(
        self, num_samples: int, generator: torch.Generator | None = None, labels: Tensor | None = None
    ) -> Tensor:
        """Decode :math:`z \\sim \\mathcal{N}(0, I)` (with the given or uniformly drawn labels when conditional)."""
        z = torch.randn(num_samples, self.network.latent_dim, generator=generator, device=self.device)
        return self.decode_to_images(z, self._sample_labels(num_samples, generator, labels))

    @torch.no_grad()
    def reconstruct(self, x: Tensor, labels: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Decoded posterior means :math:`\\mu(x)`, in ``[-1, 1]``, of images in ``[-1, 1]`` (``generator``: of the
        stochastic binarisation)."""
        x_in, _ = self.prepare(x, generator)
        mu, _ = self.network.encode(x_in, labels)
        return self.decode_to_images(mu, labels)

    @torch.no_grad()
    def interpolate(
        self,
        x_a: Tensor,
        x_b: Tensor,
        steps: int,
        labels: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Decoded points on the segment between the posterior means of ``x_a`` and ``x_b`` (``(P, C, H, W)`` each),
        ``(P * steps, C, H, W)``: row p holds the ``steps`` images from ``x_a[p]`` to ``x_b[p]``. A conditional VAE
        decodes the whole row with ``labels`` (the class of ``x_a``)."""
        mu_a, _ = self.network.encode(self.prepare(x_a, generator)[0], labels)
        mu_b, _ = self.network.encode(self.prepare(x_b, generator)[0], labels)
        alpha = torch.linspace(0, 1, steps, device=mu_a.device).view(1, steps, 1)  # (1, S, 1)
        z = (1 - alpha) * mu_a.unsqueeze(1) + alpha * mu_b.unsqueeze(1)  # (P, S, D)
        row_labels = None if labels is None else labels.repeat_interleave(steps)  # (P*S,)
        return self.decode_to_images(z.flatten(0, 1), row_labels)

    @torch.no_grad()
    def preview(
        self, num_samples: int, generator: torch.Generator | None = None
    ) -> dict[str, Tensor | tuple[Tensor, int]]:
        """Samples; once a batch has been seen, reconstructions of validation images and interpolations between
        pairs of them (a row per pair); for a conditional VAE, samples by class (a row per class, a shared
        :math:`z` down each column)."""
        sheets = {"samples": self.sample(num_samples, generator=generator)}
        if self.conditional:
            classes = self.network.num_classes
            columns = max(1, num_samples // classes)
            z = torch.randn(columns, self.network.latent_dim, generator=generator, device=self.device)
            labels = torch.arange(classes, device=self.device).repeat_interleave(columns)  # (classes*columns,)
            sheets["samples_by_class"] = (self.decode_to_images(z.repeat(classes, 1), labels), columns)
        if self._preview.images is None:
            return sheets
        x = self._preview.images[:num_samples].to(self.device)
        y = self._preview.labels[: len(x)].to(self.device)
        sheets["inputs"] = x
        sheets["reconstructions"] = self.reconstruct(x, self._labels(y), generator)
        pairs = min(len(x) // 2, max(1, num_samples // self.interpolation_steps))
        if pairs > 0:
            labels = None if not self.conditional else y[0 : 2 * pairs : 2]
            x_a, x_b = x[0 : 2 * pairs : 2], x[1 : 2 * pairs : 2]
            rows = self.interpolate(x_a, x_b, self.interpolation_steps, labels, generator)
            sheets["interpolations"] = (rows, self.interpolation_steps)
        return sheets
