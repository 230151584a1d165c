"""Image folders in the ImageNet layout (``root/train/<class>/*.JPEG``, ``root/val/<class>/*``), decoded per batch."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.datasets.folder import IMG_EXTENSIONS, make_dataset
from torchvision.transforms import v2

from paperzoo.core.data import SeededLoaderDataModule, seeded_split
from paperzoo.core.errors import ConfigError, CorruptDataError, DatasetNotFoundError

Sample = tuple[str, int]
"""An image file and its class index."""


class ImageListDataset(Dataset):
    """Images read from files with PIL (as RGB) and transformed; the items are ``(transformed image, class index)``.

    Args:
        samples: ``(path, class index)`` pairs.
        transform: applied to each PIL image.
    """

    def __init__(self, samples: Sequence[Sample], transform: Callable[[Image.Image], Tensor]) -> None:
        self.samples = list(samples)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        path, label = self.samples[index]
        try:
            with Image.open(path) as image:
                rgb = image.convert("RGB")
        except (OSError, UnidentifiedImageError) as err:
            raise CorruptDataError(f"{path} is not a readable image ({err}); delete or replace it") from err
        return self.transform(rgb), label


class ImageFolderDataModule(SeededLoaderDataModule):
    """An image-classification dataset stored as one folder per class, with the ImageNet training recipe.

    The layout is ImageNet's (Russakovsky et al., "ImageNet Large Scale Visual Recognition Challenge", IJCV 2015)
    as torchvision's ``ImageFolder`` reads it::

        data_dir/train/<class>/*.JPEG    data_dir/val/<class>/*    [data_dir/test/<class>/*]

    Classes are the sorted names of the training class folders; validation and test folders may lack classes
    but not add any. Without ``val/`` the validation images are a stratified, seeded split of ``train/``; without
    ``test/`` the test set is the validation set (ImageNet papers report on its validation set). A ``data_dir``
    with no ``train/`` is one folder of class folders, split three ways (stratified): ``test_size`` images with
    ``split_seed``, then ``val_size`` of the rest with ``seed``; with ``test_size=0`` the test set is the
    validation set.

    Training images get the Inception-style random-resized crop (Szegedy et al. 2015: 8-100% of the area,
    aspect ratio 3/4-4/3) resized to ``image_size``, a random horizontal flip and optionally RandAugment
    (Cubuk et al. 2020, torchvision's ``RandAugment``); evaluation images are resized to ``resize_size`` on the
    short side and centre-cropped to ``image_size`` (256 and 224 for ImageNet). All are normalised with ``mean``
    and ``std`` (ImageNet's by default). Files are decoded in ``num_workers`` loader processes.

    Args:
        data_dir: the dataset's root folder.
        batch_size: training batch size (per device).
        eval_batch_size: batch size of the validation, test and predict loaders; ``None`` for ``batch_size``.
        image_size: side of the square crops fed to the network.
        resize_size: evaluation images are resized so that their short side is this; ``None`` for
            ``round(image_size / 0.875)`` (256 for 224).
        min_scale: smallest fraction of the image area a training crop covers.
        hflip: flip training images horizontally with probability 1/2.
        randaugment_ops: RandAugment's number of operations per training image; 0 turns it off (2 in Cubuk et al.).
        randaugment_magnitude: RandAugment's magnitude, 0..30 (9 in Cubuk et al. for ImageNet).
        mean: per-channel mean subtracted after scaling pixels to [0, 1].
        std: per-channel standard deviation divided by.
        val_size: images held out for validation where there is no ``val/`` folder: a count, or a fraction if
            below 1.
        test_size: images held out for testing when ``data_dir`` is a single folder of classes: a count, or a
            fraction if below 1; 0 tests on the validation set.
        seed: seed of the validation split, the shuffling and (with the run seed) the augmentation.
        split_seed: seed of the test split of a single folder.
        num_workers: DataLoader worker processes that read and transform the images.
    """

    in_chans = 3

    def __init__(
        self,
        data_dir: str,
        batch_size: int = 256,
        eval_batch_size: int | None = None,
        image_size: int = 224,
        resize_size: int | None = None,
        min_scale: float = 0.08,
        hflip: bool = True,
        randaugment_ops: int = 0,
        randaugment_magnitude: int = 9,
        mean: tuple[float, float, float] = IMAGENET_DEFAULT_MEAN,
        std: tuple[float, float, float] = IMAGENET_DEFAULT_STD,
        val_size: float = 0.1,
        test_size: float = 0,
        seed: int = 0,
        split_seed: int = 0,
        num_workers: int = 4,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if randaugment_ops < 0 or not 0 <= randaugment_magnitude <= 30:
            raise ConfigError(
                f"randaugment_ops={randaugment_ops} must be >= 0 and randaugment_magnitude={randaugment_magnitude} "
                "must lie in 0..30"
            )
        if not 0 < min_scale <= 1:
            raise ConfigError(f"min_scale={min_scale} must lie in (0, 1]")
        self.data_dir = Path(data_dir)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size if eval_batch_size is not None else batch_size
        self.image_size = (image_size, image_size)
        self.resize_size = resize_size if resize_size is not None else round(image_size / 0.875)
        self.mean = tuple(mean)
        self.std = tuple(std)
        self.val_size = val_size
        self.test_size = test_size
        self.seed = seed
        self.split_seed = split_seed
        self.num_workers = num_workers
        self.train_transform = v2.Compose(
            [
                v2.ToImage(),  # uint8 (C, H, W)
                v2.RandomResizedCrop(image_size, scale=(min_scale, 1.0), antialias=True),
                *([v2.RandomHorizontalFlip()] if hflip else []),
                *([v2.RandAugment(randaugment_ops, randaugment_magnitude)] if randaugment_ops > 0 else []),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(self.mean, self.std),
            ]
        )
        self.eval_transform = v2.Compose(
            [
                v2.ToImage(),
                v2.Resize(self.resize_size, antialias=True),
                v2.CenterCrop(image_size),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(self.mean, self.std),
            ]
        )
        self._classes: list[str] | None = None
        self.train_set: ImageListDataset | None = None
        self.val_set: ImageListDataset | None = None
        self.test_set: ImageListDataset | None = None

    # ------------------------------------------------------------------ layout

    @property
    def train_dir(self) -> Path:
        """The folder of training class folders: ``data_dir/train``, or ``data_dir`` itself if it has no ``train/``.

        Raises:
            DatasetNotFoundError: ``data_dir`` does not exist.
        """
        if not self.data_dir.is_dir():
            raise DatasetNotFoundError(
                f"the image folder {self.data_dir} does not exist: pass a folder laid out as train/<class>/*.jpg "
                "and val/<class>/*.jpg (or just <class>/*.jpg) as --data.init_args.data_dir"
            )
        train = self.data_dir / "train"
        return train if train.is_dir() else self.data_dir

    @property
    def classes(self) -> list[str]:
        """The class names, sorted: the names of the training class folders."""
        if self._classes is None:
            folder = self.train_dir
            classes = sorted(entry.name for entry in folder.iterdir() if entry.is_dir())
            if not classes:
                raise DatasetNotFoundError(
                    f"{folder} has no class folders: put each class's images in a folder of their own, "
                    f"{folder}/<class>/*.jpg"
                )
            self._classes = classes
        return self._classes

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def _samples(self, folder: Path) -> list[Sample]:
        """Every image of ``folder/<class>/`` with the training classes' indices.

        Raises:
            CorruptDataError: ``folder`` has a class folder that the training set lacks.
            DatasetNotFoundError: ``folder`` holds no image at all, or (training) a class has no image.
        """
        extra = sorted({entry.name for entry in folder.iterdir() if entry.is_dir()} - set(self.classes))
        if extra:
            raise CorruptDataError(
                f"{folder} has class folders that {self.train_dir} lacks ({', '.join(extra[:5])}); "
                "every class must have training images"
            )
        class_to_idx = {name: i for i, name in enumerate(self.classes)}
        samples = make_dataset(folder, class_to_idx, extensions=IMG_EXTENSIONS, allow_empty=True)
        counts = np.bincount([label for _, label in samples], minlength=len(self.classes))
        kinds = ", ".join(IMG_EXTENSIONS)
        if not samples:
            raise DatasetNotFoundError(f"{folder} holds no images (files ending in {kinds}) in its class folders")
        if folder == self.train_dir and (counts == 0).any():
            empty = [self.classes[i] for i in np.flatnonzero(counts == 0)[:5]]
            raise DatasetNotFoundError(
                f"the class folders {', '.join(empty)} of {folder} hold no images (files ending in {kinds})"
            )
        return samples

    # ------------------------------------------------------------------ splits

    def setup(self, stage: str | None = None) -> None:
        """List the files and split them once; later calls do nothing."""
        if self.train_set is not None:
            return
        train = self._samples(self.train_dir)
        total = len(train)  # fractions are of all the training folder's images
        val_dir, test_dir = self.data_dir / "val", self.data_dir / "test"
        single_folder = self.train_dir == self.data_dir
        test: list[Sample] | None = None
        if single_folder and self.test_size:
            train, test = _split(train, _count(self.test_size, total, "test_size"), self.split_seed)
        val = self._samples(val_dir) if val_dir.is_dir() and not single_folder else None
        if val is None:
            train, val = _split(train, _count(self.val_size, total, "val_size"), self.seed)
        if test is None:
            test = self._samples(test_dir) if test_dir.is_dir() and not single_folder else val
        self.train_set = ImageListDataset(train, self.train_transform)
        self.val_set = ImageListDataset(val, self.eval_transform)
        self.test_set = ImageListDataset(test, self.eval_transform)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(data_dir={str(self.data_dir)!r}, batch_size={self.batch_size}, "
            f"image_size={self.image_size[0]}, val_size={self.val_size}, seed={self.seed})"
        )


def _count(size: float, n: int, name: str) -> int:
    """``size`` as a number of images out of ``n``: a count, or a fraction if below 1.

    Raises:
        ConfigError: the size is negative, fractional above 1, or not between 1 and ``n - 1`` images.
    """
    count = round(size * n) if 0 < size < 1 else int(size)
    if size < 0 or (size >= 1 and size != count) or not 0 < count < n:
        raise ConfigError(
            f"{name}={size} must hold out at least one and fewer than all of the {n} images "
            "(a whole count, or a fraction below 1)"
        )
    return count


def _split(samples: list[Sample], count: int, seed: int) -> tuple[list[Sample], list[Sample]]:
    """``(kept, held out)``: ``count`` samples held out, stratified by class, chosen with ``seed``."""
    if count >= len(samples):
        raise ConfigError(
            f"cannot hold out {count} of the {len(samples)} images left for training; lower val_size or test_size"
        )
    labels = np.array([label for _, label in samples])
    keep, held = seeded_split(len(samples), count, seed, labels=labels)
    return [samples[i] for i in keep], [samples[i] for i in held]
