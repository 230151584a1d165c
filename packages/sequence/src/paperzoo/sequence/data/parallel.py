"""Sentence-aligned parallel text for translation in the layout of the IWSLT and WMT preparations, batched by tokens."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import lightning.pytorch as pl
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from paperzoo.core.data import EpochSeededSampler, run_seed
from paperzoo.core.errors import ConfigError, CorruptDataError, DatasetNotFoundError
from paperzoo.sequence.data.tokenizer import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    SubwordTokenizer,
    TokenizerModel,
    train_translation_tokenizers,
)

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
"""The three splits, named as in fairseq's IWSLT and WMT preparations."""

T = TypeVar("T")


def read_parallel_split(data_dir: str | Path, split: str, src_lang: str, tgt_lang: str) -> tuple[list[str], list[str]]:
    """The line-aligned sentences of ``data_dir/{split}.{src_lang}`` and ``data_dir/{split}.{tgt_lang}``.

    Each file is UTF-8 text with one sentence per line; line ``i`` of the two files is a translation pair. Lines are
    split at ``\\n`` only (a stray ``\\r`` is dropped), so Unicode line separators inside a sentence do not break the
    alignment.

    Returns:
        ``(source sentences, target sentences)``, of equal length.

    Raises:
        DatasetNotFoundError: a file is missing.
        CorruptDataError: a file is not UTF-8, the two files have different numbers of lines, or a line is empty.
    """
    data_dir = Path(data_dir)
    paths = [data_dir / f"{split}.{src_lang}", data_dir / f"{split}.{tgt_lang}"]
    _require_files(paths, data_dir, src_lang, tgt_lang)
    src, tgt = (_read_lines(path) for path in paths)
    if len(src) != len(tgt):
        raise CorruptDataError(
            f"{paths[0]} has {len(src)} lines but {paths[1]} has {len(tgt)}; the two files must be line-aligned, "
            "one sentence per line"
        )
    for path, lines in zip(paths, (src, tgt), strict=True):
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                raise CorruptDataError(
                    f"{path} line {number} is empty; remove that line from both {paths[0].name} and {paths[1].name} "
                    "(every line must hold a sentence)"
                )
    return src, tgt


class TokenBatchSampler(Sampler[list[int]]):
    """Batches of examples of similar length whose padded size stays within a token budget.

    A batch of ``B`` examples costs ``B * max(length)`` tokens, the size of the padded tensor (``length`` is the
    longer of source and target, as in fairseq's ``--max-tokens``); the sampler keeps every batch within
    ``max_tokens``. Examples are sorted by length and cut greedily into batches, which keeps padding small.

    For training (``shuffle=True``) the ties between examples of equal length are broken by a random permutation
    and the batches are served in a random order, both drawn from ``(seed, epoch)``: each epoch has new batches, a
    run with the same seed has the same ones, and the number of batches is the same in every epoch (it depends only
    on the lengths), so Lightning's count of training batches stays right. Lightning calls ``set_epoch`` on
    :attr:`sampler` at the start of every epoch; outside Lightning call :meth:`set_epoch` yourself.

    Without shuffling, examples are sorted by length (ties in index order) and the batches are served shortest
    first; the batch's ``indices`` give the original order back (see :func:`restore_order`).

    This sampler serves one device; it does not shard the batches between DDP processes.

    Args:
        lengths: the length of every example, in tokens.
        max_tokens: the largest padded batch, in tokens; at least the longest example.
        shuffle: draw a new grouping and order every epoch.
        seed: seed of the shuffling.

    Raises:
        ConfigError: an example is longer than ``max_tokens``, or a length is not positive.
    """

    def __init__(self, lengths: Sequence[int], max_tokens: int, shuffle: bool = False, seed: int = 0) -> None:
        self.lengths = np.asarray(lengths, dtype=np.int64)
        if self.lengths.ndim != 1 or (self.lengths < 1).any():
            raise ConfigError("every example length must be a positive integer")
        if len(self.lengths) and self.lengths.max() > max_tokens:
            longest = int(self.lengths.argmax())
            raise ConfigError(
                f"example {longest} has {self.lengths[longest]} tokens, more than max_tokens={max_tokens}; raise "
                "max_tokens or lower max_len"
            )
        self.max_tokens = max_tokens
        self.shuffle = shuffle
        self.seed = seed
        self.sampler = EpochSeededSampler(len(self.lengths), seed) if shuffle else None
        self._num_batches = len(self._cut(np.sort(self.lengths), np.arange(len(self.lengths))))

    def set_epoch(self, epoch: int) -> None:
        """Draw the batches of ``epoch`` from now on."""
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)

    @property
    def epoch(self) -> int:
        return self.sampler.epoch if self.sampler is not None else 0

    def batches(self) -> list[list[int]]:
        """The batches of the current epoch, each a list of example indices."""
        if self.sampler is None:
            order = np.argsort(self.lengths, kind="stable")
        else:
            permutation = np.fromiter(iter(self.sampler), dtype=np.int64, count=len(self.lengths))
            order = permutation[np.argsort(self.lengths[permutation], kind="stable")]
        batches = self._cut(self.lengths[order], order)
        if self.sampler is not None:
            # A stream of its own: the tie-breaking permutation above comes from torch's generator at seed + epoch.
            rng = np.random.default_rng((self.seed, self.epoch, 1))
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def _cut(self, sorted_lengths: np.ndarray, order: np.ndarray) -> list[list[int]]:
        """Cut ``order`` (whose lengths ``sorted_lengths`` ascend) into the longest batches within the budget."""
        batches, start = [], 0
        for end, length in enumerate(sorted_lengths.tolist()):
            # Lengths ascend, so the example at `end` is the longest of [start, end] and sets the padded width.
            if (end + 1 - start) * length > self.max_tokens:
                batches.append(order[start:end].tolist())
                start = end
        if start < len(order):
            batches.append(order[start:].tolist())
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches())

    def __len__(self) -> int:
        return self._num_batches

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(examples={len(self.lengths)}, max_tokens={self.max_tokens}, "
            f"shuffle={self.shuffle}, seed={self.seed}, batches={self._num_batches})"
        )


@dataclasses.dataclass
class TranslationBatch:
    """A padded batch of sentence pairs; every tensor has ``B`` rows, padded on the right with ``<pad>`` (id 0).

    Attributes:
        src: source tokens followed by ``</s>``, ``(B, S)``.
        src_lengths: tokens of each source row, ``</s>`` included, ``(B,)``.
        tgt_in: the decoder input, ``<s>`` followed by the target tokens, ``(B, T)``.
        tgt_out: the decoder's expected output, the target tokens followed by ``</s>``, ``(B, T)``: ``tgt_in``
            shifted left by one.
        tgt_lengths: tokens of each target row, ``(B,)``; the same for ``tgt_in`` and ``tgt_out``.
        indices: each pair's line number (from 0) in its split's files, ``(B,)``, to put outputs back in file order.
        src_text: the source sentences as read.
        tgt_text: the reference translations as read, for BLEU on detokenised text.
    """

    src: Tensor
    src_lengths: Tensor
    tgt_in: Tensor
    tgt_out: Tensor
    tgt_lengths: Tensor
    indices: Tensor
    src_text: list[str]
    tgt_text: list[str]

    def __len__(self) -> int:
        return len(self.indices)

    def pin_memory(self) -> TranslationBatch:
        """The batch with its tensors in pinned memory (the DataLoader calls this with ``pin_memory=True``)."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return dataclasses.replace(self, **{k: v.pin_memory() for k, v in fields.items() if isinstance(v, Tensor)})


class ParallelTextDataset(Dataset):
    """Encoded sentence pairs: item ``i`` is ``(line, source ids + [</s>], target ids, source text, target text)``.

    Args:
        src_ids: each source's token ids, ``</s>`` included.
        tgt_ids: each target's token ids, without specials.
        src_text: the source sentences as read.
        tgt_text: the target sentences as read.
        lines: each pair's line number (from 0) in the split's files; ``None`` for ``0 .. n - 1``.
    """

    def __init__(
        self,
        src_ids: list[list[int]],
        tgt_ids: list[list[int]],
        src_text: list[str],
        tgt_text: list[str],
        lines: list[int] | None = None,
    ) -> None:
        self.src_ids = src_ids
        self.tgt_ids = tgt_ids
        self.src_text = src_text
        self.tgt_text = tgt_text
        self.lines = list(range(len(src_ids))) if lines is None else lines

    def lengths(self) -> list[int]:
        """Each pair's size for batching: the longer of the source (with ``</s>``) and the target (with one special)."""
        return [max(len(s), len(t) + 1) for s, t in zip(self.src_ids, self.tgt_ids, strict=True)]

    def __len__(self) -> int:
        return len(self.src_ids)

    def __getitem__(self, i: int) -> tuple[int, list[int], list[int], str, str]:
        return self.lines[i], self.src_ids[i], self.tgt_ids[i], self.src_text[i], self.tgt_text[i]


def collate_translation(items: Sequence[tuple[int, list[int], list[int], str, str]]) -> TranslationBatch:
    """Pad the items of :class:`ParallelTextDataset` into a :class:`TranslationBatch`."""
    B = len(items)
    S = max(len(item[1]) for item in items)
    T = max(len(item[2]) for item in items) + 1  # one for <s> in tgt_in, </s> in tgt_out
    src = torch.full((B, S), PAD_ID, dtype=torch.long)
    tgt_in = torch.full((B, T), PAD_ID, dtype=torch.long)
    tgt_out = torch.full((B, T), PAD_ID, dtype=torch.long)
    for row, (_, src_ids, tgt_ids, _, _) in enumerate(items):
        src[row, : len(src_ids)] = torch.tensor(src_ids, dtype=torch.long)
        target = torch.tensor(tgt_ids, dtype=torch.long)
        tgt_in[row, 0] = BOS_ID
        tgt_in[row, 1 : len(tgt_ids) + 1] = target
        tgt_out[row, : len(tgt_ids)] = target
        tgt_out[row, len(tgt_ids)] = EOS_ID
    return TranslationBatch(
        src=src,
        src_lengths=torch.tensor([len(item[1]) for item in items], dtype=torch.long),
        tgt_in=tgt_in,
        tgt_out=tgt_out,
        tgt_lengths=torch.tensor([len(item[2]) + 1 for item in items], dtype=torch.long),
        indices=torch.tensor([item[0] for item in items], dtype=torch.long),
        src_text=[item[3] for item in items],
        tgt_text=[item[4] for item in items],
    )


def restore_order(indices: Iterable[int | Tensor], items: Iterable[T]) -> list[T]:
    """Put per-example outputs gathered batch by batch back into file order.

    Args:
        indices: the concatenated ``indices`` of the batches, in the order they were served.
        items: one output per index (a hypothesis string, a score ...), in the same order.

    Returns:
        The items sorted by index, so item ``i`` belongs to line ``i`` of the split.
    """
    pairs = sorted(zip((int(i) for i in indices), items, strict=True), key=lambda pair: pair[0])
    return [item for _, item in pairs]


class ParallelTextDataModule(pl.LightningDataModule):
    """Sentence-aligned translation data in the layout of the IWSLT and WMT preparations, batched by token count.

    ``data_dir`` holds ``{train,valid,test}.{src_lang}`` and ``{train,valid,test}.{tgt_lang}``: UTF-8 text, one
    sentence per line, line ``i`` of the two files of a split being a translation pair (as written by fairseq's
    ``prepare-iwslt14.sh`` / ``prepare-wmt14en2de.sh`` before binarisation, or by
    ``python -m paperzoo.sequence.data.corpora``). Files with an empty line are rejected with the file and line
    number rather than silently dropped, since an empty line in a prepared corpus usually means the sides are out of
    step.

    In :meth:`setup` a subword vocabulary (:class:`SubwordTokenizer`, BPE or unigram) is trained on the training
    split only, or reused: it is cached in ``tokenizer_path`` (by default the folder
    ``<data_dir>.<model><vocab_size>[-lower].<joint|separate>`` beside ``data_dir``) together with its settings and a
    hash of the training files, and retrained when either differs. Each source sentence is encoded with ``</s>``
    appended; the target gives ``tgt_in`` (``<s>`` + target) and ``tgt_out`` (target + ``</s>``).

    Training pairs longer than ``max_len`` tokens on either side are dropped (as fairseq skips them); validation and
    test pairs are kept and truncated to ``max_len`` tokens (the ``</s>`` kept), while their ``tgt_text`` keeps the
    whole reference for BLEU. Batches hold at most ``max_tokens`` padded tokens (:class:`TokenBatchSampler`): the
    training batches are regrouped and reordered every epoch from ``(seed, run seed, epoch)``; validation and test
    batches are sorted by length, and each :class:`TranslationBatch` carries the line ``indices`` to restore the file
    order (:func:`restore_order`).

    Args:
        data_dir: the folder of the split files.
        src_lang: the source suffix, e.g. ``de``.
        tgt_lang: the target suffix, e.g. ``en``.
        vocab_size: the largest size of each vocabulary, special tokens included; models may size their embeddings
            with it.
        tokenizer_model: ``"bpe"`` or ``"unigram"``.
        joint_vocab: one vocabulary shared by source and target (needed for shared embeddings), or one per side.
        max_tokens: the largest padded training batch, in tokens (fairseq's ``--max-tokens``).
        max_len: the longest sentence in tokens, ``</s>`` or ``<s>`` included; at most ``max_tokens``.
        num_workers: DataLoader worker processes; the data is in memory, so 0 is usually fastest.
        seed: seed of the training order and grouping.
        tokenizer_path: the folder that caches the vocabulary; ``None`` for the default beside ``data_dir``.
        min_frequency: BPE merges only pairs seen at least this often in the training split.
        lowercase: lowercase all text before encoding (the references stay as read).
        eval_max_tokens: the token budget of validation and test batches; ``None`` for ``max_tokens``.
    """

    def __init__(
        self,
        data_dir: str = "data/dict-de-en",
        src_lang: str = "de",
        tgt_lang: str = "en",
        vocab_size: int = 8000,
        tokenizer_model: TokenizerModel = "bpe",
        joint_vocab: bool = True,
        max_tokens: int = 4096,
        max_len: int = 256,
        num_workers: int = 0,
        seed: int = 0,
        tokenizer_path: str | None = None,
        min_frequency: int = 2,
        lowercase: bool = False,
        eval_max_tokens: int | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if src_lang == tgt_lang:
            raise ConfigError(f"src_lang and tgt_lang must differ, both are {src_lang!r}")
        if tokenizer_model not in ("bpe", "unigram"):
            raise ConfigError(f"tokenizer_model must be 'bpe' or 'unigram', not {tokenizer_model!r}")
        eval_max_tokens = max_tokens if eval_max_tokens is None else eval_max_tokens
        if not 2 <= max_len <= min(max_tokens, eval_max_tokens):
            raise ConfigError(
                f"max_len={max_len} must be at least 2 and at most max_tokens={max_tokens} and "
                f"eval_max_tokens={eval_max_tokens}, so that every sentence fits in a batch"
            )
        self.data_dir = Path(data_dir)
        self.src_lang = src_lang
        self.tgt_lang = tgt_lang
        self.vocab_size = vocab_size
        self.tokenizer_model = tokenizer_model
        self.joint_vocab = joint_vocab
        self.max_tokens = max_tokens
        self.eval_max_tokens = eval_max_tokens
        self.max_len = max_len
        self.num_workers = num_workers
        self.seed = seed
        self.min_frequency = min_frequency
        self.lowercase = lowercase
        if tokenizer_path is None:
            name = f"{self.data_dir.name}.{tokenizer_model}{vocab_size}{'-lower' if lowercase else ''}"
            tokenizer_path = self.data_dir.parent / f"{name}.{'joint' if joint_vocab else 'separate'}"
        self.tokenizer_path = Path(tokenizer_path)
        self.src_tokenizer: SubwordTokenizer | None = None
        self.tgt_tokenizer: SubwordTokenizer | None = None
        self.train_set: ParallelTextDataset | None = None
        self.val_set: ParallelTextDataset | None = None
        self.test_set: ParallelTextDataset | None = None
        self.dropped_train_pairs = 0
        """Training pairs left out for being longer than ``max_len``."""

    @property
    def pad_id(self) -> int:
        return PAD_ID

    @property
    def bos_id(self) -> int:
        return BOS_ID

    @property
    def eos_id(self) -> int:
        return EOS_ID

    @property
    def src_vocab_size(self) -> int:
        """The trained source vocabulary's size (at most ``vocab_size``); known after :meth:`setup`."""
        return self._tokenizers()[0].vocab_size

    @property
    def tgt_vocab_size(self) -> int:
        """The trained target vocabulary's size (at most ``vocab_size``); known after :meth:`setup`."""
        return self._tokenizers()[1].vocab_size

    def prepare_data(self) -> None:
        """Train and cache the vocabulary if no matching one is cached (once, on the first process)."""
        self.load_tokenizers()

    def setup(self, stage: str | None = None) -> None:
        """Load or train the vocabulary, then read and encode the splits the stage needs; repeated calls add only
        the splits still missing."""
        self.load_tokenizers()
        if stage in (None, "fit") and self.train_set is None:
            self.train_set = self._encode_split("train")
        if stage in (None, "fit", "validate") and self.val_set is None:
            self.val_set = self._encode_split("valid")
        if stage in (None, "test", "predict") and self.test_set is None:
            self.test_set = self._encode_split("test")

    def load_tokenizers(self) -> tuple[SubwordTokenizer, SubwordTokenizer]:
        """The source and target tokenizers (one object twice with ``joint_vocab``): cached, or trained now on the
        training split and cached in ``tokenizer_path``."""
        if self.src_tokenizer is not None:
            return self.src_tokenizer, self.tgt_tokenizer
        src_text, tgt_text = read_parallel_split(self.data_dir, "train", self.src_lang, self.tgt_lang)
        settings = self._tokenizer_settings()
        files = self._tokenizer_files()
        settings_file = self.tokenizer_path / "settings.json"
        if settings_file.is_file() and all(path.is_file() for path in files):
            try:
                cached = json.loads(settings_file.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                cached = None
            if cached == settings:
                tokenizers = [SubwordTokenizer.load(path) for path in files]
                log.info("reusing the vocabulary cached in %s", self.tokenizer_path)
                self.src_tokenizer, self.tgt_tokenizer = tokenizers[0], tokenizers[-1]
                return self.src_tokenizer, self.tgt_tokenizer
        log.info("training the %s vocabulary on %s into %s", self.tokenizer_model, self.data_dir, self.tokenizer_path)
        self.src_tokenizer, self.tgt_tokenizer = train_translation_tokenizers(
            src_text,
            tgt_text,
            vocab_size=self.vocab_size,
            model=self.tokenizer_model,
            min_frequency=self.min_frequency,
            lowercase=self.lowercase,
            joint=self.joint_vocab,
        )
        for tokenizer, path in zip((self.src_tokenizer, self.tgt_tokenizer), files, strict=False):
            tokenizer.save(path)
        # Written last: a run killed while saving leaves no settings file, and the next run trains again.
        settings_file.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
        return self.src_tokenizer, self.tgt_tokenizer

    def decode(self, ids: Iterable[int]) -> str:
        """Target token ids as plain text (see :meth:`SubwordTokenizer.decode`)."""
        return self._tokenizers()[1].decode(ids)

    def train_dataloader(self) -> DataLoader:
        """Token-budget batches, regrouped and reordered every epoch from ``(seed, run seed, epoch)``."""
        order_seed = int(np.random.SeedSequence((self.seed, run_seed())).generate_state(1)[0])
        sampler = TokenBatchSampler(self.train_set.lengths(), self.max_tokens, shuffle=True, seed=order_seed)
        return self._loader(self.train_set, sampler)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, TokenBatchSampler(self.val_set.lengths(), self.eval_max_tokens))

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, TokenBatchSampler(self.test_set.lengths(), self.eval_max_tokens))

    def predict_dataloader(self) -> DataLoader:
        """The test split, batched as for testing."""
        return self.test_dataloader()

    def _loader(self, dataset: ParallelTextDataset, batch_sampler: TokenBatchSampler) -> DataLoader:
        return DataLoader(
            dataset,
            batch_sampler=batch_sampler,
            collate_fn=collate_translation,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    def _tokenizers(self) -> tuple[SubwordTokenizer, SubwordTokenizer]:
        if self.src_tokenizer is None:
            raise ConfigError(f"{type(self).__name__} has no vocabulary yet: call setup() (or prepare_data()) first")
        return self.src_tokenizer, self.tgt_tokenizer

    def _tokenizer_files(self) -> list[Path]:
        if self.joint_vocab:
            return [self.tokenizer_path / "tokenizer.json"]
        return [self.tokenizer_path / f"tokenizer.{lang}.json" for lang in (self.src_lang, self.tgt_lang)]

    def _tokenizer_settings(self) -> dict:
        """Everything the vocabulary depends on, the training files' contents included."""
        train_files = [self.data_dir / f"train.{lang}" for lang in (self.src_lang, self.tgt_lang)]
        return {
            "model": self.tokenizer_model,
            "vocab_size": self.vocab_size,
            "min_frequency": self.min_frequency,
            "lowercase": self.lowercase,
            "joint_vocab": self.joint_vocab,
            "src_lang": self.src_lang,
            "tgt_lang": self.tgt_lang,
            "train_sha256": {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in train_files},
        }

    def _encode_split(self, split: str) -> ParallelTextDataset:
        src_text, tgt_text = read_parallel_split(self.data_dir, split, self.src_lang, self.tgt_lang)
        src_tokenizer, tgt_tokenizer = self._tokenizers()
        src_ids = src_tokenizer.encode_batch(src_text, add_eos=True)
        tgt_ids = tgt_tokenizer.encode_batch(tgt_text)
        if split == "train":
            keep = [
                i for i in range(len(src_ids)) if len(src_ids[i]) <= self.max_len and len(tgt_ids[i]) < self.max_len
            ]
            self.dropped_train_pairs = len(src_ids) - len(keep)
            if not keep:
                raise ConfigError(
                    f"all {len(src_ids)} training pairs of {self.data_dir} are longer than max_len={self.max_len} "
                    "tokens; raise max_len"
                )
            if self.dropped_train_pairs:
                log.info("dropped %d training pairs longer than %d tokens", self.dropped_train_pairs, self.max_len)
            src_ids, tgt_ids = [src_ids[i] for i in keep], [tgt_ids[i] for i in keep]
            src_text, tgt_text = [src_text[i] for i in keep], [tgt_text[i] for i in keep]
            return ParallelTextDataset(src_ids, tgt_ids, src_text, tgt_text, lines=keep)
        src_ids = [ids if len(ids) <= self.max_len else [*ids[: self.max_len - 1], EOS_ID] for ids in src_ids]
        tgt_ids = [ids[: self.max_len - 1] for ids in tgt_ids]
        return ParallelTextDataset(src_ids, tgt_ids, src_text, tgt_text)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(data_dir={str(self.data_dir)!r}, src_lang={self.src_lang!r}, "
            f"tgt_lang={self.tgt_lang!r}, vocab_size={self.vocab_size}, tokenizer_model={self.tokenizer_model!r}, "
            f"joint_vocab={self.joint_vocab}, max_tokens={self.max_tokens}, max_len={self.max_len}, seed={self.seed})"
        )


def _read_lines(path: Path) -> list[str]:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise CorruptDataError(f"{path} line {line} is not UTF-8 ({err.reason}); re-encode the file as UTF-8") from err
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def _require_files(paths: Sequence[Path], data_dir: Path, src_lang: str, tgt_lang: str) -> None:
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise DatasetNotFoundError(
            f"{' and '.join(missing)} not found: a parallel corpus folder holds {{train,valid,test}}.{src_lang} and "
            f"{{train,valid,test}}.{tgt_lang} in {data_dir}, UTF-8, one sentence per line, the two languages "
            "line-aligned (e.g. `python -m paperzoo.sequence.data.corpora dict-de-en DIR` writes them)"
        )
