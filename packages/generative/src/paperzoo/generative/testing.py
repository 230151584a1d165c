"""Tiny datasets in the real on-disk formats of the generative DataModules, for tests and examples."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _write_pngs(folder: Path, n: int, size: int, rng: np.random.Generator, channels: int = 3, offset: int = 0) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        shape = (size, size + 8, channels) if channels == 3 else (size, size + 8)  # not square, like real photographs
        pixels = rng.integers(0, 256, size=shape, dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{offset + i:05d}.png")


def write_flat_image_folder(
    directory: str | Path, n: int = 12, size: int = 40, nested: bool = True, seed: int = 0
) -> Path:
    """Write FFHQ-style unlabelled images: ``directory/00000/00000.png`` ... (``nested``) or all in ``directory``.

    Images are RGB PNGs of ``size`` x ``size + 8`` pixels (not square, so readers must crop).
    """
    directory = Path(directory)
    rng = np.random.default_rng(seed)
    half = n // 2
    _write_pngs(directory / "00000" if nested else directory, half, size, rng)
    _write_pngs(directory / "01000" if nested else directory, n - half, size, rng, offset=half)
    return directory


def write_unpaired_folders(
    directory: str | Path, n_train: int = 6, n_test: int = 3, size: int = 40, seed: int = 0
) -> Path:
    """Write CycleGAN's layout: ``directory/{trainA,trainB,testA,testB}/*.png``; domain A has one more training
    image than domain B, as real unpaired sets differ in size."""
    directory = Path(directory)
    rng = np.random.default_rng(seed)
    for name, n in (("trainA", n_train + 1), ("trainB", n_train), ("testA", n_test), ("testB", n_test)):
        _write_pngs(directory / name, n, size, rng)
    return directory
