"""The generative DataModules read the real on-disk formats and serve (images in [-1, 1], labels)."""

import pickle

import numpy as np
import pytest
import torch

from paperzoo.core.errors import ConfigError, CorruptDataError, DatasetNotFoundError
from paperzoo.core.testing import write_cifar10, write_mnist
from paperzoo.generative.data import (
    CIFAR10Images,
    FaceCropsImages,
    FashionMNISTImages,
    FashionMNISTUnpaired,
    ImageFolderImages,
    MNISTImages,
    UnpairedFolderImages,
    resize_images,
    to_uint8,
    to_unit_range,
)
from paperzoo.generative.testing import write_flat_image_folder, write_unpaired_folders


def _first_batch(dm, loader="train_dataloader"):
    batch = next(iter(getattr(dm, loader)()))
    return dm.on_after_batch_transfer(batch, 0)


def test_unit_range_round_trip():
    x = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    y = to_unit_range(x)
    assert y.min() == -1 and y.max() == 1
    assert torch.equal(to_uint8(y), x)


def test_resize_pad_keeps_pixels_and_fills_black():
    x = torch.rand(2, 1, 28, 28) * 2 - 1
    y = resize_images(x, 32, "pad")
    assert y.shape == (2, 1, 32, 32)
    assert torch.equal(y[..., 2:30, 2:30], x)
    assert (y[..., :2, :] == -1).all() and (y[..., :, 30:] == -1).all()


def test_resize_interpolate_crops_to_square_first():
    x = torch.zeros(1, 1, 8, 12)
    x[..., :, :2] = 1  # a stripe in the cropped-away margin
    y = resize_images(x, 4, "interpolate")
    assert y.shape == (1, 1, 4, 4) and torch.allclose(y, torch.zeros_like(y))


@pytest.mark.parametrize("cls", [MNISTImages, FashionMNISTImages])
def test_idx_images(tmp_path, cls):
    write_mnist(tmp_path, n_train=40, n_test=20)
    dm = cls(data_dir=str(tmp_path), batch_size=8, val_size=10)
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (30, 10, 20)
    x, y = _first_batch(dm)
    assert x.shape == (8, 1, 32, 32) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1 and y.dtype == torch.int64
    assert (x[..., :2, :] == -1).all()  # 28x28 centred in 32x32


def test_class_filter_and_train_size(tmp_path):
    write_mnist(tmp_path, n_train=60, n_test=30)
    dm = MNISTImages(data_dir=str(tmp_path), classes=[1, 3], val_size=2, train_size=5, batch_size=4)
    dm.setup()
    labels = torch.cat([dm.train_set.tensors[1], dm.val_set.tensors[1], dm.test_set.tensors[1]])
    assert set(labels.tolist()) <= {1, 3} and len(dm.train_set) == 5
    with pytest.raises(ConfigError, match=r"not in 0\.\.9"):
        MNISTImages(data_dir=str(tmp_path), classes=[12]).setup()


def test_missing_and_corrupt_idx(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="found no dataset"):
        FashionMNISTImages(data_dir=str(tmp_path)).setup()
    write_mnist(tmp_path, gz=False)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x02\x01")
    with pytest.raises(CorruptDataError):
        MNISTImages(data_dir=str(tmp_path), val_size=2).setup()


def test_cifar10_pickles(tmp_path):
    write_cifar10(tmp_path, n_per_batch=10)
    dm = CIFAR10Images(data_dir=str(tmp_path), batch_size=6, val_size=10)
    dm.setup()
    assert (len(dm.train_set), len(dm.test_set)) == (40, 10)
    x, _ = _first_batch(dm)
    assert x.shape == (6, 3, 32, 32)
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "rb") as f:
        raw = pickle.load(f, encoding="bytes")
    first = torch.from_numpy(np.asarray(raw[b"data"][0], dtype=np.uint8).reshape(3, 32, 32))
    assert torch.equal(dm.test_set.tensors[0][0], first)  # the R, G, B planes in order
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(CorruptDataError, match="data_batch_3"):
        CIFAR10Images(data_dir=str(tmp_path), val_size=10).setup()


def test_face_crops_are_the_100_faces():
    dm = FaceCropsImages(batch_size=10, resolution=32, hflip=True)
    dm.setup()
    assert len(dm.train_set) == len(dm.test_set) == 100
    x, _ = _first_batch(dm)
    assert x.shape == (10, 1, 32, 32) and x.min() >= -1 and x.max() <= 1
    with pytest.raises(ConfigError, match="holds nothing out"):
        FaceCropsImages(val_size=10)


def test_hflip_is_seeded_and_only_in_training():
    dm = FaceCropsImages(batch_size=100, resolution=25, hflip=True)
    dm.setup()
    batch = next(iter(dm.test_dataloader()))
    x, _ = dm.on_after_batch_transfer(batch, 0)  # no trainer: never flipped
    assert torch.equal(x, to_unit_range(batch[0]))


def test_image_folder_any_size(tmp_path):
    write_flat_image_folder(tmp_path / "ffhq", n=12, size=40)
    dm = ImageFolderImages(data_dir=str(tmp_path / "ffhq"), resolution=16, val_size=4, batch_size=4)
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set)) == (8, 4) and dm.test_set is dm.val_set
    x, y = _first_batch(dm)
    assert x.shape == (4, 3, 16, 16) and (y == 0).all()
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        ImageFolderImages(data_dir=str(tmp_path / "nowhere")).setup()
    (tmp_path / "ffhq" / "00000" / "00000.png").write_bytes(b"broken")
    dm = ImageFolderImages(data_dir=str(tmp_path / "ffhq"), resolution=16, val_size=0, batch_size=12)
    dm.setup()
    with pytest.raises(CorruptDataError, match=r"00000\.png"):
        next(iter(dm.train_dataloader()))


def test_unpaired_folders(tmp_path):
    write_unpaired_folders(tmp_path, n_train=6, n_test=3, size=40)
    dm = UnpairedFolderImages(data_dir=str(tmp_path), load_size=36, resolution=32, batch_size=2)
    dm.setup()
    assert len(dm.train_set) == 7 and len(dm.test_set) == 3
    a, b = _first_batch(dm)
    assert a.shape == b.shape == (2, 3, 32, 32)
    with pytest.raises(DatasetNotFoundError, match="trainA"):
        UnpairedFolderImages(data_dir=str(tmp_path / "empty")).setup()


def test_fashion_mnist_unpaired_domains(tmp_path):
    write_mnist(tmp_path, n_train=100, n_test=40)
    dm = FashionMNISTUnpaired(data_dir=str(tmp_path), class_a=7, class_b=9, batch_size=4)
    dm.setup()
    a, _ = _first_batch(dm)
    assert a.shape == (4, 1, 32, 32)
    with pytest.raises(ConfigError):
        FashionMNISTUnpaired(class_a=3, class_b=3)
