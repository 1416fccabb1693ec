"""The metric registry: one ``MetricInfo`` per metric name, registered beside the function that
computes it (``metrics/<domain>.py``), read by summaries, the profile and plots.

Aggregation vocabulary (``AGGREGATIONS``) -- what kind of number one recorded value is:

* ``mean``: an average over items (held-out points, tokens, molecules, reference conformers) of
  a per-item quantity -- a loss, an NLL, an error, an RMSD;
* ``fraction``: the share of a finite set of items that meet a condition, in [0, 1] (precision,
  recall, coverage);
* ``ratio``: a quotient of two aggregates, e.g. a model's over the reference's (variance kept);
* ``count``: a number of items (outcomes, samples, optimiser steps);
* ``functional``: a closed-form functional of the whole fitted distribution or of a pair of
  distributions (an entropy, a distance, a fitted variance), not an average over items.

A plug-in registers its own metric with ``register_metric(name, MetricInfo(...))`` or the
``@metric(name=MetricInfo(...))`` decorator on its function; names are unique.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, TypeVar

__all__ = ["AGGREGATIONS", "MetricInfo", "METRICS", "register_metric", "metric", "info",
           "is_log_loss"]

#: allowed values of ``MetricInfo.aggregation`` (see the module docstring)
AGGREGATIONS = ("mean", "fraction", "ratio", "count", "functional")


@dataclass(frozen=True)
class MetricInfo:
    """Metadata of one metric.

    higher_is_better : True, False, or None (neither: a diagnostic such as a variance)
    units : e.g. "nats per sample", "fraction", "angstrom"; a log-loss's units start with "nats"
    description : one line: what is measured, on what data
    aggregation : one of ``AGGREGATIONS``; "" only for the neutral entry of an unregistered name
    """

    higher_is_better: bool | None
    units: str
    description: str
    aggregation: str


_REGISTRY: dict[str, MetricInfo] = {}

#: read-only view of every registered metric, name -> MetricInfo
METRICS = MappingProxyType(_REGISTRY)


def register_metric(name: str, info: MetricInfo) -> MetricInfo:
    """Register the metadata of metric ``name``; returns ``info``.

    Raises ValueError (one line) for a name already registered, empty units, or an aggregation
    outside ``AGGREGATIONS``."""
    if not name or not isinstance(name, str):
        raise ValueError(f"metric name: {name!r}; allowed: a non-empty string")
    if name in _REGISTRY:
        raise ValueError(f"metric: {name!r} is already registered ({_REGISTRY[name].description}); "
                         "choose another name")
    if not isinstance(info, MetricInfo):
        raise ValueError(f"metric {name!r}: info must be a MetricInfo, got {type(info).__name__}")
    if not info.units:
        raise ValueError(f"metric {name!r}: units is empty; give the units (e.g. 'fraction')")
    if info.aggregation not in AGGREGATIONS:
        raise ValueError(f"metric {name!r}: aggregation {info.aggregation!r}; allowed: "
                         + ", ".join(AGGREGATIONS))
    _REGISTRY[name] = info
    return info


F = TypeVar("F", bound=Callable)


def metric(**infos: MetricInfo) -> Callable[[F], F]:
    """Decorator registering the metrics a function computes, by name:
    ``@metric(entropy=MetricInfo(None, "nats", "...", "functional"))``.  Returns the function
    unchanged."""
    def register(fn: F) -> F:
        for name, value in infos.items():
            register_metric(name, value)
        return fn

    return register


def info(name: str) -> MetricInfo:
    """Metadata of a metric.  A real-data learning-curve point ``reference_<metric>_n<N>``
    (Def. 5) inherits that of ``<metric>``; an unregistered (user) name gets a neutral entry
    (higher_is_better None, units "", aggregation "")."""
    if name not in _REGISTRY and name.startswith("reference_") and "_n" in name:
        base, size = name[len("reference_"):].rsplit("_n", 1)
        if base in _REGISTRY and size.isdigit():
            b = _REGISTRY[base]
            return MetricInfo(b.higher_is_better, b.units, f"{base} of a real-data-only fit on "
                              f"{size} real samples (Def. 5 learning curve)", b.aggregation)
    return _REGISTRY.get(name, MetricInfo(None, "", name, ""))


def is_log_loss(name: str) -> bool:
    """Whether a metric is a log-loss (units in nats): only its differences are unit-free (a
    log-density shifts by log|det A| under x -> A x + b), so it is contrasted by differences,
    never ratios."""
    return info(name).units.startswith("nats")
