"""Parallel corpora that work offline, from Debian packages, written in the layout of :class:`ParallelTextDataModule`.

Two corpora:

* ``dict-de-en``: the German-English example sentences of the TU Chemnitz dictionary (Frank Richter, GPL-2+),
  packaged by Debian as ``dict-de-en`` in the dictd format. Only entries whose German headword and English
  translation are both whole sentences are kept.
* ``bible-en-es``: the verses of the World English Bible (engWEB2015eb) and the Reina-Valera 1909 (spaRV1909eb),
  both public domain, read with the SWORD front end ``diatheke`` and aligned by verse reference.

Splits are leakage-free and deterministic: pairs that share a normalised source or a normalised target sentence
(case and whitespace ignored) form one group, groups are ordered by a seeded hash of their sentences (not by a
random draw), and whole groups fill the test split, then the validation split; the rest is training data. So no
source (or target) sentence is in two splits, and a corpus gives the same split on every machine.

Run ``python -m paperzoo.sequence.data.corpora --help``.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import hashlib
import json
import re
import shutil
import subprocess
import sys
import unicodedata
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from paperzoo.core.errors import ConfigError, CorruptDataError, DatasetNotFoundError, PaperzooError

DICT_DE_EN_PATH = Path("/usr/share/dictd/german-english.dict.dz")
"""Where Debian's ``dict-de-en`` installs the German-English dictionary (its index is beside it)."""

DICT_DE_EN_APT = "apt-get install -y dict-de-en"
BIBLE_APT = "apt-get install -y diatheke sword-text-web sword-text-sparv"
BIBLE_RANGE = "Gen 1:1-Rev 22:21"
"""The diatheke key of the whole Bible; the deuterocanonical books the WEB prints inside it have no Spanish partner."""

ENGLISH_BIBLE = "engWEB2015eb"
SPANISH_BIBLE = "spaRV1909eb"
SWORD_PACKAGES = {ENGLISH_BIBLE: "sword-text-web", SPANISH_BIBLE: "sword-text-sparv"}

Pair = tuple[str, str]
SPLIT_NAMES = ("train", "valid", "test")

# ---------------------------------------------------------------- dictd

_BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_SENTENCE_END = re.compile(r"[.!?][\"'’”“»«]*$")
_TRAILING_LABEL = re.compile(r"\s*(?:\[[^\[\]]*\]|\{[^{}]*\}|\([^()]*\))$")


@dataclasses.dataclass(frozen=True)
class DictEntry:
    """One article of a dictd dictionary.

    Attributes:
        headword: the headword (German in ``german-english``), its wrapped lines joined.
        info: the grammar and usage line under it, e.g. ``{m} [cook.]``; empty when there is none.
        translation: the translation text (English), its wrapped lines joined; alternatives are separated by ``; ``.
    """

    headword: str
    info: str
    translation: str


def decode_dictd_number(text: str) -> int:
    """A dictd index number: base 64 with the alphabet ``A-Za-z0-9+/``, most significant digit first."""
    value = 0
    for char in text:
        digit = _BASE64.find(char)
        if digit < 0:
            raise ValueError(f"{char!r} is not a dictd base-64 digit")
        value = value * 64 + digit
    return value


def read_dictd(dict_path: str | Path, index_path: str | Path | None = None) -> list[DictEntry]:
    """The articles of a dictd dictionary, in the order they are stored.

    A dictd dictionary is a text file, usually dictzip-compressed (``.dict.dz``, readable as gzip), and an index
    (``.index``) whose lines are ``headword<TAB>offset<TAB>length`` with offset and length in dictd base 64. For
    ``dictfmt``'s format of Debian's dictionaries, each article is the headword (wrapped at 72 characters), a line
    indented by one space with the grammar and usage labels (or an empty line), and the translation indented by three
    spaces and wrapped; wrapped lines continue unindented. The index delimits the articles, since a wrapped line and
    the next headword look alike. The ``00-database-*`` articles (the dictionary's own description) are skipped.

    Args:
        dict_path: the ``.dict.dz`` or ``.dict`` file.
        index_path: its index; ``None`` for the ``.index`` file beside it.

    Raises:
        DatasetNotFoundError: a file is missing.
        CorruptDataError: a file is not in the dictd format.
    """
    dict_path = Path(dict_path)
    if index_path is None:
        index_path = dict_path.with_name(dict_path.name.removesuffix(".dz").removesuffix(".dict") + ".index")
    index_path = Path(index_path)
    for path in (dict_path, index_path):
        if not path.is_file():
            raise DatasetNotFoundError(f"{path} not found: a dictd dictionary needs both its .dict.dz and .index files")
    try:
        data = gzip.decompress(dict_path.read_bytes()) if dict_path.suffix == ".dz" else dict_path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:
        raise CorruptDataError(f"{dict_path} is not a gzip/dictzip file ({err}); reinstall it") from err
    spans = {}
    for number, line in enumerate(index_path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split("\t")
        try:
            headword, offset, length = fields
            span = (decode_dictd_number(offset), decode_dictd_number(length))
        except ValueError as err:
            raise CorruptDataError(
                f"{index_path} line {number} is not 'headword<TAB>offset<TAB>length' in dictd base 64: {line[:80]!r}"
            ) from err
        if headword.startswith(("00database", "00-database")):
            continue
        if span[0] + span[1] > len(data):
            raise CorruptDataError(f"{index_path} line {number} points past the end of {dict_path}; reinstall both")
        spans[span] = None
    entries = []
    for offset, length in sorted(spans):
        try:
            article = data[offset : offset + length].decode("utf-8")
        except UnicodeDecodeError as err:
            raise CorruptDataError(f"{dict_path} has an article at byte {offset} that is not UTF-8") from err
        entries.append(_parse_article(article))
    return entries


def _parse_article(article: str) -> DictEntry:
    lines = article.rstrip("\n").split("\n")
    i = 0
    headword = []
    while i < len(lines) and lines[i] and not lines[i].startswith(" "):
        headword.append(lines[i])
        i += 1
    info = []
    while i < len(lines) and not lines[i].startswith("   "):
        info.append(lines[i])
        i += 1
    return DictEntry(_squeeze(" ".join(headword)), _squeeze(" ".join(info)), _squeeze(" ".join(lines[i:])))


def is_sentence(text: str, min_words: int = 5) -> bool:
    """``text`` has at least ``min_words`` words and ends in ``.``, ``?`` or ``!`` (closing quotes may follow)."""
    return len(text.split()) >= min_words and _SENTENCE_END.search(text) is not None


def strip_trailing_labels(text: str) -> str:
    """``text`` without the dictionary labels after its final punctuation, e.g. ``Fine words butter no parsnips.
    [prov.]`` -> ``Fine words butter no parsnips.``; labels that do not follow a sentence end are kept."""
    while (match := _TRAILING_LABEL.search(text)) and _SENTENCE_END.search(text[: match.start()]):
        text = text[: match.start()]
    return text


def dictd_sentence_pairs(entries: Iterable[DictEntry], min_words: int = 5) -> list[Pair]:
    """The (headword, translation) pairs of dictionary entries in which both are whole sentences.

    The translation field lists alternatives separated by ``; ``; the first alternative that is a whole sentence is
    the target (a ``;`` inside a sentence is kept). Usage labels after a sentence's final punctuation (``[Br.]``,
    ``(safety note)``) are removed from both sides; a side is a whole sentence when :func:`is_sentence` says so.

    Args:
        entries: the articles, e.g. from :func:`read_dictd`.
        min_words: the fewest words a sentence may have.
    """
    pairs = []
    for entry in entries:
        source = strip_trailing_labels(entry.headword)
        if not is_sentence(source, min_words):
            continue
        target = next((t for t in _sentence_alternatives(entry.translation) if is_sentence(t, min_words)), None)
        if target is not None:
            pairs.append((source, target))
    return pairs


def _sentence_alternatives(translation: str) -> list[str]:
    """Split ``a.; b!; c`` at the semicolons that follow a sentence end (after its labels)."""
    alternatives, current = [], ""
    for piece in translation.split("; "):
        current = f"{current}; {piece}" if current else piece
        stripped = strip_trailing_labels(current)
        if _SENTENCE_END.search(stripped):
            alternatives.append(stripped)
            current = ""
    if current:
        alternatives.append(strip_trailing_labels(current))
    return alternatives


def read_dict_de_en(dict_path: str | Path = DICT_DE_EN_PATH, min_words: int = 5) -> list[Pair]:
    """German-English whole-sentence pairs of Debian's ``dict-de-en``, in dictionary order (duplicates kept).

    Raises:
        DatasetNotFoundError: the dictionary is not installed; the message names the apt-get command.
    """
    dict_path = Path(dict_path)
    if not dict_path.is_file():
        raise DatasetNotFoundError(
            f"{dict_path} not found: install Debian's German-English dictionary with `{DICT_DE_EN_APT}`, or pass "
            "the path of a dictd .dict.dz file"
        )
    return dictd_sentence_pairs(read_dictd(dict_path), min_words=min_words)


# ---------------------------------------------------------------- diatheke

_VERSE = re.compile(
    r"^[ \t]*(?P<book>[1-4I]{0,3} ?[A-Z][A-Za-z]*(?: \(?[A-Za-z]+\)?)*?) (?P<chapter>\d+):(?P<verse>\d+):(?: |$)"
)
_MODULE_LINE = re.compile(r"^\([A-Za-z0-9_.-]+\)$")
_TITLE = re.compile(r"[ \t]*<title\b[^<>]*>.*?</title>")
_STRONGS = re.compile(r"[ \t]*<[GH]\d+[a-z]?>")
_MARKUP = re.compile(r"[ \t]*</?[A-Za-z][^<>]*>")
# A footnote as diatheke's plain output prints it with footnotes on: " [22:19 TR reads “Book” ...] ", possibly
# holding one level of brackets; also the empty "[]" some poetry lines carry.
_FOOTNOTE = re.compile(r"[ \t]*\[(?: ?\d+:\d+(?:[^\[\]\n]|\[[^\[\]\n]*\])*)?\][ \t]*")
_CLOSING = ".,;:!?’”»)]"


@dataclasses.dataclass(frozen=True)
class Verse:
    """One verse of diatheke's output.

    Attributes:
        ref: the reference as diatheke prints it, e.g. ``Psalms 23:1`` or ``I Samuel 3:10``.
        text: the verse, its lines joined, markup, Strong's numbers and footnotes removed.
        heading: the heading line printed just before the verse (a psalm's title, or a stray repeat of one), if any.
    """

    ref: str
    text: str
    heading: str | None = None


def parse_diatheke(text: str) -> list[Verse]:
    """The verses of ``diatheke -f plain`` output, in order.

    Each verse starts with a ``Book C:V:`` line (indented by two spaces in poetry) and runs to the next one; it may
    span lines and blank lines. Markup diatheke leaves in (``<title>``, ``<lg/>``, ``<l/>``), Strong's numbers
    (``<G5547>``, ``<H2416>``) and footnotes and cross-references (``[1:1 ...]``, printed with ``-o f``) are removed,
    and whitespace is collapsed.

    Headings are not verse text. diatheke prints a psalm's title on a line of its own before every verse of the
    psalm, and keeps printing the last title before the verses that follow, even in other books, sometimes glued to
    the end of the previous verse's last line (the WEB's "A praise psalm by David." after Psalm 145, and its Psalm 151
    heading through the New Testament). A heading is recognised as a line that stands after a blank line right before
    a verse more than once; wherever such a text ends the lines before a verse (alone or after a sentence on the same
    line) it is removed. A line that does this only once ("Aaron held his peace." in Leviticus 10:3) is verse text.
    The module's closing matter after the last verse (the WEB's glossary), from the first blank line after it, and
    the closing ``(module)`` line are dropped.

    Args:
        text: the output of diatheke, e.g. from :func:`run_diatheke`.
    """
    lines = ["" if _MODULE_LINE.match(line.strip()) else _clean_markup(line) for line in text.split("\n")]
    starts = [i for i, line in enumerate(lines) if _VERSE.match(line)]
    if not starts:
        return []
    last = starts[-1] + 1
    while last < len(lines) and lines[last].strip():
        last += 1
    headings = _repeated_headings(lines, starts)
    verses = []
    heading = _split_heading(lines[: starts[0]], headings)[1]
    for k, start in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else last
        match = _VERSE.match(lines[start])
        body, next_heading = _split_heading([lines[start][match.end() :], *lines[start + 1 : end]], headings)
        ref = f"{match['book']} {match['chapter']}:{match['verse']}"
        verses.append(Verse(ref, _squeeze(" ".join(body)), heading))
        heading = next_heading
    return verses


def _repeated_headings(lines: list[str], starts: list[int]) -> set[str]:
    """Texts that stand alone on a line after a blank line, right before a verse, at least twice."""
    counts: dict[str, int] = {}
    for start in starts:
        if start >= 2 and lines[start - 1].strip() and not lines[start - 2].strip():
            text = _squeeze(lines[start - 1])
            counts[text] = counts.get(text, 0) + 1
    return {text for text, count in counts.items() if count >= 2}


def _split_heading(lines: list[str], headings: set[str]) -> tuple[list[str], str | None]:
    """``lines`` without the heading at their end, and that heading (or ``None``)."""
    lines = [line for line in lines if line.strip()]
    found = []
    while lines:
        text = _squeeze(lines[-1])
        if text in headings:
            found.insert(0, text)
            lines.pop()
            continue
        suffix = next((h for h in headings if text.endswith(f" {h}")), None)
        if suffix is not None:
            found.insert(0, suffix)
            lines[-1] = text[: -len(suffix) - 1]
        break
    return lines, " ".join(found) or None


def _clean_markup(line: str) -> str:
    line = _TITLE.sub("", line)
    for pattern in (_FOOTNOTE, _STRONGS, _MARKUP):
        line = _remove(pattern, line)
    return line


def _remove(pattern: re.Pattern, line: str) -> str:
    """``line`` without the matches of ``pattern``; a match between two words leaves one space, so the words stay
    apart, and none before punctuation or at the line's end."""
    pieces, start = [], 0
    for match in pattern.finditer(line):
        before, after = line[: match.start()], line[match.end() :]
        between_words = before[-1:].strip() and after[:1].strip() and after[0] not in _CLOSING
        pieces += [line[start : match.start()], " " if between_words else ""]
        start = match.end()
    return "".join([*pieces, line[start:]])


def run_diatheke(module: str, key: str = BIBLE_RANGE, footnotes: bool = True) -> str:
    """The plain-text output of ``diatheke -b MODULE -f plain -k KEY``.

    Footnotes are printed (``-o f``) because the WEB module glues the two words around a footnote together when it
    is left out ("Godcreated"); :func:`parse_diatheke` removes them.

    Raises:
        DatasetNotFoundError: diatheke or the module is not installed; the message names the apt-get command.
        CorruptDataError: diatheke failed.
    """
    if shutil.which("diatheke") is None:
        raise DatasetNotFoundError(f"diatheke is not installed: run `{BIBLE_APT}`")
    listing = subprocess.run(
        ["diatheke", "-b", "system", "-k", "modulelist"], capture_output=True, text=True, encoding="utf-8", check=False
    )
    if not re.search(rf"^{re.escape(module)} :", listing.stdout, flags=re.M):
        package = SWORD_PACKAGES.get(module, "the package that provides it")
        raise DatasetNotFoundError(
            f"the SWORD module {module} is not installed: run `apt-get install -y {package}` "
            "(`diatheke -b system -k modulelist` lists the installed ones)"
        )
    command = ["diatheke", "-b", module, *(["-o", "f"] if footnotes else []), "-f", "plain", "-k", key]
    result = subprocess.run(command, capture_output=True, text=True, encoding="utf-8", check=False)
    if result.returncode != 0 or not result.stdout.strip():
        raise CorruptDataError(
            f"`{' '.join(command)}` failed (exit {result.returncode}): {result.stderr.strip()[:200] or 'no output'}"
        )
    return result.stdout


def align_verses(source: Sequence[Verse], target: Sequence[Verse]) -> list[tuple[str, str, str]]:
    """``(ref, source text, target text)`` for the references in both, in source order; empty verses are skipped and
    a reference printed twice counts once (its first verse)."""
    by_ref: dict[str, Verse] = {}
    for verse in target:
        by_ref.setdefault(verse.ref, verse)
    seen = set()
    aligned = []
    for verse in source:
        partner = by_ref.get(verse.ref)
        if partner is None or verse.ref in seen or not verse.text or not partner.text:
            continue
        seen.add(verse.ref)
        aligned.append((verse.ref, verse.text, partner.text))
    return aligned


def read_bible_en_es(english_text: str | None = None, spanish_text: str | None = None) -> list[Pair]:
    """English-Spanish verse pairs of the World English Bible and the Reina-Valera 1909, in canonical order.

    The Reina-Valera holds a psalm's title inside verse 1, the WEB prints it as a heading; since diatheke also repeats
    headings over psalms that have none, the first verse of a psalm is left out whenever a heading precedes it in the
    English, rather than paired with a Spanish verse that says more.

    Args:
        english_text: diatheke's output for ``engWEB2015eb``; ``None`` runs diatheke (:func:`run_diatheke`).
        spanish_text: diatheke's output for ``spaRV1909eb``; ``None`` runs diatheke.

    Raises:
        DatasetNotFoundError: diatheke or a module is needed and not installed.
    """
    english = parse_diatheke(english_text if english_text is not None else run_diatheke(ENGLISH_BIBLE))
    spanish = parse_diatheke(spanish_text if spanish_text is not None else run_diatheke(SPANISH_BIBLE))
    titled = {v.ref for v in english if v.heading and v.ref.startswith("Psalms ") and v.ref.endswith(":1")}
    return [(en, es) for ref, en, es in align_verses(english, spanish) if ref not in titled]


# ---------------------------------------------------------------- splits


def normalise_sentence(text: str) -> str:
    """The form under which two sentences count as the same: NFKC, case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def deduplicate(pairs: Iterable[Pair]) -> list[Pair]:
    """The pairs without exact repeats (first occurrence kept, order kept)."""
    return list(dict.fromkeys(pairs))


def split_pairs(pairs: Sequence[Pair], valid_size: int, test_size: int, seed: int = 0) -> dict[str, list[Pair]]:
    """Split sentence pairs into train, valid and test, deterministically and without leakage.

    Pairs sharing a normalised source or target sentence (:func:`normalise_sentence`) are joined into groups
    (transitively), so no sentence is in two splits. Each group's rank is the smallest keyed BLAKE2b hash (key:
    ``seed``) of its normalised sentences; taking groups by rank, a group goes to test if it fits in the
    ``test_size`` still free, else to valid if it fits there, else to train. The sizes are exact unless too few small
    groups are left. Within a split, pairs keep their input order.

    Args:
        pairs: ``(source, target)`` sentence pairs.
        valid_size: pairs in the validation split.
        test_size: pairs in the test split.
        seed: the hash key; another seed gives another split.

    Returns:
        ``{"train": [...], "valid": [...], "test": [...]}``.

    Raises:
        ConfigError: the held-out sizes are negative or leave no training pairs.
    """
    if valid_size < 0 or test_size < 0 or valid_size + test_size >= len(pairs):
        raise ConfigError(
            f"valid_size={valid_size} and test_size={test_size} must be at least 0 and leave training pairs "
            f"out of {len(pairs)}"
        )
    parent = list(range(len(pairs)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_with: dict[tuple[int, str], int] = {}
    for i, (source, target) in enumerate(pairs):
        for side, sentence in ((0, source), (1, target)):
            j = first_with.setdefault((side, normalise_sentence(sentence)), i)
            parent[find(i)] = find(j)
    key = str(seed).encode()
    rank: dict[int, bytes] = {}
    members: dict[int, list[int]] = {}
    for (_, sentence), i in first_with.items():
        digest = hashlib.blake2b(sentence.encode(), digest_size=8, key=key).digest()
        root = find(i)
        rank[root] = min(rank.get(root, digest), digest)
    for i in range(len(pairs)):
        members.setdefault(find(i), []).append(i)
    assignment = [""] * len(pairs)
    room = {"test": test_size, "valid": valid_size}
    for root in sorted(members, key=lambda r: (rank[r], r)):
        group = members[root]
        split = next((s for s in ("test", "valid") if len(group) <= room[s]), "train")
        if split != "train":
            room[split] -= len(group)
        for i in group:
            assignment[i] = split
    return {split: [pair for pair, s in zip(pairs, assignment, strict=True) if s == split] for split in SPLIT_NAMES}


def write_parallel_corpus(
    out_dir: str | Path, splits: dict[str, Sequence[Pair]], src_lang: str, tgt_lang: str
) -> dict[str, int]:
    """Write ``out_dir/{train,valid,test}.{src_lang,tgt_lang}``: UTF-8, one sentence per line, line-aligned.

    Returns:
        The number of pairs in each split.

    Raises:
        ConfigError: a sentence is empty or holds a line break.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for split in SPLIT_NAMES:
        for side, lang in enumerate((src_lang, tgt_lang)):
            lines = [pair[side] for pair in splits[split]]
            bad = next((line for line in lines if not line.strip() or "\n" in line or "\r" in line), None)
            if bad is not None:
                raise ConfigError(f"cannot write {bad!r} to {split}.{lang}: sentences must be non-empty single lines")
            (out_dir / f"{split}.{lang}").write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return {split: len(splits[split]) for split in SPLIT_NAMES}


def _prepare(
    out_dir: str | Path,
    pairs: list[Pair],
    src_lang: str,
    tgt_lang: str,
    valid_size: int,
    test_size: int,
    seed: int,
    description: dict,
) -> dict:
    unique = deduplicate(pairs)
    splits = split_pairs(unique, valid_size, test_size, seed)
    sizes = write_parallel_corpus(out_dir, splits, src_lang, tgt_lang)
    stats = {
        **description,
        "src_lang": src_lang,
        "tgt_lang": tgt_lang,
        "pairs_read": len(pairs),
        "exact_duplicates_removed": len(pairs) - len(unique),
        "pairs_kept": len(unique),
        "splits": sizes,
        "split_seed": seed,
        "split_rule": (
            "pairs sharing a normalised (NFKC, case-folded, whitespace-collapsed) source or target sentence form one "
            "group; groups are ranked by their smallest BLAKE2b hash keyed with the seed and fill test, then valid; "
            "the rest is train"
        ),
    }
    out_dir = Path(out_dir)
    (out_dir / "stats.json").write_text(json.dumps(stats, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out_dir / "README").write_text(_readme(stats), encoding="utf-8")
    return stats


def _readme(stats: dict) -> str:
    splits = stats["splits"]
    return (
        f"{stats['name']}: {stats['src_lang']} -> {stats['tgt_lang']} sentence pairs\n\n"
        f"Source: {stats['source']}\n"
        f"Licence: {stats['licence']}\n"
        f"Selection: {stats['selection']}\n"
        f"Made by: {stats['command']}\n\n"
        f"Pairs read {stats['pairs_read']}, exact duplicates removed {stats['exact_duplicates_removed']}, "
        f"kept {stats['pairs_kept']}: train {splits['train']}, valid {splits['valid']}, test {splits['test']}.\n"
        f"Split (seed {stats['split_seed']}): {stats['split_rule']}.\n\n"
        "Files: {train,valid,test}.{" + f"{stats['src_lang']},{stats['tgt_lang']}" + "}, UTF-8, one sentence per "
        "line, line-aligned; stats.json has these numbers.\n"
    )


def prepare_dict_de_en(
    out_dir: str | Path,
    dict_path: str | Path = DICT_DE_EN_PATH,
    valid_size: int = 1000,
    test_size: int = 1000,
    seed: int = 0,
    min_words: int = 5,
) -> dict:
    """Write the German -> English sentence pairs of Debian's ``dict-de-en`` as ``{train,valid,test}.{de,en}``.

    Args:
        out_dir: the folder to write (created; its split files are replaced).
        dict_path: the dictd dictionary (its ``.index`` beside it).
        valid_size: pairs in the validation split.
        test_size: pairs in the test split.
        seed: the seed of the split.
        min_words: the fewest words of a sentence on either side.

    Returns:
        The statistics also written to ``out_dir/stats.json``.
    """
    pairs = read_dict_de_en(dict_path, min_words=min_words)
    description = {
        "name": "dict-de-en",
        "source": f"Debian package dict-de-en ({dict_path}): the TU Chemnitz German-English dictionary by Frank "
        "Richter, https://dict.tu-chemnitz.de/",
        "licence": "GPL-2+ (the dictionary's; the derived files are for local research use, do not redistribute "
        "them under other terms)",
        "selection": f"entries whose German headword and English translation are whole sentences (>= {min_words} "
        "words, ending in . ? or !); the first whole-sentence alternative of the translation; usage labels after the "
        "final punctuation removed",
        "command": f"python -m paperzoo.sequence.data.corpora dict-de-en OUT_DIR --valid-size {valid_size} "
        f"--test-size {test_size} --seed {seed} --min-words {min_words}",
    }
    return _prepare(out_dir, pairs, "de", "en", valid_size, test_size, seed, description)


def prepare_bible_en_es(
    out_dir: str | Path,
    valid_size: int = 1000,
    test_size: int = 1000,
    seed: int = 0,
    english_text: str | None = None,
    spanish_text: str | None = None,
) -> dict:
    """Write the English -> Spanish Bible verse pairs as ``{train,valid,test}.{en,es}``.

    Args:
        out_dir: the folder to write (created; its split files are replaced).
        valid_size: pairs in the validation split.
        test_size: pairs in the test split.
        seed: the seed of the split.
        english_text: diatheke's output for ``engWEB2015eb``; ``None`` runs diatheke.
        spanish_text: diatheke's output for ``spaRV1909eb``; ``None`` runs diatheke.

    Returns:
        The statistics also written to ``out_dir/stats.json``.
    """
    pairs = read_bible_en_es(english_text, spanish_text)
    description = {
        "name": "bible-en-es",
        "source": f"SWORD modules {ENGLISH_BIBLE} (World English Bible) and {SPANISH_BIBLE} (Reina-Valera 1909), "
        f"Debian packages sword-text-web and sword-text-sparv, read with `diatheke -o f -f plain -k '{BIBLE_RANGE}'` "
        "(footnotes printed, so that the words around them stay apart, then removed)",
        "licence": "public domain (both translations)",
        "selection": "verses present and non-empty in both, aligned by reference; psalm headings, Strong's numbers "
        "and footnotes removed; a psalm's verse 1 left out when the English prints a heading before it",
        "command": f"python -m paperzoo.sequence.data.corpora bible-en-es OUT_DIR --valid-size {valid_size} "
        f"--test-size {test_size} --seed {seed}",
    }
    return _prepare(out_dir, pairs, "en", "es", valid_size, test_size, seed, description)


def _squeeze(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m paperzoo.sequence.data.corpora",
        description="Write an offline parallel corpus as OUT_DIR/{train,valid,test}.{src,tgt} (UTF-8, one sentence "
        "per line, line-aligned) with a README and stats.json, for ParallelTextDataModule. Splits are deterministic "
        "and leakage-free: pairs sharing a (case- and whitespace-normalised) source or target sentence stay in one "
        "split, chosen by a seeded hash.",
        epilog="Each corpus has its own arguments: python -m paperzoo.sequence.data.corpora CORPUS --help.",
    )
    corpora = parser.add_subparsers(dest="corpus", required=True, metavar="{dict-de-en,bible-en-es}")
    dict_de_en = corpora.add_parser(
        "dict-de-en",
        help="German -> English whole sentences of Debian's dict-de-en dictionary (GPL-2+)",
        description=f"German -> English pairs from the TU Chemnitz dictionary; needs `{DICT_DE_EN_APT}`.",
    )
    bible = corpora.add_parser(
        "bible-en-es",
        help="English -> Spanish verses of the World English Bible and the Reina-Valera 1909 (public domain)",
        description=f"English -> Spanish verse pairs read with diatheke; needs `{BIBLE_APT}`.",
    )
    for sub in (dict_de_en, bible):
        sub.add_argument("out_dir", metavar="OUT_DIR", help="folder to write the split files, README and stats.json")
        sub.add_argument("--valid-size", type=int, default=1000, help="pairs in the validation split (default 1000)")
        sub.add_argument("--test-size", type=int, default=1000, help="pairs in the test split (default 1000)")
        sub.add_argument("--seed", type=int, default=0, help="key of the hash that assigns the splits (default 0)")
    dict_de_en.add_argument(
        "--dict-path",
        default=str(DICT_DE_EN_PATH),
        help=f"the dictd .dict.dz file, with its .index beside it (default {DICT_DE_EN_PATH})",
    )
    dict_de_en.add_argument(
        "--min-words", type=int, default=5, help="fewest words of a sentence on either side (default 5)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit status (1 with ``error: <sentence>`` on stderr for a problem)."""
    args = _parser().parse_args(argv)
    try:
        if args.corpus == "dict-de-en":
            stats = prepare_dict_de_en(
                args.out_dir, args.dict_path, args.valid_size, args.test_size, args.seed, args.min_words
            )
        else:
            stats = prepare_bible_en_es(args.out_dir, args.valid_size, args.test_size, args.seed)
    except PaperzooError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    splits = stats["splits"]
    print(
        f"{stats['name']}: {stats['pairs_kept']} pairs -> train {splits['train']}, valid {splits['valid']}, "
        f"test {splits['test']} in {args.out_dir}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
