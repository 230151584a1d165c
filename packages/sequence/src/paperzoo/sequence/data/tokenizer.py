"""Subword vocabularies for translation: BPE or unigram, trained with Hugging Face ``tokenizers``.

BPE is Sennrich, Haddow and Birch, "Neural Machine Translation of Rare Words with Subword Units" (ACL 2016); the
unigram language model is Kudo, "Subword Regularization" (ACL 2018). Both learn a vocabulary of frequent character
sequences from training text, so any word splits into known pieces.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Literal

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from paperzoo.core.errors import ConfigError, CorruptDataError, DatasetNotFoundError

SPECIAL_TOKENS = ("<pad>", "<s>", "</s>", "<unk>")
"""The special tokens, in id order: padding 0, begin of sentence 1, end of sentence 2, unknown 3."""

PAD_ID, BOS_ID, EOS_ID, UNK_ID = range(len(SPECIAL_TOKENS))

TokenizerModel = Literal["bpe", "unigram"]


class SubwordTokenizer:
    """A BPE or unigram subword vocabulary with fixed special-token ids and exact detokenisation.

    Wraps a Hugging Face :class:`tokenizers.Tokenizer`. Spaces become the marker ``▁`` before splitting (the
    Metaspace pre-tokenizer of SentencePiece, Kudo and Richardson 2018) and punctuation is split off as pieces of its
    own, so :meth:`decode` restores the text exactly: ``decode(encode(x)) == x`` for any ``x`` without leading
    whitespace whose characters all occurred in the training text (an unseen character becomes ``<unk>``). No
    Unicode normalisation is applied; with ``lowercase=True`` the round trip holds for ``x.lower()``. BLEU can then be
    computed on detokenised text, as sacreBLEU expects.

    The special tokens have the same ids in every vocabulary: ``<pad>`` 0, ``<s>`` 1, ``</s>`` 2, ``<unk>`` 3.

    Args:
        tokenizer: a trained Hugging Face tokenizer whose first four ids are the special tokens.

    Raises:
        CorruptDataError: the tokenizer's special tokens do not have the fixed ids.
    """

    pad_id = PAD_ID
    bos_id = BOS_ID
    eos_id = EOS_ID
    unk_id = UNK_ID

    def __init__(self, tokenizer: Tokenizer) -> None:
        ids = [tokenizer.token_to_id(token) for token in SPECIAL_TOKENS]
        if ids != list(range(len(SPECIAL_TOKENS))):
            found = ", ".join(f"{token}={i}" for token, i in zip(SPECIAL_TOKENS, ids, strict=True))
            raise CorruptDataError(
                f"the tokenizer has special-token ids {found}, not <pad>=0, <s>=1, </s>=2, <unk>=3; "
                "train it with SubwordTokenizer.train"
            )
        self.tokenizer = tokenizer

    @classmethod
    def train(
        cls,
        files_or_texts: str | os.PathLike | Sequence[os.PathLike] | Iterable[str],
        vocab_size: int,
        model: TokenizerModel = "bpe",
        min_frequency: int = 2,
        lowercase: bool = False,
    ) -> SubwordTokenizer:
        """Learn a vocabulary from training text.

        Args:
            files_or_texts: a text file (a ``str`` or path), a list of files given as :class:`~pathlib.Path`
                objects, or any other iterable of sentences (a list of ``str`` is read as sentences, not file names).
                Files are read as UTF-8, one sentence per line.
            vocab_size: the largest vocabulary, special tokens included; a small corpus may give fewer tokens.
            model: ``"bpe"`` (merges of frequent pairs) or ``"unigram"`` (a pruned unigram language model).
            min_frequency: BPE merges only pairs seen at least this often; the unigram trainer has no such setting.
            lowercase: lowercase all text before training and encoding.

        Returns:
            The trained tokenizer.

        Raises:
            ConfigError: an unknown model, or a vocabulary too small for the special tokens.
        """
        if model not in ("bpe", "unigram"):
            raise ConfigError(f"tokenizer model must be 'bpe' or 'unigram', not {model!r}")
        if vocab_size <= len(SPECIAL_TOKENS):
            raise ConfigError(f"vocab_size={vocab_size} must exceed the {len(SPECIAL_TOKENS)} special tokens")
        if model == "bpe":
            tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
            trainer = trainers.BpeTrainer(
                vocab_size=vocab_size,
                min_frequency=min_frequency,
                special_tokens=list(SPECIAL_TOKENS),
                show_progress=False,
            )
        else:
            tokenizer = Tokenizer(models.Unigram())
            trainer = trainers.UnigramTrainer(
                vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), unk_token="<unk>", show_progress=False
            )
        if lowercase:
            tokenizer.normalizer = normalizers.Lowercase()
        # Metaspace writes every space as "▁" inside the pieces, so splitting off punctuation afterwards loses nothing:
        # the decoder turns "▁" back into spaces and the text comes back exactly.
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Metaspace(), pre_tokenizers.Punctuation("isolated")]
        )
        tokenizer.decoder = decoders.Metaspace()
        if isinstance(files_or_texts, str | os.PathLike):
            files_or_texts = _lines([files_or_texts])
        elif isinstance(files_or_texts, list | tuple) and files_or_texts and isinstance(files_or_texts[0], os.PathLike):
            files_or_texts = _lines(files_or_texts)
        tokenizer.train_from_iterator(files_or_texts, trainer)
        return cls(tokenizer)

    @property
    def vocab_size(self) -> int:
        """Number of tokens, special tokens included."""
        return self.tokenizer.get_vocab_size()

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        """The token ids of ``text``, optionally framed by ``<s>`` and ``</s>``."""
        ids = self.tokenizer.encode(text, add_special_tokens=False).ids
        return [BOS_ID] * add_bos + ids + [EOS_ID] * add_eos

    def encode_batch(self, texts: Sequence[str], add_bos: bool = False, add_eos: bool = False) -> list[list[int]]:
        """:meth:`encode` of each text, computed in one call."""
        encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [[BOS_ID] * add_bos + e.ids + [EOS_ID] * add_eos for e in encodings]

    def tokenize(self, text: str) -> list[str]:
        """The subword pieces of ``text`` (``▁`` marks a preceding space)."""
        return self.tokenizer.encode(text, add_special_tokens=False).tokens

    def decode(self, ids: Iterable[int]) -> str:
        """Plain text from token ids, as a model's output is read.

        ``<pad>`` and ``<s>`` are skipped, decoding stops at the first ``</s>``, and ``<unk>`` is written as
        ``<unk>``.
        """
        kept = []
        for i in ids:
            i = int(i)
            if i == EOS_ID:
                break
            if i not in (PAD_ID, BOS_ID):
                kept.append(i)
        return self.tokenizer.decode(kept, skip_special_tokens=False)

    def token_to_id(self, token: str) -> int | None:
        """The id of a piece, or ``None`` if it is not in the vocabulary."""
        return self.tokenizer.token_to_id(token)

    def id_to_token(self, i: int) -> str | None:
        """The piece of an id, or ``None`` if out of range."""
        return self.tokenizer.id_to_token(i)

    def to_json_str(self) -> str:
        """The tokenizer as the JSON text of :meth:`save`, e.g. to keep inside a checkpoint."""
        return self.tokenizer.to_str()

    @classmethod
    def from_json_str(cls, text: str) -> SubwordTokenizer:
        """The tokenizer from :meth:`to_json_str`'s text.

        Raises:
            CorruptDataError: the text is not a tokenizer JSON with the fixed special-token ids.
        """
        try:
            tokenizer = Tokenizer.from_str(text)
        except Exception as err:  # tokenizers raises plain Exceptions for malformed JSON
            raise CorruptDataError(f"the text is not a Hugging Face tokenizer JSON ({err})") from err
        return cls(tokenizer)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the tokenizer JSON (the ``tokenizer.json`` format of Hugging Face) to ``path``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json_str(), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> SubwordTokenizer:
        """The tokenizer saved by :meth:`save` at ``path``.

        Raises:
            DatasetNotFoundError: no file at ``path``.
            CorruptDataError: the file is not a tokenizer JSON with the fixed special-token ids.
        """
        path = Path(path)
        if not path.is_file():
            raise DatasetNotFoundError(f"no tokenizer at {path}: train one with SubwordTokenizer.train and save it")
        try:
            return cls.from_json_str(path.read_text(encoding="utf-8"))
        except CorruptDataError as err:
            raise CorruptDataError(f"{path}: {err}") from err

    def __eq__(self, other: object) -> bool:
        """Same pipeline and vocabulary; unigram scores are compared to a relative 1e-12, since a JSON round trip
        may change their last digit."""
        if not isinstance(other, SubwordTokenizer):
            return NotImplemented
        return _same(json.loads(self.to_json_str()), json.loads(other.to_json_str()))

    __hash__ = None  # equal by content, so not hashable

    def __repr__(self) -> str:
        model = type(self.tokenizer.model).__name__
        return f"{type(self).__name__}(model={model}, vocab_size={self.vocab_size})"


def _same(a: object, b: object) -> bool:
    """Equal JSON values, floats within a relative 1e-12."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-300)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _lines(paths: Iterable[str | os.PathLike]) -> Iterator[str]:
    """The lines of UTF-8 files without their line ends (``Tokenizer.train`` on files would learn ``\\n`` as a
    character)."""
    for path in paths:
        with open(path, encoding="utf-8", newline="") as f:
            for line in f:
                yield line.rstrip("\r\n")


def train_translation_tokenizers(
    src_texts: Iterable[str],
    tgt_texts: Iterable[str],
    vocab_size: int,
    model: TokenizerModel = "bpe",
    min_frequency: int = 2,
    lowercase: bool = False,
    joint: bool = True,
) -> tuple[SubwordTokenizer, SubwordTokenizer]:
    """Source and target vocabularies: one shared vocabulary of both sides, or one per side.

    A joint vocabulary (Sennrich et al. 2016, section 3.2) is what shared or tied embeddings need (Vaswani et al.
    2017 share one BPE vocabulary of 37,000 tokens between English and German).

    Args:
        src_texts: source training sentences.
        tgt_texts: target training sentences.
        vocab_size: the largest size of each vocabulary.
        model: ``"bpe"`` or ``"unigram"``.
        min_frequency: see :meth:`SubwordTokenizer.train`.
        lowercase: lowercase all text.
        joint: one vocabulary for both sides (returned twice, the same object) instead of one per side.

    Returns:
        ``(source tokenizer, target tokenizer)``.
    """
    options = {"vocab_size": vocab_size, "model": model, "min_frequency": min_frequency, "lowercase": lowercase}
    if joint:
        shared = SubwordTokenizer.train([*src_texts, *tgt_texts], **options)
        return shared, shared
    return SubwordTokenizer.train(list(src_texts), **options), SubwordTokenizer.train(list(tgt_texts), **options)
