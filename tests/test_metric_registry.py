"""The metric registry (``modelcollapse.metrics``): every metric a built-in task records -- its
``evaluate``, its real-data learning curve and the engine's provenance -- has metadata with units
and an aggregation from the vocabulary; names are unique; metric modules stay pure."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import modelcollapse.metrics as metrics
from modelcollapse.config import Study
from modelcollapse.engine import run_study
from modelcollapse.metrics import AGGREGATIONS, METRICS, MetricInfo, info, is_log_loss
from modelcollapse.registry import tasks

SMILES = ["CCCCO", "CCOCC", "OCCOCCO", "CCN(CC)CC", "CC(C)CC(=O)O", "NCCCCN", "CCCOC(=O)C",
          "CCSCCC", "CCCCCCl", "OCCCc1ccccc1", "CCOc1ccncc1", "C1CCCCCC1"]
# (task, task_params) at tiny sizes; each variant that records other metrics (known truth vs
# real data, labelled modes, a non-uniform or corpus truth) is a case of its own
CASES = {
    "linear_regression": [({"n_features": 3, "n_samples": 30, "n_test": 40},
                           {"population_risk", "tail_risk", "reference_population_risk_n9"}),
                          ({"dataset": "diabetes", "n_samples": 60}, {"test_loss"})],
    "gaussian": [({"n_features": 2, "n_samples": 30, "n_test": 40}, {"w2_squared"}),
                 ({"dataset": "wine", "n_features": 3, "n_samples": 60},
                  {"precision", "mode_coverage"})],
    "kde": [({"dataset": "blobs", "n_samples": 30, "n_test": 40}, {"tail_recall"})],
    "gmm": [({"n_features": 2, "n_samples": 40, "n_test": 40, "n_components": 2},
             {"cov_trace_ratio"})],
    "density": [({"dataset": "blobs", "n_samples": 30, "n_test": 40}, {"test_nll"})],
    "discrete": [({"probabilities": [0.5, 0.2, 0.1, 0.1, 0.05, 0.05], "n_samples": 50},
                  {"tail_mass_recall"}),
                 ({"dataset": "austen", "n_samples": 200}, {"tail_support_recall"})],
    "vae": [({"dataset": "digits", "n_samples": 60, "n_test": 50, "hidden": 16, "latent": 2,
              "epochs": 1}, {"class_coverage", "train_steps"})],
    "lm": [({"dataset": "toy", "vocab_size": 300, "context": 8, "n_samples": 30, "n_test": 20,
             "n_layer": 1, "n_head": 2, "d_model": 8, "epochs": 1}, {"novel_ngram_share"})],
    "diffusion": [({"dataset": "smiles", "smiles": SMILES, "n_molecules": 6,
                    "n_test_molecules": 4, "n_conformers": 3, "n_eval_molecules": 2,
                    "hidden": 8, "n_layers": 2, "n_steps": 8, "train_steps": 2,
                    "batch_size": 8},
                   {"test_denoising_loss", "cov_r", "mat_r", "cov_p", "tail_cov_r", "diversity",
                    "diversity_ratio", "bond_length_error"})],
    "sft": [({"dataset": "toy", "pretrained": "toy", "prompt_length": 4, "completion_length": 6,
              "n_samples": 30, "n_test": 20, "n_eval": 8, "lora_rank": 2, "batch_size": 8,
              "num_threads": 1}, {"tail_ce", "novel_ngram_share"})],
}
NEEDS = {"vae": ("torch",), "lm": ("torch", "tokenizers"), "diffusion": ("torch", "rdkit"),
         "sft": ("torch", "transformers", "peft")}


def _params():
    out = []
    for name in tasks.names():
        missing = [m for m in NEEDS.get(name, ()) if importlib.util.find_spec(m) is None]
        marks = [pytest.mark.skipif(bool(missing), reason=f"{missing} not installed")]
        # a task without a case here is checked at its default size
        for i, (params, expected) in enumerate(CASES.get(name, [({}, set())])):
            out.append(pytest.param(name, params, expected, id=f"{name}-{i}", marks=marks))
    return out


@pytest.fixture
def fake_corpus(monkeypatch):
    """A small Zipf word table in place of the prepared austen corpus (discrete task)."""
    import modelcollapse.data.text as text

    counts = np.array([400, 200, 100, 50, 25, 12, 6, 3, 2, 1, 1, 1])
    words = [f"w{i}" for i in range(len(counts))]
    monkeypatch.setattr(text, "word_counts", lambda dataset: (words, counts))


def _recorded(task: str, params: dict) -> set[str]:
    """Metric names a one-iteration, two-seed study of ``task`` records (evaluate, learning
    curve, engine provenance)."""
    study = Study.model_validate({"name": "registry", "task": task, "task_params": params,
                                  "paradigms": ["replace"], "n_iterations": 1, "n_seeds": 2,
                                  "seed": 0})
    with threadpool_limits(limits=1):
        return set(run_study(study).metric.astype(str))


@pytest.mark.parametrize(("task", "params", "expected"), _params())
def test_every_recorded_metric_has_metadata(task, params, expected, fake_corpus):
    names = _recorded(task, params)
    # the case reaches what it is for (variant-only metrics) and the engine's provenance
    assert expected | {"n_train", "n_real", "n_synthetic", "synthetic_to_real_ratio"} <= names
    bad = {n: info(n) for n in names
           if not info(n).units or info(n).aggregation not in AGGREGATIONS}
    assert not bad, f"{task}: metrics without metadata (register them in metrics/): {bad}"


def test_diffusion_loss_is_not_a_squared_label_loss():
    loss = info("test_denoising_loss")
    assert "label" not in loss.units and not is_log_loss("test_denoising_loss")
    assert loss.higher_is_better is False and loss.aggregation == "mean"
    assert info("mat_r").units == info("bond_length_error").units == "angstrom"


def test_registry_refuses_duplicates_and_bad_entries():
    good = MetricInfo(True, "fraction", "x", "fraction")
    with pytest.raises(ValueError, match="'entropy' is already registered"):
        metrics.register_metric("entropy", good)
    with pytest.raises(ValueError, match="already registered"):
        metrics.metric(recall=good)(lambda: None)
    with pytest.raises(ValueError, match="aggregation 'median'; allowed: mean, fraction"):
        metrics.register_metric("new_metric_a", MetricInfo(True, "fraction", "x", "median"))
    with pytest.raises(ValueError, match="units is empty"):
        metrics.register_metric("new_metric_b", MetricInfo(True, "", "x", "mean"))
    assert "new_metric_a" not in METRICS and "new_metric_b" not in METRICS
    with pytest.raises(TypeError):
        METRICS["entropy"] = good  # a read-only view


def test_register_and_decorator_add_entries():
    from modelcollapse.metrics import base

    a, b = MetricInfo(False, "nats per sample", "mine", "mean"), MetricInfo(None, "ratio", "r",
                                                                           "ratio")
    try:
        metrics.register_metric("_test_metric_a", a)

        @metrics.metric(_test_metric_b=b)
        def f(x):
            return x

        assert f(3) == 3 and METRICS["_test_metric_a"] is a and info("_test_metric_b") is b
        assert is_log_loss("_test_metric_a") and not is_log_loss("_test_metric_b")
    finally:
        base._REGISTRY.pop("_test_metric_a", None)
        base._REGISTRY.pop("_test_metric_b", None)


def test_reference_learning_curve_points_inherit_their_metric():
    ref = info("reference_test_nll_n40")
    base = info("test_nll")
    assert (ref.higher_is_better, ref.units, ref.aggregation) == (
        base.higher_is_better, base.units, base.aggregation)
    assert "40 real samples" in ref.description
    assert info("reference_population_risk_n12").units == "squared label units"
    assert is_log_loss("reference_test_nll_n40")
    for unknown in ("reference_nosuch_n3", "reference_test_nll_nx", "my_metric"):
        assert info(unknown) == MetricInfo(None, "", unknown, "")


def test_metric_modules_import_only_numpy_scipy_and_each_other():
    """Metrics sit below the engine, tasks, config, report and profile: module-level imports are
    the standard library, numpy, scipy and sibling metric modules (torch only inside a function)."""
    allowed = {"__future__", "dataclasses", "types", "typing", "numpy", "scipy"}
    for path in Path(metrics.__file__).parent.glob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Import):
                roots = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                if node.level == 1:
                    continue  # a sibling metric module
                assert node.level == 0, f"{path.name}: relative import above metrics/"
                roots = {node.module.split(".")[0]}
            else:
                continue
            assert roots <= allowed, f"{path.name} imports {roots - allowed}"
