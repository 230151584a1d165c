"""paperzoo.llm.quantization: NF4 (QLoRA), LLM.int8(), dynamic int8, the memory count, and QLoRA training.

Error bounds are earned from the formats, not observed: a 4-bit value is one of 16 levels times its block's absmax, so
its error is at most half the widest gap between NF4 levels (0.152) times that absmax; an int8 row is rounded to
steps of absmax / 127, so its error is at most half a step (plus fp16 rounding, as bitsandbytes casts to fp16 first).
The NF4 levels themselves are rebuilt from the paper's construction (normal quantiles). On Gaussian weights (std
0.02, as in BERT and GPT-2) NF4's relative Frobenius error is about 0.09; the tests allow 0.12. Memory: 4-bit weights
cost exactly 4 bits each, plus the double-quantised scales (8 bits per 64 weights, 32 bits per 256 blocks) and the
two codebooks, which is QLoRA's 4.127 bits per parameter (section 3) plus codebooks. Dynamic int8 outputs stay within
5% (relative norm) of float ones.
"""

from __future__ import annotations

import copy
import math

import bitsandbytes as bnb
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.core.errors import ConfigError
from paperzoo.llm.layers.lora import LoRALinear, apply_lora, merge_and_unload, trainable_parameters
from paperzoo.llm.quantization import (
    MemoryReport,
    dequantize_model,
    dequantize_weight,
    model_memory_bytes,
    quantize_4bit,
    quantize_8bit,
    quantize_dynamic_int8,
)

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


class TinyClassifier(nn.Module):
    def __init__(self, d_in: int = 32, hidden: int = 128, classes: int = 4) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_in, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.classifier = nn.Linear(hidden, classes)
        with torch.no_grad():  # transformer-like weights, the distribution NF4 is designed for
            for layer in (self.fc1, self.fc2):
                layer.weight.normal_(0.0, 0.02 * math.sqrt(768 / layer.in_features))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(F.gelu(self.fc2(F.gelu(self.fc1(x)))))


def tiny_classifier(device: str = "cpu") -> TinyClassifier:
    torch.manual_seed(0)
    return TinyClassifier().to(device)


def two_layers(size: int = 256) -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(size, size), nn.ReLU(), nn.Linear(size, size))
    with torch.no_grad():
        for layer in (model[0], model[2]):
            layer.weight.normal_(0.0, 0.02)
    return model


def relative_error(a: Tensor, b: Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def nf4_levels() -> Tensor:
    """QLoRA section 3: 2^(k-1) positive and 2^(k-1) - 1 negative normal quantiles plus an exact zero, normalised to
    [-1, 1]; the outermost quantile is at the offset 1 - (1/30 + 1/32) / 2 (the paper's footnote)."""
    normal = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))
    offset = 1 - 0.5 * (1 / 30 + 1 / 32)
    positive = normal.icdf(torch.linspace(offset, 0.5, 9, dtype=torch.float64)[:-1])
    negative = -normal.icdf(torch.linspace(offset, 0.5, 8, dtype=torch.float64)[:-1])
    levels = torch.cat([negative, torch.zeros(1, dtype=torch.float64), positive]).sort().values
    return (levels / levels.abs().max()).float()


def test_nf4_levels_are_the_papers() -> None:
    layer = quantize_4bit(two_layers(64))[0]
    code = layer.weight.quant_state.code
    torch.testing.assert_close(code, nf4_levels(), atol=1e-6, rtol=0)


@pytest.mark.parametrize("quant_type", ["nf4", "fp4"])
def test_4bit_weights_dequantise_within_the_format_bound(quant_type: str) -> None:
    original = two_layers()
    model = quantize_4bit(copy.deepcopy(original), quant_type=quant_type, double_quant=False)
    layer = model[0]
    assert isinstance(layer, bnb.nn.Linear4bit)
    assert layer.weight.dtype == torch.uint8 and layer.weight.numel() == 256 * 256 // 2  # two codes per byte
    assert not layer.weight.requires_grad
    weight = original[0].weight.detach()
    restored = dequantize_weight(layer)
    assert restored.shape == weight.shape
    blocks = weight.reshape(-1, 64)  # blockwise over the row-major weight
    absmax = blocks.abs().amax(dim=1, keepdim=True)
    torch.testing.assert_close(layer.weight.quant_state.absmax, absmax.squeeze(1), atol=0, rtol=0)
    code = layer.weight.quant_state.code.sort().values
    half_gap = (code[1:] - code[:-1]).max() / 2
    error = (restored.reshape(-1, 64) - blocks).abs()
    assert bool((error <= half_gap * absmax + 1e-7).all())
    # every restored value is a level times its block's absmax
    normalised = restored.reshape(-1, 64) / absmax
    assert bool(((normalised.unsqueeze(-1) - code).abs().amin(-1) < 1e-6).all())
    if quant_type == "nf4":
        assert half_gap.item() == pytest.approx(0.152, abs=1e-3)
        assert relative_error(restored, weight) < 0.12


def test_double_quantisation_keeps_nf4_close() -> None:
    original = two_layers()
    model = quantize_4bit(copy.deepcopy(original))
    state = model[0].weight.quant_state
    assert state.nested and state.absmax.dtype == torch.uint8  # the block scales are 8-bit themselves
    assert relative_error(dequantize_weight(model[0]), original[0].weight.detach()) < 0.12
    x = torch.randn(8, 256, generator=torch.Generator().manual_seed(1))
    expected = F.linear(x, dequantize_weight(model[0]), model[0].bias)
    torch.testing.assert_close(model[0](x), expected, atol=1e-5, rtol=1e-5)


def test_4bit_memory_is_four_bits_per_weight_plus_scales() -> None:
    original = two_layers()
    before = model_memory_bytes(original)
    assert before == MemoryReport(parameters=4 * (2 * 256 * 256 + 2 * 256), buffers=0, quant_state=0)
    model = quantize_4bit(copy.deepcopy(original))
    after = model_memory_bytes(model)
    layers, weights_per_layer, bias_bytes = 2, 256 * 256, 4 * 2 * 256
    assert (after.parameters - bias_bytes) * 8 == 4 * layers * weights_per_layer
    blocks = weights_per_layer // 64
    # per layer: an 8-bit scale per block, a float32 second-level scale per 256 blocks and a float32 offset, then the
    # two float32 codebooks (16 NF4 levels, 256 levels of the 8-bit dynamic map that codes the scales)
    scales = blocks + 4 * math.ceil(blocks / 256) + 4
    codebooks = 4 * (16 + 256)
    assert after.quant_state == layers * (scales + codebooks)
    bits_per_weight = (after.parameters - bias_bytes + layers * scales) * 8 / (layers * weights_per_layer)
    assert bits_per_weight == pytest.approx(4 + 8 / 64 + 32 / (64 * 256), abs=1e-3)  # QLoRA's 4.127
    assert after.total / before.total < 0.3


def test_memory_counts_shared_tensors_and_buffers_once() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8, bias=False), nn.BatchNorm1d(8), nn.Linear(8, 8, bias=False))
    model[2].weight = model[0].weight  # tied
    report = model_memory_bytes(model)
    assert report.parameters == 4 * (64 + 16)
    assert report.buffers == 4 * 16 + 8  # running mean and variance, int64 batch count
    assert report.total == report.parameters + report.buffers


def test_skipped_layers_stay_float() -> None:
    model = quantize_4bit(tiny_classifier())
    assert isinstance(model.fc1, bnb.nn.Linear4bit) and isinstance(model.fc2, bnb.nn.Linear4bit)
    assert type(model.classifier) is nn.Linear
    with pytest.raises(ConfigError, match=r"no nn\.Linear layer left"):
        quantize_4bit(model)
    with pytest.raises(ConfigError, match="quant_type"):
        quantize_4bit(tiny_classifier(), quant_type="int4")


def test_mha_out_proj_is_not_replaced() -> None:
    model = nn.Sequential(nn.MultiheadAttention(64, 4, batch_first=True))
    with pytest.raises(ConfigError, match=r"no nn\.Linear"):
        quantize_4bit(model)


def test_lora_on_a_4bit_base_is_the_dequantised_linear_plus_the_update() -> None:
    model = quantize_4bit(tiny_classifier())
    apply_lora(model, ["fc1", "fc2"], r=4, alpha=8)
    layer = model.fc1
    assert isinstance(layer, LoRALinear) and isinstance(layer.base_layer, bnb.nn.Linear4bit)
    assert layer.lora_A.dtype == torch.float32
    with torch.no_grad():
        layer.lora_B.normal_()
    x = torch.randn(5, 32)
    expected = F.linear(x, dequantize_weight(layer.base_layer), layer.base_layer.bias) + x @ layer.delta_weight().T
    torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)
    with pytest.raises(ConfigError, match="dequantise the model first"):
        layer.merge()


@pytest.mark.parametrize("device", DEVICES)
def test_qlora_trains_only_the_adapter_and_keeps_weights_packed(device: str) -> None:
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    model = quantize_4bit(tiny_classifier(device))
    apply_lora(model, ["fc1", "fc2"], r=8, alpha=16, modules_to_save=["classifier"])
    trainable, total = trainable_parameters(model)
    assert trainable == 8 * (32 + 128) + 8 * (128 + 128) + 128 * 4 + 4
    assert total == trainable + 32 * 128 + 128 + 128 * 128 + 128
    before = {key: value.clone() for key, value in model.state_dict().items()}
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(64, 32, generator=generator).to(device)
    y = (x @ torch.randn(32, 4, generator=generator).to(device)).argmax(dim=1)  # a random linear teacher
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    losses = []
    for _ in range(40):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    changed = {key for key, value in model.state_dict().items() if not torch.equal(value, before[key])}
    assert changed == {
        "fc1.lora_A",
        "fc1.lora_B",
        "fc2.lora_A",
        "fc2.lora_B",
        "classifier.weight",
        "classifier.bias",
    }
    for name in ("fc1", "fc2"):
        weight = model.get_submodule(name).base_layer.weight
        assert isinstance(weight, bnb.nn.Params4bit) and weight.dtype == torch.uint8 and weight.bnb_quantized
        assert weight.grad is None


def test_dequantize_model_then_merge_and_unload_keeps_the_outputs() -> None:
    model = quantize_4bit(tiny_classifier())
    apply_lora(model, ["fc1", "fc2"], r=4, alpha=8, modules_to_save=["classifier"])
    with torch.no_grad():
        model.fc1.lora_B.normal_()
        model.fc2.lora_B.normal_()
    x = torch.randn(6, 32)
    expected = model(x)
    merged = merge_and_unload(dequantize_model(model))
    assert all(type(module) is nn.Linear for module in (merged.fc1, merged.fc2, merged.classifier))
    torch.testing.assert_close(merged(x), expected, atol=1e-4, rtol=1e-4)


def test_8bit_rows_round_to_absmax_steps() -> None:
    original = two_layers()
    model = quantize_8bit(copy.deepcopy(original), threshold=0.0)
    layer = model[0]
    assert isinstance(layer, bnb.nn.Linear8bitLt) and layer.weight.dtype == torch.int8
    weight = original[0].weight.detach()
    row_absmax = weight.abs().amax(dim=1, keepdim=True)
    restored = dequantize_weight(layer)
    fp16_rounding = weight.abs() * 2.0**-11
    assert bool(((restored - weight).abs() <= row_absmax / 254 + fp16_rounding + 1e-7).all())
    x = torch.randn(8, 256, generator=torch.Generator().manual_seed(1))
    assert relative_error(model(x), original(x)) < 0.05
    report = model_memory_bytes(model)
    assert report.parameters == 2 * 256 * 256 + 4 * 2 * 256  # int8 weights, float32 biases
    assert report.quant_state == 4 * 2 * 256  # one float32 scale per row


def test_lora_on_an_8bit_base_adds_the_update_and_trains() -> None:
    model = quantize_8bit(tiny_classifier())
    apply_lora(model, ["fc1", "fc2"], r=4, alpha=8)
    layer = model.fc2
    assert isinstance(layer.base_layer, bnb.nn.Linear8bitLt)
    with torch.no_grad():
        layer.lora_B.normal_()
    x = torch.randn(5, 128)
    torch.testing.assert_close(layer(x) - layer.base_layer(x), x @ layer.delta_weight().T, atol=1e-5, rtol=1e-5)
    model(torch.randn(5, 32)).square().sum().backward()  # fc1.lora_B gets its gradient through the int8 fc2
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in (model.fc1.lora_B, model.fc2.lora_A))
    assert model.fc1.base_layer.weight.grad is None and model.fc1.base_layer.weight.dtype == torch.int8


def test_dynamic_int8_outputs_stay_close() -> None:
    original = tiny_classifier()
    with torch.no_grad():
        original.classifier.weight.normal_(0.0, 0.5)
    model = quantize_dynamic_int8(copy.deepcopy(original))
    assert isinstance(model.fc1, torch.ao.nn.quantized.dynamic.Linear)
    assert type(model.classifier) is nn.Linear  # skipped
    x = torch.randn(16, 32, generator=torch.Generator().manual_seed(1))
    assert relative_error(model(x), original(x)) < 0.05
    report = model_memory_bytes(model)
    float_bytes = 4 * (32 * 128 + 128 + 128 * 128 + 128)
    classifier_bytes = 4 * (128 * 4 + 4)
    assert report.parameters == (32 * 128 + 128 * 128) + 4 * (128 + 128) + classifier_bytes
    assert report.total < 0.3 * (float_bytes + classifier_bytes) + classifier_bytes
