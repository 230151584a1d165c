"""The paperzoo command: list, run, and one-sentence errors with a non-zero exit."""

import json
from pathlib import Path

import pytest
import yaml

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
    # --experiment.name renames the run everywhere: its folder, its record and the printed summary
    assert main(["run", str(config), "--experiment.name=probe-renamed", "--trainer.max_epochs=1"]) == 0
    assert "probe-renamed: test MSE = " in capsys.readouterr().out
    (renamed,) = tmp_path.glob("runs/probe-renamed/version_*/result.json")
    assert json.loads(renamed.read_text())["experiment"] == "probe-renamed"


def test_enable_checkpointing_false_writes_no_checkpoint(tmp_path, monkeypatch):
    # The CLI always configures a ModelCheckpoint; asking for no checkpoints must drop it, not crash.
    monkeypatch.chdir(tmp_path)
    args = [*PROBE, "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false"]
    assert main(["fit", *args, "--trainer.enable_checkpointing=false"]) == 0
    assert list(tmp_path.glob("runs/default/version_0/*.csv"))
    assert not list(tmp_path.rglob("*.ckpt"))
    assert main(["fit", *args]) == 0  # and by default there is one
    assert list(tmp_path.glob("runs/default/version_1/checkpoints/last.ckpt"))


GROUP = """\
experiment:
  name: probe-group
  metric: test MSE
  monitor: test/loss
  higher_is_better: false
  variants:
    sgd:
      our_value: 0.5
      config: {model: {init_args: {optimizer: {class_path: paperzoo.core.optim.SGD, init_args: {lr: 0.05}}}}}
    adam:
      config: {model: {init_args: {hidden: 4, optimizer: {class_path: paperzoo.core.optim.Adam}}}}
model:
  class_path: paperzoo.core.probes.ProbeModule
  init_args:
    hidden: 16
    optimizer: {class_path: paperzoo.core.optim.SGD, init_args: {lr: 0.01, momentum: 0.9}}
data:
  class_path: paperzoo.core.probes.RegressionDataModule
checkpoint: {monitor: val/loss, mode: min}
trainer: {max_epochs: 2, enable_progress_bar: false, enable_model_summary: false}
"""


def test_group_catalog_entries_and_merged_configs(tmp_path):
    (tmp_path / "_base").mkdir()
    (tmp_path / "probe").mkdir()
    (tmp_path / "probe" / "group.yaml").write_text(GROUP)
    entries = {e.info.name: e for e in catalog(tmp_path)}
    assert set(entries) == {"probe-group", "probe-group/sgd", "probe-group/adam"}
    group = entries["probe-group"]
    assert group.is_group and [m.info.name for m in group.members()] == ["probe-group/sgd", "probe-group/adam"]
    sgd, adam = entries["probe-group/sgd"], entries["probe-group/adam"]
    assert (sgd.info.our_value, adam.info.our_value, sgd.group) == (0.5, None, "probe-group")
    assert not sgd.is_group and sgd.members() == [sgd]
    # a class_path in a variant replaces the whole optimizer block: SGD's momentum does not leak into Adam
    assert adam.config_dict()["model"]["init_args"] == {
        "hidden": 4,
        "optimizer": {"class_path": "paperzoo.core.optim.Adam"},
    }
    assert sgd.config_dict()["model"]["init_args"]["optimizer"]["init_args"] == {"lr": 0.05}
    assert sgd.config_dict()["experiment"]["name"] == "probe-group/sgd"
    assert "variants" not in sgd.config_dict()["experiment"]
    assert group.config_dict() == yaml.safe_load(GROUP)


def test_run_group_runs_every_variant_and_plots_them_together(tmp_path, capsys, monkeypatch):
    config = tmp_path / "group.yaml"
    config.write_text(GROUP)
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(config)]) == 0
    out = capsys.readouterr().out
    assert "probe-group/sgd: test MSE = " in out and "probe-group/adam: test MSE = " in out
    assert "probe-group: test MSE by variant" in out
    assert (tmp_path / "runs" / "probe-group" / "compare.png").stat().st_size > 10_000
    saved = yaml.safe_load((tmp_path / "runs/probe-group/adam/version_0/config.yaml").read_text())
    assert saved["model"]["init_args"]["hidden"] == 4
    assert saved["model"]["init_args"]["optimizer"]["class_path"] == "paperzoo.core.optim.Adam"
    assert json.loads((tmp_path / "runs/probe-group/sgd/version_0/result.json").read_text())["experiment"] == (
        "probe-group/sgd"
    )
    # one variant alone, by path/variant
    assert main(["run", f"{config}/adam"]) == 0
    assert (tmp_path / "runs/probe-group/adam/version_1/result.json").is_file()
    assert not (tmp_path / "runs/probe-group/sgd/version_1").exists()


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        ("  variants: []\n", "variants must map variant names"),
        ("  variants: {a: {lr: 1}}\n", "variant 'a' may only set config, our_source, our_value, paper_value"),
        ("  variants: {a: {config: [1]}}\n", "variant 'a' config must be a mapping"),
    ],
)
def test_malformed_variants_give_one_sentence(tmp_path, capsys, monkeypatch, variants, message):
    config = tmp_path / "bad.yaml"
    config.write_text(
        "experiment:\n  name: bad\n" + variants + "model: {class_path: paperzoo.core.probes.ProbeModule}\n"
    )
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(config)]) == 1
    assert message in _one_error_line(capsys)


def test_plot_draws_several_runs_on_shared_axes(tmp_path, capsys, monkeypatch):
    config = tmp_path / "group.yaml"
    config.write_text(GROUP)
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(config)]) == 0
    capsys.readouterr()
    runs = [str(tmp_path / f"runs/probe-group/{v}/version_0") for v in ("sgd", "adam")]
    assert main(["plot", *runs, "--out", str(tmp_path / "both.png"), "--title", "both"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "both.png")
    assert (tmp_path / "both.png").stat().st_size > 10_000
    assert main(["plot", runs[0], str(tmp_path / "missing")]) == 1
    assert "does not exist" in _one_error_line(capsys)


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


def test_warmup_longer_than_training_gives_one_sentence(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = [*PROBE, "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false"]
    args += [
        "--model.lr_scheduler=paperzoo.core.schedules.CosineWithWarmup",
        "--model.lr_scheduler.warmup_steps=100000",
    ]
    assert main(["fit", *args]) == 1
    line = _one_error_line(capsys)
    assert "warmup_steps must lie in [0, total_steps=" in line and "train for more steps" in line
