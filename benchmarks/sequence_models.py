"""Training-step speed of paperzoo's sequence models against torch and Hugging Face, in one process.

Four pairs, each ours against the library implementation it is proved equal to:

- ``transformer``: one training step of ``paperzoo.sequence``'s Transformer (``transformer_small`` or
  ``transformer_base``, one embedding for source and target, tied to the output projection) against (a)
  ``torch.nn.Transformer`` (post-LN, ``batch_first``) inside the same embedding (scaled by sqrt(d)), sinusoidal
  positions and tied output projection, and (b) Hugging Face's ``MarianMTModel`` built from a ``MarianConfig`` of the
  same size (shared and tied embeddings, ``scale_embedding``, static sinusoidal positions, ReLU, the same dropout). A
  step is ``zero_grad``, forward with teacher forcing, cross-entropy with label smoothing 0.1 over the non-padding
  target tokens, backward and an Adam step (the paper's betas (0.9, 0.98) and eps 1e-9).
- ``mha``: ``MultiHeadAttention`` against ``torch.nn.MultiheadAttention(batch_first=True)``, self-attention with a
  key padding mask, forward and backward.
- ``lstm`` and ``gru``: ``LSTM``/``GRU`` against ``torch.nn.LSTM``/``torch.nn.GRU`` (2 layers, optionally
  bidirectional), forward and backward on a ``(B, T, H)`` input.

All sides get the same weights: torch's random initialisation copied into ours (``from_torch_state_dict`` for the
Transformer, a plain ``load_state_dict`` for the layers) and ours into Marian. Marian's layers are the paper's post-LN
layers with q/k/v in separate matrices, and its fixed positional table puts the sines in the first half of the model
dimensions and the cosines in the second half where ours interleaves them: a fixed permutation of the model dimension,
so our weights, split into q/k/v and permuted, make Marian compute our function with its own table. Before anything is
timed, every pair is checked to compute the same function in eval mode on the benchmark's own batch.

The steps of ours and the references alternate, with the order rotated every round, after ``--warmup`` untimed rounds
(``timing.time_alternating``); a timed call runs as many steps back to back as make it last ``--min-call-ms`` (the
same number for every side of a pair; the recurrent and attention steps are short), and a step's time is the call's
divided by that number. Reported per pair: the median step time with its interquartile range, target tokens per
second (non-padding target tokens; the Transformer) or sequences per second (the layers), and the throughput ratio
ours/reference, the median over rounds of ``t_reference / t_ours`` (> 1 means ours is faster) with the quartiles of
the per-round ratios. ``--control`` adds a second copy of the torch reference (an A/A test).

Example::

    python benchmarks/sequence_models.py --pairs transformer --size base --batch-size 32 --repeats 10
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
import transformers
from rich.console import Console
from rich.table import Table
from timing import (
    add_alternating_arguments,
    check_outputs,
    describe_environment,
    parameter_count,
    repeated,
    run_and_report,
    steps_per_call,
    summarize,
    time_alternating,
)
from torch import nn
from transformers import MarianConfig, MarianMTModel

from paperzoo.sequence import GRU, LSTM, MultiHeadAttention, Transformer, create_model
from paperzoo.sequence.models.transformer import from_torch_state_dict

OURS = "paperzoo"
TORCH = "torch"
MARIAN = "HF Marian"
CONTROL = "control"  # a second copy of the torch reference, timed with --control
VERSIONS = {"torch": torch.__version__, "transformers": transformers.__version__}
PAD, BOS, EOS = 0, 1, 2  # special tokens of the random batches; every other id is a word
LABEL_SMOOTHING = 0.1  # the paper's epsilon_ls (section 5.4)
# largest |ours - reference| of the eval-mode outputs, relative to the largest |reference output|, before timing
PARITY_TOL = 1e-4
# the Transformer sizes: our registered variant, its width and heads (also the mha pair's; checked against the
# variant when it is built) and the vocabulary (one, shared by source and target)
SIZES = {"small": ("transformer_small", 256, 4, 8000), "base": ("transformer_base", 512, 8, 32000)}
PAIRS = {
    "transformer": "Transformer training step vs torch.nn.Transformer and Hugging Face's MarianMTModel",
    "mha": "MultiHeadAttention vs torch.nn.MultiheadAttention, forward + backward",
    "lstm": "LSTM vs torch.nn.LSTM, forward + backward",
    "gru": "GRU vs torch.nn.GRU, forward + backward",
}


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
        "--size",
        choices=list(SIZES),
        default="small",
        help="Transformer size: small = transformer_small (d 256, 4 heads, 3+3 layers, d_ff 1024, vocabulary 8000), "
        "base = transformer_base, the paper's base model (d 512, 8 heads, 6+6 layers, d_ff 2048, vocabulary 32000); "
        "the mha pair uses the same width and heads",
    )
    parser.add_argument(
        "--batch-size", type=int, default=32, help="sentences per Transformer step, sequences per mha/lstm/gru step"
    )
    parser.add_argument(
        "--src-len",
        type=int,
        default=24,
        help="padded source length; source lengths are drawn from [src-len / 2, src-len], one sentence at full "
        "length, and the rest is padding (also the mha pair's sequence length and padding)",
    )
    parser.add_argument(
        "--tgt-len",
        type=int,
        default=24,
        help="padded target length (BOS + sentence, the labels the sentence + EOS), drawn like the source",
    )
    parser.add_argument("--seq-len", type=int, default=50, help="time steps T of the lstm/gru input (B, T, H)")
    parser.add_argument(
        "--hidden-size", type=int, default=256, help="input and hidden width H of the lstm/gru pairs (2 layers)"
    )
    parser.add_argument(
        "--bidirectional", action="store_true", help="bidirectional lstm/gru on both sides (output 2H wide)"
    )
    parser.add_argument(
        "--dropout",
        type=float,
        default=0.1,
        help="dropout everywhere, on every side: the Transformer's P_drop (embeddings, sub-layer outputs, attention "
        "weights, after the ReLU), the mha attention weights, and between the lstm/gru layers",
    )
    add_alternating_arguments(parser, repeats=20, warmup=2, reference="torch")
    parser.add_argument(
        "--json", "--output", type=Path, metavar="PATH", help="also write the environment and results as JSON here"
    )
    args = parser.parse_args()
    args.pairs = [name.strip() for name in args.pairs.split(",")]
    unknown = [name for name in args.pairs if name not in PAIRS]
    if unknown:
        parser.error(f"unknown pairs {unknown}; choose from {', '.join(PAIRS)}")
    if args.repeats < 2 or args.warmup < 1:
        parser.error("--repeats must be at least 2 (for quartiles) and --warmup at least 1 (first-call allocations)")
    if min(args.src_len, args.tgt_len) < 2 or not 0.0 <= args.dropout < 1.0:
        parser.error("--src-len and --tgt-len must be at least 2, and --dropout in [0, 1)")
    return args


# --- the Transformer pair ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TranslationBatch:
    """A padded batch of random sentence pairs: source, target input (BOS + sentence) and labels (sentence + EOS)."""

    src: torch.Tensor  # (B, S)
    tgt_in: torch.Tensor  # (B, T)
    labels: torch.Tensor  # (B, T), PAD where tgt_in is PAD

    @property
    def target_tokens(self) -> int:
        """Non-padding target tokens: the tokens a step learns to predict."""
        return int((self.labels != PAD).sum())


def random_lengths(batch_size: int, length: int, generator: torch.Generator) -> torch.Tensor:
    """``batch_size`` lengths in ``[length // 2, length]``, the first one ``length`` (so the padded length is used)."""
    lengths = torch.randint(length // 2, length + 1, (batch_size,), generator=generator)
    lengths[0] = length
    return lengths


def padding_mask(lengths: torch.Tensor, length: int) -> torch.Tensor:
    """True at the padding: position ``t >= lengths[b]``, ``(B, length)``."""
    return torch.arange(length)[None, :] >= lengths[:, None]


def translation_batch(
    batch_size: int, src_len: int, tgt_len: int, vocab_size: int, generator: torch.Generator
) -> TranslationBatch:
    """Random words, each sentence ending in EOS, lengths from :func:`random_lengths`, padded with PAD."""
    src_lengths = random_lengths(batch_size, src_len, generator)
    src = torch.randint(EOS + 1, vocab_size, (batch_size, src_len), generator=generator)
    src[torch.arange(batch_size), src_lengths - 1] = EOS
    src = src.masked_fill(padding_mask(src_lengths, src_len), PAD)
    tgt_lengths = random_lengths(batch_size, tgt_len, generator)
    labels = torch.randint(EOS + 1, vocab_size, (batch_size, tgt_len), generator=generator)
    labels[torch.arange(batch_size), tgt_lengths - 1] = EOS
    target_padding = padding_mask(tgt_lengths, tgt_len)
    labels = labels.masked_fill(target_padding, PAD)
    tgt_in = torch.cat([torch.full((batch_size, 1), BOS), labels[:, :-1]], dim=1).masked_fill(target_padding, PAD)
    return TranslationBatch(src, tgt_in, labels)


def sinusoids(length: int, d_model: int) -> torch.Tensor:
    """The paper's positional table (section 3.5), ``(length, d)``: sin at dimension 2i, cos at 2i + 1."""
    position = torch.arange(length, dtype=torch.float64)[:, None]  # (L, 1)
    frequency = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float64) * (-math.log(10000.0) / d_model))
    table = torch.empty(length, d_model, dtype=torch.float64)
    table[:, 0::2] = torch.sin(position * frequency)  # (L, d / 2)
    table[:, 1::2] = torch.cos(position * frequency)
    return table.float()


class TorchTranslator(nn.Module):
    """``torch.nn.Transformer`` with the paper's input and output around it, as a user of torch would write it.

    One embedding for source and target, scaled by sqrt(d), plus the sinusoidal positions, dropout; the post-LN
    ``nn.Transformer`` (``batch_first``, ReLU) with the padding masks and a causal target mask; the output projection
    tied to the embedding. ``nn.Transformer`` builds stacks that end in a LayerNorm, which the paper's post-LN model
    (and ours) does not have, so its encoder and decoder are given as ``custom_encoder``/``custom_decoder`` without
    one. The embedding is drawn N(0, 1/d), as ours; everything else is torch's initialisation.
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int,
        num_heads: int,
        num_layers: int,
        dim_feedforward: int,
        dropout: float,
        max_len: int,
    ) -> None:
        super().__init__()
        self.d_model = d_model
        self.embed = nn.Embedding(vocab_size, d_model, padding_idx=PAD)
        self.register_buffer("positions", sinusoids(max_len, d_model), persistent=False)
        self.dropout = nn.Dropout(dropout)
        layer_args = dict(dim_feedforward=dim_feedforward, dropout=dropout, batch_first=True)
        # no nested tensors: they only change the eval-mode fast path (zeros at the padding), never a training step
        encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(d_model, num_heads, **layer_args), num_layers, enable_nested_tensor=False
        )
        decoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(d_model, num_heads, **layer_args), num_layers)
        self.transformer = nn.Transformer(
            d_model, num_heads, custom_encoder=encoder, custom_decoder=decoder, **layer_args
        )
        self.output_proj = nn.Linear(d_model, vocab_size, bias=False)
        self.output_proj.weight = self.embed.weight
        nn.init.normal_(self.embed.weight, std=d_model**-0.5)
        with torch.no_grad():
            self.embed.weight[PAD].zero_()

    def _embed(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.embed(tokens) * math.sqrt(self.d_model) + self.positions[: tokens.shape[1]])

    def forward(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        src_padding, tgt_padding = src == PAD, tgt == PAD
        length = tgt.shape[1]
        causal = torch.ones(length, length, dtype=torch.bool, device=tgt.device).triu(1)  # True: may not attend
        hidden = self.transformer(
            self._embed(src),
            self._embed(tgt),
            tgt_mask=causal,
            src_key_padding_mask=src_padding,
            tgt_key_padding_mask=tgt_padding,
            memory_key_padding_mask=src_padding,
            tgt_is_causal=True,
        )  # (B, T, d)
        return self.output_proj(hidden)  # (B, T, V)


def marian_config(ours: Transformer) -> MarianConfig:
    """A MarianConfig of our model's size: the paper's post-LN layers, shared and tied embeddings scaled by sqrt(d),
    static sinusoidal positions, ReLU, our dropout on the same three places, no layer drop."""
    c = ours.config
    return MarianConfig(
        vocab_size=c.tgt_vocab_size,
        decoder_vocab_size=c.tgt_vocab_size,
        d_model=c.d_model,
        encoder_layers=c.num_encoder_layers,
        decoder_layers=c.num_decoder_layers,
        encoder_attention_heads=c.num_heads,
        decoder_attention_heads=c.num_heads,
        encoder_ffn_dim=c.dim_feedforward,
        decoder_ffn_dim=c.dim_feedforward,
        activation_function="relu",
        dropout=c.dropout,
        attention_dropout=c.dropout,
        activation_dropout=c.dropout,
        encoder_layerdrop=0.0,
        decoder_layerdrop=0.0,
        max_position_embeddings=c.max_len,
        scale_embedding=True,
        share_encoder_decoder_embeddings=True,
        tie_word_embeddings=True,
        pad_token_id=PAD,
        bos_token_id=BOS,
        eos_token_id=EOS,
        forced_eos_token_id=EOS,
        decoder_start_token_id=BOS,
        use_cache=False,
    )


def marian_state_dict(ours: Transformer) -> dict[str, torch.Tensor]:
    """Our weights in Marian's names and layout, so that Marian with its own positional table computes our function.

    Marian's positional table holds at dimension m what ours holds at ``order[m]`` (its sines first, then its
    cosines; ours interleaves them). Every operation of the model either acts on the model dimension elementwise
    (additions, LayerNorm) or is a matrix, so permuting that dimension in every weight that reads it (columns) or
    writes it (rows, biases, LayerNorm affines) gives the same logits. The attention's own head dimensions and the
    feed-forward's inner one are not touched. Our packed ``in_proj_weight`` is split into Marian's q/k/v projections.
    """
    d = ours.config.d_model
    order = torch.cat([torch.arange(0, d, 2), torch.arange(1, d, 2)])
    state = ours.state_dict()
    marian: dict[str, torch.Tensor] = {}

    def reads(name: str) -> torch.Tensor:  # a matrix whose input is the model dimension
        return state[name][:, order]

    def writes(name: str) -> torch.Tensor:  # a matrix, bias or affine whose output is the model dimension
        return state[name][order]

    def attention(ours_prefix: str, marian_prefix: str) -> None:
        weights = state[f"{ours_prefix}.in_proj_weight"][:, order].chunk(3)  # 3 x (d, d)
        biases = state[f"{ours_prefix}.in_proj_bias"].chunk(3)  # 3 x (d,)
        for projection, weight, bias in zip(("q_proj", "k_proj", "v_proj"), weights, biases, strict=True):
            marian[f"{marian_prefix}.{projection}.weight"] = weight
            marian[f"{marian_prefix}.{projection}.bias"] = bias
        marian[f"{marian_prefix}.out_proj.weight"] = writes(f"{ours_prefix}.out_proj.weight")
        marian[f"{marian_prefix}.out_proj.bias"] = writes(f"{ours_prefix}.out_proj.bias")

    def feed_forward_and_norms(ours_prefix: str, marian_prefix: str, norms: Mapping[str, str]) -> None:
        marian[f"{marian_prefix}.fc1.weight"] = reads(f"{ours_prefix}.linear1.weight")
        marian[f"{marian_prefix}.fc1.bias"] = state[f"{ours_prefix}.linear1.bias"]
        marian[f"{marian_prefix}.fc2.weight"] = writes(f"{ours_prefix}.linear2.weight")
        marian[f"{marian_prefix}.fc2.bias"] = writes(f"{ours_prefix}.linear2.bias")
        for ours_norm, marian_norm in norms.items():
            for kind in ("weight", "bias"):
                marian[f"{marian_prefix}.{marian_norm}.{kind}"] = writes(f"{ours_prefix}.{ours_norm}.{kind}")

    embedding = reads("src_embed.weight")  # (V, d); shared with the target embedding and the output projection
    for name in ("model.shared", "model.encoder.embed_tokens", "model.decoder.embed_tokens", "lm_head"):
        marian[f"{name}.weight"] = embedding
    for i in range(ours.config.num_encoder_layers):
        attention(f"encoder.layers.{i}.self_attn", f"model.encoder.layers.{i}.self_attn")
        norms = {"norm1": "self_attn_layer_norm", "norm2": "final_layer_norm"}
        feed_forward_and_norms(f"encoder.layers.{i}", f"model.encoder.layers.{i}", norms)
    for i in range(ours.config.num_decoder_layers):
        attention(f"decoder.layers.{i}.self_attn", f"model.decoder.layers.{i}.self_attn")
        attention(f"decoder.layers.{i}.cross_attn", f"model.decoder.layers.{i}.encoder_attn")
        norms = {"norm1": "self_attn_layer_norm", "norm2": "encoder_attn_layer_norm", "norm3": "final_layer_norm"}
        feed_forward_and_norms(f"decoder.layers.{i}", f"model.decoder.layers.{i}", norms)
    return marian


def build_transformers(args: argparse.Namespace) -> dict[str, nn.Module]:
    """Ours, torch's (and with ``--control`` a copy) and Marian, all with the weights of torch's initialisation."""
    variant, d_model, num_heads, vocab_size = SIZES[args.size]
    torch.manual_seed(0)
    ours = create_model(
        variant,
        src_vocab_size=vocab_size,
        tgt_vocab_size=vocab_size,
        share_embeddings=True,
        pad_id=PAD,
        dropout=args.dropout,
    )
    c = ours.config
    size = (c.d_model, c.num_heads, c.num_encoder_layers, c.dim_feedforward, c.dropout, c.max_len)
    if (c.d_model, c.num_heads) != (d_model, num_heads) or c.num_encoder_layers != c.num_decoder_layers:
        raise RuntimeError(f"{variant} is not the size this benchmark describes: {c}")
    references: dict[str, nn.Module] = {TORCH: TorchTranslator(vocab_size, *size)}
    if args.control:
        references[CONTROL] = TorchTranslator(vocab_size, *size)
        references[CONTROL].load_state_dict(references[TORCH].state_dict())
    source = references[TORCH]
    missing, unexpected = ours.load_state_dict(from_torch_state_dict(source.transformer.state_dict()), strict=False)
    if unexpected or set(missing) != {"src_embed.weight", "tgt_embed.weight", "output_proj.weight"}:
        raise RuntimeError(f"torch's layers do not fill ours: missing {missing}, unexpected {unexpected}")
    with torch.no_grad():
        ours.src_embed.weight.copy_(source.embed.weight)  # shared with tgt_embed and output_proj

    marian = MarianMTModel(marian_config(ours))
    missing, unexpected = marian.load_state_dict(marian_state_dict(ours), strict=False)
    # Marian's positional tables are its own (fixed, not trained); final_logits_bias is a zero buffer, not trained
    expected_missing = {"model.encoder.embed_positions.weight", "model.decoder.embed_positions.weight"}
    if unexpected or not set(missing) <= expected_missing | {"final_logits_bias"}:
        raise RuntimeError(f"ours does not fill Marian: missing {missing}, unexpected {unexpected}")
    if not (marian.lm_head.weight is marian.model.shared.weight is marian.model.decoder.embed_tokens.weight):
        raise RuntimeError("Marian's embeddings and output projection are not tied")
    if marian.final_logits_bias.abs().max() != 0:
        raise RuntimeError("Marian's final_logits_bias is not zero")
    references[MARIAN] = marian
    return {OURS: ours, **references}


def translation_logits(model: nn.Module, batch: TranslationBatch) -> torch.Tensor:
    """Next-token logits ``(B, T, V)`` with teacher forcing, each model called the way its library intends."""
    if isinstance(model, MarianMTModel):
        return model(
            input_ids=batch.src,
            attention_mask=(batch.src != PAD).long(),
            decoder_input_ids=batch.tgt_in,
            decoder_attention_mask=(batch.tgt_in != PAD).long(),
            use_cache=False,
        ).logits
    return model(batch.src, batch.tgt_in)


def make_translation_step(model: nn.Module, batch: TranslationBatch) -> Callable[[], None]:
    """One training step: zero_grad, forward, label-smoothed cross-entropy over the non-padding targets, backward,
    Adam (the paper's betas and epsilon; the learning rate does not change the time)."""
    parameters = [p for p in model.parameters() if p.requires_grad]  # not Marian's fixed positional tables
    optimizer = torch.optim.Adam(parameters, lr=1e-4, betas=(0.9, 0.98), eps=1e-9)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        logits = translation_logits(model, batch)  # (B, T, V)
        loss = F.cross_entropy(
            logits.flatten(0, 1), batch.labels.flatten(), ignore_index=PAD, label_smoothing=LABEL_SMOOTHING
        )
        loss.backward()
        optimizer.step()

    return step


def check_translators(models: Mapping[str, nn.Module], batch: TranslationBatch) -> float:
    """Eval-mode logits of every model on ``batch``, at every position, compared by :func:`check_outputs`."""
    with torch.no_grad():
        outputs = {impl: translation_logits(model.eval(), batch) for impl, model in models.items()}
    return check_outputs(outputs, OURS, PARITY_TOL)


# --- the layer pairs: multi-head attention, LSTM, GRU -----------------------------------------------------------------


def make_backward_step(
    forward: Callable[[], torch.Tensor], module: nn.Module, inputs: torch.Tensor, grad: torch.Tensor
) -> Callable[[], None]:
    """Zero the gradients, run ``forward`` and back-propagate the fixed upstream gradient ``grad`` into the
    parameters and the input, as a layer inside a network would be."""

    def step() -> None:
        module.zero_grad(set_to_none=True)
        inputs.grad = None
        forward().backward(grad)

    return step


def build_attention(args: argparse.Namespace, generator: torch.Generator) -> tuple[dict, dict, str, float]:
    """Ours and torch's multi-head self-attention of the Transformer's width, with a key padding mask.

    Returns the steps, the modules, a description of the input and the parity check's largest difference.
    """
    _, d, heads, _ = SIZES[args.size]
    torch.manual_seed(0)
    references = {TORCH: nn.MultiheadAttention(d, heads, dropout=args.dropout, batch_first=True)}
    if args.control:
        references[CONTROL] = nn.MultiheadAttention(d, heads, dropout=args.dropout, batch_first=True)
    ours = MultiHeadAttention(d, heads, dropout=args.dropout)
    for module in (ours, *references.values()):
        module.load_state_dict(references[TORCH].state_dict())  # strict: the same names and shapes
    x = torch.randn(args.batch_size, args.src_len, d, generator=generator, requires_grad=True)  # (B, S, d)
    mask = padding_mask(random_lengths(args.batch_size, args.src_len, generator), args.src_len)  # (B, S)
    grad = torch.randn(args.batch_size, args.src_len, d, generator=generator)

    def call(module: nn.Module) -> Callable[[], torch.Tensor]:
        if isinstance(module, nn.MultiheadAttention):
            # without the averaged weights, as nn.TransformerEncoderLayer calls it (ours does not compute them)
            return lambda: module(x, x, x, key_padding_mask=mask, need_weights=False)[0]
        return lambda: module(x, x, x, key_padding_mask=mask)[0]

    models = {OURS: ours, **references}
    with torch.no_grad():
        outputs = {impl: call(module.eval())() for impl, module in models.items()}
    difference = check_outputs(outputs, OURS, PARITY_TOL)
    steps = {impl: make_backward_step(call(module.train()), module, x, grad) for impl, module in models.items()}
    shape = f"{args.batch_size}x{args.src_len}x{d}, h={heads}"
    return steps, models, shape, difference


def build_recurrent(kind: str, args: argparse.Namespace, generator: torch.Generator) -> tuple[dict, dict, str, float]:
    """Ours and torch's two-layer LSTM or GRU on a ``(B, T, H)`` input; returns as :func:`build_attention`."""
    ours_class, torch_class = {"lstm": (LSTM, nn.LSTM), "gru": (GRU, nn.GRU)}[kind]
    h = args.hidden_size
    kwargs = dict(num_layers=2, batch_first=True, dropout=args.dropout, bidirectional=args.bidirectional)
    torch.manual_seed(0)
    references = {TORCH: torch_class(h, h, **kwargs)}
    if args.control:
        references[CONTROL] = torch_class(h, h, **kwargs)
    ours = ours_class(h, h, **kwargs)
    for module in (ours, *references.values()):
        module.load_state_dict(references[TORCH].state_dict())  # strict: torch's names and shapes
    x = torch.randn(args.batch_size, args.seq_len, h, generator=generator, requires_grad=True)  # (B, T, H)
    directions = 2 if args.bidirectional else 1
    grad = torch.randn(args.batch_size, args.seq_len, directions * h, generator=generator)  # (B, T, DH)

    def call(module: nn.Module) -> Callable[[], torch.Tensor]:
        return lambda: module(x)[0]

    models = {OURS: ours, **references}
    with torch.no_grad():
        outputs = {impl: call(module.eval())() for impl, module in models.items()}
    difference = check_outputs(outputs, OURS, PARITY_TOL)
    steps = {impl: make_backward_step(call(module.train()), module, x, grad) for impl, module in models.items()}
    shape = f"{args.batch_size}x{args.seq_len}x{h}, L=2{', bi' if args.bidirectional else ''}"
    return steps, models, shape, difference


# --- shared by all pairs ----------------------------------------------------------------------------------------------


def benchmark_pair(key: str, args: argparse.Namespace, on_round: Callable[[int], None]) -> list[dict]:
    generator = torch.Generator().manual_seed(0)
    if key == "transformer":
        vocab_size = SIZES[args.size][-1]
        batch = translation_batch(args.batch_size, args.src_len, args.tgt_len, vocab_size, generator)
        models = build_transformers(args)
        difference = check_translators(models, batch)
        steps = {impl: make_translation_step(model.train(), batch) for impl, model in models.items()}
        work, unit = batch.target_tokens, "tok"
        shape = f"{args.batch_size}x{args.src_len}->{args.tgt_len}, {work} tok"
    else:
        if key == "mha":
            steps, models, shape, difference = build_attention(args, generator)
        else:
            steps, models, shape, difference = build_recurrent(key, args, generator)
        work, unit = args.batch_size, "seq"
    count = steps_per_call(steps, args.min_call_ms / 1e3)
    calls = {impl: repeated(step, count) for impl, step in steps.items()}
    times = time_alternating(calls, args.repeats, args.warmup, on_round=on_round)
    times = {impl: [t / count for t in values] for impl, values in times.items()}  # per step
    stats = summarize(times, OURS)
    # t_control / t_torch, paired by round like ours/ref: equal code, so its distance from 1.0 is noise
    control = summarize({TORCH: times[TORCH], CONTROL: times[CONTROL]}, TORCH)[CONTROL] if args.control else None
    rows = []
    for reference in (impl for impl in models if impl not in (OURS, CONTROL)):
        row = {
            "pair": key,
            "reference": reference,
            "input": shape,
            "parameters_ours": parameter_count(models[OURS]),
            "parameters_reference": parameter_count(models[reference]),
            "steps_per_call": count,
            "work_per_step": work,
            "work_unit": unit,
            "ours_median_step_s": stats[OURS]["median"],
            "ours_iqr_step_s": stats[OURS]["iqr"],
            "reference_median_step_s": stats[reference]["median"],
            "reference_iqr_step_s": stats[reference]["iqr"],
            "ours_per_s": work / stats[OURS]["median"],
            "reference_per_s": work / stats[reference]["median"],
            "ours_over_reference": stats[reference]["ratio"],
            "ratio_q1": stats[reference]["ratio_q1"],
            "ratio_q3": stats[reference]["ratio_q3"],
            "max_relative_output_difference": difference,
        }
        if isinstance(models[reference], MarianMTModel):
            row["attention_implementation"] = models[reference].config._attn_implementation
        if control is not None:
            first = reference == TORCH
            row["control_over_reference"] = control["ratio"] if first else None
            row["control_ratio_q1"] = control["ratio_q1"] if first else None
            row["control_ratio_q3"] = control["ratio_q3"] if first else None
        rows.append(row)
    return rows


def render(console: Console, env: dict, rows: list[dict], args: argparse.Namespace) -> None:
    console.print(describe_environment(env, list(VERSIONS)))
    table = Table(
        title=f"float32, cpu; dropout {args.dropout} everywhere; median of {args.repeats} alternating calls after "
        f"{args.warmup} untimed rounds"
    )
    columns = ("pair", "reference", "input", "params", "ours ms (IQR)", "ref ms (IQR)", "ours rate", "ref rate")
    columns += ("ours/ref (q1-q3)",) + (("A/A (q1-q3)",) if args.control else ())
    for column in columns:
        table.add_column(column, justify="left" if column in ("pair", "reference", "input") else "right")
    for row in rows:
        cells = []
        if args.control:
            aa = row["control_over_reference"]
            cells = ["-" if aa is None else f"{aa:.3f}x ({row['control_ratio_q1']:.3f}-{row['control_ratio_q3']:.3f})"]
        parameters = f"{row['parameters_ours'] / 1e6:.2f}M"
        if row["parameters_reference"] != row["parameters_ours"]:
            parameters += f" / {row['parameters_reference'] / 1e6:.2f}M"
        table.add_row(
            row["pair"],
            row["reference"],
            row["input"],
            parameters,
            f"{1e3 * row['ours_median_step_s']:.1f} ({1e3 * row['ours_iqr_step_s']:.1f})",
            f"{1e3 * row['reference_median_step_s']:.1f} ({1e3 * row['reference_iqr_step_s']:.1f})",
            f"{row['ours_per_s']:,.0f} {row['work_unit']}/s",
            f"{row['reference_per_s']:,.0f} {row['work_unit']}/s",
            f"{row['ours_over_reference']:.3f}x ({row['ratio_q1']:.3f}-{row['ratio_q3']:.3f})",
            *cells,
        )
    console.print(table)
    marian = [row["attention_implementation"] for row in rows if "attention_implementation" in row]
    console.print(
        "ours/ref: median over rounds of t_ref / t_ours (> 1: ours faster), with the quartiles of the per-round "
        "ratios. tok/s: non-padding target tokens per second of training steps; seq/s: sequences per second of "
        "forward + backward. Before timing, the eval-mode outputs of ours and each reference agreed within "
        f"{max(row['max_relative_output_difference'] for row in rows):.1e} (relative) on every pair."
        + (f" Marian's attention: {marian[0]}." if marian else "")
        + (
            " A/A: the same ratio between the torch reference and a second copy of it, the noise floor."
            if args.control
            else ""
        )
    )


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    jobs = [(key, lambda on_round, key=key: benchmark_pair(key, args, on_round)) for key in args.pairs]
    run_and_report(args, VERSIONS, jobs, lambda console, env, rows: render(console, env, rows, args), width=170)


if __name__ == "__main__":
    main()
