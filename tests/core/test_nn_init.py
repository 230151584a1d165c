"""paperzoo.core.nn initialisers: bit-identical to torch.nn.init under the same generator state."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn as tnn

from paperzoo.core import nn

SHAPES = [(30, 20), (8, 3, 5, 2), (5, 40)]


def _fill_both(ours_fn, ref_fn, shape: tuple[int, ...], **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    ours, ref = torch.empty(shape, dtype=torch.float64), torch.empty(shape, dtype=torch.float64)
    returned = ours_fn(ours, generator=torch.Generator().manual_seed(11), **kwargs)
    ref_fn(ref, generator=torch.Generator().manual_seed(11), **kwargs)
    assert returned is ours  # in place, like torch's
    return ours, ref


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(
    ("ours_fn", "ref_fn", "kwargs"),
    [
        (nn.xavier_uniform_, tnn.init.xavier_uniform_, {}),
        (nn.xavier_uniform_, tnn.init.xavier_uniform_, {"gain": 5 / 3}),
        (nn.xavier_normal_, tnn.init.xavier_normal_, {"gain": 2.0}),
        (nn.kaiming_uniform_, tnn.init.kaiming_uniform_, {}),
        (nn.kaiming_uniform_, tnn.init.kaiming_uniform_, {"a": math.sqrt(5)}),
        (nn.kaiming_uniform_, tnn.init.kaiming_uniform_, {"mode": "fan_out", "nonlinearity": "relu"}),
        (nn.kaiming_normal_, tnn.init.kaiming_normal_, {"nonlinearity": "tanh"}),
        (nn.kaiming_normal_, tnn.init.kaiming_normal_, {"a": 0.2, "mode": "fan_out"}),
        (nn.kaiming_normal_, tnn.init.kaiming_normal_, {"nonlinearity": "linear"}),
        (nn.orthogonal_, tnn.init.orthogonal_, {}),
        (nn.orthogonal_, tnn.init.orthogonal_, {"gain": 1.5}),
    ],
    ids=lambda v: v.__name__ if callable(v) else str(v),
)
def test_init_equals_torch_exactly(ours_fn, ref_fn, kwargs, shape) -> None:
    ours, ref = _fill_both(ours_fn, ref_fn, shape, **kwargs)
    torch.testing.assert_close(ours, ref, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("nonlinearity", "param"),
    [("linear", None), ("sigmoid", None), ("tanh", None), ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.3)],
)
def test_calculate_gain_equals_torch(nonlinearity, param) -> None:
    assert nn.calculate_gain(nonlinearity, param) == tnn.init.calculate_gain(nonlinearity, param)


def test_fans_match_the_weight_layout() -> None:
    assert nn.fan_in_and_fan_out(torch.empty(8, 3, 5, 2)) == (3 * 10, 8 * 10)
    with pytest.raises(ValueError):
        nn.fan_in_and_fan_out(torch.empty(5))


@pytest.mark.parametrize(
    ("init", "expected_var"),
    [
        (lambda w: nn.xavier_normal_(w), 2 / (400 + 300)),
        (lambda w: nn.xavier_uniform_(w), 2 / (400 + 300)),
        (lambda w: nn.kaiming_normal_(w, nonlinearity="relu"), 2 / 300),
        (lambda w: nn.kaiming_uniform_(w, mode="fan_out", nonlinearity="relu"), 2 / 400),
    ],
    ids=["xavier_normal", "xavier_uniform", "kaiming_normal_fan_in", "kaiming_uniform_fan_out"],
)
def test_init_variance_is_the_papers(init, expected_var) -> None:
    # The papers' target variances, independent of torch: 120k samples put the sample variance within
    # ~0.5% (relative standard error sqrt(2/n) for a Gaussian, less for a uniform), so 3% is > 5 sigma.
    torch.manual_seed(0)
    w = init(torch.empty(400, 300, dtype=torch.float64))
    assert abs(w.mean().item()) < 3 * math.sqrt(expected_var / w.numel()) + 1e-12
    assert w.var().item() == pytest.approx(expected_var, rel=0.03)


@pytest.mark.parametrize("shape", [(6, 10), (10, 6), (4, 3, 2, 2)])
def test_orthogonal_rows_or_columns_are_orthonormal(shape) -> None:
    w = nn.orthogonal_(torch.empty(shape, dtype=torch.float64), gain=2.0).reshape(shape[0], -1)
    small = min(w.shape)
    gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
    torch.testing.assert_close(gram, 4.0 * torch.eye(small, dtype=torch.float64), rtol=0, atol=1e-12)


def test_orthogonal_sign_correction_makes_r_diagonal_positive() -> None:
    # With the correction, Q^T G = R' has a positive diagonal; without it about half the signs would be negative.
    generator = torch.Generator().manual_seed(5)
    gaussian = torch.randn(50, 50, generator=generator, dtype=torch.float64)
    q = nn.orthogonal_(torch.empty(50, 50, dtype=torch.float64), generator=torch.Generator().manual_seed(5))
    assert (torch.diagonal(q.T @ gaussian) > 0).all()
