"""The algorithmic tasks of the Neural Turing Machine paper (Graves, Wayne & Danihelka 2014, section 4), generated on
the fly: copy, repeat copy and associative recall, with fixed test sets at lengths longer than any seen in training.

Every sequence is a batch of binary vectors in and logits out at every step; a mask marks the *output period*, the
steps whose targets count (the network's answers), and the inputs are zero there. Formats (``w`` the item width):

- **copy:** ``L`` random ``w``-bit vectors, then one step with a delimiter on an extra channel; then the network
  outputs the ``L`` vectors. Inputs ``w + 1`` channels, outputs ``w``, ``2L + 1`` steps.
- **repeat copy:** ``L`` random vectors, then one step with the delimiter and, on a second extra channel, the number
  of repeats ``n`` normalised to mean 0 and variance 1 over the training range of ``n`` (as in the paper); then the
  network outputs the sequence ``n`` times and an end marker on an extra output channel. Inputs ``w + 2``, outputs
  ``w + 1``, ``L + 1 + nL + 1`` steps.
- **associative recall:** ``k`` items of three ``w``-bit vectors, each after a step with an item delimiter (channel
  ``w``); then a query delimiter (channel ``w + 1``), one of the first ``k - 1`` items, a query delimiter again; then
  the network outputs the item that followed the query in the list. Inputs ``w + 2``, outputs ``w``, ``4k + 8`` steps.

A sequence's "length" is ``L`` for the two copies and the number of items ``k`` for recall. All sequences of a batch
share the length (and the repeats), so a batch has no padding and costs only its own length.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Literal

import lightning.pytorch as pl
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from paperzoo.core.data import run_seed
from paperzoo.core.errors import ConfigError

Task = Literal["copy", "repeat_copy", "associative_recall"]
TASKS = ("copy", "repeat_copy", "associative_recall")
ITEM_STEPS = 3  # vectors per associative-recall item, as in the paper
Batch = tuple[Tensor, Tensor, Tensor]


def copy_batch(rng: np.random.Generator, batch_size: int, length: int, width: int) -> Batch:
    """A batch of copy sequences (see the module doc).

    Returns:
        ``(inputs (B, 2L+1, w+1), targets (B, 2L+1, w), mask (B, 2L+1))``, float32; the mask is 1 on the ``L`` output
        steps.
    """
    bits = rng.integers(0, 2, size=(batch_size, length, width)).astype(np.float32)
    steps = 2 * length + 1
    inputs = np.zeros((batch_size, steps, width + 1), np.float32)
    targets = np.zeros((batch_size, steps, width), np.float32)
    mask = np.zeros((batch_size, steps), np.float32)
    inputs[:, :length, :width] = bits
    inputs[:, length, width] = 1.0  # the delimiter
    targets[:, length + 1 :] = bits
    mask[:, length + 1 :] = 1.0
    return torch.from_numpy(inputs), torch.from_numpy(targets), torch.from_numpy(mask)


def repeat_copy_batch(
    rng: np.random.Generator,
    batch_size: int,
    length: int,
    repeats: int,
    width: int,
    repeat_mean: float,
    repeat_std: float,
) -> Batch:
    """A batch of repeat-copy sequences (see the module doc); the repeat count is shown as
    ``(repeats - repeat_mean) / repeat_std``.

    Returns:
        ``(inputs (B, T, w+2), targets (B, T, w+1), mask (B, T))`` with ``T = L + 1 + nL + 1``; the mask is 1 on the
        ``nL + 1`` output steps, the last of which has the end marker on output channel ``w``.
    """
    bits = rng.integers(0, 2, size=(batch_size, length, width)).astype(np.float32)
    start = length + 1  # the first output step
    steps = start + repeats * length + 1
    inputs = np.zeros((batch_size, steps, width + 2), np.float32)
    targets = np.zeros((batch_size, steps, width + 1), np.float32)
    mask = np.zeros((batch_size, steps), np.float32)
    inputs[:, :length, :width] = bits
    inputs[:, length, width] = 1.0  # the delimiter
    inputs[:, length, width + 1] = (repeats - repeat_mean) / repeat_std
    targets[:, start : steps - 1, :width] = np.tile(bits, (1, repeats, 1))
    targets[:, steps - 1, width] = 1.0  # the end marker
    mask[:, start:] = 1.0
    return torch.from_numpy(inputs), torch.from_numpy(targets), torch.from_numpy(mask)


def associative_recall_batch(rng: np.random.Generator, batch_size: int, items: int, width: int) -> Batch:
    """A batch of associative-recall sequences of ``items`` items (see the module doc).

    Returns:
        ``(inputs (B, 4k+8, w+2), targets (B, 4k+8, w), mask (B, 4k+8))``; the mask is 1 on the last three steps,
        where the targets are the item after the query.
    """
    if items < 2:
        raise ConfigError(f"associative recall needs at least 2 items (a query and the item after it), got {items}")
    item_bits = rng.integers(0, 2, size=(batch_size, items, ITEM_STEPS, width)).astype(np.float32)
    query = rng.integers(0, items - 1, size=batch_size)  # any item but the last, which has no successor
    rows = np.arange(batch_size)
    span = ITEM_STEPS + 1  # a delimiter step, then the item
    steps = span * items + ITEM_STEPS + 2 + ITEM_STEPS
    inputs = np.zeros((batch_size, steps, width + 2), np.float32)
    targets = np.zeros((batch_size, steps, width), np.float32)
    mask = np.zeros((batch_size, steps), np.float32)
    layout = inputs[:, : span * items].reshape(batch_size, items, span, width + 2)  # a view into inputs
    layout[:, :, 0, width] = 1.0  # item delimiters
    layout[:, :, 1:, :width] = item_bits
    q = span * items  # the first query delimiter
    inputs[:, q, width + 1] = 1.0
    inputs[:, q + 1 : q + 1 + ITEM_STEPS, :width] = item_bits[rows, query]
    inputs[:, q + 1 + ITEM_STEPS, width + 1] = 1.0
    targets[:, steps - ITEM_STEPS :] = item_bits[rows, query + 1]
    mask[:, steps - ITEM_STEPS :] = 1.0
    return torch.from_numpy(inputs), torch.from_numpy(targets), torch.from_numpy(mask)


class _GeneratedBatches(Dataset):
    """Batches made on demand: item ``i`` is ``make(i)``, the same every time (each index seeds its own generator).

    ``size`` batches make one pass; an ``unbounded`` set (training) also serves the indices past it, a fresh batch
    each, so that every epoch can draw new ones."""

    def __init__(self, make, size: int, unbounded: bool = False) -> None:
        self.make = make
        self.size = size
        self.unbounded = unbounded

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> Batch:
        if index < 0 or (index >= self.size and not self.unbounded):
            raise IndexError(f"batch {index} is outside this set of {self.size} batches")
        return self.make(index)


class _EpochBatchIndices(Sampler[int]):
    """Indices ``epoch * n, ..., epoch * n + n - 1``: every epoch draws fresh batches, and a resumed run the same
    ones (Lightning calls :meth:`set_epoch`)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.epoch * self.n, (self.epoch + 1) * self.n))

    def __len__(self) -> int:
        return self.n


class AlgorithmicDataModule(pl.LightningDataModule):
    """Copy, repeat copy or associative recall (Graves, Wayne & Danihelka 2014), generated, with length
    generalisation test sets.

    Training batches are drawn afresh (an "epoch" is ``train_batches`` batches, each seeded by the data's seed, the
    run's seed and its index), each with one length uniform in ``[min_len, max_len]`` (and, for repeat copy, one
    repeat count uniform in ``[min_repeats, max_repeats]``). Validation is ``val_batches`` fixed batches drawn the
    same way, for choosing the checkpoint. Testing is one fixed set of ``test_size`` sequences per length in
    ``test_lengths`` (for repeat copy, per pair of a length and a repeat count in ``test_repeats``), the same in every
    run with the same ``seed``: the test of length generalisation, since most are longer than any training sequence.
    The test sets are named ``len{L}`` (``len{L}_rep{n}`` for repeat copy), in :attr:`test_names`.

    A batch is ``(inputs (B, T, input_size), targets (B, T, output_size), mask (B, T))``, float32; see the module
    doc for the formats.

    Args:
        task: ``"copy"``, ``"repeat_copy"`` or ``"associative_recall"``.
        width: bits per vector (the paper: 8 for the copies, 6 for recall).
        min_len: the shortest training length (items for recall).
        max_len: the longest training length (items for recall).
        min_repeats: the fewest training repeats (repeat copy only).
        max_repeats: the most training repeats (repeat copy only).
        test_lengths: the lengths of the test sets.
        test_repeats: the repeat counts of the test sets (repeat copy only); ``None`` for ``max_repeats`` alone.
        test_size: sequences per test set.
        val_batches: fixed validation batches.
        train_batches: training batches per epoch.
        batch_size: training batch size.
        eval_batch_size: validation and test batch size.
        seed: seeds every batch and test set (training batches also mix in the run's seed).
    """

    def __init__(
        self,
        task: Task = "copy",
        width: int = 8,
        min_len: int = 1,
        max_len: int = 20,
        min_repeats: int = 1,
        max_repeats: int = 10,
        test_lengths: Sequence[int] = (20, 30, 40, 60, 80, 120),
        test_repeats: Sequence[int] | None = None,
        test_size: int = 64,
        val_batches: int = 20,
        train_batches: int = 500,
        batch_size: int = 32,
        eval_batch_size: int = 64,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if task not in TASKS:
            raise ConfigError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
        shortest = 2 if task == "associative_recall" else 1
        if width < 1 or not shortest <= min_len <= max_len:
            raise ConfigError(
                f"{task} needs width >= 1 and {shortest} <= min_len <= max_len, got width={width}, min_len={min_len}, "
                f"max_len={max_len}"
            )
        if task == "repeat_copy" and not 1 <= min_repeats <= max_repeats:
            raise ConfigError(f"repeat copy needs 1 <= min_repeats <= max_repeats, got {min_repeats}, {max_repeats}")
        test_repeats = list(test_repeats) if test_repeats is not None else [max_repeats]
        if min([*test_lengths, shortest]) < shortest or min([*test_repeats, 1]) < 1:
            raise ConfigError(f"{task} test lengths must be at least {shortest} and repeats at least 1")
        if min(test_size, val_batches, train_batches, batch_size, eval_batch_size) < 1:
            raise ConfigError("test_size, val_batches, train_batches, batch_size and eval_batch_size must be positive")
        self.save_hyperparameters()
        self.task = task
        self.width = width
        self.min_len, self.max_len = min_len, max_len
        self.min_repeats, self.max_repeats = min_repeats, max_repeats
        self.test_lengths = list(test_lengths)
        self.test_repeats = test_repeats
        self.test_size = test_size
        self.val_batches = val_batches
        self.train_batches = train_batches
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.seed = seed
        # the repeat count's input is standardised with the moments of the discrete uniform training distribution
        self.repeat_mean = (min_repeats + max_repeats) / 2
        self.repeat_std = math.sqrt(((max_repeats - min_repeats + 1) ** 2 - 1) / 12) or 1.0

    @property
    def input_size(self) -> int:
        """Input channels: the bits and one delimiter channel (copy), plus the repeat count or the query delimiter."""
        return self.width + (1 if self.task == "copy" else 2)

    @property
    def output_size(self) -> int:
        """Output channels: the bits, plus the end marker for repeat copy."""
        return self.width + (1 if self.task == "repeat_copy" else 0)

    @property
    def test_cases(self) -> list[tuple[str, int, int | None]]:
        """``(name, length, repeats)`` of every test set, in the order of :meth:`test_dataloader`."""
        if self.task == "repeat_copy":
            return [(f"len{L}_rep{n}", L, n) for L in self.test_lengths for n in self.test_repeats]
        return [(f"len{L}", L, None) for L in self.test_lengths]

    @property
    def test_names(self) -> list[str]:
        return [name for name, _, _ in self.test_cases]

    def make_batch(self, rng: np.random.Generator, batch_size: int, length: int, repeats: int | None = None) -> Batch:
        """One batch of the task at ``length`` (and ``repeats`` for repeat copy) from ``rng``."""
        if self.task == "copy":
            return copy_batch(rng, batch_size, length, self.width)
        if self.task == "repeat_copy":
            return repeat_copy_batch(rng, batch_size, length, repeats, self.width, self.repeat_mean, self.repeat_std)
        return associative_recall_batch(rng, batch_size, length, self.width)

    def _random_batch(self, rng: np.random.Generator, batch_size: int) -> Batch:
        length = int(rng.integers(self.min_len, self.max_len + 1))
        repeats = int(rng.integers(self.min_repeats, self.max_repeats + 1)) if self.task == "repeat_copy" else None
        return self.make_batch(rng, batch_size, length, repeats)

    def _train_batch(self, index: int) -> Batch:
        return self._random_batch(np.random.default_rng([self.seed, 0, run_seed(), index]), self.batch_size)

    def _val_batch(self, index: int) -> Batch:
        return self._random_batch(np.random.default_rng([self.seed, 1, index]), self.eval_batch_size)

    def _test_set(self, length: int, repeats: int | None) -> _GeneratedBatches:
        def make(index: int) -> Batch:
            size = min(self.eval_batch_size, self.test_size - index * self.eval_batch_size)
            return self.make_batch(
                np.random.default_rng([self.seed, 2, length, repeats or 0, index]), size, length, repeats
            )

        return _GeneratedBatches(make, math.ceil(self.test_size / self.eval_batch_size))

    def setup(self, stage: str | None = None) -> None:
        self.train_set = _GeneratedBatches(self._train_batch, self.train_batches, unbounded=True)
        self.val_set = _GeneratedBatches(self._val_batch, self.val_batches)
        self.test_sets = {name: self._test_set(length, repeats) for name, length, repeats in self.test_cases}

    def train_dataloader(self) -> DataLoader:
        """Fresh batches every epoch (:class:`_EpochBatchIndices`); the items are whole batches."""
        return DataLoader(self.train_set, batch_size=None, sampler=_EpochBatchIndices(self.train_batches))

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=None)

    def test_dataloader(self) -> list[DataLoader]:
        """One loader per test set, in the order of :attr:`test_names`."""
        return [DataLoader(dataset, batch_size=None) for dataset in self.test_sets.values()]

    def __repr__(self) -> str:
        repeats = f", repeats={self.min_repeats}..{self.max_repeats}" if self.task == "repeat_copy" else ""
        return (
            f"{type(self).__name__}(task={self.task!r}, width={self.width}, lengths={self.min_len}..{self.max_len}"
            f"{repeats}, test_lengths={self.test_lengths})"
        )
