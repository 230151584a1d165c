"""Callbacks of the generative modules: sample sheets while training, sample-quality metrics at test."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import WandbLogger
from torch import Tensor
from torchvision.utils import save_image

from paperzoo.generative.metrics import SampleQuality, check_inception_available


def _run_dir(trainer: L.Trainer) -> Path:
    return Path(trainer.log_dir or trainer.default_root_dir)


def save_sheet(images: Tensor, path: str | Path, nrow: int | None = None) -> Path:
    """Save ``(N, C, H, W)`` images in ``[-1, 1]`` as one PNG grid (``nrow`` per row, a square by default)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nrow = nrow or max(1, math.ceil(math.sqrt(len(images))))
    save_image(images.detach().float().cpu(), path, nrow=nrow, normalize=True, value_range=(-1, 1), padding=1)
    return path


class SampleGrid(Callback):
    """Every ``every_n_epochs`` training epochs (and once after testing), save the module's
    :meth:`~paperzoo.generative.modules.base.GenerativeModule.preview` sheets as PNG in ``<run>/samples/`` and log
    them to W&B when a WandbLogger is attached.

    The samples are drawn from a generator seeded with ``seed`` each time, so successive sheets show the same latent
    points as training goes on.

    Args:
        every_n_epochs: epochs between sheets; 0 saves only the final one.
        num_samples: images on a sheet.
        seed: seed of the sheets' random numbers.
    """

    def __init__(self, every_n_epochs: int = 1, num_samples: int = 64, seed: int = 0) -> None:
        super().__init__()
        self.every_n_epochs, self.num_samples, self.seed = every_n_epochs, num_samples, seed
        self.paths: list[Path] = []

    def _save(self, trainer: L.Trainer, pl_module: L.LightningModule, tag: str) -> None:
        if not hasattr(pl_module, "preview"):
            return
        folder = _run_dir(trainer) / "samples"  # every rank reads log_dir (a broadcast)
        if not trainer.is_global_zero:
            return
        generator = torch.Generator(device=pl_module.device)
        generator.manual_seed(self.seed)
        was_training = pl_module.training
        pl_module.eval()
        try:
            with torch.no_grad():
                sheets = pl_module.preview(self.num_samples, generator=generator)
        finally:
            pl_module.train(was_training)
        for name, sheet in sheets.items():
            images, nrow = sheet if isinstance(sheet, tuple) else (sheet, None)
            path = save_sheet(images, folder / f"{name}_{tag}.png", nrow=nrow)
            self.paths.append(path)
            for logger in trainer.loggers:
                if isinstance(logger, WandbLogger):
                    logger.log_image(key=f"samples/{name}", images=[str(path)], step=trainer.global_step)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch
        if self.every_n_epochs > 0 and (epoch + 1) % self.every_n_epochs == 0 and not trainer.sanity_checking:
            self._save(trainer, pl_module, f"epoch{epoch:03d}")

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._save(trainer, pl_module, "final")


class GenerativeMetrics(Callback):
    """At test time, compare the module's samples with the test images by FID, KID and Inception Score, through the
    feature network ``features`` (see :mod:`paperzoo.generative.metrics`), log them as ``test/fid<label>`` ... and
    write them, with the feature network's name, to ``<run>/sample_metrics.json``.

    The real images are the first ``num_samples`` of the test loader (the module's ``metric_images(batch)`` picks
    them from a batch); the generated ones are as many calls of the module's ``sample`` (or, for a translation
    model, the translations ``metric_images`` returns), drawn from a generator seeded with ``seed``.

    Args:
        features: ``"fashionmnist"`` (offline; labelled), ``"inception"`` (the standard) or a path.
        num_samples: real and generated images compared (10,000 or 50,000 in papers; fewer is noisier and biased
            upwards for FID).
        sample_batch_size: images generated per call of ``sample``.
        seed: seed of the generated images.
        kid_subset_size: KID's subset size.
    """

    def __init__(
        self,
        features: str = "fashionmnist",
        num_samples: int = 10000,
        sample_batch_size: int = 500,
        seed: int = 0,
        kid_subset_size: int = 1000,
    ) -> None:
        super().__init__()
        if features == "inception":  # fail before training, not after it
            check_inception_available()
        self.features, self.num_samples, self.seed = features, num_samples, seed
        self.sample_batch_size = sample_batch_size
        self.kid_subset_size = kid_subset_size
        self.quality: SampleQuality | None = None
        self.result: dict[str, Any] | None = None
        self._real = self._fake = 0

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.quality = SampleQuality(self.features, kid_subset_size=self.kid_subset_size)
        if self.quality.network is not None:
            self.quality.network.to(pl_module.device)
        self._real = self._fake = 0

    def on_test_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self.quality is None or self._real >= self.num_samples:
            return
        picker = getattr(pl_module, "metric_images", None)
        real, fake = picker(batch) if picker is not None else (batch[0], None)
        take = min(len(real), self.num_samples - self._real)
        self.quality.update(real[:take], real=True)
        self._real += take
        if fake is not None:
            self.quality.update(fake[:take], real=False)
            self._fake += take

    @torch.no_grad()
    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.quality is None or self._real == 0:
            return
        generator = torch.Generator(device=pl_module.device)
        generator.manual_seed(self.seed)
        while self._fake < self._real:
            n = min(self.sample_batch_size, self._real - self._fake)
            self.quality.update(pl_module.sample(n, generator=generator), real=False)
            self._fake += n
        metrics = self.quality.compute()
        logged = metrics.as_log("test")
        for key, value in logged.items():
            pl_module.log(key, value, sync_dist=False)
        self.result = {
            "features": metrics.features,
            "comparable_to_papers": metrics.features == "inception",
            "num_real": metrics.num_real,
            "num_fake": metrics.num_fake,
            **logged,
            f"test/is_std{metrics.suffix}": metrics.inception_score_std,
        }
        folder = _run_dir(trainer)
        if trainer.is_global_zero:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "sample_metrics.json").write_text(json.dumps(self.result, indent=2) + "\n")
        self.quality.reset()
