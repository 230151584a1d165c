"""Reader for the IDX format of MNIST and Fashion-MNIST (LeCun et al., http://yann.lecun.com/exdb/mnist/).

An IDX file is a 4-byte magic number ``0x00 0x00 <type code> <ndim>``, then ``ndim`` big-endian uint32
dimensions, then the values in row-major order, big-endian. The files are usually distributed gzipped.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from paperzoo.core.errors import CorruptDataError, DatasetNotFoundError

IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
"""IDX type code -> big-endian NumPy dtype of the stored values."""


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file, gzipped (name ending in ``.gz``) or raw, and check it thoroughly.

    Args:
        path: the file, e.g. ``data/mnist/train-images-idx3-ubyte.gz``.

    Returns:
        The array with the file's shape and a native-endian dtype (``uint8`` for MNIST).

    Raises:
        DatasetNotFoundError: the file does not exist.
        CorruptDataError: the file is not valid gzip, has a bad magic number or type code, or its payload is not
            exactly as long as its dimensions say.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"IDX file {path} does not exist")
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:
        raise CorruptDataError(f"{path} is not a complete gzip file ({err}); re-download it") from err

    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        magic = raw[:4].hex() or "empty"
        raise CorruptDataError(f"{path} is not an IDX file (bad magic number 0x{magic}); re-download it")
    type_code, ndim = raw[2], raw[3]
    if type_code not in IDX_DTYPES:
        raise CorruptDataError(f"{path} has an unknown IDX type code 0x{type_code:02x}; re-download it")
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise CorruptDataError(f"{path} is truncated inside its IDX header; re-download it")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[type_code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    actual = len(raw) - header_len
    if actual != expected:
        raise CorruptDataError(
            f"{path} holds {actual} bytes of data but its IDX header {dims} needs {expected}; re-download it"
        )
    array = np.frombuffer(raw, dtype=dtype, offset=header_len).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=True)
