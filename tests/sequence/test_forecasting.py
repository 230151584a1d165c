"""Tests of forecasting: the seasonal-naive baseline, the sunspot reader and DataModule (on files in statsmodels'
format), the LSTM forecaster and the Forecaster module's MAE in the original units."""

from __future__ import annotations

import csv
import importlib.util

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from paperzoo.core.errors import ConfigError, CorruptDataError, DatasetNotFoundError
from paperzoo.sequence import create_model
from paperzoo.sequence.data import SunspotsDataModule, read_sunspots
from paperzoo.sequence.models import LSTMForecaster, seasonal_naive_forecast
from paperzoo.sequence.modules import Forecaster
from paperzoo.sequence.testing import write_sunspots_csv


@pytest.fixture(scope="module")
def sunspots(tmp_path_factory):
    return write_sunspots_csv(tmp_path_factory.mktemp("sunspots") / "sunspots.csv", years=120)


def _data(path, **kwargs) -> SunspotsDataModule:
    options = {"path": str(path), "window": 12, "test_years": 20, "val_years": 15, "batch_size": 8, **kwargs}
    data = SunspotsDataModule(**options)
    data.setup()
    return data


# ---------------------------------------------------------------- the seasonal-naive baseline


def test_seasonal_naive_is_the_value_one_season_earlier():
    history = np.arange(30.0)  # y_t = t, so the forecast's values are the indices it reads
    assert seasonal_naive_forecast(history, season=11).tolist() == [19.0]  # y_30 <- y_19
    assert seasonal_naive_forecast(history, season=11, horizon=3).tolist() == [19.0, 20.0, 21.0]
    # past one season the last observed season repeats: y_41 <- y_30 is unknown, so y_19 again
    assert seasonal_naive_forecast(history, season=11, horizon=12).tolist() == [*range(19, 30), 19]
    assert seasonal_naive_forecast(history, season=1, horizon=2).tolist() == [29.0, 29.0]  # persistence


def test_seasonal_naive_matches_the_formula_on_batched_tensors():
    rng = np.random.default_rng(0)
    history = rng.normal(size=(4, 3, 40))
    for season in (1, 7, 11):
        for horizon in (1, 5, 25):
            forecast = seasonal_naive_forecast(torch.from_numpy(history), season, horizon)
            assert isinstance(forecast, torch.Tensor) and forecast.shape == (4, 3, horizon)
            T = history.shape[-1]
            for k in range(1, horizon + 1):
                expected = history[..., T + k - season * ((k - 1) // season + 1) - 1]  # y_{T+k-m(floor((k-1)/m)+1)}
                np.testing.assert_array_equal(forecast[..., k - 1].numpy(), expected)


def test_seasonal_naive_rejects_short_histories():
    with pytest.raises(ValueError, match="at least one season"):
        seasonal_naive_forecast(np.arange(5.0), season=11)
    with pytest.raises(ValueError, match="at least 1"):
        seasonal_naive_forecast(np.arange(5.0), season=1, horizon=0)


# ---------------------------------------------------------------- reading and splitting


def test_reader_reads_statsmodels_format(sunspots):
    years, values = read_sunspots(sunspots)
    assert sunspots.read_text().splitlines()[0] == '"YEAR","SUNACTIVITY"'
    assert years.tolist() == list(range(1700, 1820)) and values.dtype == np.float64 and (values >= 0).all()


@pytest.mark.skipif(importlib.util.find_spec("statsmodels") is None, reason="needs statsmodels")
def test_reader_reads_the_real_file():
    data = SunspotsDataModule()
    years, values = read_sunspots(data.find_file())
    assert (years[0], years[-1], len(values)) == (1700, 2008, 309)
    assert values[:4].tolist() == [5.0, 11.0, 16.0, 23.0]


@pytest.mark.parametrize("horizon", [1, 3])
def test_split_is_chronological_with_disjoint_target_years(sunspots, horizon):
    data = _data(sunspots, horizon=horizon)
    train, val, test = (s.tensors[3] for s in (data.train_set, data.val_set, data.test_set))  # target years
    assert train.shape[1] == val.shape[1] == test.shape[1] == horizon
    assert train.max() < val.min() and val.max() < test.min()
    assert set(range(1800, 1820)) == set(test.flatten().tolist())  # the last 20 years are the test targets
    assert set(range(1785, 1800)) == set(val.flatten().tolist())
    assert len(data.test_set) == 20 - horizon + 1 and len(data.val_set) == 15 - horizon + 1
    # each window's inputs are the `window` years right before its first target
    _, values = read_sunspots(sunspots)
    for dataset in (data.train_set, data.test_set):
        inputs, targets, _, target_years = dataset.tensors
        first = (target_years[:, 0] - 1700).numpy()
        expected = np.stack([values[i - 12 : i] for i in first])
        np.testing.assert_allclose(data.denormalise(inputs[..., 0].double()).numpy(), expected, atol=1e-4)
        np.testing.assert_allclose(
            data.denormalise(targets.double()).numpy(), values[first[:, None] + np.arange(horizon)], atol=1e-4
        )


def test_normalisation_uses_training_years_only(sunspots, tmp_path):
    data = _data(sunspots)
    years, values = read_sunspots(sunspots)
    train_values = values[: 120 - 20 - 15]
    assert data.mean == pytest.approx(train_values.mean()) and data.std == pytest.approx(train_values.std())
    # a different future changes neither the statistics nor the training windows
    changed = values.copy()
    changed[-35:] = changed[-35:] * 10 + 500
    other = tmp_path / "changed.csv"
    other.write_text('"YEAR","SUNACTIVITY"\n' + "".join(f"{y},{v:g}\n" for y, v in zip(years, changed, strict=True)))
    shifted = _data(other)
    assert (shifted.mean, shifted.std) == (data.mean, data.std)
    for a, b in zip(shifted.train_set.tensors, data.train_set.tensors, strict=True):
        torch.testing.assert_close(a, b, equal_nan=True)


def test_batches_carry_the_seasonal_naive_forecast_in_original_units(sunspots):
    data = _data(sunspots, horizon=2, window=8)
    _, values = read_sunspots(sunspots)
    _, _, naive, target_years = data.test_set.tensors
    index = (target_years - 1700).numpy()
    np.testing.assert_allclose(naive.numpy(), values[index - 11], rtol=1e-6)
    # the first training windows (8 years) have less than a season of history: no naive forecast there
    assert torch.isnan(data.train_set.tensors[2][0]).all() and not torch.isnan(data.train_set.tensors[2][-1]).any()


def test_bad_inputs_give_one_clear_error(sunspots, tmp_path, monkeypatch):
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        _data(tmp_path / "missing.csv")
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("year,value\n1700,5\n")
    with pytest.raises(CorruptDataError, match=r"without \['SUNACTIVITY', 'YEAR'\]"):
        read_sunspots(wrong)
    gap = tmp_path / "gap.csv"
    gap.write_text('"YEAR","SUNACTIVITY"\n1700,5\n1701,11\n1703,16\n')
    with pytest.raises(CorruptDataError, match="consecutive years"):
        read_sunspots(gap)
    text = tmp_path / "text.csv"
    text.write_text('"YEAR","SUNACTIVITY"\n1700,5\n1701,many\n')
    with pytest.raises(CorruptDataError, match="line 3 is not a year and a number"):
        read_sunspots(text)
    with pytest.raises(ConfigError, match="no training window is left"):
        _data(sunspots, window=90)
    with pytest.raises(ConfigError, match="at least horizon"):
        SunspotsDataModule(horizon=5, test_years=3)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    with pytest.raises(DatasetNotFoundError, match="pip install statsmodels"):
        SunspotsDataModule().setup()


# ---------------------------------------------------------------- the forecaster


def test_lstm_forecaster_shapes_and_registry():
    model = create_model("lstm_forecaster", hidden_size=8, horizon=3)
    assert isinstance(model, LSTMForecaster)
    assert model(torch.randn(5, 12, 1)).shape == model(torch.randn(5, 12)).shape == (5, 3)
    with pytest.raises(ValueError, match="horizon"):
        LSTMForecaster(horizon=0)


def test_lstm_forecaster_overfits_a_tiny_batch():
    torch.manual_seed(0)
    model = LSTMForecaster(hidden_size=16, horizon=2)
    x = torch.randn(8, 10, 1)
    y = torch.randn(8, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-2)
    first = F.mse_loss(model(x), y).item()
    for _ in range(200):
        loss = F.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < first / 20


def _trainer(tmp_path, **kwargs) -> pl.Trainer:
    options = dict(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    return pl.Trainer(**{**options, **kwargs})


def test_forecaster_reports_mae_in_original_units(sunspots, tmp_path):
    data = _data(sunspots, horizon=2)
    torch.manual_seed(0)
    network = LSTMForecaster(hidden_size=8, horizon=2)
    (metrics,) = _trainer(tmp_path).test(Forecaster(network), datamodule=data, verbose=False)

    _, values = read_sunspots(sunspots)
    inputs, _, _, target_years = data.test_set.tensors
    truth = values[(target_years - 1700).numpy()]  # read straight from the file
    with torch.no_grad():
        forecast = network.eval()(inputs).double().numpy() * data.std + data.mean
    assert metrics["test/mae"] == pytest.approx(np.abs(forecast - truth).mean(), rel=1e-4)
    # the MAE in standardised units is smaller by the factor std (about 30 here): forgetting to undo it fails
    assert data.std > 10 and metrics["test/mae"] > 3 * np.abs(forecast - truth).mean() / data.std
    naive = values[(target_years - 1700).numpy() - 11]
    assert metrics["test/naive_mae"] == pytest.approx(np.abs(naive - truth).mean(), rel=1e-5)
    last = values[(target_years[:, :1] - 1700).numpy() - 1]  # the value before each window's first target
    assert metrics["test/persistence_mae"] == pytest.approx(np.abs(last - truth).mean(), rel=1e-5)

    with (tmp_path / "test_forecast.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == truth.size and float(rows[0]["truth"]) == pytest.approx(truth[0, 0], abs=1e-3)
    assert (tmp_path / "test_forecast.png").stat().st_size > 0


def test_forecaster_learns_and_keeps_its_statistics_in_checkpoints(sunspots, tmp_path):
    data = _data(sunspots)
    torch.manual_seed(0)
    module = Forecaster(LSTMForecaster(hidden_size=16), optimizer=lambda p: torch.optim.Adam(p, lr=1e-2))
    trainer = _trainer(tmp_path, max_epochs=30)
    trainer.fit(module, datamodule=data)
    (metrics,) = trainer.test(module, datamodule=data, verbose=False)
    assert metrics["test/mae"] < metrics["test/persistence_mae"]  # the cycle is learnt, not just the last value
    trainer.save_checkpoint(tmp_path / "model.ckpt")
    restored = Forecaster.load_from_checkpoint(tmp_path / "model.ckpt", network=LSTMForecaster(hidden_size=16))
    assert (restored.target_mean.item(), restored.target_std.item()) == pytest.approx((data.mean, data.std))


def test_forecaster_errors(sunspots, tmp_path):
    with pytest.raises(ConfigError, match="no normalisation statistics"):
        Forecaster(LSTMForecaster()).denormalise(torch.zeros(2))
    data = _data(sunspots, horizon=2)
    with pytest.raises(ConfigError, match="forecasts 1 steps but the data's horizon is 2"):
        _trainer(tmp_path, fast_dev_run=1).fit(Forecaster(LSTMForecaster(horizon=1)), datamodule=data)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("statsmodels") is None, reason="needs statsmodels")
def test_a_short_run_on_the_real_series_beats_the_seasonal_naive_forecast(tmp_path):
    data = SunspotsDataModule()
    data.setup()
    pl.seed_everything(0)
    module = Forecaster(LSTMForecaster(hidden_size=32), optimizer=lambda p: torch.optim.Adam(p, lr=3e-3))
    trainer = _trainer(tmp_path, max_epochs=20)
    trainer.fit(module, datamodule=data)
    (metrics,) = trainer.test(module, datamodule=data, verbose=False)
    assert metrics["test/mae"] < metrics["test/naive_mae"]
