"""WEHI screening library: 10,000 drug-like SMILES shipped in the rdkit wheel.

Input: ``rdkit/Data/Pains/test_data/wehi_mols.csv`` (``"SMILES","WEHI-id"``).
Outputs: ``smiles.txt`` (one SMILES a line) and ``ids.txt`` (the WEHI id of each line).
rdkit is located without being imported (its files are read as plain text).
"""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

from . import DataUnavailable

NAME = "wehi-molecules"
DESCRIPTION = "WEHI screening library: 10,000 drug-like molecules as SMILES"
SOURCE = "PyPI wheel rdkit (rdkit/Data/Pains/test_data/wehi_mols.csv)"
LICENSE = "BSD-3-Clause (RDKit)"
PACKAGE_LABEL = "rdkit (pip)"
SIZE = "0.5 MB"
FIX = "pip install rdkit"
RELATIVE = Path("Data/Pains/test_data/wehi_mols.csv")


def default_source() -> Path:
    spec = importlib.util.find_spec("rdkit")
    if spec is None or not spec.submodule_search_locations:
        raise DataUnavailable(f"{NAME}: the Python package 'rdkit' is needed; "
                              f"install it with: {FIX}")
    path = Path(list(spec.submodule_search_locations)[0]) / RELATIVE
    if not path.is_file():
        raise DataUnavailable(f"{NAME}: {path} not found in this rdkit install; "
                              f"reinstall it with: pip install --force-reinstall rdkit")
    return path


def build(out: Path, source: Path | None = None) -> dict:
    path = default_source() if source is None else source
    if not path.is_file():
        raise DataUnavailable(f"{NAME}: {path} not found; install it with: {FIX}")
    smiles, ids = [], []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.reader(f):  # "SMILES","id" rows; a header row is skipped if present
            if row and row[0].strip() and row[0].strip().upper() != "SMILES":
                smiles.append(row[0].strip())
                ids.append(row[1].strip() if len(row) > 1 else "")
    if not smiles:
        raise ValueError(f"{NAME}: {path}: no molecules")
    (out / "smiles.txt").write_text("\n".join(smiles) + "\n", encoding="utf-8")
    (out / "ids.txt").write_text("\n".join(ids) + "\n", encoding="utf-8")
    return {"molecules": len(smiles), "unique_smiles": len(set(smiles)),
            "max_smiles_length": max(map(len, smiles))}
