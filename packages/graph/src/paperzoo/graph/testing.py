"""Helpers that write tiny graph datasets in the exact real on-disk formats, for tests.

:func:`write_planetoid` writes the eight raw files of the Planetoid citation benchmarks as Yang et al. (2016)
distribute them and Kipf & Welling's and PyTorch Geometric's loaders read them, only with a few hundred synthetic
nodes. (Fashion-MNIST graphs are built from IDX files: write those with :func:`paperzoo.core.testing.write_mnist`.)
"""

from __future__ import annotations

import pickle
from collections import defaultdict
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from torch_geometric.data import Data, InMemoryDataset

from paperzoo.graph.data.molecules import QM9_PROCESSED_FILE
from paperzoo.graph.data.planetoid import PLANETOID_SUFFIXES

# Python 3 pickles name numpy's and scipy's private modules; the 2016 files name the public ones of their day.
_PYTHON2_ERA_GLOBALS = {
    b"cnumpy._core.multiarray\n": b"cnumpy.core.multiarray\n",
    b"cscipy.sparse._csr\n": b"cscipy.sparse.csr\n",
}


def write_planetoid(
    directory: str | Path,
    name: str = "cora",
    num_classes: int = 3,
    num_features: int = 16,
    train_per_class: int = 2,
    num_unlabelled: int = 24,
    num_test: int = 30,
    num_isolated: int | None = None,
    seed: int = 0,
) -> Path:
    """Write ``directory/<name>/raw/ind.<name>.{x,tx,allx,y,ty,ally,graph,test.index}`` in the Planetoid format.

    The format, as in https://github.com/kimiyoung/planetoid (``data/``):

    - ``x``, ``allx``, ``tx``: pickled ``scipy.sparse.csr_matrix`` features of the labelled training nodes, of all
      nodes that are not test nodes (``x`` is its first rows), and of the test nodes; binary bag-of-words for
      ``cora`` and ``citeseer``, positive TF-IDF-like floats for ``pubmed``, float32.
    - ``y``, ``ally``, ``ty``: pickled one-hot ``numpy`` int32 arrays of their labels.
    - ``graph``: a pickled ``collections.defaultdict(list)`` ``{node: [neighbours]}`` over all nodes, symmetric,
      with one duplicated neighbour and one self-loop, as the real files have.
    - ``test.index``: the test nodes' ids, one per line, in the (shuffled) order of the rows of ``tx``.

    The pickles use protocol 2 and the module names of the 2016 files (``numpy.core.multiarray``,
    ``scipy.sparse.csr``). Nodes ``0 .. len(allx) - 1`` are the non-test nodes: first ``train_per_class`` per class,
    then the 500 validation nodes of the public split, then ``num_unlabelled`` more. The test nodes follow; for
    ``num_isolated`` > 0 (the default for ``citeseer``) that many ids inside the test range are left out of
    ``test.index`` and have no edges, like Citeseer's 15 isolated nodes, which the files give no features or label.

    Args:
        directory: the dataset root to create; pass it as ``data_dir``.
        name: ``cora``, ``citeseer`` or ``pubmed`` (only the file names and the feature kind depend on it).
        num_classes: classes (columns of the one-hot labels).
        num_features: feature columns.
        train_per_class: labelled training nodes per class (20 in the real datasets).
        num_unlabelled: non-test nodes after the 500 validation nodes.
        num_test: test nodes (rows of ``tx``).
        num_isolated: ids in the test range missing from ``test.index``; ``None``: 3 for citeseer, else 0.
        seed: seed of the features, labels and edges.

    Returns:
        ``directory`` as a :class:`~pathlib.Path`.
    """
    directory = Path(directory)
    raw = directory / name / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    if num_isolated is None:
        num_isolated = 3 if name == "citeseer" else 0

    num_train = train_per_class * num_classes
    num_allx = num_train + 500 + num_unlabelled
    num_nodes = num_allx + num_test + num_isolated
    labels = rng.integers(0, num_classes, num_nodes)
    labels[:num_train] = np.repeat(np.arange(num_classes), train_per_class)
    # Isolated ids lie strictly inside the test range, so its ends (and hence its length) are set by test.index.
    test_range = np.arange(num_allx, num_nodes)
    isolated = np.sort(rng.choice(test_range[1:-1], size=num_isolated, replace=False))
    test_nodes = rng.permutation(np.setdiff1d(test_range, isolated))  # the file's order: not sorted

    features = _features(name, num_nodes, num_features, labels, rng)
    one_hot = np.eye(num_classes, dtype=np.int32)[labels]  # (num_nodes, num_classes)
    arrays = {
        "x": sp.csr_matrix(features[:num_train]),
        "allx": sp.csr_matrix(features[:num_allx]),
        "tx": sp.csr_matrix(features[test_nodes]),
        "y": one_hot[:num_train],
        "ally": one_hot[:num_allx],
        "ty": one_hot[test_nodes],
        "graph": _graph(num_nodes, labels, isolated, rng),
    }
    for suffix in PLANETOID_SUFFIXES[:-1]:
        _pickle_python2_era(raw / f"ind.{name}.{suffix}", arrays[suffix])
    (raw / f"ind.{name}.test.index").write_text("".join(f"{node}\n" for node in test_nodes.tolist()))
    return directory


def _features(name: str, n: int, f: int, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """float32 ``(n, f)``: sparse, class-dependent (each class prefers some columns), no all-zero row."""
    preferred = (np.arange(f)[None, :] % max(labels.max() + 1, 1)) == labels[:, None]  # (n, f)
    present = rng.random((n, f)) < np.where(preferred, 0.5, 0.1)
    present[np.arange(n), rng.integers(0, f, n)] = True
    values = rng.uniform(0.01, 0.2, (n, f)) if name == "pubmed" else np.ones((n, f))
    return (present * values).astype(np.float32)


def _graph(n: int, labels: np.ndarray, isolated: np.ndarray, rng: np.random.Generator) -> defaultdict:
    """A symmetric ``defaultdict(list)`` with about 3 edges per node, mostly within a class, one duplicate and one
    self-loop; the ``isolated`` nodes are keys with no neighbours."""
    connected = np.setdiff1d(np.arange(n), isolated)
    graph: defaultdict[int, list[int]] = defaultdict(list)
    for node in np.arange(n).tolist():
        graph[node] = []
    for u in connected.tolist():
        same = connected[labels[connected] == labels[u]]
        for v in [*rng.choice(same, 2).tolist(), int(rng.choice(connected))]:
            if v != u and v not in graph[u]:
                graph[u].append(v)
                graph[v].append(u)
    first = int(connected[0])
    graph[first].append(graph[first][0])  # a duplicated neighbour
    graph[first].append(first)  # a self-loop
    return graph


def _pickle_python2_era(path: Path, obj: object) -> None:
    data = pickle.dumps(obj, protocol=2)
    for new, old in _PYTHON2_ERA_GLOBALS.items():
        data = data.replace(new, old)
    path.write_bytes(data)


# Molecules: QM9 in PyTorch Geometric's processed and raw formats, MoleculeNet's raw QM9 files, the RDKit book's
# solubility SDF files and FreeSolv's CSV.

_QM9_TYPES = {"H": 0, "C": 1, "N": 2, "O": 3, "F": 4}
_QM9_Z = {"H": 1, "C": 6, "N": 7, "O": 8, "F": 9}


def qm9_molecule(symbols: list[str], bonds: list[tuple[int, int, int]], y: torch.Tensor, idx: int) -> Data:
    """One molecule laid out as PyG 2.8.1's ``QM9.process`` stores it: x (N, 11), z, pos, edge_index sorted by
    (source, target), smiles, edge_attr (E, 4) one-hot bond type, y (1, 19), name and idx.

    Args:
        symbols: element of each atom, hydrogens included (QM9 keeps them as nodes).
        bonds: ``(begin, end, type)`` with type 0..3 for single, double, triple, aromatic.
        y: the 19 targets.
        idx: the molecule's index in the raw file.
    """
    n = len(symbols)
    rows = [i for b, e, _ in bonds for i in (b, e)]
    cols = [i for b, e, _ in bonds for i in (e, b)]
    kinds = [k for *_, k in bonds for _ in range(2)]
    edge_index = torch.tensor([rows, cols], dtype=torch.long)
    perm = (edge_index[0] * n + edge_index[1]).argsort()
    edge_index, kinds = edge_index[:, perm], torch.tensor(kinds)[perm]
    z = torch.tensor([_QM9_Z[s] for s in symbols])
    num_hs = torch.zeros(n).index_add_(0, edge_index[1], (z[edge_index[0]] == 1).float())
    x = torch.cat(
        [
            torch.nn.functional.one_hot(torch.tensor([_QM9_TYPES[s] for s in symbols]), 5).float(),
            torch.stack([z.float(), torch.zeros(n), torch.zeros(n), torch.zeros(n), torch.zeros(n), num_hs], dim=1),
        ],
        dim=1,
    )
    return Data(
        x=x,
        z=z,
        pos=torch.randn(n, 3),
        edge_index=edge_index,
        smiles="".join(s for s in symbols if s != "H"),
        edge_attr=torch.nn.functional.one_hot(kinds, 4).float(),
        y=y.view(1, 19).float(),
        name=f"gdb_{idx + 1}",
        idx=idx,
    )


def tiny_qm9(n: int = 30, seed: int = 0) -> list[Data]:
    """``n`` small molecules (methane, water, ammonia, HF, formaldehyde, HCN in turn) with random targets."""
    shapes = [
        (["C", "H", "H", "H", "H"], [(0, 1, 0), (0, 2, 0), (0, 3, 0), (0, 4, 0)]),
        (["O", "H", "H"], [(0, 1, 0), (0, 2, 0)]),
        (["N", "H", "H", "H"], [(0, 1, 0), (0, 2, 0), (0, 3, 0)]),
        (["F", "H"], [(0, 1, 0)]),
        (["C", "O", "H", "H"], [(0, 1, 1), (0, 2, 0), (0, 3, 0)]),
        (["C", "N", "H"], [(0, 1, 2), (0, 2, 0)]),
    ]
    g = torch.Generator().manual_seed(seed)
    return [qm9_molecule(*shapes[i % len(shapes)], y=torch.randn(19, generator=g) * 3 + 1, idx=i) for i in range(n)]


def write_qm9_processed(root: Path, data_list: list[Data]) -> Path:
    """``root/processed/data_v3.pt`` exactly as PyG writes it: ``InMemoryDataset.save``, i.e. ``torch.save`` of
    ``(collated.to_dict(), slices, Data)``."""
    path = root / "processed" / QM9_PROCESSED_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    InMemoryDataset.save(data_list, str(path))
    return path


def write_qm9_pyg_raw(root: Path, data_list: list[Data]) -> Path:
    """``root/raw/qm9_v3.pt``, PyG's pre-processed raw file: a list with one dict of attributes per molecule."""
    path = root / "raw" / "qm9_v3.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save([data.to_dict() for data in data_list], path)
    return path


def write_qm9_moleculenet_raw(root: Path, smiles: list[str], skip: list[int]) -> torch.Tensor:
    """MoleculeNet's ``raw/gdb9.sdf`` (hydrogens explicit), ``raw/gdb9.sdf.csv`` (mol_id and 19 property columns) and
    ``raw/uncharacterized.txt`` (9 header lines, one 1-based molecule number per line, one footer line), in the
    layout PyG's ``QM9.process`` parses. Returns the CSV's 19 property columns, shape ``(len(smiles), 19)``."""
    from rdkit import Chem
    from rdkit.Chem import AllChem

    raw = root / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    blocks = []
    for i, s in enumerate(smiles):
        mol = Chem.AddHs(Chem.MolFromSmiles(s))
        AllChem.Compute2DCoords(mol)
        mol.SetProp("_Name", f"gdb_{i + 1}")
        blocks.append(Chem.MolToMolBlock(mol, kekulize=True) + "$$$$\n")
    (raw / "gdb9.sdf").write_text("".join(blocks))
    props = torch.arange(len(smiles) * 19, dtype=torch.float).view(len(smiles), 19) / 7
    header = "mol_id,A,B,C,mu,alpha,homo,lumo,gap,r2,zpve,u0,u298,h298,g298,cv,u0_atom,u298_atom,h298_atom,g298_atom"
    lines = [header] + [f"gdb_{i + 1}," + ",".join(f"{v:.6f}" for v in row.tolist()) for i, row in enumerate(props)]
    (raw / "gdb9.sdf.csv").write_text("\n".join(lines) + "\n")
    head = [f"header line {k}" for k in range(9)]
    body = [f"{i + 1:>7}  gdb_{i + 1}  uncharacterized" for i in skip]
    (raw / "uncharacterized.txt").write_text("\n".join([*head, *body, "footer"]) + "\n")
    return props


def _sdf_record(smiles: str, number: int, name: str, sol: float, style: str) -> str:
    """One record of the RDKit book's solubility files: ``train`` style (RDKit-written, ``>  <ID>  (n) `` headers,
    ``smiles`` tag) or ``test`` style (``> <ID>`` headers, ``SMILES`` tag)."""
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.MolFromSmiles(smiles)
    AllChem.Compute2DCoords(mol)
    mol.SetProp("_Name", name)
    block = Chem.MolToMolBlock(mol, kekulize=True)
    classification = "(A) low" if sol < -3 else "(B) medium"
    if style == "train":
        fields = [("ID", number), ("NAME", name), ("SOL", sol), ("SOL_classification", classification)]
        fields.append(("smiles", smiles))
        props = "".join(f">  <{tag}>  ({number}) \n{value}\n\n" for tag, value in fields)
    else:
        fields = [("ID", number), ("NAME", name), ("SOL", sol), ("SMILES", smiles)]
        fields.append(("SOL_classification", classification))
        props = "".join(f"> <{tag}>\n{value}\n\n" for tag, value in fields)
    return block + props + "$$$$\n"


SOLUBILITY_TRAIN = [
    ("CCCCC", "n-pentane", -3.18),
    ("C1CCCC1", "cyclopentane", -2.64),
    ("CCO", "ethanol", 1.10),
    ("c1ccccc1", "benzene", -1.64),
    ("Clc1ccccc1", "chlorobenzene", -2.38),
    ("CC(=O)O", "acetic acid", 1.22),
    ("CCCCCCCC", "n-octane", -5.24),
    ("OCCO", "ethylene glycol", 1.28),
    ("CC(C)CC(C)C", "2,4-dimethylpentane (also in test)", -4.26),
    ("Oc1ccccc1", "phenol", 0.0),
    ("CCN", "ethylamine", 1.35),
    ("CCCCO", "1-butanol", 0.0),
    ("CCCCO", "1-butanol, second measurement", -0.01),
]
SOLUBILITY_TEST = [
    ("CCC(C)CC", "3-methylpentane", -3.68),
    ("CC(C)CC(C)C", "2,4-dimethylpentane", -4.26),
    ("Brc1ccccc1", "bromobenzene", -2.55),
]


def write_solubility(folder: Path) -> Path:
    """``solubility.train.sdf`` and ``solubility.test.sdf`` in ``folder``, in the two styles of the real files."""
    folder.mkdir(parents=True, exist_ok=True)
    for file, rows, style in (
        ("solubility.train.sdf", SOLUBILITY_TRAIN, "train"),
        ("solubility.test.sdf", SOLUBILITY_TEST, "test"),
    ):
        text = "".join(_sdf_record(s, i + 1, name, sol, style) for i, (s, name, sol) in enumerate(rows))
        (folder / file).write_text(text)
    return folder


def write_freesolv(path: Path, n: int = 20) -> Path:
    """A FreeSolv CSV (``iupac,smiles,expt,calc``, names quoted where they hold commas) of ``n`` alkanes and
    alcohols, some of them repeated, with targets that depend only on the molecule."""
    rows = ["iupac,smiles,expt,calc"]
    for i in range(n):
        length = 1 + i % 7 if i % 7 else 1 + i // 7
        smiles = "C" * length + ("O" if i % 2 else "")
        rows.append(f'"molecule {i}, number {i}",{smiles},{-0.5 * length - 3 * (i % 2):.2f},{0.1 * i:.3f}')
    path.write_text("\n".join(rows) + "\n")
    return path
