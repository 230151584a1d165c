r"""BERT from Devlin et al. 2019, "BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding"
(NAACL 2019, arXiv 1810.04805), written from the paper and loading Hugging Face's weights.

A bidirectional Transformer encoder (section 3): the sum of a token, a learned position and a segment ("token type")
embedding, normalised, feeds L post-LN layers of multi-head self-attention and a GELU feed-forward network; the
hidden state of the first token, ``[CLS]``, through a tanh dense layer (the "pooler") represents the sequence.
:class:`BertForMaskedLM` adds the masked-language-model head of pre-training (section 3.1, task 1), whose output
matrix is the word embedding; :class:`BertForSequenceClassification` the fine-tuning classifier on the pooled output
(section 3.2, Figure 4).

Parameter names follow Hugging Face's where that costs nothing, so that name patterns written for ``transformers``
models (peft's ``target_modules=["query", "value"]``, ``modules_to_save=["classifier"]``) select the same layers
here. The differences are that one :class:`BertAttention` holds the projections and the output dense + LayerNorm that
Hugging Face splits into ``attention.self`` and ``attention.output``, and that the masked-LM head is ``lm_head``, not
``cls.predictions``. :data:`HF_TO_OURS` is the whole mapping; :meth:`BertPreTrainedModel.from_hf` reads a model
folder or a ``transformers`` model object through it and :meth:`BertPreTrainedModel.save_pretrained` writes a folder
that ``transformers`` loads.

Registered variants (``create_model(name, head="none" | "mlm" | "classification", num_labels=2, **config)``):

=====================  ==  ====  ==  =====  ====================================================================
name                    L     H   A  FFN    source
=====================  ==  ====  ==  =====  ====================================================================
``bert_base``          12   768  12   3072  the paper's BERT-base (110M parameters)
``bert_large``         24  1024  16   4096  the paper's BERT-large (340M parameters)
``minilm_l6_h384``      6   384  12   1536  the shape of sentence-transformers' all-MiniLM-L6-v2 (Wang et al. 2020)
=====================  ==  ====  ==  =====  ====================================================================
"""

from __future__ import annotations

import dataclasses
import json
import re
import warnings
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

_ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu")


@dataclass
class BertConfig:
    """Hyper-parameters of BERT, under Hugging Face's ``BertConfig`` names; the defaults are BERT-base.

    Args:
        vocab_size: WordPiece vocabulary size (30,522 for the uncased English vocabulary).
        hidden_size: model width H.
        num_hidden_layers: number of Transformer layers L.
        num_attention_heads: attention heads A; must divide ``hidden_size``.
        intermediate_size: inner width of the feed-forward network (4H in the paper).
        hidden_act: the feed-forward and MLM-transform non-linearity: ``"gelu"`` (exact, with erf, as in the paper),
            ``"gelu_new"`` or ``"gelu_pytorch_tanh"`` (the tanh approximation), or ``"relu"``.
        hidden_dropout_prob: dropout on the embeddings and on each sub-layer's output before its residual sum.
        attention_probs_dropout_prob: dropout on the attention weights.
        max_position_embeddings: the longest sequence (512 in the paper).
        type_vocab_size: number of segment ids (2: sentence A and sentence B).
        layer_norm_eps: LayerNorm epsilon.
        pad_token_id: the padding token, whose word-embedding row receives no gradient from the lookup.
        initializer_range: standard deviation of the normal initialisation of weights and embeddings.
        classifier_dropout: dropout before the classifier of :class:`BertForSequenceClassification`;
            ``None`` uses ``hidden_dropout_prob``.
    """

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    initializer_range: float = 0.02
    classifier_dropout: float | None = None

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f"hidden_size={self.hidden_size} is not divisible by num_attention_heads={self.num_attention_heads}; "
                "choose a number of heads that divides the width"
            )
        if self.hidden_act not in _ACTIVATIONS:
            raise ConfigError(f"hidden_act={self.hidden_act!r} is not supported; use one of {', '.join(_ACTIVATIONS)}")

    @classmethod
    def from_hf_dict(cls, d: Mapping[str, Any], **overrides: Any) -> BertConfig:
        """The config of a Hugging Face ``config.json`` (or ``BertConfig.to_dict()``); unknown keys are ignored.

        Raises:
            ConfigError: the dict describes a model this BERT is not (another ``model_type``, relative position
                embeddings, a causal decoder), or ``overrides`` names a field that does not exist.
        """
        model_type = d.get("model_type", "bert")
        if model_type != "bert":
            raise ConfigError(f"model_type={model_type!r} is not BERT; this class loads model_type='bert' only")
        position_type = d.get("position_embedding_type", "absolute")
        if position_type != "absolute":
            raise ConfigError(
                f"position_embedding_type={position_type!r} is not supported; this BERT has the paper's learned "
                "absolute positions"
            )
        if d.get("is_decoder") or d.get("add_cross_attention"):
            raise ConfigError("the config describes a causal BERT decoder; this BERT is the bidirectional encoder")
        names = {f.name for f in dataclasses.fields(cls)}
        return cls.with_overrides({k: v for k, v in d.items() if k in names}, **overrides)

    @classmethod
    def with_overrides(cls, base: Mapping[str, Any], **overrides: Any) -> BertConfig:
        """A config from the fields in ``base`` updated by ``overrides``, with a ConfigError for an unknown field."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ConfigError(f"BertConfig has no field(s) {', '.join(unknown)}; known fields: {', '.join(names)}")
        return cls(**{**base, **overrides})

    def to_hf_dict(self) -> dict[str, Any]:
        """The ``config.json`` contents of a Hugging Face ``BertConfig`` with these hyper-parameters."""
        return {"model_type": "bert", **dataclasses.asdict(self)}


@dataclass
class BertModelOutput:
    """What :class:`BertModel` returns.

    Args:
        last_hidden_state: the last layer's hidden states, ``(B, T, H)``.
        pooler_output: ``tanh(W h_[CLS] + b)``, ``(B, H)``; ``None`` for a model built without the pooler.
        hidden_states: with ``output_hidden_states``, the embedding output and every layer's output, L + 1 tensors
            ``(B, T, H)``; otherwise ``None``.
    """

    last_hidden_state: Tensor
    pooler_output: Tensor | None = None
    hidden_states: tuple[Tensor, ...] | None = None


def _activation(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    return nn.GELU(approximate="none" if name == "gelu" else "tanh")


class BertEmbeddings(nn.Module):
    r"""The input representation of Devlin et al. 2019, section 3 and Figure 2:

    .. math::
        E = \mathrm{Dropout}\big(\mathrm{LN}(E_{token}[x_t] + E_{segment}[s_t] + E_{position}[t])\big)

    All three tables are learned; positions count from 0 and are at most ``max_position_embeddings - 1``.

    Args:
        config: the hyper-parameters.

    Shapes:
        - input_ids, token_type_ids: :math:`(B, T)`
        - output: :math:`(B, T, H)`
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        c = config
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size, padding_idx=c.pad_token_id)
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.token_type_embeddings = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def _check_length(self, seq_len: int) -> None:
        """Raise a ConfigError where ``seq_len`` tokens do not fit the position table."""
        if seq_len > self.position_embeddings.num_embeddings:
            raise ConfigError(
                f"the input has {seq_len} tokens but the model has {self.position_embeddings.num_embeddings} "
                "positions; truncate the input to max_position_embeddings"
            )

    def position_ids(self, input_ids: Tensor) -> Tensor:
        """The positions of ``input_ids`` ``(B, T)``: ``0, 1, ..., T - 1``, ``(T,)``, the same for every row."""
        return torch.arange(input_ids.size(1), device=input_ids.device)  # (T,)

    def forward(self, input_ids: Tensor, token_type_ids: Tensor) -> Tensor:
        self._check_length(input_ids.size(1))
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        x = x + self.position_embeddings(self.position_ids(input_ids))  # (B, T, H)
        return self.dropout(self.LayerNorm(x))


def additive_attention_mask(attention_mask: Tensor, dtype: torch.dtype, device: torch.device) -> Tensor:
    """The additive key-padding mask of a ``(B, T)`` attention mask (1 at tokens, 0 at padding): ``(B, 1, 1, T)``, 0
    at tokens and the dtype's most negative number at padding.

    Additive rather than boolean: a sequence with no real token gets uniform attention, not NaN.
    """
    padding = attention_mask[:, None, None, :] == 0  # (B, 1, 1, T)
    return torch.zeros(padding.shape, dtype=dtype, device=device).masked_fill(padding, torch.finfo(dtype).min)


class BertAttention(nn.Module):
    r"""Multi-head self-attention with BERT's post-LN residual (Devlin et al. 2019, section 3; Vaswani et al. 2017):

    .. math::
        \mathrm{head}_i = \mathrm{softmax}\!\Big(\frac{(x W^Q_i)(x W^K_i)^\top}{\sqrt{d}} + M\Big)\, x W^V_i, \qquad
        y = \mathrm{LN}\big(x + \mathrm{Dropout}([\mathrm{head}_1; \dots; \mathrm{head}_A] W^O)\big)

    with :math:`d = H / A` and :math:`M` the additive key-padding mask. ``query``, ``key`` and ``value`` are separate
    linear layers (Hugging Face's ``attention.self``), ``dense`` and ``LayerNorm`` its ``attention.output``.

    Args:
        config: the hyper-parameters.

    Shapes:
        - x: :math:`(B, T, H)`
        - mask: :math:`(B, 1, 1, T)` float, 0 at tokens and a large negative number at padding; or ``None``
        - output: :math:`(B, T, H)`
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        c = config
        self.num_heads = c.num_attention_heads
        self.head_dim = c.hidden_size // c.num_attention_heads
        self.attention_dropout = c.attention_probs_dropout_prob
        self.query = nn.Linear(c.hidden_size, c.hidden_size)
        self.key = nn.Linear(c.hidden_size, c.hidden_size)
        self.value = nn.Linear(c.hidden_size, c.hidden_size)
        self.dense = nn.Linear(c.hidden_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        batch, seq_len, width = x.shape
        heads = (batch, seq_len, self.num_heads, self.head_dim)
        q = self.query(x).view(heads).transpose(1, 2)  # (B, A, T, d)
        k = self.key(x).view(heads).transpose(1, 2)  # (B, A, T, d)
        v = self.value(x).view(heads).transpose(1, 2)  # (B, A, T, d)
        p = self.attention_dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)  # (B, A, T, d)
        y = y.transpose(1, 2).reshape(batch, seq_len, width)  # (B, T, H)
        return self.LayerNorm(x + self.dropout(self.dense(y)))

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}, head_dim={self.head_dim}, attention_dropout={self.attention_dropout}"


class BertIntermediate(nn.Module):
    """The first half of BERT's feed-forward network: ``act(x W_1 + b_1)``, ``(B, T, H) -> (B, T, FFN)``.

    Args:
        config: the hyper-parameters.
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = _activation(config.hidden_act)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.dense(x))


class BertLayerOutput(nn.Module):
    """The second half of BERT's feed-forward network and its post-LN residual: ``LN(x + Dropout(h W_2 + b_2))``.

    Args:
        config: the hyper-parameters.

    Shapes:
        - h: :math:`(B, T, FFN)`, :class:`BertIntermediate`'s output
        - x: :math:`(B, T, H)`, the residual (the attention block's output)
        - output: :math:`(B, T, H)`
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, h: Tensor, x: Tensor) -> Tensor:
        return self.LayerNorm(x + self.dropout(self.dense(h)))


class BertLayer(nn.Module):
    """One BERT layer (Devlin et al. 2019, section 3): self-attention, then the feed-forward network, each post-LN.

    Args:
        config: the hyper-parameters.

    Shapes:
        - x: :math:`(B, T, H)`
        - mask: :math:`(B, 1, 1, T)` additive, or ``None``
        - output: :math:`(B, T, H)`
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertLayerOutput(config)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        x = self.attention(x, mask)
        return self.output(self.intermediate(x), x)


class BertEncoder(nn.Module):
    """The stack of L :class:`BertLayer` (``layer.{i}``, Hugging Face's names).

    Args:
        config: the hyper-parameters.
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(config) for _ in range(config.num_hidden_layers))

    def forward(self, x: Tensor, mask: Tensor | None) -> list[Tensor]:
        """The input followed by every layer's output, L + 1 tensors ``(B, T, H)``."""
        states = [x]
        for layer in self.layer:
            states.append(layer(states[-1], mask))
        return states


class BertPooler(nn.Module):
    """The sequence representation of Devlin et al. 2019: ``tanh(W h_[CLS] + b)`` on the first token's state.

    Args:
        config: the hyper-parameters.

    Shapes:
        - hidden_states: :math:`(B, T, H)`
        - output: :math:`(B, H)`
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden_states: Tensor) -> Tensor:
        return torch.tanh(self.dense(hidden_states[:, 0]))  # (B, H)


class BertMLMHead(nn.Module):
    r"""The masked-language-model head of Devlin et al. 2019 (section 3.1, task 1; Hugging Face's
    ``cls.predictions``):

    .. math::
        \mathrm{logits} = \mathrm{LN}(\mathrm{act}(h W_t + b_t))\, E_{token}^\top + b_{vocab}

    ``decoder.weight`` is tied to the word embedding :math:`E_{token}` by :class:`BertForMaskedLM`; ``decoder.bias``
    is the head's own per-token bias.

    Args:
        config: the hyper-parameters.

    Shapes:
        - hidden_states: :math:`(B, T, H)`
        - output: :math:`(B, T, V)`
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = _activation(config.hidden_act)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)

    def forward(self, hidden_states: Tensor) -> Tensor:
        return self.decoder(self.LayerNorm(self.act(self.dense(hidden_states))))  # (B, T, V)


# The weight names of a Hugging Face BERT (inside "bert." in its task models) and ours, row by row. ``{i}`` is a layer
# index and ``{p}`` is ``weight`` or ``bias``; the first row that matches a name wins, in both directions.
HF_TO_OURS: tuple[tuple[str, str], ...] = (
    # Hugging Face                                        ours
    ("embeddings.word_embeddings.weight",                 "embeddings.word_embeddings.weight"),
    ("embeddings.position_embeddings.weight",             "embeddings.position_embeddings.weight"),
    ("embeddings.token_type_embeddings.weight",           "embeddings.token_type_embeddings.weight"),
    ("embeddings.LayerNorm.{p}",                          "embeddings.LayerNorm.{p}"),
    ("encoder.layer.{i}.attention.self.query.{p}",        "encoder.layer.{i}.attention.query.{p}"),
    ("encoder.layer.{i}.attention.self.key.{p}",          "encoder.layer.{i}.attention.key.{p}"),
    ("encoder.layer.{i}.attention.self.value.{p}",        "encoder.layer.{i}.attention.value.{p}"),
    ("encoder.layer.{i}.attention.output.dense.{p}",      "encoder.layer.{i}.attention.dense.{p}"),
    ("encoder.layer.{i}.attention.output.LayerNorm.{p}",  "encoder.layer.{i}.attention.LayerNorm.{p}"),
    ("encoder.layer.{i}.intermediate.dense.{p}",          "encoder.layer.{i}.intermediate.dense.{p}"),
    ("encoder.layer.{i}.output.dense.{p}",                "encoder.layer.{i}.output.dense.{p}"),
    ("encoder.layer.{i}.output.LayerNorm.{p}",            "encoder.layer.{i}.output.LayerNorm.{p}"),
    ("pooler.dense.{p}",                                  "pooler.dense.{p}"),
    ("cls.predictions.transform.dense.{p}",               "lm_head.dense.{p}"),
    ("cls.predictions.transform.LayerNorm.{p}",           "lm_head.LayerNorm.{p}"),
    ("cls.predictions.bias",                              "lm_head.decoder.bias"),
    ("cls.predictions.decoder.bias",                      "lm_head.decoder.bias"),  # the same tensor as the row above
    ("classifier.{p}",                                    "classifier.{p}"),
)  # fmt: skip

# Hugging Face names with nothing to load: the embeddings' index buffers, the MLM decoder matrix (the word embedding,
# tied) and the next-sentence-prediction head of BertForPreTraining, which no model here has.
_HF_SKIPPED = re.compile(
    r"embeddings\.(position_ids|token_type_ids)|cls\.predictions\.decoder\.weight|cls\.seq_relationship\..*"
)
# Checkpoints converted from the original TensorFlow BERT name the LayerNorm parameters gamma and beta.
_HF_LEGACY_LAYERNORM = {"gamma": "weight", "beta": "bias"}
# The encoder proper: every one of its weights must be in a checkpoint, and a checkpoint must have nothing else here.
_ENCODER_PREFIXES = ("embeddings.", "encoder.")
_TIED_DECODER = "lm_head.decoder.weight"


def _compile(pattern: str) -> re.Pattern[str]:
    regex = re.escape(pattern).replace(r"\{i\}", r"(?P<i>\d+)").replace(r"\{p\}", r"(?P<p>weight|bias)")
    return re.compile(regex)


_FORWARD = tuple((_compile(hf), ours) for hf, ours in HF_TO_OURS)
_BACKWARD = tuple((_compile(ours), hf) for hf, ours in HF_TO_OURS)


def _rename(name: str, rules: tuple[tuple[re.Pattern[str], str], ...]) -> str | None:
    for pattern, template in rules:
        match = pattern.fullmatch(name)
        if match:
            return template.format(**match.groupdict())
    return None


def _convert_state_dict(
    state_dict: Mapping[str, Tensor],
    *,
    prefix: str,
    skipped: re.Pattern[str],
    rules: tuple[tuple[re.Pattern[str], str], ...],
    family: str,
    variant: str,
    legacy_names: Mapping[str, str] = _HF_LEGACY_LAYERNORM,
) -> tuple[dict[str, Tensor], list[str]]:
    """Our names for a Hugging Face state dict of a BERT-like ``family`` (``"BERT"``, ``"RoBERTa"``): ``prefix`` (its
    task models' encoder attribute, ``"bert."``) removed, legacy LayerNorm names fixed, ``skipped`` names dropped and
    the rest renamed by ``rules``; ``variant`` names what an unknown encoder weight may come from, ``legacy_names``
    the old names of LayerNorm parameters."""
    ours: dict[str, Tensor] = {}
    ignored = []
    for hf_name, tensor in state_dict.items():
        name = hf_name.removeprefix(prefix)
        stem, _, last = name.rpartition(".")
        if stem.endswith("LayerNorm") and last in legacy_names:
            name = f"{stem}.{legacy_names[last]}"
        if skipped.fullmatch(name):
            continue
        our_name = _rename(name, rules)
        if our_name is None:
            if name.startswith((*_ENCODER_PREFIXES, "pooler.")):
                raise CorruptDataError(
                    f"the checkpoint's weight {hf_name!r} is not one of {family}'s; it is another architecture or a "
                    f"variant{variant} that this {family} does not implement"
                )
            ignored.append(hf_name)
            continue
        if our_name in ours and not torch.equal(ours[our_name], tensor):
            raise CorruptDataError(
                f"the checkpoint holds two different values for {our_name!r} (one of them {hf_name!r}), which "
                "Hugging Face ties; re-save the model"
            )
        ours[our_name] = tensor
    return ours, ignored


def convert_hf_state_dict(state_dict: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
    """Our names for the weights of a Hugging Face BERT state dict, through :data:`HF_TO_OURS`.

    Encoder weights come back without a ``bert.`` prefix (a bare :class:`BertModel`'s names), head weights as
    ``lm_head.*`` and ``classifier.*``. Returns ``(state_dict, ignored)``: ``ignored`` lists the names of head weights
    that no model here has (another task's head), which a caller may report.

    Raises:
        CorruptDataError: a name inside the encoder is not one of BERT's (another architecture, or relative position
            embeddings), or two names of one tied tensor hold different values.
    """
    return _convert_state_dict(
        state_dict,
        prefix="bert.",
        skipped=_HF_SKIPPED,
        rules=_FORWARD,
        family="BERT",
        variant=" (e.g. relative positions)",
    )


class BertPreTrainedModel(nn.Module):
    """What every BERT here shares: BERT's initialisation, loading Hugging Face weights, saving a Hugging Face folder.

    Subclasses set ``hf_architecture`` (the ``transformers`` class of the same model) and ``encoder_prefix`` (where
    the :class:`BertModel` sits in their state dict: ``""`` or ``"bert."``). A BERT-like family (RoBERTa) reuses the
    loading and saving by setting the class attributes of its config class (``config_class``), its name in messages
    (``family``), its Hugging Face state-dict converter (``convert_hf``) and its name table backwards, from our names
    to Hugging Face's (``hf_name_rules``).
    """

    hf_architecture: str = ""
    encoder_prefix: str = ""
    config: BertConfig
    config_class: type[BertConfig] = BertConfig
    family: str = "BERT"
    convert_hf = staticmethod(convert_hf_state_dict)
    hf_name_rules: tuple[tuple[re.Pattern[str], str], ...] = _BACKWARD

    def _init_weights(self, module: nn.Module) -> None:
        """BERT's initialisation, as in Hugging Face's port: weights and embeddings normal with standard deviation
        ``initializer_range`` (the original TensorFlow code truncates it at two deviations), biases 0, LayerNorm 1 and
        0, and the padding row of the word embedding 0 (it gets no gradient from the lookup)."""
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=std)
            if module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def reset_parameters(self) -> None:
        """Draw every weight afresh (see :meth:`_init_weights`)."""
        self.apply(self._init_weights)

    def example_inputs(self, batch_size: int = 2) -> tuple[Tensor, Tensor, Tensor]:
        """``(input_ids, attention_mask, token_type_ids)`` of ``batch_size`` sequences of 8 tokens: sentence A in
        the first half, sentence B in the second, and the last sequence right-padded by two tokens."""
        c = self.config
        device = next(self.parameters()).device
        seq_len = min(8, c.max_position_embeddings)
        generator = torch.Generator().manual_seed(0)
        input_ids = torch.randint(0, c.vocab_size, (batch_size, seq_len), generator=generator)
        attention_mask = torch.ones(batch_size, seq_len, dtype=torch.long)
        attention_mask[-1, seq_len - 2 :] = 0
        input_ids[attention_mask == 0] = c.pad_token_id
        token_type_ids = torch.zeros(batch_size, seq_len, dtype=torch.long)
        token_type_ids[:, seq_len // 2 :] = min(1, c.type_vocab_size - 1)
        return input_ids.to(device), attention_mask.to(device), token_type_ids.to(device)

    @classmethod
    def _from_hf_config(cls, hf_config: Mapping[str, Any], **overrides: Any) -> BertPreTrainedModel:
        return cls(cls.config_class.from_hf_dict(hf_config, **overrides))

    @classmethod
    def from_hf(cls, source: str | Path | nn.Module, **overrides: Any) -> BertPreTrainedModel:
        """This model with the weights of a Hugging Face BERT: a model folder or a ``transformers`` model object.

        The source may be a ``BertModel`` (names without a prefix, as in all-MiniLM-L6-v2's folder), a
        ``BertForMaskedLM``, ``BertForSequenceClassification`` or ``BertForPreTraining``. Weights this model has and
        the source lacks, the pooler or a task head (a classifier loaded from a bare encoder, say), keep their fresh
        initialisation, and a ``UserWarning`` names them; the source's heads this model lacks are dropped.

        Args:
            source: the folder (``config.json`` and weights) or the model object.
            overrides: :class:`BertConfig` fields to replace (dropout, say); ``num_labels`` for a classifier.

        Raises:
            DatasetNotFoundError: the folder, its config or its weights are missing.
            CorruptDataError: a file cannot be read, or the weights do not fit the config (a shape differs, an encoder
                weight is missing or unknown).
            ConfigError: the config is not a BERT this class implements.
        """
        hf_config, hf_weights = hf_state(source)
        model = cls._from_hf_config(hf_config, **overrides)
        new = model.load_hf_state_dict(hf_weights)
        if new:
            warnings.warn(
                f"{cls.__name__}.from_hf: the source has no weights for {', '.join(new)}, which keep their fresh "
                "initialisation; train them before use",
                UserWarning,
                stacklevel=2,
            )
        return model

    def load_hf_state_dict(self, state_dict: Mapping[str, Tensor]) -> list[str]:
        """Load a Hugging Face BERT state dict (any prefix, any head) in place; return our names that it lacked.

        Raises:
            CorruptDataError: a shape differs, or an encoder weight is missing or unknown.
        """
        converted, _ = self.convert_hf(state_dict)
        prefix = self.encoder_prefix
        incoming = {
            (prefix + name if name.startswith((*_ENCODER_PREFIXES, "pooler.")) else name): tensor
            for name, tensor in converted.items()
        }
        expected = {name: p for name, p in self.state_dict().items() if name != _TIED_DECODER}
        encoder = tuple(prefix + p for p in _ENCODER_PREFIXES)
        extra = sorted(n for n in incoming if n not in expected and n.startswith(encoder))
        if extra:
            raise CorruptDataError(
                f"the checkpoint has encoder weights this model lacks ({', '.join(extra[:3])}, ...): its config.json "
                "does not match its weights, or an override changed the number of layers"
            )
        missing = [n for n in expected if n not in incoming]
        lacking = [n for n in missing if n.startswith(encoder)]
        if lacking:
            raise CorruptDataError(
                f"the checkpoint lacks the encoder weights {', '.join(lacking[:3])} (of {len(lacking)} missing); "
                f"it is incomplete or not a {self.family}"
            )
        for name, tensor in incoming.items():
            if name in expected and tensor.shape != expected[name].shape:
                raise CorruptDataError(
                    f"the checkpoint's {name} has shape {tuple(tensor.shape)} but this model's has "
                    f"{tuple(expected[name].shape)}: its config.json does not match its weights, or an override "
                    "changed a size"
                )
        self.load_state_dict({n: t for n, t in incoming.items() if n in expected}, strict=False)
        return missing

    def hf_state_dict(self) -> dict[str, Tensor]:
        """Our weights under Hugging Face's names (the tied MLM decoder matrix once, as the word embedding)."""
        out = {}
        for name, tensor in self.state_dict().items():
            if name == _TIED_DECODER:
                continue
            inner = name.removeprefix(self.encoder_prefix)
            hf_name = _rename(inner, self.hf_name_rules)
            if inner.startswith((*_ENCODER_PREFIXES, "pooler.")):
                hf_name = self.encoder_prefix + hf_name
            out[hf_name] = tensor.detach().contiguous().cpu()
        return out

    def hf_config_dict(self) -> dict[str, Any]:
        """The ``config.json`` that ``transformers`` reads for this model."""
        return {"architectures": [self.hf_architecture], **self.config.to_hf_dict()}

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write a Hugging Face model folder: ``config.json`` and ``model.safetensors`` under Hugging Face's names,
        so that both ``transformers.<hf_architecture>.from_pretrained(folder)`` and :meth:`from_hf` load it."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps(self.hf_config_dict(), indent=2) + "\n", encoding="utf-8")
        partial = folder / "model.safetensors.partial"
        save_file(self.hf_state_dict(), str(partial), metadata={"format": "pt"})  # transformers wants "format"
        partial.replace(folder / "model.safetensors")
        return folder


class BertModel(BertPreTrainedModel):
    r"""The BERT encoder of Devlin et al. 2019, "BERT: Pre-training of Deep Bidirectional Transformers for Language
    Understanding", section 3:

    .. math::
        h^0 = \mathrm{Embed}(x, s), \qquad h^l = \mathrm{Layer}_l(h^{l-1}) \;(l = 1..L), \qquad
        \mathrm{pooled} = \tanh(W_p h^L_{[CLS]} + b_p)

    Every position attends to every real token in both directions; ``attention_mask`` hides padding from the keys
    (padded positions still get states, which the caller ignores).

    Args:
        config: the hyper-parameters.
        add_pooling_layer: build the pooler (the masked-LM model has none, as in Hugging Face's).

    Shapes:
        - input_ids: :math:`(B, T)` token ids
        - attention_mask: :math:`(B, T)`, 1 at tokens and 0 at padding; ``None`` attends to every position
        - token_type_ids: :math:`(B, T)` segment ids; ``None`` puts every token in segment 0
        - output: a :class:`BertModelOutput` with ``last_hidden_state`` :math:`(B, T, H)`, ``pooler_output``
          :math:`(B, H)` and, with ``output_hidden_states``, L + 1 tensors :math:`(B, T, H)`
    """

    hf_architecture = "BertModel"
    encoder_prefix = ""
    embeddings_class: type[BertEmbeddings] = BertEmbeddings

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True) -> None:
        super().__init__()
        self.config = config
        self.embeddings = self.embeddings_class(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self.reset_parameters()

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        output_hidden_states: bool = False,
    ) -> BertModelOutput:
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        x = self.embeddings(input_ids, token_type_ids)  # (B, T, H)
        mask = None if attention_mask is None else additive_attention_mask(attention_mask, x.dtype, x.device)
        states = self.encoder(x, mask)
        last = states[-1]
        return BertModelOutput(
            last_hidden_state=last,
            pooler_output=self.pooler(last) if self.pooler is not None else None,
            hidden_states=tuple(states) if output_hidden_states else None,
        )


class BertForMaskedLM(BertPreTrainedModel):
    """BERT with the masked-language-model head of Devlin et al. 2019, section 3.1 (task 1, "Masked LM").

    The output matrix is the word embedding (``lm_head.decoder.weight is bert.embeddings.word_embeddings.weight``),
    with a separate per-token bias, as in the released BERT. There is no pooler.

    Args:
        config: the hyper-parameters.

    Shapes:
        - input_ids, attention_mask, token_type_ids: :math:`(B, T)`, as in :class:`BertModel`
        - output: :math:`(B, T, V)` logits over the vocabulary (the softmax is the loss's)
    """

    hf_architecture = "BertForMaskedLM"
    encoder_prefix = "bert."

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.config = config
        self.bert = BertModel(config, add_pooling_layer=False)
        self.lm_head = BertMLMHead(config)
        self.lm_head.decoder.weight = self.bert.embeddings.word_embeddings.weight
        self._reset_head()

    def reset_parameters(self) -> None:
        """Draw every weight afresh; the tied decoder matrix is drawn once, as the word embedding."""
        self.bert.reset_parameters()
        self._reset_head()

    def _reset_head(self) -> None:
        self._init_weights(self.lm_head.dense)
        self._init_weights(self.lm_head.LayerNorm)
        nn.init.zeros_(self.lm_head.decoder.bias)

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor | None = None, token_type_ids: Tensor | None = None
    ) -> Tensor:
        hidden = self.bert(input_ids, attention_mask, token_type_ids).last_hidden_state  # (B, T, H)
        return self.lm_head(hidden)  # (B, T, V)

    def load_hf_state_dict(self, state_dict: Mapping[str, Tensor]) -> list[str]:
        """As :meth:`BertPreTrainedModel.load_hf_state_dict`; refuses a checkpoint whose MLM decoder matrix is not its
        word embedding, which this model, tied, cannot represent."""
        untied = [
            name
            for name, tensor in state_dict.items()
            if name.endswith("cls.predictions.decoder.weight")
            and not torch.equal(tensor, state_dict.get("bert.embeddings.word_embeddings.weight", tensor))
        ]
        if untied:
            raise ConfigError(
                "the checkpoint's MLM decoder is not tied to its word embedding; this BertForMaskedLM ties them, as "
                "BERT does, so it cannot load that head (load the encoder into BertModel instead)"
            )
        return super().load_hf_state_dict(state_dict)


def mean_pool(hidden: Tensor, attention_mask: Tensor) -> Tensor:
    """The mean of each row's real-token states (sentence-transformers' mean pooling).

    Shapes:
        - hidden: :math:`(B, T, H)`
        - attention_mask: :math:`(B, T)`
        - output: :math:`(B, H)`
    """
    weights = attention_mask.to(hidden.dtype)[..., None]  # (B, T, 1)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


POOLINGS = ("pooler", "mean")


class _ClassifierHFMixin:
    """The Hugging Face config handling of a sequence classifier (this BERT's, RoBERTa's): ``num_labels`` read from and
    written to ``config.json``'s labels. Put it before the :class:`BertPreTrainedModel` base."""

    num_labels: int

    @classmethod
    def _from_hf_config(cls, hf_config: Mapping[str, Any], **overrides: Any) -> Any:
        """``num_labels`` from ``overrides``, else the config's labels (``id2label`` or ``num_labels``), else 2."""
        num_labels = overrides.pop("num_labels", None)
        if num_labels is None:
            labels = hf_config.get("id2label")
            num_labels = len(labels) if labels else int(hf_config.get("num_labels", 2))
        return cls(cls.config_class.from_hf_dict(hf_config, **overrides), num_labels=num_labels)

    def hf_config_dict(self) -> dict[str, Any]:
        labels = {str(i): f"LABEL_{i}" for i in range(self.num_labels)}
        return {**super().hf_config_dict(), "id2label": labels, "label2id": {v: int(k) for k, v in labels.items()}}


class BertForSequenceClassification(_ClassifierHFMixin, BertPreTrainedModel):
    """BERT fine-tuned for sequence classification, Devlin et al. 2019, section 3.2 and Figure 4 (a) and (b): dropout
    and a linear layer on the pooled ``[CLS]`` representation.

    Args:
        config: the hyper-parameters (``classifier_dropout``, or else ``hidden_dropout_prob``, before the classifier).
        num_labels: number of classes K (1 for regression, as in GLUE's STS-B).
        pooling: ``"pooler"`` (the paper's, and transformers') or ``"mean"`` (see :attr:`pooling`).

    Shapes:
        - input_ids, attention_mask, token_type_ids: :math:`(B, T)`, as in :class:`BertModel`
        - output: :math:`(B, K)` logits
    """

    hf_architecture = "BertForSequenceClassification"
    encoder_prefix = "bert."

    def __init__(self, config: BertConfig, num_labels: int = 2, pooling: str = "pooler") -> None:
        super().__init__()
        if num_labels < 1:
            raise ConfigError(f"num_labels={num_labels} must be at least 1 (1 is regression)")
        self.config = config
        self.num_labels = num_labels
        self.pooling = pooling
        self.bert = BertModel(config)
        p = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(p)
        self.classifier = nn.Linear(config.hidden_size, num_labels)
        self._init_weights(self.classifier)

    def reset_parameters(self) -> None:
        """Draw every weight afresh."""
        self.bert.reset_parameters()
        self._init_weights(self.classifier)

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor | None = None, token_type_ids: Tensor | None = None
    ) -> Tensor:
        out = self.bert(input_ids, attention_mask, token_type_ids)
        if self.pooling == "mean":
            mask = attention_mask if attention_mask is not None else torch.ones_like(input_ids)
            pooled = mean_pool(out.last_hidden_state, mask)  # (B, H)
        else:
            pooled = out.pooler_output  # (B, H)
        return self.classifier(self.dropout(pooled))  # (B, K)

    @property
    def pooling(self) -> str:
        """What the classifier reads: ``"pooler"`` (the paper's ``tanh`` layer on ``[CLS]``) or ``"mean"`` (the mean
        of the real tokens' last states, how sentence-transformers models such as all-MiniLM-L6-v2 were trained)."""
        return self._pooling

    @pooling.setter
    def pooling(self, value: str) -> None:
        if value not in POOLINGS:
            raise ConfigError(f"pooling must be one of {', '.join(POOLINGS)}, not {value!r}")
        self._pooling = value


def _create_bert(arch: dict[str, int], head: str, num_labels: int, kwargs: dict[str, Any]) -> BertPreTrainedModel:
    config = BertConfig.with_overrides({**dataclasses.asdict(BertConfig()), **arch}, **kwargs)
    if head == "none":
        return BertModel(config)
    if head == "mlm":
        return BertForMaskedLM(config)
    if head == "classification":
        return BertForSequenceClassification(config, num_labels=num_labels)
    raise ConfigError(f"head={head!r} is not a BERT head; use 'none', 'mlm' or 'classification'")


@register_model
def bert_base(head: str = "none", num_labels: int = 2, **kwargs: Any) -> BertPreTrainedModel:
    """BERT-base of Devlin et al. 2019 (L=12, H=768, A=12, 110M parameters); ``head`` picks the encoder alone, the
    masked-LM model or the classifier; ``kwargs`` override :class:`BertConfig` fields."""
    arch = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)
    return _create_bert(arch, head, num_labels, kwargs)


@register_model
def bert_large(head: str = "none", num_labels: int = 2, **kwargs: Any) -> BertPreTrainedModel:
    """BERT-large of Devlin et al. 2019 (L=24, H=1024, A=16, 340M parameters); arguments as :func:`bert_base`."""
    arch = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096)
    return _create_bert(arch, head, num_labels, kwargs)


@register_model
def minilm_l6_h384(head: str = "none", num_labels: int = 2, **kwargs: Any) -> BertPreTrainedModel:
    """The BERT shape of sentence-transformers' all-MiniLM-L6-v2 (L=6, H=384, A=12, FFN 1536, 22.7M parameters),
    a MiniLM (Wang et al. 2020) distilled from a larger BERT; arguments as :func:`bert_base`. Its weights load with
    ``BertModel.from_hf(folder)``."""
    arch = dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536)
    return _create_bert(arch, head, num_labels, kwargs)


_SMALL = dict(
    vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
    max_position_embeddings=64,
)  # fmt: skip
SMALL_KWARGS: dict[str, dict] = {name: dict(_SMALL) for name in ("bert_base", "bert_large", "minilm_l6_h384")}
