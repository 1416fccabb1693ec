"""Denoising diffusion (DDPM, Ho et al. 2020) of 3D molecular conformations, in PyTorch.

One self-contained file.  A small analogue of GeoDiff (Xu et al. 2022, ICLR): a diffusion model
of heavy-atom coordinates conditioned on the molecular graph.

Data rows
---------
A row is one conformer of one molecule, a float vector of length ``1 + 3 A`` (A = the
molecule table's padded atom count)::

    row = [molecule index k, x_1, y_1, z_1, ..., x_A, y_A, z_A]      (angstrom, padding = 0)

``k`` indexes the molecule table given to the constructor (``atoms`` (K, A) atomic numbers,
``bonds`` (K, A, A) bond codes): the graphs are fixed task data, not learned.  Coordinates are
re-centred on the heavy-atom centroid inside the model (the model is translation invariant).

Diffusion (Ho et al. 2020, with the zero-centre-of-mass Gaussian of Hoogeboom et al. 2022, EDM)
------------------------------------------------------------------------------------------------
x = coordinates / ``coord_scale`` (default 1.5 A, about the per-coordinate standard deviation of
the WEHI conformers), restricted to the subspace sum_i x_i = 0 over the n real atoms.  Noise
eps ~ N(0, I) projected onto that subspace (mean over real atoms subtracted), so on each axis
Cov(eps) = I_n - 11^T/n.  T = ``n_steps`` discrete steps with the cosine schedule of Nichol &
Dhariwal 2021 (eq. 17, s = 0.008, beta clipped at 0.999)::

    q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) P)         (Ho et al. eq. 4; P the projection)
    training loss  L = E_{t ~ U{1..T}, eps} [ (1/n) sum_i ||eps_i - eps_theta(x_t, t, G)_i||^2 ]
                                                                 (Ho et al. eq. 14, "L_simple")
    sampling       x0_hat  = clip((x_t - sqrt(1 - abar_t) eps_theta) / sqrt(abar_t)), centred
                   x_{t-1} = sqrt(abar_{t-1}) beta_t / (1 - abar_t) x0_hat
                             + sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t) x_t
                             + sqrt(betatilde_t) z,   z projected N(0, I)
                   (Ho et al. eqs. 6-7 and Alg. 2; betatilde_t = beta_t (1 - abar_{t-1}) /
                   (1 - abar_t), the posterior variance).  Without the clip this is exactly
                   Alg. 2; the clip (to +-``clip_x0`` angstrom, as Ho et al.'s code clips images
                   to [-1, 1]) keeps an imperfect denoiser from blowing up at the last steps,
                   where beta_T = 0.999 amplifies eps errors ~30x.

Train and sample use the same T steps (no step skipping), so CPU-size runs use a small T
(default 50); the schedule adapts to T.

Denoiser: EGNN (Satorras, Hoogeboom & Welling 2021, eqs. 3-6) on the fully connected graph of
the n real atoms of each molecule, with the molecular graph as edge attributes (as GeoDiff's
extended graph: bond type one-hot {none, single, double, triple, aromatic} and topological
distance one-hot {1, 2, 3, >= 4 or disconnected}, E = 9 features)::

    h^0_i   = W_in [onehot(element_i), t / T]                                (V + 1 -> H)
    m_ij    = phi_e(h_i, h_j, ||x_i - x_j||^2, e_ij)                          (2H + 1 + E -> H -> H)
    x_i    <- x_i + 1/(n - 1) sum_{j != i} (x_i - x_j) / (||x_i - x_j|| + 1)
                                             * 2 tanh(phi_x(m_ij))
    h_i    <- h_i + phi_h(h_i, sum_{j != i} m_ij)                            (2H -> H -> H)
    eps_theta = P (x^L - x^0)                                                 (after L layers)

(the normalised difference and the bounded tanh weight are EDM's stabilisation of eq. 4).
eps_theta is E(3) equivariant (rotations, reflections, translations); the loss is E(3)
invariant.  Being reflection
equivariant, the model cannot tell enantiomers apart (nor can a distance-based GeoDiff).

Parameters (``count_parameters(V, hidden, n_layers)``; V elements, H hidden, L layers, E = 9)::

    input     (V + 1) H + H
    per layer phi_e 3H^2 + E H + 3H,  phi_x H^2 + 2H (output has no bias),  phi_h 3H^2 + 2H
    total     (V + 2) H + L (7 H^2 + (E + 7) H)

Score: a loss, not a log-likelihood
-----------------------------------
``score_samples`` returns **minus** the denoising loss of each row (higher is better, like a
log-likelihood): the mean over ``score_timesteps`` fixed timesteps (evenly spaced in 1..T) of
(1/n) sum_i ||eps_i - eps_theta||^2, with the noise drawn once from the fixed seed
``score_seed`` and shared by all rows; units: squared noise norm per atom (dimensionless; 3
(n-1)/n for a predictor that outputs 0).  It plays the role of the "Loss (Test)" of
Gerstgrasser et al. 2024's diffusion experiment (the training objective on held-out data; their
exact definition is not published and GeoDiff's own loss has another scale, so only the shape
of the curves compares), and it is not a bound on the log-likelihood.

Randomness and determinism: as ``families.vae`` (a ``torch.Generator`` seeded from the ``rng``
argument, never the global torch RNG; on CPU ``torch.use_deterministic_algorithms(True)`` and
``num_threads`` threads inside ``fit`` / ``sample`` / ``score_samples``, restored afterwards;
CUDA chosen automatically when available, reproducible only to rounding there).

Feedback loops: ``init`` ``"fresh"`` or ``"warm_start"`` (continue the previous network with a
new Adam optimiser).  ``sample`` draws the molecules of its rows ``"balanced"`` (each distinct
training molecule gets floor(n / K') or ceil(n / K') rows, the extra ones at random; the
molecule set never drifts, as when GeoDiff generates conformers for a fixed molecule list) or
``"empirical"`` (i.i.d. from the training rows' molecules: molecule frequencies drift, and
molecules can disappear, under replace).  A non-finite training loss stops the fit with
``status_ = "non_finite"``.  ``get_state`` / ``set_state`` round-trip the fitted state exactly.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn as nn

from ._torch import (Deterministic, epoch_batches, load_network_state, network_state,
                     planned_steps, uniform_linear_init_)

__all__ = ["ConformerDiffusion", "N_EDGE_FEATURES", "cosine_schedule", "edge_features"]

N_BOND_TYPES = 5       #: none, single, double, triple, aromatic
N_TOPO = 4             #: topological distance 1, 2, 3, >= 4 (or disconnected)
N_EDGE_FEATURES = N_BOND_TYPES + N_TOPO
GRAD_CLIP = 1.0        #: max gradient norm per optimiser step
COORD_RANGE = 2.0      #: bound of an EGNN layer's coordinate-update weight (EDM's tanh)


def cosine_schedule(T: int) -> np.ndarray:
    """betas (T,) of Nichol & Dhariwal 2021 eq. 17 (s = 0.008), clipped at 0.999; beta_t is
    betas[t - 1]."""
    s = 0.008
    steps = np.arange(T + 1, dtype=np.float64) / T
    f = np.cos((steps + s) / (1 + s) * np.pi / 2) ** 2
    abar = f / f[0]
    return np.clip(1.0 - abar[1:] / abar[:-1], 0.0, 0.999)


def edge_features(bonds: np.ndarray) -> np.ndarray:
    """Edge attributes (K, A, A, 9) float32 from bond codes (K, A, A) (0 none .. 4 aromatic):
    one-hot bond type and one-hot topological distance {1, 2, 3, >= 4 / disconnected}
    (shortest paths by Floyd-Warshall)."""
    K, A, _ = bonds.shape
    dist = np.where(bonds > 0, 1.0, np.inf)
    dist[:, np.arange(A), np.arange(A)] = 0.0
    for k in range(A):                                          # Floyd-Warshall, batched
        dist = np.minimum(dist, dist[:, :, k:k + 1] + dist[:, k:k + 1, :])
    topo = np.clip(np.where(np.isfinite(dist), dist, N_TOPO), 1, N_TOPO).astype(np.int64) - 1
    out = np.concatenate([np.eye(N_BOND_TYPES, dtype=np.float32)[np.clip(bonds, 0, 4)],
                          np.eye(N_TOPO, dtype=np.float32)[topo]], axis=-1)
    out[:, np.arange(A), np.arange(A)] = 0.0
    return out


def _centre(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Subtract the mean over real atoms and zero the padding: (B, A, 3), (B, A) -> (B, A, 3)."""
    m = mask.unsqueeze(-1).to(x.dtype)                           # (B, A, 1)
    mean = (x * m).sum(1, keepdim=True) / m.sum(1, keepdim=True).clamp(min=1)
    return (x - mean) * m


class _EGNNLayer(nn.Module):
    def __init__(self, hidden: int, n_edge: int) -> None:
        super().__init__()
        H = hidden
        self.edge = nn.Sequential(nn.Linear(2 * H + 1 + n_edge, H), nn.SiLU(), nn.Linear(H, H),
                                  nn.SiLU())
        self.coord = nn.Sequential(nn.Linear(H, H), nn.SiLU(), nn.Linear(H, 1, bias=False))
        self.node = nn.Sequential(nn.Linear(2 * H, H), nn.SiLU(), nn.Linear(H, H))

    def forward(self, h, x, e, pair, n_atoms):
        # h (B, A, H); x (B, A, 3); e (B, A, A, E); pair (B, A, A, 1) real i != j; n_atoms (B,)
        B, A, H = h.shape
        diff = x.unsqueeze(2) - x.unsqueeze(1)                       # (B, A, A, 3)  x_i - x_j
        r2 = (diff ** 2).sum(-1, keepdim=True)                       # (B, A, A, 1)
        # first edge Linear on [h_i, h_j, r2, e_ij], computed by blocks of its weight (the
        # same function; avoids the (B, A, A, 2H + 1 + E) concatenation)
        first = self.edge[0]
        Wi, Wj, Wr, We = first.weight.split([H, H, 1, e.shape[-1]], dim=1)
        pre = ((h @ Wi.T).unsqueeze(2) + (h @ Wj.T).unsqueeze(1) + r2 * Wr.view(-1)
               + e @ We.T + first.bias)                              # (B, A, A, H)
        m = self.edge[3](self.edge[2](self.edge[1](pre))) * pair     # (B, A, A, H)
        w = COORD_RANGE * torch.tanh(self.coord(m)) * pair           # (B, A, A, 1)
        unit = diff / (torch.sqrt(r2 + 1e-8) + 1.0)                  # (B, A, A, 3)
        denom = (n_atoms - 1).clamp(min=1).to(x.dtype).view(B, 1, 1)
        x = x + (unit * w).sum(2) / denom                            # (B, A, 3)
        h = h + self.node(torch.cat([h, m.sum(2)], -1))              # (B, A, H)
        return h, x


class _Denoiser(nn.Module):
    def __init__(self, n_elements: int, hidden: int, n_layers: int) -> None:
        super().__init__()
        self.embed = nn.Linear(n_elements + 1, hidden)
        self.layers = nn.ModuleList(_EGNNLayer(hidden, N_EDGE_FEATURES) for _ in range(n_layers))

    def forward(self, x, t_frac, onehot, e, mask):
        # x (B, A, 3) noisy, centred; t_frac (B,) = t / T; onehot (B, A, V); e (B, A, A, E);
        # mask (B, A) bool  ->  eps_theta (B, A, 3), centred, zero on padding
        B, A, _ = x.shape
        m = mask.to(x.dtype)
        h = self.embed(torch.cat([onehot, t_frac.view(B, 1, 1).expand(B, A, 1)], -1))
        h = h * m.unsqueeze(-1)                                      # (B, A, H)
        pair = (m.unsqueeze(2) * m.unsqueeze(1)
                * (1 - torch.eye(A, dtype=x.dtype, device=x.device))).unsqueeze(-1)
        n_atoms = mask.sum(1)                                        # (B,)
        x0 = x
        for layer in self.layers:
            h, x = layer(h, x, e, pair, n_atoms)
            h = h * m.unsqueeze(-1)
        return _centre(x - x0, mask)


class ConformerDiffusion:
    """A single-replicate ``GenerativeModel`` of conformer rows (wrap with ``PerReplicate``).

    Parameters
    ----------
    atoms : array of shape (K, A), int
        Atomic numbers of the molecule table, 0 = padding (fixed task data).
    bonds : array of shape (K, A, A), int
        Bond codes 0 none, 1 single, 2 double, 3 triple, 4 aromatic.
    hidden : int
        EGNN hidden width H.
    n_layers : int
        EGNN layers L.
    n_steps : int
        Diffusion steps T, used both in training and in ancestral sampling.
    epochs, batch_size, lr
        Adam training: passes over the training rows per ``fit``, minibatch rows, learning rate.
    ema_decay : float
        0 (default): the fitted network is the last iterate.  Otherwise the fitted network is
        the exponential moving average of the iterates (Ho et al. 2020 use 0.9999), updated
        after every optimiser step, starting from the initial weights of the fit; a warm start
        continues from it.
    train_steps : int or None
        When set (the ``steps`` budget), each ``fit`` runs exactly this many optimiser steps
        (epochs of reshuffled minibatches, the last one cut short) and ``epochs`` is ignored --
        as GeoDiff trains for a fixed number of iterations; it keeps the cost of a fit constant
        while an accumulated pool grows.  None (the ``epochs`` budget): ``epochs`` full passes
        (cost grows with the pool).
    init : {"fresh", "warm_start"}
    molecule_sampling : {"balanced", "empirical"}
        How ``sample`` picks its rows' molecules (module docstring).
    coord_scale : float
        Angstrom per model unit.
    clip_x0 : float
        Angstrom; ancestral sampling clips each coordinate of its estimate of x_0 to +-clip_x0
        (Ho et al.'s ``clip_denoised``; no molecule of <= 14 heavy atoms reaches 10 A from
        its centroid).
    score_timesteps : int
        Timesteps (evenly spaced in 1..T) averaged by ``score_samples``.
    score_seed : int
        Fixed seed of ``score_samples``' noise.
    device : str, optional
        Default "cuda" if available, else "cpu".
    num_threads : int or None
        CPU threads inside fit / sample / score (default 1; None keeps torch's setting).

    Attributes
    ----------
    net_ : torch.nn.Module
    status_ : str
    loss_history_ : list of float
        Mean weighted training loss per epoch (squared noise norm per atom; a last partial
        epoch of ``train_steps`` counts).
    train_steps_ : int
        Optimiser steps the last fit took (fewer than planned after a non-finite loss).
    train_molecules_, train_counts_ : ndarray of int
        The distinct molecules of the last fit's rows and their row counts.

    Raises
    ------
    ValueError
        Bad hyperparameters, or rows whose molecule index is not an integer in [0, K) or whose
        length is not 1 + 3 A.
    """

    #: what the family models (``families.plugin``)
    data_kind = "molecules"

    def __init__(self, atoms, bonds, *, hidden: int = 32, n_layers: int = 3, n_steps: int = 50,
                 epochs: int = 100, train_steps: int | None = None, batch_size: int = 32,
                 lr: float = 5e-3, ema_decay: float = 0.0,
                 init: str = "fresh", molecule_sampling: str = "balanced",
                 coord_scale: float = 1.5, clip_x0: float = 10.0, score_timesteps: int = 10,
                 score_seed: int = 0,
                 device: str | None = None, num_threads: int | None = 1) -> None:
        if init not in ("fresh", "warm_start"):
            raise ValueError(f"init: {init!r}; allowed: 'fresh', 'warm_start'")
        if molecule_sampling not in ("balanced", "empirical"):
            raise ValueError(f"molecule_sampling: {molecule_sampling!r}; allowed: 'balanced', "
                             "'empirical'")
        if n_steps < 2:
            raise ValueError(f"n_steps: {n_steps}; allowed: an integer >= 2")
        if train_steps is not None and train_steps < 1:
            raise ValueError(f"train_steps: {train_steps}; allowed: None or an integer >= 1")
        atoms = np.asarray(atoms)
        bonds = np.asarray(bonds)
        if atoms.ndim != 2 or bonds.shape != atoms.shape + (atoms.shape[1],):
            raise ValueError(f"atoms / bonds: shapes {atoms.shape} / {bonds.shape}; allowed: "
                             "(K, A) and (K, A, A)")
        self.hidden, self.n_layers, self.n_steps = hidden, n_layers, n_steps
        self.epochs, self.batch_size, self.lr, self.init = epochs, batch_size, lr, init
        self.train_steps = train_steps
        if not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"ema_decay: {ema_decay}; allowed: 0 <= ema_decay < 1")
        self.ema_decay = ema_decay
        self.molecule_sampling, self.coord_scale = molecule_sampling, float(coord_scale)
        self.clip_x0 = float(clip_x0) / self.coord_scale              # model units
        self.score_timesteps, self.score_seed = score_timesteps, score_seed
        self.num_threads = num_threads
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.n_molecules, self.n_atoms_max = atoms.shape
        self.elements = np.unique(atoms[atoms > 0])                  # (V,) atomic numbers
        index = np.searchsorted(self.elements, atoms)
        onehot = np.eye(len(self.elements), dtype=np.float32)[np.clip(index, 0, len(
            self.elements) - 1)] * (atoms > 0)[..., None]            # (K, A, V)
        self._onehot = torch.as_tensor(onehot, device=self.device)
        self._edges = torch.as_tensor(edge_features(bonds), device=self.device)  # (K, A, A, E)
        self._mask = torch.as_tensor(atoms > 0, device=self.device)  # (K, A)
        betas = cosine_schedule(n_steps)
        self._betas = betas                                          # (T,) float64
        self._abar = np.cumprod(1.0 - betas)                         # (T,)
        self.net_: _Denoiser | None = None
        self.status_ = "ok"
        self.loss_history_: list[float] = []
        self.train_steps_ = 0
        self.train_molecules_ = np.zeros(0, np.int64)
        self.train_counts_ = np.zeros(0, np.int64)

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def count_parameters(n_elements: int, hidden: int, n_layers: int) -> int:
        """(V + 2) H + L (7 H^2 + (E + 7) H), E = 9."""
        V, H, L, E = n_elements, hidden, n_layers, N_EDGE_FEATURES
        return (V + 2) * H + L * (7 * H * H + (E + 7) * H)

    def n_parameters(self) -> int:
        """Closed form ``count_parameters(V, hidden, n_layers)`` (V elements of the table)."""
        return self.count_parameters(len(self.elements), self.hidden, self.n_layers)

    @property
    def n_features(self) -> int:
        """Row length 1 + 3 A."""
        return 1 + 3 * self.n_atoms_max

    def _generator(self, rng: np.random.Generator) -> torch.Generator:
        return torch.Generator(device=self.device).manual_seed(int(rng.integers(2**63 - 1)))

    def _split(self, X) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows (n, 1 + 3A) -> molecule indices (n,) int64 and model-unit coordinates
        (n, A, 3) float32, centred."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"X: shape {X.shape}; allowed: (n, {self.n_features}) rows "
                             "[molecule index, A x 3 coordinates]")
        k = X[:, 0]
        if not (np.all(k == np.round(k)) and np.all((k >= 0) & (k < self.n_molecules))):
            raise ValueError(f"X[:, 0]: molecule indices must be integers in [0, "
                             f"{self.n_molecules})")
        idx = torch.as_tensor(k.astype(np.int64), device=self.device)
        x = torch.as_tensor((X[:, 1:] / self.coord_scale).reshape(len(X), -1, 3),
                            dtype=torch.float32, device=self.device)
        return idx, _centre(x, self._mask[idx])

    def _noise(self, shape, mask, generator, dtype=torch.float32) -> torch.Tensor:
        """Zero-centre-of-mass standard normal noise (B, A, 3) on the real atoms of ``mask``."""
        z = torch.randn(shape, generator=generator, device=self.device, dtype=dtype)
        return _centre(z, mask)

    def _per_row_loss(self, net, x0, idx, t, eps) -> torch.Tensor:
        """(1/n) sum_i ||eps_i - eps_theta_i||^2 per row, (B,); t (B,) int in 1..T."""
        mask = self._mask[idx]
        abar = torch.as_tensor(self._abar, device=self.device, dtype=x0.dtype)[t - 1]  # (B,)
        xt = abar.sqrt().view(-1, 1, 1) * x0 + (1 - abar).sqrt().view(-1, 1, 1) * eps
        e = self._edges[idx].to(x0.dtype)
        pred = net(xt, t.to(x0.dtype) / self.n_steps, self._onehot[idx].to(x0.dtype), e, mask)
        return ((pred - eps) ** 2).sum((1, 2)) / mask.sum(1).to(x0.dtype)

    # ------------------------------------------------------------------ protocol
    def fit(self, X, *, sample_weight=None, rng: np.random.Generator) -> "ConformerDiffusion":
        """Train on rows X (n, 1 + 3A) for ``epochs`` epochs (or ``train_steps`` optimiser
        steps); weights (n,) scale each row's loss (normalised to mean 1)."""
        g = self._generator(rng)
        idx_all, x_all = self._split(X)                              # (n,), (n, A, 3)
        n = len(idx_all)
        w = (torch.ones(n, device=self.device) if sample_weight is None else
             torch.as_tensor(np.asarray(sample_weight, np.float32), device=self.device))
        w = w * (n / w.sum())
        mols, counts = np.unique(idx_all.cpu().numpy(), return_counts=True)
        self.train_molecules_, self.train_counts_ = mols, counts
        with Deterministic(self.device, self.num_threads):
            if self.init == "fresh" or self.net_ is None:
                self.net_ = _Denoiser(len(self.elements), self.hidden, self.n_layers).to(
                    self.device)
                uniform_linear_init_(self.net_, g)
            net = self.net_
            net.train()
            opt = torch.optim.Adam(net.parameters(), lr=self.lr)
            ema = copy.deepcopy(net) if self.ema_decay > 0 else None
            self.status_, self.loss_history_, self.train_steps_ = "ok", [], 0
            for batches in epoch_batches(n, self.batch_size, self.epochs, self.train_steps, g,
                                         self.device):
                total = torch.zeros((), device=self.device)
                seen = 0
                for b in batches:                                             # (B,)
                    seen += len(b)
                    idx, x0 = idx_all[b], x_all[b]
                    t = torch.randint(1, self.n_steps + 1, (len(b),), generator=g,
                                      device=self.device)                     # (B,)
                    eps = self._noise(x0.shape, self._mask[idx], g)           # (B, A, 3)
                    loss = (w[b] * self._per_row_loss(net, x0, idx, t, eps)).mean()
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(net.parameters(), GRAD_CLIP)
                    opt.step()
                    if ema is not None:
                        with torch.no_grad():
                            for pe, p in zip(ema.parameters(), net.parameters()):
                                pe.lerp_(p, 1.0 - self.ema_decay)
                    total = total + loss.detach() * len(b)
                self.train_steps_ += len(batches)
                epoch_loss = float(total) / seen
                self.loss_history_.append(epoch_loss)
                if not math.isfinite(epoch_loss):
                    self.status_ = "non_finite"
                    break
            if ema is not None:
                self.net_ = net = ema
            net.eval()
        return self

    def planned_steps(self, n: int) -> int:
        """Optimiser steps a fit on n rows takes: ``train_steps``, or ``epochs * ceil(n /
        batch_size)`` when it is None."""
        return planned_steps(n, self.batch_size, self.epochs, self.train_steps)

    def _molecules_for(self, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        mols, counts = self.train_molecules_, self.train_counts_
        if self.molecule_sampling == "empirical":
            return rng.choice(mols, size=n_samples, p=counts / counts.sum())
        q, r = divmod(n_samples, len(mols))
        out = np.concatenate([np.repeat(mols, q), rng.choice(mols, size=r, replace=False)])
        return out[rng.permutation(n_samples)]

    @torch.no_grad()
    def generate(self, molecules, *, rng: np.random.Generator,
                 chunk: int = 512) -> np.ndarray:
        """Conformers of the given molecules by ancestral sampling (Ho et al. Alg. 2).

        molecules : (n,) int indices into the table  ->  (n, A, 3) float32 angstrom, centred,
        padding 0.  Works for any molecule of the table (also ones never trained on).
        """
        if self.net_ is None:
            raise RuntimeError("ConformerDiffusion is not fitted")
        g = self._generator(rng)
        idx_all = torch.as_tensor(np.asarray(molecules, np.int64), device=self.device)
        out = []
        betas = self._betas
        abar = self._abar
        abar_prev = np.concatenate([[1.0], abar[:-1]])
        with Deterministic(self.device, self.num_threads):
            for i in range(0, len(idx_all), chunk):
                idx = idx_all[i:i + chunk]
                mask = self._mask[idx]
                onehot, e = self._onehot[idx], self._edges[idx]
                x = self._noise((len(idx), self.n_atoms_max, 3), mask, g)     # x_T (B, A, 3)
                for t in range(self.n_steps, 0, -1):
                    tt = torch.full((len(idx),), t / self.n_steps, device=self.device)
                    eps = self.net_(x, tt, onehot, e, mask)                   # (B, A, 3)
                    beta, ab, ab_prev = betas[t - 1], abar[t - 1], abar_prev[t - 1]
                    x0 = (x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)        # (B, A, 3)
                    x0 = _centre(x0.clamp(-self.clip_x0, self.clip_x0), mask)
                    x = (math.sqrt(ab_prev) * beta / (1 - ab) * x0            # Ho eq. 7
                         + math.sqrt(1 - beta) * (1 - ab_prev) / (1 - ab) * x)
                    if t > 1:
                        var = beta * (1 - ab_prev) / (1 - ab)                 # betatilde_t
                        x = x + math.sqrt(var) * self._noise(x.shape, mask, g)
                out.append(_centre(x, mask) * self.coord_scale)
        return torch.cat(out).cpu().numpy().astype(np.float32)

    def sample(self, n_samples: int, *, rng: np.random.Generator) -> np.ndarray:
        """n_samples rows (n_samples, 1 + 3A) float32: molecules of the last training set
        (``molecule_sampling``), coordinates from ``generate``."""
        mols = self._molecules_for(n_samples, rng)
        xyz = self.generate(mols, rng=rng)                            # (n, A, 3)
        return np.concatenate([mols[:, None].astype(np.float32),
                               xyz.reshape(n_samples, -1)], axis=1)

    @torch.no_grad()
    def score_samples(self, X) -> np.ndarray:
        """Minus the denoising loss per row, shape (n,) (module docstring; squared noise norm
        per atom, mean over ``score_timesteps`` fixed timesteps and fixed noise; float64, so a
        row's score does not depend on the batch it is scored in)."""
        idx, x0 = self._split(X)
        x0 = x0.double()
        n = len(idx)
        ts = np.unique(np.round(np.linspace(1, self.n_steps, self.score_timesteps)).astype(int))
        g = torch.Generator(device=self.device).manual_seed(self.score_seed)
        with Deterministic(self.device, self.num_threads):
            noise = torch.randn((len(ts), self.n_atoms_max, 3), generator=g, device=self.device,
                                dtype=torch.float64)                  # (S, A, 3) shared
            net = copy.deepcopy(self.net_).double()
            mask = self._mask[idx]
            losses = []
            for s, t in enumerate(ts):
                eps = _centre(noise[s].expand(n, -1, -1), mask)       # (n, A, 3)
                tt = torch.full((n,), int(t), device=self.device)
                losses.append(self._per_row_loss(net, x0, idx, tt, eps))
            loss = torch.stack(losses).mean(0)                        # (n,)
        return -loss.cpu().numpy()

    # ------------------------------------------------------------------ state
    def get_state(self) -> dict[str, np.ndarray]:
        """The fitted state as plain arrays: ``net.<parameter>`` weights, ``status`` (0-d str),
        ``loss_history``, ``train_steps`` (0-d int), ``train_molecules``, ``train_counts``."""
        state = network_state(self.net_, self.status_, self.loss_history_)
        state["train_steps"] = np.asarray(self.train_steps_)
        state["train_molecules"] = self.train_molecules_.copy()
        state["train_counts"] = self.train_counts_.copy()
        return state

    def set_state(self, state: dict[str, np.ndarray]) -> "ConformerDiffusion":
        """Restore ``get_state``'s output exactly (same hyperparameters and table)."""
        self.net_ = _Denoiser(len(self.elements), self.hidden, self.n_layers).to(self.device)
        self.status_, self.loss_history_ = load_network_state(self.net_, state)
        self.train_steps_ = int(state.get("train_steps", 0))
        self.train_molecules_ = np.asarray(state["train_molecules"], np.int64).copy()
        self.train_counts_ = np.asarray(state["train_counts"], np.int64).copy()
        return self
