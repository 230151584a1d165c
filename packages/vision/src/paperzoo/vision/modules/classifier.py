"""Image classification: any network injected by ``class_path``, trained with cross-entropy."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
import torchmetrics
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn

from paperzoo.core.errors import ConfigError
from paperzoo.core.modules.base import PaperzooModule, _default_optimizer


class ImageClassifier(PaperzooModule):
    """Supervised image classification (the training protocol of LeNet-5, ResNet and their successors).

    The network is a plain ``nn.Module`` given in the config; this module adds the loss (cross-entropy
    with optional label smoothing, Szegedy et al. 2016), top-1/top-5 accuracy from torchmetrics, and
    the injected optimiser and schedule. It logs ``{train,val,test}/loss``, ``/acc`` and ``/acc5``
    (fractions in [0, 1]).

    A network with auxiliary classifiers (GoogLeNet, Szegedy et al. 2015) returns a tuple
    ``(logits, *aux_logits)`` in training mode; each auxiliary cross-entropy is added to the loss with
    weight ``aux_weight``, and the metrics use the main logits.

    Args:
        network: the classifier; it must map ``(B, C, H, W)`` images to ``(B, num_classes)`` logits, or in
            training mode to a tuple of such logits with the main ones first, and expose ``num_classes``.
        label_smoothing: the cross-entropy's label smoothing (0 for none).
        aux_weight: weight of each auxiliary classifier's loss (0.3 in Szegedy et al. 2015).
        optimizer: see :class:`~paperzoo.core.modules.PaperzooModule`.
        lr_scheduler: see :class:`~paperzoo.core.modules.PaperzooModule`.
        scheduler_interval: see :class:`~paperzoo.core.modules.PaperzooModule`.
    """

    def __init__(
        self,
        network: nn.Module,
        label_smoothing: float = 0.0,
        aux_weight: float = 0.3,
        optimizer: OptimizerCallable = _default_optimizer,
        lr_scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: Literal["step", "epoch"] = "step",
    ) -> None:
        super().__init__(optimizer=optimizer, lr_scheduler=lr_scheduler, scheduler_interval=scheduler_interval)
        self.save_hyperparameters(ignore=["network", "optimizer", "lr_scheduler"])
        self.network = network
        self.num_classes = int(network.num_classes)
        self.label_smoothing = label_smoothing
        self.aux_weight = aux_weight
        top_k = min(5, self.num_classes)
        self.metrics = nn.ModuleDict(
            {
                f"{stage}_{name}": torchmetrics.Accuracy(task="multiclass", num_classes=self.num_classes, top_k=k)
                for stage in ("train", "val", "test")
                for name, k in (("acc", 1), ("acc5", top_k))
            }
        )

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        data_classes = getattr(datamodule, "num_classes", None)
        if data_classes is not None and data_classes != self.num_classes:
            raise ConfigError(
                f"the network has {self.num_classes} outputs but the data has {data_classes} classes; "
                f"set model.init_args.network.init_args.num_classes to {data_classes}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        return self.network(x)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        x, y = batch
        output = self(x)
        logits, *aux_logits = output if isinstance(output, tuple) else (output,)
        label_smoothing = self.label_smoothing if stage == "train" else 0.0
        loss = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
        for aux in aux_logits:
            loss = loss + self.aux_weight * F.cross_entropy(aux, y, label_smoothing=label_smoothing)
        on_step = stage == "train"
        self.log(f"{stage}/loss", loss, on_step=on_step, on_epoch=True, prog_bar=True, sync_dist=not on_step)
        for name in ("acc", "acc5"):
            metric = self.metrics[f"{stage}_{name}"]
            metric(logits, y)
            self.log(f"{stage}/{name}", metric, on_step=False, on_epoch=True, prog_bar=name == "acc")
        return loss

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "test")

    def predict_step(self, batch, batch_idx: int) -> torch.Tensor:
        x = batch[0] if isinstance(batch, list | tuple) else batch
        return self(x).softmax(dim=-1)
