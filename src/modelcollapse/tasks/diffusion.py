"""Diffusion task: a DDPM of molecular conformations (``families.diffusion.ConformerDiffusion``,
a small GeoDiff analogue) on real molecules, one network per replicate.

Gerstgrasser et al. 2024 (arXiv 2404.01413) refit GeoDiff (Xu et al. 2022) on GEOM-Drugs
conformers it generated itself: the test loss jumped under replace (about 55 at iteration 0, then
385-411) and stayed low under accumulate (80-90).  This task reproduces the loop at CPU size.

Data
----
The molecule table: the prepared ``wehi-conformers`` dataset (``modelcollapse data prepare
wehi-conformers``: 400 WEHI molecules with <= 14 heavy atoms, 10 RDKit ETKDGv3 + MMFF94
conformers each, heavy atoms only), or, with ``dataset: smiles``, the ``smiles`` list
embedded the same way when the task is built (tests, small custom sets; no cache needed).

Per replicate (its DATA stream of iteration 0) the molecules are permuted: the first
``n_test_molecules`` are **held out** (never trained on, as GeoDiff evaluates on test molecules),
the next ``n_molecules`` are the training molecules.  A row is one conformer,
``[molecule index, A x 3 heavy-atom coordinates in angstrom]`` (see ``families.diffusion``);
the real pool holds all ``n_conformers`` conformers of each training molecule
(n_samples = n_molecules x n_conformers) and the test set all conformers of the test molecules.

Metrics (each iteration)
------------------------
* ``test_denoising_loss``: mean denoising loss (DDPM epsilon-MSE, squared noise norm per atom,
  at fixed timesteps and noise; ``ConformerDiffusion.score_samples``) of the held-out real
  conformers: the risk metric ("Loss (Test)" of Gerstgrasser et al.).  A loss, not a
  log-likelihood, and not in label units (recorded as ``test_loss`` before issue 11).

From 2 x ``n_conformers`` conformers generated (EVAL stream) for each of the first
``n_eval_molecules`` test molecules (GeoDiff generates twice the number of reference
conformers), against that molecule's ``n_conformers`` reference conformers:

* ``cov_r`` / ``mat_r``: GeoDiff's COV-R (share of reference conformers with a generated one
  within RMSD ``cov_threshold``) and MAT-R (mean over references of the minimum RMSD to the
  generated ones, angstrom) (Xu et al. 2022, eqs. 15-16), averaged over molecules;
* ``cov_p``: COV-P, the share of generated conformers within ``cov_threshold`` of some reference
  (precision; Ganea et al. 2021 / GeoDiff appendix);
* ``tail_cov_r``: COV-R of the molecule's **tail conformers** at the tighter threshold
  ``tail_threshold`` (default 1.0 A): the ``TAIL_CONFORMER_FRACTION`` (30%, 3 of 10) of its
  reference conformers with the largest mean RMSD to its other reference conformers -- the
  lowest-density, rarest conformations of its real ensemble (Def. 7).  COV-R at 1.25 A is near
  saturation already at iteration 0 (about 0.92-0.95 on held-out WEHI molecules), so a loss of
  the tail barely moves it; ``tail_cov_r`` starts near 0.6 (iteration 0, 20 held-out molecules,
  2 replicates: 0.58) and has room to fall;
* ``bond_length_error``: mean absolute difference (angstrom) between a generated bond length and
  the mean of that bond over the reference conformers (sanity of local geometry; real
  conformers: about 0.005 A);
* ``diversity``: mean pairwise RMSD among the generated conformers of a molecule (angstrom,
  mean over the molecules); ``diversity_ratio``: the same divided by the reference conformers'
  (sums over the molecules, then the ratio; nan if the references are all identical, e.g.
  only rigid molecules).

RMSD is over heavy atoms after optimal rigid superposition (Kabsch 1976, proper rotations), with
the fixed atom order.  Symmetry-corrected RMSD (RDKit ``GetBestRMS``, minimum over graph
automorphisms) is not used: it needs RDKit molecule objects at evaluation, its cost grows with
the number of automorphisms (x (2C x C) pairs x molecules x iterations), and the fixed-order
RMSD is an upper bound of it, identical for molecules without symmetric atoms; with threshold
metrics this makes COV slightly conservative, the same at every iteration.

* ``train_steps``: optimiser steps of the iteration's fit (``tasks._budget``; default budget
  ``steps``, 500 per fit, as before).

Profile: variance -> ``diversity`` (Def. 4; a ratio to iteration 0, so the same verdict as
``diversity_ratio``, and defined for rigid molecules too), tail_recall -> ``tail_cov_r`` (Def. 7:
coverage of the rare reference conformers at the tight threshold), hallucination -> ``cov_p`` as
a precision (Def. 8).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from ..families.base import PerReplicate
from ..metrics.molecules import bond_length_error, coverage_matching, kabsch_rmsd, mean_pairwise
from ..rng import Role, Streams
from ._budget import TrainBudget, train_steps_taken
from .base import Task, TaskParams

__all__ = ["DiffusionTask", "DIFFUSION_PROFILE", "tail_conformers", "load_conformers"]

#: collapse-profile roles of the diffusion task's metrics
DIFFUSION_PROFILE = {"variance": "diversity", "tail_recall": "tail_cov_r",
                     "hallucination": "cov_p", "hallucination_mode": "precision"}

GENERATED_PER_REFERENCE = 2  #: generated conformers per reference conformer (GeoDiff)
DEFAULT_TRAIN_STEPS = 500    #: optimiser steps per fit under train_budget 'steps' (default)
SMILES_CONFORMERS = 5        #: conformers embedded per molecule for ``smiles`` (default)
TAIL_CONFORMER_FRACTION = 0.3  #: share of a molecule's reference conformers that are its tail


def tail_conformers(ref_rmsd: np.ndarray, fraction: float = TAIL_CONFORMER_FRACTION) -> np.ndarray:
    """Indices of a molecule's tail conformers from the (C, C) RMSD matrix of its reference
    conformers: the ceil(``fraction`` C) with the largest mean RMSD to the other references
    (lowest density in conformation space; ties by index), shape (k,), sorted."""
    C = ref_rmsd.shape[0]
    k = min(C, max(1, int(np.ceil(fraction * C - 1e-9))))
    isolation = ref_rmsd.sum(1) / max(C - 1, 1)                     # (C,) mean RMSD to others
    return np.sort(np.argsort(-isolation, kind="stable")[:k])


def load_conformers(smiles: list[str] | None, n_conformers: int | None):
    """The molecule table: arrays ``atoms`` (K, A), ``bonds`` (K, A, A), ``coords``
    (K, C, A, 3) angstrom (see ``data.sources.wehi_conformers``) -- prepared, or embedded now
    from ``smiles``.  Raises ValueError when the dataset is not prepared (with the command)."""
    from ..data.sources import wehi_conformers as wc

    if smiles is not None:
        arrays, _, _ = wc.embed(list(smiles), n_conformers=n_conformers or SMILES_CONFORMERS)
    else:
        from ..data.prepare import dataset_path

        root = dataset_path(wc.NAME)
        if not (root / "coords.npy").is_file():
            raise ValueError(f"dataset: {wc.NAME} is not prepared ({root / 'coords.npy'} "
                             f"missing); run `modelcollapse data prepare {wc.NAME}`")
        arrays, _ = wc.load(root)
    C = arrays["coords"].shape[1]
    if n_conformers is not None and n_conformers > C:
        raise ValueError(f"n_conformers: {n_conformers}; allowed: <= {C} (conformers per "
                         "molecule in the data)")
    k = C if n_conformers is None else n_conformers
    return arrays["atoms"], arrays["bonds"], arrays["coords"][:, :k]


def _rows(molecules: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """All conformers of ``molecules`` as rows (len * C, 1 + 3A) float32."""
    C = coords.shape[1]
    xyz = coords[molecules].reshape(len(molecules) * C, -1)
    return np.concatenate([np.repeat(molecules, C)[:, None].astype(np.float32), xyz], axis=1)


class DiffusionTask:
    family = "diffusion"

    class Params(TaskParams, TrainBudget):
        dataset: Literal["wehi-conformers", "smiles"] = Field(
            "wehi-conformers", description="'wehi-conformers' (needs `modelcollapse data "
            "prepare wehi-conformers`) or 'smiles' (the `smiles` list, embedded at build time)")
        smiles: list[str] | None = Field(
            None, min_length=4, description="molecules to embed when the task is built "
            "(dataset 'smiles' only)")
        n_molecules: int = Field(40, ge=1, description="training molecules per replicate")
        n_test_molecules: int = Field(20, ge=1, description="held-out test molecules")
        n_conformers: int | None = Field(
            None, ge=1, description="conformers per molecule used (default: all in the data; "
            f"{SMILES_CONFORMERS} embedded for `smiles`)")
        n_eval_molecules: int = Field(
            10, ge=1, description="test molecules whose generated conformers give cov_r, mat_r, "
            "cov_p, tail_cov_r, bond_length_error, diversity_ratio")
        cov_threshold: float = Field(
            1.25, gt=0, description="COV RMSD threshold delta, angstrom (GeoDiff: 1.25 for "
            "GEOM-Drugs, 0.5 for GEOM-QM9)")
        tail_threshold: float = Field(
            1.0, gt=0, description="RMSD threshold of tail_cov_r, angstrom (tighter than "
            "cov_threshold, so that the tail recall is not saturated at iteration 0)")
        hidden: int = Field(32, ge=1, description="EGNN hidden width")
        n_layers: int = Field(3, ge=1, description="EGNN layers")
        n_steps: int = Field(50, ge=2, description="diffusion steps T (training and sampling)")
        epochs: int = Field(100, ge=1, description="training epochs per fit under "
                            "train_budget 'epochs'")
        train_steps: int | None = Field(
            None, ge=1, description="optimiser steps per fit under train_budget 'steps' "
            f"(default {DEFAULT_TRAIN_STEPS}: constant cost per fit however large the "
            "accumulated pool, as GeoDiff's fixed iteration count)")
        batch_size: int = Field(32, ge=1, description="minibatch rows")
        lr: float = Field(5e-3, gt=0, description="Adam learning rate")
        ema_decay: float = Field(
            0.0, ge=0, lt=1, description="exponential moving average of the weights (0: off)")
        init: Literal["fresh", "warm_start"] = Field(
            "fresh", description="'fresh': new weights each fit; 'warm_start': continue from the "
            "previous iteration's network")
        molecule_sampling: Literal["balanced", "empirical"] = Field(
            "balanced", description="molecules of synthetic rows: every training molecule "
            "equally often, or i.i.d. from the training rows")
        coord_scale: float = Field(1.5, gt=0, description="angstrom per model unit")
        sample_metrics: bool = Field(
            True, description="record cov_r, mat_r, cov_p, tail_cov_r, bond_length_error, "
            "diversity, diversity_ratio")

        @model_validator(mode="after")
        def _check(self):
            if (self.dataset == "smiles") != (self.smiles is not None):
                raise ValueError("smiles: give a SMILES list exactly when dataset is 'smiles'")
            if self.n_eval_molecules > self.n_test_molecules:
                raise ValueError(f"n_eval_molecules: {self.n_eval_molecules}; allowed: <= "
                                 f"n_test_molecules ({self.n_test_molecules})")
            self.resolve_budget(0, DEFAULT_TRAIN_STEPS)
            return self

    @classmethod
    def build(cls, p: Params, streams: Streams) -> Task:
        atoms, bonds, coords = load_conformers(p.smiles, p.n_conformers)
        K, C, A, _ = coords.shape
        if p.n_molecules + p.n_test_molecules > K:
            raise ValueError(f"n_molecules + n_test_molecules = "
                             f"{p.n_molecules + p.n_test_molecules}; allowed: <= {K} molecules "
                             "in the data")
        n_atoms = (atoms > 0).sum(1)
        real, test, eval_mols = [], [], []
        for g in streams(0, Role.DATA):
            perm = g.permutation(K)
            te, tr = perm[:p.n_test_molecules], perm[p.n_test_molecules:][:p.n_molecules]
            real.append(_rows(np.sort(tr), coords))
            test.append(_rows(np.sort(te), coords))
            eval_mols.append(te[:p.n_eval_molecules])
        real, test = np.stack(real), np.stack(test)          # (R, n, 1+3A), (R, m, 1+3A)
        # bonds of each eval molecule and their mean reference lengths; the reference
        # conformers' RMSD matrix and tail conformers
        bond_pairs, ref_rmsd, tails = {}, {}, {}
        for k in np.unique(np.concatenate(eval_mols)):
            i, j = np.nonzero(np.triu(bonds[k]))
            ref = np.linalg.norm(coords[k][:, i] - coords[k][:, j], axis=-1).mean(0)
            bond_pairs[int(k)] = (i, j, ref)
            x = coords[k, :, :n_atoms[k]]
            ref_rmsd[int(k)] = kabsch_rmsd(x[:, None], x[None])             # (C, C)
            tails[int(k)] = tail_conformers(ref_rmsd[int(k)])

        def sample_metrics(model, iteration: int) -> dict[str, np.ndarray]:
            names = ("cov_r", "mat_r", "cov_p", "tail_cov_r", "bond_length_error", "diversity",
                     "diversity_ratio")
            out = {name: np.empty(len(eval_mols)) for name in names}
            G = GENERATED_PER_REFERENCE * C
            for r, (member, g) in enumerate(zip(model.models_, streams(iteration, Role.EVAL))):
                mols = eval_mols[r]
                gen = member.generate(np.repeat(mols, G), rng=g).reshape(len(mols), G, A, 3)
                per = {name: [] for name in names[:4]}
                bond_err, div_gen, div_ref = [], 0.0, 0.0
                for q, k in enumerate(mols):
                    n = n_atoms[k]
                    x, ref = gen[q, :, :n], coords[k, :, :n]         # (G, n, 3), (C, n, 3)
                    cross = kabsch_rmsd(x[:, None], ref[None])         # (G, C)
                    for name, v in coverage_matching(cross, p.cov_threshold).items():
                        per[name].append(v)
                    tail = cross[:, tails[int(k)]]                     # (G, k)
                    per["tail_cov_r"].append(
                        coverage_matching(tail, p.tail_threshold)["cov_r"])
                    bond_err.append(bond_length_error(x, *bond_pairs[int(k)]))
                    div_gen += mean_pairwise(kabsch_rmsd(x[:, None], x[None]))
                    div_ref += mean_pairwise(ref_rmsd[int(k)])
                for name in names[:4]:
                    out[name][r] = np.mean(per[name])
                out["bond_length_error"][r] = np.mean(bond_err)
                out["diversity"][r] = div_gen / len(mols)
                out["diversity_ratio"][r] = div_gen / div_ref if div_ref > 0 else np.nan
            return out

        def evaluate(model: PerReplicate, iteration: int = 0) -> dict[str, np.ndarray]:
            out = {"test_denoising_loss": -model.score_samples(test).mean(1),
                   "train_steps": train_steps_taken(model, len(real))}
            if p.sample_metrics:
                out.update(sample_metrics(model, iteration))
            return out

        def make_model():
            from ..families.diffusion import ConformerDiffusion  # torch only when built

            return PerReplicate(lambda: ConformerDiffusion(
                atoms, bonds, hidden=p.hidden, n_layers=p.n_layers, n_steps=p.n_steps,
                epochs=p.epochs, train_steps=p.family_train_steps, batch_size=p.batch_size,
                lr=p.lr,
                ema_decay=p.ema_decay, init=p.init, molecule_sampling=p.molecule_sampling,
                coord_scale=p.coord_scale),
                len(real), warm_start=p.init == "warm_start")

        return Task(
            name=f"diffusion-{p.dataset}", family=cls.family, make_model=make_model, real=real,
            test=test, evaluate=evaluate, risk_metric="test_denoising_loss",
            truth={"n_features": real.shape[2], "n_atoms_max": A, "n_conformers": C,
                   "n_molecules_table": K}, profile=DIFFUSION_PROFILE,
        )
