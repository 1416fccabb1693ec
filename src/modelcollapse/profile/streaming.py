"""The collapse profile, the summary and the plotted curves from streamed aggregates.

A unit (one (task, paradigm)) of 10^6 replicate chains does not fit in memory as a long table,
nor as (n_seeds, n_iterations) arrays.  ``UnitAggregate`` is fed the unit's results in blocks
of whole chains -- ``values[metric]`` and ``status`` of shape (n_iterations, R_block), as
``engine.unit.UnitResult`` holds them -- and keeps only what the analyses need, in memory that
does not grow with the number of chains; aggregates of different blocks (workers, Ray) merge.
``collapse_profile_streamed``, ``summary_streamed``, ``curves_streamed`` and
``collapse_time_counts`` then give what ``profile.collapse_profile``,
``report.summary.final_vs_initial``, ``report.plots.bands`` (plus quantiles) and
``report.summary.collapse_times`` give from the long table.

How each definition streams (the decision code is shared with the array path: both call the
``*_from`` functions of ``profile.definitions``, ``profile.growth.growth_test_from``,
``profile.scaling.scaling_verdict_from``, ``_stats.mean_test_from`` and
``_stats.log_ratio_of_means_from``; see ``core._tests``):

====  =========================================================  ==============================
def.  what is kept (``results.aggregate.CurveMoments``)           agreement with the array path
====  =========================================================  ==============================
1, 2  per metric: moments of (x_0, x_T), of the pairs with        exact (rounding, ~1e-13)
      neither NaN (mean and 2x2 covariance: the delta method's
      sd of u = x_T / m_T - x_0 / m_0), and of x_T - x_0
3     mean and covariance of the K block means and the last       exact; the exponent (an
      block's rise, K = min(growth_blocks, T); chains with a      argmin found to 1e-7) to ~1e-7
      non-finite risk (count)
4     moments of the finite log variance ratios l_T, count of     exact (as Def. 3)
      l_T = -inf, chains with a non-finite l_t; growth moments
      of -l_t
5     mean and covariance of (learning-curve risks, risk_0,       ESS exact; its se by the delta
      risk_T) and moments of the paired differences               method (numerical gradient)
                                                                  vs the jackknife: equal to
                                                                  O(1/n)
6, 8  as 1, 2 (8: of the hallucinated share)                      exact
7     tail loss: mean and 6x6 covariance of ``tail_features``     value exact; bounds and
      -> ``definitions.delta_test``; tail recall: every chain's   p-values by the delta method
      (recall_0, recall_T), **16 bytes per chain**                (jackknife: O(1/n)); tail
                                                                  recall exact
====  =========================================================  ==============================

Small units are exact: while an aggregate holds at most ``exact_seeds`` chains (default 64,
at least 2 ``growth_blocks``) it also keeps their values (n_iterations x chains x metrics x
8 bytes), and the profile and summary of such a unit are the array path's, bit for bit.  Above
that, the growth test's K is min(growth_blocks, T): what the array path takes for n >=
2 growth_blocks + 1 chains, so the streamed K always equals it.

Memory per unit, independent of the number of chains: per metric ~64 T + 500 bytes of
moments plus its quantile sketch (8 bytes per bucket: ~115 buckets per decade of values per
iteration at 1% accuracy; ``quantiles=False`` drops them), ~ 8 (K + 1)^2 bytes per growth
curve, 8 (K_ref + 2)^2 for Def. 5, and the exact-seeds buffer (at most ``exact_seeds`` x T x
metrics x 8 bytes, freed once more chains come); plus 16 bytes per chain for Def. 7's tail
recall when a task uses it (the median of recall_0 and the sign test need them).

Determinism: every number depends only on the blocks (which chains each holds) and their
order.  Feeding blocks one after another, or one aggregate per block (workers) merged in block
order (``merge``: ``self``'s chains first), gives the same bytes (tested); a different
partition into blocks gives the same numbers to ~1e-13 only, so a run that must write the same
bytes whatever its executor or interruptions fixes the blocks by the study, not by the
machine (with one BLAS thread, as the engine runs).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from ..results.aggregate import CurveMoments, QuantileSketch, block_matrix
from . import definitions as D
from ._stats import (Moments, PairStats, Verdict, contrast_from, log_ratio_of_means_from,
                     mean_ci_from)
from .growth import growth_test_from
from .scaling import _as_risk, augment_chains, reference_names, scaling_verdict_from
from .settings import ProfileSettings

__all__ = ["UnitAggregate", "collapse_profile_streamed", "summary_streamed", "curves_streamed",
           "collapse_time_counts", "ABSORBING"]

#: statuses of a chain that has collapsed to a point (``report.summary.collapse_times``)
ABSORBING = ("single_outcome", "zero_variance")


def _settings(settings) -> ProfileSettings:
    return settings if isinstance(settings, ProfileSettings) else ProfileSettings.model_validate(
        settings or {})


class UnitAggregate:
    """What the summary, the collapse profile and the plots need of one (task, paradigm),
    merged from blocks of whole replicate chains; memory independent of the number of chains
    (except Def. 7's tail recall pairs, 16 bytes per chain, when the task uses tail recall).

    Parameters
    ----------
    metrics : sequence of str
        The unit's metrics (every block gives each of them).
    n_iterations : int
        T, model-fitting iterations of every chain (>= 1).
    spec : dict
        The task's profile spec (``{"risk": metric, ...}``, the manifest's ``profile_specs``);
        the risk is defaulted and the generic roles filled as ``collapse_profile`` does
        (``core.resolve_spec``).
    settings : ProfileSettings or dict, optional
        The profile's settings; ``growth_blocks`` fixes the growth test's blocks at feed time
        (the others may be changed at analysis time).
    exact_seeds : int
        Keep every chain's values while there are at most this many (raised to 2
        ``growth_blocks``): small units are analysed exactly as arrays.
    relative_accuracy : float
        Of the per-iteration quantile sketches (``results.aggregate.QuantileSketch``).
    quantiles : bool
        Keep those sketches (``curves_streamed``'s q05, q50, q95; NaN without them).  They
        are about two thirds of the feeding time and most of the state.
    absorbing : tuple of str
        Statuses that count as collapse for ``collapse_time_counts``.

    Raises
    ------
    ValueError
        No metrics, n_iterations < 1, or (``update``) a block of the wrong shape or metrics;
        (``merge``) aggregates of different metrics, T, spec or settings.
    """

    def __init__(self, metrics: Sequence[str], n_iterations: int, spec: dict,
                 settings: ProfileSettings | dict | None = None, *, exact_seeds: int = 64,
                 relative_accuracy: float = 0.01, quantiles: bool = True,
                 absorbing: Sequence[str] = ABSORBING) -> None:
        from .core import resolve_spec

        self.metrics = [str(m) for m in metrics]
        if not self.metrics or len(set(self.metrics)) != len(self.metrics):
            raise ValueError("metrics: give the unit's metric names, each once")
        self.T = int(n_iterations)
        if self.T < 1:
            raise ValueError(f"n_iterations: {n_iterations}; must be >= 1")
        self.settings = _settings(settings)
        self.spec_given = dict(spec or {})
        self.spec = resolve_spec(self.spec_given, self.metrics)
        self.exact_seeds = max(int(exact_seeds), 2 * self.settings.growth_blocks)
        self.relative_accuracy = float(relative_accuracy)
        self.quantiles = bool(quantiles)
        self.absorbing = tuple(str(a) for a in absorbing)
        self.K = min(self.settings.growth_blocks, self.T)
        self.n_seen = 0
        self.raw: list[dict[str, np.ndarray]] | None = []   # blocks, while n_seen <= exact_seeds
        self.acc: dict[str, CurveMoments | QuantileSketch] = {}
        self.counts: dict[str, np.ndarray] = {}
        self.recall_pairs: list[np.ndarray] | None = None
        self._plan()

    # -- what to keep -----------------------------------------------------------------------
    def _index(self, name) -> int:
        return self.metrics.index(name)

    def _plan(self) -> None:
        """Create the accumulators (key -> accumulator) the unit's spec needs."""
        T, spec, has = self.T, self.spec, set(self.metrics)
        for i in range(len(self.metrics)):
            self.acc[f"curve.{i}"] = CurveMoments(T, covariance=False)
            if self.quantiles:
                self.acc[f"sketch.{i}"] = QuantileSketch(T,
                                                         relative_accuracy=self.relative_accuracy)
            self.acc[f"ends.{i}"] = CurveMoments(2, covariance=False)
            self.acc[f"pair.{i}"] = CurveMoments(2)
            self.acc[f"diff.{i}"] = CurveMoments(1, covariance=False)
        self.counts["collapse"] = np.zeros(T + 1, np.int64)  # first absorbing t; [T]: censored
        grows = self.K >= 4 and T >= 4
        if spec.get("risk") in has:
            self.counts["risk_nonfinite"] = np.zeros(2, np.int64)  # any, at the last iteration
            if grows:
                self.acc["grow.risk"] = CurveMoments(self.K + 1)
        if spec.get("variance") in has:
            self.acc["logr_last"] = CurveMoments(1, covariance=False)
            self.counts["logr_nonfinite"] = np.zeros(1, np.int64)
            if grows:
                self.acc["grow.variance"] = CurveMoments(self.K + 1)
        if spec.get("hallucination") in has:
            self.acc["share.ends"] = CurveMoments(2, covariance=False)
            self.acc["share.diff"] = CurveMoments(1, covariance=False)
            self.acc["share.pair"] = CurveMoments(2)
        if spec.get("tail") in has and spec.get("tail_base") in has:
            self.acc["tail"] = CurveMoments(6)
        elif spec.get("tail_recall") in has:
            self.recall_pairs = []
        scaling = spec.get("scaling") or {}
        if scaling.get("metric") in has:
            closed = "a" in scaling and "b" in scaling
            refs = [] if closed else reference_names(self.metrics,
                                                     scaling.get("reference") or "\0")[1]
            self.scaling_refs = refs
            self.acc["scale"] = CurveMoments(len(refs) + 2)
            if refs:
                self.acc["scale.diff"] = CurveMoments(len(refs), covariance=False)
            if scaling.get("dey_donoho"):  # chains that are not in the augment workflow
                self.counts["dey_donoho"] = np.zeros(1, np.int64)
        else:
            self.scaling_refs = []

    # -- feeding ----------------------------------------------------------------------------
    @property
    def n_seeds(self) -> int:
        """Chains fed so far."""
        return self.n_seen

    def update(self, values: Mapping[str, np.ndarray], status: np.ndarray) -> "UnitAggregate":
        """Add a block of R whole chains: ``values[metric]`` of shape (n_iterations, R) for
        every metric, ``status`` (n_iterations, R) (strings).  Returns self.

        Raises
        ------
        ValueError
            A metric missing or unknown, or an array not of shape (n_iterations, R).
        """
        missing = [m for m in self.metrics if m not in values]
        extra = [m for m in values if m not in self.metrics]
        if missing or extra:
            raise ValueError(f"values: metrics {missing or extra} "
                             f"{'missing' if missing else 'not in this aggregate'}; give "
                             f"exactly {self.metrics}")
        status = np.asarray(status)
        if status.ndim != 2 or status.shape[0] != self.T:
            raise ValueError(f"status: shape {status.shape}; must be (n_iterations={self.T}, R)")
        R = status.shape[1]
        x = {}
        for m in self.metrics:
            a = np.asarray(values[m], dtype=np.float64)
            if a.shape != (self.T, R):
                raise ValueError(f"values[{m!r}]: shape {a.shape}; must be ({self.T}, {R}) "
                                 "(n_iterations, chains of the block)")
            x[m] = a
        if R == 0:
            return self
        self._feed(x, status)
        self.n_seen += R
        if self.raw is not None:
            if self.n_seen <= self.exact_seeds:
                self.raw.append({m: a.copy() for m, a in x.items()})
            else:
                self.raw = None
        return self

    def _feed(self, x: dict[str, np.ndarray], status: np.ndarray) -> None:
        T, acc, spec = self.T, self.acc, self.spec
        with np.errstate(all="ignore"):
            for i, m in enumerate(self.metrics):
                a = x[m]
                acc[f"curve.{i}"].update(a)
                if self.quantiles:
                    acc[f"sketch.{i}"].update(a)
                ends = a[[0, -1]]
                acc[f"ends.{i}"].update(ends)
                acc[f"diff.{i}"].update(ends[1] - ends[0])
                acc[f"pair.{i}"].update(np.where(np.isnan(ends).any(0), np.nan, ends))
            hit = np.zeros(status.shape, dtype=bool)
            for kind in self.absorbing:  # elementwise ==: 10x faster than astype(str) + isin
                hit |= status == kind
            first = np.where(hit.any(0), hit.argmax(0), T)
            self.counts["collapse"] += np.bincount(first, minlength=T + 1)
            A = block_matrix(T, self.K) if "grow.risk" in acc or "grow.variance" in acc else None
            if "risk_nonfinite" in self.counts:
                r = x[spec["risk"]]
                bad = ~np.isfinite(r)
                self.counts["risk_nonfinite"] += [int(bad.any(0).sum()), int(bad[-1].sum())]
                if "grow.risk" in acc:
                    acc["grow.risk"].update(_growth_features(r, A))
            if "logr_last" in acc:
                v = x[spec["variance"]]
                logr = np.log(v / v[:1])
                acc["logr_last"].update(logr[-1])
                self.counts["logr_nonfinite"] += int((~np.isfinite(logr)).any(0).sum())
                if "grow.variance" in acc:
                    acc["grow.variance"].update(_growth_features(-logr, A))
            if "share.ends" in acc:
                h = x[spec["hallucination"]][[0, -1]]
                share = h if spec.get("hallucination_mode", "mass") == "mass" else 1.0 - h
                acc["share.ends"].update(share)
                acc["share.diff"].update(share[1] - share[0])
                acc["share.pair"].update(np.where(np.isnan(share).any(0), np.nan, share))
            if "tail" in acc:
                with warnings.catch_warnings():  # T = 1: no early iterations (NaN features)
                    warnings.simplefilter("ignore", RuntimeWarning)
                    acc["tail"].update(D.tail_features(x[spec["tail"]].T,
                                                       x[spec["tail_base"]].T).T)
            if self.recall_pairs is not None:
                self.recall_pairs.append(x[spec["tail_recall"]][[0, -1]].copy())
            if "scale" in acc:
                risk = _as_risk(x[spec["scaling"]["metric"]])
                ref = np.stack([_as_risk(x[k][0]) for k in self.scaling_refs]) if \
                    self.scaling_refs else np.zeros((0, risk.shape[1]))
                acc["scale"].update(np.vstack([ref, risk[[0, -1]]]))
                if self.scaling_refs:
                    acc["scale.diff"].update(ref - risk[0])
                if "dey_donoho" in self.counts and "n_real" in x and "n_synthetic" in x:
                    self.counts["dey_donoho"] += int(
                        (~augment_chains(x["n_real"].T, x["n_synthetic"].T)).sum())

    def merge(self, other: "UnitAggregate") -> "UnitAggregate":
        """Add ``other``'s chains after this aggregate's (in place; returns self).

        Raises
        ------
        ValueError
            Different metrics, n_iterations, spec, settings or accumulator options.
        """
        if not isinstance(other, UnitAggregate) or self._identity() != other._identity():
            raise ValueError("merge: aggregates of different metrics, n_iterations, spec, "
                             "settings or options cannot be merged")
        for k in self.acc:
            self.acc[k] = self.acc[k].merge(other.acc[k])
        for k in self.counts:
            self.counts[k] = self.counts[k] + other.counts[k]
        if self.recall_pairs is not None:
            self.recall_pairs = self.recall_pairs + other.recall_pairs
        n = self.n_seen + other.n_seen
        self.raw = (self.raw + other.raw if self.raw is not None and other.raw is not None
                    and n <= self.exact_seeds else None)
        self.n_seen = n
        return self

    def _identity(self) -> tuple:
        return (self.metrics, self.T, self.spec_given, self.settings.model_dump(),
                self.exact_seeds, self.relative_accuracy, self.quantiles, self.absorbing)

    # -- checkpoints ------------------------------------------------------------------------
    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict]:
        """The state as plain arrays (for ``np.savez``; no pickle) and JSON-able meta;
        ``from_arrays`` inverts."""
        arrays: dict[str, np.ndarray] = {}
        for k, a in self.acc.items():
            for f, v in a.to_arrays().items():
                arrays[f"acc/{k}/{f}"] = np.asarray(v)
        for k, c in self.counts.items():
            arrays[f"count/{k}"] = c
        if self.recall_pairs is not None:
            arrays["recall_pairs"] = (np.concatenate(self.recall_pairs, axis=1)
                                      if self.recall_pairs else np.zeros((2, 0)))
        if self.raw is not None:
            for i, m in enumerate(self.metrics):
                arrays[f"raw/{i}"] = (np.concatenate([b[m] for b in self.raw], axis=1)
                                      if self.raw else np.zeros((self.T, 0)))
        meta = {"metrics": self.metrics, "n_iterations": self.T, "spec": self.spec_given,
                "settings": self.settings.model_dump(), "exact_seeds": self.exact_seeds,
                "relative_accuracy": self.relative_accuracy, "quantiles": self.quantiles,
                "absorbing": list(self.absorbing),
                "n_seen": self.n_seen, "raw": self.raw is not None}
        return arrays, meta

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], meta: dict) -> "UnitAggregate":
        """The aggregate ``to_arrays`` wrote.

        Raises
        ------
        ValueError
            Arrays missing or not matching the meta.
        """
        out = cls(meta["metrics"], meta["n_iterations"], meta["spec"], meta["settings"],
                  exact_seeds=meta["exact_seeds"], relative_accuracy=meta["relative_accuracy"],
                  quantiles=meta.get("quantiles", True), absorbing=meta["absorbing"])
        try:
            for k, a in out.acc.items():
                prefix = f"acc/{k}/"
                state = {f[len(prefix):]: arrays[f] for f in arrays if f.startswith(prefix)}
                out.acc[k] = type(a).from_arrays(state)
            for k in out.counts:
                out.counts[k] = np.array(arrays[f"count/{k}"], np.int64)
            if out.recall_pairs is not None:
                out.recall_pairs = [np.array(arrays["recall_pairs"], float)]
            out.raw = ([{m: np.array(arrays[f"raw/{i}"], float)
                         for i, m in enumerate(out.metrics)}] if meta["raw"] else None)
        except KeyError as exc:
            raise ValueError(f"arrays: {exc.args[0]} missing (not an aggregate's to_arrays, "
                             "or of another version)") from None
        out.n_seen = int(meta["n_seen"])
        return out

    @property
    def nbytes(self) -> int:
        """Bytes of the state arrays (what ``to_arrays`` writes)."""
        return sum(a.nbytes for a in self.to_arrays()[0].values())

    # -- analyses ---------------------------------------------------------------------------
    def wide(self) -> dict[str, np.ndarray] | None:
        """metric -> (n_seeds, n_iterations) of every chain while they are kept (at most
        ``exact_seeds``), else None."""
        if self.raw is None:
            return None
        if not self.raw:
            return {m: np.zeros((0, self.T)) for m in self.metrics}
        # C order, as the array path's: numpy's reductions sum in the order of the layout
        return {m: np.ascontiguousarray(np.concatenate([b[m] for b in self.raw], axis=1).T)
                for m in self.metrics}

    def pair(self, metric: str) -> PairStats:
        """The metric's first and last iteration as the paired tests use them."""
        i = self._index(metric)
        return _pair_stats(self.acc[f"ends.{i}"], self.acc[f"diff.{i}"], self.acc[f"pair.{i}"])

    def evidence(self):
        """What ``core._tests`` asks of the unit: the wide arrays when kept, else the
        streamed evidence."""
        wide = self.wide()
        return wide if wide is not None else _StreamEvidence(self)


# -- per-block features -----------------------------------------------------------------------

def _growth_features(curves: np.ndarray, A: np.ndarray) -> np.ndarray:
    """(K + 1, R): the block means A @ curves and the last block's rise over the previous."""
    Y = A @ curves
    return np.vstack([Y, Y[-1:] - Y[-2:-1]])


def _moments(acc: CurveMoments, j: int = 0) -> Moments:
    """Feature j's ``Moments`` as ``Moments.of`` gives them (``t_summary``)."""
    s = acc.t_summary()
    return Moments(float(s["mean"][j]), float(s["sd"][j]), int(s["n"][j]))


def _pair_stats(ends: CurveMoments, diff: CurveMoments, pair: CurveMoments) -> PairStats:
    first, last = _moments(ends, 0), _moments(ends, 1)
    s = pair.t_summary()
    n_pairs = int(pair.n_seen - pair.n_nan[0])  # pairs with a NaN are NaN at both ends
    m0, m1 = float(s["mean"][0]), float(s["mean"][1])

    def sd_u(m0: float, m1: float) -> float:
        # called with both means finite: every pair is finite, so pair.cov covers them all
        c = pair.cov
        return math.sqrt(max(c[1, 1] / m1**2 + c[0, 0] / m0**2 - 2 * c[0, 1] / (m0 * m1),
                             0.0)) if pair.n > 1 else math.nan

    return PairStats(first, last, _moments(diff), first.mean, last.mean,
                     lambda theta, alpha: log_ratio_of_means_from(n_pairs, m0, m1, sd_u, theta,
                                                                  alpha))


def _growth_test(acc: CurveMoments, T: int, settings: ProfileSettings):
    """``growth_test`` from the moments of ``_growth_features`` (None without them)."""
    if acc is None or acc.n < 2:
        return None
    K = acc.p - 1
    mean, cov = acc.mean, acc.cov
    return growth_test_from(mean[:K], cov[:K, :K], acc.n, T, float(mean[K]),
                            math.sqrt(max(cov[K, K], 0.0)), settings.saturation_horizon)


class _StreamEvidence:
    """``core._tests``' questions (``core._ArrayEvidence``) answered from a ``UnitAggregate``."""

    def __init__(self, agg: UnitAggregate):
        self.agg = agg

    def present(self, name) -> bool:
        if name not in self.agg.metrics:
            return False
        ends = self.agg.acc[f"ends.{self.agg._index(name)}"]
        return bool((ends.n_nan < ends.n_seen).any())

    def catastrophic(self, risk, settings):
        return D.catastrophic_from(self.agg.pair(risk), risk, settings)

    def any_increase(self, risk, settings):
        return D.any_increase_from(self.agg.pair(risk), settings)

    def diverging(self, risk, settings):
        agg = self.agg
        any_bad, last_bad = (int(c) for c in agg.counts["risk_nonfinite"])
        return D.diverging_from(agg.n_seen, any_bad, last_bad, agg.T,
                                lambda: _growth_test(agg.acc.get("grow.risk"), agg.T, settings),
                                settings)

    def collapsing_variance(self, name, settings):
        agg = self.agg
        a = agg.acc["logr_last"]
        last = Moments(float(a.marginal_mean[0]), float(np.sqrt(a.marginal_var[0])),
                       int(a.marginal_count[0]))
        return D.collapsing_variance_from(
            agg.n_seen, int(a.n_neginf[0]), last, agg.T, int(agg.counts["logr_nonfinite"][0]) == 0,
            lambda: _growth_test(agg.acc.get("grow.variance"), agg.T, settings), settings)

    def scaling(self, spec, settings):
        return scaling_verdict_from(_ScalingSource(self.agg), spec, settings)

    def mode_loss(self, name, settings):
        return D.mode_loss_from(self.agg.pair(name), settings)

    def tail_loss(self, tail, base, mode, settings):
        acc = self.agg.acc["tail"]
        stat = D.tail_statistic(mode)

        def test(theta, alpha):
            return D.delta_test(acc.mean, acc.cov, acc.n, stat, theta, alpha)

        test.test_name = "delta-method t-tests over seeds"
        return D.tail_loss_from(acc.n == acc.n_seen, self.agg.T, mode, test, settings)

    def tail_recall(self, name, settings):
        pairs = self.agg.recall_pairs
        if pairs is None:
            return Verdict.inconclusive(7, "tail recall", "tail recall pairs not kept by the "
                                        "streamed aggregate (the task's tail loss was expected)")
        return D.tail_recall(np.concatenate(pairs, axis=1).T if pairs else np.zeros((0, 2)),
                             settings)

    def hallucination(self, name, mode, settings):
        acc = self.agg.acc
        return D.hallucination_from(_pair_stats(acc["share.ends"], acc["share.diff"],
                                                acc["share.pair"]), mode, settings)


class _MomentRows:
    """``scaling.SeedRows`` from merged moments: columns (learning-curve risks, risk_0,
    risk_T), the delta method instead of the jackknife."""

    method = "delta-method"

    def __init__(self, scale: CurveMoments, diff: CurveMoments | None, cols: np.ndarray):
        self.scale, self.diff, self.cols = scale, diff, np.asarray(cols, dtype=int)
        self.n = scale.n_seen

    def finite_columns(self) -> np.ndarray:
        s = self.scale
        return ((s.n_nan + s.n_posinf + s.n_neginf) == 0)[self.cols]

    def columns(self, keep) -> "_MomentRows":
        idx = np.arange(len(self.cols))[keep]
        return _MomentRows(self.scale, self.diff, self.cols[idx])

    def stats(self, K: int):
        s, n = self.scale, self.n
        finite = self.finite_columns()
        mean = np.where(finite, s.marginal_mean[self.cols], np.inf)
        d = self.diff
        refs = self.cols[:K]
        if d is None or K == 0:
            return mean, np.zeros(0), np.zeros(0)
        dfin = ((d.n_nan + d.n_posinf + d.n_neginf) == 0)[refs]
        diff = np.where(dfin, d.marginal_mean[refs], np.inf)
        se = (np.where(dfin, np.sqrt(d.marginal_var[refs]) / math.sqrt(n), np.inf) if n > 1
              else np.full(K, np.nan))
        return mean, diff, se

    def theta_se(self, theta, K: int) -> float:
        """Delta-method standard error of ``theta(stats)``: the gradient of theta in the
        column means (central differences, step a tenth of each mean's standard error; the
        weights of the curve fit held), with the columns' covariance over seeds."""
        s, n = self.scale, self.n
        mean, _, se = self.stats(K)
        if s.n < 2:
            return math.nan
        cov = s.cov[np.ix_(self.cols, self.cols)]
        h = np.sqrt(np.maximum(np.diagonal(cov), 0.0) / n) / 10
        h = np.where(h > 0, h, 1e-8 * np.maximum(np.abs(mean), 1.0))

        def f(m):
            return theta((m, m[:K] - m[K], se))

        g = np.empty(len(mean))
        for j in range(len(mean)):
            up, down = mean.copy(), mean.copy()
            up[j] += h[j]
            down[j] -= h[j]
            g[j] = (f(up) - f(down)) / (2 * h[j])
        if not np.isfinite(g).all():
            return math.nan
        return math.sqrt(max(float(g @ cov @ g), 0.0) / n)


class _ScalingSource:
    """``scaling.WideSource`` from a ``UnitAggregate``."""

    def __init__(self, agg: UnitAggregate):
        self.agg = agg
        self.names = agg.metrics

    def n_seeds(self, metric) -> int:
        return self.agg.n_seen

    def n_real(self) -> float:
        if "n_train" not in self.agg.metrics:
            return math.nan
        return self.agg.pair("n_train").mean_first

    def rows(self, metric, ref_names) -> _MomentRows:
        agg = self.agg
        if "scale" not in agg.acc or metric != agg.spec["scaling"]["metric"] or list(
                ref_names) != agg.scaling_refs:
            raise ValueError("scaling: the aggregate was built for another Def. 5 spec")
        return _MomentRows(agg.acc["scale"], agg.acc.get("scale.diff"),
                           np.arange(len(ref_names) + 2))

    def accumulate_generations(self) -> int | None:
        agg = self.agg
        ok = ("n_real" in agg.metrics and "n_synthetic" in agg.metrics
              and "dey_donoho" in agg.counts and int(agg.counts["dey_donoho"][0]) == 0
              and agg.n_seen > 0)
        return agg.T if ok else None


# -- the analyses -----------------------------------------------------------------------------

def _check_units(units) -> list:
    out = []
    for item in units:
        try:
            where, task, paradigm, agg = item
        except (TypeError, ValueError):
            raise ValueError("units: give (where, task, paradigm, UnitAggregate) tuples") from None
        if not isinstance(agg, UnitAggregate):
            raise ValueError(f"units: {task}, {paradigm}: not a UnitAggregate")
        out.append((dict(where or {}), str(task), str(paradigm), agg))
    return out


def collapse_profile_streamed(units: Sequence[tuple[dict, str, str, UnitAggregate]],
                              settings: ProfileSettings | dict | None = None):
    """The collapse profile of a run from its units' aggregates: the rows, columns, tests and
    run-wide Holm correction of ``profile.collapse_profile`` (see the module docstring for
    what is exact).

    Parameters
    ----------
    units : sequence of (where, task, paradigm, UnitAggregate)
        ``where`` is {} for a run, {"point": k, "grid.<key>": value, ...} for a sweep's unit.
        Units with no chains are left out.
    settings : ProfileSettings or dict, optional
        Default: the aggregates' settings.  ``growth_blocks`` must be the aggregates' (the
        blocks were fixed when the chains were fed).

    Returns
    -------
    DataFrame with columns (``where``'s keys first) + ``core.COLUMNS``.

    Raises
    ------
    ValueError
        A unit that is not (where, task, paradigm, UnitAggregate), or settings whose
        growth_blocks differ from an aggregate's.
    """
    from .core import profile_frame, unit_verdicts, _tests

    units = _check_units(units)
    if settings is None and units:
        settings = units[0][3].settings
    settings = _settings(settings)
    rows = []
    for where, task, paradigm, agg in units:
        if agg.settings.growth_blocks != settings.growth_blocks:
            raise ValueError(f"settings: growth_blocks {settings.growth_blocks} differs from "
                             f"the aggregate's ({agg.settings.growth_blocks}) for {task}, "
                             f"{paradigm}: rebuild the aggregate with these settings")
        if agg.n_seen == 0:
            continue
        verdicts = unit_verdicts(agg.n_seen, agg.T == 1,
                                 lambda agg=agg: _tests(agg.evidence(), agg.spec, settings),
                                 settings)
        rows.append((where, task, paradigm, agg.n_seen, agg.T - 1, verdicts))
    return profile_frame(rows, settings)


def _fed(units):
    """The units (``_check_units``) whose aggregate has chains."""
    return [u for u in _check_units(units) if u[3].n_seen]


def summary_streamed(units: Sequence[tuple[dict, str, str, UnitAggregate]],
                     level: float = 0.95):
    """``report.summary.final_vs_initial`` from the units' aggregates: per unit with a risk
    metric (the spec's, else ``core.default_risk``), its mean at iteration 0 and at the last
    iteration with Student-t ``level`` intervals, and their contrast (ratio of means, or the
    difference for a log-loss).  The same columns; the same numbers to rounding (exactly
    while an aggregate keeps its chains).

    Raises
    ------
    ValueError
        A unit that is not (where, task, paradigm, UnitAggregate).
    """
    import pandas as pd

    rows = []
    for where, task, paradigm, agg in _fed(units):
        metric = agg.spec.get("risk")
        if metric is None or metric not in agg.metrics:
            continue
        wide = agg.wide()
        pair = (PairStats.of(wide[metric][:, 0], wide[metric][:, -1]) if wide is not None
                else agg.pair(metric))
        row = {**where, "task": task, "paradigm": paradigm, "metric": metric,
               "n_seeds": agg.n_seen, "final_iteration": agg.T - 1}
        for name, m in (("initial", pair.first), ("final", pair.last)):
            mean, lo, hi = mean_ci_from(m, level)
            row.update({name: mean, f"{name}_low": lo, f"{name}_high": hi})
        value, lo, hi, row["contrast"] = contrast_from(pair, metric, level)
        row.update({"ratio": value, "ratio_low": lo, "ratio_high": hi})
        rows.append(row)
    return pd.DataFrame(rows)


CURVE_QUANTILES = (0.05, 0.5, 0.95)


def curves_streamed(units: Sequence[tuple[dict, str, str, UnitAggregate]],
                    level: float = 0.95):
    """What the plots draw, per (where..., task, paradigm, metric, iteration): ``n`` (finite
    values), ``mean``, ``sd``, ``low``, ``high`` (Student-t ``level`` interval of the mean;
    NaN with fewer than 2) over the finite values, ``nonfinite`` (share of chains NaN or
    infinite) -- ``report.plots.bands``' numbers, exact to rounding -- and the quantiles
    ``q05``, ``q50``, ``q95`` of all non-NaN values (``results.aggregate.QuantileSketch``:
    the ``lower`` empirical quantile within relative error ``relative_accuracy``, 1% by
    default; +-inf and 0 exactly).

    Raises
    ------
    ValueError
        A unit that is not (where, task, paradigm, UnitAggregate).
    """
    import pandas as pd

    frames = []
    for where, task, paradigm, agg in _fed(units):
        its = np.arange(agg.T)
        for i, metric in enumerate(agg.metrics):
            c = agg.acc[f"curve.{i}"]
            n = c.marginal_count
            mean, sd = c.marginal_mean, np.sqrt(c.marginal_var)
            lo_hi = np.array([mean_ci_from(Moments(float(a), float(b), int(k)), level)[1:]
                              for a, b, k in zip(mean, sd, n)]).reshape(-1, 2)
            q = (agg.acc[f"sketch.{i}"].quantile(list(CURVE_QUANTILES)) if agg.quantiles
                 else np.full((len(CURVE_QUANTILES), agg.T), np.nan))
            frames.append(pd.DataFrame({
                **{k: [v] * agg.T for k, v in where.items()}, "task": task,
                "paradigm": paradigm, "metric": metric, "iteration": its, "n": n, "mean": mean,
                "sd": sd, "low": lo_hi[:, 0], "high": lo_hi[:, 1],
                "nonfinite": 1.0 - n / agg.n_seen, "q05": q[0], "q50": q[1], "q95": q[2]}))
    cols = ["task", "paradigm", "metric", "iteration", "n", "mean", "sd", "low", "high",
            "nonfinite", "q05", "q50", "q95"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)


def collapse_time_counts(units: Sequence[tuple[dict, str, str, UnitAggregate]]):
    """Per unit, how many chains first reached an absorbing status (``UnitAggregate``'s
    ``absorbing``: collapsed to a point) at each model-fitting iteration: the histogram of
    ``report.summary.collapse_times``' collapse_iteration, with the censored chains (not
    collapsed by the last iteration) in a row whose collapse_iteration is NaN.

    Returns
    -------
    DataFrame with columns (where...), task, paradigm, collapse_iteration (float; NaN:
    censored), n_chains, last_iteration; iterations with no chain are left out.
    """
    import pandas as pd

    rows = []
    for where, task, paradigm, agg in _check_units(units):
        counts = agg.counts["collapse"]
        for t in np.flatnonzero(counts):
            rows.append({**where, "task": task, "paradigm": paradigm,
                         "collapse_iteration": float(t) if t < agg.T else np.nan,
                         "n_chains": int(counts[t]), "last_iteration": agg.T - 1})
    return pd.DataFrame(rows, columns=None if rows else [
        "task", "paradigm", "collapse_iteration", "n_chains", "last_iteration"])
