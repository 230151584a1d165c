"""Neural networks from first principles: threshold units, the perceptron, and backpropagation over NumPy.

:mod:`~paperzoo.core.classic.neurons` has the McCulloch-Pitts unit (1943) and Rosenblatt's perceptron (1958);
:mod:`~paperzoo.core.classic.autograd` a reverse-mode autograd over NumPy arrays; :mod:`~paperzoo.core.classic.mlp`
an MLP and mini-batch SGD built on it. None of them uses torch; the tests check them against it.
"""

from paperzoo.core.classic.autograd import Tensor, softmax_cross_entropy
from paperzoo.core.classic.mlp import NumpyMLP, TrainingHistory, train_sgd
from paperzoo.core.classic.neurons import (
    Perceptron,
    PerceptronFit,
    ThresholdUnit,
    and_unit,
    not_unit,
    or_unit,
    realises,
)

__all__ = [
    "NumpyMLP",
    "Perceptron",
    "PerceptronFit",
    "Tensor",
    "ThresholdUnit",
    "TrainingHistory",
    "and_unit",
    "not_unit",
    "or_unit",
    "realises",
    "softmax_cross_entropy",
    "train_sgd",
]
