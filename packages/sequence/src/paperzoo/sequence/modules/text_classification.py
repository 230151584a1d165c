"""Sentence classification: a network over padded token ids with their lengths, trained with cross-entropy."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
import torchmetrics
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from paperzoo.core.errors import ConfigError
from paperzoo.core.modules.base import PaperzooModule, _default_optimizer

Batch = tuple[Tensor, Tensor, Tensor]


class TextClassifier(PaperzooModule):
    """Supervised sentence classification, e.g. the BiLSTM of Graves & Schmidhuber 2005 on review polarity.

    Batches are ``(tokens (B, T), lengths (B,), labels (B,))`` as :class:`~paperzoo.sequence.data.
    RottenTomatoesDataModule` serves them; the network maps ``(tokens, lengths)`` to ``(B, num_classes)`` logits.
    The module logs ``{train,val,test}/loss`` (cross-entropy) and ``/acc`` (torchmetrics accuracy, a fraction). When
    the data module names the training split's ``majority_class``, it also logs ``{val,test}/majority_acc``, the
    accuracy of predicting that class for every sentence: the trivial baseline to beat.

    Args:
        network: the classifier; it must expose ``num_classes`` and, to be checked against the data, ``vocab_size``.
        label_smoothing: the training cross-entropy's label smoothing (Szegedy et al. 2016); 0 for none.
        optimizer: see :class:`~paperzoo.core.modules.PaperzooModule`.
        lr_scheduler: see :class:`~paperzoo.core.modules.PaperzooModule`.
        scheduler_interval: see :class:`~paperzoo.core.modules.PaperzooModule`.
    """

    def __init__(
        self,
        network: nn.Module,
        label_smoothing: float = 0.0,
        optimizer: OptimizerCallable = _default_optimizer,
        lr_scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: Literal["step", "epoch"] = "step",
    ) -> None:
        super().__init__(optimizer=optimizer, lr_scheduler=lr_scheduler, scheduler_interval=scheduler_interval)
        self.save_hyperparameters(ignore=["network", "optimizer", "lr_scheduler"])
        self.network = network
        self.num_classes = int(network.num_classes)
        self.label_smoothing = label_smoothing
        self.majority_class: int | None = None
        self.metrics = nn.ModuleDict(
            {
                f"{stage}_acc": torchmetrics.Accuracy(task="multiclass", num_classes=self.num_classes)
                for stage in ("train", "val", "test")
            }
        )
        self.baselines = nn.ModuleDict(
            {f"{stage}_majority_acc": torchmetrics.MeanMetric() for stage in ("val", "test")}
        )

    def setup(self, stage: str) -> None:
        # Lightning sets the data module up first, so its vocabulary and training split exist here.
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is None:
            return
        data_classes = getattr(datamodule, "num_classes", None)
        if data_classes is not None and data_classes != self.num_classes:
            raise ConfigError(
                f"the network has {self.num_classes} outputs but the data has {data_classes} classes; "
                f"set model.init_args.network.init_args.num_classes to {data_classes}"
            )
        data_vocab = getattr(datamodule, "vocab_size", None)
        network_vocab = getattr(self.network, "vocab_size", None)
        if data_vocab is not None and network_vocab is not None and data_vocab > network_vocab:
            raise ConfigError(
                f"the data's vocabulary has {data_vocab} tokens but the network embeds only {network_vocab}; "
                f"set model.init_args.network.init_args.vocab_size to at least {data_vocab}"
            )
        majority = getattr(datamodule, "majority_class", None)
        self.majority_class = None if majority is None else int(majority)

    def forward(self, tokens: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.network(tokens, lengths)

    def _step(self, batch: Batch, stage: str) -> tuple[Tensor, Tensor]:
        tokens, lengths, labels = batch
        logits = self(tokens, lengths)
        smoothing = self.label_smoothing if stage == "train" else 0.0
        loss = F.cross_entropy(logits, labels, label_smoothing=smoothing)
        on_step = stage == "train"
        batch_size = len(labels)
        self.log(f"{stage}/loss", loss, on_step=on_step, on_epoch=True, prog_bar=True, batch_size=batch_size)
        accuracy = self.metrics[f"{stage}_acc"]
        accuracy(logits, labels)
        self.log(f"{stage}/acc", accuracy, on_step=False, on_epoch=True, prog_bar=True, batch_size=batch_size)
        if stage != "train" and self.majority_class is not None:
            baseline = self.baselines[f"{stage}_majority_acc"]
            baseline(labels.eq(self.majority_class).float())
            self.log(f"{stage}/majority_acc", baseline, on_step=False, on_epoch=True, batch_size=batch_size)
        return loss, logits

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        return self._step(batch, "train")[0]

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._step(batch, "test")

    def predict_step(self, batch: Batch, batch_idx: int) -> Tensor:
        tokens, lengths = batch[0], batch[1]
        return torch.softmax(self(tokens, lengths), dim=-1)
