"""LeNet-5 from LeCun, Bottou, Bengio and Haffner 1998, "Gradient-based learning applied to document recognition".

Layer names follow the paper's section II.B (C1, S2, C3, S4, C5, F6). Two departures, both standard today:

- The paper's output layer of Euclidean RBF units, trained with its MSE-style criterion, is replaced by a linear layer
  whose logits go to cross-entropy.
- The paper's input is a 32x32 image in which the 28x28 digit is centred. With ``input_size=28`` C1 pads its input by
  2 pixels on each side instead, so 28x28 MNIST goes in as it is and every later map has the paper's size.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from paperzoo.vision.layers import create_act
from paperzoo.vision.registry import register_model

# Table I of the paper: the S2 maps that feed each of the 16 C3 maps. Six C3 maps read 3 contiguous S2 maps, six read
# 4 contiguous, three read 4 non-contiguous and the last reads all 6: 60 connections of 25 weights, plus 16 biases,
# are the paper's 1,516 trainable parameters.
C3_TABLE: tuple[tuple[int, ...], ...] = (
    (0, 1, 2),
    (1, 2, 3),
    (2, 3, 4),
    (3, 4, 5),
    (0, 4, 5),
    (0, 1, 5),
    (0, 1, 2, 3),
    (1, 2, 3, 4),
    (2, 3, 4, 5),
    (0, 3, 4, 5),
    (0, 1, 4, 5),
    (0, 1, 2, 5),
    (0, 1, 3, 4),
    (1, 2, 4, 5),
    (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)


def _paper_uniform_(tensor: torch.Tensor, fan_in: float | torch.Tensor) -> None:
    """Appendix C of the paper: uniform in ``[-2.4 / F, 2.4 / F]`` with ``F`` the unit's fan-in.

    ``fan_in`` may be a tensor that broadcasts against ``tensor`` (one fan-in per output unit).
    """
    with torch.no_grad():
        tensor.uniform_(-1.0, 1.0).mul_(2.4 / fan_in)


class Subsampling(nn.Module):
    r"""The subsampling layers S2 and S4 of LeNet-5 (LeCun et al. 1998).

    Each map is average-pooled over non-overlapping 2x2 windows, then scaled by a trainable coefficient and shifted
    by a trainable bias, one of each per map:

    .. math::
        y_{c,i,j} = w_c \cdot \tfrac{1}{4} \sum_{u,v \in \{0,1\}} x_{c,2i+u,2j+v} + b_c .

    The paper sums the four inputs rather than averaging them; that only rescales :math:`w_c`. The coefficients start
    at 1 and the biases at 0, so the layer begins as plain average pooling. The squashing function is applied by the
    caller.

    Args:
        num_maps: number of feature maps (channels).

    Shapes:
        - input: :math:`(B, C, H, W)` with even :math:`H, W`
        - output: :math:`(B, C, H/2, W/2)`
    """

    def __init__(self, num_maps: int) -> None:
        super().__init__()
        self.num_maps = num_maps
        self.weight = nn.Parameter(torch.empty(num_maps))
        self.bias = nn.Parameter(torch.empty(num_maps))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.ones_(self.weight)
        nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.avg_pool2d(x, 2)
        return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f"{self.num_maps}"


class TableConv2d(nn.Module):
    r"""A convolution in which each output map sees only some input maps: C3 of LeNet-5 (LeCun et al. 1998).

    The paper connects C3 to S2 through a fixed table (its Table I) to keep the number of connections in bounds and
    to break the symmetry between maps. The full weight tensor is kept and multiplied by a fixed 0/1 ``connection``
    buffer in every forward pass, so weights outside the table stay at zero and receive zero gradient:

    .. math::
        y_o = b_o + \sum_{i \in T(o)} w_{o,i} \star x_i .

    Args:
        table: for each output map, the indices of the input maps it reads.
        in_channels: number of input maps.
        kernel_size: side of the square kernel.

    Shapes:
        - input: :math:`(B, C_{in}, H, W)`
        - output: :math:`(B, C_{out}, H - k + 1, W - k + 1)` with :math:`C_{out}` = ``len(table)``
    """

    def __init__(self, table: tuple[tuple[int, ...], ...], in_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = len(table)
        self.kernel_size = kernel_size
        connection = torch.zeros(self.out_channels, in_channels, 1, 1)
        for out_map, in_maps in enumerate(table):
            connection[out_map, list(in_maps)] = 1.0
        self.register_buffer("connection", connection)
        self.weight = nn.Parameter(torch.empty(self.out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(self.out_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        fan_in = self.connection.sum(dim=1, keepdim=True) * self.kernel_size**2  # (C_out, 1, 1, 1)
        _paper_uniform_(self.weight, fan_in)
        _paper_uniform_(self.bias, fan_in.flatten())
        with torch.no_grad():
            self.weight.mul_(self.connection)

    def num_connected_parameters(self) -> int:
        """Trainable parameters that the table connects: the count the paper reports."""
        return int(self.connection.sum().item()) * self.kernel_size**2 + self.bias.numel()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.connection, self.bias)

    def extra_repr(self) -> str:
        connections = int(self.connection.sum().item())
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"connections={connections}/{self.in_channels * self.out_channels}"
        )


class LeNet5(nn.Module):
    r"""LeNet-5 from LeCun, Bottou, Bengio and Haffner 1998, "Gradient-based learning applied to document recognition".

    C1 (6@5x5 conv) -> S2 (subsampling) -> C3 (16@5x5 conv, Table I connections) -> S4 (subsampling) -> C5 (120@5x5
    conv) -> F6 (84 units) -> linear output; every layer up to F6 is followed by the squashing function. The output
    layer is linear (for cross-entropy) in place of the paper's RBF units; see the module docstring.

    Args:
        num_classes: number of output logits.
        in_chans: number of input image channels.
        c3_table: connect C3 to S2 through the paper's Table I; ``False`` connects every map (2,416 parameters
            instead of 1,516).
        activation: squashing function, ``"tanh"`` for the paper's :math:`1.7159 \tanh(2a/3)` or ``"relu"``.
        input_size: side of the square input image, 32 (the paper's) or 28 (C1 pads by 2 so MNIST fits as it is).
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_chans: int = 1,
        c3_table: bool = True,
        activation: str = "tanh",
        input_size: int = 32,
    ) -> None:
        super().__init__()
        if input_size not in (28, 32):
            raise ValueError(f"LeNet5 takes 28x28 or 32x32 inputs, got input_size={input_size}")
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.input_size = input_size
        self.min_input_size = input_size  # C5 needs 5x5 maps, so the input size is exact

        self.c1 = nn.Conv2d(in_chans, 6, kernel_size=5, padding=(32 - input_size) // 2)
        self.s2 = Subsampling(6)
        self.c3 = TableConv2d(C3_TABLE, 6, kernel_size=5) if c3_table else nn.Conv2d(6, 16, kernel_size=5)
        self.s4 = Subsampling(16)
        self.c5 = nn.Conv2d(16, 120, kernel_size=5)
        self.f6 = nn.Linear(120, 84)
        self.fc = nn.Linear(84, num_classes)
        self.act = create_act(activation)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Appendix C initialisation for the weighted layers; see :class:`Subsampling` for S2 and S4."""
        for layer in (self.c1, self.c3, self.c5, self.f6, self.fc):
            if isinstance(layer, TableConv2d):
                layer.reset_parameters()
            else:
                fan_in = math.prod(layer.weight.shape[1:])
                _paper_uniform_(layer.weight, fan_in)
                _paper_uniform_(layer.bias, fan_in)
        self.s2.reset_parameters()
        self.s4.reset_parameters()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The 84 F6 activations of each image."""
        x = self.act(self.c1(x))  # (B, 6, 28, 28)
        x = self.act(self.s2(x))  # (B, 6, 14, 14)
        x = self.act(self.c3(x))  # (B, 16, 10, 10)
        x = self.act(self.s4(x))  # (B, 16, 5, 5)
        x = self.act(self.c5(x)).flatten(1)  # (B, 120)
        return self.act(self.f6(x))  # (B, 84)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_features(x))  # (B, num_classes)


@register_model
def lenet5(**kwargs) -> LeNet5:
    """LeNet-5 (LeCun et al. 1998) for 32x32 inputs; pass ``input_size=28`` for raw MNIST."""
    return LeNet5(**kwargs)
