"""The IDX reader of MNIST and Fashion-MNIST, which lives in :mod:`paperzoo.core.data.idx` (the graph package reads
Fashion-MNIST too); re-exported here so that ``from paperzoo.vision.data.idx import read_idx`` keeps working."""

from paperzoo.core.data.idx import IDX_DTYPES, read_idx

__all__ = ["IDX_DTYPES", "read_idx"]
