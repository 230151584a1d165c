"""Zero- and few-shot text classification without training: a LightningModule that only evaluates, scoring the
snippets of a text-classification DataModule with :mod:`paperzoo.llm.prompting`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
import torchmetrics
from torch import Tensor, nn

from paperzoo.core.checkpoint import newest_file
from paperzoo.core.errors import ConfigError, DatasetNotFoundError
from paperzoo.core.modules import PaperzooModule
from paperzoo.llm.data.gpt2_bpe import GPT2Tokenizer
from paperzoo.llm.data.sentiment import minilm_path
from paperzoo.llm.data.text import load_wordpiece
from paperzoo.llm.models.bert import BertConfig, BertForMaskedLM, BertModel
from paperzoo.llm.models.gpt import GPT
from paperzoo.llm.models.hf_io import hf_state
from paperzoo.llm.prompting import (
    PromptTemplate,
    class_prototypes,
    classify_by_embedding,
    embed_texts,
    sample_shots,
    score_label_words_causal,
    score_label_words_mlm,
)

METHODS = ("embedding", "mlm", "causal")
DEFAULT_TEMPLATES = {"mlm": "{text} It was {label}.", "causal": "Review: {text}\nSentiment: {label}"}
"""LM-BFF's template for SST-2 (Gao et al. 2021, Table 1) and a GPT-style "field: value" prompt."""
DEFAULT_LABEL_WORDS = {"mlm": [["terrible"], ["great"]], "causal": [["negative"], ["positive"]]}
"""Per class (0 rotten, 1 fresh): LM-BFF's SST-2 label words for a masked LM, the sentiment names for a causal LM."""
DEFAULT_LABEL_DESCRIPTIONS = ["a negative movie review", "a positive movie review"]
DEFAULT_SEPARATORS = {"mlm": " ", "causal": "\n\n"}
GPT2_ENDOFTEXT = 50256


class ZeroShotClassifierModule(PaperzooModule):
    """Classify texts with a pretrained model and no training; the test (or validation) logs its accuracy.

    Three methods (see :mod:`paperzoo.llm.prompting` for the papers):

    - ``"embedding"``: the cosine similarity of a BERT sentence encoder's mean-pooled embedding of the text with each
      class's description (zero-shot), or with each class's prototype, the mean embedding of ``shots`` labelled
      training snippets (few-shot). The default is all-MiniLM-L6-v2, a sentence encoder trained for this similarity.
    - ``"mlm"``: a masked LM's log-probability of each class's label word at the ``[MASK]`` of ``template``
      (PET / LM-BFF); with ``shots``, that many filled-in training snippets per class come first (LM-BFF's
      demonstrations). It needs a model with its MLM head: all-MiniLM-L6-v2 is a bare encoder and has none.
    - ``"causal"``: a GPT-2's log-probability of each class's label word continuing ``template``'s prompt (Radford
      et al. 2019); with ``shots``, that many labelled training snippets per class come first, in context (Brown
      et al. 2020).

    Few-shot examples are drawn from the DataModule's training split (``shot_seed``), never from the snippets scored.
    The module takes the texts of each evaluation batch from the DataModule's ``val_set``/``test_set`` (datasets with
    ``.texts`` and ``.labels``, as :class:`~paperzoo.llm.data.sentiment.RottenTomatoesTextDataModule`'s) in loader
    order, and checks every batch's labels against them. It has no trainable parameters: run ``paperzoo test
    --config ...``, or ``paperzoo run`` with ``trainer.max_epochs: 0`` (fit does nothing, then the test runs).

    Logs ``{val,test}/acc`` and, when the DataModule names its ``majority_class``, ``{val,test}/majority_acc``.

    Args:
        method: ``"embedding"``, ``"mlm"`` or ``"causal"``.
        pretrained: ``"minilm"`` (all-MiniLM-L6-v2, ``embedding`` only); a Hugging Face model folder (a BERT for
            ``embedding``, a ``BertForMaskedLM`` for ``mlm``, a GPT-2 for ``causal``); or, for ``embedding`` and
            ``mlm``, a :class:`~paperzoo.llm.modules.masked_lm.MaskedLMModule` checkpoint (``.ckpt``; a glob
            pattern such as ``runs/bert-mlm-shakespeare/version_*/checkpoints/last.ckpt`` takes the newest match).
        tokenizer: for BERT, a folder or ``vocab.txt`` (``None``: the model folder's, or the checkpoint's); for GPT-2,
            a ``gpt2.tiktoken`` file (``None``: the one ``openai-whisper`` ships).
        template: the prompt of ``mlm`` and ``causal``, with a ``{text}`` field and, last, a ``{label}`` field (for
            ``mlm`` it becomes ``[MASK]``); ``None`` for :data:`DEFAULT_TEMPLATES`.
        label_words: per class, its label word or words; ``None`` for :data:`DEFAULT_LABEL_WORDS`.
        label_descriptions: per class, its description or descriptions (zero-shot ``embedding``); ``None`` for
            :data:`DEFAULT_LABEL_DESCRIPTIONS`.
        shots: labelled training examples per class; 0 for zero-shot.
        shot_seed: seed of the draw of those examples.
        reduce: how a class of several label words or descriptions is scored (``"max"`` or ``"mean"``, see
            :func:`~paperzoo.llm.prompting.score_label_words_mlm`).
        separator: between demonstrations; ``None`` for a space (``mlm``) or a blank line (``causal``).
        max_length: the most tokens of a model input; ``None`` for 256 (``embedding``, all-MiniLM-L6-v2's) or the
            model's positions.
        forward_batch_size: model inputs per forward pass inside a batch (named apart from the data's batch_size).
    """

    def __init__(
        self,
        method: Literal["embedding", "mlm", "causal"] = "embedding",
        pretrained: str = "minilm",
        tokenizer: str | None = None,
        template: str | None = None,
        label_words: Sequence[str | Sequence[str]] | None = None,
        label_descriptions: Sequence[str | Sequence[str]] | None = None,
        shots: int = 0,
        shot_seed: int = 0,
        reduce: Literal["max", "mean"] = "max",
        separator: str | None = None,
        max_length: int | None = None,
        forward_batch_size: int = 64,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if method not in METHODS:
            raise ConfigError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
        if shots < 0 or forward_batch_size < 1:
            raise ConfigError(f"shots must be >= 0 and forward_batch_size >= 1, got {shots} and {forward_batch_size}")
        if reduce not in ("max", "mean"):
            raise ConfigError(f"reduce must be 'max' or 'mean', not {reduce!r}")
        self.method = method
        self.shots = shots
        self.shot_seed = shot_seed
        self.reduce = reduce
        self.forward_batch_size = forward_batch_size
        self.max_length = 256 if max_length is None and method == "embedding" else max_length
        self.separator = DEFAULT_SEPARATORS.get(method, " ") if separator is None else separator
        self.template = PromptTemplate(template or DEFAULT_TEMPLATES.get(method, "{text} {label}"))
        if method == "embedding":
            chosen = label_descriptions or DEFAULT_LABEL_DESCRIPTIONS
        else:
            chosen = label_words or DEFAULT_LABEL_WORDS[method]
            if "text" not in self.template.fields:
                raise ConfigError(f"the template {self.template.template!r} has no {{text}} field for the text")
        self.classes = [[entry] if isinstance(entry, str) else list(entry) for entry in chosen]
        if len(self.classes) < 2 or any(not c for c in self.classes):
            raise ConfigError("give at least two classes, each with at least one label word or description")
        self.num_labels = len(self.classes)
        self.network, self.tokenizer = self._load(method, pretrained, tokenizer)
        for parameter in self.network.parameters():
            parameter.requires_grad_(False)
        self.network.eval()
        # Few-shot state, set by set_support: the prototypes (embedding) or the demonstrations (mlm, causal).
        self.prototypes: Tensor | None = None
        self.demonstrations: list[dict[str, str]] = []
        self.val_acc = torchmetrics.Accuracy(task="multiclass", num_classes=self.num_labels)
        self.test_acc = torchmetrics.Accuracy(task="multiclass", num_classes=self.num_labels)
        self.val_majority = torchmetrics.MeanMetric()
        self.test_majority = torchmetrics.MeanMetric()
        self.majority_class: int | None = None
        self._support: tuple[list[str], list[int]] | None = None
        self._offset = 0

    # ------------------------------------------------------------------ the model

    @staticmethod
    def _load(method: str, pretrained: str, tokenizer: str | None) -> tuple[nn.Module, Any]:
        if method == "causal":
            if pretrained == "minilm" or str(pretrained).endswith(".ckpt"):
                raise ConfigError(
                    "method='causal' needs a GPT-2 model folder as pretrained (e.g. one written by GPT.save_pretrained)"
                )
            return GPT.from_hf(pretrained), GPT2Tokenizer.from_tiktoken_file(tokenizer)
        if str(pretrained).endswith(".ckpt"):
            from paperzoo.llm.modules.masked_lm import MaskedLMModule

            checkpoint = newest_file(pretrained)
            if checkpoint is None:
                raise DatasetNotFoundError(
                    f"no checkpoint matches {pretrained}: train the masked LM first (`paperzoo run "
                    "bert-mlm-shakespeare` writes runs/bert-mlm-shakespeare/version_*/checkpoints/last.ckpt)"
                )
            module = MaskedLMModule.load_from_checkpoint(checkpoint, map_location="cpu")
            words = module.tokenizer if tokenizer is None else load_wordpiece(tokenizer)
            return (module.network.bert if method == "embedding" else module.network), words
        folder = minilm_path() if pretrained == "minilm" else Path(pretrained)
        words = load_wordpiece(folder if tokenizer is None else tokenizer)
        config, state = hf_state(folder)
        if method == "embedding":
            encoder = BertModel(BertConfig.from_hf_dict(config), add_pooling_layer=False)
            encoder.load_hf_state_dict(state)
            return encoder, words
        model = BertForMaskedLM(BertConfig.from_hf_dict(config))
        if any(name.startswith("lm_head.") for name in model.load_hf_state_dict(state)):
            raise ConfigError(
                f"{folder} has no masked-LM head (all-MiniLM-L6-v2 is a bare sentence encoder), so method='mlm' "
                "cannot use it: pass a BertForMaskedLM folder (MaskedLMModule.export_pretrained writes one) or a "
                "MaskedLMModule checkpoint (.ckpt), or use method='embedding'"
            )
        return model, words

    def configure_optimizers(self) -> None:
        """Nothing trains."""
        return None

    def training_step(self, batch: Any, batch_idx: int) -> None:
        """Nothing trains: a fit (``trainer.max_epochs: 0`` in the configs, or a ``fast_dev_run``) skips every
        batch, and the test measures."""
        return None

    # ------------------------------------------------------------------ classifying

    def set_support(self, texts: Sequence[str], labels: Sequence[int]) -> None:
        """Make the classifier few-shot with these labelled examples: the class prototypes (``embedding``) or the
        demonstrations, labelled with each class's first label word (``mlm``, ``causal``)."""
        if self.method == "embedding":
            embeddings = embed_texts(self.network, self.tokenizer, texts, self.forward_batch_size, self.max_length)
            self.prototypes = class_prototypes(embeddings, list(labels), self.num_labels)
        else:
            field = self.template.label_field
            self.demonstrations = [
                {"text": text, field: self.classes[label][0]} for text, label in zip(texts, labels, strict=True)
            ]

    @torch.no_grad()
    def classify(self, texts: Sequence[str]) -> Tensor:
        """Class scores ``(N, C)`` of the texts (their argmax is the prediction)."""
        texts = list(texts)
        if self.method == "embedding":
            if self.prototypes is None:
                return classify_by_embedding(
                    self.network, self.tokenizer, texts, self.classes, self.forward_batch_size, self.max_length
                )
            embeddings = embed_texts(self.network, self.tokenizer, texts, self.forward_batch_size, self.max_length)
            return embeddings @ self.prototypes.to(embeddings.device).T
        if self.method == "mlm":
            return score_label_words_mlm(
                self.network,
                self.tokenizer,
                texts,
                self.template,
                self.classes,
                self.demonstrations,
                self.separator,
                self.reduce,
                max_length=self.max_length,
                batch_size=self.forward_batch_size,
            )
        gpt2_vocab = self.network.config.vocab_size == GPT2_ENDOFTEXT + 1
        return score_label_words_causal(
            self.network,
            lambda text: self.tokenizer.encode(text, disallowed_special=()),
            texts,
            self.template,
            self.classes,
            self.demonstrations,
            self.separator,
            self.reduce,
            bos_token_id=GPT2_ENDOFTEXT if gpt2_vocab else None,
            max_length=self.max_length,
            batch_size=self.forward_batch_size,
        )

    def forward(self, texts: Sequence[str]) -> Tensor:
        return self.classify(texts)

    # ------------------------------------------------------------------ evaluation

    def _datamodule(self) -> Any:
        return getattr(self.trainer, "datamodule", None) if self._trainer is not None else None

    def setup(self, stage: str) -> None:
        datamodule = self._datamodule()
        classes = getattr(datamodule, "num_classes", None)
        if classes is not None and int(classes) != self.num_labels:
            raise ConfigError(
                f"the DataModule has {classes} classes but the module {self.num_labels} label words or descriptions; "
                "give one entry per class, in class order"
            )
        majority = getattr(datamodule, "majority_class", None)
        self.majority_class = None if majority is None else int(majority)
        if self.shots and self.prototypes is None and not self.demonstrations:
            train = getattr(datamodule, "train_set", None)
            if train is None or not hasattr(train, "texts"):
                raise ConfigError(
                    f"shots={self.shots} draws examples from the DataModule's train_set (with .texts and .labels), "
                    "which this DataModule lacks; use RottenTomatoesTextDataModule or shots=0"
                )
            picked = sample_shots(train.labels, self.shots, self.shot_seed, self.num_labels)
            self._support = ([train.texts[i] for i in picked], [train.labels[i] for i in picked])

    def _prepare(self) -> None:
        """Compute the few-shot support on the model's device, once."""
        self._offset = 0
        if self._support is not None:
            self.set_support(*self._support)
            self._support = None

    def on_validation_epoch_start(self) -> None:
        self._prepare()

    def on_test_epoch_start(self) -> None:
        self._prepare()

    def _batch_texts(self, batch: dict[str, Tensor], stage: str) -> list[str]:
        dataset = getattr(self._datamodule(), f"{stage}_set", None)
        if dataset is None or not hasattr(dataset, "texts"):
            raise ConfigError(
                f"ZeroShotClassifierModule reads the raw texts from the DataModule's {stage}_set.texts, which this "
                "DataModule lacks; use RottenTomatoesTextDataModule"
            )
        size = len(batch["labels"])
        start, self._offset = self._offset, self._offset + size
        if list(dataset.labels[start : start + size]) != batch["labels"].tolist():
            raise ConfigError(
                f"the {stage} batches are not the DataModule's {stage}_set in order (their labels differ from "
                f"items {start}..{start + size - 1}); the {stage} loader must not shuffle"
            )
        return list(dataset.texts[start : start + size])

    def _evaluate(self, batch: dict[str, Tensor], stage: str) -> None:
        labels = batch["labels"]
        predictions = self.classify(self._batch_texts(batch, stage)).argmax(dim=1).to(labels.device)
        accuracy = self.val_acc if stage == "val" else self.test_acc
        accuracy(predictions, labels)
        self.log(f"{stage}/acc", accuracy, prog_bar=True, batch_size=len(labels))
        if self.majority_class is not None:
            baseline = self.val_majority if stage == "val" else self.test_majority
            baseline(labels.eq(self.majority_class).float())
            self.log(f"{stage}/majority_acc", baseline, batch_size=len(labels))

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")
