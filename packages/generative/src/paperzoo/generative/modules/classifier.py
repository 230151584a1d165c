"""A plain image classifier, for the feature network of the offline sample metrics."""

from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
import torchmetrics
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from paperzoo.core.modules.base import PaperzooModule, _default_optimizer


class FeatureClassifierModule(PaperzooModule):
    """Trains the classifier whose features the offline FID, KID and Inception Score read
    (:class:`~paperzoo.generative.models.features.FeatureClassifier`), with cross-entropy; logs
    ``{train,val,test}/loss`` and ``/acc``.

    Args:
        network: the classifier, mapping ``(B, C, H, W)`` images in ``[-1, 1]`` to ``(B, num_classes)`` logits and
            exposing ``num_classes``.
        optimizer: see :class:`~paperzoo.core.modules.PaperzooModule`.
        lr_scheduler: see :class:`~paperzoo.core.modules.PaperzooModule`.
        scheduler_interval: see :class:`~paperzoo.core.modules.PaperzooModule`.
    """

    def __init__(
        self,
        network: nn.Module,
        optimizer: OptimizerCallable = _default_optimizer,
        lr_scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: Literal["step", "epoch"] = "step",
    ) -> None:
        super().__init__(optimizer=optimizer, lr_scheduler=lr_scheduler, scheduler_interval=scheduler_interval)
        self.save_hyperparameters(ignore=["network", "optimizer", "lr_scheduler"])
        self.network = network
        self.accuracy = nn.ModuleDict(
            {
                f"{stage}_acc": torchmetrics.Accuracy(task="multiclass", num_classes=int(network.num_classes))
                for stage in ("train", "val", "test")
            }
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.network(x)

    def _step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        images, labels = batch
        logits = self.network(images)
        loss = F.cross_entropy(logits, labels)
        accuracy = self.accuracy[f"{stage}_acc"]
        accuracy(logits, labels)
        self.log(f"{stage}/loss", loss, prog_bar=stage != "train", on_epoch=True, on_step=stage == "train")
        self.log(f"{stage}/acc", accuracy, prog_bar=True, on_epoch=True, on_step=False)
        return loss

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, "test")
