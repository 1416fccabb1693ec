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

    def __init__(self, *, n_components: int = 3, covariance_type: str = "full",
                 reg_covar: float = 1e-6, max_iter: int = 100,
                 init_params: str = "k-means++") -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.init_params = init_params

    def fit(self, X, *, sample_weight=None, rng) -> "GaussianMixture":
        if sample_weight is not None and not np.allclose(sample_weight, sample_weight[0]):
            raise ValueError("gmm does not support unequal sample weights")
        X = np.asarray(X, dtype=float)
        k = min(self.n_components, len(np.unique(X, axis=0)))
        model = _SkGaussianMixture(
            n_components=max(k, 1), covariance_type=self.covariance_type, reg_covar=self.reg_covar,
            max_iter=self.max_iter, init_params=self.init_params,
            random_state=int(rng.integers(2**31 - 1)),
        )
        with warnings.catch_warnings():  # non-convergence is recorded in status_, not printed
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X)
        self._model = model
        d = X.shape[1]
        cov = model.covariances_
        if self.covariance_type == "tied":
            cov = np.broadcast_to(cov, (model.n_components, d, d))
        elif self.covariance_type == "diag":
            cov = np.stack([np.diag(c) for c in cov])
        elif self.covariance_type == "spherical":
            cov = cov[:, None, None] * np.eye(d)
        self.weights_, self.means_, self.covariances_ = model.weights_, model.means_, np.array(cov)
        self._roots = np.linalg.cholesky(self.covariances_)
        if k < self.n_components:
            self.status_ = "merged_components"  # fewer distinct points than components
        elif not model.converged_:
            self.status_ = "not_converged"
        else:
            self.status_ = STATUS_OK
        return self

    # -- checkpoints (families.base) ---------------------------------------------------------
    _SK_FITTED = ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_",
                  "converged_", "n_iter_", "lower_bound_", "n_features_in_")

    def get_state(self) -> dict[str, np.ndarray]:
        """The fitted state (exact round trip with ``set_state``): the mixture (``weights_``
        (k,), ``means_`` (k, d), ``covariances_`` (k, d, d)), ``status_``, and scikit-learn's
        fitted attributes (``sk.<name>``, in scikit-learn's shapes for ``covariance_type``), and the
        Cholesky factors ``roots`` (k, d, d) used by ``sample``."""
        state = {"weights_": self.weights_, "means_": self.means_,
                 "covariances_": self.covariances_, "roots": self._roots,
                 "status_": np.array(self.status_)}
        state.update({f"sk.{k}": np.asarray(getattr(self._model, k)) for k in self._SK_FITTED
                      if hasattr(self._model, k)})
        return state

    def set_state(self, state: dict[str, np.ndarray]) -> "GaussianMixture":
        """Restore ``get_state()`` into this (fresh) object; returns self."""
        self.weights_, self.means_ = state["weights_"], state["means_"]
        self.covariances_ = state["covariances_"]
        self._roots = state["roots"]
        self.status_ = str(state["status_"])
        model = _SkGaussianMixture(n_components=len(self.weights_),
                                   covariance_type=self.covariance_type, reg_covar=self.reg_covar,
                                   max_iter=self.max_iter, init_params=self.init_params)
        for key in self._SK_FITTED:
            if f"sk.{key}" in state:
                value = state[f"sk.{key}"]
                setattr(model, key, value.item() if value.ndim == 0 else value)
        self._model = model
        return self

    def sample(self, n_samples: int, *, rng) -> np.ndarray:
        comp = rng.choice(len(self.weights_), size=n_samples, p=self.weights_)
        z = rng.standard_normal((n_samples, self.means_.shape[1]))
        return self.means_[comp] + np.einsum("nde,ne->nd", self._roots[comp], z)

    def score_samples(self, X) -> np.ndarray:
        return self._model.score_samples(X)

    def covariance(self) -> np.ndarray:
        """Covariance of the mixture (law of total covariance), (d, d)."""
        mean = self.weights_ @ self.means_
        centred = self.means_ - mean
        return np.einsum("k,kde->de", self.weights_, self.covariances_) + np.einsum(
            "k,kd,ke->de", self.weights_, centred, centred)
