"""GLUE's TSV files (Wang et al. 2019) as batches for BERT and RoBERTa: reading, tokenising, segments, errors, and a
fast_dev_run of LoRA fine-tuning a tiny RoBERTa on SST-2-format data.

The files are tiny but in the layout and format of GLUE's download (``download_glue_data.py``): ``SST-2/train.tsv``
``sentence<TAB>label`` with a header, ``test.tsv`` ``index<TAB>sentence``; CoLA without a header; MRPC with its
``Quality`` header (and a byte-order mark); RTE and MNLI with their pair columns.
"""

import json

import lightning.pytorch as pl
import pytest
import torch

from paperzoo.core.errors import ConfigError, CorruptDataError, DatasetNotFoundError
from paperzoo.llm.data.auto import bytes_to_unicode, load_tokenizer
from paperzoo.llm.data.glue import GLUE_TASKS, GlueDataModule, read_glue_file
from paperzoo.llm.data.wordpiece import WordPieceTokenizer
from paperzoo.llm.models.roberta import SMALL_KWARGS
from paperzoo.llm.modules.classification import SequenceClassifierModule

SST2_TRAIN = [
    ("hide new secretions from the parental units ", 0),
    ("contains no wit , only labored gags ", 0),
    ("that loves its characters and communicates something rather beautiful about human nature ", 1),
    ("the greatest musicians ", 1),
    ('with a "quoted" title and an apostrophe \'s ', 1),
    ("remains utterly satisfied to remain the same throughout ", 0),
    ("is a charming and often affecting journey ", 1),
]
SST2_DEV = [("it 's a charming and often affecting journey . ", 1), ("unflinchingly bleak and desperate ", 0)]
RTE_ROWS = [
    (
        "No Weapons of Mass Destruction Found in Iraq Yet.",
        "Weapons of Mass Destruction Found in Iraq.",
        "not_entailment",
    ),
    ("A place of sorrow, after Pope John Paul II died.", "Pope Benedict XVI is the new leader.", "not_entailment"),
    (
        "Herceptin was already approved to treat the sickest breast cancer patients.",
        "Herceptin can be used.",
        "entailment",
    ),
]


def write_sst2(folder, train=SST2_TRAIN, dev=SST2_DEV):
    """GLUE's SST-2 folder: train and dev ``sentence<TAB>label``, test ``index<TAB>sentence``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train.tsv", train), ("dev.tsv", dev)):
        (folder / name).write_text("sentence\tlabel\n" + "".join(f"{s}\t{y}\n" for s, y in rows), encoding="utf-8")
    test = "index\tsentence\n" + "".join(f"{i}\t{s}\n" for i, (s, _) in enumerate(dev))
    (folder / "test.tsv").write_text(test, encoding="utf-8")
    return folder


def write_rte(folder, rows=RTE_ROWS):
    """GLUE's RTE folder: ``index<TAB>sentence1<TAB>sentence2<TAB>label``."""
    folder.mkdir(parents=True, exist_ok=True)
    text = "index\tsentence1\tsentence2\tlabel\n" + "".join(f"{i}\t{a}\t{b}\t{y}\n" for i, (a, b, y) in enumerate(rows))
    for name in ("train.tsv", "dev.tsv"):
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def roberta_tokenizer(tmp_path_factory):
    """A RoBERTa tokeniser folder: fairseq's specials, the 256 bytes, a few merges, ``<mask>`` last."""
    merges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("Ġ", "a"), ("i", "n"), ("Ġ", "s"), ("Ġa", "n"), ("Ġan", "d")]
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for char in bytes_to_unicode().values():
        vocab[char] = len(vocab)
    for left, right in merges:
        vocab[left + right] = len(vocab)
    vocab["<mask>"] = len(vocab)
    folder = tmp_path_factory.mktemp("roberta")
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def bert_tokenizer(tmp_path_factory):
    words = ["the", "a", "of", "in", "weapons", "mass", "destruction", "found", "iraq", "pope", "died", "is", "."]
    return WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]).save(tmp_path_factory.mktemp("b"))


def _all_batches(loader) -> dict[str, list]:
    rows: dict[str, list] = {}
    for batch in loader:
        for key, value in batch.items():
            rows.setdefault(key, []).extend(value.tolist())
    return rows


def test_sst2_batches_hold_the_tokenizers_ids(tmp_path, roberta_tokenizer):
    write_sst2(tmp_path / "glue" / "SST-2")
    data = GlueDataModule(tmp_path / "glue", task="sst2", tokenizer=str(roberta_tokenizer), max_len=12, batch_size=3)
    data.setup("fit")
    assert data.num_classes == 2 and data.classes == ["0", "1"]
    assert data.test_set is data.val_set and len(data.train_set) == 7 and len(data.val_set) == 2
    tokenizer = load_tokenizer(roberta_tokenizer)
    batch = next(iter(data.val_dataloader()))
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids", "labels"}
    assert batch["labels"].tolist() == [1, 0]
    for row, (sentence, _) in enumerate(SST2_DEV):
        ids = tokenizer.encode(sentence, max_length=12, truncation=True)
        assert ids[0] == 0 and ids[-1] == 2 and len(ids) <= 12
        assert batch["input_ids"][row, : len(ids)].tolist() == ids
        assert (batch["input_ids"][row, len(ids) :] == 1).all()  # <pad>
        assert batch["attention_mask"][row].sum() == len(ids)
    assert batch["token_type_ids"].max() == 0
    assert batch["input_ids"].shape[1] == 12  # the first sentence was cut to max_len
    train = _all_batches(data.train_dataloader())
    assert sorted(train["labels"]) == sorted(y for _, y in SST2_TRAIN)  # every example once an epoch
    assert data.majority_class == 1


def test_pair_segments_for_bert_and_roberta(tmp_path, bert_tokenizer, roberta_tokenizer):
    write_rte(tmp_path / "RTE")
    bert = GlueDataModule(tmp_path, task="rte", tokenizer=str(bert_tokenizer), max_len=16, batch_size=4)
    bert.setup("fit")
    assert bert.num_classes == 2 and bert.train_set.labels == [1, 1, 0]  # entailment is class 0
    batch = next(iter(bert.val_dataloader()))
    words = WordPieceTokenizer.from_hf(bert_tokenizer)
    for row, (a, b, _) in enumerate(RTE_ROWS):
        ids = words.encode(a, b, max_length=16, truncation=True)
        first_sep = ids.index(words.sep_token_id)
        assert batch["input_ids"][row, : len(ids)].tolist() == ids
        segments = batch["token_type_ids"][row].tolist()
        assert segments == [0] * (first_sep + 1) + [1] * (len(ids) - first_sep - 1) + [0] * (16 - len(ids))
    roberta = GlueDataModule(tmp_path / "RTE", task="rte", tokenizer=str(roberta_tokenizer), max_len=200)
    roberta.setup("fit")
    batch = next(iter(roberta.val_dataloader()))
    ids = batch["input_ids"][0][batch["attention_mask"][0].bool()].tolist()
    assert ids == load_tokenizer(roberta_tokenizer).encode(RTE_ROWS[0][0], RTE_ROWS[0][1])
    assert ids.count(2) == 3 and batch["token_type_ids"].max() == 0  # <s> a </s></s> b </s>, one segment


@pytest.mark.parametrize(
    ("task", "content", "expected"),
    [
        ("cola", "gj04\t1\t\tOur friends won't buy this analysis.\ngj04\t0\t*\tThey drank the pub.\n", ["1", "0"]),
        (
            "mrpc",
            '\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t702876\t702977\tHe said "yes" .\tHe agreed .\n',
            ["1"],
        ),
        (
            "mnli",
            "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
            "sentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label\n"
            "0\t31193\t31193n\tgovernment\t( x )\t( y )\t(ROOT x)\t(ROOT y)\tConceptually cream.\tProduct and "
            "geography.\tneutral\tneutral\n",
            ["2"],
        ),
        ("qnli", "index\tquestion\tsentence\tlabel\n0\tWhen?\tIn 1066.\tentailment\n", ["0"]),
    ],
)
def test_read_the_tasks_formats(tmp_path, task, content, expected):
    path = tmp_path / "train.tsv"
    path.write_text(content, encoding="utf-8")
    examples = read_glue_file(path, task)
    assert [str(y) for y in examples.labels] == expected
    assert (examples.pairs is None) == (len(GLUE_TASKS[task].text_columns) == 1)
    if task == "cola":
        assert examples.texts == ["Our friends won't buy this analysis.", "They drank the pub."]
    if task == "mrpc":
        assert examples.texts == ['He said "yes" .'] and examples.pairs == ["He agreed ."]  # quotes kept, BOM gone
    if task == "mnli":
        assert examples.texts == ["Conceptually cream."] and examples.pairs == ["Product and geography."]


def test_mnli_validates_on_dev_matched(tmp_path, roberta_tokenizer):
    folder = tmp_path / "MNLI"
    folder.mkdir()
    header = "index\tsentence1\tsentence2\tgold_label\n"
    (folder / "train.tsv").write_text(header + "0\ta\tb\tentailment\n1\tc\td\tcontradiction\n", encoding="utf-8")
    (folder / "dev_matched.tsv").write_text(header + "0\te\tf\tneutral\n", encoding="utf-8")
    data = GlueDataModule(tmp_path, task="mnli", tokenizer=str(roberta_tokenizer))
    data.setup()
    assert data.num_classes == 3 and data.val_set.labels == [2]


def test_missing_data_names_the_layout(tmp_path, roberta_tokenizer):
    data = GlueDataModule(tmp_path / "glue", task="sst2", tokenizer=str(roberta_tokenizer))
    with pytest.raises(DatasetNotFoundError, match=r"SST-2/train\.tsv and SST-2/dev\.tsv.*download_glue_data\.py"):
        data.setup()
    (tmp_path / "glue" / "SST-2").mkdir(parents=True)
    (tmp_path / "glue" / "SST-2" / "train.tsv").write_text("sentence\tlabel\n", encoding="utf-8")
    with pytest.raises(DatasetNotFoundError, match=r"dev\.tsv"):
        data.setup()
    with pytest.raises(ConfigError, match="sst2"):
        GlueDataModule(tmp_path, task="stsb")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("sentence\tlabel\ngood film\t1\nno label here\n", r"line 3 of .*train\.tsv has 1 tab-separated field"),
        ("sentence\tlabel\ngood film\t1\nbad film\tnegative\n", r"line 3 of .*train\.tsv has the label 'negative'"),
        ("text\tlabel\ngood film\t1\n", r"header of .*train\.tsv lacks the column\(s\) 'sentence'"),
        ("", r"train\.tsv is empty"),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path, roberta_tokenizer, content, message):
    write_sst2(tmp_path)
    (tmp_path / "train.tsv").write_text(content, encoding="utf-8")
    with pytest.raises(CorruptDataError, match=message):
        GlueDataModule(tmp_path, task="sst2", tokenizer=str(roberta_tokenizer)).setup()


def test_lora_fine_tuning_runs_on_sst2_files(tmp_path, roberta_tokenizer):
    write_sst2(tmp_path / "SST-2")
    data = GlueDataModule(tmp_path, task="sst2", tokenizer=str(roberta_tokenizer), max_len=16, batch_size=4)
    vocab_size = load_tokenizer(roberta_tokenizer).vocab_size
    module = SequenceClassifierModule(
        pretrained=None,
        network="roberta_base",
        network_kwargs={**SMALL_KWARGS["roberta_base"], "vocab_size": vocab_size, "max_position_embeddings": 18},
        num_labels=data.num_classes,
        finetune="lora",
        lora_r=4,
    )
    trainable = {name for name, p in module.network.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_" in name or name.startswith("classifier.") for name in trainable)
    before = {name: p.detach().clone() for name, p in module.network.named_parameters()}
    trainer = pl.Trainer(fast_dev_run=True, accelerator="cpu", logger=False, enable_progress_bar=False)
    trainer.fit(module, datamodule=data)
    (result,) = trainer.test(module, datamodule=data, verbose=False)
    assert 0.0 <= result["test/acc"] <= 1.0 and result["test/majority_acc"] == 0.5
    changed = {name for name, p in module.network.named_parameters() if not torch.equal(p, before[name])}
    assert changed and changed <= trainable  # the frozen encoder did not move
