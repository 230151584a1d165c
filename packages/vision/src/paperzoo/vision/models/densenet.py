"""DenseNet from Huang, Liu, van der Maaten and Weinberger 2017, "Densely Connected Convolutional Networks".

Two families, both of the DenseNet-BC kind (bottleneck layers and compression 0.5):

- the ImageNet networks of the paper's Table 1 (``densenet121/169/201``), growth rate 32, four dense blocks after a
  7x7/2 convolution and a 3x3/2 max pool. Parameter and buffer names equal torchvision's (``features.denseblock1.
  denselayer1.norm1.weight``, ``classifier.bias``, ...), so a state dict from ``torchvision.models.densenet121()``
  loads with a plain ``load_state_dict``; no key conversion is needed.
- the CIFAR network DenseNet-BC (L = 100, k = 12) of section 4 and Table 2 (``densenet_bc_100``): a 3x3 convolution
  with 2k filters on the 32x32 image and three dense blocks of 16 bottleneck layers on 32x32, 16x16 and 8x8 maps.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from paperzoo.vision.registry import register_model


class DenseLayer(nn.Module):
    r"""A bottleneck layer of DenseNet-BC (Huang et al. 2017, "Densely Connected Convolutional Networks"), section 3.

    ``BN-ReLU-Conv(1x1)-BN-ReLU-Conv(3x3)``: the 1x1 convolution reduces the concatenation of all earlier maps to
    ``bn_size * growth_rate`` channels, the 3x3 convolution produces the layer's ``growth_rate`` new maps. With
    ``drop_rate > 0`` each convolution is followed by dropout (section 4.2).

    Args:
        in_channels: channels of the concatenated input.
        growth_rate: new maps the layer produces (:math:`k`).
        bn_size: width of the bottleneck in multiples of :math:`k` (4 in the paper).
        drop_rate: dropout probability after each convolution.

    Shapes:
        - input: :math:`(B, C_{in}, H, W)`
        - output: :math:`(B, k, H, W)`, the new maps only
    """

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int = 4, drop_rate: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, bn_size * growth_rate, kernel_size=1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, kernel_size=3, padding=1, bias=False)
        self.drop_rate = drop_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the ReLUs work in place on the batch norms' fresh outputs (batch norm's backward needs only its input),
        # which saves a full-size allocation and pass per layer
        x = self.conv1(F.relu(self.norm1(x), inplace=True))  # (B, bn_size * k, H, W)
        x = F.dropout(x, self.drop_rate, self.training)
        x = self.conv2(F.relu(self.norm2(x), inplace=True))  # (B, k, H, W)
        return F.dropout(x, self.drop_rate, self.training)


class DenseBlock(nn.ModuleDict):
    r"""A dense block of Huang et al. 2017 ("Densely Connected Convolutional Networks"), Fig. 1 and Eq. (2).

    Layer :math:`\ell` reads the concatenation of the block's input and every earlier layer's output,
    :math:`x_\ell = H_\ell([x_0, x_1, \dots, x_{\ell-1}])`, and the block outputs the concatenation of all of them.
    Layers are named ``denselayer1``, ``denselayer2``, ...

    Args:
        num_layers: number of :class:`DenseLayer`.
        in_channels: channels of the block's input.
        growth_rate: new maps per layer (:math:`k`).
        bn_size: bottleneck width in multiples of :math:`k`.
        drop_rate: dropout probability after each convolution.

    Shapes:
        - input: :math:`(B, C_{in}, H, W)`
        - output: :math:`(B, C_{in} + L k, H, W)` with :math:`L` = ``num_layers``
    """

    def __init__(
        self, num_layers: int, in_channels: int, growth_rate: int, bn_size: int = 4, drop_rate: float = 0.0
    ) -> None:
        super().__init__()
        for i in range(num_layers):
            self[f"denselayer{i + 1}"] = DenseLayer(in_channels + i * growth_rate, growth_rate, bn_size, drop_rate)
        self.out_channels = in_channels + num_layers * growth_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.values():
            x = torch.cat([x, layer(x)], dim=1)  # (B, C + k, H, W): the block's input and every map so far
        return x


class Transition(nn.Module):
    r"""A transition layer of DenseNet-BC (Huang et al. 2017, "Densely Connected Convolutional Networks"), section 3.

    ``BN-ReLU-Conv(1x1)-AvgPool(2x2/2)`` between dense blocks; the convolution compresses the
    :math:`m` channels to :math:`\lfloor \theta m \rfloor`.

    Args:
        in_channels: channels of the dense block's output (:math:`m`).
        out_channels: channels after compression.
        drop_rate: dropout probability after the convolution.

    Shapes:
        - input: :math:`(B, C_{in}, H, W)`
        - output: :math:`(B, C_{out}, \lfloor H/2 \rfloor, \lfloor W/2 \rfloor)`
    """

    def __init__(self, in_channels: int, out_channels: int, drop_rate: float = 0.0) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(in_channels)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)
        self.drop_rate = drop_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(F.relu(self.norm(x), inplace=True))  # (B, C_out, H, W)
        return self.pool(F.dropout(x, self.drop_rate, self.training))  # (B, C_out, H/2, W/2)


class DenseNet(nn.Module):
    r"""DenseNet-BC from Huang et al. 2017, "Densely Connected Convolutional Networks", Table 1 (ImageNet) and
    section 4 (CIFAR).

    A stem, dense blocks of bottleneck layers joined by compressing transitions, a final batch norm and ReLU, global
    average pooling and a linear classifier. The stem is either the ImageNet one (7x7/2 convolution with
    ``num_init_features`` filters, batch norm, ReLU, 3x3/2 max pool) or the CIFAR one (a single 3x3 convolution; the
    first dense layer's batch norm follows it). Module names match torchvision's ``DenseNet``: everything up to the
    final batch norm lives in ``features`` (``conv0``, ``norm0``, ``pool0``, ``denseblock1``, ``transition1``, ...,
    ``norm5``), the classifier is ``classifier``; the final batch norm is numbered one past the last dense block.

    Args:
        growth_rate: new maps per dense layer (:math:`k`).
        block_config: number of dense layers in each block.
        num_init_features: filters of the stem convolution (:math:`2k` in DenseNet-BC).
        bn_size: bottleneck width in multiples of :math:`k`.
        compression: transition compression factor :math:`\theta`.
        drop_rate: dropout probability after every convolution but the first.
        stem: ``"imagenet"`` (7x7/2 convolution and max pool) or ``"cifar"`` (3x3 convolution).
        num_classes: number of output logits.
        in_chans: number of input image channels.

    Shapes:
        - input: :math:`(B, C_{in}, H, W)` with :math:`H, W \geq 32`
        - output: :math:`(B, K)` with :math:`K` = ``num_classes``
    """

    # the ImageNet stem and three transitions divide by 32, the CIFAR stem and two transitions by 4
    min_input_size = 32

    def __init__(
        self,
        growth_rate: int = 32,
        block_config: Sequence[int] = (6, 12, 24, 16),
        num_init_features: int = 64,
        bn_size: int = 4,
        compression: float = 0.5,
        drop_rate: float = 0.0,
        stem: str = "imagenet",
        num_classes: int = 1000,
        in_chans: int = 3,
    ) -> None:
        super().__init__()
        if not 0.0 < compression <= 1.0:
            raise ValueError(f"compression must be in (0, 1], got {compression}")
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.growth_rate = growth_rate

        layers: OrderedDict[str, nn.Module]
        if stem == "imagenet":
            layers = OrderedDict(
                conv0=nn.Conv2d(in_chans, num_init_features, kernel_size=7, stride=2, padding=3, bias=False),
                norm0=nn.BatchNorm2d(num_init_features),
                relu0=nn.ReLU(inplace=True),
                pool0=nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
            )
        elif stem == "cifar":
            layers = OrderedDict(conv0=nn.Conv2d(in_chans, num_init_features, kernel_size=3, padding=1, bias=False))
        else:
            raise ValueError(f"stem must be 'imagenet' or 'cifar', got {stem!r}")
        channels = num_init_features
        for i, num_layers in enumerate(block_config, start=1):
            block = DenseBlock(num_layers, channels, growth_rate, bn_size, drop_rate)
            layers[f"denseblock{i}"] = block
            channels = block.out_channels
            if i < len(block_config):
                compressed = math.floor(compression * channels)
                layers[f"transition{i}"] = Transition(channels, compressed, drop_rate)
                channels = compressed
        layers[f"norm{len(block_config) + 1}"] = nn.BatchNorm2d(channels)
        self.features = nn.Sequential(layers)
        self.num_features = channels
        self.classifier = nn.Linear(channels, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He et al. 2015 ("Delving deep into rectifiers") init for the convolutions, scaled by their fan-in as in
        torchvision; batch norms as the identity; PyTorch's default for the classifier's weight with a zero bias.

        Fan-in scaling keeps every layer's new maps at the scale of its input. Scaling by the fan-out would blow up the
        narrow 1x1 and 3x3 convolutions that read hundreds of concatenated maps, by orders of magnitude over a deep
        network, until batch norm has learnt its statistics.
        """
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                module.reset_parameters()
            elif isinstance(module, nn.Linear):
                module.reset_parameters()
                nn.init.zeros_(module.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Feature maps after the final batch norm and ReLU: ``(B, num_features, H/32, W/32)`` for the ImageNet stem,
        ``(B, num_features, H/4, W/4)`` for the CIFAR one."""
        return F.relu(self.features(x), inplace=True)  # on the final batch norm's fresh output

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """Logits from the feature maps."""
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))  # (B, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


# Table 1 of the paper: dense layers per block of the ImageNet DenseNet-BC networks (k = 32, 2k stem filters).
_IMAGENET_BLOCKS: dict[str, tuple[int, int, int, int]] = {
    "densenet121": (6, 12, 24, 16),
    "densenet169": (6, 12, 32, 32),
    "densenet201": (6, 12, 48, 32),
}


def _create_densenet(variant: str, **kwargs) -> DenseNet:
    return DenseNet(growth_rate=32, block_config=_IMAGENET_BLOCKS[variant], num_init_features=64, **kwargs)


@register_model
def densenet121(**kwargs) -> DenseNet:
    """DenseNet-121 (Huang et al. 2017, Table 1): k = 32, blocks (6, 12, 24, 16); 8.0M parameters at 1000 classes."""
    return _create_densenet("densenet121", **kwargs)


@register_model
def densenet169(**kwargs) -> DenseNet:
    """DenseNet-169 (Huang et al. 2017, Table 1): k = 32, blocks (6, 12, 32, 32); 14.1M parameters at 1000 classes."""
    return _create_densenet("densenet169", **kwargs)


@register_model
def densenet201(**kwargs) -> DenseNet:
    """DenseNet-201 (Huang et al. 2017, Table 1): k = 32, blocks (6, 12, 48, 32); 20.0M parameters at 1000 classes."""
    return _create_densenet("densenet201", **kwargs)


@register_model
def densenet_bc_100(**kwargs) -> DenseNet:
    """CIFAR DenseNet-BC (Huang et al. 2017, section 4, Table 2): L = 100, k = 12, three blocks of (100 - 4) / 6 = 16
    bottleneck layers, compression 0.5, a 3x3 stem with 2k = 24 filters; 0.8M parameters."""
    kwargs.setdefault("num_classes", 10)
    return DenseNet(growth_rate=12, block_config=(16, 16, 16), num_init_features=24, stem="cifar", **kwargs)
