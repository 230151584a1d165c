"""The NumPy autograd gives torch.autograd's values and gradients (float64, rel. error <= 1e-8) and finite differences'.

Checked by hand that these tests can fail, each change made once and then restored:

- tanh's derivative written as ``1 - out`` instead of ``1 - out**2``: 6 tests fail, among them
  ``test_op_matches_torch[tanh]``, ``test_op_matches_finite_differences[tanh]``, the 2-layer MLP parity and
  ``test_sgd_learns_two_spirals[tanh-0.3]``.
- ``_unbroadcast`` returning the gradient unsummed: 19 tests fail, every broadcast case of both op tests
  (e.g. ``add_row_vector``, ``mul_3d_by_2d``, ``matmul_batched_broadcast``) and the MLP ones (the bias is broadcast
  over the batch).
- ``backward`` not clearing intermediate gradients before a second pass:
  ``test_second_backward_accumulates_into_leaves_only`` fails."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from paperzoo.core.classic import NumpyMLP, Tensor, softmax_cross_entropy, train_sgd

RTOL, ATOL = 1e-8, 1e-10
FD_EPS, FD_RTOL, FD_ATOL = 1e-6, 1e-5, 1e-7


def _sample(rng, shape, domain):
    """Random float64 inputs, kept where the op is smooth: away from 0 for log/relu/division, positive for log."""
    if domain == "any":
        return rng.normal(size=shape)
    magnitude = rng.uniform(0.3, 2.0, size=shape)
    return magnitude if domain == "positive" else magnitude * rng.choice([-1.0, 1.0], size=shape)


# name: (our op, torch's op, input shapes, input domains). Lambdas take our Tensors or torch tensors alike where the
# two APIs agree; the shapes include every broadcasting pattern the engine must undo.
CASES = {
    "add_row_vector": (lambda a, b: a + b, None, [(3, 4), (4,)], ["any", "any"]),
    "add_scalar_tensor": (lambda a, b: a + b, None, [(3, 4), ()], ["any", "any"]),
    "sub_outer": (lambda a, b: a - b, None, [(3, 1), (1, 4)], ["any", "any"]),
    "neg": (lambda a: -a, None, [(3, 4)], ["any"]),
    "mul_3d_by_2d": (lambda a, b: a * b, None, [(2, 1, 3), (4, 1)], ["any", "any"]),
    "truediv_column": (lambda a, b: a / b, None, [(3, 4), (3, 1)], ["any", "nonzero"]),
    "matmul": (lambda a, b: a @ b, None, [(3, 4), (4, 5)], ["any", "any"]),
    "matmul_batched_broadcast": (lambda a, b: a @ b, None, [(2, 1, 3, 4), (5, 4, 2)], ["any", "any"]),
    "pow_cube": (lambda a: a**3, None, [(3, 4)], ["any"]),
    "pow_fractional": (lambda a: a**-1.5, None, [(3, 4)], ["positive"]),
    "exp": (lambda a: a.exp(), None, [(3, 4)], ["any"]),
    "log": (lambda a: a.log(), None, [(3, 4)], ["positive"]),
    "tanh": (lambda a: a.tanh(), None, [(3, 4)], ["any"]),
    "sigmoid": (lambda a: a.sigmoid(), None, [(3, 4)], ["any"]),
    "relu": (lambda a: a.relu(), None, [(3, 4)], ["nonzero"]),
    "sum_all": (lambda a: a.sum(), None, [(2, 3, 4)], ["any"]),
    "sum_axis": (lambda a: a.sum(axis=1), lambda a: a.sum(dim=1), [(2, 3, 4)], ["any"]),
    "sum_axes_keepdims": (
        lambda a: a.sum(axis=(0, -1), keepdims=True),
        lambda a: a.sum(dim=(0, -1), keepdim=True),
        [(2, 3, 4)],
        ["any"],
    ),
    "mean_all": (lambda a: a.mean(), None, [(2, 3, 4)], ["any"]),
    "mean_axis_keepdims": (
        lambda a: a.mean(axis=-1, keepdims=True),
        lambda a: a.mean(dim=-1, keepdim=True),
        [(2, 3, 4)],
        ["any"],
    ),
    "reshape": (
        lambda a: a.reshape(4, 6) * np.arange(24.0).reshape(4, 6),
        lambda a: a.reshape(4, 6) * torch.arange(24.0, dtype=torch.float64).reshape(4, 6),
        [(2, 3, 4)],
        ["any"],
    ),
    "transpose_2d": (
        lambda a: a.T @ np.ones((3, 2)),
        lambda a: a.T @ torch.ones(3, 2, dtype=torch.float64),
        [(3, 4)],
        ["any"],
    ),
    "transpose_permute": (
        lambda a: a.transpose((1, 2, 0)) * np.arange(24.0).reshape(3, 4, 2),
        lambda a: a.permute(1, 2, 0) * torch.arange(24.0, dtype=torch.float64).reshape(3, 4, 2),
        [(2, 3, 4)],
        ["any"],
    ),
    "scalars_on_the_left": (lambda a: 2.0 - 3.0 / a + 0.5 * a, None, [(3, 4)], ["nonzero"]),
    "array_on_the_left": (
        lambda a: np.linspace(1, 2, 4) * a + np.ones((3, 1)) - a,
        lambda a: torch.linspace(1, 2, 4, dtype=torch.float64) * a + torch.ones(3, 1, dtype=torch.float64) - a,
        [(3, 4)],
        ["any"],
    ),
    "softmax_cross_entropy": (
        lambda a: softmax_cross_entropy(a, np.array([0, 2, 1, 2, 4])),
        lambda a: F.cross_entropy(a, torch.tensor([0, 2, 1, 2, 4])),
        [(5, 5)],
        ["any"],
    ),
}


def _inputs(name, seed=0):
    _, _, shapes, domains = CASES[name]
    rng = np.random.default_rng(seed)
    return [_sample(rng, s, d) for s, d in zip(shapes, domains, strict=True)], rng


def _ours(name, arrays, upstream=None):
    """Value of our op, gradients of ``sum(out * upstream)`` w.r.t. each input, and ``upstream``."""
    op = CASES[name][0]
    leaves = [Tensor(a, requires_grad=True) for a in arrays]
    out = op(*leaves)
    out.backward(upstream)
    return out.data, [leaf.grad for leaf in leaves]


@pytest.mark.parametrize("name", list(CASES))
def test_op_matches_torch(name):
    arrays, rng = _inputs(name)
    ours_op, torch_op, _, _ = CASES[name]
    torch_op = torch_op or ours_op
    leaves = [torch.tensor(a, requires_grad=True) for a in arrays]
    expected = torch_op(*leaves)
    # A random upstream gradient, so every output element is weighted differently and a transposed or misplaced
    # gradient cannot pass.
    upstream = rng.normal(size=tuple(expected.shape))
    expected.backward(torch.from_numpy(upstream))
    value, grads = _ours(name, arrays, upstream)
    torch.testing.assert_close(torch.from_numpy(np.asarray(value)), expected.detach(), rtol=RTOL, atol=ATOL)
    for grad, leaf in zip(grads, leaves, strict=True):
        assert grad.shape == leaf.shape
        torch.testing.assert_close(torch.from_numpy(grad), leaf.grad, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", list(CASES))
def test_op_matches_finite_differences(name):
    arrays, rng = _inputs(name, seed=1)
    op = CASES[name][0]
    upstream = rng.normal(size=np.shape(op(*[Tensor(a) for a in arrays]).data))
    _, grads = _ours(name, arrays, upstream)

    def objective(values):
        return float(np.sum(op(*[Tensor(v) for v in values]).data * upstream))

    for i, array in enumerate(arrays):
        numeric = np.zeros_like(array)
        for idx in np.ndindex(array.shape):
            plus = [a.copy() for a in arrays]
            minus = [a.copy() for a in arrays]
            plus[i][idx] += FD_EPS
            minus[i][idx] -= FD_EPS
            numeric[idx] = (objective(plus) - objective(minus)) / (2 * FD_EPS)
        np.testing.assert_allclose(grads[i], numeric, rtol=FD_RTOL, atol=FD_ATOL)


def _two_layer_mlp_loss(lib, x, targets, w1, b1, w2, b2):
    """Cross-entropy of a tanh MLP plus an L2 penalty, written once for both libraries."""
    logits = (x @ w1 + b1).tanh() @ w2 + b2
    if lib == "torch":
        return F.cross_entropy(logits, torch.from_numpy(targets)) + 1e-3 * (w1**2).sum()
    return softmax_cross_entropy(logits, targets) + 1e-3 * (w1**2).sum()


def test_two_layer_mlp_loss_matches_torch():
    rng = np.random.default_rng(0)
    x, targets = rng.normal(size=(8, 5)), rng.integers(0, 3, size=8)
    params = [rng.normal(size=s) for s in [(5, 7), (7,), (7, 3), (3,)]]
    ours = [Tensor(p, requires_grad=True) for p in params]
    theirs = [torch.tensor(p, requires_grad=True) for p in params]
    loss = _two_layer_mlp_loss("ours", Tensor(x), targets, *ours)
    expected = _two_layer_mlp_loss("torch", torch.from_numpy(x), targets, *theirs)
    loss.backward()
    expected.backward()
    assert loss.item() == pytest.approx(expected.item(), rel=RTOL)
    for p, q in zip(ours, theirs, strict=True):
        torch.testing.assert_close(torch.from_numpy(p.grad), q.grad, rtol=RTOL, atol=ATOL)


def test_binary_cross_entropy_composite_matches_torch():
    rng = np.random.default_rng(1)
    z, y = rng.normal(size=(6, 2)), rng.integers(0, 2, size=(6, 2)).astype(float)
    ours = Tensor(z, requires_grad=True)
    p = ours.sigmoid()
    loss = -(y * p.log() + (1 - y) * (1 - p).log()).mean()
    loss.backward()
    theirs = torch.tensor(z, requires_grad=True)
    expected = F.binary_cross_entropy_with_logits(theirs, torch.from_numpy(y))
    expected.backward()
    assert loss.item() == pytest.approx(expected.item(), rel=RTOL)
    torch.testing.assert_close(torch.from_numpy(ours.grad), theirs.grad, rtol=RTOL, atol=ATOL)


def test_gradient_accumulates_over_uses():
    x_np = np.array([[-1.5, 0.5, 2.0]])
    x = Tensor(x_np, requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x_np, rtol=0, atol=0)

    x, y = Tensor(x_np, requires_grad=True), Tensor(3.0, requires_grad=True)
    (x * y + x.exp() + y).sum().backward()  # x and y each reach the loss along two paths
    np.testing.assert_allclose(x.grad, 3.0 + np.exp(x_np), rtol=1e-15)
    assert y.grad == pytest.approx(x_np.sum() + 3)


def test_second_backward_accumulates_into_leaves_only():
    x_np = np.array([0.3, -0.7, 1.1])
    x = Tensor(x_np, requires_grad=True)
    loss = (x * x).tanh().sum()
    loss.backward()
    once = x.grad.copy()
    loss.backward()
    # Like torch with retain_graph=True: the leaf holds the sum of both passes, the intermediates only the last one.
    np.testing.assert_allclose(x.grad, 2 * once, rtol=1e-15)
    expected = 2 * x_np * (1 - np.tanh(x_np**2) ** 2)
    np.testing.assert_allclose(once, expected, rtol=1e-14)
    x.zero_grad()
    assert x.grad is None


def test_constants_get_no_gradient():
    w = Tensor(np.ones((2, 2)), requires_grad=True)
    data = Tensor(np.eye(2))
    (data @ w).sum().backward()
    assert data.grad is None
    assert not (data * 2.0).requires_grad
    with pytest.raises(RuntimeError, match="does not require grad"):
        (data * 2.0).sum().backward()
    with pytest.raises(RuntimeError, match="scalar"):
        (w * 2.0).backward()


def test_numerically_stable_at_extreme_logits():
    logits_np = np.array([[1000.0, 0.0, -1000.0], [-800.0, -800.0, 800.0]])
    logits = Tensor(logits_np, requires_grad=True)
    # An overflow, a log(0) or a nan would raise here instead of warning; underflow to 0 is harmless and allowed.
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        loss = softmax_cross_entropy(logits, np.array([1, 2]))
        loss.backward()
        sig = Tensor(logits_np).sigmoid()
    theirs = torch.tensor(logits_np, requires_grad=True)
    expected = F.cross_entropy(theirs, torch.tensor([1, 2]))
    expected.backward()
    assert loss.item() == pytest.approx(expected.item(), rel=RTOL)
    torch.testing.assert_close(torch.from_numpy(logits.grad), theirs.grad, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(sig.data, torch.sigmoid(torch.from_numpy(logits_np)).numpy(), rtol=RTOL, atol=0)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        Tensor(np.ones(3)) @ Tensor(np.ones((3, 2)))
    with pytest.raises(ValueError, match="integer targets"):
        softmax_cross_entropy(Tensor(np.ones((2, 3))), np.array([0.0, 1.0]))


# The MLP and its trainer.


def _spirals(n_per_class, noise, seed):
    """Two interleaved 1.5-turn spirals in the plane, radius up to 3."""
    rng = np.random.default_rng(seed)
    t = np.sqrt(rng.uniform(0, 1, 2 * n_per_class)) * 3 * np.pi
    y = np.repeat([0, 1], n_per_class)
    angle = t + np.pi * y
    x = np.stack([t * np.cos(angle), t * np.sin(angle)], axis=1) / np.pi + rng.normal(0, noise, (2 * n_per_class, 2))
    return x, y


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_mlp_loss_gradients_match_torch(activation):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 4)), rng.integers(0, 3, size=16)
    model = NumpyMLP([4, 8, 6, 3], activation=activation, seed=0)
    model.loss(x, y).backward()
    layers = []
    for w, b in zip(model.weights, model.biases, strict=True):
        linear = torch.nn.Linear(*w.shape, dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w.data.T))  # torch stores (out, in)
            linear.bias.copy_(torch.from_numpy(b.data))
        layers += [linear, torch.nn.Tanh() if activation == "tanh" else torch.nn.ReLU()]
    reference = torch.nn.Sequential(*layers[:-1])
    expected = F.cross_entropy(reference(torch.from_numpy(x)), torch.from_numpy(y))
    expected.backward()
    assert model.loss(x, y).item() == pytest.approx(expected.item(), rel=RTOL)
    linears = [m for m in reference if isinstance(m, torch.nn.Linear)]
    for w, b, linear in zip(model.weights, model.biases, linears, strict=True):
        torch.testing.assert_close(torch.from_numpy(w.grad.T), linear.weight.grad, rtol=RTOL, atol=ATOL)
        torch.testing.assert_close(torch.from_numpy(b.grad), linear.bias.grad, rtol=RTOL, atol=ATOL)


def test_mlp_initialisation_scales():
    fan_in, fan_out = 400, 300
    relu = NumpyMLP([fan_in, fan_out], activation="relu", seed=0).weights[0].data
    assert relu.std() == pytest.approx(np.sqrt(2 / fan_in), rel=0.02)  # He et al. 2015
    tanh = NumpyMLP([fan_in, fan_out], activation="tanh", seed=0).weights[0].data
    limit = np.sqrt(6 / (fan_in + fan_out))  # Glorot & Bengio 2010
    assert np.abs(tanh).max() <= limit
    assert tanh.std() == pytest.approx(limit / np.sqrt(3), rel=0.02)
    assert repr(NumpyMLP([2, 3])) == "NumpyMLP(sizes=[2, 3], activation='tanh')"


@pytest.mark.parametrize(("activation", "lr"), [("tanh", 0.3), ("relu", 0.1)])
def test_sgd_learns_two_spirals(activation, lr):
    x, y = _spirals(100, noise=0.05, seed=0)
    model = NumpyMLP([2, 32, 32, 2], activation=activation, seed=0)
    history = train_sgd(model, x, y, epochs=300, lr=lr, batch_size=20, seed=0)
    assert len(history.loss) == len(history.accuracy) == 301
    assert history.loss[-1] == pytest.approx(model.loss(x, y).item(), rel=1e-12)
    assert history.accuracy[0] < 0.7  # the spirals are not linearly separable: a fresh network is near chance
    assert history.loss[0] / history.loss[-1] > 10
    assert history.accuracy[-1] > 0.95
    assert np.mean(model.predict(x) == y) == history.accuracy[-1]


def test_sgd_is_reproducible_from_its_seeds():
    x, y = _spirals(30, noise=0.05, seed=1)
    runs = [train_sgd(NumpyMLP([2, 8, 2], seed=3), x, y, epochs=3, lr=0.1, batch_size=7, seed=4) for _ in range(2)]
    assert runs[0] == runs[1]
    other_order = train_sgd(NumpyMLP([2, 8, 2], seed=3), x, y, epochs=3, lr=0.1, batch_size=7, seed=5)
    assert other_order.loss[-1] != runs[0].loss[-1]
