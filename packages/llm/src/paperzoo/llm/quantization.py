r"""Quantising a model's linear layers, and counting the memory that the result really uses.

- Dettmers et al. 2023, "QLoRA: Efficient Finetuning of Quantized LLMs" (NeurIPS 2023, arXiv 2305.14314):
  :func:`quantize_4bit` stores each weight in 4-bit NormalFloat (NF4, section 3: 16 levels at the quantiles of a
  standard normal, scaled per block of 64 weights by the block's absolute maximum), with double quantisation (the
  per-block scales themselves quantised to 8 bits in blocks of 256), through bitsandbytes' ``Linear4bit``. QLoRA is
  this plus LoRA on top, trained through the frozen 4-bit weights::

      quantize_4bit(model)                       # skips "classifier" and "lm_head"
      apply_lora(model, ["query", "value"], r=8, alpha=16, modules_to_save=["classifier"])

- Dettmers et al. 2022, "LLM.int8(): 8-bit Matrix Multiplication for Transformers at Scale" (NeurIPS 2022, arXiv
  2208.07339): :func:`quantize_8bit`, row-wise absmax int8 weights with fp16 outlier columns above ``threshold``,
  through bitsandbytes' ``Linear8bitLt``.
- Dynamic post-training quantisation (int8 weights, activations quantised on the fly at each call):
  :func:`quantize_dynamic_int8`, through ``torch.ao.quantization.quantize_dynamic``. torch has marked
  ``torch.ao.quantization`` deprecated in favour of the separate ``torchao`` package
  (``torchao.quantization.quantize_``), which this project does not depend on; the torch API still works in torch
  2.15, so we use it and silence its deprecation warnings here.

bitsandbytes quantises a ``Params4bit`` / ``Int8Params`` weight when the parameter is moved to a device with ``.to``
(CPU included for 4-bit since bitsandbytes 0.45's CPU backend); the functions below make that call explicitly, on the
device where each weight already lives. bitsandbytes and ``torch.ao`` are imported on first use: importing
bitsandbytes pulls in ``torch._dynamo`` and takes seconds.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from paperzoo.core.errors import ConfigError

DEFAULT_SKIP = ("classifier", "lm_head")
QUANT_TYPES = ("nf4", "fp4")


def _bnb() -> Any:
    import bitsandbytes

    return bitsandbytes


def _is_skipped(name: str, skip: Sequence[str]) -> bool:
    """Whether a module or one of its ancestors is named by ``skip`` (full name equal to or ending in ``"." +``)."""
    parts = name.split(".")
    prefixes = [".".join(parts[: i + 1]) for i in range(len(parts))]
    return any(prefix == entry or prefix.endswith("." + entry) for prefix in prefixes for entry in skip)


def _plain_linears(model: nn.Module, skip: Sequence[str]) -> list[tuple[str, nn.Linear]]:
    # exact type: bitsandbytes' layers subclass nn.Linear, and nn.MultiheadAttention's out_proj (a subclass) is read
    # directly by the attention function, so it must stay a float nn.Linear
    return [
        (name, module)
        for name, module in model.named_modules()
        if name and type(module) is nn.Linear and not _is_skipped(name, skip)
    ]


def _replace_submodule(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child_name = name.rpartition(".")
    setattr(model.get_submodule(parent_name), child_name, new)


def _require_some(linears: list, model: nn.Module, what: str) -> None:
    if not linears:
        raise ConfigError(
            f"{type(model).__name__} has no nn.Linear layer left to {what} (skip names or already quantised layers "
            "are excluded); pass a model with nn.Linear layers or a shorter skip list"
        )


def _swap_linears(model: nn.Module, skip: Sequence[str], build: Callable[[nn.Linear], nn.Module]) -> None:
    """Replace each plain ``nn.Linear`` not in ``skip`` by ``build(linear)`` (a quantised layer holding its weight),
    which takes over the float bias and the train/eval mode."""
    linears = _plain_linears(model, skip)
    _require_some(linears, model, "quantise")
    for name, linear in linears:
        layer = build(linear)
        layer.bias = linear.bias
        layer.train(linear.training)
        _replace_submodule(model, name, layer)


def quantize_4bit(
    model: nn.Module,
    quant_type: str = "nf4",
    compute_dtype: torch.dtype = torch.float32,
    skip: Sequence[str] = DEFAULT_SKIP,
    double_quant: bool = True,
    blocksize: int = 64,
) -> nn.Module:
    """Replace the model's ``nn.Linear`` layers by bitsandbytes ``Linear4bit`` layers, in place (QLoRA, section 3).

    Each weight is quantised on its current device and stored packed, two 4-bit codes per byte (a ``uint8``
    parameter of ``out * in / 2`` elements) with a ``quant_state`` holding the per-block scales; biases stay in
    float. The 4-bit weights are frozen.

    Args:
        model: any module with ``nn.Linear`` children.
        quant_type: ``"nf4"`` (NormalFloat, the paper's) or ``"fp4"``.
        compute_dtype: the dtype each layer dequantises to for its matmul (the paper uses bfloat16 on GPUs).
        skip: module names left in full precision, with everything inside them (by default the task heads).
        double_quant: quantise the per-block scales too (section 3, "Double Quantization").
        blocksize: weights per scale; the paper's 64.

    Returns:
        The same model, modified.
    """
    if quant_type not in QUANT_TYPES:
        raise ConfigError(f"quant_type={quant_type!r} is not one of {QUANT_TYPES}; use 'nf4' as in QLoRA")
    bnb = _bnb()

    def build(linear: nn.Linear) -> nn.Module:
        layer = bnb.nn.Linear4bit(
            linear.in_features,
            linear.out_features,
            bias=linear.bias is not None,
            compute_dtype=compute_dtype,
            compress_statistics=double_quant,
            quant_type=quant_type,
            device="meta",
        )
        packed = bnb.nn.Params4bit(
            linear.weight.data,
            requires_grad=False,
            blocksize=blocksize,
            compress_statistics=double_quant,
            quant_type=quant_type,
            module=layer,
        )
        layer.weight = packed.to(linear.weight.device)  # the move is what quantises (Params4bit._quantize)
        return layer

    _swap_linears(model, skip, build)
    return model


def quantize_8bit(model: nn.Module, threshold: float = 6.0, skip: Sequence[str] = DEFAULT_SKIP) -> nn.Module:
    """Replace the model's ``nn.Linear`` layers by bitsandbytes ``Linear8bitLt`` layers (LLM.int8()), in place.

    Weights become row-wise absmax int8 (``int8`` parameter plus one float scale per output row); at run time input
    columns with a value above ``threshold`` are multiplied in 16-bit (the paper's mixed-precision decomposition,
    section 3.2; ``threshold=0`` turns it off). bitsandbytes 0.50 runs this on CPU as well as on CUDA.

    Args:
        model: any module with ``nn.Linear`` children.
        threshold: the outlier magnitude above which a feature is kept in 16-bit; the paper's 6.0.
        skip: module names left in full precision, with everything inside them.

    Returns:
        The same model, modified.
    """
    bnb = _bnb()

    def build(linear: nn.Linear) -> nn.Module:
        layer = bnb.nn.Linear8bitLt(
            linear.in_features,
            linear.out_features,
            bias=linear.bias is not None,
            has_fp16_weights=False,
            threshold=threshold,
            device="meta",
        )
        # Int8Params quantises only when moved off the CPU (or onto it from the CPU), so it starts from a CPU copy
        packed = bnb.nn.Int8Params(linear.weight.data.cpu(), requires_grad=False, has_fp16_weights=False)
        layer.weight = packed.to(linear.weight.device)
        return layer

    _swap_linears(model, skip, build)
    return model


def quantize_dynamic_int8(model: nn.Module, skip: Sequence[str] = DEFAULT_SKIP) -> nn.Module:
    """Dynamic post-training int8 quantisation of the model's ``nn.Linear`` layers, in place, on CPU.

    Weights are stored as int8 with one scale per tensor; each call quantises the activations with a scale measured
    on them, multiplies in int8 and rescales (``torch.ao.quantization.quantize_dynamic``; see the module docstring
    for its deprecation). The result is for inference: it has no gradients.

    Args:
        model: a float32 model on the CPU.
        skip: module names left in full precision, with everything inside them.

    Returns:
        The same model, modified.
    """
    if any(tensor.device.type != "cpu" for tensor in model.parameters()):
        raise ConfigError(
            "quantize_dynamic_int8 runs on CPU only (torch's dynamic int8 kernels); call model.cpu() first, or use "
            "quantize_8bit on a GPU"
        )
    names = {name for name, _ in _plain_linears(model, skip)}
    _require_some(list(names), model, "quantise")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.ao\.quantization is deprecated", category=Warning)
        warnings.filterwarnings("ignore", message=r".*quantized tensor creation functions", category=Warning)
        from torch.ao.quantization import default_dynamic_qconfig, quantize_dynamic

        quantize_dynamic(model, dict.fromkeys(names, default_dynamic_qconfig), dtype=torch.qint8, inplace=True)
    return model


def dequantize_weight(module: nn.Module) -> Tensor:
    """The float32 weight that a bitsandbytes 4-bit or 8-bit linear layer computes with (a float weight as it is).

    For a 4-bit layer this is each code's NF4/FP4 level times its block's (dequantised) absmax; for an 8-bit layer,
    each int8 row times its row scale / 127.
    """
    weight = module.weight
    quant_state = getattr(weight, "quant_state", None)
    if quant_state is not None:
        functional = _bnb().functional
        data = weight.data
        if getattr(quant_state, "packing_format_for_cpu", False):
            # on CPUs with AVX512-BF16, bitsandbytes repacks a 4-bit weight for its inference kernel at the first
            # eval-mode forward; undo that on copies, the way Linear4bit's own state_dict does
            data, quant_state = functional._convert_weight_packed_for_cpu_inverse(
                data.clone(), copy.deepcopy(quant_state)
            )
        return functional.dequantize_4bit(data, quant_state).float()
    if weight.dtype == torch.int8:
        state = getattr(module, "state", None)
        scales = getattr(weight, "SCB", None)
        if scales is None and state is not None:
            scales = state.SCB
        if scales is None:
            raise ConfigError(f"the int8 {type(module).__name__} has no row scales (SCB); it was never quantised")
        return weight.data.float() * (scales.float().unsqueeze(1) / 127.0)  # (out, in) * (out, 1)
    if not weight.is_floating_point():
        raise ConfigError(f"cannot dequantise {type(module).__name__}: its {weight.dtype} weight has no known format")
    return weight.detach().float()


def dequantize_model(model: nn.Module, dtype: torch.dtype = torch.float32) -> nn.Module:
    """Replace every bitsandbytes 4-bit or 8-bit linear layer (inside LoRA wrappers too) by an ``nn.Linear`` holding
    its dequantised weight, in place; returns the model. A QLoRA model can then be merged (``merge_and_unload``)."""
    bnb = _bnb()
    quantised = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, (bnb.nn.Linear4bit, bnb.nn.Linear8bitLt))
    ]
    for name, module in quantised:
        weight = dequantize_weight(module)
        linear = nn.Linear(
            module.in_features, module.out_features, bias=module.bias is not None, device=weight.device, dtype=dtype
        )
        linear.weight = nn.Parameter(weight.to(dtype), requires_grad=False)
        if module.bias is not None:
            linear.bias = nn.Parameter(module.bias.detach().to(dtype), requires_grad=module.bias.requires_grad)
        linear.train(module.training)
        _replace_submodule(model, name, linear)
    return model


@dataclass(frozen=True)
class MemoryReport:
    """Bytes a model holds, each tensor counted once (tied or shared tensors too).

    Attributes:
        parameters: parameters as stored: a 4-bit weight counts its packed bytes, an int8 weight one byte per
            element; ``torch.ao`` dynamic layers' packed int8 weights and biases count here too.
        buffers: registered buffers (running statistics, position ids ...).
        quant_state: what quantised layers keep besides their weights: 4-bit blockwise scales, their
            double-quantisation scales and codebooks, int8 row scales, per-tensor scales.
    """

    parameters: int
    buffers: int
    quant_state: int

    @property
    def total(self) -> int:
        return self.parameters + self.buffers + self.quant_state


def _tensor_bytes(tensor: Tensor) -> int:
    return tensor.numel() * tensor.element_size()


def model_memory_bytes(model: nn.Module) -> MemoryReport:
    """Count the bytes of the model's parameters, buffers and quantisation states (see :class:`MemoryReport`)."""
    seen: set[tuple[int, int]] = set()

    def count(tensor: Any) -> int:
        if not isinstance(tensor, Tensor) or tensor.numel() == 0:
            return 0
        key = (tensor.data_ptr(), _tensor_bytes(tensor))
        if key in seen:
            return 0
        seen.add(key)
        return _tensor_bytes(tensor)

    parameters = sum(count(parameter) for parameter in model.parameters())
    buffers = sum(count(buffer) for buffer in model.buffers())
    quant_state = 0
    for module in model.modules():
        weight = module._parameters.get("weight")  # not a LoRA wrapper's weight property: counted at its base
        state4 = getattr(weight, "quant_state", None)
        if state4 is not None:
            for tensor in (state4.absmax, state4.code, state4.offset):
                quant_state += count(tensor)
            nested = getattr(state4, "state2", None)
            if nested is not None:
                quant_state += count(nested.absmax) + count(nested.code)
        if weight is not None and weight.dtype == torch.int8:
            lt_state = getattr(module, "state", None)
            for tensor in (getattr(weight, "SCB", None), getattr(lt_state, "SCB", None), getattr(lt_state, "CB", None)):
                quant_state += count(tensor)
        packed = getattr(module, "_packed_params", None)
        if packed is not None and hasattr(packed, "_weight_bias"):
            qweight, bias = packed._weight_bias()
            parameters += _tensor_bytes(qweight) + (_tensor_bytes(bias) if bias is not None else 0)
            if qweight.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
                quant_state += _tensor_bytes(qweight.q_per_channel_scales())
                quant_state += _tensor_bytes(qweight.q_per_channel_zero_points())
            else:
                quant_state += 16  # one float64 scale and one int64 zero point
    return MemoryReport(parameters=parameters, buffers=buffers, quant_state=quant_state)
