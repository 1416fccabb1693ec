"""Thresholds and error levels of the collapse profile: the ``profile:`` field of a study.

Only pydantic here, so that ``config`` can import it without the profile's numerics.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ProfileSettings", "OUTCOMES"]

OCCURS, NOT, INCONCLUSIVE, NA = "occurs", "does_not_occur", "inconclusive", "not_applicable"
OUTCOMES = (OCCURS, NOT, INCONCLUSIVE, NA)


class ProfileSettings(BaseModel):
    """Thresholds and error control of the collapse profile (``modelcollapse.profile``).

    Every default is documented in docs/profile.md with its source.  Verdicts of one run are
    decided with family-wise error ``alpha`` (Holm 1979 over every test of the run).
    """

    model_config = ConfigDict(extra="forbid")

    alpha: float = Field(0.05, gt=0, lt=0.5, description="family-wise error level of all "
                         "'occurs' verdicts of a run (and, separately, of all 'does not occur' "
                         "verdicts); Holm's step-down correction")
    correction: str = Field("holm", pattern="^(holm|none)$", description="multiplicity "
                            "correction over the verdicts of a run: holm | none")
    min_seeds: int = Field(5, ge=2, description="fewer replicate chains give 'inconclusive': "
                           "with n <= 4 seeds no sign-symmetric test reaches p < 0.05 "
                           "(2^-n >= 0.0625)")
    catastrophic_ratio: float = Field(
        2.0, gt=1, description="Def. 1: 'catastrophic' = risk (ratio of means) more than this "
        "many times the real-data fit's (risks in squared units)")
    catastrophic_nats: float = Field(
        1.0, gt=0, description="Def. 1 on log-likelihood risks (nats): 'catastrophic' = mean "
        "increase of more than this many nats per sample (per token for text), i.e. real data "
        "e^x times less likely; differences of log-losses do not depend on the data's units")
    variance_ratio: float = Field(
        0.5, gt=0, lt=1, description="Def. 4: variance (geometric mean over chains) below this "
        "fraction of iteration 0's counts as collapsed, whatever the curve's shape")
    efficiency: float = Field(
        0.9, gt=0, le=1, description="Def. 5: effective real sample size of the last iteration "
        "below this fraction of iteration 0's departs from the real-data scaling law")
    mode_loss: float = Field(0.05, ge=0, lt=1, description="Def. 6: share of iteration 0's "
                             "modes whose loss counts")
    tail_margin: float = Field(
        0.1, gt=0, description="Def. 7: relative growth of tail over bulk loss (or relative "
        "fall of tail recall) that counts")
    hallucination: float = Field(0.02, gt=0, description="Def. 8: increase of the "
                                 "hallucinated share (mass off the real support, 1 - k-NN "
                                 "precision) that counts")
    growth_blocks: int = Field(8, ge=4, le=32, description="Def. 3/4: blocks of iterations "
                               "whose means the growth models are fitted to")
    saturation_horizon: float = Field(
        1.0, gt=0, description="Def. 3/4: saturating models may approach their plateau with "
        "a timescale up to this many run lengths; slower saturation cannot be told from "
        "divergence at the run's horizon (a stated caveat)")
