"""GPT-2's byte-level byte-pair encoding, written from scratch.

Radford, Wu, Child, Luan, Amodei and Sutskever, "Language Models are Unsupervised Multitask Learners" (2019),
Section 2.2: BPE (Sennrich et al., 2016) over the UTF-8 bytes of the text, so every string is encodable without an
unknown token, with merges kept from crossing character categories by a pre-tokenisation regex. The vocabulary is
OpenAI's 50,257 tokens: 256 bytes, 50,000 merges and ``<|endoftext|>`` (50256), read from the ``gpt2.tiktoken`` file
that the ``openai-whisper`` package ships (one token a line: its bytes in base64, a space, its rank).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import os
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Literal

import regex
from torch import Tensor

from paperzoo.core.data import package_data_file
from paperzoo.core.errors import ConfigError, CorruptDataError, DatasetNotFoundError

ENDOFTEXT = "<|endoftext|>"

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
"""GPT-2's pre-tokenisation (the paper's ``encoder.py``): English contractions, a word with at most one space before
it, a number, a run of other symbols, and whitespace, whose last space is left to start the next word."""

_NO_MERGE = float("inf")
_CACHE_LIMIT = 200_000


def gpt2_vocabulary_file() -> Path:
    """The ``gpt2.tiktoken`` file of the installed ``openai-whisper`` package, found without importing it.

    Raises:
        DatasetNotFoundError: ``openai-whisper`` is not installed or lacks the file.
    """
    return package_data_file(
        "whisper",
        "assets/gpt2.tiktoken",
        "the GPT-2 vocabulary comes",
        pip_options="--no-deps",
        or_else="pass the path of a gpt2.tiktoken file",
    )


def read_tiktoken_file(path: str | os.PathLike) -> dict[bytes, int]:
    """The ranks of a tiktoken BPE file: ``{token bytes: rank}``, one ``<base64> <rank>`` line per token.

    Raises:
        DatasetNotFoundError: the file does not exist.
        CorruptDataError: a line is not base64 bytes and an integer, or a token or rank appears twice.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"the BPE vocabulary {path} does not exist: give the path of a gpt2.tiktoken file")
    ranks: dict[bytes, int] = {}
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                encoded, rank = line.split()
                ranks[base64.b64decode(encoded, validate=True)] = int(rank)
            except (ValueError, binascii.Error) as error:
                raise CorruptDataError(
                    f"line {number} of {path} is not '<base64 bytes> <rank>' ({error}): restore the file"
                ) from error
    if len(set(ranks.values())) != len(ranks):
        raise CorruptDataError(f"{path} gives two tokens the same rank: restore the file")
    return ranks


class GPT2Tokenizer:
    """GPT-2's byte-level BPE tokeniser (Radford et al., 2019).

    The text is cut by :data:`GPT2_PATTERN` into pre-tokens; each pre-token's UTF-8 bytes start as single-byte tokens,
    and the adjacent pair whose concatenation has the lowest rank in the vocabulary is merged (the leftmost on a tie),
    again and again until no adjacent pair concatenates to a vocabulary token. The ids are the ranks. A pre-token that
    is itself a token is taken whole without merging, as tiktoken does; for GPT-2's vocabulary this changes nothing,
    since every token's bytes merge back into that token (a slow test checks all 50,256). Merges are cached per
    pre-token.

    Special tokens (``<|endoftext|>``) are recognised in text only where :meth:`encode` allows them; by default their
    text raises an error, so that user text cannot inject a document boundary unnoticed (tiktoken's rule).

    Args:
        ranks: ``{token bytes: rank}`` with every one of the 256 single bytes.
        special_tokens: ``{text: id}``; by default ``<|endoftext|>`` takes the id after the largest rank.
        pattern: the pre-tokenisation regex (for the ``regex`` module).

    Raises:
        ConfigError: a single byte is missing from ``ranks``, or a special token's id is already a rank.
    """

    def __init__(
        self,
        ranks: Mapping[bytes, int],
        special_tokens: Mapping[str, int] | None = None,
        pattern: str = GPT2_PATTERN,
    ) -> None:
        missing = [byte for byte in range(256) if bytes([byte]) not in ranks]
        if missing:
            raise ConfigError(
                f"the vocabulary lacks {len(missing)} of the 256 single bytes (e.g. {missing[0]}): byte-level BPE "
                "needs all of them"
            )
        self.ranks = dict(ranks)
        if special_tokens is None:
            special_tokens = {ENDOFTEXT: max(self.ranks.values()) + 1}
        self.special_tokens = dict(special_tokens)
        self._decoder = {rank: token for token, rank in self.ranks.items()}
        clashes = [text for text, i in self.special_tokens.items() if i in self._decoder]
        if clashes:
            raise ConfigError(f"the special tokens {clashes} have ids of ordinary tokens: give them ids of their own")
        self._decoder.update({i: text.encode("utf-8") for text, i in self.special_tokens.items()})
        self.pattern = regex.compile(pattern)
        self._cache: dict[str, tuple[int, ...]] = {}

    @classmethod
    def from_tiktoken_file(cls, path: str | os.PathLike | None = None) -> GPT2Tokenizer:
        """GPT-2's tokeniser from a ``gpt2.tiktoken`` file (by default the one in ``openai-whisper``).

        Raises:
            DatasetNotFoundError: the file (or, with no path, ``openai-whisper``) is missing.
            CorruptDataError: the file is not a byte-level BPE vocabulary.
        """
        path = gpt2_vocabulary_file() if path is None else Path(path)
        ranks = read_tiktoken_file(path)
        try:
            return cls(ranks, special_tokens={ENDOFTEXT: 50256})
        except ConfigError as error:
            raise CorruptDataError(f"{path} is not GPT-2's vocabulary: {error}") from error

    @property
    def vocab_size(self) -> int:
        """The number of ids (the largest id plus one): 50257 for GPT-2."""
        return max(self._decoder) + 1

    @property
    def eos_token_id(self) -> int:
        """The id of ``<|endoftext|>``, which GPT-2 puts between documents."""
        return self.special_tokens[ENDOFTEXT]

    def _bpe(self, piece: bytes) -> tuple[int, ...]:
        """The token ids of one pre-token's bytes: the token itself if it is one, else :meth:`_merge`."""
        token = self.ranks.get(piece)
        return (token,) if token is not None else self._merge(piece)

    def _merge(self, piece: bytes) -> tuple[int, ...]:
        """Merge the bytes of one pre-token, lowest-rank pair first (leftmost on a tie), into token ids."""
        ranks = self.ranks
        parts = [piece[i : i + 1] for i in range(len(piece))]
        # pair_ranks[i] is the rank of parts[i] + parts[i + 1], kept up to date so a merge costs two lookups.
        pair_ranks = [ranks.get(a + b, _NO_MERGE) for a, b in itertools.pairwise(parts)]
        while pair_ranks:
            best = min(pair_ranks)
            if best == _NO_MERGE:
                break
            i = pair_ranks.index(best)
            parts[i : i + 2] = [parts[i] + parts[i + 1]]
            del pair_ranks[i]
            if i > 0:
                pair_ranks[i - 1] = ranks.get(parts[i - 1] + parts[i], _NO_MERGE)
            if i < len(pair_ranks):
                pair_ranks[i] = ranks.get(parts[i] + parts[i + 1], _NO_MERGE)
        return tuple(ranks[part] for part in parts)

    def encode_ordinary(self, text: str) -> list[int]:
        """The ids of ``text`` with special tokens' text encoded as ordinary text."""
        ids: list[int] = []
        cache = self._cache
        for word in self.pattern.findall(text):
            word_ids = cache.get(word)
            if word_ids is None:
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()
                word_ids = cache[word] = self._bpe(word.encode("utf-8"))
            ids.extend(word_ids)
        return ids

    def encode(
        self,
        text: str,
        allowed_special: Collection[str] | Literal["all"] = frozenset(),
        disallowed_special: Collection[str] | Literal["all"] = "all",
    ) -> list[int]:
        """The ids of ``text``.

        Args:
            text: any string.
            allowed_special: special tokens whose text becomes their id (``"all"``: every one).
            disallowed_special: special tokens whose text is an error (``"all"``: every one not allowed); a special
                token in neither is encoded as ordinary text (pass ``()`` to never raise).

        Raises:
            ConfigError: the text contains a disallowed special token.
        """
        allowed = set(self.special_tokens) if allowed_special == "all" else set(allowed_special)
        unknown = allowed - set(self.special_tokens)
        if unknown:
            raise ConfigError(f"{sorted(unknown)} are not special tokens of this vocabulary: allow only {ENDOFTEXT!r}")
        disallowed = set(self.special_tokens) - allowed if disallowed_special == "all" else set(disallowed_special)
        found = [token for token in disallowed if token in text]
        if found:
            raise ConfigError(
                f"the text contains the special token {found[0]!r}: pass allowed_special={{{found[0]!r}}} to encode "
                "it as its id, or disallowed_special=() to encode it as text"
            )
        if not allowed:
            return self.encode_ordinary(text)
        ids: list[int] = []
        special = regex.compile("|".join(regex.escape(t) for t in sorted(allowed, key=len, reverse=True)))
        start = 0
        for match in special.finditer(text):
            ids += self.encode_ordinary(text[start : match.start()])
            ids.append(self.special_tokens[match.group()])
            start = match.end()
        return ids + self.encode_ordinary(text[start:])

    def encode_batch(
        self,
        texts: Iterable[str],
        allowed_special: Collection[str] | Literal["all"] = frozenset(),
        disallowed_special: Collection[str] | Literal["all"] = "all",
    ) -> list[list[int]]:
        """:meth:`encode` of each text."""
        return [self.encode(text, allowed_special, disallowed_special) for text in texts]

    def decode_bytes(self, ids: Sequence[int] | Tensor) -> bytes:
        """The bytes of ``ids`` (special tokens as their text).

        Raises:
            ConfigError: an id is not in the vocabulary.
        """
        ids = ids.tolist() if isinstance(ids, Tensor) else ids
        try:
            return b"".join(self._decoder[i] for i in ids)
        except KeyError as error:
            raise ConfigError(
                f"the id {error.args[0]} is not in the vocabulary of {self.vocab_size}: decode ids it made"
            ) from None

    def decode(self, ids: Sequence[int] | Tensor) -> str:
        """The text of ``ids``; a byte sequence cut inside a UTF-8 character shows as U+FFFD."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size}, special_tokens={self.special_tokens})"
