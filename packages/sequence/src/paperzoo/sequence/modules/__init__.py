"""paperzoo.sequence.modules (filled in by the sequence issue)."""

from paperzoo.sequence.modules.forecasting import Forecaster
from paperzoo.sequence.modules.text_classification import TextClassifier
from paperzoo.sequence.modules.translation import TranslationModule

__all__ = ["Forecaster", "TextClassifier", "TranslationModule"]
