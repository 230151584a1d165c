r"""GPT-2 from Radford et al. 2019, "Language Models are Unsupervised Multitask Learners" (OpenAI report).

A decoder-only Transformer language model: token and learned position embeddings, N pre-LN blocks of causal
multi-head self-attention and a GELU MLP, a final LayerNorm and an output layer tied to the token embedding (section
2.3: the GPT architecture of Radford et al. 2018 with the LayerNorm moved to each sub-block's input, an extra one after
the last block, and residual projections initialised with a :math:`1/\sqrt{N}` factor). Written to read like
Karpathy's nanoGPT, but with a key-value cache, left-padded batches and sampling filters.

Parameter names inside the blocks are GPT-2's (``h.{i}.ln_1``, ``attn.c_attn``, ``attn.c_proj``, ``ln_2``,
``mlp.c_fc``, ``mlp.c_proj``), so a LoRA target pattern such as ``"c_attn"`` selects the same layers here as in
``transformers``. GPT-2's checkpoints store those linear layers as ``Conv1D`` with weights of shape ``(in, out)``;
:meth:`GPT.from_hf` transposes them and :meth:`GPT.save_pretrained` transposes them back (see ``_HF_NAMES``).

Registered variants:

==============================  ======  =====  ====  =====  =====  =======  ====  ==================================
name                             vocab  block     d  heads      N  dropout  bias  source
==============================  ======  =====  ====  =====  =====  =======  ====  ==================================
``gpt2``                         50257   1024   768     12     12      0.0  yes   the paper's smallest model (124M)
``gpt2_medium``                  50257   1024  1024     16     24      0.0  yes   the paper's 345M model (355M)
``gpt_shakespeare_char``            65    256   384      6      6      0.2  no    nanoGPT's shakespeare_char config
``gpt_shakespeare_char_cpu``        65     64   128      4      4      0.0  no    nanoGPT's shakespeare_char on CPU
==============================  ======  =====  ====  =====  =====  =======  ====  ==================================
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import Tensor, nn

from paperzoo.core.errors import ConfigError, CorruptDataError
from paperzoo.llm.models.hf_io import hf_state
from paperzoo.llm.registry import register_model

# One (key, value) pair per layer, each (B, H, T_past, D).
KVCache = tuple[tuple[Tensor, Tensor], ...]

INIT_STD = 0.02  # GPT-2's initializer_range

# GPT-2's activation names and the functions they denote; "gelu_new" is the tanh approximation GPT-2 was trained with.
_ACTIVATIONS = {
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "gelu": F.gelu,
    "relu": F.relu,
    "silu": F.silu,
}


@dataclass
class GPTConfig:
    """Hyper-parameters of :class:`GPT`; the defaults are GPT-2's smallest model (124M parameters).

    Attributes:
        vocab_size: number of tokens V (GPT-2's byte-level BPE has 50257).
        block_size: the longest context, the number of learned positions (GPT-2's ``n_positions``).
        n_embd: model width d.
        n_layer: number of blocks N.
        n_head: attention heads H; must divide ``n_embd``.
        n_inner: inner width of the MLP; ``None`` is GPT-2's 4d.
        dropout: on the embeddings, the attention weights and each sub-block's output (GPT-2's ``embd_pdrop``,
            ``attn_pdrop`` and ``resid_pdrop``, one value here).
        bias: biases in the linear layers and LayerNorms (GPT-2 has them; nanoGPT trains without, a little faster).
        layer_norm_eps: LayerNorm epsilon.
        activation: MLP non-linearity by GPT-2's name: ``"gelu_new"`` (tanh-approximated GELU, GPT-2's),
            ``"gelu_pytorch_tanh"`` (the same), ``"gelu"`` (exact), ``"relu"`` or ``"silu"``.
    """

    vocab_size: int = 50257
    block_size: int = 1024
    n_embd: int = 768
    n_layer: int = 12
    n_head: int = 12
    n_inner: int | None = None
    dropout: float = 0.0
    bias: bool = True
    layer_norm_eps: float = 1e-5
    activation: str = "gelu_new"

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_embd", "n_layer", "n_head"):
            if getattr(self, name) < 1:
                raise ConfigError(f"GPTConfig.{name} is {getattr(self, name)}; it must be a positive integer")
        if self.n_embd % self.n_head:
            raise ConfigError(
                f"n_embd={self.n_embd} is not divisible by n_head={self.n_head}; choose a width that is a multiple of "
                "the number of heads"
            )
        if self.n_inner is not None and self.n_inner < 1:
            raise ConfigError(f"n_inner is {self.n_inner}; pass a positive MLP width, or None for 4 * n_embd")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout is {self.dropout}; it must be in [0, 1)")
        if self.activation not in _ACTIVATIONS:
            raise ConfigError(f"unknown activation {self.activation!r}; choose one of {', '.join(_ACTIVATIONS)}")

    @property
    def mlp_width(self) -> int:
        return self.n_inner if self.n_inner is not None else 4 * self.n_embd

    @classmethod
    def from_hf_dict(cls, d: Mapping[str, Any], **overrides: Any) -> GPTConfig:
        """The config of a Hugging Face GPT-2 ``config.json`` (or ``GPT2Config.to_dict()``), with ``overrides``.

        GPT-2's three dropout rates become one, its ``resid_pdrop``. Variants this model does not implement (cross
        attention, attention scaled by the inverse layer index, an untied output layer) raise :class:`ConfigError`.
        """
        model_type = d.get("model_type", "gpt2")
        if model_type != "gpt2":
            raise ConfigError(f"the config is of a {model_type!r} model, not GPT-2; load it with that model's class")
        unsupported = {
            "add_cross_attention": True,
            "scale_attn_by_inverse_layer_idx": True,
            "scale_attn_weights": False,
            "tie_word_embeddings": False,
        }
        for key, bad in unsupported.items():
            if d.get(key, not bad) == bad:
                raise ConfigError(f"GPT-2 configs with {key}={bad} are not supported by paperzoo's GPT")

        def get(name: str, alias: str, default: Any) -> Any:
            return d.get(name, d.get(alias, default))

        fields = dict(
            vocab_size=d.get("vocab_size", 50257),
            block_size=get("n_positions", "max_position_embeddings", 1024),
            n_embd=get("n_embd", "hidden_size", 768),
            n_layer=get("n_layer", "num_hidden_layers", 12),
            n_head=get("n_head", "num_attention_heads", 12),
            n_inner=d.get("n_inner"),
            dropout=float(d.get("resid_pdrop", 0.1)),
            bias=True,
            layer_norm_eps=float(d.get("layer_norm_epsilon", 1e-5)),
            activation=d.get("activation_function", "gelu_new"),
        )
        return cls(**{**fields, **overrides})

    def to_hf_dict(self) -> dict[str, Any]:
        """A GPT-2 ``config.json`` for ``transformers.GPT2LMHeadModel`` (biases are always there: a model without
        them is saved with zeros, see :meth:`GPT.save_pretrained`)."""
        return {
            "model_type": "gpt2",
            "architectures": ["GPT2LMHeadModel"],
            "vocab_size": self.vocab_size,
            "n_positions": self.block_size,
            "n_embd": self.n_embd,
            "n_layer": self.n_layer,
            "n_head": self.n_head,
            "n_inner": self.n_inner,
            "activation_function": self.activation,
            "resid_pdrop": self.dropout,
            "embd_pdrop": self.dropout,
            "attn_pdrop": self.dropout,
            "layer_norm_epsilon": self.layer_norm_eps,
            "initializer_range": INIT_STD,
            "scale_attn_weights": True,
            "scale_attn_by_inverse_layer_idx": False,
            "reorder_and_upcast_attn": False,
            "add_cross_attention": False,
            "tie_word_embeddings": True,
            "use_cache": True,
            # GPT-2's <|endoftext|> is its last token; other vocabularies have no such convention.
            "bos_token_id": self.vocab_size - 1 if self.vocab_size == 50257 else None,
            "eos_token_id": self.vocab_size - 1 if self.vocab_size == 50257 else None,
        }


class CausalSelfAttention(nn.Module):
    r"""Masked multi-head self-attention (Vaswani et al. 2017, section 3.2.3) as in GPT-2:

    .. math::
        [Q \,|\, K \,|\, V] = x W_{attn} + b_{attn}, \qquad
        \mathrm{head}_h = \mathrm{softmax}\Big(\frac{Q_h K_h^\top}{\sqrt{D}} + M\Big) V_h, \qquad
        y = [\mathrm{head}_1 \,|\, \dots \,|\, \mathrm{head}_H] W_{proj} + b_{proj}

    with :math:`M` the causal mask (plus padding, when there is some). Q, K and V come from one fused linear layer
    ``c_attn``, as in GPT-2. With a cache, the new keys and values are appended to the cached ones and the queries of
    the new tokens attend to all of them.

    Args:
        config: the model's hyper-parameters (``n_embd``, ``n_head``, ``dropout``, ``bias``).

    Shapes:
        - x: :math:`(B, T, d)`
        - attn_mask: :math:`(B \text{ or } 1, 1, T, T_{past} + T)` boolean, True where a query may attend, or None
        - past: a pair :math:`(B, H, T_{past}, D)`, or None
        - output: :math:`(B, T, d)` and the pair :math:`(B, H, T_{past} + T, D)` of keys and values
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.head_dim = config.n_embd // config.n_head
        self.dropout = config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(
        self, x: Tensor, attn_mask: Tensor | None, is_causal: bool, past: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)  # 3 x (B, T, d)
        q = q.view(B, T, self.n_head, self.head_dim).transpose(1, 2)  # (B, H, T, D)
        k = k.view(B, T, self.n_head, self.head_dim).transpose(1, 2)  # (B, H, T, D)
        v = v.view(B, T, self.n_head, self.head_dim).transpose(1, 2)  # (B, H, T, D)
        if past is not None:
            k = torch.cat((past[0], k), dim=2)  # (B, H, T_past + T, D)
            v = torch.cat((past[1], v), dim=2)  # (B, H, T_past + T, D)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0, is_causal=is_causal
        )  # (B, H, T, D)
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, d)
        return self.resid_dropout(self.c_proj(y)), (k, v)


class MLP(nn.Module):
    r"""GPT-2's position-wise feed-forward network: :math:`\mathrm{MLP}(x) = \mathrm{GELU}(x W_{fc} + b_{fc})
    W_{proj} + b_{proj}`, inner width 4d by default.

    Args:
        config: the model's hyper-parameters (``n_embd``, ``n_inner``, ``activation``, ``dropout``, ``bias``).

    Shapes:
        - x: :math:`(B, T, d)`
        - output: :math:`(B, T, d)`
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, config.mlp_width, bias=config.bias)
        self.act = _ACTIVATIONS[config.activation]
        self.c_proj = nn.Linear(config.mlp_width, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))


class Block(nn.Module):
    r"""One GPT-2 block (Radford et al. 2019, section 2.3), pre-LN:

    .. math::
        x \leftarrow x + \mathrm{Attn}(\mathrm{LN}_1(x)), \qquad x \leftarrow x + \mathrm{MLP}(\mathrm{LN}_2(x))

    Args:
        config: the model's hyper-parameters.

    Shapes:
        - x: :math:`(B, T, d)`
        - output: :math:`(B, T, d)` and the layer's keys and values (see :class:`CausalSelfAttention`)
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps, bias=config.bias)
        self.mlp = MLP(config)

    def forward(
        self, x: Tensor, attn_mask: Tensor | None, is_causal: bool, past: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        a, present = self.attn(self.ln_1(x), attn_mask, is_causal, past)
        x = x + a
        return x + self.mlp(self.ln_2(x)), present


# GPT-2 checkpoint names and ours ("{i}" is the block index). "conv1d": GPT-2 stores the matrix as (in, out), the
# transpose of nn.Linear's weight. The output layer is tied to wte and not listed; GPT-2's causal-mask buffers
# (attn.bias, attn.masked_bias) are not weights and are skipped.
_HF_NAMES: tuple[tuple[str, str, bool], ...] = (
    # GPT-2                                   ours                        conv1d
    ("transformer.wte.weight", "wte.weight", False),
    ("transformer.wpe.weight", "wpe.weight", False),
    ("transformer.ln_f.weight", "ln_f.weight", False),
    ("transformer.ln_f.bias", "ln_f.bias", False),
)
_HF_BLOCK_NAMES: tuple[tuple[str, str, bool], ...] = (
    ("transformer.h.{i}.ln_1.weight", "h.{i}.ln_1.weight", False),
    ("transformer.h.{i}.ln_1.bias", "h.{i}.ln_1.bias", False),
    ("transformer.h.{i}.attn.c_attn.weight", "h.{i}.attn.c_attn.weight", True),
    ("transformer.h.{i}.attn.c_attn.bias", "h.{i}.attn.c_attn.bias", False),
    ("transformer.h.{i}.attn.c_proj.weight", "h.{i}.attn.c_proj.weight", True),
    ("transformer.h.{i}.attn.c_proj.bias", "h.{i}.attn.c_proj.bias", False),
    ("transformer.h.{i}.ln_2.weight", "h.{i}.ln_2.weight", False),
    ("transformer.h.{i}.ln_2.bias", "h.{i}.ln_2.bias", False),
    ("transformer.h.{i}.mlp.c_fc.weight", "h.{i}.mlp.c_fc.weight", True),
    ("transformer.h.{i}.mlp.c_fc.bias", "h.{i}.mlp.c_fc.bias", False),
    ("transformer.h.{i}.mlp.c_proj.weight", "h.{i}.mlp.c_proj.weight", True),
    ("transformer.h.{i}.mlp.c_proj.bias", "h.{i}.mlp.c_proj.bias", False),
)
_HF_SKIPPED_SUFFIXES = (".attn.bias", ".attn.masked_bias")


def _hf_names(n_layer: int) -> list[tuple[str, str, bool]]:
    """The full name table of an ``n_layer``-block model."""
    names = list(_HF_NAMES)
    for i in range(n_layer):
        names += [(hf.format(i=i), ours.format(i=i), conv1d) for hf, ours, conv1d in _HF_BLOCK_NAMES]
    return names


class GPT(nn.Module):
    r"""The GPT-2 language model of Radford et al. 2019, "Language Models are Unsupervised Multitask Learners".

    .. math::
        h_0 = W_e[x] + W_p[\mathrm{pos}], \qquad h_l = \mathrm{Block}_l(h_{l-1}), \qquad
        \mathrm{logits} = \mathrm{LN}_f(h_N) W_e^\top

    Positions count from the first real token of each row: 0, 1, ... without padding, and ``cumsum(mask) - 1`` with
    an ``attention_mask``, so a left-padded row gets the positions (and outputs) it would get alone. With a cache the
    positions continue after the cached tokens.

    Args:
        config: the hyper-parameters; see :class:`GPTConfig`.

    Shapes:
        - input_ids: :math:`(B, T)` token ids
        - attention_mask: :math:`(B, T_{past} + T)`, 1 for a token and 0 for padding, covering the cached tokens too
        - past_key_values: per layer a pair :math:`(B, H, T_{past}, D)`, as returned with ``use_cache=True``
        - output: logits :math:`(B, T, V)`; with ``use_cache`` the pair ``(logits, past_key_values)`` whose cache
          now holds :math:`T_{past} + T` positions
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying (Press & Wolf 2017), as in GPT and GPT-2
        self.reset_parameters()

    def reset_parameters(self) -> None:
        r"""GPT-2's initialisation: N(0, 0.02) weights and embeddings, zero biases, unit LayerNorms, and the two
        residual projections of each block drawn with std :math:`0.02/\sqrt{2N}` (section 2.3, the :math:`1/\sqrt{N}`
        scaling of residual layers, with two residual branches per block)."""
        self.apply(self._init_weights)
        for block in self.h:
            for proj in (block.attn.c_proj, block.mlp.c_proj):
                nn.init.normal_(proj.weight, mean=0.0, std=INIT_STD / math.sqrt(2 * self.config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=INIT_STD)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=INIT_STD)
        elif isinstance(module, nn.LayerNorm):
            module.reset_parameters()

    def num_parameters(self, exclude_embeddings: bool = False) -> int:
        """Number of parameters, the tied output layer counted once.

        Args:
            exclude_embeddings: leave out the token and position embeddings (and so the output layer tied to the
                former), as in scaling-law counts of "non-embedding parameters".
        """
        params = {id(p): p for p in self.parameters()}
        if exclude_embeddings:
            for p in (self.wte.weight, self.wpe.weight):
                params.pop(id(p))
        return sum(p.numel() for p in params.values())

    def example_inputs(self, batch_size: int = 2) -> tuple[Tensor]:
        """Random token ids ``(batch_size, min(8, block_size))`` on the model's device."""
        length = min(8, self.config.block_size)
        return (torch.randint(0, self.config.vocab_size, (batch_size, length), device=self.wte.weight.device),)

    @staticmethod
    def _attention_mask(
        attention_mask: Tensor | None, past_len: int, new_len: int, device: torch.device
    ) -> tuple[Tensor | None, bool]:
        """``(attn_mask, is_causal)`` for scaled_dot_product_attention: True where a query may attend."""
        padded = attention_mask is not None and not bool(attention_mask.all())
        if not padded:
            if past_len == 0:
                return None, True
            if new_len == 1:  # one new token attends to every cached one
                return None, False
        q_pos = torch.arange(past_len, past_len + new_len, device=device)  # (T,), T = new_len
        k_pos = torch.arange(past_len + new_len, device=device)  # (S,)
        allowed = k_pos[None, :] <= q_pos[:, None]  # (T, S)
        if not padded:
            return allowed[None, None], False  # (1, 1, T, S)
        is_token = attention_mask.bool()[:, None, None, :]  # (B, 1, 1, S)
        # A padding query would have no key to attend to, a softmax over nothing that some attention kernels return
        # as NaN (and NaN values spread through the matmuls even where masked); it attends to itself instead. Its
        # output is never read by a real token, whose mask excludes it.
        itself = k_pos[None, :] == q_pos[:, None]  # (T, S)
        return (allowed & is_token) | itself, False  # (B, 1, T, S)

    def _hidden_states(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None,
        past_key_values: KVCache | None,
    ) -> tuple[Tensor, KVCache]:
        """The final LayerNorm's output ``(B, T, d)`` and the updated cache."""
        if input_ids.dim() != 2:
            raise ConfigError(f"input_ids has shape {tuple(input_ids.shape)}; pass token ids of shape (B, T)")
        B, T = input_ids.shape
        if past_key_values is not None and len(past_key_values) != self.config.n_layer:
            raise ConfigError(
                f"past_key_values has {len(past_key_values)} layers but the model has {self.config.n_layer}; pass "
                "the cache this model returned"
            )
        past_len = past_key_values[0][0].size(2) if past_key_values else 0
        if past_len + T > self.config.block_size:
            raise ConfigError(
                f"{past_len} cached + {T} new tokens exceed the block size {self.config.block_size}; crop the context "
                "to its last block_size tokens (generate does this)"
            )
        if attention_mask is not None and tuple(attention_mask.shape) != (B, past_len + T):
            raise ConfigError(
                f"attention_mask has shape {tuple(attention_mask.shape)} but must be (B, T_past + T) = "
                f"({B}, {past_len + T}): one entry per cached and new token"
            )
        if attention_mask is None:
            pos = torch.arange(past_len, past_len + T, device=input_ids.device)[None]  # (1, T)
        else:
            pos = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, past_len:]  # (B, T)
        attn_mask, is_causal = self._attention_mask(attention_mask, past_len, T, input_ids.device)
        x = self.drop(self.wte(input_ids) + self.wpe(pos))  # (B, T, d)
        presents = []
        for i, block in enumerate(self.h):
            x, present = block(x, attn_mask, is_causal, past_key_values[i] if past_key_values else None)
            presents.append(present)
        return self.ln_f(x), tuple(presents)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        past_key_values: KVCache | None = None,
        use_cache: bool = False,
    ) -> Tensor | tuple[Tensor, KVCache]:
        """Next-token logits ``(B, T, V)``, and with ``use_cache`` also the cache for the next call.

        Args:
            input_ids: the new tokens (those not in ``past_key_values``).
            attention_mask: 1 for tokens and 0 for (left) padding, over the cached and the new tokens; ``None`` for
                no padding.
            past_key_values: the cache returned by the previous call, or ``None``.
            use_cache: also return the keys and values of all tokens so far, a tuple of ``n_layer`` pairs
                ``(B, H, T_past + T, D)``.
        """
        hidden, presents = self._hidden_states(input_ids, attention_mask, past_key_values)
        logits = self.lm_head(hidden)  # (B, T, V)
        return (logits, presents) if use_cache else logits

    @torch.no_grad()
    def generate(
        self,
        input_ids: Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        do_sample: bool = True,
        use_cache: bool = True,
        attention_mask: Tensor | None = None,
        eos_token_id: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Continue each row of ``input_ids`` by up to ``max_new_tokens`` tokens; returns ``(B, T + new)`` ids.

        Each step divides the last logits by ``temperature``, keeps the ``top_k`` most likely tokens and then the
        nucleus of probability ``top_p`` (:func:`top_k_filter`, :func:`top_p_filter`), and samples; it takes the most
        likely token instead when ``do_sample`` is False or ``temperature`` is 0. The model runs in eval mode (no
        dropout) and is put back in its mode afterwards.

        With ``use_cache`` each step feeds only the new token and reuses the cached keys and values; without it each
        step re-runs the whole context. Contexts longer than ``block_size`` are cropped to the last ``block_size``
        tokens (then every step recomputes the cropped context, cache or not), so both ways give the same tokens.

        Args:
            input_ids: prompts ``(B, T)``, left-padded when their lengths differ.
            max_new_tokens: tokens to add.
            temperature: divides the logits; below 1 sharpens, above 1 flattens the distribution.
            top_k: sample among the k most likely tokens only.
            top_p: sample from the smallest set of most likely tokens whose probability reaches p.
            do_sample: sample; if False, greedy decoding.
            use_cache: decode with the key-value cache.
            attention_mask: ``(B, T)``, 1 for prompt tokens and 0 for the left padding.
            eos_token_id: a row that has produced this token is finished and is continued with it; generation stops
                early, returning fewer than ``max_new_tokens`` new tokens, once every row has finished.
            generator: the random number generator of the sampling, for reproducible samples.
        """
        if max_new_tokens < 0:
            raise ConfigError(f"max_new_tokens is {max_new_tokens}; pass a number of tokens >= 0")
        if temperature < 0:
            raise ConfigError(f"temperature is {temperature}; pass a value >= 0 (0 is greedy decoding)")
        greedy = not do_sample or temperature == 0
        block_size = self.config.block_size
        mask = attention_mask
        if mask is not None and tuple(mask.shape) != tuple(input_ids.shape):
            raise ConfigError(
                f"attention_mask has shape {tuple(mask.shape)} but input_ids {tuple(input_ids.shape)}; pass one "
                "entry per prompt token"
            )
        ids = input_ids
        finished = torch.zeros(ids.size(0), dtype=torch.bool, device=ids.device)
        cache: KVCache | None = None
        was_training = self.training
        self.eval()
        try:
            for _ in range(max_new_tokens):
                if cache is not None and cache[0][0].size(2) < block_size:
                    step_ids, context = ids[:, -1:], cache[0][0].size(2) + 1  # the token sampled last step
                else:  # the first step, no cache, or a context beyond block_size: run the (cropped) context
                    cache = None
                    step_ids = ids[:, -block_size:]
                    context = step_ids.size(1)
                step_mask = None if mask is None else mask[:, -context:]  # (B, T_past + T)
                hidden, presents = self._hidden_states(step_ids, step_mask, cache)
                cache = presents if use_cache else None
                logits = self.lm_head(hidden[:, -1]).float()  # (B, V)
                if greedy:
                    next_id = logits.argmax(dim=-1, keepdim=True)  # (B, 1)
                else:
                    next_id = _sample(logits / temperature, top_k, top_p, generator)  # (B, 1)
                if eos_token_id is not None:
                    next_id = next_id.masked_fill(finished[:, None], eos_token_id)
                    finished |= next_id[:, 0] == eos_token_id
                ids = torch.cat((ids, next_id), dim=1)  # (B, T + 1)
                if mask is not None:
                    mask = torch.cat((mask, mask.new_ones(mask.size(0), 1)), dim=1)  # (B, T + 1)
                if eos_token_id is not None and bool(finished.all()):
                    break
        finally:
            self.train(was_training)
        return ids

    @classmethod
    def from_hf(cls, source: str | Path | nn.Module, **overrides: Any) -> GPT:
        """A GPT with the weights of a Hugging Face GPT-2: a model folder, ``GPT2LMHeadModel`` or ``GPT2Model``.

        Args:
            source: the folder (``config.json`` and ``model.safetensors``) or the ``transformers`` model object.
            overrides: config fields to change, such as ``dropout`` for fine-tuning (not the shapes).

        Raises:
            DatasetNotFoundError: the folder or one of its files is missing.
            CorruptDataError: a file cannot be read, or a weight is missing or has the wrong shape.
            ConfigError: the config is not a GPT-2 this model implements.
        """
        hf_config, state = hf_state(source)
        config = GPTConfig.from_hf_dict(hf_config, **overrides)
        model = cls(config)
        if not any(k.startswith("transformer.") for k in state):  # a GPT2Model's names lack the LM's "transformer."
            state = {f"transformer.{k}": v for k, v in state.items()}
        model.load_state_dict(_from_hf_state(state, model), strict=True)
        return model

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` in GPT-2's format, for
        ``transformers.GPT2LMHeadModel.from_pretrained(folder)`` and :meth:`from_hf`.

        A model without biases (``bias=False``) is written with zero biases, which GPT-2's format requires and which
        compute the same function. The output layer is tied and stored once, as ``transformer.wte.weight``.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        ours = self.state_dict()
        tensors = {}
        for hf_name, name, conv1d in _hf_names(self.config.n_layer):
            # a model built with bias=False gets zero biases
            tensor = ours[name].detach() if name in ours else torch.zeros(_expected_shape(self, name))
            tensors[hf_name] = (tensor.t() if conv1d else tensor).contiguous().cpu()
        (folder / "config.json").write_text(json.dumps(self.config.to_hf_dict(), indent=2) + "\n", encoding="utf-8")
        weights = folder / "model.safetensors"
        partial = weights.with_name(weights.name + ".partial")
        save_file(tensors, str(partial), metadata={"format": "pt"})
        partial.replace(weights)
        return folder


def _expected_shape(model: GPT, name: str) -> tuple[int, ...]:
    """The shape of parameter ``name`` in ``model``, or, for a bias the model lacks, of that bias in GPT-2."""
    module_name, _, leaf = name.rpartition(".")
    module = model.get_submodule(module_name)
    if leaf == "bias" and getattr(module, "bias", None) is None:
        return (module.weight.size(0),)
    return tuple(getattr(module, leaf).shape)


def _from_hf_state(state: Mapping[str, Tensor], model: GPT) -> dict[str, Tensor]:
    """Our state dict from a GPT-2 one (names with ``transformer.``), Conv1D matrices transposed."""
    table = _hf_names(model.config.n_layer)
    ours = model.state_dict()
    known = {hf for hf, _, _ in table} | {"lm_head.weight"}
    unknown = [k for k in state if k not in known and not k.endswith(_HF_SKIPPED_SUFFIXES)]
    if any(k.startswith("transformer.") for k in unknown):
        extra = next(k for k in unknown if k.startswith("transformer."))
        raise CorruptDataError(
            f"the checkpoint has the weight {extra}, which a GPT-2 of its config ({model.config.n_layer} layers) "
            "lacks; its config.json does not match its weights"
        )
    out = {}
    for hf_name, name, conv1d in table:
        if name not in ours:  # bias=False overridden onto a GPT-2 checkpoint: its biases are dropped
            continue
        if hf_name not in state:
            raise CorruptDataError(f"the checkpoint lacks the weight {hf_name}; it is not a complete GPT-2 model")
        tensor = state[hf_name].t() if conv1d else state[hf_name]
        if tuple(tensor.shape) != tuple(ours[name].shape):
            raise CorruptDataError(
                f"the checkpoint's {hf_name} has shape {tuple(state[hf_name].shape)}, but its config.json implies "
                f"{tuple(ours[name].t().shape if conv1d else ours[name].shape)}; the config does not match the weights"
            )
        out[name] = tensor
    out["lm_head.weight"] = out["wte.weight"]
    return out


def top_k_filter(logits: Tensor, k: int) -> Tensor:
    """``logits`` with all but the ``k`` largest of each row set to -inf (ties with the k-th are kept).

    Shapes:
        - logits: :math:`(\\ldots, V)`
        - output: the same
    """
    if k < 1:
        raise ConfigError(f"top_k is {k}; pass a positive number of tokens to keep")
    k = min(k, logits.size(-1))
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # (..., 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: Tensor, p: float) -> Tensor:
    """Nucleus filtering (Holtzman et al. 2020, "The Curious Case of Neural Text Degeneration"): ``logits`` with
    all tokens outside the smallest set of most likely tokens whose probability reaches ``p`` set to -inf.

    A token is kept when the tokens more likely than it have less than ``p`` probability together, so the most
    likely token is always kept.

    Shapes:
        - logits: :math:`(\\ldots, V)`
        - output: the same
    """
    if not 0.0 < p <= 1.0:
        raise ConfigError(f"top_p is {p}; pass a probability in (0, 1]")
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)  # (..., V)
    probs = sorted_logits.softmax(dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs  # probability of the more likely tokens
    remove_sorted = mass_before >= p
    remove_sorted[..., 0] = False
    remove = remove_sorted.scatter(-1, order, remove_sorted)  # back to vocabulary order
    return logits.masked_fill(remove, float("-inf"))


def _sample(logits: Tensor, top_k: int | None, top_p: float | None, generator: torch.Generator | None) -> Tensor:
    """One token per row ``(B, 1)`` from temperature-scaled logits ``(B, V)`` after the top-k and top-p filters."""
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    return torch.multinomial(logits.softmax(dim=-1), num_samples=1, generator=generator)


# Keyword overrides that make each registered model tiny, for tests.
SMALL_KWARGS: dict[str, dict] = {
    name: dict(vocab_size=100, block_size=32, n_embd=32, n_layer=2, n_head=2)
    for name in ("gpt2", "gpt2_medium", "gpt_shakespeare_char", "gpt_shakespeare_char_cpu")
}


@register_model
def gpt2(
    vocab_size: int = 50257,
    block_size: int = 1024,
    n_embd: int = 768,
    n_layer: int = 12,
    n_head: int = 12,
    dropout: float = 0.0,
    bias: bool = True,
    **kwargs: Any,
) -> GPT:
    """GPT-2 small (the paper's 117M, Table 2; 124,439,808 parameters as released): 12 layers, 12 heads, d = 768."""
    return GPT(GPTConfig(vocab_size, block_size, n_embd, n_layer, n_head, dropout=dropout, bias=bias, **kwargs))


@register_model
def gpt2_medium(
    vocab_size: int = 50257,
    block_size: int = 1024,
    n_embd: int = 1024,
    n_layer: int = 24,
    n_head: int = 16,
    dropout: float = 0.0,
    bias: bool = True,
    **kwargs: Any,
) -> GPT:
    """GPT-2 medium (the paper's 345M, Table 2; 354,823,168 parameters as released): 24 layers, 16 heads, d = 1024."""
    return GPT(GPTConfig(vocab_size, block_size, n_embd, n_layer, n_head, dropout=dropout, bias=bias, **kwargs))


@register_model
def gpt_shakespeare_char(
    vocab_size: int = 65,
    block_size: int = 256,
    n_embd: int = 384,
    n_layer: int = 6,
    n_head: int = 6,
    dropout: float = 0.2,
    bias: bool = False,
    **kwargs: Any,
) -> GPT:
    """nanoGPT's character-level Shakespeare model (config/train_shakespeare_char.py): 6 layers, 6 heads, d = 384,
    a 256-character context, dropout 0.2, no biases, over the 65 characters of tiny Shakespeare."""
    return GPT(GPTConfig(vocab_size, block_size, n_embd, n_layer, n_head, dropout=dropout, bias=bias, **kwargs))


@register_model
def gpt_shakespeare_char_cpu(
    vocab_size: int = 65,
    block_size: int = 64,
    n_embd: int = 128,
    n_layer: int = 4,
    n_head: int = 4,
    dropout: float = 0.0,
    bias: bool = False,
    **kwargs: Any,
) -> GPT:
    """nanoGPT's CPU-sized character-level Shakespeare model (its README): 4 layers, 4 heads, d = 128, a
    64-character context, no dropout, no biases."""
    return GPT(GPTConfig(vocab_size, block_size, n_embd, n_layer, n_head, dropout=dropout, bias=bias, **kwargs))
