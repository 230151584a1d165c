"""A run stopped part-way and resumed from its checkpoint ends exactly where a straight run ends."""

import csv
from pathlib import Path

import pytest
import torch

from paperzoo.core.cli import PaperzooCLI

PROBE = ["--model", "paperzoo.core.probes.ProbeModule", "--data", "paperzoo.core.probes.RegressionDataModule"]


def _fit(root: Path, max_epochs: int, ckpt: Path | None = None) -> PaperzooCLI:
    args = [
        "fit",
        *PROBE,
        f"--trainer.max_epochs={max_epochs}",
        f"--trainer.default_root_dir={root}",
        "--trainer.deterministic=true",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        "--trainer.log_every_n_steps=1",
        "--seed_everything=7",
    ]
    if ckpt is not None:
        args.append(f"--ckpt_path={ckpt}")
    return PaperzooCLI(args=args)


def _epoch_losses(log_dir: str) -> dict[int, str]:
    with open(Path(log_dir) / "metrics.csv") as f:
        return {int(r["epoch"]): r["train/loss_epoch"] for r in csv.DictReader(f) if r.get("train/loss_epoch")}


def test_resumed_run_is_bit_exact(tmp_path):
    straight = _fit(tmp_path / "straight", max_epochs=4)
    first = _fit(tmp_path / "split", max_epochs=2)
    last = Path(first.trainer.log_dir) / "checkpoints" / "last.ckpt"
    assert last.is_file()
    resumed = _fit(tmp_path / "split", max_epochs=4, ckpt=last)

    assert resumed.trainer.global_step == straight.trainer.global_step == 32
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after resuming"
    # The logged losses of the resumed epochs are the straight run's, to the last printed digit.
    straight_losses = _epoch_losses(straight.trainer.log_dir)
    resumed_losses = _epoch_losses(resumed.trainer.log_dir)
    assert {e: straight_losses[e] for e in (2, 3)} == {e: resumed_losses[e] for e in (2, 3)}


def test_resume_without_rng_restore_differs(tmp_path, monkeypatch):
    """The exactness above is earned: without restoring the RNG state, dropout makes the runs diverge."""
    from paperzoo.core.modules.base import PaperzooModule

    monkeypatch.setattr(PaperzooModule, "on_load_checkpoint", lambda self, checkpoint: None)
    straight = _fit(tmp_path / "straight", max_epochs=4)
    first = _fit(tmp_path / "split", max_epochs=2)
    resumed = _fit(tmp_path / "split", max_epochs=4, ckpt=Path(first.trainer.log_dir) / "checkpoints" / "last.ckpt")
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("bad", ["garbage", "foreign"])
def test_resume_refuses_bad_checkpoint(tmp_path, capsys, bad):
    from paperzoo.core.cli import main

    path = tmp_path / "bad.ckpt"
    if bad == "garbage":
        path.write_bytes(b"\x00not a checkpoint" * 10)
    else:
        torch.save({"weights": torch.zeros(3)}, path)
    code = main(["fit", *PROBE, f"--trainer.default_root_dir={tmp_path}", f"--ckpt_path={path}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and err[0].startswith("error: ") and str(path) in err[0]
    expected = "cannot be read safely" if bad == "garbage" else "not a paperzoo/Lightning checkpoint"
    assert expected in err[0]
