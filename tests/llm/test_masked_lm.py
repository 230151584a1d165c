"""Masked-LM data (BERT's masking of Shakespeare segments) and the masked-LM pre-training module."""

import functools
import math

import lightning as L
import pytest
import torch
import torch.nn.functional as F

from paperzoo.core.errors import ConfigError
from paperzoo.llm.data.text import (
    IGNORE_INDEX,
    MLMCollator,
    SeededItemSampler,
    ShakespeareMLMDataModule,
    load_wordpiece,
    mask_tokens,
    pack_lines,
    segment_texts,
)
from paperzoo.llm.data.wordpiece import WordPieceTokenizer
from paperzoo.llm.models.bert import BertForMaskedLM
from paperzoo.llm.modules.masked_lm import MaskedLMModule

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
SPEAKERS = ["hamlet", "ophelia", "lear", "puck", "viola", "iago"]
WORDS = ["to", "be", "or", "not", "that", "is", "the", "question", "line", ".", ",", ":", *"0123456789"]
TINY_BERT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
TINY_BERT.update(max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def write_vocab(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join([*SPECIALS, *SPEAKERS, *WORDS]) + "\n", encoding="utf-8")
    return folder


def write_plays(folder, n=6, lines=60):
    """Plain-text 'works' of a repeated, learnable line, each with its speaker."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        speaker = SPEAKERS[i % len(SPEAKERS)].upper()
        text = "".join(f"{speaker}.\nTo be, or not to be: that is the question. Line {j % 10}.\n" for j in range(lines))
        (folder / f"play_{i}.txt").write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def corpus(tmp_path):
    return write_plays(tmp_path / "plays"), write_vocab(tmp_path / "vocab")


def tiny_data(corpus, **kwargs):
    plays, vocab = corpus
    settings = dict(tokenizer=str(vocab), max_len=24, batch_size=8, val_fraction=0.2, test_fraction=0.2)
    return ShakespeareMLMDataModule(str(plays), **{**settings, **kwargs})


# ---------------------------------------------------------------------------------------------- masking


def test_masking_follows_bert_15_80_10_10_and_never_touches_special_tokens():
    torch.manual_seed(0)
    batch, length, vocab = 2048, 96, 1000
    specials = torch.arange(5)
    ids = torch.randint(5, vocab, (batch, length))
    lengths = torch.randint(8, length + 1, (batch,))
    real = torch.arange(length)[None] < lengths[:, None]
    ids[:, 0] = 2  # [CLS]
    ids[torch.arange(batch), lengths - 1] = 3  # [SEP]
    ids[~real] = 0  # [PAD]
    candidates = real & ~torch.isin(ids, specials)
    random_ids = torch.arange(5, vocab)
    inputs, labels = mask_tokens(ids, candidates, 4, random_ids, generator=torch.Generator().manual_seed(1))

    chosen = labels != IGNORE_INDEX
    n_real = candidates.sum(1)
    expected = torch.clamp((n_real * 0.15).round(), min=1)
    assert torch.equal(chosen.sum(1), expected.long())  # 15% of each row's real tokens, exactly as BERT's code
    assert not (chosen & ~candidates).any()  # never [CLS], [SEP] or padding
    assert torch.equal(labels[chosen], ids[chosen])
    assert torch.equal(inputs[~chosen], ids[~chosen])  # only chosen tokens change
    masked = (inputs[chosen] == 4).float().mean()
    replaced = ((inputs[chosen] != 4) & (inputs[chosen] != ids[chosen])).float().mean()
    kept = (inputs[chosen] == ids[chosen]).float().mean()
    assert chosen.sum() > 10000
    assert abs(masked - 0.8) < 0.02 and abs(replaced - 0.1) < 0.015 and abs(kept - 0.1) < 0.015
    assert not torch.isin(inputs[chosen & (inputs != 4)], specials).any()  # random tokens are never special
    # Uniform over positions: the first and second half of the real tokens are chosen equally often.
    first = (torch.arange(length)[None] < (lengths[:, None] // 2)) & candidates
    rate_first = (chosen & first).sum() / first.sum()
    rate_second = (chosen & candidates & ~first).sum() / (candidates & ~first).sum()
    assert abs(rate_first - rate_second) < 0.01


def test_masking_is_reproducible_by_generator_and_varies_with_seed():
    ids = torch.randint(5, 50, (4, 40))
    candidates = torch.ones_like(ids, dtype=torch.bool)
    draw = functools.partial(mask_tokens, ids, candidates, 4, torch.arange(5, 50))
    a = draw(generator=torch.Generator().manual_seed(3))
    b = draw(generator=torch.Generator().manual_seed(3))
    c = draw(generator=torch.Generator().manual_seed(4))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])
    with pytest.raises(ConfigError, match="mlm_probability"):
        mask_tokens(ids, candidates, 4, torch.arange(5, 50), mlm_probability=0.0)
    with pytest.raises(ConfigError, match="sum <= 1"):
        mask_tokens(ids, candidates, 4, torch.arange(5, 50), mask_fraction=0.8, random_fraction=0.3)


def test_a_row_without_real_tokens_gets_no_prediction():
    ids = torch.tensor([[2, 3, 0, 0], [2, 7, 8, 3]])
    candidates = torch.tensor([[False] * 4, [False, True, True, False]])
    _, labels = mask_tokens(ids, candidates, 4, torch.arange(5, 10))
    assert (labels[0] == IGNORE_INDEX).all() and (labels[1] != IGNORE_INDEX).sum() == 1  # round(0.3) -> at least 1


def test_lines_are_packed_in_order_without_exceeding_the_budget():
    lines = [[1, 2], [], [3, 4, 5], [6] * 11, [7], [8, 9]]
    segments = pack_lines(lines, budget=5)
    assert all(0 < len(s) <= 5 for s in segments)
    assert [t for s in segments for t in s] == [t for line in lines for t in line]
    assert segments[:2] == [[1, 2, 3, 4, 5], [6] * 5]  # a line that fits joins; a long one is cut on its own
    with pytest.raises(ConfigError):
        pack_lines(lines, budget=0)


# ---------------------------------------------------------------------------------------------- the DataModule


def test_datamodule_segments_hold_out_whole_works_and_start_with_cls(corpus):
    data = tiny_data(corpus)
    data.setup()
    described = data.describe()
    works = [set(described[s]["works"]) for s in ("train", "val", "test")]
    assert not (works[0] & works[1] or works[0] & works[2] or works[1] & works[2])
    assert data.vocab_size == len(SPECIALS) + len(SPEAKERS) + len(WORDS)
    batch = next(iter(data.train_dataloader()))
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids", "labels"}
    assert batch["input_ids"].shape[1] <= 24 and (batch["token_type_ids"] == 0).all()
    lengths = batch["attention_mask"].sum(1)
    tok = data.tokenizer
    assert (batch["input_ids"][:, 0] == tok.cls_token_id).all()
    assert (batch["input_ids"][torch.arange(8), lengths - 1] == tok.sep_token_id).all()
    assert ((batch["labels"] != IGNORE_INDEX).sum(1) >= 1).all()
    assert (batch["labels"][batch["attention_mask"] == 0] == IGNORE_INDEX).all()


def real_rows(batches, key):
    """Each row's entries at its real (unpadded) positions."""
    return [row[mask.bool()] for b in batches for row, mask in zip(b[key], b["attention_mask"], strict=True)]


def test_validation_masks_are_fixed_and_hide_the_true_segments(corpus):
    data = tiny_data(corpus)
    data.setup()
    first = list(data.val_dataloader())
    again = list(data.val_dataloader())
    other = tiny_data(corpus, eval_batch_size=3)  # another instance and batch size: the same masks
    other.setup()
    for a, b in zip(first, again, strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a)
    first_labels, first_ids = real_rows(first, "labels"), real_rows(first, "input_ids")
    other_labels = real_rows(list(other.val_dataloader()), "labels")
    assert len(first_labels) == len(other_labels)
    assert all(torch.equal(x, y) for x, y in zip(first_labels, other_labels, strict=True))
    # Putting the labels back gives the unmasked segments of the validation works.
    restored = [torch.where(lab != IGNORE_INDEX, lab, ids) for ids, lab in zip(first_ids, first_labels, strict=True)]
    plays, _ = corpus
    texts = [(plays / f"{name}.txt").read_text() for name in data.split_names["val"]]
    assert [r.tolist() for r in restored] == segment_texts(data.tokenizer, texts, 24)
    masked = sum(int((b["labels"] != IGNORE_INDEX).sum()) for b in first)
    assert 0.1 < masked / sum(int(b["attention_mask"].sum() - 2 * len(b["labels"])) for b in first) < 0.2


def test_training_masks_change_each_epoch_and_repeat_for_the_same_epoch(corpus):
    data = tiny_data(corpus)
    data.setup()

    def epoch_labels(epoch):
        loader = data.train_dataloader()
        loader.sampler.set_epoch(epoch)
        return [b["labels"] for b in loader]

    assert isinstance(data.train_dataloader().sampler, SeededItemSampler)
    a, b, c = epoch_labels(0), epoch_labels(0), epoch_labels(1)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert len(a) == len(c) and not all(x.shape == y.shape and torch.equal(x, y) for x, y in zip(a, c, strict=True))


def test_default_tokenizer_is_bert_uncased_and_collator_needs_a_mask_token(tmp_path):
    assert load_wordpiece(None).vocab_size == 30522
    no_mask = WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a"], mask_token=None)
    with pytest.raises(ConfigError, match="MASK"):
        MLMCollator(no_mask)


# ---------------------------------------------------------------------------------------------- the module


def tiny_module(vocab, lr=3e-3, **kwargs):
    optimizer = functools.partial(torch.optim.AdamW, lr=lr, weight_decay=0.0)
    return MaskedLMModule(
        network="bert_base", network_kwargs=TINY_BERT, tokenizer=str(vocab), optimizer=optimizer, **kwargs
    )


def trainer(tmp_path, **kwargs):
    settings = dict(
        accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=str(tmp_path),
    )  # fmt: skip
    return L.Trainer(**{**settings, **kwargs})


def test_loss_falls_and_metrics_are_those_of_the_masked_positions(corpus, tmp_path):
    torch.manual_seed(0)
    data = tiny_data(corpus)
    module = tiny_module(corpus[1], fill_mask_prompts=["to be, or not to [MASK]: that is the question."])
    before = trainer(tmp_path).validate(module, datamodule=data, verbose=False)[0]
    assert before["val/loss"] == pytest.approx(math.log(data.vocab_size), abs=0.5)
    trainer(tmp_path, max_epochs=4, num_sanity_val_steps=0).fit(module, datamodule=data)
    after = trainer(tmp_path).test(module, datamodule=data, verbose=False)[0]
    assert after["test/loss"] < 0.5 * before["val/loss"]
    assert after["test/perplexity"] == pytest.approx(math.exp(after["test/loss"]), rel=1e-4)
    # The logged numbers are those of a direct computation over the test loader's masked positions.
    module.eval()
    total, hits, count = 0.0, 0, 0
    with torch.no_grad():
        for batch in data.test_dataloader():
            logits = module(batch["input_ids"], batch["attention_mask"])  # (B, T, V), every position
            chosen = batch["labels"] != IGNORE_INDEX
            total += float(F.cross_entropy(logits[chosen], batch["labels"][chosen], reduction="sum"))
            hits += int((logits[chosen].argmax(-1) == batch["labels"][chosen]).sum())
            count += int(chosen.sum())
    assert after["test/loss"] == pytest.approx(total / count, rel=1e-4)
    assert after["test/mlm_acc"] == pytest.approx(hits / count, rel=1e-4) and after["test/mlm_acc"] > 0.5
    # The trained model knows its line.
    ((guesses,),) = module.fill_mask("to be, or not to [MASK]: that is the question.", top_k=3)
    assert guesses[0][0] == "be"
    assert "| to be, or not to [MASK]: that is the question. | be (" in module.fill_mask_table()


def test_fill_mask_gives_the_softmax_at_each_mask(corpus):
    torch.manual_seed(0)
    module = tiny_module(corpus[1])
    text = "[MASK] be or not to [MASK]"
    guesses = module.fill_mask([text, "the [MASK]"], top_k=4)
    assert [len(g) for g in guesses] == [2, 1] and all(len(k) == 4 for g in guesses for k in g)
    batch = module.tokenizer([text])
    with torch.no_grad():
        probs = module(batch["input_ids"], batch["attention_mask"])[0].softmax(-1)  # (T, V)
    for guess, position in zip(guesses[0], (1, 6), strict=True):
        p, index = probs[position].topk(4)
        assert [t for t, _ in guess] == module.tokenizer.convert_ids_to_tokens(index)
        assert [q for _, q in guess] == pytest.approx(p.tolist(), abs=1e-6)
    with pytest.raises(ConfigError, match="MASK"):
        module.fill_mask("no mask here")


def test_module_checks_vocabularies_and_exports_a_bert_folder(corpus, tmp_path):
    with pytest.raises(ConfigError, match="vocab_size"):
        MaskedLMModule(network="bert_base", network_kwargs={**TINY_BERT, "vocab_size": 10}, tokenizer=str(corpus[1]))
    module = tiny_module(corpus[1])
    folder = module.export_pretrained(tmp_path / "exported")
    assert (folder / "vocab.txt").read_text() == (corpus[1] / "vocab.txt").read_text()
    loaded = BertForMaskedLM.from_hf(folder).eval()
    ids = module.tokenizer(["to be or not to [MASK]"])["input_ids"]
    module.eval()
    with torch.no_grad():
        assert torch.allclose(loaded(ids), module(ids), atol=1e-6)
    continued = MaskedLMModule(pretrained=str(folder), network_kwargs={"hidden_dropout_prob": 0.0})
    assert continued.tokenizer.vocab == module.tokenizer.vocab  # the folder's own vocab.txt
    # A DataModule with another vocabulary is refused.
    other = write_vocab(tmp_path / "other")
    (other / "vocab.txt").write_text((other / "vocab.txt").read_text() + "extra\n")
    data = tiny_data((corpus[0], other))
    with pytest.raises(ConfigError, match="tokenizer"):
        trainer(tmp_path).validate(module, datamodule=data, verbose=False)


@pytest.mark.slow
def test_shakespeare_corpus_in_bert_segments():
    data = ShakespeareMLMDataModule(batch_size=4)
    data.setup()
    described = data.describe()
    assert described["train"]["tokens"] > 1_000_000 and described["val"]["segments"] > 100
    batch = next(iter(data.val_dataloader()))
    assert batch["input_ids"].shape[1] <= 128 and data.vocab_size == 30522
    share = (batch["labels"] != IGNORE_INDEX).sum() / (batch["attention_mask"].sum() - 2 * len(batch["labels"]))
    assert 0.13 < share < 0.17


@pytest.mark.parametrize("options", [{"edition": "quarto"}, {"val_fraction": 0.6}, {"test_fraction": 0.0}])
def test_both_shakespeare_datamodules_name_a_bad_split_option(options):
    from paperzoo.llm.data.shakespeare import ShakespeareCharDataModule

    name = next(iter(options))
    for datamodule in (ShakespeareCharDataModule, ShakespeareMLMDataModule):
        with pytest.raises(ConfigError, match=name.split("_")[0]):
            datamodule(**options)
