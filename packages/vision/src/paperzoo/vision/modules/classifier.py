"""Image classification: any network injected by ``class_path``, trained with cross-entropy."""

from __future__ import annotations

import os
import shutil
from typing import Any, Literal

import torch
import torch.nn.functional as F
import torchmetrics
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from timm.data import Mixup
from timm.data.mixup import mixup_target
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

    Mixup (Zhang et al., "mixup: Beyond Empirical Risk Minimization", ICLR 2018) and CutMix (Yun et al.,
    "CutMix: Regularization Strategy to Train Strong Classifiers with Localizable Features", ICCV 2019) are
    timm's :class:`~timm.data.Mixup`, applied to each training batch (one mixing coefficient per batch, the
    batch mixed with itself reversed); the loss is then the cross-entropy against the mixed, label-smoothed
    soft targets, and the training accuracy is not logged (a mixed image has no single true class).
    Validation and test batches are never mixed.

    Args:
        network: the classifier; it must map ``(B, C, H, W)`` images to ``(B, num_classes)`` logits, or in
            training mode to a tuple of such logits with the main ones first, and expose ``num_classes``.
        label_smoothing: the cross-entropy's label smoothing (0 for none); with mixing it smooths the soft targets.
        aux_weight: weight of each auxiliary classifier's loss (0.3 in Szegedy et al. 2015).
        mixup_alpha: the Beta(alpha, alpha) parameter of mixup's mixing coefficient; 0 turns mixup off
            (0.2 in Zhang et al. for ImageNet).
        cutmix_alpha: the same for CutMix's pasted-box area; 0 turns CutMix off (1.0 in Yun et al.).
        mix_prob: probability that a training batch is mixed at all.
        mix_switch_prob: with both mixup and CutMix on, probability that a mixed batch uses CutMix.
        channels_last: keep the network's 4-D weights and the input images in the channels-last memory format
            (NHWC), which tensor-core convolutions read fastest; the numbers are unchanged.
        compile: compile the network with ``torch.compile`` (in place, so checkpoints keep their keys) when
            fitting, validating or testing starts; the first batches are slow while it compiles.
        compile_mode: ``torch.compile``'s ``mode`` (``"default"``, ``"reduce-overhead"``, ``"max-autotune"``
            ...); ``None`` for its default.
        optimizer: see :class:`~paperzoo.core.modules.PaperzooModule`.
        lr_scheduler: see :class:`~paperzoo.core.modules.PaperzooModule`.
        scheduler_interval: see :class:`~paperzoo.core.modules.PaperzooModule`.
    """

    def __init__(
        self,
        network: nn.Module,
        label_smoothing: float = 0.0,
        aux_weight: float = 0.3,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
        mix_prob: float = 1.0,
        mix_switch_prob: float = 0.5,
        channels_last: bool = False,
        compile: bool = False,
        compile_mode: str | None = None,
        optimizer: OptimizerCallable = _default_optimizer,
        lr_scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: Literal["step", "epoch"] = "step",
    ) -> None:
        super().__init__(optimizer=optimizer, lr_scheduler=lr_scheduler, scheduler_interval=scheduler_interval)
        self.save_hyperparameters(ignore=["network", "optimizer", "lr_scheduler"])
        if mixup_alpha < 0 or cutmix_alpha < 0 or not 0 <= mix_prob <= 1 or not 0 <= mix_switch_prob <= 1:
            raise ConfigError(
                f"mixup_alpha={mixup_alpha} and cutmix_alpha={cutmix_alpha} must be >= 0, and mix_prob={mix_prob} "
                f"and mix_switch_prob={mix_switch_prob} must lie in [0, 1]"
            )
        self.network = network
        self.num_classes = int(network.num_classes)
        self.label_smoothing = label_smoothing
        self.aux_weight = aux_weight
        self.channels_last = channels_last
        self.compile_network = compile
        self.compile_mode = compile_mode
        self.mixup: Mixup | None = None
        if mixup_alpha > 0 or cutmix_alpha > 0:
            self.mixup = Mixup(
                mixup_alpha=mixup_alpha,
                cutmix_alpha=cutmix_alpha,
                prob=mix_prob,
                switch_prob=mix_switch_prob,
                mode="batch",
                label_smoothing=label_smoothing,
                num_classes=self.num_classes,
            )
        if channels_last:
            self.network.to(memory_format=torch.channels_last)
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
        if self.compile_network:
            self._compile_in_place(getattr(self.trainer.strategy, "root_device", self.device))

    def _compile_in_place(self, device: torch.device) -> None:
        """``torch.compile`` the network in place, once, or say in one sentence why this setup cannot."""
        if getattr(self.network, "_compiled_call_impl", None) is not None:
            return
        if not torch._dynamo.is_dynamo_supported():
            raise ConfigError(
                "compile: true needs torch.compile, which this Python and PyTorch build do not support; "
                "set model.init_args.compile to false"
            )
        compilers = (os.environ.get("CXX", ""), "c++", "g++", "clang++")
        if device.type == "cpu" and not any(name and shutil.which(name) for name in compilers):
            raise ConfigError(
                "compile: true on the CPU needs a C++ compiler (torch.compile generates C++), and none was found; "
                "install g++ or set model.init_args.compile to false"
            )
        self.network.compile(mode=self.compile_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.network(x)

    def mix(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mixup or CutMix a training batch (timm's :class:`~timm.data.Mixup`).

        timm mixes the batch with itself reversed, so it needs an even batch; of an odd batch (the last of an
        epoch) the final image is left unmixed, with its own (label-smoothed) one-hot target.

        Args:
            x: images ``(B, C, H, W)``; not modified.
            y: class indices ``(B,)``.

        Returns:
            The mixed images ``(B, C, H, W)`` and soft targets ``(B, num_classes)``, rows summing to 1.
        """
        even = len(x) - len(x) % 2
        mixed, soft = self.mixup(x[:even].clone(), y[:even])
        if even == len(x):
            return mixed, soft
        rest = mixup_target(y[even:], self.num_classes, lam=1.0, smoothing=self.label_smoothing)
        return torch.cat([mixed, x[even:]]), torch.cat([soft, rest.to(soft.dtype)])

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch
        mixing = stage == "train" and self.mixup is not None
        if mixing:
            x, target = self.mix(x, y)
            label_smoothing = 0.0  # already in the soft targets
        else:
            target = y
            label_smoothing = self.label_smoothing if stage == "train" else 0.0
        output = self(x)
        logits, *aux_logits = output if isinstance(output, tuple) else (output,)
        loss = F.cross_entropy(logits, target, label_smoothing=label_smoothing)
        for aux in aux_logits:
            loss = loss + self.aux_weight * F.cross_entropy(aux, target, label_smoothing=label_smoothing)
        on_step = stage == "train"
        self.log(f"{stage}/loss", loss, on_step=on_step, on_epoch=True, prog_bar=True, sync_dist=not on_step)
        if not mixing:
            for name in ("acc", "acc5"):
                metric = self.metrics[f"{stage}_{name}"]
                metric(logits, y)
                self.log(f"{stage}/{name}", metric, on_step=False, on_epoch=True, prog_bar=name == "acc")
        return loss, logits

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")[0]

    def validation_step(self, batch, batch_idx: int) -> dict[str, Any]:
        """The loss and metrics; returns the logits for callbacks (e.g. :class:`ClassificationReport`)."""
        return {"logits": self._step(batch, "val")[1].detach()}

    def test_step(self, batch, batch_idx: int) -> dict[str, Any]:
        """The loss and metrics; returns the logits for callbacks (e.g. :class:`ClassificationReport`)."""
        return {"logits": self._step(batch, "test")[1].detach()}

    def predict_step(self, batch, batch_idx: int) -> torch.Tensor:
        x = batch[0] if isinstance(batch, list | tuple) else batch
        return self(x).softmax(dim=-1)
