"""ClassificationReport: the confusion matrix and the misclassified images it draws, on disk and in W&B."""

from __future__ import annotations

import csv

import lightning as L
import torch
from lightning.pytorch.loggers import CSVLogger, WandbLogger
from PIL import Image

from paperzoo.core.testing import write_mnist
from paperzoo.vision import ImageClassifier, MNISTDataModule
from paperzoo.vision.callbacks import ClassificationReport


class _RecordingWandb(WandbLogger):
    """A WandbLogger that records the images it is given and never starts W&B."""

    def __init__(self) -> None:  # deliberately not calling WandbLogger.__init__: no W&B run
        self.images: list[tuple[str, list, int | None]] = []
        self._experiment = None
        self._checkpoint_callbacks = {}

    def log_image(self, key, images, step=None, **kwargs):
        self.images.append((key, images, step))

    def log_metrics(self, metrics, step=None):
        pass

    def log_hyperparams(self, params, *args, **kwargs):
        pass


def _setup(tmp_path, **report_kwargs):
    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    network.num_classes = 10
    # lr 0: the model stays as initialised and keeps making mistakes to draw
    model = ImageClassifier(network, optimizer=lambda p: torch.optim.SGD(p, lr=0.0))
    data = MNISTDataModule(str(write_mnist(tmp_path / "mnist", n_train=64, n_test=40)), val_size=16, batch_size=16)
    report = ClassificationReport(max_examples=6, **report_kwargs)
    wandb = _RecordingWandb()
    trainer = L.Trainer(
        default_root_dir=tmp_path,
        accelerator="cpu",
        logger=[CSVLogger(tmp_path, name="run"), wandb],
        callbacks=[report],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    return model, data, report, wandb, trainer


def test_test_report_counts_every_prediction_and_draws_the_mistakes(tmp_path):
    model, data, report, wandb, trainer = _setup(tmp_path)
    trainer.test(model, datamodule=data, verbose=False)
    x, y = data.test_set.tensors
    with torch.no_grad():
        predicted = model(data.on_after_batch_transfer((x, y), 0)[0]).argmax(-1)
    expected = torch.zeros(10, 10, dtype=torch.int64)
    for t, p in zip(y.tolist(), predicted.tolist(), strict=True):
        expected[t, p] += 1
    assert torch.equal(report.confusion, expected) and report.confusion.sum() == 40

    wrong = (predicted != y).nonzero().flatten()
    assert len(wrong) > 6, "an untrained model makes more mistakes than the grid shows"
    assert [(t, p) for _, t, p, _ in report.misclassified] == [(int(y[i]), int(predicted[i])) for i in wrong[:6]]
    first_image = report.misclassified[0][0]
    torch.testing.assert_close(first_image, data.on_after_batch_transfer((x[wrong[:1]], y[:1]), 0)[0][0])

    folder = tmp_path / "run" / "version_0" / "report"
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["test_confusion_matrix.csv", "test_confusion_matrix.png", "test_misclassified.png"]
    for name in ("test_confusion_matrix.png", "test_misclassified.png"):
        with Image.open(folder / name) as image:
            assert image.format == "PNG" and min(image.size) > 100
    with open(folder / "test_confusion_matrix.csv") as f:
        table = list(csv.reader(f))
    assert table[0] == ["true \\ predicted", *data.classes]
    assert [[int(v) for v in row[1:]] for row in table[1:]] == expected.tolist()

    assert [key for key, _, _ in wandb.images] == ["test/confusion_matrix", "test/misclassified"]
    assert wandb.images[0][1] == [str(folder / "test_confusion_matrix.png")]


def test_validation_reports_every_n_epochs_during_fit_only_when_asked(tmp_path):
    model, data, report, wandb, trainer = _setup(tmp_path, on_validation=True, every_n_epochs=2)
    trainer.fit_loop.max_epochs = 3
    trainer.fit(model, datamodule=data)
    folder = tmp_path / "run" / "version_0" / "report"
    assert sorted(p.name for p in folder.iterdir() if p.suffix == ".png") == [
        "val_epoch1_confusion_matrix.png",
        "val_epoch1_misclassified.png",
    ]  # epochs 0 and 2 skipped, and the sanity check too
    assert report.confusion.sum() == 16
    assert [key for key, _, _ in wandb.images] == ["val/confusion_matrix", "val/misclassified"]
    silent = ClassificationReport()
    assert not silent._active(trainer, "val") and silent._active(trainer, "test")
