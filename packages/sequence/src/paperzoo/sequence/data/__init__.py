"""paperzoo.sequence.data: translation data (parallel text batched by tokens, subword vocabularies).

The offline corpora that fill a ``ParallelTextDataModule`` folder are made by ``python -m
paperzoo.sequence.data.corpora`` (import :mod:`paperzoo.sequence.data.corpora` for its functions; it is not
imported here so that running it as a module does not import it twice).
"""

from paperzoo.sequence.data.algorithmic import AlgorithmicDataModule
from paperzoo.sequence.data.parallel import (
    ParallelTextDataModule,
    ParallelTextDataset,
    TokenBatchSampler,
    TranslationBatch,
    collate_translation,
    read_parallel_split,
    restore_order,
)
from paperzoo.sequence.data.sentiment import RottenTomatoesDataModule, WordVocabulary, read_rotten_tomatoes
from paperzoo.sequence.data.text_corpus import TextCorpusDataModule, read_text_corpus
from paperzoo.sequence.data.timeseries import SunspotsDataModule, read_sunspots
from paperzoo.sequence.data.tokenizer import SPECIAL_TOKENS, SubwordTokenizer, train_translation_tokenizers

__all__ = [
    "SPECIAL_TOKENS",
    "AlgorithmicDataModule",
    "ParallelTextDataModule",
    "ParallelTextDataset",
    "RottenTomatoesDataModule",
    "SubwordTokenizer",
    "SunspotsDataModule",
    "TextCorpusDataModule",
    "TokenBatchSampler",
    "TranslationBatch",
    "WordVocabulary",
    "collate_translation",
    "read_parallel_split",
    "read_rotten_tomatoes",
    "read_sunspots",
    "read_text_corpus",
    "restore_order",
    "train_translation_tokenizers",
]
