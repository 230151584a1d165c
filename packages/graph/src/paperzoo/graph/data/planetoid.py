"""The Planetoid citation graphs Cora, Citeseer and Pubmed, read from the raw files of Yang et al. (2016)."""

from __future__ import annotations

import collections
import copyreg
import io
import pickle
from pathlib import Path
from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.utils import remove_self_loops, to_undirected

from paperzoo.core.errors import ConfigError, CorruptDataError, DatasetNotFoundError
from paperzoo.graph.data.base import NodeClassificationDataModule

PLANETOID_SUFFIXES = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")
"""The eight files of a Planetoid dataset are ``ind.<name>.<suffix>``."""

PYG_FOLDERS = {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}
"""PyTorch Geometric keeps ``Planetoid(root, name)``'s files in ``root/<name as given>/raw``; these are the names its
documentation gives."""

PUBLIC_VAL_SIZE = 500
"""Validation nodes of the public split: the 500 nodes after the labelled training nodes (Kipf & Welling 2017)."""


def _latin1_encode(text: str, encoding: str) -> bytes:
    """The ``_codecs.encode(text, "latin1")`` with which Python 3 writes bytes into protocol 0-2 pickles; no other
    codec."""
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"it asks for the codec {encoding!r}, which no Planetoid file uses")
    return text.encode("latin1")


# What the pickles may construct, by the (module, name) the pickle gives: the classes of the 2016 files (Python 2,
# numpy 1, scipy.sparse.csr) and of the same objects pickled today. Anything else in a file is refused: unpickling
# an arbitrary file can run arbitrary code.
_ALLOWED_GLOBALS = {
    **dict.fromkeys(
        [("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")],
        np.ndarray((0,)).__reduce__()[0],
    ),
    **dict.fromkeys(
        [("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar")], np.float64(0).__reduce__()[0]
    ),
    # protocol 5 rebuilds arrays from their buffer with _frombuffer(buffer, dtype, shape, order)
    **dict.fromkeys(
        [("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer")],
        np.zeros(1).__reduce_ex__(5)[0],
    ),
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("scipy.sparse.csr", "csr_matrix"): sp.csr_matrix,
    ("scipy.sparse._csr", "csr_matrix"): sp.csr_matrix,
    ("collections", "defaultdict"): collections.defaultdict,
    ("__builtin__", "list"): list,
    ("builtins", "list"): list,
    # protocols 0 and 1 rebuild plain objects with copy_reg._reconstructor(cls, object, state)
    ("copy_reg", "_reconstructor"): copyreg._reconstructor,
    ("copyreg", "_reconstructor"): copyreg._reconstructor,
    ("__builtin__", "object"): object,
    ("builtins", "object"): object,
    ("_codecs", "encode"): _latin1_encode,
}


# What a truncated, garbled or foreign pickle raises while it is read by the unpickler below.
_UNPICKLING_ERRORS = (
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    TypeError,
    AttributeError,
    IndexError,
    KeyError,
    OverflowError,
)


class _PlanetoidUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"it asks for {module}.{name}, which no Planetoid file holds") from None


def read_planetoid(raw_dir: str | Path, name: str) -> Data:
    """Read a Planetoid citation graph from its raw files, as Kipf & Welling's ``load_data`` and PyTorch Geometric's
    ``Planetoid`` do (Yang, Cohen and Salakhutdinov, "Revisiting Semi-Supervised Learning with Graph Embeddings",
    ICML 2016; the files of https://github.com/kimiyoung/planetoid, ``data/``).

    ``raw_dir`` holds ``ind.<name>.{x,tx,allx,y,ty,ally,graph,test.index}`` (see
    :func:`paperzoo.graph.testing.write_planetoid` for the format). The nodes are those of ``allx`` and then the test
    range ``len(allx) .. max(test.index)``; row ``i`` of ``tx`` and ``ty`` belongs to node ``test.index[i]`` (the
    file's order is shuffled). Ids in the test range that ``test.index`` lacks (Citeseer's 15 isolated nodes) get a
    zero feature row and an all-zero label row, as in Kipf's code; ``y`` is the argmax of the label rows, which
    reads 0 there as in Kipf's and PyTorch Geometric's code; those nodes are in no mask.

    ``edge_index`` is the graph dict made symmetric (an edge in either direction becomes both), coalesced (sorted,
    each edge once: the dicts list some neighbours twice) and without the dict's self-loops, which PyTorch
    Geometric drops too; models such as GCN add self-loops of their own, uniformly to every node.

    The public split: ``train_mask`` the ``len(y)`` labelled nodes (20 per class), ``val_mask`` the next 500 nodes,
    ``test_mask`` the ``test.index`` nodes (1,000). Features are returned as stored (see :func:`row_normalize`).

    Args:
        raw_dir: the folder of the eight files.
        name: the datasets' file prefix: ``cora``, ``citeseer`` or ``pubmed``.

    Returns:
        ``Data(x, edge_index, y, train_mask, val_mask, test_mask)``: ``x`` float32 ``(N, F)``, ``y`` int64 ``(N,)``.

    Raises:
        DatasetNotFoundError: a file is missing.
        CorruptDataError: a file is not a pickle of the expected kind, or the files disagree in their sizes.
    """
    return _read_planetoid(Path(raw_dir), name)[0]


def _read_planetoid(raw_dir: Path, name: str) -> tuple[Data, int]:
    """:func:`read_planetoid`, and the number of classes (the width of the one-hot labels)."""
    paths = {suffix: raw_dir / f"ind.{name}.{suffix}" for suffix in PLANETOID_SUFFIXES}
    missing = [path.name for path in paths.values() if not path.is_file()]
    if missing:
        raise DatasetNotFoundError(
            f"{raw_dir} lacks the Planetoid file(s) {', '.join(missing)}: put all eight ind.{name}.* files there "
            "(from the data/ folder of github.com/kimiyoung/planetoid)"
        )

    x, tx, allx = (_read_matrix(paths[suffix]) for suffix in ("x", "tx", "allx"))
    y, ty, ally = (_read_matrix(paths[suffix]) for suffix in ("y", "ty", "ally"))
    graph = _read_graph(paths["graph"])
    test_index = _read_test_index(paths["test.index"])

    def corrupt(problem: str) -> CorruptDataError:
        return CorruptDataError(f"the Planetoid files ind.{name}.* in {raw_dir} disagree: {problem}; re-download them")

    num_allx = allx.shape[0]
    if not x.shape[1] == tx.shape[1] == allx.shape[1]:
        raise corrupt(f"x, tx and allx have {x.shape[1]}, {tx.shape[1]} and {allx.shape[1]} feature columns")
    if not y.shape[1] == ty.shape[1] == ally.shape[1]:
        raise corrupt(f"y, ty and ally have {y.shape[1]}, {ty.shape[1]} and {ally.shape[1]} label columns")
    if x.shape[0] != y.shape[0] or allx.shape[0] != ally.shape[0] or not tx.shape[0] == ty.shape[0] == len(test_index):
        raise corrupt(
            f"x/y, allx/ally and tx/ty/test.index have {x.shape[0]}/{y.shape[0]}, {num_allx}/{ally.shape[0]} and "
            f"{tx.shape[0]}/{ty.shape[0]}/{len(test_index)} rows"
        )
    if len(y) + PUBLIC_VAL_SIZE > num_allx:
        raise corrupt(f"allx has {num_allx} rows, fewer than the {len(y)} training and 500 validation nodes")
    if len(test_index) == 0 or test_index.min() < num_allx or len(np.unique(test_index)) != len(test_index):
        raise corrupt(f"test.index must list distinct node ids from len(allx) = {num_allx} on")

    num_nodes = int(test_index.max()) + 1
    features = np.zeros((num_nodes, x.shape[1]), dtype=np.float32)
    features[:num_allx] = allx
    features[test_index] = tx
    one_hot = np.zeros((num_nodes, y.shape[1]), dtype=np.float32)
    one_hot[:num_allx] = ally
    one_hot[test_index] = ty

    data = Data(
        x=torch.from_numpy(features),
        edge_index=_edge_index(graph, num_nodes, paths["graph"]),
        y=torch.from_numpy(one_hot.argmax(axis=1)).long(),
    )
    for split, index in (
        ("train", np.arange(len(y))),
        ("val", np.arange(len(y), len(y) + PUBLIC_VAL_SIZE)),
        ("test", test_index),
    ):
        mask = torch.zeros(num_nodes, dtype=torch.bool)
        mask[torch.from_numpy(index)] = True
        data[f"{split}_mask"] = mask
    return data, y.shape[1]


def row_normalize(x: Tensor) -> Tensor:
    """Scale each row of ``x`` to sum to 1, leaving all-zero rows zero (Kipf & Welling's ``preprocess_features``).

    Args:
        x: ``(N, F)`` non-negative features.

    Returns:
        ``(N, F)``, ``x[i] / x[i].sum()``.
    """
    total = x.sum(dim=1, keepdim=True)
    return x / torch.where(total == 0, torch.ones_like(total), total)


class PlanetoidDataModule(NodeClassificationDataModule):
    """The Planetoid citation graphs with their public split (Yang, Cohen and Salakhutdinov, "Revisiting
    Semi-Supervised Learning with Graph Embeddings", ICML 2016), the benchmarks of GCN (Kipf & Welling, ICLR 2017)
    and GAT (Velickovic et al., ICLR 2018).

    ===========  =======  =====  ========  =======  =====  =====  =====
    name         nodes    edges  features  classes  train  val    test
    ===========  =======  =====  ========  =======  =====  =====  =====
    ``cora``     2,708    5,278  1,433     7        140    500    1,000
    ``citeseer`` 3,327    4,552  3,703     6        120    500    1,000
    ``pubmed``   19,717   44,324 500       3        60     500    1,000
    ===========  =======  =====  ========  =======  =====  =====  =====

    (Undirected edges: half the 10,556, 9,104 and 88,648 directed edges of PyTorch Geometric's symmetric graphs,
    which :func:`read_planetoid` reproduces.) The files are read by :func:`read_planetoid`, from the
    first of these folders that holds any of them:

    - ``data_dir/<name>/raw/`` (e.g. ``data/planetoid/cora/raw/ind.cora.x``, ``.../ind.cora.test.index``),
    - ``data_dir/<Name>/raw/`` as PyTorch Geometric's ``Planetoid(root=data_dir, name="Cora")`` keeps them
      (``Cora``, ``CiteSeer``, ``PubMed``), so an existing PyG root can be passed as it is,
    - ``data_dir/`` itself (the flat ``data/`` folder of https://github.com/kimiyoung/planetoid).

    Nothing is downloaded. See :class:`NodeClassificationDataModule` for what the loaders yield.

    Args:
        name: ``cora``, ``citeseer`` or ``pubmed``.
        data_dir: where to look for the files (relative to the working directory).
        normalize_features: scale each node's features to sum to 1, as Kipf & Welling and Velickovic et al. do.
        neighbor_sampling: neighbours per hop for mini-batch training, e.g. ``[25, 10]``; ``None``: full-batch.
        batch_size: seed nodes per training mini-batch under ``neighbor_sampling``.
        seed: seed of the mini-batch order and the neighbour draws.
    """

    def __init__(
        self,
        name: Literal["cora", "citeseer", "pubmed"] = "cora",
        data_dir: str = "data/planetoid",
        normalize_features: bool = True,
        neighbor_sampling: list[int] | None = None,
        batch_size: int = 512,
        seed: int = 0,
    ) -> None:
        super().__init__(neighbor_sampling=neighbor_sampling, batch_size=batch_size, seed=seed)
        self.save_hyperparameters()
        name = name.lower()
        if name not in PYG_FOLDERS:
            raise ConfigError(f"there is no Planetoid dataset {name!r}: choose cora, citeseer or pubmed")
        self.name = name
        self.data_dir = data_dir
        self.normalize_features = normalize_features

    def find_raw_dir(self) -> Path:
        """The first of ``data_dir/<name>/raw``, ``data_dir/<PyG name>/raw`` and ``data_dir`` holding any of the
        files.

        Raises:
            DatasetNotFoundError: none of them holds any.
        """
        root = Path(self.data_dir)
        for folder in (root / self.name / "raw", root / PYG_FOLDERS[self.name] / "raw", root):
            if any((folder / f"ind.{self.name}.{suffix}").is_file() for suffix in PLANETOID_SUFFIXES):
                return folder
        files = f"ind.{self.name}.{{{','.join(PLANETOID_SUFFIXES)}}}"
        raise DatasetNotFoundError(
            f"{PYG_FOLDERS[self.name]} was not found: put its eight Planetoid files {files} (from the data/ folder "
            f"of github.com/kimiyoung/planetoid) in {root / self.name / 'raw'}, or pass --data.init_args.data_dir"
        )

    def load_graph(self) -> tuple[Data, int]:
        data, num_classes = _read_planetoid(self.find_raw_dir(), self.name)
        if self.normalize_features:
            data.x = row_normalize(data.x)
        return data, num_classes

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, data_dir={self.data_dir!r}, "
            f"normalize_features={self.normalize_features}, neighbor_sampling={self.neighbor_sampling}, "
            f"batch_size={self.batch_size}, seed={self.seed})"
        )


def _unpickle(path: Path) -> object:
    """The object pickled in ``path`` (a Python 2 pickle: byte strings decoded as latin-1), by the restricted
    unpickler.

    Raises:
        CorruptDataError: the file is not a complete pickle of the allowed classes.
    """
    try:
        with open(path, "rb") as f:
            return _PlanetoidUnpickler(f, encoding="latin1").load()
    except _UNPICKLING_ERRORS as err:
        message = str(err) or type(err).__name__
        raise CorruptDataError(f"{path} is not a Planetoid pickle ({message}); re-download it") from err


def _read_matrix(path: Path) -> np.ndarray:
    """A pickled sparse matrix or array as a dense 2-D float32 array."""
    obj = _unpickle(path)
    if sp.issparse(obj):
        obj = obj.toarray()
    if not isinstance(obj, np.ndarray) or obj.ndim != 2 or not np.issubdtype(obj.dtype, np.number):
        kind = f"{obj.dtype} array of shape {obj.shape}" if isinstance(obj, np.ndarray) else type(obj).__name__
        raise CorruptDataError(f"{path} holds a {kind}, not a 2-D matrix of numbers; re-download it")
    return obj.astype(np.float32, copy=False)


def _read_graph(path: Path) -> dict:
    graph = _unpickle(path)
    if not isinstance(graph, dict) or not all(isinstance(v, list) for v in graph.values()):
        raise CorruptDataError(f"{path} holds a {type(graph).__name__}, not a dict of neighbour lists; re-download it")
    return graph


def _read_test_index(path: Path) -> np.ndarray:
    try:
        return np.loadtxt(io.StringIO(path.read_text(encoding="ascii")), dtype=np.int64, ndmin=1)
    except (UnicodeDecodeError, ValueError) as err:
        raise CorruptDataError(f"{path} is not a list of node ids, one per line ({err}); re-download it") from err


def _edge_index(graph: dict, num_nodes: int, path: Path) -> Tensor:
    """The symmetric, coalesced edge_index ``(2, E)`` of the ``{node: [neighbours]}`` dict read from ``path``,
    without self-loops."""
    try:
        degrees = [len(neighbours) for neighbours in graph.values()]
        sources = np.repeat(np.fromiter(graph.keys(), dtype=np.int64, count=len(graph)), degrees)
        targets = np.fromiter((v for vs in graph.values() for v in vs), dtype=np.int64, count=len(sources))
    except (TypeError, ValueError, OverflowError) as err:
        raise CorruptDataError(f"{path} names nodes that are not integers ({err}); re-download it") from err
    if len(sources) and (min(sources.min(), targets.min()) < 0 or max(sources.max(), targets.max()) >= num_nodes):
        raise CorruptDataError(
            f"{path} names nodes outside 0..{num_nodes - 1}, the nodes with features; re-download it"
        )
    edge_index, _ = remove_self_loops(torch.from_numpy(np.stack([sources, targets])))
    return to_undirected(edge_index, num_nodes=num_nodes)  # coalesced: sorted, each edge once
