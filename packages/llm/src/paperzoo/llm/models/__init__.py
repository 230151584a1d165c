"""paperzoo.llm.models: BERT and GPT, pure nn.Module, loading and saving Hugging Face model folders. Importing this
package registers every model."""

from paperzoo.llm.models.bert import (
    HF_TO_OURS,
    BertConfig,
    BertForMaskedLM,
    BertForSequenceClassification,
    BertModel,
    BertModelOutput,
    BertPreTrainedModel,
    convert_hf_state_dict,
)
from paperzoo.llm.models.gpt import GPT, GPTConfig, top_k_filter, top_p_filter
from paperzoo.llm.models.hf_io import hf_state, load_safetensors, read_hf_folder, save_safetensors
from paperzoo.llm.models.roberta import (
    ROBERTA_HF_TO_OURS,
    RobertaConfig,
    RobertaForMaskedLM,
    RobertaForSequenceClassification,
    RobertaModel,
    convert_roberta_state_dict,
)

__all__ = [
    "GPT",
    "HF_TO_OURS",
    "ROBERTA_HF_TO_OURS",
    "BertConfig",
    "BertForMaskedLM",
    "BertForSequenceClassification",
    "BertModel",
    "BertModelOutput",
    "BertPreTrainedModel",
    "GPTConfig",
    "RobertaConfig",
    "RobertaForMaskedLM",
    "RobertaForSequenceClassification",
    "RobertaModel",
    "convert_hf_state_dict",
    "convert_roberta_state_dict",
    "hf_state",
    "load_safetensors",
    "read_hf_folder",
    "save_safetensors",
    "top_k_filter",
    "top_p_filter",
]
