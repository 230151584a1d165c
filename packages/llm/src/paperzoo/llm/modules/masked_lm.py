"""Pre-training a BERT with the masked-language-model task of Devlin et al. 2019, and filling in ``[MASK]`` tokens."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor

from paperzoo.core.errors import ConfigError
from paperzoo.core.modules import PaperzooModule
from paperzoo.llm.data.sentiment import minilm_path
from paperzoo.llm.data.text import IGNORE_INDEX, load_wordpiece
from paperzoo.llm.data.wordpiece import WordPieceTokenizer
from paperzoo.llm.models.bert import BertForMaskedLM
from paperzoo.llm.modules.language_model import decay_groups
from paperzoo.llm.registry import create_model

FILL_MASK_PROMPTS = (
    "To be, or not to [MASK]: that is the question.",
    "O Romeo, Romeo! wherefore art [MASK] Romeo?",
    "All the world's a [MASK], and all the men and women merely players.",
    "Now is the winter of our [MASK] made glorious summer by this sun of York.",
    "A horse! a horse! my [MASK] for a horse!",
    "Friends, Romans, countrymen, lend me your [MASK].",
)
"""Famous lines with a word masked: the qualitative table written at the end of the test."""


def _default_optimizer(params) -> torch.optim.Optimizer:
    # Devlin et al. 2019, appendix A.2: Adam, lr 1e-4, betas (0.9, 0.999), L2 weight decay 0.01.
    return torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), weight_decay=0.01)


class MaskedLMModule(PaperzooModule):
    """Masked-language-model pre-training of a BERT (Devlin et al. 2019, "BERT: Pre-training of Deep Bidirectional
    Transformers for Language Understanding", section 3.1, task 1).

    The loss is the mean cross-entropy of the original token at the chosen positions (labels other than -100) only;
    the MLM head runs on those positions alone, which spares the vocabulary-sized projection at the 85% of positions
    that are not predicted. Logs ``train/loss`` each step and, over each validation and test epoch,
    ``{val,test}/loss`` (nats per predicted token), ``{val,test}/mlm_acc`` (the share of predicted tokens whose most
    likely token is the original) and ``{val,test}/perplexity`` (``exp`` of the loss). The test also writes the
    model's guesses for ``fill_mask_prompts`` to ``<run>/fill_mask.md``.

    **The network and its vocabulary.** With ``pretrained`` unset, ``network`` names a registered BERT of
    ``paperzoo.llm`` built with ``head="mlm"`` and the tokenizer's vocabulary size and ``[PAD]`` id;
    ``network_kwargs`` override its configuration (not ``vocab_size``). With ``pretrained``, the weights of a
    Hugging Face BERT folder (a ``BertForMaskedLM``, or a bare encoder such as all-MiniLM-L6-v2, whose MLM head then
    starts fresh) continue training. The tokenizer must be the DataModule's; :meth:`export_pretrained` writes the
    trained model and its vocabulary as a Hugging Face folder (for :class:`~paperzoo.llm.modules.zero_shot.
    ZeroShotClassifierModule`'s ``method="mlm"``, or ``transformers``).

    Args:
        network: a registered BERT (``paperzoo.llm.list_models()``), used when ``pretrained`` is ``None``.
        network_kwargs: :class:`~paperzoo.llm.models.bert.BertConfig` overrides (sizes of a small BERT, dropout).
        pretrained: a Hugging Face BERT folder, ``"minilm"`` for all-MiniLM-L6-v2's encoder, or ``None``.
        tokenizer: a BERT folder or ``vocab.txt``; ``None`` for ``pretrained``'s own vocabulary when it has one, else
            all-MiniLM-L6-v2's (BERT's uncased vocabulary). The DataModule must use the same.
        top_k: guesses per ``[MASK]`` in the fill-mask table.
        fill_mask_prompts: texts with ``[MASK]`` tokens for the table; empty for none.
        optimizer: builds the optimiser from two parameter groups (no weight decay on biases and LayerNorms, as in
            BERT's code); default AdamW(1e-4, betas (0.9, 0.999), weight decay 0.01), the paper's.
        lr_scheduler: e.g. ``paperzoo.core.schedules.LinearWarmupDecay`` (the paper: 10,000 warm-up steps, then a
            linear decay).
        scheduler_interval: ``"step"`` or ``"epoch"``.
    """

    def __init__(
        self,
        network: str = "bert_base",
        network_kwargs: dict[str, Any] | None = None,
        pretrained: str | None = None,
        tokenizer: str | None = None,
        top_k: int = 5,
        fill_mask_prompts: Sequence[str] = FILL_MASK_PROMPTS,
        optimizer: OptimizerCallable = _default_optimizer,
        lr_scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: Literal["step", "epoch"] = "step",
    ) -> None:
        super().__init__(optimizer, lr_scheduler, scheduler_interval)
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        network_kwargs = dict(network_kwargs or {})
        if "vocab_size" in network_kwargs:
            raise ConfigError("network_kwargs sets vocab_size, which the module takes from the tokenizer; remove it")
        if top_k < 1:
            raise ConfigError(f"top_k is {top_k}; pass the number of guesses to show per [MASK], at least 1")
        folder = minilm_path() if pretrained == "minilm" else None if pretrained is None else Path(pretrained)
        if tokenizer is None and folder is not None and (folder / "vocab.txt").is_file():
            tokenizer = str(folder)
        self.tokenizer: WordPieceTokenizer = load_wordpiece(tokenizer)
        if self.tokenizer.mask_token_id is None:
            raise ConfigError("the tokenizer has no [MASK] token, which masked-LM training needs; use BERT's vocab")
        if folder is None:
            net = create_model(
                network,
                head="mlm",
                vocab_size=self.tokenizer.vocab_size,
                pad_token_id=self.tokenizer.pad_token_id,
                **network_kwargs,
            )
        else:
            net = BertForMaskedLM.from_hf(folder, **network_kwargs)
        if not isinstance(net, BertForMaskedLM):
            raise ConfigError(f"network {network!r} did not build a BertForMaskedLM; name a registered BERT")
        if net.config.vocab_size != self.tokenizer.vocab_size:
            raise ConfigError(
                f"the model has {net.config.vocab_size} tokens but the tokenizer {self.tokenizer.vocab_size}; pass the "
                "model's own vocab.txt as tokenizer"
            )
        self.network: BertForMaskedLM = net
        self.top_k = top_k
        self.fill_mask_prompts = list(fill_mask_prompts)
        self._sums: dict[str, Tensor] = {}  # per stage: summed loss, correct guesses and predicted tokens

    # ------------------------------------------------------------------ the network and its vocabulary

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        theirs = getattr(datamodule, "tokenizer", None)
        if isinstance(theirs, WordPieceTokenizer) and theirs.vocab != self.tokenizer.vocab:
            raise ConfigError(
                "the DataModule's tokenizer is not the model's (their vocabularies differ); give both the same "
                "tokenizer folder"
            )

    def optimizer_parameters(self) -> list[dict[str, Any]]:
        return decay_groups(self.network)

    def export_pretrained(self, folder: str | Path) -> Path:
        """Write the network and its vocabulary as a Hugging Face ``BertForMaskedLM`` folder (``config.json``,
        ``model.safetensors``, ``vocab.txt``, ``tokenizer_config.json``); returns the folder."""
        folder = self.network.save_pretrained(folder)
        self.tokenizer.save(folder)
        return folder

    # ------------------------------------------------------------------ training and evaluation

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor | None = None, token_type_ids: Tensor | None = None
    ) -> Tensor:
        """Logits over the vocabulary at every position ``(B, T, V)``."""
        return self.network(input_ids, attention_mask, token_type_ids)

    def masked_logits(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """``(logits, targets)`` at the predicted positions of a batch: ``(N, V)`` and ``(N,)``, N = the number of
        labels other than -100."""
        hidden = self.network.bert(
            batch["input_ids"], batch.get("attention_mask"), batch.get("token_type_ids")
        ).last_hidden_state  # (B, T, H)
        chosen = batch["labels"] != IGNORE_INDEX  # (B, T)
        return self.network.lm_head(hidden[chosen]), batch["labels"][chosen]  # (N, V), (N,)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        logits, targets = self.masked_logits(batch)
        loss = F.cross_entropy(logits.float(), targets)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def _evaluate(self, batch: dict[str, Tensor], stage: str) -> None:
        logits, targets = self.masked_logits(batch)
        sums = torch.stack(
            (
                F.cross_entropy(logits.float(), targets, reduction="sum"),
                (logits.argmax(dim=-1) == targets).sum().float(),
                torch.tensor(float(targets.numel()), device=logits.device),
            )
        )
        self._sums[stage] = sums + self._sums[stage] if stage in self._sums else sums

    def _log_epoch(self, stage: str) -> None:
        sums = self._sums.pop(stage, None)
        if sums is None:
            return
        # Token-weighted over every process: sum the sums, then divide.
        total, hits, count = self.trainer.strategy.reduce(sums, reduce_op="sum").tolist()
        if count:
            loss = total / count
            self.log(f"{stage}/loss", loss, prog_bar=stage == "val")
            self.log(f"{stage}/mlm_acc", hits / count, prog_bar=stage == "val")
            self.log(f"{stage}/perplexity", math.exp(min(loss, 700.0)))

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")
        self._write_fill_mask_table()

    # ------------------------------------------------------------------ filling in masks

    @torch.no_grad()
    def fill_mask(self, texts: str | Sequence[str], top_k: int | None = None) -> list[list[list[tuple[str, float]]]]:
        """The ``top_k`` most likely tokens at each ``[MASK]`` of each text, with their probabilities.

        Returns:
            per text, per ``[MASK]`` (left to right), a list of ``(token, probability)``, the most likely first.

        Raises:
            ConfigError: a text has no ``[MASK]``, or is longer than the model's positions.
        """
        texts = [texts] if isinstance(texts, str) else list(texts)
        top_k = self.top_k if top_k is None else top_k
        mask_id = self.tokenizer.mask_token_id
        for text in texts:
            if self.tokenizer.mask_token not in text:
                raise ConfigError(f"{text!r} has no {self.tokenizer.mask_token}: put one where a word is to be guessed")
        batch = {k: v.to(self.device) for k, v in self.tokenizer(texts).items()}
        was_training = self.network.training
        self.network.eval()
        try:
            logits = self.network(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])  # (B, T, V)
        finally:
            self.network.train(was_training)
        probs = logits.float().softmax(dim=-1)
        out = []
        for row, ids in enumerate(batch["input_ids"]):
            guesses = []
            for position in (ids == mask_id).nonzero().flatten().tolist():
                p, index = probs[row, position].topk(top_k)
                tokens = self.tokenizer.convert_ids_to_tokens(index)
                guesses.append([(t, float(q)) for t, q in zip(tokens, p.tolist(), strict=True)])
            out.append(guesses)
        return out

    def fill_mask_table(self, texts: Sequence[str] | None = None, top_k: int | None = None) -> str:
        """A Markdown table of :meth:`fill_mask`'s guesses (``fill_mask_prompts`` by default), one row per text."""
        texts = self.fill_mask_prompts if texts is None else list(texts)
        lines = ["| text | guesses for [MASK] (probability) |", "|---|---|"]
        for text, guesses in zip(texts, self.fill_mask(texts, top_k), strict=True):
            shown = " / ".join(", ".join(f"{t} ({p:.3f})" for t, p in g) for g in guesses)
            cells = [cell.replace("|", r"\|") for cell in (text, shown)]
            lines.append(f"| {cells[0]} | {cells[1]} |")
        return "\n".join(lines) + "\n"

    def _write_fill_mask_table(self) -> Path | None:
        if not self.fill_mask_prompts or self._trainer is None or not self.trainer.is_global_zero:
            return None
        table = self.fill_mask_table()
        rank_zero_info(f"fill-mask guesses of the model:\n{table}")
        if self.trainer.log_dir is None:
            return None
        path = Path(self.trainer.log_dir) / "fill_mask.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(table, encoding="utf-8")
        return path
