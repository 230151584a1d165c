r"""The layers of StyleGAN2: Karras, Laine, Aittala, Hellsten, Lehtinen & Aila 2020, "Analyzing and Improving the Image
Quality of StyleGAN" (CVPR 2020, arXiv 1912.04958).

- Equalised learning rate (Karras et al. 2018, ProGAN, section 4.1): :class:`EqualizedLinear`,
  :class:`EqualizedConv2d` store their weights as N(0, 1) (divided by the learning-rate multiplier) and multiply them
  by He's constant :math:`1/\sqrt{\text{fan\_in}}` (times the multiplier) in every forward call, so that Adam's
  scale-free steps move every layer at the same relative speed.
- Weight modulation and demodulation (section 2.2, Eq. 1-3): :class:`ModulatedConv2d`, with the per-sample weights
  of a grouped convolution (the paper's Appendix B) or the equivalent scaling of activations.
- Noise inputs with a learned per-channel strength (:class:`NoiseInjection`), the modulated 3x3 layer of the synthesis
  network (:class:`StyledConv`) and the toRGB layer (:class:`ToRGB`, modulated but not demodulated).
- FIR resampling with the [1, 3, 3, 1] filter (Zhang 2019, "Making Convolutional Networks Shift-Invariant Again"):
  :func:`blur2d`, :func:`upsample2d`, :func:`downsample2d`.
- The minibatch standard deviation layer of the discriminator (ProGAN, section 3): :class:`MinibatchStdDev`.
- :func:`bias_act`: bias, leaky ReLU(0.2) and the gain :math:`\sqrt{2}` that keeps the activations' magnitude (what
  the official code fuses into one kernel), written plainly.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.core.errors import ConfigError

Activation = Literal["linear", "lrelu"]
NoiseMode = Literal["random", "const", "none"]

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)
FIR_TAPS = (1.0, 3.0, 3.0, 1.0)


# --- FIR resampling ---------------------------------------------------------------------------------------------------


def fir_kernel(taps: tuple[float, ...] = FIR_TAPS) -> Tensor:
    """The separable 2-D FIR filter of ``taps``, normalised to sum to 1: ``(len(taps), len(taps))``."""
    t = torch.tensor(taps, dtype=torch.float32)
    kernel = torch.outer(t, t)
    return kernel / kernel.sum()


def _depthwise_weight(kernel: Tensor, x: Tensor, gain: float = 1.0) -> Tensor:
    """The kernel repeated for each channel of ``x``, as a grouped convolution's weight ``(C, 1, kh, kw)``."""
    return (kernel.to(x.dtype) * gain)[None, None].expand(x.shape[1], 1, *kernel.shape)


def blur2d(x: Tensor, kernel: Tensor, padding: tuple[int, int]) -> Tensor:
    """Filter each channel with ``kernel`` (a true convolution) after zero-padding ``padding = (before, after)`` on
    both spatial axes.

    Shapes:
        - **x:** :math:`(B, C, H, W)`; **output:** :math:`(B, C, H + p_0 + p_1 - k + 1, W + p_0 + p_1 - k + 1)`.
    """
    before, after = padding
    x = F.pad(x, (before, after, before, after))
    return F.conv2d(x, _depthwise_weight(kernel.flip(0, 1), x), groups=x.shape[1])


def upsample2d(x: Tensor, kernel: Tensor) -> Tensor:
    """Double the resolution: insert a zero after every sample, then filter with ``kernel`` times 4 (the up factor
    squared, so that a constant image stays constant away from the border).

    The transposed convolution of stride 2 is the zero insertion and the filter in one call; its padding of 1 crops
    the result to the official ``upfirdn2d(up=2, padding=(2, 1))`` of a 4-tap filter, so output pixel ``2i`` sits a
    quarter pixel before input pixel ``i`` and ``2i + 1`` a quarter pixel after it (bilinear weights 3/4, 1/4).

    Shapes:
        - **x:** :math:`(B, C, H, W)`; **output:** :math:`(B, C, 2H, 2W)` (for a 4x4 kernel).
    """
    pad = (kernel.shape[-1] - 2) // 2
    return F.conv_transpose2d(x, _depthwise_weight(kernel, x, gain=4.0), stride=2, padding=pad, groups=x.shape[1])


def downsample2d(x: Tensor, kernel: Tensor) -> Tensor:
    """Halve the resolution: filter with ``kernel`` (zero padding 1 on each side for 4 taps) and keep every other
    sample; output pixel ``i`` is centred between input pixels ``2i`` and ``2i + 1``.

    Shapes:
        - **x:** :math:`(B, C, H, W)`; **output:** :math:`(B, C, H/2, W/2)`.
    """
    pad = (kernel.shape[-1] - 2) // 2
    x = F.pad(x, (pad, pad, pad, pad))
    return F.conv2d(x, _depthwise_weight(kernel.flip(0, 1), x), stride=2, groups=x.shape[1])


# --- activations and equalised learning rate --------------------------------------------------------------------------


def bias_act(x: Tensor, bias: Tensor | None, activation: Activation = "linear") -> Tensor:
    r"""Add ``bias`` along dimension 1 and apply ``activation``: ``"lrelu"`` is :math:`\sqrt{2}\,\mathrm{LReLU}_{0.2}`
    (the gain restores the second moment the non-linearity removes, as in He et al. 2015), ``"linear"`` none."""
    if bias is not None:
        x = x + bias.view(1, -1, *([1] * (x.ndim - 2)))
    if activation == "lrelu":
        return F.leaky_relu(x, LRELU_SLOPE) * LRELU_GAIN
    return x


def _check_activation(activation: str) -> None:
    if activation not in ("linear", "lrelu"):
        raise ConfigError(f"activation={activation!r} is not one of 'linear', 'lrelu'")


class EqualizedLinear(nn.Module):
    r"""A fully connected layer with the equalised learning rate of Karras et al. 2018 (ProGAN, section 4.1):

    .. math::
        y = \phi\big(x\,(c\,\lambda\,W)^\top + \lambda\,b\big), \qquad c = 1/\sqrt{\text{in\_features}}

    with :math:`W` stored as :math:`\mathcal{N}(0, 1/\lambda^2)` and :math:`b` stored as ``bias_init``, where
    :math:`\lambda` is the learning-rate multiplier. The scale is applied in ``forward``, not folded into the
    initialisation: Adam's update of a stored weight has a size independent of the weight's scale, so each layer
    learns at the same relative speed, and :math:`\lambda < 1` (0.01 in StyleGAN's mapping network) slows a layer
    down by that factor.

    Args:
        in_features: input features.
        out_features: output features.
        bias: learn a bias.
        bias_init: the bias's initial stored value (1 for the style affines, so styles start near 1).
        lr_multiplier: :math:`\lambda`.
        activation: ``"linear"`` or ``"lrelu"`` (:func:`bias_act`).

    Shapes:
        - **x:** :math:`(*, \text{in\_features})`; **output:** :math:`(*, \text{out\_features})`.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        bias_init: float = 0.0,
        lr_multiplier: float = 1.0,
        activation: Activation = "linear",
    ) -> None:
        super().__init__()
        _check_activation(activation)
        if lr_multiplier <= 0:
            raise ConfigError(f"lr_multiplier={lr_multiplier} must be positive")
        self.in_features = in_features
        self.out_features = out_features
        self.bias_init = bias_init
        self.lr_multiplier = lr_multiplier
        self.activation = activation
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight, std=1.0 / self.lr_multiplier)
        if self.bias is not None:
            nn.init.constant_(self.bias, self.bias_init)

    def forward(self, x: Tensor) -> Tensor:
        weight = self.weight * self.weight_gain
        if self.bias is None:
            return bias_act(F.linear(x, weight), None, self.activation)
        bias = self.bias * self.lr_multiplier
        if self.activation == "linear":
            return torch.addmm(bias, x, weight.t()) if x.ndim == 2 else F.linear(x, weight, bias)
        return bias_act(F.linear(x, weight), bias, self.activation)

    def extra_repr(self) -> str:
        return (
            f"{self.in_features}, {self.out_features}, bias={self.bias is not None}, "
            f"lr_multiplier={self.lr_multiplier}, activation={self.activation}"
        )


class EqualizedConv2d(nn.Module):
    r"""A convolution with the equalised learning rate (see :class:`EqualizedLinear`; here
    :math:`c = 1/\sqrt{\text{in\_channels}\cdot k^2}`), "same" padding, and optional FIR down-sampling by 2 as in the
    StyleGAN2 discriminator: a 3x3 kernel blurs (zero padding 2) and then convolves with stride 2; a 1x1 kernel
    (the residual skips) down-samples with :func:`downsample2d` and then convolves.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: odd kernel size k.
        bias: learn a bias.
        activation: ``"linear"`` or ``"lrelu"`` (:func:`bias_act`).
        down: 1, or 2 to halve the resolution.

    Shapes:
        - **x:** :math:`(B, C_{in}, H, W)`; **output:** :math:`(B, C_{out}, H / \text{down}, W / \text{down})`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        activation: Activation = "linear",
        down: int = 1,
    ) -> None:
        super().__init__()
        _check_activation(activation)
        if down not in (1, 2) or kernel_size % 2 != 1:
            raise ConfigError(f"down={down} must be 1 or 2 and kernel_size={kernel_size} odd")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.activation = activation
        self.down = down
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.register_buffer("fir", fir_kernel(), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: Tensor) -> Tensor:
        weight = self.weight * self.weight_gain
        if self.down == 1:
            x = F.conv2d(x, weight, padding=self.kernel_size // 2)
        elif self.kernel_size == 1:
            x = F.conv2d(downsample2d(x, self.fir), weight)
        else:
            # blur with the padding that centres the strided k x k window: (taps - 2 + k - 1) / 2 on each side
            pad = (self.fir.shape[-1] - 2 + self.kernel_size - 1) // 2
            x = F.conv2d(blur2d(x, self.fir, (pad, pad)), weight, stride=2)
        return bias_act(x, self.bias, self.activation)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, down={self.down}, "
            f"bias={self.bias is not None}, activation={self.activation}"
        )


# --- the generator's modulated layers ---------------------------------------------------------------------------------


def demodulation_coefficients(weight: Tensor, styles: Tensor, eps: float = 1e-8) -> Tensor:
    r"""Eq. 3 of the paper, :math:`\sigma_j^{-1} = 1/\sqrt{\sum_{i,k} (s_i w_{ijk})^2 + \epsilon}`, per sample and
    output channel, computed as :math:`\sum_i s_i^2 \sum_k w_{ijk}^2` without forming the modulated weights.

    Shapes:
        - **weight:** :math:`(C_{out}, C_{in}, k, k)`; **styles:** :math:`(B, C_{in})`;
          **output:** :math:`(B, C_{out})`.
    """
    return (styles.square() @ weight.square().sum(dim=(2, 3)).t() + eps).rsqrt()


class ModulatedConv2d(nn.Module):
    r"""The modulated convolution of StyleGAN2 (section 2.2, Eq. 1-3):

    .. math::
        w'_{ijk} = s_i \cdot c\,w_{ijk}, \qquad
        w''_{ijk} = w'_{ijk} \Big/ \sqrt{\textstyle\sum_{i,k} {w'_{ijk}}^2 + \epsilon}

    for input channel i, output channel j and kernel tap k, where :math:`s` is the per-sample style and
    :math:`c = 1/\sqrt{C_{in} k^2}` the equalised-learning-rate constant. Demodulation replaces AdaIN's instance
    normalisation by a statistical assumption: for inputs of unit variance and independent entries the outputs have
    unit variance again, without measuring the activations (so no "droplet" artefacts).

    Two equal implementations:

    - ``fused=True``: the paper's (Appendix B): the weights are modulated per sample and the batch becomes the
      groups of one grouped convolution (the input reshaped to ``(1, B * C_in, H, W)``).
    - ``fused=False``: modulating the weights by :math:`s_i` is scaling input channel i, and demodulating output
      channel j is scaling it, so the layer is ``conv(x * s) * d`` with the shared weights: one ordinary batched
      convolution, faster in training (and what the official PyTorch code trains with).

    ``fused=None`` chooses the second in training mode and the first in evaluation mode.

    With ``up=2`` the layer up-samples as the official code does: a transposed convolution of stride 2 (zero
    insertion and the 3x3 convolution at once), then the [1, 3, 3, 1] filter (times 4, padding 1), which equals
    :func:`upsample2d` followed by a 3x3 convolution away from the border.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: odd kernel size k.
        demodulate: divide by :math:`\sigma_j` (off in toRGB).
        up: 1, or 2 to double the resolution.
        eps: :math:`\epsilon` of Eq. 3.
        fused: the grouped-convolution implementation (True), the activation-scaling one (False), or by mode (None).

    Shapes:
        - **x:** :math:`(B, C_{in}, H, W)`; **styles:** :math:`(B, C_{in})`.
        - **output:** :math:`(B, C_{out}, \text{up}\cdot H, \text{up}\cdot W)`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        demodulate: bool = True,
        up: int = 1,
        eps: float = 1e-8,
        fused: bool | None = None,
    ) -> None:
        super().__init__()
        if up not in (1, 2) or kernel_size % 2 != 1:
            raise ConfigError(f"up={up} must be 1 or 2 and kernel_size={kernel_size} odd")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.demodulate = demodulate
        self.up = up
        self.eps = eps
        self.fused = fused
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.register_buffer("fir", fir_kernel(), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight)

    def forward(self, x: Tensor, styles: Tensor) -> Tensor:
        weight = self.weight * self.weight_gain  # (O, I, k, k)
        dcoefs = demodulation_coefficients(weight, styles, self.eps) if self.demodulate else None  # (B, O)
        fused = (not self.training) if self.fused is None else self.fused
        if not fused:
            x = self._convolve(x * styles[:, :, None, None], weight, groups=1)
            return x if dcoefs is None else x * dcoefs[:, :, None, None]
        batch, _, height, width = x.shape
        weights = weight[None] * styles[:, None, :, None, None]  # (B, O, I, k, k)
        if dcoefs is not None:
            weights = weights * dcoefs[:, :, None, None, None]
        weights = weights.reshape(batch * self.out_channels, self.in_channels, *weight.shape[2:])  # (B*O, I, k, k)
        x = self._convolve(x.reshape(1, batch * self.in_channels, height, width), weights, groups=batch)
        return x.reshape(batch, self.out_channels, *x.shape[2:])  # (B, O, up*H, up*W)

    def _convolve(self, x: Tensor, weight: Tensor, groups: int) -> Tensor:
        """``conv2d`` with "same" padding, or the up-sampling convolution; ``weight`` is ``(groups * O, I, k, k)``."""
        if self.up == 1:
            return F.conv2d(x, weight, padding=self.kernel_size // 2, groups=groups)
        k = self.kernel_size
        # conv_transpose2d wants (groups * I, O, k, k), flipped so that it equals zero insertion then conv2d(weight)
        weight = weight.reshape(groups, -1, self.in_channels, k, k).transpose(1, 2)  # (G, I, O, k, k)
        weight = weight.reshape(groups * self.in_channels, -1, k, k).flip(2, 3)
        x = F.conv_transpose2d(x, weight, stride=2, groups=groups)  # (.., 2H + k - 2, 2W + k - 2)
        # the filter's padding that brings 2H + k - 2 back to 2H, the same on both sides: (taps - k + 1) / 2
        pad = (self.fir.shape[-1] - k + 1) // 2
        return blur2d(x, self.fir * 4.0, (pad, pad))

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, demodulate={self.demodulate}, "
            f"up={self.up}, fused={self.fused}"
        )


class NoiseInjection(nn.Module):
    r"""Per-pixel noise inputs (StyleGAN, section 3.2; kept in StyleGAN2): one single-channel Gaussian image per
    sample, added to every channel with a learned per-channel strength that starts at zero, so the network decides
    how much stochastic detail each layer gets.

    Args:
        channels: channels of the feature map.
        resolution: its height and width (for the fixed noise image of ``noise_mode="const"``).

    Shapes:
        - **x:** :math:`(B, C, R, R)`; **output:** the same.

    ``noise_mode``: ``"random"`` draws fresh noise each call, ``"const"`` adds the fixed image ``noise_const``
    (deterministic samples), ``"none"`` adds nothing.
    """

    def __init__(self, channels: int, resolution: int) -> None:
        super().__init__()
        self.channels = channels
        self.resolution = resolution
        self.strength = nn.Parameter(torch.empty(channels))
        self.register_buffer("noise_const", torch.randn(1, 1, resolution, resolution))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.strength)

    def forward(self, x: Tensor, noise_mode: NoiseMode = "random") -> Tensor:
        if noise_mode == "none":
            return x
        if noise_mode == "const":
            noise = self.noise_const.to(x.dtype)
        elif noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype)
        else:
            raise ConfigError(f"noise_mode={noise_mode!r} is not one of 'random', 'const', 'none'")
        return x + noise * self.strength.view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f"{self.channels}, resolution={self.resolution}"


class StyledConv(nn.Module):
    r"""One layer of the synthesis network (Figure 2d of the paper): the style affine :math:`s = A(w)` (bias
    initialised to 1), the demodulated 3x3 convolution (optionally up-sampling), noise, bias and
    :math:`\sqrt{2}\,\mathrm{LReLU}_{0.2}`.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        w_dim: dimensionality of :math:`w`.
        resolution: output resolution (for the noise).
        up: 1, or 2 to double the resolution.
        kernel_size: odd kernel size.
        fused: see :class:`ModulatedConv2d`.

    Shapes:
        - **x:** :math:`(B, C_{in}, R/\text{up}, R/\text{up})`; **w:** :math:`(B, w_{dim})`;
          **output:** :math:`(B, C_{out}, R, R)`.

    ``w_index`` (set by the synthesis network) is the index of this layer's :math:`w` in the ``(B, num_ws, w_dim)``
    stack; -1 until set.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        up: int = 1,
        kernel_size: int = 3,
        fused: bool | None = None,
    ) -> None:
        super().__init__()
        self.w_index = -1
        self.affine = EqualizedLinear(w_dim, in_channels, bias_init=1.0)
        self.conv = ModulatedConv2d(in_channels, out_channels, kernel_size, demodulate=True, up=up, fused=fused)
        self.noise = NoiseInjection(out_channels, resolution)
        self.bias = nn.Parameter(torch.empty(out_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.bias)

    def forward(self, x: Tensor, w: Tensor, noise_mode: NoiseMode = "random") -> Tensor:
        x = self.conv(x, self.affine(w))
        return bias_act(self.noise(x, noise_mode), self.bias, "lrelu")


class ToRGB(nn.Module):
    r"""The toRGB layer of the skip generator (Figure 7b): a modulated 1x1 convolution *without* demodulation (the
    output is an image, not a feature map to keep normalised) and a bias, no activation. As in the official code the
    style is multiplied by the 1x1 convolution's He constant.

    Args:
        in_channels: feature channels.
        img_channels: image channels.
        w_dim: dimensionality of :math:`w`.
        fused: see :class:`ModulatedConv2d`.

    Shapes:
        - **x:** :math:`(B, C, R, R)`; **w:** :math:`(B, w_{dim})`; **output:** :math:`(B, \text{img\_channels}, R, R)`.
    """

    def __init__(self, in_channels: int, img_channels: int, w_dim: int, fused: bool | None = None) -> None:
        super().__init__()
        self.w_index = -1
        self.affine = EqualizedLinear(w_dim, in_channels, bias_init=1.0)
        self.conv = ModulatedConv2d(in_channels, img_channels, 1, demodulate=False, fused=fused)
        self.bias = nn.Parameter(torch.empty(img_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.bias)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        return bias_act(self.conv(x, self.affine(w)), self.bias, "linear")


# --- the discriminator's minibatch standard deviation -----------------------------------------------------------------


class MinibatchStdDev(nn.Module):
    r"""Minibatch standard deviation (Karras et al. 2018, ProGAN, section 3; StyleGAN2's discriminator epilogue): the
    batch is split into groups of ``group_size`` samples; within a group each feature's standard deviation over the
    group's samples is averaged over features and pixels, and that number (one per group and per ``num_channels``
    slice of the channels) is appended to each member as a constant feature map. It lets the discriminator see the
    variety of a batch, which punishes mode collapse.

    As in the official code, group j holds the samples ``j, j + B/G, j + 2B/G, ...`` (the batch reshaped as
    ``(G, B/G, ...)``), the standard deviation is the population one, :math:`\sqrt{\mathrm{Var} + 10^{-8}}`, and a
    batch that ``group_size`` does not divide uses the largest group size below it that does.

    Args:
        group_size: samples per group G (4 in the paper).
        num_channels: how many channel slices get their own statistic (1 in the paper).

    Shapes:
        - **x:** :math:`(B, C, H, W)`; **output:** :math:`(B, C + \text{num\_channels}, H, W)`.
    """

    def __init__(self, group_size: int = 4, num_channels: int = 1) -> None:
        super().__init__()
        if group_size < 1 or num_channels < 1:
            raise ConfigError(f"group_size={group_size} and num_channels={num_channels} must be positive")
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x: Tensor) -> Tensor:
        batch, channels, height, width = x.shape
        if channels % self.num_channels:
            raise ConfigError(f"{channels} channels do not split into num_channels={self.num_channels} slices")
        group = next(g for g in range(min(self.group_size, batch), 0, -1) if batch % g == 0)
        f = self.num_channels
        y = x.reshape(group, -1, f, channels // f, height, width)  # (G, B/G, F, C/F, H, W)
        y = (y.var(dim=0, unbiased=False) + 1e-8).sqrt()  # (B/G, F, C/F, H, W)
        y = y.mean(dim=(2, 3, 4))  # (B/G, F)
        y = y.reshape(-1, f, 1, 1).repeat(group, 1, height, width)  # (B, F, H, W)
        return torch.cat([x, y], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"
