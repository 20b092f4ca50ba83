"""Small real notebooks and scripts for pipeline tests."""

from __future__ import annotations

import os
import textwrap

import nbformat
import pytest


def write_notebook(path: str, params: str | None, *cells: str) -> str:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if params is not None:
        nb.cells.append(nbformat.v4.new_code_cell(params, metadata={"tags": ["parameters"]}))
    for c in cells:
        nb.cells.append(nbformat.v4.new_code_cell(textwrap.dedent(c)))
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    nbformat.write(nb, path)
    return path


def write(path: str, text: str) -> str:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write(textwrap.dedent(text))
    return path


@pytest.fixture
def ws(tmp_path):
    """A workspace directory with a notebook and a script."""
    write_notebook(str(tmp_path / "prep.ipynb"), "rows = 10\nname = 'x'\n",
                   "print('rows', rows)")
    write(str(tmp_path / "train.py"), "import sys\nprint(sys.argv[1:])\n")
    return tmp_path
