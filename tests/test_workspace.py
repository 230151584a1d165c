"""The shape of the workspace: six packages, one namespace, dependencies that point one way."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[1]
DOMAINS = ("vision", "sequence", "generative", "graph", "llm")


def _project(package: str) -> dict:
    return tomllib.loads((ROOT / "packages" / package / "pyproject.toml").read_text())["project"]


def test_six_packages_with_their_distribution_names():
    assert sorted(p.name for p in (ROOT / "packages").iterdir() if p.is_dir()) == sorted(("core", *DOMAINS))
    for package in ("core", *DOMAINS):
        assert _project(package)["name"] == f"paperzoo-{package}"
        assert (ROOT / "packages" / package / "src" / "paperzoo" / package / "__init__.py").is_file()


def test_paperzoo_is_a_namespace_package():
    assert not list(ROOT.glob("packages/*/src/paperzoo/__init__.py"))


def test_domains_depend_on_core_and_never_on_each_other():
    for package in DOMAINS:
        deps = [d.split(">")[0].split("=")[0].split("[")[0].strip() for d in _project(package)["dependencies"]]
        assert "paperzoo-core" in deps
        assert not [d for d in deps if d.startswith("paperzoo-") and d != "paperzoo-core"], package
    core_deps = " ".join(_project("core")["dependencies"])
    assert "paperzoo-" not in core_deps


def test_dependencies_have_lower_bounds_only():
    for package in ("core", *DOMAINS):
        for dep in _project(package)["dependencies"]:
            assert "==" not in dep and "<" not in dep, f"{package}: pin exact versions in uv.lock, not in {dep!r}"


def test_no_domain_source_imports_another_domain():
    for package in ("core", *DOMAINS):
        others = [d for d in DOMAINS if d != package]
        for source in (ROOT / "packages" / package / "src").rglob("*.py"):
            text = source.read_text()
            for other in others:
                assert f"paperzoo.{other}" not in text, f"{source} mentions paperzoo.{other}"


def test_meta_distribution_depends_on_all_six():
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    # A member may be pulled in with its optional extras (paperzoo-graph[chem]): everything, for the whole project.
    names = [dependency.split("[")[0] for dependency in root["dependencies"]]
    assert sorted(names) == sorted(f"paperzoo-{p}" for p in ("core", *DOMAINS))
