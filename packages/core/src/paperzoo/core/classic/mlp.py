"""A multi-layer perceptron and mini-batch SGD built only on the NumPy autograd in :mod:`.autograd`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from paperzoo.core.classic.autograd import Tensor, softmax_cross_entropy


class NumpyMLP:
    """A fully connected classifier trained by backpropagation (Rumelhart, Hinton & Williams 1986).

    ``sizes = [d_in, h_1, ..., h_k, n_classes]`` gives ``k + 1`` affine layers ``x W + b``, each but the last followed
    by the activation; the last returns logits for :func:`~paperzoo.core.classic.autograd.softmax_cross_entropy`.

    Weights are initialised so that activations keep their scale through depth: for tanh the uniform Glorot/Xavier
    rule (Glorot & Bengio 2010), ``U(-a, a)`` with ``a = sqrt(6 / (fan_in + fan_out))``; for ReLU, which zeroes half
    of its inputs, He et al. (2015)'s ``N(0, 2 / fan_in)``. Biases start at zero.

    Args:
        sizes: layer widths from the input to the number of classes; at least two entries.
        activation: ``"tanh"`` or ``"relu"``, between hidden layers.
        seed: seeds the initial weights.

    Shapes:
        ``forward``: ``(N, sizes[0])`` -> ``(N, sizes[-1])``.
    """

    def __init__(self, sizes: Sequence[int], activation: Literal["tanh", "relu"] = "tanh", seed: int = 0) -> None:
        if len(sizes) < 2:
            raise ValueError(f"an MLP needs at least an input and an output size, got {list(sizes)}")
        if activation not in ("tanh", "relu"):
            raise ValueError(f"activation must be 'tanh' or 'relu', got {activation!r}")
        self.sizes = list(sizes)
        self.activation = activation
        rng = np.random.default_rng(seed)
        self.weights: list[Tensor] = []
        self.biases: list[Tensor] = []
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:], strict=True):
            if activation == "relu":
                w = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(fan_in, fan_out))
            else:
                limit = np.sqrt(6.0 / (fan_in + fan_out))
                w = rng.uniform(-limit, limit, size=(fan_in, fan_out))
            self.weights.append(Tensor(w, requires_grad=True))
            self.biases.append(Tensor(np.zeros(fan_out), requires_grad=True))

    def parameters(self) -> list[Tensor]:
        """The weights and biases, layer by layer: ``[W_1, b_1, W_2, b_2, ...]``."""
        return [p for pair in zip(self.weights, self.biases, strict=True) for p in pair]

    def forward(self, x: np.ndarray | Tensor) -> Tensor:
        """Logits for each row of ``x``."""
        h = x if isinstance(x, Tensor) else Tensor(x)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = h @ w + b  # (N, fan_out)
            if i < last:
                h = h.tanh() if self.activation == "tanh" else h.relu()
        return h

    __call__ = forward

    def loss(self, x: np.ndarray, y: np.ndarray) -> Tensor:
        """Mean softmax cross-entropy of the logits for ``x`` against integer labels ``y``."""
        return softmax_cross_entropy(self.forward(x), y)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The most likely class for each row of ``x``."""
        return self.forward(x).data.argmax(axis=1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sizes={self.sizes}, activation={self.activation!r})"


@dataclass
class TrainingHistory:
    """Full-data loss and accuracy: entry 0 before training, entry ``e`` after epoch ``e``."""

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)

    def record(self, model: NumpyMLP, x: np.ndarray, y: np.ndarray) -> None:
        self.loss.append(model.loss(x, y).item())
        self.accuracy.append(float(np.mean(model.predict(x) == y)))


def train_sgd(
    model: NumpyMLP,
    x: np.ndarray,
    y: np.ndarray,
    epochs: int,
    lr: float,
    batch_size: int = 32,
    seed: int = 0,
) -> TrainingHistory:
    """Train ``model`` in place by plain mini-batch stochastic gradient descent, ``p <- p - lr * dL/dp``.

    Each epoch visits every example once, in a fresh random order, in batches of ``batch_size`` (the last may be
    smaller); ``L`` is the batch's mean cross-entropy.

    Args:
        model: the network to train.
        x: ``(N, sizes[0])`` inputs.
        y: ``(N,)`` integer class labels.
        epochs: number of passes over the data.
        lr: the step size.
        batch_size: examples per update.
        seed: seeds the order in which examples are visited.

    Returns:
        The full-data loss and accuracy before training and after each epoch.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    params = model.parameters()
    history = TrainingHistory()
    history.record(model, x, y)
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), batch_size):
            batch = order[start : start + batch_size]
            for p in params:
                p.zero_grad()
            model.loss(x[batch], y[batch]).backward()
            for p in params:
                p.data -= lr * p.grad
        history.record(model, x, y)
    return history
