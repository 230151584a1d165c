r"""RoBERTa from Liu et al. 2019, "RoBERTa: A Robustly Optimized BERT Pretraining Approach" (arXiv 1907.11692), on
top of our BERT (:mod:`paperzoo.llm.models.bert`), loading Hugging Face's weights.

RoBERTa keeps BERT-base's and BERT-large's architecture (section 2.2) and changes the pre-training: more data, longer,
bigger batches, dynamic masking, no next-sentence prediction (section 4), and GPT-2's byte-level BPE of 50K units
(section 4.4; :class:`paperzoo.llm.data.auto.ByteLevelBPETokenizer`). What the released models change in the network
itself comes from fairseq, where they were trained, and is all in the embeddings and the heads:

- positions are counted over the non-padding tokens and start at ``padding_idx + 1`` (fairseq's ``make_positions``):
  with ``<pad>`` = 1 the first token has position 2, so the table has 512 + 2 = 514 rows and the 512-token limit stays;
  a left-padded sequence gets the same positions as the unpadded one;
- one segment (``type_vocab_size = 1``): there is no sentence A / sentence B, pairs are ``<s> a </s></s> b </s>``;
- LayerNorm epsilon 1e-5;
- the classification head is fairseq's: dropout, dense, tanh, dropout, projection, on the first token ``<s>``, in place
  of BERT's pooler (which :class:`RobertaModel` still has, as Hugging Face's does, for loading its checkpoints);
- the masked-LM head is BERT's without the separate transform names: ``lm_head.{dense, layer_norm, decoder}``.

The encoder layers are BERT's (:class:`~paperzoo.llm.models.bert.BertEncoder`), so LoRA's ``target_modules=["query",
"value"]`` (Hu et al. 2021, section 5.2: RoBERTa-base and -large on GLUE) selects the same layers as in Hugging Face's
``RobertaModel``, and ``modules_to_save=["classifier"]`` the head. Hugging Face's names sit under ``roberta.`` in its
task models; :data:`ROBERTA_HF_TO_OURS` is the whole mapping.

Registered variants (``create_model(name, head="none" | "mlm" | "classification", num_labels=2, **config)``):

=================  ==  ====  ==  =====  ===========================================================================
name                L     H   A  FFN    parameters (encoder with pooler, as Hugging Face's ``RobertaModel``)
=================  ==  ====  ==  =====  ===========================================================================
``roberta_base``   12   768  12   3072  124,645,632 ("125M", Hu et al. 2021 Table 2)
``roberta_large``  24  1024  16   4096  355,359,744 ("355M", Hu et al. 2021 Table 2)
=================  ==  ====  ==  =====  ===========================================================================
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import Tensor, nn

from paperzoo.core.errors import ConfigError
from paperzoo.llm.models.bert import (
    HF_TO_OURS,
    BertConfig,
    BertEmbeddings,
    BertModel,
    BertPreTrainedModel,
    _ClassifierHFMixin,
    _compile,
    _convert_state_dict,
)
from paperzoo.llm.registry import register_model

# Hugging Face's RobertaConfig class defaults, which a config.json may leave out: BERT's, but for the vocabulary and
# the special tokens. (Its released checkpoints all spell out 514 positions, one segment and epsilon 1e-5.)
_HF_CLASS_DEFAULTS = {
    **dataclasses.asdict(BertConfig()),
    "vocab_size": 50265,
    "pad_token_id": 1,
    "bos_token_id": 0,
    "eos_token_id": 2,
}


@dataclass
class RobertaConfig(BertConfig):
    """Hyper-parameters of RoBERTa, under Hugging Face's ``RobertaConfig`` names; the defaults are those of the released
    RoBERTa-base (``FacebookAI/roberta-base``'s ``config.json``). The fields are :class:`BertConfig`'s, plus:

    Args:
        bos_token_id: ``<s>``, the first token of every sequence, whose final state the classifier reads.
        eos_token_id: ``</s>``, which ends every sequence and separates the two of a pair.

    ``vocab_size`` counts GPT-2's byte-level BPE tokens renumbered by fairseq, its special tokens and ``<mask>``;
    ``max_position_embeddings`` is 514, 512 positions after the ``pad_token_id + 1`` offset; ``type_vocab_size`` is 1.
    """

    vocab_size: int = 50265
    max_position_embeddings: int = 514
    type_vocab_size: int = 1
    layer_norm_eps: float = 1e-5
    pad_token_id: int = 1
    bos_token_id: int = 0
    eos_token_id: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_position_embeddings < self.pad_token_id + 2:
            raise ConfigError(
                f"max_position_embeddings={self.max_position_embeddings} leaves no position for a token: RoBERTa's "
                f"positions start at pad_token_id + 1 = {self.pad_token_id + 1}, so give at least "
                f"{self.pad_token_id + 2} (514 for 512 tokens with pad_token_id 1)"
            )

    @property
    def max_tokens(self) -> int:
        """The longest sequence the position table holds (512 for the released models)."""
        return self.max_position_embeddings - self.pad_token_id - 1

    @classmethod
    def from_hf_dict(cls, d: Mapping[str, Any], **overrides: Any) -> RobertaConfig:
        """The config of a Hugging Face RoBERTa ``config.json`` (or ``RobertaConfig.to_dict()``); keys it leaves out
        take Hugging Face's class defaults, unknown keys are ignored.

        Raises:
            ConfigError: the dict describes another ``model_type``, or a variant BERT's checks refuse (relative
                positions, a decoder), or ``overrides`` names a field that does not exist.
        """
        model_type = d.get("model_type", "roberta")
        if model_type != "roberta":
            raise ConfigError(
                f"model_type={model_type!r} is not RoBERTa; this class loads model_type='roberta' only (use "
                "paperzoo.llm.data.auto.load_sequence_classifier to pick the class from the folder)"
            )
        # The architecture checks are BERT's; they run on the dict relabelled as a BERT's and build this class.
        return cast(RobertaConfig, super().from_hf_dict({**_HF_CLASS_DEFAULTS, **d, "model_type": "bert"}, **overrides))

    def to_hf_dict(self) -> dict[str, Any]:
        """The ``config.json`` contents of a Hugging Face ``RobertaConfig`` with these hyper-parameters."""
        return {"model_type": "roberta", **dataclasses.asdict(self)}


class RobertaEmbeddings(BertEmbeddings):
    r"""BERT's input representation (Devlin et al. 2019, section 3) with fairseq's positions, as RoBERTa was trained:

    .. math::
        p_t = \mathrm{pad} + \sum_{s \le t} [x_s \ne \mathrm{pad}] \text{ at tokens}, \quad p_t = \mathrm{pad}
        \text{ at padding}; \qquad
        E = \mathrm{Dropout}\big(\mathrm{LN}(E_{token}[x_t] + E_{segment}[s_t] + E_{position}[p_t])\big)

    Positions are counted from the tokens that are not ``pad_token_id`` (as Hugging Face's and fairseq's are; the
    attention mask is not consulted), so padding on either side leaves the real tokens' positions alone. Padding gets
    the position ``pad_token_id``, whose row, like the padding token's, is initialised to zero and gets no gradient.

    Args:
        config: the hyper-parameters.

    Shapes:
        - input_ids, token_type_ids: :math:`(B, T)`
        - output: :math:`(B, T, H)`
    """

    def __init__(self, config: RobertaConfig) -> None:
        super().__init__(config)
        self.padding_idx = config.pad_token_id
        self.position_embeddings = nn.Embedding(
            config.max_position_embeddings, config.hidden_size, padding_idx=config.pad_token_id
        )

    def position_ids(self, input_ids: Tensor) -> Tensor:
        """The positions of ``input_ids`` ``(B, T)``: ``pad + 1, pad + 2, ...`` over tokens, ``pad`` at padding."""
        is_token = input_ids.ne(self.padding_idx).long()  # (B, T)
        return torch.cumsum(is_token, dim=1) * is_token + self.padding_idx  # (B, T)

    def _check_length(self, seq_len: int) -> None:
        limit = self.position_embeddings.num_embeddings - self.padding_idx - 1
        if seq_len > limit:
            raise ConfigError(
                f"the input has {seq_len} tokens but the model has positions for {limit} (max_position_embeddings "
                f"minus pad_token_id + 1); truncate the input to {limit} tokens"
            )


class RobertaClassificationHead(nn.Module):
    r"""RoBERTa's sentence-classification head (fairseq's, used for GLUE by Liu et al. 2019 and by Hu et al. 2021):

    .. math::
        \mathrm{logits} = W_o\, \mathrm{Dropout}\big(\tanh(W_d\, \mathrm{Dropout}(h_{<s>}) + b_d)\big) + b_o

    on the last layer's state of the first token ``<s>``; a pooler trained with the task, where BERT's pooler comes
    from pre-training.

    Args:
        config: the hyper-parameters (``classifier_dropout``, or else ``hidden_dropout_prob``).
        num_labels: number of classes K (1 for regression).

    Shapes:
        - hidden_states: :math:`(B, T, H)`
        - output: :math:`(B, K)`
    """

    def __init__(self, config: RobertaConfig, num_labels: int) -> None:
        super().__init__()
        p = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(p)
        self.out_proj = nn.Linear(config.hidden_size, num_labels)

    def forward(self, hidden_states: Tensor) -> Tensor:
        x = self.dropout(hidden_states[:, 0])  # (B, H)
        x = self.dropout(torch.tanh(self.dense(x)))
        return self.out_proj(x)  # (B, K)


class RobertaLMHead(nn.Module):
    r"""RoBERTa's masked-language-model head (Liu et al. 2019; BERT's, Devlin et al. 2019 section 3.1):

    .. math::
        \mathrm{logits} = \mathrm{LN}(\mathrm{GELU}(h W_t + b_t))\, E_{token}^\top + b_{vocab}

    with the exact (erf) GELU whatever ``hidden_act`` says, as in fairseq and Hugging Face. ``decoder.weight`` is tied
    to the word embedding by :class:`RobertaForMaskedLM`; ``decoder.bias`` is Hugging Face's ``lm_head.bias``.

    Args:
        config: the hyper-parameters.

    Shapes:
        - hidden_states: :math:`(B, T, H)`
        - output: :math:`(B, T, V)`
    """

    def __init__(self, config: RobertaConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = nn.GELU()
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)

    def forward(self, hidden_states: Tensor) -> Tensor:
        return self.decoder(self.layer_norm(self.act(self.dense(hidden_states))))  # (B, T, V)


# The weight names of a Hugging Face RoBERTa (inside "roberta." in its task models) and ours. The encoder's rows are
# BERT's (``{i}`` a layer, ``{p}`` weight or bias); the heads are RoBERTa's. The first row that matches wins.
ROBERTA_HF_TO_OURS: tuple[tuple[str, str], ...] = (
    *(row for row in HF_TO_OURS if row[0].startswith(("embeddings.", "encoder.", "pooler."))),
    # Hugging Face                         ours
    ("lm_head.dense.{p}",                  "lm_head.dense.{p}"),
    ("lm_head.layer_norm.{p}",             "lm_head.layer_norm.{p}"),
    ("lm_head.bias",                       "lm_head.decoder.bias"),
    ("lm_head.decoder.bias",               "lm_head.decoder.bias"),  # the same tensor as the row above
    ("classifier.dense.{p}",               "classifier.dense.{p}"),
    ("classifier.out_proj.{p}",            "classifier.out_proj.{p}"),
)  # fmt: skip

# Hugging Face names with nothing to load: the embeddings' index buffers and the decoder matrix (the word embedding).
_HF_SKIPPED = re.compile(r"embeddings\.(position_ids|token_type_ids)|lm_head\.decoder\.weight")
_TIED_DECODER = "lm_head.decoder.weight"
_FORWARD = tuple((_compile(hf), ours) for hf, ours in ROBERTA_HF_TO_OURS)
_BACKWARD = tuple((_compile(ours), hf) for hf, ours in ROBERTA_HF_TO_OURS)


def convert_roberta_state_dict(state_dict: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
    """Our names for the weights of a Hugging Face RoBERTa state dict, through :data:`ROBERTA_HF_TO_OURS`.

    Encoder weights come back without the ``roberta.`` prefix (a bare :class:`RobertaModel`'s names), head weights as
    ``lm_head.*`` and ``classifier.*``. Returns ``(state_dict, ignored)``, ``ignored`` naming the weights of heads no
    model here has (token classification, question answering).

    Raises:
        CorruptDataError: a name inside the encoder is not one of RoBERTa's, or two names of one tied tensor hold
            different values.
    """
    return _convert_state_dict(
        state_dict,
        prefix="roberta.",
        skipped=_HF_SKIPPED,
        rules=_FORWARD,
        family="RoBERTa",
        variant="",
        legacy_names={},
    )


class RobertaPreTrainedModel(BertPreTrainedModel):
    """What every RoBERTa here shares: BERT's initialisation (as Hugging Face's RoBERTa), loading Hugging Face RoBERTa
    weights through :data:`ROBERTA_HF_TO_OURS`, saving a folder that ``transformers`` loads, RoBERTa-shaped example
    inputs.

    :meth:`~paperzoo.llm.models.bert.BertPreTrainedModel.from_hf` takes a Hugging Face ``RobertaModel``,
    ``RobertaForMaskedLM`` (the released ``roberta-base`` and ``roberta-large``) or
    ``RobertaForSequenceClassification``, as a folder or a model object, and ``save_pretrained`` writes a folder that
    ``transformers`` loads. Subclasses set ``hf_architecture`` and ``encoder_prefix`` (``""`` or ``"roberta."``).
    """

    config: RobertaConfig
    config_class = RobertaConfig
    family = "RoBERTa"
    convert_hf = staticmethod(convert_roberta_state_dict)
    hf_name_rules = _BACKWARD

    def example_inputs(self, batch_size: int = 2) -> tuple[Tensor, Tensor, Tensor]:
        """``(input_ids, attention_mask, token_type_ids)`` of ``batch_size`` sequences ``<s> ... </s>`` of 8 tokens
        (ordinary ids drawn above the specials), the last one right-padded with ``<pad>`` by two; one segment."""
        c = self.config
        device = next(self.parameters()).device
        seq_len = min(8, c.max_tokens)
        generator = torch.Generator().manual_seed(0)
        first_ordinary = max(c.bos_token_id, c.pad_token_id, c.eos_token_id) + 1
        input_ids = torch.randint(first_ordinary, c.vocab_size, (batch_size, seq_len), generator=generator)
        lengths = torch.full((batch_size,), seq_len)
        lengths[-1] = max(2, seq_len - 2)
        input_ids[:, 0] = c.bos_token_id
        input_ids[torch.arange(batch_size), lengths - 1] = c.eos_token_id
        attention_mask = (torch.arange(seq_len) < lengths[:, None]).long()  # (B, T)
        input_ids[attention_mask == 0] = c.pad_token_id
        token_type_ids = torch.zeros(batch_size, seq_len, dtype=torch.long)
        return input_ids.to(device), attention_mask.to(device), token_type_ids.to(device)


class RobertaModel(RobertaPreTrainedModel, BertModel):
    r"""The RoBERTa encoder of Liu et al. 2019, "RoBERTa: A Robustly Optimized BERT Pretraining Approach": BERT's
    (Devlin et al. 2019, section 3) over :class:`RobertaEmbeddings`:

    .. math::
        h^0 = \mathrm{Embed}(x), \qquad h^l = \mathrm{Layer}_l(h^{l-1}) \;(l = 1..L), \qquad
        \mathrm{pooled} = \tanh(W_p h^L_{<s>} + b_p)

    ``attention_mask`` hides padding from the keys; positions come from the padding token in ``input_ids`` (see
    :class:`RobertaEmbeddings`), so padded positions must hold ``pad_token_id``.

    Args:
        config: the hyper-parameters.
        add_pooling_layer: build BERT's pooler (Hugging Face's ``RobertaModel`` has one; RoBERTa's task heads do not
            use it).

    Shapes:
        - input_ids: :math:`(B, T)` token ids, ``T`` at most ``config.max_tokens``
        - attention_mask: :math:`(B, T)`, 1 at tokens and 0 at padding; ``None`` attends to every position
        - token_type_ids: :math:`(B, T)` segment ids, all 0 for the released models; ``None`` for zeros
        - output: a :class:`~paperzoo.llm.models.bert.BertModelOutput` with ``last_hidden_state`` :math:`(B, T, H)`,
          ``pooler_output`` :math:`(B, H)` and, with ``output_hidden_states``, L + 1 tensors :math:`(B, T, H)`
    """

    hf_architecture = "RobertaModel"
    encoder_prefix = ""
    embeddings_class = RobertaEmbeddings


class RobertaForMaskedLM(RobertaPreTrainedModel):
    """RoBERTa with its masked-language-model head (Liu et al. 2019, section 2.3 and 4.1, dynamic masking), the form
    in which ``roberta-base`` and ``roberta-large`` are released. The decoder matrix is the word embedding.

    Args:
        config: the hyper-parameters.

    Shapes:
        - input_ids, attention_mask, token_type_ids: :math:`(B, T)`, as in :class:`RobertaModel`
        - output: :math:`(B, T, V)` logits
    """

    hf_architecture = "RobertaForMaskedLM"
    encoder_prefix = "roberta."

    def __init__(self, config: RobertaConfig) -> None:
        super().__init__()
        self.config = config
        self.roberta = RobertaModel(config, add_pooling_layer=False)
        self.lm_head = RobertaLMHead(config)
        self.lm_head.decoder.weight = self.roberta.embeddings.word_embeddings.weight
        self._reset_head()

    def reset_parameters(self) -> None:
        """Draw every weight afresh; the tied decoder matrix is drawn once, as the word embedding."""
        self.roberta.reset_parameters()
        self._reset_head()

    def _reset_head(self) -> None:
        self._init_weights(self.lm_head.dense)
        self._init_weights(self.lm_head.layer_norm)
        nn.init.zeros_(self.lm_head.decoder.bias)

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor | None = None, token_type_ids: Tensor | None = None
    ) -> Tensor:
        hidden = self.roberta(input_ids, attention_mask, token_type_ids).last_hidden_state  # (B, T, H)
        return self.lm_head(hidden)  # (B, T, V)

    def load_hf_state_dict(self, state_dict: Mapping[str, Tensor]) -> list[str]:
        """As :meth:`RobertaPreTrainedModel.load_hf_state_dict`; refuses a checkpoint whose decoder matrix is not its
        word embedding, which this model, tied, cannot represent."""
        embedding = state_dict.get("roberta.embeddings.word_embeddings.weight")
        decoder = state_dict.get(_TIED_DECODER)
        if embedding is not None and decoder is not None and not torch.equal(embedding, decoder):
            raise ConfigError(
                "the checkpoint's masked-LM decoder is not tied to its word embedding; this RobertaForMaskedLM ties "
                "them, as RoBERTa does, so it cannot load that head (load the encoder into RobertaModel instead)"
            )
        return super().load_hf_state_dict(state_dict)


class RobertaForSequenceClassification(_ClassifierHFMixin, RobertaPreTrainedModel):
    """RoBERTa fine-tuned for sequence classification (Liu et al. 2019, section 5.1, GLUE; Hu et al. 2021, section
    5.2, with LoRA): :class:`RobertaClassificationHead` on the final state of ``<s>``.

    Args:
        config: the hyper-parameters (``classifier_dropout``, or else ``hidden_dropout_prob``, in the head).
        num_labels: number of classes K (1 for regression, as GLUE's STS-B).

    Shapes:
        - input_ids, attention_mask, token_type_ids: :math:`(B, T)`, as in :class:`RobertaModel`
        - output: :math:`(B, K)` logits
    """

    hf_architecture = "RobertaForSequenceClassification"
    encoder_prefix = "roberta."

    def __init__(self, config: RobertaConfig, num_labels: int = 2) -> None:
        super().__init__()
        if num_labels < 1:
            raise ConfigError(f"num_labels={num_labels} must be at least 1 (1 is regression)")
        self.config = config
        self.num_labels = num_labels
        self.roberta = RobertaModel(config, add_pooling_layer=False)
        self.classifier = RobertaClassificationHead(config, num_labels)
        self.classifier.apply(self._init_weights)

    def reset_parameters(self) -> None:
        """Draw every weight afresh."""
        self.roberta.reset_parameters()
        self.classifier.apply(self._init_weights)

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor | None = None, token_type_ids: Tensor | None = None
    ) -> Tensor:
        hidden = self.roberta(input_ids, attention_mask, token_type_ids).last_hidden_state  # (B, T, H)
        return self.classifier(hidden)  # (B, K)


def _create_roberta(arch: dict[str, int], head: str, num_labels: int, kwargs: dict[str, Any]) -> RobertaPreTrainedModel:
    config = RobertaConfig.with_overrides({**dataclasses.asdict(RobertaConfig()), **arch}, **kwargs)
    if head == "none":
        return RobertaModel(config)
    if head == "mlm":
        return RobertaForMaskedLM(config)
    if head == "classification":
        return RobertaForSequenceClassification(config, num_labels=num_labels)
    raise ConfigError(f"head={head!r} is not a RoBERTa head; use 'none', 'mlm' or 'classification'")


@register_model
def roberta_base(head: str = "none", num_labels: int = 2, **kwargs: Any) -> RobertaPreTrainedModel:
    """RoBERTa-base of Liu et al. 2019 (L=12, H=768, A=12, 125M parameters), the model of Hu et al. 2021's GLUE
    experiments; ``head`` picks the encoder alone, the masked-LM model or the classifier; ``kwargs`` override
    :class:`RobertaConfig` fields."""
    arch = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)
    return _create_roberta(arch, head, num_labels, kwargs)


@register_model
def roberta_large(head: str = "none", num_labels: int = 2, **kwargs: Any) -> RobertaPreTrainedModel:
    """RoBERTa-large of Liu et al. 2019 (L=24, H=1024, A=16, 355M parameters); arguments as :func:`roberta_base`."""
    arch = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096)
    return _create_roberta(arch, head, num_labels, kwargs)


_SMALL = dict(
    vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
    max_position_embeddings=66,
)  # fmt: skip
SMALL_KWARGS: dict[str, dict] = {name: dict(_SMALL) for name in ("roberta_base", "roberta_large")}
