"""BERT's WordPiece tokeniser, written from scratch.

Devlin, Chang, Lee and Toutanova, "BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding"
(NAACL 2019), Section 3 and Appendix A: text is cleaned, split on whitespace and punctuation (the "basic" tokeniser),
and every word is cut into the longest vocabulary pieces, left to right, continuation pieces carrying the prefix
``##`` (Wu et al., "Google's Neural Machine Translation System", 2016). A word with a character outside the
vocabulary becomes ``[UNK]`` as a whole.

The ids equal those of Hugging Face's ``BertTokenizer`` on the same ``vocab.txt``. Where its Python and Rust versions
disagree, this follows Google's original code: a final capital sigma lower-cases to "ς" (Python's ``str.lower``, as
the Python version), a pair is truncated one token at a time from the longer side (as the Python version), and the text
is not NFC-normalised first (as the Rust version; this matters only for a cased vocabulary and decomposed accents).
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from torch import Tensor

from paperzoo.core.errors import ConfigError, CorruptDataError, DatasetNotFoundError
from paperzoo.llm.data.batching import pad_batch, pair_texts, truncation_budget

VOCAB_FILE = "vocab.txt"
CONFIG_FILE = "tokenizer_config.json"

# The CJK Unified Ideographs blocks (and their compatibility blocks) that BERT writes as words of their own; Hangul,
# kana and other East Asian scripts are written with spaces and are not in these ranges.
_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)


def _is_cjk(codepoint: int) -> bool:
    return any(low <= codepoint <= high for low, high in _CJK_RANGES)


def _is_punctuation(char: str) -> bool:
    # BERT counts every non-alphanumeric ASCII character as punctuation ("$", "^", "`" are not Unicode P*).
    codepoint = ord(char)
    if 33 <= codepoint <= 47 or 58 <= codepoint <= 64 or 91 <= codepoint <= 96 or 123 <= codepoint <= 126:
        return True
    return unicodedata.category(char).startswith("P")


class _CleaningTable(dict):
    """A ``str.translate`` table built lazily: control characters vanish, whitespace becomes a space, CJK ideographs
    get spaces around them, every other character maps to itself (cached, so the table costs one lookup a char)."""

    def __init__(self, tokenize_chinese_chars: bool) -> None:
        super().__init__()
        self.tokenize_chinese_chars = tokenize_chinese_chars

    def __missing__(self, codepoint: int) -> str | int | None:
        char = chr(codepoint)
        category = unicodedata.category(char)
        if char in " \t\n\r" or category == "Zs":
            value: str | int | None = " "
        elif codepoint == 0xFFFD or category.startswith("C"):
            value = None
        elif self.tokenize_chinese_chars and _is_cjk(codepoint):
            value = f" {char} "
        else:
            value = codepoint
        self[codepoint] = value
        return value


class WordPieceTokenizer:
    """BERT's WordPiece tokeniser (Devlin et al., 2019): basic tokenisation, then greedy longest-match-first pieces.

    For a text, (1) control characters are removed and every whitespace character becomes a space, (2) CJK ideographs
    become words of their own, (3) the text is split on whitespace, (4) each word is lower-cased and its accents
    removed (NFD, then dropping the combining marks, category Mn), (5) split so that every punctuation character is a
    word, and (6) each word ``w`` is cut as ``w = p_1 p_2 ... p_k`` where ``p_1`` is the longest prefix of ``w`` in the
    vocabulary and each later ``p_i`` the longest next piece whose ``"##" + p_i`` is; a word longer than
    ``max_input_chars_per_word`` characters or with no such cut is ``[UNK]``. The special tokens (``[CLS]``, ``[SEP]``,
    ``[PAD]``, ``[MASK]``, ``[UNK]``) are recognised verbatim anywhere in the text before all this.

    Inputs are ``[CLS] a [SEP]`` or ``[CLS] a [SEP] b [SEP]`` with token types 0 for the first part and 1 for the
    second. Truncation of a pair removes one token at a time from the longer side (from the second on a tie), as the
    original BERT code does; Hugging Face's Rust tokeniser instead splits the budget in halves, so for pairs longer
    than ``max_length`` the two can differ.

    Word pieces are cached per word, so a corpus of short texts is tokenised at about a word lookup per word.

    Args:
        vocab: the vocabulary: a list of tokens (the id is the position) or a mapping ``token -> id`` whose ids are
            ``0 .. len(vocab) - 1``.
        lowercase: lower-case the text (an uncased model).
        strip_accents: remove accents; ``None`` follows ``lowercase`` (BERT's uncased models strip them).
        tokenize_chinese_chars: write every CJK ideograph as a word of its own.
        unk_token: the token of a word that cannot be cut into vocabulary pieces.
        cls_token: the token that opens every input.
        sep_token: the token that closes each segment.
        pad_token: the token that pads a batch to one length.
        mask_token: the masked-language-model token, or ``None`` for a vocabulary without one.
        max_input_chars_per_word: longer words become ``unk_token`` without being cut.
        model_max_length: the default ``max_length`` of truncation (the model's number of positions), or ``None``.

    Raises:
        ConfigError: a special token is not in the vocabulary, or the ids are not ``0 .. len(vocab) - 1``.
    """

    def __init__(
        self,
        vocab: Mapping[str, int] | Sequence[str],
        lowercase: bool = True,
        strip_accents: bool | None = None,
        tokenize_chinese_chars: bool = True,
        unk_token: str = "[UNK]",
        cls_token: str = "[CLS]",
        sep_token: str = "[SEP]",
        pad_token: str = "[PAD]",
        mask_token: str | None = "[MASK]",
        max_input_chars_per_word: int = 100,
        model_max_length: int | None = None,
    ) -> None:
        if isinstance(vocab, Mapping):
            self.vocab = dict(vocab)
        else:
            self.vocab = {token: index for index, token in enumerate(vocab)}
            if len(self.vocab) != len(vocab):
                raise ConfigError("the vocabulary lists a token twice: give each token once, its position is its id")
        self.id_to_token = sorted(self.vocab, key=self.vocab.__getitem__)
        if [self.vocab[token] for token in self.id_to_token] != list(range(len(self.vocab))):
            raise ConfigError(f"the vocabulary's ids are not 0 .. {len(self.vocab) - 1}: number the tokens densely")
        self.lowercase = lowercase
        self.strip_accents = strip_accents
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.unk_token, self.cls_token, self.sep_token = unk_token, cls_token, sep_token
        self.pad_token, self.mask_token = pad_token, mask_token
        self.special_tokens = [t for t in (unk_token, cls_token, sep_token, pad_token, mask_token) if t is not None]
        missing = [token for token in self.special_tokens if token not in self.vocab]
        if missing:
            raise ConfigError(
                f"the special tokens {missing} are not in the vocabulary: add them or name the vocabulary's own"
            )
        if max_input_chars_per_word < 1:
            raise ConfigError(f"max_input_chars_per_word is {max_input_chars_per_word}: give a positive number")
        self.max_input_chars_per_word = max_input_chars_per_word
        self.model_max_length = model_max_length
        self.special_ids = frozenset(self.vocab[token] for token in self.special_tokens)
        # Longest first, so a special token that contains another is found whole.
        alternatives = "|".join(re.escape(t) for t in sorted(self.special_tokens, key=len, reverse=True))
        self._special_pattern = re.compile(f"({alternatives})")
        self._cleaning_table = _CleaningTable(tokenize_chinese_chars)
        self._longest_token = max(map(len, self.vocab))
        self._word_cache: dict[str, tuple[int, ...]] = {}

    @classmethod
    def from_vocab_file(cls, path: str | os.PathLike, **kwargs) -> WordPieceTokenizer:
        """A tokeniser from a ``vocab.txt`` (one token a line, the line number is the id) and keyword settings.

        Raises:
            DatasetNotFoundError: the file does not exist.
            CorruptDataError: the file is not UTF-8 text or lists a token twice.
        """
        path = Path(path)
        if not path.is_file():
            raise DatasetNotFoundError(f"the WordPiece vocabulary {path} does not exist: give the path of a vocab.txt")
        try:
            tokens = path.read_text(encoding="utf-8").split("\n")
        except UnicodeDecodeError as error:
            raise CorruptDataError(f"{path} is not UTF-8 text ({error}): give BERT's vocab.txt") from error
        if tokens and tokens[-1] == "":
            tokens.pop()
        try:
            return cls(tokens, **kwargs)
        except ConfigError as error:
            raise CorruptDataError(f"{path} is not a usable WordPiece vocabulary: {error}") from error

    @classmethod
    def from_hf(cls, folder: str | os.PathLike) -> WordPieceTokenizer:
        """A tokeniser from a Hugging Face BERT folder (or one written by :meth:`save`).

        Reads ``vocab.txt`` and, if present, ``tokenizer_config.json``'s ``do_lower_case``, ``strip_accents``,
        ``tokenize_chinese_chars``, special tokens and ``model_max_length``.

        Raises:
            DatasetNotFoundError: the folder has no ``vocab.txt``.
            CorruptDataError: ``tokenizer_config.json`` is not a JSON object, or the vocabulary is unusable.
        """
        folder = Path(folder)
        if not (folder / VOCAB_FILE).is_file():
            raise DatasetNotFoundError(f"{folder} has no {VOCAB_FILE}: give a Hugging Face BERT model folder")
        config: dict = {}
        if (folder / CONFIG_FILE).is_file():
            try:
                config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as error:
                raise CorruptDataError(
                    f"{folder / CONFIG_FILE} is not valid JSON ({error}): repair or delete it"
                ) from error
            if not isinstance(config, dict):
                raise CorruptDataError(f"{folder / CONFIG_FILE} is not a JSON object: repair or delete it")

        def token(key: str, default: str) -> str:
            value = config.get(key) or default
            # Newer configs store special tokens as AddedToken dictionaries.
            return value["content"] if isinstance(value, dict) else value

        model_max_length = config.get("model_max_length")
        # Hugging Face writes a huge number (int(1e30)) for "no limit".
        if not isinstance(model_max_length, int) or model_max_length > 1_000_000:
            model_max_length = None
        return cls.from_vocab_file(
            folder / VOCAB_FILE,
            lowercase=config.get("do_lower_case", True),
            strip_accents=config.get("strip_accents"),
            tokenize_chinese_chars=config.get("tokenize_chinese_chars", True),
            unk_token=token("unk_token", "[UNK]"),
            cls_token=token("cls_token", "[CLS]"),
            sep_token=token("sep_token", "[SEP]"),
            pad_token=token("pad_token", "[PAD]"),
            mask_token=None if config.get("mask_token", "") is None else token("mask_token", "[MASK]"),
            max_input_chars_per_word=config.get("max_input_chars_per_word", 100),
            model_max_length=model_max_length,
        )

    def save(self, folder: str | os.PathLike) -> Path:
        """Write ``vocab.txt`` and ``tokenizer_config.json`` to ``folder`` (created if needed), in the format that
        :meth:`from_hf` and Hugging Face's ``BertTokenizer.from_pretrained`` read. Returns the folder."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / VOCAB_FILE).write_text("".join(f"{token}\n" for token in self.id_to_token), encoding="utf-8")
        config = {
            "tokenizer_class": "BertTokenizer",
            "do_lower_case": self.lowercase,
            "strip_accents": self.strip_accents,
            "tokenize_chinese_chars": self.tokenize_chinese_chars,
            "unk_token": self.unk_token,
            "cls_token": self.cls_token,
            "sep_token": self.sep_token,
            "pad_token": self.pad_token,
            "mask_token": self.mask_token,
            "max_input_chars_per_word": self.max_input_chars_per_word,
            "model_max_length": self.model_max_length,
        }
        (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        return folder

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def unk_token_id(self) -> int:
        return self.vocab[self.unk_token]

    @property
    def cls_token_id(self) -> int:
        return self.vocab[self.cls_token]

    @property
    def sep_token_id(self) -> int:
        return self.vocab[self.sep_token]

    @property
    def pad_token_id(self) -> int:
        return self.vocab[self.pad_token]

    @property
    def mask_token_id(self) -> int | None:
        return None if self.mask_token is None else self.vocab[self.mask_token]

    def _split_word(self, word: str) -> list[str]:
        """Basic tokenisation of one whitespace-free word: case, accents, then punctuation as words of their own."""
        if self.lowercase:
            word = word.lower()
        if self.strip_accents or (self.strip_accents is None and self.lowercase):
            word = "".join(c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn")
        pieces: list[str] = []
        start = 0
        for index, char in enumerate(word):
            if _is_punctuation(char):
                if start < index:
                    pieces.append(word[start:index])
                pieces.append(char)
                start = index + 1
        if start < len(word):
            pieces.append(word[start:])
        return pieces

    def _wordpiece(self, word: str) -> list[int]:
        """Greedy longest-match-first cut of one basic token into vocabulary ids (or ``[UNK]``)."""
        if len(word) > self.max_input_chars_per_word:
            return [self.unk_token_id]
        ids = []
        start = 0
        while start < len(word):
            for end in range(min(len(word), start + self._longest_token), start, -1):
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    ids.append(self.vocab[piece])
                    start = end
                    break
            else:
                return [self.unk_token_id]
        return ids

    def _word_ids(self, word: str) -> tuple[int, ...]:
        ids = self._word_cache.get(word)
        if ids is None:
            ids = tuple(i for piece in self._split_word(word) for i in self._wordpiece(piece))
            self._word_cache[word] = ids
        return ids

    def _ids(self, text: str) -> list[int]:
        """The ids of ``text`` without the added ``[CLS]``/``[SEP]``."""
        ids: list[int] = []
        for index, part in enumerate(self._special_pattern.split(text)):
            if index % 2:  # a special token written in the text
                ids.append(self.vocab[part])
            else:
                for word in part.translate(self._cleaning_table).split():
                    ids.extend(self._word_ids(word))
        return ids

    def tokenize(self, text: str) -> list[str]:
        """The word pieces of ``text`` (continuations start with ``##``), without ``[CLS]``/``[SEP]``."""
        return [self.id_to_token[i] for i in self._ids(text)]

    def convert_tokens_to_ids(self, tokens: Sequence[str]) -> list[int]:
        """The ids of vocabulary tokens; a token outside the vocabulary gives the ``[UNK]`` id."""
        return [self.vocab.get(token, self.unk_token_id) for token in tokens]

    def convert_ids_to_tokens(self, ids: Sequence[int] | Tensor) -> list[str]:
        """The tokens of ids.

        Raises:
            ConfigError: an id is outside ``0 .. vocab_size - 1``.
        """
        ids = ids.tolist() if isinstance(ids, Tensor) else list(ids)
        bad = [i for i in ids if not 0 <= i < len(self.id_to_token)]
        if bad:
            raise ConfigError(f"the ids {bad[:5]} are outside the vocabulary of {self.vocab_size}: decode ids it made")
        return [self.id_to_token[i] for i in ids]

    def encode(
        self,
        text: str,
        text_pair: str | None = None,
        add_special_tokens: bool = True,
        max_length: int | None = None,
        truncation: bool = False,
    ) -> list[int]:
        """The ids of ``[CLS] text [SEP]`` or ``[CLS] text [SEP] text_pair [SEP]``.

        Args:
            text: the first (or only) segment.
            text_pair: the second segment, or ``None``.
            add_special_tokens: add ``[CLS]`` and ``[SEP]``.
            max_length: the most ids, special tokens included, kept when ``truncation`` is set.
            truncation: cut the segments to ``max_length`` (or ``model_max_length`` when it is ``None``).

        Raises:
            ConfigError: truncation without any maximum length, or a maximum too small for the special tokens.
        """
        return self._encode_with_types(text, text_pair, add_special_tokens, max_length, truncation)[0]

    def _encode_with_types(
        self, text: str, text_pair: str | None, add_special_tokens: bool, max_length: int | None, truncation: bool
    ) -> tuple[list[int], list[int]]:
        first = self._ids(text)
        second = None if text_pair is None else self._ids(text_pair)
        if truncation:
            specials = 0 if not add_special_tokens else 2 if second is None else 3
            budget = truncation_budget(max_length, self.model_max_length, specials, "[CLS] and [SEP]")
            if second is None:
                del first[budget:]
            else:
                # The original BERT rule (run_classifier.py, _truncate_seq_pair): shorten the longer segment first.
                while len(first) + len(second) > budget:
                    (first if len(first) > len(second) else second).pop()
        if not add_special_tokens:
            ids = first + (second or [])
            return ids, [0] * len(first) + [1] * (len(ids) - len(first))
        ids = [self.cls_token_id, *first, self.sep_token_id]
        types = [0] * len(ids)
        if second is not None:
            ids += [*second, self.sep_token_id]
            types += [1] * (len(second) + 1)
        return ids, types

    def __call__(
        self,
        texts: str | Sequence[str],
        text_pairs: str | Sequence[str] | None = None,
        padding: bool | Literal["longest", "max_length"] = True,
        max_length: int | None = None,
        truncation: bool = False,
        return_tensors: Literal["pt"] | None = "pt",
    ) -> dict[str, Tensor] | dict[str, list[list[int]]]:
        """A batch of model inputs: ``input_ids``, ``attention_mask`` (1 on tokens, 0 on padding) and
        ``token_type_ids``, padded on the right with the ``[PAD]`` id (type 0). A single string is a batch of one.

        Args:
            texts: the first segments.
            text_pairs: the second segments (one per text), or ``None``.
            padding: ``True``/``"longest"`` pads to the longest input, ``"max_length"`` to ``max_length``, ``False``
                not at all.
            max_length: the length of truncation and of ``"max_length"`` padding.
            truncation: cut inputs to ``max_length`` (see :meth:`encode`).
            return_tensors: ``"pt"`` for ``(B, T)`` long tensors, ``None`` for lists.

        Raises:
            ConfigError: texts and pairs differ in number, ``"max_length"`` padding without ``max_length``, or tensors
                asked for inputs of different lengths without padding.
        """
        texts, pairs = pair_texts(texts, text_pairs)
        encoded = [
            self._encode_with_types(text, pair, True, max_length, truncation)
            for text, pair in zip(texts, pairs, strict=True)
        ]
        return pad_batch(encoded, self.pad_token_id, padding, max_length, return_tensors)

    def decode(self, ids: Sequence[int] | Tensor, skip_special_tokens: bool = True) -> str:
        """The text of ``ids``: pieces joined with spaces, ``##`` continuations glued to the piece before.

        The text is the normalised one (lower-cased, accents and control characters gone, punctuation spaced), so
        ``encode(decode(ids))`` gives the ids back rather than ``decode(encode(text))`` the text.
        """
        ids = ids.tolist() if isinstance(ids, Tensor) else list(ids)
        if skip_special_tokens:
            ids = [i for i in ids if i not in self.special_ids]
        return " ".join(self.convert_ids_to_tokens(ids)).replace(" ##", "").strip()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(vocab_size={self.vocab_size}, lowercase={self.lowercase}, "
            f"strip_accents={self.strip_accents}, tokenize_chinese_chars={self.tokenize_chinese_chars})"
        )
