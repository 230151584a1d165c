"""Every registered llm model builds small, runs forward and backward, and carries example inputs."""

import dataclasses
import importlib
import pkgutil

import pytest
import torch

import paperzoo.llm.models as models_pkg
from paperzoo.llm import create_model, list_models


def _small_kwargs() -> dict[str, dict]:
    merged: dict[str, dict] = {}
    for info in pkgutil.iter_modules(models_pkg.__path__):
        module = importlib.import_module(f"{models_pkg.__name__}.{info.name}")
        merged.update(getattr(module, "SMALL_KWARGS", {}))
    return merged


SMALL = _small_kwargs()


def _float_tensors(out) -> list[torch.Tensor]:
    if dataclasses.is_dataclass(out):
        out = [getattr(out, f.name) for f in dataclasses.fields(out)]
    elif isinstance(out, dict):
        out = list(out.values())
    elif not isinstance(out, tuple | list):
        out = [out]
    return [o for o in out if torch.is_tensor(o) and o.is_floating_point()]


def test_every_family_is_registered():
    names = list_models()
    for name in ("bert_base", "bert_large", "minilm_l6_h384", "gpt2", "gpt2_medium", "gpt_shakespeare_char"):
        assert name in names, f"{name} is not registered: {names}"


def test_every_registered_model_has_small_kwargs():
    assert sorted(set(list_models()) - set(SMALL)) == []


@pytest.mark.parametrize("name", list_models())
def test_forward_backward(name):
    torch.manual_seed(0)
    model = create_model(name, **SMALL.get(name, {}))
    floats = _float_tensors(model(*model.example_inputs(batch_size=2)))
    assert floats and all(torch.isfinite(o).all() for o in floats)
    sum(o.float().sum() for o in floats).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
