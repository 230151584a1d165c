"""Training-step speed of every paperzoo vision model with a parity test, against its reference, in one process.

Each pair is one of our models (``paperzoo.vision.create_model``) and the implementation its parity test compares it
with: torchvision's AlexNet, VGG-16-BN, GoogLeNet, DenseNet-121 and ResNet-18/50 (the ResNets also against timm's),
timm's ViT-B/16, Swin-T and R26+ViT-S/32 hybrid. The reference is randomly initialised and its weights are copied
into ours (a plain ``load_state_dict``, or the model file's ``from_timm_state_dict``), so both compute the same
function; this is checked on the benchmark's own batch, in eval mode, before anything is timed. Both get the same
random batch, memory format and an SGD optimiser (momentum 0.9, weight decay 1e-4) of their own.

A training step is ``zero_grad``, forward in train mode, cross-entropy (GoogLeNet: plus 0.3 times each auxiliary
head's, as in the paper, on both sides), backward and ``optimizer.step()``, in float32 on the CPU. The steps of ours
and the reference alternate, with the order rotated every round, after ``--warmup`` untimed rounds
(``timing.time_alternating``). Reported per pair: the median step time of each with its interquartile range, and the
throughput ratio ours/reference, the median over rounds of ``t_reference / t_ours`` (> 1 means ours is faster), with
the quartiles of the per-round ratios as its spread. With ``--control`` a second copy of the reference joins the
alternation, and the same ratio between the two copies (an A/A test: equal code, so 1.0 but for the machine's noise)
shows how far from 1.0 a ratio can drift by chance on this machine.

Example::

    python benchmarks/vision_models.py --models alexnet,vit_base_patch16_224 --batch-size 4 --repeats 10
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import timm
import torch
import torch.nn.functional as F
import torchvision
from rich.console import Console
from rich.table import Table
from timing import (
    check_outputs,
    describe_environment,
    run_and_report,
    summarize,
    time_alternating,
)
from torch import nn

from paperzoo.vision import create_model
from paperzoo.vision.models import swin, vit, vit_hybrid

OURS = "paperzoo"
VERSIONS = {"torch": torch.__version__, "timm": timm.__version__, "torchvision": torchvision.__version__}
CONTROL = "control"  # a second copy of the first reference, timed with --control
# GoogLeNet's auxiliary losses are discounted by 0.3 (Szegedy et al. 2015, section 5), on both sides
AUX_LOSS_WEIGHT = 0.3
# largest |ours - reference| of the eval-mode logits, relative to the largest |reference logit|, before timing
PARITY_TOL = 1e-3


def _torchvision(name: str, **kwargs) -> Callable[[int], nn.Module]:
    return lambda image_size: getattr(torchvision.models, name)(**kwargs)


def _timm(name: str, fixed_size: bool, **kwargs) -> Callable[[int], nn.Module]:
    """timm's model; ``fixed_size`` ones (ViT, Swin) are built for the benchmark's image size."""

    def build(image_size: int) -> nn.Module:
        size = {"img_size": image_size} if fixed_size else {}
        return timm.create_model(name, pretrained=False, **size, **kwargs)

    return build


def _ours(name: str, fixed_size: bool, **kwargs) -> Callable[[int], nn.Module]:
    def build(image_size: int) -> nn.Module:
        size = {"img_size": image_size} if fixed_size else {}
        return create_model(name, **size, **kwargs)

    return build


@dataclass(frozen=True)
class Pair:
    """One of our models and the reference implementation(s) it is proved equal to.

    ``references`` maps a library name to a builder taking the image size; the first one's weights are copied into
    ours (through ``convert``) and into the other references (ResNet: torchvision's into timm's, same names).
    ``convolutional`` says whether channels-last can matter (not for ViT-B and Swin-T, whose only convolution is the
    patch embedding).
    """

    label: str
    ours: Callable[[int], nn.Module]
    references: Mapping[str, Callable[[int], nn.Module]]
    convert: Callable[[Mapping[str, torch.Tensor]], Mapping[str, torch.Tensor]] = dict
    convolutional: bool = True


PAIRS: dict[str, Pair] = {
    "alexnet": Pair("AlexNet", _ours("alexnet", False), {"torchvision": _torchvision("alexnet")}),
    "vgg16_bn": Pair("VGG-16-BN", _ours("vgg16_bn", False), {"torchvision": _torchvision("vgg16_bn")}),
    "googlenet": Pair(
        "GoogLeNet",
        _ours("googlenet", False, torchvision_layout=True),
        {"torchvision": _torchvision("googlenet", aux_logits=True, init_weights=True)},
    ),
    "densenet121": Pair("DenseNet-121", _ours("densenet121", False), {"torchvision": _torchvision("densenet121")}),
    "resnet18": Pair(
        "ResNet-18",
        _ours("resnet18", False),
        {"torchvision": _torchvision("resnet18"), "timm": _timm("resnet18", False)},
    ),
    "resnet50": Pair(
        "ResNet-50",
        _ours("resnet50", False),
        {"torchvision": _torchvision("resnet50"), "timm": _timm("resnet50", False)},
    ),
    "vit_base_patch16_224": Pair(
        "ViT-B/16",
        _ours("vit_base_patch16_224", True),
        {"timm": _timm("vit_base_patch16_224", True)},
        convert=vit.from_timm_state_dict,
        convolutional=False,
    ),
    "swin_tiny_patch4_window7_224": Pair(
        "Swin-T",
        _ours("swin_tiny_patch4_window7_224", True),
        # timm's Swin defaults to stochastic depth 0.1, ours to none: both without, so they compute the same function
        {"timm": _timm("swin_tiny_patch4_window7_224", True, drop_path_rate=0.0)},
        convert=swin.from_timm_state_dict,
        convolutional=False,
    ),
    "vit_small_r26_s32_224": Pair(
        "R26+ViT-S/32",
        _ours("vit_small_r26_s32_224", True),
        {"timm": _timm("vit_small_r26_s32_224", True)},
        convert=vit_hybrid.from_timm_state_dict,
    ),
}
DEFAULT_MODELS = ",".join(PAIRS)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Pairs (--models): "
        + "; ".join(f"{key} ({pair.label} vs {', '.join(pair.references)})" for key, pair in PAIRS.items())
        + ". Ratios are paired by round and hold on a loaded machine; absolute times do not.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--models",
        default=DEFAULT_MODELS,
        help="comma-separated pairs to time, by our registry name (listed below)",
    )
    parser.add_argument("--batch-size", type=int, default=4, help="images per training step, for every pair")
    parser.add_argument(
        "--image-size",
        type=int,
        default=224,
        help="side of the square random input images; ViT and Swin (both sides) are built for this size, which "
        "must fit their patch grid and windows (Swin-T: 224)",
    )
    parser.add_argument(
        "--repeats", type=int, default=10, help="timed training steps per implementation, alternating (>= 2)"
    )
    parser.add_argument(
        "--warmup", type=int, default=2, help="untimed rounds of training steps before the timed ones (>= 1)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads for torch (torch.set_num_threads); 0 keeps torch's choice, one per core. One by default: "
        "on a machine shared with other jobs a parallel region waits for its slowest thread",
    )
    parser.add_argument(
        "--channels-last",
        action="store_true",
        help="time each convolutional pair a second time with models and inputs in channels-last (NHWC) memory "
        "format, as a second row (not ViT-B and Swin-T, whose only convolution is the patch embedding)",
    )
    parser.add_argument(
        "--control",
        action="store_true",
        help="also time a second copy of each pair's (first) reference, and report the reference's ratio against "
        "its own copy (an A/A test): the noise floor of the ratios on this machine; 1.5x the run time",
    )
    parser.add_argument(
        "--json", "--output", type=Path, metavar="PATH", help="also write the environment and results as JSON here"
    )
    args = parser.parse_args()
    unknown = [name for name in args.models.split(",") if name.strip() not in PAIRS]
    if unknown:
        parser.error(f"unknown pairs {unknown}; choose from {', '.join(PAIRS)}")
    if args.repeats < 2 or args.warmup < 1:
        parser.error("--repeats must be at least 2 (for quartiles) and --warmup at least 1 (first-call allocations)")
    return args


def training_loss(output: torch.Tensor | tuple[torch.Tensor, ...], target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the logits; with auxiliary heads (GoogLeNet in train mode, main logits first) their
    cross-entropies are added with weight 0.3."""
    if isinstance(output, torch.Tensor):
        return F.cross_entropy(output, target)
    main, *aux = (F.cross_entropy(logits, target) for logits in output)
    return main + AUX_LOSS_WEIGHT * sum(aux)


def make_training_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    """One SGD training step of ``model`` on the fixed batch ``(x, y)``."""
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-4)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        training_loss(model(x), y).backward()
        optimizer.step()

    return step


def build_pair(pair: Pair, image_size: int, control: bool = False) -> dict[str, nn.Module]:
    """Ours and the references (and with ``control`` a copy of the first), all with the first reference's weights."""
    torch.manual_seed(0)
    references = {library: build(image_size) for library, build in pair.references.items()}
    if control:
        references[CONTROL] = next(iter(pair.references.values()))(image_size)
    source = next(iter(references.values())).state_dict()
    ours = pair.ours(image_size)
    ours.load_state_dict(pair.convert(source))  # strict: every name and shape must match
    for reference in references.values():
        reference.load_state_dict(source)
    return {OURS: ours, **references}


def check_same_function(models: dict[str, nn.Module], x: torch.Tensor) -> float:
    """Largest relative difference between our eval-mode logits and each reference's; raises above PARITY_TOL."""
    with torch.no_grad():
        logits = {impl: model.eval()(x) for impl, model in models.items()}
    return check_outputs(logits, OURS, PARITY_TOL)


def benchmark_pair(
    key: str, channels_last: bool, args: argparse.Namespace, on_round: Callable[[int], None]
) -> list[dict]:
    pair = PAIRS[key]
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch_size, 3, args.image_size, args.image_size, generator=generator)
    y = torch.randint(0, 1000, (args.batch_size,), generator=generator)
    x = x.contiguous(memory_format=memory_format)

    models = build_pair(pair, args.image_size, args.control)
    for model in models.values():
        model.to(memory_format=memory_format)
    difference = check_same_function(models, x[:2])
    steps = {impl: make_training_step(model.train(), x, y) for impl, model in models.items()}
    times = time_alternating(steps, args.repeats, args.warmup, on_round=on_round)
    stats = summarize(times, OURS)
    first = next(iter(pair.references))
    # t_control / t_reference, paired by round like ours/ref: equal code, so its distance from 1.0 is noise
    control = summarize({first: times[first], CONTROL: times[CONTROL]}, first)[CONTROL] if args.control else None
    rows = []
    for library in pair.references:
        rows.append(
            {
                "model": key,
                "label": pair.label,
                "reference": library,
                "channels_last": channels_last,
                "batch_size": args.batch_size,
                "image_size": args.image_size,
                "ours_median_step_s": stats[OURS]["median"],
                "ours_iqr_step_s": stats[OURS]["iqr"],
                "reference_median_step_s": stats[library]["median"],
                "reference_iqr_step_s": stats[library]["iqr"],
                "ours_over_reference": stats[library]["ratio"],
                "ratio_q1": stats[library]["ratio_q1"],
                "ratio_q3": stats[library]["ratio_q3"],
                "max_relative_logit_difference": difference,
            }
        )
        if control is not None:
            rows[-1]["control_over_reference"] = control["ratio"] if library == first else None
            rows[-1]["control_ratio_q1"] = control["ratio_q1"] if library == first else None
            rows[-1]["control_ratio_q3"] = control["ratio_q3"] if library == first else None
    return rows


def render(console: Console, env: dict, rows: list[dict], args: argparse.Namespace) -> None:
    console.print(describe_environment(env, list(VERSIONS)))
    table = Table(
        title=f"training step (SGD), float32, cpu, batch {args.batch_size}, {args.image_size}x{args.image_size}; "
        f"median of {args.repeats} alternating steps after {args.warmup} untimed rounds"
    )
    columns = ("pair", "reference", "memory", "ours ms (IQR)", "ref ms (IQR)", "ours/ref", "ratio q1-q3")
    if args.control:
        columns += ("A/A (q1-q3)",)
    for column in columns:
        table.add_column(column, justify="left" if column in ("pair", "reference", "memory") else "right")
    for row in rows:
        cells = []
        if args.control:
            aa = row["control_over_reference"]
            cells = ["-" if aa is None else f"{aa:.3f}x ({row['control_ratio_q1']:.3f}-{row['control_ratio_q3']:.3f})"]
        table.add_row(
            row["label"],
            row["reference"],
            "NHWC" if row["channels_last"] else "NCHW",
            f"{1e3 * row['ours_median_step_s']:.0f} ({1e3 * row['ours_iqr_step_s']:.0f})",
            f"{1e3 * row['reference_median_step_s']:.0f} ({1e3 * row['reference_iqr_step_s']:.0f})",
            f"{row['ours_over_reference']:.3f}x",
            f"{row['ratio_q1']:.3f}-{row['ratio_q3']:.3f}",
            *cells,
        )
    console.print(table)
    console.print(
        "ours/ref: median over rounds of t_ref / t_ours (> 1: ours faster); ratio q1-q3: quartiles of the per-round "
        "ratios. Before timing, eval-mode logits of ours and the reference agreed within "
        f"{max(row['max_relative_logit_difference'] for row in rows):.1e} (relative) on every pair."
        + (
            " A/A: the same ratio between the reference and a second copy of it, the noise floor."
            if args.control
            else ""
        )
    )


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    runs = [(key.strip(), False) for key in args.models.split(",")]
    if args.channels_last:
        runs += [(key, True) for key, _ in runs if PAIRS[key].convolutional]
    jobs = [
        (
            f"{PAIRS[key].label}{' NHWC' if channels_last else ''}",
            lambda on_round, key=key, channels_last=channels_last: benchmark_pair(key, channels_last, args, on_round),
        )
        for key, channels_last in runs
    ]
    run_and_report(args, VERSIONS, jobs, lambda console, env, rows: render(console, env, rows, args), width=120)


if __name__ == "__main__":
    main()
