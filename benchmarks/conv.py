"""Speed of paperzoo's im2col convolution against torch.nn.functional.conv2d, forward and forward + backward.

``paperzoo.core.nn.conv2d`` gathers every receptive field into a patch tensor with advanced indexing (im2col,
Chellapilla et al. 2006) and multiplies it with the reshaped weights; its backward is autograd's, through the matmul
and an index-put that scatters the patch gradients back onto the input. ``F.conv2d`` calls oneDNN's direct
convolution kernels on the CPU. Both run the same float32 inputs, weights and output gradients, on ResNet-like shapes.

Two measurements per shape, each alternating the two implementations with the order rotated every round, after
``--warmup`` untimed rounds:

- ``forward``: the convolution under ``torch.no_grad`` (inference);
- ``forward+backward``: the convolution with gradients on, then ``backward`` with a fixed output gradient, which
  computes the gradients of the input and the weights.

Reported: the median time with its interquartile range, the achieved GFLOP/s (2 multiply-adds per weight tap and
output value; 3x that for forward + backward), the size of the patch matrix im2col materialises, and the throughput
ratio ours/F.conv2d, the median over rounds of ``t_F.conv2d / t_ours`` (> 1 means ours is faster).

Example::

    python benchmarks/conv.py --batch-size 8 --steps 20 --warmup 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table
from timing import cpu_name, summarize, time_alternating

from paperzoo.core.nn import conv2d

OURS = "paperzoo"
REFERENCE = "F.conv2d"


@dataclass(frozen=True)
class ConvShape:
    """One convolution: input channels and size, output channels, kernel, stride, padding and groups."""

    name: str
    in_channels: int
    size: int
    out_channels: int
    kernel: int
    stride: int = 1
    padding: int = 0
    groups: int = 1

    def output_size(self) -> int:
        return (self.size + 2 * self.padding - self.kernel) // self.stride + 1

    def forward_flops(self, batch: int) -> int:
        taps = self.in_channels // self.groups * self.kernel**2
        return 2 * batch * self.out_channels * self.output_size() ** 2 * taps

    def patch_values(self, batch: int) -> int:
        """Values in im2col's patch matrix: every input channel, output position and kernel tap."""
        return batch * self.in_channels * self.output_size() ** 2 * self.kernel**2


SHAPES = {
    shape.name: shape
    for shape in (
        ConvShape("stem 7x7/2", 3, 224, 64, 7, stride=2, padding=3),
        ConvShape("stage1 3x3", 64, 56, 64, 3, padding=1),
        ConvShape("stage2 3x3", 128, 28, 128, 3, padding=1),
        ConvShape("stage3 3x3", 256, 14, 256, 3, padding=1),
        ConvShape("bottleneck 1x1", 256, 56, 64, 1),
        ConvShape("depthwise 3x3", 128, 56, 128, 3, padding=1, groups=128),
    )
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Shapes (C_in, HxW, C_out, kernel, stride, padding, groups): "
        + "; ".join(
            f"{s.name}: {s.in_channels}, {s.size}x{s.size}, {s.out_channels}, {s.kernel}, {s.stride}, {s.padding}, "
            f"{s.groups}"
            for s in SHAPES.values()
        )
        + ". Run it on an otherwise idle machine: the ratios are robust to load, the absolute numbers are not.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--shapes",
        default=",".join(SHAPES),
        help="comma-separated names of the shapes to time, listed below (quote the list: names contain spaces)",
    )
    parser.add_argument("--batch-size", type=int, default=8, help="images per convolution")
    parser.add_argument("--steps", type=int, default=20, help="timed calls per implementation, shape and mode")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls per implementation before the timed ones")
    parser.add_argument(
        "--threads",
        type=int,
        help="CPU threads for torch (torch.set_num_threads); unset keeps torch's choice, one per core",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the environment and results here")
    return parser.parse_args()


def benchmark_shape(shape: ConvShape, args: argparse.Namespace) -> list[dict]:
    generator = torch.Generator().manual_seed(0)
    batch = args.batch_size
    x = torch.randn(batch, shape.in_channels, shape.size, shape.size, generator=generator)
    weight = torch.randn(
        shape.out_channels, shape.in_channels // shape.groups, shape.kernel, shape.kernel, generator=generator
    )
    out_size = shape.output_size()
    grad_output = torch.randn(batch, shape.out_channels, out_size, out_size, generator=generator)
    functions = {OURS: conv2d, REFERENCE: F.conv2d}
    options = dict(stride=shape.stride, padding=shape.padding, groups=shape.groups)
    torch.testing.assert_close(conv2d(x, weight, **options), F.conv2d(x, weight, **options), rtol=1e-4, atol=1e-3)

    def forward(function: Callable) -> Callable[[], None]:
        def call() -> None:
            with torch.no_grad():
                function(x, weight, **options)

        return call

    def forward_backward(function: Callable) -> Callable[[], None]:
        inputs = x.clone().requires_grad_()
        weights = weight.clone().requires_grad_()

        def call() -> None:
            inputs.grad = weights.grad = None
            function(inputs, weights, **options).backward(grad_output)

        return call

    rows = []
    for mode, make_call, flop_factor in (("forward", forward, 1), ("forward+backward", forward_backward, 3)):
        calls = {impl: make_call(function) for impl, function in functions.items()}
        stats = summarize(time_alternating(calls, args.steps, args.warmup), OURS)
        for impl in calls:
            median = stats[impl]["median"]
            rows.append(
                {
                    "shape": shape.name,
                    **{key: value for key, value in asdict(shape).items() if key != "name"},
                    "mode": mode,
                    "implementation": impl,
                    "median_s": median,
                    "iqr_s": stats[impl]["iqr"],
                    "gflop": flop_factor * shape.forward_flops(batch) / 1e9,
                    "gflop_per_s": flop_factor * shape.forward_flops(batch) / median / 1e9,
                    "patch_matrix_mb": 4 * shape.patch_values(batch) / 1e6,
                    "input_mb": 4 * x.numel() / 1e6,
                    # median of t_F.conv2d / t_ours, shown on our row
                    "ours_over_reference": stats[REFERENCE]["ratio"] if impl == OURS else None,
                }
            )
    return rows


def environment(args: argparse.Namespace) -> dict:
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": cpu_name(),
        "cpu_threads": torch.get_num_threads(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "load_average_before": os.getloadavg()[0],
        "arguments": {key: str(value) for key, value in vars(args).items()},
    }


def render(console: Console, env: dict, rows: list[dict], args: argparse.Namespace) -> None:
    console.print(
        f"torch {env['torch']}, python {env['python']}; {env['device']}, {env['cpu_threads']} CPU threads, "
        f"oneDNN {'on' if env['mkldnn'] else 'off'}; load average {env['load_average_before']:.2f} before, "
        f"{env['load_average_after']:.2f} after"
    )
    table = Table(title=f"conv2d, batch {args.batch_size}, float32, cpu; median of {args.steps} calls")
    columns = ("shape", "mode", "implementation", "ms (IQR)", "GFLOP", "GFLOP/s", "input MB", "patches MB", "ours/ref")
    for column in columns:
        table.add_column(column, justify="left" if column in ("shape", "mode", "implementation") else "right")
    for row in rows:
        ratio = row["ours_over_reference"]
        table.add_row(
            row["shape"],
            row["mode"],
            row["implementation"],
            f"{1e3 * row['median_s']:.2f} ({1e3 * row['iqr_s']:.2f})",
            f"{row['gflop']:.2f}",
            f"{row['gflop_per_s']:.1f}",
            f"{row['input_mb']:.1f}",
            f"{row['patch_matrix_mb']:.1f}",
            "-" if ratio is None else f"{ratio:.3f}x",
        )
    console.print(table)
    console.print(
        "ours/ref: median over rounds of t_F.conv2d / t_ours (> 1: ours faster). GFLOP: 2 per multiply-add, x3 for "
        "forward + backward. patches MB: the im2col patch matrix, k*k times the (strided) input."
    )


def main() -> None:
    args = parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    env = environment(args)
    rows = []
    for name in args.shapes.split(","):
        rows += benchmark_shape(SHAPES[name.strip()], args)
    env["load_average_after"] = os.getloadavg()[0]
    render(Console(width=max(Console().width, 140)), env, rows, args)
    if args.json:
        args.json.write_text(json.dumps({"environment": env, "results": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
