"""Step time of paperzoo's optimisers against torch.optim's single-tensor and multi-tensor implementations.

Every optimiser is timed on a ResNet-sized parameter set: the parameters of ``paperzoo.vision``'s ResNet (ResNet-50:
161 tensors, 25.6M values), copied three times, once for each implementation, with the same random gradients set
once and never changed. Only ``optimizer.step()`` is timed. The three implementations are

- ``paperzoo``: ``paperzoo.core.optim.<Name>``, whose updates use torch's ``_foreach_*`` kernels;
- ``torch foreach``: ``torch.optim.<Name>(..., foreach=True)``, torch's multi-tensor implementation;
- ``torch single``: ``torch.optim.<Name>(..., foreach=False)``, torch's per-parameter loop (its default on the CPU).

Their steps alternate, with the order rotated every round, after ``--warmup`` untimed rounds (the first step allocates
the optimiser state). Reported per implementation: the median step time with its interquartile range, and the paired
ratios ours/foreach and ours/single, the median over rounds of ``t_torch / t_ours`` (> 1 means ours is faster).

Example::

    python benchmarks/optim.py --model resnet50 --steps 30 --warmup 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from collections.abc import Callable
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table
from timing import cpu_name, summarize, time_alternating

import paperzoo.core.optim
from paperzoo.vision import create_model

OURS = "paperzoo"
FOREACH = "torch foreach"
SINGLE = "torch single"
# The hyper-parameters of a typical ResNet run; weight decay is on wherever the optimiser has it, as its extra
# tensor pass is part of the cost.
HYPERPARAMETERS: dict[str, dict] = {
    "SGD": dict(lr=0.1, momentum=0.9, weight_decay=1e-4),
    "Adam": dict(lr=1e-3, weight_decay=1e-4),
    "AdamW": dict(lr=1e-3, weight_decay=1e-2),
    "RMSprop": dict(lr=1e-2, weight_decay=1e-4),
    "Adagrad": dict(lr=1e-2, weight_decay=1e-4),
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Run it on an otherwise idle machine: the ratios are robust to load, the absolute numbers are not.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--model",
        default="resnet50",
        help="paperzoo.vision model whose parameters are optimised (resnet18: 11.7M values, resnet50: 25.6M)",
    )
    parser.add_argument(
        "--optimizers",
        default=",".join(HYPERPARAMETERS),
        help="comma-separated optimiser names, each in paperzoo.core.optim and torch.optim; hyper-parameters: "
        + "; ".join(f"{name} {kwargs}" for name, kwargs in HYPERPARAMETERS.items()),
    )
    parser.add_argument("--steps", type=int, default=30, help="timed steps per implementation and optimiser")
    parser.add_argument(
        "--warmup",
        type=int,
        default=3,
        help="untimed steps per implementation before the timed ones (at least 1: the first step allocates state)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="CPU threads for torch (torch.set_num_threads); unset keeps torch's choice, one per core",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the environment and results here")
    args = parser.parse_args()
    if args.warmup < 1:
        parser.error("--warmup must be at least 1, so that the state allocation of the first step is not timed")
    return args


def make_parameters(template: list[torch.Tensor], gradients: list[torch.Tensor]) -> list[torch.nn.Parameter]:
    """Fresh copies of ``template`` with a copy of ``gradients`` as their ``.grad``."""
    params = [torch.nn.Parameter(t.detach().clone()) for t in template]
    for p, g in zip(params, gradients, strict=True):
        p.grad = g.clone()
    return params


def benchmark_optimizer(
    name: str, template: list[torch.Tensor], gradients: list[torch.Tensor], args: argparse.Namespace
) -> list[dict]:
    kwargs = HYPERPARAMETERS.get(name, {})
    builders: dict[str, Callable[[list[torch.nn.Parameter]], torch.optim.Optimizer]] = {
        OURS: lambda params: getattr(paperzoo.core.optim, name)(params, **kwargs),
        FOREACH: lambda params: getattr(torch.optim, name)(params, foreach=True, **kwargs),
        SINGLE: lambda params: getattr(torch.optim, name)(params, foreach=False, **kwargs),
    }
    optimizers = {impl: build(make_parameters(template, gradients)) for impl, build in builders.items()}

    times = time_alternating({impl: opt.step for impl, opt in optimizers.items()}, args.steps, args.warmup)
    stats = summarize(times, OURS)
    fastest_torch = min((FOREACH, SINGLE), key=lambda impl: stats[impl]["median"])
    rows = []
    for impl in optimizers:
        rows.append(
            {
                "optimizer": name,
                "implementation": impl,
                "median_step_s": stats[impl]["median"],
                "iqr_step_s": stats[impl]["iqr"],
                "ours_over_this": stats[impl]["ratio"],
                "fastest_torch": impl == fastest_torch,
            }
        )
    return rows


def environment(args: argparse.Namespace, template: list[torch.Tensor]) -> dict:
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": cpu_name(),
        "cpu_threads": torch.get_num_threads(),
        "load_average_before": os.getloadavg()[0],
        "parameter_tensors": len(template),
        "parameter_values": sum(t.numel() for t in template),
        "arguments": {key: str(value) for key, value in vars(args).items()},
    }


def render(console: Console, env: dict, rows: list[dict], args: argparse.Namespace) -> None:
    console.print(
        f"torch {env['torch']}, python {env['python']}; {env['device']}, {env['cpu_threads']} CPU threads; "
        f"load average {env['load_average_before']:.2f} before, {env['load_average_after']:.2f} after"
    )
    console.print(
        f"parameters of {args.model}: {env['parameter_tensors']} tensors, "
        f"{env['parameter_values'] / 1e6:.1f}M float32 values"
    )
    table = Table(title=f"optimizer.step(), {args.model}; median of {args.steps} steps")
    for column in ("optimizer", "implementation", "step ms (IQR)", "ns/value", "ours/this"):
        table.add_column(column, justify="left" if column in ("optimizer", "implementation") else "right")
    for row in rows:
        ratio = row["ours_over_this"]
        table.add_row(
            row["optimizer"],
            row["implementation"] + (" *" if row["fastest_torch"] else ""),
            f"{1e3 * row['median_step_s']:.1f} ({1e3 * row['iqr_step_s']:.1f})",
            f"{1e9 * row['median_step_s'] / env['parameter_values']:.2f}",
            "-" if ratio is None else f"{ratio:.3f}x",
        )
    console.print(table)
    console.print(
        "ours/this: median over rounds of t_this / t_ours (> 1: ours faster). *: the faster torch implementation, "
        "the one to match (goal: ours/this >= 0.9x)."
    )


def main() -> None:
    args = parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    template = [p.detach() for p in create_model(args.model).parameters()]
    generator = torch.Generator().manual_seed(0)
    gradients = [1e-2 * torch.randn(t.shape, generator=generator) for t in template]
    env = environment(args, template)
    rows = []
    for name in args.optimizers.split(","):
        rows += benchmark_optimizer(name.strip(), template, gradients, args)
    env["load_average_after"] = os.getloadavg()[0]
    render(Console(width=max(Console().width, 120)), env, rows, args)
    if args.json:
        args.json.write_text(json.dumps({"environment": env, "results": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
