"""Word embeddings: a word2vec or GloVe model trained on a corpus, then scored on word similarity and analogies, next
to gensim's Word2Vec trained on the same sentences with the same settings."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor, nn

from paperzoo.core.errors import ConfigError
from paperzoo.core.modules.base import PaperzooModule
from paperzoo.sequence.embedding_eval import (
    AnalogyQuestions,
    analogy_accuracy,
    word_similarity,
    write_word2vec_text,
)

Score = tuple[float, int, int]
"""A benchmark score: the value, the items (pairs or questions) it covers, and the items in all."""


def _word2vec_sgd(params) -> torch.optim.Optimizer:
    """word2vec's optimiser: plain SGD at its starting learning rate 0.025 (sparse gradients allow no momentum)."""
    return torch.optim.SGD(params, lr=0.025)


class WordEmbeddingModule(PaperzooModule):
    """Word vectors learnt from a corpus: word2vec (Mikolov et al. 2013) or GloVe (Pennington et al. 2014).

    The network (:class:`~paperzoo.sequence.models.SkipGramNS`, :class:`~paperzoo.sequence.models.CBOW` or
    :class:`~paperzoo.sequence.models.GloVe`) returns the loss of every example of a batch from
    :class:`~paperzoo.sequence.data.TextCorpusDataModule`; the module minimises their **sum**, so a plain SGD step on a
    batch is the sum of the steps word2vec takes one pair at a time, and logs their mean as ``train/loss``.

    The test scores the network's word vectors, for the data module's vocabulary, on each benchmark the test loader
    names (see :mod:`paperzoo.sequence.embedding_eval`) and logs

    - ``test/wordsim353`` and ``test/simlex999``: Spearman's rho, with ``..._coverage``, the fraction of pairs scored;
    - ``test/analogy``: the 3CosAdd accuracy over the questions whose words are among the ``analogy_restrict_vocab``
      most frequent, with ``test/analogy_coverage`` and the accuracy of the ``..._semantic`` and ``..._syntactic``
      sections.

    With ``compare_gensim``, ``gensim.models.Word2Vec`` is trained at the start of the test on the data module's very
    sentences with the same settings (vector size, window, ``negative``, ``sample``, ``min_count``, ``ns_exponent``,
    epochs, a learning rate falling linearly from ``gensim_alpha`` to ``gensim_min_alpha``, the run's seed, one worker
    thread), skip-gram for a skip-gram or GloVe network and CBOW (``cbow_mean=1``) for CBOW; its vectors are scored
    alike and logged as ``test/gensim_<metric>``. GloVe has no gensim implementation: it is compared with gensim's
    skip-gram. The two side by side are logged as a table and written to ``embedding_comparison.md`` in the run
    directory; with ``write_vectors`` our vectors are written there as ``vectors.txt`` in the word2vec text format.

    Args:
        network: the embedding model; its ``objective`` must be the data module's.
        compare_gensim: train and score gensim's Word2Vec too.
        gensim_alpha: gensim's starting learning rate; set it to the optimiser's for a like-for-like comparison.
        gensim_min_alpha: gensim's final learning rate.
        gensim_epochs: gensim's passes over the corpus; ``None`` for the trainer's ``max_epochs``.
        analogy_restrict_vocab: the most frequent words searched for analogy answers (word2vec's demo uses 30,000,
            gensim's ``evaluate_word_analogies`` 300,000 by default).
        write_vectors: write ``vectors.txt`` to the run directory after the test.
        optimizer: see :class:`~paperzoo.core.modules.PaperzooModule`; default SGD with lr 0.025 (word2vec's). The
            tables have sparse gradients, so use SGD without momentum or weight decay, Adagrad or SparseAdam.
        lr_scheduler: see :class:`~paperzoo.core.modules.PaperzooModule`; word2vec decays the rate linearly to
            (nearly) 0, ``paperzoo.core.schedules.LinearWarmupDecay`` with ``warmup_steps: 0``.
        scheduler_interval: see :class:`~paperzoo.core.modules.PaperzooModule`.
    """

    def __init__(
        self,
        network: nn.Module,
        compare_gensim: bool = False,
        gensim_alpha: float = 0.025,
        gensim_min_alpha: float = 0.0001,
        gensim_epochs: int | None = None,
        analogy_restrict_vocab: int = 30000,
        write_vectors: bool = True,
        optimizer: OptimizerCallable = _word2vec_sgd,
        lr_scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: Literal["step", "epoch"] = "step",
    ) -> None:
        super().__init__(optimizer=optimizer, lr_scheduler=lr_scheduler, scheduler_interval=scheduler_interval)
        self.save_hyperparameters(ignore=["network", "optimizer", "lr_scheduler"])
        self.network = network
        self.compare_gensim = compare_gensim
        self.gensim_alpha = gensim_alpha
        self.gensim_min_alpha = gensim_min_alpha
        self.gensim_epochs = gensim_epochs
        self.analogy_restrict_vocab = analogy_restrict_vocab
        self.write_vectors = write_vectors
        self.gensim_vectors: Any = None
        self._results: dict[str, dict[str, Score]] = {}

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is None:
            return
        objective, data_objective = getattr(self.network, "objective", None), getattr(datamodule, "objective", None)
        if objective is not None and data_objective is not None and objective != data_objective:
            raise ConfigError(
                f"the network is a {type(self.network).__name__} ({objective}) but the data serves {data_objective} "
                f"batches; set data.init_args.objective to {objective!r}"
            )
        data_vocab, network_vocab = getattr(datamodule, "vocab_size", None), getattr(self.network, "vocab_size", None)
        if data_vocab is not None and network_vocab is not None and data_vocab > network_vocab:
            raise ConfigError(
                f"the corpus has {data_vocab} words in its vocabulary but the network embeds only {network_vocab}; "
                f"set model.init_args.network.init_args.vocab_size to at least {data_vocab} (or raise min_count)"
            )

    def forward(self, *batch: Tensor) -> Tensor:
        """The loss of every example of a batch."""
        return self.network(*batch)

    def training_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        losses = self(*batch)
        self.log("train/loss", losses.mean(), on_step=True, on_epoch=True, prog_bar=True, batch_size=len(losses))
        return losses.sum()

    def word_vectors(self) -> np.ndarray:
        """Our vectors for the data module's vocabulary, ``(len(words), D)``."""
        words = self.trainer.datamodule.words
        return self.network.word_vectors()[: len(words)].float().cpu().numpy()

    # ------------------------------------------------------------------------------------------------ test

    def on_test_epoch_start(self) -> None:
        self._results = {}
        self.gensim_vectors = self.train_gensim() if self.compare_gensim else None

    def train_gensim(self) -> Any:
        """gensim's Word2Vec trained on the data module's sentences with this run's settings; its ``KeyedVectors``.

        Raises:
            ConfigError: gensim's vocabulary differs from ours (then the two did not see the same words).
        """
        from gensim.models import Word2Vec

        from paperzoo.core.data import run_seed

        data = self.trainer.datamodule
        epochs = self.gensim_epochs or self.trainer.max_epochs
        if epochs is None or epochs < 1:
            raise ConfigError("set model.init_args.gensim_epochs: the trainer has no max_epochs to copy")
        start = time.perf_counter()
        model = Word2Vec(
            sentences=data.sentences,
            vector_size=int(self.network.embedding_dim),
            window=data.window,
            min_count=data.min_count,
            sample=data.sample,
            negative=data.negative,
            ns_exponent=data.ns_exponent,
            hs=0,
            sg=0 if self.network.objective == "cbow" else 1,
            cbow_mean=1,
            alpha=self.gensim_alpha,
            min_alpha=self.gensim_min_alpha,
            epochs=int(epochs),
            seed=run_seed(),
            workers=1,
            max_vocab_size=None,
        )
        seconds = time.perf_counter() - start
        if set(model.wv.index_to_key) != set(data.words):
            raise ConfigError(
                f"gensim's vocabulary ({len(model.wv)} words) differs from ours ({len(data.words)}); both must read "
                "the same sentences with the same min_count"
            )
        kind = "CBOW" if self.network.objective == "cbow" else "skip-gram"
        rank_zero_info(f"gensim Word2Vec ({kind}, {epochs} epochs, 1 worker) trained in {seconds:.1f} s")
        return model.wv

    def test_step(self, benchmark: str, batch_idx: int) -> None:
        data = self.trainer.datamodule
        contenders = {"ours": (data.words, self.word_vectors())}
        if self.gensim_vectors is not None:
            contenders["gensim"] = (self.gensim_vectors.index_to_key, self.gensim_vectors.vectors)
        for contender, (words, vectors) in contenders.items():
            scores = self._score(benchmark, data.benchmarks[benchmark], words, vectors)
            prefix = "test/" if contender == "ours" else f"test/{contender}_"
            for name, (value, found, total) in scores.items():
                if not math.isnan(value):
                    self.log(prefix + name, value, on_step=False, on_epoch=True, batch_size=1)
                if name == benchmark:
                    coverage = found / total if total else 0.0
                    self.log(f"{prefix}{name}_coverage", coverage, on_step=False, on_epoch=True, batch_size=1)
            self._results.setdefault(contender, {}).update(scores)

    def _score(self, benchmark: str, data: Any, words: list[str], vectors: np.ndarray) -> dict[str, Score]:
        """``{metric: (value, items scored, items in all)}`` of one set of vectors on one benchmark."""
        lowercase = self.trainer.datamodule.lowercase
        if isinstance(data, AnalogyQuestions):
            result = analogy_accuracy(words, vectors, data, self.analogy_restrict_vocab, lowercase=lowercase)
            groups = {"": result, "_semantic": result.group(semantic=True), "_syntactic": result.group(semantic=False)}
            return {benchmark + suffix: (r.accuracy, r.found, r.total) for suffix, r in groups.items()}
        result = word_similarity(words, vectors, data, lowercase=lowercase)
        return {benchmark: (result.spearman, result.found, result.total)}

    def on_test_epoch_end(self) -> None:
        if not self.trainer.is_global_zero:
            return
        table = comparison_table(self._results)
        rank_zero_info(table)
        log_dir = self.trainer.log_dir
        if not log_dir:
            return
        out = Path(log_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "embedding_comparison.md").write_text(table + "\n", encoding="utf-8")
        if self.write_vectors:
            write_word2vec_text(out / "vectors.txt", self.trainer.datamodule.words, self.word_vectors())


def comparison_table(results: dict[str, dict[str, Score]]) -> str:
    """A Markdown table of ``{contender: {metric: (value, found, total)}}``, one row per metric, one column per
    contender, each cell ``value (found/total)``."""
    contenders = list(results)
    metrics = list(dict.fromkeys(m for scores in results.values() for m in scores))
    lines = ["| metric | " + " | ".join(contenders) + " |", "|---|" + "---|" * len(contenders)]
    for metric in metrics:
        cells = []
        for contender in contenders:
            value, found, total = results[contender].get(metric, (float("nan"), 0, 0))
            cells.append(f"{value:.4f} ({found}/{total})")
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
