"""Two-input Boolean functions (AND, OR, XOR) as noisy point clouds: the perceptron's classic test bed."""

from __future__ import annotations

from typing import Literal

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from paperzoo.core.data.sampling import EpochSeededSampler, run_seed
from paperzoo.core.errors import ConfigError

GATES = {
    "and": lambda a, b: a & b,
    "or": lambda a, b: a | b,
    "xor": lambda a, b: a ^ b,
}


def logic_gate_points(
    gate: Literal["and", "or", "xor"], per_corner: int, noise: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Points around the four corners ``(+-1, +-1)`` of the square, labelled by a Boolean function of the corner.

    A corner's coordinates are read as bits (``-1`` is false, ``+1`` true) and its points get the label
    ``gate(bit_1, bit_2)`` in ``{0, 1}``; each point is the corner plus Gaussian noise of standard deviation
    ``noise``. With ``noise=0`` and ``per_corner=1`` they are the gate's four-row truth table.

    Args:
        gate: ``"and"``, ``"or"`` (linearly separable) or ``"xor"`` (not: Minsky & Papert 1969).
        per_corner: points drawn around each corner.
        noise: the standard deviation of the noise added to each coordinate.
        seed: seeds the noise.

    Returns:
        ``x`` of shape ``(4 * per_corner, 2)`` (float32) and ``y`` of shape ``(4 * per_corner,)`` (int64),
        corner by corner.
    """
    if gate not in GATES:
        raise ConfigError(f"gate must be one of {', '.join(GATES)}, got {gate!r}")
    if per_corner < 1 or noise < 0:
        raise ConfigError(f"per_corner must be at least 1 and noise at least 0, got {per_corner} and {noise}")
    rng = np.random.default_rng(seed)
    bits = np.array([[0, 0], [0, 1], [1, 0], [1, 1]]).repeat(per_corner, axis=0)  # (4 * per_corner, 2)
    x = 2.0 * bits - 1.0 + noise * rng.standard_normal(bits.shape)
    y = GATES[gate](bits[:, 0], bits[:, 1])
    return torch.from_numpy(x).float(), torch.from_numpy(y).long()


class LogicGateDataModule(L.LightningDataModule):
    """AND, OR or XOR of two inputs, as point clouds around the corners of a square (class labels 0 and 1).

    XOR is the function a single linear threshold unit cannot compute (Minsky & Papert 1969, "Perceptrons"), and
    one hidden layer can (Rumelhart, Hinton & Williams 1986). The training, validation and test sets are drawn
    independently (seeds ``seed``, ``seed + 1`` and ``seed + 2``), so they are the same in every run; the training
    order is shuffled per epoch from ``seed`` and the run's seed.

    Args:
        gate: ``"xor"``, ``"and"`` or ``"or"``.
        train_per_corner: training points per corner of the square.
        eval_per_corner: validation and test points per corner.
        noise: standard deviation of the Gaussian noise around each corner (corners are at +-1).
        batch_size: examples per training batch; the evaluation sets are one batch each.
        seed: seeds the three samples.
        shuffle: shuffle the training order every epoch (a perceptron is usually shown the data in order).
    """

    num_classes = 2

    def __init__(
        self,
        gate: Literal["and", "or", "xor"] = "xor",
        train_per_corner: int = 50,
        eval_per_corner: int = 50,
        noise: float = 0.25,
        batch_size: int = 16,
        seed: int = 0,
        shuffle: bool = True,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.gate = gate
        self.train_per_corner = train_per_corner
        self.eval_per_corner = eval_per_corner
        self.noise = noise
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle

    def setup(self, stage: str | None = None) -> None:
        self.train_set = TensorDataset(*logic_gate_points(self.gate, self.train_per_corner, self.noise, self.seed))
        self.val_set = TensorDataset(*logic_gate_points(self.gate, self.eval_per_corner, self.noise, self.seed + 1))
        self.test_set = TensorDataset(*logic_gate_points(self.gate, self.eval_per_corner, self.noise, self.seed + 2))

    def train_dataloader(self) -> DataLoader:
        if not self.shuffle:
            return DataLoader(self.train_set, batch_size=self.batch_size)
        order_seed = int(np.random.SeedSequence((self.seed, run_seed())).generate_state(1)[0])
        sampler = EpochSeededSampler(len(self.train_set), order_seed)
        return DataLoader(self.train_set, batch_size=self.batch_size, sampler=sampler)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=len(self.val_set))

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.test_set, batch_size=len(self.test_set))
