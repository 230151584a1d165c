"""Every domain package has the shared layout, a working registry, and imports without the other domains."""

import importlib
import re
import subprocess
import sys

import pytest
from torch import nn

DOMAINS = ("vision", "sequence", "generative", "graph", "llm")


@pytest.mark.parametrize("name", DOMAINS)
def test_layout_imports(name):
    domain = importlib.import_module(f"paperzoo.{name}")
    for sub in ("layers", "models", "modules", "data", "registry"):
        importlib.import_module(f"paperzoo.{name}.{sub}")
    assert set(domain.__all__) >= {"create_model", "list_models", "register_model"}


@pytest.mark.parametrize("name", DOMAINS)
def test_registry_registers_creates_and_rejects_unknown_names(name):
    domain = importlib.import_module(f"paperzoo.{name}")
    registry = importlib.import_module(f"paperzoo.{name}.registry")._registry

    @domain.register_model
    def _smoke_test_model(width: int = 3) -> nn.Module:
        return nn.Linear(width, 1)

    try:
        assert "_smoke_test_model" in domain.list_models()
        assert domain.create_model("_smoke_test_model", width=5).in_features == 5
        with pytest.raises(KeyError, match=re.escape(f"unknown model 'nope' in paperzoo.{name}")):
            domain.create_model("nope")
    finally:
        del registry._builders["_smoke_test_model"]


def test_importing_a_domain_does_not_pull_in_another():
    code = (
        "import importlib, sys\n"
        f"for d in {DOMAINS!r}:\n"
        "    before = {m for m in sys.modules if m.startswith('paperzoo.')}\n"
        "    importlib.import_module('paperzoo.' + d)\n"
        "    new = {m.split('.')[1] for m in sys.modules if m.startswith('paperzoo.')} - {'core', d}\n"
        "    new -= {m.split('.')[1] for m in before}\n"
        "    print(d, sorted(new))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:-1] == [f"{d} []" for d in DOMAINS], out
