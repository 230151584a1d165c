"""Training-step speed of paperzoo's StyleGAN2 against lucidrains' ``stylegan2-pytorch``, in one process.

Both sides are a StyleGAN2 generator (mapping network, modulated/demodulated convolutions, noise inputs, skip
toRGB outputs) and a residual discriminator at the same image size (``--image-size``) and latent size
(``--latent-dim``, for z and w), with the same mapping depth (``--mapping-layers``) and, as far as the two layouts
allow, the same widths:

- the reference is ``stylegan2_pytorch``'s ``StyleVectorizer``, ``Generator`` and ``Discriminator`` (the ``.S``,
  ``.G`` and ``.D`` of its ``StyleGAN2`` wrapper, built directly because the wrapper moves itself to CUDA), with
  ``network_capacity=--capacity`` and ``fmap_max=--fmap-max``, initialised by its own ``StyleGAN2._init_weights``;
- ours is ``stylegan2_generator`` / ``stylegan2_discriminator`` with ``channel_base = 64 * capacity`` and
  ``channel_max = fmap_max``: then our generator has the reference's widths at every resolution
  (``64 * capacity / r``). The discriminators differ more: the reference's goes on to 2x2 with widths
  ``4 * capacity * 2^i`` (wider than its generator), ours ends at 4x4 with ``64 * capacity / r``. Both parameter
  counts and the FLOPs of one step (``torch.utils.flop_counter``) are printed, so the ratio can be read per unit of
  work as well.

One training step, the same on both sides: the discriminator's (``zero_grad``, fakes from the generator under
``no_grad``, ``softplus(D(fake)) + softplus(-D(real))``, backward, Adam step), then the generator's (the
discriminator's parameters frozen, ``softplus(-D(G(z)))``, backward, Adam step); Adam with the paper's lr 0.002 and
betas (0, 0.99) on both sides, one random batch of reals and latents shared by all. No style mixing, R1 or path
length penalty (the reference applies different regularisers on different schedules), so a step is the networks'
cost alone; each side draws its own noise images.

Two sides of ours are timed: ``paperzoo`` trains with ``fused_modconv=None`` (the activation-scaling form of the
modulated convolution, which is what the module trains with: one batched convolution with shared weights, the input
scaled by the styles and the output by the demodulation coefficients), and ``paperzoo-grouped`` forces the paper's
grouped convolution with per-sample weights (``fused_modconv=True``), the form the reference uses. The two compute the
same function (``tests/generative/test_stylegan2.py``).

``stylegan2_pytorch`` asserts ``torch.cuda.is_available()`` when it is imported; it is imported with that function
patched to return True for the duration of the import only (nothing of it touches CUDA afterwards: its models are
built and run on the CPU here).

The sides alternate, with the order rotated every round, after ``--warmup`` untimed rounds
(``timing.time_alternating``); a timed call runs as many steps back to back as make it last ``--min-call-ms``, and a
step's time is the call's divided by that number. Reported: the median step time with its interquartile range, the
FLOP rate and images per second it gives, and the throughput ratio of ours against each other side, the median over
rounds of ``t_other / t_ours`` (> 1 means ours is faster), with the quartiles of the per-round ratios. ``--parts``
also times each network's forward and backward passes alone (``G``: the mean square of the images of ``z``, ``D``:
the mean square of the logits of the reals), which separates the generators, built to the same widths, from the
discriminators, which are not. ``--control`` adds a second copy of the reference and prints its ratio against the
first (an A/A test: the noise floor of the ratios).

Example::

    OMP_NUM_THREADS=1 python benchmarks/generative_stylegan2.py --image-size 32 --capacity 8 --repeats 10 --parts
"""

from __future__ import annotations

import argparse
import copy
import importlib
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table
from timing import (
    add_alternating_arguments,
    describe_environment,
    parameter_count,
    repeated,
    run_and_report,
    steps_per_call,
    summarize,
    time_alternating,
)
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from paperzoo.generative.models.stylegan2 import stylegan2_discriminator, stylegan2_generator

OURS = "paperzoo"
GROUPED = "paperzoo-grouped"
REFERENCE = "stylegan2-pytorch"
CONTROL = "control"  # a second copy of the reference, timed with --control
VERSIONS = {"torch": torch.__version__, "stylegan2_pytorch": version("stylegan2_pytorch")}
LEARNING_RATE, BETAS = 0.002, (0.0, 0.99)


def import_reference():
    """``stylegan2_pytorch.stylegan2_pytorch``, imported with ``torch.cuda.is_available`` patched to True: the module
    asserts a GPU at import time although its networks run anywhere."""
    is_available = torch.cuda.is_available
    torch.cuda.is_available = lambda: True
    try:
        return importlib.import_module("stylegan2_pytorch.stylegan2_pytorch")
    finally:
        torch.cuda.is_available = is_available


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image-size", type=int, default=32, help="image height and width, a power of two")
    parser.add_argument(
        "--capacity",
        type=int,
        default=8,
        help="the reference's network_capacity; ours gets channel_base = 64 * capacity (the same generator widths)",
    )
    parser.add_argument("--fmap-max", type=int, default=512, help="the widest feature map (channel_max) of both")
    parser.add_argument("--latent-dim", type=int, default=256, help="dimensionality of z and w on both sides")
    parser.add_argument("--mapping-layers", type=int, default=8, help="depth of both mapping networks")
    parser.add_argument("--batch-size", type=int, default=8, help="images per step")
    parser.add_argument(
        "--parts",
        action="store_true",
        help="also time the generator's and the discriminator's forward + backward passes alone (the two "
        "discriminators differ in size much more than the generators)",
    )
    add_alternating_arguments(parser, repeats=10, warmup=2, reference=REFERENCE)
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights, the reals and the latents")
    parser.add_argument(
        "--json", "--output", type=Path, metavar="PATH", help="also write the environment and results as JSON here"
    )
    args = parser.parse_args()
    if args.image_size < 8 or args.image_size & (args.image_size - 1):
        parser.error("--image-size must be a power of two, at least 8")
    if args.repeats < 2 or args.warmup < 1:
        parser.error("--repeats must be at least 2 (for quartiles) and --warmup at least 1 (first-call allocations)")
    return args


# --- the two sides ----------------------------------------------------------------------------------------------------


class Side:
    """A generator (z to images), a discriminator (images to logits) and an Adam optimiser for each."""

    def __init__(
        self,
        generate: Callable[[Tensor], Tensor],
        discriminate: Callable[[Tensor], Tensor],
        generator_modules: list[nn.Module],
        discriminator: nn.Module,
    ) -> None:
        self.generate = generate
        self.discriminate = discriminate
        self.generator_modules = generator_modules
        self.discriminator = discriminator
        generator_parameters = [p for m in generator_modules for p in m.parameters()]
        self.generator_optimizer = torch.optim.Adam(generator_parameters, lr=LEARNING_RATE, betas=BETAS)
        self.discriminator_optimizer = torch.optim.Adam(discriminator.parameters(), lr=LEARNING_RATE, betas=BETAS)

    def generator_parameters(self) -> int:
        return sum(parameter_count(m) for m in self.generator_modules)

    def run(self, work: str, reals: Tensor, z: Tensor, fakes_without_grad: bool = True) -> None:
        """``"step"``: :meth:`step`; ``"G"``: the generator's forward and backward passes alone (the loss the mean
        square of the images); ``"D"``: the discriminator's alone, on the reals (the mean square of the logits)."""
        if work == "step":
            self.step(reals, z, fakes_without_grad)
            return
        self.generator_optimizer.zero_grad(set_to_none=True)
        self.discriminator_optimizer.zero_grad(set_to_none=True)
        output = self.generate(z) if work == "G" else self.discriminate(reals)
        output.square().mean().backward()

    def step(self, reals: Tensor, z: Tensor, fakes_without_grad: bool = True) -> None:
        """One discriminator step, then one generator step, with the non-saturating logistic loss. The
        discriminator's fakes come from a forward pass under ``no_grad``, or with ``fakes_without_grad=False`` from
        one with gradients on, detached (the same operations; for the FLOP counter, whose module tracker fails on a
        ``no_grad`` forward pass of these models)."""
        self.discriminator_optimizer.zero_grad(set_to_none=True)
        if fakes_without_grad:
            with torch.no_grad():
                fakes = self.generate(z)
        else:
            fakes = self.generate(z).detach()
        loss = F.softplus(self.discriminate(fakes)).mean() + F.softplus(-self.discriminate(reals)).mean()
        loss.backward()
        self.discriminator_optimizer.step()

        self.discriminator.requires_grad_(False)
        self.generator_optimizer.zero_grad(set_to_none=True)
        F.softplus(-self.discriminate(self.generate(z))).mean().backward()
        self.generator_optimizer.step()
        self.discriminator.requires_grad_(True)


def build_ours(args: argparse.Namespace, fused: bool | None) -> Side:
    generator = stylegan2_generator(
        resolution=args.image_size,
        z_dim=args.latent_dim,
        w_dim=args.latent_dim,
        mapping_layers=args.mapping_layers,
        channel_base=64 * args.capacity,
        channel_max=args.fmap_max,
        fused_modconv=fused,
    ).train()
    discriminator = stylegan2_discriminator(
        resolution=args.image_size, channel_base=64 * args.capacity, channel_max=args.fmap_max
    ).train()
    return Side(generator, discriminator, [generator], discriminator)


def build_reference(reference, args: argparse.Namespace) -> Side:
    """The reference's ``StyleGAN2`` parts without the wrapper (which calls ``.cuda()``), initialised by its own
    ``_init_weights`` (Kaiming-normal convolutions and linears, zero noise scalings)."""
    parts = nn.Module()
    parts.S = reference.StyleVectorizer(args.latent_dim, args.mapping_layers, lr_mul=0.1)
    parts.G = reference.Generator(args.image_size, args.latent_dim, args.capacity, fmap_max=args.fmap_max)
    parts.D = reference.Discriminator(args.image_size, args.capacity, fmap_max=args.fmap_max)
    reference.StyleGAN2._init_weights(parts)
    parts.train()
    num_layers, size = parts.G.num_layers, args.image_size

    def generate(z: Tensor) -> Tensor:
        styles = parts.S(z)[:, None, :].expand(-1, num_layers, -1)  # (B, num_layers, latent): no style mixing
        noise = torch.rand(z.shape[0], size, size, 1)  # the reference's image_noise, on the CPU
        return parts.G(styles, noise)

    def discriminate(images: Tensor) -> Tensor:
        logits, _ = parts.D(images)
        return logits

    return Side(generate, discriminate, [parts.S, parts.G], parts.D)


def count_flops(side: Side, work: str, reals: Tensor, z: Tensor) -> float:
    """GFLOP of one call of ``work`` (forward and backward passes; convolutions and matmuls), counted on the first
    sample and multiplied by the batch size: the counter ignores groups in the weight gradient of a grouped
    convolution (it would count the per-sample weights' gradients B times over), and with one sample every grouped
    convolution of the modulated layers has a single group. A training step's optimiser updates are undone."""
    modules = (*side.generator_modules, side.discriminator)
    states = [copy.deepcopy(m.state_dict()) for m in modules]
    with FlopCounterMode(display=False) as counter:
        side.run(work, reals[:1], z[:1], fakes_without_grad=False)
    for module, state in zip(modules, states, strict=True):
        module.load_state_dict(state)
    return counter.get_total_flops() * len(z) / 1e9


# --- timing and report ------------------------------------------------------------------------------------------------


def build_sides(args: argparse.Namespace) -> dict[str, Side]:
    reference = import_reference()
    torch.manual_seed(args.seed)
    sides = {OURS: build_ours(args, fused=None), GROUPED: build_ours(args, fused=True)}
    sides[REFERENCE] = build_reference(reference, args)
    if args.control:
        sides[CONTROL] = build_reference(reference, args)
    return sides


def benchmark(
    work: str,
    sides: dict[str, Side],
    reals: Tensor,
    z: Tensor,
    args: argparse.Namespace,
    on_round: Callable[[int], None],
) -> list[dict]:
    """Time ``work`` (a :meth:`Side.run` name) on every side, alternating; one row per side."""
    flops = {impl: count_flops(side, work, reals, z) for impl, side in sides.items()}
    calls = {impl: (lambda side=side: side.run(work, reals, z)) for impl, side in sides.items()}
    count = steps_per_call(calls, args.min_call_ms / 1e3)
    times = time_alternating(
        {impl: repeated(call, count) for impl, call in calls.items()}, args.repeats, args.warmup, on_round=on_round
    )
    times = {impl: [t / count for t in values] for impl, values in times.items()}  # per call
    stats = summarize(times, OURS)
    rows = []
    for impl, side in sides.items():
        row = {
            "work": work,
            "implementation": impl,
            "generator_parameters": side.generator_parameters(),
            "discriminator_parameters": parameter_count(side.discriminator),
            "gflop_per_call": flops[impl],
            "calls_per_timed_call": count,
            "median_s": stats[impl]["median"],
            "iqr_s": stats[impl]["iqr"],
            "ours_over_this": stats[impl]["ratio"],
            "ratio_q1": stats[impl]["ratio_q1"],
            "ratio_q3": stats[impl]["ratio_q3"],
        }
        if impl == CONTROL:
            # t_control / t_reference, paired by round: equal code, so its distance from 1.0 is noise
            control = summarize({REFERENCE: times[REFERENCE], CONTROL: times[CONTROL]}, REFERENCE)[CONTROL]
            row.update(control_over_reference=control["ratio"], control_q1=control["ratio_q1"])
            row["control_q3"] = control["ratio_q3"]
        rows.append(row)
    return rows


def render(console: Console, env: dict, rows: list[dict], args: argparse.Namespace) -> None:
    console.print(describe_environment(env, list(VERSIONS)))
    table = Table(
        title=f"StyleGAN2, {args.image_size}x{args.image_size}, batch {args.batch_size}, latent {args.latent_dim}, "
        f"capacity {args.capacity}, float32, cpu; median of {args.repeats} alternating calls after {args.warmup} "
        "untimed rounds"
    )
    columns = ("work", "implementation", "G params", "D params", "GFLOP", "calls/timed", "ms (IQR)", "GFLOP/s")
    for column in (*columns, "img/s", "ours/this (q1-q3)"):
        table.add_column(column, justify="left" if column in ("work", "implementation") else "right")
    for row in rows:
        ratio = "-"
        if row["ours_over_this"] is not None:
            ratio = f"{row['ours_over_this']:.3f}x ({row['ratio_q1']:.3f}-{row['ratio_q3']:.3f})"
        table.add_row(
            row["work"],
            row["implementation"],
            f"{row['generator_parameters']:,}",
            f"{row['discriminator_parameters']:,}",
            f"{row['gflop_per_call']:.2f}",
            str(row["calls_per_timed_call"]),
            f"{1e3 * row['median_s']:.1f} ({1e3 * row['iqr_s']:.1f})",
            f"{row['gflop_per_call'] / row['median_s']:.1f}",
            f"{args.batch_size / row['median_s']:.1f}",
            ratio,
        )
    console.print(table)
    for row in rows:
        if "control_over_reference" in row:
            console.print(
                f"A/A ({row['work']}): t_{CONTROL} / t_{REFERENCE} = {row['control_over_reference']:.3f}x "
                f"({row['control_q1']:.3f}-{row['control_q3']:.3f}), the noise floor of the ratios."
            )
    console.print(
        f"ours/this: median over rounds of t_this / t_{OURS} (> 1: {OURS} faster), with the quartiles of the "
        f"per-round ratios. step: D step then G step (Adam); G and D: forward + backward of one network alone. "
        f"{OURS}: the modulated convolution as input scaling + shared convolution + output scaling (our training "
        f"default); {GROUPED}: the same network with the paper's grouped convolution of per-sample weights (as "
        f"{REFERENCE} does). G params include the mapping network. GFLOP: convolutions and matmuls, forward and "
        "backward."
    )


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sides = build_sides(args)
    reals = torch.rand(args.batch_size, 3, args.image_size, args.image_size) * 2 - 1
    z = torch.randn(args.batch_size, args.latent_dim)
    jobs = [
        (work, lambda on_round, work=work: benchmark(work, sides, reals, z, args, on_round))
        for work in (("step", "G", "D") if args.parts else ("step",))
    ]
    run_and_report(args, VERSIONS, jobs, lambda console, env, rows: render(console, env, rows, args), width=170)


if __name__ == "__main__":
    main()
