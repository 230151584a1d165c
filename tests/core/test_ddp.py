"""Real DDP: two CPU processes over gloo, launched by Lightning, on different shards, with reduced metrics."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.timeout(300)
def test_ddp_two_processes_train_on_disjoint_shards_and_reduce_metrics(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "paperzoo.core.cli",
        "fit",
        "--model",
        "paperzoo.core.probes.ProbeModule",
        "--data",
        "paperzoo.core.probes.RegressionDataModule",
        "--data.init_args.n=64",
        "--trainer.accelerator=cpu",
        "--trainer.devices=2",
        "--trainer.strategy=ddp",
        "--trainer.max_epochs=1",
        f"--trainer.default_root_dir={tmp_path}",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
    ]
    env = {**os.environ, "PL_DISABLE_FORK": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=280, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]

    log_dir = tmp_path / "default" / "version_0"
    seen = [json.loads((log_dir / f"seen_rank{r}.json").read_text()) for r in (0, 1)]
    assert len(seen[0]) == len(seen[1]) == 32, "each rank trains on half of the 64 samples"
    assert set(seen[0]).isdisjoint(seen[1])
    assert set(seen[0]) | set(seen[1]) == set(range(64))

    with open(log_dir / "metrics.csv") as f:
        ranks = [float(r["train/rank"]) for r in csv.DictReader(f) if r.get("train/rank")]
    assert ranks == [0.5], "train/rank is the mean over ranks 0 and 1, not rank 0's own value"
    assert Path(log_dir / "checkpoints" / "last.ckpt").is_file()
