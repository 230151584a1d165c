r"""The networks of CycleGAN: a ResNet generator and the 70x70 PatchGAN discriminator.

- Zhu, Park, Isola & Efros 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial Networks"
  (ICCV 2017, arXiv 1703.10593), section 4 and appendix 7.2: :class:`ResnetGenerator`, after Johnson, Alahi &
  Fei-Fei 2016, "Perceptual Losses for Real-Time Style Transfer and Super-Resolution" (ECCV 2016), with instance
  normalisation (Ulyanov et al. 2016) and reflection padding; 9 residual blocks for 256x256 images, 6 for 128x128:

  ``c7s1-64, d128, d256, R256 x 9, u128, u64, c7s1-3``

  (``c7s1-k``: 7x7 convolution, stride 1, k filters, instance norm, ReLU; ``dk``: 3x3 convolution, stride 2;
  ``Rk``: residual block of two 3x3 convolutions; ``uk``: 3x3 fractionally-strided convolution, stride 1/2.)
- Isola, Zhu, Zhou & Efros 2017, "Image-to-Image Translation with Conditional Adversarial Networks" (CVPR 2017,
  arXiv 1611.07004), section 3.2.2 and appendix 6.1.2: :class:`PatchGANDiscriminator`, the 70x70 PatchGAN
  ``C64-C128-C256-C512`` that classifies each overlapping 70x70 patch as real or fake.

Both initialise their weights from :math:`\mathcal{N}(0, 0.02^2)` (appendix 7.1 of Zhu et al.). Instance norm has
no affine parameters and no running statistics, as in the authors' code; a convolution followed by it has no bias,
which the normalisation would subtract anyway.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from paperzoo.core.errors import ConfigError
from paperzoo.generative.registry import register_model

Norm = Literal["instance", "batch", "none"]


def _norm_layer(norm: Norm, channels: int) -> nn.Module:
    if norm == "instance":
        return nn.InstanceNorm2d(channels)
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "none":
        return nn.Identity()
    raise ConfigError(f"norm={norm!r} must be 'instance', 'batch' or 'none'")


def _normal_init_(module: nn.Module, std: float = 0.02) -> None:
    """Appendix 7.1 of Zhu et al. 2017: weights from :math:`\\mathcal{N}(0, 0.02^2)`, biases zero."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)


class ResidualBlock(nn.Module):
    r"""The residual block ``Rk`` of Johnson et al. 2016 as CycleGAN uses it (no activation after the sum):

    .. math:: y = x + \mathrm{IN}(\mathrm{conv}(\mathrm{ReLU}(\mathrm{IN}(\mathrm{conv}(\mathrm{pad}(x))))))

    with 3x3 convolutions after a reflection padding of 1, so the block keeps the resolution.

    Args:
        channels: input and output channels ``k``.
        norm: ``"instance"`` (the paper), ``"batch"`` or ``"none"``.

    Shapes:
        - input and output: :math:`(B, k, H, W)`.
    """

    def __init__(self, channels: int, norm: Norm = "instance") -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=norm == "none"),
            _norm_layer(norm, channels),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=norm == "none"),
            _norm_layer(norm, channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    r"""The CycleGAN generator of Zhu et al. 2017 (appendix 7.2), the network of Johnson et al. 2016:

    ``c7s1-64, d128, d256, R256 x num_blocks, u128, u64, c7s1-3``, ending in tanh.

    Two stride-2 convolutions take the image to a quarter of its resolution, the residual blocks work there, and two
    fractionally-strided convolutions bring it back, so an input whose sides are multiples of 4 comes out with its
    own shape.

    Args:
        in_channels: channels of the input images.
        out_channels: channels of the output images.
        base_channels: filters of the first layer (64); each downsampling doubles them.
        num_blocks: residual blocks (9 for 256x256 images, 6 for 128x128).
        num_downsamplings: stride-2 layers, mirrored by as many upsampling ones (2).
        norm: ``"instance"`` (the paper), ``"batch"`` or ``"none"``.

    Shapes:
        - **x:** :math:`(B, C_{in}, H, W)` with :math:`H, W` multiples of :math:`2^{\text{num\_downsamplings}}`.
        - **output:** :math:`(B, C_{out}, H, W)` in :math:`(-1, 1)`.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        base_channels: int = 64,
        num_blocks: int = 9,
        num_downsamplings: int = 2,
        norm: Norm = "instance",
    ) -> None:
        super().__init__()
        if min(in_channels, out_channels, base_channels) < 1 or num_blocks < 0 or num_downsamplings < 0:
            raise ConfigError(
                f"in_channels={in_channels}, out_channels={out_channels} and base_channels={base_channels} must be "
                f"positive, num_blocks={num_blocks} and num_downsamplings={num_downsamplings} non-negative"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_downsamplings = num_downsamplings
        bias = norm == "none"
        layers: list[nn.Module] = [  # c7s1-64
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, base_channels, 7, bias=bias),
            _norm_layer(norm, base_channels),
            nn.ReLU(inplace=True),
        ]
        channels = base_channels
        for _ in range(num_downsamplings):  # d128, d256
            layers += [
                nn.Conv2d(channels, channels * 2, 3, stride=2, padding=1, bias=bias),
                _norm_layer(norm, channels * 2),
                nn.ReLU(inplace=True),
            ]
            channels *= 2
        layers += [ResidualBlock(channels, norm) for _ in range(num_blocks)]  # R256 x num_blocks
        for _ in range(num_downsamplings):  # u128, u64
            layers += [
                nn.ConvTranspose2d(channels, channels // 2, 3, stride=2, padding=1, output_padding=1, bias=bias),
                _norm_layer(norm, channels // 2),
                nn.ReLU(inplace=True),
            ]
            channels //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(channels, out_channels, 7), nn.Tanh()]  # c7s1-3
        self.net = nn.Sequential(*layers)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _normal_init_(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def example_inputs(self, batch_size: int = 2) -> tuple[Tensor, ...]:
        device = next(self.parameters()).device
        size = 4 * 2**self.num_downsamplings  # 4x4 maps in the residual blocks, wider than their reflection pads
        return (torch.rand(batch_size, self.in_channels, size, size, device=device) * 2 - 1,)


class PatchGANDiscriminator(nn.Module):
    r"""The 70x70 PatchGAN of Isola et al. 2017 (appendix 6.1.2), the discriminator of CycleGAN:

    ``C64-C128-C256-C512``, then a convolution to one channel.

    ``Ck`` is a 4x4 convolution with k filters, instance norm and LeakyReLU 0.2; the first layer has no norm. The
    first three have stride 2, ``C512`` and the output convolution stride 1, all with padding 1, so each output
    value sees a 70x70 window of the input: going back from one output value through each layer,
    :math:`r \leftarrow s (r - 1) + k` takes the window from 1 to 4, 7, 16, 34 and 70 pixels.
    The output is a map of logits, one per patch, with no sigmoid (CycleGAN trains it with least squares).

    Args:
        in_channels: image channels.
        base_channels: filters of the first layer (64).
        num_layers: the stride-2 layers (3 for the 70x70 PatchGAN; 1 gives 16x16, 2 gives 34x34 patches).
        norm: ``"instance"`` (CycleGAN), ``"batch"`` (pix2pix) or ``"none"``.
        negative_slope: of the LeakyReLU (0.2).

    Shapes:
        - **x:** :math:`(B, C_{in}, H, W)`.
        - **output:** :math:`(B, 1, H / 8 - 2, W / 8 - 2)` for the 70x70 network.
    """

    def __init__(
        self,
        in_channels: int = 3,
        base_channels: int = 64,
        num_layers: int = 3,
        norm: Norm = "instance",
        negative_slope: float = 0.2,
    ) -> None:
        super().__init__()
        if min(in_channels, base_channels, num_layers) < 1:
            raise ConfigError(
                f"in_channels={in_channels}, base_channels={base_channels} and num_layers={num_layers} must be positive"
            )
        self.in_channels = in_channels
        self.num_layers = num_layers
        bias = norm == "none"
        layers: list[nn.Module] = [  # C64, no norm
            nn.Conv2d(in_channels, base_channels, 4, stride=2, padding=1),
            nn.LeakyReLU(negative_slope, inplace=True),
        ]
        channels = base_channels
        for i in range(1, num_layers + 1):  # C128, C256 (stride 2), C512 (stride 1)
            out = base_channels * 2 ** min(i, 3)
            stride = 2 if i < num_layers else 1
            layers += [
                nn.Conv2d(channels, out, 4, stride=stride, padding=1, bias=bias),
                _norm_layer(norm, out),
                nn.LeakyReLU(negative_slope, inplace=True),
            ]
            channels = out
        layers.append(nn.Conv2d(channels, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)
        self.reset_parameters()

    @property
    def receptive_field(self) -> int:
        """The side of the input window that one output value sees (70 for ``num_layers=3``)."""
        size = 1
        for m in reversed(self.net):
            if isinstance(m, nn.Conv2d):
                size = m.stride[0] * (size - 1) + m.kernel_size[0]
        return size

    def reset_parameters(self) -> None:
        _normal_init_(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)  # (B, 1, H', W')

    def example_inputs(self, batch_size: int = 2) -> tuple[Tensor, ...]:
        device = next(self.parameters()).device
        size = 2 ** (self.num_layers + 2)  # leaves a 2x2 output map
        return (torch.rand(batch_size, self.in_channels, size, size, device=device) * 2 - 1,)


@register_model
def cyclegan_resnet_generator(**kwargs) -> ResnetGenerator:
    """The CycleGAN generator of Zhu et al. 2017 for 256x256 images (9 residual blocks); pass ``num_blocks=6``
    for 128x128."""
    return ResnetGenerator(**kwargs)


@register_model
def patchgan_discriminator(**kwargs) -> PatchGANDiscriminator:
    """The 70x70 PatchGAN of Isola et al. 2017 with instance norm, the discriminator of CycleGAN."""
    return PatchGANDiscriminator(**kwargs)


SMALL_KWARGS: dict[str, dict] = {
    "cyclegan_resnet_generator": {"base_channels": 4, "num_blocks": 1},
    "patchgan_discriminator": {"base_channels": 4},
}
