"""Tests of paperzoo.graph.data.planetoid: the reader against PyTorch Geometric's on files in the real format, the
public split, the layouts, the errors."""

from __future__ import annotations

import os
import pickle
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch_geometric.datasets import Planetoid

from paperzoo.core.errors import ConfigError, CorruptDataError, DatasetNotFoundError
from paperzoo.graph.data import PlanetoidDataModule, read_planetoid, row_normalize
from paperzoo.graph.data.planetoid import PLANETOID_SUFFIXES
from paperzoo.graph.testing import write_planetoid

NAMES = ["cora", "citeseer", "pubmed"]
PYG_NAMES = {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}


def raw_dir(root: Path, name: str) -> Path:
    return root / name / "raw"


def load_trusted(path: Path):
    """A file our own writer made, read with the unrestricted unpickler as Kipf's code reads it."""
    with open(path, "rb") as f, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # scipy.sparse.csr, the module name of the 2016 files
        return pickle.load(f, encoding="latin1")


def edge_set(edge_index: torch.Tensor) -> set[tuple[int, int]]:
    return set(map(tuple, edge_index.T.tolist()))


def assert_one_sentence(message: str) -> None:
    assert message and "\n" not in message and ". " not in message, message


@pytest.fixture(params=NAMES)
def planetoid(request, tmp_path) -> tuple[Path, str]:
    return write_planetoid(tmp_path / "data", request.param), request.param


# ---------------------------------------------------------------- the reader against PyTorch Geometric's


def test_read_planetoid_equals_pyg_planetoid(planetoid, tmp_path):
    root, name = planetoid
    # PyG's Planetoid(root, "Cora") reads root/Cora/raw/ind.cora.* and downloads nothing when the files are there.
    shutil.copytree(raw_dir(root, name), tmp_path / "pyg" / PYG_NAMES[name] / "raw")
    theirs = Planetoid(str(tmp_path / "pyg"), PYG_NAMES[name])[0]
    ours = read_planetoid(raw_dir(root, name), name)

    assert ours.x.dtype == torch.float32 and ours.y.dtype == torch.int64
    assert torch.equal(ours.x, theirs.x)
    assert torch.equal(ours.y, theirs.y)
    assert edge_set(ours.edge_index) == edge_set(theirs.edge_index)
    assert ours.edge_index.size(1) == theirs.edge_index.size(1)  # no duplicates on either side
    for mask in ("train_mask", "val_mask", "test_mask"):
        assert torch.equal(ours[mask], theirs[mask]), mask


def test_test_rows_go_to_the_test_index_nodes(planetoid):
    root, name = planetoid
    raw = raw_dir(root, name)
    data = read_planetoid(raw, name)
    test_index = np.loadtxt(raw / f"ind.{name}.test.index", dtype=np.int64)
    assert not np.all(np.diff(test_index) > 0), "the writer must shuffle test.index, as the real files are"
    tx, ty = load_trusted(raw / f"ind.{name}.tx").toarray(), load_trusted(raw / f"ind.{name}.ty")
    allx, ally = load_trusted(raw / f"ind.{name}.allx").toarray(), load_trusted(raw / f"ind.{name}.ally")
    np.testing.assert_array_equal(data.x[test_index].numpy(), tx)
    np.testing.assert_array_equal(data.y[test_index].numpy(), ty.argmax(1))
    np.testing.assert_array_equal(data.x[: len(allx)].numpy(), allx)
    np.testing.assert_array_equal(data.y[: len(allx)].numpy(), ally.argmax(1))


def test_citeseer_isolated_test_nodes_get_zero_rows_and_no_mask(tmp_path):
    root = write_planetoid(tmp_path, "citeseer", num_isolated=4)
    raw = raw_dir(root, "citeseer")
    data = read_planetoid(raw, "citeseer")
    test_index = np.loadtxt(raw / "ind.citeseer.test.index", dtype=np.int64)
    num_allx = load_trusted(raw / "ind.citeseer.allx").shape[0]
    isolated = np.setdiff1d(np.arange(num_allx, test_index.max() + 1), test_index)
    assert len(isolated) == 4 and data.num_nodes == test_index.max() + 1
    assert not data.x[isolated].any()
    assert (data.y[isolated] == 0).all()  # the argmax of an all-zero label row, as in Kipf's and PyG's code
    in_a_mask = data.train_mask | data.val_mask | data.test_mask
    assert not in_a_mask[isolated].any()
    assert not torch.isin(torch.from_numpy(isolated), data.edge_index).any()


def test_public_split(planetoid):
    root, name = planetoid
    data = read_planetoid(raw_dir(root, name), name)
    num_train = 3 * 2  # write_planetoid's defaults: 3 classes, 2 labelled nodes each
    assert data.train_mask.nonzero().view(-1).tolist() == list(range(num_train))
    assert data.val_mask.nonzero().view(-1).tolist() == list(range(num_train, num_train + 500))
    assert int(data.test_mask.sum()) == 30
    assert not (data.train_mask & data.val_mask).any()
    assert not (data.train_mask & data.test_mask).any()
    assert not (data.val_mask & data.test_mask).any()
    assert torch.bincount(data.y[data.train_mask]).tolist() == [2, 2, 2]


def test_edge_index_is_symmetric_coalesced_without_self_loops(tmp_path):
    root = write_planetoid(tmp_path, "cora")
    raw = raw_dir(root, "cora")
    graph = load_trusted(raw / "ind.cora.graph")
    first = next(u for u, vs in graph.items() if u in vs)
    assert len(graph[first]) != len(set(graph[first])), "the writer lists a neighbour twice and a self-loop"
    # Drop one direction of an edge: the reader keeps it both ways (Kipf's networkx graph is undirected too).
    u = next(u for u, vs in graph.items() if vs and vs[0] != u)
    v = graph[u][0]
    graph[v] = [w for w in graph[v] if w != u]
    with open(raw / "ind.cora.graph", "wb") as f:
        pickle.dump(graph, f, protocol=2)

    edge_index = read_planetoid(raw, "cora").edge_index
    expected = {(a, b) for a, vs in graph.items() for b in vs if a != b}
    expected |= {(b, a) for a, b in expected}
    assert edge_set(edge_index) == expected
    assert edge_index.size(1) == len(expected)
    assert (v, u) in expected and (u, v) in expected
    assert not (edge_index[0] == edge_index[1]).any()
    keys = edge_index[0] * (edge_index.max() + 1) + edge_index[1]
    assert torch.equal(keys, keys.sort().values), "coalesced: sorted by source, then target"


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_reads_pickles_of_any_protocol(tmp_path, protocol):
    root = write_planetoid(tmp_path, "cora")
    raw = raw_dir(root, "cora")
    expected = read_planetoid(raw, "cora")
    for suffix in PLANETOID_SUFFIXES[:-1]:
        obj = load_trusted(raw / f"ind.cora.{suffix}")
        with open(raw / f"ind.cora.{suffix}", "wb") as f:
            pickle.dump(obj, f, protocol=protocol)
    data = read_planetoid(raw, "cora")
    for key in ("x", "y", "edge_index", "train_mask", "val_mask", "test_mask"):
        assert torch.equal(data[key], expected[key]), key


def test_writer_uses_the_module_names_of_the_2016_files(tmp_path):
    raw = raw_dir(write_planetoid(tmp_path, "cora"), "cora")
    x = (raw / "ind.cora.x").read_bytes()
    assert x.startswith(b"\x80\x02cscipy.sparse.csr\ncsr_matrix\n")
    assert b"cnumpy.core.multiarray\n_reconstruct\n" in x
    assert isinstance(load_trusted(raw / "ind.cora.x"), sp.csr_matrix)
    assert type(load_trusted(raw / "ind.cora.graph")).__name__ == "defaultdict"


# ---------------------------------------------------------------- errors


def test_missing_file_names_it(tmp_path):
    root = write_planetoid(tmp_path, "cora")
    (raw_dir(root, "cora") / "ind.cora.graph").unlink()
    with pytest.raises(
        DatasetNotFoundError, match=r"lacks the Planetoid file\(s\) ind\.cora\.graph: put all eight"
    ) as e:
        PlanetoidDataModule("cora", str(root)).setup()
    assert_one_sentence(str(e.value))


def test_missing_dataset_says_where_to_put_it(tmp_path):
    with pytest.raises(DatasetNotFoundError) as e:
        PlanetoidDataModule("citeseer", str(tmp_path)).setup()
    message = str(e.value)
    assert_one_sentence(message)
    assert "ind.citeseer.{x,tx,allx,y,ty,ally,graph,test.index}" in message
    assert str(tmp_path / "citeseer" / "raw") in message
    assert "--data.init_args.data_dir" in message


@pytest.mark.parametrize(
    "damage",
    [lambda data: data[: len(data) // 2], lambda data: b"\x00\xffgarbage" * 10, lambda data: b""],
    ids=["truncated", "garbage", "empty"],
)
@pytest.mark.parametrize("suffix", ["x", "ally", "graph"])
def test_corrupt_pickle_is_one_sentence(tmp_path, suffix, damage):
    raw = raw_dir(write_planetoid(tmp_path, "cora"), "cora")
    path = raw / f"ind.cora.{suffix}"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(
        CorruptDataError, match=rf"ind\.cora\.{suffix} is not a Planetoid pickle .*; re-download it"
    ) as e:
        read_planetoid(raw, "cora")
    assert_one_sentence(str(e.value))


class _Payload:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (str(self.path),))


def test_pickle_that_would_run_code_is_refused(tmp_path):
    raw = raw_dir(write_planetoid(tmp_path, "cora"), "cora")
    target = tmp_path / "created_by_the_pickle"
    with open(raw / "ind.cora.graph", "wb") as f:
        pickle.dump({0: [_Payload(target)]}, f, protocol=2)
    with pytest.raises(
        CorruptDataError, match=r"ind\.cora\.graph is not a Planetoid pickle \(it asks for .*mkdir"
    ) as e:
        read_planetoid(raw, "cora")
    assert_one_sentence(str(e.value))
    assert not target.exists()


def test_wrong_kind_of_object_and_disagreeing_files(tmp_path):
    raw = raw_dir(write_planetoid(tmp_path, "cora"), "cora")
    with open(raw / "ind.cora.graph", "wb") as f:
        pickle.dump([1, 2, 3], f, protocol=2)
    with pytest.raises(CorruptDataError, match=r"ind\.cora\.graph holds a list, not a dict of neighbour lists"):
        read_planetoid(raw, "cora")

    raw = raw_dir(write_planetoid(tmp_path / "b", "cora"), "cora")
    lines = (raw / "ind.cora.test.index").read_text().splitlines()
    (raw / "ind.cora.test.index").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(CorruptDataError, match=r"disagree: .* tx/ty/test\.index have .*30/30/29 rows") as e:
        read_planetoid(raw, "cora")
    assert_one_sentence(str(e.value))


# ---------------------------------------------------------------- the DataModule


@pytest.mark.parametrize("layout", ["ours", "pyg", "flat"])
def test_datamodule_layouts_and_attributes(tmp_path, layout):
    root = write_planetoid(tmp_path / "written", "citeseer", num_classes=4, num_features=9)
    where = {
        "ours": tmp_path / "d" / "citeseer" / "raw",
        "pyg": tmp_path / "d" / "CiteSeer" / "raw",
        "flat": tmp_path / "d",
    }
    shutil.copytree(raw_dir(root, "citeseer"), where[layout])
    dm = PlanetoidDataModule("citeseer", data_dir=str(tmp_path / "d"))
    assert dm.num_features == 9 and dm.num_classes == 4  # read on first use, before setup
    dm.setup("fit")
    expected = read_planetoid(raw_dir(root, "citeseer"), "citeseer")
    assert torch.equal(dm.data.edge_index, expected.edge_index)
    assert torch.equal(dm.data.test_mask, expected.test_mask)


def test_row_normalisation(tmp_path):
    root = write_planetoid(tmp_path, "citeseer")
    raw = read_planetoid(raw_dir(root, "citeseer"), "citeseer")
    dm = PlanetoidDataModule("citeseer", str(root))
    dm.setup()
    sums = dm.data.x.sum(dim=1)
    nonzero = raw.x.sum(dim=1) > 0
    assert (~nonzero).sum() == 3, "citeseer's isolated nodes have zero rows, which stay zero"
    torch.testing.assert_close(sums[nonzero], torch.ones(int(nonzero.sum())))
    assert (sums[~nonzero] == 0).all()
    torch.testing.assert_close(dm.data.x[nonzero], raw.x[nonzero] / raw.x[nonzero].sum(1, keepdim=True))
    off = PlanetoidDataModule("citeseer", str(root), normalize_features=False)
    off.setup()
    assert torch.equal(off.data.x, raw.x)
    assert torch.equal(row_normalize(torch.tensor([[1.0, 3.0], [0.0, 0.0]])), torch.tensor([[0.25, 0.75], [0.0, 0.0]]))


def test_full_batch_loaders_yield_the_whole_graph_once(tmp_path):
    root = write_planetoid(tmp_path, "cora")
    dm = PlanetoidDataModule("cora", str(root))
    dm.setup("fit")
    for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader(), dm.predict_dataloader()):
        for _ in range(2):  # every epoch the same
            batches = list(loader)
            assert len(batches) == 1
            assert batches[0] is dm.data
    assert {"x", "edge_index", "y", "train_mask", "val_mask", "test_mask"} <= set(dm.data.keys())


def test_unknown_name(tmp_path):
    with pytest.raises(ConfigError, match="no Planetoid dataset 'cornell': choose cora, citeseer or pubmed"):
        PlanetoidDataModule("cornell", str(tmp_path))
