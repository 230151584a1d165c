"""Graph-level prediction: one output per graph of a mini-batch of graphs (molecules), regression or classification."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
import torchmetrics
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn
from torch_geometric.data import Batch

from paperzoo.core.errors import ConfigError
from paperzoo.core.modules.base import PaperzooModule


def _default_optimizer(params) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=1e-3)


def _graph_forward(network: nn.Module, batch: Batch) -> Tensor:
    """The network's graph-level output for a PyG batch: ``network(x, edge_index, edge_attr, batch)``."""
    return network(batch.x, batch.edge_index, batch.edge_attr, batch.batch)


def _check_channels(network: nn.Module, datamodule, pairs: tuple[tuple[str, str], ...]) -> None:
    for ours, theirs in pairs:
        wanted, have = getattr(datamodule, theirs, None), getattr(network, ours, None)
        if wanted is not None and have is not None and int(wanted) != int(have):
            raise ConfigError(
                f"the network has {ours}={have} but the data has {theirs}={wanted}; "
                f"set model.init_args.network.init_args.{ours} to {wanted}"
            )


_INPUTS = (("in_channels", "num_features"), ("edge_channels", "num_edge_features"))


class GraphRegressor(PaperzooModule):
    """Graph-level regression, e.g. the MPNN of Gilmer et al. 2017 predicting QM9's quantum-chemical properties.

    Batches are PyTorch Geometric :class:`~torch_geometric.data.Batch` objects (``x``, ``edge_index``,
    ``edge_attr``, ``batch`` and ``y`` of shape ``(num_graphs, num_targets)``); the network maps ``(x, edge_index,
    edge_attr, batch)`` to ``(num_graphs, num_targets)``. The data module standardises the targets with the training
    set's mean and standard deviation (``target_mean``, ``target_std``); the module trains on the standardised
    targets with the mean squared error, as Gilmer et al. do, and reports the mean absolute error in the targets'
    own units: ``{val,test}/mae`` (the mean over targets) and, with several targets, ``{val,test}/mae_<name>`` per
    target. The statistics are buffers, so a checkpoint carries them.

    Args:
        network: the graph-level model; its ``in_channels``, ``edge_channels`` and ``out_channels``, where it has
            them, are checked against the data's ``num_features``, ``num_edge_features`` and ``num_targets``.
        optimizer: see :class:`~paperzoo.core.modules.PaperzooModule`; default Adam(lr 1e-3).
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
        num_targets = int(getattr(network, "out_channels", 1))
        # NaN until the data module's statistics arrive, so a forgotten de-standardisation cannot pass silently.
        self.register_buffer("target_mean", torch.full((num_targets,), float("nan")))
        self.register_buffer("target_std", torch.full((num_targets,), float("nan")))
        self.target_names: list[str] = [f"target{i}" for i in range(num_targets)]
        self.mae = nn.ModuleDict(
            {f"{stage}_mae": torchmetrics.MeanMetric() for stage in ("val", "test")}
            | {
                f"{stage}_{i}": torchmetrics.MeanMetric()
                for stage in ("val", "test")
                for i in range(num_targets if num_targets > 1 else 0)
            }
        )

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is None:
            return
        _check_channels(self.network, datamodule, (*_INPUTS, ("out_channels", "num_targets")))
        for name in ("target_mean", "target_std"):
            value = getattr(datamodule, name, None)
            if value is not None:
                getattr(self, name).copy_(torch.as_tensor(value, dtype=torch.float32).reshape(-1))
        names = getattr(datamodule, "target_names", None)
        if names is not None:
            self.target_names = [str(n) for n in names]

    def forward(self, batch: Batch) -> Tensor:
        """Predictions for the graphs of ``batch`` in the targets' own units."""
        return _graph_forward(self.network, batch) * self.target_std + self.target_mean

    def _step(self, batch: Batch, stage: str) -> Tensor:
        standardised = _graph_forward(self.network, batch)
        target = batch.y.reshape(standardised.shape)
        loss = F.mse_loss(standardised, target)
        graphs = standardised.shape[0]
        self.log(f"{stage}/loss", loss, on_step=stage == "train", on_epoch=True, prog_bar=True, batch_size=graphs)
        if stage == "train":
            return loss
        if torch.isnan(self.target_std).any():
            raise ConfigError(
                "GraphRegressor has no target statistics: its data module must expose target_mean and target_std"
            )
        error = ((standardised - target) * self.target_std).abs()  # (graphs, targets), in the targets' units
        self.mae[f"{stage}_mae"].update(error.mean(dim=1))
        self.log(
            f"{stage}/mae", self.mae[f"{stage}_mae"], on_step=False, on_epoch=True, prog_bar=True, batch_size=graphs
        )
        if error.shape[1] > 1:
            for i, name in enumerate(self.target_names):
                metric = self.mae[f"{stage}_{i}"]
                metric.update(error[:, i])
                self.log(f"{stage}/mae_{name}", metric, on_step=False, on_epoch=True, batch_size=graphs)
        return loss

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._step(batch, "test")

    def predict_step(self, batch: Batch, batch_idx: int) -> Tensor:
        return self(batch)


class GraphClassifier(PaperzooModule):
    """Graph-level classification with cross-entropy (e.g. molecule activity, the TU benchmarks).

    Batches are PyTorch Geometric :class:`~torch_geometric.data.Batch` objects with one integer label per graph in
    ``y``; the network maps ``(x, edge_index, edge_attr, batch)`` to ``(num_graphs, num_classes)`` logits. Logs
    ``{train,val,test}/loss`` and ``/acc`` (a fraction).

    Args:
        network: the graph-level model; its ``in_channels``, ``edge_channels`` and ``out_channels``, where it has
            them, are checked against the data's ``num_features``, ``num_edge_features`` and ``num_classes``.
        optimizer: see :class:`~paperzoo.core.modules.PaperzooModule`; default Adam(lr 1e-3).
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
        if datamodule is not None:
            _check_channels(self.network, datamodule, (*_INPUTS, ("out_channels", "num_classes")))

    def forward(self, batch: Batch) -> Tensor:
        return _graph_forward(self.network, batch)

    def _step(self, batch: Batch, stage: str) -> Tensor:
        logits = self(batch)
        labels = batch.y.reshape(-1).long()
        loss = F.cross_entropy(logits, labels)
        graphs = logits.shape[0]
        self.log(f"{stage}/loss", loss, on_step=stage == "train", on_epoch=True, prog_bar=True, batch_size=graphs)
        metric = self.accuracy[f"{stage}_acc"]
        metric.update(logits.argmax(dim=-1).eq(labels).float())
        self.log(f"{stage}/acc", metric, on_step=False, on_epoch=True, prog_bar=True, batch_size=graphs)
        return loss

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._step(batch, "test")

    def predict_step(self, batch: Batch, batch_idx: int) -> Tensor:
        return torch.softmax(self(batch), dim=-1)
