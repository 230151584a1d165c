"""AlexNet from Krizhevsky, Sutskever and Hinton 2012, "ImageNet Classification with Deep Convolutional Neural Networks"

The network is built in the single-tower layout of Krizhevsky 2014 ("One weird trick for parallelizing convolutional
neural networks"), the one torchvision's ``AlexNet`` uses: the paper's two GPU towers are merged into one, with
64, 192, 384, 256 and 256 filters in the five convolutions instead of the paper's 96, 256, 384, 384 and 256, and no
local response normalisation. The 6x6 adaptive average pool before the classifier is the identity at the paper's 224
input and lets larger images through. Parameter names equal torchvision's (``features.0``, ``classifier.1``, ...), so a
torchvision state dict loads with a plain ``load_state_dict``; no key conversion is needed.
"""

from __future__ import annotations

import torch
from torch import nn

from paperzoo.vision.registry import register_model


class AlexNet(nn.Module):
    r"""AlexNet from Krizhevsky et al. 2012, "ImageNet Classification with Deep Convolutional Neural Networks".

    Five convolutions (11x11/4, 5x5, then three 3x3) with ReLU and three overlapping 3x3/2 max pools (section 3.4),
    then three fully connected layers of 4096, 4096 and ``num_classes`` units with dropout 0.5 before the first two
    (section 4.2). The filter counts are those of the single-tower layout; see the module docstring.

    Args:
        num_classes: number of output logits.
        in_chans: number of input image channels.
        dropout: dropout probability before each of the two hidden fully connected layers.

    Shapes:
        - input: :math:`(B, C_{in}, H, W)` with :math:`H, W \geq 63`
        - output: :math:`(B, K)` with :math:`K` = ``num_classes``
    """

    # 11x11/4 convolution and three 3x3/2 pools: a 63x63 image leaves 1x1 maps after the last pool
    min_input_size = 63

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.num_features = 256

        self.features = nn.Sequential(
            nn.Conv2d(in_chans, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Section 5 of the paper: weights from N(0, 0.01); biases 1 in conv2, conv4, conv5 and the hidden fully
        connected layers (to give the ReLUs positive inputs early on), 0 elsewhere."""
        conv1, conv2, conv3, conv4, conv5 = (m for m in self.features if isinstance(m, nn.Conv2d))
        fc6, fc7, fc8 = (m for m in self.classifier if isinstance(m, nn.Linear))
        for layer in (conv1, conv2, conv3, conv4, conv5, fc6, fc7, fc8):
            nn.init.normal_(layer.weight, mean=0.0, std=0.01)
            nn.init.zeros_(layer.bias)
        for layer in (conv2, conv4, conv5, fc6, fc7):
            nn.init.ones_(layer.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Feature maps after the last pool: ``(B, 256, H', W')``, 6x6 for a 224x224 image."""
        return self.features(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """Logits from the feature maps."""
        x = torch.flatten(self.avgpool(x), 1)  # (B, 256 * 6 * 6)
        return self.classifier(x)  # (B, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_model
def alexnet(**kwargs) -> AlexNet:
    """AlexNet (Krizhevsky et al. 2012) in the single-tower layout: 61M parameters at 1000 classes."""
    return AlexNet(**kwargs)
