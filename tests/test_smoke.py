"""End-to-end smoke test of the study runner on a tiny real-data study."""

from modelcollapse import load_study, run_study
from modelcollapse.results.store import COLUMNS


def test_default_study_runs_small():
    study = load_study("default", ["n_seeds=3", "n_iterations=3"])
    df = run_study(study)
    assert list(df.columns) == COLUMNS
    assert set(df.paradigm.unique()) == {"replace", "accumulate", "accumulate-subsample"}
    assert df.iteration.max() == 2 and df.seed.nunique() == 3
