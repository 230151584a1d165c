"""paperzoo.llm: BERT, GPT, LoRA and QLoRA, from scratch.

The layout is the one every domain shares: ``layers``, ``models`` (pure nn.Module), ``modules``
(LightningModules), ``data`` (DataModules) and a registry.
"""

from paperzoo.llm import models
from paperzoo.llm.data import (
    ByteLevelBPETokenizer,
    GlueDataModule,
    GPT2Tokenizer,
    RottenTomatoesTextDataModule,
    ShakespeareCharDataModule,
    ShakespeareMLMDataModule,
    WordPieceTokenizer,
)
from paperzoo.llm.layers import LoRALinear, apply_lora, merge_and_unload, merge_lora, unmerge_lora
from paperzoo.llm.models import (
    GPT,
    BertConfig,
    BertForMaskedLM,
    BertForSequenceClassification,
    BertModel,
    GPTConfig,
    RobertaForSequenceClassification,
    RobertaModel,
)
from paperzoo.llm.modules import (
    CausalLMModule,
    MaskedLMModule,
    SequenceClassifierModule,
    ZeroShotClassifierModule,
)
from paperzoo.llm.registry import create_model, list_models, register_model

__all__ = [
    "GPT",
    "BertConfig",
    "BertForMaskedLM",
    "BertForSequenceClassification",
    "BertModel",
    "ByteLevelBPETokenizer",
    "CausalLMModule",
    "GPT2Tokenizer",
    "GPTConfig",
    "GlueDataModule",
    "LoRALinear",
    "MaskedLMModule",
    "RobertaForSequenceClassification",
    "RobertaModel",
    "RottenTomatoesTextDataModule",
    "SequenceClassifierModule",
    "ShakespeareCharDataModule",
    "ShakespeareMLMDataModule",
    "WordPieceTokenizer",
    "ZeroShotClassifierModule",
    "apply_lora",
    "create_model",
    "list_models",
    "merge_and_unload",
    "merge_lora",
    "models",
    "register_model",
    "unmerge_lora",
]
