"""Speed of paperzoo's DDPM UNet against diffusers' ``UNet2DModel`` of the same configuration, in one process.

Both sides are Ho et al. 2020's noise-prediction UNet at the same size: ``--image-size``, ``--base-channels`` times
``--channel-mult`` per resolution, ``--num-res-blocks`` residual blocks per resolution, one-head self-attention at
``--attention-resolutions``, ``--dropout``, GroupNorm with 32 groups:

- ours is ``paperzoo.generative.models.unet.DDPMUNet``;
- the reference is ``diffusers.UNet2DModel`` with ``DownBlock2D``/``AttnDownBlock2D`` (and the matching up blocks)
  at those resolutions, ``attention_head_dim=None`` (one head), ``flip_sin_to_cos=False``, ``freq_shift=1``,
  ``downsample_padding=0`` and ``norm_eps=1e-6``: the configuration ``tests/generative/test_unet.py`` proves equal to
  ours. The reference is built first (its random initialisation) and its weights are loaded into ours through
  ``convert_diffusers_unet_state_dict`` (strictly: every parameter maps), and the two noise predictions are checked to
  agree on the benchmark's own batch in eval mode (relative difference at most 1e-5) before anything is timed.

Two rows per run:

- ``train``: one DDPM training step on a fixed batch: ``zero_grad``, the forward pass in train mode on noisy images
  ``(B, C, H, W)`` and random steps in ``[0, 1000)``, the mean squared error against the noise, backward and an Adam
  step (lr 2e-4, the paper's). Each side draws its own dropout masks.
- ``forward``: the eval-mode forward pass alone, under ``torch.no_grad`` (one denoising step of a sampler).

The sides alternate, with the order rotated every round, after ``--warmup`` untimed rounds
(``timing.time_alternating``); a timed call runs as many steps back to back as make it last ``--min-call-ms`` (the same
number for both sides), and a step's time is the call's divided by that number. Reported per row: the median step time
with its interquartile range, images per second, and the throughput ratio ours/reference, the median over rounds of
``t_reference / t_ours`` (> 1 means ours is faster), with the quartiles of the per-round ratios. ``--control`` adds a
second copy of the diffusers reference (an A/A test: the noise floor of the ratios).

Example::

    OMP_NUM_THREADS=1 python benchmarks/generative_unet.py --base-channels 64 --batch-size 4 --repeats 10
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from pathlib import Path

import diffusers
import torch
import torch.nn.functional as F
from diffusers import UNet2DModel
from rich.console import Console
from rich.table import Table
from timing import (
    add_alternating_arguments,
    check_outputs,
    describe_environment,
    pair_fields,
    parameter_count,
    run_and_report,
    time_steps,
)
from torch import Tensor, nn

from paperzoo.generative.models.unet import DDPMUNet, convert_diffusers_unet_state_dict

OURS = "paperzoo"
DIFFUSERS = "diffusers"
CONTROL = "control"  # a second copy of the diffusers reference, timed with --control
VERSIONS = {"torch": torch.__version__, "diffusers": diffusers.__version__}
PARITY_TOL = 1e-5  # largest |ours - reference| of the eval-mode output, relative to the largest |reference output|
LEARNING_RATE = 2e-4
ROWS = ("train", "forward")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Ratios are paired by round and hold on a loaded machine; absolute times do not.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--rows", default=",".join(ROWS), help="comma-separated rows to time: train, forward")
    parser.add_argument("--image-size", type=int, default=32, help="height and width of the images")
    parser.add_argument("--channels", type=int, default=3, help="image channels")
    parser.add_argument("--base-channels", type=int, default=64, help="channels of the first resolution (paper: 128)")
    parser.add_argument("--channel-mult", default="1,2,2,2", help="channel multiplier per resolution")
    parser.add_argument("--num-res-blocks", type=int, default=2, help="residual blocks per resolution (down path)")
    parser.add_argument("--attention-resolutions", default="16", help="resolutions with self-attention")
    parser.add_argument("--dropout", type=float, default=0.1, help="dropout of the residual blocks (paper: 0.1)")
    parser.add_argument("--batch-size", type=int, default=4, help="images per step")
    add_alternating_arguments(parser, repeats=10, warmup=2, reference="diffusers")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and the batch")
    parser.add_argument(
        "--json", "--output", type=Path, metavar="PATH", help="also write the environment and results as JSON here"
    )
    args = parser.parse_args()
    args.rows = [name.strip() for name in args.rows.split(",")]
    args.channel_mult = tuple(int(m) for m in args.channel_mult.split(","))
    args.attention_resolutions = tuple(int(r) for r in args.attention_resolutions.split(",") if r)
    if any(row not in ROWS for row in args.rows):
        parser.error(f"unknown rows in {args.rows}; choose from {', '.join(ROWS)}")
    if args.repeats < 2 or args.warmup < 1:
        parser.error("--repeats must be at least 2 (for quartiles) and --warmup at least 1 (first-call allocations)")
    return args


def resolutions(args: argparse.Namespace) -> list[int]:
    return [args.image_size // 2**level for level in range(len(args.channel_mult))]


def build_models(args: argparse.Namespace) -> dict[str, nn.Module]:
    """diffusers' UNet2DModel (and its control copy) and ours, all with the reference's random initialisation."""
    attention = [resolution in args.attention_resolutions for resolution in resolutions(args)]
    down = tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in attention)
    up = tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attention))

    def reference() -> UNet2DModel:
        return UNet2DModel(
            sample_size=args.image_size,
            in_channels=args.channels,
            out_channels=args.channels,
            block_out_channels=tuple(args.base_channels * m for m in args.channel_mult),
            layers_per_block=args.num_res_blocks,
            down_block_types=down,
            up_block_types=up,
            attention_head_dim=None,
            norm_num_groups=32,
            norm_eps=1e-6,
            downsample_padding=0,
            flip_sin_to_cos=False,
            freq_shift=1,
            dropout=args.dropout,
        )

    torch.manual_seed(args.seed)
    references = {DIFFUSERS: reference()}
    if args.control:
        references[CONTROL] = reference()
    state = references[DIFFUSERS].state_dict()
    for model in references.values():
        model.load_state_dict(state)
    ours = DDPMUNet(
        image_size=args.image_size,
        in_channels=args.channels,
        base_channels=args.base_channels,
        channel_mult=args.channel_mult,
        num_res_blocks=args.num_res_blocks,
        attention_resolutions=args.attention_resolutions,
        dropout=args.dropout,
    )
    ours.load_state_dict(convert_diffusers_unet_state_dict(state))  # strict
    return {OURS: ours, **references}


def predict(impl: str, model: nn.Module, x: Tensor, t: Tensor) -> Tensor:
    return model(x, t) if impl == OURS else model(x, t).sample


def check_parity(models: Mapping[str, nn.Module], x: Tensor, t: Tensor) -> float:
    """The largest eval-mode difference between our output and each reference's, relative to the reference's
    largest entry; raises above PARITY_TOL."""
    with torch.no_grad():
        outputs = {impl: predict(impl, model.eval(), x, t) for impl, model in models.items()}
    return check_outputs(outputs, OURS, PARITY_TOL)


def make_step(row: str, impl: str, model: nn.Module, x: Tensor, t: Tensor, noise: Tensor) -> Callable[[], None]:
    if row == "forward":
        model.eval()

        def forward() -> None:
            with torch.no_grad():
                predict(impl, model, x, t)

        return forward
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    model.train()

    def train() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = F.mse_loss(predict(impl, model, x, t), noise)
        loss.backward()
        optimizer.step()

    return train


def benchmark_row(row: str, args: argparse.Namespace, on_round: Callable[[int], None]) -> list[dict]:
    models = build_models(args)
    generator = torch.Generator().manual_seed(args.seed + 1)
    shape = (args.batch_size, args.channels, args.image_size, args.image_size)
    x = torch.randn(shape, generator=generator)
    noise = torch.randn(shape, generator=generator)
    t = torch.randint(0, 1000, (args.batch_size,), generator=generator)
    difference = check_parity(models, x, t)
    steps = {impl: make_step(row, impl, model, x, t, noise) for impl, model in models.items()}
    times, count = time_steps(steps, args, on_round)
    result = {
        "row": row,
        "parameters_ours": parameter_count(models[OURS]),
        "parameters_reference": parameter_count(models[DIFFUSERS]),
        "steps_per_call": count,
        **pair_fields(times, OURS, DIFFUSERS, CONTROL if args.control else None),
        "max_relative_eval_difference": difference,
    }
    return [result]


def render(console: Console, env: dict, rows: list[dict], args: argparse.Namespace) -> None:
    console.print(describe_environment(env, list(VERSIONS)))
    console.print(
        f"UNet: {args.image_size}x{args.image_size}x{args.channels}, {args.base_channels} channels x "
        f"{args.channel_mult}, {args.num_res_blocks} residual blocks per resolution, attention at "
        f"{args.attention_resolutions}, dropout {args.dropout}; batch {args.batch_size}"
    )
    table = Table(title=f"float32, cpu; median of {args.repeats} alternating calls after {args.warmup} untimed rounds")
    columns = ("row", "params", "steps/call", "ours ms (IQR)", "ref ms (IQR)", "ours img/s", "ref img/s")
    columns += ("ours/ref (q1-q3)",) + (("A/A (q1-q3)",) if args.control else ())
    for column in columns:
        table.add_column(column, justify="left" if column == "row" else "right")
    for row in rows:
        cells = []
        if args.control:
            cells = [
                f"{row['control_over_reference']:.3f}x ({row['control_ratio_q1']:.3f}-{row['control_ratio_q3']:.3f})"
            ]
        parameters = f"{row['parameters_ours']:,}"
        if row["parameters_reference"] != row["parameters_ours"]:
            parameters += f" / {row['parameters_reference']:,}"
        table.add_row(
            row["row"],
            parameters,
            str(row["steps_per_call"]),
            f"{1e3 * row['ours_median_step_s']:.1f} ({1e3 * row['ours_iqr_step_s']:.1f})",
            f"{1e3 * row['reference_median_step_s']:.1f} ({1e3 * row['reference_iqr_step_s']:.1f})",
            f"{args.batch_size / row['ours_median_step_s']:.1f}",
            f"{args.batch_size / row['reference_median_step_s']:.1f}",
            f"{row['ours_over_reference']:.3f}x ({row['ratio_q1']:.3f}-{row['ratio_q3']:.3f})",
            *cells,
        )
    console.print(table)
    console.print(
        "ours/ref: median over rounds of t_ref / t_ours (> 1: ours faster), with the quartiles of the per-round "
        f"ratios. train: zero_grad, forward (train mode), MSE to the noise, backward, Adam (lr {LEARNING_RATE}); "
        "forward: eval mode under no_grad. Before timing, the eval-mode outputs of ours and diffusers agreed within "
        f"{max(row['max_relative_eval_difference'] for row in rows):.1e} (relative)."
        + (" A/A: the same ratio between diffusers and a second copy of it, the noise floor." if args.control else "")
    )


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    jobs = [(row, lambda on_round, row=row: benchmark_row(row, args, on_round)) for row in args.rows]
    run_and_report(args, VERSIONS, jobs, lambda console, env, rows: render(console, env, rows, args), width=150)


if __name__ == "__main__":
    main()
