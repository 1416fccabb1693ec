"""Checks of the engine against the closed-form theory (``modelcollapse verify``).

``modelcollapse.theory`` is pure functions (numpy and scipy only); what it takes to test them
against simulation lives here, above the engine it runs:

* ``predictions`` -- ``PREDICTIONS``, the registry of checks: each ``Prediction`` pairs a closed
  form with a small study to run on the engine (or a self-contained numpy simulation) and the
  metric, paradigm, iterations and statistic to compare;
* ``verify`` -- ``run_verify``: runs them and tests each predicted curve with a simultaneous
  max-|z| statistic calibrated by a bootstrap over whole chains.

    >>> from modelcollapse.checks import PREDICTIONS, run_verify
    >>> table = run_verify(seed=0)      # one row per check; table.passed.all()
"""

from .predictions import PREDICTIONS, Prediction
from .verify import run_verify, verify_one

__all__ = ["PREDICTIONS", "Prediction", "run_verify", "verify_one"]
