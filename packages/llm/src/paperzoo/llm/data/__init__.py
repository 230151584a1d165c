"""paperzoo.llm.data: tokenisers (WordPiece, GPT-2's and RoBERTa's byte-level BPE) and DataModules (Rotten Tomatoes
and GLUE for fine-tuning, Shakespeare for character-level language modelling and masked-LM pre-training)."""

from paperzoo.llm.data.auto import ByteLevelBPETokenizer, load_sequence_classifier, load_tokenizer
from paperzoo.llm.data.glue import GLUE_TASKS, GlueDataModule, read_glue_file
from paperzoo.llm.data.gpt2_bpe import GPT2Tokenizer, gpt2_vocabulary_file, read_tiktoken_file
from paperzoo.llm.data.sentiment import PadBatch, RottenTomatoesTextDataModule, minilm_path
from paperzoo.llm.data.shakespeare import CharVocabulary, ShakespeareCharDataModule, read_texts, split_texts
from paperzoo.llm.data.text import MLMCollator, ShakespeareMLMDataModule, mask_tokens
from paperzoo.llm.data.wordpiece import WordPieceTokenizer

__all__ = [
    "GLUE_TASKS",
    "ByteLevelBPETokenizer",
    "CharVocabulary",
    "GPT2Tokenizer",
    "GlueDataModule",
    "MLMCollator",
    "PadBatch",
    "RottenTomatoesTextDataModule",
    "ShakespeareCharDataModule",
    "ShakespeareMLMDataModule",
    "WordPieceTokenizer",
    "gpt2_vocabulary_file",
    "load_sequence_classifier",
    "load_tokenizer",
    "mask_tokens",
    "minilm_path",
    "read_glue_file",
    "read_texts",
    "read_tiktoken_file",
    "split_texts",
]
