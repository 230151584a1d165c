"""VGG from Simonyan and Zisserman 2015, "Very Deep Convolutional Networks for Large-Scale Image Recognition".

Configurations A, B, D and E of the paper's Table 1 (``vgg11``, ``vgg13``, ``vgg16``, ``vgg19``), and the same networks
with a batch norm after every convolution (``vgg11_bn`` ... ``vgg19_bn``; Ioffe and Szegedy 2015, which came after the
paper). A 7x7 adaptive average pool before the classifier is the identity at the paper's 224 input and lets other sizes
through. Parameter names equal torchvision's (``features.0``, ``classifier.6``, ...), so a torchvision state dict loads
with a plain ``load_state_dict``; no key conversion is needed.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from paperzoo.vision.registry import register_model

# Table 1 of the paper: output channels of each 3x3 convolution, "M" for a 2x2/2 max pool.
VGG_CONFIGS: dict[str, tuple[int | str, ...]] = {
    "A": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "B": (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "D": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    "E": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
}


def make_vgg_features(config: Sequence[int | str], in_chans: int = 3, batch_norm: bool = False) -> nn.Sequential:
    """The convolutional part of a VGG net: 3x3/1 convolutions with padding 1, each followed by ReLU (and batch norm
    before the ReLU when ``batch_norm``), and 2x2/2 max pools.

    Args:
        config: output channels of each convolution in order, ``"M"`` for a max pool.
        in_chans: number of input image channels.
        batch_norm: put a batch norm between every convolution and its ReLU.
    """
    layers: list[nn.Module] = []
    channels = in_chans
    for item in config:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        out_channels = int(item)
        layers.append(nn.Conv2d(channels, out_channels, kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_channels))
        layers.append(nn.ReLU(inplace=True))
        channels = out_channels
    return nn.Sequential(*layers)


class VGG(nn.Module):
    r"""VGG from Simonyan and Zisserman 2015, "Very Deep Convolutional Networks for Large-Scale Image Recognition".

    A stack of 3x3 convolutions with ReLU in five stages separated by 2x2/2 max pools (section 2.1), then three fully
    connected layers of 4096, 4096 and ``num_classes`` units, the first two followed by ReLU and dropout 0.5
    (section 3.1).

    Args:
        config: output channels of each convolution, ``"M"`` for a max pool; see ``VGG_CONFIGS`` for the paper's.
        batch_norm: put a batch norm between every convolution and its ReLU (not in the paper).
        num_classes: number of output logits.
        in_chans: number of input image channels.
        dropout: dropout probability after each of the two hidden fully connected layers.

    Shapes:
        - input: :math:`(B, C_{in}, H, W)` with :math:`H, W \geq 32`
        - output: :math:`(B, K)` with :math:`K` = ``num_classes``
    """

    # five 2x2/2 max pools: a 32x32 image leaves 1x1 maps
    min_input_size = 32

    def __init__(
        self,
        config: Sequence[int | str],
        batch_norm: bool = False,
        num_classes: int = 1000,
        in_chans: int = 3,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.num_features = 512

        self.features = make_vgg_features(config, in_chans, batch_norm)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He et al. 2015 ("Delving deep into rectifiers") init for the convolutions, N(0, 0.01) for the linear layers,
        zero biases, batch norms as the identity.

        The paper trains net A from a random init and starts the deeper nets from A's weights, noting that Glorot and
        Bengio's init makes that unnecessary; He init, made for deep ReLU nets like these, trains every depth directly.
        """
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                module.reset_parameters()
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, mean=0.0, std=0.01)
                nn.init.zeros_(module.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Feature maps after the last pool: ``(B, 512, H/32, W/32)``."""
        return self.features(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """Logits from the feature maps."""
        x = torch.flatten(self.avgpool(x), 1)  # (B, 512 * 7 * 7)
        return self.classifier(x)  # (B, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _create_vgg(config: str, batch_norm: bool, **kwargs) -> VGG:
    return VGG(VGG_CONFIGS[config], batch_norm=batch_norm, **kwargs)


@register_model
def vgg11(**kwargs) -> VGG:
    """VGG-11 (Simonyan and Zisserman 2015, Table 1, configuration A): 133M parameters at 1000 classes."""
    return _create_vgg("A", batch_norm=False, **kwargs)


@register_model
def vgg13(**kwargs) -> VGG:
    """VGG-13 (Simonyan and Zisserman 2015, Table 1, configuration B): 133M parameters at 1000 classes."""
    return _create_vgg("B", batch_norm=False, **kwargs)


@register_model
def vgg16(**kwargs) -> VGG:
    """VGG-16 (Simonyan and Zisserman 2015, Table 1, configuration D): 138M parameters at 1000 classes."""
    return _create_vgg("D", batch_norm=False, **kwargs)


@register_model
def vgg19(**kwargs) -> VGG:
    """VGG-19 (Simonyan and Zisserman 2015, Table 1, configuration E): 144M parameters at 1000 classes."""
    return _create_vgg("E", batch_norm=False, **kwargs)


@register_model
def vgg11_bn(**kwargs) -> VGG:
    """VGG-11 (configuration A) with a batch norm after every convolution."""
    return _create_vgg("A", batch_norm=True, **kwargs)


@register_model
def vgg13_bn(**kwargs) -> VGG:
    """VGG-13 (configuration B) with a batch norm after every convolution."""
    return _create_vgg("B", batch_norm=True, **kwargs)


@register_model
def vgg16_bn(**kwargs) -> VGG:
    """VGG-16 (configuration D) with a batch norm after every convolution."""
    return _create_vgg("D", batch_norm=True, **kwargs)


@register_model
def vgg19_bn(**kwargs) -> VGG:
    """VGG-19 (configuration E) with a batch norm after every convolution."""
    return _create_vgg("E", batch_norm=True, **kwargs)
