"""Tests for GPT-2 (paperzoo.llm.models.gpt), Radford et al. 2019.

Parity with ``transformers.GPT2LMHeadModel`` on a random tiny config (weights loaded from the object and from a
folder, float32, logits within ``TOL``), the key-value cache and left padding against the plain forward, the
invariants of a causal language model, generation against transformers' and across cache / padding, the sampling
filters against transformers' logits warpers, the save / load round trip and the errors.
"""

import json

import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file
from transformers.generation.logits_process import TopKLogitsWarper, TopPLogitsWarper

from paperzoo.core.errors import ConfigError, CorruptDataError, DatasetNotFoundError
from paperzoo.llm.models.gpt import (
    GPT,
    SMALL_KWARGS,
    GPTConfig,
    gpt2,
    gpt2_medium,
    gpt_shakespeare_char,
    gpt_shakespeare_char_cpu,
    top_k_filter,
    top_p_filter,
)
from paperzoo.llm.registry import create_model, list_models

TOL = 1e-4  # float32 logits, ours vs transformers: the same computation in a different order (observed ~1e-6)
V, BLOCK, D, LAYERS, HEADS = 100, 32, 32, 2, 2
NAMES = ("gpt2", "gpt2_medium", "gpt_shakespeare_char", "gpt_shakespeare_char_cpu")


def _hf_config(**kwargs) -> transformers.GPT2Config:
    base = dict(
        vocab_size=V,
        n_positions=BLOCK,
        n_embd=D,
        n_layer=LAYERS,
        n_head=HEADS,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=None,
        eos_token_id=None,
    )
    return transformers.GPT2Config(**{**base, **kwargs})


def _randomise(model: torch.nn.Module, seed: int) -> None:
    """Add N(0, 0.3) noise to every parameter.

    GPT-2's initialisation (std 0.02, unit LayerNorms, zero biases) gives nearly uniform next-token distributions and
    degenerate greedy continuations; with larger random weights every parameter shows in the logits, and generation
    produces varied tokens, so a wrong mapping or mask cannot hide.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.3 * torch.randn(param.shape, generator=gen))


@pytest.fixture(scope="module")
def hf_model() -> transformers.GPT2LMHeadModel:
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(_hf_config()).eval()
    _randomise(model, seed=1)
    return model


@pytest.fixture(scope="module")
def model(hf_model) -> GPT:
    return GPT.from_hf(hf_model).eval()


def _tokens(batch: int, length: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, V, (batch, length), generator=torch.Generator().manual_seed(seed))


def _left_pad(rows: list[torch.Tensor], pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids, mask)`` of the 1-D ``rows`` left-padded to the longest."""
    length = max(len(r) for r in rows)
    ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    mask = torch.zeros(len(rows), length, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, length - len(row) :] = row
        mask[i, length - len(row) :] = 1
    return ids, mask


# --- parity with transformers -----------------------------------------------------------------------------------------


def test_logits_and_gradients_match_transformers(hf_model, model):
    x = _tokens(3, 12)
    ours, ref = model(x), hf_model(x).logits
    assert ours.shape == (3, 12, V)
    assert ref.abs().max() > 1.0  # the logits are not all near zero, so TOL is a real bound
    torch.testing.assert_close(ours, ref, atol=TOL, rtol=0)

    weights = torch.randn(3, 12, V, generator=torch.Generator().manual_seed(2))
    model.zero_grad()
    hf_model.zero_grad()
    (ours * weights).sum().backward()
    (ref * weights).sum().backward()
    hf_params = dict(hf_model.named_parameters())
    # the fused QKV matrix: ours (out, in) is the transpose of GPT-2's Conv1D (in, out)
    torch.testing.assert_close(
        model.h[1].attn.c_attn.weight.grad, hf_params["transformer.h.1.attn.c_attn.weight"].grad.t(), atol=1e-3, rtol=0
    )
    torch.testing.assert_close(model.wte.weight.grad, hf_params["transformer.wte.weight"].grad, atol=1e-3, rtol=0)
    torch.testing.assert_close(model.wpe.weight.grad, hf_params["transformer.wpe.weight"].grad, atol=1e-3, rtol=0)
    model.zero_grad()
    hf_model.zero_grad()


def test_loads_from_a_transformers_folder(hf_model, tmp_path):
    hf_model.save_pretrained(tmp_path)
    loaded = GPT.from_hf(tmp_path).eval()
    x = _tokens(2, 9, seed=3)
    torch.testing.assert_close(loaded(x), hf_model(x).logits, atol=TOL, rtol=0)
    assert loaded.lm_head.weight is loaded.wte.weight


def test_loads_a_gpt2model_without_head(hf_model):
    base = hf_model.transformer  # a GPT2Model: names without "transformer.", no lm_head
    ours = GPT.from_hf(base).eval()
    x = _tokens(2, 7, seed=4)
    expected = base(x).last_hidden_state @ base.wte.weight.t()
    torch.testing.assert_close(ours(x), expected, atol=TOL, rtol=0)


def test_left_padded_batch_matches_transformers_with_positions_from_mask(hf_model, model):
    rows = [_tokens(1, n, seed=n)[0] for n in (10, 6, 3)]
    ids, mask = _left_pad(rows)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    ref = hf_model(ids, attention_mask=mask, position_ids=positions).logits
    ours = model(ids, attention_mask=mask)
    real = mask.bool()
    torch.testing.assert_close(ours[real], ref[real], atol=TOL, rtol=0)


# --- the cache and padding against the plain forward ------------------------------------------------------------------


def test_incremental_decoding_with_cache_equals_full_forward(model):
    x = _tokens(2, 12, seed=5)
    full = model(x)
    logits, cache = model(x[:, :4], use_cache=True)  # a prompt
    pieces = [logits]
    logits, cache = model(x[:, 4:7], past_key_values=cache, use_cache=True)  # a chunk of 3 with a cache
    pieces.append(logits)
    for t in range(7, 12):  # then one token at a time
        logits, cache = model(x[:, t : t + 1], past_key_values=cache, use_cache=True)
        pieces.append(logits)
    assert len(cache) == LAYERS
    assert cache[0][0].shape == (2, HEADS, 12, D // HEADS)
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=0)


def test_left_padded_batch_equals_rows_alone(model):
    rows = [_tokens(1, n, seed=10 + n)[0] for n in (9, 4, 1)]
    ids, mask = _left_pad(rows, pad_id=7)
    batched = model(ids, attention_mask=mask)
    assert torch.isfinite(batched).all()  # padding queries must not produce NaN (they would spread through matmuls)
    for i, row in enumerate(rows):
        alone = model(row[None])[0]
        torch.testing.assert_close(batched[i, -len(row) :], alone, atol=1e-5, rtol=0)


def test_left_padded_incremental_decoding_equals_rows_alone(model):
    rows = [_tokens(1, n, seed=20 + n)[0] for n in (8, 3)]
    ids, mask = _left_pad(rows)
    new = _tokens(2, 4, seed=6)
    _, cache = model(ids, attention_mask=mask, use_cache=True)
    mask = torch.cat((mask, torch.ones(2, 2, dtype=torch.long)), dim=1)
    chunk, cache = model(new[:, :2], attention_mask=mask, past_key_values=cache, use_cache=True)
    mask = torch.cat((mask, torch.ones(2, 1, dtype=torch.long)), dim=1)
    step, _ = model(new[:, 2:3], attention_mask=mask, past_key_values=cache, use_cache=True)
    for i, row in enumerate(rows):
        alone = model(torch.cat((row, new[i, :3]))[None])[0]
        torch.testing.assert_close(chunk[i], alone[-3:-1], atol=1e-5, rtol=0)
        torch.testing.assert_close(step[i, 0], alone[-1], atol=1e-5, rtol=0)


def test_causality_past_logits_ignore_future_tokens(model):
    x = _tokens(1, 12, seed=7)
    y = x.clone()
    y[:, 6:] = (y[:, 6:] + 1) % V
    lx, ly = model(x), model(y)
    torch.testing.assert_close(lx[:, :6], ly[:, :6], atol=1e-6, rtol=0)
    assert (lx[:, 6:] - ly[:, 6:]).abs().amax() > 1e-2  # the changed tokens do matter


# --- generation -------------------------------------------------------------------------------------------------------


def test_greedy_generation_matches_transformers(hf_model, model):
    rows = [_tokens(1, n, seed=30 + n)[0] for n in (7, 4)]
    ids, mask = _left_pad(rows)
    ref = hf_model.generate(ids, attention_mask=mask, max_new_tokens=10, do_sample=False, pad_token_id=0)
    ours = model.generate(ids, 10, do_sample=False, attention_mask=mask)
    assert ours.shape == (2, 7 + 10)
    assert len(set(ours[:, 7:].flatten().tolist())) > 4  # varied tokens, not one repeated
    assert torch.equal(ours, ref)


@pytest.mark.parametrize("prompt_len", [5, 20])  # 20 + 16 new tokens runs past block_size 32: the cropped context
def test_generation_with_cache_equals_without(model, prompt_len):
    x = _tokens(2, prompt_len, seed=8)
    greedy_cached = model.generate(x, 16, do_sample=False, use_cache=True)
    greedy_plain = model.generate(x, 16, do_sample=False, use_cache=False)
    assert torch.equal(greedy_cached, greedy_plain)
    kwargs = dict(temperature=0.9, top_k=50, top_p=0.95)
    sampled_cached = model.generate(x, 16, generator=torch.Generator().manual_seed(0), **kwargs)
    sampled_plain = model.generate(x, 16, use_cache=False, generator=torch.Generator().manual_seed(0), **kwargs)
    assert torch.equal(sampled_cached, sampled_plain)
    assert not torch.equal(sampled_cached, greedy_cached)  # sampling is not greedy


def test_batched_left_padded_generation_equals_one_by_one(model):
    rows = [_tokens(1, n, seed=40 + n)[0] for n in (6, 2, 4)]
    ids, mask = _left_pad(rows, pad_id=3)
    for use_cache in (True, False):
        batched = model.generate(ids, 8, do_sample=False, attention_mask=mask, use_cache=use_cache)
        for i, row in enumerate(rows):
            alone = model.generate(row[None], 8, do_sample=False)[0]
            assert torch.equal(batched[i, -(len(row) + 8) :], alone)


def test_zero_temperature_and_top_k_one_are_greedy(model):
    x = _tokens(2, 5, seed=9)
    greedy = model.generate(x, 8, do_sample=False)
    assert torch.equal(model.generate(x, 8, temperature=0.0), greedy)
    assert torch.equal(model.generate(x, 8, temperature=1e-6, generator=torch.Generator().manual_seed(1)), greedy)
    assert torch.equal(model.generate(x, 8, top_k=1, generator=torch.Generator().manual_seed(2)), greedy)


def test_sampling_follows_the_seed(model):
    x = _tokens(2, 5, seed=11)
    a = model.generate(x, 8, generator=torch.Generator().manual_seed(5))
    b = model.generate(x, 8, generator=torch.Generator().manual_seed(5))
    c = model.generate(x, 8, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_eos_finishes_rows_and_stops(model):
    x = _tokens(2, 5, seed=12)
    free = model.generate(x, 6, do_sample=False)
    eos = int(free[0, 5])  # row 0's first new token
    out = model.generate(x, 6, do_sample=False, eos_token_id=eos)
    assert (out[0, 5:] == eos).all()
    row1 = free[1, 5:].tolist()
    stop = row1.index(eos) + 1 if eos in row1 else len(row1)
    assert out[1, 5 : 5 + stop].tolist() == row1[:stop]
    alone = model.generate(x[:1], 6, do_sample=False, eos_token_id=eos)
    assert alone.shape == (1, 6)  # every row finished after one token: generation stopped


def test_generate_runs_in_eval_mode_and_restores_the_mode():
    torch.manual_seed(0)
    net = GPT(GPTConfig(vocab_size=V, block_size=BLOCK, n_embd=D, n_layer=LAYERS, n_head=HEADS, dropout=0.5))
    _randomise(net, seed=3)
    x = _tokens(2, 4, seed=13)
    net.train()
    first = net.generate(x, 6, do_sample=False)
    assert net.training
    assert torch.equal(first, net.eval().generate(x, 6, do_sample=False))


# --- sampling filters -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 5, 40, 100, 150])
def test_top_k_matches_transformers(k):
    logits = torch.randn(4, V, generator=torch.Generator().manual_seed(k))
    expected = TopKLogitsWarper(top_k=k)(None, logits)
    assert torch.equal(top_k_filter(logits, k), expected)
    assert (top_k_filter(logits, k) > float("-inf")).sum(-1).tolist() == [min(k, V)] * 4


@pytest.mark.parametrize("p", [0.05, 0.3, 0.7, 0.9, 0.99, 1.0])
def test_top_p_matches_transformers(p):
    logits = 2.0 * torch.randn(4, V, generator=torch.Generator().manual_seed(int(100 * p)))
    expected = TopPLogitsWarper(top_p=p)(None, logits)
    assert torch.equal(top_p_filter(logits, p), expected)


def test_top_p_keeps_the_smallest_set_reaching_p():
    probs = torch.tensor([0.05, 0.5, 0.15, 0.3])  # sorted: 0.5, 0.3, 0.15, 0.05
    logits = probs.log()
    kept = {p: (top_p_filter(logits, p) > float("-inf")).tolist() for p in (0.4, 0.75, 0.85, 0.97)}
    assert kept[0.4] == [False, True, False, False]  # 0.5 alone reaches 0.4
    assert kept[0.75] == [False, True, False, True]  # 0.5 + 0.3
    assert kept[0.85] == [False, True, True, True]  # 0.5 + 0.3 + 0.15
    assert kept[0.97] == [True, True, True, True]
    uniform = torch.zeros(4)  # probabilities exactly 1/4: two tokens reach p = 0.5 exactly, and that is enough
    assert (top_p_filter(uniform, 0.5) > float("-inf")).sum() == 2
    kept_values = top_p_filter(logits, 0.75)
    assert torch.equal(kept_values[[1, 3]], logits[[1, 3]])  # kept logits are unchanged


def test_filters_reject_bad_arguments():
    logits = torch.randn(2, V)
    with pytest.raises(ConfigError, match="top_k"):
        top_k_filter(logits, 0)
    for p in (0.0, 1.5):
        with pytest.raises(ConfigError, match="top_p"):
            top_p_filter(logits, p)


# --- saving and loading -----------------------------------------------------------------------------------------------


def test_save_pretrained_round_trip_through_transformers(model, tmp_path):
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "gpt2" and config["n_embd"] == D
    assert tuple(load_file(tmp_path / "model.safetensors")["transformer.h.0.mlp.c_fc.weight"].shape) == (D, 4 * D)
    hf = transformers.GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    back = GPT.from_hf(tmp_path).eval()
    x = _tokens(2, 10, seed=14)
    torch.testing.assert_close(hf(x).logits, model(x), atol=TOL, rtol=0)
    torch.testing.assert_close(back(x), model(x), atol=0, rtol=0)


def test_model_without_biases_saves_as_gpt2_with_zero_biases(tmp_path):
    torch.manual_seed(0)
    net = gpt_shakespeare_char_cpu(**SMALL_KWARGS["gpt_shakespeare_char_cpu"]).eval()
    _randomise(net, seed=4)
    assert net.ln_f.bias is None and net.h[0].attn.c_attn.bias is None
    net.save_pretrained(tmp_path)
    hf = transformers.GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    assert hf.transformer.h[0].attn.c_attn.bias.abs().sum() == 0
    x = _tokens(2, 10, seed=15)
    torch.testing.assert_close(hf(x).logits, net(x), atol=TOL, rtol=0)


def test_config_round_trip_with_transformers():
    ours = GPTConfig(vocab_size=V, block_size=BLOCK, n_embd=D, n_layer=3, n_head=4, dropout=0.1, layer_norm_eps=1e-6)
    hf = transformers.GPT2Config(**ours.to_hf_dict())
    assert (hf.n_embd, hf.n_layer, hf.n_head, hf.n_positions, hf.resid_pdrop) == (D, 3, 4, BLOCK, 0.1)
    assert hf.layer_norm_epsilon == 1e-6 and hf.activation_function == "gelu_new"
    assert GPTConfig.from_hf_dict(hf.to_dict()) == ours


def test_missing_and_corrupt_folders_raise(model, tmp_path):
    with pytest.raises(DatasetNotFoundError):
        GPT.from_hf(tmp_path / "nowhere")
    folder = tmp_path / "corrupt"
    model.save_pretrained(folder)
    (folder / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CorruptDataError):
        GPT.from_hf(folder)


def test_weights_that_do_not_fit_the_config_raise(model, tmp_path):
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "n_inner": 3 * D}))
    with pytest.raises(CorruptDataError, match="shape"):
        GPT.from_hf(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**config, "n_layer": 1}))
    with pytest.raises(CorruptDataError, match=r"transformer\.h\.1"):
        GPT.from_hf(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(config))
    weights = load_file(tmp_path / "model.safetensors")
    del weights["transformer.h.1.ln_2.bias"]
    save_file(weights, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(CorruptDataError, match="lacks"):
        GPT.from_hf(tmp_path)


def test_bad_configs_and_inputs_raise(model):
    with pytest.raises(ConfigError, match="divisible"):
        GPTConfig(n_embd=30, n_head=4)
    with pytest.raises(ConfigError, match="activation"):
        GPTConfig(activation="tanh")
    with pytest.raises(ConfigError, match="not GPT-2"):
        GPTConfig.from_hf_dict({"model_type": "bert"})
    with pytest.raises(ConfigError, match="cross_attention"):
        GPTConfig.from_hf_dict({"model_type": "gpt2", "add_cross_attention": True})
    with pytest.raises(ConfigError, match="block size"):
        model(_tokens(1, BLOCK + 1))
    _, cache = model(_tokens(1, 30), use_cache=True)
    with pytest.raises(ConfigError, match="block size"):
        model(_tokens(1, 3), past_key_values=cache)
    with pytest.raises(ConfigError, match="attention_mask"):
        model(_tokens(2, 5), attention_mask=torch.ones(2, 4))
    with pytest.raises(ConfigError, match="temperature"):
        model.generate(_tokens(1, 3), 2, temperature=-1.0)


# --- builders, parameter counts, initialisation -----------------------------------------------------------------------


def test_released_parameter_counts():
    with torch.device("meta"):
        small, medium = gpt2(), gpt2_medium()
    assert small.num_parameters() == 124_439_808
    assert small.num_parameters(exclude_embeddings=True) == 124_439_808 - (50257 + 1024) * 768
    assert medium.num_parameters() == 354_823_168


def test_registered_builders_have_their_configs():
    assert set(NAMES) <= set(list_models())
    with torch.device("meta"):
        char = gpt_shakespeare_char()
        cpu = create_model("gpt_shakespeare_char_cpu", dropout=0.1)

    def arch(c: GPTConfig) -> tuple:
        return c.vocab_size, c.block_size, c.n_embd, c.n_layer, c.n_head, c.dropout, c.bias

    assert arch(char.config) == (65, 256, 384, 6, 6, 0.2, False)
    assert arch(cpu.config) == (65, 64, 128, 4, 4, 0.1, False)  # the override applied


@pytest.mark.parametrize("name", NAMES)
def test_small_models_run_forward_and_backward(name):
    net = create_model(name, **SMALL_KWARGS[name])
    logits = net(*net.example_inputs())
    assert logits.shape == (2, 8, SMALL_KWARGS[name]["vocab_size"])
    logits.sum().backward()
    assert net.wte.weight.grad is not None and net.h[0].attn.c_attn.weight.grad.abs().sum() > 0


def test_gpt2_initialisation():
    torch.manual_seed(0)
    net = GPT(GPTConfig(vocab_size=V, block_size=BLOCK, n_embd=128, n_layer=8, n_head=4))
    assert net.lm_head.weight is net.wte.weight
    residual_std = 0.02 / (2 * 8) ** 0.5
    for block in net.h:
        assert block.attn.c_attn.weight.std().item() == pytest.approx(0.02, rel=0.05)
        assert block.attn.c_proj.weight.std().item() == pytest.approx(residual_std, rel=0.05)
        assert block.mlp.c_proj.weight.std().item() == pytest.approx(residual_std, rel=0.05)
        assert block.mlp.c_fc.bias.abs().sum() == 0 and (block.ln_1.weight == 1).all()
    assert net.wpe.weight.std().item() == pytest.approx(0.02, rel=0.05)
