"""Intrinsic evaluation of word vectors: word-similarity correlation and word analogies.

- **Word similarity.** WordSim-353 (Finkelstein et al. 2002, "Placing search in context: the concept revisited") and
  SimLex-999 (Hill, Reichart & Korhonen 2015, "SimLex-999: Evaluating Semantic Models with (Genuine) Similarity
  Estimation") give word pairs with human similarity scores; the score of a set of vectors is Spearman's rank
  correlation between the humans' scores and the cosine similarities, over the pairs whose two words have vectors.
- **Analogies.** The Google analogy set of Mikolov et al. 2013 ("Efficient Estimation of Word Representations in
  Vector Space"), 19,544 questions "a is to b as c is to d" in 14 sections (5 semantic, 9 syntactic whose names start
  with ``gram``), answered by 3CosAdd: the word whose unit vector is closest in cosine to
  :math:`\\hat b - \\hat a + \\hat c`, the three question words excluded. As in word2vec's ``compute-accuracy``
  tool (its demo searches the 30,000 most frequent words) and gensim's ``KeyedVectors.evaluate_word_analogies``, only
  the ``restrict_vocab`` most frequent words are searched, and a question with a word outside them is skipped.

The files are read in the formats gensim ships (``gensim.test.utils.datapath``): ``wordsim353.tsv`` and
``simlex999.txt`` are tab-separated ``word1 word2 score`` lines after ``#`` comment lines, ``questions-words.txt`` has
``: section`` lines followed by four words a line. Coverage (pairs or questions answered out of all) is always
reported: a score on half the pairs is not comparable with one on all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from paperzoo.core.errors import CorruptDataError, DatasetNotFoundError

WordPair = tuple[str, str, float]
Question = tuple[str, str, str, str]


@dataclass
class AnalogyQuestions:
    """The questions of an analogy file, in file order, with the section of each."""

    questions: list[Question]
    sections: list[str]

    def __len__(self) -> int:
        return len(self.questions)


@dataclass
class SimilarityResult:
    """Spearman's rho between human and cosine similarities over the ``found`` of ``total`` pairs (NaN below 2)."""

    spearman: float
    found: int
    total: int

    @property
    def coverage(self) -> float:
        return self.found / self.total if self.total else 0.0


@dataclass
class AnalogyResult:
    """3CosAdd accuracy over the ``found`` of ``total`` questions (NaN when none is found), and per section
    ``{section: (correct, found, total)}``."""

    correct: int
    found: int
    total: int
    sections: dict[str, tuple[int, int, int]] = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        return self.correct / self.found if self.found else float("nan")

    @property
    def coverage(self) -> float:
        return self.found / self.total if self.total else 0.0

    def group(self, semantic: bool) -> AnalogyResult:
        """The result over the semantic sections, or over the syntactic ones (names starting with ``gram``)."""
        picked = {k: v for k, v in self.sections.items() if k.startswith("gram") != semantic}
        correct, found, total = (sum(v[i] for v in picked.values()) for i in range(3))
        return AnalogyResult(correct, found, total, picked)


def _read_lines(path: str | Path, what: str) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(
            f"{path} does not exist: pass the {what} file, or leave the path unset to use gensim's copy "
            "(`pip install gensim`)"
        )
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise CorruptDataError(f"{path} is not UTF-8 text ({err}); it must be the {what} file") from err


def read_word_pairs(path: str | Path) -> list[WordPair]:
    """The ``(word1, word2, score)`` rows of a word-similarity file (``wordsim353.tsv``, ``simlex999.txt``).

    Lines starting with ``#`` and blank lines are skipped; every other line is ``word1<TAB>word2<TAB>score``.

    Raises:
        DatasetNotFoundError: there is no file at ``path``.
        CorruptDataError: a line is not two words and a number, or the file holds no pairs.
    """
    pairs = []
    for number, line in enumerate(_read_lines(path, "word-similarity (word1<TAB>word2<TAB>score)"), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        try:
            pairs.append((fields[0].strip(), fields[1].strip(), float(fields[2])))
        except (IndexError, ValueError):
            raise CorruptDataError(f"{path} line {number} is not word1<TAB>word2<TAB>score: {line!r}") from None
    if not pairs:
        raise CorruptDataError(f"{path} holds no word pairs")
    return pairs


def read_analogies(path: str | Path) -> AnalogyQuestions:
    """The questions of an analogy file in the format of Mikolov et al.'s ``questions-words.txt``.

    A line ``: name`` opens a section; every other non-blank line is a question of four words ``a b c d``.

    Raises:
        DatasetNotFoundError: there is no file at ``path``.
        CorruptDataError: a question comes before the first section or has other than four words, or there is none.
    """
    questions, sections, section = [], [], None
    for number, line in enumerate(_read_lines(path, "analogy (questions-words.txt)"), start=1):
        if not line.strip():
            continue
        if line.startswith(":"):
            section = line[1:].strip()
            continue
        words = line.split()
        if section is None or len(words) != 4:
            raise CorruptDataError(
                f"{path} line {number} is not a question of four words inside a ': section': {line!r}"
            )
        questions.append(tuple(words))
        sections.append(section)
    if not questions:
        raise CorruptDataError(f"{path} holds no analogy questions")
    return AnalogyQuestions(questions, sections)


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def _index(words: Sequence[str], lowercase: bool, limit: int | None = None) -> dict[str, int]:
    """Word -> row for the first ``limit`` words; with ``lowercase`` the first (most frequent) spelling wins."""
    index: dict[str, int] = {}
    for row, word in enumerate(words[:limit] if limit else words):
        index.setdefault(word.lower() if lowercase else word, row)
    return index


def word_similarity(
    words: Sequence[str], vectors: np.ndarray, pairs: Sequence[WordPair], lowercase: bool = True
) -> SimilarityResult:
    """Spearman's rho between the pairs' human scores and the cosine similarities of their vectors.

    Args:
        words: the vocabulary, one word per row of ``vectors``.
        vectors: ``(len(words), D)``.
        pairs: ``(word1, word2, score)``, e.g. from :func:`read_word_pairs`.
        lowercase: compare words case-insensitively (gensim's ``case_insensitive``).

    Returns:
        The correlation over the pairs whose two words are in ``words`` (pairs with a missing word are skipped, as
        gensim's ``evaluate_word_pairs`` does without ``dummy4unknown``), and how many those are.
    """
    index = _index(words, lowercase)
    unit = _unit_rows(vectors)
    gold, cosine = [], []
    for a, b, score in pairs:
        i, j = index.get(a.lower() if lowercase else a), index.get(b.lower() if lowercase else b)
        if i is None or j is None:
            continue
        gold.append(score)
        cosine.append(float(unit[i] @ unit[j]))
    rho = float(spearmanr(gold, cosine).statistic) if len(gold) >= 2 else float("nan")
    return SimilarityResult(rho, len(gold), len(pairs))


def analogy_accuracy(
    words: Sequence[str],
    vectors: np.ndarray,
    questions: AnalogyQuestions,
    restrict_vocab: int = 30000,
    lowercase: bool = True,
    chunk: int = 1024,
) -> AnalogyResult:
    """The 3CosAdd accuracy of the vectors on analogy questions.

    Args:
        words: the vocabulary, most frequent first, one word per row of ``vectors``.
        vectors: ``(len(words), D)``.
        questions: e.g. from :func:`read_analogies`.
        restrict_vocab: only the first (most frequent) this many words are candidate answers, and a question with a
            word outside them is skipped.
        lowercase: compare words case-insensitively.
        chunk: questions scored per matrix product.
    """
    index = _index(words, lowercase, restrict_vocab)
    unit = _unit_rows(np.asarray(vectors)[:restrict_vocab])
    keyed = [[index.get(w.lower() if lowercase else w) for w in q] for q in questions.questions]
    found = np.array([all(i is not None for i in q) for q in keyed], dtype=bool)
    ids = np.array([q if ok else (0, 0, 0, 0) for q, ok in zip(keyed, found, strict=True)], dtype=np.int64)[found]
    correct = np.zeros(len(ids), dtype=bool)
    for start in range(0, len(ids), chunk):
        a, b, c, d = ids[start : start + chunk].T
        scores = (unit[b] - unit[a] + unit[c]) @ unit.T  # (Q, V)
        rows = np.arange(len(a))
        for excluded in (a, b, c):
            scores[rows, excluded] = -np.inf
        correct[start : start + chunk] = scores.argmax(1) == d
    sections: dict[str, tuple[int, int, int]] = {}
    answered = iter(correct)
    for name, ok in zip(questions.sections, found, strict=True):
        right, seen, total = sections.get(name, (0, 0, 0))
        sections[name] = (right + int(next(answered)) if ok else right, seen + int(ok), total + 1)
    return AnalogyResult(int(correct.sum()), int(found.sum()), len(questions), sections)


def write_word2vec_text(path: str | Path, words: Sequence[str], vectors: np.ndarray) -> Path:
    """Write vectors in the word2vec text format (a ``count dim`` header, then ``word v1 ... vD`` per line), which
    ``gensim.models.KeyedVectors.load_word2vec_format(path)`` reads; 9 significant digits keep float32 exact."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(words) != len(vectors):
        raise ValueError(f"need one vector per word, got {len(words)} words and vectors of shape {vectors.shape}")
    if any(not w or any(c.isspace() for c in w) for w in words):
        raise ValueError("the word2vec text format cannot hold an empty word or one with whitespace")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        f.write(f"{len(words)} {vectors.shape[1]}\n")
        for word, row in zip(words, vectors, strict=True):
            f.write(word + " " + " ".join(f"{v:.9g}" for v in row.tolist()) + "\n")
    return path
