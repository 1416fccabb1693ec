"""A user's own model family (registered name or "module:Class" import path) on a user's own
data file, under the generic recipes (density, regression): wiring, capability checks, errors."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from modelcollapse.config import StudyError, load_study
from modelcollapse.engine import run_study
from modelcollapse.registry import Registry, RegistryError

PLUGIN = textwrap.dedent('''
    import numpy as np

    class DiagGaussian:
        """Axis-aligned Gaussian, maximum likelihood; fit has no sample_weight."""

        def __init__(self, shrink=0.0):
            self.shrink = shrink

        def fit(self, X, *, rng):
            self.mean_ = X.mean(0)
            self.var_ = X.var(0) * (1 - self.shrink)
            return self

        def sample(self, n_samples, *, rng):
            return self.mean_ + np.sqrt(self.var_) * rng.standard_normal((n_samples, len(self.mean_)))

        def score_samples(self, X):
            z = (X - self.mean_) ** 2 / self.var_
            return -0.5 * (np.log(2 * np.pi * self.var_) + z).sum(1)
''')


@pytest.fixture
def workspace(tmp_path):
    """A study folder with a plug-in module and a CSV (a numeric column, a text column)."""
    (tmp_path / "my_models.py").write_text(PLUGIN)
    rng = np.random.default_rng(7)
    x = rng.gamma(2.0, 1.5, size=120)
    y = 2 * x + rng.standard_normal(120)
    lines = ["x,y,name"] + [f"{a:.6f},{b:.6f},row{i}" for i, (a, b) in enumerate(zip(x, y))]
    (tmp_path / "data.csv").write_text("\n".join(lines) + "\n")
    return tmp_path


def _study(folder, body: str) -> str:
    path = folder / "study.yaml"
    path.write_text(textwrap.dedent(body))
    return str(path)


def _final(results, metric, iteration):
    rows = results[(results.metric == metric) & (results.iteration == iteration)]
    return rows.groupby(["task", "paradigm"], observed=True).value.mean()


def test_import_path_family_on_a_csv_matches_the_builtin_gaussian(workspace, monkeypatch):
    # run from elsewhere: the module and the CSV are found next to the study file
    monkeypatch.chdir(workspace.parent)
    path = _study(workspace, """
        name: byo
        tasks:
          - {task: density, family: "my_models:DiagGaussian",
             task_params: {dataset: data.csv, features: [x]}}
          - {task: density, family: gaussian, task_params: {dataset: data.csv, features: [x]}}
        paradigms: [replace, accumulate]
        n_seeds: 5
        n_iterations: 3
    """)
    study = load_study(path)
    assert [t.label for t in study.tasks] == ["DiagGaussian-data", "gaussian-data"]
    results = run_study(study)
    assert set(results.family.astype(str)) == {"DiagGaussian", "gaussian"}
    # iteration 0 is the MLE on the same real split: in 1-d both families are the same model
    nll = _final(results, "test_nll", 0)
    np.testing.assert_allclose(nll["DiagGaussian-data"].to_numpy(),
                               nll["gaussian-data"].to_numpy(), rtol=1e-10)
    # the chain really ran the plug-in: its samples feed the next fits
    assert (_final(results, "n_synthetic", 2)["DiagGaussian-data"] > 0).all()
    provenance = results.attrs["provenance"]["DiagGaussian-data"]
    assert provenance["family"]["class"] == "my_models:DiagGaussian"
    assert len(provenance["family"]["sha256"]) == 64
    assert provenance["datasets"]["dataset"]["path"] == str((workspace / "data.csv").resolve())


def test_plugin_gets_a_full_collapse_profile(workspace):
    from modelcollapse.profile import collapse_profile

    path = _study(workspace, """
        task: density
        family: "my_models:DiagGaussian"
        task_params: {dataset: data.csv, features: [x, y]}
        paradigms: [replace]
        n_seeds: 5
        n_iterations: 3
    """)
    results = run_study(load_study(path))
    profile = collapse_profile(results, results.attrs["profile_specs"])
    applicable = set(profile[profile.verdict != "not_applicable"].definition)
    assert {1, 2, 4, 5, 7, 8} <= applicable


def test_weighting_curation_needs_sample_weight(workspace):
    body = """
        task: density
        family: "{family}"
        task_params: {{dataset: data.csv}}
        paradigms: [{{name: accumulate, curation: [{{policy: weights, real_weight: 0.5}}]}}]
    """
    with pytest.raises(StudyError, match=r"^paradigms\.0: .*DiagGaussian.* no sample_weight"):
        load_study(_study(workspace, body.format(family="my_models:DiagGaussian")))
    # the built-in Gaussian honours sample_weight
    assert load_study(_study(workspace, body.format(family="gaussian"))).tasks[0].family == \
        "gaussian"
    # a policy that drops rows (weight 0) works with the plug-in: it gets the kept rows only
    ok = body.format(family="my_models:DiagGaussian").replace(
        "{policy: weights, real_weight: 0.5}", "{policy: ratio_cap, max_ratio: 0.5}")
    more = "    n_seeds: 3\n        n_iterations: 4\n"
    results = run_study(load_study(_study(workspace, ok + more)))
    ratio = results[results.metric == "synthetic_to_real_ratio"].value
    assert ratio.max() == pytest.approx(0.5)


@pytest.mark.parametrize("fields, message", [
    ("task: density\nfamily: gausian", r"^family: unknown family 'gausian'\. Did you mean 'gaussian'"),
    ("task: density\nfamily: linear_regression",
     r"^family: linear_regression models supervised data; task density needs"),
    ("task: gaussian\nfamily: kde", r"^family: task gaussian always runs its own family"),
    ("task: density\nfamily: 'no_such_module:X'", r"^family: cannot import 'no_such_module'"),
    ("task: density\nfamily: 'my_models:DiagGausian'", r"did you mean DiagGaussian"),
    ("task: density\nfamily: 'my_models:DiagGaussian'\nfamily_params: {shrinkk: 1}",
     r"^family_params\.shrinkk: not a parameter .* Did you mean 'shrink'"),
    ("task: density\nfamily: gmm\nfamily_params: {n_components: 2, bogus: 1}",
     r"^family_params\.bogus: not a parameter of gmm"),
    ("task: density\ntask_params: {dataset: missing.csv}", r"^task_params.*missing\.csv' not found"),
    ("task: density\ntask_params: {dataset: data.csv, features: [nope]}", r"nope"),
    ("task: regression\ntask_params: {dataset: data.csv}", r"target: required with a data file"),
    ("task: density\ntask_params: {dataset: wine, features: [x]}", r"only for a data file"),
])
def test_one_line_errors(workspace, fields, message):
    with pytest.raises(StudyError, match=message) as err:
        load_study(_study(workspace, fields + "\n"))
    assert "\n" not in str(err.value)


def test_sklearn_regressor_on_a_csv_matches_ols_at_iteration_0(workspace):
    path = _study(workspace, """
        tasks:
          - {task: regression, task_params: {dataset: data.csv, target: y}}
          - {task: regression, family: "sklearn.linear_model:Ridge",
             family_params: {alpha: 0.0, fit_intercept: false},
             task_params: {dataset: data.csv, target: y}}
        paradigms: [replace]
        n_seeds: 5
        n_iterations: 3
    """)
    study = load_study(path)
    assert [t.label for t in study.tasks] == ["regression-data", "Ridge-data"]
    results = run_study(study)
    loss = _final(results, "test_loss", 0)
    np.testing.assert_allclose(loss["Ridge-data"].to_numpy(), loss["regression-data"].to_numpy(),
                               rtol=1e-8)
    assert (loss > 0).all() and (loss < 1).all()  # y is mostly explained by x
    assert set(results.family.astype(str)) == {"linear_regression", "Ridge"}


def test_registry_refuses_to_shadow_or_overwrite():
    reg = Registry("widget")
    reg.builtin({"a": "math:sqrt"})
    with pytest.raises(RegistryError, match="built in"):
        reg.register("a", object)
    reg.register("b", int)
    reg.register("b", int)  # the same object again is harmless
    with pytest.raises(RegistryError, match="already registered"):
        reg.register("b", float)
    reg.register("b", float, replace=True)
    assert reg.get("b") is float


def test_registered_family_by_name(workspace, monkeypatch):
    import sys

    from modelcollapse.registry import families

    monkeypatch.syspath_prepend(str(workspace))
    sys.modules.pop("my_models", None)
    import my_models

    families.register("diag-gaussian-test", my_models.DiagGaussian)
    try:
        study = load_study({"task": "density", "family": "diag-gaussian-test",
                            "task_params": {"dataset": "moons"}, "n_seeds": 2,
                            "n_iterations": 2})
        assert study.tasks[0].label == "diag-gaussian-test-moons"
        assert set(run_study(study).family.astype(str)) == {"diag-gaussian-test"}
    finally:
        families._entries.pop("diag-gaussian-test")


def test_presets_never_run_user_code():
    from modelcollapse.config import list_presets

    for name in list_presets():
        study = load_study(name)
        assert study.user_code() == [], name
        assert all(":" not in (t.family or "") for t in study.tasks), name


def test_a_plugin_task_without_a_profile_mapping_gets_generic_roles():
    from modelcollapse.profile import collapse_profile
    from modelcollapse.registry import tasks
    from modelcollapse.tasks.density import DensityTask

    class NoMapping(DensityTask):
        @classmethod
        def build(cls, p, streams, family):
            task = super().build(p, streams, family)
            task.profile = {}  # a user's task that says nothing about its metrics
            return task

    tasks.register("density-no-mapping-test", NoMapping)
    try:
        study = load_study({"task": "density-no-mapping-test",
                            "task_params": {"dataset": "blobs", "n_samples": 60},
                            "paradigms": ["replace"], "n_seeds": 5, "n_iterations": 3})
        results = run_study(study)
    finally:
        tasks._entries.pop("density-no-mapping-test")
    assert results.attrs["profile_specs"]["density-no-mapping-test-blobs"] == {"risk": "test_nll"}
    profile = collapse_profile(results, results.attrs["profile_specs"]).set_index("definition")
    for definition in (4, 5, 6, 7, 8):
        assert profile.loc[definition, "verdict"] != "not_applicable", definition
