"""NumpyMLPClassifier: NumPy back-propagation driven by Lightning, its updates equal to train_sgd's by hand.

Checked by hand that these tests can fail, each change made once and then restored: handing the optimiser the
gradients with the wrong sign fails ``test_training_step_is_one_sgd_step_of_the_numpy_network``; building the
parameters with ``torch.tensor`` (a copy) instead of ``torch.from_numpy`` fails it and the checkpoint test.
"""

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from paperzoo.core.classic import NumpyMLP
from paperzoo.core.modules import NumpyMLPClassifier
from paperzoo.core.optim import SGD


def _trainer(tmp_path, **kwargs) -> L.Trainer:
    defaults = dict(default_root_dir=tmp_path, logger=False, enable_progress_bar=False, enable_model_summary=False)
    return L.Trainer(**(defaults | kwargs))


def _data(n=32, features=6, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()  # learnable labels in {0, 1, 2}
    return x, y


def test_training_step_is_one_sgd_step_of_the_numpy_network(tmp_path):
    x, y = _data()
    module = NumpyMLPClassifier(sizes=[6, 5, 3], activation="relu", init_seed=4, optimizer=lambda p: SGD(p, lr=0.3))
    reference = NumpyMLP([6, 5, 3], activation="relu", seed=4)
    for p in reference.parameters():
        p.zero_grad()
    reference.loss(x.numpy().astype(np.float64), y.numpy()).backward()
    for p in reference.parameters():
        p.data -= 0.3 * p.grad
    loader = DataLoader(TensorDataset(x, y), batch_size=32)
    trainer = _trainer(tmp_path, max_steps=1, enable_checkpointing=False)
    trainer.fit(module, train_dataloaders=loader)
    assert trainer.global_step == 1
    for ours, theirs in zip(module.net.parameters(), reference.parameters(), strict=True):
        np.testing.assert_allclose(ours.data, theirs.data, rtol=1e-12, atol=1e-14)


def test_parameters_share_memory_with_the_numpy_network_and_checkpoints_restore_it(tmp_path):
    module = NumpyMLPClassifier(sizes=[6, 4, 3])
    first = module.net.parameters()[0]
    first.data[0, 0] = 7.0
    assert module.weights[0][0, 0].item() == 7.0  # one set of numbers, two views
    x, y = _data()
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    trainer = _trainer(tmp_path, max_epochs=3)
    trainer.fit(module, train_dataloaders=loader, val_dataloaders=loader)
    path = tmp_path / "m.ckpt"
    trainer.save_checkpoint(path)
    restored = NumpyMLPClassifier.load_from_checkpoint(path, weights_only=False)
    torch.testing.assert_close(restored(x), module(x))
    assert restored(x).dtype == torch.float64
    assert not torch.equal(restored(x), NumpyMLPClassifier(sizes=[6, 4, 3])(x))


def test_it_learns(tmp_path):
    x, y = _data(n=256)
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=False)
    module = NumpyMLPClassifier(sizes=[6, 32, 3], activation="tanh", optimizer=lambda p: SGD(p, lr=0.5, momentum=0.9))
    trainer = _trainer(tmp_path, max_epochs=30, enable_checkpointing=False)
    trainer.fit(module, train_dataloaders=loader, val_dataloaders=loader)
    assert trainer.callback_metrics["val/acc"] > 0.9
    assert module(x).softmax(-1).argmax(-1).eq(y).float().mean() > 0.9
