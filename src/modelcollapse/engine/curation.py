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
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..rng import Role

__all__ = ["Batch", "Policy", "Curation", "POLICIES", "build_policy"]


@dataclass
class Batch:
    """Rows a policy acts on, for all R replicates.

    X : ndarray (R, k, ...) -- the rows
    weight : ndarray (R, k) -- current sample weights (0 = dropped)
    synthetic : ndarray (k,) of bool -- true provenance (the same layout for every replicate)
    believed : ndarray (R, k) of bool -- believed synthetic (true provenance unless scraping)
    """

    X: np.ndarray
    weight: np.ndarray
    synthetic: np.ndarray
    believed: np.ndarray


@dataclass
class Context:
    """What a policy may read: the iteration t (model t produced the batch), the task, the
    replicate streams, model t (``incoming`` stage) and whether provenance is labelled."""

    iteration: int
    task: Any
    streams: Any
    model: Any = None
    labelled: bool = True

    def rngs(self):
        return self.streams(self.iteration, Role.CURATE)


class Policy:
    """Base class: ``stage`` and ``name``; override ``prepare`` (once per chain) and the stage's
    method.  Methods return the new weights (R, k) and a dict of (R,) metric arrays."""

    stage = "incoming"
    name = "policy"

    def prepare(self, ctx: Context) -> None:
        """Called once per chain before iteration 0 (e.g. fit a reference model on real data)."""

    def real(self, X: np.ndarray, ctx: Context) -> np.ndarray:  # stage "real"
        raise NotImplementedError

    def incoming(self, batch: Batch, ctx: Context) -> tuple[np.ndarray, dict]:
        raise NotImplementedError

    def training(self, batch: Batch, ctx: Context) -> tuple[np.ndarray, dict]:
        raise NotImplementedError


# -- helpers -----------------------------------------------------------------------------------

def _reference_scores(ctx: Context) -> tuple[Any, np.ndarray]:
    """A model of the task's family fitted on the real pool (CURATE stream of iteration 0) and
    the log-likelihood of every real row under it, shape (R, n)."""
    model = ctx.task.make_model()
    model.fit(ctx.task.real, rngs=ctx.streams(0, Role.CURATE))
    return model, np.asarray(model.score_samples(ctx.task.real), dtype=float)


def _flag_metrics(name: str, flagged: np.ndarray, synthetic: np.ndarray,
                  extra_real_flagged: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Counts and detector quality of ``flagged`` (R, k) against true provenance (k,).

    recall = flagged synthetic / synthetic; fpr = flagged real / real; precision = flagged
    synthetic / flagged.  ``extra_real_flagged`` (R, k') are flags on held-out real rows, used
    when the batch holds no real rows (a labelled synthetic batch)."""
    syn, real = synthetic[None, :], ~synthetic[None, :]
    out = {f"{name}_flagged": flagged.sum(1).astype(float)}
    tp = (flagged & syn).sum(1)
    fp = (flagged & real).sum(1)
    n_real = real.sum()
    if extra_real_flagged is not None:
        fp = fp + extra_real_flagged.sum(1)
        n_real = n_real + extra_real_flagged.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        if syn.sum():
            out[f"{name}_recall"] = tp / syn.sum()
        if n_real:
            out[f"{name}_fpr"] = fp / n_real
        out[f"{name}_precision"] = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), np.nan)
    return out


def _auc(scores_pos: np.ndarray, scores_neg: np.ndarray) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties 1/2."""
    from scipy.stats import rankdata

    if len(scores_pos) == 0 or len(scores_neg) == 0:
        return float("nan")
    ranks = rankdata(np.concatenate([scores_pos, scores_neg]))
    n_pos, n_neg = len(scores_pos), len(scores_neg)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


# -- policies ------------------------------------------------------------------------------------

class Verify(Policy):
    """Keep only rows that pass a verifier; the rest get weight 0.

    Default verifier: the log-likelihood of the row under a model of the task's own family fitted
    to the real pool must reach the ``quantile`` of the real rows' own log-likelihoods (a support
    check: it rejects samples no real-data model would produce).  ``verifier: "module:function"``
    plugs in a user's: ``function(X) -> bool array``, X of shape (k, ...) for one replicate.

    Metrics: ``verify_kept``, ``verify_dropped`` (rows of the incoming data) and, treating a
    rejection as a flag "synthetic", ``verify_recall`` (synthetic rows rejected),
    ``verify_fpr`` (real rows rejected: incoming real rows, plus the held-out real test set) and
    ``verify_precision``.
    """

    stage, name = "incoming", "verify"

    def __init__(self, quantile: float = 0.05, verifier: str | None = None) -> None:
        self.quantile, self.verifier = float(quantile), verifier
        self._fn = None

    def prepare(self, ctx: Context) -> None:
        if self.verifier is not None:
            import importlib

            module, _, attr = self.verifier.partition(":")
            self._fn = getattr(importlib.import_module(module), attr)
        else:
            self._ref, real_scores = _reference_scores(ctx)
            self._threshold = np.quantile(real_scores, self.quantile, axis=1)  # (R,)
        # the verifier is fixed for the chain: its verdicts on the held-out real rows too
        self._test_flags = ~self.passes(ctx.task.test)                          # (R, m)

    def passes(self, X: np.ndarray) -> np.ndarray:
        """(R, k, ...) -> (R, k) bool."""
        if self._fn is not None:
            return np.stack([np.asarray(self._fn(x), dtype=bool) for x in X])
        scores = np.asarray(self._ref.score_samples(X), dtype=float)
        return np.nan_to_num(scores, nan=-np.inf) >= self._threshold[:, None]

    def incoming(self, batch: Batch, ctx: Context):
        ok = self.passes(batch.X)
        weight = np.where(ok, batch.weight, 0.0)
        test_flags = self._test_flags
        metrics = {"verify_kept": ok.sum(1).astype(float),
                   "verify_dropped": (~ok).sum(1).astype(float)}
        metrics.update({k: v for k, v in _flag_metrics("verify", ~ok, batch.synthetic,
                                                       test_flags).items()
                        if not k.endswith("_flagged")})
        return weight, metrics


class Detect(Policy):
    """A detector of synthetic data; flagged rows are dropped, down-weighted or only labelled.

    ``detector: oracle`` (default) flags each synthetic row with probability ``recall`` and each
    real row with probability ``fpr`` (a detector of stated quality; provenance drives it).
    ``detector: learned``: per replicate, a scikit-learn logistic regression -- on standardised
    quadratic features of float rows (so it sees covariance as well as mean differences), on
    one-hot features of integer rows (outcomes, tokens) -- is trained each iteration on the real pool vs ``n_train`` fresh
    samples of the current model (a lab can always sample its own model), and flags rows with
    P(synthetic) > ``threshold``; ``detect_auc`` is its ROC AUC on the incoming rows (or, for a
    synthetic-only batch, incoming vs the held-out real test set), and its ``detect_fpr`` counts
    the held-out real test rows it flags as well.

    ``action``: ``drop`` (weight 0), ``downweight`` (weight x ``factor``) or ``label`` (weights
    unchanged; under scraping the flag only marks the row as believed synthetic).
    """

    stage, name = "incoming", "detect"

    def __init__(self, recall: float = 0.9, fpr: float = 0.0, action: str = "drop",
                 factor: float = 0.1, detector: str = "oracle", threshold: float = 0.5,
                 n_train: int | None = None) -> None:
        self.recall, self.fpr, self.action, self.factor = recall, fpr, action, factor
        self.detector, self.threshold, self.n_train = detector, threshold, n_train

    def _classifier(self, integer: bool):
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OneHotEncoder, PolynomialFeatures, StandardScaler

        head = LogisticRegression(max_iter=500, class_weight="balanced")
        if integer:  # outcomes / tokens: one-hot features
            return make_pipeline(OneHotEncoder(handle_unknown="ignore"), head)
        return make_pipeline(StandardScaler(), PolynomialFeatures(2), head)

    def _learned(self, batch: Batch, ctx: Context):
        real, test = ctx.task.real, ctx.task.test
        R = len(real)
        integer = np.issubdtype(real.dtype, np.integer)

        def rows(X):  # (R, k, ...) -> (R, k, features)
            X = np.asarray(X).reshape(R, X.shape[1], -1)
            return X if integer else np.nan_to_num(X.astype(float))

        n_train = self.n_train or real.shape[1]
        fake = rows(ctx.model.sample(n_train, rngs=ctx.rngs()))
        real, test, incoming = rows(real), rows(test), rows(batch.X)
        flags, aucs = np.zeros(batch.weight.shape, bool), np.empty(R)
        test_flags = np.zeros(test.shape[:2], bool)
        for r in range(R):
            clf = self._classifier(integer)
            clf.fit(np.concatenate([real[r], fake[r]]),
                    np.r_[np.zeros(len(real[r])), np.ones(len(fake[r]))])
            p = clf.predict_proba(incoming[r])[:, 1]
            flags[r] = p > self.threshold
            p_real = clf.predict_proba(test[r])[:, 1]
            test_flags[r] = p_real > self.threshold
            if batch.synthetic.all():
                aucs[r] = _auc(p, p_real)
            else:
                aucs[r] = _auc(p[batch.synthetic], p[~batch.synthetic])
        return flags, {"detect_auc": aucs}, test_flags

    def incoming(self, batch: Batch, ctx: Context):
        test_flags = None
        if self.detector == "learned":
            flags, metrics, test_flags = self._learned(batch, ctx)
        else:
            u = np.stack([g.random(batch.weight.shape[1]) for g in ctx.rngs()])   # (R, k)
            rate = np.where(batch.synthetic, self.recall, self.fpr)[None, :]
            flags, metrics = u < rate, {}
        metrics.update(_flag_metrics("detect", flags, batch.synthetic, test_flags))
        if self.action == "drop":
            weight = np.where(flags, 0.0, batch.weight)
        elif self.action == "downweight":
            weight = np.where(flags, batch.weight * self.factor, batch.weight)
        else:
            weight = batch.weight
        if not ctx.labelled:
            batch.believed[:] = flags
        return weight, metrics


class TailOversample(Policy):
    """Up-weight the real tails: the ``fraction`` of real rows with the lowest log-likelihood
    under a real-data model of the task's family get weight ``factor`` (Schaeffer et al. 2025,
    Sec. 4: tails vanish first; the playbook's "preserve the tails on purpose").

    Metrics: ``tail_oversample_rows`` and ``tail_oversample_weight_share`` (share of the real
    weight on the tail rows)."""

    stage, name = "real", "tail_oversample"

    def __init__(self, fraction: float = 0.1, factor: float = 3.0) -> None:
        self.fraction, self.factor = float(fraction), float(factor)

    def real(self, X: np.ndarray, ctx: Context) -> np.ndarray:
        _, scores = _reference_scores(ctx)                                # (R, n)
        k = max(1, int(round(self.fraction * scores.shape[1])))
        tail = np.argsort(np.nan_to_num(scores, nan=-np.inf), axis=1, kind="stable")[:, :k]
        w = np.ones(scores.shape)
        np.put_along_axis(w, tail, self.factor, axis=1)
        self.metrics = {"tail_oversample_rows": np.full(len(w), float(k)),
                        "tail_oversample_weight_share": k * self.factor / w.sum(1)}
        return w


class RatioCap(Policy):
    """A hard cap on the training set's synthetic-to-real ratio: when more than
    floor(``max_ratio`` x real rows) rows believed synthetic carry weight, a uniform random
    subset of that size keeps its weight and the rest get weight 0.

    Metrics: ``ratio_cap_dropped``."""

    stage, name = "training", "ratio_cap"

    def __init__(self, max_ratio: float = 1.0) -> None:
        self.max_ratio = float(max_ratio)

    def training(self, batch: Batch, ctx: Context):
        weight = batch.weight.copy()
        dropped = np.zeros(len(weight))
        live = weight > 0
        for r, g in enumerate(ctx.rngs()):
            syn = np.flatnonzero(live[r] & batch.believed[r])
            cap = int(np.floor(self.max_ratio * (live[r] & ~batch.believed[r]).sum() + 1e-9))
            if len(syn) > cap:
                drop = g.choice(syn, size=len(syn) - cap, replace=False)
                weight[r, drop] = 0.0
                dropped[r] = len(drop)
        return weight, {"ratio_cap_dropped": dropped}


class Weights(Policy):
    """Sample weights for real vs synthetic rows: the rows believed real carry the share
    ``real_weight`` of the total weight and the synthetic rows the rest, the total being the
    number of live rows (He, Xu & Cheng 2025 weight real data by w; their optimum for equal
    parts is w = (sqrt 5 - 1) / 2, the golden ratio).  Within a class, relative weights (e.g.
    from ``detect: downweight``) are kept.  A class with no live rows is left as is.

    Metrics: ``weights_real_share`` (the real share actually applied)."""

    stage, name = "training", "weights"

    def __init__(self, real_weight: float = 0.5) -> None:
        self.real_weight = float(real_weight)

    def training(self, batch: Batch, ctx: Context):
        w = batch.weight
        live = w > 0
        n_live = live.sum(1, keepdims=True)
        real_sum = np.where(batch.believed, 0.0, w).sum(1, keepdims=True)
        syn_sum = np.where(batch.believed, w, 0.0).sum(1, keepdims=True)
        both = (real_sum > 0) & (syn_sum > 0)
        scale_real = np.where(both, self.real_weight * n_live / np.where(both, real_sum, 1), 1.0)
        scale_syn = np.where(both, (1 - self.real_weight) * n_live / np.where(both, syn_sum, 1),
                             1.0)
        new = np.where(batch.believed, w * scale_syn, w * scale_real)
        share = np.where(batch.believed, 0.0, new).sum(1) / np.maximum(new.sum(1), 1e-300)
        return new, {"weights_real_share": share}


POLICIES: dict[str, type[Policy]] = {"verify": Verify, "detect": Detect,
                                     "tail_oversample": TailOversample, "ratio_cap": RatioCap,
                                     "weights": Weights}


def build_policy(spec: dict[str, Any]) -> Policy:
    """A policy from its config mapping ``{"policy": name, **parameters}``."""
    params = dict(spec)
    return POLICIES[params.pop("policy")](**params)


@dataclass
class Curation:
    """The policies of one paradigm, in the order given, and the ecosystem settings.

    real_arrival : int -- real rows joining the incoming data at each iteration t >= 1
    initial_real : int or None -- real rows available at iteration 0 (default: the rest)
    scraping : bool -- incoming data is an unlabelled mix (provenance only via detectors)
    """

    policies: list[Policy] = field(default_factory=list)
    real_arrival: int = 0
    initial_real: int | None = None
    scraping: bool = False

    def stage(self, name: str) -> list[Policy]:
        return [p for p in self.policies if p.stage == name]


class CuratedPool:
    """The engine's data sources when a paradigm has curation or ecosystem settings.

    Rows are always kept, with per-row weights (R, cap), true origin (cap,) -- -1 for real
    rows, k for rows sampled from model k -- and believed provenance (R, cap).  The pool is real
    rows first (``initial_real`` of them), then per iteration the incoming block: the synthetic
    batch of the latest model followed by the real rows arriving at that iteration.  ``latest``
    is the latest incoming block; ``real`` the real rows that have arrived so far.
    """

    def __init__(self, task, model, curation: Curation, capacity: int, n_iterations: int,
                 streams) -> None:
        self.task, self.curation, self.streams = task, curation, streams
        R, n = task.real.shape[:2]
        k = curation.real_arrival
        n0 = curation.initial_real if curation.initial_real is not None else n - k * max(
            n_iterations - 1, 0)
        if n0 < 2 or n0 + k * max(n_iterations - 1, 0) > n:
            raise ValueError(f"initial_real / real_arrival: {n0} initial real rows plus {k} per "
                             f"iteration for {n_iterations} iterations exceed the {n} real rows "
                             "of the task (or leave fewer than 2 to start from)")
        self.n0, self.next_real = n0, n0
        capacity = n0 + capacity - n + k * max(n_iterations - 1, 0)
        self.rows = np.empty((R, capacity) + task.real.shape[2:], dtype=task.real.dtype)
        self.weight = np.zeros((R, capacity))
        self.origin = np.full(capacity, -1, dtype=np.int64)
        self.believed = np.zeros((R, capacity), dtype=bool)
        self.rows[:, :n0] = task.real[:, :n0]
        self.weight[:, :n0] = 1.0
        ctx = Context(0, task, streams, labelled=not curation.scraping)
        for policy in curation.policies:
            policy.prepare(ctx)
        self.real_metrics: dict[str, np.ndarray] = {}
        for policy in curation.stage("real"):
            self.weight[:, :n0] *= policy.real(task.real[:, :n0], ctx)[:, :n0]
            self.real_metrics.update(getattr(policy, "metrics", {}))
        self.size, self.latest = n0, slice(n0, n0)
        self.incoming_metrics: dict[str, np.ndarray] = {}

    @property
    def real_index(self) -> np.ndarray:
        return np.flatnonzero(self.origin[:self.size] == -1)

    @property
    def n_available_real(self) -> int:
        return int((self.origin[:self.size] == -1).sum())

    def add_batch(self, model, m: int, t: int) -> None:
        """Sample model t's batch, add the arriving real rows, curate, append to the pool."""
        from ..rng import Role

        X = np.asarray(model.sample(m, rngs=self.streams(t, Role.SAMPLE)))
        k = self.curation.real_arrival
        arriving = self.task.real[:, self.next_real:self.next_real + k]
        self.next_real += k
        block = np.concatenate([X.astype(self.rows.dtype, copy=False), arriving], axis=1)
        synthetic = np.r_[np.ones(m, bool), np.zeros(k, bool)]
        R = block.shape[0]
        batch = Batch(block, np.ones((R, m + k)), synthetic,
                      np.broadcast_to(synthetic, (R, m + k)).copy() if not self.curation.scraping
                      else np.zeros((R, m + k), bool))
        ctx = Context(t, self.task, self.streams, model, labelled=not self.curation.scraping)
        metrics: dict[str, np.ndarray] = {}
        for policy in self.curation.stage("incoming"):
            batch.weight, got = policy.incoming(batch, ctx)
            metrics.update(got)
        a, b = self.size, self.size + m + k
        self.rows[:, a:b], self.weight[:, a:b] = block, batch.weight
        self.origin[a:b] = np.where(synthetic, t, -1)
        self.believed[:, a:b] = batch.believed
        self.size, self.latest = b, slice(a, b)
        self.incoming_metrics = metrics

    def view_sizes(self) -> tuple[int, int, int]:
        """(n_real available, pool size, latest size) for the paradigm's ChainView."""
        return self.n_available_real, self.size, self.latest.stop - self.latest.start

    def _index(self, part) -> tuple[np.ndarray, np.ndarray | None]:
        """Pool indices of a part: (R, k) or (k,) for all replicates."""
        base = {"real": self.real_index, "latest": np.arange(self.latest.start, self.latest.stop),
                "pool": np.arange(self.size)}[part.source]
        return base if part.rows is None else base[part.rows]

    def training_set(self, parts, t: int):
        """Resolve the paradigm's parts and apply the training-stage policies.

        Returns X (R, N, ...), weights (R, N), from_real (R,), from_synthetic (R,) -- live rows
        (weight > 0) by true provenance -- and the metrics of this iteration's curation and
        provenance ledger (``synthetic_from_<k>``: live rows sampled from model k)."""
        R = self.rows.shape[0]
        Xs, ws, origins, believed = [], [], [], []
        for part in parts:
            if part.source == "fresh":
                k = part.data.shape[1]
                Xs.append(part.data)
                ws.append(np.full((R, k), part.weight))
                origins.append(np.full((R, k), -1))
                believed.append(np.zeros((R, k), bool))
                continue
            idx = self._index(part)
            idx = np.broadcast_to(idx, (R, idx.shape[-1]))
            take = (np.arange(R)[:, None], idx)
            Xs.append(self.rows[take])
            ws.append(self.weight[take] * part.weight)
            origins.append(self.origin[idx])
            believed.append(self.believed[take])
        X, w = np.concatenate(Xs, axis=1), np.concatenate(ws, axis=1)
        origin, bel = np.concatenate(origins, axis=1), np.concatenate(believed, axis=1)
        ctx = Context(t, self.task, self.streams, labelled=not self.curation.scraping)
        metrics = dict(self.real_metrics)
        if t > 0:
            metrics.update(self.incoming_metrics)
        for policy in self.curation.stage("training"):
            batch = Batch(X, w, None, bel)
            w, got = policy.training(batch, ctx)
            metrics.update(got)
        live = w > 0
        from_real = (live & (origin < 0)).sum(1).astype(float)
        from_synthetic = (live & (origin >= 0)).sum(1).astype(float)
        for k in range(t):  # every batch so far, 0 once it has left the training set
            metrics[f"synthetic_from_{int(k)}"] = (live & (origin == k)).sum(1).astype(float)
        if self.curation.scraping:
            metrics["believed_synthetic"] = (live & bel).sum(1).astype(float)
        metrics["real_weight_share"] = (np.where(origin < 0, w, 0).sum(1)
                                        / np.maximum(w.sum(1), 1e-300))
        return X, w, from_real, from_synthetic, metrics
