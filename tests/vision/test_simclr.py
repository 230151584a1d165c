"""SimCLR (Chen et al. 2020): the NT-Xent loss against equation (1), the augmentation, pre-training, the linear probe,
the k-NN evaluation and loading an encoder from a checkpoint."""

import copy
import math

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from paperzoo.core import testing
from paperzoo.core.errors import ConfigError
from paperzoo.vision import FashionMNISTDataModule, ImageClassifier, LinearProbe, SimCLR
from paperzoo.vision.data.simclr import SimCLRAugmentation
from paperzoo.vision.knn import knn_accuracy, knn_predict
from paperzoo.vision.layers.pooling import pooled_features
from paperzoo.vision.losses import NTXentLoss, nt_xent_loss
from paperzoo.vision.models import CifarResNet


def _equation_1(z: torch.Tensor, temperature: float) -> torch.Tensor:
    """The paper's loss written out: views interleaved as (2k, 2k + 1), two nested loops, no matrices."""

    def sim(u, v):
        return (u @ v) / (u.norm() * v.norm())

    def ell(i, j):
        denominator = sum(torch.exp(sim(z[i], z[k]) / temperature) for k in range(len(z)) if k != i)
        return -torch.log(torch.exp(sim(z[i], z[j]) / temperature) / denominator)

    pairs = len(z) // 2
    return sum(ell(2 * k, 2 * k + 1) + ell(2 * k + 1, 2 * k) for k in range(pairs)) / (2 * pairs)


@pytest.mark.parametrize("temperature", [0.5, 0.1])
def test_nt_xent_matches_the_double_loop_of_equation_1(temperature):
    torch.manual_seed(0)
    z1 = torch.randn(5, 8, dtype=torch.float64, requires_grad=True)
    z2 = torch.randn(5, 8, dtype=torch.float64, requires_grad=True)
    loss = nt_xent_loss(z1, z2, temperature)
    interleaved = torch.stack([z1, z2], dim=1).reshape(10, 8)  # rows z1[0], z2[0], z1[1], z2[1], ...
    reference = _equation_1(interleaved, temperature)
    torch.testing.assert_close(loss, reference)
    grads = torch.autograd.grad(loss, (z1, z2))
    reference_grads = torch.autograd.grad(reference, (z1, z2))
    for grad, expected in zip(grads, reference_grads, strict=True):
        torch.testing.assert_close(grad, expected)
    assert NTXentLoss(temperature)(z1, z2).item() == pytest.approx(loss.item())


def test_nt_xent_is_invariant_to_scaling_the_embeddings():
    torch.manual_seed(0)
    z1, z2 = torch.randn(6, 16), torch.randn(6, 16)
    scales = torch.rand(6, 1) * 10 + 0.1
    torch.testing.assert_close(nt_xent_loss(z1 * scales, z2 * scales.flip(0)), nt_xent_loss(z1, z2))


def test_nt_xent_is_lower_when_the_views_agree():
    torch.manual_seed(0)
    z1, other = torch.randn(16, 32), torch.randn(16, 32)
    agree = nt_xent_loss(z1, z1 + 0.1 * torch.randn(16, 32))
    random = nt_xent_loss(z1, other)
    swapped = nt_xent_loss(z1, z1.roll(1, dims=0))  # every positive is some other image's view
    assert agree < random < swapped
    # with no information the loss is about log(2N - 1): all 2N - 1 candidates equally likely
    assert random.item() == pytest.approx(math.log(31), abs=0.2)


def _images(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 1, 28, 28, generator=g) * 0.3
    images[:, :, 6:22, 8:20] += 0.6  # a bright garment-like block, so crops and contrast change something
    return images


def test_augmentation_gives_two_different_views_reproducibly():
    augment = SimCLRAugmentation()
    x = _images()
    before = torch.get_rng_state()
    views = augment(torch.cat([x, x]), seed=1)
    assert torch.equal(torch.get_rng_state(), before)  # the global generator is untouched
    assert views.shape == (16, 1, 28, 28) and views.dtype == x.dtype
    assert views.min() >= 0 and views.max() <= 1
    v1, v2 = views.chunk(2)
    assert all(not torch.allclose(a, b) for a, b in zip(v1, v2, strict=True))  # two views of one image differ
    torch.testing.assert_close(augment(torch.cat([x, x]), seed=1), views)  # same seed, same views
    assert not torch.allclose(augment(torch.cat([x, x]), seed=2), views)
    # one draw per image, not one per batch: copies of one image get different views
    copies = augment(x[:1].expand(8, -1, -1, -1), seed=3)
    assert len({tuple(view.flatten().tolist()) for view in copies}) == 8


def test_augmentation_with_no_randomness_is_the_identity():
    augment = SimCLRAugmentation(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_p=0.0, jitter_p=0.0)
    x = _images()
    torch.testing.assert_close(augment(x, seed=0), x)


class _Identity(nn.Module):
    def forward(self, images, seed=None):
        return images


def test_views_undo_and_redo_the_data_normalisation():
    model = SimCLR(CifarResNet(8, in_chans=1), augmentation=_Identity())
    model.input_mean, model.input_std = (0.2860,), (0.3530,)
    x = (_images() - 0.2860) / 0.3530
    v1, v2 = model.views(x)
    torch.testing.assert_close(v1, x)
    torch.testing.assert_close(v2, x)


def test_pooled_features_reads_every_layout():
    class Fake(nn.Module):
        num_features = 4

        def __init__(self, features):
            super().__init__()
            self.features = features

        def forward_features(self, x):
            return self.features

    nchw, tokens, flat = torch.randn(2, 4, 3, 5), torch.randn(2, 7, 4), torch.randn(2, 4)
    torch.testing.assert_close(pooled_features(Fake(nchw), None), nchw.mean(dim=(2, 3)))
    torch.testing.assert_close(pooled_features(Fake(nchw.permute(0, 2, 3, 1)), None), nchw.mean(dim=(2, 3)))
    torch.testing.assert_close(pooled_features(Fake(tokens), None), tokens[:, 0])
    torch.testing.assert_close(pooled_features(Fake(flat), None), flat)


# --------------------------------------------------------------------------------------------- k-NN


def test_knn_is_perfect_on_separable_features_and_chance_on_shuffled_labels():
    torch.manual_seed(0)
    centres = torch.randn(10, 32) * 5
    bank_labels, query_labels = torch.arange(1000) % 10, torch.arange(500) % 10
    bank = centres[bank_labels] + torch.randn(1000, 32)
    queries = centres[query_labels] + torch.randn(500, 32)
    assert knn_accuracy(queries, query_labels, bank, bank_labels, 10, k=200) == 1.0
    assert knn_accuracy(queries, query_labels, bank, bank_labels, 10, k=20, temperature=None) == 1.0
    shuffled = bank_labels[torch.randperm(1000)]
    assert knn_accuracy(queries, query_labels, bank, shuffled, 10, k=200) == pytest.approx(0.1, abs=0.06)


def test_knn_votes_are_the_weighted_sum_over_the_nearest_neighbours():
    torch.manual_seed(0)
    queries, bank, labels = torch.randn(7, 5), torch.randn(30, 5), torch.randint(0, 4, (30,))
    scores = knn_predict(queries, bank, labels, num_classes=4, k=6, temperature=0.5, chunk_size=3)
    for q, row in zip(queries, scores, strict=True):
        sims = F.cosine_similarity(q[None], bank)
        nearest = sims.argsort(descending=True)[:6]
        expected = torch.zeros(4)
        for i in nearest:
            expected[labels[i]] += torch.exp(sims[i] / 0.5)
        torch.testing.assert_close(row, expected)


# --------------------------------------------------------------------------------------------- training


def _trainer(**kwargs) -> L.Trainer:
    return L.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        **kwargs,
    )


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return testing.write_mnist(tmp_path_factory.mktemp("fashion"), n_train=64, n_test=16)


def _datamodule(data_dir, batch_size=16):
    return FashionMNISTDataModule(data_dir=str(data_dir), batch_size=batch_size, val_size=16)


@pytest.mark.filterwarnings("ignore:You defined a `validation_step` but have no `val_dataloader`")
def test_simclr_training_lowers_the_loss():
    """40 steps on 16 smooth random images, milder crops than the default so that it learns within the test's time."""
    torch.manual_seed(0)
    images = F.interpolate(torch.rand(16, 1, 4, 4), size=28, mode="bilinear", align_corners=False)  # (16, 1, 28, 28)
    augmentation = SimCLRAugmentation(crop_scale=(0.5, 1.0))
    model = SimCLR(
        CifarResNet(8, in_chans=1), augmentation=augmentation, optimizer=lambda p: torch.optim.Adam(p, lr=1e-3)
    )

    def fixed_loss():  # the same views before and after, with batch statistics as in training
        model.train()
        with torch.no_grad():
            return model.contrastive_loss(images, seed=12345).item()

    before = fixed_loss()
    assert before == pytest.approx(math.log(31), abs=0.2)  # untrained: about chance among 2N - 1 = 31 candidates
    loader = DataLoader(TensorDataset(images, torch.zeros(16, dtype=torch.long)), batch_size=16)
    _trainer(max_steps=40).fit(model, train_dataloaders=loader)
    after = fixed_loss()
    assert after < 0.85 * before, (before, after)


@pytest.fixture(scope="module")
def pretrained(data_dir, tmp_path_factory):
    """A SimCLR ResNet-8 trained for one epoch (3 steps) on tiny Fashion-MNIST files, validated, and checkpointed."""
    torch.manual_seed(0)
    model = SimCLR(CifarResNet(8, in_chans=1), knn_k=5)
    trainer = _trainer(max_epochs=1)
    trainer.fit(model, datamodule=_datamodule(data_dir))
    path = tmp_path_factory.mktemp("ckpt") / "simclr.ckpt"
    trainer.save_checkpoint(path)
    return model, path, trainer.callback_metrics


def test_simclr_logs_the_loss_and_the_knn_monitor(pretrained):
    _, _, logged = pretrained
    assert {"train/loss", "val/loss", "val/knn_acc"} <= logged.keys()
    assert 0 <= logged["val/knn_acc"] <= 1 and torch.isfinite(logged["val/loss"])


def test_loading_an_encoder_from_a_simclr_checkpoint_gives_the_same_features(pretrained):
    simclr, path, _ = pretrained
    torch.manual_seed(1)  # a different initialisation, which the checkpoint must overwrite
    pattern = str(path.parent / "*.ckpt")
    probe = LinearProbe(CifarResNet(8, in_chans=1), checkpoint=pattern, checkpoint_from="simclr-fashionmnist")
    x = _images(4)
    assert not torch.allclose(probe.features(x), simclr.eval()(x))
    probe.load_encoder()
    assert probe.encoder_path == path
    torch.testing.assert_close(probe.features(x), simclr.eval()(x))


def test_loading_an_encoder_from_a_supervised_checkpoint(tmp_path):
    torch.manual_seed(0)
    classifier = ImageClassifier(CifarResNet(8, in_chans=1)).eval()
    path = tmp_path / "supervised.ckpt"
    torch.save({"state_dict": classifier.state_dict(), "pytorch-lightning_version": L.__version__}, path)
    probe = LinearProbe(CifarResNet(8, in_chans=1), checkpoint=str(path))
    probe.load_encoder()
    x = _images(4)
    torch.testing.assert_close(probe.features(x), classifier.network.forward_features(x).mean(dim=(2, 3)))


def test_a_missing_or_mismatched_checkpoint_is_one_clear_error(pretrained, tmp_path):
    probe = LinearProbe(CifarResNet(8, in_chans=1), checkpoint=str(tmp_path / "none_*.ckpt"), checkpoint_from="x-y")
    with pytest.raises(ConfigError, match=r"no encoder checkpoint at .*: run `paperzoo run x-y` first"):
        probe.load_encoder()
    probe = LinearProbe(CifarResNet(14, in_chans=1), checkpoint=str(pretrained[1]))
    with pytest.raises(ConfigError, match="do not fit the configured network"):
        probe.load_encoder()


@pytest.mark.filterwarnings("ignore:Found .* module\\(s\\) in eval mode")  # the frozen encoder, on purpose
def test_linear_probe_trains_the_classifier_only(data_dir):
    torch.manual_seed(0)
    probe = LinearProbe(CifarResNet(8, in_chans=1), optimizer=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9))
    encoder_before = copy.deepcopy(probe.network.state_dict())  # weights and batch norm statistics
    classifier_before = copy.deepcopy(probe.classifier.state_dict())
    probe.train()  # what a training loop may call: the classifier trains, the encoder stays in eval mode
    assert probe.training and probe.classifier.training and not probe.network.training
    trainer = _trainer(max_steps=4, limit_val_batches=1)
    data = _datamodule(data_dir)
    trainer.fit(probe, datamodule=data)
    assert not probe.network.training and probe.training
    assert all(p.grad is None and not p.requires_grad for p in probe.network.parameters())
    for name, value in probe.network.state_dict().items():
        assert torch.equal(value, encoder_before[name]), name
    assert not torch.equal(probe.classifier[1].weight, classifier_before["1.weight"])
    tested = trainer.test(probe, datamodule=data, verbose=False)[0]
    assert {"test/acc", "test/knn_acc", "test/loss"} <= tested.keys()
