"""Training a causal language model: next-token cross-entropy, weight decay on matrices only, samples as text."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from paperzoo.core.errors import ConfigError
from paperzoo.core.modules import PaperzooModule
from paperzoo.llm.data.shakespeare import CharVocabulary
from paperzoo.llm.registry import create_model


def _default_optimizer(params) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)


def decay_groups(module: nn.Module) -> list[dict[str, Any]]:
    """Two parameter groups, GPT-2/nanoGPT style: matrices (linear and embedding weights) with the optimiser's
    weight decay, and vectors (biases, LayerNorm gains) without any. Frozen parameters are left out."""
    decay = [p for p in module.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in module.parameters() if p.requires_grad and p.dim() < 2]
    return [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]


class CausalLMModule(PaperzooModule):
    """Next-character (or next-token) prediction with a GPT (Radford et al. 2019), the way nanoGPT trains it.

    The loss is the mean cross-entropy of every position's next token, in nats (nanoGPT's ``loss``); the module also
    logs bits per character (``loss / ln 2``), the unit of the character-level literature. Each validation writes a
    text sample (``sample_length`` characters from ``prompt``, temperature and top-k as nanoGPT's ``sample.py``) to
    ``<run>/samples/epoch<N>.txt``, and the test writes ``samples/test.txt``, so the run shows what the loss means.

    **The network and its vocabulary.** ``network`` names a registered GPT of ``paperzoo.llm``;
    ``network_kwargs`` overrides its configuration, except ``vocab_size``, which comes from the DataModule's
    vocabulary. The module builds the network in ``setup`` and keeps the vocabulary in its checkpoints, so a loaded
    checkpoint generates on its own (:meth:`generate_text`).

    Args:
        network: a registered model name (``paperzoo.llm.list_models()``), a GPT.
        network_kwargs: configuration overrides (``block_size``, ``n_layer``, ``dropout`` ...).
        sample_length: characters (tokens) generated for each sample; 0 for none.
        prompt: the text the samples start from.
        temperature: sampling temperature of the samples.
        top_k: keep only the ``top_k`` most likely tokens when sampling; ``None`` for all.
        sample_seed: seed of the samples' generator (the same seed every epoch, so samples are comparable).
        optimizer: builds the optimiser from two parameter groups (see :func:`decay_groups`); default AdamW(1e-3,
            betas (0.9, 0.99), weight decay 0.1), nanoGPT's ``shakespeare_char`` settings.
        lr_scheduler: e.g. ``paperzoo.core.schedules.CosineWithWarmup`` (nanoGPT: 100 warm-up steps, decay to 0.1x).
        scheduler_interval: ``"step"`` or ``"epoch"``.
    """

    def __init__(
        self,
        network: str = "gpt_shakespeare_char",
        network_kwargs: dict[str, Any] | None = None,
        sample_length: int = 500,
        prompt: str = "\n",
        temperature: float = 0.8,
        top_k: int | None = 200,
        sample_seed: int = 1337,
        optimizer: OptimizerCallable = _default_optimizer,
        lr_scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: Literal["step", "epoch"] = "step",
    ) -> None:
        super().__init__(optimizer, lr_scheduler, scheduler_interval)
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        network_kwargs = dict(network_kwargs or {})
        if "vocab_size" in network_kwargs:
            raise ConfigError(
                "network_kwargs sets vocab_size, which the module takes from the DataModule's vocabulary; remove it"
            )
        if sample_length < 0 or temperature < 0:
            raise ConfigError(f"sample_length and temperature must be >= 0, got {sample_length} and {temperature}")
        self.network_name = network
        self.network_kwargs = network_kwargs
        self.sample_length = sample_length
        self.prompt = prompt
        self.temperature = temperature
        self.top_k = top_k
        self.sample_seed = sample_seed
        self.network: nn.Module | None = None
        self.vocab: CharVocabulary | None = None
        self._sums: dict[str, list[float]] = {}

    # ------------------------------------------------------------------ the network and its vocabulary

    def build_network(self, vocab: CharVocabulary) -> nn.Module:
        """Build ``network`` for ``vocab`` and keep the vocabulary for sampling."""
        self.vocab = vocab
        self.network = create_model(self.network_name, vocab_size=vocab.vocab_size, **self.network_kwargs)
        return self.network

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        vocab = getattr(datamodule, "vocab", None)
        if vocab is None:
            if self.network is not None:
                return
            raise ConfigError(
                "CausalLMModule takes its vocabulary from the DataModule, and this one has none; use a DataModule "
                "with a `vocab` (paperzoo.llm.ShakespeareCharDataModule) or load a checkpoint"
            )
        if self.network is None:
            self.build_network(vocab)
        elif vocab != self.vocab:
            raise ConfigError(
                f"the model's vocabulary ({self.vocab.vocab_size} characters) is not the DataModule's "
                f"({vocab.vocab_size}); train and test on the same corpus"
            )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["vocabulary"] = self.vocab.to_json() if self.vocab is not None else None

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        saved = checkpoint.get("vocabulary")
        if saved is None:
            raise ConfigError("the checkpoint has no vocabulary: it was not written by CausalLMModule")
        vocab = CharVocabulary.from_json(saved)
        if self.network is None:
            self.build_network(vocab)
        elif vocab != self.vocab:
            raise ConfigError("the checkpoint's vocabulary differs from the model's; train and test on the same corpus")

    def _require_network(self) -> nn.Module:
        if self.network is None:
            raise ConfigError(
                "the network is not built yet: it is sized by the vocabulary, so fit or test the module with a "
                "DataModule, or load it with CausalLMModule.load_from_checkpoint"
            )
        return self.network

    # ------------------------------------------------------------------ training and evaluation

    def forward(self, x: Tensor) -> Tensor:
        return self._require_network()(x)

    def loss(self, x: Tensor, y: Tensor) -> Tensor:
        logits = self(x)  # (B, T, V)
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))

    def optimizer_parameters(self) -> list[dict[str, Any]]:
        return decay_groups(self._require_network())

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss = self.loss(*batch)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def _evaluate(self, batch: tuple[Tensor, Tensor], stage: str) -> None:
        loss = self.loss(*batch)
        sums = self._sums.setdefault(stage, [0.0, 0])
        sums[0] += float(loss) * batch[1].numel()
        sums[1] += batch[1].numel()

    def _log_epoch(self, stage: str) -> None:
        total, count = self._sums.pop(stage, [0.0, 0])
        if count:
            loss = total / count
            self.log(f"{stage}/loss", loss, prog_bar=stage == "val", sync_dist=True)
            self.log(f"{stage}/bpc", loss / math.log(2), sync_dist=True)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")
        if not self.trainer.sanity_checking:
            self._write_sample(f"epoch{self.current_epoch}")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")
        self._write_sample("test", echo=True)

    # ------------------------------------------------------------------ generation

    @torch.no_grad()
    def generate_text(
        self,
        prompt: str | None = None,
        length: int | None = None,
        temperature: float | None = None,
        top_k: int | None = -1,
        seed: int | None = None,
    ) -> str:
        """A continuation of ``prompt`` (the defaults are the module's sample settings; ``top_k=-1`` means the
        module's ``top_k``). The model's mode (train or eval) is restored afterwards."""
        network = self._require_network()
        prompt = self.prompt if prompt is None else prompt
        length = self.sample_length if length is None else length
        temperature = self.temperature if temperature is None else temperature
        top_k = self.top_k if top_k == -1 else top_k
        ids = torch.tensor([self.vocab.encode(prompt or "\n")], device=self.device)
        generator = torch.Generator(device=self.device).manual_seed(self.sample_seed if seed is None else seed)
        was_training = network.training
        network.eval()
        try:
            out = network.generate(
                ids,
                max_new_tokens=length,
                temperature=temperature,
                top_k=top_k,
                do_sample=temperature > 0,
                generator=generator,
            )
        finally:
            network.train(was_training)
        return self.vocab.decode(out[0, ids.size(1) :])

    def _write_sample(self, name: str, echo: bool = False) -> Path | None:
        if self.sample_length == 0 or self.trainer.log_dir is None or not self.trainer.is_global_zero:
            return None
        text = self.generate_text()
        folder = Path(self.trainer.log_dir) / "samples"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.txt"
        path.write_text(self.prompt + text, encoding="utf-8")
        if echo:
            print(f"sample ({self.sample_length} characters, temperature {self.temperature}, top-k {self.top_k}):")
            print(self.prompt + text)
        return path
