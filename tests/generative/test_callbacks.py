"""SampleGrid writes preview sheets; GenerativeMetrics compares samples with the test images."""

import json

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from paperzoo.generative.callbacks import GenerativeMetrics, SampleGrid
from paperzoo.generative.models.features import FeatureClassifier
from paperzoo.generative.modules.base import GenerativeModule


class _Noise(GenerativeModule):
    """Draws uniform noise; its 'training' nudges a scalar so Lightning has something to optimise."""

    def __init__(self):
        super().__init__(optimizer=lambda p: torch.optim.SGD(p, lr=0.0))
        self.scale = nn.Parameter(torch.ones(()))

    def training_step(self, batch, batch_idx):
        return (self.scale * batch[0].mean()) ** 2

    def sample(self, num_samples, generator=None, labels=None):
        x = torch.rand(num_samples, 1, 16, 16, generator=generator, device=self.device) * 2 - 1
        return x * self.scale.detach().clamp(max=1)


def _loader():
    return DataLoader(TensorDataset(torch.rand(24, 1, 16, 16) * 2 - 1, torch.zeros(24, dtype=torch.long)), batch_size=8)


def test_sample_grid_and_metrics(tmp_path):
    torch.manual_seed(0)
    features = tmp_path / "features.pt"
    torch.save(FeatureClassifier(widths=(4, 4, 8, 8)).state_dict(), features)
    grid = SampleGrid(every_n_epochs=1, num_samples=9)
    metrics = GenerativeMetrics(features=str(features), num_samples=20, sample_batch_size=7, kid_subset_size=10)
    trainer = L.Trainer(
        max_epochs=2,
        default_root_dir=tmp_path,
        callbacks=[grid, metrics],
        logger=L.pytorch.loggers.CSVLogger(tmp_path),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    module = _Noise()
    trainer.fit(module, train_dataloaders=_loader())
    trainer.test(module, dataloaders=_loader())
    names = sorted(p.name for p in grid.paths)
    assert names == ["samples_epoch000.png", "samples_epoch001.png", "samples_final.png"]
    assert all(p.is_file() and p.stat().st_size > 100 for p in grid.paths)
    assert grid.paths[0].read_bytes() == grid.paths[1].read_bytes()  # same seed, unchanged model: same sheet
    result = json.loads((tmp_path / "lightning_logs/version_0/sample_metrics.json").read_text())
    assert result["num_real"] == result["num_fake"] == 20
    assert result["comparable_to_papers"] is False
    assert result["test/fid_features_features"] > 0
    assert "test/fid_features_features" in trainer.callback_metrics
