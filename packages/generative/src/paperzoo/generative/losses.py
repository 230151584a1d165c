r"""Losses and likelihood terms of the autoencoder, VAE and RBM families, as plain tensor functions.

- Ng, "Sparse autoencoder" (CS294A lecture notes, 2011): :func:`kl_sparsity_penalty`.
- Kingma & Welling 2014, "Auto-Encoding Variational Bayes" (ICLR 2014, arXiv 1312.6114), Eq. 10: the ELBO with an
  analytic Gaussian KL, :func:`gaussian_kl`, :func:`bernoulli_log_likelihood`, :func:`gaussian_log_likelihood`.
- Burda, Grosse & Salakhutdinov 2016, "Importance Weighted Autoencoders" (ICLR 2016, arXiv 1509.00519):
  :func:`log_importance_weights`, :func:`importance_weighted_bound`, and :func:`bits_per_dim` to report it.

Image conventions: the data arrive in ``[-1, 1]``; Bernoulli and Gaussian likelihoods are over pixels in ``[0, 1]``
(:func:`to_unit_interval`), optionally binarised (:func:`binarize`), as in the papers' binarised MNIST.
"""

from __future__ import annotations

import math
from typing import Literal, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from paperzoo.core.errors import ConfigError

BinarizeMode = Literal["none", "stochastic", "threshold"]


def to_unit_interval(images: Tensor) -> Tensor:
    """Images in ``[-1, 1]`` -> ``[0, 1]``, clamped (the Bernoulli targets)."""
    return images.add(1.0).mul(0.5).clamp(0.0, 1.0)


def binarize(x01: Tensor, mode: BinarizeMode, generator: torch.Generator | None = None) -> Tensor:
    """Binary images from ``[0, 1]`` intensities.

    Args:
        x01: intensities in ``[0, 1]``.
        mode: ``"stochastic"`` draws each pixel from Bernoulli(intensity) (the dynamic binarisation of MNIST used by
            Burda et al. 2016); ``"threshold"`` sets pixels above 0.5 (above 0 in ``[-1, 1]``) to 1; ``"none"``
            returns the intensities unchanged.
        generator: random source for ``"stochastic"``, on ``x01``'s device.
    """
    if mode == "none":
        return x01
    if mode == "stochastic":
        return torch.bernoulli(x01, generator=generator)
    if mode == "threshold":
        return (x01 > 0.5).to(x01.dtype)
    raise ConfigError(f"binarize must be 'none', 'stochastic' or 'threshold', got {mode!r}")


def kl_sparsity_penalty(activations: Tensor, target: float) -> Tensor:
    r"""The sparse autoencoder's penalty (Ng, CS294A notes):
    :math:`\sum_j \rho \log\frac{\rho}{\hat\rho_j} + (1-\rho)\log\frac{1-\rho}{1-\hat\rho_j}`,
    with :math:`\hat\rho_j` the batch mean of code unit j's sigmoid activation.

    Args:
        activations: ``(B, K)`` code activations in ``(0, 1)``.
        target: the target mean activation :math:`\rho` in ``(0, 1)``.

    Returns:
        A scalar: the sum over the K units (not a mean), as in the notes.
    """
    if not 0.0 < target < 1.0:
        raise ConfigError(f"the sparsity target must lie in (0, 1), got {target}")
    rho_hat = activations.mean(dim=0).clamp(1e-6, 1.0 - 1e-6)  # (K,)
    rho = torch.full_like(rho_hat, target)
    kl = rho * (rho.log() - rho_hat.log()) + (1.0 - rho) * (torch.log1p(-rho) - torch.log1p(-rho_hat))
    return kl.sum()


def l1_sparsity_penalty(codes: Tensor) -> Tensor:
    """The L1 norm of each code, averaged over the batch: ``(B, K)`` -> scalar."""
    return codes.abs().sum(dim=1).mean()


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    r""":math:`\mathrm{KL}(\mathcal{N}(\mu, \sigma^2) \,\|\, \mathcal{N}(0, I))
    = \tfrac12 \sum_j (\mu_j^2 + \sigma_j^2 - 1 - \log\sigma_j^2)` (Kingma & Welling 2014, Appendix B).

    Shapes: ``(B, D)`` each -> ``(B,)``.
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


def bernoulli_log_likelihood(logits: Tensor, target: Tensor) -> Tensor:
    r""":math:`\sum_i t_i \log p_i + (1 - t_i) \log(1 - p_i)` with :math:`p = \mathrm{sigmoid}(\text{logits})`.

    Shapes: ``(B, ...)`` each, targets in ``[0, 1]`` -> ``(B,)``.
    """
    return -F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(1).sum(dim=1)


def gaussian_log_likelihood(mean: Tensor, target: Tensor, std: float) -> Tensor:
    r""":math:`\sum_i \log \mathcal{N}(t_i; m_i, \sigma^2)`, the normalised density with a fixed :math:`\sigma`.

    Shapes: ``(B, ...)`` each -> ``(B,)``.
    """
    z = (target - mean) / std
    log_density = -0.5 * z.pow(2) - math.log(std) - 0.5 * math.log(2 * math.pi)
    return log_density.flatten(1).sum(dim=1)


def standard_normal_log_density(z: Tensor) -> Tensor:
    """:math:`\\log \\mathcal{N}(z; 0, I)` summed over the last dimension: ``(..., D)`` -> ``(...)``."""
    return (-0.5 * z.pow(2) - 0.5 * math.log(2 * math.pi)).sum(dim=-1)


def diagonal_gaussian_log_density(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """:math:`\\log \\mathcal{N}(z; \\mu, \\mathrm{diag}(e^{\\text{logvar}}))` summed over the last dimension.

    Shapes: ``(..., D)`` each (broadcast) -> ``(...)``.
    """
    return (-0.5 * ((z - mu).pow(2) * torch.exp(-logvar) + logvar + math.log(2 * math.pi))).sum(dim=-1)


def log_mean_exp(values: Tensor, dim: int = 0) -> Tensor:
    """:math:`\\log \\frac1K \\sum_k e^{v_k}` along ``dim``, computed stably."""
    return torch.logsumexp(values, dim=dim) - math.log(values.size(dim))


class LatentVariableModel(Protocol):
    """What :func:`log_importance_weights` needs of a VAE (:class:`~paperzoo.generative.models.vae.VAE`)."""

    def encode(self, x: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor]: ...

    def decode(self, z: Tensor, labels: Tensor | None = None) -> Tensor: ...

    def log_likelihood(self, output: Tensor, target: Tensor) -> Tensor: ...


def log_importance_weights(
    model: LatentVariableModel,
    x: Tensor,
    target: Tensor,
    num_samples: int,
    labels: Tensor | None = None,
    chunk_size: int = 64,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Burda et al. 2016: :math:`\log w_k = \log p(x \mid z_k) + \log p(z_k) - \log q(z_k \mid x)`,
    :math:`z_k \sim q(z \mid x)`.

    Args:
        model: a VAE: ``encode`` gives ``(mu, logvar)``, ``decode`` the likelihood's parameters, ``log_likelihood``
            the per-example :math:`\log p(x \mid z)`.
        x: the encoder's input images ``(B, C, H, W)`` in ``[-1, 1]``.
        target: the images the likelihood is evaluated on, ``(B, C, H, W)`` in ``[0, 1]``.
        num_samples: K.
        labels: ``(B,)`` class labels for a conditional VAE.
        chunk_size: samples decoded at once, each for the whole batch (bounds the memory to ``chunk_size * B``
            decoded images).
        generator: random source for the samples.

    Returns:
        ``(K, B)`` log weights. ``log_mean_exp`` over K is the IWAE bound; its mean with K = 1 is the ELBO.
    """
    mu, logvar = model.encode(x, labels)  # (B, D) each
    batch = x.size(0)
    chunks = []
    for start in range(0, num_samples, chunk_size):
        k = min(chunk_size, num_samples - start)
        eps = torch.randn((k, *mu.shape), generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + torch.exp(0.5 * logvar) * eps  # (k, B, D)
        repeated_labels = None if labels is None else labels.repeat(k)  # (k*B,)
        output = model.decode(z.flatten(0, 1), repeated_labels)  # (k*B, C, H, W)
        log_px = model.log_likelihood(output, target.repeat(k, *([1] * (target.dim() - 1)))).view(k, batch)
        chunks.append(log_px + standard_normal_log_density(z) - diagonal_gaussian_log_density(z, mu, logvar))
    return torch.cat(chunks)  # (K, B)


def importance_weighted_bound(
    model: LatentVariableModel,
    x: Tensor,
    target: Tensor,
    num_samples: int,
    labels: Tensor | None = None,
    chunk_size: int = 64,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""The K-sample importance-weighted lower bound :math:`\mathcal{L}_K = \log \frac1K \sum_k w_k`
    (Burda et al. 2016), per example, in nats; :math:`-\mathcal{L}_K` for a large K (5000 in the paper) is
    their estimate of the negative log-likelihood. Arguments as :func:`log_importance_weights`; returns ``(B,)``.
    """
    return log_mean_exp(log_importance_weights(model, x, target, num_samples, labels, chunk_size, generator), dim=0)


def bits_per_dim(nll_nats: Tensor | float, num_dims: int) -> Tensor | float:
    """A negative log-likelihood in nats per example -> bits per dimension: ``nll / (num_dims * ln 2)``."""
    return nll_nats / (num_dims * math.log(2.0))
