"""modelcollapse: a laboratory for model-data feedback loops.

Fit a generative model, sample synthetic data from it, rebuild the next training set under a data
paradigm (replace, accumulate, accumulate-subsample, mix), refit, repeat -- across many replicate
chains -- and measure whether and how the models collapse.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["run", "sweep", "open_run", "Run", "RunError", "Study", "load_study", "run_study",
           "run_chain", "load_results", "collapse_profile", "write_report", "Streams", "tasks",
           "families", "paradigms", "policies", "__version__"]


def __getattr__(name: str):
    # keep ``import modelcollapse`` light: heavy modules load on first use
    if name in ("run", "sweep", "open_run", "Run", "RunError"):
        from . import api
        return getattr(api, name)
    if name in ("Study", "load_study"):
        from . import config
        return getattr(config, name)
    if name in ("run_study", "run_chain"):
        from . import engine
        return getattr(engine, name)
    if name == "load_results":
        from .results.store import load_results
        return load_results
    if name == "collapse_profile":
        from .profile import collapse_profile
        return collapse_profile
    if name == "write_report":
        from .report.html import write_report
        return write_report
    if name == "Streams":
        from .rng import Streams
        return Streams
    if name in ("tasks", "families", "paradigms", "policies"):
        from . import registry
        return getattr(registry, name)
    raise AttributeError(f"module 'modelcollapse' has no attribute {name!r}")
