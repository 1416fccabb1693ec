"""The summary and collapse profile of a stored streamed run, from its ``aggregates.npz``.

A run with more seeds than it keeps rows for (``n_seeds > keep_seeds``; ``api`` runs it in
blocks, ``sink.StreamSink``) writes the aggregates of all its seeds to ``aggregates.npz`` and
names each unit's part in the manifest's ``streamed`` entry.  Everything that analyses such a
run -- its finishing, ``Run.summary`` / ``Run.profile``, ``modelcollapse summary`` and
``modelcollapse profile --set`` -- reads them here, never the kept rows of
``results.parquet``.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["is_streamed", "stored_units", "analyse_stored"]


def is_streamed(manifest: dict) -> bool:
    """Whether the run's analyses come from aggregates (``manifest["streamed"]``)."""
    return bool(manifest.get("streamed"))


def stored_units(directory: str | Path, manifest: dict) -> list[tuple]:
    """(where, task, paradigm, ``streaming.UnitAggregate``) of every unit of the streamed run
    in ``directory``, in the manifest's order.

    Raises
    ------
    FileNotFoundError
        No ``aggregates.npz`` there.
    """
    from ..results.store import AGGREGATES_FILE, read_arrays
    from .streaming import UnitAggregate

    arrays = read_arrays(Path(directory) / AGGREGATES_FILE)
    out = []
    for k, entry in enumerate(manifest["streamed"]["units"]):
        prefix = f"u{k}."
        part = {name[len(prefix):]: v for name, v in arrays.items() if name.startswith(prefix)}
        labels = entry["labels"]
        out.append(({}, labels["task"], labels["paradigm"],
                    UnitAggregate.from_arrays(part, entry["aggregate"])))
    return out


def analyse_stored(directory: str | Path, manifest: dict, settings=None, level: float = 0.95):
    """(summary, collapse profile) of the streamed run in ``directory``: the columns of
    ``report.summary.final_vs_initial`` and ``profile.collapse_profile``; ``settings``
    (``ProfileSettings`` or dict) default the study's.  Runs with one BLAS thread (the same
    bits on any machine)."""
    from threadpoolctl import threadpool_limits

    from .streaming import collapse_profile_streamed, summary_streamed

    if settings is None:
        settings = (manifest.get("study") or {}).get("profile")
    units = stored_units(directory, manifest)
    with threadpool_limits(limits=1, user_api="blas"):
        return summary_streamed(units, level), collapse_profile_streamed(units, settings)
