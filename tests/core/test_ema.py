"""EMA: the averaged weights are the closed-form exponential average of the trajectory, and are what is
validated, checkpointed and tested."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from paperzoo.core.callbacks import EMA
from paperzoo.core.checkpoint import read_checkpoint
from paperzoo.core.errors import ConfigError

DECAY = 0.5  # far from 1, so the average differs visibly from the last weights


class _Recorder(L.LightningModule):
    """A small network with batch norm that records its floating-point state after every step and at each
    validation and test."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
        self.trajectory: list[dict[str, torch.Tensor]] = []  # after optimiser step 1, 2, ...
        self.validated: dict[int, dict[str, torch.Tensor]] = {}  # global step -> state seen by validation
        self.tested: dict[str, torch.Tensor] | None = None

    def snapshot(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.state_dict().items() if v.is_floating_point()}

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self.net(x), y)

    def on_train_batch_end(self, outputs, batch, batch_idx):
        self.trajectory.append(self.snapshot())

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val/loss", nn.functional.cross_entropy(self.net(x), y))

    def on_validation_epoch_start(self):
        self.validated[self.trainer.global_step] = self.snapshot()

    def test_step(self, batch, batch_idx):
        x, y = batch
        self.log("test/loss", nn.functional.cross_entropy(self.net(x), y))

    def on_test_epoch_start(self):
        self.tested = self.snapshot()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.2, momentum=0.9)


def closed_form(trajectory: list[dict[str, torch.Tensor]], decay: float) -> dict[str, torch.Tensor]:
    """``decay^(N-1) theta_1 + sum_{k=2..N} (1 - decay) decay^(N-k) theta_k``: the EMA started at the first iterate."""
    n = len(trajectory)
    weights = [decay ** (n - 1)] + [(1 - decay) * decay ** (n - k) for k in range(2, n + 1)]
    return {key: sum(w * theta[key] for w, theta in zip(weights, trajectory, strict=True)) for key in trajectory[0]}


def assert_state_close(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert actual.keys() == expected.keys()
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], rtol=1e-5, atol=1e-6, msg=key)


def _loader() -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(24, 4, generator=g)
    y = (x[:, 0] > 0).long()
    return DataLoader(TensorDataset(x, y), batch_size=4)


def _trainer(tmp_path, **kwargs) -> L.Trainer:
    return L.Trainer(
        default_root_dir=tmp_path,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        **kwargs,
    )


def test_ema_is_the_closed_form_average_and_is_validated_checkpointed_and_tested(tmp_path):
    torch.manual_seed(0)
    model = _Recorder()
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    trainer = _trainer(
        tmp_path, max_steps=6, val_check_interval=3, limit_val_batches=1, callbacks=[EMA(decay=DECAY), checkpoint]
    )
    trainer.fit(model, train_dataloaders=_loader(), val_dataloaders=_loader())
    trajectory = model.trajectory
    assert len(trajectory) == 6

    # validation at steps 3 and 6 ran on the average of the iterates so far, not on the current weights
    assert sorted(model.validated) == [3, 6]
    for step, seen in model.validated.items():
        assert_state_close(seen, closed_form(trajectory[:step], DECAY))
        assert not torch.allclose(seen["net.0.weight"], trajectory[step - 1]["net.0.weight"])
    # training went on from the trained weights after validating at step 3: they differ from the average
    assert not torch.allclose(trajectory[3]["net.0.weight"], model.validated[3]["net.0.weight"])

    # when training ends the model holds the average
    expected = closed_form(trajectory, DECAY)
    assert_state_close(model.snapshot(), expected)

    # the checkpoint's state_dict is the average (read back weights-only); the trained weights are kept beside it
    saved = read_checkpoint(checkpoint.last_model_path)
    assert_state_close({k: v for k, v in saved["state_dict"].items() if v.is_floating_point()}, expected)
    current = {k: v for k, v in saved["current_model_state"].items() if v.is_floating_point()}
    assert_state_close(current, trajectory[-1])

    # testing that checkpoint with the same trainer (as `paperzoo run` does) tests the average, not the trained
    trainer.test(model, dataloaders=_loader(), ckpt_path=checkpoint.last_model_path, verbose=False)
    assert_state_close(model.tested, expected)


@pytest.mark.filterwarnings("ignore:You defined a `validation_step` but have no `val_dataloader`")
def test_ema_starts_late_and_skips_steps(tmp_path):
    torch.manual_seed(0)
    model = _Recorder()
    ema = EMA(decay=DECAY, update_every_n_steps=2, update_starting_at_step=2)
    _trainer(tmp_path, max_steps=6, limit_val_batches=0, callbacks=[ema]).fit(model, train_dataloaders=_loader())
    # 0-based steps 2 and 4 update, i.e. the iterates after the 3rd and 5th optimiser steps
    assert_state_close(model.snapshot(), closed_form([model.trajectory[2], model.trajectory[4]], DECAY))


@pytest.mark.parametrize("kwargs", [{"decay": 1.5}, {"decay": -0.1}, {"update_every_n_steps": 0}])
def test_ema_rejects_bad_settings(kwargs):
    with pytest.raises(ConfigError, match="EMA decay"):
        EMA(**kwargs)
