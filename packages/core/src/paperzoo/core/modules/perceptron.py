"""Rosenblatt's perceptron as a LightningModule, so that ``paperzoo run`` trains it like any other model."""

from __future__ import annotations

import lightning as L
import torch
from torch import nn

from paperzoo.core.optim import SGD


class PerceptronModule(L.LightningModule):
    r"""Rosenblatt's perceptron learning rule (Rosenblatt 1958, "The perceptron: a probabilistic model ...").

    A linear threshold unit that predicts class 1 when :math:`w \cdot x + b \ge 0`, else class 0, trained online,
    one example at a time, with no gradient and no loss: for each example of a batch in turn, with the label read
    as :math:`y \in \{-1, +1\}`, a mistake (:math:`y (w \cdot x + b) \le 0`) moves the separator towards the
    example,

    .. math:: w \leftarrow w + \eta y x, \qquad b \leftarrow b + \eta y .

    It is the same rule as :class:`paperzoo.core.classic.Perceptron` (the NumPy version, tested against the
    Novikoff bound), run by Lightning's loop with manual optimisation. The rule is stochastic gradient descent with
    batch size 1 on the perceptron criterion :math:`\max(0, -y(w \cdot x + b))`, whose gradient on a mistake is
    :math:`(-y x, -y)`, so each update is a step of :class:`paperzoo.core.optim.SGD`; Lightning counts those steps,
    so ``global_step`` is the number of mistakes made. When an epoch passes without a mistake the data are
    separated and training stops; on data no line separates (XOR) it never does.

    Logged per epoch: ``train/mistakes`` (updates made), ``train/acc`` (examples right before their update),
    ``{train,val,test}/loss`` (the perceptron criterion :math:`\mathrm{mean}\,\max(0, -y(w \cdot x + b))`, zero
    exactly when every example is on its side) and ``{val,test}/acc``.

    Args:
        in_features: the length of an input.
        lr: the step :math:`\eta`; from a zero start it only scales :math:`w` and :math:`b`, so the predictions
            do not depend on it (kept for the textbook form of the rule).
    """

    def __init__(self, in_features: int = 2, lr: float = 1.0) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.lr = lr
        self.weight = nn.Parameter(torch.zeros(in_features))
        self.bias = nn.Parameter(torch.zeros(()))
        self.num_classes = 2
        self._epoch_mistakes = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The score :math:`w \\cdot x + b` of each row of ``x``, shape ``(N,)``; class 1 where it is >= 0."""
        return x.flatten(1) @ self.weight + self.bias

    def configure_optimizers(self) -> SGD:
        return SGD([self.weight, self.bias], lr=self.lr)

    def on_train_epoch_start(self) -> None:
        self._epoch_mistakes = 0

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, labels = batch
        x = x.flatten(1)
        signs = 2.0 * labels.to(x.dtype) - 1.0  # {0, 1} -> {-1, +1}
        optimizer = self.optimizers()
        right = torch.zeros(len(x))
        for i in range(len(x)):  # online: each example sees the weights the previous one left
            with torch.no_grad():
                mistake = signs[i] * (x[i] @ self.weight + self.bias) <= 0
            if mistake:
                # the criterion's gradient at this example, set by hand: autograd would only repeat the formula
                self.weight.grad = -signs[i] * x[i]
                self.bias.grad = -signs[i]
                optimizer.step()  # w <- w + lr y x, b <- b + lr y
                self._epoch_mistakes += 1
            else:
                right[i] = 1.0
        self.log("train/acc", right.mean(), on_step=False, on_epoch=True, prog_bar=True, batch_size=len(x))
        with torch.no_grad():
            self.log("train/loss", self._criterion(x, signs), on_step=True, on_epoch=True, batch_size=len(x))

    def on_train_epoch_end(self) -> None:
        self.log("train/mistakes", float(self._epoch_mistakes), prog_bar=True)
        if self._epoch_mistakes == 0:
            self.trainer.should_stop = True  # converged: no example moved the separator this epoch

    def _criterion(self, x: torch.Tensor, signs: torch.Tensor) -> torch.Tensor:
        return torch.relu(-signs * self(x)).mean()

    def _evaluate(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> None:
        x, labels = batch
        scores = self(x)
        signs = 2.0 * labels.to(scores.dtype) - 1.0
        acc = ((scores >= 0).long() == labels).float().mean()
        self.log(f"{stage}/acc", acc, prog_bar=True, batch_size=len(x))
        self.log(f"{stage}/loss", self._criterion(x, signs), batch_size=len(x))

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def predict_step(self, batch: torch.Tensor | tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        x = batch[0] if isinstance(batch, list | tuple) else batch
        return (self(x) >= 0).long()
