"""The loaders shared by DataModules whose splits are fixed datasets: a seeded, resumable training order."""

from __future__ import annotations

from typing import ClassVar

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from paperzoo.core.data.sampling import EpochSeededSampler, run_seed


class SeededLoaderDataModule(pl.LightningDataModule):
    """The loaders of a DataModule with fixed training, validation and test sets: a training order seeded by
    ``(seed, run seed, epoch)``, so a resumed run sees the batches an uninterrupted one would, and evaluation sets in
    order. The image DataModules of the vision package and the molecule DataModules of the graph package share it.

    Subclasses set ``train_set``, ``val_set`` and ``test_set`` in ``setup`` and ``batch_size``,
    ``eval_batch_size``, ``num_workers`` and ``seed`` in ``__init__``; ``loader_class`` is the DataLoader that
    batches them (PyTorch Geometric's, for graphs), and :meth:`collate_fn` how (the loader's default when None;
    padded token batches for text).
    """

    loader_class: ClassVar[type[DataLoader]] = DataLoader

    def train_dataloader(self) -> DataLoader:
        """Shuffled by ``(seed, run seed, epoch)`` on one device; under DDP Lightning injects its
        DistributedSampler, seeded by the run seed and the epoch."""
        if self.trainer is None or self.trainer.world_size == 1:
            order_seed = int(np.random.SeedSequence((self.seed, run_seed())).generate_state(1)[0])
            sampler = EpochSeededSampler(len(self.train_set), order_seed)
            return self._loader(self.train_set, self.batch_size, sampler=sampler)
        return self._loader(self.train_set, self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, self.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, self.eval_batch_size)

    def predict_dataloader(self) -> DataLoader:
        """The test set, in order."""
        return self._loader(self.test_set, self.eval_batch_size)

    def collate_fn(self):
        """The loaders' ``collate_fn``; None for the loader's default. Must be picklable for worker processes."""
        return None

    def _loader(self, dataset: Dataset, batch_size: int, **kwargs) -> DataLoader:
        collate = self.collate_fn()
        if collate is not None:
            kwargs["collate_fn"] = collate
        return self.loader_class(
            dataset,
            batch_size=batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
            **kwargs,
        )
