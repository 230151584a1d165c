"""Tests of paperzoo.sequence.modules.translation: TranslationModule learns a toy translation, scores it exactly as
sacreBLEU does, writes its hypotheses in file order, draws attention maps and translates from a checkpoint alone."""

from __future__ import annotations

import csv
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import sacrebleu
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger

from paperzoo.core.errors import CheckpointError, ConfigError
from paperzoo.core.schedules import InverseSqrt
from paperzoo.sequence import ParallelTextDataModule, Seq2Seq, Transformer, TranslationModule
from paperzoo.sequence.data import SubwordTokenizer, TranslationBatch
from paperzoo.sequence.models import linear_schedule
from paperzoo.sequence.testing import toy_translation_pairs, write_parallel_text

N_TEST = 40


class LossRecorder(Callback):
    """Records every training loss, and the teacher-forcing ratio each training step hands to a Seq2Seq."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.ratios: dict[int, float] = {}

    def on_train_start(self, trainer, pl_module) -> None:
        def record(network, args, kwargs):
            if network.training:
                self.ratios[trainer.global_step] = kwargs["teacher_forcing_ratio"]

        if isinstance(pl_module.network, Seq2Seq):
            pl_module.network.register_forward_pre_hook(record, with_kwargs=True)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(float(outputs["loss"]))


def _trainer(root: Path, max_steps: int, recorder: Callback, **kwargs) -> L.Trainer:
    return L.Trainer(
        max_steps=max_steps,
        accelerator="cpu",
        logger=CSVLogger(root, name="run"),
        callbacks=[recorder],
        enable_checkpointing=False,  # the fixture saves its own checkpoint
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
        **kwargs,
    )


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> SimpleNamespace:
    """A tiny Transformer fitted for 300 steps on 400 toy pairs, then tested with beam search on 40."""
    root = tmp_path_factory.mktemp("translation")
    data = write_parallel_text(root / "data", n_train=400, n_valid=30, n_test=N_TEST, seed=0)
    datamodule = ParallelTextDataModule(str(data), vocab_size=120, max_tokens=512, max_len=32)
    module = TranslationModule(
        "transformer_tiny",
        {"dropout": 0.0},
        log_attention_maps=2,
        optimizer=partial(torch.optim.Adam, lr=1e-2, betas=(0.9, 0.98)),
        lr_scheduler=partial(InverseSqrt, warmup_steps=50),
    )
    L.seed_everything(0)
    recorder = LossRecorder()
    trainer = _trainer(root, 300, recorder, check_val_every_n_epoch=5)
    trainer.fit(module, datamodule=datamodule)
    val_bleu = trainer.callback_metrics.get("val/bleu")
    tested = trainer.test(module, datamodule=datamodule, verbose=False)[0]
    checkpoint = root / "toy.ckpt"
    trainer.save_checkpoint(checkpoint)
    return SimpleNamespace(
        root=root,
        data=data,
        datamodule=datamodule,
        module=module,
        trainer=trainer,
        tested=tested,
        val_bleu=val_bleu,
        losses=recorder.losses,
        log_dir=Path(trainer.log_dir),
        checkpoint=checkpoint,
    )


# ---------------------------------------------------------------- learning and scores


def test_loss_falls_and_bleu_beats_copying_the_source(trained):
    first, last = trained.losses[:5], trained.losses[-20:]
    assert sum(last) / len(last) < 0.5 * sum(first) / len(first)
    sources, references = _lines(trained.data / "test.de"), _lines(trained.data / "test.en")
    copy_bleu = sacrebleu.corpus_bleu(sources, [references]).score
    assert trained.tested["test/bleu"] > copy_bleu
    assert trained.tested["test/ppl"] == pytest.approx(torch.tensor(trained.tested["test/nll_loss"]).exp().item())
    assert trained.val_bleu is not None and trained.val_bleu > copy_bleu  # greedy, on the validation set


def test_test_bleu_and_chrf_equal_sacrebleu_on_the_written_hypotheses(trained):
    hypotheses = _lines(trained.log_dir / "test_hypotheses.txt")
    references = _lines(trained.data / "test.en")
    assert len(hypotheses) == N_TEST
    bleu = sacrebleu.corpus_bleu(hypotheses, [references])
    chrf = sacrebleu.corpus_chrf(hypotheses, [references])
    assert trained.module.last_test_scores["bleu"] == bleu.score
    assert trained.module.last_test_scores["chrf"] == chrf.score
    assert trained.tested["test/bleu"] == pytest.approx(bleu.score, rel=1e-6)  # logged as float32
    assert trained.tested["test/chrf"] == pytest.approx(chrf.score, rel=1e-6)
    signature = trained.module.last_test_scores["signatures"]["bleu"]
    assert signature.startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:")
    assert (trained.log_dir / "test_scores.json").is_file()


def test_hypotheses_are_written_in_the_test_files_line_order(trained):
    served = [i for batch in trained.datamodule.test_dataloader() for i in batch.indices.tolist()]
    assert served != sorted(served)  # the test batches come sorted by length, so order has to be restored
    hypotheses = _lines(trained.log_dir / "test_hypotheses.txt")
    references = _lines(trained.data / "test.en")
    # each hypothesis is closest to the reference on its own line (by sentence chrF) for nearly every line
    own_line = 0
    for i, hypothesis in enumerate(hypotheses):
        scores = [sacrebleu.sentence_chrf(hypothesis, [reference]).score for reference in references]
        own_line += max(range(len(scores)), key=scores.__getitem__) == i
    assert own_line >= 0.9 * N_TEST


def test_attention_maps_of_the_first_test_lines_are_drawn(trained):
    maps = sorted(p.name for p in (trained.log_dir / "attention").glob("*.png"))
    assert maps == ["test_line0.png", "test_line1.png"]


def test_the_loss_is_the_smoothed_cross_entropy_of_the_real_target_tokens(trained):
    module = trained.module
    batch: TranslationBatch = next(iter(trained.datamodule.val_dataloader()))
    with torch.no_grad():
        logits, _ = module(batch)
    real = batch.tgt_out != 0
    assert not real.all()  # the batch has padding to ignore
    expected = F.cross_entropy(logits[real], batch.tgt_out[real], label_smoothing=0.1)
    torch.testing.assert_close(module.token_loss(logits, batch.tgt_out, module.label_smoothing), expected)
    assert trained.tested["test/loss"] > trained.tested["test/nll_loss"]  # the smoothing term is in the loss


# ---------------------------------------------------------------- checkpoints and translate


def test_checkpoint_alone_restores_the_tokenizers_and_translates_the_same(trained):
    sentences = [src for src, _ in toy_translation_pairs(6, seed=123)]
    before = trained.module.translate(sentences)
    restored = TranslationModule.load_from_checkpoint(trained.checkpoint, map_location="cpu")
    assert restored.src_tokenizer == trained.datamodule.src_tokenizer
    assert restored.src_tokenizer is restored.tgt_tokenizer  # a joint vocabulary stays one object
    assert isinstance(restored.network, Transformer)
    assert restored.translate(sentences) == before
    assert restored.translate(sentences[:1], beam_size=1) == trained.module.translate(sentences[:1], beam_size=1)
    assert any(before)  # a real translation, not empty lines


def test_trainer_test_from_the_checkpoint_scores_the_same(trained, tmp_path):
    fresh = TranslationModule("transformer_tiny", {"dropout": 0.0})
    trainer = L.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        default_root_dir=tmp_path,
    )
    tested = trainer.test(fresh, datamodule=trained.datamodule, ckpt_path=trained.checkpoint, verbose=False)[0]
    assert tested["test/bleu"] == pytest.approx(trained.tested["test/bleu"])


def test_a_checkpoint_with_another_vocabulary_is_refused(trained, tmp_path):
    other = ParallelTextDataModule(str(trained.data), vocab_size=90, max_tokens=512, max_len=32)
    trainer = L.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        default_root_dir=tmp_path,
    )
    with pytest.raises(ConfigError, match=r"vocabulary .* is not the checkpoint's"):
        trainer.test(TranslationModule("transformer_tiny"), datamodule=other, ckpt_path=trained.checkpoint)


def test_translate_rejects_bad_input_in_one_sentence(trained):
    with pytest.raises(TypeError, match="list of sentences, not one string"):
        trained.module.translate("Der Hund sieht die Katze.")
    with pytest.raises(TypeError, match="sentence 1 is a int"):
        trained.module.translate(["Der Hund.", 3])
    with pytest.raises(ValueError, match="sentence 1 is empty"):
        trained.module.translate(["Der Hund.", "  "])
    assert trained.module.translate([]) == []
    with pytest.raises(ConfigError, match="not built yet"):
        TranslationModule("transformer_tiny").translate(["Der Hund."])


# ---------------------------------------------------------------- configuration errors


def test_bad_configs_are_refused_in_one_sentence():
    with pytest.raises(ConfigError, match="unknown network 'transformer_huge'"):
        TranslationModule("transformer_huge")
    with pytest.raises(ConfigError, match=r"src_vocab_size.*from the DataModule"):
        TranslationModule("transformer_tiny", {"src_vocab_size": 100})
    with pytest.raises(ConfigError, match="needs teacher_forcing_decay"):
        TranslationModule("seq2seq_bahdanau", teacher_forcing="linear")
    tokenizer = SubwordTokenizer.train([p for pair in toy_translation_pairs(50) for p in pair], vocab_size=80)
    with pytest.raises(ConfigError, match="do not fit transformer_tiny"):
        TranslationModule("transformer_tiny", {"d_modle": 32}).build_network(tokenizer, tokenizer)
    with pytest.raises(ConfigError, match="Transformer trains on the gold prefix"):
        TranslationModule("transformer_tiny", teacher_forcing_ratio=0.5).build_network(tokenizer, tokenizer)
    other = SubwordTokenizer.train([pair[1] for pair in toy_translation_pairs(50)], vocab_size=80)
    with pytest.raises(ConfigError, match="joint_vocab"):
        TranslationModule("transformer_tiny", {"share_embeddings": True}).build_network(tokenizer, other)
    with pytest.raises(CheckpointError, match="no tokenizers"):
        TranslationModule("transformer_tiny").on_load_checkpoint({})


# ---------------------------------------------------------------- Seq2Seq and attention


def test_seq2seq_trains_with_scheduled_sampling_and_draws_its_attention(tmp_path):
    data = write_parallel_text(tmp_path / "data", n_train=200, n_valid=10, n_test=10, seed=1)
    datamodule = ParallelTextDataModule(str(data), vocab_size=100, max_tokens=256, max_len=32)
    module = TranslationModule(
        "seq2seq_bahdanau",
        {"embed_dim": 32, "hidden_size": 64},
        beam_size=2,
        teacher_forcing="linear",
        teacher_forcing_decay=0.01,
        teacher_forcing_min=0.5,
        log_attention_maps=1,
        optimizer=partial(torch.optim.Adam, lr=3e-3),
    )
    L.seed_everything(0)
    recorder = LossRecorder()
    trainer = _trainer(tmp_path, 60, recorder, log_every_n_steps=1, limit_val_batches=1)
    trainer.fit(module, datamodule=datamodule)
    trainer.test(module, datamodule=datamodule, verbose=False)
    assert isinstance(module.network, Seq2Seq)
    assert sum(recorder.losses[-10:]) / 10 < 0.75 * sum(recorder.losses[:3]) / 3
    assert sorted(recorder.ratios) == list(range(60))  # the ratio each step fed the network
    for step, ratio in recorder.ratios.items():
        assert ratio == pytest.approx(linear_schedule(step, 0.01, 1.0, 0.5))
    assert min(recorder.ratios.values()) == 0.5
    with open(Path(trainer.log_dir) / "metrics.csv") as f:
        logged = [float(r["train/teacher_forcing"]) for r in csv.DictReader(f) if r.get("train/teacher_forcing")]
    assert logged == pytest.approx([recorder.ratios[step] for step in range(60)])
    assert (Path(trainer.log_dir) / "attention" / "test_line0.png").is_file()


def test_transformer_attention_weights_are_a_distribution_over_the_real_source(trained):
    module = trained.module.eval()
    batch: TranslationBatch = next(iter(trained.datamodule.test_dataloader()))
    with torch.no_grad():
        plain, _ = module(batch)
        weights = module.attention_weights(batch.src, batch.src_lengths, batch.tgt_in)
        again, _ = module(batch)
    B, T = batch.tgt_in.shape
    assert weights.shape == (B, T, batch.src.shape[1])
    torch.testing.assert_close(weights.sum(-1), torch.ones(B, T))
    padded = batch.src == 0
    assert padded.any() and (weights.masked_select(padded[:, None, :].expand_as(weights)) == 0).all()
    layer = module.network.decoder.layers[-1].cross_attn
    assert not layer._forward_pre_hooks and not layer._forward_hooks
    torch.testing.assert_close(plain, again)
