"""Thresholds and error levels of the collapse profile (``ProfileSettings``, defined with the
study schema in ``config``: the ``profile:`` field of a study) and the four outcomes."""

from __future__ import annotations

from ..config import ProfileSettings

__all__ = ["ProfileSettings", "OUTCOMES"]

OCCURS, NOT, INCONCLUSIVE, NA = "occurs", "does_not_occur", "inconclusive", "not_applicable"
OUTCOMES = (OCCURS, NOT, INCONCLUSIVE, NA)
