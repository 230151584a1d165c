"""The NumPy MLP of :mod:`paperzoo.core.classic` as a LightningModule, so ``paperzoo run`` trains it on real data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn

from paperzoo.core.classic import NumpyMLP
from paperzoo.core.classic.autograd import Tensor, softmax_cross_entropy
from paperzoo.core.modules.base import PaperzooModule
from paperzoo.core.optim import SGD


def _plain_sgd(params) -> torch.optim.Optimizer:
    return SGD(params, lr=0.1)


class NumpyMLPClassifier(PaperzooModule):
    """A classifier whose forward and backward passes are NumPy: back-propagation (Rumelhart, Hinton & Williams 1986)
    by the reverse-mode autograd of :mod:`paperzoo.core.classic.autograd`, with no torch autograd involved.

    The network is a :class:`~paperzoo.core.classic.NumpyMLP`. Its weights are float64 NumPy arrays that are also
    registered as this module's parameters, sharing memory, so that checkpoints save them and the injected
    optimiser updates them: each training step runs the NumPy forward and backward passes, hands the NumPy
    gradients to the parameters' ``.grad`` and takes one optimiser step (by default plain SGD, ``p <- p - lr g``,
    the update of :func:`~paperzoo.core.classic.mlp.train_sgd`). Images are flattened to vectors.

    Logs ``{train,val,test}/loss`` (mean softmax cross-entropy) and ``/acc`` (fractions in [0, 1]).

    Args:
        sizes: layer widths from the input (784 for 28x28 images) to the number of classes.
        activation: ``"tanh"`` (Glorot uniform initialisation) or ``"relu"`` (He normal initialisation).
        init_seed: seeds the initial weights.
        optimizer: see :class:`~paperzoo.core.modules.PaperzooModule`; default plain SGD with lr 0.1.
        lr_scheduler: see :class:`~paperzoo.core.modules.PaperzooModule`.
        scheduler_interval: see :class:`~paperzoo.core.modules.PaperzooModule`.
    """

    def __init__(
        self,
        sizes: Sequence[int] = (784, 256, 10),
        activation: Literal["tanh", "relu"] = "tanh",
        init_seed: int = 0,
        optimizer: OptimizerCallable = _plain_sgd,
        lr_scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: Literal["step", "epoch"] = "step",
    ) -> None:
        super().__init__(optimizer=optimizer, lr_scheduler=lr_scheduler, scheduler_interval=scheduler_interval)
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        self.automatic_optimization = False
        self.net = NumpyMLP(list(sizes), activation=activation, seed=init_seed)
        self.num_classes = int(sizes[-1])
        # torch.from_numpy shares memory: the NumPy network and the torch parameters are the same numbers
        self.weights = nn.ParameterList(nn.Parameter(torch.from_numpy(p.data)) for p in self.net.parameters())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of images or vectors, computed by the NumPy network."""
        return torch.from_numpy(self.net(self._numpy(x)).data)

    @staticmethod
    def _numpy(x: torch.Tensor) -> np.ndarray:
        return x.detach().flatten(1).cpu().numpy().astype(np.float64)  # (B, features)

    def _loss_and_logits(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[Tensor, np.ndarray]:
        x, y = batch
        logits = self.net(self._numpy(x))
        return softmax_cross_entropy(logits, y.cpu().numpy()), logits.data

    def _log(self, stage: str, loss: float, logits: np.ndarray, y: torch.Tensor) -> None:
        acc = float((logits.argmax(axis=1) == y.cpu().numpy()).mean())
        on_step = stage == "train"
        self.log(f"{stage}/loss", loss, on_step=on_step, on_epoch=True, prog_bar=True, batch_size=len(y))
        self.log(f"{stage}/acc", acc, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        optimizer = self.optimizers()
        params = self.net.parameters()
        for p in params:
            p.zero_grad()
        loss, logits = self._loss_and_logits(batch)
        loss.backward()  # NumPy reverse mode
        for p, weight in zip(params, self.weights, strict=True):
            weight.grad = torch.from_numpy(p.grad)
        optimizer.step()
        scheduler = self.lr_schedulers()
        if scheduler is not None and self.scheduler_interval == "step":
            scheduler.step()
        self._log("train", loss.item(), logits, batch[1])

    def on_train_epoch_end(self) -> None:
        scheduler = self.lr_schedulers()
        if scheduler is not None and self.scheduler_interval == "epoch":
            scheduler.step()

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        loss, logits = self._loss_and_logits(batch)
        self._log("val", loss.item(), logits, batch[1])

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        loss, logits = self._loss_and_logits(batch)
        self._log("test", loss.item(), logits, batch[1])

    def predict_step(self, batch, batch_idx: int) -> torch.Tensor:
        x = batch[0] if isinstance(batch, list | tuple) else batch
        return self(x).softmax(dim=-1)
