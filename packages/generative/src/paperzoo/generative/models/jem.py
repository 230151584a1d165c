r"""The classifier of a Joint Energy-based Model: a Wide ResNet whose logits also define an energy.

Grathwohl, Wang, Jacobsen, Duvenaud, Norouzi & Swersky 2020, "Your Classifier is Secretly an Energy Based Model and
You Should Treat it Like One" (ICLR 2020, arXiv 1912.03263): a classifier's logits :math:`f_\theta(x)`
define :math:`p_\theta(y \mid x) = \mathrm{softmax}(f_\theta(x))_y` and, read as unnormalised joint log-densities,

.. math::
    p_\theta(x, y) \propto e^{f_\theta(x)[y]}, \qquad
    E_\theta(x) = -\mathrm{LogSumExp}_y\, f_\theta(x)[y], \qquad E_\theta(x, y) = -f_\theta(x)[y].

The network is a Wide ResNet (Zagoruyko & Komodakis 2016, "Wide Residual Networks"), WRN-28-10 without batch
normalisation in the paper, whose SGLD sampling batch norm destabilises. SGLD and the training loss are in
:class:`~paperzoo.generative.modules.energy.JEMModule`.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.core.errors import ConfigError
from paperzoo.generative.registry import register_model

Norm = Literal["none", "batch"]


def _norm(kind: Norm, channels: int) -> nn.Module:
    if kind == "none":
        return nn.Identity()
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    raise ConfigError(f"norm must be 'none' or 'batch', got {kind!r}")


class WideBasicBlock(nn.Module):
    """The pre-activation wide residual block (Zagoruyko & Komodakis 2016, Figure 1c): norm-act-conv3x3-norm-act-
    (dropout)-conv3x3, with a 1x1 projection of the pre-activated input where the shape changes.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        stride: of the first convolution and the projection.
        norm: ``"none"`` (JEM) or ``"batch"`` (the original WRN).
        negative_slope: of the leaky ReLU (0 for a ReLU).
        dropout: probability between the convolutions.

    Shapes:
        - **input:** ``(B, in_channels, H, W)``; **output:** ``(B, out_channels, H / stride, W / stride)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        norm: Norm = "none",
        negative_slope: float = 0.2,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm1 = _norm(norm, in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)
        self.norm2 = _norm(norm, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.negative_slope = negative_slope
        self.dropout = nn.Dropout(dropout)
        self.shortcut = (
            nn.Conv2d(in_channels, out_channels, 1, stride=stride)
            if stride != 1 or in_channels != out_channels
            else None
        )

    def forward(self, x: Tensor) -> Tensor:
        pre = F.leaky_relu(self.norm1(x), self.negative_slope)
        out = self.conv1(pre)
        out = self.conv2(self.dropout(F.leaky_relu(self.norm2(out), self.negative_slope)))
        return out + (x if self.shortcut is None else self.shortcut(pre))


class JEMClassifier(nn.Module):
    r"""A Wide ResNet WRN-depth-k classifier :math:`f_\theta` for JEM (Grathwohl et al. 2020).

    A 3x3 convolution to 16 channels, three stages of :math:`n = (\text{depth} - 4) / 6` wide blocks with
    :math:`16k, 32k, 64k` channels at strides 1, 2, 2, a final norm and activation, global average pooling and a
    linear layer to the logits. The paper's network is WRN-28-10 without batch normalisation; the leaky ReLU slope
    0.2 is that of the authors' released network.

    Args:
        depth: :math:`6n + 4` (28 in the paper).
        widen_factor: k (10 in the paper).
        num_classes: logits.
        in_channels: image channels.
        image_size: image side (only used by :meth:`example_inputs` and the module's replay buffer).
        norm: ``"none"`` (JEM) or ``"batch"``.
        negative_slope: of the leaky ReLUs.
        dropout: between each block's convolutions.

    Shapes:
        - **input:** ``(B, C, H, W)`` in ``[-1, 1]``.
        - **output:** logits ``(B, num_classes)``.
    """

    def __init__(
        self,
        depth: int = 28,
        widen_factor: int = 10,
        num_classes: int = 10,
        in_channels: int = 3,
        image_size: int = 32,
        norm: Norm = "none",
        negative_slope: float = 0.2,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if depth < 10 or (depth - 4) % 6:
            raise ConfigError(f"a Wide ResNet's depth is 6n + 4 with n >= 1, got {depth}")
        blocks_per_stage = (depth - 4) // 6
        self.depth = depth
        self.widen_factor = widen_factor
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.image_size = image_size
        self.negative_slope = negative_slope
        widths = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.stem = nn.Conv2d(in_channels, widths[0], 3, padding=1)
        stages = []
        previous = widths[0]
        for width, stride in zip(widths[1:], (1, 2, 2), strict=True):
            blocks = []
            for i in range(blocks_per_stage):
                blocks.append(WideBasicBlock(previous, width, stride if i == 0 else 1, norm, negative_slope, dropout))
                previous = width
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.final_norm = _norm(norm, previous)
        self.num_features = previous
        self.fc = nn.Linear(previous, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, a=self.negative_slope, nonlinearity="leaky_relu")
                nn.init.zeros_(module.bias)
            elif isinstance(module, (nn.BatchNorm2d, nn.Linear)):
                module.reset_parameters()

    def forward_features(self, x: Tensor) -> Tensor:
        """Pooled features ``(B, num_features)``."""
        h = self.stages(self.stem(x))  # (B, 64k, H/4, W/4)
        h = F.leaky_relu(self.final_norm(h), self.negative_slope)
        return h.mean(dim=(2, 3))  # (B, 64k)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.forward_features(x))

    def energy(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """:math:`E(x) = -\\mathrm{LogSumExp}_y f(x)[y]`, or :math:`E(x, y) = -f(x)[y]` given labels; ``(B,)``."""
        return self.energy_from_logits(self(x), labels)

    @staticmethod
    def energy_from_logits(logits: Tensor, labels: Tensor | None = None) -> Tensor:
        """The energy from already computed logits ``(B, num_classes)``; ``(B,)``."""
        if labels is None:
            return -torch.logsumexp(logits, dim=1)
        return -logits.gather(1, labels.unsqueeze(1)).squeeze(1)

    def example_inputs(self, batch_size: int = 2) -> tuple[Tensor, ...]:
        shape = (batch_size, self.in_channels, self.image_size, self.image_size)
        return (torch.rand(shape, device=self.fc.weight.device) * 2 - 1,)


@register_model
def jem_wrn28_10(**kwargs) -> JEMClassifier:
    """JEM's classifier (Grathwohl et al. 2020): WRN-28-10 without batch norm, CIFAR-10 (32x32, 10 classes)."""
    return JEMClassifier(**{"depth": 28, "widen_factor": 10, **kwargs})


SMALL_KWARGS: dict[str, dict] = {"jem_wrn28_10": dict(depth=10, widen_factor=1, image_size=8)}
