"""WEHI conformers: 3D heavy-atom conformers of small WEHI molecules, embedded with RDKit.

Input: the WEHI screening library's SMILES (``wehi-molecules``' source file
``rdkit/Data/Pains/test_data/wehi_mols.csv`` in the rdkit wheel), or ``source``: any text / CSV
file whose first column is a SMILES (a header row ``SMILES`` is skipped).

Selection (documented subset, fixed): the molecules are shuffled with
``numpy.random.default_rng(SHUFFLE_SEED)``; a molecule is kept if it parses, is one fragment and
has at most ``MAX_HEAVY_ATOMS`` heavy atoms; the first ``MAX_MOLECULES`` molecules that also embed
successfully form the dataset (fewer if the source runs out).

Conformers (``embed``): hydrogens are added, ``N_CONFORMERS`` conformers are embedded with RDKit
ETKDGv3 (Wang et al. 2020; ``randomSeed = EMBED_SEED``, one thread, so the result does not depend
on the machine) and each is optimised with the MMFF94 force field (``MMFFOptimizeMoleculeConfs``,
at most ``MMFF_MAX_ITERS`` iterations).  **Hydrogens are then removed**: only heavy-atom
coordinates are stored, in RDKit's atom order of the SMILES (AddHs appends hydrogens after the
heavy atoms, so the order is unchanged), centred on the heavy-atom centroid (unweighted mean).
A molecule that fails (no MMFF parameters, or fewer than ``N_CONFORMERS`` conformers embedded)
is skipped and counted in ``meta.json`` (with the too large, multi-fragment and unparsable ones,
among the molecules scanned until K were kept); an MMFF optimisation that stops at
``MMFF_MAX_ITERS`` before converging is kept (it is still a valid geometry).

Outputs (plain ``.npy`` arrays, no pickle; K molecules, A = max heavy atoms of the kept
molecules, C conformers)::

    smiles.txt         K lines, the SMILES of each molecule (input form)
    atoms.npy          (K, A) int16   atomic numbers, 0 = padding
    mask.npy           (K, A) bool    real atoms
    bonds.npy          (K, A, A) int8 bond code: 0 none, 1 single, 2 double, 3 triple, 4 aromatic
    coords.npy         (K, C, A, 3) float32  heavy-atom coordinates in angstrom, padding = 0
    energies.npy       (K, C) float64 MMFF94 energy (kcal/mol, with hydrogens) after optimisation

Preparation of the default (400 molecules x 10 conformers) takes about 30-45 s on one core.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from . import DataUnavailable, require_module

NAME = "wehi-conformers"
DESCRIPTION = ("WEHI conformers: 400 small WEHI molecules (<= 14 heavy atoms) x 10 RDKit "
               "ETKDGv3 + MMFF94 conformers, heavy atoms only")
SOURCE = ("PyPI wheel rdkit (rdkit/Data/Pains/test_data/wehi_mols.csv), conformers embedded "
          "with RDKit ETKDGv3 + MMFF94")
LICENSE = "BSD-3-Clause (RDKit)"
PACKAGE_LABEL = "rdkit (pip)"
SIZE = "0.8 MB"

SHUFFLE_SEED = 0      #: seed of the fixed shuffle of the source molecules
MAX_HEAVY_ATOMS = 14  #: molecules with more heavy atoms are left out
MAX_MOLECULES = 400   #: K, molecules kept
N_CONFORMERS = 10     #: C, conformers per molecule
EMBED_SEED = 42       #: ETKDGv3 randomSeed
MMFF_MAX_ITERS = 500

BOND_CODES = {"SINGLE": 1, "DOUBLE": 2, "TRIPLE": 3, "AROMATIC": 4}


def read_smiles(path: Path) -> list[str]:
    """First column of every row of a text / CSV file, header ``SMILES`` and blanks skipped."""
    out = []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.reader(f):
            if row and row[0].strip() and row[0].strip().upper() != "SMILES":
                out.append(row[0].strip().split()[0])
    return out


def embed(smiles: list[str], *, n_conformers: int = N_CONFORMERS,
          max_heavy_atoms: int = MAX_HEAVY_ATOMS, max_molecules: int | None = None,
          seed: int = EMBED_SEED) -> tuple[dict[str, np.ndarray], list[str], dict]:
    """Embed conformers of ``smiles`` in the given order (see the module docstring).

    Returns
    -------
    arrays : dict with ``atoms`` (K, A), ``mask`` (K, A), ``bonds`` (K, A, A), ``coords``
        (K, C, A, 3) and ``energies`` (K, C) as described in the module docstring
    kept : list of the K SMILES kept
    counts : dict of the skipped molecules by reason

    Raises
    ------
    DataUnavailable
        rdkit is not installed (with the pip command).
    ValueError
        No molecule could be embedded.
    """
    require_module("rdkit", "rdkit", NAME)
    from rdkit import Chem, RDLogger
    from rdkit.Chem import AllChem

    RDLogger.DisableLog("rdApp.*")
    skipped = {"unparsable": 0, "too_large": 0, "multi_fragment": 0, "embedding_failed": 0,
               "no_mmff_parameters": 0}
    mols, kept = [], []
    for smi in smiles:
        if max_molecules is not None and len(kept) >= max_molecules:
            break
        mol = Chem.MolFromSmiles(smi)
        if mol is None:
            skipped["unparsable"] += 1
            continue
        if mol.GetNumHeavyAtoms() > max_heavy_atoms:
            skipped["too_large"] += 1
            continue
        if len(Chem.GetMolFrags(mol)) > 1:
            skipped["multi_fragment"] += 1
            continue
        molh = Chem.AddHs(mol)
        params = AllChem.ETKDGv3()
        params.randomSeed = seed
        params.numThreads = 1
        ids = list(AllChem.EmbedMultipleConfs(molh, n_conformers, params))
        if len(ids) < n_conformers:
            skipped["embedding_failed"] += 1
            continue
        if not AllChem.MMFFHasAllMoleculeParams(molh):
            skipped["no_mmff_parameters"] += 1
            continue
        result = AllChem.MMFFOptimizeMoleculeConfs(molh, numThreads=1, maxIters=MMFF_MAX_ITERS)
        energies = np.array([e for _, e in result], dtype=np.float64)
        heavy = Chem.RemoveHs(molh)
        mols.append((heavy, energies))
        kept.append(smi)
    if not mols:
        raise ValueError(f"{NAME}: no molecule could be embedded ({skipped})")
    K, C = len(mols), n_conformers
    A = max(m.GetNumAtoms() for m, _ in mols)
    atoms = np.zeros((K, A), np.int16)
    bonds = np.zeros((K, A, A), np.int8)
    coords = np.zeros((K, C, A, 3), np.float32)
    energies = np.zeros((K, C), np.float64)
    for k, (mol, e) in enumerate(mols):
        n = mol.GetNumAtoms()
        atoms[k, :n] = [a.GetAtomicNum() for a in mol.GetAtoms()]
        for b in mol.GetBonds():
            i, j = b.GetBeginAtomIdx(), b.GetEndAtomIdx()
            bonds[k, i, j] = bonds[k, j, i] = BOND_CODES.get(str(b.GetBondType()), 1)
        for c, conf in enumerate(mol.GetConformers()):
            xyz = np.asarray(conf.GetPositions(), dtype=np.float64)    # (n, 3) angstrom
            coords[k, c, :n] = (xyz - xyz.mean(0)).astype(np.float32)
        energies[k] = e
    arrays = {"atoms": atoms, "mask": atoms > 0, "bonds": bonds, "coords": coords,
              "energies": energies}
    return arrays, kept, skipped


def build(out: Path, source: Path | None = None) -> dict:
    from . import wehi

    path = wehi.default_source() if source is None else source
    if not path.is_file():
        raise DataUnavailable(f"{NAME}: {path} not found; install it with: pip install rdkit")
    smiles = read_smiles(path)
    order = np.random.default_rng(SHUFFLE_SEED).permutation(len(smiles))
    arrays, kept, skipped = embed([smiles[i] for i in order], max_molecules=MAX_MOLECULES)
    for name, value in arrays.items():
        np.save(out / f"{name}.npy", value, allow_pickle=False)
    (out / "smiles.txt").write_text("\n".join(kept) + "\n", encoding="utf-8")
    K, C, A, _ = arrays["coords"].shape
    return {"source_molecules": len(smiles), "molecules": K, "conformers_per_molecule": C,
            "max_heavy_atoms": int(A), "heavy_atoms_mean": float(arrays["mask"].sum(1).mean()),
            "skipped": skipped, "shuffle_seed": SHUFFLE_SEED, "embed_seed": EMBED_SEED,
            "selection": f"first {MAX_MOLECULES} embeddable one-fragment molecules with <= "
                         f"{MAX_HEAVY_ATOMS} heavy atoms after a fixed shuffle"}


def load(root: Path) -> tuple[dict[str, np.ndarray], list[str]]:
    """The prepared arrays (see the module docstring) and SMILES from directory ``root``."""
    arrays = {name: np.load(root / f"{name}.npy", allow_pickle=False)
              for name in ("atoms", "mask", "bonds", "coords", "energies")}
    smiles = (root / "smiles.txt").read_text(encoding="utf-8").split()
    return arrays, smiles
