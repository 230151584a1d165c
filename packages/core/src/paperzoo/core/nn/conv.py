"""2-D convolution by im2col, and max/average pooling over the same patches.

Convolution as a matrix product over unrolled patches ("im2col") is the formulation of Chellapilla et
al. (2006), "High Performance Convolutional Neural Networks for Document Processing"; the layer itself is
LeCun et al.'s (1989, 1998) convolutional layer with the stride, padding, dilation (Yu & Koltun 2016) and
grouping (Krizhevsky et al. 2012) options of ``torch.nn.Conv2d``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from paperzoo.core.nn.init import fan_in_and_fan_out, kaiming_uniform_

_Pair = int | tuple[int, int]


def _pair(value: _Pair) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def pad2d(x: Tensor, padding: _Pair, value: float = 0.0) -> Tensor:
    """Pad the last two dims of ``x`` by ``padding`` on each side with the constant ``value``.

    Shapes:
        - **input:** :math:`(N, C, H, W)`.
        - **output:** :math:`(N, C, H + 2 p_h, W + 2 p_w)`.
    """
    pad_h, pad_w = _pair(padding)
    if pad_h == 0 and pad_w == 0:
        return x
    n, c, h, w = x.shape
    padded = x.new_full((n, c, h + 2 * pad_h, w + 2 * pad_w), value)
    # Writing x into a fresh tensor is recorded by autograd, so the gradient reaches x through the slice.
    padded[:, :, pad_h : pad_h + h, pad_w : pad_w + w] = x
    return padded


def im2col(
    x: Tensor,
    kernel_size: _Pair,
    stride: _Pair = 1,
    padding: _Pair = 0,
    dilation: _Pair = 1,
    pad_value: float = 0.0,
) -> Tensor:
    r"""Gather every receptive field of an image batch into its own axes (Chellapilla et al. 2006).

    Output position :math:`(i, j)` and kernel offset :math:`(u, v)` read the padded input at row
    :math:`i s_h + u d_h` and column :math:`j s_w + v d_w`; the index grids are built once and applied
    with advanced indexing, whose backward scatters (and sums, where windows overlap) the gradient back.

    Args:
        x: input images.
        kernel_size: :math:`(k_h, k_w)`.
        stride: :math:`(s_h, s_w)`.
        padding: :math:`(p_h, p_w)` added on each side.
        dilation: :math:`(d_h, d_w)`, the spacing between kernel taps.
        pad_value: the value of the padding (0 for convolution, :math:`-\infty` for max pooling).

    Shapes:
        - **input:** :math:`(N, C, H, W)`.
        - **output:** :math:`(N, C, H_{out}, W_{out}, k_h, k_w)` with
          :math:`H_{out} = \lfloor (H + 2 p_h - d_h (k_h - 1) - 1) / s_h \rfloor + 1` (likewise :math:`W_{out}`).
    """
    (k_h, k_w), (s_h, s_w), (d_h, d_w) = _pair(kernel_size), _pair(stride), _pair(dilation)
    x = pad2d(x, padding, pad_value)
    height, width = x.shape[-2:]
    out_h = (height - d_h * (k_h - 1) - 1) // s_h + 1
    out_w = (width - d_w * (k_w - 1) - 1) // s_w + 1
    if out_h <= 0 or out_w <= 0:
        raise ValueError(
            f"kernel {(k_h, k_w)} with dilation {(d_h, d_w)} is larger than the padded input {(height, width)}"
        )
    rows = (torch.arange(out_h, device=x.device) * s_h)[:, None] + (torch.arange(k_h, device=x.device) * d_h)[None, :]
    cols = (torch.arange(out_w, device=x.device) * s_w)[:, None] + (torch.arange(k_w, device=x.device) * d_w)[None, :]
    # rows (H_out, k_h) and cols (W_out, k_w) broadcast to a (H_out, W_out, k_h, k_w) grid of positions.
    return x[:, :, rows[:, None, :, None], cols[None, :, None, :]]  # (N, C, H_out, W_out, k_h, k_w)


def conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: _Pair = 1,
    padding: _Pair = 0,
    dilation: _Pair = 1,
    groups: int = 1,
) -> Tensor:
    r"""2-D cross-correlation as a batched matrix product over :func:`im2col` patches.

    .. math::
        y_{n, o, i, j} = b_o + \sum_{c \in g(o)} \sum_{u, v} w_{o, c, u, v}\,
        x_{n, c, i s_h + u d_h - p_h, j s_w + v d_w - p_w}

    where :math:`g(o)` is the group of :math:`C_{in} / G` input channels that output channel :math:`o`
    sees (Krizhevsky et al. 2012); ``groups = C_in`` is a depthwise convolution.

    Shapes:
        - **input:** :math:`(N, C_{in}, H, W)`.
        - **weight:** :math:`(C_{out}, C_{in} / G, k_h, k_w)`.
        - **bias:** :math:`(C_{out})`.
        - **output:** :math:`(N, C_{out}, H_{out}, W_{out})`, sizes as in :func:`im2col`.
    """
    n, c_in = x.shape[:2]
    c_out, c_per_group, k_h, k_w = weight.shape
    if c_in % groups or c_out % groups or c_in // groups != c_per_group:
        raise ValueError(f"input channels {c_in}, weight {tuple(weight.shape)} and groups {groups} do not agree")
    patches = im2col(x, (k_h, k_w), stride, padding, dilation)  # (N, C_in, H_out, W_out, k_h, k_w)
    out_h, out_w = patches.shape[2:4]
    patches = patches.reshape(n, groups, c_per_group, out_h * out_w, k_h * k_w)
    cols = patches.permute(0, 1, 3, 2, 4).reshape(n, groups, out_h * out_w, c_per_group * k_h * k_w)  # (N, G, P, K)
    kernels = weight.reshape(groups, c_out // groups, c_per_group * k_h * k_w)  # (G, C_out/G, K)
    out = cols @ kernels.transpose(1, 2)  # (N, G, P, C_out/G)
    out = out.permute(0, 1, 3, 2).reshape(n, c_out, out_h, out_w)
    if bias is not None:
        out = out + bias.view(1, c_out, 1, 1)
    return out


def max_pool2d(
    x: Tensor, kernel_size: _Pair, stride: _Pair | None = None, padding: _Pair = 0, dilation: _Pair = 1
) -> Tensor:
    r"""The maximum over each window; the padding is :math:`-\infty` so that it is never the maximum.

    The gradient goes to the one position that holds the maximum (to one of them if tied).

    Shapes:
        - **input:** :math:`(N, C, H, W)`.
        - **output:** :math:`(N, C, H_{out}, W_{out})`, sizes as in :func:`im2col`.
    """
    kernel_size = _pair(kernel_size)
    stride = kernel_size if stride is None else stride
    _check_pool_padding(kernel_size, padding)
    patches = im2col(x, kernel_size, stride, padding, dilation, pad_value=-math.inf)
    return patches.flatten(start_dim=-2).max(dim=-1).values


def avg_pool2d(
    x: Tensor,
    kernel_size: _Pair,
    stride: _Pair | None = None,
    padding: _Pair = 0,
    count_include_pad: bool = True,
) -> Tensor:
    r"""The mean over each window.

    With ``count_include_pad`` (torch's default) the zero padding counts towards the :math:`k_h k_w`
    divisor; without it each window is divided by the number of real input positions it covers.

    Shapes:
        - **input:** :math:`(N, C, H, W)`.
        - **output:** :math:`(N, C, H_{out}, W_{out})`, sizes as in :func:`im2col`.
    """
    kernel_size = _pair(kernel_size)
    stride = kernel_size if stride is None else stride
    _check_pool_padding(kernel_size, padding)
    sums = im2col(x, kernel_size, stride, padding).sum(dim=(-2, -1))  # (N, C, H_out, W_out)
    if count_include_pad:
        return sums / (kernel_size[0] * kernel_size[1])
    ones = x.new_ones((1, 1, *x.shape[-2:]))
    counts = im2col(ones, kernel_size, stride, padding).sum(dim=(-2, -1))  # (1, 1, H_out, W_out)
    return sums / counts


def _check_pool_padding(kernel_size: tuple[int, int], padding: _Pair) -> None:
    # torch's rule; it guarantees every window covers at least one real input position.
    if any(2 * p > k for p, k in zip(_pair(padding), kernel_size, strict=True)):
        raise ValueError(f"padding {padding} should be at most half of the kernel size {kernel_size}")


class Conv2d(nn.Module):
    r"""2-D convolution (LeCun et al. 1998), computed by im2col (Chellapilla et al. 2006).

    .. math::
        y_{n, o} = b_o + \sum_{c \in g(o)} w_{o, c} \star x_{n, c}

    with :math:`\star` the strided, dilated, zero-padded 2-D cross-correlation of :func:`conv2d`.

    Args:
        in_channels: :math:`C_{in}`.
        out_channels: :math:`C_{out}`.
        kernel_size: :math:`(k_h, k_w)`, or one int for a square kernel.
        stride: step between windows.
        padding: zeros added on each side of the input.
        dilation: spacing between kernel taps (Yu & Koltun 2016).
        groups: split the channels into this many independent convolutions (Krizhevsky et al. 2012).
        bias: learn an additive per-channel bias.

    Shapes:
        - **input:** :math:`(N, C_{in}, H, W)`.
        - **output:** :math:`(N, C_{out}, H_{out}, W_{out})` with
          :math:`H_{out} = \lfloor (H + 2 p_h - d_h (k_h - 1) - 1) / s_h \rfloor + 1` (likewise :math:`W_{out}`).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: _Pair,
        stride: _Pair = 1,
        padding: _Pair = 0,
        dilation: _Pair = 1,
        groups: int = 1,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"in_channels {in_channels} and out_channels {out_channels} must divide by groups {groups}"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride)
        self.padding = _pair(padding)
        self.dilation = _pair(dilation)
        self.groups = groups
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, *self.kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        r"""torch's default: weights :math:`U(\pm 1/\sqrt{\text{fan\_in}})` and the same bound for the bias.

        ``kaiming_uniform_`` with :math:`a = \sqrt{5}` has gain :math:`\sqrt{1/3}`, which makes its
        bound exactly :math:`1/\sqrt{\text{fan\_in}}` (the LeCun uniform init); weight first, bias second,
        so the draws match ``torch.nn.Conv2d`` under the same seed.
        """
        kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = fan_in_and_fan_out(self.weight)
            if fan_in != 0:
                bound = 1 / math.sqrt(fan_in)
                with torch.no_grad():
                    self.bias.uniform_(-bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        return conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        # torch.nn.Conv2d's format, which lists only the options that differ from their defaults.
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class MaxPool2d(nn.Module):
    r"""Max pooling over 2-D windows (as in Krizhevsky et al. 2012).

    .. math::
        y_{n, c, i, j} = \max_{u, v}\, x_{n, c, i s_h + u d_h - p_h, j s_w + v d_w - p_w}

    Args:
        kernel_size: window size.
        stride: step between windows; the kernel size if ``None``.
        padding: implicit :math:`-\infty` padding on each side, at most half the kernel.
        dilation: spacing between window taps.

    Shapes:
        - **input:** :math:`(N, C, H, W)`.
        - **output:** :math:`(N, C, H_{out}, W_{out})`, sizes as in :class:`Conv2d`.
    """

    def __init__(
        self, kernel_size: _Pair, stride: _Pair | None = None, padding: _Pair = 0, dilation: _Pair = 1
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.dilation = dilation

    def forward(self, x: Tensor) -> Tensor:
        return max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, dilation={self.dilation}"


class AvgPool2d(nn.Module):
    r"""Average pooling over 2-D windows (LeCun et al. 1998's subsampling, without its trainable scale).

    .. math::
        y_{n, c, i, j} = \frac{1}{k_h k_w} \sum_{u, v} x_{n, c, i s_h + u - p_h, j s_w + v - p_w}

    Args:
        kernel_size: window size.
        stride: step between windows; the kernel size if ``None``.
        padding: implicit zero padding on each side, at most half the kernel.
        count_include_pad: count the padding in the divisor (torch's default); else divide by the number
            of real positions in the window.

    Shapes:
        - **input:** :math:`(N, C, H, W)`.
        - **output:** :math:`(N, C, H_{out}, W_{out})`, sizes as in :class:`Conv2d`.
    """

    def __init__(
        self, kernel_size: _Pair, stride: _Pair | None = None, padding: _Pair = 0, count_include_pad: bool = True
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.count_include_pad = count_include_pad

    def forward(self, x: Tensor) -> Tensor:
        return avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.count_include_pad)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
