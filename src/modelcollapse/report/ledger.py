"""The provenance ledger of a run: per task, paradigm and model-fitting iteration, what the
training set was made of (mean over seeds).

Columns: ``real``, ``synthetic`` (live rows by true provenance), ``synthetic_to_real_ratio``,
``from_<k>`` (live synthetic rows sampled from model k; recorded by curated paradigms),
``real_weight_share`` and every curation count (``<policy>_kept`` / ``_dropped`` / ``_flagged``,
``ratio_cap_dropped``, ``believed_synthetic``) and detector quality (``_recall``, ``_fpr``,
``_precision``, ``_auc``).  Columns a paradigm does not record are empty.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

__all__ = ["ledger_table", "LEDGER_METRICS"]

LEDGER_METRICS = re.compile(
    r"^(n_real|n_synthetic|synthetic_to_real_ratio|synthetic_from_\d+|real_weight_share|"
    r"believed_synthetic|ratio_cap_dropped|weights_real_share|tail_oversample_\w+|"
    r"(verify|detect)_(kept|dropped|flagged|recall|fpr|precision|auc))$")
RENAME = {"n_real": "real", "n_synthetic": "synthetic"}


def ledger_table(results: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds of every ledger metric, one row per (task, paradigm, iteration).

    Parameters
    ----------
    results : DataFrame with the results store's columns (``results.COLUMNS``)

    Returns
    -------
    DataFrame with columns task, paradigm, iteration, n_seeds and the ledger columns (see the
    module docstring), in the results' task and paradigm order.
    """
    metric = results.metric.astype(str)
    rows = results[metric.map(lambda m: bool(LEDGER_METRICS.match(m)))].copy()
    rows["metric"] = rows.metric.astype(str)
    keys = ["task", "paradigm", "iteration"]
    table = rows.pivot_table(index=keys, columns="metric", values="value", aggfunc="mean",
                             observed=True, dropna=False)
    seeds = results.groupby(keys, observed=True).seed.nunique().rename("n_seeds")
    # inner: pivot_table(dropna=False) builds the product of the index levels, including
    # (task, paradigm) pairs that never ran (a sweep's points differ in paradigms)
    table = table.join(seeds, how="inner").reset_index()

    def order(col: str) -> tuple:
        fixed = ["task", "paradigm", "iteration", "n_seeds", "n_real", "n_synthetic",
                 "synthetic_to_real_ratio"]
        if col in fixed:
            return (0, fixed.index(col), 0)
        m = re.match(r"synthetic_from_(\d+)$", col)
        return (1, int(m.group(1)), 0) if m else (2, 0, col)

    table = table[sorted(table.columns, key=order)]
    table.columns = [RENAME.get(c, re.sub(r"^synthetic_from_", "from_", c))
                     for c in table.columns]
    task_order = list(dict.fromkeys(results.task.astype(str)))
    paradigm_order = list(dict.fromkeys(results.paradigm.astype(str)))
    table["task"] = pd.Categorical(table.task.astype(str), task_order)
    table["paradigm"] = pd.Categorical(table.paradigm.astype(str), paradigm_order)
    table = table.sort_values(["task", "paradigm", "iteration"]).reset_index(drop=True)
    return table.replace([np.inf], np.inf)
