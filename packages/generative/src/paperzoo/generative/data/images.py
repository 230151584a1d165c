"""Image DataModules for generative models: images in ``[-1, 1]`` at a chosen power-of-two resolution.

Every DataModule here serves ``(images, labels)`` batches: ``images`` float32 in ``[-1, 1]``, ``(B, C, R, R)`` for the
configured ``resolution`` R, and ``labels`` int64 class indices (zeros for a dataset without classes). In-memory
datasets (Fashion-MNIST, MNIST, CIFAR-10, the scikit-image face crops) keep uint8 images and do the conversion, the
resizing and the flips per batch on the training device, after the batch is moved; folder datasets (FFHQ, CelebA,
LSUN-style folders) decode and resize each file in the loader's workers.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset, TensorDataset

from paperzoo.core.data import SeededLoaderDataModule, read_idx, seeded_split
from paperzoo.core.errors import ConfigError, CorruptDataError, DatasetNotFoundError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".ppm", ".tif", ".tiff")
"""File suffixes (any case) that the folder DataModules read as images."""

FASHION_MNIST_CLASSES = [
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


def to_unit_range(images: Tensor) -> Tensor:
    """uint8 images in ``[0, 255]`` -> float32 in ``[-1, 1]``."""
    return images.float().div(127.5).sub(1.0)


def to_uint8(images: Tensor) -> Tensor:
    """Images in ``[-1, 1]`` (any float dtype) -> uint8 in ``[0, 255]``, clamped and rounded."""
    return images.detach().float().add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)


def resize_images(images: Tensor, resolution: int, mode: Literal["pad", "interpolate"]) -> Tensor:
    """Bring float ``(B, C, H, W)`` images in ``[-1, 1]`` to ``(B, C, resolution, resolution)``.

    ``"pad"`` centres a smaller image in a field of -1 (black), as LeNet centres a 28x28 digit in 32x32, and keeps
    every pixel exact; it needs an image no larger than ``resolution`` and falls back to interpolation otherwise.
    ``"interpolate"`` resizes bilinearly (antialiased when shrinking) after a centre crop to a square.
    """
    h, w = images.shape[-2:]
    if (h, w) == (resolution, resolution):
        return images
    if mode == "pad" and h <= resolution and w <= resolution:
        top, left = (resolution - h) // 2, (resolution - w) // 2
        return F.pad(images, (left, resolution - w - left, top, resolution - h - top), value=-1.0)
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    images = images[..., top : top + side, left : left + side]
    return F.interpolate(images, size=(resolution, resolution), mode="bilinear", antialias=side > resolution)


class GenerativeImageDataModule(SeededLoaderDataModule):
    """An image dataset held in memory as uint8 tensors, served in ``[-1, 1]`` at ``resolution``.

    Subclasses read a dataset's standard files in :meth:`load_arrays`. This class keeps the chosen ``classes``,
    holds out a stratified, seeded validation split of ``val_size`` training images, and in
    :meth:`on_after_batch_transfer` turns uint8 into ``[-1, 1]``, brings the images to ``resolution`` and flips
    training images horizontally when ``hflip`` is set (StyleGAN2 and DDPM train with x-flips). The test split is
    the dataset's own; sample-quality metrics compare generated images against it.

    Args:
        data_dir: where the dataset's files are; ``None`` for the class's default. Each subclass documents its layout.
        resolution: the side of the square images served; ``None`` keeps the dataset's own size.
        resize: ``"pad"`` (centre in a black field, exact) or ``"interpolate"`` (bilinear); see :func:`resize_images`.
        classes: keep only these class indices (labels stay the dataset's); ``None`` keeps all.
        train_size: use only the first ``train_size`` training images (after the class filter and the validation
            split), for short runs; ``None`` uses all.
        batch_size: training batch size (per device).
        eval_batch_size: batch size of the validation and test loaders; ``None`` for ``batch_size``.
        val_size: training images held out for validation.
        hflip: flip training images horizontally with probability 1/2.
        seed: seed of the validation split, the shuffling and the flips.
        num_workers: DataLoader worker processes (the images are in memory, so 0 is usually fastest).
    """

    channels: int
    num_classes: int
    classes: list[str]
    default_data_dir: str | None = None
    default_resize: ClassVar[str] = "interpolate"

    def __init__(
        self,
        data_dir: str | None = None,
        resolution: int | None = 32,
        resize: Literal["pad", "interpolate"] | None = None,
        classes: list[int] | None = None,
        train_size: int | None = None,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        val_size: int = 5000,
        hflip: bool = False,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if resolution is not None and resolution < 1:
            raise ConfigError(
                f"resolution={resolution} must be a positive number of pixels (or null for the native size)"
            )
        if train_size is not None and train_size < 1:
            raise ConfigError(f"train_size={train_size} must be >= 1 (or null for the whole training split)")
        self.data_dir = data_dir if data_dir is not None else self.default_data_dir
        self.resolution_arg = resolution
        self.resize = resize or self.default_resize
        self.keep_classes = classes
        self.train_size = train_size
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.val_size = val_size
        self.hflip = hflip
        self.seed = seed
        self.num_workers = num_workers
        self.native_size: tuple[int, int] | None = None

    def load_arrays(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(train_images, train_labels, test_images, test_labels)``: uint8 ``(N, C, H, W)`` and int64 ``(N,)``."""
        raise NotImplementedError

    @property
    def resolution(self) -> int:
        """The side of the served images."""
        if self.resolution_arg is not None:
            return self.resolution_arg
        if self.native_size is None:
            raise RuntimeError("call setup() first: the native size is known once the data is read")
        return max(self.native_size)

    def setup(self, stage: str | None = None) -> None:
        if getattr(self, "train_set", None) is not None:
            return
        x_train, y_train, x_test, y_test = self.load_arrays()
        if self.keep_classes is not None:
            unknown = sorted(set(self.keep_classes) - set(range(self.num_classes)))
            if unknown:
                raise ConfigError(f"classes {unknown} are not in 0..{self.num_classes - 1} of {type(self).__name__}")
            wanted = torch.tensor(self.keep_classes)
            keep_train, keep_test = torch.isin(y_train, wanted), torch.isin(y_test, wanted)
            x_train, y_train, x_test, y_test = (
                x_train[keep_train],
                y_train[keep_train],
                x_test[keep_test],
                y_test[keep_test],
            )
        if not 0 <= self.val_size < len(x_train):
            raise ConfigError(f"val_size={self.val_size} must be >= 0 and below the {len(x_train)} training images")
        train_idx, val_idx = seeded_split(len(x_train), self.val_size, self.seed, labels=y_train.numpy())
        if self.train_size is not None:
            train_idx = train_idx[: self.train_size]
        self.native_size = tuple(x_train.shape[-2:])
        self.train_set = TensorDataset(x_train[train_idx], y_train[train_idx])
        # With no held-out images, validate on the test split (documented by the subclasses that do it).
        self.val_set = (
            TensorDataset(x_train[val_idx], y_train[val_idx]) if self.val_size else TensorDataset(x_test, y_test)
        )
        self.test_set = TensorDataset(x_test, y_test)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> tuple[Tensor, Tensor]:
        images, labels = batch
        images = resize_images(to_unit_range(images), self.resolution, self.resize)
        trainer = self.trainer
        if self.hflip and trainer is not None and trainer.training:
            generator = torch.Generator(device=images.device)
            generator.manual_seed(
                int(np.random.SeedSequence((self.seed, trainer.global_step, trainer.global_rank)).generate_state(1)[0])
            )
            flip = torch.rand(len(images), generator=generator, device=images.device) < 0.5
            images = torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)
        return images, labels

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(data_dir={self.data_dir!r}, resolution={self.resolution_arg}, "
            f"classes={self.keep_classes}, batch_size={self.batch_size})"
        )


class MNISTImages(GenerativeImageDataModule):
    """MNIST digits (LeCun et al. 1998) from the four IDX files (gzipped or not) in ``data_dir`` (default
    ``data/mnist``) or its torchvision layout ``MNIST/raw/``; 28x28 grey, centred in 32x32 by default.

    See :class:`GenerativeImageDataModule` for the arguments.
    """

    channels = 1
    num_classes = 10
    classes: ClassVar[list[str]] = [str(d) for d in range(10)]
    default_data_dir = "data/mnist"
    default_resize = "pad"
    torchvision_folder = "MNIST"
    file_names = (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    )

    def find_files(self) -> list[Path]:
        root = Path(self.data_dir)
        for folder in (root, root / self.torchvision_folder / "raw"):
            found = [_first_existing(folder / name, folder / f"{name}.gz") for name in self.file_names]
            if all(found):
                return found  # type: ignore[return-value]
        names = ", ".join(f"{name}.gz" for name in self.file_names)
        raise DatasetNotFoundError(
            f"{type(self).__name__} found no dataset in {root}: put the four IDX files ({names}; gzipped or not) "
            "there, or pass --data.init_args.data_dir"
        )

    def load_arrays(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        train_x, train_y, test_x, test_y = self.find_files()
        return (*self._read(train_x, train_y), *self._read(test_x, test_y))

    def _read(self, images_path: Path, labels_path: Path) -> tuple[Tensor, Tensor]:
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.dtype != np.uint8 or images.ndim != 3:
            raise CorruptDataError(
                f"{images_path} holds {images.dtype} of shape {images.shape}, not uint8 images (N, H, W)"
            )
        if labels.ndim != 1 or len(labels) != len(images) or labels.max(initial=0) >= self.num_classes:
            raise CorruptDataError(f"{labels_path} does not hold {len(images)} labels in 0..{self.num_classes - 1}")
        return torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


class FashionMNISTImages(MNISTImages):
    """Fashion-MNIST (Xiao, Rasul and Vollgraf 2017): 60,000 training and 10,000 test 28x28 grey images of 10 kinds
    of clothing, in MNIST's IDX format. The default ``data_dir`` is Debian's ``dataset-fashion-mnist`` package
    (``/usr/share/datasets/fashion-mnist``). Centred in 32x32 by default.

    See :class:`GenerativeImageDataModule` for the arguments.
    """

    classes: ClassVar[list[str]] = FASHION_MNIST_CLASSES
    default_data_dir = "/usr/share/datasets/fashion-mnist"
    torchvision_folder = "FashionMNIST"


class CIFAR10Images(GenerativeImageDataModule):
    """CIFAR-10 (Krizhevsky 2009) from its Python pickles (``data_batch_1`` .. ``data_batch_5``, ``test_batch``) in
    ``data_dir`` (default ``data/cifar10``) or its ``cifar-10-batches-py/`` folder; 32x32 colour, 10 classes.

    See :class:`GenerativeImageDataModule` for the arguments.
    """

    channels = 3
    num_classes = 10
    classes: ClassVar[list[str]] = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]
    default_data_dir = "data/cifar10"

    def load_arrays(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        root = Path(self.data_dir)
        names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
        folder = next((f for f in (root, root / "cifar-10-batches-py") if all((f / n).is_file() for n in names)), None)
        if folder is None:
            raise DatasetNotFoundError(
                f"CIFAR-10 was not found in {root}: put the Python version's pickles (data_batch_1..5, test_batch) "
                "there or in its cifar-10-batches-py/ folder, or pass --data.init_args.data_dir"
            )
        parts = [self._read(folder / n) for n in names]
        x_train = torch.cat([p[0] for p in parts[:5]])
        y_train = torch.cat([p[1] for p in parts[:5]])
        return x_train, y_train, *parts[5]

    def _read(self, path: Path) -> tuple[Tensor, Tensor]:
        try:
            with open(path, "rb") as f:
                entry = pickle.load(f, encoding="bytes")
            data, labels = np.asarray(entry[b"data"], dtype=np.uint8), np.asarray(entry[b"labels"], dtype=np.int64)
        except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as error:
            raise CorruptDataError(f"{path} is not a CIFAR-10 batch pickle ({error}); re-download it") from error
        if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
            raise CorruptDataError(f"{path} holds data of shape {data.shape}, not (N, 3072) with N labels")
        return torch.from_numpy(data.reshape(-1, 3, 32, 32).copy()), torch.from_numpy(labels)


class FaceCropsImages(GenerativeImageDataModule):
    """The 100 real face crops of scikit-image's ``data.lfw_subset()`` (25x25 grey, from Labeled Faces in the Wild),
    the project's offline small face set. The file ships with scikit-image, so ``data_dir`` is unused.

    The set is too small to hold images out: training uses all 100 faces (``val_size`` must be 0), and the
    validation and test splits are the same 100 faces, so a sample metric on this set measures closeness to the
    training faces, not generalisation. One class (label 0). Resized to 32x32 by default.

    See :class:`GenerativeImageDataModule` for the arguments.
    """

    channels = 1
    num_classes = 1
    classes: ClassVar[list[str]] = ["face"]

    def __init__(self, *args: Any, val_size: int = 0, **kwargs: Any) -> None:
        if val_size != 0:
            raise ConfigError(f"val_size={val_size}: the 100-face set holds nothing out; leave val_size at 0")
        super().__init__(*args, val_size=val_size, **kwargs)

    def load_arrays(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        try:
            from skimage import data
        except ImportError as error:  # pragma: no cover - a dependency of the package
            raise DatasetNotFoundError("the face crops ship with scikit-image: pip install scikit-image") from error
        faces = np.asarray(data.lfw_subset()[:100])  # the first 100 of the 200 crops are faces
        images = torch.from_numpy(np.round(faces * 255).astype(np.uint8)).unsqueeze(1)
        labels = torch.zeros(len(images), dtype=torch.int64)
        return images, labels, images.clone(), labels.clone()


class _FileImages(Dataset):
    """Image files decoded to uint8 ``(C, R, R)``, centre-cropped to a square and resized (Lanczos)."""

    def __init__(self, files: Sequence[Path], labels: Sequence[int], resolution: int, channels: int) -> None:
        self.files, self.labels = list(files), list(labels)
        self.resolution, self.mode = resolution, "L" if channels == 1 else "RGB"

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return read_image(self.files[index], self.resolution, self.mode), self.labels[index]


def read_image(path: Path, resolution: int, mode: str = "RGB") -> Tensor:
    """One image file as uint8 ``(C, resolution, resolution)``, centre-cropped to a square and resized (Lanczos).

    Raises:
        CorruptDataError: the file is not a readable image.
    """
    try:
        with Image.open(path) as image:
            image = image.convert(mode)
            side = min(image.size)
            left, top = (image.width - side) // 2, (image.height - side) // 2
            image = image.crop((left, top, left + side, top + side))
            if side != resolution:
                image = image.resize((resolution, resolution), Image.Resampling.LANCZOS)
            array = np.asarray(image, dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as error:
        raise CorruptDataError(f"{path} is not a readable image ({error}); remove or replace it") from error
    return (
        torch.from_numpy(array.copy()).unsqueeze(0)
        if array.ndim == 2
        else torch.from_numpy(array.copy()).permute(2, 0, 1)
    )


def list_images(folder: Path) -> list[Path]:
    """Every image file under ``folder``, at any depth, sorted."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


class ImageFolderImages(GenerativeImageDataModule):
    """Images in a folder, at any depth and any size (FFHQ, CelebA, LSUN exported to files), served at ``resolution``.

    ``data_dir`` holds the training images; a sibling layout ``data_dir/train`` and ``data_dir/test`` is used when
    both exist. Without a test folder the test split is the held-out validation split. Each file is centre-cropped
    to a square and resized with Lanczos filtering in the loader's workers. No classes: every label is 0.

    See :class:`GenerativeImageDataModule` for the arguments; ``resolution`` is required and ``val_size`` defaults
    to 1,000 images.
    """

    channels = 3
    num_classes = 1
    classes: ClassVar[list[str]] = ["image"]

    def __init__(
        self,
        data_dir: str | None = None,
        resolution: int | None = 256,
        channels: int = 3,
        val_size: int = 1000,
        **kwargs: Any,
    ) -> None:
        if resolution is None:
            raise ConfigError("ImageFolderImages needs a resolution: the files may all differ in size")
        if channels not in (1, 3):
            raise ConfigError(f"channels={channels} must be 1 (grey) or 3 (RGB)")
        super().__init__(data_dir=data_dir, resolution=resolution, val_size=val_size, **kwargs)
        self.channels = channels

    def setup(self, stage: str | None = None) -> None:
        if getattr(self, "train_set", None) is not None:
            return
        if self.data_dir is None or not Path(self.data_dir).is_dir():
            raise DatasetNotFoundError(
                f"the image folder {self.data_dir} does not exist: pass --data.init_args.data_dir"
            )
        root = Path(self.data_dir)
        split = (root / "train").is_dir() and (root / "test").is_dir()
        files = list_images(root / "train" if split else root)
        if len(files) <= self.val_size:
            raise DatasetNotFoundError(
                f"{root} holds {len(files)} images ({', '.join(IMAGE_SUFFIXES)}), "
                f"not more than val_size={self.val_size}"
            )
        train_idx, val_idx = seeded_split(len(files), self.val_size, self.seed)
        if self.train_size is not None:
            train_idx = train_idx[: self.train_size]

        def make(chosen: list[Path]) -> _FileImages:
            return _FileImages(chosen, [0] * len(chosen), self.resolution, self.channels)

        self.native_size = (self.resolution, self.resolution)
        self.train_set = make([files[i] for i in train_idx])
        self.val_set = make([files[i] for i in val_idx])
        self.test_set = make(list_images(root / "test")) if split else self.val_set


class UnpairedImages(SeededLoaderDataModule):
    """Two unpaired image domains for image-to-image translation (CycleGAN): batches ``(images_a, images_b)``, each
    float32 in ``[-1, 1]``, ``(B, C, R, R)``.

    An epoch walks the larger domain once; each image is paired with an image of the other domain drawn by a
    seeded permutation, so the pairs carry no correspondence. Subclasses fill ``domains`` in :meth:`load_domains`.
    CycleGAN's datasets have only train and test splits, so the validation loader serves the test pairs: watch its
    losses, but do not pick a checkpoint on them if the test is to stay unseen (the configs keep the last one).

    Args:
        resolution: the side of the served images.
        batch_size: training batch size (1 in Zhu et al. 2017).
        eval_batch_size: batch size of the validation and test loaders; ``None`` for ``max(batch_size, 8)``.
        hflip: flip training images horizontally with probability 1/2 (each domain independently).
        seed: seed of the pairing, the shuffling and the flips.
        num_workers: DataLoader worker processes.
    """

    channels: int
    domain_names: tuple[str, str] = ("A", "B")

    def __init__(
        self,
        resolution: int = 32,
        batch_size: int = 1,
        eval_batch_size: int | None = None,
        hflip: bool = True,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.resolution = resolution
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or max(batch_size, 8)
        self.hflip = hflip
        self.seed = seed
        self.num_workers = num_workers

    def load_domains(self) -> dict[str, tuple[Dataset, Dataset]]:
        """``{"train": (set_a, set_b), "test": (set_a, set_b)}`` of uint8 ``(C, H, W)`` images (with or without a
        label as a second item)."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if getattr(self, "train_set", None) is not None:
            return
        domains = self.load_domains()
        self.train_set = _Unpaired(*domains["train"], seed=self.seed)
        self.test_set = _Unpaired(*domains["test"], seed=self.seed + 1)
        self.val_set = self.test_set

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> tuple[Tensor, Tensor]:
        a, b = (resize_images(to_unit_range(x), self.resolution, "interpolate") for x in batch)
        trainer = self.trainer
        if self.hflip and trainer is not None and trainer.training:
            generator = torch.Generator(device=a.device)
            generator.manual_seed(int(np.random.SeedSequence((self.seed, trainer.global_step)).generate_state(1)[0]))
            flips = torch.rand(2, len(a), generator=generator, device=a.device) < 0.5
            a = torch.where(flips[0].view(-1, 1, 1, 1), a.flip(-1), a)
            b = torch.where(flips[1].view(-1, 1, 1, 1), b.flip(-1), b)
        return a, b


class _Unpaired(Dataset):
    def __init__(self, set_a: Dataset, set_b: Dataset, seed: int) -> None:
        self.set_a, self.set_b = set_a, set_b
        self.n = max(len(set_a), len(set_b))
        rng = np.random.default_rng(seed)
        self.order_a, self.order_b = rng.permutation(self.n) % len(set_a), rng.permutation(self.n) % len(set_b)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return _image(self.set_a[int(self.order_a[index])]), _image(self.set_b[int(self.order_b[index])])


def _image(item: Any) -> Tensor:
    return item[0] if isinstance(item, tuple | list) else item


class FashionMNISTUnpaired(UnpairedImages):
    """Two Fashion-MNIST classes as unpaired domains: the project's offline CycleGAN set. Default: sneakers (7) as
    domain A and ankle boots (9) as domain B, 6,000 training and 1,000 test images each, centred in 32x32.

    Args:
        data_dir: the IDX files, as for :class:`FashionMNISTImages`.
        class_a: the Fashion-MNIST class of domain A.
        class_b: the Fashion-MNIST class of domain B.
        **kwargs: see :class:`UnpairedImages`.
    """

    channels = 1

    def __init__(self, data_dir: str | None = None, class_a: int = 7, class_b: int = 9, **kwargs: Any) -> None:
        if class_a == class_b or not (0 <= class_a < 10 and 0 <= class_b < 10):
            raise ConfigError(f"class_a={class_a} and class_b={class_b} must be two different classes in 0..9")
        super().__init__(**kwargs)
        self.data_dir = data_dir
        self.class_a, self.class_b = class_a, class_b
        self.domain_names = (FASHION_MNIST_CLASSES[class_a], FASHION_MNIST_CLASSES[class_b])

    def load_domains(self) -> dict[str, tuple[Dataset, Dataset]]:
        source = FashionMNISTImages(data_dir=self.data_dir, resolution=None)
        x_train, y_train, x_test, y_test = source.load_arrays()
        x_train = F.pad(x_train, (2, 2, 2, 2)) if x_train.shape[-1] == 28 and self.resolution == 32 else x_train
        x_test = F.pad(x_test, (2, 2, 2, 2)) if x_test.shape[-1] == 28 and self.resolution == 32 else x_test
        return {
            split: (TensorDataset(x[y == self.class_a]), TensorDataset(x[y == self.class_b]))
            for split, (x, y) in {"train": (x_train, y_train), "test": (x_test, y_test)}.items()
        }


class UnpairedFolderImages(UnpairedImages):
    """CycleGAN's folder layout (horse2zebra, monet2photo ...): ``data_dir/{trainA,trainB,testA,testB}/`` of image
    files, centre-cropped and resized to ``load_size`` (286 in Zhu et al. for 256 crops); training images are then
    cropped at a random position to ``resolution``, test images at the centre.

    Args:
        data_dir: the dataset folder.
        load_size: the side images are resized to before cropping.
        channels: 3 (RGB) or 1 (grey).
        **kwargs: see :class:`UnpairedImages`.
    """

    def __init__(self, data_dir: str, load_size: int = 286, channels: int = 3, **kwargs: Any) -> None:
        kwargs.setdefault("resolution", 256)
        super().__init__(**kwargs)
        if load_size < self.resolution:
            raise ConfigError(f"load_size={load_size} must be >= resolution={self.resolution}")
        self.data_dir, self.load_size, self.channels = data_dir, load_size, channels

    def load_domains(self) -> dict[str, tuple[Dataset, Dataset]]:
        root = Path(self.data_dir)
        found = {name: list_images(root / name) for name in ("trainA", "trainB", "testA", "testB")}
        empty = [name for name, files in found.items() if not files]
        if empty:
            raise DatasetNotFoundError(
                f"{root} lacks images in {', '.join(empty)}: "
                "CycleGAN's layout is data_dir/{trainA,trainB,testA,testB}/"
            )

        def make(name: str, train: bool) -> _CroppedFiles:
            return _CroppedFiles(found[name], self.load_size, self.resolution, self.channels, train, self.seed)

        return {
            "train": (make("trainA", True), make("trainB", True)),
            "test": (make("testA", False), make("testB", False)),
        }


class _CroppedFiles(Dataset):
    def __init__(self, files: list[Path], load_size: int, crop: int, channels: int, train: bool, seed: int) -> None:
        self.files, self.load_size, self.crop, self.train = files, load_size, crop, train
        self.mode = "L" if channels == 1 else "RGB"
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Tensor:
        image = read_image(self.files[index], self.load_size, self.mode)
        margin = self.load_size - self.crop
        top, left = self.rng.integers(0, margin + 1, size=2) if self.train else (margin // 2, margin // 2)
        return image[:, int(top) : int(top) + self.crop, int(left) : int(left) + self.crop]


def _first_existing(*candidates: Path) -> Path | None:
    return next((c for c in candidates if c.is_file()), None)
