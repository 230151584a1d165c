"""paperzoo.core.nn: layers, losses and initialisers written from basic tensor ops.

Each piece is a from-scratch version of its ``torch.nn`` counterpart, proved equal to it in outputs and
gradients by ``tests/core/test_nn_*.py``; they exist to be read next to the papers they come from.
"""

from paperzoo.core.nn.activations import GELU, LeakyReLU, ReLU, Sigmoid, Tanh, gelu, leaky_relu, relu, sigmoid, tanh
from paperzoo.core.nn.conv import (
    AvgPool2d,
    Conv2d,
    MaxPool2d,
    avg_pool2d,
    conv2d,
    im2col,
    max_pool2d,
    pad2d,
)
from paperzoo.core.nn.dropout import Dropout, dropout
from paperzoo.core.nn.init import (
    calculate_gain,
    fan_in_and_fan_out,
    kaiming_normal_,
    kaiming_uniform_,
    orthogonal_,
    xavier_normal_,
    xavier_uniform_,
)
from paperzoo.core.nn.linear import MLP, Linear
from paperzoo.core.nn.losses import CrossEntropyLoss, MSELoss, cross_entropy, log_softmax, mse_loss
from paperzoo.core.nn.normalization import BatchNorm1d, BatchNorm2d, LayerNorm, batch_norm, layer_norm
from paperzoo.core.nn.penalties import l1_penalty, l2_penalty

__all__ = [
    "GELU",
    "MLP",
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv2d",
    "CrossEntropyLoss",
    "Dropout",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "MSELoss",
    "MaxPool2d",
    "ReLU",
    "Sigmoid",
    "Tanh",
    "avg_pool2d",
    "batch_norm",
    "calculate_gain",
    "conv2d",
    "cross_entropy",
    "dropout",
    "fan_in_and_fan_out",
    "gelu",
    "im2col",
    "kaiming_normal_",
    "kaiming_uniform_",
    "l1_penalty",
    "l2_penalty",
    "layer_norm",
    "leaky_relu",
    "log_softmax",
    "max_pool2d",
    "mse_loss",
    "orthogonal_",
    "pad2d",
    "relu",
    "sigmoid",
    "tanh",
    "xavier_normal_",
    "xavier_uniform_",
]
