"""Training-step speed of paperzoo's ResNets against timm's and torchvision's, measured in one process.

For every model the three implementations get the same weights (torchvision's random initialisation, loaded into the
other two, which share its parameter names), the same batch, the same dtype and memory format, and an SGD optimiser
each. Their training steps (forward, cross-entropy, backward, SGD step) are timed in alternation, with the order
rotated every round, so that slow drifts of the machine (clock, other processes) hit all three alike.

Reported per implementation: the median step time, images per second, the paired throughput ratio ours/reference
(the median over rounds of ``t_reference / t_ours``, so > 1 means ours is faster), the training FLOPs of one step
counted with ``torch.utils.flop_counter.FlopCounterMode`` (forward plus backward, convolutions and matmuls only), and
the FLOP rate this achieves as a fraction of the machine's measured matmul rate.

Example::

    python benchmarks/run.py --models resnet18,resnet50 --batch-size 16 --image-size 224 --steps 20 --warmup 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import timm
import torch
import torch.nn.functional as F
import torchvision
from rich.console import Console
from rich.table import Table
from timing import cpu_name, summarize, time_alternating
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from paperzoo.vision import create_model

OURS = "paperzoo"
IMPLEMENTATIONS: dict[str, Callable[[str], nn.Module]] = {
    OURS: create_model,
    "timm": lambda name: timm.create_model(name, pretrained=False),
    "torchvision": lambda name: getattr(torchvision.models, name)(),
}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Run it on an otherwise idle machine: the ratio is robust to load, the absolute numbers are not.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--models",
        default="resnet18,resnet50",
        help="comma-separated model names; each must exist in paperzoo, timm and torchvision (resnet18/34/50/101)",
    )
    parser.add_argument("--batch-size", type=int, default=16, help="images per training step")
    parser.add_argument("--image-size", type=int, default=224, help="side of the square random input images")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per implementation")
    parser.add_argument(
        "--warmup", type=int, default=3, help="untimed training steps per implementation before the timed ones"
    )
    parser.add_argument(
        "--dtype",
        choices=sorted(DTYPES),
        default="float32",
        help="compute dtype; bfloat16 runs forward and loss under torch.autocast with float32 weights "
        "(mixed-precision training), and the matmul reference rate is then measured in bfloat16 too",
    )
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where to run")
    parser.add_argument(
        "--channels-last",
        action="store_true",
        help="store models and inputs in channels-last (NHWC) memory format instead of NCHW",
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="CPU threads for torch (torch.set_num_threads); unset keeps torch's choice, one per core",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the environment and results here")
    return parser.parse_args()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_flops_per_second(device: torch.device, dtype: torch.dtype, repeats: int = 10) -> float:
    """Median FLOP/s of a large square matmul: the reference rate the models are compared with."""
    n = 2048 if device.type == "cpu" else 8192
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        a @ b
        synchronize(device)
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times)


def make_training_step(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, autocast_dtype: torch.dtype | None
) -> Callable[[], None]:
    """One SGD training step on the fixed batch ``(x, y)``."""
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-4)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(x.device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()

    return step


def count_flops(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, autocast_dtype: torch.dtype | None
) -> tuple[int, int]:
    """FLOPs of one forward pass and of one forward + backward pass."""
    enabled = autocast_dtype is not None
    with torch.autocast(x.device.type, dtype=autocast_dtype or torch.float32, enabled=enabled):
        with FlopCounterMode(display=False) as counter:
            model(x)
        forward = counter.get_total_flops()
        with FlopCounterMode(display=False) as counter:
            F.cross_entropy(model(x), y).backward()
    model.zero_grad(set_to_none=True)
    return forward, counter.get_total_flops()


def benchmark_model(name: str, args: argparse.Namespace, device: torch.device, peak: float) -> list[dict]:
    autocast_dtype = None if args.dtype == "float32" else DTYPES[args.dtype]
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch_size, 3, args.image_size, args.image_size, generator=generator)
    y = torch.randint(0, 1000, (args.batch_size,), generator=generator)
    x, y = x.to(device, memory_format=memory_format), y.to(device)

    torch.manual_seed(0)
    models = {impl: build(name) for impl, build in IMPLEMENTATIONS.items()}
    weights = models["torchvision"].state_dict()
    steps, flops = {}, {}
    for impl, model in models.items():
        model.load_state_dict(weights)
        model.to(device, memory_format=memory_format).train()
        flops[impl] = count_flops(model, x, y, autocast_dtype)
        steps[impl] = make_training_step(model, x, y, autocast_dtype)

    times = time_alternating(steps, args.steps, args.warmup, synchronize=lambda: synchronize(device))
    stats = summarize(times, OURS)
    rows = []
    for impl in models:
        median = stats[impl]["median"]
        forward_flops, step_flops = flops[impl]
        rows.append(
            {
                "model": name,
                "implementation": impl,
                "median_step_s": median,
                "iqr_step_s": stats[impl]["iqr"],
                "images_per_s": args.batch_size / median,
                "ours_over_reference": stats[impl]["ratio"],
                "forward_gflop": forward_flops / 1e9,
                "step_gflop": step_flops / 1e9,
                "achieved_gflop_per_s": step_flops / median / 1e9,
                "fraction_of_matmul": step_flops / median / peak,
            }
        )
    return rows


def environment(args: argparse.Namespace, device: torch.device) -> dict:
    env = {
        "torch": torch.__version__,
        "timm": timm.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "cpu_threads": torch.get_num_threads(),
        "load_average_before": os.getloadavg()[0],
    }
    env["arguments"] = {key: str(value) for key, value in vars(args).items()}
    return env


def render(console: Console, env: dict, rows: list[dict], args: argparse.Namespace) -> None:
    console.print(
        f"torch {env['torch']}, timm {env['timm']}, torchvision {env['torchvision']}, python {env['python']}; "
        f"{env['device']}, {env['cpu_threads']} CPU threads; load average {env['load_average_before']:.2f} before, "
        f"{env['load_average_after']:.2f} after"
    )
    console.print(
        f"matmul rate: float32 {env['matmul_gflop_per_s']['float32']:.0f} GFLOP/s"
        + (f", {args.dtype} {env['matmul_gflop_per_s'][args.dtype]:.0f} GFLOP/s" if args.dtype != "float32" else "")
    )
    table = Table(
        title=(
            f"training step, batch {args.batch_size}, {args.image_size}x{args.image_size}, {args.dtype}, "
            f"{args.device}{', channels_last' if args.channels_last else ''}; median of {args.steps} steps"
        )
    )
    for column in ("model", "implementation", "step ms (IQR)", "img/s", "ours/ref", "GFLOP/step", "GFLOP/s", "% mm"):
        table.add_column(column, justify="left" if column in ("model", "implementation") else "right")
    for row in rows:
        ratio = row["ours_over_reference"]
        table.add_row(
            row["model"],
            row["implementation"],
            f"{1e3 * row['median_step_s']:.0f} ({1e3 * row['iqr_step_s']:.0f})",
            f"{row['images_per_s']:.1f}",
            "-" if ratio is None else f"{ratio:.3f}x",
            f"{row['step_gflop']:.1f}",
            f"{row['achieved_gflop_per_s']:.1f}",
            f"{100 * row['fraction_of_matmul']:.0f}%",
        )
    console.print(table)
    console.print(
        "ours/ref: median over rounds of t_ref / t_ours (> 1: ours faster). GFLOP/step: forward + backward, counted "
        "with FlopCounterMode (convolutions and matmuls). % mm: achieved rate / measured matmul rate."
    )


def main() -> None:
    args = parse_args()
    device = torch.device(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    env = environment(args, device)
    dtypes = {"float32", args.dtype}
    env["matmul_gflop_per_s"] = {dtype: matmul_flops_per_second(device, DTYPES[dtype]) / 1e9 for dtype in dtypes}
    peak = env["matmul_gflop_per_s"][args.dtype] * 1e9
    rows = []
    for name in args.models.split(","):
        rows += benchmark_model(name.strip(), args, device, peak)
    env["load_average_after"] = os.getloadavg()[0]
    render(Console(width=max(Console().width, 120)), env, rows, args)
    if args.json:
        args.json.write_text(json.dumps({"environment": env, "results": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
