"""Deterministic data order, so a resumed run sees exactly the batches an uninterrupted run would."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler


def run_seed() -> int:
    """The run's global seed (``seed_everything``), 0 when none was set.

    DataModules mix it into the data order and augmentation, so ``paperzoo run --seeds N`` varies them
    along with the initialisation while the validation split (seeded by the data's own ``seed``) stays.
    """
    return int(os.environ.get("PL_GLOBAL_SEED", 0))


class EpochSeededSampler(Sampler[int]):
    """Random permutation of ``range(n)`` that depends only on ``(seed, epoch)``.

    The default ``RandomSampler`` draws from the global RNG, whose state a checkpoint does not hold,
    so a resumed run would shuffle differently. Lightning calls :meth:`set_epoch` at the start of every
    epoch (as it does for ``DistributedSampler``), which makes the order a pure function of the epoch.
    Under DDP, DataModules hand Lightning a plain shuffled loader instead and let it inject
    ``DistributedSampler``, which is seeded the same way.

    Args:
        n: dataset length.
        seed: base seed; the permutation of epoch ``e`` uses ``seed + e``.
    """

    def __init__(self, n: int, seed: int = 0) -> None:
        self.n = n
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


def seeded_split(n: int, holdout: int, seed: int, labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(n)`` into ``(keep, holdout)`` index arrays, reproducibly.

    With ``labels`` the split is stratified: each class contributes to the held-out part in proportion
    to its size (largest-remainder rounding), so a 1,000-image test split of a balanced set is balanced.

    Args:
        n: number of items.
        holdout: size of the held-out part.
        seed: seed of the NumPy generator that decides the split.
        labels: optional class label per item, for a stratified split.

    Returns:
        Sorted index arrays ``keep`` and ``held_out``; disjoint, together ``range(n)``.
    """
    if not 0 <= holdout <= n:
        raise ValueError(f"cannot hold out {holdout} of {n} items")
    rng = np.random.default_rng(seed)
    if labels is None:
        perm = rng.permutation(n)
        held = perm[:holdout]
    else:
        labels = np.asarray(labels)
        classes, counts = np.unique(labels, return_counts=True)
        exact = counts * holdout / n
        take = np.floor(exact).astype(int)
        for i in np.argsort(-(exact - take), kind="stable")[: holdout - take.sum()]:
            take[i] += 1
        held = np.concatenate(
            [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take, strict=True)]
        )
    mask = np.zeros(n, dtype=bool)
    mask[held] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)
