"""Reading Hugging Face model folders and objects, and saving our models as safetensors.

A Hugging Face model folder holds ``config.json`` (the architecture's hyper-parameters) and its weights as
``model.safetensors`` (or the older ``pytorch_model.bin``), possibly sharded with an index file. Our models read the
hyper-parameters from the config and map the weight names onto their own (each model family has its converter);
these helpers do the reading, so that a missing or damaged file gives one clear sentence.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from paperzoo.core.errors import CorruptDataError, DatasetNotFoundError

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


def read_hf_folder(path: str | Path) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """``(config, state_dict)`` of a Hugging Face model folder.

    Args:
        path: the folder with ``config.json`` and ``model.safetensors``, ``pytorch_model.bin`` or a sharded index.

    Raises:
        DatasetNotFoundError: the folder, its ``config.json`` or its weights are missing.
        CorruptDataError: a file cannot be read.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise DatasetNotFoundError(
            f"{folder} is not a folder: pass a Hugging Face model folder (config.json and model.safetensors), "
            "for example the one `save_pretrained` writes"
        )
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise DatasetNotFoundError(f"{folder} has no config.json, so it is not a Hugging Face model folder")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CorruptDataError(f"{config_file} is not valid JSON ({err}); re-create the model folder") from err
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            return config, _read_weights(folder / name)
    for name in INDEX_FILES:
        if (folder / name).is_file():
            return config, _read_sharded(folder / name)
    raise DatasetNotFoundError(f"{folder} has no weights: it needs one of {', '.join(WEIGHT_FILES + INDEX_FILES)}")


def hf_state(source: str | Path | nn.Module) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """``(config, state_dict)`` of a Hugging Face model folder or of a loaded ``transformers`` model object.

    A model object is recognised by its ``config`` attribute with a ``to_dict()`` method (every
    ``PreTrainedModel`` has one), so ``transformers`` need not be imported here.
    """
    if isinstance(source, nn.Module):
        config = getattr(source, "config", None)
        if config is None or not hasattr(config, "to_dict"):
            raise TypeError(
                f"{type(source).__name__} is not a Hugging Face model (it has no config.to_dict()); pass a "
                "transformers PreTrainedModel or the path of a model folder"
            )
        return config.to_dict(), {k: v.detach() for k, v in source.state_dict().items()}
    return read_hf_folder(source)


def strip_prefix(state_dict: Mapping[str, Tensor], prefixes: tuple[str, ...]) -> dict[str, Tensor]:
    """The state dict with the first matching prefix of each key removed (``"bert."`` of a task model, say)."""
    out = {}
    for key, value in state_dict.items():
        for prefix in prefixes:
            if key.startswith(prefix):
                key = key[len(prefix) :]
                break
        out[key] = value
    return out


def save_safetensors(module: nn.Module, path: str | Path, metadata: Mapping[str, Any] | None = None) -> Path:
    """Write ``module``'s state dict to ``path`` as safetensors, with ``metadata`` stored as JSON strings.

    Tied parameters (an output layer sharing the embedding's matrix) are stored once, under the first name; the
    loader restores the tie from the model's own structure. The file is written next to its final name and moved
    into place, so a crash never leaves half a file where a good one was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    seen: dict[int, str] = {}
    tensors = {}
    for name, tensor in module.state_dict().items():
        key = tensor.data_ptr() if tensor.numel() else id(tensor)
        if key in seen:
            continue
        seen[key] = name
        tensors[name] = tensor.detach().contiguous().cpu()
    meta = {str(k): json.dumps(v) for k, v in (metadata or {}).items()}
    partial = path.with_name(path.name + ".partial")
    save_file(tensors, str(partial), metadata=meta)
    partial.replace(path)
    return path


def load_safetensors(path: str | Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """``(state_dict, metadata)`` of a file written by :func:`save_safetensors` (metadata values JSON-decoded).

    Raises:
        DatasetNotFoundError: there is no file at ``path``.
        CorruptDataError: the file is not a readable safetensors file.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"{path} does not exist: pass a .safetensors file written by save_safetensors")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            raw_meta = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
        metadata = {k: json.loads(v) for k, v in raw_meta.items()}
    except (SafetensorError, OSError, ValueError) as err:
        raise CorruptDataError(f"{path} is not a readable safetensors file ({err}); re-save the model") from err
    return tensors, metadata


def _read_weights(file: Path) -> dict[str, Tensor]:
    try:
        if file.suffix == ".safetensors":
            return load_file(str(file))
        return torch.load(file, map_location="cpu", weights_only=True)
    except (SafetensorError, OSError, RuntimeError, ValueError, EOFError) as err:
        raise CorruptDataError(f"{file} cannot be read as model weights ({err}); re-download or re-save it") from err


def _read_sharded(index_file: Path) -> dict[str, Tensor]:
    try:
        index = json.loads(index_file.read_text(encoding="utf-8"))
        shards = sorted(set(index["weight_map"].values()))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, AttributeError) as err:
        raise CorruptDataError(f"{index_file} is not a weight index ({err}); re-create the model folder") from err
    state: dict[str, Tensor] = {}
    for shard in shards:
        file = index_file.parent / shard
        if not file.is_file():
            raise DatasetNotFoundError(f"{index_file} names the shard {shard}, which is missing from the folder")
        state.update(_read_weights(file))
    return state
