"""Gaussian mixture fitted by scikit-learn's EM; sampled from our own streams.

scikit-learn's ``GaussianMixture.sample`` draws from ``self.random_state``: with an integer seed
every call returns the same samples, so a feedback loop would resample identical data each
iteration (DESIGN.md; scikit-learn issue #10539).  Here EM initialisation gets a seed drawn from
the replicate's FIT stream, and ``sample`` draws components and noise from the SAMPLE stream.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as _SkGaussianMixture

from .base import STATUS_OK

__all__ = ["GaussianMixture"]


class GaussianMixture:
    """A single-replicate ``GenerativeModel`` (wrap with ``PerReplicate`` to batch).

    Parameters
    ----------
    n_components : int
    covariance_type : {"full", "diag", "spherical", "tied"}
    reg_covar : float
        Added to the covariance diagonals (scikit-learn's regulariser; keeps a collapsing
        component fittable -- its size is then the floor of the variance).
    max_iter : int
    init_params : str
        scikit-learn's EM initialisation; default ``"k-means++"`` (seeding only, ~10x faster than
        a full k-means run per fit, which matters when thousands of fits run in a loop).

    Attributes
    ----------
    weights_ (k,), means_ (k, d), covariances_ (k, d, d), status_ : str
    """

    #: what the family models (``families.plugin``)
    data_kind = "vector"

    def __init__(self, *, n_components: int = 3, covariance_type: str = "full",
                 reg_covar: float = 1e-6, max_iter: int = 100,
                 init_params: str = "k-means++") -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.init_params = init_params

    def fit(self, X, *, sample_weight=None, rng) -> "GaussianMixture":
        """EM fit; unequal ``sample_weight`` (n,) -- 0 drops a row -- refines scikit-learn's
        unweighted fit of the rows with positive weight by weighted EM (``_weighted_em``)."""
        X = np.asarray(X, dtype=float)
        weighted = False
        if sample_weight is not None:
            w = np.asarray(sample_weight, dtype=float)
            X, w = X[w > 0], w[w > 0]
            weighted = len(w) > 0 and not np.allclose(w, w[0])
            if weighted and self.covariance_type != "full":
                raise ValueError("gmm: unequal sample weights need covariance_type 'full'")
        k = min(self.n_components, len(np.unique(X, axis=0)))
        model = _SkGaussianMixture(
            n_components=max(k, 1), covariance_type=self.covariance_type, reg_covar=self.reg_covar,
            max_iter=self.max_iter, init_params=self.init_params,
            random_state=int(rng.integers(2**31 - 1)),
        )
        with warnings.catch_warnings():  # non-convergence is recorded in status_, not printed
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X)
        d = X.shape[1]
        cov = model.covariances_
        if self.covariance_type == "tied":
            cov = np.broadcast_to(cov, (model.n_components, d, d))
        elif self.covariance_type == "diag":
            cov = np.stack([np.diag(c) for c in cov])
        elif self.covariance_type == "spherical":
            cov = cov[:, None, None] * np.eye(d)
        self.weights_, self.means_, self.covariances_ = model.weights_, model.means_, np.array(cov)
        converged = model.converged_
        if weighted:
            converged = self._weighted_em(X, w / w.mean())
        self._roots = np.linalg.cholesky(self.covariances_)
        if k < self.n_components:
            self.status_ = "merged_components"  # fewer distinct points than components
        elif not converged:
            self.status_ = "not_converged"
        else:
            self.status_ = STATUS_OK
        return self

    # -- checkpoints (families.base) ---------------------------------------------------------
    def get_state(self) -> dict[str, np.ndarray]:
        """The fitted state (exact round trip with ``set_state``): the mixture (``weights_``
        (k,), ``means_`` (k, d), ``covariances_`` (k, d, d)), ``status_`` and the Cholesky
        factors ``roots`` (k, d, d) that ``sample`` and ``score_samples`` use."""
        return {"weights_": self.weights_, "means_": self.means_,
                "covariances_": self.covariances_, "roots": self._roots,
                "status_": np.array(self.status_)}

    def set_state(self, state: dict[str, np.ndarray]) -> "GaussianMixture":
        """Restore ``get_state()`` into this (fresh) object; returns self."""
        self.weights_, self.means_ = state["weights_"], state["means_"]
        self.covariances_ = state["covariances_"]
        self._roots = state["roots"]
        self.status_ = str(state["status_"])
        return self

    def sample(self, n_samples: int, *, rng) -> np.ndarray:
        comp = rng.choice(len(self.weights_), size=n_samples, p=self.weights_)
        z = rng.standard_normal((n_samples, self.means_.shape[1]))
        return self.means_[comp] + np.einsum("nde,ne->nd", self._roots[comp], z)

    def _log_joint(self, X: np.ndarray, roots: np.ndarray) -> np.ndarray:
        """log weight_k + log N(x | mean_k, covariance_k), (n, d) -> (n, k), nats."""
        d = X.shape[1]
        out = np.empty((len(X), len(self.weights_)))
        for k, (mean, root) in enumerate(zip(self.means_, roots)):
            z = np.linalg.solve(root, (X - mean).T)                        # (d, n)
            log_det = 2 * np.log(np.diag(root)).sum()
            out[:, k] = (np.log(self.weights_[k]) - 0.5 * (z**2).sum(0)
                         - 0.5 * (log_det + d * np.log(2 * np.pi)))
        return out

    def _weighted_em(self, X: np.ndarray, w: np.ndarray, tol: float = 1e-3) -> bool:
        """Weighted EM from the current parameters (Dempster, Laird & Rubin 1977; frequency
        weights w (n,) with mean 1): the M-step's sums are weighted.  Returns convergence of the
        weighted mean log-likelihood within ``tol`` (scikit-learn's criterion)."""
        from scipy.special import logsumexp

        previous = -np.inf
        eye = np.eye(X.shape[1])
        for _ in range(self.max_iter):
            log_joint = self._log_joint(X, np.linalg.cholesky(self.covariances_))
            norm = logsumexp(log_joint, axis=1)                             # (n,)
            resp = np.exp(log_joint - norm[:, None]) * w[:, None]           # (n, k)
            nk = resp.sum(0) + 10 * np.finfo(float).eps
            self.weights_ = nk / nk.sum()
            self.means_ = resp.T @ X / nk[:, None]
            centred = X[:, None, :] - self.means_[None]                     # (n, k, d)
            self.covariances_ = (np.einsum("nk,nkd,nke->kde", resp, centred, centred)
                                 / nk[:, None, None] + self.reg_covar * eye)
            current = (w * norm).sum() / w.sum()
            if abs(current - previous) < tol:
                return True
            previous = current
        return False

    def score_samples(self, X) -> np.ndarray:
        """Log-density of the mixture, (n, d) -> (n,), nats."""
        from scipy.special import logsumexp

        return logsumexp(self._log_joint(np.asarray(X, dtype=float), self._roots), axis=1)

    def covariance(self) -> np.ndarray:
        """Covariance of the mixture (law of total covariance), (d, d)."""
        mean = self.weights_ @ self.means_
        centred = self.means_ - mean
        return np.einsum("k,kde->de", self.weights_, self.covariances_) + np.einsum(
            "k,kd,ke->de", self.weights_, centred, centred)
