"""paperzoo.core.nn activations, losses, dropout and penalties against torch, in float64."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn as tnn

from paperzoo.core import nn

# Float64 and the same formula: anything beyond rounding error is a bug.
TOL = {"rtol": 1e-10, "atol": 1e-12}


def _leaf(t: torch.Tensor) -> torch.Tensor:
    return t.detach().clone().requires_grad_(True)


def assert_same_value_and_grad(ours_fn, ref_fn, *inputs: torch.Tensor, **tol: float) -> None:
    """Both functions give the same output and the same gradient w.r.t. every input, for a random cotangent."""
    tol = tol or TOL
    ours_in = [_leaf(x) for x in inputs]
    ref_in = [_leaf(x) for x in inputs]
    ours_out, ref_out = ours_fn(*ours_in), ref_fn(*ref_in)
    torch.testing.assert_close(ours_out, ref_out, **tol)
    cotangent = torch.randn_like(ref_out)
    ours_grads = torch.autograd.grad(ours_out, ours_in, cotangent)
    ref_grads = torch.autograd.grad(ref_out, ref_in, cotangent)
    for ours_g, ref_g in zip(ours_grads, ref_grads, strict=True):
        torch.testing.assert_close(ours_g, ref_g, **tol)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _activation_input() -> torch.Tensor:
    # Exact zeros (where relu's gradient convention shows), tiny values (where tanh loses precision if
    # written as 1 - e^{-2x}), and large ones (where a naive sigmoid overflows).
    special = torch.tensor([0.0, -0.0, 1e-12, -1e-12, 30.0, -30.0, 800.0, -800.0], dtype=torch.float64)
    return torch.cat([torch.randn(200, dtype=torch.float64) * 4, special])


@pytest.mark.parametrize(
    ("ours", "ref"),
    [
        (nn.sigmoid, torch.sigmoid),
        (nn.tanh, torch.tanh),
        (nn.relu, F.relu),
        (nn.leaky_relu, F.leaky_relu),
        (lambda x: nn.leaky_relu(x, 0.2), lambda x: F.leaky_relu(x, 0.2)),
        (nn.gelu, F.gelu),
        (lambda x: nn.gelu(x, "tanh"), lambda x: F.gelu(x, approximate="tanh")),
    ],
    ids=["sigmoid", "tanh", "relu", "leaky_relu", "leaky_relu_0.2", "gelu", "gelu_tanh"],
)
def test_activation_matches_torch(ours, ref) -> None:
    assert_same_value_and_grad(ours, ref, _activation_input())


@pytest.mark.parametrize(
    ("ours", "ref"),
    [
        (nn.Sigmoid(), tnn.Sigmoid()),
        (nn.Tanh(), tnn.Tanh()),
        (nn.ReLU(), tnn.ReLU()),
        (nn.LeakyReLU(0.3), tnn.LeakyReLU(0.3)),
        (nn.GELU(), tnn.GELU()),
        (nn.GELU("tanh"), tnn.GELU("tanh")),
    ],
    ids=lambda m: repr(m),
)
def test_activation_module_matches_torch(ours, ref) -> None:
    assert_same_value_and_grad(ours, ref, torch.randn(3, 5, dtype=torch.float64))
    assert repr(ours) == repr(ref)


def test_gelu_rejects_unknown_approximation() -> None:
    with pytest.raises(ValueError, match="approximate"):
        nn.gelu(torch.zeros(2), "sigmoid")


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("ignore", [False, True])
@pytest.mark.parametrize("shape", [(7, 5), (4, 5, 3, 2)], ids=["NC", "NCd1d2"])
def test_cross_entropy_matches_torch(reduction, label_smoothing, ignore, shape) -> None:
    logits = torch.randn(shape, dtype=torch.float64) * 3
    target_shape = (shape[0], *shape[2:])
    target = torch.randint(0, shape[1], target_shape)
    if ignore:
        # A handful of positions carry the ignore value, so the mean's divisor differs from numel.
        target = torch.where(torch.rand(target_shape) < 0.3, torch.full_like(target, -1), target)
        target.view(-1)[0] = -1
    kwargs = {"ignore_index": -1, "reduction": reduction, "label_smoothing": label_smoothing}
    assert_same_value_and_grad(
        lambda x: nn.cross_entropy(x, target, **kwargs), lambda x: F.cross_entropy(x, target, **kwargs), logits
    )


def test_cross_entropy_is_stable_for_huge_logits() -> None:
    logits = torch.tensor([[1000.0, 0.0, -1000.0], [-5e3, 5e3, 0.0]], dtype=torch.float64)
    target = torch.tensor([2, 1])
    assert_same_value_and_grad(lambda x: nn.cross_entropy(x, target), lambda x: F.cross_entropy(x, target), logits)


def test_cross_entropy_module_and_default_ignore_index() -> None:
    logits = torch.randn(6, 4, dtype=torch.float64)
    target = torch.tensor([0, -100, 3, 2, -100, 1])
    ours, ref = nn.CrossEntropyLoss(label_smoothing=0.2), tnn.CrossEntropyLoss(label_smoothing=0.2)
    assert_same_value_and_grad(lambda x: ours(x, target), lambda x: ref(x, target), logits)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_matches_torch(reduction) -> None:
    a, b = torch.randn(4, 3, 2, dtype=torch.float64), torch.randn(4, 3, 2, dtype=torch.float64)
    assert_same_value_and_grad(
        lambda x, y: nn.MSELoss(reduction)(x, y), lambda x, y: F.mse_loss(x, y, reduction=reduction), a, b
    )


def test_losses_reject_unknown_reduction() -> None:
    with pytest.raises(ValueError, match="reduction"):
        nn.mse_loss(torch.zeros(2), torch.zeros(2), reduction="avg")
    with pytest.raises(ValueError, match="reduction"):
        nn.CrossEntropyLoss(reduction="avg")


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_dropout_statistics_and_gradient(p) -> None:
    generator = torch.Generator().manual_seed(1)
    x = (torch.rand(400_000, dtype=torch.float64) + 0.5).requires_grad_(True)  # no zeros in the input
    y = nn.dropout(x, p, training=True, generator=generator)
    kept = y != 0
    # The drop rate is a mean of 400k Bernoulli(p) draws: standard error <= 8e-4, so 5e-3 is > 6 sigma.
    assert abs((~kept).double().mean().item() - p) < 5e-3
    torch.testing.assert_close(y[kept], x[kept] / (1 - p), **TOL)
    # Expectation preserved: the ratio of sums is 1 up to the same sampling noise.
    assert abs(y.sum().item() / x.sum().item() - 1) < 2e-2
    (grad,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(grad, kept.double() / (1 - p), **TOL)


def test_dropout_same_generator_same_mask_and_eval_identity() -> None:
    x = torch.randn(50, 20, dtype=torch.float64)
    first = nn.dropout(x, 0.5, generator=torch.Generator().manual_seed(3))
    second = nn.dropout(x, 0.5, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    layer = nn.Dropout(0.5).eval()
    assert layer(x) is x
    assert torch.equal(nn.dropout(x, 1.0), torch.zeros_like(x))
    assert repr(layer) == "Dropout(p=0.5)"


def _small_net() -> tnn.Module:
    return tnn.Sequential(tnn.Linear(4, 8), tnn.Tanh(), tnn.Linear(8, 3)).double()


def test_l2_penalty_step_equals_sgd_weight_decay() -> None:
    x, y = torch.randn(16, 4, dtype=torch.float64), torch.randn(16, 3, dtype=torch.float64)
    penalised = _small_net()
    decayed = copy.deepcopy(penalised)
    weight, lr = 0.3, 0.1

    opt = torch.optim.SGD(penalised.parameters(), lr=lr)
    (F.mse_loss(penalised(x), y) + nn.l2_penalty(penalised, weight)).backward()
    opt.step()

    opt = torch.optim.SGD(decayed.parameters(), lr=lr, weight_decay=weight)
    F.mse_loss(decayed(x), y).backward()
    opt.step()

    for p, q in zip(penalised.parameters(), decayed.parameters(), strict=True):
        torch.testing.assert_close(p, q, **TOL)


def test_penalty_values_and_gradients() -> None:
    net = _small_net()
    params = list(net.parameters())
    l1, l2 = nn.l1_penalty(net, 0.5), nn.l2_penalty(net, 0.5)
    torch.testing.assert_close(l1, 0.5 * sum(p.abs().sum() for p in params), **TOL)
    torch.testing.assert_close(l2, 0.25 * sum((p**2).sum() for p in params), **TOL)
    for g, p in zip(torch.autograd.grad(l1, params), params, strict=True):
        torch.testing.assert_close(g, 0.5 * p.sign(), **TOL)
    # Frozen parameters are not penalised, just as SGD does not decay parameters without gradients.
    params[0].requires_grad_(False)
    torch.testing.assert_close(nn.l1_penalty(net, 1.0), sum(p.abs().sum() for p in params[1:]), **TOL)
