"""Tests for the classic CNN lineage: AlexNet, VGG, GoogLeNet and DenseNet.

Parity: torchvision's networks, randomly initialised, hand their weights to ours (our parameter names equal
torchvision's, so a strict ``load_state_dict`` is the whole conversion) and both give the same logits within
``PARITY_TOL``, and in train mode the same gradients and batch norm statistics. The papers' numbers (parameter counts,
map sizes) are checked where the papers state them.
"""

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from paperzoo.vision.models import AlexNet, DenseNet, GoogLeNet, GoogLeNetOutputs, googlenet_loss
from paperzoo.vision.registry import create_model

PARITY_TOL = 1e-4


def _num_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _randomise(model: nn.Module) -> None:
    """Re-draw every parameter and batch norm statistic so that a mix-up of any of them shows in the outputs.

    The references' own inits zero many biases and shrink the logits to ~0.01, where an absolute tolerance of 1e-4
    would prove little; He init with random biases keeps the logits of order one.
    """
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                if module.bias is not None:
                    module.bias.uniform_(-0.1, 0.1)
            elif isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)


def _load_reference(reference: nn.Module, ours: nn.Module) -> None:
    """Copy the reference's weights into ours: strict, so every key must exist on both sides with the same shape."""
    torch.manual_seed(0)
    _randomise(reference)
    ours.load_state_dict(reference.state_dict())


def _assert_eval_parity(reference: nn.Module, ours: nn.Module, x: torch.Tensor, perturb: nn.Parameter) -> None:
    """Equal eval-mode logits; then a 1% change of ``perturb`` (one of our parameters) must show above the tolerance."""
    reference.eval()
    ours.eval()
    with torch.no_grad():
        expected = reference(x)
        torch.testing.assert_close(ours(x), expected, atol=PARITY_TOL, rtol=0)
        assert expected.abs().mean() > 0.1  # logits of order one, so that the tolerance is tight
        perturb.add_(1e-2 * perturb.std() * torch.randn_like(perturb))
        assert (ours(x) - expected).abs().max() > 10 * PARITY_TOL


def _assert_same_grads_and_buffers(reference: nn.Module, ours: nn.Module) -> None:
    ours_params = dict(ours.named_parameters())
    for name, param in reference.named_parameters():
        torch.testing.assert_close(ours_params[name].grad, param.grad, atol=PARITY_TOL, rtol=0, msg=name)
    ours_buffers = dict(ours.named_buffers())
    for name, buffer in reference.named_buffers():
        torch.testing.assert_close(ours_buffers[name], buffer, atol=PARITY_TOL, rtol=0, msg=name)


TORCHVISION_VARIANTS = ["alexnet", *(f"vgg{depth}{bn}" for depth in (11, 13, 16, 19) for bn in ("", "_bn"))]
TORCHVISION_VARIANTS += ["googlenet", "densenet121", "densenet169", "densenet201"]


@pytest.mark.parametrize("name", TORCHVISION_VARIANTS)
def test_every_variant_has_torchvision_names_and_shapes(name):
    # on the meta device nothing is allocated or initialised: this compares the layouts of all variants for free
    with torch.device("meta"):
        if name == "googlenet":
            reference = torchvision.models.googlenet(aux_logits=True, init_weights=False)
            ours = create_model(name, torchvision_layout=True)
        else:
            reference, ours = getattr(torchvision.models, name)(), create_model(name)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in reference.state_dict().items()}


# --- AlexNet ---------------------------------------------------------------------------------------------------------


def test_alexnet_parity_eval():
    torch.manual_seed(0)
    reference, ours = torchvision.models.alexnet(), create_model("alexnet")
    _load_reference(reference, ours)
    _assert_eval_parity(reference, ours, torch.randn(2, 3, 96, 96), ours.features[3].weight)


def test_alexnet_min_input_size_is_the_smallest_it_takes():
    model = AlexNet(num_classes=3).eval()
    size = model.min_input_size
    assert model(torch.randn(1, 3, size, size)).shape == (1, 3)
    assert model.forward_features(torch.randn(1, 3, size, size)).shape == (1, 256, 1, 1)
    with pytest.raises(RuntimeError):
        model(torch.randn(1, 3, size - 1, size - 1))


def test_alexnet_paper_init():
    # section 5 of Krizhevsky et al. 2012: N(0, 0.01) weights, biases 1 in conv2, conv4, conv5, fc6, fc7, else 0
    torch.manual_seed(0)
    model = AlexNet()
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert [int(layer.bias.mean().item()) for layer in layers] == [0, 1, 0, 1, 1, 1, 1, 0]
    assert all(abs(layer.weight.std().item() - 0.01) < 1e-3 for layer in layers)


# --- VGG -------------------------------------------------------------------------------------------------------------

# Table 2 of Simonyan and Zisserman 2015, in millions
PAPER_VGG_PARAMS = [("vgg11", 133), ("vgg13", 133), ("vgg16", 138), ("vgg19", 144)]


@pytest.mark.parametrize(("name", "paper_millions"), PAPER_VGG_PARAMS)
def test_vgg_parameters_match_table_2(name, paper_millions):
    with torch.device("meta"):  # 130M+ parameters: count them without allocating
        model = create_model(name)
    assert round(_num_params(model) / 1e6) == paper_millions
    # Table 1: 8, 10, 13 and 16 convolutions, then three fully connected layers
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) + 3 == int(name.removeprefix("vgg"))


def test_vgg16_bn_parity_eval():
    torch.manual_seed(0)
    reference, ours = torchvision.models.vgg16_bn(), create_model("vgg16_bn")
    _load_reference(reference, ours)
    _assert_eval_parity(reference, ours, torch.randn(2, 3, 32, 32), ours.features[7].weight)


# --- GoogLeNet -------------------------------------------------------------------------------------------------------


def _googlenets(dropout: float = 0.4, aux_dropout: float = 0.7) -> tuple[nn.Module, GoogLeNet]:
    torch.manual_seed(0)
    reference = torchvision.models.googlenet(
        aux_logits=True, init_weights=True, dropout=dropout, dropout_aux=aux_dropout
    )
    ours = create_model("googlenet", torchvision_layout=True, dropout=dropout, aux_dropout=aux_dropout)
    _load_reference(reference, ours)
    return reference, ours


def test_googlenet_parity_eval():
    reference, ours = _googlenets()
    _assert_eval_parity(reference, ours, torch.randn(2, 3, 96, 96), ours.inception4c.branch3[1].conv.weight)


def test_googlenet_parity_train_with_aux_logits():
    # no dropout on either side, so that train mode is deterministic; batch norms use batch statistics
    reference, ours = _googlenets(dropout=0.0, aux_dropout=0.0)
    reference.train()
    ours.train()
    x, target = torch.randn(2, 3, 96, 96), torch.tensor([3, 997])  # 96x96: the aux heads pool 6x6 maps to 4x4
    x_ref, x_ours = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    logits, aux2, aux1 = reference(x_ref)  # torchvision's order
    out = ours(x_ours)
    for ours_logits, ref_logits in zip(out, (logits, aux1, aux2), strict=True):
        torch.testing.assert_close(ours_logits, ref_logits, atol=PARITY_TOL, rtol=0)
    (F.cross_entropy(logits, target) + 0.3 * (F.cross_entropy(aux1, target) + F.cross_entropy(aux2, target))).backward()
    googlenet_loss(out, target).backward()
    torch.testing.assert_close(x_ours.grad, x_ref.grad, atol=PARITY_TOL, rtol=0)
    _assert_same_grads_and_buffers(reference, ours)


def test_googlenet_training_output_has_aux_logits_and_weighted_loss():
    torch.manual_seed(0)
    model = GoogLeNet(num_classes=10, dropout=0.0, aux_dropout=0.0)
    x, target = torch.randn(2, 3, 32, 32), torch.tensor([1, 7])
    model.train()
    out = model(x)
    assert isinstance(out, GoogLeNetOutputs)
    assert [t.shape for t in out] == [(2, 10)] * 3
    assert not torch.allclose(out.aux1, out.aux2)
    main, aux1, aux2 = (F.cross_entropy(t, target) for t in (out.logits, out.aux1, out.aux2))
    torch.testing.assert_close(googlenet_loss(out, target), main + 0.3 * (aux1 + aux2))
    torch.testing.assert_close(googlenet_loss(out, target, aux_weight=0.0), main)
    # the aux heads do not change the main path: the main logits equal the trunk's, with or without them
    torch.testing.assert_close(out.logits, model.forward_head(model.forward_features(x)))
    model.eval()
    logits = model(x)
    assert isinstance(logits, torch.Tensor) and logits.shape == (2, 10)
    torch.testing.assert_close(googlenet_loss(logits, target), F.cross_entropy(logits, target))


def test_googlenet_without_aux_logits():
    model = GoogLeNet(num_classes=10, aux_logits=False).train()
    assert isinstance(model(torch.randn(2, 3, 32, 32)), torch.Tensor)
    assert not any(name.startswith("aux") for name, _ in model.named_parameters())


def test_googlenet_map_sizes_match_table_1():
    # Table 1 of Szegedy et al. 2015: output size of each layer for a 224x224 input
    expected = {
        "conv1": (64, 112),
        "maxpool1": (64, 56),
        "conv3": (192, 56),
        "maxpool2": (192, 28),
        "inception3a": (256, 28),
        "inception3b": (480, 28),
        "maxpool3": (480, 14),
        "inception4a": (512, 14),
        "inception4b": (512, 14),
        "inception4c": (512, 14),
        "inception4d": (528, 14),
        "inception4e": (832, 14),
        "maxpool4": (832, 7),
        "inception5a": (832, 7),
        "inception5b": (1024, 7),
    }
    model = GoogLeNet(aux_logits=False).eval()
    sizes = {}

    def record(name: str, out: torch.Tensor) -> None:
        sizes[name] = (out.shape[1], out.shape[2])

    for name in expected:
        getattr(model, name).register_forward_hook(lambda module, args, out, name=name: record(name, out))
    with torch.no_grad():
        model(torch.randn(1, 3, 224, 224))
    assert sizes == expected
    # the paper's layout: 5x5 convolutions in the third branch and a 3x3/2 pool after (4e)
    assert model.inception4a.branch3[1].conv.kernel_size == (5, 5)
    assert model.maxpool4.kernel_size == 3


def test_googlenet_paper_layout_refuses_torchvision_weights():
    with torch.device("meta"):
        reference = torchvision.models.googlenet(aux_logits=True, init_weights=False)
        ours = create_model("googlenet")
    with pytest.raises(RuntimeError, match=r"size mismatch for inception3a\.branch3\.1\.conv\.weight"):
        ours.load_state_dict(reference.state_dict())


# --- DenseNet --------------------------------------------------------------------------------------------------------


def _densenet121s() -> tuple[nn.Module, DenseNet]:
    torch.manual_seed(0)
    reference, ours = torchvision.models.densenet121(), create_model("densenet121")
    _load_reference(reference, ours)
    return reference, ours


def test_densenet121_parity_eval():
    reference, ours = _densenet121s()
    perturb = ours.features.denseblock3.denselayer5.conv2.weight
    _assert_eval_parity(reference, ours, torch.randn(2, 3, 64, 64), perturb)


def test_densenet121_parity_train_gradients_and_running_stats():
    reference, ours = _densenet121s()
    reference.train()
    ours.train()
    x, projection = torch.randn(2, 3, 64, 64), torch.randn(2, 1000)
    outputs, input_grads = [], []
    for model in (reference, ours):
        x_model = x.clone().requires_grad_(True)
        out = model(x_model)
        (out * projection).sum().backward()
        outputs.append(out.detach())
        input_grads.append(x_model.grad)
    torch.testing.assert_close(outputs[1], outputs[0], atol=PARITY_TOL, rtol=0)
    torch.testing.assert_close(input_grads[1], input_grads[0], atol=PARITY_TOL, rtol=0)
    _assert_same_grads_and_buffers(reference, ours)


def test_densenet_bc_100_matches_table_2():
    model = create_model("densenet_bc_100")
    # Table 2 of Huang et al. 2017: DenseNet-BC (L = 100, k = 12) has 0.8M parameters
    assert f"{_num_params(model) / 1e6:.1f}" == "0.8"
    # L = 100 weighted layers: the stem, 3 blocks of 16 two-convolution bottleneck layers, 2 transitions, the classifier
    weighted = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(weighted) == 100
    assert model.num_classes == 10
    # 2k = 24 stem maps, each block adds 16 * 12 = 192, each transition halves: 24 -> 216 -> 108 -> 300 -> 150 -> 342
    assert model.num_features == 342
    assert model.forward_features(torch.randn(2, 3, 32, 32)).shape == (2, 342, 8, 8)


def test_densenet_dense_connectivity():
    # each layer's 1x1 convolution reads the block input and every earlier layer's k maps
    model = create_model("densenet_bc_100")
    block = model.features.denseblock2
    assert [layer.conv1.in_channels for layer in block.values()] == [108 + 12 * i for i in range(16)]
    x = torch.randn(1, 108, 16, 16)
    out = block(x)
    assert out.shape == (1, 108 + 16 * 12, 16, 16)
    torch.testing.assert_close(out[:, :108], x)  # the block's input is passed on unchanged


def test_densenet_rejects_bad_arguments():
    with pytest.raises(ValueError, match="stem"):
        DenseNet(stem="tiny")
    with pytest.raises(ValueError, match="compression"):
        DenseNet(compression=0.0)
