"""The collapse profile of a run: every definition's test, one run-wide correction, verdicts."""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import definitions as D
from ._stats import INCONCLUSIVE, NA, NOT, OCCURS, Verdict, holm
from .scaling import scaling_verdict
from .settings import ProfileSettings

DEFINITIONS = {
    1: "catastrophic increase of population risk",
    2: "any increase of population risk",
    3: "asymptotically diverging population risk",
    4: "collapsing variance",
    5: "change in scaling law",
    6: "disappearance of real modes",
    7: "disappearance of real tail data",
    8: "appearance of hallucinated data",
}

#: When a run does not say which metric is a task's risk, the first of these it recorded.
RISK_PREFERENCE = ("population_risk", "test_loss", "test_nll", "tv_distance", "w2_squared")


def default_risk(recorded) -> str | None:
    """The first of ``RISK_PREFERENCE`` among ``recorded`` (metric names), or None."""
    names = set(recorded)
    return next((m for m in RISK_PREFERENCE if m in names), None)


#: generic roles (``Task.profile``) for a task that names none: role -> (metric, its settings),
#: the first recorded one wins -- the metrics the built-in recipes record under these names
GENERIC_ROLES = {
    "variance": [("cov_trace_ratio", {}), ("predictive_variance", {}),
                 ("pixel_variance_ratio", {})],
    "modes": [("mode_coverage", {}), ("class_coverage", {})],
    "tail": [("tail_nll", {"tail_base": "test_nll", "tail_mode": "difference"}),
             ("tail_loss", {"tail_base": "test_loss", "tail_mode": "increment"})],
    "tail_recall": [("tail_recall", {})],
    "hallucination": [("precision", {"hallucination_mode": "precision"}),
                      ("hallucinated_mass", {})],
}


def with_generic_roles(spec: dict, recorded) -> dict:
    """``spec`` with every role it lacks filled from ``GENERIC_ROLES`` when the metric is
    among ``recorded`` (so a plug-in task that records the usual metrics gets a full profile
    without a ``profile`` mapping); Def. 5 uses the ``reference_<risk>_n<N>`` learning curve
    when one is recorded."""
    names, spec = set(recorded), dict(spec)
    for role, options in GENERIC_ROLES.items():
        if role in spec:
            continue
        for metric, extra in options:
            needed = [metric, *(v for k, v in extra.items() if k == "tail_base")]
            if all(m in names for m in needed):
                spec.update({role: metric, **{k: v for k, v in extra.items() if k not in spec}})
                break
    risk = spec.get("risk")
    if "scaling" not in spec and risk and any(n.startswith(f"reference_{risk}_n") for n in names):
        spec["scaling"] = {"metric": risk, "reference": f"reference_{risk}_n"}
    return spec


COLUMNS = ["task", "paradigm", "definition", "name", "verdict", "reason", "statistic", "value",
           "low", "high", "threshold", "p_value", "p_occurs", "p_not", "p_occurs_adjusted",
           "p_not_adjusted", "test", "detail", "n_seeds", "last_iteration", "alpha"]


def _wide(group: pd.DataFrame) -> dict[str, np.ndarray]:
    """metric -> (n_seeds, n_iterations) array (NaN where not recorded), seeds in one order."""
    seeds, s_idx = np.unique(group.seed.to_numpy(), return_inverse=True)
    its, t_idx = np.unique(group.iteration.to_numpy(), return_inverse=True)
    metric = group.metric
    if isinstance(metric.dtype, pd.CategoricalDtype):  # the store's: integer codes, no string sort
        used, m_idx = np.unique(metric.cat.codes.to_numpy(), return_inverse=True)
        names = metric.cat.categories.astype(str).to_numpy()[used]
    else:
        names, m_idx = np.unique(metric.astype(str).to_numpy(), return_inverse=True)
    values = group.value.to_numpy(dtype=float)
    cube = np.full((len(names), len(seeds), len(its)), np.nan)
    cube[m_idx, s_idx, t_idx] = values
    return {str(names[k]): cube[k] for k in np.argsort(names, kind="stable")}


def _present(wide, name) -> bool:
    return name in wide and not np.isnan(wide[name][:, [0, -1]]).all()


class _ArrayEvidence:
    """What ``_tests`` asks of a unit, from its wide arrays (metric -> (n_seeds,
    n_iterations)); ``profile.streaming`` answers the same questions from merged moments."""

    def __init__(self, wide: dict):
        self.wide = wide

    def present(self, name) -> bool:
        """Whether ``name`` was recorded with some value at the first or the last iteration."""
        return _present(self.wide, name)

    def catastrophic(self, risk, settings):
        return D.catastrophic(self.wide[risk], risk, settings)

    def any_increase(self, risk, settings):
        return D.any_increase(self.wide[risk], settings)

    def diverging(self, risk, settings):
        return D.diverging(self.wide[risk], risk, settings)

    def collapsing_variance(self, name, settings):
        return D.collapsing_variance(self.wide[name], settings)

    def scaling(self, spec, settings):
        return scaling_verdict(self.wide, spec, settings)

    def mode_loss(self, name, settings):
        return D.mode_loss(self.wide[name], settings)

    def tail_loss(self, tail, base, mode, settings):
        return D.tail_loss(self.wide[tail], self.wide[base], mode, settings)

    def tail_recall(self, name, settings):
        return D.tail_recall(self.wide[name], settings)

    def hallucination(self, name, mode, settings):
        return D.hallucination(self.wide[name], mode, settings)


def _guarded(definition: int, fn, *args) -> Verdict:
    """``fn(*args)``; a numerical failure of the test (overflow, a singular system, values no
    test can take) is a result, not a crash: an inconclusive verdict saying what failed."""
    try:
        with np.errstate(all="ignore"):
            return fn(*args)
    except (ArithmeticError, ValueError, np.linalg.LinAlgError) as exc:
        return Verdict.inconclusive(definition, DEFINITIONS[definition],
                                    f"numerical failure of the test: {type(exc).__name__}: "
                                    f"{exc}")


def _tests(wide, spec: dict, settings: ProfileSettings) -> list[Verdict]:
    """The eight tests of one (task, paradigm), undecided.  ``wide``: the unit's wide arrays
    (metric -> (n_seeds, n_iterations)), or an evidence object with ``_ArrayEvidence``'s
    methods (``profile.streaming``: the same tests from merged moments)."""
    ev = _ArrayEvidence(wide) if isinstance(wide, dict) else wide
    out: list[Verdict] = []
    risk_name = spec.get("risk")
    if ev.present(risk_name):
        out += [_guarded(1, ev.catastrophic, risk_name, settings),
                _guarded(2, ev.any_increase, risk_name, settings),
                _guarded(3, ev.diverging, risk_name, settings)]
    else:
        out += [Verdict.not_applicable(d, "population risk", "no risk metric") for d in (1, 2, 3)]
    var = spec.get("variance")
    out.append(_guarded(4, ev.collapsing_variance, var, settings) if ev.present(var)
               else Verdict.not_applicable(4, "variance", "no variance metric"))
    out.append(_guarded(5, ev.scaling, spec, settings))
    modes = spec.get("modes")
    out.append(_guarded(6, ev.mode_loss, modes, settings) if ev.present(modes)
               else Verdict.not_applicable(6, "mode coverage", "no mode metric"))
    tail, base = spec.get("tail"), spec.get("tail_base")
    if ev.present(tail) and ev.present(base):
        out.append(_guarded(7, ev.tail_loss, tail, base, spec.get("tail_mode", "ratio"),
                            settings))
    elif ev.present(spec.get("tail_recall")):
        out.append(_guarded(7, ev.tail_recall, spec["tail_recall"], settings))
    else:
        out.append(Verdict.not_applicable(7, "tail risk", "no tail metric"))
    hal = spec.get("hallucination")
    out.append(_guarded(8, ev.hallucination, hal, spec.get("hallucination_mode", "mass"),
                        settings)
               if ev.present(hal) else Verdict.not_applicable(
                   8, "hallucinated share", "no off-support metric (e.g. the truth has full "
                   "support)"))
    return out


def decide(verdicts: list[Verdict], settings: ProfileSettings) -> None:
    """Holm-adjust the p-values of all open tests of a run, separately for the 'occurs' and the
    'does not occur' hypotheses, and set each verdict (in place).

    With ``correction: holm`` the probability of any false 'occurs' among all verdicts of the
    run is at most ``alpha`` (and likewise of any false 'does not occur'), whatever the
    dependence between tests (Holm 1979).
    """
    open_ = [v for v in verdicts if not v.verdict]
    if not open_:
        return
    p_occ = np.array([v.p_occurs for v in open_], dtype=float)
    p_not = np.array([v.p_not for v in open_], dtype=float)
    if settings.correction == "holm":
        a_occ, a_not = holm(p_occ), holm(p_not)
    else:
        a_occ, a_not = p_occ, p_not
    m_occ, m_not = int((~np.isnan(p_occ)).sum()), int((~np.isnan(p_not)).sum())
    for v, po, pn in zip(open_, a_occ, a_not):
        v.p_occurs_adjusted, v.p_not_adjusted = float(po), float(pn)
        occ, no = po <= settings.alpha, pn <= settings.alpha
        if occ and not no:
            v.verdict = OCCURS
        elif no and not occ:
            v.verdict = NOT
        else:
            v.verdict = INCONCLUSIVE
            if not v.reason:
                v.reason = (f"neither direction significant at family-wise alpha "
                            f"{settings.alpha:g} ({settings.correction}, {m_occ} + {m_not} "
                            "tests): not detected either way")


def collapse_profile(results: pd.DataFrame, specs: dict[str, dict] | None = None,
                     settings: ProfileSettings | dict | None = None, *,
                     point_specs: dict[int, dict[str, dict]] | None = None) -> pd.DataFrame:
    """The collapse profile of a run: one row per (task, paradigm, definition).

    Parameters
    ----------
    results : DataFrame in the results schema (``modelcollapse.load_results``)
    specs : dict task -> profile spec, optional
        Which metric measures what (the manifest's ``profile_specs``; see ``Task.profile``).
        Without it, the risk is the first of ``RISK_PREFERENCE`` recorded and the
        other definitions are not applicable.
    settings : ProfileSettings or dict, optional
        Thresholds and error control (``ProfileSettings``; docs/profile.md).
    point_specs : dict point -> (dict task -> profile spec), optional
        For a sweep store (a ``point`` column): each grid point's specs (the sweep manifest's
        ``points[k].profile_specs``); points without an entry use ``specs``.  A sweep is one
        run: the Holm correction spans every point.

    Returns
    -------
    DataFrame with columns ``COLUMNS``: verdict is ``occurs``, ``does_not_occur``,
    ``inconclusive`` (with a ``reason``) or ``not_applicable``; a sweep store adds ``point``
    and its ``grid.<key>`` columns first; value is the effect size with
    one-sided ``1 - alpha`` bounds low/high; p_occurs / p_not are the raw p-values of
    "collapse occurs" / "does not occur" and the ``_adjusted`` ones after Holm's correction
    over every test of the run; p_value is the adjusted p-value behind the verdict;
    last_iteration is the horizon the verdict is decided at.
    """
    settings = ProfileSettings.model_validate(settings or {})
    from ..results.store import units as iter_units

    units = []
    for where, task, paradigm, group in iter_units(results):
        spec_map = (point_specs or {}).get(where["point"], specs) if where else specs
        spec = resolve_spec((spec_map or {}).get(task, {}), group.metric.unique())
        n_seeds, last = int(group.seed.nunique()), int(group.iteration.max())
        first = int(group.iteration.min())
        verdicts = unit_verdicts(n_seeds, last == first,
                                 lambda group=group, spec=spec: _tests(_wide(group), spec,
                                                                       settings), settings)
        units.append((where, task, paradigm, n_seeds, last, verdicts))
    return profile_frame(units, settings)


def resolve_spec(spec: dict | None, recorded) -> dict:
    """A task's profile spec as the profile uses it: the risk defaulted (``default_risk``) and
    the generic roles filled (``with_generic_roles``) from the ``recorded`` metric names."""
    spec = dict(spec or {})
    if "risk" not in spec:
        spec["risk"] = default_risk(recorded)
    return with_generic_roles(spec, recorded)


def unit_verdicts(n_seeds: int, single_iteration: bool, tests,
                  settings: ProfileSettings) -> list[Verdict]:
    """The undecided verdicts of one unit: ``tests()`` (``_tests``), all not applicable after
    a single model-fitting iteration, the open ones inconclusive below ``min_seeds``."""
    if single_iteration:
        return [Verdict.not_applicable(d, "", "a single model-fitting iteration: "
                                       "nothing to compare") for d in DEFINITIONS]
    verdicts = tests()
    if n_seeds < settings.min_seeds:
        for v in verdicts:
            if v.verdict != NA:
                v.verdict, v.reason = INCONCLUSIVE, (
                    f"{n_seeds} seeds < min_seeds {settings.min_seeds}: with n <= 4 "
                    "chains no sign-symmetric test reaches p < 0.05")
    return verdicts


def profile_frame(units: list, settings: ProfileSettings) -> pd.DataFrame:
    """Decide the verdicts of every unit together (``decide``: one correction over the run)
    and lay them out: ``units`` are (where, task, paradigm, n_seeds, last_iteration,
    verdicts); returns ``collapse_profile``'s DataFrame."""
    decide([v for *_, vs in units for v in vs], settings)
    rows = []
    for where, task, paradigm, n_seeds, last, verdicts in units:
        for v in verdicts:
            p_value = {OCCURS: v.p_occurs_adjusted, NOT: v.p_not_adjusted}.get(
                v.verdict, np.nanmin([v.p_occurs_adjusted, v.p_not_adjusted])
                if not np.isnan([v.p_occurs_adjusted, v.p_not_adjusted]).all() else np.nan)
            rows.append({**where, "task": task, "paradigm": paradigm,
                         "definition": v.definition,
                         "name": DEFINITIONS[v.definition], "verdict": v.verdict,
                         "reason": v.reason, "statistic": v.statistic, "value": v.value,
                         "low": v.low, "high": v.high, "threshold": v.threshold,
                         "p_value": p_value, "p_occurs": v.p_occurs, "p_not": v.p_not,
                         "p_occurs_adjusted": v.p_occurs_adjusted,
                         "p_not_adjusted": v.p_not_adjusted, "test": v.test,
                         "detail": v.detail, "n_seeds": n_seeds, "last_iteration": last,
                         "alpha": settings.alpha})
    first_cols = list(units[0][0]) if units else []
    return pd.DataFrame(rows, columns=first_cols + COLUMNS)
