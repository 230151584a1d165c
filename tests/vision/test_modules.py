"""ImageClassifier: the loss it trains on, the metrics it logs, and its check against the data."""

from types import SimpleNamespace

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
