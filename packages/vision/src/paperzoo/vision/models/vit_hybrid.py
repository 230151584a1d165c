"""Hybrid Vision Transformer from Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words" (arXiv 2010.11929).

Section 3.1, "Hybrid Architecture": the input sequence is cut from a CNN's feature map instead of the raw image, here
with 1x1 patches, so each feature-map position is one token. The CNN is a ResNet whose batch norms are replaced by
Group Normalization (Wu and He 2018) with standardized convolutions (Weight Standardization, Qiao et al. 2019), as the
paper's section 4.1 does after BiT (Kolesnikov et al. 2020), with TensorFlow's "SAME" padding as in the released JAX
code. Unlike BiT's ResNet-v2 these blocks are not pre-activation: norm and ReLU follow each convolution, v1.5 style.

The registered ``vit_small_r26_s32_224`` is timm's R26+ViT-S/32 (Steiner et al. 2021, "How to train your ViT?"): a
ResNet-26 of (2, 2, 2, 2) bottleneck blocks at stride 32 (7x7 = 49 tokens at 224) under a ViT-S (D = 384, 12 blocks,
6 heads), the cheapest of timm's ResNet hybrids on CPU. The paper's R50+ViT-B/16 is ``ResNetGNWS((3, 4, 9))`` (stride
16) under ViT-B. Parameter names are timm's (``patch_embed.backbone`` is timm's ``ResNetV2``), so
:func:`from_timm_state_dict` only copies.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from paperzoo.vision.models.vit import VisionTransformer
from paperzoo.vision.registry import register_model

STD_CONV_EPS = 1e-8  # epsilon of the weight standardization in the ViT hybrids (timm's and the JAX release's)


def pad_same(x: torch.Tensor, kernel_size: int, stride: int, value: float = 0.0) -> torch.Tensor:
    r"""Pad like TensorFlow's ``padding="SAME"``: the output side is :math:`\lceil n / s \rceil`.

    The total padding :math:`\max((\lceil n / s \rceil - 1) s + k - n, 0)` is split with the extra pixel on the
    bottom and right, which is where TensorFlow (and so the released weights) put it; PyTorch's symmetric padding
    differs from it whenever the stride is 2 and the input side is even.

    Args:
        x: feature maps.
        kernel_size: side k of the square kernel.
        stride: stride s.
        value: padding value (``-inf`` before a max pool).

    Shapes:
        - input: :math:`(B, C, H, W)`
        - output: :math:`(B, C, H + p_H, W + p_W)`
    """
    (top, bottom), (left, right) = (same_pads(size, kernel_size, stride) for size in x.shape[-2:])
    if not (top or bottom or left or right):
        return x  # e.g. a strided 1x1 convolution on an even side: nothing to pad, and no copy
    return F.pad(x, (left, right, top, bottom), value=value)  # F.pad takes the last dimension first


def same_pads(size: int, kernel_size: int, stride: int) -> tuple[int, int]:
    """Padding before and after one side of ``size`` pixels under TensorFlow's "SAME" rule (see :func:`pad_same`)."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel_size - size, 0)
    return total // 2, total - total // 2


class StdConv2dSame(nn.Conv2d):
    r"""Convolution with Weight Standardization (Qiao et al. 2019, "Micro-Batch Training with Batch-Channel
    Normalization and Weight Standardization") and TensorFlow "SAME" padding.

    Every output channel's kernel is standardized over its fan-in before use:
    :math:`\hat W_o = (W_o - \mu_o) / \sqrt{\sigma_o^2 + \epsilon}`, with the biased variance.

    Args:
        in_chans: input channels.
        out_chans: output channels.
        kernel_size: side of the square kernel.
        stride: stride.
        eps: :math:`\epsilon`.

    Shapes:
        - input: :math:`(B, C_{in}, H, W)`
        - output: :math:`(B, C_{out}, \lceil H / s \rceil, \lceil W / s \rceil)`
    """

    def __init__(
        self, in_chans: int, out_chans: int, kernel_size: int, stride: int = 1, eps: float = STD_CONV_EPS
    ) -> None:
        super().__init__(in_chans, out_chans, kernel_size, stride=stride, bias=False)
        self.eps = eps

    def standardized_weight(self) -> torch.Tensor:
        """The kernel with zero mean and unit variance over each output channel's fan-in."""
        # Standardizing each output channel over its fan-in is a batch norm of the kernel seen as one example with
        # C_out channels. The loss does not change when a kernel is shifted or scaled, so the gradient is a small
        # difference of large terms; batch norm's fused backward (which accumulates in double on CPU) keeps it
        # precise, where autograd through separate mean and var ops loses ~1e-3 of it in float32.
        weight = self.weight.reshape(1, self.out_channels, -1)  # (1, C_out, C_in k k)
        weight = F.batch_norm(weight, None, None, training=True, momentum=0.0, eps=self.eps)
        return weight.reshape_as(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        (top, bottom), (left, right) = (same_pads(size, k, s) for size in x.shape[-2:])
        if top == bottom and left == right:
            # symmetric (every stride-1 convolution here): the convolution pads by itself, without a padded copy
            return F.conv2d(x, self.standardized_weight(), None, self.stride, (top, left))
        return F.conv2d(pad_same(x, k, s), self.standardized_weight(), None, self.stride)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", eps={self.eps}"


class MaxPool2dSame(nn.Module):
    """Max pooling with TensorFlow "SAME" padding (padded with ``-inf``, so padding never wins).

    Args:
        kernel_size: side of the pooling window.
        stride: stride.

    Shapes:
        - input: :math:`(B, C, H, W)`
        - output: :math:`(B, C, \\lceil H / s \\rceil, \\lceil W / s \\rceil)`
    """

    def __init__(self, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = pad_same(x, self.kernel_size, self.stride, value=float("-inf"))
        return F.max_pool2d(x, self.kernel_size, self.stride)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


def _group_norm(channels: int) -> nn.GroupNorm:
    """32 groups, as Wu and He 2018 and BiT use."""
    return nn.GroupNorm(32, channels, eps=1e-5)


class GroupNormBottleneck(nn.Module):
    """Bottleneck block of He et al. 2016 with Group Norm and standardized convolutions (ViT's hybrid, section 4.1).

    1x1 (reduce to ``out_chans / 4``) -> 3x3 (carries the stride) -> 1x1 (expand), each followed by a group norm,
    ReLU after the first two and after the residual addition; the projection shortcut is a strided 1x1 standardized
    convolution and a group norm.

    Args:
        in_chans: input channels.
        out_chans: output channels.
        stride: stride of the 3x3 convolution and of the shortcut.
        project: use the projection shortcut (the first block of every stage) instead of the identity.

    Shapes:
        - input: :math:`(B, C_{in}, H, W)`
        - output: :math:`(B, C_{out}, \\lceil H / s \\rceil, \\lceil W / s \\rceil)`
    """

    def __init__(self, in_chans: int, out_chans: int, stride: int = 1, project: bool = False) -> None:
        super().__init__()
        mid_chans = out_chans // 4
        self.downsample = None
        if project:
            self.downsample = nn.Sequential(
                OrderedDict(conv=StdConv2dSame(in_chans, out_chans, 1, stride), norm=_group_norm(out_chans))
            )
        self.conv1 = StdConv2dSame(in_chans, mid_chans, 1)
        self.norm1 = _group_norm(mid_chans)
        self.conv2 = StdConv2dSame(mid_chans, mid_chans, 3, stride)
        self.norm2 = _group_norm(mid_chans)
        self.conv3 = StdConv2dSame(mid_chans, out_chans, 1)
        self.norm3 = _group_norm(out_chans)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        # in-place ReLUs on fresh outputs (group norm's backward needs only its input): no extra allocation
        out = F.relu(self.norm1(self.conv1(x)), inplace=True)
        out = F.relu(self.norm2(self.conv2(out)), inplace=True)  # (B, C_out / 4, H / s, W / s)
        out = self.norm3(self.conv3(out))
        return F.relu(out + shortcut, inplace=True)


class ResNetGNWS(nn.Module):
    """ResNet with Group Norm and Weight Standardization: the CNN of ViT's hybrids (Dosovitskiy et al. 2021, 4.1).

    A 7x7/2 standardized convolution with 64 channels, group norm, ReLU and a 3x3/2 max pool, then stages of
    :class:`GroupNormBottleneck` blocks with 256, 512, 1024 and 2048 output channels, the first at stride 1 and the
    others at stride 2; every convolution and pool pads "SAME". No pooling and no classifier: the output is the
    feature map that :class:`~paperzoo.vision.models.vit.PatchEmbed` cuts into tokens.

    Args:
        layers: number of blocks in each stage (one to four stages): ``(2, 2, 2, 2)`` is ResNet-26, ``(3, 4, 9)``
            the paper's ResNet-50 with stage 4 removed and stage 3 extended to 9 blocks.
        in_chans: input image channels.

    Shapes:
        - input: :math:`(B, C, H, W)`
        - output: :math:`(B, \\text{num\\_features}, \\lceil H / r \\rceil, \\lceil W / r \\rceil)` with :math:`r =`
          ``reduction``
    """

    def __init__(self, layers: Sequence[int], in_chans: int = 3) -> None:
        super().__init__()
        if not 1 <= len(layers) <= 4:
            raise ValueError(f"ResNetGNWS has one to four stages, got layers={tuple(layers)}")
        self.in_chans = in_chans
        self.stem = nn.Sequential(
            OrderedDict(
                conv=StdConv2dSame(in_chans, 64, kernel_size=7, stride=2),
                norm=_group_norm(64),
                act=nn.ReLU(inplace=True),
                pool=MaxPool2dSame(kernel_size=3, stride=2),
            )
        )
        stages = []
        chans = 64
        for index, (depth, out_chans) in enumerate(zip(layers, (256, 512, 1024, 2048), strict=False)):
            stride = 1 if index == 0 else 2
            blocks = [GroupNormBottleneck(chans, out_chans, stride, project=True)]
            blocks += [GroupNormBottleneck(out_chans, out_chans) for _ in range(depth - 1)]
            # timm's names: stages.{i}.blocks.{j}
            stages.append(nn.Sequential(OrderedDict(blocks=nn.Sequential(*blocks))))
            chans = out_chans
        self.stages = nn.Sequential(*stages)
        self.num_features = chans
        self.reduction = 4 * 2 ** (len(layers) - 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He et al. 2015 normal init (fan-out) for the convolutions, identity group norms."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.GroupNorm):
                module.reset_parameters()

    def output_size(self, input_size: int) -> int:
        """Side of the feature map for an input side of ``input_size``: every stride-2 layer rounds up ("SAME")."""
        return math.ceil(input_size / self.reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (B, 64, H / 4, W / 4)
        return self.stages(x)  # (B, num_features, H / reduction, W / reduction)


def from_timm_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our state dict from that of timm's ``vit_small_r26_s32_224`` (or another of its ResNet hybrid ViTs).

    The names are equal on both sides, so this is a copy: the ResNet is ``patch_embed.backbone.stem.{conv, norm}``
    and ``patch_embed.backbone.stages.{i}.blocks.{j}.{conv1-3, norm1-3, downsample.conv, downsample.norm}``, the 1x1
    patch projection ``patch_embed.proj``, and the transformer is named as in :func:`.vit.from_timm_state_dict`.
    """
    return dict(state_dict)


# (ResNet stages, embed_dim, depth, num_heads) of the registered hybrids
_ARCHS: dict[str, tuple[tuple[int, ...], int, int, int]] = {
    "vit_small_r26_s32_224": ((2, 2, 2, 2), 384, 12, 6),
}


def _create_vit_hybrid(variant: str, **kwargs) -> VisionTransformer:
    layers, embed_dim, depth, num_heads = _ARCHS[variant]
    backbone = ResNetGNWS(layers, in_chans=kwargs.get("in_chans", 3))
    arch = dict(img_size=224, patch_size=1, embed_dim=embed_dim, depth=depth, num_heads=num_heads)
    return VisionTransformer(**{**arch, **kwargs}, backbone=backbone)


@register_model
def vit_small_r26_s32_224(**kwargs) -> VisionTransformer:
    """R26+ViT-S/32 at 224: ResNet-26 (GN + WS) features at stride 32 as 49 tokens under a ViT-S; 36M parameters."""
    return _create_vit_hybrid("vit_small_r26_s32_224", **kwargs)
