"""Paradigms and curation policies are plug-ins: a registered class with its own ``Params`` is
usable in a study (validated through the registry) and run by the engine."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from pydantic import Field
from threadpoolctl import threadpool_limits

from modelcollapse.config import Study, StudyError, load_study, study_hash
from modelcollapse.curation import Policy, PolicyParams
from modelcollapse.engine import run_study
from modelcollapse.paradigms import Paradigm, ParadigmParams, Part
from modelcollapse.registry import RegistryError, paradigms, policies


class DropSyntheticParams(PolicyParams):
    weight: float = Field(0.0, ge=0, le=1, description="weight left on a synthetic row")


class DropSynthetic(Policy):
    """Training stage: rows believed synthetic keep ``weight`` of their weight (0: dropped)."""

    Params = DropSyntheticParams
    stage = "training"

    def __init__(self, weight: float = 0.0) -> None:
        self.weight = weight

    def apply(self, batch, ctx):
        new = np.where(batch.believed, batch.weight * self.weight, batch.weight)
        return new, {"drop_synthetic_rows": (batch.believed & (new == 0)).sum(1).astype(float)}


class LatestHeadParams(ParadigmParams):
    rows: int = Field(ge=1, description="rows of the latest batch to train on")

    def label(self, name: str) -> str:
        return f"{name}{self.rows}"


class LatestHead(Paradigm):
    """Iteration t >= 1 trains on the first ``rows`` rows of the latest synthetic batch."""

    Params = LatestHeadParams
    needs_rows = True

    def __init__(self, rows: int) -> None:
        self.rows = rows

    def parts(self, view):
        if view.iteration == 0:
            return [Part("real")]
        n = len(view.streams)
        return [Part("latest", rows=np.broadcast_to(np.arange(self.rows), (n, self.rows)))]


@pytest.fixture
def plugins():
    policies.register("drop_synthetic", DropSynthetic)
    paradigms.register("latest-head", LatestHead)
    yield
    policies._entries.pop("drop_synthetic")   # no unregister: keep other tests' name lists
    paradigms._entries.pop("latest-head")


def study(paradigm_list, n_iterations=4, n_seeds=3) -> Study:
    return Study.model_validate({
        "name": "t", "task": "gaussian", "task_params": {"n_features": 2, "n_samples": 60},
        "n_iterations": n_iterations, "n_seeds": n_seeds, "paradigms": paradigm_list})


def wide(df, metric, paradigm) -> np.ndarray:
    rows = df[(df.metric == metric) & (df.paradigm == paradigm)]
    return rows.pivot(index="seed", columns="iteration", values="value").to_numpy()


def test_a_registered_policy_is_validated_and_applied(plugins):
    spec = study([{"name": "accumulate", "curation": [{"policy": "drop_synthetic"}]},
                  "accumulate"])
    assert spec.paradigms[0].label == "accumulate+drop_synthetic"
    assert spec.resolved()["paradigms"][0]["curation"] == [{"policy": "drop_synthetic",
                                                            "weight": 0.0}]
    with threadpool_limits(limits=1):
        df = run_study(spec)
    label = "accumulate+drop_synthetic"
    # every synthetic row dropped: each iteration refits the same real rows
    assert (wide(df, "n_synthetic", label) == 0).all() and (wide(df, "n_real", label) == 60).all()
    assert (wide(df, "drop_synthetic_rows", label)[:, 1:] == 60 * np.arange(1, 4)).all()
    err = wide(df, "mean_sq_error", label)
    np.testing.assert_allclose(err, np.repeat(err[:, :1], 4, axis=1), rtol=1e-9)
    plain = wide(df, "mean_sq_error", "accumulate")   # without it the fits move
    np.testing.assert_allclose(plain[:, 0], err[:, 0], rtol=1e-9)
    assert not np.allclose(plain[:, 1:], err[:, 1:])


def test_a_registered_policy_checks_its_params(plugins):
    with pytest.raises(StudyError) as exc:
        load_study("default", ["paradigms=[{name: replace, curation: "
                               "[{policy: drop_synthetic, weight: 2}]}]"])
    assert str(exc.value) == ("paradigms.0.curation.0.weight: Input should be less than or "
                              "equal to 1")
    with pytest.raises(StudyError, match=r"^paradigms\.0\.curation\.0\.wieght: unknown field; "
                                         r"did you mean 'weight'\?; allowed: policy, weight$"):
        load_study("default", ["paradigms=[{name: replace, curation: "
                               "[{policy: drop_synthetic, wieght: 0.5}]}]"])
    spec = load_study("default", ["paradigms=[{name: replace, curation: "
                                  "[{policy: drop_synthetic, weight: 0.5}]}]"]).paradigms[0]
    assert not spec.uses_sample_weight           # the plug-in's Params did not say so


def test_a_registered_paradigm_owns_its_settings(plugins):
    spec = study([{"name": "latest-head", "rows": 10}, "replace"])
    assert spec.paradigms[0].label == "latest-head10"
    resolved = spec.resolved()["paradigms"][0]
    assert resolved["rows"] == 10
    # a manifest's resolved study validates again, to the same hash
    assert study_hash(Study.model_validate(spec.resolved())) == study_hash(spec)
    with threadpool_limits(limits=1):
        df = run_study(spec)
    assert (wide(df, "n_train", "latest-head10")[:, 1:] == 10).all()
    assert (wide(df, "n_train", "replace")[:, 1:] == 60).all()
    with pytest.raises(StudyError, match=r"^paradigms\.0\.rows: Field required$"):
        load_study("default", ["paradigms=[latest-head]"])
    with pytest.raises(StudyError, match=r"^paradigms\.0\.real_fraction: unknown field for "
                                         r"latest-head \(a setting of mix\); allowed: name, rows, "):
        load_study("default", ["paradigms=[{name: latest-head, rows: 3, real_fraction: 0.5}]"])


def test_unknown_policy_gets_did_you_mean():
    with pytest.raises(StudyError) as exc:
        load_study("default", ["paradigms=[{name: accumulate, curation: [{policy: detcet}]}]"])
    message = str(exc.value)
    assert message.startswith("paradigms.0.curation.0.policy: unknown policy 'detcet'. "
                              "Did you mean 'detect'?")
    assert message.endswith("Allowed: detect, ratio_cap, tail_oversample, verify, weights")
    assert "\n" not in message


def test_plugins_named_like_builtins_are_refused():
    with pytest.raises(RegistryError, match="policy 'detect' is built in"):
        policies.register("detect", DropSynthetic)
    with pytest.raises(RegistryError, match="paradigm 'mix' is built in"):
        paradigms.register("mix", LatestHead)
    assert policies.get("detect").__name__ == "Detect"


@pytest.mark.parametrize("paradigm, uses", [
    ("accumulate", False),
    ({"name": "mix", "real_fraction": 0.5}, False),
    ({"name": "mix", "real_fraction": 0.5, "real_weight": 0.6}, True),
    ({"name": "accumulate", "curation": [{"policy": "detect"}, {"policy": "ratio_cap"},
                                         {"policy": "verify"}]}, False),
    ({"name": "accumulate", "curation": [{"policy": "detect", "action": "downweight"}]}, True),
    ({"name": "accumulate", "curation": [{"policy": "weights"}]}, True),
    ({"name": "replace", "curation": [{"policy": "tail_oversample"}]}, True),
])
def test_uses_sample_weight(paradigm, uses):
    assert study([paradigm]).paradigms[0].uses_sample_weight is uses


def test_config_imports_no_engine_and_the_plugin_packages_sit_below_config():
    code = ("import sys, modelcollapse.config\n"
            "from modelcollapse.registry import paradigms, policies\n"
            "[paradigms.get(n) for n in paradigms.names()]\n"
            "[policies.get(n) for n in policies.names()]\n"
            "print(__import__('json').dumps(sorted(m for m in sys.modules "
            "if m.startswith('modelcollapse.'))))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                       text=True, check=True).stdout)
    assert not [m for m in loaded if m.startswith("modelcollapse.engine")], loaded
    code = ("import sys, modelcollapse.paradigms, modelcollapse.curation\n"
            "from modelcollapse.registry import paradigms, policies\n"
            "[paradigms.get(n) for n in paradigms.names()]\n"
            "[policies.get(n) for n in policies.names()]\n"
            "print(__import__('json').dumps(sorted(m for m in sys.modules "
            "if m.startswith('modelcollapse.'))))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                       text=True, check=True).stdout)
    higher = ("config", "engine", "tasks", "cli", "report", "profile", "families", "results")
    assert not [m for m in loaded if m.split(".")[1] in higher], loaded


def test_resolved_paradigms_keep_their_pre_registry_form():
    """Results and resumes depend on labels and on the hash of the resolved study: the resolved
    paradigms still list mix's settings (unset) for every paradigm, keys in the same order."""
    spec = load_study("default", [
        "paradigms=[replace, {name: mix, real_fraction: 0.25, fresh_real: true, real_weight: 0.3,"
        " curation: [{policy: detect, recall: 0.8, fpr: 0.01, action: downweight},"
        " {policy: tail_oversample}, {policy: ratio_cap}, {policy: weights}, {policy: verify}],"
        " real_arrival: 5, scraping: true, synthetic_growth: linear}]"])
    common = {"real_arrival": 0, "initial_real": None, "scraping": False,
              "synthetic_growth": None}
    label = ("mix-0.25-fresh-w0.3+detect-r0.8-fpr0.01-downweight+tail3x0.1+cap1+w0.5+verify"
             "+arrival5+scraping+linear")
    expected = [
        {"name": "replace", "real_fraction": None, "fresh_real": False, "real_weight": None,
         "curation": [], **common, "label": "replace"},
        {"name": "mix", "real_fraction": 0.25, "fresh_real": True, "real_weight": 0.3,
         "curation": [
             {"policy": "detect", "recall": 0.8, "fpr": 0.01, "action": "downweight",
              "factor": 0.1, "detector": "oracle", "threshold": 0.5, "n_train": None},
             {"policy": "tail_oversample", "fraction": 0.1, "factor": 3.0},
             {"policy": "ratio_cap", "max_ratio": 1.0},
             {"policy": "weights", "real_weight": 0.5},
             {"policy": "verify", "quantile": 0.05, "verifier": None}],
         **common, "real_arrival": 5, "scraping": True,
         "synthetic_growth": {"kind": "linear", "rate": 2.0}, "label": label}]
    resolved = spec.resolved()["paradigms"]
    assert resolved == expected
    assert [list(p) for p in resolved] == [list(p) for p in expected]
    assert [list(p) for p in resolved[1]["curation"]] == [list(p) for p in expected[1]["curation"]]
    again = Study.model_validate(spec.resolved())       # a manifest's study validates again
    assert again.resolved()["paradigms"] == expected
