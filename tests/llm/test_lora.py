"""paperzoo.llm.layers.lora against peft 0.21 and against the LoRA equation h = W0 x + (alpha / r) B A x.

Parity: our LoRA and peft's, on a tiny random transformers BERT and on a small module of our own, hold the same A and
B (peft's, with B made non-zero; copied through ``from_peft_state_dict``, which also checks the key mapping) and give
the same outputs and LoRA gradients within ``ATOL`` = 1e-6, wrap the same layers for the same ``target_modules``,
count the same trainable parameters and merge to the same weights. Invariants: a fresh adapter leaves the model's
output unchanged; merged equals unmerged; unmerging restores the base weight; training changes only the adapter and
the modules to save; an adapter saved alone reloads into a fresh base model (ours and peft's formats, both ways).
"""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
import transformers
from peft import LoraConfig, PeftModel, get_peft_model, get_peft_model_state_dict
from safetensors import safe_open
from torch import Tensor, nn

from paperzoo.core.errors import ConfigError, CorruptDataError, DatasetNotFoundError
from paperzoo.llm.layers.lora import (
    LoRAConfig,
    LoRALinear,
    apply_lora,
    from_peft_state_dict,
    load_lora,
    load_peft_adapter,
    lora_layers,
    lora_state_dict,
    merge_and_unload,
    merge_lora,
    save_lora,
    save_peft_adapter,
    to_peft_state_dict,
    trainable_parameters,
    unmerge_lora,
)

ATOL = 1e-6
# peft 0.21 asks transformers 5 for the deprecated is_gradient_checkpointing
pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")


def tiny_bert_config(**overrides) -> transformers.BertConfig:
    settings = dict(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        vocab_size=100,
        max_position_embeddings=32,
        hidden_dropout_prob=0.0,  # so that train mode is deterministic too
        attention_probs_dropout_prob=0.0,
        num_labels=3,
    )
    settings.update(overrides)
    return transformers.BertConfig(**settings)


def tiny_bert(**overrides) -> transformers.BertModel:
    torch.manual_seed(0)
    return transformers.BertModel(tiny_bert_config(**overrides)).eval()


def tiny_bert_classifier() -> transformers.BertForSequenceClassification:
    torch.manual_seed(0)
    return transformers.BertForSequenceClassification(tiny_bert_config()).eval()


class TinyNet(nn.Module):
    """A module of our own: nested names, a non-linear child and a head."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.block = nn.Sequential(nn.Linear(16, 16), nn.GELU(), nn.Linear(16, 16, bias=False))
        self.head = nn.Linear(16, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.block(torch.relu(self.fc1(x))))


def tiny_net() -> TinyNet:
    torch.manual_seed(0)
    return TinyNet()


def token_ids() -> Tensor:
    return torch.randint(0, 100, (2, 7), generator=torch.Generator().manual_seed(1))


def bert_output(model: nn.Module, ids: Tensor) -> Tensor:
    return model(input_ids=ids).last_hidden_state


def randomise_lora_b(model: nn.Module) -> None:
    """Give every LoRA B (ours or peft's) random non-zero values, so that the update is visible."""
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.2)


def peft_lora(model: nn.Module, **config) -> PeftModel:
    return get_peft_model(model, LoraConfig(**config))


def test_lora_linear_follows_the_equation() -> None:
    torch.manual_seed(0)
    base = nn.Linear(6, 5)
    layer = LoRALinear(base, r=3, alpha=12.0)
    x = torch.randn(4, 2, 6)
    # B = 0 at initialisation: the wrapped layer equals its base, and A is not zero
    torch.testing.assert_close(layer(x), base(x), atol=0, rtol=0)
    assert layer.lora_A.abs().sum() > 0
    assert layer.lora_A.shape == (3, 6) and layer.lora_B.shape == (5, 3)
    # A is nn.Linear's Kaiming-uniform: bounded by 1 / sqrt(in_features)
    assert layer.lora_A.abs().max() <= 1 / math.sqrt(6)
    with torch.no_grad():
        layer.lora_B.normal_()
    expected = x @ base.weight.T + base.bias + (12.0 / 3) * (x @ layer.lora_A.T @ layer.lora_B.T)
    torch.testing.assert_close(layer(x), expected, atol=ATOL, rtol=0)
    torch.testing.assert_close(layer.delta_weight(), 4.0 * layer.lora_B @ layer.lora_A, atol=ATOL, rtol=0)
    assert repr(layer).startswith("LoRALinear(\n  in_features=6, out_features=5, r=3, alpha=12.0, merged=False")
    assert layer.weight is base.weight and layer.bias is base.bias


def test_lora_linear_dropout_acts_on_the_update_only() -> None:
    torch.manual_seed(0)
    layer = LoRALinear(nn.Linear(16, 16), r=4, alpha=4.0, dropout=0.5)
    x = torch.randn(8, 16)
    # with B = 0 the dropout changes nothing; with B random it changes the training-mode output only
    torch.testing.assert_close(layer.train()(x), layer.base_layer(x))
    with torch.no_grad():
        layer.lora_B.normal_()
    eval_out = layer.eval()(x)
    torch.testing.assert_close(eval_out, layer.base_layer(x) + x @ layer.delta_weight().T)
    assert not torch.allclose(layer.train()(x), eval_out)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"r": 0, "alpha": 1.0}, "positive integer"), ({"r": 2, "alpha": 1.0, "dropout": 1.0}, "dropout")],
)
def test_lora_linear_rejects_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        LoRALinear(nn.Linear(4, 4), **kwargs)
    with pytest.raises(ConfigError, match="in_features"):
        LoRALinear(nn.Conv1d(4, 4, 1), r=2, alpha=2.0)


def test_matches_peft_on_bert_outputs_and_gradients() -> None:
    base = tiny_bert()
    peft_model = peft_lora(copy.deepcopy(base), r=4, lora_alpha=8, target_modules=["query", "value"])
    randomise_lora_b(peft_model)
    ours = apply_lora(copy.deepcopy(base), ["query", "value"], r=4, alpha=8)
    # peft's whole live state dict maps onto ours, strictly: base weights, A and B
    ours.load_state_dict(from_peft_state_dict(peft_model.state_dict()), strict=True)
    ids = token_ids()
    expected = bert_output(peft_model, ids)
    got = bert_output(ours, ids)
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)
    assert not torch.allclose(got, bert_output(base, ids), atol=1e-3)  # the update is visible
    cotangent = torch.randn_like(got)
    (expected * cotangent).sum().backward()
    (got * cotangent).sum().backward()
    peft_grads = {k: p.grad for k, p in peft_model.named_parameters() if p.requires_grad}
    our_grads = {k: p.grad for k, p in ours.named_parameters() if p.requires_grad}
    mapped = from_peft_state_dict(peft_grads)
    assert set(mapped) == set(our_grads) and len(our_grads) == 8
    for key, grad in our_grads.items():
        torch.testing.assert_close(grad, mapped[key], atol=ATOL, rtol=0)


def test_matches_peft_on_own_module() -> None:
    base = tiny_net()
    targets = ["fc1", "block.0", "2"]  # "2" matches block.2 by its last name component
    peft_model = peft_lora(copy.deepcopy(base), r=2, lora_alpha=5, target_modules=targets)
    randomise_lora_b(peft_model)
    ours = apply_lora(copy.deepcopy(base), targets, r=2, alpha=5)
    assert [name for name, _ in lora_layers(ours)] == ["fc1", "block.0", "block.2"]
    ours.load_state_dict(from_peft_state_dict(peft_model.state_dict()), strict=True)
    x = torch.randn(5, 8)
    torch.testing.assert_close(ours(x), peft_model(x), atol=ATOL, rtol=0)


def peft_targets(peft_model: PeftModel) -> set[str]:
    prefix = "base_model.model."
    return {
        name.removeprefix(prefix).removesuffix(".lora_A")
        for name, _ in peft_model.named_modules()
        if name.endswith(".lora_A")
    }


@pytest.mark.parametrize(
    "targets",
    [
        ["query", "value"],
        ["query", "ut.dense"],  # a suffix counts only at a "." boundary: "ut.dense" matches no "output.dense"
        ["dense"],
        ["attention.output.dense"],
        r".*\.layer\.1\..*\.(query|key)",
        r".*(intermediate|output)\.dense",
    ],
)
def test_target_matching_is_peft_s(targets: list[str] | str) -> None:
    base = tiny_bert()
    ours = apply_lora(copy.deepcopy(base), targets, r=2)
    wrapped = {name for name, _ in lora_layers(ours)}
    assert wrapped == peft_targets(peft_lora(copy.deepcopy(base), r=2, target_modules=targets))
    assert wrapped  # and the pattern did match something


def test_regex_target_matches_full_names_only() -> None:
    ours = apply_lora(tiny_bert(), r".*\.layer\.1\..*\.(query|key)", r=2)
    assert {name for name, _ in lora_layers(ours)} == {
        "encoder.layer.1.attention.self.query",
        "encoder.layer.1.attention.self.key",
    }
    with pytest.raises(ConfigError, match="matched no layer"):
        apply_lora(tiny_bert(), "query", r=2)  # a regex must match the whole name


def test_no_match_and_non_linear_match_raise() -> None:
    with pytest.raises(ConfigError, match=r"matched no layer of BertModel; its linear layers include encoder\.layer"):
        apply_lora(tiny_bert(), ["q_proj"], r=2)
    with pytest.raises(ConfigError, match="BertAttention"):
        apply_lora(tiny_bert(), ["attention"], r=2)
    with pytest.raises(ConfigError, match="modules_to_save entry 'score'"):
        apply_lora(tiny_bert_classifier(), ["query"], r=2, modules_to_save=["score"])
    model = apply_lora(tiny_bert(), ["query"], r=2)
    with pytest.raises(ConfigError, match="already has LoRA layers"):
        apply_lora(model, ["value"], r=2)
    with pytest.raises(ConfigError, match="no LoRA layers"):
        merge_lora(tiny_bert())


@pytest.mark.parametrize("modules_to_save", [[], ["classifier"]])
def test_trainable_parameters_equal_peft(modules_to_save: list[str]) -> None:
    base = tiny_bert_classifier()
    ours = apply_lora(copy.deepcopy(base), ["query", "value"], r=4, alpha=8, modules_to_save=modules_to_save)
    peft_model = peft_lora(
        copy.deepcopy(base), r=4, lora_alpha=8, target_modules=["query", "value"], modules_to_save=modules_to_save
    )
    peft_trainable, peft_total = peft_model.get_nb_trainable_parameters()
    trainable, total = trainable_parameters(ours)
    classifier = sum(p.numel() for p in base.classifier.parameters()) if modules_to_save else 0
    assert trainable == peft_trainable == 2 * 2 * 4 * (32 + 32) + classifier
    # peft keeps a frozen copy of each module it saves; we do not
    assert total == peft_total - classifier
    assert total == sum(p.numel() for p in base.parameters()) + 2 * 2 * 4 * 64


def test_merge_equals_unmerged_and_unmerge_restores_the_weight() -> None:
    base = tiny_bert()
    model = apply_lora(copy.deepcopy(base), ["query", "value", "dense"], r=4, alpha=8)
    randomise_lora_b(model)
    ids = token_ids()
    unmerged = bert_output(model, ids)
    merge_lora(model)
    merge_lora(model)  # merging twice is a no-op
    assert all(layer.merged for _, layer in lora_layers(model))
    torch.testing.assert_close(bert_output(model, ids), unmerged, atol=1e-5, rtol=0)
    query = model.encoder.layer[0].attention.self.query
    original = base.encoder.layer[0].attention.self.query.weight
    assert (query.base_layer.weight - original).abs().max() > 1e-3  # the update was folded in
    unmerge_lora(model)
    for name, layer in lora_layers(model):
        torch.testing.assert_close(layer.base_layer.weight, base.get_submodule(name).weight, atol=ATOL, rtol=0)
    torch.testing.assert_close(bert_output(model, ids), unmerged, atol=ATOL, rtol=0)


def test_merge_and_unload_matches_peft() -> None:
    base = tiny_bert()
    peft_model = peft_lora(copy.deepcopy(base), r=4, lora_alpha=8, target_modules=["query", "value"])
    randomise_lora_b(peft_model)
    ours = apply_lora(copy.deepcopy(base), ["query", "value"], r=4, alpha=8)
    ours.load_state_dict(from_peft_state_dict(peft_model.state_dict()))
    ids = token_ids()
    before = bert_output(ours, ids)
    merged = merge_and_unload(ours)
    peft_merged = peft_model.merge_and_unload()
    assert not any(isinstance(module, LoRALinear) for module in merged.modules())
    assert type(merged.encoder.layer[0].attention.self.query) is nn.Linear
    assert not hasattr(merged, "lora_config")
    state, peft_state = merged.state_dict(), peft_merged.state_dict()
    assert state.keys() == peft_state.keys() == base.state_dict().keys()
    for key, value in state.items():
        torch.testing.assert_close(value, peft_state[key], atol=ATOL, rtol=0)
    torch.testing.assert_close(bert_output(merged, ids), before, atol=1e-5, rtol=0)


def test_training_changes_only_lora_and_modules_to_save() -> None:
    model = apply_lora(tiny_bert_classifier(), ["query", "value"], r=4, alpha=8, modules_to_save=["classifier"])
    before = {key: value.clone() for key, value in model.state_dict().items()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    ids, labels = token_ids(), torch.tensor([0, 2])
    model.train()
    losses = []
    for _ in range(5):
        loss = nn.functional.cross_entropy(model(input_ids=ids).logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    changed = {key for key, value in model.state_dict().items() if not torch.equal(value, before[key])}
    adapter = set(lora_state_dict(model))
    assert changed == adapter
    layers = [f"bert.encoder.layer.{i}.attention.self.{m}" for i in range(2) for m in ("query", "value")]
    assert adapter == {f"{layer}.lora_{ab}" for layer in layers for ab in "AB"} | {
        "classifier.weight",
        "classifier.bias",
    }


def test_save_and_load_adapter_into_a_fresh_base(tmp_path) -> None:
    base = tiny_bert_classifier()
    model = apply_lora(copy.deepcopy(base), ["query", "value"], r=4, alpha=8, modules_to_save=["classifier"])
    randomise_lora_b(model)
    with torch.no_grad():
        model.classifier.weight.add_(1.0)
    path = save_lora(model, tmp_path / "adapter.safetensors")
    with safe_open(str(path), framework="pt") as handle:
        keys = set(handle.keys())
        config = json.loads(handle.metadata()["paperzoo_lora_config"])
    assert keys == set(lora_state_dict(model))
    assert all(".lora_" in key or key.startswith("classifier.") for key in keys)
    assert config == {
        "target_modules": ["query", "value"],
        "r": 4,
        "alpha": 8,
        "dropout": 0.0,
        "modules_to_save": ["classifier"],
    }
    fresh = load_lora(copy.deepcopy(base), path)
    assert fresh.lora_config == LoRAConfig(["query", "value"], 4, 8, 0.0, ["classifier"])
    ids = token_ids()
    torch.testing.assert_close(fresh(input_ids=ids).logits, model(input_ids=ids).logits, atol=0, rtol=0)
    assert trainable_parameters(fresh) == trainable_parameters(model)


def test_loading_an_adapter_into_the_wrong_model_raises(tmp_path) -> None:
    model = apply_lora(tiny_bert(), ["query", "value"], r=4, alpha=8)
    path = save_lora(model, tmp_path / "adapter.safetensors")
    with pytest.raises(CorruptDataError, match=r"lora_A' of shape \(4, 32\) where this BertModel has \(4, 48\)"):
        load_lora(tiny_bert(hidden_size=48), path)
    with pytest.raises(CorruptDataError, match=r"has 'encoder\.layer\.1\.attention\.self\.query\.lora_A'"):
        load_lora(tiny_bert(num_hidden_layers=1), path)
    with pytest.raises(CorruptDataError, match="does not fit TinyNet"):
        load_lora(tiny_net(), path)
    with pytest.raises(ConfigError, match="r=4, alpha=8"):
        load_lora(apply_lora(tiny_bert(), ["query", "value"], r=4, alpha=4), path)
    with pytest.raises(DatasetNotFoundError):
        load_lora(tiny_bert(), tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CorruptDataError, match="not a readable safetensors file"):
        load_lora(tiny_bert(), tmp_path / "junk.safetensors")


def test_peft_adapter_loads_into_ours_and_back(tmp_path) -> None:
    base = tiny_bert_classifier()
    config = dict(r=4, lora_alpha=8, target_modules=["query", "value"], modules_to_save=["classifier"])
    peft_model = peft_lora(copy.deepcopy(base), **config)
    randomise_lora_b(peft_model)
    ids = token_ids()
    expected = peft_model(input_ids=ids).logits
    # peft's saved adapter state dict <-> ours, key for key
    peft_adapter = get_peft_model_state_dict(peft_model)
    ours = apply_lora(copy.deepcopy(base), ["query", "value"], r=4, alpha=8, modules_to_save=["classifier"])
    state = from_peft_state_dict(peft_adapter)
    assert state.keys() == lora_state_dict(ours).keys()
    ours.load_state_dict(state, strict=False)
    torch.testing.assert_close(ours(input_ids=ids).logits, expected, atol=ATOL, rtol=0)
    back = to_peft_state_dict(ours)
    assert back.keys() == peft_adapter.keys()
    assert all(torch.equal(back[key], peft_adapter[key]) for key in back)
    live = to_peft_state_dict(ours, adapter_name="default")
    peft_live = {k: v for k, v in peft_model.state_dict().items() if ".lora_" in k or "modules_to_save" in k}
    assert live.keys() == peft_live.keys()
    # a peft adapter folder -> ours
    peft_model.save_pretrained(tmp_path / "peft")
    loaded = load_peft_adapter(copy.deepcopy(base), tmp_path / "peft")
    torch.testing.assert_close(loaded(input_ids=ids).logits, expected, atol=ATOL, rtol=0)
    # ours -> a peft adapter folder -> peft
    save_peft_adapter(loaded, tmp_path / "ours")
    reloaded = PeftModel.from_pretrained(copy.deepcopy(base), tmp_path / "ours")
    torch.testing.assert_close(reloaded(input_ids=ids).logits, expected, atol=ATOL, rtol=0)


def test_unsupported_peft_adapters_are_refused(tmp_path) -> None:
    peft_model = peft_lora(tiny_bert(), r=4, lora_alpha=8, target_modules=["query"], use_rslora=True)
    peft_model.save_pretrained(tmp_path)
    with pytest.raises(ConfigError, match="use_rslora"):
        load_peft_adapter(tiny_bert(), tmp_path)
    with pytest.raises(ConfigError, match="LoRA variant"):
        from_peft_state_dict({"base_model.model.embeddings.word_embeddings.lora_embedding_A.default": torch.zeros(1)})
