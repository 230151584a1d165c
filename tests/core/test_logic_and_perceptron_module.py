"""The logic-gate point clouds, Rosenblatt's rule as a LightningModule, and the DecisionBoundary callback.

Checked by hand that these tests can fail, each change made once and then restored: a module that updates on
``< 0`` instead of ``<= 0`` never leaves w = 0 and fails the parity and convergence tests; one that skips the bias
update fails the parity test; a DecisionBoundary that thresholds at ``> 0`` instead of ``>= 0`` fails
``test_classify_thresholds_scores_and_argmaxes_logits``.
"""

import lightning as L
import numpy as np
import pytest
import torch
from torch import nn

from paperzoo.core.classic import Perceptron
from paperzoo.core.data import LogicGateDataModule, logic_gate_points
from paperzoo.core.diagnostics import DecisionBoundary, classify
from paperzoo.core.errors import ConfigError
from paperzoo.core.modules import PerceptronModule

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _trainer(tmp_path, max_epochs: int, callbacks=()) -> L.Trainer:
    return L.Trainer(
        max_epochs=max_epochs,
        default_root_dir=tmp_path,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=list(callbacks),
        num_sanity_val_steps=0,
    )


@pytest.mark.parametrize(("gate", "truth"), [("and", [0, 0, 0, 1]), ("or", [0, 1, 1, 1]), ("xor", [0, 1, 1, 0])])
def test_noise_free_points_are_the_truth_table(gate, truth):
    x, y = logic_gate_points(gate, per_corner=1, noise=0.0, seed=0)
    assert x.tolist() == [[-1, -1], [-1, 1], [1, -1], [1, 1]]
    assert y.tolist() == truth


def test_noisy_points_stay_near_their_corner_and_are_reproducible():
    x, y = logic_gate_points("xor", per_corner=200, noise=0.25, seed=3)
    assert x.shape == (800, 2) and y.shape == (800,) and y.dtype == torch.int64
    corners = torch.tensor([[-1, -1], [-1, 1], [1, -1], [1, 1]], dtype=torch.float32).repeat_interleave(200, 0)
    assert (x - corners).std().item() == pytest.approx(0.25, rel=0.1)
    assert torch.equal(x, logic_gate_points("xor", 200, 0.25, seed=3)[0])
    assert not torch.equal(x, logic_gate_points("xor", 200, 0.25, seed=4)[0])
    with pytest.raises(ConfigError, match="gate must be one of"):
        logic_gate_points("nand", 1, 0.0, 0)


def test_datamodule_splits_are_independent_draws():
    dm = LogicGateDataModule(gate="or", train_per_corner=10, eval_per_corner=5, noise=0.1)
    dm.setup("fit")
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (40, 20, 20)
    assert not torch.equal(dm.val_set.tensors[0], dm.test_set.tensors[0])
    assert torch.equal(dm.val_set.tensors[1], dm.test_set.tensors[1])  # same corners, same labels
    assert sum(len(b[0]) for b in dm.train_dataloader()) == 40


def test_module_makes_the_same_updates_as_the_numpy_perceptron(tmp_path):
    # Shown in order, one epoch at a time, both apply w <- w + y x, b <- b + y on the same mistakes.
    dm = LogicGateDataModule(gate="xor", train_per_corner=6, noise=0.4, batch_size=5, shuffle=False, seed=1)
    dm.setup("fit")
    x, labels = (t.numpy().astype(np.float64) for t in dm.train_set.tensors)
    reference = Perceptron(2)
    module = PerceptronModule(in_features=2)
    for _ in range(3):
        fit = reference.fit(x, 2 * labels - 1, max_epochs=1)
        trainer = _trainer(tmp_path, max_epochs=1)
        trainer.fit(module, datamodule=dm)
        assert trainer.global_step == fit.mistakes > 0  # one optimiser step per mistake
        np.testing.assert_allclose(module.weight.detach().numpy(), reference.weights, rtol=1e-6, atol=1e-6)
        assert module.bias.item() == pytest.approx(reference.bias, abs=1e-6)
    assert reference.weights.any()  # it did move


def test_module_stops_when_an_epoch_makes_no_mistake_and_not_on_xor(tmp_path):
    separable = LogicGateDataModule(gate="and", train_per_corner=20, noise=0.1)
    module = PerceptronModule()
    trainer = _trainer(tmp_path, max_epochs=50)
    trainer.fit(module, datamodule=separable)
    assert trainer.current_epoch < 50 and trainer.callback_metrics["train/mistakes"] == 0
    assert trainer.callback_metrics["train/loss_epoch"] == 0  # every point on its side: the criterion is zero
    assert trainer.test(module, datamodule=separable, verbose=False)[0]["test/acc"] == 1.0

    xor = LogicGateDataModule(gate="xor", train_per_corner=20, noise=0.1)
    trainer = _trainer(tmp_path, max_epochs=20)
    trainer.fit(PerceptronModule(), datamodule=xor)
    assert trainer.current_epoch == 20 and trainer.callback_metrics["train/mistakes"] > 0


def test_best_validation_checkpoint_is_saved_and_restored(tmp_path):
    # global_step advances with each update, so ModelCheckpoint saves (it skips a step it has already saved)
    dm = LogicGateDataModule(gate="xor", train_per_corner=10, eval_per_corner=10, noise=0.2)
    checkpoint = L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path, monitor="val/acc", mode="max")
    trainer = L.Trainer(
        max_epochs=6, default_root_dir=tmp_path, logger=False, callbacks=[checkpoint], enable_progress_bar=False
    )
    module = PerceptronModule()
    trainer.fit(module, datamodule=dm)
    assert checkpoint.best_model_path
    tested = trainer.test(module, datamodule=dm, ckpt_path="best", verbose=False)[0]["test/acc"]
    restored = PerceptronModule.load_from_checkpoint(checkpoint.best_model_path)
    assert tested == L.Trainer(logger=False, enable_progress_bar=False).test(restored, dm, verbose=False)[0]["test/acc"]


def test_classify_thresholds_scores_and_argmaxes_logits():
    x = torch.tensor([[1.0, 0.0], [0.0, 0.0], [-1.0, 0.0]])
    line = PerceptronModule()
    with torch.no_grad():
        line.weight.copy_(torch.tensor([1.0, 0.0]))
    assert classify(line, x).tolist() == [1, 1, 0]  # a score of exactly 0 is class 1, as in the rule
    logits = nn.Linear(2, 3)
    with torch.no_grad():
        logits.weight.copy_(torch.tensor([[1.0, 0], [0, 0], [-1.0, 0]]))
        logits.bias.zero_()
    assert classify(logits, x).tolist() == [0, 0, 2]
    assert logits.training  # restored


def test_decision_boundary_draws_each_snapshot(tmp_path):
    dm = LogicGateDataModule(gate="and", train_per_corner=10, noise=0.1)
    callback = DecisionBoundary(epochs=[0, 1], resolution=40, plot_dir=str(tmp_path))
    _trainer(tmp_path, max_epochs=3, callbacks=[callback]).fit(PerceptronModule(), datamodule=dm)
    titles = [title for title, _, _ in callback.snapshots]
    assert titles[:2] == ["after epoch 1", "after epoch 2"] and titles[-1].startswith("end of training")
    _, classes, accuracy = callback.snapshots[-1]
    assert classes.shape == (40, 40) and set(classes.unique().tolist()) == {0, 1}
    assert accuracy == 1.0
    assert classes[-1, -1] == 1 and classes[0, 0] == 0  # the (+, +) corner is AND's only true one
    assert (tmp_path / "decision_boundary.png").read_bytes()[:8] == PNG_MAGIC


def test_decision_boundary_rejects_inputs_that_are_not_points(tmp_path):
    class Images(L.LightningDataModule):
        def train_dataloader(self):
            return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(4, 3), torch.zeros(4)))

    with pytest.raises(ConfigError, match="2-D inputs, but the training inputs have 3 features"):
        _trainer(tmp_path, 1, [DecisionBoundary()]).fit(PerceptronModule(in_features=3), datamodule=Images())
