"""Training curves from a CSVLogger file."""

import pytest

from paperzoo.core.cli import main
from paperzoo.core.errors import PaperzooError
from paperzoo.core.plots import read_epoch_metrics

CSV = """epoch,step,train/acc,train/loss_epoch,train/loss_step,val/acc,val/loss
0,49,,,0.9,,
0,99,,,,0.5,1.2
0,99,0.4,1.5,,,
1,199,,,,0.7,0.8
1,199,0.6,1.0,,,
"""


def test_read_epoch_metrics_keeps_epoch_series_only(tmp_path):
    (tmp_path / "metrics.csv").write_text(CSV)
    series = read_epoch_metrics(tmp_path / "metrics.csv")
    assert series == {
        "train/acc": [(0, 0.4), (1, 0.6)],
        "train/loss": [(0, 1.5), (1, 1.0)],
        "val/acc": [(0, 0.5), (1, 0.7)],
        "val/loss": [(0, 1.2), (1, 0.8)],
    }


def test_plot_command_writes_a_png(tmp_path, capsys):
    (tmp_path / "metrics.csv").write_text(CSV)
    assert main(["plot", str(tmp_path)]) == 0
    png = tmp_path / "curves.png"
    assert capsys.readouterr().out.strip() == str(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_plot_without_metrics_is_one_sentence(tmp_path, capsys):
    with pytest.raises(PaperzooError, match="does not exist"):
        read_epoch_metrics(tmp_path / "metrics.csv")
    assert main(["plot", str(tmp_path)]) == 1
    assert capsys.readouterr().err.startswith("error: ")
