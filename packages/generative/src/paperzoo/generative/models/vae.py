r"""Variational autoencoders, MLP and conv, unconditional or conditioned on a class label.

- Kingma & Welling 2014, "Auto-Encoding Variational Bayes" (ICLR 2014, arXiv 1312.6114): a Gaussian encoder
  :math:`q_\phi(z \mid x) = \mathcal{N}(\mu, \mathrm{diag}\,\sigma^2)`, the reparameterisation
  :math:`z = \mu + \sigma \odot \epsilon`, :math:`\epsilon \sim \mathcal{N}(0, I)` (section 2.4), and a Bernoulli or
  Gaussian decoder :math:`p_\theta(x \mid z)` (Appendix C); the MLP has one hidden tanh layer of 500 units for MNIST.
- Sohn, Lee & Yan 2015, "Learning Structured Output Representation using Deep Conditional Generative Models"
  (NeurIPS 2015): the conditional VAE; here the condition is a class label, its one-hot vector concatenated to the
  encoder's input and to :math:`z`.

The ELBO, the beta weighting (Higgins et al. 2017) and the importance-weighted bound (Burda et al. 2016) are in
:mod:`paperzoo.generative.losses` and :class:`~paperzoo.generative.modules.autoencoder.VAEModule`.

The encoder reads images in ``[-1, 1]``; the decoder describes pixels in ``[0, 1]``: Bernoulli logits, or the mean of
a Gaussian with a fixed standard deviation ``obs_std``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.core.errors import ConfigError
from paperzoo.generative.losses import bernoulli_log_likelihood, gaussian_log_likelihood
from paperzoo.generative.models.autoencoder import ConvDecoder, ConvEncoder, make_activation
from paperzoo.generative.registry import register_model

Likelihood = Literal["bernoulli", "gaussian"]


def _mlp(widths: Sequence[int], activation: str) -> nn.Sequential:
    """``Linear -> activation`` between consecutive widths, the last linear layer without activation."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(make_activation(activation))
    return nn.Sequential(*layers)


class VAE(nn.Module):
    r"""The variational autoencoder of Kingma & Welling 2014; with ``num_classes > 0`` the conditional VAE.

    Subclasses build ``self.encoder`` (encoder input -> ``(B, 2 * latent_dim)``: :math:`\mu` and
    :math:`\log\sigma^2`) and ``self.decoder`` (:math:`z`, with the one-hot label appended when conditional ->
    ``(B, C, H, W)``), and say how the label joins the encoder input in :meth:`_encoder_input`.

    Args:
        in_channels: image channels.
        image_size: image side.
        latent_dim: dimension of :math:`z`.
        num_classes: 0 for an unconditional VAE; otherwise the number of classes of the conditional VAE.
        likelihood: ``"bernoulli"`` (decoder gives logits) or ``"gaussian"`` (decoder gives the mean, in [0, 1]
            space, of a Gaussian with standard deviation ``obs_std``).
        obs_std: the Gaussian decoder's fixed standard deviation (unused for Bernoulli).

    Shapes:
        - **x:** ``(B, C, H, W)`` in ``[-1, 1]``; **labels:** ``(B,)`` int64 when conditional.
        - **output:** ``(decoded, mu, logvar, z)``: ``(B, C, H, W)`` likelihood parameters, ``(B, latent_dim)``
          each for the others.
    """

    def __init__(
        self,
        in_channels: int,
        image_size: int,
        latent_dim: int,
        num_classes: int = 0,
        likelihood: Likelihood = "bernoulli",
        obs_std: float = 0.1,
    ) -> None:
        super().__init__()
        if likelihood not in ("bernoulli", "gaussian"):
            raise ConfigError(f"likelihood must be 'bernoulli' or 'gaussian', got {likelihood!r}")
        if num_classes < 0 or latent_dim < 1 or obs_std <= 0:
            raise ConfigError(
                f"need num_classes >= 0, latent_dim >= 1 and obs_std > 0, got {num_classes}, {latent_dim}, {obs_std}"
            )
        self.in_channels = in_channels
        self.image_size = image_size
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        self.likelihood = likelihood
        self.obs_std = obs_std

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    def _one_hot(self, labels: Tensor | None, batch_size: int, dtype: torch.dtype) -> Tensor:
        if labels is None:
            raise ConfigError("this conditional VAE needs `labels` (class indices, shape (B,))")
        if labels.shape != (batch_size,):
            raise ConfigError(f"labels must have shape ({batch_size},), got {tuple(labels.shape)}")
        return F.one_hot(labels, self.num_classes).to(dtype)

    def _encoder_input(self, x: Tensor, one_hot: Tensor | None) -> Tensor:
        raise NotImplementedError

    def encode(self, x: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Images (and labels) -> ``(mu, logvar)`` of :math:`q(z \\mid x)`, ``(B, latent_dim)`` each."""
        one_hot = self._one_hot(labels, x.size(0), x.dtype) if self.conditional else None
        stats = self.encoder(self._encoder_input(x, one_hot))  # (B, 2*D)
        mu, logvar = stats.chunk(2, dim=1)
        return mu, logvar

    @staticmethod
    def reparameterize(mu: Tensor, logvar: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """:math:`z = \\mu + e^{\\text{logvar}/2} \\odot \\epsilon`, differentiable in ``mu`` and ``logvar``."""
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps

    def decode(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Latents ``(B, latent_dim)`` (and labels) -> likelihood parameters ``(B, C, H, W)``."""
        if self.conditional:
            z = torch.cat([z, self._one_hot(labels, z.size(0), z.dtype)], dim=1)  # (B, D + num_classes)
        return self.decoder(z)

    def mean_image(self, decoded: Tensor) -> Tensor:
        """The decoder's mean :math:`E[x \\mid z]` in ``[0, 1]``."""
        return torch.sigmoid(decoded) if self.likelihood == "bernoulli" else decoded.clamp(0.0, 1.0)

    def log_likelihood(self, decoded: Tensor, target: Tensor) -> Tensor:
        """:math:`\\log p(x \\mid z)` per example, ``(B,)``, for targets in ``[0, 1]``."""
        if self.likelihood == "bernoulli":
            return bernoulli_log_likelihood(decoded, target)
        return gaussian_log_likelihood(decoded, target, self.obs_std)

    def forward(
        self, x: Tensor, labels: Tensor | None = None, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        mu, logvar = self.encode(x, labels)
        z = self.reparameterize(mu, logvar, generator)
        return self.decode(z, labels), mu, logvar, z

    def example_inputs(self, batch_size: int = 2) -> tuple[Tensor, ...]:
        device = next(self.parameters()).device
        x = torch.rand(batch_size, self.in_channels, self.image_size, self.image_size, device=device) * 2 - 1
        if not self.conditional:
            return (x,)
        return x, torch.randint(self.num_classes, (batch_size,), device=device)


class MLPVAE(VAE):
    """A fully connected VAE (Kingma & Welling 2014, Appendix C): flattened image (with the one-hot label when
    conditional) -> hidden layers -> :math:`\\mu, \\log\\sigma^2`; :math:`z` (with the label) -> hidden layers ->
    ``C*H*W`` outputs.

    Args:
        in_channels: image channels.
        image_size: image side.
        hidden_dims: widths of the encoder's hidden layers; the decoder's are the same, reversed.
        latent_dim: dimension of :math:`z`.
        num_classes: 0, or the classes of a conditional VAE.
        activation: of the hidden layers (tanh in the paper).
        likelihood: ``"bernoulli"`` or ``"gaussian"``.
        obs_std: the Gaussian decoder's standard deviation.

    Shapes: see :class:`VAE`.
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 28,
        hidden_dims: Sequence[int] = (500,),
        latent_dim: int = 20,
        num_classes: int = 0,
        activation: str = "tanh",
        likelihood: Likelihood = "bernoulli",
        obs_std: float = 0.1,
    ) -> None:
        super().__init__(in_channels, image_size, latent_dim, num_classes, likelihood, obs_std)
        pixels = in_channels * image_size * image_size
        self.encoder = _mlp([pixels + num_classes, *hidden_dims, 2 * latent_dim], activation)
        self.decoder = nn.Sequential(
            _mlp([latent_dim + num_classes, *reversed(hidden_dims), pixels], activation),
            nn.Unflatten(1, (in_channels, image_size, image_size)),
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                module.reset_parameters()

    def _encoder_input(self, x: Tensor, one_hot: Tensor | None) -> Tensor:
        flat = x.flatten(1)  # (B, C*H*W)
        return flat if one_hot is None else torch.cat([flat, one_hot], dim=1)  # (B, C*H*W + num_classes)


class ConvVAE(VAE):
    """A convolutional VAE: :class:`~paperzoo.generative.models.autoencoder.ConvEncoder` to
    :math:`\\mu, \\log\\sigma^2` and :class:`~paperzoo.generative.models.autoencoder.ConvDecoder` back. When
    conditional, the one-hot label enters the encoder as ``num_classes`` constant input planes.

    Args:
        in_channels: image channels.
        image_size: image side, divisible by ``2 ** len(channels)``.
        channels: widths of the encoder's stride-2 convolutions (mirrored in the decoder).
        latent_dim: dimension of :math:`z`.
        num_classes: 0, or the classes of a conditional VAE.
        activation: after each (transposed) convolution.
        likelihood: ``"bernoulli"`` or ``"gaussian"``.
        obs_std: the Gaussian decoder's standard deviation.

    Shapes: see :class:`VAE`.
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 28,
        channels: Sequence[int] = (32, 64),
        latent_dim: int = 16,
        num_classes: int = 0,
        activation: str = "relu",
        likelihood: Likelihood = "bernoulli",
        obs_std: float = 0.1,
    ) -> None:
        super().__init__(in_channels, image_size, latent_dim, num_classes, likelihood, obs_std)
        self.encoder = ConvEncoder(in_channels + num_classes, image_size, channels, 2 * latent_dim, activation)
        self.decoder = ConvDecoder(latent_dim + num_classes, in_channels, image_size, channels, activation)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                module.reset_parameters()

    def _encoder_input(self, x: Tensor, one_hot: Tensor | None) -> Tensor:
        if one_hot is None:
            return x
        planes = one_hot[:, :, None, None].expand(-1, -1, *x.shape[-2:])  # (B, num_classes, H, W)
        return torch.cat([x, planes], dim=1)  # (B, C + num_classes, H, W)


@register_model
def vae_mlp(**kwargs) -> MLPVAE:
    """Kingma & Welling 2014's MNIST VAE: 784-500-(20+20), tanh, Bernoulli decoder 20-500-784."""
    return MLPVAE(**kwargs)


@register_model
def vae_conv(**kwargs) -> ConvVAE:
    """A small conv VAE for 28x28 images: 32 and 64 channels, a 16-d latent, Bernoulli decoder."""
    return ConvVAE(**kwargs)


@register_model
def cvae_mlp(**kwargs) -> MLPVAE:
    """The conditional version of :func:`vae_mlp` (Sohn et al. 2015) for 10 classes."""
    return MLPVAE(**{"num_classes": 10, **kwargs})


@register_model
def cvae_conv(**kwargs) -> ConvVAE:
    """The conditional version of :func:`vae_conv` (Sohn et al. 2015) for 10 classes."""
    return ConvVAE(**{"num_classes": 10, **kwargs})


SMALL_KWARGS: dict[str, dict] = {
    "vae_mlp": dict(image_size=8, hidden_dims=(16,), latent_dim=2),
    "vae_conv": dict(image_size=8, channels=(4, 8), latent_dim=2),
    "cvae_mlp": dict(image_size=8, hidden_dims=(16,), latent_dim=2, num_classes=3),
    "cvae_conv": dict(image_size=8, channels=(4, 8), latent_dim=2, num_classes=3),
}
