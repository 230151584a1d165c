"""Linear evaluation of a frozen encoder (self-supervised, supervised or random), with its k-NN accuracy."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
import torchmetrics
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from paperzoo.core.checkpoint import newest_file, read_checkpoint
from paperzoo.core.errors import ConfigError
from paperzoo.core.modules.base import PaperzooModule, _default_optimizer
from paperzoo.vision.knn import knn_predict
from paperzoo.vision.layers.pooling import pooled_features
from paperzoo.vision.modules.simclr import training_feature_bank


def resolve_checkpoint(checkpoint: str, checkpoint_from: str | None = None) -> Path:
    """The file ``checkpoint`` names: a path, or a glob pattern whose most recently written match is taken.

    Args:
        checkpoint: a path or a pattern such as ``runs/simclr-fashionmnist/version_*/checkpoints/last.ckpt``.
        checkpoint_from: the experiment that writes the checkpoint, named in the error when there is none.

    Raises:
        ConfigError: nothing matches.
    """
    path = newest_file(checkpoint)
    if path is None:
        first = f"run `paperzoo run {checkpoint_from}` first" if checkpoint_from else "train the encoder first"
        raise ConfigError(
            f"no encoder checkpoint at {checkpoint}: {first}, or pass one as --model.init_args.checkpoint=PATH"
        )
    return path


def load_encoder_weights(network: nn.Module, checkpoint: str, checkpoint_from: str | None = None) -> Path:
    """Load into ``network`` the encoder weights of a paperzoo checkpoint.

    :class:`~paperzoo.vision.modules.simclr.SimCLR` and :class:`~paperzoo.vision.ImageClassifier` both keep their
    network under ``network.``, so either kind of checkpoint works; the weights must fit ``network`` exactly.

    Args:
        network: the encoder, built with the architecture the checkpoint was trained with.
        checkpoint: a path or glob pattern (see :func:`resolve_checkpoint`).
        checkpoint_from: the experiment that writes the checkpoint, named in the error when there is none.

    Returns:
        The checkpoint file that was read.

    Raises:
        ConfigError: no file matches, it holds no ``network.`` weights, or they do not fit ``network``.
    """
    path = resolve_checkpoint(checkpoint, checkpoint_from)
    state = read_checkpoint(path)["state_dict"]
    weights = {key.removeprefix("network."): value for key, value in state.items() if key.startswith("network.")}
    if not weights:
        raise ConfigError(f"{path} holds no network.* weights: it is not a SimCLR or ImageClassifier checkpoint")
    try:
        network.load_state_dict(weights)
    except RuntimeError as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        reason = lines[min(1, len(lines) - 1)][:200]  # the first line only names the class
        raise ConfigError(
            f"the weights in {path} do not fit the configured network ({reason}); set model.init_args.network to the "
            "architecture the checkpoint was trained with"
        ) from err
    return path


class LinearProbe(PaperzooModule):
    """The linear evaluation protocol of Chen et al. 2020 (SimCLR), section 2.3 (after Zhang et al. 2016, Oord et al.
    2018 and others): a linear classifier trained on the features of a frozen encoder.

    The encoder is a vision network whose weights come from ``checkpoint``: a
    :class:`~paperzoo.vision.modules.simclr.SimCLR` checkpoint (self-supervised), an
    :class:`~paperzoo.vision.ImageClassifier` checkpoint (supervised), or none (the random initialisation, the
    baseline that shows what pre-training adds). It is frozen: no gradients, and batch norm kept in eval mode so its
    statistics do not move. Its pooled features (:func:`~paperzoo.vision.layers.pooling.pooled_features`) feed a
    linear layer, with by default a parameter-free batch norm before it (He et al. 2022, "Masked Autoencoders Are
    Scalable Vision Learners", Appendix A.3), which puts encoders whose features differ in scale on one footing
    and is still a linear map of the features once its statistics are fixed.

    It logs ``{train,val,test}/loss`` and ``/acc`` of the linear classifier, and ``test/knn_acc``: the accuracy
    of a weighted k-NN vote (:func:`~paperzoo.vision.knn.knn_predict`) over the features of every training image,
    which needs no training and so reads the encoder alone.

    Args:
        network: the encoder's architecture (the same as when the checkpoint was trained); its classifier is unused.
        checkpoint: the checkpoint to take the encoder from, a path or a glob pattern whose newest match is taken
            (``runs/simclr-fashionmnist/version_*/checkpoints/last.ckpt``), read by :meth:`setup`; None keeps the
            random initialisation.
        checkpoint_from: the experiment that writes ``checkpoint``, named in the error when it is missing.
        num_classes: outputs of the linear classifier; None for ``network.num_classes``.
        feature_norm: put a batch norm without affine parameters before the linear layer.
        knn_k: neighbours of the k-NN evaluation.
        knn_temperature: temperature of its vote weights; None for a plain majority vote.
        optimizer: see :class:`~paperzoo.core.modules.PaperzooModule`; only the classifier has gradients.
        lr_scheduler: see :class:`~paperzoo.core.modules.PaperzooModule`.
        scheduler_interval: see :class:`~paperzoo.core.modules.PaperzooModule`.
    """

    def __init__(
        self,
        network: nn.Module,
        checkpoint: str | None = None,
        checkpoint_from: str | None = None,
        num_classes: int | None = None,
        feature_norm: bool = True,
        knn_k: int = 200,
        knn_temperature: float | None = 0.1,
        optimizer: OptimizerCallable = _default_optimizer,
        lr_scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: Literal["step", "epoch"] = "step",
    ) -> None:
        super().__init__(optimizer=optimizer, lr_scheduler=lr_scheduler, scheduler_interval=scheduler_interval)
        self.save_hyperparameters(ignore=["network", "optimizer", "lr_scheduler"])
        self.network = network
        self.checkpoint = checkpoint
        self.checkpoint_from = checkpoint_from
        self.encoder_path: Path | None = None
        self.network.requires_grad_(False)
        self.network.eval()
        self.num_classes = int(num_classes if num_classes is not None else network.num_classes)
        width = int(network.num_features)
        norm = nn.BatchNorm1d(width, affine=False) if feature_norm else nn.Identity()
        self.classifier = nn.Sequential(norm, nn.Linear(width, self.num_classes))
        self.knn_k = knn_k
        self.knn_temperature = knn_temperature
        self.metrics = nn.ModuleDict(
            {
                f"{stage}_acc": torchmetrics.Accuracy(task="multiclass", num_classes=self.num_classes)
                for stage in ("train", "val", "test")
            }
        )
        self.knn_acc = torchmetrics.MeanMetric()
        self._bank: tuple[Tensor, Tensor, int] | None = None

    def train(self, mode: bool = True) -> LinearProbe:
        """Set the classifier's mode; the frozen encoder stays in eval mode."""
        super().train(mode)
        self.network.eval()
        return self

    def load_encoder(self) -> None:
        """Load the encoder's weights from ``checkpoint``, once; :meth:`setup` calls it before training or testing.

        It is not done in ``__init__`` so that the CLI reports a missing checkpoint as its own one-sentence error.

        Raises:
            ConfigError: see :func:`load_encoder_weights`.
        """
        if self.checkpoint is not None and self.encoder_path is None:
            self.encoder_path = load_encoder_weights(self.network, self.checkpoint, self.checkpoint_from)

    def setup(self, stage: str) -> None:
        self.load_encoder()
        datamodule = getattr(self.trainer, "datamodule", None)
        data_classes = getattr(datamodule, "num_classes", None)
        if data_classes is not None and data_classes != self.num_classes:
            raise ConfigError(
                f"the linear classifier has {self.num_classes} outputs but the data has {data_classes} classes; "
                f"set model.init_args.num_classes to {data_classes}"
            )

    def features(self, x: Tensor) -> Tensor:
        """The frozen encoder's pooled features: ``(B, num_features)``."""
        with torch.no_grad():
            return pooled_features(self.network, x)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))  # (B, num_classes)

    def _step(self, batch: tuple[Tensor, Tensor], stage: str) -> tuple[Tensor, Tensor]:
        x, y = batch
        h = self.features(x)
        logits = self.classifier(h)
        loss = F.cross_entropy(logits, y)
        on_step = stage == "train"
        self.log(f"{stage}/loss", loss, on_step=on_step, on_epoch=True, prog_bar=True, sync_dist=not on_step)
        metric = self.metrics[f"{stage}_acc"]
        metric(logits, y)
        self.log(f"{stage}/acc", metric, on_step=False, on_epoch=True, prog_bar=True)
        return loss, h

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._step(batch, "train")[0]

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        _, h = self._step(batch, "test")
        if self._bank is None:
            return
        bank, bank_labels, num_classes = self._bank
        scores = knn_predict(h, bank, bank_labels, num_classes, self.knn_k, self.knn_temperature)
        self.knn_acc.update((scores.argmax(dim=1) == batch[1]).float())
        self.log("test/knn_acc", self.knn_acc, on_epoch=True, prog_bar=True)

    def on_test_epoch_start(self) -> None:
        self._bank = training_feature_bank(self, self.network, None)

    def on_test_epoch_end(self) -> None:
        self._bank = None
