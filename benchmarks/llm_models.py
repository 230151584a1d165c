"""Training-step speed of paperzoo.llm's BERT, GPT and LoRA against transformers and peft, in one process.

Three pairs, each ours against the library implementation it is proved equal to in ``tests/llm``:

- ``bert``: ``paperzoo.llm.models.bert.BertForSequenceClassification`` against
  ``transformers.BertForSequenceClassification`` of the same config (``--config minilm``, the default: the shape of
  all-MiniLM-L6-v2, 6 layers, width 384, 12 heads, FFN 1536, 30,522 words; ``--config bert_base``: 12 layers, 768,
  12 heads, FFN 3072). The reference is built first (its random initialisation) and ours copies its weights with
  ``from_hf``. transformers is used with its default attention, ``sdpa`` in version 5 (``--hf-attention eager``
  picks its other path). A step is ``zero_grad``, the forward pass on a right-padded batch (``--batch-size`` x
  ``--seq-len``, lengths drawn from [seq-len / 2, seq-len]) with its ``attention_mask``, cross-entropy against random
  labels, backward and an AdamW step.
- ``gpt``: ``paperzoo.llm.models.gpt.GPT`` against ``transformers.GPT2LMHeadModel`` of the same config
  (``--config gpt_small``, the default: 6 layers, width 384, 6 heads, 256 positions, 50,257 tokens; ``--config
  gpt2``: GPT-2's 124M model), ours loaded with ``GPT.from_hf``; a step is the next-token cross-entropy of
  ``--gpt-batch-size`` x ``--gpt-seq-len`` random tokens (no padding), backward and AdamW.
- ``lora``: two copies of OUR BERT classifier (the ``bert`` pair's config and weights), one adapted with our
  ``apply_lora`` and one with peft's ``get_peft_model(LoraConfig(...))``, both with r 8, alpha 8, LoRA on ``query``
  and ``value``, the ``classifier`` trained in full (``modules_to_save``); peft's A and B (B made non-zero, so the
  adapters matter) are copied into ours. A step is the ``bert`` step with only the adapters and the head trainable,
  so it measures the adapters' overhead around the same frozen encoder.

Dropout (``--dropout``, 0.1 by default: BERT's hidden, attention and classifier dropout, GPT-2's embedding, attention
and residual dropout) is on in both sides during the timed steps (train mode); before anything is timed, every pair is
checked to compute the same function in eval mode, in float32, on the benchmark's own batch (logits and, for BERT,
the encoder's last hidden states), or the script stops.

The steps of ours and the reference alternate, with the order rotated every round, after ``--warmup`` untimed rounds
(``timing.time_alternating``); a timed call runs as many steps as make it last ``--min-call-ms``, and a step's time
is the call's divided by that number. Reported per pair: the median step time with its interquartile range, tokens
per second (non-padding tokens of the batch), and the throughput ratio ours/reference, the median over rounds of
``t_reference / t_ours`` (> 1 means ours is faster), with the quartiles of the per-round ratios. ``--control`` adds a
second copy of the reference (an A/A test); ``--profile N`` runs N more steps of each side under ``torch.profiler``
and prints the operators that take the time, side by side.

Example::

    OMP_NUM_THREADS=1 python benchmarks/llm_models.py --pairs bert --threads 1 --repeats 10 --control
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import peft
import torch
import torch.nn.functional as F
import transformers
from peft import LoraConfig, get_peft_model
from rich.console import Console
from rich.table import Table
from timing import (
    add_alternating_arguments,
    check_outputs,
    cpu_name,
    describe_environment,
    pair_fields,
    parameter_count,
    repeated,
    run_and_report,
    steps_per_call,
    time_alternating,
)
from torch import Tensor, nn

from paperzoo.llm.layers.lora import apply_lora, from_peft_state_dict
from paperzoo.llm.models.bert import BertForSequenceClassification
from paperzoo.llm.models.gpt import GPT

OURS = "paperzoo"
HF = "transformers"
PEFT = "peft"
CONTROL = "control"  # a second copy of the reference, timed with --control
VERSIONS = {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__}
# largest |ours - reference| of the eval-mode float32 outputs, relative to the largest |reference output|
PARITY_TOL = 1e-4
PAD = 0
NUM_LABELS = 2
LEARNING_RATE = 2e-5  # BERT's fine-tuning range; the rate does not change the time
WEIGHT_DECAY = 0.01
LORA = dict(r=8, alpha=8, target_modules=["query", "value"], modules_to_save=["classifier"])
PAIRS = {
    "bert": "BertForSequenceClassification vs transformers.BertForSequenceClassification, training step",
    "gpt": "GPT vs transformers.GPT2LMHeadModel, language-model training step",
    "lora": "our apply_lora vs peft.get_peft_model on the same BERT classifier, training step of adapters + head",
}
# Sizes, as transformers config keywords. The BERT ones serve the bert and lora pairs, the GPT ones the gpt pair.
BERT_CONFIGS = {
    "minilm": dict(num_hidden_layers=6, hidden_size=384, num_attention_heads=12, intermediate_size=1536),
    "bert_base": dict(num_hidden_layers=12, hidden_size=768, num_attention_heads=12, intermediate_size=3072),
}
GPT_CONFIGS = {
    "gpt_small": dict(n_layer=6, n_embd=384, n_head=6, n_positions=256),
    "gpt2": dict(n_layer=12, n_embd=768, n_head=12, n_positions=1024),
}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Pairs (--pairs): "
        + "; ".join(f"{key} ({text})" for key, text in PAIRS.items())
        + ". Ratios are paired by round and hold on a loaded machine; absolute times do not.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--pairs", default=",".join(PAIRS), help="comma-separated pairs to time (listed below)")
    parser.add_argument(
        "--config",
        default="minilm,gpt_small",
        help="comma-separated model sizes, at most one per family: BERT (bert and lora pairs) minilm = 6 layers, "
        "width 384, 12 heads, FFN 1536 (all-MiniLM-L6-v2's shape) or bert_base = 12 layers, 768, 12 heads, FFN 3072; "
        "GPT gpt_small = 6 layers, width 384, 6 heads, 256 positions or gpt2 = GPT-2 124M (12 layers, 768, 12 heads, "
        "1024 positions); a family not named keeps its default (minilm, gpt_small)",
    )
    parser.add_argument("--batch-size", type=int, default=16, help="sequences per BERT / LoRA step")
    parser.add_argument(
        "--seq-len",
        type=int,
        default=128,
        help="padded length of the BERT / LoRA batch; lengths are drawn from [seq-len / 2, seq-len], the first "
        "sequence at full length, the rest right-padded with id 0 and masked by attention_mask",
    )
    parser.add_argument("--gpt-batch-size", type=int, default=8, help="sequences per GPT step")
    parser.add_argument(
        "--gpt-seq-len", type=int, default=256, help="tokens per GPT sequence (at most the config's positions)"
    )
    parser.add_argument(
        "--dropout",
        type=float,
        default=0.1,
        help="dropout everywhere, both sides: BERT's hidden, attention-weight and classifier dropout, GPT-2's "
        "embedding, attention-weight and residual dropout (LoRA's own dropout on the adapters' input is 0)",
    )
    parser.add_argument(
        "--hf-attention",
        default="sdpa",
        choices=["sdpa", "eager"],
        help="transformers' attn_implementation for its models (sdpa is its default in version 5; ours always "
        "calls scaled_dot_product_attention)",
    )
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where the models and batches live")
    parser.add_argument(
        "--dtype",
        default="float32",
        choices=list(DTYPES),
        help="dtype of the weights and activations in the timed steps (the parity check runs in float32 first, "
        "then every model is cast)",
    )
    add_alternating_arguments(parser, repeats=10, warmup=1, reference="transformers/peft")
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="STEPS",
        help="after timing, run this many more steps of ours and of the reference under torch.profiler and print "
        "the operators with the most self time per step, side by side (0: no profile)",
    )
    parser.add_argument(
        "--profile-rows", type=int, default=25, help="operators shown by --profile (the largest by self time)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and the batches")
    parser.add_argument(
        "--json", "--output", type=Path, metavar="PATH", help="also write the environment and results as JSON here"
    )
    args = parser.parse_args()
    args.pairs = [name.strip() for name in args.pairs.split(",")]
    unknown = [name for name in args.pairs if name not in PAIRS]
    if unknown:
        parser.error(f"unknown pairs {unknown}; choose from {', '.join(PAIRS)}")
    args.bert_config, args.gpt_config = "minilm", "gpt_small"
    for name in (name.strip() for name in args.config.split(",") if name.strip()):
        if name in BERT_CONFIGS:
            args.bert_config = name
        elif name in GPT_CONFIGS:
            args.gpt_config = name
        else:
            parser.error(f"unknown --config {name!r}; choose from {', '.join([*BERT_CONFIGS, *GPT_CONFIGS])}")
    if args.repeats < 2 or args.warmup < 1:
        parser.error("--repeats must be at least 2 (for quartiles) and --warmup at least 1 (first-call allocations)")
    if args.seq_len < 2 or args.gpt_seq_len > GPT_CONFIGS[args.gpt_config]["n_positions"]:
        parser.error("--seq-len must be at least 2 and --gpt-seq-len at most the GPT config's positions")
    if not 0.0 <= args.dropout < 1.0:
        parser.error("--dropout must be in [0, 1)")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda, but torch sees no CUDA device")
    return args


# --- batches ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    """Token ids ``(B, T)``, the attention mask (1 at tokens, 0 at padding; None for none) and the targets: a label per
    sequence ``(B,)`` for the classifiers, the next token at each position ``(B, T)`` for the language model."""

    input_ids: Tensor
    attention_mask: Tensor | None
    targets: Tensor

    @property
    def tokens(self) -> int:
        """Non-padding tokens: the tokens a step actually processes."""
        return self.input_ids.numel() if self.attention_mask is None else int(self.attention_mask.sum())

    def to(self, device: str) -> Batch:
        mask = None if self.attention_mask is None else self.attention_mask.to(device)
        return Batch(self.input_ids.to(device), mask, self.targets.to(device))


def classification_batch(args: argparse.Namespace, vocab_size: int, generator: torch.Generator) -> Batch:
    """Random ids in [1, V), lengths in [T / 2, T] (the first at T), right-padded with PAD, and random labels."""
    lengths = torch.randint(args.seq_len // 2, args.seq_len + 1, (args.batch_size,), generator=generator)
    lengths[0] = args.seq_len
    mask = (torch.arange(args.seq_len)[None, :] < lengths[:, None]).long()  # (B, T)
    ids = torch.randint(1, vocab_size, (args.batch_size, args.seq_len), generator=generator).masked_fill(mask == 0, PAD)
    labels = torch.randint(0, NUM_LABELS, (args.batch_size,), generator=generator)
    return Batch(ids, mask, labels)


def language_model_batch(args: argparse.Namespace, vocab_size: int, generator: torch.Generator) -> Batch:
    """``--gpt-seq-len + 1`` random tokens per row; the inputs are the first T, the targets the last T."""
    tokens = torch.randint(0, vocab_size, (args.gpt_batch_size, args.gpt_seq_len + 1), generator=generator)
    return Batch(tokens[:, :-1], None, tokens[:, 1:])


# --- the models -------------------------------------------------------------------------------------------------------


def hf_bert_config(args: argparse.Namespace) -> transformers.BertConfig:
    return transformers.BertConfig(
        vocab_size=30522,
        max_position_embeddings=512,
        hidden_dropout_prob=args.dropout,
        attention_probs_dropout_prob=args.dropout,
        num_labels=NUM_LABELS,
        attn_implementation=args.hf_attention,
        **BERT_CONFIGS[args.bert_config],
    )


def build_bert(args: argparse.Namespace) -> dict[str, nn.Module]:
    """transformers' classifier (and with ``--control`` a copy) from its random initialisation, and ours with its
    weights, through ``from_hf``."""
    torch.manual_seed(args.seed)
    references = {HF: transformers.BertForSequenceClassification(hf_bert_config(args))}
    if args.control:
        references[CONTROL] = copy.deepcopy(references[HF])
    ours = BertForSequenceClassification.from_hf(references[HF])
    return {OURS: ours, **references}


def build_gpt(args: argparse.Namespace) -> dict[str, nn.Module]:
    """transformers' GPT2LMHeadModel (and with ``--control`` a copy), and ours with its weights (``GPT.from_hf``)."""
    config = transformers.GPT2Config(
        vocab_size=50257,
        resid_pdrop=args.dropout,
        embd_pdrop=args.dropout,
        attn_pdrop=args.dropout,
        attn_implementation=args.hf_attention,
        **GPT_CONFIGS[args.gpt_config],
    )
    torch.manual_seed(args.seed)
    references = {HF: transformers.GPT2LMHeadModel(config)}
    if args.control:
        references[CONTROL] = copy.deepcopy(references[HF])
    ours = GPT.from_hf(references[HF])
    hf = references[HF]
    if not (ours.lm_head.weight is ours.wte.weight and hf.lm_head.weight is hf.transformer.wte.weight):
        raise RuntimeError("the output layer is not tied to the token embedding on both sides")
    return {OURS: ours, **references}


def build_lora(args: argparse.Namespace) -> dict[str, nn.Module]:
    """Our BERT classifier (the bert pair's weights) twice: adapted by peft, and by us with peft's A and B."""
    torch.manual_seed(args.seed)
    base = BertForSequenceClassification.from_hf(transformers.BertForSequenceClassification(hf_bert_config(args)))
    config = LoraConfig(
        r=LORA["r"],
        lora_alpha=LORA["alpha"],
        target_modules=LORA["target_modules"],
        modules_to_save=LORA["modules_to_save"],
    )
    references = {PEFT: get_peft_model(copy.deepcopy(base), config)}
    generator = torch.Generator().manual_seed(args.seed + 2)
    with torch.no_grad():  # B starts at zero; random B makes the adapters' contribution visible to the parity check
        for name, parameter in references[PEFT].named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.02)
    if args.control:
        references[CONTROL] = copy.deepcopy(references[PEFT])
    ours = apply_lora(
        copy.deepcopy(base),
        LORA["target_modules"],
        r=LORA["r"],
        alpha=LORA["alpha"],
        modules_to_save=LORA["modules_to_save"],
    )
    ours.load_state_dict(from_peft_state_dict(references[PEFT].state_dict()))  # strict: every tensor maps
    for impl, model in {OURS: ours, **references}.items():
        trainable = {name for name, p in model.named_parameters() if p.requires_grad}
        if not trainable or not all("lora_" in name or "classifier" in name for name in trainable):
            raise RuntimeError(f"{impl} trains more than the adapters and the classifier: {sorted(trainable)[:4]}")
    return {OURS: ours, **references}


def model_output(impl: str, model: nn.Module, batch: Batch) -> Tensor:
    """Logits, each model called the way its library intends: ours positionally, transformers with keywords and
    without its key-value cache, peft's wrapper as the model it wraps."""
    if isinstance(model, transformers.PreTrainedModel):
        return model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False).logits
    if batch.attention_mask is None:
        return model(batch.input_ids)
    return model(batch.input_ids, batch.attention_mask)


def encoder_states(model: nn.Module, batch: Batch) -> Tensor:
    """The BERT encoder's last hidden states ``(B, T, H)`` of ours or transformers' classifier."""
    return model.bert(batch.input_ids, batch.attention_mask).last_hidden_state


def check_parity(key: str, models: Mapping[str, nn.Module], batch: Batch) -> float:
    """Eval-mode float32 outputs of every model on ``batch`` compared by :func:`check_outputs`: logits (every
    position for GPT) and, for the bert pair, the encoder's last hidden states at every position."""
    with torch.no_grad():
        logits = {impl: model_output(impl, model.eval(), batch) for impl, model in models.items()}
        difference = check_outputs(logits, OURS, PARITY_TOL)
        if key == "bert":
            states = {impl: encoder_states(model, batch) for impl, model in models.items()}
            difference = max(difference, check_outputs(states, OURS, PARITY_TOL))
    return difference


def make_step(impl: str, model: nn.Module, batch: Batch) -> Callable[[], None]:
    """One training step: zero_grad, forward in train mode, cross-entropy (per sequence for the classifiers, per
    position for the language model), backward and AdamW over the trainable parameters."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    model.train()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        logits = model_output(impl, model, batch)  # (B, K) or (B, T, V)
        loss = F.cross_entropy(logits.flatten(0, -2).float(), batch.targets.flatten())
        loss.backward()
        optimizer.step()

    return step


# --- timing and profiling ---------------------------------------------------------------------------------------------


def synchronizer(device: str) -> Callable[[], None] | None:
    return torch.cuda.synchronize if device == "cuda" else None


def time_pair(
    steps: Mapping[str, Callable[[], None]], args: argparse.Namespace, on_round: Callable[[int], None]
) -> tuple[dict[str, list[float]], int]:
    """Per-step times of each side, as ``timing.time_steps``, with the device synchronised around each timed call
    (and after each step while the steps per call are counted)."""
    sync = synchronizer(args.device)

    def synced(step: Callable[[], None]) -> Callable[[], None]:
        def call() -> None:
            step()
            sync()

        return call

    count = steps_per_call({impl: synced(s) for impl, s in steps.items()} if sync else steps, args.min_call_ms / 1e3)
    calls = {impl: repeated(step, count) for impl, step in steps.items()}
    times = time_alternating(calls, args.repeats, args.warmup, synchronize=sync, on_round=on_round)
    return {impl: [t / count for t in values] for impl, values in times.items()}, count


def profile_steps(step: Callable[[], None], count: int, device: str) -> dict[str, tuple[float, int]]:
    """``{operator: (self time in ms per step, calls per step)}`` of ``count`` steps under torch.profiler (device
    time on CUDA, CPU time otherwise)."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as profiler:
        for _ in range(count):
            step()
        if device == "cuda":
            torch.cuda.synchronize()
    out = {}
    for event in profiler.key_averages():
        self_us = event.self_device_time_total if device == "cuda" else event.self_cpu_time_total
        if self_us > 0:
            out[event.key] = (self_us / 1e3 / count, round(event.count / count))
    return out


def profile_pair(
    steps: Mapping[str, Callable[[], None]], reference: str, args: argparse.Namespace
) -> list[dict[str, float | int | str]]:
    """Operators of ours and the reference by self time per step, the largest ``--profile-rows`` of either side."""
    ours = profile_steps(steps[OURS], args.profile, args.device)
    ref = profile_steps(steps[reference], args.profile, args.device)
    names = sorted(set(ours) | set(ref), key=lambda n: -max(ours.get(n, (0, 0))[0], ref.get(n, (0, 0))[0]))
    rows = []
    for name in names[: args.profile_rows]:
        (ours_ms, ours_calls), (ref_ms, ref_calls) = ours.get(name, (0.0, 0)), ref.get(name, (0.0, 0))
        rows.append(dict(op=name, ours_ms=ours_ms, ours_calls=ours_calls, ref_ms=ref_ms, ref_calls=ref_calls))
    rows.append(
        dict(
            op="total (all operators)",
            ours_ms=sum(ms for ms, _ in ours.values()),
            ours_calls=sum(calls for _, calls in ours.values()),
            ref_ms=sum(ms for ms, _ in ref.values()),
            ref_calls=sum(calls for _, calls in ref.values()),
        )
    )
    return rows


# --- shared by all pairs ----------------------------------------------------------------------------------------------


def benchmark_pair(key: str, args: argparse.Namespace, on_round: Callable[[int], None]) -> list[dict]:
    generator = torch.Generator().manual_seed(args.seed + 1)
    if key == "gpt":
        models = build_gpt(args)
        batch = language_model_batch(args, models[HF].config.vocab_size, generator)
        config, reference = args.gpt_config, HF
    else:
        models = build_bert(args) if key == "bert" else build_lora(args)
        batch = classification_batch(args, 30522, generator)
        config, reference = args.bert_config, HF if key == "bert" else PEFT
    batch = batch.to(args.device)
    models = {impl: model.to(args.device) for impl, model in models.items()}
    difference = check_parity(key, models, batch)
    models = {impl: model.to(DTYPES[args.dtype]) for impl, model in models.items()}
    steps = {impl: make_step(impl, model, batch) for impl, model in models.items()}
    times, count = time_pair(steps, args, on_round)
    shape = f"{batch.input_ids.size(0)}x{batch.input_ids.size(1)}, {batch.tokens} tok"
    row = {
        "pair": key,
        "reference": reference,
        "config": config,
        "input": shape,
        "parameters_ours": parameter_count(models[OURS]),
        "parameters_reference": parameter_count(models[reference]),
        "steps_per_call": count,
        "tokens_per_step": batch.tokens,
        **pair_fields(times, OURS, reference, CONTROL if args.control else None),
        "max_relative_output_difference": difference,
        "step_times_s": times,  # per side, per round, in the order timed
    }
    row["ours_tokens_per_s"] = batch.tokens / row["ours_median_step_s"]
    row["reference_tokens_per_s"] = batch.tokens / row["reference_median_step_s"]
    hf_model = models[HF] if key != "lora" else None
    if hf_model is not None:
        row["attention_implementation"] = hf_model.config._attn_implementation
    if args.profile:
        row["profile"] = profile_pair(steps, reference, args)
    return [row]


def render_profile(console: Console, row: dict) -> None:
    table = Table(title=f"{row['pair']}: self time per step, ours and {row['reference']} ({row['config']})")
    for column in ("operator", "ours ms", "ours calls", "ref ms", "ref calls", "ours - ref ms"):
        table.add_column(column, justify="left" if column == "operator" else "right")
    for op in row["profile"]:
        table.add_row(
            op["op"],
            f"{op['ours_ms']:.1f}",
            str(op["ours_calls"]),
            f"{op['ref_ms']:.1f}",
            str(op["ref_calls"]),
            f"{op['ours_ms'] - op['ref_ms']:+.1f}",
        )
    console.print(table)


def render(console: Console, env: dict, rows: list[dict], args: argparse.Namespace) -> None:
    console.print(describe_environment(env, list(VERSIONS)))
    table = Table(
        title=f"training step, {args.dtype}, {args.device}; dropout {args.dropout} everywhere; median of "
        f"{args.repeats} alternating calls after {args.warmup} untimed rounds"
    )
    columns = ("pair", "reference", "config", "input", "params", "ours ms (IQR)", "ref ms (IQR)", "ours tok/s")
    columns += ("ref tok/s", "ours/ref (q1-q3)") + (("A/A (q1-q3)",) if args.control else ())
    for column in columns:
        table.add_column(column, justify="left" if column in ("pair", "reference", "config", "input") else "right")
    for row in rows:
        cells = []
        if args.control:
            cells = [
                f"{row['control_over_reference']:.3f}x ({row['control_ratio_q1']:.3f}-{row['control_ratio_q3']:.3f})"
            ]
        parameters = f"{row['parameters_ours'] / 1e6:.2f}M"
        if row["parameters_reference"] != row["parameters_ours"]:
            parameters += f" / {row['parameters_reference'] / 1e6:.2f}M"
        table.add_row(
            row["pair"],
            row["reference"],
            row["config"],
            row["input"],
            parameters,
            f"{1e3 * row['ours_median_step_s']:.1f} ({1e3 * row['ours_iqr_step_s']:.1f})",
            f"{1e3 * row['reference_median_step_s']:.1f} ({1e3 * row['reference_iqr_step_s']:.1f})",
            f"{row['ours_tokens_per_s']:,.0f}",
            f"{row['reference_tokens_per_s']:,.0f}",
            f"{row['ours_over_reference']:.3f}x ({row['ratio_q1']:.3f}-{row['ratio_q3']:.3f})",
            *cells,
        )
    console.print(table)
    attention = sorted({row["attention_implementation"] for row in rows if "attention_implementation" in row})
    console.print(
        "ours/ref: median over rounds of t_ref / t_ours (> 1: ours faster), with the quartiles of the per-round "
        "ratios. params: trained parameters (tied ones once). tok/s: non-padding tokens per second of training steps "
        "(zero_grad, forward in train mode, cross-entropy, backward, AdamW). Before timing, the eval-mode float32 "
        f"outputs of ours and the reference agreed within {max(r['max_relative_output_difference'] for r in rows):.1e} "
        "(relative) on every pair."
        + (f" transformers' attention: {', '.join(attention)}." if attention else "")
        + (
            " A/A: the same ratio between the reference and a second copy of it, the noise floor."
            if args.control
            else ""
        )
    )
    for row in rows:
        if "profile" in row:
            render_profile(console, row)


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    extra = {"device": f"{torch.cuda.get_device_name()} (host {cpu_name()})"} if args.device == "cuda" else None
    jobs = [(key, lambda on_round, key=key: benchmark_pair(key, args, on_round)) for key in args.pairs]
    run_and_report(
        args, VERSIONS, jobs, lambda console, env, rows: render(console, env, rows, args), 190, extra_environment=extra
    )


if __name__ == "__main__":
    main()
