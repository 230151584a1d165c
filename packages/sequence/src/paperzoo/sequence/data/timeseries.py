"""Yearly sunspot numbers (statsmodels' copy, 1700-2008) as sliding windows for forecasting, split by time.

The series is the yearly mean sunspot number of the Royal Observatory of Belgium's SIDC (version 1 of the
International Sunspot Number), a classic benchmark of non-linear forecasting since Yule 1927 and of neural
forecasters since Weigend, Huberman & Rumelhart 1990, "Predicting the future: a connectionist approach". Its cycle
is about 11 years. statsmodels ships it as ``statsmodels/datasets/sunspots/sunspots.csv`` with the header
``"YEAR","SUNACTIVITY"`` and one row per year.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from paperzoo.core.data import EpochSeededSampler, package_data_file, run_seed
from paperzoo.core.errors import ConfigError, CorruptDataError, DatasetNotFoundError
from paperzoo.sequence.models.forecaster import seasonal_naive_forecast


def read_sunspots(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The years and values of a yearly sunspot CSV in statsmodels' format (columns ``YEAR`` and ``SUNACTIVITY``).

    Returns:
        ``(years, values)``: int64 consecutive years and float64 values.

    Raises:
        DatasetNotFoundError: there is no file at ``path``.
        CorruptDataError: the columns are missing, a value is not a finite number, or the years are not consecutive.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(
            f"{path} does not exist: pass statsmodels' sunspots.csv (columns YEAR,SUNACTIVITY) as "
            "--data.init_args.path, or leave path unset after `pip install statsmodels`"
        )
    years, values = [], []
    try:
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            missing = {"YEAR", "SUNACTIVITY"} - set(reader.fieldnames or [])
            if missing:
                raise CorruptDataError(
                    f"{path} has the columns {reader.fieldnames}, without {sorted(missing)}; it must be statsmodels' "
                    "sunspots.csv (columns YEAR,SUNACTIVITY)"
                )
            for row in reader:
                try:
                    year, value = float(row["YEAR"]), float(row["SUNACTIVITY"])
                except (TypeError, ValueError):
                    raise CorruptDataError(
                        f"{path} line {reader.line_num} is not a year and a number: {row['YEAR']!r}, "
                        f"{row['SUNACTIVITY']!r}"
                    ) from None
                if not (math.isfinite(value) and year.is_integer()):
                    raise CorruptDataError(f"{path} line {reader.line_num} has year {year} and value {value}")
                years.append(int(year))
                values.append(value)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise CorruptDataError(f"{path} is not a readable UTF-8 CSV file ({err}); re-create or re-install it") from err
    years_array = np.asarray(years, dtype=np.int64)
    if len(years_array) < 2 or (np.diff(years_array) != 1).any():
        raise CorruptDataError(f"{path} must hold consecutive years, one row each, in order")
    return years_array, np.asarray(values, dtype=np.float64)


class SunspotsDataModule(pl.LightningDataModule):
    """Forecast the next ``horizon`` yearly sunspot numbers from the previous ``window`` (see the module doc).

    The split is chronological, by the year of the *targets*: the last ``test_years`` years are the test targets, the
    ``val_years`` before them the validation targets, and every earlier year (after the first window) a training
    target. A window whose targets would straddle two periods is dropped, so no target year belongs to two splits;
    the inputs of a validation or test window may reach back into earlier periods, which is observed history at the
    time of the forecast, not leakage. The values are standardised with the mean and standard deviation of the
    training period only (:attr:`mean`, :attr:`std`).

    A batch is ``(inputs (B, window, 1), targets (B, horizon), naive (B, horizon), years (B, horizon))``: inputs and
    targets standardised, ``naive`` the seasonal-naive forecast of the targets in the original units
    (:func:`~paperzoo.sequence.models.forecaster.seasonal_naive_forecast` of the whole history up to the window's
    end, with ``season``; NaN for the earliest training windows, whose history is shorter than a season) and
    ``years`` the target years.

    Args:
        path: statsmodels' ``sunspots.csv`` or a file in its format; ``None`` for the copy inside the installed
            statsmodels package (found without importing it).
        window: past values each forecast reads.
        horizon: future values each window predicts.
        test_years: the last years, held out as the test targets.
        val_years: the years before them, the validation targets.
        season: the season length of the seasonal-naive baseline (the ~11-year solar cycle).
        batch_size: training batch size.
        eval_batch_size: batch size of the validation and test loaders; ``None`` for one batch each.
        seed: seed of the training order (mixed with the run's seed).
        num_workers: DataLoader worker processes.
    """

    file_name = "sunspots.csv"

    def __init__(
        self,
        path: str | None = None,
        window: int = 22,
        horizon: int = 1,
        test_years: int = 40,
        val_years: int = 30,
        season: int = 11,
        batch_size: int = 16,
        eval_batch_size: int | None = None,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if min(window, horizon, season, batch_size) < 1:
            raise ConfigError(
                f"window, horizon, season and batch_size must be at least 1, got {window}, {horizon}, {season} and "
                f"{batch_size}"
            )
        if test_years < horizon or val_years < horizon:
            raise ConfigError(
                f"test_years={test_years} and val_years={val_years} must each be at least horizon={horizon}, so that "
                "each period holds a whole forecast"
            )
        self.path = path
        self.window = window
        self.horizon = horizon
        self.test_years = test_years
        self.val_years = val_years
        self.season = season
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.seed = seed
        self.num_workers = num_workers
        self.years: np.ndarray | None = None
        self.series: np.ndarray | None = None
        self.mean: float | None = None
        self.std: float | None = None
        self.train_set: TensorDataset | None = None
        self.val_set: TensorDataset | None = None
        self.test_set: TensorDataset | None = None

    def find_file(self) -> Path:
        """``path``, or ``statsmodels/datasets/sunspots/sunspots.csv`` of the installed statsmodels.

        Raises:
            DatasetNotFoundError: statsmodels is not installed, or its copy of the data is missing.
        """
        if self.path is not None:
            return Path(self.path)
        return package_data_file(
            "statsmodels",
            f"datasets/sunspots/{self.file_name}",
            "the sunspot numbers come",
            or_else="pass a CSV with columns YEAR,SUNACTIVITY as --data.init_args.path",
        )

    def setup(self, stage: str | None = None) -> None:
        """Read the series, fix the normalisation on the training period and cut the three window sets (once)."""
        if self.train_set is not None:
            return
        path = self.find_file()
        self.years, self.series = read_sunspots(path)
        n = len(self.series)
        train_end = n - self.test_years - self.val_years  # first index that is not a training target
        if train_end - self.window < self.horizon:
            raise ConfigError(
                f"{path} has {n} years, too few for window={self.window}, horizon={self.horizon}, val_years="
                f"{self.val_years} and test_years={self.test_years}: no training window is left; shorten them"
            )
        if train_end < self.season:
            raise ConfigError(
                f"the seasonal-naive baseline needs a season ({self.season} years) of history before the validation "
                f"period, but only {train_end} training years remain; lower val_years or test_years"
            )
        train_values = self.series[:train_end]
        self.mean = float(train_values.mean())
        self.std = float(train_values.std())
        if self.std == 0:
            raise CorruptDataError(f"{path}: the training period's values are all {self.mean}; nothing to forecast")
        val_end = train_end + self.val_years
        self.train_set = self._windows(self.window, train_end)
        self.val_set = self._windows(train_end, val_end)
        self.test_set = self._windows(val_end, n)

    def normalise(self, values: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Values in the original units, standardised with the training period's statistics."""
        return (values - self.mean) / self.std

    def denormalise(self, values: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Standardised values back in the original units."""
        return values * self.std + self.mean

    def _windows(self, first_target: int, end: int) -> TensorDataset:
        """Every window whose ``horizon`` targets all lie in ``[first_target, end)``, inputs reaching back ``window``
        steps (never before index 0)."""
        first_target = max(first_target, self.window)
        origins = np.arange(first_target - 1, end - self.horizon)  # index of each window's last input
        steps = np.arange(self.horizon)
        inputs = np.stack([self.series[o - self.window + 1 : o + 1] for o in origins])  # (N, window)
        targets = self.series[origins[:, None] + 1 + steps]  # (N, horizon)
        naive = np.stack(
            [
                seasonal_naive_forecast(self.series[: o + 1], self.season, self.horizon)
                if o + 1 >= self.season
                else np.full(self.horizon, np.nan)
                for o in origins
            ]
        )
        return TensorDataset(
            torch.from_numpy(self.normalise(inputs)).float().unsqueeze(-1),  # (N, window, 1)
            torch.from_numpy(self.normalise(targets)).float(),  # (N, horizon)
            torch.from_numpy(naive).float(),  # (N, horizon), original units
            torch.from_numpy(self.years[origins[:, None] + 1 + steps]),  # (N, horizon)
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled by ``(seed, run seed, epoch)`` on one device; under DDP Lightning injects its sampler."""
        if self.trainer is None or self.trainer.world_size == 1:
            order_seed = int(np.random.SeedSequence((self.seed, run_seed())).generate_state(1)[0])
            sampler = EpochSeededSampler(len(self.train_set), order_seed)
            return self._loader(self.train_set, self.batch_size, sampler=sampler)
        return self._loader(self.train_set, self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, self.eval_batch_size or len(self.val_set))

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, self.eval_batch_size or len(self.test_set))

    def predict_dataloader(self) -> DataLoader:
        """The test windows, in time order."""
        return self.test_dataloader()

    def _loader(self, dataset: TensorDataset, batch_size: int, **kwargs) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            **kwargs,
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(path={self.path!r}, window={self.window}, horizon={self.horizon}, "
            f"test_years={self.test_years}, val_years={self.val_years}, season={self.season})"
        )
