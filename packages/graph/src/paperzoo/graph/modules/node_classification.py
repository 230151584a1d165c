"""Semi-supervised node classification: one graph, a few labelled nodes, cross-entropy on the labelled ones only."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
import torchmetrics
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn
from torch_geometric.data import Data

from paperzoo.core.errors import ConfigError
from paperzoo.core.modules.base import PaperzooModule


def _default_optimizer(params) -> torch.optim.Optimizer:
    # Kipf & Welling 2017 and Velickovic et al. 2018 both train with Adam and an L2 penalty of 5e-4.
    return torch.optim.Adam(params, lr=0.01, weight_decay=5e-4)


class NodeClassifier(PaperzooModule):
    """Transductive node classification as in Kipf & Welling 2017 (GCN) and Velickovic et al. 2018 (GAT).

    A batch is a PyTorch Geometric :class:`~torch_geometric.data.Data` graph with ``x``, ``edge_index``, ``y`` and
    boolean ``train_mask``, ``val_mask`` and ``test_mask``. The network sees the whole graph (every node's features
    and every edge) and the loss and accuracy are computed on the nodes of the stage's mask only, so the unlabelled
    nodes still shape the labelled ones' representations: that is the semi-supervised setting of the papers.

    A mini-batch from PyG's neighbour sampling carries ``batch_size``: its first ``batch_size`` nodes are the seed
    nodes the batch was drawn for, and only they are scored (the sampled neighbours are there to be aggregated).

    The module logs ``{train,val,test}/loss`` (cross-entropy) and ``{train,val,test}/acc`` (a fraction). The papers
    keep the parameters of the epoch with the best validation score and report the test accuracy of those: set the
    run's ``checkpoint`` to monitor ``val/acc`` (or ``val/loss``), and ``paperzoo run`` tests that checkpoint. The
    patience of GAT's early stopping is a Lightning ``EarlyStopping`` callback in the config.

    Args:
        network: maps ``(x, edge_index)`` to ``(N, num_classes)`` logits; its ``in_channels`` and ``out_channels``,
            where it has them, are checked against the data's ``num_features`` and ``num_classes``.
        optimizer: see :class:`~paperzoo.core.modules.PaperzooModule`; default Adam(lr 0.01, weight decay 5e-4).
        lr_scheduler: see :class:`~paperzoo.core.modules.PaperzooModule`.
        scheduler_interval: see :class:`~paperzoo.core.modules.PaperzooModule`.
    """

    def __init__(
        self,
        network: nn.Module,
        optimizer: OptimizerCallable = _default_optimizer,
        lr_scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: Literal["step", "epoch"] = "epoch",
    ) -> None:
        super().__init__(optimizer=optimizer, lr_scheduler=lr_scheduler, scheduler_interval=scheduler_interval)
        self.save_hyperparameters(ignore=["network", "optimizer", "lr_scheduler"])
        self.network = network
        self.accuracy = nn.ModuleDict({f"{stage}_acc": torchmetrics.MeanMetric() for stage in ("train", "val", "test")})

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is None:
            return
        for ours, theirs in (("in_channels", "num_features"), ("out_channels", "num_classes")):
            wanted, have = getattr(datamodule, theirs, None), getattr(self.network, ours, None)
            if wanted is not None and have is not None and int(wanted) != int(have):
                raise ConfigError(
                    f"the network has {ours}={have} but the data has {theirs}={wanted}; "
                    f"set model.init_args.network.init_args.{ours} to {wanted}"
                )

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return self.network(x, edge_index)

    @staticmethod
    def _scored_nodes(batch: Data, stage: str) -> Tensor:
        """The nodes whose predictions count in ``stage``: the stage's mask, restricted to the seed nodes of a
        neighbour-sampled batch."""
        mask = batch[f"{stage}_mask"]
        seeds = getattr(batch, "batch_size", None)
        if seeds is not None:
            mask = mask.clone()
            mask[int(seeds) :] = False
        return mask

    def _step(self, batch: Data, stage: str) -> Tensor:
        logits = self(batch.x, batch.edge_index)
        mask = self._scored_nodes(batch, stage)
        count = int(mask.sum())
        if count == 0:
            raise ConfigError(f"the {stage} batch has no {stage}_mask nodes to score; check the data module's split")
        logits, labels = logits[mask], batch.y[mask]
        loss = F.cross_entropy(logits, labels)
        on_step = stage == "train"
        self.log(f"{stage}/loss", loss, on_step=on_step, on_epoch=True, prog_bar=stage != "test", batch_size=count)
        # The mean of per-node hits over the epoch: exact however the scored nodes are spread over batches.
        metric = self.accuracy[f"{stage}_acc"]
        metric.update(logits.argmax(dim=-1).eq(labels).float())
        self.log(f"{stage}/acc", metric, on_step=False, on_epoch=True, prog_bar=True, batch_size=count)
        return loss

    def training_step(self, batch: Data, batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: Data, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: Data, batch_idx: int) -> None:
        self._step(batch, "test")

    def predict_step(self, batch: Data, batch_idx: int) -> Tensor:
        return torch.softmax(self(batch.x, batch.edge_index), dim=-1)
