"""The ``paperzoo`` command: LightningCLI's fit/validate/test/predict plus ``list`` and ``run``.

::

    paperzoo fit --config experiments/vision/resnet_he2016/cifar10_resnet20.yaml [--trainer.max_epochs=3]
    paperzoo list [--format table|json]
    paperzoo run NAME [--seeds N] [--config experiments/_base/gpu.yaml] [--trainer.max_epochs=3]

Problems the user can fix (an unknown experiment, a misspelt key, a missing dataset, a corrupt file)
are reported as one sentence on stderr with exit status 1 (2 for command-line syntax); add ``--debug``
or set ``PAPERZOO_DEBUG=1`` for the full traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import statistics
import sys
import tempfile
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

# Lightning 2.6 calls jsonargparse APIs that jsonargparse 4.49 deprecates; users cannot act on those warnings.
os.environ.setdefault("JSONARGPARSE_DEPRECATION_WARNINGS", "off")

import lightning as L
from jsonargparse import ArgumentError
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar, RichProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import CSVLogger

from paperzoo.core.callbacks import NonFiniteLossGuard, RunRecordCallback
from paperzoo.core.checkpoint import SafeCheckpointIO, read_checkpoint
from paperzoo.core.errors import PaperzooError
from paperzoo.core.experiments import Experiment, ExperimentInfo, catalog, experiments_dir, resolve

DEFAULT_ROOT = "runs"


class _DropAdvertisements(logging.Filter):
    """Lightning logs an advertisement for its cloud logger at the start of every run."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_DropAdvertisements())

# Lightning 2.6 calls a pytree API that torch 2.15 deprecates, once per batch; it is not ours to fix.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")


class PaperzooCLI(LightningCLI):
    """LightningCLI with paperzoo's defaults.

    * Model and data are given by ``class_path`` (any LightningModule / LightningDataModule).
    * Configs are parsed in omegaconf mode (``${data.init_args.batch_size}`` interpolation works).
    * An optional ``experiment:`` block (:class:`~paperzoo.core.experiments.ExperimentInfo`) names the run.
    * A ``checkpoint:`` block configures the ``ModelCheckpoint`` (``save_last`` on) present unless
      ``--trainer.enable_checkpointing=false``.
    * Every run has a CSV logger in ``runs/<experiment>/version_N`` (added to any loggers configured),
      a Rich progress bar, a non-finite-loss guard, atomic checkpoint writes and weights-only loads, and
      saves its resolved ``config.yaml`` and ``environment.json`` (versions, git commit) in that folder.
    """

    def __init__(self, args: Sequence[str] | None = None, run: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("parser_kwargs", {"parser_mode": "omegaconf", "exit_on_error": False, "allow_abbrev": False})
        super().__init__(
            subclass_mode_model=True,
            subclass_mode_data=True,
            save_config_callback=RunRecordCallback,
            save_config_kwargs={"overwrite": True},
            trainer_defaults={"default_root_dir": DEFAULT_ROOT},
            auto_configure_optimizers=False,
            args=list(args) if args is not None else None,
            run=run,
            **kwargs,
        )

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--experiment",
            type=ExperimentInfo | None,
            default=None,
            help="What the config reproduces: the paper, its metric and its number (see paperzoo list).",
        )
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.save_last": True,
                "checkpoint.filename": "epoch{epoch}-step{step}",
                "checkpoint.auto_insert_metric_name": False,
            }
        )

    def parse_arguments(self, parser: LightningArgumentParser, args: Sequence[str] | None) -> None:
        # LightningCLI warns when both `args` and sys.argv are given; `main` always passes argv explicitly.
        self.config = parser.parse_args(args)

    def _parse_ckpt_path(self) -> None:
        subcommand = self.config.get("subcommand")
        if subcommand:
            ckpt_path = self.config[subcommand].get("ckpt_path")
            if ckpt_path and ckpt_path not in ("best", "last", "hpc", "registry"):
                read_checkpoint(ckpt_path)
        super()._parse_ckpt_path()

    def before_instantiate_classes(self) -> None:
        # Loggers configured without a run name take the experiment's name.
        config = self.config.get(str(self.subcommand), self.config)
        experiment = config.get("experiment")
        loggers = config.get("trainer.logger")
        if experiment is None or not isinstance(loggers, list):
            return
        for logger in loggers:
            init_args = logger.get("init_args") if hasattr(logger, "get") else None
            if init_args is not None and init_args.get("name") in (None, "lightning_logs"):
                init_args["name"] = experiment.name

    def instantiate_trainer(self, **kwargs: Any) -> L.Trainer:
        trainer_config = self._get(self.config_init, "trainer", default={})
        root = trainer_config.get("default_root_dir") or DEFAULT_ROOT
        experiment = self._get(self.config_init, "experiment")
        name = experiment.name if experiment else "default"

        logger = trainer_config.get("logger")
        if logger is not False:
            loggers = [] if logger in (None, True) else list(logger) if isinstance(logger, list) else [logger]
            if not any(isinstance(lg, CSVLogger) for lg in loggers):
                loggers.insert(0, CSVLogger(save_dir=root, name=name))
            kwargs["logger"] = loggers

        callbacks = list(trainer_config.get("callbacks") or [])
        callbacks.insert(0, NonFiniteLossGuard())
        if trainer_config.get("enable_progress_bar", True) is not False and not any(
            isinstance(cb, ProgressBar) for cb in callbacks
        ):
            callbacks.append(RichProgressBar(leave=True))
        kwargs["callbacks"] = callbacks

        plugins = trainer_config.get("plugins")
        plugins = [] if plugins is None else list(plugins) if isinstance(plugins, list) else [plugins]
        if not any(hasattr(p, "save_checkpoint") for p in plugins):
            plugins.append(SafeCheckpointIO())
        kwargs["plugins"] = plugins
        if trainer_config.get("enable_checkpointing") is False:
            # `--trainer.enable_checkpointing=false` asks for no checkpoints: leave out the `checkpoint:` callback,
            # which Lightning would otherwise reject as contradicting that flag.
            return self._instantiate_trainer({**trainer_config, **kwargs}, [])
        return super().instantiate_trainer(**kwargs)


# ----------------------------------------------------------------------------------------------- errors


def _argument_error_sentence(err: BaseException) -> str:
    """Boil jsonargparse's nested, multi-line report down to one sentence that says what is wrong."""
    text = str(err).strip()
    option = re.search(r"does not accept option '([^']+)'", text) or re.search(
        r"Key \"?([\w.]+)\"? is not expected", text
    )
    if option:
        return f"the option {option.group(1)!r} is not accepted; check its spelling (--help lists the options)"
    problems = re.findall(r"Problem with given class_path '([^']+)':\s*\n\s*(.+)", text)
    if problems:
        class_path, reason = problems[-1]  # the innermost class is the one at fault
        reason = reason.strip().rstrip(":")
        bad_key = re.match(r"Option '([^']+)' is not accepted", reason) or re.match(
            r"Key \"([^\"]+)\" is not expected", reason
        )
        if bad_key:
            return f"{class_path} has no argument {bad_key.group(1)!r}; check the spelling under its init_args"
        if "has no attribute" in reason or "No module named" in reason or "not accessible" in reason:
            return f"the class_path {class_path} cannot be imported ({reason}); check the module and class name"
        return f"the config for {class_path} is invalid: {reason}"
    path = re.search(r"Expected a path but (\S+) either not accessible or invalid", text) or re.search(
        r"Import path (\S+)", text
    )
    if path:
        return f"the class_path {path.group(1)} cannot be imported; check the module and class name"
    missing = re.search(r'[Kk]ey "([\w.]+)" is required', text)
    if missing:
        return f"the config must set {missing.group(1)!r}"
    lines = [ln.strip(" -") for ln in text.splitlines() if ln.strip()]
    return " ".join(lines[:2]) if lines else "the command line or config could not be parsed"


def _debug_requested(argv: list[str]) -> tuple[bool, list[str]]:
    debug = os.environ.get("PAPERZOO_DEBUG", "") not in ("", "0", "false")
    if "--debug" in argv:
        debug = True
        argv = [a for a in argv if a != "--debug"]
    return debug, argv


OVERVIEW = """usage: paperzoo COMMAND [options]

paperzoo: from-scratch implementations of deep-learning papers, trained with PyTorch Lightning.

commands:
  list       list every experiment: paper, dataset, metric, the paper's number and ours
  run        fit an experiment by name, test its best checkpoint, print ours next to the paper's
  plot       draw a run's loss and accuracy curves (from its metrics.csv) to a PNG
  fit        LightningCLI: train from --config files (and --key=value overrides)
  validate   LightningCLI: evaluate on the validation set
  test       LightningCLI: evaluate on the test set (with --ckpt_path)
  predict    LightningCLI: predict on the predict set

`paperzoo COMMAND --help` explains every option of a command.
Add --debug (or set PAPERZOO_DEBUG=1) to see the full traceback of an error.

examples:
  paperzoo list
  paperzoo run quickstart
  paperzoo run resnet56-cifar10 --seeds 5 --config experiments/_base/gpu.yaml
  paperzoo fit --config experiments/vision/resnet_he2016/cifar10_resnet20.yaml --trainer.max_steps=1000
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``paperzoo`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug, argv = _debug_requested(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(OVERVIEW, end="")
        return 0 if argv else 2
    try:
        if argv and argv[0] == "list":
            return cmd_list(argv[1:])
        if argv and argv[0] == "run":
            return cmd_run(argv[1:])
        if argv and argv[0] == "plot":
            return cmd_plot(argv[1:])
        PaperzooCLI(args=argv)
        return 0
    except (PaperzooError, ArgumentError, FileNotFoundError) as err:
        if debug:
            traceback.print_exc()
        message = _argument_error_sentence(err) if isinstance(err, ArgumentError) else str(err)
        print(f"error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; the last checkpoint written is kept", file=sys.stderr)
        return 130


def console_main() -> None:
    sys.exit(main())


# ----------------------------------------------------------------------------------------------- list


def cmd_list(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="paperzoo list",
        description="List every experiment: its paper, dataset, metric, the paper's number and ours.",
    )
    parser.add_argument(
        "--format",
        choices=("table", "json", "markdown"),
        default="table",
        help="table (for people, the default), json (a stable list of objects with name, paper, dataset, "
        "metric, paper_value, our_value, our_source, config, ...) or markdown (the README's table)",
    )
    args = parser.parse_args(argv)
    root = experiments_dir()
    rows = [e.as_dict(root) for e in catalog(root)]
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return 0
    if args.format == "markdown":
        print("| experiment | paper | dataset | metric | paper | ours | source of ours |")
        print("|---|---|---|---|---|---|---|")
        for r in rows:
            dataset = r["dataset"] + ("" if r["papers_dataset"] else " (offline stand-in)")
            ours = _ours(r)
            print(
                f"| `{r['name']}` | {_cite(r['paper'])} | {dataset} | {r['metric']} | {_fmt(r['paper_value'])} "
                f"| {ours} | {r['our_source'] or ''} |"
            )
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"paperzoo experiments ({len(rows)})", show_lines=False)
    table.add_column("name", no_wrap=True)
    for column in ("paper", "dataset", "metric", "paper", "ours", "source of ours"):
        table.add_column(column, overflow="fold")
    for r in rows:
        dataset = r["dataset"] + ("" if r["papers_dataset"] else " *")
        table.add_row(
            r["name"],
            _cite(r["paper"]),
            dataset,
            r["metric"],
            _fmt(r["paper_value"]),
            _ours(r),
            r["our_source"] or "",
        )
    console = Console(width=max(Console().width, 160))
    console.print(table)
    console.print("* not the paper's dataset: an offline stand-in; its number is not comparable to the paper's.")
    return 0


def _cite(paper: dict) -> str:
    arxiv = f", arXiv {paper['arxiv']}" if paper["arxiv"] else ""
    return f"{paper['title']} ({paper['authors']} {paper['year']}{arxiv})"


def _ours(row: dict) -> str:
    if row.get("variants"):
        return f"{len(row['variants'])} variants (their rows follow)"
    return _fmt(row["our_value"]) if row["our_value"] is not None else "not yet"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


# ----------------------------------------------------------------------------------------------- plot


def cmd_plot(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="paperzoo plot",
        description="Draw a run's per-epoch loss and accuracy curves to a PNG; given several runs, draw their "
        "training loss, validation loss and validation accuracy on shared axes, one line per run.",
    )
    parser.add_argument(
        "run_dirs",
        nargs="+",
        metavar="RUN_DIR",
        help="a run directory, e.g. runs/quickstart/version_0 (with metrics.csv)",
    )
    parser.add_argument(
        "--out",
        default=None,
        help="the PNG to write (default: RUN_DIR/curves.png, or compare.png in the current folder)",
    )
    parser.add_argument("--title", default=None, help="the figure's title (default: the run's name and version)")
    args = parser.parse_args(argv)
    from paperzoo.core.plots import plot_compare, plot_run

    if len(args.run_dirs) == 1:
        print(plot_run(args.run_dirs[0], out=args.out, title=args.title))
        return 0
    runs = {f"{Path(d).parent.name}/{Path(d).name}": Path(d) for d in args.run_dirs}
    print(plot_compare(runs, out=args.out or "compare.png", title=args.title))
    return 0


# ----------------------------------------------------------------------------------------------- run


def cmd_run(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="paperzoo run",
        description="Fit an experiment, then test its best checkpoint, and print the paper's metric next to "
        "the paper's number. Any other argument (--config FILE, --trainer.max_epochs=3, "
        "--data.init_args.data_dir=...) is passed to the fit after the experiment's own config. "
        "A group (an experiment with variants, such as optimizers-fashionmnist) runs every variant in turn "
        "and draws their curves on one plot, runs/GROUP/compare.png; GROUP/VARIANT runs one variant.",
    )
    parser.add_argument("name", help="experiment name from `paperzoo list`, or a path to an experiment YAML")
    parser.add_argument("--seeds", type=int, default=1, help="number of seeds to run (mean +- std is printed)")
    parser.add_argument("--seed", type=int, default=0, help="first seed; seeds are seed, seed+1, ... (default 0)")
    args, overrides = parser.parse_known_args(argv)
    if args.seeds < 1:
        raise PaperzooError("--seeds must be at least 1")
    experiment = resolve(args.name)
    finished: list[tuple[Experiment, list[dict[str, Any]]]] = []
    with tempfile.TemporaryDirectory(prefix="paperzoo-") as tmp:
        for member in experiment.members():
            config = member.config if member.variant is None else _write_variant_config(member, Path(tmp))
            results = _run_seeds(member.info, config, range(args.seed, args.seed + args.seeds), overrides)
            if results is None:  # a non-zero rank of a distributed run: rank 0 reports
                return 0
            _print_run_summary(member.info, results)
            finished.append((member, results))
    if experiment.is_group:
        _compare_group(experiment, finished)
    return 0


def _write_variant_config(member: Experiment, folder: Path) -> Path:
    path = folder / f"{member.variant}.yaml"
    path.write_text(yaml.safe_dump(member.config_dict(), sort_keys=False))
    return path


def _run_seeds(
    info: ExperimentInfo, config: Path, seeds: Sequence[int], overrides: Sequence[str]
) -> list[dict[str, Any]] | None:
    """Fit and test ``config`` once per seed; the records (each also in its run's result.json), None off rank 0."""
    results: list[dict[str, Any]] = []
    for seed in seeds:
        cli = PaperzooCLI(args=["--config", str(config), *overrides, f"--seed_everything={seed}"], run=False)
        info = cli.config_init.get("experiment") or info  # with any --experiment.* overrides applied
        trainer = cli.trainer
        trainer.fit(cli.model, datamodule=cli.datamodule)
        ckpt = trainer.checkpoint_callback
        best = ckpt.best_model_path if ckpt is not None and ckpt.best_model_path else None
        tested = trainer.test(cli.model, datamodule=cli.datamodule, ckpt_path=best or None, verbose=False)
        metrics = {k: float(v) for k, v in (tested[0] if tested else {}).items()}
        value = info.value_from(metrics[info.monitor]) if info.monitor in metrics else None
        record = {
            "experiment": info.name,
            "seed": seed,
            "metric": info.metric,
            "value": value,
            "test_metrics": metrics,
            "checkpoint": best,
            "log_dir": trainer.log_dir,
        }
        results.append(record)
        if trainer.is_global_zero and trainer.log_dir:
            Path(trainer.log_dir).mkdir(parents=True, exist_ok=True)
            (Path(trainer.log_dir) / "result.json").write_text(json.dumps(record, indent=2) + "\n")
        if not trainer.is_global_zero:
            return None
    return results


def _compare_group(group: Experiment, finished: list[tuple[Experiment, list[dict[str, Any]]]]) -> None:
    """Print the variants side by side and draw their first seed's curves on one plot."""
    from paperzoo.core.plots import plot_compare

    label = group.info.metric or group.info.monitor
    print(f"{group.info.name}: {label} by variant")
    for member, results in finished:
        values = [r["value"] for r in results if r["value"] is not None]
        shown = "n/a" if not values else f"{statistics.mean(values):.4g}"
        if len(values) > 1:
            shown += f" +- {statistics.stdev(values):.2g}"
        print(f"  {member.variant:<20} {shown}")
    runs = {member.variant: Path(results[0]["log_dir"]) for member, results in finished if results[0]["log_dir"]}
    if runs:
        out = next(iter(runs.values())).parents[1] / "compare.png"
        print(f"{group.info.name}: curves of every variant in {plot_compare(runs, out=out, title=group.info.name)}")


def _print_run_summary(info: ExperimentInfo, results: list[dict[str, Any]]) -> None:
    values = [r["value"] for r in results if r["value"] is not None]
    label = info.metric or info.monitor
    name = results[0]["experiment"] if results else info.name  # as renamed by --experiment.name, if it was
    for r in results:
        shown = "n/a" if r["value"] is None else f"{r['value']:.4g}"
        print(f"{name} seed {r['seed']}: {label} = {shown}  (run dir: {r['log_dir']})")
    if not values:
        print(f"{name}: the test did not log {info.monitor!r}, so {label} is not available")
        return
    if len(values) > 1:
        summary = f"{statistics.mean(values):.4g} +- {statistics.stdev(values):.2g} over {len(values)} seeds"
    else:
        summary = f"{values[0]:.4g}"
    paper = f"{info.paper_value:g}" if info.paper_value is not None else "not reported"
    note = "" if info.papers_dataset else " (on an offline stand-in dataset, not the paper's)"
    print(f"{name}: {label} = {summary}; paper: {paper}{note}")


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    console_main()
