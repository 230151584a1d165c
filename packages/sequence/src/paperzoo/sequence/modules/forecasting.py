"""Time-series forecasting: a network trained with MSE on standardised values, scored by MAE in the original units
against the seasonal-naive and persistence baselines."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
import torchmetrics
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from paperzoo.core.errors import ConfigError
from paperzoo.core.modules.base import PaperzooModule, _default_optimizer
from paperzoo.sequence.models.forecaster import seasonal_naive_forecast

Batch = tuple[Tensor, Tensor, Tensor, Tensor]
_BASELINES = ("mae", "naive_mae", "persistence_mae")


class Forecaster(PaperzooModule):
    """Multi-step forecasting, e.g. the LSTM of Hochreiter & Schmidhuber 1997 on yearly sunspot numbers.

    Batches are ``(inputs (B, T, 1), targets (B, h), naive (B, h), years (B, h))`` as
    :class:`~paperzoo.sequence.data.SunspotsDataModule` serves them: inputs and targets standardised with the training
    period's mean and standard deviation, ``naive`` the seasonal-naive forecast in the original units. The network is
    trained with the mean squared error of the standardised values (``{stage}/loss``). Validation and test report
    mean absolute errors in the original units: the network's forecast and the targets are de-standardised first.
    Logged, over all ``h`` steps of every window:

    - ``{val,test}/mae``: the network's MAE;
    - ``{val,test}/naive_mae``: the seasonal-naive forecast's MAE on the same targets;
    - ``{val,test}/persistence_mae``: the MAE of repeating the window's last value (the naive forecast with season 1).

    The mean and standard deviation are taken from the data module's ``mean`` and ``std`` when the run starts and
    kept as buffers, so a checkpoint carries them. At the end of a test with ``write_forecast`` the test forecasts are
    written to the run directory as ``test_forecast.csv`` (year, step, truth, forecast, seasonal_naive, persistence)
    and drawn, one step ahead, in ``test_forecast.png``.

    Args:
        network: maps ``(B, T, 1)`` inputs to ``(B, h)`` forecasts; ``horizon``, if it has one, is checked against
            the data's.
        write_forecast: write ``test_forecast.csv`` and ``test_forecast.png`` after a test.
        optimizer: see :class:`~paperzoo.core.modules.PaperzooModule`.
        lr_scheduler: see :class:`~paperzoo.core.modules.PaperzooModule`.
        scheduler_interval: see :class:`~paperzoo.core.modules.PaperzooModule`.
    """

    def __init__(
        self,
        network: nn.Module,
        write_forecast: bool = True,
        optimizer: OptimizerCallable = _default_optimizer,
        lr_scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: Literal["step", "epoch"] = "step",
    ) -> None:
        super().__init__(optimizer=optimizer, lr_scheduler=lr_scheduler, scheduler_interval=scheduler_interval)
        self.save_hyperparameters(ignore=["network", "optimizer", "lr_scheduler"])
        self.network = network
        self.write_forecast = write_forecast
        # NaN until the data module's statistics arrive, so a forgotten de-standardisation cannot pass silently.
        self.register_buffer("target_mean", torch.tensor(float("nan")))
        self.register_buffer("target_std", torch.tensor(float("nan")))
        self.metrics = nn.ModuleDict(
            {f"{stage}_{name}": torchmetrics.MeanAbsoluteError() for stage in ("val", "test") for name in _BASELINES}
        )
        self._test_records: list[Tensor] = []

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        mean, std = getattr(datamodule, "mean", None), getattr(datamodule, "std", None)
        if mean is not None and std is not None:
            self.target_mean.fill_(float(mean))
            self.target_std.fill_(float(std))
        horizon, data_horizon = getattr(self.network, "horizon", None), getattr(datamodule, "horizon", None)
        if horizon is not None and data_horizon is not None and horizon != data_horizon:
            raise ConfigError(
                f"the network forecasts {horizon} steps but the data's horizon is {data_horizon}; set "
                f"model.init_args.network.init_args.horizon to {data_horizon}"
            )

    def forward(self, inputs: Tensor) -> Tensor:
        return self.network(inputs)

    def denormalise(self, values: Tensor) -> Tensor:
        """Standardised values in the original units."""
        if torch.isnan(self.target_std):
            raise ConfigError(
                "the Forecaster has no normalisation statistics: train or test it with a data module that has mean "
                "and std (such as SunspotsDataModule), or load a checkpoint of one"
            )
        return values * self.target_std + self.target_mean

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        inputs, targets = batch[0], batch[1]
        loss = F.mse_loss(self(inputs), targets)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(targets))
        return loss

    def _evaluate(self, batch: Batch, stage: str) -> None:
        inputs, targets, naive, years = batch
        prediction = self(inputs)
        batch_size = len(targets)
        self.log(f"{stage}/loss", F.mse_loss(prediction, targets), on_epoch=True, batch_size=batch_size)
        truth = self.denormalise(targets)
        forecast = self.denormalise(prediction)
        persistence = seasonal_naive_forecast(self.denormalise(inputs[..., 0]), season=1, horizon=targets.size(1))
        for name, predicted in zip(_BASELINES, (forecast, naive, persistence), strict=True):
            metric = self.metrics[f"{stage}_{name}"]
            metric(predicted, truth)
            self.log(f"{stage}/{name}", metric, on_epoch=True, prog_bar=name == "mae", batch_size=batch_size)
        if stage == "test":
            steps = torch.arange(1, targets.size(1) + 1, device=targets.device).expand_as(targets)
            columns = (years, steps, truth, forecast, naive, persistence)
            self._test_records.append(torch.stack([c.detach().double() for c in columns], dim=-1).flatten(0, 1).cpu())

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def on_test_epoch_start(self) -> None:
        self._test_records = []

    def on_test_epoch_end(self) -> None:
        log_dir = self.trainer.log_dir
        if not (self.write_forecast and self._test_records and self.trainer.is_global_zero and log_dir):
            return
        rows = torch.cat(self._test_records).numpy()
        out = Path(log_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_forecast_csv(rows, out / "test_forecast.csv")
        plot_forecast(rows, out / "test_forecast.png", label=type(self.network).__name__)

    def predict_step(self, batch: Batch, batch_idx: int) -> Tensor:
        """The forecast in the original units."""
        return self.denormalise(self(batch[0]))


FORECAST_COLUMNS = ("year", "step", "truth", "forecast", "seasonal_naive", "persistence")


def write_forecast_csv(rows: np.ndarray, path: str | Path) -> Path:
    """Write forecast rows (:data:`FORECAST_COLUMNS`) as CSV, sorted by year and step."""
    path = Path(path)
    rows = rows[np.lexsort((rows[:, 1], rows[:, 0]))]
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(FORECAST_COLUMNS)
        for year, step, *values in rows.tolist():
            writer.writerow([int(year), int(step), *(f"{v:.4f}" for v in values)])
    return path


def plot_forecast(rows: np.ndarray, path: str | Path, label: str = "forecast", title: str | None = None) -> Path:
    """Draw the one-step-ahead forecasts of :data:`FORECAST_COLUMNS` rows against the truth and the baselines, each
    baseline's MAE (over the drawn steps) in the legend; ``label`` names the forecaster."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = rows[rows[:, 1] == 1]
    rows = rows[np.argsort(rows[:, 0])]
    year, truth, forecast, naive, persistence = rows[:, 0], rows[:, 2], rows[:, 3], rows[:, 4], rows[:, 5]

    def mae(predicted: np.ndarray) -> float:
        return float(np.abs(predicted - truth).mean())

    fig, ax = plt.subplots(figsize=(9, 4))
    ax.plot(year, truth, "k-", lw=2, label="observed")
    ax.plot(year, forecast, "C0-o", ms=3, label=f"{label} (MAE {mae(forecast):.1f})")
    ax.plot(year, naive, "C1--", label=f"seasonal naive (MAE {mae(naive):.1f})")
    ax.plot(year, persistence, "C2:", label=f"persistence (MAE {mae(persistence):.1f})")
    ax.set_xlabel("year")
    ax.set_ylabel("value")
    ax.set_title(title or "test period, one step ahead")
    ax.legend(frameon=False)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
