"""The engine: paradigms, the model-fitting loop, and running a whole study."""

from .loop import ChainResult, run_chain
from .study import run_study

__all__ = ["ChainResult", "run_chain", "run_study"]
