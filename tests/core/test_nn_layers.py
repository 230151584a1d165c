"""paperzoo.core.nn normalisation, convolution and pooling layers against torch, in float64."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn as tnn

from paperzoo.core import nn

# Float64; sums are reordered (im2col matmul vs torch's kernels), so allow a few ulps more than equality.
TOL = {"rtol": 1e-10, "atol": 1e-12}


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _randomise(module: tnn.Module) -> None:
    """Move every parameter off its default so that a wrong scale or shift cannot hide behind 1 and 0."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p))


def assert_modules_agree(ours: tnn.Module, ref: tnn.Module, x: torch.Tensor) -> None:
    """Same output, same gradient w.r.t. the input and every parameter, for a random cotangent."""
    x_ours, x_ref = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    y_ours, y_ref = ours(x_ours), ref(x_ref)
    torch.testing.assert_close(y_ours, y_ref, **TOL)
    cotangent = torch.randn_like(y_ref)
    ours_inputs = [x_ours, *ours.parameters()]
    ref_inputs = [x_ref, *ref.parameters()]
    for g_ours, g_ref in zip(
        torch.autograd.grad(y_ours, ours_inputs, cotangent),
        torch.autograd.grad(y_ref, ref_inputs, cotangent),
        strict=True,
    ):
        torch.testing.assert_close(g_ours, g_ref, **TOL)


BATCH_NORM_CASES = [
    (nn.BatchNorm1d, tnn.BatchNorm1d, (16, 5)),
    (nn.BatchNorm1d, tnn.BatchNorm1d, (8, 5, 7)),
    (nn.BatchNorm2d, tnn.BatchNorm2d, (4, 5, 6, 3)),
]


@pytest.mark.parametrize(("ours_cls", "ref_cls", "shape"), BATCH_NORM_CASES, ids=["1d_NC", "1d_NCL", "2d"])
@pytest.mark.parametrize("momentum", [0.1, 0.7, None])
@pytest.mark.parametrize(("affine", "bias"), [(True, True), (True, False), (False, True)])
def test_batch_norm_train_then_eval_matches_torch(ours_cls, ref_cls, shape, momentum, affine, bias) -> None:
    ref = ref_cls(shape[1], momentum=momentum, affine=affine, eps=1e-3, bias=bias).double()
    _randomise(ref)
    ours = ours_cls(shape[1], momentum=momentum, affine=affine, eps=1e-3, bias=bias).double()
    ours.load_state_dict(ref.state_dict())
    for step in range(4):
        # Shifted, scaled batches so that the running mean and variance move well away from 0 and 1.
        x = torch.randn(shape, dtype=torch.float64) * (step + 1) + step
        assert_modules_agree(ours, ref, x)
    for name, buffer in ref.named_buffers():
        torch.testing.assert_close(getattr(ours, name), buffer, **TOL, msg=f"buffer {name}")
    ours.eval()
    ref.eval()
    assert_modules_agree(ours, ref, torch.randn(shape, dtype=torch.float64) * 3 + 2)
    assert repr(ours) == repr(ref)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_without_running_stats_uses_the_batch(training) -> None:
    ref = tnn.BatchNorm2d(3, track_running_stats=False).double().train(training)
    _randomise(ref)
    ours = nn.BatchNorm2d(3, track_running_stats=False).double().train(training)
    ours.load_state_dict(ref.state_dict())
    assert ours.running_mean is None
    assert_modules_agree(ours, ref, torch.randn(4, 3, 5, 5, dtype=torch.float64) * 2 + 1)


def test_batch_norm_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(torch.randn(1, 3))
    with pytest.raises(ValueError, match="expects"):
        nn.BatchNorm2d(3)(torch.randn(2, 3))


@pytest.mark.parametrize(
    ("normalized_shape", "shape"), [(6, (4, 6)), ((3, 4), (2, 5, 3, 4))], ids=["last_dim", "last_two_dims"]
)
@pytest.mark.parametrize(("affine", "bias"), [(True, True), (True, False), (False, False)])
def test_layer_norm_matches_torch(normalized_shape, shape, affine, bias) -> None:
    ref = tnn.LayerNorm(normalized_shape, eps=1e-4, elementwise_affine=affine, bias=bias).double()
    _randomise(ref)
    ours = nn.LayerNorm(normalized_shape, eps=1e-4, elementwise_affine=affine, bias=bias).double()
    ours.load_state_dict(ref.state_dict())
    assert_modules_agree(ours, ref, torch.randn(shape, dtype=torch.float64) * 2 + 1)
    assert repr(ours) == repr(ref)


# (in, out, kernel, stride, padding, dilation, groups, bias)
CONV_CASES = [
    (3, 4, 3, 1, 0, 1, 1, True),
    (3, 6, (2, 3), (2, 1), (1, 0), 1, 1, True),
    (4, 6, 3, 2, 1, 2, 2, False),
    (4, 4, (3, 1), 1, (1, 0), (1, 2), 4, True),
    (6, 12, 3, (1, 2), 2, 1, 6, True),
    (2, 3, (1, 4), 3, (0, 2), (1, 2), 1, True),
]


@pytest.mark.parametrize(
    ("c_in", "c_out", "kernel", "stride", "padding", "dilation", "groups", "bias"),
    CONV_CASES,
    ids=["plain", "rect_stride", "dilated_grouped", "depthwise_rect", "depthwise_x2", "wide_kernel"],
)
def test_conv2d_matches_torch(c_in, c_out, kernel, stride, padding, dilation, groups, bias) -> None:
    kwargs = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups, "bias": bias}
    ref = tnn.Conv2d(c_in, c_out, kernel, **kwargs).double()
    ours = nn.Conv2d(c_in, c_out, kernel, **kwargs).double()
    ours.load_state_dict(ref.state_dict())
    assert_modules_agree(ours, ref, torch.randn(2, c_in, 9, 8, dtype=torch.float64))
    assert repr(ours) == repr(ref)


def test_conv2d_default_init_matches_torch() -> None:
    torch.manual_seed(7)
    ref = tnn.Conv2d(3, 5, (3, 2), groups=1)
    torch.manual_seed(7)
    ours = nn.Conv2d(3, 5, (3, 2), groups=1)
    torch.testing.assert_close(ours.weight, ref.weight, rtol=0, atol=0)
    torch.testing.assert_close(ours.bias, ref.bias, rtol=0, atol=0)


def test_im2col_reads_the_documented_positions() -> None:
    x = torch.arange(2 * 7 * 6, dtype=torch.float64).reshape(1, 2, 7, 6)
    patches = nn.im2col(x, (2, 3), stride=(2, 1), padding=(1, 0), dilation=(2, 1))
    # H_out = (7 + 2 - 2 * (2 - 1) - 1) // 2 + 1 = 4, W_out = (6 - 2 - 1) // 1 + 1 = 4.
    assert patches.shape == (1, 2, 4, 4, 2, 3)
    padded = F.pad(x, (0, 0, 1, 1))
    # Output (i, j), offset (u, v) reads padded row i*s_h + u*d_h, column j*s_w + v*d_w.
    assert patches[0, 1, 3, 3, 1, 2] == padded[0, 1, 3 * 2 + 1 * 2, 3 * 1 + 2 * 1]
    assert patches[0, 1, 1, 2, 0, 1] == padded[0, 1, 1 * 2 + 0 * 2, 2 * 1 + 1 * 1]
    assert patches[0, 0, 0, 0, 0, 0] == 0  # the top padding row


def test_conv2d_rejects_mismatched_groups() -> None:
    with pytest.raises(ValueError, match="groups"):
        nn.conv2d(torch.randn(1, 4, 5, 5), torch.randn(6, 4, 3, 3), groups=2)


# (kernel, stride, padding)
POOL_CASES = [(2, None, 0), (3, 2, 1), ((3, 2), (1, 2), (1, 1)), ((2, 4), 3, (0, 2))]


@pytest.mark.parametrize(("kernel", "stride", "padding"), POOL_CASES, ids=["k2", "k3s2p1", "rect", "rect_pad"])
def test_max_pool2d_matches_torch(kernel, stride, padding) -> None:
    ours, ref = nn.MaxPool2d(kernel, stride, padding), tnn.MaxPool2d(kernel, stride, padding)
    assert_modules_agree(ours, ref, torch.randn(2, 3, 9, 8, dtype=torch.float64))


@pytest.mark.parametrize(("kernel", "stride", "padding"), POOL_CASES, ids=["k2", "k3s2p1", "rect", "rect_pad"])
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool2d_matches_torch(kernel, stride, padding, count_include_pad) -> None:
    ours = nn.AvgPool2d(kernel, stride, padding, count_include_pad=count_include_pad)
    ref = tnn.AvgPool2d(kernel, stride, padding, count_include_pad=count_include_pad)
    assert_modules_agree(ours, ref, torch.randn(2, 3, 9, 8, dtype=torch.float64))


def test_max_pool2d_with_dilation_matches_torch() -> None:
    x = torch.randn(1, 2, 10, 9, dtype=torch.float64)
    ours, ref = nn.MaxPool2d(3, 2, 1, dilation=2), tnn.MaxPool2d(3, 2, 1, dilation=2)
    assert_modules_agree(ours, ref, x)


def test_pool_rejects_padding_over_half_the_kernel() -> None:
    with pytest.raises(ValueError, match="half"):
        nn.avg_pool2d(torch.randn(1, 1, 5, 5), 2, padding=2)
