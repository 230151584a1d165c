"""ImageClassifier: the loss it trains on, the metrics it logs, and its check against the data."""

import copy
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from paperzoo.core.errors import ConfigError
from paperzoo.vision import ImageClassifier, create_model
from paperzoo.vision.models import googlenet_loss


def _classifier(label_smoothing=0.0):
    torch.manual_seed(0)
    return ImageClassifier(create_model("resnet20", num_classes=10, in_chans=1), label_smoothing=label_smoothing)


def test_label_smoothing_applies_to_training_only(monkeypatch):
    model = _classifier(label_smoothing=0.1).eval()
    monkeypatch.setattr(model, "log", lambda *a, **k: None)
    x, y = torch.randn(4, 1, 28, 28), torch.tensor([0, 3, 5, 9])
    logits = model(x)
    train_loss = model.training_step((x, y), 0)
    assert torch.allclose(train_loss, F.cross_entropy(logits, y, label_smoothing=0.1))
    assert not torch.allclose(train_loss, F.cross_entropy(logits, y))
    logged = {}
    monkeypatch.setattr(model, "log", lambda name, value, **k: logged.setdefault(name, value))
    model.validation_step((x, y), 0)
    assert torch.allclose(logged["val/loss"], F.cross_entropy(logits, y))
    assert {"val/acc", "val/acc5"} <= logged.keys()


def test_class_count_must_match_the_data():
    model = _classifier()
    model.trainer = SimpleNamespace(datamodule=SimpleNamespace(num_classes=100))
    with pytest.raises(ConfigError, match="10 outputs but the data has 100 classes"):
        model.setup("fit")


def test_predict_returns_probabilities():
    model = _classifier().eval()
    probs = model.predict_step((torch.randn(3, 1, 28, 28), torch.zeros(3)), 0)
    assert probs.shape == (3, 10) and torch.allclose(probs.sum(-1), torch.ones(3))


def test_aux_logits_add_to_the_training_loss_with_their_weight(monkeypatch):
    torch.manual_seed(0)
    network = create_model("googlenet", num_classes=10, in_chans=1, dropout=0.0, aux_dropout=0.0)
    model = ImageClassifier(network, aux_weight=0.3).train()
    monkeypatch.setattr(model, "log", lambda *a, **k: None)
    x, y = torch.randn(4, 1, 32, 32), torch.tensor([0, 3, 5, 9])
    outputs = model(x)  # training mode: main logits and the two auxiliary heads' logits
    assert len(outputs) == 3
    train_loss = model.training_step((x, y), 0)
    torch.testing.assert_close(train_loss, googlenet_loss(outputs, y, aux_weight=0.3))
    assert train_loss > F.cross_entropy(outputs[0], y)
    # validation runs in eval mode: main logits only, plain cross-entropy
    model.eval()
    logged = {}
    monkeypatch.setattr(model, "log", lambda name, value, **k: logged.setdefault(name, value))
    model.validation_step((x, y), 0)
    torch.testing.assert_close(logged["val/loss"], F.cross_entropy(model(x), y))


# ---------------------------------------------------------------- mixup and CutMix


def _mixing_classifier(**kwargs) -> ImageClassifier:
    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4))
    network.num_classes = 4
    return ImageClassifier(network, **kwargs)


def _batch(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 3, 8, 8, generator=g), torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 1][:n])


def test_mixup_mixes_each_image_with_the_reversed_batch():
    model = _mixing_classifier(mixup_alpha=0.4)
    x, y = _batch()
    np.random.seed(0)
    mixed, soft = model.mix(x, y)
    assert soft.shape == (8, 4) and torch.allclose(soft.sum(1), torch.ones(8))
    lam = float(soft[0, y[0]])  # every image's partner (the reversed batch) is of another class
    assert 0 < lam < 1
    expected_soft = lam * F.one_hot(y, 4) + (1 - lam) * F.one_hot(y.flip(0), 4)
    torch.testing.assert_close(soft, expected_soft.float())
    torch.testing.assert_close(mixed, lam * x + (1 - lam) * x.flip(0))
    assert torch.equal(x, _batch()[0]), "the caller's batch is not modified"


def test_cutmix_pastes_a_box_of_the_partner_image_in_proportion_to_the_target():
    model = _mixing_classifier(cutmix_alpha=1.0)
    x, y = _batch()
    np.random.seed(3)
    mixed, soft = model.mix(x, y)
    from_partner = (mixed == x.flip(0)) & (mixed != x)  # (B, C, H, W)
    kept = mixed == x
    assert (from_partner | kept).all(), "every pixel comes from the image or its partner"
    box = from_partner[1].all(0)  # (H, W): the same box in every channel
    rows, cols = box.any(1).nonzero().flatten(), box.any(0).nonzero().flatten()
    assert box.sum() == len(rows) * len(cols) > 0, "the pasted region is one rectangle"
    assert soft[1, y[1]] == pytest.approx(1 - box.float().mean().item())  # lambda is the kept area


def test_mixing_trains_on_soft_targets_and_leaves_evaluation_alone(monkeypatch):
    model = _mixing_classifier(mixup_alpha=0.4, cutmix_alpha=1.0, label_smoothing=0.1)
    logged = {}
    monkeypatch.setattr(model, "log", lambda name, value, **k: logged.setdefault(name, value))
    x, y = _batch(9)  # odd: the last image is not mixed
    np.random.seed(5)
    mixed, soft = model.mix(x, y)
    expected = -(soft * F.log_softmax(model(mixed), dim=-1)).sum(1).mean()
    np.random.seed(5)
    loss = model.training_step((x, y), 0)
    torch.testing.assert_close(loss, expected)
    assert torch.equal(mixed[8], x[8])
    torch.testing.assert_close(soft[8], F.one_hot(y[8], 4).float() * 0.9 + 0.1 / 4)
    assert "train/loss" in logged and "train/acc" not in logged  # a mixed image has no single class
    model.validation_step((x, y), 0)
    torch.testing.assert_close(logged["val/loss"], F.cross_entropy(model(x), y))
    assert "val/acc" in logged


def test_mixing_settings_are_checked():
    with pytest.raises(ConfigError, match=r"mix_prob=1\.5"):
        _mixing_classifier(mixup_alpha=0.2, mix_prob=1.5)


# ---------------------------------------------------------------- channels_last and compile


def test_channels_last_changes_the_layout_not_the_numbers():
    torch.manual_seed(0)
    reference = create_model("resnet20", num_classes=10, in_chans=3)
    model = ImageClassifier(copy.deepcopy(reference), channels_last=True).eval()
    assert model.network.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    seen = []
    model.network.conv1.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(model(x), reference.eval()(x), rtol=1e-4, atol=1e-5)
    assert seen[0].is_contiguous(memory_format=torch.channels_last)
    assert [k for k in model.state_dict() if k.startswith("network.")] == [
        f"network.{k}" for k in reference.state_dict()
    ]


def _on_cpu(model: ImageClassifier) -> None:
    model.trainer = SimpleNamespace(datamodule=None, strategy=SimpleNamespace(root_device=torch.device("cpu")))


def test_compile_compiles_the_network_in_place():
    model = _classifier()
    keys = set(model.state_dict())
    model.compile_network = True
    _on_cpu(model)
    model.setup("fit")
    assert model.network._compiled_call_impl is not None
    assert set(model.state_dict()) == keys, "checkpoints keep their keys"
    assert ImageClassifier(model.network, compile=True).hparams.compile is True


def test_compile_says_why_it_cannot(monkeypatch):
    model = ImageClassifier(create_model("resnet20", num_classes=10, in_chans=1), compile=True)
    _on_cpu(model)
    monkeypatch.setattr(torch._dynamo, "is_dynamo_supported", lambda: False)
    with pytest.raises(ConfigError, match="this Python and PyTorch build do not support"):
        model.setup("fit")
    monkeypatch.setattr(torch._dynamo, "is_dynamo_supported", lambda: True)
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ConfigError, match="on the CPU needs a C\\+\\+ compiler"):
        model.setup("fit")
    assert model.network._compiled_call_impl is None


@pytest.mark.slow
def test_compiled_network_gives_the_same_outputs():
    model = _mixing_classifier(compile=True).eval()
    x = _batch()[0]
    expected = model(x)
    _on_cpu(model)
    model.setup("fit")
    torch.testing.assert_close(model(x), expected, rtol=1e-4, atol=1e-5)
