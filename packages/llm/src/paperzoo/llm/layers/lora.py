r"""Low-rank adaptation from Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models" (ICLR 2022, arXiv
2106.09685).

A pretrained weight :math:`W_0` stays frozen and each adapted linear layer learns a low-rank update
:math:`\Delta W = B A` (section 4.1), scaled by :math:`\alpha / r`, so fine-tuning trains ``r (d_in + d_out)`` numbers
per layer instead of ``d_in d_out``, and the update folds into :math:`W_0` after training (no inference latency).

:class:`LoRALinear` wraps one linear-like layer (``nn.Linear``, or bitsandbytes' ``Linear4bit`` / ``Linear8bitLt`` for
QLoRA, Dettmers et al. 2023); :func:`apply_lora` wraps the layers of any model that match ``target_modules`` and
freezes everything else. The adapter (LoRA tensors and the ``modules_to_save``) is saved and loaded on its own
(:func:`save_lora`, :func:`load_lora`) and converts to and from the ``peft`` library's format
(:func:`from_peft_state_dict`, :func:`to_peft_state_dict`, :func:`load_peft_adapter`, :func:`save_peft_adapter`), so an
adapter trained with ``peft`` loads here and back.

Names follow ``peft``: a wrapped layer keeps its original weights under ``<name>.base_layer`` and adds
``<name>.lora_A`` ``(r, in_features)`` and ``<name>.lora_B`` ``(out_features, r)``; ``peft``'s live model stores the
same matrices as ``<name>.lora_A.<adapter>.weight``, its saved adapters as ``base_model.model.<name>.lora_A.weight``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

from paperzoo.core.errors import ConfigError, CorruptDataError, DatasetNotFoundError

PEFT_PREFIX = "base_model.model."
PEFT_CONFIG_FILE = "adapter_config.json"
PEFT_WEIGHTS_FILE = "adapter_model.safetensors"
_METADATA_KEY = "paperzoo_lora_config"
# peft options that change the adapter's arithmetic or its layout; all are off (falsy) by default, and an adapter
# that uses one is refused rather than loaded wrongly.
_PEFT_UNSUPPORTED_OPTIONS = (
    "use_rslora",
    "use_dora",
    "lora_bias",
    "fan_in_fan_out",
    "rank_pattern",
    "alpha_pattern",
    "layers_to_transform",
    "exclude_modules",
    "layer_replication",
    "trainable_token_indices",
    "target_parameters",
    "use_qalora",
    "alora_invocation_tokens",
)
_PEFT_LORA_KEY = re.compile(r"(?P<module>.+)\.lora_(?P<which>[AB])(?:\.(?P<adapter>[^.]+))?\.weight")


class LoRALinear(nn.Module):
    r"""A linear layer with a trainable low-rank update, from Hu et al. 2021, "LoRA", Eq. 3 and section 4.1:

    .. math::
        h = W_0 x + \frac{\alpha}{r} B A x, \qquad A \in \mathbb{R}^{r \times d_{in}},\;
        B \in \mathbb{R}^{d_{out} \times r}

    :math:`W_0 x` is the wrapped base layer's output (bias included), which may be a quantised layer (QLoRA).
    :math:`B` starts at zero, so the layer starts equal to its base; :math:`A` starts random. The paper draws
    :math:`A` from a Gaussian; like the authors' ``loralib`` and ``peft`` we use ``nn.Linear``'s Kaiming-uniform
    initialisation (``a = sqrt(5)``), which is what their released adapters were trained from. Dropout, when used,
    acts on the input of the low-rank path only.

    :meth:`merge` folds :math:`\frac{\alpha}{r} B A` into a floating-point base weight (section 4.1, "No Additional
    Inference Latency"); :meth:`unmerge` takes it out again. While merged, ``forward`` skips the low-rank path.
    The layer does not freeze its base; :func:`apply_lora` does.

    Args:
        base: the layer to adapt: anything with ``in_features``, ``out_features`` and a ``forward`` (``nn.Linear``,
            ``bitsandbytes.nn.Linear4bit``, ``bitsandbytes.nn.Linear8bitLt``).
        r: the rank of the update.
        alpha: the scale numerator; the update is multiplied by ``alpha / r`` so that changing ``r`` needs no new
            learning rate (section 4.1).
        dropout: dropout probability on the input of the low-rank path.

    Shapes:
        - input: ``(*, in_features)``
        - output: ``(*, out_features)``
    """

    def __init__(self, base: nn.Module, r: int, alpha: float, dropout: float = 0.0) -> None:
        super().__init__()
        in_features, out_features = getattr(base, "in_features", None), getattr(base, "out_features", None)
        if not isinstance(in_features, int) or not isinstance(out_features, int):
            raise ConfigError(
                f"LoRALinear wraps linear layers, but {type(base).__name__} has no integer in_features and "
                "out_features; pass an nn.Linear or a bitsandbytes Linear4bit / Linear8bitLt"
            )
        if not isinstance(r, int) or r < 1:
            raise ConfigError(f"LoRA rank r={r!r} must be a positive integer; use e.g. r=8")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"LoRA dropout={dropout} must be in [0, 1)")
        self.base_layer = base
        self.in_features = in_features
        self.out_features = out_features
        self.r = r
        self.alpha = alpha
        self.scaling = alpha / r
        self.merged = False
        weight = getattr(base, "weight", None)
        device = weight.device if weight is not None else None
        # a quantised base stores integers; the update is trained in float32, as in QLoRA (section 3)
        dtype = weight.dtype if weight is not None and weight.is_floating_point() else torch.float32
        self.lora_A = nn.Parameter(torch.empty(r, in_features, device=device, dtype=dtype))
        self.lora_B = nn.Parameter(torch.empty(out_features, r, device=device, dtype=dtype))
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """A random (Kaiming-uniform), B zero: the wrapped layer starts equal to its base (section 4.1)."""
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B)

    @property
    def weight(self) -> Tensor:
        """The base layer's weight, for code that reads ``layer.weight`` (its dtype or device, say)."""
        return self.base_layer.weight

    @property
    def bias(self) -> Tensor | None:
        """The base layer's bias."""
        return getattr(self.base_layer, "bias", None)

    def delta_weight(self) -> Tensor:
        r""":math:`\frac{\alpha}{r} B A`, the update in the base weight's ``(out_features, in_features)`` layout."""
        return (self.lora_B @ self.lora_A) * self.scaling

    def forward(self, x: Tensor) -> Tensor:
        out = self.base_layer(x)  # (*, out_features)
        if self.merged:
            return out
        h = self.lora_dropout(x.to(self.lora_A.dtype))
        update = F.linear(F.linear(h, self.lora_A), self.lora_B) * self.scaling  # (*, r) -> (*, out_features)
        return out + update.to(out.dtype)

    def _float_base_weight(self) -> Tensor:
        weight = getattr(self.base_layer, "weight", None)
        if weight is None or not weight.is_floating_point():
            raise ConfigError(
                f"cannot merge LoRA into a quantised {type(self.base_layer).__name__}: its weight is stored as "
                "integers; dequantise the model first (paperzoo.llm.quantization.dequantize_model) or keep the "
                "adapter unmerged"
            )
        return weight

    @torch.no_grad()
    def merge(self) -> None:
        """Fold the update into the base weight, so that ``forward`` costs one matmul; a no-op when merged."""
        if self.merged:
            return
        weight = self._float_base_weight()
        weight += self.delta_weight().to(weight.dtype)
        self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Take the update out of the base weight again; a no-op when not merged."""
        if not self.merged:
            return
        weight = self._float_base_weight()
        weight -= self.delta_weight().to(weight.dtype)
        self.merged = False

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, r={self.r}, alpha={self.alpha}, "
            f"merged={self.merged}"
        )


@dataclass
class LoRAConfig:
    """What :func:`apply_lora` was called with; :func:`save_lora` stores it with the adapter.

    Args:
        target_modules: the layers to adapt: a list of names (a module matches when its full name equals an entry or
            ends with ``"." + entry``) or one regular expression that must match a full name (``re.fullmatch``), as in
            ``peft``.
        r: the rank of each update.
        alpha: the scale numerator; updates are multiplied by ``alpha / r``.
        dropout: dropout on the input of each low-rank path.
        modules_to_save: modules trained in full besides the adapters (a task head such as ``"classifier"``),
            matched by name like ``target_modules``' list form.
    """

    target_modules: list[str] | str
    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    modules_to_save: list[str] = field(default_factory=list)


def _name_matches(name: str, entries: Sequence[str]) -> bool:
    return any(name == entry or name.endswith("." + entry) for entry in entries)


def _is_target(name: str, target_modules: Sequence[str] | str) -> bool:
    if isinstance(target_modules, str):
        return re.fullmatch(target_modules, name) is not None
    return _name_matches(name, target_modules)


def _is_adaptable_linear(module: nn.Module) -> bool:
    # nn.MultiheadAttention reads its out_proj's weight directly, so a wrapper there would be bypassed
    return isinstance(module, nn.Linear) and not isinstance(module, nn.modules.linear.NonDynamicallyQuantizableLinear)


def _linear_names(model: nn.Module) -> list[str]:
    return [name for name, module in model.named_modules() if name and _is_adaptable_linear(module)]


def _saved_module_names(model: nn.Module, modules_to_save: Sequence[str]) -> list[str]:
    names = [name for name, _ in model.named_modules() if name and _name_matches(name, modules_to_save)]
    # a saved module's children are saved with it, so only the outermost matches are listed
    return [name for name in names if not any(name.startswith(other + ".") for other in names)]


def _replace_submodule(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child_name = name.rpartition(".")
    setattr(model.get_submodule(parent_name), child_name, new)


def lora_layers(model: nn.Module) -> Iterator[tuple[str, LoRALinear]]:
    """The ``(full name, layer)`` pairs of the model's :class:`LoRALinear` layers."""
    for name, module in model.named_modules():
        if isinstance(module, LoRALinear):
            yield name, module


def _require_lora(model: nn.Module) -> list[tuple[str, LoRALinear]]:
    layers = list(lora_layers(model))
    if not layers:
        raise ConfigError(f"{type(model).__name__} has no LoRA layers; call apply_lora(model, target_modules) first")
    return layers


def _lora_config(model: nn.Module) -> LoRAConfig:
    _require_lora(model)
    config = getattr(model, "lora_config", None)
    if not isinstance(config, LoRAConfig):
        raise ConfigError(
            f"{type(model).__name__} has LoRA layers but no lora_config; add the layers with apply_lora, which "
            "records which modules the adapter saves"
        )
    return config


def apply_lora(
    model: nn.Module,
    target_modules: Sequence[str] | str,
    r: int = 8,
    alpha: float = 16.0,
    dropout: float = 0.0,
    modules_to_save: Sequence[str] = (),
) -> nn.Module:
    """Wrap the model's matching linear layers in :class:`LoRALinear`, in place, and freeze everything else.

    The matching rules are ``peft``'s (see :class:`LoRAConfig`); layers inside a module to save are left unwrapped,
    as ``peft`` does, since that module is trained in full. Afterwards only the LoRA matrices and the parameters of
    ``modules_to_save`` require gradients, and ``model.lora_config`` records the call.

    Args:
        model: any module with ``nn.Linear`` (or bitsandbytes linear) children.
        target_modules: layer names or one full-name regular expression.
        r: the rank of each update.
        alpha: the scale numerator (the update is multiplied by ``alpha / r``).
        dropout: dropout on the input of each low-rank path.
        modules_to_save: modules to train in full and save with the adapter, e.g. ``("classifier",)``.

    Returns:
        The same model, modified.

    Raises:
        ConfigError: nothing matched, a match is not a linear layer, a module to save does not exist, or the model
            already has LoRA layers.
    """
    if any(True for _ in lora_layers(model)):
        raise ConfigError(
            f"{type(model).__name__} already has LoRA layers; call merge_and_unload(model) first, or apply LoRA once "
            "with all the target modules"
        )
    if isinstance(target_modules, str):
        target_spec: list[str] | str = target_modules
    else:
        target_spec = list(target_modules)
    saved_entries = [modules_to_save] if isinstance(modules_to_save, str) else list(modules_to_save)
    saved = _saved_module_names(model, saved_entries)
    unmatched = [entry for entry in saved_entries if not any(_name_matches(name, [entry]) for name in saved)]
    if unmatched:
        raise ConfigError(f"modules_to_save entry {unmatched[0]!r} names no module of {type(model).__name__}")
    targets = []
    for name, module in model.named_modules():
        if not name or not _is_target(name, target_spec):
            continue
        if any(name == kept or name.startswith(kept + ".") for kept in saved):
            continue
        if not _is_adaptable_linear(module):
            raise ConfigError(
                f"target_modules={target_spec!r} matched {name}, a {type(module).__name__}, but LoRA adapts linear "
                "layers only; name the linear layers inside it"
            )
        targets.append((name, module))
    if not targets:
        examples = ", ".join(_linear_names(model)[:6]) or "none"
        raise ConfigError(
            f"target_modules={target_spec!r} matched no layer of {type(model).__name__}; its linear layers include "
            f"{examples} (a name matches a module whose full name equals it or ends with '.' + it; a string is a "
            "full-name regular expression)"
        )
    for name, module in targets:
        _replace_submodule(model, name, LoRALinear(module, r, alpha, dropout))
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    for _, layer in lora_layers(model):
        layer.lora_A.requires_grad_(True)
        layer.lora_B.requires_grad_(True)
    for name in saved:
        for parameter in model.get_submodule(name).parameters():
            parameter.requires_grad_(True)
    model.lora_config = LoRAConfig(target_spec, r, alpha, dropout, saved_entries)
    return model


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every LoRA update into its base weight (see :meth:`LoRALinear.merge`); returns the model."""
    for _, layer in _require_lora(model):
        layer.merge()
    return model


def unmerge_lora(model: nn.Module) -> nn.Module:
    """Take every merged LoRA update out of its base weight again; returns the model."""
    for _, layer in _require_lora(model):
        layer.unmerge()
    return model


def merge_and_unload(model: nn.Module) -> nn.Module:
    """Merge every update and put the plain base layers back in place of the wrappers; returns the model.

    The result has the base model's module tree and state-dict keys. ``requires_grad`` flags stay as
    :func:`apply_lora` left them (base weights frozen).
    """
    for name, layer in _require_lora(model):
        layer.merge()
        _replace_submodule(model, name, layer.base_layer)
    del model.lora_config
    return model


def trainable_parameters(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts; a 4-bit weight counts its logical size, not its packed bytes."""
    trainable = total = 0
    for parameter in model.parameters():
        quant_state = getattr(parameter, "quant_state", None)
        count = math.prod(quant_state.shape) if quant_state is not None else parameter.numel()
        total += count
        if parameter.requires_grad:
            trainable += count
    return trainable, total


def lora_state_dict(model: nn.Module) -> dict[str, Tensor]:
    """The adapter: every ``<layer>.lora_A`` / ``<layer>.lora_B`` and the full state of the modules to save.

    Like ``state_dict()``, the tensors share storage with the model.
    """
    config = _lora_config(model)
    state: dict[str, Tensor] = {}
    for name, layer in lora_layers(model):
        state[f"{name}.lora_A"] = layer.lora_A.detach()
        state[f"{name}.lora_B"] = layer.lora_B.detach()
    for name in _saved_module_names(model, config.modules_to_save):
        for key, value in model.get_submodule(name).state_dict().items():
            state[f"{name}.{key}"] = value
    return state


def _read_safetensors(path: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    if not path.is_file():
        raise DatasetNotFoundError(f"no adapter file at {path}; save one with save_lora(model, path)")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 (not a dict)
    except (SafetensorError, OSError) as err:
        raise CorruptDataError(f"{path} is not a readable safetensors file ({err}); save the adapter again") from err
    return tensors, metadata


def _load_adapter_tensors(model: nn.Module, tensors: Mapping[str, Tensor], source: str) -> None:
    """Copy an adapter's tensors into the model's LoRA layers and saved modules, checking keys and shapes first."""
    expected = lora_state_dict(model)
    missing = sorted(set(expected) - set(tensors))
    if missing:
        raise CorruptDataError(
            f"the adapter {source} has no tensor {missing[0]!r} ({len(missing)} missing in all) that this "
            f"{type(model).__name__} needs: it was saved from a different model or LoRA configuration"
        )
    unexpected = sorted(set(tensors) - set(expected))
    if unexpected:
        raise CorruptDataError(
            f"the adapter {source} has {unexpected[0]!r} ({len(unexpected)} unexpected in all), which this "
            f"{type(model).__name__} lacks: it was saved from a different model or LoRA configuration"
        )
    for key, value in tensors.items():
        if value.shape != expected[key].shape:
            raise CorruptDataError(
                f"the adapter {source} has {key!r} of shape {tuple(value.shape)} where this {type(model).__name__} "
                f"has {tuple(expected[key].shape)}: it was saved from a different model or rank r"
            )
    with torch.no_grad():
        for key, value in tensors.items():
            expected[key].copy_(value)


def _apply_saved_config(model: nn.Module, config: LoRAConfig, source: str) -> None:
    """Give a base model the adapter's LoRA layers, or check that its existing ones have the adapter's scaling."""
    layers = list(lora_layers(model))
    if not layers:
        try:
            apply_lora(model, config.target_modules, config.r, config.alpha, config.dropout, config.modules_to_save)
        except ConfigError as err:
            raise CorruptDataError(f"the adapter {source} does not fit {type(model).__name__}: {err}") from err
        return
    for name, layer in layers:
        if layer.r != config.r or layer.scaling != config.alpha / config.r:
            raise ConfigError(
                f"the adapter {source} has r={config.r}, alpha={config.alpha} but {name} has r={layer.r}, "
                f"alpha={layer.alpha}; load it into the base model without LoRA layers"
            )


def save_lora(model: nn.Module, path: str | Path, config: LoRAConfig | None = None) -> Path:
    """Write the adapter (:func:`lora_state_dict`) as safetensors, with its :class:`LoRAConfig` as metadata.

    Args:
        model: a model with LoRA layers.
        path: the file to write, e.g. ``adapter.safetensors``.
        config: the configuration to store; by default ``model.lora_config``, recorded by :func:`apply_lora`.

    Returns:
        The path written.
    """
    config = config if config is not None else _lora_config(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {key: value.detach().cpu().contiguous().clone() for key, value in lora_state_dict(model).items()}
    save_file(tensors, str(path), metadata={"format": "pt", _METADATA_KEY: json.dumps(asdict(config))})
    return path


def load_lora(model: nn.Module, path: str | Path) -> nn.Module:
    """Load an adapter written by :func:`save_lora` into ``model``; returns the model.

    A base model without LoRA layers first gets them, from the configuration stored in the file.

    Raises:
        DatasetNotFoundError: there is no file at ``path``.
        CorruptDataError: the file is unreadable, is not a paperzoo adapter, or does not fit the model (the message
            names the first missing, unexpected or mis-shaped tensor).
        ConfigError: the model's LoRA layers have another rank or scaling than the adapter.
    """
    path = Path(path)
    tensors, metadata = _read_safetensors(path)
    if _METADATA_KEY not in metadata:
        raise CorruptDataError(
            f"{path} has no LoRA configuration in its metadata, so it was not written by save_lora; for a peft "
            "adapter folder use load_peft_adapter"
        )
    try:
        config = LoRAConfig(**json.loads(metadata[_METADATA_KEY]))
    except (json.JSONDecodeError, TypeError) as err:
        raise CorruptDataError(f"{path} has an unreadable LoRA configuration ({err}); save the adapter again") from err
    _apply_saved_config(model, config, str(path))
    device = next(iter(lora_state_dict(model).values())).device
    _load_adapter_tensors(model, {key: value.to(device) for key, value in tensors.items()}, str(path))
    return model


def from_peft_state_dict(state_dict: Mapping[str, Tensor], adapter_name: str = "default") -> dict[str, Tensor]:
    """Rename a ``peft`` LoRA state dict to ours.

    Accepts a saved adapter (``get_peft_model_state_dict``, ``adapter_model.safetensors``:
    ``base_model.model.<name>.lora_A.weight``, modules to save as ``base_model.model.<module>.<param>``) or the live
    ``PeftModel.state_dict()`` (``...lora_A.<adapter>.weight``, ``<module>.modules_to_save.<adapter>.<param>``). The
    live dict maps onto our whole model's ``state_dict()`` (base weights are ``<name>.base_layer.*`` in both); the
    frozen ``original_module`` copies ``peft`` keeps of saved modules and other adapters' tensors are dropped.

    Raises:
        ConfigError: the state dict holds a LoRA variant we do not implement (DoRA, LoRA on embeddings, LoRA bias).
    """
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        name = key.removeprefix(PEFT_PREFIX)
        if ".original_module." in name:
            continue
        match = _PEFT_LORA_KEY.fullmatch(name)
        if match:
            if match["adapter"] not in (None, adapter_name):
                continue
            out[f"{match['module']}.lora_{match['which']}"] = value
            continue
        if ".lora_" in name:
            raise ConfigError(
                f"{key!r} belongs to a LoRA variant this implementation does not support (DoRA, LoRA on embeddings "
                "or a LoRA bias); train the adapter with plain LoRA on linear layers"
            )
        if ".modules_to_save." in name:
            prefix, _, rest = name.partition(".modules_to_save.")
            adapter, _, parameter = rest.partition(".")
            if adapter != adapter_name:
                continue
            name = f"{prefix}.{parameter}"
        out[name] = value
    return out


def to_peft_state_dict(model: nn.Module, adapter_name: str | None = None) -> dict[str, Tensor]:
    """The model's adapter under ``peft``'s names.

    Args:
        model: a model with LoRA layers added by :func:`apply_lora`.
        adapter_name: ``None`` for the saved-adapter format (what ``set_peft_model_state_dict`` and
            ``PeftModel.from_pretrained`` read); a name such as ``"default"`` for the live ``PeftModel``'s keys (load
            with ``peft_model.load_state_dict(..., strict=False)``).
    """
    config = _lora_config(model)
    out: dict[str, Tensor] = {}
    for name, layer in lora_layers(model):
        suffix = "weight" if adapter_name is None else f"{adapter_name}.weight"
        out[f"{PEFT_PREFIX}{name}.lora_A.{suffix}"] = layer.lora_A.detach()
        out[f"{PEFT_PREFIX}{name}.lora_B.{suffix}"] = layer.lora_B.detach()
    for name in _saved_module_names(model, config.modules_to_save):
        inner = name if adapter_name is None else f"{name}.modules_to_save.{adapter_name}"
        for key, value in model.get_submodule(name).state_dict().items():
            out[f"{PEFT_PREFIX}{inner}.{key}"] = value
    return out


def load_peft_adapter(model: nn.Module, folder: str | Path) -> nn.Module:
    """Load a ``peft`` LoRA adapter folder (``save_pretrained``'s ``adapter_config.json`` and
    ``adapter_model.safetensors``) into a base model without LoRA layers; returns the model.

    Raises:
        DatasetNotFoundError: a file is missing.
        CorruptDataError: a file is unreadable or the adapter does not fit the model.
        ConfigError: the adapter uses a ``peft`` option we do not implement (rsLoRA, DoRA, rank patterns ...).
    """
    folder = Path(folder)
    config_file = folder / PEFT_CONFIG_FILE
    if not config_file.is_file():
        raise DatasetNotFoundError(f"{folder} has no {PEFT_CONFIG_FILE}, so it is not a peft adapter folder")
    try:
        peft_config: dict[str, Any] = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CorruptDataError(f"{config_file} is not valid JSON ({err}); save the adapter again") from err
    if peft_config.get("peft_type", "LORA") != "LORA":
        raise ConfigError(f"{folder} holds a {peft_config['peft_type']} adapter; only LoRA adapters load here")
    unsupported = [option for option in _PEFT_UNSUPPORTED_OPTIONS if peft_config.get(option)]
    if peft_config.get("bias", "none") != "none":
        unsupported.append("bias")
    if unsupported:
        raise ConfigError(
            f"the peft adapter in {folder} sets {', '.join(unsupported)}, which this LoRA does not implement; "
            "train it with those options at their defaults"
        )
    tensors, _ = _read_safetensors(folder / PEFT_WEIGHTS_FILE)
    config = LoRAConfig(
        target_modules=peft_config["target_modules"],
        r=peft_config["r"],
        alpha=peft_config["lora_alpha"],
        dropout=peft_config.get("lora_dropout", 0.0),
        modules_to_save=list(peft_config.get("modules_to_save") or []),
    )
    _apply_saved_config(model, config, str(folder))
    device = next(iter(lora_state_dict(model).values())).device
    ours = {key: value.to(device) for key, value in from_peft_state_dict(tensors).items()}
    _load_adapter_tensors(model, ours, str(folder))
    return model


def save_peft_adapter(model: nn.Module, folder: str | Path) -> Path:
    """Write the adapter as a ``peft`` adapter folder that ``PeftModel.from_pretrained(base, folder)`` loads."""
    config = _lora_config(model)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    target_modules = config.target_modules if isinstance(config.target_modules, str) else list(config.target_modules)
    peft_config = {
        "peft_type": "LORA",
        "task_type": None,
        "base_model_name_or_path": None,
        "r": config.r,
        "lora_alpha": config.alpha,
        "lora_dropout": config.dropout,
        "target_modules": target_modules,
        "modules_to_save": list(config.modules_to_save) or None,
        "bias": "none",
        "fan_in_fan_out": False,
        "use_rslora": False,
        "init_lora_weights": True,
        "inference_mode": True,
    }
    (folder / PEFT_CONFIG_FILE).write_text(json.dumps(peft_config, indent=2), encoding="utf-8")
    tensors = {key: value.detach().cpu().contiguous().clone() for key, value in to_peft_state_dict(model).items()}
    save_file(tensors, str(folder / PEFT_WEIGHTS_FILE), metadata={"format": "pt"})
    return folder
