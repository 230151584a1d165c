"""Tests of paperzoo.core.checkpoint.average_checkpoints: the weights of several checkpoints averaged elementwise."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from paperzoo.core.checkpoint import average_checkpoints
from paperzoo.core.errors import CheckpointError


def _model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    model[1].num_batches_tracked.fill_(10 * seed + 1)  # an integer buffer, different in each checkpoint
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.uniform_(0.5, 2.0)  # every float differs between the seeds
    return model


def _lightning_checkpoint(model: nn.Module, path) -> None:
    state = {f"network.{k}": v for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "pytorch-lightning_version": "2.6.0", "global_step": 1}, path)


def test_average_of_two_checkpoints_is_the_elementwise_mean_with_integer_buffers_from_the_last(tmp_path):
    first, second = _model(1), _model(2)
    _lightning_checkpoint(first, tmp_path / "a.ckpt")
    _lightning_checkpoint(second, tmp_path / "b.ckpt")
    averaged = average_checkpoints([tmp_path / "a.ckpt", tmp_path / "b.ckpt"])
    a, b = first.state_dict(), second.state_dict()
    assert list(averaged) == [f"network.{k}" for k in b]
    for key in ("0.weight", "0.bias", "1.weight", "1.running_mean", "1.running_var"):
        assert not torch.equal(a[key], b[key])
        torch.testing.assert_close(averaged[f"network.{key}"], (a[key] + b[key]) / 2, rtol=0, atol=1e-7)
        assert averaged[f"network.{key}"].dtype == torch.float32
    assert averaged["network.1.num_batches_tracked"].item() == 21  # the last one's, not the mean 16
    assert averaged["network.1.num_batches_tracked"].dtype == torch.int64


def test_average_reads_plain_state_dicts_and_keeps_half_precision(tmp_path):
    weights = [torch.tensor([1.0, 2.0], dtype=torch.float16), torch.tensor([2.0, 5.0], dtype=torch.float16)]
    for i, w in enumerate(weights):
        torch.save({"w": w}, tmp_path / f"{i}.pt")
    averaged = average_checkpoints([tmp_path / "0.pt", tmp_path / "1.pt"])
    assert averaged["w"].dtype == torch.float16
    assert averaged["w"].tolist() == [1.5, 3.5]
    assert average_checkpoints([tmp_path / "1.pt"])["w"].tolist() == [2.0, 5.0]  # one checkpoint is itself


def test_average_refuses_checkpoints_of_different_models(tmp_path):
    torch.save({"w": torch.zeros(2)}, tmp_path / "a.pt")
    torch.save({"w": torch.zeros(3)}, tmp_path / "b.pt")
    torch.save({"v": torch.zeros(2)}, tmp_path / "c.pt")
    with pytest.raises(CheckpointError, match="w has shape"):
        average_checkpoints([tmp_path / "a.pt", tmp_path / "b.pt"])
    with pytest.raises(CheckpointError, match="hold different weights"):
        average_checkpoints([tmp_path / "a.pt", tmp_path / "c.pt"])
    with pytest.raises(ValueError, match="at least one checkpoint"):
        average_checkpoints([])
