"""Every registered generative model builds small, runs forward and backward, and carries example inputs."""

import importlib
import pkgutil

import pytest
import torch

import paperzoo.generative.models as models_pkg
from paperzoo.generative import create_model, list_models


def _small_kwargs() -> dict[str, dict]:
    merged: dict[str, dict] = {}
    for info in pkgutil.iter_modules(models_pkg.__path__):
        module = importlib.import_module(f"{models_pkg.__name__}.{info.name}")
        merged.update(getattr(module, "SMALL_KWARGS", {}))
    return merged


SMALL = _small_kwargs()


def test_every_family_is_registered():
    names = list_models()
    for family in ("autoencoder", "vae", "rbm", "jem", "dcgan", "cyclegan", "stylegan2", "ddpm_unet", "feature"):
        assert any(family in name for name in names), f"no registered model of family {family!r}: {names}"


def test_every_registered_model_has_small_kwargs():
    assert sorted(set(list_models()) - set(SMALL)) == []


@pytest.mark.parametrize("name", list_models())
def test_forward_backward(name):
    torch.manual_seed(0)
    model = create_model(name, **SMALL.get(name, {}))
    inputs = model.example_inputs(batch_size=2)
    out = model(*inputs)
    outputs = out if isinstance(out, tuple | list) else (out,)
    floats = [o for o in outputs if torch.is_tensor(o) and o.is_floating_point()]
    assert floats and all(torch.isfinite(o).all() for o in floats)
    sum(o.float().sum() for o in floats).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
