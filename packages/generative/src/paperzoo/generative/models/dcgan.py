r"""DCGAN, and its discriminator as the critic of the Wasserstein GANs.

- Radford, Metz & Chintala 2016, "Unsupervised Representation Learning with Deep Convolutional Generative
  Adversarial Networks" (ICLR 2016, arXiv 1511.06434): :class:`DCGANGenerator` and :class:`DCGANDiscriminator`,
  the all-convolutional networks of section 3 (Fig. 1), with the initialisation of section 4.
- Arjovsky, Chintala & Bottou 2017, "Wasserstein GAN" (ICML 2017, arXiv 1701.07875): the critic is the DCGAN
  discriminator without the sigmoid (ours never has one: it returns logits, and the losses live in
  :class:`~paperzoo.generative.modules.gan.GANModule`), with batch norm.
- Gulrajani et al. 2017, "Improved Training of Wasserstein GANs" (NeurIPS 2017, arXiv 1704.00028): with a gradient
  penalty the critic's outputs must not depend on the other images of the batch, so section 4 drops batch norm and
  recommends layer normalisation instead: ``wgan_critic``.

Both networks double (discriminator) or halve (generator) the resolution with 4x4 stride-2 convolutions between
4x4 and ``image_size``, which must be a power of two of at least 8. The 64x64 generator of Fig. 1 has 1024, 512,
256 and 128 channels at 4, 8, 16 and 32 pixels (``base_channels=128``); the authors' released code halves them
(``ngf=64``) and gives the discriminator 64, 128, 256 and 512 (``ndf=64``).
The conditional variant (Mirza & Osindero 2014, "Conditional Generative Adversarial Nets", arXiv 1411.1784)
concatenates a one-hot label to the latent vector of the generator and, as constant maps, to the image entering
the discriminator.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.core.errors import ConfigError
from paperzoo.generative.registry import register_model

Norm = Literal["batch", "layer", "none"]


def _num_doublings(image_size: int) -> int:
    """The number of stride-2 layers between 4x4 and ``image_size`` (a power of two >= 8)."""
    if image_size < 8 or image_size & (image_size - 1):
        raise ConfigError(f"image_size={image_size} must be a power of two of at least 8 (8, 16, 32, 64, ...)")
    return image_size.bit_length() - 3


def _norm_layer(norm: Norm, channels: int) -> nn.Module:
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "layer":
        # layer norm over (C, H, W) with a scale and shift per channel, as in Gulrajani et al.'s critic
        return nn.GroupNorm(1, channels)
    if norm == "none":
        return nn.Identity()
    raise ConfigError(f"norm={norm!r} must be 'batch', 'layer' or 'none'")


def dcgan_init_(module: nn.Module, std: float = 0.02) -> None:
    """Section 4 of Radford et al. 2016: every weight from :math:`\\mathcal{N}(0, 0.02^2)`; biases zero.

    The scales of normalisation layers, which the paper does not mention, are drawn from
    :math:`\\mathcal{N}(1, 0.02^2)` as in the authors' released code.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.GroupNorm | nn.InstanceNorm2d | nn.LayerNorm) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)


class DCGANGenerator(nn.Module):
    r"""The DCGAN generator of Radford et al. 2016, Fig. 1.

    .. math::
        z \in \mathbb{R}^{d} \xrightarrow{\text{project}} 4 \times 4 \times C_0
        \xrightarrow{\text{ConvT}_{4, 2} + \text{BN} + \text{ReLU}} \cdots
        \xrightarrow{\text{ConvT}_{4, 2} + \tanh} \text{image\_size}^2 \times C_{out}

    The projection is a 4x4 transposed convolution of the 1x1 latent (a fully connected layer reshaped); each
    following layer halves the channels and doubles the resolution. Batch norm and ReLU follow every layer but the
    output one, which has a bias and tanh, so images lie in :math:`(-1, 1)`.

    Args:
        latent_dim: the length :math:`d` of :math:`z \sim \mathcal{N}(0, I)` (100 in the paper).
        image_size: output height and width, a power of two >= 8.
        out_channels: image channels (3 for colour, 1 for MNIST).
        base_channels: channels of the layer before the output; the 4x4 layer has ``base_channels * image_size / 8``
            (128 in Fig. 1, giving 1024 at 4x4; the authors' code uses 64).
        num_classes: 0 for an unconditional generator; else a one-hot label is appended to :math:`z`.

    Shapes:
        - **z:** :math:`(B, d)` (or :math:`(B, d, 1, 1)`).
        - **labels:** :math:`(B,)` integer classes, only when conditional.
        - **output:** :math:`(B, C_{out}, S, S)` in :math:`(-1, 1)`.
    """

    def __init__(
        self,
        latent_dim: int = 100,
        image_size: int = 64,
        out_channels: int = 3,
        base_channels: int = 128,
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        if latent_dim < 1 or base_channels < 1 or out_channels < 1 or num_classes < 0:
            raise ConfigError(
                f"latent_dim={latent_dim}, base_channels={base_channels} and out_channels={out_channels} must be "
                f"positive and num_classes={num_classes} non-negative"
            )
        self.latent_dim = latent_dim
        self.image_size = image_size
        self.out_channels = out_channels
        self.num_classes = num_classes
        doublings = _num_doublings(image_size)
        channels = base_channels * 2 ** (doublings - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim + num_classes, channels, 4, 1, 0, bias=False),  # (B, C_0, 4, 4)
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
        ]
        for _ in range(doublings - 1):
            layers += [
                nn.ConvTranspose2d(channels, channels // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(channels // 2),
                nn.ReLU(inplace=True),
            ]
            channels //= 2
        layers += [nn.ConvTranspose2d(channels, out_channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        dcgan_init_(self)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        z = z.flatten(1)  # (B, d)
        if self.num_classes:
            if labels is None:
                raise ValueError("a conditional DCGANGenerator needs labels")
            z = torch.cat([z, F.one_hot(labels, self.num_classes).to(z.dtype)], dim=1)  # (B, d + K)
        return self.net(z[:, :, None, None])  # (B, C_out, S, S)

    def example_inputs(self, batch_size: int = 2) -> tuple[Tensor, ...]:
        device = next(self.parameters()).device
        z = torch.randn(batch_size, self.latent_dim, device=device)
        if self.num_classes:
            return z, torch.arange(batch_size, device=device) % self.num_classes
        return (z,)


class DCGANDiscriminator(nn.Module):
    r"""The DCGAN discriminator of Radford et al. 2016, and the critic of the Wasserstein GANs.

    .. math::
        x \xrightarrow{\text{Conv}_{4, 2} + \text{LReLU}_{0.2}}
        \xrightarrow{\text{Conv}_{4, 2} + \text{norm} + \text{LReLU}_{0.2}} \cdots 4 \times 4 \times C
        \xrightarrow{\text{Conv}_{4}} D(x) \in \mathbb{R}

    Strided convolutions instead of pooling, no fully connected hidden layer, no normalisation on the first layer
    (section 3). Each layer doubles the channels and halves the resolution down to 4x4; a 4x4 convolution then
    gives one real number per image. That number is a logit (the DCGAN loss applies the sigmoid inside the binary
    cross-entropy) or a critic value (WGAN): there is no sigmoid here.

    Args:
        image_size: input height and width, a power of two >= 8.
        in_channels: image channels.
        base_channels: channels of the first layer (the authors' ``ndf``, 64).
        norm: ``"batch"`` (DCGAN, and the critic of WGAN with weight clipping), ``"layer"`` (layer norm over
            ``(C, H, W)``, the WGAN-GP critic) or ``"none"``.
        num_classes: 0 for an unconditional discriminator; else a one-hot label enters as constant input maps.
        negative_slope: of the LeakyReLU (0.2 in the paper).

    Shapes:
        - **x:** :math:`(B, C_{in}, S, S)`.
        - **labels:** :math:`(B,)` integer classes, only when conditional.
        - **output:** :math:`(B,)` logits or critic values.
    """

    def __init__(
        self,
        image_size: int = 64,
        in_channels: int = 3,
        base_channels: int = 64,
        norm: Norm = "batch",
        num_classes: int = 0,
        negative_slope: float = 0.2,
    ) -> None:
        super().__init__()
        if base_channels < 1 or in_channels < 1 or num_classes < 0:
            raise ConfigError(
                f"base_channels={base_channels} and in_channels={in_channels} must be positive and "
                f"num_classes={num_classes} non-negative"
            )
        self.image_size = image_size
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.norm = norm
        doublings = _num_doublings(image_size)
        channels = base_channels
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels + num_classes, channels, 4, 2, 1),
            nn.LeakyReLU(negative_slope, inplace=True),
        ]
        for _ in range(doublings - 1):
            layers += [
                nn.Conv2d(channels, channels * 2, 4, 2, 1, bias=norm == "none"),
                _norm_layer(norm, channels * 2),
                nn.LeakyReLU(negative_slope, inplace=True),
            ]
            channels *= 2
        layers.append(nn.Conv2d(channels, 1, 4, 1, 0))  # (B, 1, 1, 1)
        self.net = nn.Sequential(*layers)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        dcgan_init_(self)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.num_classes:
            if labels is None:
                raise ValueError("a conditional DCGANDiscriminator needs labels")
            maps = F.one_hot(labels, self.num_classes).to(x.dtype)[:, :, None, None]  # (B, K, 1, 1)
            x = torch.cat([x, maps.expand(-1, -1, *x.shape[2:])], dim=1)  # (B, C_in + K, S, S)
        return self.net(x).flatten()  # (B,)

    def example_inputs(self, batch_size: int = 2) -> tuple[Tensor, ...]:
        device = next(self.parameters()).device
        x = torch.rand(batch_size, self.in_channels, self.image_size, self.image_size, device=device) * 2 - 1
        if self.num_classes:
            return x, torch.arange(batch_size, device=device) % self.num_classes
        return (x,)


@register_model
def dcgan_generator(**kwargs) -> DCGANGenerator:
    """The 64x64 DCGAN generator of Radford et al. 2016, Fig. 1 (z of 100, 1024 channels at 4x4); pass
    ``image_size=32`` for CIFAR-10 and ``base_channels=64`` for the width of the authors' code."""
    return DCGANGenerator(**kwargs)


@register_model
def dcgan_discriminator(**kwargs) -> DCGANDiscriminator:
    """The 64x64 DCGAN discriminator of Radford et al. 2016 (ndf 64, batch norm); also the WGAN critic of
    Arjovsky et al. 2017, which trains it with weight clipping."""
    return DCGANDiscriminator(**kwargs)


@register_model
def wgan_critic(**kwargs) -> DCGANDiscriminator:
    """The WGAN-GP critic of Gulrajani et al. 2017: the DCGAN discriminator with layer norm for batch norm."""
    return DCGANDiscriminator(**{"norm": "layer", **kwargs})


SMALL_KWARGS: dict[str, dict] = {
    "dcgan_generator": {"latent_dim": 8, "image_size": 8, "out_channels": 3, "base_channels": 4},
    "dcgan_discriminator": {"image_size": 16, "in_channels": 3, "base_channels": 4},
    "wgan_critic": {"image_size": 16, "in_channels": 3, "base_channels": 4},
}
