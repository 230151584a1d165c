"""The paperzoo command: list, run, and one-sentence errors with a non-zero exit."""

import json
from pathlib import Path

import pytest

from paperzoo.core.cli import main
from paperzoo.core.experiments import catalog

PROBE = ["--model", "paperzoo.core.probes.ProbeModule", "--data", "paperzoo.core.probes.RegressionDataModule"]
EXPERIMENTS = Path(__file__).parents[2] / "experiments"


def _one_error_line(capsys) -> str:
    err = [ln for ln in capsys.readouterr().err.strip().splitlines() if ln.strip()]
    assert len(err) == 1, err
    assert err[0].startswith("error: ")
    return err[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["fit", *PROBE, "--trainer.max_epoch=1"], "max_epoch"),
        (["fit", *PROBE, "--model.init_args.hiden=3"], "ProbeModule has no argument 'hiden'"),
        (["fit", "--model", "paperzoo.core.probes.NoSuchModule", "--data", PROBE[3]], "cannot be imported"),
        (["run", "resnet20-cifar1O"], "did you mean resnet20-cifar10"),
        (["run", "no-such-experiment"], "there is no experiment called 'no-such-experiment'"),
    ],
)
def test_bad_input_gives_one_sentence_and_nonzero_exit(capsys, args, expected):
    assert main(args) != 0
    assert expected in _one_error_line(capsys)


def test_misspelt_key_in_a_config_file(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("trainer:\n  max_epoch: 2\n")
    assert main(["fit", *PROBE, "--config", str(config)]) == 1
    assert "'trainer.max_epoch' is not accepted" in _one_error_line(capsys)


def test_run_without_cifar10_says_where_to_put_it(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # data/cifar10 does not exist here
    monkeypatch.setenv("PAPERZOO_EXPERIMENTS", str(EXPERIMENTS))
    assert main(["run", "resnet20-cifar10"]) == 1
    line = _one_error_line(capsys)
    assert "cifar-10-batches-py" in line and "data/cifar10" in line


def test_debug_shows_the_traceback(capsys):
    assert main(["--debug", "run", "no-such-experiment"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_list_json_is_stable_and_complete(capsys):
    assert main(["list", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    names = {r["name"] for r in rows}
    assert {
        "lenet5-mnist",
        "resnet20-cifar10",
        "resnet56-cifar10",
        "resnet110-cifar10",
        "resnet18-cifar10",
        "resnet20-fashionmnist",
        "quickstart",
    } <= names
    for r in rows:
        assert {"name", "paper", "dataset", "metric", "paper_value", "our_value", "config"} <= r.keys()
        assert {"title", "year", "arxiv"} <= r["paper"].keys()
        assert (EXPERIMENTS.parent / r["config"]).is_file()
    by_name = {r["name"]: r for r in rows}
    assert by_name["resnet20-cifar10"]["paper_value"] == 8.75
    assert by_name["resnet110-cifar10"]["paper_value"] == 6.43
    assert by_name["lenet5-mnist"]["paper_value"] == 0.95


def test_list_table_shows_paper_values(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for e in catalog(EXPERIMENTS):
        assert e.info.name in out
    for paper_value in ("8.75", "6.97", "6.43", "0.95"):
        assert paper_value in out


def test_run_prints_metric_next_to_paper_value(tmp_path, capsys, monkeypatch):
    config = tmp_path / "probe.yaml"
    config.write_text(
        "experiment:\n  name: probe\n  metric: test MSE\n  monitor: test/loss\n  paper_value: 0.01\n"
        "  higher_is_better: false\n"
        "model:\n  class_path: paperzoo.core.probes.ProbeModule\n"
        "data:\n  class_path: paperzoo.core.probes.RegressionDataModule\n"
        "checkpoint:\n  monitor: val/loss\n  mode: min\n"
        "trainer:\n  max_epochs: 2\n  enable_progress_bar: false\n"
    )
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(config), "--seeds", "2"]) == 0
    out = capsys.readouterr().out
    assert "probe: test MSE = " in out and "+- " in out and "over 2 seeds; paper: 0.01" in out
    results = sorted(tmp_path.glob("runs/probe/version_*/result.json"))
    assert len(results) == 2
    record = json.loads(results[0].read_text())
    assert record["seed"] == 0 and record["value"] == record["test_metrics"]["test/loss"]
    assert "epoch" in Path(record["checkpoint"]).name  # tested on the best checkpoint, not the last weights


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("list", "run", "fit", "validate", "test", "predict"):
        assert f"\n  {command} " in out
    assert main([]) == 2


def test_corrupt_dataset_file_gives_one_sentence(tmp_path, capsys, monkeypatch):
    from paperzoo.core.testing import write_mnist

    data = write_mnist(tmp_path / "mnist", n_train=64, n_test=16)
    images = data / "train-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[: len(images.read_bytes()) // 2])  # a download cut off half-way
    monkeypatch.chdir(tmp_path)
    config = EXPERIMENTS / "vision" / "lenet5_lecun1998" / "mnist.yaml"
    code = main(["run", str(config), f"--data.init_args.data_dir={data}", "--data.init_args.val_size=16"])
    assert code == 1
    line = _one_error_line(capsys)
    assert "train-images-idx3-ubyte.gz" in line
