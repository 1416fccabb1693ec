"""Gaussian mixture fitted by EM for all replicates at once; sampled from our own streams.

The model
---------
p(x) = sum_k pi_k N(x | mu_k, Sigma_k), fitted by expectation-maximisation (Dempster, Laird &
Rubin 1977; Bishop 2006, Sec. 9.2.2), batched over the R replicates of a chain: data of shape
(R, n, d), means (R, K, d), covariances (R, K, d, d).  One EM iteration is

* E-step: log pi_k + log N(x_n | mu_k, Sigma_k) for every (replicate, component, row) from the
  Cholesky factor of each precision matrix (P P^T = Sigma^-1: log N = -1/2 (d log 2 pi +
  |(x - mu) P|^2) + log det P), normalised over the components in log space (log-sum-exp):
  the responsibilities gamma_nk (Bishop Eq. 9.23) and log p(x_n);
* M-step (Bishop Eqs. 9.24-9.27) with frequency weights w_n (``sample_weight``, rescaled to mean 1
  over the rows kept; 0 drops a row): N_k = sum_n w_n gamma_nk + 10 eps, mu_k = sum_n w_n gamma_nk
  x_n / N_k, Sigma_k = sum_n w_n gamma_nk (x_n - mu_k)(x_n - mu_k)^T / N_k + reg_covar I,
  pi_k = N_k / sum_j N_j.  ``covariance_type`` constrains Sigma_k as scikit-learn does:
  ``"diag"`` keeps the diagonal, ``"spherical"`` the mean of the diagonal times I, ``"tied"``
  one matrix sum_k N_k Sigma_k / sum_k N_k shared by all components (each + reg_covar I);
* convergence, scikit-learn's criterion: the change of the (weighted) mean log-likelihood
  sum_n w_n log p(x_n) / sum_n w_n between two iterations is below ``tol``; the parameters kept
  are those of the last M-step.

These are the updates of scikit-learn's ``GaussianMixture`` (same initialisation, same
regulariser, same stopping rule), so its fits are the reference of the tests
(tests/test_gmm_batched.py); computing them for all replicates in a few stacked numpy calls
avoids scikit-learn's per-call validation, which dominated the cost of thousands of tiny fits.

Per-replicate independence
--------------------------
Each replicate is initialised from its own FIT stream: one integer drawn from the stream seeds a
k-means++ seeding (``kmeans_plusplus`` below: scikit-learn's algorithm and random draws, batched),
as scikit-learn's ``GaussianMixture(init_params="k-means++", random_state=that integer)`` does.
Each replicate leaves the batch (its parameters frozen) at the
iteration where it converges.  Every operation acts on one replicate's slice (stacked matrix
products, reductions over the row or component axes of that replicate), so a replicate's
parameters are bit-identical whether it is fitted alone, in a batch of 10 000, or in any subset
(tested), hence independent of jobs, executors and resume.

Degenerate data are results, never exceptions: ``status_`` is ``"merged_components"`` when a
replicate has fewer distinct rows than components (it is fitted with as many components as
distinct rows; the others get weight 0), ``"not_converged"`` after ``max_iter`` iterations,
``"fit_failed"`` when it has no row of positive weight, ``"non_finite"`` for non-finite rows or
parameters, ``"singular_covariance"`` when a covariance is not positive definite even with
``reg_covar`` (data on a scale where reg_covar is lost to rounding).  In those last three cases the
replicate keeps its previous fitted mixture (NaN before the first successful fit).  A component
that collapses onto one point or a zero-variance direction is floored by ``reg_covar``.

scikit-learn's ``GaussianMixture.sample`` draws from ``self.random_state``: with an integer seed
every call returns the same samples, so a feedback loop would resample identical data each
iteration (DESIGN.md; scikit-learn issue #10539).  Here ``sample`` draws components and noise from
each replicate's SAMPLE stream.
"""

from __future__ import annotations

import numpy as np

from .base import STATUS_OK

__all__ = ["GaussianMixture", "kmeans_plusplus"]

LOG_2PI = float(np.log(2 * np.pi))
EPS10 = 10 * np.finfo(float).eps  #: added to each component's weight sum (as scikit-learn)
COVARIANCE_TYPES = ("full", "diag", "spherical", "tied")
INIT_PARAMS = ("k-means++", "random_from_data")


class GaussianMixture:
    """Gaussian mixture over R replicates, fitted by batched EM (module docstring).

    Parameters
    ----------
    n_components : int
        K, the mixture components.
    covariance_type : {"full", "diag", "spherical", "tied"}
    reg_covar : float
        Added to the covariance diagonals (scikit-learn's regulariser; keeps a collapsing
        component fittable -- its size is then the floor of the variance), in squared data units.
    max_iter : int
        EM iterations per fit.
    tol : float
        Convergence threshold on the change of the mean log-likelihood (nats per row).
    init_params : {"k-means++", "random_from_data"}
        Initial means: a k-means++ seeding (``kmeans_plusplus``, weighted by
        ``sample_weight``) or K distinct rows drawn at random; each initial component is that
        one row with covariance reg_covar I (scikit-learn's initialisation for both).
    chunk_size : int
        At most about this many (replicate, component, row, feature) numbers are held at once:
        replicates are fitted and scored in blocks of that size (results do not depend on it).

    Attributes
    ----------
    weights_ : ndarray of shape (R, K)
        Mixing weights; 0 for the components a ``"merged_components"`` replicate lacks.
    means_ : ndarray of shape (R, K, d)
    covariances_ : ndarray of shape (R, K, d, d)
        Full matrices whatever ``covariance_type``.
    precisions_cholesky_ : ndarray of shape (R, K, d, d)
        Upper-triangular P with P P^T = covariance^-1 (scikit-learn's convention).
    roots_ : ndarray of shape (R, K, d, d)
        Lower Cholesky factors of the covariances (for sampling).
    n_components_ : ndarray of shape (R,) of int
        Components actually fitted (fewer than K when the replicate has fewer distinct rows).
    n_iter_ : ndarray of shape (R,) of int; lower_bound_ : ndarray of shape (R,)
        EM iterations run and the last mean log-likelihood (nats per row).
    status_ : ndarray of shape (R,) of str
        ``"ok"``, ``"merged_components"``, ``"not_converged"``, ``"fit_failed"``,
        ``"non_finite"`` or ``"singular_covariance"`` (module docstring).

    Raises
    ------
    ValueError
        A parameter out of range (one line naming it); in ``fit``, X not of shape (R, n, d) or
        not one generator per replicate.  Degenerate data never raise (``status_``).
    """

    #: what the family models (``families.plugin``)
    data_kind = "vector"
    #: advances all replicates at once (the batched protocol, ``families.base``)
    batched = True
    supports_sample_weight = True

    def __init__(self, *, n_components: int = 3, covariance_type: str = "full",
                 reg_covar: float = 1e-6, max_iter: int = 100, tol: float = 1e-3,
                 init_params: str = "k-means++", chunk_size: int = 2_000_000) -> None:
        for name, value, low in (("n_components", n_components, 1), ("max_iter", max_iter, 1),
                                 ("reg_covar", reg_covar, 0), ("tol", tol, 0)):
            if not value >= low:
                raise ValueError(f"{name}: expected a number >= {low}, got {value!r}")
        if covariance_type not in COVARIANCE_TYPES:
            raise ValueError(f"covariance_type: expected one of {', '.join(COVARIANCE_TYPES)}, "
                             f"got {covariance_type!r}")
        if init_params not in INIT_PARAMS:
            raise ValueError(f"init_params: expected one of {', '.join(INIT_PARAMS)}, "
                             f"got {init_params!r}")
        self.n_components = int(n_components)
        self.covariance_type = covariance_type
        self.reg_covar = float(reg_covar)
        self.max_iter = int(max_iter)
        self.tol = float(tol)
        self.init_params = init_params
        self.chunk_size = int(chunk_size)

    # -- fit -----------------------------------------------------------------------------------
    def fit(self, X, *, sample_weight=None, rngs) -> "GaussianMixture":
        """EM fit of every replicate.

        Parameters
        ----------
        X : array of shape (R, n, d)
        sample_weight : array of shape (R, n), optional
            Non-negative frequency weights; 0 drops a row.  Default: all 1.
        rngs : sequence of R ``np.random.Generator``
            Each replicate's FIT stream (one integer is drawn from it to seed the initialisation).

        Returns
        -------
        self, with the attributes of the class docstring.
        """
        X = np.asarray(X, dtype=float)
        if X.ndim != 3:
            raise ValueError(f"X: expected shape (R, n, d), got {X.shape}")
        R, n, d = X.shape
        K = self.n_components
        w = (np.ones((R, n)) if sample_weight is None
             else np.asarray(sample_weight, dtype=float).reshape(R, n))
        if len(rngs) != R:
            raise ValueError(f"rngs: expected {R} generators (one per replicate), got {len(rngs)}")
        self._keep_previous(R, K, d)
        status = np.full(R, STATUS_OK, dtype=object)
        kept = w > 0
        finite = np.isfinite(X).all(-1)
        bad = (kept & ~finite).any(1) | ~np.isfinite(w).all(1)

        # one integer per replicate from its FIT stream seeds the initialisation (drawn for every
        # replicate, failed or not: scikit-learn's GaussianMixture(random_state=that integer)
        # starts from the same means)
        ints = np.array([g.integers(2**31 - 1) for g in rngs], dtype=np.int64)
        status[bad] = "non_finite"
        status[~bad & ~kept.any(1)] = "fit_failed"
        X = np.where(kept[..., None], X, 0.0)  # a dropped row cannot contribute NaN * 0
        n_comp = np.where(status == STATUS_OK, K, 0)
        seeds = np.zeros((R, K), dtype=np.intp)  # row indices of the initial means
        live = np.flatnonzero(n_comp > 0)
        if len(live):
            seeds[live] = self._initial_rows(X[live], np.where(kept[live], w[live], 0.0), K,
                                             ints[live])
            # fewer than K distinct rows (rare): only then count them, and seed k of them
            chosen = np.take_along_axis(X[live], seeds[live, :, None], axis=1)    # (L, K, d)
            same = (chosen[:, :, None, :] == chosen[:, None, :, :]).all(-1)
            for i in np.flatnonzero(same.sum((1, 2)) > K):
                r = live[i]
                k = min(K, len(np.unique(X[r, kept[r]], axis=0)))
                if k < K:
                    n_comp[r] = k
                    status[r] = "merged_components"
                    seeds[r] = 0
                    seeds[r, :k] = self._initial_rows(X[r:r + 1], np.where(kept[r], w[r], 0.0)
                                                       [None], k, ints[r:r + 1])[0]
        todo = n_comp > 0
        for k in np.unique(n_comp[todo]):
            group = np.flatnonzero(todo & (n_comp == k))
            per = max(1, k * n * d)
            block = max(1, self.chunk_size // per)
            for b0 in range(0, len(group), block):
                idx = group[b0:b0 + block]
                self._fit_block(X[idx], w[idx], kept[idx], seeds[idx, :k], idx, status)
        self.status_ = status
        self.n_components_ = n_comp
        return self

    def _initial_rows(self, X: np.ndarray, w: np.ndarray, k: int, ints: np.ndarray
                      ) -> np.ndarray:
        """Row indices (A, k) of the initial means of A replicates: X (A, n, d), weights (A, n)
        (0 for a dropped row), one integer seed per replicate."""
        if self.init_params == "random_from_data":
            out = np.empty((len(X), k), dtype=np.intp)
            for i, seed in enumerate(ints):
                rows = np.flatnonzero(w[i] > 0)
                out[i] = rows[np.random.RandomState(seed).choice(len(rows), size=k,
                                                                 replace=False)]
            return out
        return kmeans_plusplus(X, w, k, ints)

    def _keep_previous(self, R: int, K: int, d: int) -> None:
        """Make sure the fitted arrays exist with shape (R, K, ...) (NaN before a first fit):
        a replicate whose fit fails keeps its previous mixture."""
        shapes = {"weights_": (R, K), "means_": (R, K, d), "covariances_": (R, K, d, d),
                  "precisions_cholesky_": (R, K, d, d), "roots_": (R, K, d, d)}
        if not all(getattr(self, a, np.empty(0)).shape == s for a, s in shapes.items()):
            for a, s in shapes.items():
                setattr(self, a, np.full(s, np.nan))
            self.n_iter_ = np.zeros(R, dtype=np.intp)
            self.lower_bound_ = np.full(R, np.nan)
        else:  # new arrays: a previous get_state() must not change
            for a in shapes:
                setattr(self, a, np.array(getattr(self, a)))
            self.n_iter_ = np.array(self.n_iter_)
            self.lower_bound_ = np.array(self.lower_bound_)

    def _fit_block(self, X, w, kept, seeds, idx, status) -> None:
        """EM on a block of replicates with k = seeds.shape[1] components each; writes the
        results of replicate idx[i] into row idx[i] of the fitted arrays and ``status``."""
        A, n, d = X.shape
        k = seeds.shape[1]
        w = w * (kept.sum(1) / w.sum(1))[:, None]  # mean 1 over the rows kept
        eye = np.eye(d)
        # scikit-learn's initialisation: component j is row seeds[j] alone (covariance reg I)
        means = np.take_along_axis(X, seeds[..., None], axis=1)                   # (A, k, d)
        cov = np.broadcast_to(self.reg_covar * eye, (A, k, d, d)).copy()
        if self.covariance_type == "tied":  # scikit-learn's tied estimate assumes that every
            # row's responsibilities sum to 1, which the initial one-hot ones do not: it starts
            # from (sum_n w_n x_n x_n^T - sum_k N_k mu_k mu_k^T) / sum_k N_k + reg I
            nk = 1 + EPS10
            second = np.swapaxes(X * w[..., None], 1, 2) @ X - nk * (np.swapaxes(means, 1, 2)
                                                                     @ means)
            cov += (second / (k * nk))[:, None]
        log_weights = np.broadcast_to(np.log((1 + EPS10) / kept.sum(1))[:, None], (A, k)).copy()
        prec, root, ok = _precision_cholesky(cov)
        status[idx[~ok]] = "singular_covariance"  # reg_covar too small for the data's scale
        Xt = np.ascontiguousarray(np.swapaxes(X, 1, 2))                            # (A, d, n)
        unit = bool((w == 1).all())
        active = np.flatnonzero(ok)
        means, prec, log_weights = means[ok], prec[ok], log_weights[ok]
        lower = np.full(len(active), -np.inf)
        if not len(active):
            return
        with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
            for it in range(1, self.max_iter + 1):
                if len(active) == A:
                    Xa, Xta, wa = X, Xt, w
                else:
                    Xa, Xta, wa = X[active], Xt[active], w[active]
                log_norm, log_resp = _e_step(Xta, means, prec, log_weights)
                if unit:  # all weights 1: the same numbers without the products by 1
                    current = log_norm.sum(1) / n
                else:
                    current = (wa * log_norm).sum(1) / wa.sum(1)
                weights, means, cov = self._m_step(Xa, Xta, None if unit else wa,
                                                   np.exp(log_resp))
                log_weights = np.log(weights)
                prec, root, ok = _precision_cholesky(cov)
                finite = (np.isfinite(current) & np.isfinite(means).all((1, 2))
                          & np.isfinite(cov).all((1, 2, 3)))
                converged = np.abs(current - lower) < self.tol
                done = converged | ~finite | ~ok | (it == self.max_iter)
                if not done.any():
                    lower = current
                    continue
                for i in np.flatnonzero(done):
                    r = idx[active[i]]
                    self.n_iter_[r], self.lower_bound_[r] = it, current[i]
                    if not finite[i]:
                        status[r] = "non_finite"
                    elif not ok[i]:
                        status[r] = "singular_covariance"
                    else:
                        if not converged[i] and status[r] == STATUS_OK:
                            status[r] = "not_converged"
                        self._store(r, k, weights[i], means[i], cov[i], prec[i], root[i])
                stay = ~done
                active = active[stay]
                if not len(active):
                    break
                means, prec, log_weights = means[stay], prec[stay], log_weights[stay]
                lower = current[stay]

    def _store(self, r, k, weights, means, cov, prec, root) -> None:
        """Replicate r's fitted mixture; components k..K-1 (absent) get weight 0, the mean of the
        present ones and covariance I (finite, never drawn)."""
        d = means.shape[-1]
        self.weights_[r] = 0.0
        self.weights_[r, :k] = weights
        self.means_[r] = weights @ means if k else 0.0
        self.means_[r, :k] = means
        self.covariances_[r] = np.eye(d)
        self.covariances_[r, :k] = cov
        self.precisions_cholesky_[r] = np.eye(d)
        self.precisions_cholesky_[r, :k] = prec
        self.roots_[r] = np.eye(d)
        self.roots_[r, :k] = root

    def _m_step(self, X, Xt, w, resp):
        """Weighted M-step: X (A, n, d) and its transpose Xt (A, d, n), w (A, n),
        responsibilities (A, k, n) -> weights (A, k), means (A, k, d), covariances (A, k, d, d)
        (module docstring).  ``w`` None: all weights 1."""
        if w is not None:
            resp = resp * w[:, None, :]
        nk = resp.sum(-1) + EPS10                                                  # (A, k)
        means = (resp @ X) / nk[..., None]                                         # (A, k, d)
        # rows along the last axis: the broadcast arithmetic runs over n, not over d
        diff = Xt[:, None, :, :] - means[..., None]                                # (A, k, d, n)
        scatter = (diff * resp[:, :, None, :]) @ np.swapaxes(diff, -1, -2)         # (A, k, d, d)
        d = X.shape[-1]
        kind = self.covariance_type
        if kind == "full":
            cov = scatter / nk[..., None, None]
        elif kind == "tied":
            tied = scatter.sum(1) / nk.sum(1)[:, None, None]
            cov = np.broadcast_to(tied[:, None], scatter.shape).copy()
        else:
            var = np.diagonal(scatter, axis1=-2, axis2=-1) / nk[..., None]         # (A, k, d)
            if kind == "spherical":
                var = np.broadcast_to(var.mean(-1, keepdims=True), var.shape)
            cov = var[..., None] * np.eye(d)
        diag = np.arange(d)
        cov[..., diag, diag] += self.reg_covar
        return nk / nk.sum(1, keepdims=True), means, cov

    # -- checkpoints (families.base) ---------------------------------------------------------
    _STATE = ("weights_", "means_", "covariances_", "precisions_cholesky_", "roots_",
              "n_components_", "n_iter_", "lower_bound_")

    def get_state(self) -> dict[str, np.ndarray]:
        """The fitted state (exact round trip with ``set_state``): the arrays of the class
        docstring and ``status_`` (as str)."""
        state = {a: np.asarray(getattr(self, a)) for a in self._STATE}
        state["status_"] = np.asarray(self.status_).astype(str)
        return state

    def set_state(self, state: dict[str, np.ndarray]) -> "GaussianMixture":
        """Restore ``get_state()`` into this (fresh) object; returns self."""
        for a in self._STATE:
            setattr(self, a, np.array(state[a]))
        self.status_ = np.asarray(state["status_"]).astype(object)
        return self

    # -- protocol ------------------------------------------------------------------------------
    def sample(self, n_samples: int, *, rngs) -> np.ndarray:
        """Draw (R, n_samples, d): per replicate, components by ``weights_`` then Gaussian noise,
        both from that replicate's stream.  A replicate without a fitted mixture gives NaN."""
        R, K, d = self.means_.shape
        comp = np.zeros((R, n_samples), dtype=np.intp)
        z = np.empty((R, n_samples, d))
        fitted = np.isfinite(self.weights_).all(1)
        for r, g in enumerate(rngs):
            if fitted[r]:
                comp[r] = g.choice(K, size=n_samples, p=self.weights_[r])
            z[r] = g.standard_normal((n_samples, d))
        rows = np.arange(R)[:, None]
        out = self.means_[rows, comp] + (self.roots_[rows, comp] @ z[..., None])[..., 0]
        out[~fitted] = np.nan
        return out

    def score_samples(self, X) -> np.ndarray:
        """Log-density of each replicate's mixture, (R, m, d) -> (R, m), nats (NaN for a
        replicate without a fitted mixture)."""
        X = np.asarray(X, dtype=float)
        R, m, d = X.shape
        K = self.means_.shape[1]
        out = np.empty((R, m))
        block = max(1, self.chunk_size // max(1, K * m * d))
        with np.errstate(divide="ignore"):
            log_weights = np.log(self.weights_)
        for r0 in range(0, R, block):
            part = slice(r0, r0 + block)
            out[part] = _e_step(np.swapaxes(X[part], 1, 2), self.means_[part],
                                self.precisions_cholesky_[part],
                                log_weights[part], resp=False)
        return out

    def covariance(self) -> np.ndarray:
        """Covariance of each replicate's mixture (law of total covariance), (R, d, d)."""
        w = self.weights_
        mean = (w[:, None, :] @ self.means_)[:, 0]                                  # (R, d)
        centred = self.means_ - mean[:, None, :]
        within = (w[..., None, None] * self.covariances_).sum(1)
        between = np.swapaxes(centred * w[..., None], 1, 2) @ centred
        return within + between


def kmeans_plusplus(X: np.ndarray, w: np.ndarray, k: int, seeds) -> np.ndarray:
    """k-means++ seeding (Arthur & Vassilvitskii 2007) of A replicates at once, "greedy" as in
    scikit-learn (2 + int(log k) candidates per centre, the one lowering the weighted potential
    most is kept).

    Replicate i draws its uniforms from ``np.random.RandomState(seeds[i])`` in the order of
    ``sklearn.cluster.kmeans_plusplus(X[i], k, sample_weight=w[i], random_state=seeds[i])``, and
    computes the same squared distances (-2 x.c + |c|^2 + |x|^2, clipped at 0), so both choose
    the same rows (tested); rows of weight 0 are never chosen.

    Parameters
    ----------
    X : ndarray of shape (A, n, d); w : ndarray of shape (A, n), non-negative, each row with a
        positive entry; k : int; seeds : sequence of A int

    Returns
    -------
    ndarray of shape (A, k) of int: the chosen rows.
    """
    A, n, d = X.shape
    trials = 2 + int(np.log(k))
    u = np.stack([np.random.RandomState(int(s)).random_sample(1 + (k - 1) * trials)
                  for s in seeds])
    out = np.empty((A, k), dtype=np.intp)
    rows = np.arange(A)
    xx = (X * X).sum(-1)                                                              # (A, n)
    cdf = np.cumsum(w / w.sum(1, keepdims=True), axis=1)
    cdf /= cdf[:, -1:]
    out[:, 0] = np.minimum((cdf <= u[:, :1]).sum(1), n - 1)  # RandomState.choice(n, p=...)

    def distances(idx):  # (A, m) row indices -> squared distances (A, m, n)
        centres = X[rows[:, None], idx]                                               # (A, m, d)
        dist = -2 * (centres @ np.swapaxes(X, 1, 2))
        dist += xx[rows[:, None], idx][..., None]
        dist += xx[:, None, :]
        return np.maximum(dist, 0.0)

    closest = distances(out[:, :1])[:, 0]                                             # (A, n)
    potential = (closest * w).sum(1)
    for c in range(1, k):
        targets = u[:, 1 + (c - 1) * trials:1 + c * trials] * potential[:, None]      # (A, t)
        cum = np.cumsum(w * closest, axis=1)
        candidates = np.minimum((cum[:, None, :] < targets[:, :, None]).sum(-1), n - 1)
        dist = np.minimum(closest[:, None, :], distances(candidates))                 # (A, t, n)
        pots = (dist * w[:, None, :]).sum(-1)                                         # (A, t)
        best = pots.argmin(1)
        closest, potential = dist[rows, best], pots[rows, best]
        out[:, c] = candidates[rows, best]
    return out


def _precision_cholesky(cov: np.ndarray):
    """(A, k, d, d) covariances -> precision Cholesky P (upper, P P^T = cov^-1), the lower
    Cholesky factor L of cov, and ok (A,): every factorisation of the replicate succeeded."""
    A, k, d, _ = cov.shape
    ok = np.isfinite(cov).all((1, 2, 3))
    if not ok.all():
        cov = np.where(ok[:, None, None, None], cov, np.eye(d))
    try:
        root = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:  # rare: find the replicates whose matrices fail, one by one
        root = np.empty_like(cov)
        for i in range(A):
            try:
                root[i] = np.linalg.cholesky(cov[i])
            except np.linalg.LinAlgError:
                ok[i] = False
                root[i] = np.eye(d)
    prec = np.swapaxes(np.linalg.inv(root), -1, -2)
    return prec, root, ok


def _e_step(Xt, means, prec, log_weights, resp: bool = True):
    """Xt (A, d, n) (the rows along the last axis), means (A, k, d), precision Cholesky factors
    (A, k, d, d), log weights (A, k) -> log p(x_n) (A, n) and, with ``resp``, the log
    responsibilities (A, k, n)."""
    d = Xt.shape[1]
    log_det = np.log(np.diagonal(prec, axis1=-2, axis2=-1)).sum(-1)                # (A, k)
    prec_t = np.swapaxes(prec, -1, -2)
    y = prec_t @ Xt[:, None, :, :]                                                 # (A, k, d, n)
    y -= prec_t @ means[..., None]
    y *= y
    log_prob = y.sum(2)                                                            # (A, k, n)
    log_prob += d * LOG_2PI
    log_prob *= -0.5
    log_prob += (log_det + log_weights)[..., None]
    top = log_prob.max(1)                                                          # (A, n)
    top = np.where(np.isfinite(top), top, 0.0)
    log_norm = np.log(np.exp(log_prob - top[:, None, :]).sum(1)) + top
    if not resp:
        return log_norm
    log_prob -= log_norm[:, None, :]
    return log_norm, log_prob
