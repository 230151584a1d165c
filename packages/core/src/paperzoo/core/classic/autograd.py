"""Reverse-mode automatic differentiation over NumPy arrays, from first principles.

Reverse-mode AD (backpropagation, Rumelhart, Hinton & Williams 1986; Linnainmaa 1970 for the general method) records
every operation as a node that knows its inputs and how to turn the gradient of its output into gradients of its
inputs (a vector-Jacobian product). :meth:`Tensor.backward` visits the nodes from the output back to the leaves in
reverse topological order, so each node's gradient is complete (summed over all its uses) before it is passed on.

The design follows Karpathy's micrograd, vectorised: a :class:`Tensor` holds a float64 array instead of a scalar,
and each operation is a small function that computes its output and returns its vector-Jacobian product. Broadcasting
is handled once, in :func:`_unbroadcast`: an operation returns gradients in the broadcast shape of its output, and the
engine sums them back to the shape of each input.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

VJP = Callable[[np.ndarray], tuple[np.ndarray, ...]]
"""Maps the gradient of an operation's output to the gradients of its inputs, one per input, in order."""


class Tensor:
    """A float64 NumPy array that records the operations applied to it, for reverse-mode differentiation.

    Only tensors created with ``requires_grad=True`` (the leaves you differentiate with respect to, e.g. weights)
    and the results computed from them are tracked; data such as inputs and targets stay plain constants, so no
    gradient is spent on them.

    Args:
        data: the values; copied to a float64 array.
        requires_grad: whether gradients should flow into this tensor.
    """

    # Makes NumPy defer ``ndarray * Tensor`` to Tensor.__rmul__ instead of treating the Tensor as an object scalar.
    __array_ufunc__ = None

    def __init__(self, data: ArrayLike, requires_grad: bool = False) -> None:
        self.data = np.array(data.data if isinstance(data, Tensor) else data, dtype=np.float64)
        self.requires_grad = requires_grad
        self.grad: np.ndarray | None = None
        self._parents: tuple[Tensor, ...] = ()
        self._vjp: VJP | None = None
        self._op = ""

    @classmethod
    def _from_op(cls, data: np.ndarray, parents: tuple[Tensor, ...], vjp: VJP, op: str) -> Tensor:
        out = cls(data, requires_grad=any(p.requires_grad for p in parents))
        if out.requires_grad:
            out._parents, out._vjp, out._op = parents, vjp, op
        return out

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def T(self) -> Tensor:  # noqa: N802 (the NumPy / torch name)
        return self.transpose()

    def item(self) -> float:
        return float(self.data)

    def numpy(self) -> np.ndarray:
        return self.data

    def zero_grad(self) -> None:
        self.grad = None

    def __repr__(self) -> str:
        grad = f", grad_fn={self._op}" if self._op else ""
        return f"Tensor({self.data!r}{grad})"

    def backward(self, grad: np.ndarray | None = None) -> None:
        """Accumulate ``d self / d leaf`` into ``leaf.grad`` for every leaf that requires a gradient.

        As in torch, a leaf's gradient adds up over calls (clear it with :meth:`zero_grad`), while intermediate
        results start from zero each call so that a second backward pass does not count them twice.

        Args:
            grad: the gradient of the final objective with respect to ``self``; may be left out for a scalar.
        """
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError("backward() without a gradient needs a scalar output")
            grad = np.ones_like(self.data)
        order = _topological_order(self)
        for node in order:
            if node._parents:
                node.grad = None
        seed = np.broadcast_to(np.asarray(grad, dtype=np.float64), self.shape).copy()
        self.grad = seed if self.grad is None else self.grad + seed
        for node in reversed(order):
            if not node._parents:
                continue
            for parent, parent_grad in zip(node._parents, node._vjp(node.grad), strict=True):
                if parent.requires_grad:
                    parent_grad = _unbroadcast(parent_grad, parent.shape)
                    parent.grad = parent_grad.copy() if parent.grad is None else parent.grad + parent_grad

    # Operator overloads: every binary operator accepts a Tensor, an array or a Python number on either side.

    def __add__(self, other: ArrayLike) -> Tensor:
        return add(self, other)

    def __radd__(self, other: ArrayLike) -> Tensor:
        return add(other, self)

    def __sub__(self, other: ArrayLike) -> Tensor:
        return sub(self, other)

    def __rsub__(self, other: ArrayLike) -> Tensor:
        return sub(other, self)

    def __neg__(self) -> Tensor:
        return neg(self)

    def __mul__(self, other: ArrayLike) -> Tensor:
        return mul(self, other)

    def __rmul__(self, other: ArrayLike) -> Tensor:
        return mul(other, self)

    def __truediv__(self, other: ArrayLike) -> Tensor:
        return truediv(self, other)

    def __rtruediv__(self, other: ArrayLike) -> Tensor:
        return truediv(other, self)

    def __matmul__(self, other: ArrayLike) -> Tensor:
        return matmul(self, other)

    def __rmatmul__(self, other: ArrayLike) -> Tensor:
        return matmul(other, self)

    def __pow__(self, exponent: float) -> Tensor:
        return power(self, exponent)

    def exp(self) -> Tensor:
        return exp(self)

    def log(self) -> Tensor:
        return log(self)

    def tanh(self) -> Tensor:
        return tanh(self)

    def sigmoid(self) -> Tensor:
        return sigmoid(self)

    def relu(self) -> Tensor:
        return relu(self)

    def sum(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        return tensor_sum(self, axis, keepdims)

    def mean(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
        return mean(self, axis, keepdims)

    def reshape(self, *shape: int) -> Tensor:
        return reshape(self, shape[0] if len(shape) == 1 and not isinstance(shape[0], int) else shape)

    def transpose(self, axes: Sequence[int] | None = None) -> Tensor:
        return transpose(self, axes)


ArrayLike = Tensor | np.ndarray | float | int | Sequence[float]
"""Anything an operation accepts as an operand; non-Tensors become constants that need no gradient."""


def _as_tensor(x: ArrayLike) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def _topological_order(root: Tensor) -> list[Tensor]:
    """Every tracked node reachable from ``root``, each after all of its inputs (iterative DFS, no recursion limit)."""
    order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        stack.extend((p, False) for p in node._parents if p.requires_grad and id(p) not in visited)
    return order


def _unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` back to ``shape``, undoing NumPy broadcasting.

    An input that was broadcast was used once per copy, so its gradient is the sum over the copies: over the leading
    axes that broadcasting prepended, and over each axis where the input had size 1.
    """
    leading = grad.ndim - len(shape)
    axes = tuple(range(leading)) + tuple(
        leading + i for i, size in enumerate(shape) if size == 1 and grad.shape[leading + i] != 1
    )
    return grad.sum(axis=axes, keepdims=True).reshape(shape) if axes else grad


def _normalise_axes(axis: int | tuple[int, ...] | None, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(a % ndim for a in axes)


# Elementwise binary operations. Each returns the gradients in the broadcast output shape; backward() unbroadcasts.


def add(a: ArrayLike, b: ArrayLike) -> Tensor:
    a, b = _as_tensor(a), _as_tensor(b)
    return Tensor._from_op(a.data + b.data, (a, b), lambda g: (g, g), "add")


def sub(a: ArrayLike, b: ArrayLike) -> Tensor:
    a, b = _as_tensor(a), _as_tensor(b)
    return Tensor._from_op(a.data - b.data, (a, b), lambda g: (g, -g), "sub")


def neg(a: ArrayLike) -> Tensor:
    a = _as_tensor(a)
    return Tensor._from_op(-a.data, (a,), lambda g: (-g,), "neg")


def mul(a: ArrayLike, b: ArrayLike) -> Tensor:
    a, b = _as_tensor(a), _as_tensor(b)
    return Tensor._from_op(a.data * b.data, (a, b), lambda g: (g * b.data, g * a.data), "mul")


def truediv(a: ArrayLike, b: ArrayLike) -> Tensor:
    a, b = _as_tensor(a), _as_tensor(b)
    out = a.data / b.data
    # d(a/b)/db = -a/b^2 = -(a/b)/b: reusing the output saves a square.
    return Tensor._from_op(out, (a, b), lambda g: (g / b.data, -g * out / b.data), "truediv")


def matmul(a: ArrayLike, b: ArrayLike) -> Tensor:
    """``a @ b`` for operands with at least two dimensions; leading (batch) dimensions broadcast."""
    a, b = _as_tensor(a), _as_tensor(b)
    if a.ndim < 2 or b.ndim < 2:
        raise ValueError(f"matmul needs operands with at least 2 dimensions, got {a.shape} and {b.shape}")

    def vjp(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # C = A B gives dL/dA = dL/dC B^T and dL/dB = A^T dL/dC; swapaxes transposes only the matrix axes, and
        # backward() sums over any batch axes that broadcasting added.
        return g @ np.swapaxes(b.data, -1, -2), np.swapaxes(a.data, -1, -2) @ g

    return Tensor._from_op(a.data @ b.data, (a, b), vjp, "matmul")


def power(a: ArrayLike, exponent: float) -> Tensor:
    """``a ** exponent`` for a constant scalar exponent."""
    a = _as_tensor(a)
    exponent = float(exponent)
    return Tensor._from_op(
        a.data**exponent, (a,), lambda g: (g * exponent * a.data ** (exponent - 1.0),), f"pow({exponent})"
    )


# Elementwise unary functions.


def exp(a: ArrayLike) -> Tensor:
    a = _as_tensor(a)
    out = np.exp(a.data)
    return Tensor._from_op(out, (a,), lambda g: (g * out,), "exp")


def log(a: ArrayLike) -> Tensor:
    a = _as_tensor(a)
    return Tensor._from_op(np.log(a.data), (a,), lambda g: (g / a.data,), "log")


def tanh(a: ArrayLike) -> Tensor:
    a = _as_tensor(a)
    out = np.tanh(a.data)
    return Tensor._from_op(out, (a,), lambda g: (g * (1.0 - out * out),), "tanh")


def sigmoid(a: ArrayLike) -> Tensor:
    a = _as_tensor(a)
    # 1 / (1 + e^-x) overflows e^-x for large negative x; with e = e^-|x| the exponent is never positive, and for
    # x < 0 the same value is e / (1 + e).
    e = np.exp(-np.abs(a.data))
    out = np.where(a.data >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return Tensor._from_op(out, (a,), lambda g: (g * out * (1.0 - out),), "sigmoid")


def relu(a: ArrayLike) -> Tensor:
    a = _as_tensor(a)
    # At exactly 0 the derivative is taken as 0, as torch does.
    return Tensor._from_op(np.maximum(a.data, 0.0), (a,), lambda g: (g * (a.data > 0),), "relu")


# Reductions and shape changes.


def tensor_sum(a: ArrayLike, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
    """Sum over ``axis`` (all axes when None); each summed element receives the output's gradient unchanged."""
    a = _as_tensor(a)
    axes = _normalise_axes(axis, a.ndim)

    def vjp(g: np.ndarray) -> tuple[np.ndarray]:
        # Put the reduced axes back as size 1 so that the gradient broadcasts over the elements that were summed.
        return (np.broadcast_to(g if keepdims else np.expand_dims(g, axes), a.shape),)

    return Tensor._from_op(a.data.sum(axis=axes, keepdims=keepdims), (a,), vjp, "sum")


def mean(a: ArrayLike, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Tensor:
    """Mean over ``axis`` (all axes when None): a sum whose gradient is shared equally by the ``n`` elements."""
    a = _as_tensor(a)
    axes = _normalise_axes(axis, a.ndim)
    n = int(np.prod([a.shape[i] for i in axes]))

    def vjp(g: np.ndarray) -> tuple[np.ndarray]:
        return (np.broadcast_to(g if keepdims else np.expand_dims(g, axes), a.shape) / n,)

    return Tensor._from_op(a.data.mean(axis=axes, keepdims=keepdims), (a,), vjp, "mean")


def reshape(a: ArrayLike, shape: Sequence[int]) -> Tensor:
    a = _as_tensor(a)
    return Tensor._from_op(a.data.reshape(tuple(shape)), (a,), lambda g: (g.reshape(a.shape),), "reshape")


def transpose(a: ArrayLike, axes: Sequence[int] | None = None) -> Tensor:
    """Permute the axes (reverse them when ``axes`` is None); the gradient goes through the inverse permutation."""
    a = _as_tensor(a)
    perm = tuple(reversed(range(a.ndim))) if axes is None else tuple(a_ % a.ndim for a_ in axes)
    inverse = tuple(np.argsort(perm))
    return Tensor._from_op(a.data.transpose(perm), (a,), lambda g: (g.transpose(inverse),), "transpose")


# Loss.


def softmax_cross_entropy(logits: ArrayLike, targets: np.ndarray | Sequence[int]) -> Tensor:
    """Mean cross-entropy of ``softmax(logits)`` against integer class targets, fused into one operation.

    ``loss = mean_i( logsumexp(z_i) - z_i[t_i] )``. Subtracting each row's maximum before exponentiating keeps
    ``exp`` from overflowing without changing the result, and fusing softmax with the log gives the simple
    gradient ``(softmax(z) - onehot(t)) / N`` instead of dividing by probabilities that may underflow to 0.

    Args:
        logits: ``(N, C)`` unnormalised class scores.
        targets: ``(N,)`` class indices in ``[0, C)``.

    Returns:
        A scalar tensor.
    """
    logits = _as_tensor(logits)
    targets = np.asarray(targets)
    if logits.ndim != 2 or targets.shape != (logits.shape[0],) or not np.issubdtype(targets.dtype, np.integer):
        raise ValueError(f"expected (N, C) logits and (N,) integer targets, got {logits.shape} and {targets.shape}")
    n = logits.shape[0]
    rows = np.arange(n)
    shifted = logits.data - logits.data.max(axis=1, keepdims=True)  # (N, C)
    log_norm = np.log(np.exp(shifted).sum(axis=1))  # (N,)
    loss = np.mean(log_norm - shifted[rows, targets])

    def vjp(g: np.ndarray) -> tuple[np.ndarray]:
        grad = np.exp(shifted - log_norm[:, None])  # softmax, (N, C)
        grad[rows, targets] -= 1.0
        return (g * grad / n,)

    return Tensor._from_op(np.asarray(loss), (logits,), vjp, "softmax_cross_entropy")
