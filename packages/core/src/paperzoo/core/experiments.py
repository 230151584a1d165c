"""The experiment catalog: every YAML under ``experiments/`` with its paper, metric and numbers.

Each experiment config carries an ``experiment:`` block (parsed by the CLI as :class:`ExperimentInfo`)
next to ``trainer``, ``model`` and ``data``; the catalog reads only that block, so ``paperzoo list`` is
fast and needs no model code.

A config whose block has ``variants:`` is a *group*: one study run several ways (the same network under
five optimisers, one deep network under two initialisations). Each variant is a catalog entry of its own,
``<group>/<variant>``, whose config is the group's with the variant's ``config:`` merged over it; running the
group runs every variant and draws their curves on one plot.
"""

from __future__ import annotations

import copy
import difflib
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

import yaml

from paperzoo.core.errors import PaperzooError, UnknownExperimentError


@dataclass
class ExperimentInfo:
    """What an experiment reproduces and how its number is read.

    Args:
        name: the name ``paperzoo run`` takes (``resnet20-cifar10``).
        title: the paper's title.
        authors: the paper's authors, short form (``He et al.``).
        year: the paper's year.
        arxiv: the arXiv id, if any.
        dataset: the dataset this config trains on.
        papers_dataset: whether that is the dataset the paper reports on; False for our offline stand-ins.
        metric: the reported metric, as people read it (``test error (%)``).
        monitor: the key logged by ``trainer.test`` that the metric is computed from (``test/acc``).
        transform: how ``monitor`` becomes ``metric``: ``identity``, ``percent`` (x100) or
            ``error_percent`` (100 x (1 - acc)).
        paper_value: the paper's number for this setting, in ``metric`` units; None when there is none.
        our_value: our best recorded number, in ``metric`` units; None until a full run is recorded.
        our_source: where ``our_value`` comes from (README section, command, hardware, date).
        higher_is_better: direction of the metric.
        variants: makes the config a group: ``{variant: {config: {...}, our_value: ..., our_source: ...,
            paper_value: ...}}``, each run as ``<name>/<variant>`` with its ``config`` merged over this file's
            (mappings merge key by key; a mapping with a ``class_path`` replaces the one it overrides whole, so a
            variant can swap ``paperzoo.core.optim.SGD`` for ``Adam`` without inheriting SGD's arguments).
    """

    name: str
    title: str = ""
    authors: str = ""
    year: int | None = None
    arxiv: str | None = None
    dataset: str = ""
    papers_dataset: bool = True
    metric: str = ""
    monitor: str = ""
    transform: Literal["identity", "percent", "error_percent"] = "identity"
    paper_value: float | None = None
    our_value: float | None = None
    our_source: str | None = None
    higher_is_better: bool = True
    variants: dict[str, dict[str, Any]] | None = None

    def value_from(self, logged: float) -> float:
        """The metric in reporting units from the logged value."""
        if self.transform == "percent":
            return 100.0 * logged
        if self.transform == "error_percent":
            return 100.0 * (1.0 - logged)
        return logged


_VARIANT_KEYS = {"config", "our_value", "our_source", "paper_value"}


@dataclass
class Experiment:
    """A catalog entry: the info block and the config file it came from.

    ``variant`` is set for one variant of a group (``info.name`` is then ``<group>/<variant>``); a group's own entry
    has ``info.variants`` and no ``variant``.
    """

    info: ExperimentInfo
    config: Path
    variant: str | None = None

    @property
    def is_group(self) -> bool:
        return self.variant is None and bool(self.info.variants)

    @property
    def group(self) -> str | None:
        """The group's name for a variant, else None."""
        return self.info.name.rsplit("/", 1)[0] if self.variant is not None else None

    def members(self) -> list[Experiment]:
        """The experiments a run of this entry trains: the variants of a group, else the entry itself."""
        if not self.is_group:
            return [self]
        return [_variant_entry(self, name) for name in self.info.variants]

    def config_dict(self) -> dict:
        """The full config this entry trains: the file's, with a variant's ``config`` merged over it."""
        data = yaml.safe_load(self.config.read_text())
        if self.variant is None:
            return data
        spec = data["experiment"]["variants"][self.variant]
        merged = merge_config(data, spec.get("config") or {})
        merged["experiment"] = {k: v for k, v in asdict(self.info).items() if v is not None}
        return merged

    def as_dict(self, root: Path) -> dict:
        info = asdict(self.info)
        variants = info.pop("variants")
        info["variants"] = list(variants) if variants else None
        return {
            "name": info.pop("name"),
            "paper": {k: info.pop(k) for k in ("title", "authors", "year", "arxiv")},
            "dataset": info.pop("dataset"),
            "papers_dataset": info.pop("papers_dataset"),
            "metric": info.pop("metric"),
            "paper_value": info.pop("paper_value"),
            "our_value": info.pop("our_value"),
            "our_source": info.pop("our_source"),
            "config": str(_relative(self.config, root)),
            **info,
        }


def merge_config(base: dict, override: dict) -> dict:
    """``base`` with ``override`` merged over it, key by key; a mapping with a ``class_path`` replaces whole."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and "class_path" not in value:
            merged[key] = merge_config(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _variant_entry(group: Experiment, variant: str) -> Experiment:
    spec = group.info.variants[variant]
    info = replace(
        group.info,
        name=f"{group.info.name}/{variant}",
        variants=None,
        our_value=spec.get("our_value"),
        our_source=spec.get("our_source"),
        paper_value=spec.get("paper_value", group.info.paper_value),
    )
    return Experiment(info, group.config, variant)


def _relative(path: Path, root: Path) -> Path:
    try:
        return path.resolve().relative_to(root.resolve().parent)
    except ValueError:
        return path


def experiments_dir() -> Path:
    """Where the experiment configs are: ``$PAPERZOO_EXPERIMENTS``, else an ``experiments/`` folder in the
    current directory or one of its parents, else the one of the checkout this package was installed from."""
    env = os.environ.get("PAPERZOO_EXPERIMENTS")
    if env:
        path = Path(env)
        if not path.is_dir():
            raise PaperzooError(f"PAPERZOO_EXPERIMENTS points to {path}, which is not a folder")
        return path
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        candidate = folder / "experiments"
        if (candidate / "_base").is_dir():
            return candidate
    checkout = Path(__file__).resolve().parents[5] / "experiments"
    if (checkout / "_base").is_dir():
        return checkout
    raise PaperzooError(
        "no experiments/ folder found; run paperzoo inside a paperzoo checkout or set PAPERZOO_EXPERIMENTS"
    )


def config_files(root: Path | None = None) -> list[Path]:
    """Every experiment YAML (the ``_base`` fragments excluded), sorted."""
    root = root or experiments_dir()
    return sorted(p for p in root.rglob("*.yaml") if "_base" not in p.relative_to(root).parts)


_FIELDS = {f.name for f in fields(ExperimentInfo)}


def read_info(config: Path) -> ExperimentInfo:
    """The ``experiment:`` block of one config."""
    try:
        data = yaml.safe_load(config.read_text())
    except yaml.YAMLError as err:
        raise PaperzooError(f"experiment config {config} is not valid YAML: {err}") from err
    block = (data or {}).get("experiment")
    if not isinstance(block, dict) or "name" not in block:
        raise PaperzooError(f"experiment config {config} has no experiment: block with a name")
    unknown = set(block) - _FIELDS
    if unknown:
        raise PaperzooError(f"experiment config {config} has unknown experiment keys: {', '.join(sorted(unknown))}")
    variants = block.get("variants")
    if variants is not None:
        if not isinstance(variants, dict) or not variants:
            raise PaperzooError(f"experiment config {config}: variants must map variant names to their settings")
        for variant, spec in variants.items():
            if not isinstance(spec, dict) or set(spec) - _VARIANT_KEYS:
                raise PaperzooError(
                    f"experiment config {config}: variant {variant!r} may only set {', '.join(sorted(_VARIANT_KEYS))}"
                )
            if not isinstance(spec.get("config", {}), dict):
                raise PaperzooError(f"experiment config {config}: variant {variant!r} config must be a mapping")
    return ExperimentInfo(**block)


def catalog(root: Path | None = None) -> list[Experiment]:
    """All experiments, sorted by name; duplicate names are an error."""
    root = root or experiments_dir()
    entries = []
    for path in config_files(root):
        entry = Experiment(read_info(path), path)
        entries += [entry, *entry.members()] if entry.is_group else [entry]
    seen: dict[str, Path] = {}
    for e in entries:
        if e.info.name in seen:
            raise PaperzooError(f"experiment name {e.info.name!r} is used by both {seen[e.info.name]} and {e.config}")
        seen[e.info.name] = e.config
    return sorted(entries, key=lambda e: e.info.name)


def resolve(name: str, root: Path | None = None) -> Experiment:
    """The catalog entry called ``name`` (or a path to a config), or :class:`UnknownExperimentError`."""
    if name.endswith((".yaml", ".yml")) and Path(name).is_file():
        return Experiment(read_info(Path(name)), Path(name))
    if ".yaml/" in name or ".yml/" in name:  # path/to/group.yaml/variant
        path, variant = name.rsplit("/", 1)
        if Path(path).is_file():
            group = Experiment(read_info(Path(path)), Path(path))
            if group.is_group and variant in group.info.variants:
                return _variant_entry(group, variant)
    entries = catalog(root)
    for e in entries:
        if e.info.name == name:
            return e
    names = [e.info.name for e in entries]
    close = difflib.get_close_matches(name, names, n=3)
    hint = f"did you mean {', '.join(close)}?" if close else "see `paperzoo list` for the names"
    raise UnknownExperimentError(f"there is no experiment called {name!r}; {hint}")
