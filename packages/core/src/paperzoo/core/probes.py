"""A tiny LightningModule and DataModule that probe the training mechanics in tests.

They are small enough to train in a second, and record what they saw: the sample indices each rank
trained on (to check DDP sharding), a metric equal to the process rank (to check cross-rank
reduction), and an optional NaN injected at a given step (to check the non-finite-loss guard). They
also carry dropout, so a resumed run only matches an uninterrupted one if the RNG state is restored.
"""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from paperzoo.core.data.sampling import EpochSeededSampler
from paperzoo.core.modules.base import PaperzooModule


def _probe_optimizer(params) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=0.05)


class RegressionDataModule(L.LightningDataModule):
    """``n`` noisy samples of a fixed linear map, served as ``(index, x, y)``.

    Args:
        n: number of training samples (validation and test use ``n // 4`` more each).
        dim: input dimension.
        batch_size: per-device batch size.
        seed: seed of the data and of the shuffling.
    """

    def __init__(self, n: int = 64, dim: int = 8, batch_size: int = 8, seed: int = 0) -> None:
        super().__init__()
        self.save_hyperparameters()
        g = torch.Generator().manual_seed(seed)
        total = n + 2 * (n // 4)
        x = torch.randn(total, dim, generator=g)
        w = torch.randn(dim, 1, generator=g)
        y = x @ w + 0.1 * torch.randn(total, 1, generator=g)
        idx = torch.arange(total)
        self.train_set = TensorDataset(idx[:n], x[:n], y[:n])
        self.val_set = TensorDataset(idx[n : n + n // 4], x[n : n + n // 4], y[n : n + n // 4])
        self.test_set = TensorDataset(idx[n + n // 4 :], x[n + n // 4 :], y[n + n // 4 :])

    def train_dataloader(self) -> DataLoader:
        if self.trainer is not None and self.trainer.world_size > 1:
            return DataLoader(self.train_set, batch_size=self.hparams.batch_size, shuffle=True)
        sampler = EpochSeededSampler(len(self.train_set), self.hparams.seed)
        return DataLoader(self.train_set, batch_size=self.hparams.batch_size, sampler=sampler)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.hparams.batch_size)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.test_set, batch_size=self.hparams.batch_size)


class ProbeModule(PaperzooModule):
    """A two-layer MLP with dropout that records what it trained on.

    Args:
        dim: input dimension.
        hidden: hidden width.
        dropout: dropout probability (randomness that only a restored RNG state reproduces).
        nan_at_step: make the training loss NaN at this global step (None: never).
        optimizer: see :class:`~paperzoo.core.modules.PaperzooModule`.
        lr_scheduler: see :class:`~paperzoo.core.modules.PaperzooModule`.
    """

    def __init__(
        self,
        dim: int = 8,
        hidden: int = 16,
        dropout: float = 0.2,
        nan_at_step: int | None = None,
        optimizer: OptimizerCallable = _probe_optimizer,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__(optimizer=optimizer, lr_scheduler=lr_scheduler)
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 1))
        self.nan_at_step = nan_at_step
        self.seen: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        idx, x, y = batch
        self.seen.extend(idx.tolist())
        loss = F.mse_loss(self(x), y)
        if self.nan_at_step is not None and self.global_step == self.nan_at_step:
            loss = loss * float("nan")
        self.log("train/loss", loss, on_step=True, on_epoch=True)
        self.log("train/rank", float(self.global_rank), on_step=False, on_epoch=True, sync_dist=True)
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        _, x, y = batch
        self.log("val/loss", F.mse_loss(self(x), y), sync_dist=True)

    def test_step(self, batch, batch_idx: int) -> None:
        _, x, y = batch
        self.log("test/loss", F.mse_loss(self(x), y), sync_dist=True)

    def on_train_end(self) -> None:
        log_dir = self.trainer.log_dir
        if log_dir:
            path = Path(log_dir) / f"seen_rank{self.global_rank}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(self.seen))
