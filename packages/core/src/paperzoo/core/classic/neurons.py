"""The first artificial neurons: the McCulloch-Pitts threshold unit (1943) and Rosenblatt's perceptron (1958)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

TruthTable = Mapping[tuple[int, ...], int]
"""A Boolean function as ``{inputs: output}``, e.g. ``{(0, 0): 0, (0, 1): 0, (1, 0): 0, (1, 1): 1}`` for AND."""


class ThresholdUnit:
    """A McCulloch-Pitts neuron (McCulloch & Pitts 1943, "A logical calculus of the ideas immanent ...").

    The unit fires when the weighted sum of its binary inputs reaches its threshold::

        y = 1  if  w · x >= theta  else  0

    Weights and threshold are fixed by hand; nothing is learned. An inhibitory input is a negative weight, which is
    how :func:`not_unit` is built.

    **No single threshold unit computes XOR.** Suppose ``w1, w2, theta`` did. The four rows of the truth table
    demand::

        (0, 0) -> 0:   0       <  theta    so theta > 0
        (1, 0) -> 1:   w1      >= theta
        (0, 1) -> 1:   w2      >= theta
        (1, 1) -> 0:   w1 + w2 <  theta

    Adding the middle two gives ``w1 + w2 >= 2 theta``, and ``2 theta > theta`` because ``theta > 0``, so
    ``w1 + w2 > theta``, contradicting the last row. Geometrically: the unit separates its inputs by a line, and no
    line puts (0, 1) and (1, 0) on one side with (0, 0) and (1, 1) on the other. XOR needs a second layer.

    Args:
        weights: one weight per input.
        threshold: the unit fires when the weighted sum is at least this.
    """

    def __init__(self, weights: Sequence[float], threshold: float) -> None:
        self.weights = np.asarray(weights, dtype=np.float64)
        self.threshold = float(threshold)

    def __call__(self, inputs: Sequence[int] | np.ndarray) -> int | np.ndarray:
        """Fire (1) or not (0) for one input vector, or for each row of a ``(N, n_inputs)`` array."""
        x = np.asarray(inputs, dtype=np.float64)
        fired = (x @ self.weights >= self.threshold).astype(np.int64)
        return int(fired) if fired.ndim == 0 else fired

    def __repr__(self) -> str:
        return f"{type(self).__name__}(weights={self.weights.tolist()}, threshold={self.threshold})"


def and_unit(n_inputs: int = 2) -> ThresholdUnit:
    """AND: fires only when all ``n_inputs`` inputs are on."""
    return ThresholdUnit([1.0] * n_inputs, threshold=n_inputs)


def or_unit(n_inputs: int = 2) -> ThresholdUnit:
    """OR: fires when at least one input is on."""
    return ThresholdUnit([1.0] * n_inputs, threshold=1.0)


def not_unit() -> ThresholdUnit:
    """NOT: one inhibitory input; with the input off the sum 0 reaches the threshold 0, with it on -1 does not."""
    return ThresholdUnit([-1.0], threshold=0.0)


def realises(weights: Sequence[float], threshold: float, truth_table: TruthTable) -> bool:
    """Whether the threshold unit ``(weights, threshold)`` computes ``truth_table`` on every row."""
    unit = ThresholdUnit(weights, threshold)
    return all(unit(inputs) == output for inputs, output in truth_table.items())


class PerceptronFit(NamedTuple):
    """What :meth:`Perceptron.fit` did: updates made, whether an epoch passed without one, epochs run."""

    mistakes: int
    converged: bool
    epochs: int


class Perceptron:
    """Rosenblatt's perceptron learning rule (Rosenblatt 1958, "The perceptron: a probabilistic model ...").

    A linear threshold unit ``sign(w · x + b)`` trained online: whenever an example ``(x, y)`` with
    ``y in {-1, +1}`` is misclassified (``y (w · x + b) <= 0``), move the separator towards it::

        w <- w + y x,    b <- b + y

    The bias is a weight on a constant input 1, so the rule is ``w' <- w' + y x'`` on ``x' = (x, 1)``. Starting from
    zero, Novikoff (1962) bounds the number of updates on data that some unit vector ``u`` separates with margin
    ``gamma`` (``y u · x' >= gamma`` for every example) by ``(R / gamma) ** 2`` with ``R = max ||x'||``, whatever the
    order of presentation; both ``R`` and ``gamma`` are measured on the augmented ``x'``. On data that no line
    separates (XOR) it never stops making mistakes.

    Args:
        n_features: the length of an input ``x``, without the bias.
    """

    def __init__(self, n_features: int) -> None:
        self.weights = np.zeros(n_features, dtype=np.float64)
        self.bias = 0.0

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """``w · x + b`` for each row of ``x``."""
        return np.asarray(x, dtype=np.float64) @ self.weights + self.bias

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Labels in ``{-1, +1}``; a point on the boundary counts as +1."""
        return np.where(self.decision_function(x) >= 0, 1, -1)

    def fit(self, x: np.ndarray, y: np.ndarray, max_epochs: int = 100) -> PerceptronFit:
        """Sweep over the data in order, updating on each mistake, until an epoch makes none or ``max_epochs`` pass.

        Args:
            x: ``(N, n_features)`` inputs.
            y: ``(N,)`` labels in ``{-1, +1}``.
            max_epochs: the most full passes over the data.

        Returns:
            The total number of updates, whether training converged, and the number of epochs run.
        """
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y)
        if not np.isin(y, (-1, 1)).all():
            raise ValueError("perceptron labels must be -1 or +1")
        mistakes = 0
        for epoch in range(1, max_epochs + 1):
            epoch_mistakes = 0
            for x_i, y_i in zip(x, y, strict=True):
                # "<= 0", not "< 0": a point on the boundary (including every point for the zero start) is a mistake,
                # otherwise the rule would never move away from w = 0.
                if y_i * (x_i @ self.weights + self.bias) <= 0:
                    self.weights += y_i * x_i
                    self.bias += y_i
                    epoch_mistakes += 1
            mistakes += epoch_mistakes
            if epoch_mistakes == 0:
                return PerceptronFit(mistakes, converged=True, epochs=epoch)
        return PerceptronFit(mistakes, converged=False, epochs=max_epochs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_features={self.weights.shape[0]})"
