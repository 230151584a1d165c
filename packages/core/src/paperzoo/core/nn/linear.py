"""The fully connected layer and the multi-layer perceptron built from paperzoo's own layers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from paperzoo.core.nn.activations import GELU, LeakyReLU, ReLU, Sigmoid, Tanh
from paperzoo.core.nn.dropout import Dropout
from paperzoo.core.nn.init import kaiming_normal_, kaiming_uniform_, xavier_normal_
from paperzoo.core.nn.normalization import BatchNorm1d


class Linear(nn.Module):
    r"""A fully connected layer, the perceptron's weighted sum (Rosenblatt 1958) for a whole layer.

    .. math::
        y = x W^\top + b

    Args:
        in_features: size of each input sample.
        out_features: size of each output sample.
        bias: learn an additive bias :math:`b`.

    Shapes:
        - **input:** :math:`(*, \text{in\_features})`.
        - **output:** :math:`(*, \text{out\_features})`.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        r"""torch's default, :math:`U(\pm 1/\sqrt{\text{fan\_in}})` for weight then bias, so the draws match
        ``torch.nn.Linear`` under the same seed (``kaiming_uniform_`` with :math:`a=\sqrt 5` has that bound)."""
        kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features else 0.0
            with torch.no_grad():
                self.bias.uniform_(-bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        y = x @ self.weight.t()  # (*, in) @ (in, out) -> (*, out)
        return y + self.bias if self.bias is not None else y

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


_ACTIVATIONS = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid, "gelu": GELU, "leaky_relu": LeakyReLU}


class MLP(nn.Module):
    """A multi-layer perceptron trained by back-propagation (Rumelhart, Hinton & Williams 1986).

    ``Linear -> [BatchNorm1d] -> activation -> [Dropout]`` for each hidden layer, then a linear output
    layer. Images are flattened, so it plugs into an image DataModule as it is. Every layer is
    paperzoo's own (``paperzoo.core.nn``).

    Args:
        in_features: input size after flattening (784 for 28x28 grey images).
        hidden: widths of the hidden layers; ``[100] * 19`` makes a 20-layer network.
        num_classes: number of output logits.
        activation: the hidden layers' non-linearity.
        init: how hidden and output weights start (biases at zero except with ``"default"``):
            ``"he"`` (Kaiming normal, He et al. 2015, for ReLU), ``"xavier"`` (Glorot normal, Glorot & Bengio
            2010, for tanh/sigmoid), ``"normal"`` (a fixed :math:`N(0, \\text{init\\_std}^2)`, the naive scheme
            whose gradients vanish in deep sigmoid networks) or ``"default"`` (torch's default uniform).
        init_std: the standard deviation of ``"normal"``.
        dropout: dropout probability after each hidden activation (Srivastava et al. 2014); 0 for none.
        batch_norm: batch normalisation before each hidden activation (Ioffe & Szegedy 2015).
    """

    def __init__(
        self,
        in_features: int = 784,
        hidden: Sequence[int] = (256, 128),
        num_classes: int = 10,
        activation: Literal["relu", "tanh", "sigmoid", "gelu", "leaky_relu"] = "relu",
        init: Literal["he", "xavier", "normal", "default"] = "he",
        init_std: float = 0.01,
        dropout: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_features = in_features
        self.activation = activation
        self.init = init
        self.init_std = init_std
        layers: list[nn.Module] = []
        width = in_features
        for size in hidden:
            layers.append(Linear(width, size, bias=not batch_norm))
            if batch_norm:
                layers.append(BatchNorm1d(size))
            layers.append(_ACTIVATIONS[activation]())
            if dropout > 0:
                layers.append(Dropout(dropout))
            width = size
        layers.append(Linear(width, num_classes))
        self.net = nn.Sequential(*layers)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.net:
            if not isinstance(module, Linear):
                continue
            module.reset_parameters()
            if self.init == "default":
                continue
            if self.init == "he":
                kaiming_normal_(module.weight, nonlinearity="relu")
            elif self.init == "xavier":
                xavier_normal_(module.weight)
            else:
                with torch.no_grad():
                    module.weight.normal_(0.0, self.init_std)
            if module.bias is not None:
                with torch.no_grad():
                    module.bias.zero_()

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1))  # (B, C, H, W) -> (B, C*H*W) -> (B, num_classes)
