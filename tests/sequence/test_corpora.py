"""Tests of paperzoo.sequence.data.corpora: the dictd and diatheke readers on tiny files in the real formats, the
deterministic leakage-free splits, the prepared folders and the command line."""

from __future__ import annotations

import gzip
import json
import random
import struct
import subprocess
import zlib

import pytest

from paperzoo.core.errors import ConfigError, CorruptDataError, DatasetNotFoundError
from paperzoo.sequence.data import corpora
from paperzoo.sequence.data.corpora import (
    decode_dictd_number,
    deduplicate,
    dictd_sentence_pairs,
    is_sentence,
    normalise_sentence,
    parse_diatheke,
    prepare_bible_en_es,
    prepare_dict_de_en,
    read_bible_en_es,
    read_dictd,
    split_pairs,
)
from paperzoo.sequence.data.parallel import read_parallel_split
from paperzoo.sequence.testing import diatheke_output, encode_dictd_number, write_dictd

LONG_GERMAN = "1960 wurde die Stadt Radschkot wieder in den Bundesstaat Gudscharat eingegliedert."
LONG_ENGLISH = "The city of Rajkot was reincorporated into the state of Gujarat in 1960."

DICT_ENTRIES = [
    ("Aal", "{m} (auf der Speisekarte) [cook.]", "Eel (on a menu)"),
    ("Er gab an, dass er dazu genötigt worden war.", "", "He stated that he had been acting under coercion."),
    (LONG_GERMAN, "", LONG_ENGLISH),  # wraps over two lines on both sides
    ("Ich bin fix und fertig.", "", "I am all set."),  # four English words: not a sentence pair
    ("wie zu Zeiten Edwards VII.", "", "Edwardian {adj}"),  # English is no sentence
    ("Du kannst auf mich zählen.", "", "You can rely on me.; You can count on me.; You can depend on me."),
    ("Was spielen sie im Kino?", "", "What’s on at the cinema? [Br.]; What’s on at the movies? [Am.]"),
    ("Von schönen Worten kann man sich nichts kaufen.", "[Sprw.]", "Fine words butter no parsnips. [prov.]"),
    (
        "Es wurde nicht gegen die Vorschriften verstoßen, demgemäß gibt es auch kein Disziplinarverfahren.",
        "",
        "There was no breach of the rules; accordingly, there will be no disciplinary action.",
    ),
    ("Lass mich aus dem Spiel!", "", "Leave me out of this!; Keep me out of this!"),
    ("Wie halten Sie es damit", "", "How do you normally do that?"),  # German lacks the final punctuation
    ("Sie sagte: „Komm sofort her!“", "", "She said, “Come here at once!”"),
    ("abkanzeln", "", "to carpet sb.; to bawl out <> sb.; to dress down <> sb., to give sb. a dressing-down"),
]

EXPECTED_DICT_PAIRS = [
    ("Er gab an, dass er dazu genötigt worden war.", "He stated that he had been acting under coercion."),
    (LONG_GERMAN, LONG_ENGLISH),
    ("Du kannst auf mich zählen.", "You can rely on me."),
    ("Was spielen sie im Kino?", "What’s on at the cinema?"),
    ("Von schönen Worten kann man sich nichts kaufen.", "Fine words butter no parsnips."),
    (
        "Es wurde nicht gegen die Vorschriften verstoßen, demgemäß gibt es auch kein Disziplinarverfahren.",
        "There was no breach of the rules; accordingly, there will be no disciplinary action.",
    ),
    ("Lass mich aus dem Spiel!", "Leave me out of this!"),
    ("Sie sagte: „Komm sofort her!“", "She said, “Come here at once!”"),
]


# ---------------------------------------------------------------- dictd


def test_dictd_numbers_are_base64_most_significant_first():
    assert [decode_dictd_number(s) for s in ("A", "B", "/", "BA", "BOQXT")] == [0, 1, 63, 64, 20514259]
    for value in (0, 1, 63, 64, 4095, 32352648):
        assert decode_dictd_number(encode_dictd_number(value)) == value


def test_write_dictd_makes_a_real_dictzip_file(tmp_path):
    path = write_dictd(tmp_path, DICT_ENTRIES)
    raw = path.read_bytes()
    assert raw[:4] == b"\x1f\x8b\x08\x04"  # gzip, deflate, FEXTRA
    xlen = struct.unpack("<H", raw[10:12])[0]
    assert raw[12:14] == b"RA"
    version, chunk_length, count = struct.unpack("<HHH", raw[16:22])
    sizes = struct.unpack(f"<{count}H", raw[22 : 22 + 2 * count])
    assert version == 1 and chunk_length == 58315 and 12 + xlen == 22 + 2 * count
    # The first chunk decompresses on its own, which is what lets dictd seek.
    first = zlib.decompressobj(-15).decompress(raw[12 + xlen : 12 + xlen + sizes[0]])
    assert first == gzip.decompress(raw)[:chunk_length]
    text = gzip.decompress(raw).decode()
    assert "Radschkot wieder in den Bundesstaat Gudscharat\neingegliedert.\n\n   The city of Rajkot" in text
    assert " {m} (auf der Speisekarte) [cook.]\n   Eel (on a menu)\n" in text
    assert max(len(line) for line in text.splitlines()) <= 72


def test_read_dictd_joins_wrapped_lines_and_skips_the_database_articles(tmp_path):
    entries = read_dictd(write_dictd(tmp_path, DICT_ENTRIES))
    assert [(e.headword, e.info, e.translation) for e in entries] == [
        (h, i, " ".join(t.split())) for h, i, t in DICT_ENTRIES
    ]


def test_dictd_sentence_pairs_keeps_only_whole_sentences(tmp_path):
    pairs = dictd_sentence_pairs(read_dictd(write_dictd(tmp_path, DICT_ENTRIES)))
    assert pairs == EXPECTED_DICT_PAIRS


def test_is_sentence():
    assert is_sentence("Das ist ein ganzer Satz.") and is_sentence("Ist das ein ganzer Satz?")
    assert not is_sentence("Das ist kein Satz") and not is_sentence("Zu kurz ist das.")
    assert is_sentence("Zu kurz ist das.", min_words=4)


def test_read_dictd_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"apt-get install -y dict-de-en"):
        corpora.read_dict_de_en(tmp_path / "german-english.dict.dz")
    path = write_dictd(tmp_path, DICT_ENTRIES[:2])
    (tmp_path / "german-english.index").write_text("aal\tC8\n", encoding="utf-8")
    with pytest.raises(CorruptDataError, match=r"german-english\.index line 1 is not"):
        read_dictd(path)
    (tmp_path / "german-english.index").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"german-english\.index not found"):
        read_dictd(path)
    path.write_bytes(b"not gzip")
    (tmp_path / "other.index").write_text("", encoding="utf-8")
    with pytest.raises(CorruptDataError, match="not a gzip/dictzip file"):
        read_dictd(path, tmp_path / "other.index")


# ---------------------------------------------------------------- diatheke

# Fragments of the real `diatheke -b engWEB2015eb -o f -f plain` output, verbatim apart from shortening: psalm
# poetry with its title repeated before every verse, the stray title before verses of later books (on its own line,
# glued to a verse's last line, inside <title> markup), a footnote, a verse with a blank line inside it, and the
# glossary and module line after the last verse.
ENGLISH = (
    "Genesis 1:1: In the beginning, God [1:1 The Hebrew word rendered “God” is “אֱלֹהִ֑ים” (Elohim).] created the "
    "heavens and the earth.\n"
    "Leviticus 10:3: Then Moses said to Aaron, “This is what Yahweh spoke of, saying,  ‘I will show myself holy,\n"
    "and before all the people I will be glorified.’”\n"
    "\n"
    "Aaron held his peace.\n"
    "Leviticus 10:4: Moses called Mishael and Elzaphan. \n"
    + diatheke_output(
        [
            (
                "Psalms 145:1",
                "I will exalt you, my God, the King.\nI will praise your name forever and ever.",
                "A praise psalm by David.",
            ),
            (
                "Psalms 145:2",
                "Every day I will praise you.\nI will extol your name forever and ever.",
                "A praise psalm by David.",
            ),
        ]
    ).removesuffix("(engWEB2015eb)\n")
    + "A praise psalm by David. [] \n"
    "  Proverbs 17:28: Even a fool, when he keeps silent, is counted wise.\n"
    "When he shuts his lips, he is thought to be discerning. \n"
    "A praise psalm by David. [] \n"
    "  Proverbs 18:1: A man who isolates himself pursues selfishness,\n"
    "and defies all sound judgment. \n"
    "Isaiah 16:14: Thus far is the judgment of Moab. A praise psalm by David.\n"
    '<title canonical="true" type="psalm">A praise psalm by David.</title> <lg sID="gen13352"/> '
    '<l level="1" sID="gen13353"/>I Samuel 3:10: Yahweh came, and stood, and called as at other times.\n'
    "Revelation of John 22:19: God will take away his part from the tree [22:19 TR reads “Book” instead of "
    "“tree”] of life [22:19 see [Rev 2:7]].\n"
    "Revelation of John 22:21: The grace of the Lord Jesus Christ be with all the saints. Amen.     \n"
    "\n\n\n"
    "   The following words used in the World English Bible (WEB) are not very common.\n"
    "(engWEB2015eb)\n"
)

SPANISH_145_2 = "Cada día te bendeciré, y alabaré tu nombre por siglo y para siempre."
SPANISH = diatheke_output(
    [
        ("Genesis 1:1", "EN el principio crió Dios <H430> los cielos y la tierra."),
        ("Leviticus 10:3", "Y dijo Moisés á Aarón: Esto es lo que habló Jehová. Y Aarón calló."),
        ("Leviticus 10:4", ""),
        ("Psalms 145:1", "Salmo de alabanza: de David. ENSALZARTE he, mi Dios, mi Rey."),
        ("Psalms 145:2", SPANISH_145_2),
        ("Proverbs 17:28", "Aun el necio cuando calla, es contado por sabio."),
        ("Proverbs 18:1", "Según su antojo busca el que se desvía."),
        ("Isaiah 16:14", "Esta es la palabra que pronunció Jehová sobre Moab desde aquel tiempo."),
        ("I Samuel 3:10", "Y vino Jehová, y paróse, y llamó como las otras veces."),
        ("Revelation of John 22:19", "Y si alguno quitare de las palabras del libro de esta profecía."),
        ("Revelation of John 22:21", "La gracia de nuestro Señor Jesucristo <G5547> sea con todos vosotros. Amén.   "),
    ],
    module="spaRV1909eb",
)


def test_parse_diatheke_verses():
    verses = {v.ref: v for v in parse_diatheke(ENGLISH)}
    assert list(verses) == [
        "Genesis 1:1",
        "Leviticus 10:3",
        "Leviticus 10:4",
        "Psalms 145:1",
        "Psalms 145:2",
        "Proverbs 17:28",
        "Proverbs 18:1",
        "Isaiah 16:14",
        "I Samuel 3:10",
        "Revelation of John 22:19",
        "Revelation of John 22:21",
    ]
    text = {ref: v.text for ref, v in verses.items()}
    assert text["Genesis 1:1"] == "In the beginning, God created the heavens and the earth."  # footnote out
    assert text["Leviticus 10:3"].endswith("before all the people I will be glorified.’” Aaron held his peace.")
    assert text["Psalms 145:1"] == "I will exalt you, my God, the King. I will praise your name forever and ever."
    assert text["Proverbs 17:28"].endswith("he is thought to be discerning.")  # stray title after it removed
    assert text["Isaiah 16:14"] == "Thus far is the judgment of Moab."  # stray title glued to the line removed
    assert text["I Samuel 3:10"] == "Yahweh came, and stood, and called as at other times."
    assert text["Revelation of John 22:19"] == "God will take away his part from the tree of life."
    assert text["Revelation of John 22:21"] == "The grace of the Lord Jesus Christ be with all the saints. Amen."
    assert verses["Psalms 145:1"].heading == "A praise psalm by David."
    assert verses["Genesis 1:1"].heading is None and verses["Leviticus 10:4"].heading is None


def test_parse_diatheke_strips_strongs_numbers():
    verses = {v.ref: v.text for v in parse_diatheke(SPANISH)}
    assert verses["Genesis 1:1"] == "EN el principio crió Dios los cielos y la tierra."
    assert verses["Revelation of John 22:21"] == "La gracia de nuestro Señor Jesucristo sea con todos vosotros. Amén."
    assert verses["Leviticus 10:4"] == ""
    assert parse_diatheke("Psalms 146:1: Aleluya <H3050>. ALABA, oh alma mía <H5315>á Jehová.\n")[0].text == (
        "Aleluya. ALABA, oh alma mía á Jehová."
    )


def test_read_bible_aligns_by_reference():
    pairs = read_bible_en_es(ENGLISH, SPANISH)
    english = [en for en, _ in pairs]
    assert len(pairs) == 9  # Leviticus 10:4 is empty in Spanish; Psalm 145:1 carries its title only in Spanish
    assert ("Every day I will praise you. I will extol your name forever and ever.", SPANISH_145_2) in pairs
    assert not any("praise psalm" in en for en in english)
    assert dict(pairs)["Thus far is the judgment of Moab."].startswith("Esta es la palabra")


def test_run_diatheke_names_the_apt_get_command(monkeypatch):
    monkeypatch.setattr(corpora.shutil, "which", lambda name: None)
    with pytest.raises(DatasetNotFoundError, match=r"`apt-get install -y diatheke sword-text-web sword-text-sparv`"):
        corpora.run_diatheke("engWEB2015eb")
    monkeypatch.setattr(corpora.shutil, "which", lambda name: "/usr/bin/diatheke")
    listing = subprocess.CompletedProcess([], 0, stdout="Biblical Texts:\nKJV : King James Version\n", stderr="")
    monkeypatch.setattr(corpora.subprocess, "run", lambda *args, **kwargs: listing)
    with pytest.raises(
        DatasetNotFoundError, match=r"spaRV1909eb is not installed: run `apt-get install -y sword-text-sparv`"
    ):
        corpora.run_diatheke("spaRV1909eb")


# ---------------------------------------------------------------- splits


def corpus_with_duplicates(n=600, seed=0):
    """Pairs in which many sources repeat, differing in case and spacing, with other targets."""
    rng = random.Random(seed)
    sources = [f"Satz Nummer {i} ist hier." for i in range(n // 3)]
    pairs = []
    for i in range(n):
        source = rng.choice(sources)
        if rng.random() < 0.3:
            source = "  " + source.upper().replace(" ", "   ")
        pairs.append((source, f"Sentence {i} is here."))
    return pairs


def normalised_sources(pairs):
    return {normalise_sentence(s) for s, _ in pairs}


def test_split_is_leakage_free_with_duplicates():
    pairs = corpus_with_duplicates()
    splits = split_pairs(pairs, valid_size=50, test_size=60, seed=0)
    train, valid, test = (normalised_sources(splits[s]) for s in ("train", "valid", "test"))
    assert not train & test and not train & valid and not valid & test
    assert len(splits["test"]) == 60 and len(splits["valid"]) == 50
    assert sorted(p for s in splits.values() for p in s) == sorted(pairs)
    # Shared targets bind pairs too.
    shared = [("Eins zwei drei vier fünf.", "Same target here."), ("Ganz andere Quelle hier.", "same  TARGET here.")]
    many = [(f"Quelle {i}.", f"Ziel {i}.") for i in range(40)] + shared
    for seed in range(10):
        split = split_pairs(many, 5, 5, seed)
        assert all(sum(pair in split[name] for pair in shared) in (0, 2) for name in split)


def test_split_is_deterministic_and_depends_on_the_sentences_not_their_order():
    pairs = deduplicate(corpus_with_duplicates())
    splits = split_pairs(pairs, 40, 40, seed=1)
    assert split_pairs(pairs, 40, 40, seed=1) == splits
    shuffled = pairs[:]
    random.Random(5).shuffle(shuffled)
    again = split_pairs(shuffled, 40, 40, seed=1)
    assert all(set(again[s]) == set(splits[s]) for s in splits)
    other = split_pairs(pairs, 40, 40, seed=2)
    assert set(other["test"]) != set(splits["test"])
    # Within a split the input order is kept.
    assert splits["train"] == [p for p in pairs if p in set(splits["train"])]


def test_split_sizes_must_leave_training_pairs():
    with pytest.raises(ConfigError, match="leave training pairs out of 10"):
        split_pairs([(f"a{i}", f"b{i}") for i in range(10)], 5, 5)


def test_deduplicate_keeps_first_occurrences():
    assert deduplicate([("a", "b"), ("c", "d"), ("a", "b"), ("a", "B")]) == [("a", "b"), ("c", "d"), ("a", "B")]


# ---------------------------------------------------------------- prepared folders and the command line


def test_prepare_dict_de_en_writes_the_parallel_layout(tmp_path):
    dict_path = write_dictd(tmp_path / "dictd", DICT_ENTRIES + DICT_ENTRIES[1:3])  # two exact repeats
    stats = prepare_dict_de_en(tmp_path / "out", dict_path, valid_size=2, test_size=2, seed=0)
    assert stats["pairs_read"] == 10 and stats["exact_duplicates_removed"] == 2 and stats["pairs_kept"] == 8
    assert stats["splits"] == {"train": 4, "valid": 2, "test": 2}
    pairs = []
    for split in ("train", "valid", "test"):
        src, tgt = read_parallel_split(tmp_path / "out", split, "de", "en")
        assert len(src) == stats["splits"][split]
        pairs += zip(src, tgt, strict=True)
    assert sorted(pairs) == sorted(EXPECTED_DICT_PAIRS)
    assert json.loads((tmp_path / "out" / "stats.json").read_text(encoding="utf-8")) == stats
    readme = (tmp_path / "out" / "README").read_text(encoding="utf-8")
    assert "GPL-2+" in readme and "train 4, valid 2, test 2" in readme


def test_prepare_bible_en_es_from_diatheke_text(tmp_path):
    stats = prepare_bible_en_es(tmp_path, valid_size=2, test_size=2, english_text=ENGLISH, spanish_text=SPANISH)
    assert stats["splits"] == {"train": 5, "valid": 2, "test": 2} and "public domain" in stats["licence"]
    assert len(read_parallel_split(tmp_path, "train", "en", "es")[0]) == 5


def test_command_line_help_explains_every_argument(capsys):
    with pytest.raises(SystemExit) as exit_info:
        corpora.main(["dict-de-en", "--help"])
    assert exit_info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for argument in ("OUT_DIR", "--valid-size", "--test-size", "--seed", "--dict-path", "--min-words"):
        assert argument in out
    assert "apt-get install -y dict-de-en" in out
    with pytest.raises(SystemExit):
        corpora.main(["--help"])
    assert "bible-en-es" in capsys.readouterr().out


def test_command_line_reports_a_missing_package_in_one_sentence(tmp_path, capsys):
    status = corpora.main(["dict-de-en", str(tmp_path / "out"), "--dict-path", str(tmp_path / "none.dict.dz")])
    assert status == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "`apt-get install -y dict-de-en`" in err and err.count("\n") == 1


def test_command_line_writes_a_corpus(tmp_path, capsys):
    dict_path = write_dictd(tmp_path / "dictd", DICT_ENTRIES)
    args = ["dict-de-en", str(tmp_path / "out"), "--dict-path", str(dict_path), "--valid-size", "1", "--test-size", "2"]
    assert corpora.main(args) == 0
    assert "8 pairs -> train 5, valid 1, test 2" in capsys.readouterr().out
