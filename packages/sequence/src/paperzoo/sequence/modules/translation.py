r"""Neural machine translation: a Transformer or an RNN encoder-decoder trained on parallel text, scored with BLEU.

The training protocol of Vaswani et al. 2017, "Attention Is All You Need" (section 5: label-smoothed cross-entropy,
Adam with the inverse-square-root warm-up, beam search with the GNMT length penalty), which also serves the recurrent
models of Bahdanau et al. 2015 and Luong et al. 2015 (with scheduled sampling, Bengio et al. 2015, for those).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_info
from sacrebleu.metrics import BLEU, CHRF
from torch import Tensor, nn
from torchmetrics import MeanMetric

from paperzoo.core.errors import CheckpointError, ConfigError
from paperzoo.core.modules.base import PaperzooModule, _default_optimizer
from paperzoo.sequence.data.parallel import TranslationBatch, restore_order
from paperzoo.sequence.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, SubwordTokenizer
from paperzoo.sequence.decoding import beam_search, greedy_decode, seq2seq_step_fn, transformer_step_fn
from paperzoo.sequence.models.seq2seq import (
    Seq2Seq,
    exponential_schedule,
    inverse_sigmoid_schedule,
    linear_schedule,
)
from paperzoo.sequence.models.transformer import Transformer
from paperzoo.sequence.registry import create_model, list_models

TeacherForcing = Literal["constant", "inverse_sigmoid", "linear", "exponential"]

_FROM_DATA = ("src_vocab_size", "tgt_vocab_size", "pad_id", "bos_id", "eos_id")
"""Network arguments the module fills in from the vocabularies; a config may not set them."""

_CHECKPOINT_KEY = "translation_tokenizers"


class TranslationModule(PaperzooModule):
    r"""Sequence-to-sequence translation (Vaswani et al. 2017; Bahdanau et al. 2015; Luong et al. 2015).

    **The network and its vocabulary sizes.** ``network`` names a registered model of ``paperzoo.sequence``
    (``transformer_base``, ``seq2seq_bahdanau`` ...; see ``list_models()``) and ``network_kwargs`` its architecture
    arguments. The module builds it in :meth:`setup`, once the DataModule has trained or loaded its subword
    vocabularies, with ``src_vocab_size`` and ``tgt_vocab_size`` set to their real sizes and the special-token ids set
    to theirs. A BPE vocabulary can come out smaller than the ``vocab_size`` asked for, and its size is known only
    after training it, so the config cannot state it; and ``paperzoo``'s CLI has no per-experiment
    ``link_arguments``, whose ``apply_on="instantiate"`` form would in any case read the size before ``setup`` trains
    the vocabulary. Building the network from a name late is what lets one YAML run on any corpus.

    **Checkpoints translate on their own.** A checkpoint stores both tokenizers (their JSON) next to the weights;
    :meth:`on_load_checkpoint` rebuilds the network from them before the weights are loaded, so
    ``TranslationModule.load_from_checkpoint(path).translate(["Guten Morgen."])`` needs no data. When a trainer
    restores a checkpoint into a module already built from a DataModule, the two vocabularies must be the same.

    **Loss.** Cross-entropy of every target token against ``tgt_out``, padding ignored, with label smoothing
    (Szegedy et al. 2016; Vaswani et al. section 5.4 use 0.1), averaged over the batch's target tokens: torch's
    ``F.cross_entropy(label_smoothing=..., ignore_index=pad)``. ``{train,val,test}/loss`` is that smoothed loss per
    token, the quantity minimised; ``{val,test}/nll_loss`` is the unsmoothed negative log-likelihood per token and
    ``{val,test}/ppl`` its exponential, the perplexity, both over all tokens of the epoch.

    **Teacher forcing.** The Transformer is always trained with the gold prefix. A :class:`Seq2Seq` network can
    be fed its own previous prediction instead, with probability ``1 - ratio`` at each step (scheduled sampling,
    Bengio et al. 2015): ``teacher_forcing`` picks a constant ratio or one of the paper's decays over training
    steps, logged as ``train/teacher_forcing``. Validation and test losses are always teacher-forced.

    **BLEU.** Every validation epoch decodes the validation set greedily (cheap) and logs ``val/bleu``. The test
    decodes with beam search (``beam_size``, GNMT length penalty ``length_penalty``), detokenises with the target
    tokenizer and scores the detokenised text against the references as read, with sacreBLEU's
    ``BLEU()`` and ``CHRF()`` (Post 2018; 13a tokenisation; lowercased if the DataModule lowercases): ``test/bleu`` and
    ``test/chrf``. It writes ``<log dir>/test_hypotheses.txt`` (one hypothesis per tested line, in the test file's
    line order) and ``<log dir>/test_scores.json`` (scores and sacreBLEU's signatures), reports the signatures on
    the console and gives them to every logger as hyper-parameters. A hypothesis is at most
    ``max_len_a * S + max_len_b`` tokens long for a batch whose longest source has ``S`` tokens.

    **Attention maps.** With ``log_attention_maps = n`` the test draws the attention of the first ``n`` lines of the
    test file as heat maps, the source subwords along x and the hypothesis's along y, to
    ``<log dir>/attention/test_line<i>.png``, and logs them to W&B when a ``WandbLogger`` is attached. A
    :class:`Seq2Seq` returns its attention weights; for the Transformer they are the cross-attention weights of the
    last decoder layer, averaged over heads, taken from the layer with ``need_weights=True`` during a teacher-forced
    pass over the hypothesis. A network without attention (``seq2seq_plain``) draws none.

    Args:
        network: the registered model, e.g. ``transformer_base`` or ``seq2seq_bahdanau``.
        network_kwargs: its architecture arguments (e.g. ``{dropout: 0.3, share_embeddings: true}``), without the
            vocabulary sizes and special-token ids, which come from the data.
        label_smoothing: the target distribution's smoothing :math:`\epsilon_{ls}` in training and in the reported
            ``loss`` (0.1 in Vaswani et al.).
        beam_size: the test's beam width (4 in Vaswani et al.); 1 is greedy.
        length_penalty: GNMT's :math:`\alpha` (0.6 in Vaswani et al.); 0 ranks by log-probability alone.
        max_len_a: decode at most ``max_len_a * S + max_len_b`` tokens (Vaswani et al.: input length + 50).
        max_len_b: see ``max_len_a``.
        val_bleu: decode the validation set greedily every epoch and log ``val/bleu``.
        teacher_forcing: the :class:`Seq2Seq` teacher-forcing ratio over training steps ``i``: ``"constant"``
            (``teacher_forcing_ratio``), or Bengio et al.'s ``"inverse_sigmoid"`` (:math:`k / (k + e^{i/k})`),
            ``"linear"`` (:math:`\max(\epsilon, r - c\,i)`) or ``"exponential"`` (:math:`k^i`) decay.
        teacher_forcing_ratio: the constant ratio, and the linear decay's start :math:`r`.
        teacher_forcing_decay: :math:`k` of the inverse sigmoid and exponential decays, the slope :math:`c` of the
            linear one.
        teacher_forcing_min: the linear decay's floor :math:`\epsilon`.
        log_attention_maps: how many test lines' attention to draw (the first ones of the test file).
        optimizer: see :class:`~paperzoo.core.modules.PaperzooModule`.
        lr_scheduler: see :class:`~paperzoo.core.modules.PaperzooModule`.
        scheduler_interval: see :class:`~paperzoo.core.modules.PaperzooModule`.
    """

    def __init__(
        self,
        network: str = "transformer_base",
        network_kwargs: dict[str, Any] | None = None,
        label_smoothing: float = 0.1,
        beam_size: int = 4,
        length_penalty: float = 0.6,
        max_len_a: float = 1.0,
        max_len_b: int = 50,
        val_bleu: bool = True,
        teacher_forcing: TeacherForcing = "constant",
        teacher_forcing_ratio: float = 1.0,
        teacher_forcing_decay: float | None = None,
        teacher_forcing_min: float = 0.0,
        log_attention_maps: int = 0,
        optimizer: OptimizerCallable = _default_optimizer,
        lr_scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: Literal["step", "epoch"] = "step",
    ) -> None:
        super().__init__(optimizer=optimizer, lr_scheduler=lr_scheduler, scheduler_interval=scheduler_interval)
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        network_kwargs = dict(network_kwargs or {})
        if network not in list_models():
            raise ConfigError(
                f"unknown network {network!r}; the translation models of paperzoo.sequence are "
                f"{', '.join(list_models('transformer*') + list_models('seq2seq*'))}"
            )
        given = sorted(set(network_kwargs) & set(_FROM_DATA))
        if given:
            raise ConfigError(
                f"network_kwargs sets {', '.join(given)}, which the module takes from the DataModule's vocabularies; "
                "remove them from model.init_args.network_kwargs"
            )
        if not 0.0 <= label_smoothing < 1.0:
            raise ConfigError(f"label_smoothing must lie in [0, 1), got {label_smoothing}")
        if beam_size < 1 or length_penalty < 0 or max_len_a < 0 or max_len_b < 1:
            raise ConfigError(
                f"beam_size={beam_size} and max_len_b={max_len_b} must be at least 1, length_penalty={length_penalty} "
                f"and max_len_a={max_len_a} at least 0"
            )
        if log_attention_maps < 0:
            raise ConfigError(f"log_attention_maps must be at least 0, got {log_attention_maps}")
        if teacher_forcing not in ("constant", "inverse_sigmoid", "linear", "exponential"):
            raise ConfigError(
                f"teacher_forcing must be constant, inverse_sigmoid, linear or exponential, not {teacher_forcing!r}"
            )
        if not 0.0 <= teacher_forcing_ratio <= 1.0:
            raise ConfigError(f"teacher_forcing_ratio must lie in [0, 1], got {teacher_forcing_ratio}")
        if teacher_forcing != "constant" and teacher_forcing_decay is None:
            raise ConfigError(f"the {teacher_forcing} teacher-forcing schedule needs teacher_forcing_decay")
        self.network_name = network
        self.network_kwargs = network_kwargs
        self.label_smoothing = label_smoothing
        self.beam_size = beam_size
        self.length_penalty = length_penalty
        self.max_len_a = max_len_a
        self.max_len_b = max_len_b
        self.val_bleu = val_bleu
        self.teacher_forcing = teacher_forcing
        self.teacher_forcing_ratio = teacher_forcing_ratio
        self.teacher_forcing_decay = teacher_forcing_decay
        self.teacher_forcing_min = teacher_forcing_min
        self.log_attention_maps = log_attention_maps
        self.network: Transformer | Seq2Seq | None = None
        self.src_tokenizer: SubwordTokenizer | None = None
        self.tgt_tokenizer: SubwordTokenizer | None = None
        self.lowercase_bleu = False
        """Score lowercased text: set from the DataModule's ``lowercase``, whose hypotheses come out lowercased."""
        self.nll = nn.ModuleDict({stage: MeanMetric() for stage in ("val", "test")})
        self.last_test_scores: dict[str, Any] | None = None
        """What the last test scored: BLEU, chrF, their sacreBLEU signatures and the files written."""
        self._outputs: dict[str, list[tuple[int, str, str]]] = {"val": [], "test": []}
        self._attention_examples: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ the network and its vocabularies

    def build_network(self, src_tokenizer: SubwordTokenizer, tgt_tokenizer: SubwordTokenizer) -> nn.Module:
        """Build ``network`` for these vocabularies and keep them for decoding; called by :meth:`setup` and
        :meth:`on_load_checkpoint`, or by hand to use the module without a DataModule.

        Raises:
            ConfigError: ``network_kwargs`` do not fit the network, shared embeddings are asked for with two
                vocabularies, or the network is not a translation model.
        """
        kwargs = dict(self.network_kwargs)
        if kwargs.get("share_embeddings") and src_tokenizer is not tgt_tokenizer and src_tokenizer != tgt_tokenizer:
            raise ConfigError(
                "share_embeddings needs one vocabulary for both languages; set data.init_args.joint_vocab to true"
            )
        kwargs.update(src_vocab_size=src_tokenizer.vocab_size, tgt_vocab_size=tgt_tokenizer.vocab_size, pad_id=PAD_ID)
        if self.network_name.startswith("seq2seq"):
            kwargs.update(bos_id=BOS_ID, eos_id=EOS_ID)
        try:
            network = create_model(self.network_name, **kwargs)
        except TypeError as err:  # an argument the network's config does not have
            raise ConfigError(f"model.init_args.network_kwargs do not fit {self.network_name}: {err}") from err
        if not isinstance(network, Transformer | Seq2Seq):
            raise ConfigError(
                f"{self.network_name} is a {type(network).__name__}, not a translation model (Transformer or Seq2Seq)"
            )
        scheduled_sampling = self.teacher_forcing != "constant" or self.teacher_forcing_ratio != 1.0
        if scheduled_sampling and not isinstance(network, Seq2Seq):
            raise ConfigError(
                "a Transformer trains on the gold prefix only (all positions in one pass); leave teacher_forcing "
                "constant with teacher_forcing_ratio 1 or use a seq2seq network"
            )
        self.network = network
        self.src_tokenizer, self.tgt_tokenizer = src_tokenizer, tgt_tokenizer
        return network

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        src = getattr(datamodule, "src_tokenizer", None)
        tgt = getattr(datamodule, "tgt_tokenizer", None)
        if src is None or tgt is None:
            if self.network is not None:
                return  # built from a checkpoint; the data has no vocabulary of its own
            raise ConfigError(
                "TranslationModule takes its vocabularies from the DataModule, and this one has no src_tokenizer "
                "and tgt_tokenizer after setup; use paperzoo.sequence.ParallelTextDataModule"
            )
        self.lowercase_bleu = bool(getattr(datamodule, "lowercase", False))
        if self.network is None:
            self.build_network(src, tgt)
        else:
            self._check_same_vocabularies(src, tgt, "the DataModule's")

    def _check_same_vocabularies(self, src: SubwordTokenizer, tgt: SubwordTokenizer, whose: str) -> None:
        for mine, theirs, side in ((self.src_tokenizer, src, "source"), (self.tgt_tokenizer, tgt, "target")):
            if mine is not theirs and mine != theirs:
                raise ConfigError(
                    f"the model's {side} vocabulary ({mine.vocab_size} tokens) is not {whose} ({theirs.vocab_size} "
                    "tokens); use the data settings (vocab_size, tokenizer_model, joint_vocab, lowercase) the model "
                    "was trained with"
                )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        if self.src_tokenizer is not None:
            checkpoint[_CHECKPOINT_KEY] = {
                "src": self.src_tokenizer.to_json_str(),
                "tgt": self.tgt_tokenizer.to_json_str(),
                "joint": self.src_tokenizer is self.tgt_tokenizer,
            }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        stored = checkpoint.get(_CHECKPOINT_KEY)
        if stored is None:
            raise CheckpointError(
                "the checkpoint holds no tokenizers, so its token ids cannot be read; use a checkpoint written by "
                "TranslationModule"
            )
        src = SubwordTokenizer.from_json_str(stored["src"])
        tgt = src if stored["joint"] else SubwordTokenizer.from_json_str(stored["tgt"])
        if self.network is None:
            self.build_network(src, tgt)
        else:
            self._check_same_vocabularies(src, tgt, "the checkpoint's")

    def _require_network(self) -> Transformer | Seq2Seq:
        if self.network is None:
            raise ConfigError(
                "the network is not built yet: it is sized by the vocabularies, so fit or test the module with a "
                "ParallelTextDataModule, load a checkpoint (TranslationModule.load_from_checkpoint), or call "
                "build_network(src_tokenizer, tgt_tokenizer)"
            )
        return self.network

    # ------------------------------------------------------------------ training

    def teacher_forcing_at(self, step: int) -> float:
        """The teacher-forcing ratio of training step ``step``."""
        if self.teacher_forcing == "inverse_sigmoid":
            return inverse_sigmoid_schedule(step, self.teacher_forcing_decay)
        if self.teacher_forcing == "linear":
            return linear_schedule(
                step, self.teacher_forcing_decay, self.teacher_forcing_ratio, self.teacher_forcing_min
            )
        if self.teacher_forcing == "exponential":
            return exponential_schedule(step, self.teacher_forcing_decay)
        return self.teacher_forcing_ratio

    def forward(self, batch: TranslationBatch, teacher_forcing_ratio: float = 1.0) -> tuple[Tensor, Tensor | None]:
        """Next-token logits ``(B, T, V_tgt)`` for every position of ``batch.tgt_in``, and the attention weights
        ``(B, T, S)`` a :class:`Seq2Seq` returns (``None`` for the Transformer)."""
        network = self._require_network()
        if isinstance(network, Seq2Seq):
            return network(batch.src, batch.src_lengths, batch.tgt_in, teacher_forcing_ratio=teacher_forcing_ratio)
        return network(batch.src, batch.tgt_in), None

    def token_loss(self, logits: Tensor, target: Tensor, smoothing: float) -> Tensor:
        """The mean cross-entropy of the real target tokens of ``logits`` ``(B, T, V)`` against ``target`` ``(B, T)``,
        label-smoothed by ``smoothing``; padding is ignored."""
        return F.cross_entropy(
            logits.flatten(0, 1).float(), target.flatten(), ignore_index=PAD_ID, label_smoothing=smoothing
        )

    def training_step(self, batch: TranslationBatch, batch_idx: int) -> Tensor:
        ratio = 1.0
        if isinstance(self.network, Seq2Seq):
            ratio = self.teacher_forcing_at(self.global_step)
            self.log("train/teacher_forcing", ratio, on_step=True, on_epoch=False)
        logits, _ = self(batch, teacher_forcing_ratio=ratio)
        loss = self.token_loss(logits, batch.tgt_out, self.label_smoothing)
        tokens = int((batch.tgt_out != PAD_ID).sum())
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=tokens)
        return loss

    def _evaluate(self, batch: TranslationBatch, stage: str) -> None:
        logits, _ = self(batch)
        tokens = int((batch.tgt_out != PAD_ID).sum())
        loss = self.token_loss(logits, batch.tgt_out, self.label_smoothing)
        nll = self.token_loss(logits, batch.tgt_out, 0.0) if self.label_smoothing else loss
        self.nll[stage].update(nll.detach(), weight=tokens)
        self.log(f"{stage}/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=tokens, sync_dist=True)

    def _epoch_perplexity(self, stage: str) -> None:
        nll = self.nll[stage].compute()
        self.nll[stage].reset()
        self.log(f"{stage}/nll_loss", nll, sync_dist=False)
        self.log(f"{stage}/ppl", nll.exp(), prog_bar=True, sync_dist=False)

    # ------------------------------------------------------------------ validation

    def on_validation_epoch_start(self) -> None:
        self._outputs["val"] = []

    def validation_step(self, batch: TranslationBatch, batch_idx: int) -> None:
        self._evaluate(batch, "val")
        if self.val_bleu:
            hypotheses = self.decode(batch.src, batch.src_lengths, beam_size=1)
            self._outputs["val"] += zip(batch.indices.tolist(), hypotheses, batch.tgt_text, strict=True)

    def on_validation_epoch_end(self) -> None:
        self._epoch_perplexity("val")
        if self.val_bleu and self._outputs["val"]:
            _, hypotheses, references = zip(*self._outputs["val"], strict=True)
            score = BLEU(lowercase=self.lowercase_bleu).corpus_score(list(hypotheses), [list(references)]).score
            self.log("val/bleu", score, prog_bar=True)
        self._outputs["val"] = []

    # ------------------------------------------------------------------ test

    def on_test_epoch_start(self) -> None:
        self._outputs["test"] = []
        self._attention_examples = []

    def test_step(self, batch: TranslationBatch, batch_idx: int) -> None:
        self._evaluate(batch, "test")
        ids = self.decode_ids(batch.src, batch.src_lengths)
        hypotheses = [self.tgt_tokenizer.decode(sequence) for sequence in ids]
        self._outputs["test"] += zip(batch.indices.tolist(), hypotheses, batch.tgt_text, strict=True)
        wanted = [row for row, line in enumerate(batch.indices.tolist()) if line < self.log_attention_maps]
        if wanted and self.attention_weights_available:
            self._collect_attention(batch, ids, wanted)

    def on_test_epoch_end(self) -> None:
        self._epoch_perplexity("test")
        if not self._outputs["test"]:
            return
        lines, hypotheses, references = zip(*self._outputs["test"], strict=True)
        hypotheses = restore_order(lines, hypotheses)
        references = restore_order(lines, references)
        bleu_metric, chrf_metric = BLEU(lowercase=self.lowercase_bleu), CHRF(lowercase=self.lowercase_bleu)
        bleu = bleu_metric.corpus_score(hypotheses, [references])
        chrf = chrf_metric.corpus_score(hypotheses, [references])
        self.log("test/bleu", bleu.score)
        self.log("test/chrf", chrf.score)
        signatures = {"bleu": str(bleu_metric.get_signature()), "chrf": str(chrf_metric.get_signature())}
        log_dir = self.trainer.log_dir  # a broadcast: every rank takes part
        self._outputs["test"] = []
        if not self.trainer.is_global_zero:
            return
        folder = Path(log_dir or self.trainer.default_root_dir)
        folder.mkdir(parents=True, exist_ok=True)
        hypotheses_path = folder / "test_hypotheses.txt"
        hypotheses_path.write_text("".join(f"{h}\n" for h in hypotheses), encoding="utf-8")
        self.last_test_scores = {
            "bleu": bleu.score,
            "chrf": chrf.score,
            "bleu_text": str(bleu),
            "signatures": signatures,
            "sentences": len(hypotheses),
            "beam_size": self.beam_size,
            "length_penalty": self.length_penalty,
            "hypotheses": str(hypotheses_path),
        }
        (folder / "test_scores.json").write_text(json.dumps(self.last_test_scores, indent=2) + "\n", encoding="utf-8")
        rank_zero_info(f"test: {bleu} ({len(hypotheses)} sentences, beam {self.beam_size}); {chrf}")
        rank_zero_info(f"sacreBLEU signatures: BLEU {signatures['bleu']}; chrF {signatures['chrf']}")
        for logger in self.loggers:
            logger.log_hyperparams({f"sacrebleu_{name}_signature": text for name, text in signatures.items()})
        if self._attention_examples:
            self._draw_attention_maps(folder / "attention")

    def predict_step(self, batch: TranslationBatch, batch_idx: int) -> dict[str, Any]:
        """The beam-search translation of each source sentence, with its line in the split."""
        ids = self.decode_ids(batch.src, batch.src_lengths)
        return {"indices": batch.indices.tolist(), "hypotheses": [self.tgt_tokenizer.decode(s) for s in ids]}

    # ------------------------------------------------------------------ decoding

    def decode_ids(self, src: Tensor, src_lengths: Tensor, beam_size: int | None = None) -> list[list[int]]:
        """Token ids of each sentence's translation, without ``<s>`` and ``</s>``: beam search, or greedy decoding
        for ``beam_size`` 1 (``None`` for the module's ``beam_size``). Call it in eval mode."""
        network = self._require_network()
        beam_size = self.beam_size if beam_size is None else beam_size
        max_len = max(1, int(self.max_len_a * int(src_lengths.max()) + self.max_len_b))
        if isinstance(network, Seq2Seq):
            step, state, reindex = seq2seq_step_fn(network, src, src_lengths)
        else:
            max_len = min(max_len, network.config.max_len)  # the positional encoding's reach
            step, state, reindex = transformer_step_fn(network, src)
        if beam_size == 1:
            return greedy_decode(step, state, len(src), BOS_ID, EOS_ID, max_len, device=src.device).sequences
        return beam_search(
            step, state, reindex, len(src), beam_size, BOS_ID, EOS_ID, max_len, self.length_penalty, device=src.device
        ).sequences

    def decode(self, src: Tensor, src_lengths: Tensor, beam_size: int | None = None) -> list[str]:
        """:meth:`decode_ids`, detokenised with the target tokenizer."""
        return [self.tgt_tokenizer.decode(ids) for ids in self.decode_ids(src, src_lengths, beam_size)]

    @torch.no_grad()
    def translate(self, sentences: Sequence[str], beam_size: int | None = None, batch_size: int = 32) -> list[str]:
        """Translate plain-text sentences with beam search; the checkpoint's tokenizers do the rest.

        Args:
            sentences: the source sentences, e.g. ``["Der Hund schläft."]``.
            beam_size: the beam width; ``None`` for the module's ``beam_size``, 1 for greedy decoding.
            batch_size: sentences decoded together (grouped by length, so padding stays small).

        Returns:
            One translation per sentence, in the order given.

        Raises:
            TypeError: ``sentences`` is a single string, or holds something other than strings.
            ValueError: a sentence is empty, or longer than the Transformer's positional encoding.
            ConfigError: the module has no network and vocabularies yet.
        """
        if isinstance(sentences, str):
            raise TypeError("translate takes a list of sentences, not one string; wrap it: translate([sentence])")
        sentences = list(sentences)
        for number, sentence in enumerate(sentences):
            if not isinstance(sentence, str):
                raise TypeError(f"sentence {number} is a {type(sentence).__name__}, not a str")
            if not sentence.strip():
                raise ValueError(f"sentence {number} is empty; every sentence needs text to translate")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        network = self._require_network()
        encoded = self.src_tokenizer.encode_batch(sentences, add_eos=True)
        if isinstance(network, Transformer):
            for number, ids in enumerate(encoded):
                if len(ids) > network.config.max_len:
                    raise ValueError(
                        f"sentence {number} has {len(ids)} tokens, more than the {network.config.max_len} positions "
                        "the model encodes; split it"
                    )
        was_training = self.training
        self.eval()
        try:
            order = np.argsort([len(ids) for ids in encoded], kind="stable")
            lines, outputs = [], []
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size].tolist()
                lengths = torch.tensor([len(encoded[i]) for i in chunk], device=self.device)
                src = torch.full((len(chunk), int(lengths.max())), PAD_ID, dtype=torch.long, device=self.device)
                for row, i in enumerate(chunk):
                    src[row, : len(encoded[i])] = torch.tensor(encoded[i], device=self.device)
                lines += chunk
                outputs += self.decode(src, lengths, beam_size)
        finally:
            self.train(was_training)
        return restore_order(lines, outputs)

    # ------------------------------------------------------------------ attention maps

    @property
    def attention_weights_available(self) -> bool:
        """Whether the network attends (every Transformer; a Seq2Seq with attention)."""
        network = self._require_network()
        return isinstance(network, Transformer) or network.attention is not None

    def attention_weights(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> Tensor:
        """The attention of every target position over the source in a teacher-forced pass, ``(B, T, S)``.

        For a :class:`Seq2Seq` its attention weights; for the Transformer the last decoder layer's cross-attention,
        averaged over heads, read from the layer run with ``need_weights=True``.
        """
        network = self._require_network()
        if isinstance(network, Seq2Seq):
            _, weights = network(src, src_lengths, tgt_in)
            if weights is None:
                raise ConfigError(f"{self.network_name} has no attention, so it has no attention weights")
            return weights
        layer = network.decoder.layers[-1].cross_attn
        captured: list[Tensor] = []

        def ask_for_weights(module, args, kwargs):
            return args, {**kwargs, "need_weights": True}

        def keep_weights(module, args, kwargs, output):
            captured.append(output[1])

        handles = [
            layer.register_forward_pre_hook(ask_for_weights, with_kwargs=True),
            layer.register_forward_hook(keep_weights, with_kwargs=True),
        ]
        try:
            network(src, tgt_in)
        finally:
            for handle in handles:
                handle.remove()
        return captured[0]

    @torch.no_grad()
    def _collect_attention(self, batch: TranslationBatch, hypotheses: list[list[int]], rows: list[int]) -> None:
        for row in rows:
            length = int(batch.src_lengths[row])
            src = batch.src[row : row + 1, :length]
            tgt_in = torch.tensor([[BOS_ID, *hypotheses[row]]], device=src.device)
            weights = self.attention_weights(src, batch.src_lengths[row : row + 1], tgt_in)[0]  # (T, S)
            self._attention_examples.append(
                {
                    "line": int(batch.indices[row]),
                    "weights": weights.float().cpu().numpy(),
                    "source": [self.src_tokenizer.id_to_token(int(i)) for i in src[0]],
                    "target": [*(self.tgt_tokenizer.id_to_token(i) for i in hypotheses[row]), "</s>"],
                }
            )

    def _draw_attention_maps(self, folder: Path) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        what = (
            "last decoder layer's cross-attention, mean of heads"
            if isinstance(self.network, Transformer)
            else f"{self.network.config.attention} attention"
        )
        paths = []
        for example in sorted(self._attention_examples, key=lambda e: e["line"]):
            path = folder / f"test_line{example['line']}.png"
            _draw_attention(example, path, title=f"test line {example['line']}: {self.network_name}, {what}")
            paths.append(path)
        for logger in self.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(
                    key="test/attention",
                    images=[str(p) for p in paths],
                    caption=[p.stem for p in paths],
                    step=self.trainer.global_step,
                )
        return paths


def _draw_attention(example: dict[str, Any], path: Path, title: str) -> None:
    """A heat map of one sentence's attention weights ``(T, S)``: source pieces along x, target pieces along y."""
    from matplotlib.figure import Figure

    weights, source, target = example["weights"], example["source"], example["target"]
    width = min(max(4.0, 0.35 * len(source) + 2.0), 40.0)
    height = min(max(3.0, 0.3 * len(target) + 1.5), 40.0)
    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.add_subplot()
    shown = ax.imshow(weights, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.02, label="attention weight")
    ax.set_xticks(range(len(source)), source, rotation=90, fontsize=8)
    ax.set_yticks(range(len(target)), target, fontsize=8)
    ax.set_xlabel("source subwords")
    ax.set_ylabel("translation subwords")
    ax.set_title(title, fontsize=9)
    fig.savefig(path, dpi=100)
