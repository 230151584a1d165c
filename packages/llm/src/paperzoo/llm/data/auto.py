"""A Hugging Face model folder's tokeniser and sequence classifier, chosen by what the folder holds.

- :func:`load_tokenizer`: our :class:`~paperzoo.llm.data.wordpiece.WordPieceTokenizer` for a BERT folder
  (``vocab.txt``), our :class:`ByteLevelBPETokenizer` for a RoBERTa or GPT-2 folder (``vocab.json`` + ``merges.txt``).
- :func:`load_sequence_classifier`: our BERT or RoBERTa classifier, by ``config.json``'s ``model_type``.

:class:`ByteLevelBPETokenizer` reads the byte-level BPE of GPT-2 (Radford et al. 2019, section 2.2) in Hugging Face's
format, which RoBERTa uses too (Liu et al. 2019, section 4.4: "a byte-level BPE vocabulary containing 50K subword
units"). ``merges.txt`` lists the merges, highest priority first; ``vocab.json`` maps every token to its id. Both spell
a token's bytes in GPT-2's printable alphabet (:func:`bytes_to_unicode`: ``"Ġ"`` is the space). In GPT-2's own files
the ids are the merge priorities (256 bytes, then the merges in order), but RoBERTa's vocabulary was renumbered by
fairseq (``<s>`` 0, ``<pad>`` 1, ``</s>`` 2, ``<unk>`` 3, then by frequency, ``<mask>`` last), so the two are kept
apart: merging is :class:`~paperzoo.llm.data.gpt2_bpe.GPT2Tokenizer`'s, on byte-string ranks that are the merge
priorities, and each merged token is then looked up in ``vocab.json``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import regex
from torch import Tensor, nn

from paperzoo.core.errors import ConfigError, CorruptDataError, DatasetNotFoundError
from paperzoo.llm.data.batching import pad_batch, pair_texts, truncation_budget
from paperzoo.llm.data.gpt2_bpe import GPT2_PATTERN, GPT2Tokenizer
from paperzoo.llm.data.wordpiece import WordPieceTokenizer
from paperzoo.llm.models.bert import BertForSequenceClassification
from paperzoo.llm.models.roberta import RobertaForSequenceClassification

VOCAB_JSON = "vocab.json"
MERGES_FILE = "merges.txt"
TOKENIZER_CONFIG = "tokenizer_config.json"
TOKENIZER_JSON = "tokenizer.json"
ENDOFTEXT = "<|endoftext|>"

# Hugging Face's names for the special-token roles, as tokenizer_config.json spells them.
_ROLES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
_ROBERTA_ROLES = {
    "bos_token": "<s>",
    "eos_token": "</s>",
    "unk_token": "<unk>",
    "sep_token": "</s>",
    "pad_token": "<pad>",
    "cls_token": "<s>",
    "mask_token": "<mask>",
}


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's one-to-one map from the 256 byte values to printable characters, in which ``vocab.json`` and
    ``merges.txt`` write tokens: the printable Latin-1 bytes (``!`` to ``~``, ``¡`` to ``¬``, ``®`` to ``ÿ``) stand for
    themselves and the other 68 (control characters, the space, the soft hyphen) for ``chr(256)``, ``chr(257)``, ...
    in byte order, so the space is ``"Ġ"`` (``chr(288)``) and the newline ``"Ċ"``."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {byte: chr(byte) for byte in printable}
    shifted = (byte for byte in range(256) if byte not in table)
    for offset, byte in enumerate(shifted):
        table[byte] = chr(256 + offset)
    return dict(sorted(table.items()))


_BYTE_TO_CHAR = bytes_to_unicode()
_CHAR_TO_BYTE = {char: byte for byte, char in _BYTE_TO_CHAR.items()}


def _token_bytes(token: str) -> bytes:
    """The bytes a ``vocab.json`` token stands for; a ``KeyError`` for a character outside GPT-2's alphabet."""
    return bytes(_CHAR_TO_BYTE[char] for char in token)


class ByteLevelBPETokenizer:
    """The byte-level BPE tokeniser of RoBERTa (Liu et al. 2019, section 4.4) and GPT-2 (Radford et al. 2019, section
    2.2), from a Hugging Face ``vocab.json`` and ``merges.txt``.

    Text is cut by GPT-2's pre-tokenisation regex; each piece's UTF-8 bytes are merged, lowest-priority pair first, by
    :class:`~paperzoo.llm.data.gpt2_bpe.GPT2Tokenizer` on ranks that are the line numbers of ``merges.txt`` (a byte
    string made by two merges keeps the first), and the merged tokens are looked up in ``vocab.json``. Special tokens
    written in the text (``<mask>``, say) become their ids, and the text between them is encoded piece by piece, as in
    Hugging Face's tokenisers; one marked ``lstrip`` (``<mask>`` in ``roberta-base``'s ``tokenizer.json``) swallows the
    whitespace before it, one marked ``rstrip`` the whitespace after.

    With ``cls_token`` and ``sep_token`` (RoBERTa) :meth:`encode` gives ``<s> a </s>`` and ``<s> a </s></s> b </s>``;
    without them (GPT-2) it adds nothing. A pair is truncated as Hugging Face's Rust tokenisers do, which is what
    RoBERTa's fine-tuning scripts used: only the longer side is cut if the shorter fits in half the budget, otherwise
    both are cut to half (the longer side keeps the odd token). ``token_type_ids`` are all 0: RoBERTa has one segment.

    Args:
        vocab: ``{token: id}`` in GPT-2's alphabet, special tokens included.
        merges: the merges ``(left, right)``, highest priority first.
        cls_token: the first token of every sequence (``<s>``), or ``None`` for no template.
        sep_token: the token after each segment (``</s>``), or ``None`` for no template.
        pad_token: the padding token; ``None`` pads with ``eos_token`` (GPT-2 has no padding token).
        bos_token: the start-of-text token, ``<s>`` for RoBERTa and ``<|endoftext|>`` for GPT-2, or ``None``.
        eos_token: the end-of-text token, ``</s>`` for RoBERTa and ``<|endoftext|>`` for GPT-2, or ``None``.
        unk_token: the unknown token (byte-level BPE never needs it), or ``None``.
        mask_token: the masked-LM token, or ``None``.
        special_tokens: every token recognised as a whole in the text; ``None`` for the tokens of the roles above.
        lstrip_tokens: special tokens that take the whitespace before them.
        rstrip_tokens: special tokens that take the whitespace after them.
        add_prefix_space: put a space before each stretch of text that does not start with one, so that the first
            word is encoded as a word inside a sentence (RoBERTa was pre-trained without this).
        model_max_length: the default length of truncation, or ``None``.

    Raises:
        ConfigError: a merge or a special token is missing from the vocabulary, a merge holds a character outside
            GPT-2's byte alphabet, one of the 256 bytes has no token, or only one of ``cls_token`` and ``sep_token`` is
            given.
    """

    def __init__(
        self,
        vocab: Mapping[str, int],
        merges: Sequence[tuple[str, str]],
        cls_token: str | None = "<s>",
        sep_token: str | None = "</s>",
        pad_token: str | None = "<pad>",
        bos_token: str | None = "<s>",
        eos_token: str | None = "</s>",
        unk_token: str | None = "<unk>",
        mask_token: str | None = "<mask>",
        special_tokens: Collection[str] | None = None,
        lstrip_tokens: Collection[str] = (),
        rstrip_tokens: Collection[str] = (),
        add_prefix_space: bool = False,
        model_max_length: int | None = None,
    ) -> None:
        if (cls_token is None) != (sep_token is None):
            raise ConfigError(
                f"cls_token={cls_token!r} and sep_token={sep_token!r}: give both (RoBERTa's template) or neither"
            )
        self.vocab = dict(vocab)
        self.cls_token = cls_token
        self.sep_token = sep_token
        self.bos_token = bos_token
        self.eos_token = eos_token
        self.pad_token = pad_token if pad_token is not None else eos_token
        self.unk_token = unk_token
        self.mask_token = mask_token
        roles = (cls_token, sep_token, self.pad_token, bos_token, eos_token, unk_token, mask_token)
        self.special_tokens = set(special_tokens) if special_tokens is not None else {t for t in roles if t}
        missing = sorted({t for t in (*roles, *self.special_tokens) if t is not None and t not in self.vocab})
        if missing:
            raise ConfigError(f"the special tokens {missing} are not in the vocabulary: add them or name others")
        self.add_prefix_space = add_prefix_space
        self.model_max_length = model_max_length
        self.id_to_token = {i: token for token, i in self.vocab.items()}
        self.special_ids = {self.vocab[t] for t in self.special_tokens}
        self.merges = [tuple(pair) for pair in merges]
        self._bpe, self._rank_to_id = self._merger(self.vocab, self.merges)
        self.lstrip_tokens = set(lstrip_tokens)
        self.rstrip_tokens = set(rstrip_tokens)
        # One group per special token, longest first, so that a match names its token; stripping takes the whitespace.
        self._specials_in_order = sorted(self.special_tokens, key=len, reverse=True)
        alternatives = [
            ("\\s*" if t in self.lstrip_tokens else "")
            + f"({regex.escape(t)})"
            + ("\\s*" if t in self.rstrip_tokens else "")
            for t in self._specials_in_order
        ]
        self._special_pattern = regex.compile("|".join(alternatives)) if alternatives else None

    @staticmethod
    def _merger(vocab: Mapping[str, int], merges: Sequence[tuple[str, str]]) -> tuple[GPT2Tokenizer, list[int]]:
        """A GPT2Tokenizer whose ranks are the bytes (0..255) then the merges in priority order, and the vocabulary id
        of each rank."""
        ranks: dict[bytes, int] = {}
        rank_to_id: list[int] = []
        for byte, char in _BYTE_TO_CHAR.items():
            if char not in vocab:
                raise ConfigError(
                    f"the vocabulary has no token for the byte {byte} ({char!r}); a byte-level BPE vocabulary has all "
                    "256"
                )
            ranks[bytes([byte])] = len(rank_to_id)
            rank_to_id.append(vocab[char])
        for number, (left, right) in enumerate(merges, start=1):
            missing = [token for token in (left, right, left + right) if token not in vocab]
            if missing:
                raise ConfigError(
                    f"merge {number} ({left} {right}) makes or uses {missing[0]!r}, which is not in the vocabulary"
                )
            try:
                merged = _token_bytes(left) + _token_bytes(right)
            except KeyError as error:
                raise ConfigError(
                    f"merge {number} ({left} {right}) has the character {error.args[0]!r}, which is not in GPT-2's "
                    "byte alphabet"
                ) from None
            if merged not in ranks:
                ranks[merged] = len(rank_to_id)
                rank_to_id.append(vocab[left + right])
        return GPT2Tokenizer(ranks, special_tokens={}, pattern=GPT2_PATTERN), rank_to_id

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_files(
        cls, vocab_file: str | os.PathLike, merges_file: str | os.PathLike, **kwargs: Any
    ) -> ByteLevelBPETokenizer:
        """A tokeniser from ``vocab.json`` and ``merges.txt``; ``kwargs`` as the constructor.

        Raises:
            DatasetNotFoundError: a file does not exist.
            CorruptDataError: a file is not in its format, or the two do not fit each other.
        """
        vocab = read_vocab_json(vocab_file)
        merges = read_merges(merges_file)
        try:
            return cls(vocab, merges, **kwargs)
        except ConfigError as error:
            raise CorruptDataError(
                f"{vocab_file} and {merges_file} are not a usable byte-level BPE: {error}"
            ) from error

    @classmethod
    def from_hf(cls, folder: str | os.PathLike) -> ByteLevelBPETokenizer:
        """A tokeniser from a Hugging Face RoBERTa or GPT-2 folder.

        Reads ``vocab.json`` and ``merges.txt``, or, without them, the byte-level BPE model inside ``tokenizer.json``
        (all that ``transformers`` 5 writes). The special tokens are RoBERTa's when the vocabulary has ``<s>`` and
        ``</s>``, else GPT-2's ``<|endoftext|>`` (as end of text and padding); ``tokenizer_config.json`` (special
        tokens, ``add_prefix_space``, ``model_max_length``, ``added_tokens_decoder``) and ``tokenizer.json`` (its
        ``added_tokens`` and their ``lstrip``/``rstrip``, its pre-tokeniser's ``add_prefix_space``) refine them.

        Raises:
            DatasetNotFoundError: the folder is missing, or it has neither ``vocab.json`` and ``merges.txt`` nor a
                ``tokenizer.json``.
            CorruptDataError: a file is not in its format, or ``tokenizer.json`` holds another kind of tokeniser.
        """
        folder = Path(folder)
        if not folder.is_dir():
            raise DatasetNotFoundError(f"{folder} is not a folder: give a Hugging Face RoBERTa or GPT-2 model folder")
        config = _read_json_object(folder / TOKENIZER_CONFIG)
        tokenizer_json = _read_json_object(folder / TOKENIZER_JSON)
        if (folder / VOCAB_JSON).is_file() and (folder / MERGES_FILE).is_file():
            vocab = read_vocab_json(folder / VOCAB_JSON)
            merges = read_merges(folder / MERGES_FILE)
        elif tokenizer_json:
            vocab, merges = _byte_level_bpe_model(tokenizer_json, folder / TOKENIZER_JSON)
        else:
            raise DatasetNotFoundError(
                f"{folder} has no vocab.json and merges.txt (nor a tokenizer.json): a byte-level BPE folder (RoBERTa, "
                "GPT-2) has them"
            )
        added = _added_tokens(config, tokenizer_json, folder)
        for token, entry in added.items():
            if token not in vocab and isinstance(entry.get("id"), int):
                vocab[token] = entry["id"]
        roberta = "<s>" in vocab and "</s>" in vocab
        defaults = (
            _ROBERTA_ROLES if roberta else {"bos_token": ENDOFTEXT, "eos_token": ENDOFTEXT, "unk_token": ENDOFTEXT}
        )
        roles = {}
        for role in _ROLES:
            value = config.get(role, defaults.get(role))
            value = value.get("content") if isinstance(value, dict) else value
            roles[role] = value if value in vocab else None
        if not roberta:
            roles["cls_token"] = roles["sep_token"] = None
        special = {t for t in roles.values() if t} | {t for t in added if t in vocab}
        prefix_space = config.get("add_prefix_space")
        if prefix_space is None:
            prefix_space = (tokenizer_json.get("pre_tokenizer") or {}).get("add_prefix_space", False)
        model_max_length = config.get("model_max_length")
        if not isinstance(model_max_length, int) or model_max_length > 1_000_000:  # Hugging Face's "no limit" is 1e30
            model_max_length = None
        try:
            return cls(
                vocab,
                merges,
                **roles,
                special_tokens=special,
                lstrip_tokens={t for t, entry in added.items() if entry.get("lstrip")},
                rstrip_tokens={t for t, entry in added.items() if entry.get("rstrip")},
                add_prefix_space=bool(prefix_space),
                model_max_length=model_max_length,
            )
        except ConfigError as error:
            raise CorruptDataError(f"{folder} does not hold a usable byte-level BPE: {error}") from error

    # ------------------------------------------------------------------ ids of the roles

    def _id(self, token: str | None) -> int | None:
        return None if token is None else self.vocab[token]

    @property
    def vocab_size(self) -> int:
        """The number of ids (the largest id plus one)."""
        return max(self.vocab.values()) + 1

    @property
    def pad_token_id(self) -> int | None:
        return self._id(self.pad_token)

    @property
    def cls_token_id(self) -> int | None:
        return self._id(self.cls_token)

    @property
    def sep_token_id(self) -> int | None:
        return self._id(self.sep_token)

    @property
    def bos_token_id(self) -> int | None:
        return self._id(self.bos_token)

    @property
    def eos_token_id(self) -> int | None:
        return self._id(self.eos_token)

    @property
    def unk_token_id(self) -> int | None:
        return self._id(self.unk_token)

    @property
    def mask_token_id(self) -> int | None:
        return self._id(self.mask_token)

    # ------------------------------------------------------------------ encoding

    def _ordinary(self, text: str) -> list[int]:
        if not text:
            return []
        if self.add_prefix_space and not text.startswith(" "):
            text = " " + text
        rank_to_id = self._rank_to_id
        return [rank_to_id[rank] for rank in self._bpe.encode_ordinary(text)]

    def _ids(self, text: str) -> list[int]:
        """The ids of ``text`` without the template's ``<s>``/``</s>``."""
        if self._special_pattern is None:
            return self._ordinary(text)
        ids: list[int] = []
        start = 0
        for match in self._special_pattern.finditer(text):
            ids += self._ordinary(text[start : match.start()])
            ids.append(self.vocab[self._specials_in_order[match.lastindex - 1]])
            start = match.end()
        return ids + self._ordinary(text[start:])

    def tokenize(self, text: str) -> list[str]:
        """The tokens of ``text`` as ``vocab.json`` spells them (``"Ġworld"``), without the template."""
        return [self.id_to_token[i] for i in self._ids(text)]

    def encode(
        self,
        text: str,
        text_pair: str | None = None,
        add_special_tokens: bool = True,
        max_length: int | None = None,
        truncation: bool = False,
    ) -> list[int]:
        """The ids of ``<s> text </s>`` or ``<s> text </s></s> text_pair </s>`` (without a template, of the texts
        one after the other).

        Args:
            text: the first (or only) segment.
            text_pair: the second segment, or ``None``.
            add_special_tokens: add the template's tokens.
            max_length: the most ids, special tokens included, kept when ``truncation`` is set.
            truncation: cut the segments to ``max_length`` (or ``model_max_length`` when it is ``None``).

        Raises:
            ConfigError: truncation without any maximum length, or a maximum too small for the special tokens.
        """
        first = self._ids(text)
        second = None if text_pair is None else self._ids(text_pair)
        template = add_special_tokens and self.cls_token is not None
        if truncation:
            specials = 0 if not template else 2 if second is None else 4
            budget = truncation_budget(max_length, self.model_max_length, specials, "the special tokens")
            if second is None:
                del first[budget:]
            else:
                keep_first, keep_second = _longest_first(len(first), len(second), budget)
                del first[keep_first:]
                del second[keep_second:]
        if not template:
            return first + (second or [])
        cls_id, sep_id = self.vocab[self.cls_token], self.vocab[self.sep_token]
        ids = [cls_id, *first, sep_id]
        if second is not None:
            ids += [sep_id, *second, sep_id]
        return ids

    def __call__(
        self,
        texts: str | Sequence[str],
        text_pairs: str | Sequence[str] | None = None,
        padding: bool | Literal["longest", "max_length"] = True,
        max_length: int | None = None,
        truncation: bool = False,
        return_tensors: Literal["pt"] | None = "pt",
    ) -> dict[str, Tensor] | dict[str, list[list[int]]]:
        """A batch of model inputs as :class:`~paperzoo.llm.data.wordpiece.WordPieceTokenizer` gives them:
        ``input_ids``, ``attention_mask`` and ``token_type_ids`` (all 0), right-padded with the padding token.

        The arguments and errors are those of :meth:`paperzoo.llm.data.wordpiece.WordPieceTokenizer.__call__` (see
        :func:`~paperzoo.llm.data.batching.pad_batch`); truncation is :meth:`encode`'s.
        """
        texts, pairs = pair_texts(texts, text_pairs)
        rows = [
            self.encode(t, p, max_length=max_length, truncation=truncation) for t, p in zip(texts, pairs, strict=True)
        ]
        encoded = [(row, [0] * len(row)) for row in rows]  # one segment: token types all 0
        return pad_batch(encoded, self.pad_token_id, padding, max_length, return_tensors)

    def decode(self, ids: Sequence[int] | Tensor, skip_special_tokens: bool = True) -> str:
        """The text of ``ids`` (special tokens as their text unless skipped); bytes cut inside a UTF-8 character show
        as U+FFFD.

        Raises:
            ConfigError: an id is not in the vocabulary.
        """
        ids = ids.tolist() if isinstance(ids, Tensor) else list(ids)
        unknown = [i for i in ids if i not in self.id_to_token]
        if unknown:
            raise ConfigError(f"the ids {unknown[:5]} are not in the vocabulary: decode ids it made")
        out = bytearray()
        for i in ids:
            token = self.id_to_token[i]
            if i in self.special_ids:
                if not skip_special_tokens:
                    out += token.encode("utf-8")
            else:
                out += _token_bytes(token)
        return out.decode("utf-8", errors="replace")

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(vocab_size={self.vocab_size}, merges={len(self.merges)}, "
            f"template={'roberta' if self.cls_token else 'none'}, add_prefix_space={self.add_prefix_space})"
        )


def _longest_first(first: int, second: int, budget: int) -> tuple[int, int]:
    """How many tokens of each segment Hugging Face's Rust ``longest_first`` truncation keeps: the shorter segment
    whole if it fits in half the budget and the longer one cut to the rest; otherwise half the budget each, the odd
    token to the longer (the first on a tie)."""
    if first + second <= budget:
        return first, second
    swap = first > second
    short, long = (second, first) if swap else (first, second)
    long = short if short > budget else max(short, budget - short)
    if short + long > budget:
        short = budget // 2
        long = short + budget % 2
    return (long, short) if swap else (short, long)


def read_vocab_json(path: str | os.PathLike) -> dict[str, int]:
    """``{token: id}`` of a ``vocab.json``.

    Raises:
        DatasetNotFoundError: the file does not exist.
        CorruptDataError: it is not a JSON object of integer ids, or two tokens share an id.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"the BPE vocabulary {path} does not exist: give the path of a vocab.json")
    try:
        vocab = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CorruptDataError(f"{path} is not valid JSON ({error}): restore the file") from error
    if not isinstance(vocab, dict) or not all(isinstance(i, int) and not isinstance(i, bool) for i in vocab.values()):
        raise CorruptDataError(f"{path} is not a JSON object of token ids: restore the file")
    if len(set(vocab.values())) != len(vocab):
        raise CorruptDataError(f"{path} gives two tokens the same id: restore the file")
    return vocab


def read_merges(path: str | os.PathLike) -> list[tuple[str, str]]:
    """The merges of a ``merges.txt``, highest priority first: one ``left right`` pair a line, after an optional
    ``#version`` line.

    Raises:
        DatasetNotFoundError: the file does not exist.
        CorruptDataError: a line is not two tokens separated by one space.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"the BPE merges {path} do not exist: give the path of a merges.txt")
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError as error:
        raise CorruptDataError(f"{path} is not UTF-8 text ({error}): restore the file") from error
    merges = []
    for number, line in enumerate(lines, start=1):
        if not line or (number == 1 and line.startswith("#version")):
            continue
        parts = line.split(" ")
        if len(parts) != 2 or not all(parts):
            raise CorruptDataError(f"line {number} of {path} is not 'left right' ({line[:40]!r}): restore the file")
        merges.append((parts[0], parts[1]))
    return merges


def _byte_level_bpe_model(tokenizer_json: dict[str, Any], path: Path) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """``(vocab, merges)`` of the BPE model in a ``tokenizer.json`` whose pre-tokeniser is GPT-2's byte-level one
    (merges written as ``"left right"`` strings or as ``[left, right]`` pairs).

    Raises:
        CorruptDataError: the file holds another kind of tokeniser or a malformed model.
    """
    model = tokenizer_json.get("model") or {}
    pre_tokenizer = tokenizer_json.get("pre_tokenizer") or {}
    if model.get("type") != "BPE" or pre_tokenizer.get("type") != "ByteLevel":
        raise CorruptDataError(
            f"{path} holds a {model.get('type')} model with a {pre_tokenizer.get('type')} pre-tokeniser, not a "
            "byte-level BPE (RoBERTa, GPT-2)"
        )
    vocab = model.get("vocab")
    merges = []
    for number, merge in enumerate(model.get("merges") or [], start=1):
        parts = merge.split(" ") if isinstance(merge, str) else merge
        if not isinstance(parts, list) or len(parts) != 2 or not all(isinstance(p, str) and p for p in parts):
            raise CorruptDataError(f"merge {number} of {path} is not a pair of tokens ({merge!r}): restore the file")
        merges.append((parts[0], parts[1]))
    if not isinstance(vocab, dict) or not all(isinstance(i, int) for i in vocab.values()):
        raise CorruptDataError(f"the BPE vocabulary in {path} is not an object of token ids: restore the file")
    return dict(vocab), merges


def _read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; ``{}`` when there is no file."""
    if not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CorruptDataError(f"{path} is not valid JSON ({error}): repair or delete it") from error
    if not isinstance(value, dict):
        raise CorruptDataError(f"{path} is not a JSON object: repair or delete it")
    return value


def _added_tokens(config: dict[str, Any], tokenizer_json: dict[str, Any], folder: Path) -> dict[str, dict[str, Any]]:
    """``{content: {"id", "lstrip", "rstrip", ...}}`` of the added tokens that ``tokenizer.json`` and
    ``tokenizer_config.json`` (``added_tokens_decoder`` and special tokens written as dictionaries) describe."""
    found: dict[str, dict[str, Any]] = {}
    try:
        for entry in tokenizer_json.get("added_tokens") or []:
            found[entry["content"]] = dict(entry)
        for i, entry in (config.get("added_tokens_decoder") or {}).items():
            found[entry["content"]] = {**found.get(entry["content"], {}), **entry, "id": int(i)}
    except (TypeError, KeyError, ValueError, AttributeError) as error:
        raise CorruptDataError(f"the added tokens of {folder} are not in Hugging Face's format ({error})") from error
    for role in _ROLES:
        value = config.get(role)
        if isinstance(value, dict) and "content" in value:
            found[value["content"]] = {**found.get(value["content"], {}), **value}
    return found


Tokenizer = WordPieceTokenizer | ByteLevelBPETokenizer


def load_tokenizer(folder: str | os.PathLike) -> Tokenizer:
    """The tokeniser of a Hugging Face model folder: :class:`WordPieceTokenizer` for a BERT folder (``vocab.txt``),
    :class:`ByteLevelBPETokenizer` for a RoBERTa or GPT-2 folder (``vocab.json`` and ``merges.txt``, or a
    ``tokenizer.json`` with a BPE model).

    Both have ``encode(text, text_pair=None, max_length=..., truncation=True)``, a batch ``__call__`` and
    ``pad_token_id``.

    Raises:
        DatasetNotFoundError: the folder is missing or holds neither vocabulary.
        CorruptDataError: the vocabulary files are damaged.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetNotFoundError(
            f"{folder} is not a folder: give a Hugging Face model folder with its tokeniser files (vocab.txt for "
            "BERT, vocab.json and merges.txt for RoBERTa or GPT-2)"
        )
    if (folder / VOCAB_JSON).is_file() and (folder / MERGES_FILE).is_file():
        return ByteLevelBPETokenizer.from_hf(folder)
    if (folder / "vocab.txt").is_file():
        return WordPieceTokenizer.from_hf(folder)
    model_type = (_read_json_object(folder / TOKENIZER_JSON).get("model") or {}).get("type")
    if model_type == "BPE":
        return ByteLevelBPETokenizer.from_hf(folder)
    raise DatasetNotFoundError(
        f"{folder} has no tokeniser files that paperzoo reads: it needs vocab.txt (BERT's WordPiece), or vocab.json "
        "and merges.txt or a byte-level BPE tokenizer.json (RoBERTa's and GPT-2's)"
        + (
            f"; its tokenizer.json holds a {model_type} model, which paperzoo reads only from vocab.txt"
            if model_type
            else ""
        )
    )


def load_sequence_classifier(folder: str | os.PathLike, num_labels: int = 2, **overrides: Any) -> nn.Module:
    """Our sequence classifier with the weights of a Hugging Face folder, by ``config.json``'s ``model_type``:
    :class:`~paperzoo.llm.models.bert.BertForSequenceClassification` for ``"bert"``,
    :class:`~paperzoo.llm.models.roberta.RobertaForSequenceClassification` for ``"roberta"``. A folder of a
    pre-trained model (no classifier yet) gives a freshly initialised head and a ``UserWarning`` naming it.

    Args:
        folder: the model folder (``config.json`` and weights).
        num_labels: classes of the head.
        overrides: config fields to replace (dropout, say).

    Raises:
        DatasetNotFoundError: the folder, its config or its weights are missing.
        CorruptDataError: a file cannot be read, or the weights do not fit the config.
        ConfigError: the model type is not BERT or RoBERTa.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetNotFoundError(
            f"{folder} is not a folder: give a Hugging Face BERT or RoBERTa model folder (config.json and "
            "model.safetensors)"
        )
    if not (folder / "config.json").is_file():
        raise DatasetNotFoundError(f"{folder} has no config.json, so it is not a Hugging Face model folder")
    model_type = _read_json_object(folder / "config.json").get("model_type")
    classes = {"bert": BertForSequenceClassification, "roberta": RobertaForSequenceClassification}
    if model_type not in classes:
        raise ConfigError(
            f"{folder} holds a model_type={model_type!r}; paperzoo's sequence classifiers are 'bert' and 'roberta'"
        )
    return classes[model_type].from_hf(folder, num_labels=num_labels, **overrides)
