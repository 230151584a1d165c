"""paperzoo.llm.modules: the LightningModules (fine-tuning a classifier, training a causal language model,
masked-LM pre-training, zero- and few-shot classification without training)."""

from paperzoo.llm.modules.classification import SequenceClassifierModule
from paperzoo.llm.modules.language_model import CausalLMModule
from paperzoo.llm.modules.masked_lm import MaskedLMModule
from paperzoo.llm.modules.zero_shot import ZeroShotClassifierModule

__all__ = ["CausalLMModule", "MaskedLMModule", "SequenceClassifierModule", "ZeroShotClassifierModule"]
