"""Tests of paperzoo.sequence.data: the subword tokenizer, the token-budget batch sampler and ParallelTextDataModule,
on files in the layout of the IWSLT/WMT preparations."""

from __future__ import annotations

import itertools
import json

import lightning.pytorch as pl
import numpy as np
import pytest
import torch

from paperzoo.core.errors import ConfigError, CorruptDataError, DatasetNotFoundError
from paperzoo.sequence.data import (
    ParallelTextDataModule,
    SubwordTokenizer,
    TokenBatchSampler,
    TranslationBatch,
    read_parallel_split,
    restore_order,
    train_translation_tokenizers,
)
from paperzoo.sequence.testing import toy_translation_pairs, write_parallel_text

CORPUS = [
    "Er gab an, dass er dazu genötigt worden war.",
    "Schnee stob durch die Tür; die Kälte kam herein!",
    "Äpfel, Öl und Übermut: „So geht’s“, sagte sie.",
    "¿Qué pasó? ¡Sí, señor, el niño está aquí!",
    "Naïve café owners don’t serve crème brûlée (usually).",
    'He said "state of lawlessness" -- twice -- in 1960, at 3.5% interest.',
    "Der Bär füttert die Vögel heute nicht.",
    "La canción del año: «Adiós, corazón».",
]


@pytest.fixture(scope="module", params=["bpe", "unigram"])
def tokenizer(request) -> SubwordTokenizer:
    return SubwordTokenizer.train(CORPUS * 3, vocab_size=150, model=request.param, min_frequency=2)


# ---------------------------------------------------------------- SubwordTokenizer


def test_tokenizer_round_trips_text_exactly(tokenizer):
    for text in CORPUS:
        assert tokenizer.decode(tokenizer.encode(text)) == text
    # New sentences from seen characters, with runs of spaces, also come back exactly.
    unseen = "Öl?  Señor brûlée,  sagte   der Bär -- «Qué»!"
    assert tokenizer.decode(tokenizer.encode(unseen)) == unseen
    assert tokenizer.unk_id not in tokenizer.encode(unseen)


def test_tokenizer_special_ids_are_fixed(tokenizer):
    assert [tokenizer.token_to_id(t) for t in ("<pad>", "<s>", "</s>", "<unk>")] == [0, 1, 2, 3]
    assert (tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id, tokenizer.unk_id) == (0, 1, 2, 3)
    ids = tokenizer.encode(CORPUS[0], add_bos=True, add_eos=True)
    assert ids[0] == 1 and ids[-1] == 2 and ids[1:-1] == tokenizer.encode(CORPUS[0])
    assert 0 not in tokenizer.encode(CORPUS[1]) and 4 < tokenizer.vocab_size <= 150


def test_tokenizer_decode_reads_model_output(tokenizer):
    ids = tokenizer.encode(CORPUS[6])
    assert tokenizer.decode([1, *ids, 2, *tokenizer.encode("Schnee"), 0, 0]) == CORPUS[6]
    assert "<unk>" in tokenizer.decode(tokenizer.encode("Der Bär ☃ nicht."))


def test_tokenizer_save_load_and_json_string_give_identical_ids(tokenizer, tmp_path):
    loaded = SubwordTokenizer.load(tokenizer.save(tmp_path / "sub" / "tokenizer.json"))
    restored = SubwordTokenizer.from_json_str(tokenizer.to_json_str())
    for other in (loaded, restored):
        assert other == tokenizer
        assert [other.encode(t, add_eos=True) for t in CORPUS] == [tokenizer.encode(t, add_eos=True) for t in CORPUS]
    # The JSON is the Hugging Face tokenizer.json format.
    assert json.loads((tmp_path / "sub" / "tokenizer.json").read_text())["added_tokens"][0]["content"] == "<pad>"


def test_tokenizer_trains_the_same_from_files_and_from_sentences(tmp_path):
    path = tmp_path / "train.de"
    path.write_text("\n".join(CORPUS * 3) + "\n", encoding="utf-8")
    from_file = SubwordTokenizer.train(path, vocab_size=120)
    from_files = SubwordTokenizer.train([path], vocab_size=120)
    from_texts = SubwordTokenizer.train(CORPUS * 3, vocab_size=120)
    assert from_file == from_files == from_texts


def test_tokenizer_lowercase():
    tok = SubwordTokenizer.train(CORPUS, vocab_size=120, lowercase=True)
    assert tok.decode(tok.encode(CORPUS[2])) == CORPUS[2].lower()


def test_tokenizer_rejects_foreign_special_ids_and_bad_settings(tmp_path):
    from tokenizers import Tokenizer, models

    foreign = Tokenizer(models.WordLevel({"<unk>": 0, "<pad>": 1, "<s>": 2, "</s>": 3}, unk_token="<unk>"))
    with pytest.raises(CorruptDataError, match="<pad>=1"):
        SubwordTokenizer.from_json_str(foreign.to_str())
    with pytest.raises(CorruptDataError, match="not a Hugging Face tokenizer JSON"):
        SubwordTokenizer.from_json_str("{}")
    with pytest.raises(DatasetNotFoundError, match="no tokenizer at"):
        SubwordTokenizer.load(tmp_path / "missing.json")
    with pytest.raises(ConfigError, match="'bpe' or 'unigram'"):
        SubwordTokenizer.train(CORPUS, vocab_size=100, model="wordpiece")
    with pytest.raises(ConfigError, match="must exceed"):
        SubwordTokenizer.train(CORPUS, vocab_size=4)


def test_joint_and_separate_vocabularies():
    src, tgt = ["Der Bär füttert die Vögel."] * 5, ["The bear feeds the birds."] * 5
    shared_src, shared_tgt = train_translation_tokenizers(src, tgt, vocab_size=80, joint=True)
    assert shared_src is shared_tgt and shared_src.token_to_id("ü") is not None
    src_tok, tgt_tok = train_translation_tokenizers(src, tgt, vocab_size=80, joint=False)
    assert src_tok.token_to_id("ü") is not None and tgt_tok.token_to_id("ü") is None
    assert tgt_tok.decode(tgt_tok.encode(tgt[0])) == tgt[0]


# ---------------------------------------------------------------- TokenBatchSampler


def random_lengths(n=500, seed=0):
    return np.random.default_rng(seed).integers(1, 60, n)


@pytest.mark.parametrize("max_tokens", [60, 200, 1000])
def test_sampler_respects_the_budget_and_covers_every_example_once(max_tokens):
    lengths = random_lengths()
    for shuffle in (False, True):
        sampler = TokenBatchSampler(lengths, max_tokens, shuffle=shuffle, seed=3)
        for epoch in range(3):
            sampler.set_epoch(epoch)
            batches = list(sampler)
            assert all(len(b) * lengths[b].max() <= max_tokens for b in batches)
            assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
            assert len(batches) == len(sampler)
    # The greedy cut fills batches: no two neighbours in length order could have been merged.
    eval_batches = list(TokenBatchSampler(lengths, max_tokens))
    for a, b in itertools.pairwise(eval_batches):
        assert (len(a) + 1) * lengths[b[0]] > max_tokens


def test_sampler_is_reproducible_per_seed_and_differs_between_epochs():
    lengths = random_lengths()
    a, b = TokenBatchSampler(lengths, 300, shuffle=True, seed=7), TokenBatchSampler(lengths, 300, shuffle=True, seed=7)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    # Not only the order of the batches changes: the grouping of equal-length examples does too.
    assert {tuple(sorted(x)) for x in a} != {tuple(sorted(x)) for x in first}
    b.set_epoch(1)
    assert list(a) == list(b)
    assert list(TokenBatchSampler(lengths, 300, shuffle=True, seed=8)) != first


def test_sampler_groups_similar_lengths_and_sorts_evaluation_batches():
    lengths = random_lengths(1000)
    sampler = TokenBatchSampler(lengths, 400, shuffle=True)
    padded = sum(len(b) * lengths[b].max() for b in sampler)
    assert padded < 1.05 * lengths.sum()  # sorted batches waste little on padding
    order = [i for b in TokenBatchSampler(lengths, 400) for i in b]
    assert np.all(np.diff(lengths[order]) >= 0)


def test_sampler_epoch_is_set_through_its_sampler_as_lightning_does():
    # Lightning calls set_epoch on dataloader.batch_sampler.sampler, not on the batch sampler.
    sampler = TokenBatchSampler(random_lengths(), 300, shuffle=True)
    first = list(sampler)
    sampler.sampler.set_epoch(1)
    assert list(sampler) != first and sampler.epoch == 1


def test_sampler_rejects_examples_longer_than_the_budget():
    with pytest.raises(ConfigError, match="example 1 has 50 tokens, more than max_tokens=40"):
        TokenBatchSampler([3, 50, 4], 40)


# ---------------------------------------------------------------- reading the files


def test_read_parallel_split_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"train\.de and .*train\.en not found.*\{train,valid,test\}\.de"):
        read_parallel_split(tmp_path, "train", "de", "en")
    write_parallel_text(tmp_path, {"train": [("a b.", "c d."), ("e.", "f.")]})
    (tmp_path / "train.en").write_text("c d.\n", encoding="utf-8")
    with pytest.raises(CorruptDataError, match=r"train\.de has 2 lines but .*train\.en has 1"):
        read_parallel_split(tmp_path, "train", "de", "en")
    (tmp_path / "train.en").write_text("c d.\n  \n", encoding="utf-8")
    with pytest.raises(CorruptDataError, match=r"train\.en line 2 is empty"):
        read_parallel_split(tmp_path, "train", "de", "en")
    (tmp_path / "train.en").write_bytes(b"c d.\n\xff\n")
    with pytest.raises(CorruptDataError, match=r"train\.en line 2 is not UTF-8"):
        read_parallel_split(tmp_path, "train", "de", "en")


def test_read_parallel_split_keeps_unicode_line_separators_inside_sentences(tmp_path):
    (tmp_path / "valid.de").write_text("eins\u2028zwei.\r\ndrei.\n", encoding="utf-8")
    (tmp_path / "valid.en").write_text("one\x85two.\nthree.", encoding="utf-8")
    assert read_parallel_split(tmp_path, "valid", "de", "en") == (
        ["eins\u2028zwei.", "drei."],
        ["one\x85two.", "three."],
    )


# ---------------------------------------------------------------- ParallelTextDataModule


def make_dm(data_dir, **kwargs) -> ParallelTextDataModule:
    options = {"vocab_size": 60, "max_tokens": 256, "max_len": 48, "tokenizer_model": "bpe"} | kwargs
    return ParallelTextDataModule(str(data_dir), "de", "en", **options)


def test_datamodule_batches(tmp_path):
    write_parallel_text(tmp_path / "toy", n_train=120)
    dm = make_dm(tmp_path / "toy")
    dm.setup()
    assert dm.src_tokenizer is dm.tgt_tokenizer and dm.src_vocab_size <= 60
    batches = list(dm.train_dataloader())
    assert sum(len(b) for b in batches) == len(dm.train_set) == 120 - dm.dropped_train_pairs
    for batch in batches:
        assert isinstance(batch, TranslationBatch)
        B = len(batch)
        assert batch.src.shape[0] == batch.tgt_in.shape[0] == batch.tgt_out.shape[0] == B
        assert batch.tgt_in.shape == batch.tgt_out.shape
        assert B * max(batch.src.shape[1], batch.tgt_in.shape[1]) <= dm.max_tokens
        for row in range(B):
            S, T = batch.src_lengths[row], batch.tgt_lengths[row]
            assert batch.src[row, S - 1] == dm.eos_id and (batch.src[row, S:] == dm.pad_id).all()
            assert (batch.src[row, : S - 1] > 3).all()
            assert batch.tgt_in[row, 0] == dm.bos_id and batch.tgt_out[row, T - 1] == dm.eos_id
            assert torch.equal(batch.tgt_in[row, 1:T], batch.tgt_out[row, : T - 1])  # shifted by one
            assert (batch.tgt_in[row, T:] == 0).all() and (batch.tgt_out[row, T:] == 0).all()
            assert dm.decode(batch.tgt_out[row].tolist()) == batch.tgt_text[row]
            assert dm.src_tokenizer.decode(batch.src[row].tolist()) == batch.src_text[row]
    # Each batch's indices point at the lines of the training files.
    src_lines = (tmp_path / "toy" / "train.de").read_text(encoding="utf-8").splitlines()
    assert all(src_lines[i] == text for b in batches for i, text in zip(b.indices.tolist(), b.src_text, strict=True))


def test_datamodule_evaluation_order_can_be_restored(tmp_path):
    write_parallel_text(tmp_path / "toy", n_valid=40)
    dm = make_dm(tmp_path / "toy")
    dm.setup("validate")
    assert dm.train_set is None and dm.test_set is None
    batches = list(dm.val_dataloader())
    assert sum(len(b) for b in batches) == 40
    sizes = [max(s, t) for b in batches for s, t in zip(b.src_lengths.tolist(), b.tgt_lengths.tolist(), strict=True)]
    assert sizes == sorted(sizes)
    indices = torch.cat([b.indices for b in batches])
    hypotheses = [text for b in batches for text in b.tgt_text]
    references = (tmp_path / "toy" / "valid.en").read_text(encoding="utf-8").splitlines()
    assert restore_order(indices, hypotheses) == references != hypotheses


def test_datamodule_trains_the_vocabulary_on_the_training_split_only(tmp_path):
    pairs = toy_translation_pairs(60)
    secret = ("Der Quokkaø sieht.", "The quokkaø sees.")
    write_parallel_text(tmp_path / "toy", {"train": pairs, "valid": pairs[:5], "test": [secret] * 30})
    dm = make_dm(tmp_path / "toy", vocab_size=200, min_frequency=1)
    dm.setup()
    vocabulary = dm.src_tokenizer.tokenizer.get_vocab()
    # "ø" occurs only in the test split: a vocabulary trained on it would hold the character (BPE keeps every
    # character it sees), and with 30 repeats the whole word as one piece.
    assert not any("ø" in piece for piece in vocabulary)
    assert dm.src_tokenizer.unk_id in dm.test_set.src_ids[0]
    leaky = SubwordTokenizer.train([*[p[0] for p in pairs], *[secret[0]] * 30], vocab_size=200, min_frequency=1)
    assert "▁Quokkaø" in leaky.tokenizer.get_vocab()


def test_datamodule_caches_and_reuses_the_vocabulary(tmp_path, monkeypatch):
    write_parallel_text(tmp_path / "toy")
    first = make_dm(tmp_path / "toy")
    first.setup("fit")
    cache = tmp_path / "toy.bpe60.joint"
    assert first.tokenizer_path == cache and (cache / "tokenizer.json").is_file()
    settings = json.loads((cache / "settings.json").read_text())
    assert settings["vocab_size"] == 60 and set(settings["train_sha256"]) == {"train.de", "train.en"}

    def no_training(*args, **kwargs):
        raise AssertionError("the cached vocabulary should have been reused")

    monkeypatch.setattr(SubwordTokenizer, "train", no_training)
    again = make_dm(tmp_path / "toy")
    again.setup("fit")
    assert again.src_tokenizer == first.src_tokenizer
    monkeypatch.undo()
    # New training data invalidates the cache; the vocabulary is trained again and the settings rewritten.
    write_parallel_text(tmp_path / "toy", seed=1)
    changed = make_dm(tmp_path / "toy")
    changed.setup("fit")
    assert json.loads((cache / "settings.json").read_text())["train_sha256"] != settings["train_sha256"]
    separate = make_dm(tmp_path / "toy", joint_vocab=False, tokenizer_path=str(tmp_path / "vocab"))
    separate.setup("fit")
    assert {p.name for p in (tmp_path / "vocab").iterdir()} == {
        "tokenizer.de.json",
        "tokenizer.en.json",
        "settings.json",
    }
    assert separate.src_tokenizer.token_to_id("ü") is not None and separate.tgt_tokenizer.token_to_id("ü") is None


def test_datamodule_max_len_drops_long_training_pairs_and_truncates_evaluation(tmp_path):
    long = (" ".join(["Der große Bär"] * 8) + ".", " ".join(["The big bear"] * 8) + ".")
    pairs = toy_translation_pairs(50, max_words=4)
    write_parallel_text(tmp_path / "toy", {"train": [*pairs, long], "valid": [long], "test": [long]})
    dm = make_dm(tmp_path / "toy", vocab_size=200, min_frequency=1, max_len=12)
    dm.setup()
    assert dm.dropped_train_pairs == 1 and long[0] not in dm.train_set.src_text
    batch = next(iter(dm.val_dataloader()))
    assert batch.src_lengths.item() == 12 and batch.src[0, 11] == dm.eos_id
    assert batch.tgt_lengths.item() == 12 and batch.tgt_out[0, 11] == dm.eos_id
    assert batch.tgt_text == [long[1]]


def test_datamodule_configuration_errors(tmp_path):
    with pytest.raises(ConfigError, match="max_len=300 must be at least 2 and at most max_tokens=256"):
        make_dm(tmp_path, max_len=300, max_tokens=256)
    with pytest.raises(ConfigError, match="must differ"):
        ParallelTextDataModule(str(tmp_path), "de", "de")
    dm = make_dm(tmp_path / "nowhere")
    with pytest.raises(DatasetNotFoundError, match=r"nowhere/train\.de and .* not found"):
        dm.setup()
    with pytest.raises(ConfigError, match="call setup"):
        _ = dm.src_vocab_size


class RecordingModule(pl.LightningModule):
    """Records the training indices of each epoch; learns nothing."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.seen: dict[int, list[int]] = {}

    def training_step(self, batch: TranslationBatch, batch_idx: int):
        self.seen.setdefault(self.current_epoch, []).extend(batch.indices.tolist())
        return (self.weight * batch.tgt_out.float().mean()).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


@pytest.mark.filterwarnings("ignore:You passed in a `val_dataloader` but have no `validation_step`")
def test_lightning_sees_every_example_once_per_epoch_in_a_new_order(tmp_path):
    write_parallel_text(tmp_path / "toy", n_train=80)
    dm = make_dm(tmp_path / "toy")
    module = RecordingModule()
    trainer = pl.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(module, datamodule=dm)
    assert sorted(module.seen[0]) == sorted(module.seen[1]) == dm.train_set.lines
    assert module.seen[0] != module.seen[1]
