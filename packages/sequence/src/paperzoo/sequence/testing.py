"""Helpers that build tiny sequence datasets in the exact real on-disk formats, for tests.

Each writer produces what the matching reader reads in the real dataset: a dictd dictionary as Debian's
``dict-de-en`` installs it (a dictzip file and its base-64 index), the plain-text output of ``diatheke``, and the
``{train,valid,test}.{src,tgt}`` folder of a prepared parallel corpus, only with few examples.
"""

from __future__ import annotations

import struct
import textwrap
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from paperzoo.core.testing import write_rotten_tomatoes_csv  # noqa: F401 (re-exported: the writer moved to core)

_BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_DICTZIP_CHUNK = 58315
"""The uncompressed chunk length dictzip uses (it is in the header of Debian's german-english.dict.dz)."""

TOY_LEXICON = {
    "der": "the",
    "die": "the",
    "ein": "a",
    "hund": "dog",
    "katze": "cat",
    "bär": "bear",
    "vogel": "bird",
    "mädchen": "girl",
    "junge": "boy",
    "sieht": "sees",
    "hört": "hears",
    "mag": "likes",
    "füttert": "feeds",
    "große": "big",
    "kleine": "small",
    "müde": "tired",
    "schöne": "beautiful",
    "heute": "today",
    "oft": "often",
    "nie": "never",
}
"""The word-for-word German -> English lexicon of :func:`toy_translation_pairs`."""


def encode_dictd_number(value: int) -> str:
    """``value`` in dictd's base 64 (``A-Za-z0-9+/``, most significant digit first)."""
    digits = ""
    while True:
        value, digit = divmod(value, 64)
        digits = _BASE64[digit] + digits
        if value == 0:
            return digits


def dictd_article(headword: str, info: str, translation: str, width: int = 72) -> str:
    """One article as ``dictfmt`` writes Debian's dictionaries: the headword, the labels indented by one space (or an
    empty line), the translation indented by three spaces, each wrapped at ``width`` with unindented continuations."""

    def wrap(text: str, indent: str) -> list[str]:
        return textwrap.wrap(text, width, initial_indent=indent, break_long_words=False, break_on_hyphens=False) or [
            indent.rstrip()
        ]

    lines = [*wrap(headword, ""), *wrap(info, " "), *wrap(translation, "   ")]
    return "\n".join(lines) + "\n"


def write_dictd(
    directory: str | Path,
    entries: Sequence[tuple[str, str, str]],
    name: str = "german-english",
    short: str = "German - English Dictionary (test)",
) -> Path:
    """Write a dictd dictionary ``name.dict.dz`` (dictzip: gzip with the ``RA`` chunk table, readable as gzip) and
    its index ``name.index``, with ``dictfmt``'s ``00-database-*`` articles before the entries.

    Args:
        directory: the folder to write (created).
        entries: ``(headword, info, translation)`` per article, in file order; ``info`` is the label line, e.g.
            ``"{m} [cook.]"``, or ``""``.
        name: the file stem.
        short: the dictionary's one-line description (its ``00-database-short`` article).

    Returns:
        The path of the ``.dict.dz`` file.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    articles = [
        ("00databaseutf8", "\n"),
        ("00databaseshort", f"00-database-short\n     {short}\n"),
        ("00databaseurl", "https://dict.tu-chemnitz.de/\n"),
        *((_index_key(h), dictd_article(h, i, t)) for h, i, t in entries),
    ]
    body, index, offset = bytearray(), [], 0
    for key, article in articles:
        data = article.encode("utf-8")
        index.append((key, offset, len(data)))
        body += data
        offset += len(data)
    dict_path = directory / f"{name}.dict.dz"
    dict_path.write_bytes(_dictzip(bytes(body)))
    lines = [f"{key}\t{encode_dictd_number(o)}\t{encode_dictd_number(n)}\n" for key, o, n in sorted(index)]
    (directory / f"{name}.index").write_text("".join(lines), encoding="utf-8")
    return dict_path


def _index_key(headword: str) -> str:
    """The index key dictfmt writes: lowercase, letters, digits and single spaces only."""
    return " ".join("".join(c for c in headword.lower() if c.isalnum() or c.isspace()).split())


def _dictzip(data: bytes) -> bytes:
    """``data`` in the dictzip format: a gzip member whose deflate stream is flushed at every chunk boundary, with the
    compressed length of each chunk in an ``RA`` extra field, so a reader can seek."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunks = [
        compressor.compress(data[i : i + _DICTZIP_CHUNK]) + compressor.flush(zlib.Z_FULL_FLUSH)
        for i in range(0, max(len(data), 1), _DICTZIP_CHUNK)
    ]
    chunks[-1] += compressor.flush(zlib.Z_FINISH)
    table = struct.pack("<HHH", 1, _DICTZIP_CHUNK, len(chunks)) + b"".join(struct.pack("<H", len(c)) for c in chunks)
    extra = b"RA" + struct.pack("<H", len(table)) + table
    header = b"\x1f\x8b\x08\x04" + struct.pack("<I", 0) + b"\x02\x03" + struct.pack("<H", len(extra))
    trailer = struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)
    return header + extra + b"".join(chunks) + trailer


def diatheke_output(verses: Sequence[tuple], module: str = "engWEB2015eb") -> str:
    """Text in the format of ``diatheke -b MODULE -f plain -k RANGE``.

    Args:
        verses: ``(ref, text)`` or ``(ref, text, heading)`` per verse, e.g. ``("Psalms 145:1", "I will exalt you,
            my God, the King.\\nI will praise your name forever and ever.", "A praise psalm by David.")``. A text with
            line breaks is printed as poetry (indented two spaces, a trailing space and a blank line after it, as the
            WEB's psalms); a heading is printed on its own line before the verse, after a blank line.
        module: the module name printed on the last line.
    """
    out = []
    for ref, text, *rest in verses:
        heading = rest[0] if rest else None
        if heading:
            out.append(f"\n{heading}\n")
        if "\n" in text:
            out.append(f"  {ref}: {text} \n\n")
        else:
            out.append(f"{ref}: {text}\n")
    return "".join(out) + f"({module})\n"


def toy_translation_pairs(n: int, seed: int = 0, min_words: int = 3, max_words: int = 9) -> list[tuple[str, str]]:
    """``n`` German-English sentence pairs translated word for word with :data:`TOY_LEXICON` (umlauts included), so a
    model can learn the mapping; the German is capitalised and ends in ``.``."""
    rng = np.random.default_rng(seed)
    words = list(TOY_LEXICON)
    pairs = []
    for _ in range(n):
        chosen = [words[i] for i in rng.integers(0, len(words), rng.integers(min_words, max_words + 1))]
        german = " ".join(chosen)
        english = " ".join(TOY_LEXICON[w] for w in chosen)
        pairs.append((german[0].upper() + german[1:] + ".", english[0].upper() + english[1:] + "."))
    return pairs


def write_parallel_text(
    directory: str | Path,
    splits: dict[str, Sequence[tuple[str, str]]] | None = None,
    src_lang: str = "de",
    tgt_lang: str = "en",
    n_train: int = 200,
    n_valid: int = 20,
    n_test: int = 20,
    seed: int = 0,
) -> Path:
    """Write ``directory/{train,valid,test}.{src_lang,tgt_lang}`` as the IWSLT and WMT preparations do: UTF-8, one
    sentence per line, the two languages line-aligned.

    Args:
        directory: the folder to write (created); pass it as ``data_dir``.
        splits: the ``(source, target)`` pairs of each split; ``None`` for :func:`toy_translation_pairs` of
            ``n_train``, ``n_valid`` and ``n_test`` pairs.
        src_lang: the source suffix.
        tgt_lang: the target suffix.
        n_train: toy training pairs.
        n_valid: toy validation pairs.
        n_test: toy test pairs.
        seed: seed of the toy pairs.

    Returns:
        ``directory`` as a :class:`~pathlib.Path`.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if splits is None:
        pairs = toy_translation_pairs(n_train + n_valid + n_test, seed=seed)
        splits = {
            "train": pairs[:n_train],
            "valid": pairs[n_train : n_train + n_valid],
            "test": pairs[n_train + n_valid :],
        }
    for split, pairs in splits.items():
        for side, lang in enumerate((src_lang, tgt_lang)):
            text = "".join(f"{pair[side]}\n" for pair in pairs)
            (directory / f"{split}.{lang}").write_text(text, encoding="utf-8")
    return directory


def write_sunspots_csv(path: str | Path, years: int = 120, start: int = 1700, seed: int = 0) -> Path:
    """Write yearly sunspot-like numbers in the format of statsmodels' ``sunspots.csv``.

    The header is ``"YEAR","SUNACTIVITY"``, then one ``year,value`` row per year from ``start``; the values follow an
    11-year cycle of varying amplitude with noise, never negative, with at most one decimal, as in the real file.

    Args:
        path: the file to write (its folder is created).
        years: number of consecutive years.
        start: the first year.
        seed: seed of the amplitudes and the noise.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(years)
    amplitude = 60 + 40 * rng.random(years // 11 + 1)[t // 11]
    values = amplitude * np.sin(np.pi * (t % 11) / 11) ** 2 + rng.normal(0, 4, years)
    values = np.round(np.clip(values, 0, None), 1)
    lines = ['"YEAR","SUNACTIVITY"'] + [f"{start + i},{v:g}" for i, v in enumerate(values)]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


TOY_TOPICS = {
    "animal": ("cat", "dog", "horse", "cow", "sheep", "goat"),
    "colour": ("red", "green", "blue", "yellow", "purple", "orange"),
    "food": ("bread", "cheese", "apple", "rice", "soup", "cake"),
    "vehicle": ("car", "bus", "train", "bicycle", "truck", "boat"),
}
"""Groups of related words: :func:`write_text_corpus` uses the words of a group together, never across groups."""

_CORPUS_FILLER = ("state", "time", "year", "form", "work", "includ", "world", "film", "american", "retriev")


def write_text_corpus(
    path: str | Path,
    n_lines: int = 200,
    words_per_line: int = 40,
    filler: float = 0.3,
    seed: int = 0,
    topics: dict[str, Sequence[str]] | None = None,
) -> Path:
    """Write a corpus in the format of gensim's ``head500.noblanks.cor``: UTF-8, one document a line, lowercase words
    separated by single spaces, no punctuation.

    Each line is about one topic of ``topics`` (:data:`TOY_TOPICS` by default): its words are that topic's words, with
    a fraction ``filler`` of words shared by all topics mixed in, so words of one topic share their contexts and words
    of two topics never meet in a window.

    Args:
        path: the file to write (its folder is created).
        n_lines: documents, the topics taking turns.
        words_per_line: words a document.
        filler: the probability that a word is a shared filler word.
        seed: seed of the words.
        topics: ``{topic: words}``.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    rng = np.random.default_rng(seed)
    groups = list((topics or TOY_TOPICS).values())
    lines = []
    for i in range(n_lines):
        group = groups[i % len(groups)]
        words = [
            str(rng.choice(_CORPUS_FILLER)) if rng.random() < filler else str(rng.choice(group))
            for _ in range(words_per_line)
        ]
        lines.append(" ".join(words))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def toy_word_pairs(topics: dict[str, Sequence[str]] | None = None, seed: int = 0) -> list[tuple[str, str, float]]:
    """Word pairs with human-like scores for :data:`TOY_TOPICS`: two words of one topic score 7-10, of two topics 0-3;
    a last pair has a word that no topic uses (``unicorn``), so coverage is below 1."""
    rng = np.random.default_rng(seed)
    groups = list((topics or TOY_TOPICS).values())
    pairs = []
    for g, group in enumerate(groups):
        pairs.append((group[0], group[1], round(float(rng.uniform(7, 10)), 2)))
        pairs.append((group[2], group[3], round(float(rng.uniform(7, 10)), 2)))
        other = groups[(g + 1) % len(groups)]
        pairs.append((group[0], other[2], round(float(rng.uniform(0, 3)), 2)))
        pairs.append((group[4], other[5], round(float(rng.uniform(0, 3)), 2)))
    pairs.append(("unicorn", groups[0][0], 5.0))
    return pairs


_PAIR_HEADERS = {
    "wordsim353": "# The WordSimilarity-353 Test Collection (http://www.cs.technion.ac.il/~gabr/resources/data/wordsim353/)",
    "simlex999": "# The SimLex-999 Test data (https://www.cl.cam.ac.uk/~fh295/simlex.html)",
}


def write_word_pairs(
    path: str | Path, pairs: Sequence[tuple[str, str, float]] | None = None, kind: str = "wordsim353"
) -> Path:
    """Write a word-similarity file as gensim ships ``wordsim353.tsv`` and ``simlex999.txt``: two ``#`` header lines
    (the collection's name, then ``Word 1<TAB>Word 2<TAB>Human (mean)``), then ``word1<TAB>word2<TAB>score`` rows.

    Args:
        path: the file to write (its folder is created).
        pairs: ``(word1, word2, score)``; ``None`` for :func:`toy_word_pairs`.
        kind: ``"wordsim353"`` or ``"simlex999"``, which header to write.
    """
    rows = [_PAIR_HEADERS[kind], "# Word 1\tWord 2\tHuman (mean)"]
    rows += [f"{a}\t{b}\t{score:.2f}" for a, b, score in (toy_word_pairs() if pairs is None else pairs)]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def write_analogies(path: str | Path, sections: dict[str, Sequence[Sequence[str]]] | None = None) -> Path:
    """Write analogy questions in the format of ``questions-words.txt``: a ``: section`` line opens each section,
    then one question ``a b c d`` a line (the real file capitalises names, ``Athens Greece Baghdad Iraq``).

    Args:
        path: the file to write (its folder is created).
        sections: ``{section: questions}``; ``None`` for a few questions on :data:`TOY_TOPICS` words, in one semantic
            section with a capitalised question and one syntactic (``gram``) section, and a question with a word no
            topic uses.
    """
    if sections is None:
        sections = {
            "capital-common-countries": [("Cat", "Dog", "Red", "Green"), ("Athens", "Greece", "Baghdad", "Iraq")],
            "gram1-adjective-to-adverb": [("bread", "cheese", "car", "bus"), ("cow", "sheep", "blue", "yellow")],
        }
    rows = []
    for name, questions in sections.items():
        rows.append(f": {name}")
        rows += [" ".join(question) for question in questions]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def write_embedding_benchmarks(directory: str | Path) -> dict[str, Path]:
    """Write toy ``wordsim353.tsv``, ``simlex999.txt`` and ``questions-words.txt`` (the names gensim uses) on
    :data:`TOY_TOPICS` words into ``directory``; ``{"wordsim353": path, "simlex999": path, "analogy": path}``."""
    directory = Path(directory)
    return {
        "wordsim353": write_word_pairs(directory / "wordsim353.tsv", kind="wordsim353"),
        "simlex999": write_word_pairs(directory / "simlex999.txt", toy_word_pairs(seed=1), kind="simlex999"),
        "analogy": write_analogies(directory / "questions-words.txt"),
    }
