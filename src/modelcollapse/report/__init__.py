"""Summaries (pandas/scipy) and plots (matplotlib, imported only when plotting)."""

from .summary import final_vs_initial

__all__ = ["final_vs_initial"]
