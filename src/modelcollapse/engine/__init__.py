"""The engine: paradigms, the model-fitting loop, running a whole study or sweep, executors."""

from .executors import LocalExecutor, RayExecutor
from .loop import ChainResult, run_chain
from .study import run_study
from .sweep import load_sweep, run_sweep

__all__ = ["ChainResult", "run_chain", "run_study", "load_sweep", "run_sweep", "LocalExecutor",
           "RayExecutor"]
