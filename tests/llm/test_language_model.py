"""Character-level Shakespeare data and the causal language-model module."""

import math

import lightning as L
import pytest
import torch

from paperzoo.core.errors import ConfigError, DatasetNotFoundError
from paperzoo.llm.data.shakespeare import (
    CharVocabulary,
    CharWindows,
    RandomWindowSampler,
    ShakespeareCharDataModule,
    read_texts,
    split_texts,
)
from paperzoo.llm.modules.language_model import CausalLMModule, decay_groups

TINY_GPT = {"block_size": 16, "n_layer": 1, "n_head": 2, "n_embd": 16, "dropout": 0.0}


def write_plays(folder, n=6, lines=80):
    """Plain-text 'works' with a repeated, learnable structure and a character or two of their own."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        speaker = ["HAMLET", "OPHELIA", "LEAR", "PUCK", "VIOLA", "IAGO"][i % 6]
        text = "".join(f"{speaker}. To be, or not to be: line {j % 10}.\n" for j in range(lines))
        (folder / f"play_{i}.txt").write_text(text + ("&" if i == 0 else ""), encoding="utf-8")
    return folder


def test_vocabulary_round_trips_and_names_unknown_characters():
    vocab = CharVocabulary.build("hello world\n")
    assert vocab.itos == sorted(set("hello world\n")) and vocab.vocab_size == 9
    assert vocab.decode(vocab.encode("old hell")) == "old hell"
    assert CharVocabulary.from_json(vocab.to_json()) == vocab
    with pytest.raises(ConfigError, match=r"\['Z', 'q'\]"):
        vocab.encode("qZ")


def test_whole_works_are_held_out(tmp_path):
    texts = read_texts(write_plays(tmp_path / "plays", n=10))
    train, val, test = split_texts(texts, 0.1, 0.2, seed=0)
    assert set(train) | set(val) | set(test) == set(texts)
    assert not (set(train) & set(val) or set(train) & set(test) or set(val) & set(test))
    total = sum(map(len, texts.values()))
    assert sum(len(texts[n]) for n in test) >= 0.2 * total and len(val) >= 1
    assert split_texts(texts, 0.1, 0.2, seed=0) == (train, val, test)
    assert split_texts(texts, 0.1, 0.2, seed=1) != (train, val, test)


def test_datamodule_windows_are_shifted_by_one_and_cover_the_vocabulary(tmp_path):
    data = ShakespeareCharDataModule(
        str(write_plays(tmp_path / "p")),
        block_size=8,
        batch_size=4,
        batches_per_epoch=3,
        eval_windows=10,
        val_fraction=0.2,
        test_fraction=0.2,
    )
    data.setup()
    assert "&" in data.vocab.itos  # characters of held-out works are in the vocabulary too
    x, y = next(iter(data.train_dataloader()))
    assert x.shape == y.shape == (4, 8)
    assert torch.equal(x[:, 1:], y[:, :-1])
    assert len(data.train_dataloader()) == 3 and sum(len(b[0]) for b in data.val_dataloader()) == 10
    first = [b[0] for b in data.val_dataloader()]
    assert all(torch.equal(a, b[0]) for a, b in zip(first, data.val_dataloader(), strict=True))
    assert set(data.describe()) == {"train", "val", "test"}


def test_single_file_is_cut_in_consecutive_parts(tmp_path):
    path = tmp_path / "input.txt"
    path.write_text("".join(chr(97 + i % 26) for i in range(1000)), encoding="utf-8")
    data = ShakespeareCharDataModule(str(path), block_size=8, val_fraction=0.1, test_fraction=0.1)
    data.setup()
    assert [len(data.splits[s]) for s in ("train", "val", "test")] == [800, 100, 100]
    assert data.vocab.decode(data.splits["val"][:3]) == "uvw"  # characters 800-802, and 800 % 26 == 20


def test_window_sampler_is_a_function_of_seed_and_epoch():
    sampler = RandomWindowSampler(1000, 50, seed=3)
    first = list(sampler)
    assert list(sampler) == first and len(first) == 50 and max(first) < 1000
    sampler.set_epoch(1)
    assert list(sampler) != first


def test_bad_input_gets_one_sentence(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        read_texts(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match=r"no \.txt files"):
        read_texts(tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.txt").write_bytes(b"\xff\xfe\xfa")
    with pytest.raises(Exception, match="not UTF-8"):
        read_texts(tmp_path / "bad")
    with pytest.raises(ConfigError, match="block_size"):
        CharWindows(torch.arange(5), 5)
    with pytest.raises(ConfigError, match="vocab_size"):
        CausalLMModule(network_kwargs={"vocab_size": 10})


def test_decay_groups_leave_vectors_undecayed():
    net = torch.nn.Sequential(torch.nn.Embedding(5, 4), torch.nn.LayerNorm(4), torch.nn.Linear(4, 3))
    net[2].bias.requires_grad = False
    decay, no_decay = decay_groups(net)
    assert {p.dim() for p in decay["params"]} == {2} and len(decay["params"]) == 2
    assert len(no_decay["params"]) == 2 and no_decay["weight_decay"] == 0.0  # LayerNorm weight and bias


def test_module_learns_the_text_writes_samples_and_reloads(tmp_path):
    torch.manual_seed(0)
    data = ShakespeareCharDataModule(
        str(write_plays(tmp_path / "p")),
        block_size=16,
        batch_size=16,
        batches_per_epoch=40,
        eval_windows=32,
        val_fraction=0.2,
        test_fraction=0.2,
    )
    module = CausalLMModule(
        network="gpt_shakespeare_char_cpu",
        network_kwargs=TINY_GPT,
        sample_length=40,
        prompt="HAMLET",
        optimizer=lambda p: torch.optim.AdamW(p, lr=1e-2),
    )
    trainer = L.Trainer(
        max_epochs=3,
        accelerator="cpu",
        logger=L.pytorch.loggers.CSVLogger(tmp_path / "logs"),
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(module, data)
    losses = [float(trainer.callback_metrics["val/loss"])]
    assert losses[0] < 0.5 * math.log(data.vocab_size)  # far below a uniform guess
    assert trainer.callback_metrics["val/bpc"] == pytest.approx(losses[0] / math.log(2), rel=1e-5)
    sample = (tmp_path / "logs" / "lightning_logs" / "version_0" / "samples" / "epoch2.txt").read_text()
    assert sample.startswith("HAMLET") and len(sample) == 46
    path = tmp_path / "m.ckpt"
    trainer.save_checkpoint(path)
    loaded = CausalLMModule.load_from_checkpoint(path)
    assert loaded.vocab == data.vocab
    assert loaded.generate_text("HAMLET", 30, seed=5) == module.generate_text("HAMLET", 30, seed=5)
    assert loaded.generate_text("HAMLET", 30, temperature=0.0) == module.generate_text("HAMLET", 30, temperature=0.0)
