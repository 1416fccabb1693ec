"""Curation policies: what a pipeline does to data before it trains on it.

The practitioners' playbook (accumulate, cap the synthetic-to-real ratio, detect and filter
machine-generated data, verify synthetic data, preserve the tails) as settings of a paradigm::

    paradigms:
      - name: accumulate
        curation:
          - {policy: detect, recall: 0.9, fpr: 0.01}
          - {policy: ratio_cap, max_ratio: 1.0}

Every policy acts through **per-row sample weights** -- 0 drops a row -- so training sets stay
rectangular arrays (R replicates x rows) and every family that honours ``sample_weight`` works
unchanged.  Policies act at one of three stages:

``real``      once, on the real rows (``tail_oversample``);
``incoming``  on each batch of new rows before it enters the pool: the synthetic batch of the
              latest model plus any real rows arriving that iteration (``verify``, ``detect``);
``training``  on the training set the paradigm assembled, just before the fit (``ratio_cap``,
              ``weights``).

Provenance.  Every row carries its true origin (real, or synthetic from model k); the ledger
and the recorded ``n_real`` / ``n_synthetic`` always use it.  Policies that need to know which
rows are synthetic (``ratio_cap``, ``weights``) use the *believed* provenance: the true one,
except under ``scraping`` (an unlabelled mix), where a row is believed synthetic only if a
``detect`` policy flagged it.  Oracle detectors use the true provenance only to simulate their
stated error rates.

Each policy records what it did in every model-fitting iteration as metrics named
``<policy>_<what>`` (kept, dropped, flagged counts, precision / recall / AUC of detectors and
verifiers), counted on the data that entered at that iteration (incoming policies) or on the
training set (training policies).  Randomness comes only from the ``CURATE`` stream of the
iteration.

One module per policy, each registered in ``modelcollapse.registry.policies``.  A new policy is a
``Policy`` subclass (``stage``, ``apply``, optionally ``prepare``) with a ``Params`` model (a
``PolicyParams`` subclass: its fields are the policy's study settings, passed to the
constructor as keyword arguments) and one ``policies.register(name, cls)`` call (or an entry
point in the ``modelcollapse.policies`` group).
"""

from ..registry import policies as _registry
from .base import Batch, Context, Curation, Policy, PolicyParams

__all__ = ["Batch", "Context", "Curation", "Policy", "PolicyParams", "register", "get", "names"]

# the calls of the policy registry (``modelcollapse.registry.policies``)
register = _registry.register
get = _registry.get
names = _registry.names
