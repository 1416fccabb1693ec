"""Your own model: scikit-learn's BayesianGaussianMixture as a modelcollapse family.

A family is any class with three methods (``modelcollapse.families.base``)::

    fit(X, *, rng) -> self                 # X: (n_samples, n_features); add sample_weight=None
                                           # to the signature if your model honours weights
    sample(n_samples, *, rng) -> ndarray   # (n_samples, n_features), drawn from ``rng`` only
    score_samples(X) -> ndarray            # (n_samples,) log-density in nats

A study names it by import path, ``family: byo_sklearn_model:BayesianGMM`` -- resolved from the
study file's folder, then ``sys.path`` (this runs your code).  Run this file to compare replace
with accumulate on examples/own_data.csv, from Python::

    python examples/byo_sklearn_model.py [--out DIR] [--n-seeds 10] [--n-iterations 10]

or the same study from the command line::

    modelcollapse run examples/own_data.yaml --set family=byo_sklearn_model:BayesianGMM
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture


class BayesianGMM:
    """A variational Bayesian Gaussian mixture (scikit-learn), sampled from our generator.

    scikit-learn's own ``sample`` draws from the estimator's ``random_state``; a feedback loop
    must draw from the ``rng`` it is given, or every iteration would resample the same points.
    Its ``fit`` has no ``sample_weight``, so weighting curation is refused for it.
    """

    def __init__(self, n_components: int = 5, weight_concentration_prior: float | None = None,
                 max_iter: int = 200) -> None:
        self.n_components = n_components
        self.weight_concentration_prior = weight_concentration_prior
        self.max_iter = max_iter

    def fit(self, X: np.ndarray, *, rng: np.random.Generator) -> "BayesianGMM":
        self.model_ = BayesianGaussianMixture(
            n_components=self.n_components, max_iter=self.max_iter,
            weight_concentration_prior=self.weight_concentration_prior,
            random_state=int(rng.integers(2**31 - 1)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.model_.fit(X)
        return self

    def sample(self, n_samples: int, *, rng: np.random.Generator) -> np.ndarray:
        m = self.model_
        weights = m.weights_ / m.weights_.sum()
        component = rng.choice(len(weights), size=n_samples, p=weights)
        roots = np.linalg.cholesky(m.covariances_)           # (k, d, d), full covariances
        z = rng.standard_normal((n_samples, m.means_.shape[1]))
        return m.means_[component] + np.einsum("nij,nj->ni", roots[component], z)

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        return self.model_.score_samples(X)


def main() -> None:
    import modelcollapse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="run directory (default runs/byo-sklearn)")
    parser.add_argument("--n-seeds", type=int, default=10)
    parser.add_argument("--n-iterations", type=int, default=10)
    args = parser.parse_args()
    run = modelcollapse.run({
        "name": "byo-sklearn",
        "task": "density",
        "task_params": {"dataset": str(Path(__file__).with_name("own_data.csv")),
                        "labels": "cultivar"},
        "family": "byo_sklearn_model:BayesianGMM",   # this file, found on sys.path
        "family_params": {"n_components": 3},
        "paradigms": ["replace", "accumulate"],
        "n_seeds": args.n_seeds,
        "n_iterations": args.n_iterations,
    }, out=args.out)
    print(run.summary.to_string(index=False))
    print(run.profile[["paradigm", "definition", "verdict"]].to_string(index=False))
    print(f"report: {run.report()}")


if __name__ == "__main__":
    main()
