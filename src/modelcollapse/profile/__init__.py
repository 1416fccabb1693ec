"""The collapse profile: a verdict for each of the eight definitions of model collapse.

Schaeffer, Kazdan, Arulandu & Koyejo 2025, "Position: Model Collapse Does Not Mean What You
Think" (arXiv 2503.03150), Sec. 2, list eight definitions; the same run can collapse under one and
not under another (their Table 1).  For every (task, paradigm) of a run each definition is a
statistical decision over the replicate chains with one of four outcomes -- ``occurs``,
``does_not_occur``, ``inconclusive`` (with the reason) or ``not_applicable`` -- from two
one-sided tests of an effect against a threshold, corrected over every test of the run by Holm's
step-down procedure at family-wise level ``alpha``.  docs/profile.md states, for each
definition, the statistic, the test, the threshold, the horizon caveat and a worked example.

====  =======================================  ================================================
def.  name                                     test (module ``definitions`` unless noted)
====  =======================================  ================================================
1     catastrophic increase of population      ratio of mean risks vs ``catastrophic_ratio``
      risk                                     (delta method); log-losses: increase in nats vs
                                               ``catastrophic_nats``
2     any increase of population risk          paired t-tests of risk_T - risk_0 vs 0
3     asymptotically diverging population      GLS lack of fit of saturating vs unbounded growth
      risk                                     laws on block means, plus "still rising" (growth)
4     collapsing variance                      log variance ratio vs ``variance_ratio``, or
                                               unbounded decline of the log variance
5     change in scaling law                    effective real sample size, last vs first
                                               iteration vs ``efficiency`` (``scaling``)
6     disappearance of real modes              share of modes lost vs ``mode_loss``
7     disappearance of real tail data          tail vs overall loss growth (excess or
                                               increments; jackknife) or median tail recall
                                               (sign test) vs ``tail_margin``
8     appearance of hallucinated data          increase of the hallucinated share vs
                                               ``hallucination``
====  =======================================  ================================================
"""

from __future__ import annotations

from .settings import INCONCLUSIVE, NA, NOT, OCCURS, OUTCOMES, ProfileSettings

__all__ = ["DEFINITIONS", "OUTCOMES", "OCCURS", "NOT", "INCONCLUSIVE", "NA", "ProfileSettings",
           "collapse_profile", "growth_test"]


def __getattr__(name: str):
    if name in ("DEFINITIONS", "collapse_profile", "COLUMNS"):
        from . import core

        return getattr(core, name)
    if name == "growth_test":
        from .growth import growth_test

        return growth_test
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
