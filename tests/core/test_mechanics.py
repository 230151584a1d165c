"""Training mechanics: the NaN guard, atomic checkpoint writes, safe weight loading, W&B offline, run records."""

import csv
import json
import os
from pathlib import Path

import pytest
import torch

from paperzoo.core import checkpoint as ckpt_mod
from paperzoo.core.checkpoint import SafeCheckpointIO, load_state_dict, read_checkpoint
from paperzoo.core.cli import PaperzooCLI, main
from paperzoo.core.errors import CheckpointError

PROBE = ["--model", "paperzoo.core.probes.ProbeModule", "--data", "paperzoo.core.probes.RegressionDataModule"]
QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]


def test_nan_loss_stops_with_step_and_keeps_last_good_checkpoint(tmp_path, capsys):
    code = main(
        [
            "fit",
            *PROBE,
            "--model.init_args.nan_at_step=11",
            "--trainer.max_epochs=3",
            f"--trainer.default_root_dir={tmp_path}",
            *QUIET,
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and "became nan at step 11" in err[0]
    last = tmp_path / "default" / "version_0" / "checkpoints" / "last.ckpt"
    assert str(last) in err[0]
    state = read_checkpoint(last)
    assert state["global_step"] == 8  # written at the end of epoch 0, before the NaN at step 11
    assert all(torch.isfinite(v).all() for v in state["state_dict"].values())


def test_interrupted_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    good = {"state_dict": {"w": torch.ones(3)}, "pytorch-lightning_version": "2.6", "global_step": 1}
    io = SafeCheckpointIO()
    io.save_checkpoint(good, path)

    def torch_save_dies_halfway(obj, f):
        f.write(b"PK\x03\x04 half a zip file")
        raise KeyboardInterrupt  # the machine is stopped in the middle of the write

    monkeypatch.setattr(ckpt_mod.torch, "save", torch_save_dies_halfway)
    bad = {"state_dict": {"w": torch.zeros(3)}, "pytorch-lightning_version": "2.6", "global_step": 2}
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint(bad, path)
    monkeypatch.undo()
    assert read_checkpoint(path)["global_step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]  # no temporary file left behind


def test_load_state_dict_safetensors_and_weights_only(tmp_path):
    from safetensors.torch import save_file

    weights = {"a": torch.randn(2, 3), "b": torch.arange(4)}
    save_file(weights, tmp_path / "w.safetensors")
    torch.save(weights, tmp_path / "w.pt")
    for name in ("w.safetensors", "w.pt"):
        loaded = load_state_dict(tmp_path / name)
        assert all(torch.equal(loaded[k], weights[k]) for k in weights)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_load_state_dict_refuses_arbitrary_pickles(tmp_path):
    torch.save({"a": _Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="cannot be read safely"):
        load_state_dict(tmp_path / "evil.pt")
    (tmp_path / "trunc.safetensors").write_bytes(b"\x10\x00")
    with pytest.raises(CheckpointError):
        load_state_dict(tmp_path / "trunc.safetensors")


def test_run_directory_records_config_versions_and_commit(tmp_path):
    cli = PaperzooCLI(args=["fit", *PROBE, "--trainer.max_epochs=1", f"--trainer.default_root_dir={tmp_path}", *QUIET])
    log_dir = Path(cli.trainer.log_dir)
    config = (log_dir / "config.yaml").read_text()
    assert "paperzoo.core.probes.ProbeModule" in config and "max_epochs: 1" in config
    env = json.loads((log_dir / "environment.json").read_text())
    assert env["packages"]["torch"] == torch.__version__.split("+")[0] or env["packages"]["torch"] == torch.__version__
    assert "paperzoo-core" in env["packages"] and "git_commit" in env
    assert (log_dir / "metrics.csv").is_file()


def test_wandb_runs_offline_without_a_key(tmp_path, monkeypatch):
    for var in ("WANDB_API_KEY", "WANDB_MODE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc with W&B credentials
    monkeypatch.setenv("NETRC", str(tmp_path / ".netrc"))
    monkeypatch.chdir(tmp_path)
    base = Path(__file__).parents[2] / "experiments" / "_base" / "wandb.yaml"
    cli = PaperzooCLI(
        args=[
            "fit",
            *PROBE,
            "--config",
            str(base),
            "--experiment.name=probe",
            "--trainer.max_epochs=2",
            f"--trainer.default_root_dir={tmp_path}",
            *QUIET,
        ]
    )
    loggers = {type(lg).__name__ for lg in cli.trainer.loggers}
    assert loggers == {"CSVLogger", "WandbLogger"}
    offline_runs = list((tmp_path / "runs" / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 1
    assert any(offline_runs[0].glob("*.wandb")), "the offline run holds the logged data"
    with open(Path(cli.trainer.log_dir) / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("train/loss_epoch")]
    assert len(rows) == 2
