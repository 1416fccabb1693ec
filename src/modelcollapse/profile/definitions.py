"""The tests behind Definitions 1-4 and 6-8 (Def. 5 is in ``scaling``), one function each.

Each takes the metric arrays of one (task, paradigm) -- shape (n_seeds, n_iterations), a row
per replicate chain -- and returns an undecided ``Verdict`` with the effect size, its one-sided
``1 - alpha`` bounds, the threshold and the two p-values (see ``_stats``).  The run-wide
correction and the decision are in ``core``.
"""

from __future__ import annotations

import math

import numpy as np

from ..metrics import is_log_loss
from ._stats import (MeanTest, Moments, PairStats, Verdict, binom_ppf, binom_sf_at,
                     bonferroni_union, intersection_union, mean_test, mean_test_from)
from .growth import GrowthTest, growth_test

__all__ = ["catastrophic", "any_increase", "diverging", "collapsing_variance", "mode_loss",
           "tail_loss", "tail_recall", "hallucination", "catastrophic_from", "any_increase_from",
           "diverging_from", "collapsing_variance_from", "mode_loss_from", "tail_loss_from",
           "hallucination_from", "tail_features", "tail_statistic", "delta_test"]

# Each test is split in two: ``<name>`` takes the metric arrays (n_seeds, n_iterations) and
# computes what ``<name>_from`` needs of them (``Moments``, ``PairStats``, counts, a growth
# test); ``<name>_from`` decides.  ``profile.streaming`` computes the same inputs from merged
# moments and calls the same ``<name>_from``, so both paths decide alike.


def _verdict(definition: int, statistic: str, test: MeanTest, threshold: float, name: str,
             detail: str = "", flip: bool = False) -> Verdict:
    """Verdict from a mean test; ``flip``: collapse is the effect falling below threshold."""
    p_occ, p_not = (test.p_less, test.p_greater) if flip else (test.p_greater, test.p_less)
    return Verdict(definition, statistic, test.mean, test.low, test.high, threshold, p_occ,
                   p_not, test=name, detail=detail)


def catastrophic(risk: np.ndarray, metric: str, settings) -> Verdict:
    """Def. 1: catastrophic increase of the risk, last vs first iteration.

    Squared-unit risks: the ratio of means mean(R_T) / mean(R_0) against
    ``catastrophic_ratio`` (delta-method t-test on its log); invariant to rescaling the data.
    Log-loss risks (nats): the mean increase R_T - R_0 against ``catastrophic_nats`` (paired
    t-test), because a log-density shifts by log|det A| under x -> A x + b, so ratios of
    NLL depend on the data's units while differences do not (issue 10, finding 2).
    """
    return catastrophic_from(PairStats.of(risk[:, 0], risk[:, -1]), metric, settings)


def catastrophic_from(pair: PairStats, metric: str, settings) -> Verdict:
    """Def. 1 from the risk's first and last iteration (``catastrophic``)."""
    if is_log_loss(metric):
        test = mean_test_from(pair.diff, settings.catastrophic_nats, settings.alpha)
        return _verdict(1, "mean increase of the log-loss, last - first iteration (nats)", test,
                        settings.catastrophic_nats, "paired one-sided t-tests",
                        f"threshold {settings.catastrophic_nats:g} nats per sample")
    ratio, test = pair.ratio(settings.catastrophic_ratio, settings.alpha)
    if np.isnan(ratio):
        return Verdict.inconclusive(1, "ratio of mean risks", "the mean risk at iteration 0 is "
                                    "not positive: a ratio is undefined")
    return _verdict(1, "ratio of mean risks, last / first iteration", test,
                    settings.catastrophic_ratio, "delta-method t-tests on the log ratio of means",
                    f"threshold {settings.catastrophic_ratio:g}x")


def any_increase(risk: np.ndarray, settings) -> Verdict:
    """Def. 2: any increase, paired over seeds: mean(R_T - R_0) > 0 (one-sided t-tests)."""
    return any_increase_from(PairStats.of(risk[:, 0], risk[:, -1]), settings)


def any_increase_from(pair: PairStats, settings) -> Verdict:
    """Def. 2 from the risk's first and last iteration (``any_increase``)."""
    test = mean_test_from(pair.diff, 0.0, settings.alpha)
    return _verdict(2, "mean paired increase of the risk, last - first iteration", test, 0.0,
                    "paired one-sided t-tests", "does not occur only if the risk decreased")


def _growth(curves: np.ndarray, margin: float | None,
            settings) -> tuple[GrowthTest | None, float, float, str]:
    """Growth test on per-seed curves (``_growth_decision`` of ``growth_test``)."""
    return _growth_decision(growth_test(curves, settings.growth_blocks,
                                        settings.saturation_horizon), margin, settings)


def _growth_decision(g: GrowthTest | None, margin: float | None,
                     settings) -> tuple[GrowthTest | None, float, float, str]:
    """From a growth test: (the test, or None with too few iterations or seeds;
    p of 'diverges', p of 'bounded', detail).

    'Bounded': no unbounded growth law fits; with a ``margin``, also (Bonferroni) the curve
    rising at the end significantly slower than ``margin`` per iteration -- the rate at which it
    would cross the definition's threshold only after ``saturation_horizon`` run lengths.
    """
    if g is None:
        return None, np.nan, np.nan, ""
    kind, shape = g.saturation
    detail = (f"GLS lack of fit on {g.n_blocks} blocks: saturating p = {g.p_saturating:.2g} "
              f"(best {kind} = {shape:.3g}), unbounded p = {g.p_unbounded:.2g} (exponent c = "
              f"{g.exponent:.2f}); still rising at the end p = {g.p_rising:.2g}")
    p_occ = intersection_union(g.p_saturating, g.p_rising)
    p_not = g.p_unbounded
    if margin is not None:
        slow = mean_test_from(g.slope, margin, settings.alpha)
        p_not = bonferroni_union(g.p_unbounded, slow.p_less)
        detail += (f"; slope at the end {slow.mean:.3g} per iteration vs margin {margin:.3g} "
                   f"(p = {slow.p_less:.2g})")
    return g, p_occ, p_not, detail


def diverging(risk: np.ndarray, metric: str, settings) -> Verdict:
    """Def. 3: asymptotically diverging risk, by the growth test of ``growth`` at the run's
    horizon (saturation within ``saturation_horizon`` run lengths vs unbounded growth).  Does
    not occur only when no unbounded growth law fits."""
    finite = np.isfinite(risk)
    return diverging_from(len(risk), int((~finite.all(1)).sum()),
                          int((~finite[:, -1]).sum()), risk.shape[1],
                          lambda: growth_test(risk, settings.growth_blocks,
                                              settings.saturation_horizon), settings)


def diverging_from(n_seeds: int, n_nonfinite: int, n_nonfinite_last: int, n_iterations: int,
                   growth, settings) -> Verdict:
    """Def. 3 (``diverging``) from the number of chains with some non-finite risk and with a
    non-finite last risk, and ``growth()``: the growth test of the risk curves (called only
    when every chain is finite)."""
    name = "exponent c of the best unbounded growth law r = a + b ((t+1)^c - 1) / c"
    if n_nonfinite:
        k = n_nonfinite_last
        return Verdict(3, "risk became infinite", np.inf, p_occurs=0.0, p_not=1.0,
                       test="non-finite risk", detail=f"{k} of {n_seeds} chains end with an "
                       "infinite risk: the mean risk diverged")
    if n_iterations < 4:
        return Verdict.not_applicable(3, name, "needs at least 4 model-fitting iterations")
    # no 'slow growth' route here: a held-out loss carries a noise floor, so a margin relative
    # to the risk level would call a linearly growing excess risk bounded
    g, p_occ, p_not, detail = _growth_decision(growth(), None, settings)
    if g is None:
        return Verdict.inconclusive(3, name, "too few seeds for the growth test")
    return Verdict(3, name, g.exponent, p_occurs=p_occ, p_not=p_not, threshold=settings.saturation_horizon,
                   test="GLS growth-law lack of fit (F) and paired t-tests", detail=detail)


def collapsing_variance(v: np.ndarray, settings) -> Verdict:
    """Def. 4: the variance trends to zero.

    Per chain the log variance ratio l_t = log(v_t / v_0).  Occurs when the geometric-mean
    ratio exp(mean l_T) is significantly below ``variance_ratio``; or when it has significantly
    fallen and -l_t grows without a plateau (the growth test of Def. 3: geometric decay is
    linear in l_t); or when it has fallen and is still falling at the end fast enough to cross
    ``variance_ratio`` within ``saturation_horizon`` more run lengths.  The three routes are
    joined by Bonferroni.  Does not occur when the ratio is
    significantly above ``variance_ratio`` and an unbounded decline is rejected (no growth law
    of -l_t fits, or it falls at the end slower than the rate that would reach the threshold
    only after ``saturation_horizon`` run lengths).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        logr = np.log(v / v[:, :1])
    last = logr[:, -1]
    return collapsing_variance_from(
        len(v), int(np.isneginf(last).sum()), Moments.of(np.where(np.isfinite(last), last,
                                                                     np.nan)),
        v.shape[1], bool(np.isfinite(logr).all()),
        lambda: growth_test(-logr, settings.growth_blocks, settings.saturation_horizon),
        settings)


def collapsing_variance_from(n_seeds: int, n_zero: int, last: Moments, n_iterations: int,
                             all_finite: bool, growth, settings) -> Verdict:
    """Def. 4 (``collapsing_variance``) from: the number of chains whose last log variance
    ratio l_T is -inf (zero variance), the ``Moments`` of the finite l_T, whether every l_t of
    every chain is finite, and ``growth()``: the growth test of the curves -l_t (called only
    then, with at least 4 iterations)."""
    name = "geometric-mean variance ratio, last / first iteration"
    vr = settings.variance_ratio
    if n_zero:
        return Verdict(4, name, 0.0, p_occurs=0.0, p_not=1.0, threshold=vr,
                       test="chains reached zero variance",
                       detail=f"{n_zero} of {n_seeds} chains reached zero variance")
    below = mean_test_from(last, math.log(vr), settings.alpha)
    fell = mean_test_from(last, 0.0, settings.alpha)
    value, low, high = (math.exp(x) if np.isfinite(x) else np.nan
                        for x in (below.mean, below.low, below.high))
    p_occ, p_not, detail = below.p_less, below.p_greater, ""
    if n_iterations >= 4 and all_finite:
        span = settings.saturation_horizon * n_iterations
        margin = -math.log(vr) / span
        g, p_div, p_bnd, detail = _growth_decision(growth(), margin, settings)
        # still falling at a rate that crosses the threshold within the horizon
        to_go = max(-math.log(vr) + float(last.mean), 0.0)
        fast = (mean_test_from(g.slope, to_go / span, settings.alpha) if g is not None
                else None)
        p_fast = fast.p_greater if fast is not None else np.nan
        p_occ = bonferroni_union(below.p_less, intersection_union(fell.p_less, p_div),
                                 intersection_union(fell.p_less, p_fast))
        p_not = intersection_union(below.p_greater, p_bnd)
        if fast is not None:
            detail += (f"; falls below {vr:g} within {span:g} more iterations at the end rate: "
                       f"p = {p_fast:.2g}")
    return Verdict(4, name, value, low, high, vr, p_occ, p_not,
                   test="t-tests on log variance ratios; growth test of -log ratio",
                   detail=f"threshold {vr:g}; decline: " + (detail or "n/a (< 4 iterations)"))


def mode_loss(coverage: np.ndarray, settings) -> Verdict:
    """Def. 6: share of iteration 0's modes lost by the last iteration vs ``mode_loss``."""
    return mode_loss_from(PairStats.of(coverage[:, 0], coverage[:, -1]), settings)


def mode_loss_from(pair: PairStats, settings) -> Verdict:
    """Def. 6 from the mode coverage's first and last iteration (``mode_loss``): the share
    lost, first - last, is minus the paired difference (the same numbers bit for bit)."""
    d = pair.diff
    test = mean_test_from(Moments(-d.mean, d.sd, d.n), settings.mode_loss, settings.alpha)
    return _verdict(6, "mean share of real modes lost since iteration 0", test,
                    settings.mode_loss, "one-sided t-tests",
                    f"coverage {pair.mean_first:.3g} -> {pair.mean_last:.3g}")


def _jackknife(data: np.ndarray, stat, theta: float, alpha: float) -> MeanTest:
    """Jackknife (Quenouille 1956, Tukey 1958) t-test of a smooth statistic of seed rows:
    pseudo-values n s - (n - 1) s_(-i) treated as a sample of n means."""
    n = len(data)
    full = stat(data)
    if n < 2 or not np.isfinite(full):
        return MeanTest(full, np.nan, np.nan, np.nan, np.nan, n)
    keep = ~np.eye(n, dtype=bool)
    with np.errstate(all="ignore"):
        loo = np.array([stat(data[keep[i]]) for i in range(n)])
    pseudo = n * full - (n - 1) * loo
    test = mean_test(pseudo, theta, alpha)
    return MeanTest(full, test.low, test.high, test.p_greater, test.p_less, n)


def tail_loss(tail: np.ndarray, base: np.ndarray, mode: str, settings) -> Verdict:
    """Def. 7 from a tail loss and the overall loss, relative growth vs ``tail_margin``.

    ``mode``:

    * ``ratio``: (tail_T / base_T) / (tail_0 / base_0) - 1, for *excess* risks (known truth;
      the tail and overall excess risks have no noise floor);
    * ``increment``: the same ratio for the *increments* since iteration 0,
      ((tail_T - tail_0) / (base_T - base_0)) / ((tail_e - tail_0) / (base_e - base_0)) - 1,
      with x_e the mean of x over the first half of the run (iterations 1 .. (T-1)//2):
      whether the last iteration's damage is more tail-heavy than the early iterations'.  The noise floor of
      held-out losses cancels in the differences (issue 10, finding 3), so on real data this
      measures what ``ratio`` measures on excess risks;
    * ``difference``: log-losses: growth of the tail-minus-overall NLL gap relative to the
      initial gap, ((tail_T - base_T) - (tail_0 - base_0)) / |tail_0 - base_0| (unit-free).

    Ratio-of-means statistics are tested by the jackknife over seeds.
    """
    data = tail_features(tail, base)
    stat = tail_statistic(mode)
    return tail_loss_from(bool(np.isfinite(data).all()), tail.shape[1], mode,
                          lambda theta, alpha: _jackknife(data, lambda x: stat(x.mean(0)),
                                                          theta, alpha), settings)


def tail_features(tail: np.ndarray, base: np.ndarray) -> np.ndarray:
    """The six per-chain values of Def. 7's tail-loss statistics, shape (n_seeds, 6), from
    tail and overall loss curves (n_seeds, n_iterations): tail_0, tail_T, base_0, base_T and
    the means of tail and base over iterations 1 .. (T - 1) // 2 (at least iteration 1)."""
    half = max(1, (tail.shape[1] - 1) // 2)
    cols = [tail[:, 0], tail[:, -1], base[:, 0], base[:, -1], tail[:, 1:half + 1].mean(1),
            base[:, 1:half + 1].mean(1)]
    return np.column_stack(cols)


def tail_statistic(mode: str):
    """Def. 7's relative growth as a function of the mean (6,) of ``tail_features``."""

    def growth(m):
        t0, tT, b0, bT, t_early, b_early = m
        if mode == "ratio":
            return (tT / bT) / (t0 / b0) - 1.0
        if mode == "increment":
            return ((tT - t0) / (bT - b0)) / ((t_early - t0) / (b_early - b0)) - 1.0
        return ((tT - bT) - (t0 - b0)) / abs(t0 - b0)

    return growth


def delta_test(mean: np.ndarray, cov: np.ndarray, n: int, stat, theta: float,
               alpha: float) -> MeanTest:
    """Delta-method (influence-function) t-test of a smooth statistic ``stat(mean)`` of the
    mean (p,) of per-chain vectors with sample covariance ``cov`` (p, p) over ``n`` chains:
    se = sqrt(g^T cov g / n), g the gradient of ``stat`` at the mean by central differences
    (step 1e-5 of each coordinate's scale: relative error ~1e-10), referred to Student-t with
    n - 1 degrees of freedom.  The streamed analogue of ``_jackknife`` (the jackknife variance
    equals the delta method's to O(1/n): Efron & Stein 1981; Shao & Tu 1995, Sec. 2.1); its
    interval is centred at ``stat(mean)`` where the jackknife's is at the pseudo-values'
    mean (they differ by O(se / sqrt n))."""
    mean = np.asarray(mean, dtype=float)
    full = float(stat(mean))
    if n < 2 or not np.isfinite(full):
        return MeanTest(full, np.nan, np.nan, np.nan, np.nan, n)
    scale = np.maximum(np.abs(mean), np.sqrt(np.maximum(np.diagonal(cov), 0.0)))
    h = 1e-5 * np.where(scale > 0, scale, 1.0)
    g = np.empty(len(mean))
    for j in range(len(mean)):
        up, down = mean.copy(), mean.copy()
        up[j] += h[j]
        down[j] -= h[j]
        g[j] = (stat(up) - stat(down)) / (2 * h[j])
    sd = math.sqrt(max(float(g @ cov @ g), 0.0))
    test = mean_test_from(Moments(full, sd, n), theta, alpha)
    return MeanTest(full, test.low, test.high, test.p_greater, test.p_less, n)


def tail_loss_from(all_finite: bool, n_iterations: int, mode: str, test_fn,
                   settings) -> Verdict:
    """Def. 7 (``tail_loss``) from whether every chain's ``tail_features`` are finite, and
    ``test_fn(theta, alpha)``: the t-test of ``tail_statistic(mode)`` over chains (the
    jackknife on arrays, ``delta_test`` on merged moments)."""
    if not all_finite:
        return Verdict(7, "tail risk became infinite", np.inf, p_occurs=0.0, p_not=1.0,
                       test="non-finite tail risk", detail=mode)
    if mode == "increment" and n_iterations < 3:
        return Verdict.not_applicable(7, "tail vs overall loss increments",
                                      "needs at least 3 model-fitting iterations")
    test = test_fn(settings.tail_margin, settings.alpha)
    what = {"ratio": "tail / overall excess risk", "increment": "tail / overall loss "
            "increments since iteration 0", "difference": "tail - overall log-loss gap"}[mode]
    return _verdict(7, f"relative growth of {what}, last vs first iteration", test,
                    settings.tail_margin, getattr(test_fn, "test_name",
                                                  "jackknife t-tests over seeds"),
                    f"margin {settings.tail_margin:g}")


def tail_recall(recall: np.ndarray, settings) -> Verdict:
    """Def. 7 from a tail recall (tail mass or share of tail modes still produced): the median
    over chains of recall_T / median(recall_0) against 1 - ``tail_margin`` by sign tests (the
    median at iteration 0 over all chains is precise; a per-chain ratio would carry the noise of
    one iteration-0 sample into every chain) (tail mass
    is a martingale under replace -- Wright-Fisher -- so the mean hides what the typical
    chain loses; the median chain shows it).  Bounds: binomial order-statistic interval."""
    m0 = float(np.nanmedian(recall[:, 0]))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = recall[:, -1] / m0
    r = np.sort(r[np.isfinite(r)])
    n = len(r)
    theta = 1.0 - settings.tail_margin
    name = "median over chains of tail recall, last / median of first iteration"
    if n == 0:
        return Verdict.inconclusive(7, name, "tail recall is zero at iteration 0")
    below, above = int((r < theta).sum()), int((r > theta).sum())
    p_occ = binom_sf_at(below, below + above, 0.5)   # exact sign tests (1 without untied chains)
    p_not = binom_sf_at(above, below + above, 0.5)
    k = binom_ppf(settings.alpha, n, 0.5)     # order-statistic bounds of the median
    low, high = r[max(k - 1, 0)], r[min(n - k, n - 1)]
    return Verdict(7, name, float(np.median(r)), float(low), float(high), theta, p_occ, p_not,
                   test="sign tests of the median", detail=f"{below} of {n} chains below "
                   f"{theta:g}")


def hallucination(metric: np.ndarray, mode: str, settings) -> Verdict:
    """Def. 8: the hallucinated share (mass off the real support, or 1 - k-NN precision)
    grows from iteration 0 to the last by more than ``hallucination`` (t-tests)."""
    share = metric if mode == "mass" else 1.0 - metric
    return hallucination_from(PairStats.of(share[:, 0], share[:, -1]), mode, settings)


def hallucination_from(share: PairStats, mode: str, settings) -> Verdict:
    """Def. 8 from the hallucinated share's first and last iteration (``hallucination``;
    share = the metric for ``mass``, 1 - the metric for ``precision``)."""
    test = mean_test_from(share.diff, settings.hallucination, settings.alpha)
    what = "mass outside the real support" if mode == "mass" else "1 - k-NN precision"
    return _verdict(8, f"increase of the hallucinated share ({what}) since iteration 0", test,
                    settings.hallucination, "paired one-sided t-tests",
                    f"{share.mean_first:.3g} -> {share.mean_last:.3g}")
