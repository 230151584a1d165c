"""The batching that every tokeniser here shares: pairing texts with their second segments, and right-padding the
encoded rows into ``input_ids``, ``attention_mask`` and ``token_type_ids`` as Hugging Face's tokenisers return them
(the input format of BERT, Devlin et al. 2019, section 3, and of RoBERTa, Liu et al. 2019)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

from paperzoo.core.errors import ConfigError


def pair_texts(
    texts: str | Sequence[str], text_pairs: str | Sequence[str] | None
) -> tuple[list[str], list[str | None]]:
    """``texts`` as a list (a single string is a batch of one) and one second segment (or ``None``) per text.

    Raises:
        ConfigError: texts and pairs differ in number.
    """
    texts = [texts] if isinstance(texts, str) else list(texts)
    if text_pairs is None:
        return texts, [None] * len(texts)
    pairs: list[str | None] = [text_pairs] if isinstance(text_pairs, str) else list(text_pairs)
    if len(pairs) != len(texts):
        raise ConfigError(f"got {len(texts)} texts but {len(pairs)} text_pairs: give one pair per text")
    return texts, pairs


def truncation_budget(max_length: int | None, model_max_length: int | None, num_special: int, specials: str) -> int:
    """How many text tokens fit ``max_length`` (or else ``model_max_length``) beside ``num_special`` special tokens.

    Raises:
        ConfigError: neither length is given, or the special tokens (``specials``, for the message) do not fit.
    """
    limit = max_length if max_length is not None else model_max_length
    if limit is None:
        raise ConfigError("truncation=True needs a max_length: pass one (the tokeniser has no model_max_length)")
    budget = limit - num_special
    if budget < 0:
        raise ConfigError(f"max_length={limit} leaves no room for {specials}: give a larger max_length")
    return budget


def pad_batch(
    encoded: Sequence[tuple[list[int], list[int]]],
    pad_token_id: int | None,
    padding: bool | Literal["longest", "max_length"] = True,
    max_length: int | None = None,
    return_tensors: Literal["pt"] | None = "pt",
) -> dict[str, Tensor] | dict[str, list[list[int]]]:
    """Rows of ``(ids, token_types)`` right-padded with ``pad_token_id`` (type 0, attention 0) into a batch.

    Args:
        encoded: each input's ids and segment ids, of equal lengths.
        pad_token_id: the padding id.
        padding: ``True``/``"longest"`` pads to the longest input, ``"max_length"`` to ``max_length`` (or the
            longest input, where longer), ``False`` not at all.
        max_length: the length of ``"max_length"`` padding.
        return_tensors: ``"pt"`` for ``(B, T)`` long tensors, ``None`` for lists.

    Raises:
        ConfigError: ``"max_length"`` padding without ``max_length``, an unknown ``padding`` or ``return_tensors``, or
            tensors asked for inputs of different lengths without padding.
    """
    lengths = [len(ids) for ids, _ in encoded]
    if padding == "max_length":
        if max_length is None:
            raise ConfigError('padding="max_length" needs a max_length: pass one, or use padding=True')
        width: int | None = max([max_length, *lengths])
    elif padding in (True, "longest"):
        width = max(lengths, default=0)
    elif padding is False:
        width = None
    else:
        raise ConfigError(f'padding={padding!r} is not one of True, False, "longest", "max_length"')
    batch: dict[str, list[list[int]]] = {"input_ids": [], "attention_mask": [], "token_type_ids": []}
    for (ids, types), length in zip(encoded, lengths, strict=True):
        fill = 0 if width is None else width - length
        batch["input_ids"].append(ids + [pad_token_id] * fill)
        batch["attention_mask"].append([1] * length + [0] * fill)
        batch["token_type_ids"].append(types + [0] * fill)
    if return_tensors is None:
        return batch
    if return_tensors != "pt":
        raise ConfigError(f'return_tensors={return_tensors!r} is not supported: use "pt" or None')
    if len(set(lengths)) > 1 and width is None:
        raise ConfigError("the inputs have different lengths: pass padding=True to return tensors")
    return {key: torch.tensor(rows, dtype=torch.long).reshape(len(rows), -1) for key, rows in batch.items()}
