"""Prompt templates, label-word scoring with causal and masked LMs, embedding classifiers and the zero-shot module."""

import bz2
import csv
import functools
import math

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from paperzoo.core.errors import ConfigError, DatasetNotFoundError
from paperzoo.llm.data.sentiment import RottenTomatoesTextDataModule
from paperzoo.llm.data.wordpiece import WordPieceTokenizer
from paperzoo.llm.models.bert import BertConfig, BertForMaskedLM, BertModel
from paperzoo.llm.models.gpt import GPT, GPTConfig
from paperzoo.llm.modules.masked_lm import MaskedLMModule
from paperzoo.llm.modules.zero_shot import ZeroShotClassifierModule
from paperzoo.llm.prompting import (
    PromptTemplate,
    class_prototypes,
    classify_by_embedding,
    classify_by_prototypes,
    embed_texts,
    format_few_shot,
    label_word_ids,
    sample_shots,
    score_label_words_causal,
    score_label_words_mlm,
)

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["a", "an", "the", "film", "movie", "plot", "review", "it", "was", "is", "great", "good", "fun", "terrible"]
WORDS += ["bad", "dull", "very", "not", "and", ".", "!", ","]
VOCAB = [*SPECIALS, *WORDS, *"0123456789", "##s"]
TINY_BERT = dict(
    vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
    max_position_embeddings=64,
)  # fmt: skip


@pytest.fixture
def tokenizer():
    return WordPieceTokenizer(VOCAB)


@pytest.fixture
def bert_mlm():
    torch.manual_seed(0)
    return BertForMaskedLM(BertConfig(**TINY_BERT))


@pytest.fixture
def gpt():
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=60, block_size=64, n_embd=32, n_layer=2, n_head=2))


def char_encode(text):
    """A toy tokenizer for the GPT: one id per character."""
    return [3 + ord(c) % 57 for c in text]


TEXTS = ["a very fun film .", "the plot was dull", "not good", "a terrible , terrible movie !"]


# ---------------------------------------------------------------------------------------------- templates


def test_template_splits_into_prompt_and_continuation():
    t = PromptTemplate("Review: {text}\nSentiment: {label}.")
    assert t.fields == ("text", "label") and t.has_label
    assert t.format(text="fun", label="positive") == "Review: fun\nSentiment: positive."
    assert t.prompt(text="fun") == "Review: fun\nSentiment: "
    assert t.continuation("positive") == "positive."
    braces = PromptTemplate("{{literal}} {text} -> {label}")
    assert braces.prompt(text="x") == "{literal} x -> " and braces.fields == ("text", "label")
    with pytest.raises(ConfigError, match="last"):
        PromptTemplate("{label} because {text}")
    with pytest.raises(ConfigError, match="positional"):
        PromptTemplate("{} {label}")
    with pytest.raises(ConfigError, match="text"):
        t.format(label="x")
    with pytest.raises(ConfigError, match=r"no \{label\}"):
        PromptTemplate("{text} It was [MASK].").prompt(text="x")


def test_few_shot_prompt_joins_demonstrations_and_the_query():
    t = PromptTemplate("Q: {text} A: {label}")
    examples = [{"text": "fun", "label": "good"}, {"text": "dull", "label": "bad"}]
    assert format_few_shot(t, examples, {"text": "ok"}) == "Q: fun A: good\n\nQ: dull A: bad\n\nQ: ok A: "
    assert (
        format_few_shot(t, examples[:1], {"text": "ok", "label": "[MASK]"}, " | ") == "Q: fun A: good | Q: ok A: [MASK]"
    )
    assert format_few_shot(t, [], {"text": "ok"}) == "Q: ok A: "


# ---------------------------------------------------------------------------------------------- causal LM


def direct_causal_score(gpt, prompt_ids, continuation_ids):
    """log p(continuation | prompt) from one unpadded forward pass."""
    ids = torch.tensor([prompt_ids + continuation_ids])
    with torch.no_grad():
        log_probs = gpt(ids)[0].log_softmax(-1)  # (T, V)
    return sum(float(log_probs[len(prompt_ids) + j - 1, t]) for j, t in enumerate(continuation_ids))


def test_causal_score_is_the_sum_of_log_softmax_over_the_continuation(gpt):
    template = "Review: {text}\nSentiment: {label}"
    words = [["bad", "awful"], ["good"]]
    scores = score_label_words_causal(gpt, char_encode, TEXTS, template, words, batch_size=3)
    assert scores.shape == (4, 2)
    for n, text in enumerate(TEXTS):
        # The prompt's trailing space moves into the continuation: "...Sentiment:" + " good".
        prompt = char_encode(f"Review: {text}\nSentiment:")
        direct = [[direct_causal_score(gpt, prompt, char_encode(" " + w)) for w in ws] for ws in words]
        assert scores[n, 0] == pytest.approx(max(direct[0]), abs=1e-4)
        assert scores[n, 1] == pytest.approx(direct[1][0], abs=1e-4)
    mean = score_label_words_causal(gpt, char_encode, TEXTS, template, words, reduce="mean", batch_size=8)
    n0 = [
        direct_causal_score(gpt, char_encode(f"Review: {TEXTS[0]}\nSentiment:"), char_encode(" " + w)) for w in words[0]
    ]
    assert mean[0, 0] == pytest.approx(math.log((math.exp(n0[0]) + math.exp(n0[1])) / 2), abs=1e-4)
    # Rows of other lengths padded alongside do not change a row's score.
    alone = torch.cat([score_label_words_causal(gpt, char_encode, [t], template, words, batch_size=1) for t in TEXTS])
    assert torch.allclose(alone, scores, atol=1e-4)


def test_causal_demonstrations_bos_and_truncation(gpt):
    template = PromptTemplate("Q: {text} A: {label}")
    demos = [{"text": "fun", "label": "good"}]
    scores = score_label_words_causal(
        gpt, char_encode, ["dull"], template, ["bad", "good"], demos, separator="; ", bos_token_id=1, max_length=12
    )
    prompt = [1, *char_encode("Q: fun A: good; Q: dull A:")]
    for c, word in enumerate(["bad", "good"]):
        continuation = char_encode(" " + word)
        kept = prompt[-(12 - len(continuation)) :]  # the first tokens go when the row is too long
        assert scores[0, c] == pytest.approx(direct_causal_score(gpt, kept, continuation), abs=1e-4)
    with pytest.raises(ConfigError, match="bos_token_id"):
        score_label_words_causal(gpt, char_encode, ["x"], "{label}", ["a", "b"])


# ---------------------------------------------------------------------------------------------- masked LM


def test_mlm_score_is_the_log_softmax_at_the_mask(bert_mlm, tokenizer):
    words = [["terrible", "bad"], ["great"]]
    scores = score_label_words_mlm(bert_mlm, tokenizer, TEXTS, "{text} it was {label} .", words, batch_size=3)
    ids = label_word_ids(tokenizer, words)
    bert_mlm.eval()
    for n, text in enumerate(TEXTS):
        batch = tokenizer([f"{text} it was [MASK] ."])
        position = int((batch["input_ids"][0] == tokenizer.mask_token_id).nonzero())
        with torch.no_grad():
            log_probs = bert_mlm(batch["input_ids"])[0, position].log_softmax(-1)
        assert scores[n, 0] == pytest.approx(float(log_probs[ids[0]].max()), abs=1e-4)
        assert scores[n, 1] == pytest.approx(float(log_probs[ids[1][0]]), abs=1e-4)
    literal = score_label_words_mlm(bert_mlm, tokenizer, TEXTS, "{text} it was [MASK] .", words, batch_size=1)
    assert torch.allclose(literal, scores, atol=1e-4)  # the same prompt written with [MASK], batched alone
    mean = score_label_words_mlm(bert_mlm, tokenizer, TEXTS, "{text} it was {label} .", words, reduce="mean")
    assert torch.allclose(mean[:, 1], scores[:, 1], atol=1e-5)
    assert (mean[:, 0] <= scores[:, 0] + 1e-6).all() and (mean[:, 0] > scores[:, 0] - math.log(2) - 1e-6).all()


def test_mlm_scoring_refuses_words_of_several_pieces_and_prompts_without_one_mask(bert_mlm, tokenizer):
    with pytest.raises(ConfigError, match="single-token"):
        score_label_words_mlm(bert_mlm, tokenizer, TEXTS, "{text} {label}", ["films", "great"])
    with pytest.raises(ConfigError, match="single-token"):
        score_label_words_mlm(bert_mlm, tokenizer, TEXTS, "{text} {label}", ["wonderful", "great"])
    with pytest.raises(ConfigError, match="0 \\[MASK\\]"):
        score_label_words_mlm(bert_mlm, tokenizer, TEXTS, "{text} it was good", ["bad", "great"])
    with pytest.raises(ConfigError, match="demonstrations"):
        score_label_words_mlm(bert_mlm, tokenizer, TEXTS, "{text} [MASK]", ["bad", "great"], [{"text": "a"}])


# ---------------------------------------------------------------------------------------------- embeddings


def test_embeddings_are_normalised_mean_pools_in_the_texts_order(bert_mlm, tokenizer):
    torch.manual_seed(1)
    encoder = BertModel(BertConfig(**TINY_BERT)).eval()
    got = embed_texts(encoder, tokenizer, TEXTS, batch_size=3)
    for n, text in enumerate(TEXTS):
        ids = tokenizer([text])["input_ids"]
        with torch.no_grad():
            expected = F.normalize(encoder(ids).last_hidden_state[0].mean(0), dim=0)
        assert torch.allclose(got[n], expected, atol=1e-5)
    assert torch.allclose(embed_texts(bert_mlm, tokenizer, TEXTS[:2]), embed_texts(bert_mlm.bert, tokenizer, TEXTS[:2]))

    descriptions = ["a bad film", ["a great film", "a fun movie"]]
    scores = classify_by_embedding(encoder, tokenizer, TEXTS, descriptions)
    d = embed_texts(encoder, tokenizer, ["a bad film", "a great film", "a fun movie"])
    classes = torch.stack([d[0], F.normalize(d[1] + d[2], dim=0)])
    assert torch.allclose(scores, got @ classes.T, atol=1e-5)
    assert (scores.abs() <= 1 + 1e-5).all()

    protos = classify_by_prototypes(encoder, tokenizer, TEXTS, ["bad", "dull", "great"], [0, 0, 1])
    s = embed_texts(encoder, tokenizer, ["bad", "dull", "great"])
    assert torch.allclose(protos[:, 0], got @ F.normalize(s[0] + s[1], dim=0), atol=1e-5)
    assert torch.allclose(protos[:, 1], got @ s[2], atol=1e-5)


def test_prototypes_and_shots():
    emb = torch.tensor([[1.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
    assert torch.allclose(class_prototypes(emb, [1, 0, 1]), torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    with pytest.raises(ConfigError, match="no example"):
        class_prototypes(emb, [0, 0, 0], num_classes=2)
    labels = [0, 1, 1, 0, 1, 0, 0, 1, 1]
    picked = sample_shots(labels, 2, seed=3)
    assert [labels[i] for i in picked] == [0, 0, 1, 1] and len(set(picked)) == 4
    assert sample_shots(labels, 2, seed=3) == picked and sample_shots(labels, 4, seed=3) != sample_shots(labels, 4, 4)
    with pytest.raises(ConfigError, match="fewer than shots"):
        sample_shots(labels, 5)


# ---------------------------------------------------------------------------------------------- the module


def write_reviews(path, n=60):
    """A small Rotten Tomatoes CSV: fresh snippets praise, rotten ones pan; numbers keep them distinct."""
    with bz2.open(path, "wt", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["category", "text", "movie_name"])
        for i in range(n):
            fresh = i % 3 != 0
            words = ("a great , fun film" if fresh else "a dull , bad movie") + f" {i // 10} {i % 10}"
            writer.writerow(["fresh" if fresh else "rotten", words, f"movie {i}"])
    return path


@pytest.fixture
def reviews(tmp_path, tokenizer):
    folder = tokenizer.save(tmp_path / "bert")
    torch.manual_seed(0)
    BertForMaskedLM(BertConfig(**TINY_BERT)).save_pretrained(folder)
    csv_path = write_reviews(tmp_path / "rt.csv.bz2")
    data = RottenTomatoesTextDataModule(str(csv_path), tokenizer=str(folder), batch_size=4, val_size=9, test_size=12)
    return folder, data


def run_test(module, data, tmp_path, fit_first=False):
    trainer = L.Trainer(
        accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=str(tmp_path), max_epochs=0,
    )  # fmt: skip
    if fit_first:
        trainer.fit(module, datamodule=data)
    return trainer.test(module, datamodule=data, verbose=False)[0]


def accuracy(scores, labels):
    return float((scores.argmax(1) == torch.tensor(labels)).float().mean())


@pytest.mark.filterwarnings("ignore:.*returned `None`, this fit will run with no optimizer")
def test_zero_shot_module_embedding_accuracy_is_that_of_the_direct_computation(reviews, tmp_path):
    folder, data = reviews
    descriptions = ["a bad movie", "a great film"]
    module = ZeroShotClassifierModule(
        "embedding", pretrained=str(folder), label_descriptions=descriptions, forward_batch_size=5
    )
    result = run_test(module, data, tmp_path, fit_first=True)  # `paperzoo run` with max_epochs 0: fit does nothing
    with pytest.warns(UserWarning, match="pooler"):  # the MLM folder has none, and embeddings need none
        encoder = BertModel.from_hf(folder)
    expected = classify_by_embedding(encoder, data.tokenizer, data.test_set.texts, descriptions)
    assert result["test/acc"] == pytest.approx(accuracy(expected, data.test_set.labels), abs=1e-6)
    assert result["test/majority_acc"] == pytest.approx(8 / 12)

    few = ZeroShotClassifierModule("embedding", pretrained=str(folder), shots=3, shot_seed=1)
    result = run_test(few, data, tmp_path)
    picked = sample_shots(data.train_set.labels, 3, seed=1)
    support = [data.train_set.texts[i] for i in picked], [data.train_set.labels[i] for i in picked]
    expected = classify_by_prototypes(encoder, data.tokenizer, data.test_set.texts, *support)
    assert result["test/acc"] == pytest.approx(accuracy(expected, data.test_set.labels), abs=1e-6)


def test_zero_shot_module_mlm_from_a_folder_and_from_a_checkpoint(reviews, tmp_path):
    folder, data = reviews
    words = [["bad", "terrible"], ["great"]]
    module = ZeroShotClassifierModule(
        "mlm", pretrained=str(folder), label_words=words, shots=1, template="{text} ! {label} ."
    )
    result = run_test(module, data, tmp_path)
    model = BertForMaskedLM.from_hf(folder)
    train = data.train_set
    picked = sample_shots(train.labels, 1, seed=0)
    demos = [{"text": train.texts[i], "label": words[train.labels[i]][0]} for i in picked]
    expected = score_label_words_mlm(model, data.tokenizer, data.test_set.texts, "{text} ! {label} .", words, demos)
    assert result["test/acc"] == pytest.approx(accuracy(expected, data.test_set.labels), abs=1e-6)

    # A MaskedLMModule checkpoint, written by Lightning, gives the same model.
    trained = MaskedLMModule(pretrained=str(folder), fill_mask_prompts=[])
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
    batch = data.tokenizer(["it was [MASK] ."]) | {"labels": data.tokenizer(["it was good ."])["input_ids"]}
    trainer.validate(trained, dataloaders=DataLoader([batch], batch_size=None), verbose=False)
    checkpoint = tmp_path / "mlm.ckpt"
    trainer.save_checkpoint(checkpoint)
    pattern = str(tmp_path / "m*.ckpt")  # a glob takes the newest match, as the configs' runs/.../version_*/...
    from_checkpoint = ZeroShotClassifierModule("mlm", pretrained=pattern, label_words=words)
    expected = score_label_words_mlm(model, data.tokenizer, data.test_set.texts, "{text} It was {label}.", words)
    assert torch.allclose(from_checkpoint.classify(data.test_set.texts), expected, atol=1e-5)


@pytest.mark.filterwarnings("ignore:.*sampler has shuffling enabled")
def test_zero_shot_module_refuses_a_bare_encoder_for_mlm_and_a_shuffled_loader(reviews, tmp_path):
    folder, data = reviews
    with pytest.raises(ConfigError, match="no masked-LM head"):
        ZeroShotClassifierModule("mlm", pretrained="minilm")
    with pytest.raises(DatasetNotFoundError, match="bert-mlm-shakespeare"):
        ZeroShotClassifierModule("mlm", pretrained=str(tmp_path / "nothing" / "version_*" / "last.ckpt"))
    with pytest.raises(ConfigError, match="method must be"):
        ZeroShotClassifierModule("nearest")
    module = ZeroShotClassifierModule("embedding", pretrained=str(folder))
    data.setup()
    shuffled = functools.partial(
        data._loader, data.test_set, 4, shuffle=True, generator=torch.Generator().manual_seed(0)
    )
    data.test_dataloader = shuffled  # its batches no longer follow test_set
    with pytest.raises(ConfigError, match="in order"):
        run_test(module, data, tmp_path)


def test_zero_shot_module_causal_with_a_gpt2_folder(reviews, tmp_path):
    _, data = reviews
    torch.manual_seed(0)
    folder = GPT(GPTConfig(vocab_size=50257, block_size=64, n_embd=16, n_layer=1, n_head=2)).save_pretrained(
        tmp_path / "gpt2"
    )
    module = ZeroShotClassifierModule("causal", pretrained=str(folder), forward_batch_size=8)
    data.setup()
    scores = module.classify(data.test_set.texts[:3])
    encode = module.tokenizer.encode
    prompt = [50256, *encode(f"Review: {data.test_set.texts[0]}\nSentiment:")]
    for c, word in enumerate(["negative", "positive"]):
        assert scores[0, c] == pytest.approx(direct_causal_score(module.network, prompt, encode(" " + word)), abs=1e-4)
    result = run_test(module, data, tmp_path)
    assert 0.0 <= result["test/acc"] <= 1.0


@pytest.mark.slow
def test_minilm_embeddings_equal_those_of_transformers():
    transformers = pytest.importorskip("transformers")
    from paperzoo.llm.data.sentiment import minilm_path
    from paperzoo.llm.data.text import load_wordpiece

    folder = minilm_path()
    texts = ["A triumph of style over substance.", "Dull, dull, dull.", "One of the year's best films!"]
    reference = transformers.BertModel.from_pretrained(folder).eval()
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    batch = hf_tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = reference(**batch).last_hidden_state
    mask = batch["attention_mask"][..., None].float()
    expected = F.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    ours = BertModel.from_hf(folder)
    assert torch.allclose(embed_texts(ours, load_wordpiece(folder), texts), expected, atol=1e-5)
