"""FineTuneClassifier: what each mode trains, the discriminative learning rates, and loading pre-trained weights."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import lightning as L
import pytest
import timm
import torch
from torch import nn

from paperzoo.core.cli import main
from paperzoo.core.errors import CheckpointError, ConfigError
from paperzoo.core.schedules import CosineWithWarmup
from paperzoo.core.testing import write_mnist, write_mnist5k_csv
from paperzoo.vision import FineTuneClassifier, ImageClassifier, MNISTDataModule
from paperzoo.vision.models import CifarResNet

pytestmark = pytest.mark.filterwarnings("ignore:Found .* module\\(s\\) in eval mode at the start of training")

# stem, layer1, layer2, layer3 and the head: five groups
MATCHER = {"stem": r"^conv1|^bn1", "blocks": r"^layer(\d+)"}


def resnet8(num_classes: int = 10, in_chans: int = 1) -> CifarResNet:
    return CifarResNet(depth=8, num_classes=num_classes, in_chans=in_chans)


def state(module: nn.Module, prefix: str = "") -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items() if k.startswith(prefix)}


def changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> set[str]:
    return {k for k in before if not torch.equal(before[k], after[k])}


@pytest.fixture(scope="module")
def mnist(tmp_path_factory) -> str:
    return str(write_mnist(tmp_path_factory.mktemp("mnist"), n_train=64, n_test=16))


def _fit(model: L.LightningModule, data_dir: str, tmp_path, **kwargs) -> L.Trainer:
    trainer = L.Trainer(
        default_root_dir=tmp_path,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        **kwargs,
    )
    trainer.fit(model, datamodule=MNISTDataModule(data_dir, val_size=16, batch_size=8))
    return trainer


def _sgd(lr: float = 0.1):
    return partial(torch.optim.SGD, lr=lr, momentum=0.9, weight_decay=1e-3)


# ---------------------------------------------------------------- modes


def test_frozen_mode_trains_the_head_only_and_keeps_batch_norm_statistics(mnist, tmp_path):
    torch.manual_seed(0)
    model = FineTuneClassifier(10, network=resnet8(), mode="frozen", group_matcher=MATCHER, optimizer=_sgd())
    backbone = {k: v for k, v in state(model.network).items() if not k.startswith("fc.")}
    head = state(model.network, "fc.")
    # validation in the middle: Lightning's switching between eval and train must leave the backbone in eval
    _fit(model, mnist, tmp_path, max_steps=4, val_check_interval=2, limit_val_batches=1)
    after = state(model.network)
    assert not changed(backbone, after), "weights or batch-norm statistics of the frozen backbone changed"
    assert changed(head, after) == {"fc.weight", "fc.bias"}
    model.train()
    assert not model.network.layer1.training and not model.network.bn1.training and model.network.fc.training
    trainable = {n for n, p in model.network.named_parameters() if p.requires_grad}
    assert trainable == {"fc.weight", "fc.bias"}


def test_full_mode_trains_everything(mnist, tmp_path):
    torch.manual_seed(0)
    model = FineTuneClassifier(10, network=resnet8(), mode="full", group_matcher=MATCHER, optimizer=_sgd())
    before = state(model.network)
    _fit(model, mnist, tmp_path, max_steps=2, limit_val_batches=0)
    assert changed(before, state(model.network)) == set(before)  # every weight and batch-norm statistic


class _GroupRecorder(L.Callback):
    """At the first batch of each epoch: how many groups train, the stem's and layer3's state, their modes."""

    def __init__(self) -> None:
        self.trainable: list[int] = []
        self.training: list[tuple[bool, bool]] = []
        self.stem: list[dict[str, torch.Tensor]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx:
            return
        groups = pl_module.layer_groups
        params = dict(pl_module.network.named_parameters())
        self.trainable.append(sum(all(params[n].requires_grad for n in names) for names in groups))
        assert all(any(params[n].requires_grad for n in g) == all(params[n].requires_grad for n in g) for g in groups)
        self.training.append((pl_module.network.layer2.training, pl_module.network.layer3.training))
        self.stem.append(state(pl_module.network, "conv1."))


def test_gradual_unfreezing_adds_a_group_from_the_top_every_n_epochs(mnist, tmp_path):
    torch.manual_seed(0)
    model = FineTuneClassifier(
        10, network=resnet8(), mode="gradual", unfreeze_every=2, group_matcher=MATCHER, optimizer=_sgd()
    )
    assert len(model.layer_groups) == 5
    recorder = _GroupRecorder()
    before = state(model.network)
    _fit(model, mnist, tmp_path, max_epochs=6, limit_train_batches=2, limit_val_batches=1, callbacks=[recorder])
    assert recorder.trainable == [1, 1, 2, 2, 3, 3]  # the head, then layer3 at epoch 2, layer2 at epoch 4
    assert recorder.training == [(False, False)] * 2 + [(False, True)] * 2 + [(True, True)] * 2
    after = state(model.network)
    assert not changed({k: v for k, v in before.items() if k.startswith(("conv1.", "bn1.", "layer1."))}, after)
    assert {"layer2.0.conv1.weight", "layer3.0.conv1.weight", "fc.weight"} <= changed(before, after)
    assert model.trainable_groups(epoch=100) == 5


def test_gradual_mode_is_refused_under_ddp():
    model = FineTuneClassifier(10, network=resnet8(), mode="gradual")
    model.trainer = type("T", (), {"world_size": 2, "datamodule": None, "strategy": None})()
    with pytest.raises(ConfigError, match="DistributedDataParallel"):
        model.setup("fit")


# ---------------------------------------------------------------- discriminative learning rates


def test_discriminative_learning_rates_decay_by_group_below_the_head():
    model = FineTuneClassifier(10, network=resnet8(), lr_decay=0.5, group_matcher=MATCHER, optimizer=_sgd(0.1))
    optimizer = model.configure_optimizers()
    names = {id(p): n for n, p in model.network.named_parameters()}
    groups = [[names[id(p)] for p in g["params"]] for g in optimizer.param_groups]
    assert groups == model.layer_groups
    assert [g["name"] for g in optimizer.param_groups] == ["group0", "group1", "group2", "group3", "group4"]
    lrs = [g["lr"] for g in optimizer.param_groups]
    assert lrs == pytest.approx([0.1 / 16, 0.1 / 8, 0.1 / 4, 0.1 / 2, 0.1])
    assert groups[-1] == ["fc.weight", "fc.bias"] and groups[0] == ["conv1.weight", "bn1.weight", "bn1.bias"]
    assert sum(map(len, groups)) == len(list(model.network.parameters()))


def test_discriminative_rates_survive_a_per_group_schedule_and_refuse_one_that_flattens_them():
    model = FineTuneClassifier(
        10,
        network=resnet8(),
        lr_decay=0.5,
        group_matcher=MATCHER,
        optimizer=_sgd(0.1),
        lr_scheduler=partial(CosineWithWarmup, warmup_steps=2, total_steps=10),
    )
    config = model.configure_optimizers()
    scheduler = config["lr_scheduler"]["scheduler"]
    for _ in range(5):
        config["optimizer"].step()
        scheduler.step()
    lrs = [g["lr"] for g in config["optimizer"].param_groups]
    assert lrs[-1] > 0 and [lr / lrs[-1] for lr in lrs] == pytest.approx([1 / 16, 1 / 8, 1 / 4, 1 / 2, 1])
    model.lr_scheduler_factory = partial(torch.optim.lr_scheduler.OneCycleLR, max_lr=0.1, total_steps=10)
    with pytest.raises(ConfigError, match="OneCycleLR gives every parameter group the same learning rate"):
        model.configure_optimizers()


def test_frozen_mode_optimises_the_head_only():
    model = FineTuneClassifier(10, network=resnet8(), mode="frozen", lr_decay=0.5, optimizer=_sgd(0.1))
    optimizer = model.configure_optimizers()
    assert len(optimizer.param_groups) == 1 and optimizer.param_groups[0]["lr"] == pytest.approx(0.1)
    assert optimizer.param_groups[0]["params"] == [model.network.fc.weight, model.network.fc.bias]


# ---------------------------------------------------------------- pre-trained weights


@pytest.fixture(scope="module")
def our_checkpoint(mnist, tmp_path_factory):
    """A real checkpoint of an ImageClassifier trained for two steps, and its network's weights."""
    torch.manual_seed(1)
    source = ImageClassifier(resnet8(), optimizer=_sgd())
    trainer = _fit(source, mnist, tmp_path_factory.mktemp("pretrain"), max_steps=2, limit_val_batches=0)
    path = tmp_path_factory.mktemp("ckpt") / "source.ckpt"
    trainer.save_checkpoint(path)
    return path, state(source.network)


@pytest.mark.parametrize("num_classes", [4, 10])
def test_our_checkpoint_restores_the_backbone_exactly_and_gives_a_fresh_head(our_checkpoint, num_classes):
    path, source = our_checkpoint
    torch.manual_seed(2)
    model = FineTuneClassifier(num_classes, network=resnet8(), checkpoint=str(path))
    model.load_pretrained()
    assert model.pretrained_path == path
    loaded = state(model.network)
    assert loaded.keys() == source.keys()
    for key in source:
        if not key.startswith("fc."):
            assert torch.equal(loaded[key], source[key]), key
    assert loaded["fc.weight"].shape == (num_classes, 64) and loaded["fc.bias"].shape == (num_classes,)
    assert model.num_classes == num_classes == model.network.num_classes
    if num_classes == 10:  # same size: still a new head, not the source task's
        assert not torch.allclose(loaded["fc.weight"], source["fc.weight"])
    assert model.eval()(torch.randn(2, 1, 28, 28)).shape == (2, num_classes)


def test_checkpoint_errors_are_one_sentence(our_checkpoint, tmp_path):
    path, _ = our_checkpoint
    with pytest.raises(
        CheckpointError, match=r"pre-trained checkpoint .*missing\.ckpt does not exist: run `paperzoo run"
    ):
        FineTuneClassifier(
            10, resnet8(), checkpoint=str(tmp_path / "missing.ckpt"), checkpoint_from="x"
        ).load_pretrained()
    with pytest.raises(
        CheckpointError, match=r"does not fit CifarResNet: 36 tensors missing \(first: layer1\.1\.bn1\.bias\)"
    ):
        FineTuneClassifier(10, network=CifarResNet(depth=14, in_chans=1), checkpoint=str(path)).load_pretrained()
    with pytest.raises(
        CheckpointError, match=r"1 of another shape \(first: conv1\.weight \(16, 1, 3, 3\), not \(16, 3"
    ):
        FineTuneClassifier(10, network=resnet8(in_chans=3), checkpoint=str(path)).load_pretrained()
    with pytest.raises(ConfigError, match="exactly one of network"):
        FineTuneClassifier(10)


def test_timm_backbone_loads_local_weights_and_replaces_its_head(tmp_path):
    torch.manual_seed(0)
    source = timm.create_model("resnet10t", pretrained=False, num_classes=1000)
    weights = tmp_path / "resnet10t.pth"
    torch.save(source.state_dict(), weights)
    model = FineTuneClassifier(3, timm_model="resnet10t", checkpoint=str(weights), mode="frozen")
    model.load_pretrained()
    loaded, original = model.network.state_dict(), source.state_dict()
    assert all(torch.equal(loaded[k], original[k]) for k in original if not k.startswith("fc."))
    assert loaded["fc.weight"].shape == (3, 512) and model.head == "fc"
    assert [n for n, p in model.network.named_parameters() if p.requires_grad] == ["fc.weight", "fc.bias"]
    # timm's own group_matcher: stem, the four stages, the head
    assert len(model.layer_groups) == 6 and model.layer_groups[0][0].startswith("conv1")


def test_head_found_by_name_or_refused():
    network = nn.Sequential(nn.Flatten(), nn.Linear(784, 10), nn.ReLU(), nn.Linear(10, 10))
    network.num_classes = 10
    model = FineTuneClassifier(5, network=network)
    assert model.head == "3" and model.network[3].out_features == 5 and model.network[1].out_features == 10
    network = nn.Sequential(nn.Flatten(), nn.Linear(784, 7))
    network.num_classes = 10
    with pytest.raises(ConfigError, match="cannot find the classification head"):
        FineTuneClassifier(5, network=network)
    with pytest.raises(ConfigError, match=r"head='0' must name an nn\.Linear"):
        FineTuneClassifier(5, network=network, head="0")


def test_a_glob_pattern_takes_the_newest_checkpoint_and_fitting_loads_it(our_checkpoint, mnist, tmp_path):
    path, _ = our_checkpoint
    older = tmp_path / "runs" / "version_0" / "last.ckpt"
    older.parent.mkdir(parents=True)
    older.write_bytes(path.read_bytes())
    newer = tmp_path / "runs" / "version_1" / "last.ckpt"
    newer.parent.mkdir(parents=True)
    other = ImageClassifier(resnet8())
    torch.save({"state_dict": other.state_dict(), "pytorch-lightning_version": L.__version__}, newer)
    os.utime(older, (1, 1))
    pattern = str(tmp_path / "runs" / "version_*" / "last.ckpt")
    model = FineTuneClassifier(10, network=resnet8(), checkpoint=pattern, optimizer=_sgd(0.0))
    assert model.pretrained_path is None, "nothing is read until fitting starts"
    _fit(model, mnist, tmp_path, max_steps=1, limit_val_batches=0)
    assert model.pretrained_path == newer
    assert torch.equal(model.network.layer1[0].conv1.weight, other.network.layer1[0].conv1.weight)


def test_a_missing_pretrained_checkpoint_is_one_sentence_from_the_cli(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    config = Path(__file__).parents[2] / "experiments" / "vision" / "transfer_yosinski2014" / "mnist5k_10labels.yaml"
    data = write_mnist5k_csv(tmp_path / "mnist_5k.csv.gz", n=200)
    code = main(
        [
            "fit",
            f"--config={config}",
            f"--data.init_args.path={data}",
            "--data.init_args.test_size=40",
            "--data.init_args.val_size=20",
            "--trainer.fast_dev_run=1",
            "--trainer.enable_progress_bar=false",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[-1] == (
        "error: the pre-trained checkpoint runs/resnet20-fashionmnist/version_*/checkpoints/last.ckpt does not exist: "
        "run `paperzoo run resnet20-fashionmnist` first, or pass a .ckpt or weights file as "
        "--model.init_args.checkpoint=PATH"
    )
