"""Callbacks of the vision domain: the confusion matrix and the misclassified images of an evaluation."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import WandbLogger
from torch import Tensor
from torchmetrics.classification import MulticlassConfusionMatrix


class ClassificationReport(Callback):
    """Draws what a classifier gets wrong: the confusion matrix and a grid of misclassified images.

    At the end of testing (and, with ``on_validation``, of every ``every_n_epochs``-th validation during fit) it
    writes to ``<run dir>/report/``:

    * ``<stage>_confusion_matrix.png``: rows are true classes, columns predicted ones, coloured by the fraction of
      the row (each class's recall is on the diagonal) and annotated with counts when there are at most 20
      classes; ``<stage>_confusion_matrix.csv`` holds the counts. The counts are torchmetrics'
      :class:`~torchmetrics.classification.MulticlassConfusionMatrix`, summed over all devices.
    * ``<stage>_misclassified.png``: up to ``max_examples`` misclassified images (the first ones met, from the
      first device), de-normalised with the DataModule's ``mean`` and ``std``, titled with the true and the
      predicted class and the predicted probability.

    Validation files carry the epoch (``val_epoch3_...``). With a :class:`~lightning.pytorch.loggers.WandbLogger`
    attached, both images are also logged to W&B (``<stage>/confusion_matrix``, ``<stage>/misclassified``).
    The logits are those the module's ``validation_step``/``test_step`` return as ``{"logits": ...}``
    (:class:`~paperzoo.vision.ImageClassifier` does); for another module the callback runs it on the batch.

    Args:
        on_validation: report on validation too, not only on the test.
        every_n_epochs: with ``on_validation``, report every n-th validation epoch.
        max_examples: the most misclassified images drawn.
    """

    def __init__(self, on_validation: bool = False, every_n_epochs: int = 1, max_examples: int = 32) -> None:
        self.on_validation = on_validation
        self.every_n_epochs = every_n_epochs
        self.max_examples = max_examples
        self.confusion: Tensor | None = None
        """The last report's confusion matrix ``(num_classes, num_classes)``, true classes along the rows."""
        self.misclassified: list[tuple[Tensor, int, int, float]] = []
        """The last report's misclassified examples: ``(image (C, H, W) as given, true, predicted, probability)``."""
        self.paths: list[Path] = []
        """The files the last report wrote."""
        self._matrix: MulticlassConfusionMatrix | None = None

    # ------------------------------------------------------------------ collecting

    def _active(self, trainer: L.Trainer, stage: str) -> bool:
        if stage == "test":
            return True
        return (
            self.on_validation
            and not trainer.sanity_checking
            and (trainer.current_epoch + 1) % self.every_n_epochs == 0
        )

    def _start(self) -> None:
        self._matrix = None
        self.misclassified = []

    def _collect(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any) -> None:
        x, y = batch[0], batch[1]
        if isinstance(outputs, dict) and "logits" in outputs:
            logits = outputs["logits"]
        else:
            with torch.no_grad():
                logits = pl_module(x)
        logits = logits[0] if isinstance(logits, tuple) else logits
        if self._matrix is None:
            self._matrix = MulticlassConfusionMatrix(num_classes=logits.shape[-1]).to(logits.device)
        probs = logits.float().softmax(dim=-1)
        confidence, preds = probs.max(dim=-1)
        self._matrix.update(preds, y)
        room = self.max_examples - len(self.misclassified)
        if room > 0:
            wrong = torch.nonzero(preds != y).flatten()[:room].tolist()
            self.misclassified += [
                (x[i].detach().float().cpu(), int(y[i]), int(preds[i]), float(confidence[i])) for i in wrong
            ]

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._active(trainer, "val"):
            self._start()

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start()

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self._active(trainer, "val"):
            self._collect(trainer, pl_module, outputs, batch)

    def on_test_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._collect(trainer, pl_module, outputs, batch)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._active(trainer, "val"):
            self._report(trainer, f"val_epoch{trainer.current_epoch}", "val")

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._report(trainer, "test", "test")

    # ------------------------------------------------------------------ reporting

    def _report(self, trainer: L.Trainer, prefix: str, stage: str) -> None:
        if self._matrix is None:  # no batch was seen
            return
        self.confusion = self._matrix.compute().cpu()  # every rank takes part in the sum
        log_dir = trainer.log_dir  # a broadcast: every rank takes part too
        if not trainer.is_global_zero:
            return
        folder = Path(log_dir or trainer.default_root_dir) / "report"
        folder.mkdir(parents=True, exist_ok=True)
        classes = _class_names(trainer, len(self.confusion))
        matrix_png = folder / f"{prefix}_confusion_matrix.png"
        _draw_confusion(self.confusion, classes, matrix_png, title=f"{stage} confusion matrix")
        matrix_csv = folder / f"{prefix}_confusion_matrix.csv"
        with open(matrix_csv, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["true \\ predicted", *classes])
            writer.writerows([name, *row] for name, row in zip(classes, self.confusion.tolist(), strict=True))
        self.paths = [matrix_png, matrix_csv]
        images = {f"{stage}/confusion_matrix": matrix_png}
        if self.misclassified:
            mean, std = _normalisation(trainer)
            grid_png = folder / f"{prefix}_misclassified.png"
            _draw_examples(self.misclassified, classes, mean, std, grid_png)
            self.paths.append(grid_png)
            images[f"{stage}/misclassified"] = grid_png
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                for key, path in images.items():
                    logger.log_image(key=key, images=[str(path)], step=trainer.global_step)


def _class_names(trainer: L.Trainer, n: int) -> list[str]:
    classes = getattr(getattr(trainer, "datamodule", None), "classes", None)
    return [str(c) for c in classes] if classes is not None and len(classes) == n else [str(i) for i in range(n)]


def _normalisation(trainer: L.Trainer) -> tuple[Tensor | None, Tensor | None]:
    """The DataModule's per-channel ``mean`` and ``std`` as ``(C, 1, 1)`` tensors, or ``None`` if it has none."""
    datamodule = getattr(trainer, "datamodule", None)
    mean, std = getattr(datamodule, "mean", None), getattr(datamodule, "std", None)
    if mean is None or std is None:
        return None, None
    return torch.tensor(mean).view(-1, 1, 1), torch.tensor(std).view(-1, 1, 1)


def _draw_confusion(matrix: Tensor, classes: list[str], path: Path, title: str) -> None:
    from matplotlib.figure import Figure

    counts = matrix.numpy()
    rows = counts.sum(axis=1, keepdims=True)
    fractions = np.divide(counts, rows, out=np.zeros(counts.shape, dtype=float), where=rows > 0)
    n = len(classes)
    side = min(max(4.0, 0.45 * n + 2), 30.0)
    fig = Figure(figsize=(side + 1, side), layout="constrained")
    ax = fig.add_subplot()
    shown = ax.imshow(fractions, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    if n <= 50:
        ax.set_xticks(range(n), classes, rotation=90, fontsize=8)
        ax.set_yticks(range(n), classes, fontsize=8)
    if n <= 20:
        for i in range(n):
            for j in range(n):
                colour = "white" if fractions[i, j] > 0.5 else "black"
                ax.text(j, i, str(int(counts[i, j])), ha="center", va="center", fontsize=7, color=colour)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"{title} (accuracy {np.trace(counts) / max(counts.sum(), 1):.2%})")
    fig.savefig(path, dpi=100)


def _draw_examples(
    examples: list[tuple[Tensor, int, int, float]],
    classes: list[str],
    mean: Tensor | None,
    std: Tensor | None,
    path: Path,
) -> None:
    from matplotlib.figure import Figure

    cols = min(8, len(examples))
    rows = -(-len(examples) // cols)
    fig = Figure(figsize=(1.8 * cols, 2.1 * rows), layout="constrained")
    for k, (image, true, pred, prob) in enumerate(examples):
        if mean is not None and len(mean) == image.shape[0]:
            image = image * std + mean  # back to [0, 1]
        else:  # unknown normalisation: stretch to [0, 1]
            image = (image - image.min()) / (image.max() - image.min()).clamp_min(1e-12)
        ax = fig.add_subplot(rows, cols, k + 1)
        pixels = image.clamp(0, 1).permute(1, 2, 0).numpy()  # (H, W, C)
        if pixels.shape[-1] == 1:
            ax.imshow(pixels[..., 0], cmap="gray", vmin=0, vmax=1)
        else:
            ax.imshow(pixels)
        ax.set_title(f"true {classes[true]}\npred {classes[pred]} ({prob:.0%})", fontsize=7)
        ax.axis("off")
    fig.savefig(path, dpi=100)
