"""GoogLeNet (Inception-v1) from Szegedy et al. 2015, "Going Deeper with Convolutions" (arXiv 1409.4842).

The network of the paper's Table 1 with its two auxiliary classifiers (section 5), with these departures, all shared
with torchvision's ``GoogLeNet``:

- every convolution is followed by a batch norm (Ioffe and Szegedy 2015, which came later), and the local response
  normalisations after the first pool and the third convolution are left out;
- the auxiliary classifiers pool their input to 4x4 adaptively, which equals the paper's 5x5/3 average pool in output
  size at the paper's 224x224 input and lets smaller images through.

torchvision's layout differs from the paper in two more places, inherited from the TF-slim port its ImageNet weights
come from: the "5x5" branch of each inception module uses a 3x3 convolution (pytorch/vision#906) and the pool after
inception (4e) is 2x2/2 instead of 3x3/2. ``GoogLeNet(torchvision_layout=True)`` builds that layout. Parameter names
equal torchvision's (``inception4a.branch2.1.conv.weight``, ``aux1.fc2.bias``, ...), so with ``torchvision_layout=True``
a torchvision state dict loads with a plain ``load_state_dict``; no key conversion is needed.

In training mode the model returns :class:`GoogLeNetOutputs` (main and auxiliary logits), in eval mode the main logits
only; :func:`googlenet_loss` weights the three losses as the paper does.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from paperzoo.vision.registry import register_model

# Section 5 of the paper: "their loss gets added to the total loss of the network with a discount weight (the losses
# of the auxiliary classifiers were weighted by 0.3)".
AUX_WEIGHT = 0.3


class GoogLeNetOutputs(NamedTuple):
    """What :class:`GoogLeNet` returns in training mode: main logits first, then the auxiliary heads' logits.

    Attributes:
        logits: the main classifier's logits, ``(B, num_classes)``.
        aux1: logits of the auxiliary classifier on inception (4a), ``(B, num_classes)``.
        aux2: logits of the auxiliary classifier on inception (4d), ``(B, num_classes)``.
    """

    logits: torch.Tensor
    aux1: torch.Tensor
    aux2: torch.Tensor


class BasicConv2d(nn.Module):
    r"""Convolution, batch norm, ReLU: every convolution of GoogLeNet (Szegedy et al. 2015, "Going Deeper with
    Convolutions"), which uses ReLU throughout; the batch norm is a later addition (see the module docstring).

    The convolution has no bias, as a batch norm follows; the batch norm's epsilon is TensorFlow's 1e-3, as in the
    ported weights.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: side of the square kernel.
        stride: stride of the convolution.
        padding: zero padding on each side.

    Shapes:
        - input: :math:`(B, C_{in}, H, W)`
        - output: :math:`(B, C_{out}, H', W')`
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


class Inception(nn.Module):
    r"""The inception module with dimension reductions of Szegedy et al. 2015 ("Going Deeper with Convolutions"),
    Fig. 2(b).

    Four parallel branches, concatenated along the channels: a 1x1 convolution; a 1x1 reduction then a 3x3
    convolution; a 1x1 reduction then a 5x5 convolution; a 3x3/1 max pool then a 1x1 projection. The arguments are the
    columns of the paper's Table 1.

    Args:
        in_channels: input channels.
        ch1x1: output channels of the 1x1 branch ("#1x1").
        ch3x3red: channels of the 1x1 reduction before the 3x3 convolution ("#3x3 reduce").
        ch3x3: output channels of the 3x3 branch ("#3x3").
        ch5x5red: channels of the 1x1 reduction before the 5x5 convolution ("#5x5 reduce").
        ch5x5: output channels of the 5x5 branch ("#5x5").
        pool_proj: output channels of the 1x1 projection after the max pool ("pool proj").
        branch3_kernel_size: kernel of the "5x5" branch: 5 as in the paper, 3 in torchvision's layout.

    Shapes:
        - input: :math:`(B, C_{in}, H, W)`
        - output: :math:`(B, C_{out}, H, W)` with :math:`C_{out}` = ``ch1x1 + ch3x3 + ch5x5 + pool_proj``
    """

    def __init__(
        self,
        in_channels: int,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        ch5x5red: int,
        ch5x5: int,
        pool_proj: int,
        branch3_kernel_size: int = 5,
    ) -> None:
        super().__init__()
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj
        self.branch1 = BasicConv2d(in_channels, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(
            BasicConv2d(in_channels, ch3x3red, kernel_size=1),
            BasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1),
        )
        self.branch3 = nn.Sequential(
            BasicConv2d(in_channels, ch5x5red, kernel_size=1),
            BasicConv2d(ch5x5red, ch5x5, kernel_size=branch3_kernel_size, padding=branch3_kernel_size // 2),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
            BasicConv2d(in_channels, pool_proj, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = (self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x))
        return torch.cat(branches, dim=1)  # (B, out_channels, H, W)


class InceptionAux(nn.Module):
    r"""An auxiliary classifier of Szegedy et al. 2015 ("Going Deeper with Convolutions"), section 5.

    Average pool to 4x4, a 1x1 convolution with 128 filters and ReLU, a fully connected layer of 1024 units with ReLU,
    dropout 0.7, and a linear layer to the logits. The pool is adaptive (see the module docstring).

    Args:
        in_channels: channels of the inception output it reads.
        num_classes: number of output logits.
        dropout: dropout probability before the last linear layer.

    Shapes:
        - input: :math:`(B, C_{in}, H, W)`
        - output: :math:`(B, K)` with :math:`K` = ``num_classes``
    """

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.7) -> None:
        super().__init__()
        self.conv = BasicConv2d(in_channels, 128, kernel_size=1)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(F.adaptive_avg_pool2d(x, (4, 4)))  # (B, 128, 4, 4)
        x = F.relu(self.fc1(torch.flatten(x, 1)), inplace=True)  # (B, 1024)
        return self.fc2(self.dropout(x))  # (B, num_classes)


class GoogLeNet(nn.Module):
    r"""GoogLeNet (Inception-v1) from Szegedy et al. 2015, "Going Deeper with Convolutions", Table 1 and Fig. 3.

    A 7x7/2 convolution, 3x3/2 max pool, 1x1 and 3x3 convolutions and a 3x3/2 max pool; inception modules (3a, 3b),
    max pool, (4a)-(4e), max pool, (5a, 5b); global average pooling, dropout 0.4 and a linear classifier. Auxiliary
    classifiers read the outputs of (4a) and (4d) during training only. All max pools round up (``ceil_mode``), which
    gives the map sizes of Table 1.

    In training mode (with ``aux_logits``) the forward pass returns :class:`GoogLeNetOutputs` ``(logits, aux1, aux2)``;
    in eval mode, or without auxiliary classifiers, it returns the main logits. Train with :func:`googlenet_loss`.

    Args:
        num_classes: number of output logits.
        in_chans: number of input image channels.
        aux_logits: build the two auxiliary classifiers.
        dropout: dropout probability before the main classifier (the paper's 40%).
        aux_dropout: dropout probability inside the auxiliary classifiers (the paper's 70%).
        torchvision_layout: 3x3 instead of 5x5 convolutions in the "5x5" branches and a 2x2/2 instead of 3x3/2 max pool
            after (4e), to load torchvision's weights (see the module docstring).

    Shapes:
        - input: :math:`(B, C_{in}, H, W)` with :math:`H, W \geq 32`
        - output: :math:`(B, K)` with :math:`K` = ``num_classes``, or three of them in training mode
    """

    # a 32x32 image reaches (5b) as 1x1 maps and the auxiliary heads as 2x2 maps
    min_input_size = 32

    def __init__(
        self,
        num_classes: int = 1000,
        in_chans: int = 3,
        aux_logits: bool = True,
        dropout: float = 0.4,
        aux_dropout: float = 0.7,
        torchvision_layout: bool = False,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.aux_logits = aux_logits
        self.torchvision_layout = torchvision_layout
        k5 = 3 if torchvision_layout else 5  # kernel of the "5x5" branches
        pool4_kernel = 2 if torchvision_layout else 3

        self.conv1 = BasicConv2d(in_chans, 64, kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, kernel_size=1)
        self.conv3 = BasicConv2d(64, 192, kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        # Table 1: in, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj
        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32, k5)
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64, k5)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64, k5)
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64, k5)
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64, k5)
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64, k5)
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128, k5)
        self.maxpool4 = nn.MaxPool2d(pool4_kernel, stride=2, ceil_mode=True)

        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128, k5)
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128, k5)
        self.num_features = self.inception5b.out_channels

        self.aux1: InceptionAux | None = None
        self.aux2: InceptionAux | None = None
        if aux_logits:
            self.aux1 = InceptionAux(self.inception4a.out_channels, num_classes, dropout=aux_dropout)
            self.aux2 = InceptionAux(self.inception4d.out_channels, num_classes, dropout=aux_dropout)

        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(self.num_features, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He et al. 2015 ("Delving deep into rectifiers") init, scaled by the fan-in, for the convolutions; PyTorch's
        defaults for the linear layers and batch norms.

        The paper gives no initialisation (it trained on DistBelief). Fan-in scaling keeps the activations at unit
        scale through the 1x1 reductions, which narrow hundreds of channels to as few as 16.
        """
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
            elif isinstance(module, (nn.BatchNorm2d, nn.Linear)):
                module.reset_parameters()

    def _forward_trunk(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The outputs of (4a) and (4d), which the auxiliary classifiers read, and of (5b)."""
        x = self.maxpool1(self.conv1(x))  # (B, 64, H/4, W/4)
        x = self.maxpool2(self.conv3(self.conv2(x)))  # (B, 192, H/8, W/8)
        x = self.maxpool3(self.inception3b(self.inception3a(x)))  # (B, 480, H/16, W/16)
        out4a = self.inception4a(x)  # (B, 512, H/16, W/16)
        out4d = self.inception4d(self.inception4c(self.inception4b(out4a)))  # (B, 528, H/16, W/16)
        x = self.maxpool4(self.inception4e(out4d))  # (B, 832, H/32, W/32)
        out5b = self.inception5b(self.inception5a(x))  # (B, 1024, H/32, W/32)
        return out4a, out4d, out5b

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Feature maps of (5b), before pooling: ``(B, 1024, H/32, W/32)`` (map sizes rounded up)."""
        return self._forward_trunk(x)[2]

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """Main logits from the feature maps."""
        x = torch.flatten(self.avgpool(x), 1)  # (B, 1024)
        return self.fc(self.dropout(x))  # (B, num_classes)

    def forward(self, x: torch.Tensor) -> GoogLeNetOutputs | torch.Tensor:
        if not (self.training and self.aux1 is not None and self.aux2 is not None):
            return self.forward_head(self.forward_features(x))
        out4a, out4d, out5b = self._forward_trunk(x)
        return GoogLeNetOutputs(self.forward_head(out5b), self.aux1(out4a), self.aux2(out4d))


def googlenet_loss(
    outputs: GoogLeNetOutputs | torch.Tensor,
    target: torch.Tensor,
    aux_weight: float = AUX_WEIGHT,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    r"""The training loss of Szegedy et al. 2015 (section 5): main cross-entropy plus the discounted auxiliary ones.

    .. math::
        \mathcal{L} = \mathrm{CE}(z, y) + w \, (\mathrm{CE}(z_{aux1}, y) + \mathrm{CE}(z_{aux2}, y)),
        \qquad w = 0.3 .

    Args:
        outputs: the model's output; plain logits (eval mode, or no auxiliary heads) give the plain cross-entropy.
        target: class indices.
        aux_weight: the discount weight :math:`w` of each auxiliary loss.
        label_smoothing: label smoothing of every cross-entropy term (Szegedy et al. 2016).

    Shapes:
        - outputs: :math:`(B, K)` logits, or a :class:`GoogLeNetOutputs` of three of them
        - target: :math:`(B,)`
        - output: scalar
    """
    if isinstance(outputs, torch.Tensor):
        return F.cross_entropy(outputs, target, label_smoothing=label_smoothing)
    main, aux1, aux2 = (F.cross_entropy(logits, target, label_smoothing=label_smoothing) for logits in outputs)
    return main + aux_weight * (aux1 + aux2)


@register_model
def googlenet(**kwargs) -> GoogLeNet:
    """GoogLeNet (Szegedy et al. 2015, Table 1) with its two auxiliary classifiers: 13.4M parameters at 1000 classes
    (7.0M without the auxiliary classifiers)."""
    return GoogLeNet(**kwargs)
