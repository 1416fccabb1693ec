"""Reproducibility: a replicate's chain is a pure function of (root seed, replicate index, study).

It must not depend on the process count, on how many other replicates run beside it, on which
other replicates run beside it, or on the order of the paradigms; and a different root seed must
give different chains.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from modelcollapse.config import Study
from modelcollapse.engine import run_chain, run_study
from modelcollapse.registry import families as family_registry
from modelcollapse.registry import tasks as task_registry
from modelcollapse.rng import Streams

TASKS = [
    {"task": "linear_regression", "task_params": {"n_features": 3, "n_samples": 20, "n_test": 30}},
    {"task": "linear_regression", "task_params": {"dataset": "diabetes", "n_samples": 60}},
    {"task": "gaussian", "task_params": {"n_features": 2, "n_samples": 15, "n_test": 30}},
    {"task": "gaussian", "task_params": {"dataset": "wine", "n_features": 3}},
    {"task": "discrete", "task_params": {"n_outcomes": 5, "n_samples": 12}},
    {"task": "kde", "task_params": {"n_features": 2, "n_samples": 15, "n_test": 30}},
    {"task": "gmm", "task_params": {"n_features": 2, "n_samples": 30, "n_test": 30,
                                    "n_components": 2, "max_iter": 20}},
    {"task": "gmm", "task_params": {"dataset": "wine", "n_features": 2, "n_samples": 40,
                                    "n_components": 2, "max_iter": 20}},
    # the recipes, with a built-in family and a scikit-learn regressor by import path
    {"task": "density", "family": "kde", "task_params": {"dataset": "moons", "n_samples": 30,
                                                         "sample_metrics": False}},
    {"task": "regression", "family": "sklearn.linear_model:Ridge", "family_params": {"alpha": 1.0},
     "task_params": {"n_samples": 60}},
]
PARADIGMS = [
    "replace",
    "accumulate",
    "accumulate-subsample",
    {"name": "mix", "real_fraction": 0.5},
    {"name": "mix", "real_fraction": 0.3, "fresh_real": True},
]
N_ITER = 4
KEY = ["task", "paradigm", "seed", "iteration", "metric"]


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread():
    """The per-replicate scikit-learn GMM fits work on tiny matrices; on a busy machine
    multi-threaded BLAS spin-waits dominate them (10x slower).  Results do not depend on it."""
    with threadpool_limits(limits=1):
        yield


def _study(seed=0, n_seeds=3, paradigms=PARADIGMS, tasks=TASKS, **extra):
    return Study.model_validate(dict(tasks=tasks, paradigms=paradigms, n_iterations=N_ITER,
                                     n_seeds=n_seeds, seed=seed, **extra))


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(KEY, kind="stable").reset_index(drop=True)


@pytest.fixture(scope="module")
def base():
    return run_study(_study())


@pytest.fixture(scope="module")
def base7():
    return run_study(_study(n_seeds=7))


def test_study_covers_everything(base):
    assert set(base.paradigm) == {"replace", "accumulate", "accumulate-subsample", "mix-0.5",
                                  "mix-0.3-fresh"}
    # every registered task and family but the torch ones (test_vae.py, test_causal_lm.py etc.:
    # optional extras)
    torch_ones = {"vae", "lm", "diffusion", "sft", "causal_lm"}
    assert {t["task"] for t in TASKS} == set(task_registry.names()) - torch_ones
    assert set(base.family) == set(family_registry.names()) - torch_ones | {"Ridge"}
    assert sorted(base.iteration.unique()) == list(range(N_ITER))
    assert sorted(base.seed.unique()) == [0, 1, 2]


def test_same_study_same_results(base):
    pd.testing.assert_frame_equal(run_study(_study()), base)


def test_jobs_do_not_change_results(base):
    parallel = run_study(_study(), jobs=2)
    pd.testing.assert_frame_equal(parallel, base)
    assert parallel.attrs["profile_specs"] == base.attrs["profile_specs"]


def test_chain_does_not_depend_on_n_seeds(base, base7):
    first3 = base7[base7.seed < 3].reset_index(drop=True)
    pd.testing.assert_frame_equal(_sorted(first3), _sorted(base))


def test_chain_does_not_depend_on_companions(base7):
    """Replicates 4 and 6 run alone (via the engine's own loop) give the rows of the 7-seed run."""
    study = _study(n_seeds=7)
    for entry in study.tasks:
        streams = Streams(study.seed, [4, 6])
        task = entry.build(streams)
        for spec in study.paradigms:
            chain = run_chain(task, spec.build(), n_iterations=N_ITER, streams=streams)
            rows = base7[(base7.task == entry.label) & (base7.paradigm == spec.label)]
            for metric, values in chain.values.items():
                wide = rows[rows.metric == metric].pivot(index="iteration", columns="seed",
                                                         values="value")
                np.testing.assert_array_equal(
                    values, wide[[4, 6]].to_numpy(), err_msg=f"{entry.label} {spec.label} {metric}")
            status = rows[rows.metric == "n_train"].pivot(index="iteration", columns="seed",
                                                          values="status")
            np.testing.assert_array_equal(chain.status.astype(str), status[[4, 6]].to_numpy())


def test_paradigm_order_does_not_matter(base):
    """Paradigms share one built task in-process: none may leak state into the next."""
    reordered = run_study(_study(paradigms=PARADIGMS[::-1]))
    pd.testing.assert_frame_equal(_sorted(reordered), _sorted(base))


def test_task_order_does_not_matter(base):
    reordered = run_study(_study(tasks=TASKS[::-1]))
    pd.testing.assert_frame_equal(_sorted(reordered), _sorted(base))


def _stochastic(df: pd.DataFrame) -> pd.DataFrame:
    """Rows whose value is random (provenance counts are the same for every seed; the
    categorical fit never puts mass outside the real support; outcomes rarely vanish here)."""
    return df[~df.metric.isin(["n_train", "n_real", "n_synthetic", "synthetic_to_real_ratio",
                               "support_size", "mode_coverage", "hallucinated_mass",
                               "tail_recall"])]  # a share of ~30 tail points: often 1


def test_different_root_seeds_differ(base):
    other = run_study(_study(seed=1))
    assert len(other) == len(base)
    a, b = _stochastic(_sorted(base)), _stochastic(_sorted(other))
    assert (a[KEY].to_numpy() == b[KEY].to_numpy()).all()
    # every (task, paradigm, metric) differs somewhere, and nearly every single value differs
    diff = a.value.to_numpy() != b.value.to_numpy()
    grouped = pd.Series(diff).groupby([a.task.to_numpy(), a.paradigm.to_numpy(),
                                       a.metric.to_numpy()]).any()
    assert grouped.all(), grouped[~grouped]
    assert diff.mean() > 0.9


def test_replicates_differ(base):
    """Replicates of one study are different chains (own streams), seed by seed."""
    rows = _stochastic(base)
    for (task, paradigm, metric), g in rows.groupby(["task", "paradigm", "metric"],
                                                     observed=True):
        wide = g.pivot(index="iteration", columns="seed", values="value").to_numpy()
        for r in (1, 2):
            assert not np.array_equal(wide[:, 0], wide[:, r]), (task, paradigm, metric, r)


def test_n_synthetic_changes_chains_but_stays_deterministic():
    study = _study(tasks=TASKS[2:3], n_synthetic=40)
    a, b = run_study(study), run_study(study)
    pd.testing.assert_frame_equal(a, b)
    n_train = a[(a.metric == "n_train") & (a.paradigm == "accumulate")]
    assert n_train.groupby("iteration").value.first().tolist() == [15 + 40 * t for t in range(N_ITER)]
