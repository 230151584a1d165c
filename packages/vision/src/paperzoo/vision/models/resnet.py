"""ResNet from He, Zhang, Ren and Sun 2016, "Deep Residual Learning for Image Recognition" (arXiv 1512.03385).

Two families:

- :class:`ResNet`, the ImageNet networks of section 3.4 and Table 1 (``resnet18/34/50/101``). Parameter and buffer
  names follow torchvision's layout, which timm's ResNet shares, so a state dict from ``torchvision.models.resnet50()``
  or ``timm.create_model("resnet50")`` loads with a plain ``load_state_dict``; no key conversion is needed.
- :class:`CifarResNet`, the CIFAR-10 networks of section 4.2 (``resnet20/32/44/56/110``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from paperzoo.vision.registry import register_model


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding 1 and no bias (a batch norm follows)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution with no bias (a batch norm follows)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class ZeroPadShortcut(nn.Module):
    r"""The parameter-free shortcut "option A" of He et al. 2016 ("Deep Residual Learning for Image Recognition").

    When a block halves the resolution and widens the maps, the identity is subsampled with stride 2 and the new
    channels are zeros (section 3.3 and 4.2 of the paper). The zeros are appended after the existing channels.

    Args:
        in_planes: channels of the block's input.
        out_planes: channels of the block's output.
        stride: spatial subsampling factor.

    Shapes:
        - input: :math:`(B, C_{in}, H, W)`
        - output: :math:`(B, C_{out}, \lceil H / s \rceil, \lceil W / s \rceil)`
    """

    def __init__(self, in_planes: int, out_planes: int, stride: int) -> None:
        super().__init__()
        if out_planes < in_planes:
            raise ValueError(f"a zero-padding shortcut cannot narrow {in_planes} channels to {out_planes}")
        self.in_planes = in_planes
        self.out_planes = out_planes
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]  # (B, C_in, H/s, W/s)
        return F.pad(x, (0, 0, 0, 0, 0, self.out_planes - self.in_planes))  # (B, C_out, H/s, W/s)

    def extra_repr(self) -> str:
        return f"{self.in_planes}, {self.out_planes}, stride={self.stride}"


class BasicBlock(nn.Module):
    """The two-layer residual block of He et al. 2016 ("Deep Residual Learning for Image Recognition"), Fig. 2.

    ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`` with two 3x3 convolutions; ``conv1`` carries the stride.

    Args:
        in_planes: input channels.
        planes: output channels.
        stride: stride of the first convolution.
        downsample: shortcut used when the shape changes (projection or zero padding); ``None`` for the identity.
    """

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        """The batch norm just before the residual addition."""
        return self.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += shortcut
        return self.relu(out)


class Bottleneck(nn.Module):
    """The three-layer bottleneck block of He et al. 2016 ("Deep Residual Learning for Image Recognition"), Fig. 5.

    1x1 (reduce) -> 3x3 -> 1x1 (expand by 4), each followed by batch norm, ReLU after the first two and after the
    residual addition. The stride sits on the 3x3 convolution, not on the first 1x1 as in the paper: this is the
    "ResNet v1.5" placement that torchvision and timm use, slightly more accurate and what their weights expect.

    Args:
        in_planes: input channels.
        planes: width of the 3x3 convolution; the block outputs ``4 * planes`` channels.
        stride: stride of the 3x3 convolution.
        downsample: shortcut used when the shape changes; ``None`` for the identity.
    """

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = conv1x1(in_planes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        """The batch norm just before the residual addition."""
        return self.bn3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += shortcut
        return self.relu(out)


Block = type[BasicBlock] | type[Bottleneck]


def _make_stage(
    block: Block, in_planes: int, planes: int, num_blocks: int, stride: int, shortcut: str
) -> tuple[nn.Sequential, int]:
    """Stack ``num_blocks`` blocks; the first one changes the resolution and width.

    Args:
        block: block class.
        in_planes: channels entering the stage.
        planes: ``planes`` argument of every block.
        num_blocks: number of blocks.
        stride: stride of the first block.
        shortcut: ``"A"`` zero-padding identity or ``"B"`` 1x1 projection, used only where the shape changes.

    Returns:
        The stage and its number of output channels.
    """
    out_planes = planes * block.expansion
    downsample = None
    if stride != 1 or in_planes != out_planes:
        if shortcut == "A":
            downsample = ZeroPadShortcut(in_planes, out_planes, stride)
        elif shortcut == "B":
            downsample = nn.Sequential(conv1x1(in_planes, out_planes, stride), nn.BatchNorm2d(out_planes))
        else:
            raise ValueError(f"shortcut must be 'A' (zero padding) or 'B' (projection), got {shortcut!r}")
    blocks = [block(in_planes, planes, stride, downsample)]
    blocks += [block(out_planes, planes) for _ in range(num_blocks - 1)]
    return nn.Sequential(*blocks), out_planes


def _init_weights(model: nn.Module, zero_init_last: bool) -> None:
    """He et al. 2015 ("Delving deep into rectifiers") normal init for convolutions, as the ResNet paper does.

    Batch norms start as the identity (weight 1, bias 0, fresh running statistics) and linear layers keep PyTorch's
    default. With ``zero_init_last`` the last batch norm of every block starts at zero so each block starts as the
    identity (Goyal et al. 2017, "Accurate, Large Minibatch SGD"); the paper does not do this.
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, (nn.BatchNorm2d, nn.Linear)):
            module.reset_parameters()
    if zero_init_last:
        for module in model.modules():
            if isinstance(module, (BasicBlock, Bottleneck)):
                nn.init.zeros_(module.last_bn.weight)


class ResNet(nn.Module):
    """ImageNet ResNet from He et al. 2016, "Deep Residual Learning for Image Recognition", Table 1.

    7x7/2 convolution and 3x3/2 max pool, four stages of residual blocks at strides 4, 8, 16 and 32 with 64, 128,
    256 and 512 ``planes``, global average pooling and a linear classifier. Shortcuts are identities, with a 1x1
    projection where the shape changes (the paper's option B). Module names match torchvision's ``ResNet``.

    Args:
        block: :class:`BasicBlock` (ResNet-18/34) or :class:`Bottleneck` (ResNet-50 and deeper).
        layers: number of blocks in each of the four stages.
        num_classes: number of output logits.
        in_chans: number of input image channels.
        zero_init_last: start the last batch norm of every block at zero.
    """

    # the stem and three strided stages divide by 32: a 32x32 image leaves 1x1 maps after layer4
    min_input_size = 32

    def __init__(
        self,
        block: Block,
        layers: Sequence[int],
        num_classes: int = 1000,
        in_chans: int = 3,
        zero_init_last: bool = False,
    ) -> None:
        super().__init__()
        if len(layers) != 4:
            raise ValueError(f"ResNet has four stages, got layers={tuple(layers)}")
        self.num_classes = num_classes
        self.in_chans = in_chans

        self.conv1 = nn.Conv2d(in_chans, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        planes = 64
        self.layer1, planes = _make_stage(block, planes, 64, layers[0], stride=1, shortcut="B")
        self.layer2, planes = _make_stage(block, planes, 128, layers[1], stride=2, shortcut="B")
        self.layer3, planes = _make_stage(block, planes, 256, layers[2], stride=2, shortcut="B")
        self.layer4, planes = _make_stage(block, planes, 512, layers[3], stride=2, shortcut="B")
        self.num_features = planes
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(planes, num_classes)
        self.zero_init_last = zero_init_last
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _init_weights(self, self.zero_init_last)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Feature maps before pooling: ``(B, num_features, H/32, W/32)``."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, 64, H/4, W/4)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)  # (B, num_features, H/32, W/32)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """Logits from the feature maps."""
        return self.fc(torch.flatten(self.avgpool(x), 1))  # (B, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class CifarResNet(nn.Module):
    """CIFAR-10 ResNet from He et al. 2016, "Deep Residual Learning for Image Recognition", section 4.2.

    A 3x3 convolution with 16 filters, then three stages of ``n`` basic blocks (``2n`` layers) with 16, 32 and 64
    filters on 32x32, 16x16 and 8x8 maps, global average pooling and a linear classifier: ``6n + 2`` weighted layers.

    Args:
        depth: number of weighted layers, ``6n + 2`` (20, 32, 44, 56, 110 in the paper).
        num_classes: number of output logits.
        in_chans: number of input image channels.
        shortcut: ``"A"`` (the paper's choice for CIFAR): parameter-free identity, subsampled and zero-padded where
            the shape changes; ``"B"``: 1x1 projection there.
        zero_init_last: start the last batch norm of every block at zero.
    """

    # the CIFAR image size the network is designed for (8x8 maps in the last stage)
    min_input_size = 32

    def __init__(
        self,
        depth: int,
        num_classes: int = 10,
        in_chans: int = 3,
        shortcut: str = "A",
        zero_init_last: bool = False,
    ) -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n + 2 with n >= 1, got {depth}")
        n = (depth - 2) // 6
        self.depth = depth
        self.num_classes = num_classes
        self.in_chans = in_chans

        self.conv1 = conv3x3(in_chans, 16)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.layer1, planes = _make_stage(BasicBlock, 16, 16, n, stride=1, shortcut=shortcut)
        self.layer2, planes = _make_stage(BasicBlock, planes, 32, n, stride=2, shortcut=shortcut)
        self.layer3, planes = _make_stage(BasicBlock, planes, 64, n, stride=2, shortcut=shortcut)
        self.num_features = planes
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(planes, num_classes)
        self.zero_init_last = zero_init_last
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _init_weights(self, self.zero_init_last)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Feature maps before pooling: ``(B, 64, H/4, W/4)``."""
        x = self.relu(self.bn1(self.conv1(x)))  # (B, 16, H, W)
        x = self.layer1(x)
        x = self.layer2(x)  # (B, 32, H/2, W/2)
        return self.layer3(x)  # (B, 64, H/4, W/4)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """Logits from the feature maps."""
        return self.fc(torch.flatten(self.avgpool(x), 1))  # (B, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


# Table 1 of the paper: block type and number of blocks per stage.
_IMAGENET_ARCHS: dict[str, tuple[Block, tuple[int, int, int, int]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
    "resnet101": (Bottleneck, (3, 4, 23, 3)),
}


def _create_resnet(variant: str, **kwargs) -> ResNet:
    block, layers = _IMAGENET_ARCHS[variant]
    return ResNet(block, layers, **kwargs)


@register_model
def resnet18(**kwargs) -> ResNet:
    """ResNet-18 (He et al. 2016, Table 1): basic blocks, (2, 2, 2, 2)."""
    return _create_resnet("resnet18", **kwargs)


@register_model
def resnet34(**kwargs) -> ResNet:
    """ResNet-34 (He et al. 2016, Table 1): basic blocks, (3, 4, 6, 3)."""
    return _create_resnet("resnet34", **kwargs)


@register_model
def resnet50(**kwargs) -> ResNet:
    """ResNet-50 (He et al. 2016, Table 1): bottleneck blocks, (3, 4, 6, 3)."""
    return _create_resnet("resnet50", **kwargs)


@register_model
def resnet101(**kwargs) -> ResNet:
    """ResNet-101 (He et al. 2016, Table 1): bottleneck blocks, (3, 4, 23, 3)."""
    return _create_resnet("resnet101", **kwargs)


@register_model
def resnet20(**kwargs) -> CifarResNet:
    """CIFAR ResNet-20 (He et al. 2016, section 4.2, n = 3): 0.27M parameters."""
    return CifarResNet(20, **kwargs)


@register_model
def resnet32(**kwargs) -> CifarResNet:
    """CIFAR ResNet-32 (He et al. 2016, section 4.2, n = 5): 0.46M parameters."""
    return CifarResNet(32, **kwargs)


@register_model
def resnet44(**kwargs) -> CifarResNet:
    """CIFAR ResNet-44 (He et al. 2016, section 4.2, n = 7): 0.66M parameters."""
    return CifarResNet(44, **kwargs)


@register_model
def resnet56(**kwargs) -> CifarResNet:
    """CIFAR ResNet-56 (He et al. 2016, section 4.2, n = 9): 0.85M parameters."""
    return CifarResNet(56, **kwargs)


@register_model
def resnet110(**kwargs) -> CifarResNet:
    """CIFAR ResNet-110 (He et al. 2016, section 4.2, n = 18): 1.7M parameters."""
    return CifarResNet(110, **kwargs)
