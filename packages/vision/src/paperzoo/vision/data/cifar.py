"""CIFAR-10 and CIFAR-100, read from the official "python version" pickles.

The archives ``cifar-10-python.tar.gz`` and ``cifar-100-python.tar.gz`` from
https://www.cs.toronto.edu/~kriz/cifar.html extract to ``cifar-10-batches-py/`` and ``cifar-100-python/``.
Each file is a pickled dict with bytes keys; ``b"data"`` is a uint8 array of shape ``(N, 3072)`` holding the
red, green and blue 32x32 planes of each image, row-major. Unpickling can run arbitrary code, so point
these DataModules only at dataset files you trust (the official archives).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from paperzoo.core.errors import ConfigError, CorruptDataError, DatasetNotFoundError
from paperzoo.vision.data.base import ImageClassificationDataModule

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

CIFAR100_FINE_CLASSES = [
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
    "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
    "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
    "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
    "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
    "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger",
    "tractor",
    "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
]  # fmt: skip

CIFAR100_COARSE_CLASSES = [
    "aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables",
    "household_electrical_devices", "household_furniture", "insects", "large_carnivores",
    "large_man-made_outdoor_things", "large_natural_outdoor_scenes", "large_omnivores_and_herbivores",
    "medium_mammals", "non-insect_invertebrates", "people", "reptiles", "small_mammals", "trees",
    "vehicles_1", "vehicles_2",
]  # fmt: skip


class CIFAR10DataModule(ImageClassificationDataModule):
    """CIFAR-10 (Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", 2009): 32x32 colour
    images in 10 classes, 50,000 for training (``val_size`` of them held out for validation) and 10,000 for test.

    Reads ``data_batch_1`` ... ``data_batch_5``, ``test_batch`` and ``batches.meta`` from
    ``data_dir/cifar-10-batches-py/`` or from ``data_dir`` itself if it is that folder; the default
    ``data_dir`` is ``data/cifar10``, relative to the working directory. The defaults augment as He et al.,
    "Deep Residual Learning for Image Recognition" (CVPR 2016), section 4.2: 4 pixels of zero padding, a
    random 32x32 crop and a random horizontal flip. The files are pickles: read only ones you trust.

    See :class:`ImageClassificationDataModule` for the arguments.
    """

    num_classes = 10
    in_chans = 3
    image_size = (32, 32)
    mean = (0.4914, 0.4822, 0.4465)
    std = (0.2470, 0.2435, 0.2616)
    classes = CIFAR10_CLASSES
    default_data_dir = "data/cifar10"
    dataset_name = "CIFAR-10"
    archive = "cifar-10-python.tar.gz"
    """The official archive, named in the message when the files are missing."""
    folder = "cifar-10-batches-py"
    """The folder the archive extracts to."""
    train_files = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5")
    test_files = ("test_batch",)
    meta_file = "batches.meta"
    label_key = b"labels"
    """Key of the labels in the train and test pickles."""
    names_key = b"label_names"
    """Key of the class names in the meta pickle."""

    def __init__(
        self,
        data_dir: str | None = None,
        batch_size: int = 128,
        eval_batch_size: int | None = None,
        val_size: int = 5000,
        seed: int = 0,
        num_workers: int = 0,
        crop_padding: int = 4,
        hflip: bool = True,
        randaugment_ops: int = 0,
        randaugment_magnitude: int = 9,
    ) -> None:
        super().__init__(
            data_dir=data_dir,
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

    def find_folder(self) -> Path:
        """The folder holding all the pickles: ``data_dir/<folder>`` or ``data_dir`` itself.

        Raises:
            DatasetNotFoundError: neither holds all the files.
        """
        root = Path(self.data_dir)
        names = (*self.train_files, *self.test_files, self.meta_file)
        for folder in (root / self.folder, root):
            if all((folder / name).is_file() for name in names):
                return folder
        raise DatasetNotFoundError(
            f"{self.dataset_name} was not found: download {self.archive} from "
            f"https://www.cs.toronto.edu/~kriz/cifar.html and extract it into {root}, so that "
            f"{root / self.folder} holds {', '.join(names)}; or pass --data.init_args.data_dir"
        )

    def load_arrays(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        folder = self.find_folder()
        names = _unpickle(folder / self.meta_file, (self.names_key,))[self.names_key]
        if not isinstance(names, list) or len(names) != self.num_classes:
            raise CorruptDataError(
                f"{folder / self.meta_file} has {self.names_key!r} that is not a list of {self.num_classes} class "
                f"names; re-extract {self.archive}"
            )
        x_train, y_train = self._read_batches([folder / name for name in self.train_files])
        x_test, y_test = self._read_batches([folder / name for name in self.test_files])
        return x_train, y_train, x_test, y_test

    def _read_batches(self, paths: list[Path]) -> tuple[Tensor, Tensor]:
        images, labels = [], []
        for path in paths:
            batch = _unpickle(path, (b"data", self.label_key))
            data = batch[b"data"]
            y = np.asarray(batch[self.label_key])
            if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
                raise CorruptDataError(
                    f"{path} has b'data' of type {type(data).__name__} {getattr(data, 'shape', '')}, not a uint8 "
                    f"array of shape (N, 3072); re-extract {self.archive}"
                )
            if y.shape != (len(data),) or not np.issubdtype(y.dtype, np.integer):
                raise CorruptDataError(
                    f"{path} has {y.shape} {self.label_key!r} for {len(data)} images; re-extract {self.archive}"
                )
            if len(y) and (y.min() < 0 or y.max() >= self.num_classes):
                raise CorruptDataError(
                    f"{path} has {self.label_key!r} outside 0..{self.num_classes - 1}; re-extract {self.archive}"
                )
            images.append(data.reshape(-1, 3, *self.image_size))  # (N, 3072) -> (N, 3, 32, 32)
            labels.append(y.astype(np.int64))
        return torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels))


class CIFAR100DataModule(CIFAR10DataModule):
    """CIFAR-100 (Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", 2009): 32x32 colour
    images in 100 fine classes grouped into 20 coarse ones; 50,000 for training, 10,000 for test.

    Reads ``train``, ``test`` and ``meta`` from ``data_dir/cifar-100-python/`` or from ``data_dir`` itself if
    it is that folder; the default ``data_dir`` is ``data/cifar100``. Augmentation defaults as for
    :class:`CIFAR10DataModule`. The files are pickles: read only ones you trust.

    Args:
        data_dir: the folder holding ``cifar-100-python/`` (or that folder); ``None`` for ``data/cifar100``.
        batch_size: training batch size (per device).
        eval_batch_size: batch size of the evaluation loaders; ``None`` for ``2 * batch_size``.
        val_size: training images held out for validation (stratified by the chosen labels).
        seed: seed of the validation split, the shuffling and the augmentation.
        num_workers: DataLoader worker processes.
        crop_padding: pixels of zero padding for the random crop during training; 0 turns it off.
        hflip: flip training images horizontally with probability 1/2.
        label_type: ``"fine"`` for the 100 classes, ``"coarse"`` for the 20 superclasses.
        randaugment_ops: RandAugment's number of operations per training image; 0 turns it off.
        randaugment_magnitude: RandAugment's magnitude, 0..30.
    """

    default_data_dir = "data/cifar100"
    dataset_name = "CIFAR-100"
    archive = "cifar-100-python.tar.gz"
    folder = "cifar-100-python"
    train_files = ("train",)
    test_files = ("test",)
    meta_file = "meta"
    mean = (0.5071, 0.4865, 0.4409)
    std = (0.2673, 0.2564, 0.2762)

    def __init__(
        self,
        data_dir: str | None = None,
        batch_size: int = 128,
        eval_batch_size: int | None = None,
        val_size: int = 5000,
        seed: int = 0,
        num_workers: int = 0,
        crop_padding: int = 4,
        hflip: bool = True,
        label_type: Literal["fine", "coarse"] = "fine",
        randaugment_ops: int = 0,
        randaugment_magnitude: int = 9,
    ) -> None:
        if label_type not in ("fine", "coarse"):
            raise ConfigError(f"label_type must be 'fine' or 'coarse', not {label_type!r}")
        super().__init__(
            data_dir=data_dir,
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
        self.label_type = label_type

    @property
    def num_classes(self) -> int:
        return 100 if self.label_type == "fine" else 20

    @property
    def classes(self) -> list[str]:
        return CIFAR100_FINE_CLASSES if self.label_type == "fine" else CIFAR100_COARSE_CLASSES

    @property
    def label_key(self) -> bytes:
        return b"fine_labels" if self.label_type == "fine" else b"coarse_labels"

    @property
    def names_key(self) -> bytes:
        return b"fine_label_names" if self.label_type == "fine" else b"coarse_label_names"


def _unpickle(path: Path, keys: tuple[bytes, ...]) -> dict[bytes, Any]:
    """Load one CIFAR pickle and check that it is a dict with ``keys``.

    Raises:
        CorruptDataError: the file cannot be unpickled, is not a dict, or lacks a key.
    """
    try:
        with open(path, "rb") as f:
            content = pickle.load(f, encoding="bytes")
    except Exception as err:  # unpickling a damaged file can raise almost anything
        raise CorruptDataError(f"{path} is not a readable CIFAR pickle ({type(err).__name__}: {err})") from err
    if not isinstance(content, dict):
        raise CorruptDataError(f"{path} holds a {type(content).__name__}, not the dict of a CIFAR pickle")
    missing = [key for key in keys if key not in content]
    if missing:
        raise CorruptDataError(f"{path} lacks the keys {missing} of a CIFAR pickle; it is not this dataset's file")
    return content
