"""Rotten Tomatoes WordPiece batches and BERT fine-tuning: full, LoRA (ours and peft's) and linear probe."""

import lightning as L
import pytest
import torch

from paperzoo.core.data.sentiment import rotten_tomatoes_splits
from paperzoo.core.errors import ConfigError
from paperzoo.core.testing import write_rotten_tomatoes_csv
from paperzoo.llm.data.sentiment import PadBatch, RottenTomatoesTextDataModule
from paperzoo.llm.layers.lora import LoRALinear
from paperzoo.llm.modules.classification import SequenceClassifierModule
from paperzoo.llm.testing import write_tiny_bert_folder

WORDS = ["moving", "brilliant", "funny", "charming", "dull", "tedious", "clumsy", "bland", "the", "film", "review"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("rt")
    csv = write_rotten_tomatoes_csv(root / "rotten_tomatoes_corpus_full.csv.bz2", n=160, duplicates=4)
    return csv, write_tiny_bert_folder(root / "bert", WORDS)


def _data(files, **kwargs):
    csv, bert = files
    options = dict(path=str(csv), tokenizer=str(bert), batch_size=8, val_size=20, test_size=20) | kwargs
    data = RottenTomatoesTextDataModule(**options)
    data.setup()
    return data


def test_batches_are_the_shared_split_in_wordpiece_ids(files):
    data = _data(files, max_len=12)
    splits = rotten_tomatoes_splits(files[0], 20, 20, 0)
    assert data.test_set.texts == splits.test_texts and data.test_set.labels == splits.test_labels
    batch = next(iter(data.test_dataloader()))
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids", "labels"}
    tok = data.tokenizer
    assert batch["input_ids"].shape[1] <= 12
    assert (batch["input_ids"][:, 0] == tok.cls_token_id).all()
    lengths = batch["attention_mask"].sum(1)
    for row, n in enumerate(lengths.tolist()):
        assert batch["input_ids"][row, n - 1] == tok.sep_token_id  # truncation keeps the final [SEP]
        assert (batch["input_ids"][row, n:] == tok.pad_token_id).all()
    assert data.majority_class in (0, 1)


def test_pad_batch_pads_on_the_right():
    batch = PadBatch(pad_id=0)([([5, 6, 7], 1), ([5], 0)])
    assert batch["input_ids"].tolist() == [[5, 6, 7], [5, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]] and batch["labels"].tolist() == [1, 0]


@pytest.mark.parametrize(
    ("finetune", "impl"), [("full", "ours"), ("lora", "ours"), ("lora", "peft"), ("probe", "ours")]
)
def test_each_mode_trains_only_what_it_should(files, finetune, impl):
    torch.manual_seed(0)
    module = SequenceClassifierModule(pretrained=str(files[1]), finetune=finetune, lora_impl=impl, lora_r=4)
    trainable, total = module.parameter_counts()
    names = [n for n, p in module.network.named_parameters() if p.requires_grad]
    if finetune == "full":
        assert trainable == total
    elif finetune == "probe":
        assert names and all("classifier" in n for n in names)
    else:
        assert all("lora" in n or "classifier" in n for n in names) and any("lora" in n for n in names)
        assert sum("lora_A" in n for n in names) == 2 * 2  # query and value of 2 layers
    before = {n: p.detach().clone() for n, p in module.network.named_parameters()}
    data = _data(files)
    trainer = L.Trainer(
        max_steps=4,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=1,
    )
    trainer.fit(module, data)
    changed = {n for n, p in module.network.named_parameters() if not torch.equal(p.detach(), before[n])}
    assert changed and changed <= set(names)
    metrics = trainer.test(module, data, verbose=False)[0]
    assert 0 <= metrics["test/acc"] <= 1 and metrics["test/trainable_params"] == trainable
    assert metrics["test/total_params"] == total


def test_our_lora_and_peft_lora_start_equal_and_merge_cleanly(files):
    torch.manual_seed(0)
    ours = SequenceClassifierModule(pretrained=str(files[1]), finetune="lora", lora_impl="ours", lora_r=4)
    torch.manual_seed(0)
    peft = SequenceClassifierModule(pretrained=str(files[1]), finetune="lora", lora_impl="peft", lora_r=4)
    batch = next(iter(_data(files).val_dataloader()))
    ours.eval(), peft.eval()
    # B starts at zero in both, so both equal the pretrained network with the same (random) head
    with torch.no_grad():
        peft_head = peft.network.base_model.model.classifier.modules_to_save["default"]
        peft_head.load_state_dict(ours.network.classifier.state_dict())
        assert torch.allclose(ours(batch), peft(batch), atol=1e-6)
    layers = [m for m in ours.network.modules() if isinstance(m, LoRALinear)]
    assert len(layers) == 4 and all(m.r == 4 for m in layers)


def test_bad_settings_get_one_sentence(files):
    with pytest.raises(ConfigError, match="finetune"):
        SequenceClassifierModule(pretrained=str(files[1]), finetune="half")
    with pytest.raises(ConfigError, match="head_modules"):
        SequenceClassifierModule(pretrained=str(files[1]), finetune="probe", head_modules=["nothing"])
    with pytest.raises(ConfigError, match="max_len"):
        RottenTomatoesTextDataModule(max_len=1)


def test_mean_pooling_reads_the_mean_of_real_tokens_and_ignores_padding(files):
    torch.manual_seed(0)
    module = SequenceClassifierModule(pretrained=str(files[1]), finetune="probe", pooling="mean").eval()
    network = module.network
    batch = next(iter(_data(files).val_dataloader()))
    mask = batch["attention_mask"]
    assert (mask.sum(1) < mask.shape[1]).any()  # the batch has padded rows
    with torch.no_grad():
        logits = module(batch)
        hidden = network.bert(batch["input_ids"], mask, batch["token_type_ids"]).last_hidden_state
        real = mask[..., None].float()
        expected = network.classifier((hidden * real).sum(1) / real.sum(1))
        assert torch.allclose(logits, expected, atol=1e-6)
        pooled = network.classifier(network.bert(batch["input_ids"], mask, batch["token_type_ids"]).pooler_output)
        assert not torch.allclose(logits, pooled, atol=1e-3)  # not the [CLS] pooler
        # the first padded row alone, without its padding, gives the same logits
        row = int((mask.sum(1) < mask.shape[1]).nonzero()[0])
        n = int(mask[row].sum())
        alone = {k: v[row : row + 1, :n] for k, v in batch.items() if k != "labels"}
        assert torch.allclose(module(alone), logits[row : row + 1], atol=1e-5)
    with pytest.raises(ConfigError, match="pooling"):
        SequenceClassifierModule(pretrained=str(files[1]), pooling="max")
