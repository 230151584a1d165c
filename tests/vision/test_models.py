"""Tests for paperzoo.vision.models: registry-generated checks, the papers' parameter counts, reference parity."""

import pytest
import timm
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from paperzoo.vision.layers import ScaledTanh, create_act
from paperzoo.vision.models import CifarResNet, LeNet5, Subsampling, TableConv2d, ZeroPadShortcut
from paperzoo.vision.registry import create_model, list_models

# Each check below runs every registered model on square images of its `min_input_size`. These models repeat a network
# that stays in the default run at a cost of seconds per check (VGG's 4096-wide classifier): they run with -m slow.
# Larger copies of a family whose smallest member stays in the default run (ViT-B/16 and Swin-T are also built
# in the parity tests of test_models_vit.py, so the default run still covers them)
SLOW_DUPLICATES = {"vgg13", "vgg16", "vgg19", "vgg13_bn", "vgg16_bn", "vgg19_bn"}
SLOW_DUPLICATES |= {"vit_base_patch16_224", "swin_small_patch4_window7_224"}
REGISTERED = [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_DUPLICATES else n for n in list_models()]


def _num_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _images(model: nn.Module, batch_size: int, in_chans: int = 3) -> torch.Tensor:
    size = model.min_input_size
    return torch.randn(batch_size, in_chans, size, size)


def _all_logits(output: torch.Tensor | tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """Main logits first, then any auxiliary classifier's (GoogLeNet in training mode returns a tuple)."""
    return output if isinstance(output, tuple) else (output,)


# --- every registered model ------------------------------------------------------------------------------------------


def test_registry_lists_the_paper_variants():
    expected = {"lenet5", "resnet18", "resnet34", "resnet50", "resnet101"}
    expected |= {"resnet20", "resnet32", "resnet44", "resnet56", "resnet110"}
    expected |= {"alexnet", "googlenet", "densenet121", "densenet169", "densenet201", "densenet_bc_100"}
    expected |= {f"vgg{depth}{bn}" for depth in (11, 13, 16, 19) for bn in ("", "_bn")}
    assert expected <= set(list_models())
    assert list_models("resnet1*") == ["resnet101", "resnet110", "resnet18"]
    with pytest.raises(KeyError, match="unknown model"):
        create_model("resnet19")


@pytest.mark.parametrize("in_chans", [1, 3])
@pytest.mark.parametrize("name", REGISTERED)
def test_forward_shape_and_attributes(name, in_chans):
    torch.manual_seed(0)
    model = create_model(name, num_classes=7, in_chans=in_chans)
    assert (model.num_classes, model.in_chans) == (7, in_chans)
    assert isinstance(model.min_input_size, int)
    x = _images(model, 2, in_chans)
    for logits in _all_logits(model(x)):
        assert logits.shape == (2, 7)
    assert model.forward_features(x).shape[0] == 2


@pytest.mark.parametrize("name", REGISTERED)
def test_backward_reaches_every_parameter(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=5, in_chans=3).train()
    target = torch.tensor([0, 3])
    loss = sum(F.cross_entropy(logits, target) for logits in _all_logits(model(_images(model, 2))))
    loss.backward()
    for param_name, param in model.named_parameters():
        assert param.grad is not None, param_name
        # one pass over the gradient (VGG's has 100M entries): NaN propagates to both, inf shows in one of them
        low, high = torch.aminmax(param.grad)
        assert torch.isfinite(low) and torch.isfinite(high), param_name
        assert low != 0 or high != 0, f"{param_name} gets no gradient"


@pytest.mark.parametrize("name", REGISTERED)
def test_eval_is_deterministic_and_per_example(name):
    torch.manual_seed(0)
    model = create_model(name, in_chans=3).eval()
    x = _images(model, 3)
    with torch.no_grad():
        out = model(x)
        assert torch.equal(out, model(x))
        # in eval mode batch norm uses running statistics, so an example's logits do not depend on its batch (up to
        # the rounding of batch-size dependent kernels; batch statistics would change them by O(1))
        torch.testing.assert_close(model(x[:1]), out[:1], atol=1e-3, rtol=1e-3)


# --- LeNet-5 ---------------------------------------------------------------------------------------------------------


def test_lenet5_layer_parameters_match_the_paper():
    model = LeNet5()
    # Section II.B of LeCun et al. 1998
    assert _num_params(model.c1) == 156
    assert _num_params(model.s2) == 12
    assert isinstance(model.c3, TableConv2d)
    assert model.c3.num_connected_parameters() == 1516
    assert int((model.c3.weight != 0).sum()) + model.c3.bias.numel() == 1516  # weights off the table start at 0
    assert _num_params(model.s4) == 32
    assert _num_params(model.c5) == 48_120
    assert _num_params(model.f6) == 10_164
    assert _num_params(LeNet5(c3_table=False).c3) == 2416


def test_lenet5_c3_table_has_the_shape_of_table_one():
    connection = LeNet5().c3.connection.squeeze()  # (16 C3 maps, 6 S2 maps)
    assert sorted(connection.sum(1).tolist()) == [3] * 6 + [4] * 9 + [6]
    assert connection.sum(0).tolist() == [10] * 6  # every S2 map feeds ten C3 maps
    assert len({tuple(row.tolist()) for row in connection}) == 16


def test_lenet5_c3_weights_off_the_table_get_no_gradient():
    torch.manual_seed(0)
    model = LeNet5()
    F.cross_entropy(model(torch.randn(4, 1, 32, 32)), torch.tensor([0, 1, 2, 3])).backward()
    connected = model.c3.connection.expand_as(model.c3.weight).bool()
    grad = model.c3.weight.grad
    assert (grad[~connected] == 0).all()
    assert (grad[connected] != 0).all()
    torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=1e-3).step()
    assert (model.c3.weight[~connected] == 0).all()


@pytest.mark.parametrize(("input_size", "activation"), [(32, "tanh"), (28, "tanh"), (32, "relu")])
def test_lenet5_shapes(input_size, activation):
    model = LeNet5(num_classes=10, input_size=input_size, activation=activation)
    x = torch.randn(2, 1, input_size, input_size)
    assert model.forward_features(x).shape == (2, 84)
    assert model(x).shape == (2, 10)


def test_lenet5_rejects_other_input_sizes():
    with pytest.raises(ValueError, match="28x28 or 32x32"):
        LeNet5(input_size=64)


def test_scaled_tanh_maps_one_to_one():
    # Appendix A: A = 1.7159 and S = 2/3 are chosen so that f(1) = 1 and f(-1) = -1
    out = ScaledTanh()(torch.tensor([-1.0, 0.0, 1.0]))
    torch.testing.assert_close(out, torch.tensor([-1.0, 0.0, 1.0]), atol=1e-3, rtol=0)
    assert isinstance(create_act("relu"), nn.ReLU)
    with pytest.raises(ValueError, match="unknown activation"):
        create_act("swish")


def test_subsampling_is_scaled_average_plus_bias():
    layer = Subsampling(2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([2.0, -1.0]))
        layer.bias.copy_(torch.tensor([0.5, 0.0]))
    x = torch.arange(32, dtype=torch.float32).view(1, 2, 4, 4)
    window_means = x.view(1, 2, 2, 2, 2, 2).mean(dim=(3, 5))  # (B, C, H/2, W/2)
    expected = window_means * torch.tensor([2.0, -1.0]).view(1, 2, 1, 1) + torch.tensor([0.5, 0.0]).view(1, 2, 1, 1)
    torch.testing.assert_close(layer(x), expected)
    assert repr(layer) == "Subsampling(2)"


@pytest.mark.parametrize(("name", "steps"), [("lenet5", 40), ("resnet20", 15)])
def test_overfits_a_tiny_batch(name, steps):
    torch.manual_seed(0)
    model = create_model(name, num_classes=10, in_chans=1)
    x, y = torch.randn(8, 1, 32, 32), torch.randint(0, 10, (8,))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 100


# --- CIFAR ResNets ---------------------------------------------------------------------------------------------------

# Table 6 of He et al. 2016, in millions, at the paper's rounding
PAPER_CIFAR_PARAMS = [("resnet20", "0.27"), ("resnet32", "0.46"), ("resnet44", "0.66"), ("resnet56", "0.85")]
PAPER_CIFAR_PARAMS += [("resnet110", "1.7")]


@pytest.mark.parametrize(("name", "paper_millions"), PAPER_CIFAR_PARAMS)
def test_cifar_resnet_parameters_match_table_6(name, paper_millions):
    model = create_model(name)
    decimals = len(paper_millions.split(".")[1])
    assert f"{_num_params(model) / 1e6:.{decimals}f}" == paper_millions
    # 6n + 2 weighted layers, and option A shortcuts add none
    weighted = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(weighted) == model.depth == int(name.removeprefix("resnet"))


def test_cifar_resnet_stage_resolutions():
    model = CifarResNet(20)
    assert model.forward_features(torch.randn(2, 3, 32, 32)).shape == (2, 64, 8, 8)
    assert _num_params(CifarResNet(20, shortcut="B")) > _num_params(model)
    with pytest.raises(ValueError, match="6n \\+ 2"):
        CifarResNet(21)
    with pytest.raises(ValueError, match="shortcut"):
        CifarResNet(20, shortcut="C")


def test_zero_pad_shortcut_subsamples_and_pads_with_zeros():
    shortcut = ZeroPadShortcut(16, 32, stride=2)
    x = torch.randn(2, 16, 8, 8)
    out = shortcut(x)
    assert out.shape == (2, 32, 4, 4)
    torch.testing.assert_close(out[:, :16], x[:, :, ::2, ::2])
    assert (out[:, 16:] == 0).all()
    assert _num_params(shortcut) == 0


def test_zero_init_last_starts_blocks_as_identity():
    model = create_model("resnet20", zero_init_last=True)
    assert all(block.bn2.weight.abs().sum() == 0 for stage in (model.layer1, model.layer2) for block in stage)
    assert create_model("resnet50", zero_init_last=True).layer3[0].bn3.weight.abs().sum() == 0
    assert create_model("resnet50").layer3[0].bn3.weight.abs().sum() > 0


# --- parity with torchvision and timm --------------------------------------------------------------------------------

PARITY_TOL = 1e-4
REFERENCES = {
    "torchvision": lambda name: getattr(torchvision.models, name)(),
    "timm": lambda name: timm.create_model(name, pretrained=False),
}
PARITY_CASES = [(name, source) for source in REFERENCES for name in ("resnet18", "resnet50")]


def _randomise_batch_norms(model: nn.Module) -> None:
    """Random affine parameters and running statistics, so that a mix-up of any of them shows in the outputs."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)


def _reference_and_ours(name: str, source: str) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    reference = REFERENCES[source](name)
    _randomise_batch_norms(reference)
    ours = create_model(name)
    ours.load_state_dict(reference.state_dict())  # strict: every key present on both sides, same shapes
    return reference, ours


@pytest.mark.parametrize(("name", "source"), PARITY_CASES)
def test_parity_eval(name, source):
    reference, ours = _reference_and_ours(name, source)
    reference.eval()
    ours.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = reference(x)
        torch.testing.assert_close(ours(x), expected, atol=PARITY_TOL, rtol=0)
        # the tolerance is tight enough to see a small change deep in the network
        ours.layer1[0].conv1.weight.add_(1e-2 * torch.randn_like(ours.layer1[0].conv1.weight))
        assert (ours(x) - expected).abs().max() > PARITY_TOL


@pytest.mark.parametrize(("name", "source"), PARITY_CASES)
def test_parity_train_outputs_gradients_and_running_stats(name, source):
    reference, ours = _reference_and_ours(name, source)
    reference.train()
    ours.train()
    x = torch.randn(2, 3, 64, 64)
    projection = torch.randn(2, 1000)
    outputs, input_grads = [], []
    for model in (reference, ours):
        x_model = x.clone().requires_grad_(True)
        out = model(x_model)
        (out * projection).sum().backward()
        outputs.append(out.detach())
        input_grads.append(x_model.grad)
    torch.testing.assert_close(outputs[1], outputs[0], atol=PARITY_TOL, rtol=0)
    torch.testing.assert_close(input_grads[1], input_grads[0], atol=PARITY_TOL, rtol=0)
    ours_params = dict(ours.named_parameters())
    for param_name, param in reference.named_parameters():
        torch.testing.assert_close(ours_params[param_name].grad, param.grad, atol=PARITY_TOL, rtol=0, msg=param_name)
    ours_buffers = dict(ours.named_buffers())
    for buffer_name, buffer in reference.named_buffers():
        torch.testing.assert_close(ours_buffers[buffer_name], buffer, atol=PARITY_TOL, rtol=0, msg=buffer_name)


def test_state_dict_with_missing_or_extra_keys_is_refused():
    reference = torchvision.models.resnet18().state_dict()
    ours = create_model("resnet18")
    missing = {k: v for k, v in reference.items() if k != "layer3.1.bn2.running_var"}
    with pytest.raises(RuntimeError, match=r"Missing key\(s\).*layer3\.1\.bn2\.running_var"):
        ours.load_state_dict(missing)
    extra = {**reference, "layer5.0.conv1.weight": torch.zeros(1)}
    with pytest.raises(RuntimeError, match=r"Unexpected key\(s\).*layer5\.0\.conv1\.weight"):
        ours.load_state_dict(extra)
    with pytest.raises(RuntimeError):
        ours.load_state_dict(torchvision.models.resnet34().state_dict())
