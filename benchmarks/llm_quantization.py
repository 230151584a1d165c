"""Quality, memory and latency of paperzoo.llm's trained models before and after post-training quantisation.

Two trained checkpoints, each quantised three ways by ``paperzoo.llm.quantization`` and measured against itself in
float32:

- ``bert``: a ``SequenceClassifierModule`` checkpoint (by default the full fine-tuning of all-MiniLM-L6-v2 on the
  Rotten Tomatoes snippets, ``lora-minilm-rotten-tomatoes/full``); quality is the accuracy on the test split of the
  DataModule in the run's ``config.yaml`` (1,000 snippets), latency one forward pass on its first test batch.
- ``gpt``: a ``CausalLMModule`` checkpoint (by default ``gpt-shakespeare-char-cpu``); quality is the mean cross-entropy
  in nats per character on the test split of its ``config.yaml`` DataModule (whole held-out works), latency one forward
  pass on its first test batch.

The methods (every ``nn.Linear`` of the encoder or the decoder; the classification head and GPT's ``lm_head``, tied to
the token embedding, stay in float32):

- ``float32``: the checkpoint as trained;
- ``dynamic-int8``: ``quantize_dynamic_int8`` (torch.ao: int8 weights, activations quantised at each call);
- ``bnb-int8``: ``quantize_8bit`` (bitsandbytes LLM.int8(), Dettmers et al. 2022, outlier threshold 6);
- ``bnb-nf4``: ``quantize_4bit`` (bitsandbytes NF4 with double quantisation, QLoRA's storage, Dettmers et al. 2023).

Memory is ``model_memory_bytes`` (parameters as stored, buffers, quantisation scales). Latency: the forward passes
of the four models alternate, with the order rotated every round, after ``--warmup`` untimed rounds
(``timing.time_alternating``), in ``torch.inference_mode``; reported as the median with its interquartile range and as
the median over rounds of ``t_method / t_float32`` (< 1: faster than float32).

Example::

    OMP_NUM_THREADS=1 python benchmarks/llm_quantization.py --threads 1 --json /tmp/quant.json
"""

from __future__ import annotations

import argparse
import copy
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bitsandbytes
import torch
import torch.nn.functional as F
import yaml
from lightning.pytorch.cli import instantiate_class
from rich.console import Console
from rich.table import Table
from timing import describe_environment, run_and_report, summarize, time_alternating
from torch import Tensor, nn

from paperzoo.llm.modules.classification import SequenceClassifierModule
from paperzoo.llm.modules.language_model import CausalLMModule
from paperzoo.llm.quantization import model_memory_bytes, quantize_4bit, quantize_8bit, quantize_dynamic_int8

VERSIONS = {"torch": torch.__version__, "bitsandbytes": bitsandbytes.__version__}
FLOAT32 = "float32"
METHODS: dict[str, Callable[[nn.Module], nn.Module]] = {
    FLOAT32: lambda model: model,
    "dynamic-int8": quantize_dynamic_int8,
    "bnb-int8": quantize_8bit,
    "bnb-nf4": quantize_4bit,
}
MODELS = ("bert", "gpt")
RUNS = {"bert": "lora-minilm-rotten-tomatoes/full", "gpt": "gpt-shakespeare-char-cpu"}
DEFAULT_CHECKPOINTS = {
    "bert": "runs/lora-minilm-rotten-tomatoes/full/version_0/checkpoints/epoch0-step672.ckpt",
    "gpt": "runs/gpt-shakespeare-char-cpu/version_0/checkpoints/epoch7-step2000.ckpt",
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated: bert, gpt")
    parser.add_argument(
        "--bert-checkpoint",
        type=Path,
        default=Path(DEFAULT_CHECKPOINTS["bert"]),
        help=("a SequenceClassifierModule checkpoint; its run's config.yaml (two folders up) names the test data"),
    )
    parser.add_argument(
        "--gpt-checkpoint",
        type=Path,
        default=Path(DEFAULT_CHECKPOINTS["gpt"]),
        help=("a CausalLMModule checkpoint; its run's config.yaml (two folders up) names the test data"),
    )
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, of: {', '.join(METHODS)}")
    parser.add_argument("--repeats", type=int, default=20, help="timed forward passes per method, alternating (>= 2)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds before the timed ones (>= 1)")
    parser.add_argument(
        "--threads", type=int, default=1, help="CPU threads for torch (torch.set_num_threads); 0 keeps torch's choice"
    )
    parser.add_argument("--json", type=Path, help="also write the environment and every number to this file")
    args = parser.parse_args()
    args.models = [m for m in args.models.split(",") if m]
    args.methods = [m for m in args.methods.split(",") if m]
    for name, allowed, what in ((args.models, MODELS, "--models"), (args.methods, METHODS, "--methods")):
        unknown = sorted(set(name) - set(allowed))
        if unknown:
            parser.error(f"{what}: unknown {', '.join(unknown)}; choose from {', '.join(allowed)}")
    if FLOAT32 not in args.methods:
        args.methods.insert(0, FLOAT32)  # the reference of every ratio
    if args.repeats < 2 or args.warmup < 1:
        parser.error("--repeats must be at least 2 and --warmup at least 1")
    for model in args.models:
        checkpoint = getattr(args, f"{model}_checkpoint")
        if not checkpoint.is_file():
            parser.error(
                f"{checkpoint} does not exist: train the {model} model first (the defaults are the runs of "
                f"`paperzoo run {RUNS[model]}`) or pass --{model}-checkpoint"
            )
    return args


def run_datamodule(checkpoint: Path) -> Any:
    """The DataModule of the run that wrote ``checkpoint``, from its ``config.yaml``, set up for testing."""
    config_path = checkpoint.parent.parent / "config.yaml"
    if not config_path.is_file():
        raise SystemExit(f"{config_path} is missing: the benchmark reads the test data's settings from that file")
    datamodule = instantiate_class((), yaml.safe_load(config_path.read_text())["data"])
    datamodule.setup("test")
    return datamodule


def bert_quality(network: nn.Module, batches: list[dict[str, Tensor]]) -> float:
    """Accuracy (%) of the classifier on the batches."""
    correct = total = 0
    for batch in batches:
        logits = network(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
        correct += int((logits.argmax(-1) == batch["labels"]).sum())
        total += len(batch["labels"])
    return 100.0 * correct / total


def gpt_quality(network: nn.Module, batches: list[tuple[Tensor, Tensor]]) -> float:
    """Mean next-character cross-entropy (nats per character) on the batches."""
    nats = count = 0.0
    for x, y in batches:
        logits = network(x)
        nats += float(F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum"))
        count += y.numel()
    return nats / count


def load(model: str, checkpoint: Path) -> tuple[nn.Module, list, Callable, Callable[[nn.Module], Any]]:
    """The float32 network, the test batches, its quality function and one forward call on the first batch."""
    if model == "bert":
        module = SequenceClassifierModule.load_from_checkpoint(checkpoint, map_location="cpu")
        batches = list(run_datamodule(checkpoint).test_dataloader())
        first = batches[0]
        return (
            module.network,
            batches,
            bert_quality,
            lambda net: net(first["input_ids"], first["attention_mask"], first.get("token_type_ids")),
        )
    module = CausalLMModule.load_from_checkpoint(checkpoint, map_location="cpu")
    batches = list(run_datamodule(checkpoint).test_dataloader())
    return module.network, batches, gpt_quality, lambda net: net(batches[0][0])


def benchmark_model(model: str, args: argparse.Namespace, on_round: Callable[[int], None]) -> list[dict]:
    reference, batches, quality, forward = load(model, getattr(args, f"{model}_checkpoint"))
    reference.eval()
    networks = {method: METHODS[method](copy.deepcopy(reference)).eval() for method in args.methods}
    rows = []
    with torch.inference_mode():
        for method, network in networks.items():
            start = time.perf_counter()
            score = quality(network, batches)
            memory = model_memory_bytes(network)
            rows.append(
                {
                    "model": model,
                    "method": method,
                    "quality": score,
                    "memory_bytes": memory.total,
                    "memory_parts": f"parameters {memory.parameters}, buffers {memory.buffers}, "
                    f"quantisation state {memory.quant_state}",
                    "evaluation_s": time.perf_counter() - start,
                }
            )
        calls = {method: (lambda network=network: forward(network)) for method, network in networks.items()}
        times = time_alternating(calls, args.repeats, args.warmup, on_round=on_round)
    summary = summarize(times, FLOAT32)
    base = next(row for row in rows if row["method"] == FLOAT32)
    for row in rows:
        stats = summary[row["method"]]
        row.update(
            median_forward_s=stats["median"],
            iqr_forward_s=stats["iqr"],
            latency_over_float32=1.0 if row["method"] == FLOAT32 else stats["ratio"],
            latency_ratio_q1=stats["ratio_q1"],
            latency_ratio_q3=stats["ratio_q3"],
            memory_over_float32=row["memory_bytes"] / base["memory_bytes"],
            quality_change=row["quality"] - base["quality"],
            forward_times_s=times[row["method"]],
        )
    return rows


QUALITY = {"bert": ("test accuracy %", "{:.1f}", "{:+.1f}"), "gpt": ("test nats/char", "{:.3f}", "{:+.3f}")}


def render(console: Console, env: dict, rows: list[dict], args: argparse.Namespace) -> None:
    console.print(describe_environment(env, list(VERSIONS)))
    for model in args.models:
        label, value, change = QUALITY[model]
        table = Table(title=f"{model}: {getattr(args, f'{model}_checkpoint')}")
        for column in ("method", label, "change", "memory MB", "x float32", "forward ms (IQR)", "latency x float32"):
            table.add_column(column, justify="left" if column == "method" else "right")
        for row in (r for r in rows if r["model"] == model):
            spread = ""
            if row["method"] != FLOAT32:
                spread = f" ({row['latency_ratio_q1']:.2f}-{row['latency_ratio_q3']:.2f})"
            table.add_row(
                row["method"],
                value.format(row["quality"]),
                change.format(row["quality_change"]),
                f"{row['memory_bytes'] / 1e6:.1f}",
                f"{row['memory_over_float32']:.3f}",
                f"{1e3 * row['median_forward_s']:.1f} ({1e3 * row['iqr_forward_s']:.1f})",
                f"{row['latency_over_float32']:.2f}x{spread}",
            )
        console.print(table)
    console.print(
        "memory: parameters as stored + buffers + quantisation scales (model_memory_bytes). latency x float32: median "
        "over rounds of t_method / t_float32 (< 1: faster), with the quartiles of the per-round ratios; one forward "
        "pass on the first test batch, in inference mode."
    )


def main() -> None:
    args = parse_args()
    # bitsandbytes' 8-bit matmul logs this at every call on the CPU; it is how LLM.int8() works (16-bit inputs)
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    if args.threads:
        torch.set_num_threads(args.threads)
    jobs = [(model, lambda on_round, model=model: benchmark_model(model, args, on_round)) for model in args.models]
    run_and_report(args, VERSIONS, jobs, lambda console, env, rows: render(console, env, rows, args), width=150)


if __name__ == "__main__":
    main()
