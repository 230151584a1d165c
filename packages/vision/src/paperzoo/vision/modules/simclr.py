"""SimCLR: contrastive self-supervised pre-training of any paperzoo vision network, monitored by k-NN accuracy."""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import torch
import torchmetrics
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from paperzoo.core.data import run_seed
from paperzoo.core.modules.base import PaperzooModule, _default_optimizer
from paperzoo.vision.data.simclr import SimCLRAugmentation
from paperzoo.vision.knn import feature_bank, knn_predict
from paperzoo.vision.layers.pooling import pooled_features
from paperzoo.vision.losses import NTXentLoss

log = logging.getLogger(__name__)

_STAGE_KEYS = {"train": 0, "val": 1, "test": 2}


class ProjectionHead(nn.Module):
    r"""The projection head of Chen et al. 2020 (SimCLR), section 2.1: an MLP with one hidden layer.

    .. math::
        z = g(h) = W^{(2)} \sigma(W^{(1)} h)

    with :math:`\sigma` a ReLU. The contrastive loss is computed on :math:`z`; the representation kept for downstream
    tasks is :math:`h`, before the head (section 4.2 shows that :math:`h` is the better one).

    Args:
        in_features: width of :math:`h`.
        hidden_features: width of the hidden layer (the paper keeps the encoder's width, 2048 for ResNet-50).
        out_features: width of :math:`z` (128 in the paper).

    Shapes:
        - input: :math:`(B, \text{in\_features})`
        - output: :math:`(B, \text{out\_features})`
    """

    def __init__(self, in_features: int, hidden_features: int, out_features: int = 128) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(hidden_features, out_features)

    def forward(self, h: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(h)))  # (B, out_features)


class SimCLR(PaperzooModule):
    """Chen et al. 2020, "A Simple Framework for Contrastive Learning of Visual Representations" (SimCLR), Algorithm 1.

    Every training image is augmented twice (:class:`~paperzoo.vision.data.simclr.SimCLRAugmentation`), both views go
    through the encoder ``f`` (the network's pooled ``forward_features``,
    :func:`~paperzoo.vision.layers.pooling.pooled_features`) and the projection head ``g``
    (:class:`ProjectionHead`), and the NT-Xent loss (:func:`~paperzoo.vision.losses.nt_xent_loss`) pulls the two
    views of an image together and pushes the other ``2N - 2`` views of the batch away. Labels are never used for
    training. The network's own classifier head is left untouched and unused.

    The batches come normalised from an image DataModule; the augmentation works on [0, 1] pixels, so they are mapped
    back with the DataModule's ``mean`` and ``std``, augmented, and normalised again. The draws are seeded by the run
    seed and the global step (training) or the batch index (validation and test, so that ``val/loss`` compares
    epochs on the same views), so a run is reproducible and a resumed one augments as an uninterrupted one.

    For monitoring, at the start of every validation epoch the representation of up to ``knn_bank_size`` training
    images (un-augmented) fills a labelled memory bank, and each validation image is classified by a weighted k-NN
    vote over it (:func:`~paperzoo.vision.knn.knn_predict`); the test uses the whole training set. Logged:
    ``train/loss``, ``val/loss``, ``val/knn_acc``, ``test/loss`` and ``test/knn_acc`` (fractions in [0, 1]).

    Negatives come from the batch on each device: under DDP the batches are not gathered, and batch norm statistics
    are per device (the paper gathers both, "global BN", section 2.2).

    Args:
        network: the encoder: any vision model with ``forward_features`` and ``num_features``; its classifier is unused.
        projection_dim: width of the projection ``z`` (128 in the paper).
        hidden_dim: width of the head's hidden layer; None for the encoder's width, as in the paper.
        temperature: the NT-Xent temperature.
        augmentation: makes one view of a batch of [0, 1] images, called as ``augmentation(images, seed=...)``; None
            for :class:`~paperzoo.vision.data.simclr.SimCLRAugmentation` with its defaults.
        knn_k: neighbours of the k-NN monitor.
        knn_temperature: temperature of its vote weights; None for a plain majority vote.
        knn_bank_size: training images in the memory bank during validation; None for all of them.
        optimizer: see :class:`~paperzoo.core.modules.PaperzooModule`.
        lr_scheduler: see :class:`~paperzoo.core.modules.PaperzooModule`.
        scheduler_interval: see :class:`~paperzoo.core.modules.PaperzooModule`.
    """

    def __init__(
        self,
        network: nn.Module,
        projection_dim: int = 128,
        hidden_dim: int | None = None,
        temperature: float = 0.5,
        augmentation: nn.Module | None = None,
        knn_k: int = 200,
        knn_temperature: float | None = 0.1,
        knn_bank_size: int | None = 10000,
        optimizer: OptimizerCallable = _default_optimizer,
        lr_scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: Literal["step", "epoch"] = "step",
    ) -> None:
        super().__init__(optimizer=optimizer, lr_scheduler=lr_scheduler, scheduler_interval=scheduler_interval)
        self.save_hyperparameters(ignore=["network", "augmentation", "optimizer", "lr_scheduler"])
        self.network = network
        width = int(network.num_features)
        self.projector = ProjectionHead(width, hidden_dim or width, projection_dim)
        self.criterion = NTXentLoss(temperature)
        self.augmentation = augmentation if augmentation is not None else SimCLRAugmentation()
        self.knn_k = knn_k
        self.knn_temperature = knn_temperature
        self.knn_bank_size = knn_bank_size
        self.knn_acc = nn.ModuleDict({f"{stage}_knn_acc": torchmetrics.MeanMetric() for stage in ("val", "test")})
        self.input_mean: tuple[float, ...] = (0.0,)
        self.input_std: tuple[float, ...] = (1.0,)
        self._bank: tuple[Tensor, Tensor, int] | None = None

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        self.input_mean = tuple(getattr(datamodule, "mean", (0.0,)))
        self.input_std = tuple(getattr(datamodule, "std", (1.0,)))

    def forward(self, x: Tensor) -> Tensor:
        """The representation ``h`` (what downstream tasks use): ``(B, num_features)``."""
        return pooled_features(self.network, x)

    def project(self, x: Tensor) -> Tensor:
        """The projection ``z = g(h)`` the loss is computed on: ``(B, projection_dim)``."""
        return self.projector(self(x))

    def views(self, x: Tensor, seed: int | None = None) -> tuple[Tensor, Tensor]:
        """Two augmented views of a normalised batch, normalised the same way.

        Args:
            x: a batch normalised with ``(x - input_mean) / input_std``.
            seed: seeds the augmentation; None draws from the global generator.
        """
        mean = torch.tensor(self.input_mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.input_std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        pixels = (x * std + mean).clamp(0, 1)  # (B, C, H, W) in [0, 1]
        views = self.augmentation(torch.cat([pixels, pixels]), seed=seed)  # (2B, C, H, W), all draws independent
        return ((views - mean) / std).chunk(2)

    def contrastive_loss(self, x: Tensor, seed: int | None = None) -> Tensor:
        """NT-Xent of two augmented views of ``x`` (see :meth:`views`)."""
        x1, x2 = self.views(x, seed)
        z = self.project(torch.cat([x1, x2]))  # (2B, projection_dim): one pass, so batch norm sees both views
        return self.criterion(*z.chunk(2))

    def augmentation_seed(self, stage: str, index: int) -> int:
        """The seed of the views of training step ``index`` or of evaluation batch ``index``."""
        rank = self.trainer.global_rank if self._trainer is not None else 0
        entropy = (run_seed(), _STAGE_KEYS[stage], index, rank)
        return int(np.random.SeedSequence(entropy).generate_state(1)[0])

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, _ = batch  # the labels are not used
        loss = self.contrastive_loss(x, self.augmentation_seed("train", self.global_step))
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True)
        return loss

    def _evaluate(self, batch: tuple[Tensor, Tensor], batch_idx: int, stage: str) -> None:
        x, y = batch
        loss = self.contrastive_loss(x, self.augmentation_seed(stage, batch_idx))
        self.log(f"{stage}/loss", loss, on_epoch=True, prog_bar=True, sync_dist=True)
        if self._bank is None:
            return
        bank, bank_labels, num_classes = self._bank
        scores = knn_predict(self(x), bank, bank_labels, num_classes, self.knn_k, self.knn_temperature)
        metric = self.knn_acc[f"{stage}_knn_acc"]
        metric.update((scores.argmax(dim=1) == y).float())
        self.log(f"{stage}/knn_acc", metric, on_epoch=True, prog_bar=True)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "test")

    def on_validation_epoch_start(self) -> None:
        self._bank = training_feature_bank(self, self.network, self.knn_bank_size)

    def on_test_epoch_start(self) -> None:
        self._bank = training_feature_bank(self, self.network, None)

    def on_validation_epoch_end(self) -> None:
        self._bank = None

    def on_test_epoch_end(self) -> None:
        self._bank = None


def training_feature_bank(
    module: PaperzooModule, network: nn.Module, max_samples: int | None
) -> tuple[Tensor, Tensor, int] | None:
    """The k-NN memory bank of a module being evaluated: the pooled features of the DataModule's training images.

    The images go through the DataModule's ``on_after_batch_transfer`` with the trainer out of training, so they are
    normalised but not augmented. Returns ``(features, labels, num_classes)``, or None (with a warning) when the
    trainer has no DataModule to read the training set from.
    """
    datamodule = getattr(module.trainer, "datamodule", None)
    if datamodule is None:
        log.warning("no DataModule, so no training set for the k-NN memory bank: k-NN accuracy is not logged")
        return None
    bank, labels = feature_bank(
        network,
        datamodule.train_dataloader(),
        module.device,
        transform=lambda batch: datamodule.on_after_batch_transfer(batch, 0),
        max_samples=max_samples,
    )
    num_classes = int(getattr(datamodule, "num_classes", 0) or labels.max().item() + 1)
    return bank, labels, num_classes
