"""Closed-form curves to overlay on a run's plots (known-truth tasks only).

Which formula applies to which (task, metric, paradigm) is decided here from the resolved study;
the formulas themselves live in ``modelcollapse.theory``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["theory_curves"]


def theory_curves(study: dict, task_label: str, n_iterations: int) -> dict[str, dict[str, np.ndarray]]:
    """``{metric: {paradigm label: expected value per iteration}}`` for one task of a study.

    Empty when no closed form applies (real data, growth schedules other than constant, mix).
    """
    from .. import theory as th

    entry = next((t for t in study.get("tasks", []) if t.get("label") == task_label), None)
    growth = (study.get("synthetic_growth") or {}).get("kind", "constant")
    if entry is None or growth != "constant":
        return {}
    p = entry.get("task_params", {})
    t = np.arange(n_iterations)
    m = study.get("n_synthetic")
    labels = {s["name"]: s["label"] for s in study.get("paradigms", [])
              if s["name"] in ("replace", "accumulate")}
    out: dict[str, dict[str, np.ndarray]] = {}

    def add(metric, name, values):
        if name in labels:
            out.setdefault(metric, {})[labels[name]] = np.asarray(values, dtype=float)

    task = entry.get("task")
    if (task == "linear_regression" and p.get("dataset") == "synthetic"
            and p.get("label_noise") == "true" and m in (None, p.get("n_samples"))):
        kw = dict(n_features=p["n_features"], n_samples=p["n_samples"],
                  noise_variance=p["noise_variance"])
        if p["n_samples"] > p["n_features"] + 1:
            add("population_risk", "replace", th.replace_risk(t, **kw))
            add("population_risk", "accumulate", th.accumulate_risk(t, **kw))
    elif (task == "gaussian" and p.get("dataset") == "synthetic"
          and not p.get("known_covariance")):
        kw = dict(n_samples=p["n_samples"], estimator=p["covariance_estimator"],
                  n_synthetic=m, sampling_scale=p["sampling_scale"])
        trace = p["variance"] * p["n_features"]
        add("cov_trace_ratio", "replace", th.replace_cov_trace_ratio(t, **kw))
        add("cov_trace_ratio", "accumulate", th.accumulate_cov_trace_ratio(t, **kw))
        add("mean_sq_error", "replace", th.replace_mean_sq_error(t, trace_cov=trace, **kw))
        add("mean_sq_error", "accumulate", th.accumulate_mean_sq_error(t, trace_cov=trace, **kw))
    elif task == "discrete" and p.get("probabilities") is not None:
        kw = dict(probabilities=p["probabilities"], n_samples=p["n_samples"], n_synthetic=m)
        add("gini_simpson", "replace", th.gini_simpson_replace(t, **kw))
        add("gini_simpson", "accumulate", th.gini_simpson_accumulate(t, **kw))
    return out
