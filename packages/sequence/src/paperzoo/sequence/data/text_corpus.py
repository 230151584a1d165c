"""A plain-text corpus as training data for word embeddings: word2vec's pairs and windows, GloVe's co-occurrences.

The corpus is UTF-8 text with one document (or sentence) per line and words separated by whitespace, read with
``str.split`` after optional lowercasing, the way gensim's ``LineSentence`` reads it: a line longer than
``max_sentence_length`` words is cut into pieces of that length, and windows never cross a line (or piece). The
default is gensim's ``head500.noblanks.cor``: 250 lines, each an English Wikipedia article already lowercased,
stemmed and stripped of stop words and punctuation (331,339 words; 7,978 distinct words are seen 5 times or more).

What word2vec does to the word stream (Mikolov et al. 2013, and the C code gensim follows):

- **Vocabulary.** Words seen fewer than ``min_count`` times are dropped from the text before anything else.
- **Subsampling of frequent words.** Every occurrence of word ``w`` with count ``c`` is kept with probability
  ``min(1, (sqrt(c / (s * T)) + 1) * (s * T) / c)``, ``T`` the vocabulary's total count and ``s`` the ``sample``
  threshold (gensim's formula; the paper's ``1 - sqrt(t / f)`` is the same idea), afresh every epoch.
- **Dynamic window.** Each centre word draws its window radius uniformly from ``1..window``, so a neighbour at
  distance ``d`` is used with probability ``(window - d + 1) / window``.
- **Noise distribution.** Negative words are drawn from the unigram counts raised to ``ns_exponent`` (3/4).

GloVe (Pennington et al. 2014) instead counts, over the whole text without subsampling, every pair of words at most
``window`` apart in both orders, each occurrence weighted by ``1 / distance``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import lightning.pytorch as pl
import numpy as np
import torch
from scipy import sparse
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from paperzoo.core.data import package_data_file, run_seed
from paperzoo.core.errors import ConfigError, CorruptDataError, DatasetNotFoundError
from paperzoo.sequence.embedding_eval import AnalogyQuestions, WordPair, read_analogies, read_word_pairs

Objective = Literal["skipgram", "cbow", "glove"]
BENCHMARKS = ("wordsim353", "simlex999", "analogy")
"""The test benchmarks, in the order the test loader serves them."""

_GENSIM_FILES = {
    "corpus": "head500.noblanks.cor",
    "wordsim353": "wordsim353.tsv",
    "simlex999": "simlex999.txt",
    "analogy": "questions-words.txt",
}


def read_text_corpus(path: str | Path, lowercase: bool = True, max_sentence_length: int = 10000) -> list[list[str]]:
    """The sentences of a plain-text corpus: each non-blank line split on whitespace, cut into pieces of at most
    ``max_sentence_length`` words.

    Raises:
        DatasetNotFoundError: there is no file at ``path``.
        CorruptDataError: the file is not UTF-8 text, or holds no words.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(
            f"{path} does not exist: pass a plain-text corpus (one document per line, words separated by spaces) as "
            "--data.init_args.path, or leave it unset for gensim's head500.noblanks.cor (`pip install gensim`)"
        )
    sentences = []
    try:
        with path.open(encoding="utf-8") as f:
            for line in f:
                words = (line.lower() if lowercase else line).split()
                sentences += [words[i : i + max_sentence_length] for i in range(0, len(words), max_sentence_length)]
    except UnicodeDecodeError as err:
        raise CorruptDataError(f"{path} is not UTF-8 text ({err}); the corpus must be plain UTF-8 text") from err
    if not sentences:
        raise CorruptDataError(f"{path} holds no words; the corpus must have one document per line")
    return sentences


def build_vocabulary(sentences: list[list[str]], min_count: int = 5) -> tuple[list[str], np.ndarray]:
    """The words seen at least ``min_count`` times, most frequent first (ties alphabetical), and their counts."""
    counts = Counter(word for sentence in sentences for word in sentence)
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    return words, np.array([counts[w] for w in words], dtype=np.int64)


def keep_probabilities(counts: np.ndarray, sample: float) -> np.ndarray:
    """The probability that an occurrence of each word survives subsampling (gensim's formula, see the module doc);
    all ones when ``sample`` is 0."""
    counts = np.asarray(counts, dtype=np.float64)
    if sample <= 0:
        return np.ones_like(counts)
    threshold = sample * counts.sum()
    return np.minimum(1.0, (np.sqrt(counts / threshold) + 1.0) * threshold / counts)


def subsample(ids: np.ndarray, keep: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Which tokens of the stream ``ids`` survive subsampling: each independently with its word's ``keep``
    probability (:func:`keep_probabilities`); a boolean mask."""
    return rng.random(len(ids)) < keep[ids]


def noise_distribution(counts: np.ndarray, exponent: float = 0.75) -> np.ndarray:
    """The probability of drawing each word as a negative: its count raised to ``exponent``, normalised."""
    weights = np.asarray(counts, dtype=np.float64) ** exponent
    return weights / weights.sum()


def encode_corpus(sentences: list[list[str]], words: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The corpus as one stream of word ids with out-of-vocabulary words removed, and each token's sentence number.

    Returns:
        ``(ids, sentence_ids)``, two int64 arrays of the same length.
    """
    index = {word: i for i, word in enumerate(words)}
    ids, sentence_ids = [], []
    for number, sentence in enumerate(sentences):
        known = [index[w] for w in sentence if w in index]
        ids += known
        sentence_ids += [number] * len(known)
    return np.asarray(ids, dtype=np.int64), np.asarray(sentence_ids, dtype=np.int64)


def _neighbours(sentence_ids: np.ndarray, radius: np.ndarray, distance: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions ``(centre, neighbour)`` at ``distance`` in the same sentence within the centre's radius, left
    neighbours first, then right."""
    n = len(sentence_ids)
    left = np.arange(distance, n)  # centres whose neighbour is at left - distance
    left = left[(radius[left] >= distance) & (sentence_ids[left - distance] == sentence_ids[left])]
    right = np.arange(n - distance)
    right = right[(radius[right] >= distance) & (sentence_ids[right + distance] == sentence_ids[right])]
    return np.concatenate([left, right]), np.concatenate([left - distance, right + distance])


def window_radii(n: int, window: int, rng: np.random.Generator | None) -> np.ndarray:
    """Each position's window radius: uniform on ``1..window`` (word2vec's reduced window), or ``window`` for all
    positions when ``rng`` is None."""
    if rng is None:
        return np.full(n, window, dtype=np.int64)
    return rng.integers(1, window + 1, size=n)


def skipgram_pairs(
    ids: np.ndarray, sentence_ids: np.ndarray, window: int, rng: np.random.Generator | None
) -> tuple[np.ndarray, np.ndarray]:
    """Every ``(centre, context)`` word-id pair of the stream: each context within its centre's radius
    (:func:`window_radii`) in the same sentence, in no particular order."""
    radius = window_radii(len(ids), window, rng)
    centres, contexts = zip(*(_neighbours(sentence_ids, radius, d) for d in range(1, window + 1)), strict=True)
    centres, contexts = np.concatenate(centres), np.concatenate(contexts)
    return ids[centres], ids[contexts]


def cbow_windows(
    ids: np.ndarray, sentence_ids: np.ndarray, window: int, rng: np.random.Generator | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every CBOW example of the stream: the word ids of a centre's window, which of them are real, and the centre.

    Returns:
        ``(contexts (N, 2 * window), mask (N, 2 * window), targets (N,))``; column ``k`` holds the neighbour at
        offset ``-window..-1, 1..window``, and centres with no neighbour at all are left out.
    """
    n = len(ids)
    radius = window_radii(n, window, rng)
    offsets = np.concatenate([np.arange(-window, 0), np.arange(1, window + 1)])
    positions = np.arange(n)[:, None] + offsets  # (n, 2W)
    inside = (positions >= 0) & (positions < n)
    positions = np.clip(positions, 0, n - 1)
    mask = inside & (np.abs(offsets) <= radius[:, None]) & (sentence_ids[positions] == sentence_ids[:, None])
    rows = mask.any(1)
    return ids[positions[rows]], mask[rows], ids[rows]


def cooccurrence_matrix(ids: np.ndarray, sentence_ids: np.ndarray, window: int, vocab_size: int) -> sparse.coo_matrix:
    """GloVe's symmetric co-occurrence counts: ``X[i, j]`` sums ``1 / d`` over every occurrence of words ``i`` and
    ``j`` at distance ``d <= window`` in the same sentence, in either order.

    Returns:
        A ``(vocab_size, vocab_size)`` float64 COO matrix with each nonzero entry once.
    """
    radius = window_radii(len(ids), window, None)
    rows, cols, values = [], [], []
    for distance in range(1, window + 1):
        centres, neighbours = _neighbours(sentence_ids, radius, distance)
        rows.append(ids[centres])
        cols.append(ids[neighbours])
        values.append(np.full(len(centres), 1.0 / distance))
    matrix = sparse.coo_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(vocab_size, vocab_size)
    )
    return matrix.tocsr().tocoo()  # the CSR round trip sums duplicate entries


class _EpochBatchSampler(Sampler[tuple[int, int]]):
    """Yields ``(epoch, batch)`` for every batch of an epoch; Lightning calls :meth:`set_epoch` before each epoch, so a
    batch is a pure function of the epoch and its number, and a resumed run sees the batches an unbroken one would."""

    def __init__(self, num_batches: int) -> None:
        self.num_batches = num_batches
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return ((self.epoch, k) for k in range(self.num_batches))

    def __len__(self) -> int:
        return self.num_batches


class EmbeddingBatches(Dataset):
    """The training batches of one objective: item ``(epoch, k)`` is batch ``k`` of epoch ``epoch``.

    Each epoch draws its examples afresh (subsampling and window radii for word2vec; GloVe's entries are fixed) from a
    generator seeded by ``(seed, epoch)``, shuffles them, and serves them ``batch_size`` at a time with ``negative``
    noise words per example drawn from ``noise`` by a generator seeded by ``(seed, epoch, k)``. Every epoch has the
    same number of batches, the first epoch's example count divided by ``batch_size`` and rounded up; an epoch whose
    draw has fewer examples repeats its first ones, one with more drops its last (word2vec's counts vary by a fraction
    of a percent between epochs).

    Batches (tensors):

    - ``skipgram``: ``(centres (B,), contexts (B,), negatives (B, K))``;
    - ``cbow``: ``(contexts (B, 2W), context_mask (B, 2W), targets (B,), negatives (B, K))``;
    - ``glove``: ``(rows (B,), cols (B,), counts (B,))``.
    """

    def __init__(
        self,
        objective: Objective,
        ids: np.ndarray,
        sentence_ids: np.ndarray,
        keep: np.ndarray,
        noise: np.ndarray,
        window: int,
        negative: int,
        batch_size: int,
        seed: int,
        dynamic_window: bool = True,
        cooccurrences: sparse.coo_matrix | None = None,
    ) -> None:
        self.objective = objective
        self.ids = ids
        self.sentence_ids = sentence_ids
        self.keep = keep
        self.noise_cdf = np.cumsum(noise)
        self.noise_cdf[-1] = 1.0
        self.window = window
        self.negative = negative
        self.batch_size = batch_size
        self.seed = seed
        self.dynamic_window = dynamic_window
        self.cooccurrences = cooccurrences
        self._epoch: int | None = None
        self._examples: tuple[np.ndarray, ...] = ()
        self.num_batches = max(1, math.ceil(len(self.examples(0)[0]) / batch_size))

    def examples(self, epoch: int) -> tuple[np.ndarray, ...]:
        """The shuffled examples of ``epoch`` (cached for the latest epoch asked)."""
        if epoch == self._epoch:
            return self._examples
        rng = np.random.default_rng((self.seed, epoch))
        if self.objective == "glove":
            matrix = self.cooccurrences
            examples = (matrix.row.astype(np.int64), matrix.col.astype(np.int64), matrix.data.astype(np.float32))
        else:
            kept = subsample(self.ids, self.keep, rng)
            ids, sentence_ids = self.ids[kept], self.sentence_ids[kept]
            window_rng = rng if self.dynamic_window else None
            if self.objective == "skipgram":
                examples = skipgram_pairs(ids, sentence_ids, self.window, window_rng)
            else:
                examples = cbow_windows(ids, sentence_ids, self.window, window_rng)
        if len(examples[0]) == 0:
            raise ConfigError(
                f"epoch {epoch} has no {self.objective} training examples: no two words of the vocabulary share a "
                "line of the corpus; use a larger corpus or lower min_count"
            )
        order = rng.permutation(len(examples[0]))
        self._epoch, self._examples = epoch, tuple(column[order] for column in examples)
        return self._examples

    def draw_negatives(self, size: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        """Word ids drawn from the noise distribution."""
        return np.searchsorted(self.noise_cdf, rng.random(size), side="right")

    def __len__(self) -> int:
        return self.num_batches

    def __getitem__(self, index: tuple[int, int]) -> tuple[Tensor, ...]:
        epoch, k = index
        examples = self.examples(epoch)
        rows = np.arange(k * self.batch_size, (k + 1) * self.batch_size) % len(examples[0])
        batch = [torch.from_numpy(column[rows]) for column in examples]
        if self.objective != "glove":
            rng = np.random.default_rng((self.seed, epoch, k))
            batch.append(torch.from_numpy(self.draw_negatives((len(rows), self.negative), rng)))
        return tuple(batch)


class TextCorpusDataModule(pl.LightningDataModule):
    """Word-embedding training data from a plain-text corpus, and the word-similarity and analogy benchmarks.

    See the module doc for the corpus format and what word2vec and GloVe do to it. The vocabulary (``words``, most
    frequent first, and ``counts``) and the sentences are known after :meth:`setup`; the training loader serves
    :class:`EmbeddingBatches` of ``objective``. The test loader serves the names of the benchmarks,
    ``"wordsim353"``, ``"simlex999"`` and ``"analogy"``, one a batch, whose data are in :attr:`benchmarks`.

    Args:
        path: the corpus; ``None`` for gensim's ``head500.noblanks.cor`` (found without importing gensim).
        objective: ``"skipgram"`` or ``"cbow"`` (word2vec) or ``"glove"``; it must match the model's.
        min_count: the fewest occurrences of a word in the vocabulary.
        window: the largest distance between a word and its context.
        dynamic_window: draw each centre's window radius from ``1..window`` (word2vec); GloVe always uses the full
            window with ``1 / distance`` weights.
        sample: the subsampling threshold ``s`` (word2vec's ``-sample``, gensim's ``sample``); 0 keeps every word.
        negative: noise words per example (word2vec).
        ns_exponent: the exponent of the noise distribution.
        lowercase: lowercase the corpus (and match benchmark words case-insensitively).
        max_sentence_length: longer lines are cut into pieces of this many words.
        batch_size: examples a batch: pairs (skip-gram), windows (CBOW) or co-occurrence entries (GloVe).
        seed: seed of subsampling, windows, shuffling and negatives (mixed with the run's seed).
        wordsim353_path: the WordSim-353 file; ``None`` for gensim's ``wordsim353.tsv``.
        simlex999_path: the SimLex-999 file; ``None`` for gensim's ``simlex999.txt``.
        analogy_path: the analogy questions; ``None`` for gensim's ``questions-words.txt``.
    """

    def __init__(
        self,
        path: str | None = None,
        objective: Objective = "skipgram",
        min_count: int = 5,
        window: int = 5,
        dynamic_window: bool = True,
        sample: float = 1e-3,
        negative: int = 5,
        ns_exponent: float = 0.75,
        lowercase: bool = True,
        max_sentence_length: int = 10000,
        batch_size: int = 4096,
        seed: int = 0,
        wordsim353_path: str | None = None,
        simlex999_path: str | None = None,
        analogy_path: str | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if objective not in ("skipgram", "cbow", "glove"):
            raise ConfigError(f"objective must be 'skipgram', 'cbow' or 'glove', not {objective!r}")
        if min(min_count, window, negative, batch_size, max_sentence_length) < 1:
            raise ConfigError(
                "min_count, window, negative, batch_size and max_sentence_length must be at least 1, got "
                f"{min_count}, {window}, {negative}, {batch_size} and {max_sentence_length}"
            )
        if sample < 0:
            raise ConfigError(f"sample must be at least 0, got {sample}")
        self.path = path
        self.objective = objective
        self.min_count = min_count
        self.window = window
        self.dynamic_window = dynamic_window
        self.sample = sample
        self.negative = negative
        self.ns_exponent = ns_exponent
        self.lowercase = lowercase
        self.max_sentence_length = max_sentence_length
        self.batch_size = batch_size
        self.seed = seed
        self.benchmark_paths = {"wordsim353": wordsim353_path, "simlex999": simlex999_path, "analogy": analogy_path}
        self.sentences: list[list[str]] | None = None
        self.words: list[str] = []
        self.counts = np.zeros(0, dtype=np.int64)
        self.benchmarks: dict[str, list[WordPair] | AnalogyQuestions] = {}
        self.train_set: EmbeddingBatches | None = None

    def find_file(self, what: str) -> Path:
        """The file of ``what`` (``"corpus"`` or a benchmark): the path given, or gensim's copy."""
        given = self.path if what == "corpus" else self.benchmark_paths[what]
        if given is not None:
            return Path(given)
        return package_data_file(
            "gensim",
            f"test/test_data/{_GENSIM_FILES[what]}",
            f"the default {what} file comes",
            or_else=f"pass a file as --data.init_args.{'path' if what == 'corpus' else what + '_path'}",
        )

    def setup(self, stage: str | None = None) -> None:
        """Read the corpus and build the vocabulary and the training examples (once); read the benchmarks for a test."""
        if stage in (None, "test") and not self.benchmarks:
            self.benchmarks = {
                name: (read_analogies if name == "analogy" else read_word_pairs)(self.find_file(name))
                for name in BENCHMARKS
            }
        if self.train_set is not None:
            return
        path = self.find_file("corpus")
        self.sentences = read_text_corpus(path, self.lowercase, self.max_sentence_length)
        self.words, self.counts = build_vocabulary(self.sentences, self.min_count)
        if len(self.words) < 2:
            raise ConfigError(
                f"{path} has {len(self.words)} distinct words seen at least min_count={self.min_count} times; "
                "lower --data.init_args.min_count or use a larger corpus"
            )
        ids, sentence_ids = encode_corpus(self.sentences, self.words)
        glove = self.objective == "glove"
        self.train_set = EmbeddingBatches(
            self.objective,
            ids,
            sentence_ids,
            keep=keep_probabilities(self.counts, 0.0 if glove else self.sample),
            noise=noise_distribution(self.counts, self.ns_exponent),
            window=self.window,
            negative=self.negative,
            batch_size=self.batch_size,
            seed=int(np.random.SeedSequence((self.seed, run_seed())).generate_state(1)[0]),
            dynamic_window=self.dynamic_window,
            cooccurrences=cooccurrence_matrix(ids, sentence_ids, self.window, len(self.words)) if glove else None,
        )

    @property
    def vocab_size(self) -> int:
        """The number of words in the vocabulary; known after :meth:`setup`."""
        if self.train_set is None:
            raise ConfigError(f"{type(self).__name__} has no vocabulary yet: call setup() first")
        return len(self.words)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=None, sampler=_EpochBatchSampler(len(self.train_set)))

    def test_dataloader(self) -> DataLoader:
        """The benchmark names, one a batch."""
        return DataLoader(list(BENCHMARKS), batch_size=None)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(path={self.path!r}, objective={self.objective!r}, min_count={self.min_count}, "
            f"window={self.window}, sample={self.sample:g}, negative={self.negative}, batch_size={self.batch_size})"
        )
