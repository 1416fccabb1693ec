"""The collapse profile, summary and curves from streamed aggregates (issue 15).

Chains are fed to ``profile.streaming.UnitAggregate`` in blocks of random sizes, in order; the
streamed analyses must give the array path's (``collapse_profile``, ``final_vs_initial``,
``plots.bands``, ``collapse_times``): exactly (rtol 1e-9) for every moment-based number and
verdict, within stated tolerances for Def. 7's tail loss and Def. 5's standard error (delta
method vs jackknife) and for quantiles (the sketch's relative accuracy).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from modelcollapse.profile import collapse_profile
from modelcollapse.profile.streaming import (UnitAggregate, collapse_profile_streamed,
                                             collapse_time_counts, curves_streamed,
                                             summary_streamed)
from modelcollapse.report.plots import bands
from modelcollapse.report.summary import collapse_times, final_vs_initial
from modelcollapse.results.store import chain_frame

SPEC = {"risk": "population_risk", "variance": "cov_trace_ratio", "modes": "mode_coverage",
        "tail": "tail_nll", "tail_base": "test_nll", "tail_mode": "difference",
        "hallucination": "hallucinated_mass",
        "scaling": {"metric": "population_risk", "reference": "reference_population_risk_n"}}
NUMBERS = ["value", "low", "high", "threshold", "p_occurs", "p_not", "p_occurs_adjusted",
           "p_not_adjusted", "p_value"]
#: computed by the delta method when streamed (the jackknife on arrays)
DELTA = {5, 7}


def synthetic(n: int, T: int = 12, seed: int = 0, variant: str = "clean"):
    """metric -> (T, n) values and status (T, n) of n made-up chains with every role of
    ``SPEC``; ``variant``: ``clean``, ``nan`` (10% of chains stopped: NaN after some
    iteration), ``inf`` (5% collapsed to an infinite risk and zero variance), ``recall``
    (precision-mode hallucination and a tail recall instead of tail losses)."""
    rng = np.random.default_rng(seed)
    t = np.arange(T)[:, None]
    z = lambda s=0.1: s * rng.standard_normal((T, n))  # noqa: E731
    u = 0.3 * rng.standard_normal(n)
    risk = 20.0 / (100 - 60 * t / T) * np.exp(z(0.2) + u)
    v = np.exp(-0.04 * t + np.cumsum(z(0.05), axis=0))
    values = {
        "population_risk": risk,
        "cov_trace_ratio": v,
        "mode_coverage": np.clip(1 - 0.05 * t / T + z(0.02), 0, 1),
        "hallucinated_mass": np.abs(0.004 * t * (1 + z(0.5)) + z(0.002)),
        "test_nll": 1 + 0.02 * t + z(),
        "n_train": np.full((T, n), 100.0),
    }
    values["tail_nll"] = values["test_nll"] + 0.5 + 0.01 * t + z()
    for N in (20, 40, 60, 80):
        r = np.full((T, n), np.nan)
        r[0] = 20.0 / N * np.exp(0.2 * rng.standard_normal(n) + u)
        values[f"reference_population_risk_n{N}"] = r
    status = np.full((T, n), "ok", dtype=object)
    hit = rng.random(n) < 0.3
    start = rng.integers(1, T, n)
    status[(t >= start[None, :]) & hit[None, :]] = "single_outcome"
    if variant == "nan":
        stop = rng.random(n) < 0.1
        for m in values:
            if not m.startswith("reference"):
                values[m][(t >= start[None, :]) & stop[None, :]] = np.nan
    if variant == "inf":
        bad = rng.random(n) < 0.05
        values["population_risk"][(t >= start[None, :]) & bad[None, :]] = np.inf
        values["cov_trace_ratio"][-1, bad] = 0.0
        values["tail_nll"][-1, bad] = np.inf
    if variant == "recall":
        values["precision"] = np.clip(1 - values.pop("hallucinated_mass"), 0, 1)
        values["tail_recall"] = np.clip(np.exp(-0.02 * t + z(0.1)), 0, 1)
        del values["tail_nll"]
    return values, status


def spec_for(variant: str) -> dict:
    if variant != "recall":
        return SPEC
    spec = {k: v for k, v in SPEC.items() if k not in ("tail", "tail_base", "tail_mode")}
    return {**spec, "hallucination": "precision", "hallucination_mode": "precision",
            "tail_recall": "tail_recall"}


def frame(units) -> pd.DataFrame:
    """The long results table of units [(paradigm, values, status)]."""
    return pd.concat([chain_frame(v, s, np.arange(s.shape[1]), study="s", task="t",
                                  family="f", paradigm=p) for p, v, s in units],
                     ignore_index=True)


def feed(values, status, spec, seed=0, **kw) -> UnitAggregate:
    """An aggregate fed the chains in blocks of random sizes (1 to 40), in order."""
    rng = np.random.default_rng(seed + 1000)
    T, n = status.shape
    agg = UnitAggregate(list(values), T, spec, **kw)
    lo = 0
    while lo < n:
        hi = min(n, lo + int(rng.integers(1, 41)))
        agg.update({m: a[:, lo:hi] for m, a in values.items()}, status[:, lo:hi])
        lo = hi
    return agg


def assert_profiles_agree(ref: pd.DataFrame, got: pd.DataFrame, *, delta_rtol: float):
    """Same rows and verdicts; numbers equal to rtol 1e-9 (Defs. 5 and 7's values too), those
    of the delta method (Defs. 5 and 7's bounds and p-values, the latter as -log10 p) to
    ``delta_rtol``; Def. 3's exponent (an argmin found to 1e-7) to 1e-6."""
    assert list(got.columns) == list(ref.columns)
    key = ["paradigm", "definition"]
    assert got[key].equals(ref[key])
    assert (got.verdict == ref.verdict).all(), pd.concat([ref[key + ["verdict"]],
                                                          got.verdict], axis=1)
    for col in ("name", "statistic", "n_seeds", "last_iteration"):
        assert got[col].equals(ref[col]), col
    dey = "Dey & Donoho"  # Def. 5's augment-workflow note: decided per chain
    assert (got.detail.str.contains(dey) == ref.detail.str.contains(dey)).all()
    for col in NUMBERS:
        for d in range(1, 9):
            rows = (ref.definition == d).to_numpy()
            a, b = ref[col].to_numpy(float)[rows], got[col].to_numpy(float)[rows]
            if d == 3 and col == "value":
                np.testing.assert_allclose(b, a, rtol=0, atol=1e-6, err_msg=f"{col} def {d}")
            elif d in DELTA and col not in ("threshold", "value"):
                if col.startswith("p_"):  # p-values: compare on the z scale
                    a, b = -np.log10(np.maximum(a, 1e-300)), -np.log10(np.maximum(b, 1e-300))
                np.testing.assert_allclose(b, a, rtol=delta_rtol, atol=1e-3,
                                           err_msg=f"{col} def {d}")
            else:
                np.testing.assert_allclose(b, a, rtol=1e-9, atol=0, err_msg=f"{col} def {d}")


VARIANTS = ["clean", "nan", "inf", "recall"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_streamed_profile_and_summary_equal_the_array_path(variant):
    """150 chains per unit, two units (one run-wide Holm correction), fed in random blocks
    with the exact-seeds buffer off: the moment path."""
    spec = spec_for(variant)
    data = [(p, *synthetic(150, seed=k, variant=variant)) for k, p in enumerate(("a", "b"))]
    results = frame(data)
    units = [({}, "t", p, feed(v, s, spec, seed=k, exact_seeds=0))
             for k, (p, v, s) in enumerate(data)]
    assert all(agg.wide() is None for *_, agg in units)  # the streamed path, not the buffer
    ref = collapse_profile(results, {"t": spec})
    got = collapse_profile_streamed(units)
    assert_profiles_agree(ref, got, delta_rtol=0.15)
    assert (got.verdict != "not_applicable").all()  # every definition tested
    s_ref = final_vs_initial(results, {"t": spec["risk"]})
    pd.testing.assert_frame_equal(summary_streamed(units)[s_ref.columns], s_ref, rtol=1e-9)


def test_delta_method_converges_to_the_jackknife():
    """Defs. 5 and 7 by the delta method vs the jackknife: at 600 chains their bounds agree to
    1% (the two differ by O(1/n)) and the verdicts are the same."""
    values, status = synthetic(600, seed=5)
    ref = collapse_profile(frame([("a", values, status)]), {"t": SPEC})
    got = collapse_profile_streamed([({}, "t", "a", feed(values, status, SPEC,
                                                          exact_seeds=0))])
    assert_profiles_agree(ref, got, delta_rtol=0.02)
    for d in DELTA:
        a, b = ref[ref.definition == d].iloc[0], got[got.definition == d].iloc[0]
        width_a, width_b = a.high - a.low, b.high - b.low
        assert abs(width_b / width_a - 1) < 0.01, (d, width_a, width_b)


@pytest.mark.parametrize("variant", ["clean", "nan"])
def test_small_units_are_the_array_path_exactly(variant):
    """Up to ``exact_seeds`` chains the aggregate keeps them: the profile (details, reasons and
    tests included) and the summary are the array path's, bit for bit (the kept values in C
    order, as the array path's: a matrix product in F order rounds Def. 3 differently)."""
    values, status = synthetic(40, T=50, seed=3, variant=variant)
    results = frame([("a", values, status)])
    agg = feed(values, status, SPEC)
    assert agg.wide() is not None
    pd.testing.assert_frame_equal(collapse_profile_streamed([({}, "t", "a", agg)]),
                                  collapse_profile(results, {"t": SPEC}), check_exact=True)
    pd.testing.assert_frame_equal(summary_streamed([({}, "t", "a", agg)]),
                                  final_vs_initial(results, {"t": "population_risk"}),
                                  check_exact=True)


def test_unit_rules_min_seeds_and_single_iteration():
    values, status = synthetic(100, seed=2)
    strict = {"min_seeds": 200}
    got = collapse_profile_streamed(
        [({}, "t", "a", feed(values, status, SPEC, settings=strict, exact_seeds=0))], strict)
    ref = collapse_profile(frame([("a", values, status)]), {"t": SPEC}, strict)
    assert (got.verdict == ref.verdict).all() and (got.reason == ref.reason).all()
    assert set(got.verdict) == {"inconclusive"}
    gone = {**values, "hallucinated_mass": np.full_like(values["hallucinated_mass"], np.nan)}
    got = collapse_profile_streamed([({}, "t", "a", feed(gone, status, SPEC, exact_seeds=0))])
    ref = collapse_profile(frame([("a", gone, status)]), {"t": SPEC})
    assert (got.verdict == ref.verdict).all() and (got.reason == ref.reason).all()
    assert got.verdict[got.definition == 8].item() == "not_applicable"  # never recorded
    one = {m: a[:1] for m, a in values.items()}
    got = collapse_profile_streamed([({}, "t", "a", feed(one, status[:1], SPEC,
                                                          exact_seeds=0))])
    assert (got.verdict == "not_applicable").all()
    assert got.reason.str.contains("single model-fitting iteration").all()


def test_real_run_of_a_preset(tmp_path):
    """A real small run (200 chains; every role but tail recall): streamed from its arrays in
    blocks = the profile and summary computed from its stored long table."""
    import modelcollapse

    run = modelcollapse.run("kazdan2024-gaussian", out=tmp_path / "run", plots=False,
                            overrides=["n_seeds=200", "n_iterations=16"])
    results, specs = run.results, run.manifest["profile_specs"]
    units = []
    for k, ((task, paradigm), group) in enumerate(results.groupby(["task", "paradigm"],
                                                                  observed=True, sort=False)):
        wide = group.pivot_table(index=["metric", "iteration"], columns="seed",
                                 values="value", observed=True, dropna=False)
        metrics = list(dict.fromkeys(wide.index.get_level_values(0)))
        values = {m: wide.loc[m].to_numpy() for m in metrics}
        status = group.drop_duplicates(["seed", "iteration"]).pivot(
            index="iteration", columns="seed", values="status").to_numpy().astype(str)
        units.append(({}, str(task), str(paradigm),
                      feed(values, status, specs[str(task)], seed=k, exact_seeds=0)))
    ref = collapse_profile(results, specs)
    got = collapse_profile_streamed(units)
    assert_profiles_agree(ref, got, delta_rtol=0.1)
    assert list(got.verdict) == list(run.profile.verdict)  # what the run wrote
    assert got.detail.str.contains("Dey & Donoho").any()  # accumulate is the augment workflow
    s_ref = final_vs_initial(results, {t: s["risk"] for t, s in specs.items()})
    pd.testing.assert_frame_equal(summary_streamed(units)[s_ref.columns], s_ref, rtol=1e-9)


def test_merge_equals_one_pass():
    values, status = synthetic(300, seed=4, variant="recall")
    spec = spec_for("recall")
    one = feed(values, status, spec, exact_seeds=0)
    left = feed({m: a[:, :170] for m, a in values.items()}, status[:, :170], spec,
                exact_seeds=0)
    right = feed({m: a[:, 170:] for m, a in values.items()}, status[:, 170:], spec, seed=9,
                 exact_seeds=0)
    merged = left.merge(right)
    assert merged.n_seeds == one.n_seeds == 300
    a, b = one.to_arrays()[0], merged.to_arrays()[0]
    assert a.keys() == b.keys()
    for k in a:
        if a[k].dtype.kind in "iub" or k.startswith(("acc/sketch", "recall")):
            np.testing.assert_array_equal(b[k], a[k], err_msg=k)  # counts: exactly
        else:
            np.testing.assert_allclose(b[k], a[k], rtol=1e-12, atol=1e-15, err_msg=k)
    p_one = collapse_profile_streamed([({}, "t", "a", one)])
    p_merged = collapse_profile_streamed([({}, "t", "a", merged)])
    assert (p_one.verdict == p_merged.verdict).all()
    for col in NUMBERS:
        np.testing.assert_allclose(p_merged[col].to_numpy(float), p_one[col].to_numpy(float),
                                   rtol=1e-9, err_msg=col)
    with pytest.raises(ValueError, match="merge"):
        one.merge(UnitAggregate(list(values), 11, spec))


@pytest.mark.parametrize("variant", ["nan", "recall"])
def test_blocks_merged_in_order_are_bit_identical_to_feeding_them(variant):
    """Determinism whatever the executor: one aggregate per block (as workers would compute
    them), merged in block order, has the same bytes as one aggregate fed the same blocks --
    and so the same profile, bit for bit."""
    values, status = synthetic(400, seed=12, variant=variant)
    spec = spec_for(variant)
    edges = [0, 37, 150, 151, 290, 400]
    blocks = [({m: a[:, lo:hi] for m, a in values.items()}, status[:, lo:hi])
              for lo, hi in zip(edges[:-1], edges[1:])]
    fed = UnitAggregate(list(values), 12, spec, exact_seeds=0)
    parts = []
    for v, st in blocks:
        fed.update(v, st)
        parts.append(UnitAggregate(list(values), 12, spec, exact_seeds=0).update(v, st))
    merged = parts[0]
    for part in parts[1:]:
        merged = merged.merge(part)
    a, b = fed.to_arrays(), merged.to_arrays()
    assert a[1] == b[1] and a[0].keys() == b[0].keys()
    for k in a[0]:
        assert a[0][k].tobytes() == b[0][k].tobytes(), k
    pd.testing.assert_frame_equal(collapse_profile_streamed([({}, "t", "a", merged)]),
                                  collapse_profile_streamed([({}, "t", "a", fed)]),
                                  check_exact=True)


def test_merge_of_small_aggregates_keeps_them_exact():
    values, status = synthetic(30, seed=6)
    halves = [feed({m: a[:, sl] for m, a in values.items()}, status[:, sl], SPEC)
              for sl in (slice(0, 12), slice(12, 30))]
    merged = halves[0].merge(halves[1])
    np.testing.assert_array_equal(merged.wide()["population_risk"],
                                  values["population_risk"].T)
    grown = merged.merge(feed(*synthetic(40, seed=7), SPEC))
    assert grown.wide() is None and grown.n_seeds == 70  # past exact_seeds: moments only


def test_to_arrays_round_trip(tmp_path):
    values, status = synthetic(200, seed=8, variant="recall")
    spec = spec_for("recall")
    agg = feed({m: a[:, :120] for m, a in values.items()}, status[:, :120], spec,
               exact_seeds=0)
    arrays, meta = agg.to_arrays()
    assert all(isinstance(a, np.ndarray) and a.dtype != object for a in arrays.values())
    np.savez(tmp_path / "agg.npz", **arrays)
    (tmp_path / "agg.json").write_text(json.dumps(meta))
    with np.load(tmp_path / "agg.npz", allow_pickle=False) as z:
        back = UnitAggregate.from_arrays(dict(z), json.loads((tmp_path / "agg.json").read_text()))
    a2, m2 = back.to_arrays()
    assert m2 == meta and a2.keys() == arrays.keys()
    for k in arrays:
        np.testing.assert_array_equal(a2[k], arrays[k], err_msg=k)
    rest = ({m: a[:, 120:] for m, a in values.items()}, status[:, 120:])
    agg.update(*rest)
    back.update(*rest)
    pd.testing.assert_frame_equal(collapse_profile_streamed([({}, "t", "a", back)]),
                                  collapse_profile_streamed([({}, "t", "a", agg)]),
                                  check_exact=True)
    with pytest.raises(ValueError, match="missing"):
        UnitAggregate.from_arrays({}, meta)


@pytest.mark.parametrize("variant,per_chain", [("clean", 0), ("recall", 16)])
def test_memory_does_not_grow_with_chains(variant, per_chain):
    """The state's bytes after 2,000 chains are those after 200 (plus Def. 7's tail recall
    pairs, 16 bytes per chain, when the task uses tail recall): the same 200 chains fed ten
    times, so the values' range -- all the quantile sketches grow with -- stays the same."""
    spec = spec_for(variant)
    values, status = synthetic(200, seed=1, variant=variant)
    small = feed(values, status, spec, exact_seeds=0)
    big = feed({m: np.tile(a, 10) for m, a in values.items()}, np.tile(status, 10), spec,
               exact_seeds=0)
    assert big.n_seeds == 2000
    assert big.nbytes - small.nbytes == per_chain * 1800
    assert small.nbytes < 100_000
    # and with new chains the sketches grow only with the range of the values (bucket bound)
    more = feed(*synthetic(2000, seed=2, variant=variant), spec, exact_seeds=0)
    for i, m in enumerate(more.metrics):
        x = synthetic(2000, seed=2, variant=variant)[0][m]
        sk = more.acc[f"sketch.{i}"]
        mag = np.abs(x[np.isfinite(x) & (x != 0)])
        bound = 2 * x.shape[0] * (math.log(mag.max() / mag.min()) / math.log(sk.gamma) + 2) \
            if mag.size else 0
        assert sum(len(c) for _, c in sk._pos + sk._neg) <= bound, m


def test_curves_equal_the_plot_bands_and_quantiles_are_within_accuracy():
    values, status = synthetic(300, seed=10, variant="inf")
    results = frame([("a", values, status)])
    got = curves_streamed([({}, "t", "a", feed(values, status, SPEC, exact_seeds=0))])
    ref = bands(results).astype({"metric": str, "iteration": int})
    ref = ref.sort_values(["metric", "iteration"]).reset_index(drop=True)
    got = got.astype({"iteration": int}).sort_values(["metric", "iteration"]).reset_index(
        drop=True)
    assert got[["metric", "iteration"]].equals(ref[["metric", "iteration"]])
    for col in ("mean", "low", "high", "nonfinite"):
        np.testing.assert_allclose(got[col], ref[col], rtol=1e-9, atol=1e-12, err_msg=col)
    for metric, x in values.items():
        rows = got[got.metric == metric]
        for q, col in ((0.05, "q05"), (0.5, "q50"), (0.95, "q95")):
            exact = np.array([np.quantile(x[t][~np.isnan(x[t])], q, method="lower")
                              if (~np.isnan(x[t])).any() else np.nan
                              for t in range(x.shape[0])])
            np.testing.assert_allclose(rows[col], exact, rtol=0.01, err_msg=(metric, col))
    lean = curves_streamed([({}, "t", "a", feed(values, status, SPEC, exact_seeds=0,
                                                 quantiles=False))])
    assert lean[["q05", "q50", "q95"]].isna().all().all()
    lean = lean.astype({"iteration": int}).sort_values(["metric", "iteration"]).reset_index(
        drop=True)
    pd.testing.assert_frame_equal(lean.drop(columns=["q05", "q50", "q95"]),
                                  got.drop(columns=["q05", "q50", "q95"]))


def test_collapse_time_counts_equal_the_per_chain_times():
    values, status = synthetic(250, seed=11)
    results = frame([("a", values, status)])
    got = collapse_time_counts([({}, "t", "a", feed(values, status, SPEC, exact_seeds=0))])
    times = collapse_times(results)
    ref = times.collapse_iteration.value_counts(dropna=False)
    assert dict(zip(got.collapse_iteration.fillna(-1), got.n_chains)) == {
        (-1 if math.isnan(k) else k): v for k, v in ref.items()}
    assert (got.last_iteration == times.last_iteration.max()).all()


def test_sweep_units_carry_their_point_first():
    values, status = synthetic(30, seed=13)
    where = {"point": 3, "grid.n_real": 50}
    units = [(where, "t", "a", feed(values, status, SPEC))]
    for table in (collapse_profile_streamed(units), summary_streamed(units),
                  curves_streamed(units), collapse_time_counts(units)):
        assert list(table.columns[:2]) == ["point", "grid.n_real"]
        assert (table.point == 3).all() and (table["grid.n_real"] == 50).all()


def test_bad_input_is_one_clear_error():
    values, status = synthetic(20)
    agg = UnitAggregate(list(values), 12, SPEC)
    with pytest.raises(ValueError, match=r"values\['population_risk'\]: shape \(11, 20\)"):
        agg.update({**values, "population_risk": values["population_risk"][1:]}, status)
    with pytest.raises(ValueError, match="missing"):
        agg.update({k: v for k, v in values.items() if k != "test_nll"}, status)
    with pytest.raises(ValueError, match="status"):
        agg.update(values, status[1:])
    with pytest.raises(ValueError, match="n_iterations"):
        UnitAggregate(list(values), 0, SPEC)
    agg.update(values, status)
    with pytest.raises(ValueError, match="growth_blocks"):
        collapse_profile_streamed([({}, "t", "a", agg)], {"growth_blocks": 4})
    with pytest.raises(ValueError, match="units"):
        collapse_profile_streamed([("t", "a", agg)])


def test_an_infinite_last_risk_is_a_catastrophic_increase():
    """Chains whose risk is +inf at the last iteration make its expected value infinite, so the
    ratio of means is inf and Def. 1 occurs -- in rows and aggregates alike (it was
    inconclusive with NaN p-values while Def. 3 said occurs)."""
    values, status = synthetic(150, seed=3, variant="inf")
    assert np.isposinf(values["population_risk"][-1]).any()
    results = frame([("a", values, status)])
    ref = collapse_profile(results, {"t": SPEC})
    got = collapse_profile_streamed([({}, "t", "a", feed(values, status, SPEC, exact_seeds=0))])
    for profile in (ref, got):
        row = profile[profile.definition == 1].iloc[0]
        assert row.verdict == "occurs", row.to_dict()
        assert row.value == np.inf and row.low == np.inf and row.p_occurs == 0.0
