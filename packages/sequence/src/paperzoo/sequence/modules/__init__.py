"""paperzoo.sequence.modules (filled in by the sequence issue)."""

from paperzoo.sequence.modules.algorithmic import AlgorithmicTaskModule
from paperzoo.sequence.modules.embeddings import WordEmbeddingModule
from paperzoo.sequence.modules.forecasting import Forecaster
from paperzoo.sequence.modules.text_classification import TextClassifier
from paperzoo.sequence.modules.translation import TranslationModule

__all__ = ["AlgorithmicTaskModule", "Forecaster", "TextClassifier", "TranslationModule", "WordEmbeddingModule"]
