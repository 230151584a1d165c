"""Linear equals torch.nn.Linear; the MLP's initialisations and its training with our optimiser."""

import pytest
import torch
import torch.nn.functional as F

from paperzoo.core import optim
from paperzoo.core.nn import MLP, Linear, cross_entropy


def test_linear_default_init_and_outputs_match_torch():
    torch.manual_seed(0)
    ours = Linear(7, 5).double()
    torch.manual_seed(0)
    ref = torch.nn.Linear(7, 5).double()
    assert torch.equal(ours.weight, ref.weight) and torch.equal(ours.bias, ref.bias)
    x = torch.randn(3, 4, 7, dtype=torch.float64, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    out, out_ref = ours(x), ref(x_ref)
    torch.testing.assert_close(out, out_ref, rtol=1e-12, atol=1e-12)
    grad = torch.randn_like(out)
    out.backward(grad)
    out_ref.backward(grad)
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ours.bias.grad, ref.bias.grad, rtol=1e-12, atol=1e-12)
    assert repr(ours) == "Linear(in_features=7, out_features=5, bias=True)"


@pytest.mark.parametrize(
    ("init", "activation", "expected_std"),
    [("he", "relu", (2 / 400) ** 0.5), ("xavier", "tanh", (2 / (400 + 300)) ** 0.5), ("normal", "sigmoid", 0.01)],
)
def test_hidden_layer_initialisation(init, activation, expected_std):
    torch.manual_seed(0)
    model = MLP(in_features=400, hidden=[300, 300], num_classes=10, activation=activation, init=init)
    first = model.net[0]
    assert abs(first.weight.std().item() / expected_std - 1) < 0.02
    assert torch.count_nonzero(first.bias) == 0


def test_mlp_layout_shapes_and_batch_norm():
    model = MLP(in_features=784, hidden=[32, 16], num_classes=10, dropout=0.5, batch_norm=True)
    kinds = [type(m).__name__ for m in model.net]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Dropout", "Linear", "BatchNorm1d", "ReLU", "Dropout", "Linear"]
    assert model.net[0].bias is None  # batch norm's shift makes the bias redundant
    assert model(torch.randn(5, 1, 28, 28)).shape == (5, 10)
    assert model.num_classes == 10


def test_mlp_learns_with_our_optimiser_and_loss():
    torch.manual_seed(0)
    x = torch.randn(64, 1, 8, 8)
    y = torch.randint(0, 4, (64,))
    model = MLP(in_features=64, hidden=[64, 64], num_classes=4, activation="tanh", init="xavier")
    opt = optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(150):
        opt.zero_grad()
        loss = cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    assert torch.allclose(loss, F.cross_entropy(model(x), y), atol=1e-6)
    assert loss.item() < first / 20
