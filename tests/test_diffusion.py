"""The conformer-diffusion family, the wehi-conformers dataset and the diffusion task (skipped
without torch or rdkit)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the diffusion family needs PyTorch "
                            "(pip install torch)")
pytest.importorskip("rdkit", reason="conformers need RDKit (pip install rdkit)")

from modelcollapse.config import Study  # noqa: E402
from modelcollapse.data.prepare import load_meta, prepare  # noqa: E402
from modelcollapse.data.sources import wehi_conformers as wc  # noqa: E402
from modelcollapse.engine import run_study  # noqa: E402
from modelcollapse.families.diffusion import (  # noqa: E402
    N_EDGE_FEATURES, ConformerDiffusion, _centre, cosine_schedule)
from modelcollapse.registry import tasks  # noqa: E402
from modelcollapse.rng import Role, Streams  # noqa: E402
from modelcollapse.metrics.molecules import coverage_matching, kabsch_rmsd  # noqa: E402
from modelcollapse.tasks.diffusion import DiffusionTask, tail_conformers  # noqa: E402

# flexible molecules (conformers differ, so every metric is defined), a few elements and rings
SMILES = ["CCCCO", "CCOCC", "OCCOCCO", "CCN(CC)CC", "CC(C)CC(=O)O", "NCCCCN", "CCCOC(=O)C",
          "CCSCCC", "CCCCCCl", "OCCCc1ccccc1", "CCOc1ccncc1", "C1CCCCCC1"]


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """wehi-conformers prepared from the SMILES above (via ``source``), then loaded."""
    root = tmp_path_factory.mktemp("data")
    src = root / "smiles.csv"
    src.write_text('"SMILES","id"\n' + "\n".join(f'"{s}","m{i}"' for i, s in enumerate(SMILES)),
                   encoding="utf-8")
    mp = pytest.MonkeyPatch()
    mp.setenv("MODELCOLLAPSE_DATA", str(root / "cache"))
    try:
        path = prepare("wehi-conformers", source=src)
        meta = load_meta("wehi-conformers")
    finally:
        mp.undo()
    arrays, smiles = wc.load(path)
    return arrays, smiles, meta


def _rows(arrays, molecules):
    coords = arrays["coords"]
    C = coords.shape[1]
    xyz = coords[molecules].reshape(len(molecules) * C, -1)
    return np.concatenate([np.repeat(molecules, C)[:, None].astype(np.float32), xyz], 1)


def _model(arrays, **kw):
    kw = {"hidden": 8, "n_layers": 2, "n_steps": 10, "epochs": 2, "batch_size": 16, **kw}
    return ConformerDiffusion(arrays["atoms"], arrays["bonds"], **kw)


def _weights(model):
    return [p.detach().numpy().copy() for p in model.net_.parameters()]


def test_prepared_dataset_layout(table):
    arrays, smiles, meta = table
    K, C, A, _ = arrays["coords"].shape
    assert C == wc.N_CONFORMERS and K == len(smiles) == meta["counts"]["molecules"] == 12
    assert sorted(smiles) == sorted(SMILES)  # all embedded, in the fixed shuffled order
    from rdkit import Chem

    for k, smi in enumerate(smiles):
        mol = Chem.MolFromSmiles(smi)
        n = mol.GetNumAtoms()
        assert arrays["mask"][k].sum() == n and not arrays["mask"][k, n:].any()
        assert [a.GetAtomicNum() for a in mol.GetAtoms()] == list(arrays["atoms"][k, :n])
        assert (arrays["bonds"][k] == arrays["bonds"][k].T).all()
        assert (arrays["bonds"][k] > 0).sum() == 2 * mol.GetNumBonds()
        assert np.abs(arrays["coords"][k, :, n:]).max(initial=0) == 0
        np.testing.assert_allclose(arrays["coords"][k, :, :n].mean(1), 0, atol=1e-5)
        # MMFF geometry: bonds between 1.1 (C=O) and 1.9 angstrom (C-Cl, C-S)
        i, j = np.nonzero(np.triu(arrays["bonds"][k]))
        d = np.linalg.norm(arrays["coords"][k][:, i] - arrays["coords"][k][:, j], axis=-1)
        assert ((d > 1.1) & (d < 1.9)).all()
    assert np.isfinite(arrays["energies"]).all()
    assert meta["counts"]["skipped"]["too_large"] == 0


def test_embed_skips_and_counts_failures():
    arrays, kept, skipped = wc.embed(["CCO", "not a smiles", "CCO.O", "C" * 20], n_conformers=2)
    assert kept == ["CCO"] and arrays["coords"].shape == (1, 2, 3, 3)
    assert skipped["unparsable"] == 1 and skipped["multi_fragment"] == 1
    assert skipped["too_large"] == 1


def test_parameter_count_closed_form(table):
    arrays, *_ = table
    V = len(np.unique(arrays["atoms"][arrays["atoms"] > 0]))
    H, L, E = 8, 2, N_EDGE_FEATURES
    per_layer = ((2 * H + 1 + E) * H + H + H * H + H      # phi_e: two Linear
                 + H * H + H + H * 1                      # phi_x: Linear, Linear without bias
                 + 2 * H * H + H + H * H + H)             # phi_h: two Linear
    expected = (V + 1) * H + H + L * per_layer
    model = _model(arrays).fit(_rows(arrays, np.arange(6)), rng=np.random.default_rng(0))
    assert model.n_parameters() == expected == sum(p.numel() for p in model.net_.parameters())
    assert ConformerDiffusion.count_parameters(V, H, L) == expected


def test_same_rng_bit_identical(table):
    arrays, *_ = table
    X, Xt = _rows(arrays, np.arange(8)), _rows(arrays, np.arange(8, 12))
    a = _model(arrays).fit(X, rng=np.random.default_rng(7))
    b = _model(arrays).fit(X, rng=np.random.default_rng(7))
    assert all(np.array_equal(x, y) for x, y in zip(_weights(a), _weights(b)))
    sa, sb = a.sample(15, rng=np.random.default_rng(1)), b.sample(15, rng=np.random.default_rng(1))
    assert sa.shape == (15, X.shape[1]) and sa.dtype == np.float32 and np.array_equal(sa, sb)
    assert np.isfinite(sa).all()
    assert not np.array_equal(sa, a.sample(15, rng=np.random.default_rng(2)))
    # balanced molecule choice: the 8 training molecules get 1 or 2 of the 15 rows each
    counts = np.bincount(sa[:, 0].astype(int), minlength=8)
    assert set(counts[:8]) <= {1, 2} and counts.sum() == 15
    np.testing.assert_array_equal(a.score_samples(Xt), b.score_samples(Xt))
    assert a.score_samples(Xt).shape == (len(Xt),) and (a.score_samples(Xt) < 0).all()
    np.testing.assert_allclose(a.score_samples(Xt[3:9]), a.score_samples(Xt)[3:9], rtol=1e-12)
    c = _model(arrays).fit(X, rng=np.random.default_rng(8))
    assert not np.array_equal(_weights(a)[0], _weights(c)[0])


def test_translation_invariance_and_centring(table):
    arrays, *_ = table
    X = _rows(arrays, np.arange(10))
    model = _model(arrays).fit(X, rng=np.random.default_rng(0))
    shifted = X.copy()
    for k in range(len(X)):  # translate every real atom of each row by its own vector
        n = arrays["mask"][int(X[k, 0])].sum()
        xyz = shifted[k, 1:].reshape(-1, 3)
        xyz[:n] += np.random.default_rng(k).normal(0, 5, 3)
    # equal up to the float32 rounding of the shifted rows (~1e-7 angstrom)
    np.testing.assert_allclose(model.score_samples(shifted), model.score_samples(X), rtol=1e-6)
    # the denoiser is E(3) equivariant: eps(R x + b) = R eps(x)
    idx = torch.arange(4)
    mask = model._mask[idx]
    x = _centre(torch.randn((4,) + arrays["coords"].shape[2:], dtype=torch.float64), mask)
    rot, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))
    rot = torch.as_tensor(rot)
    net = model.net_.double()
    args = (torch.full((4,), 0.5, dtype=torch.float64), model._onehot[idx].double(),
            model._edges[idx].double(), mask)
    with torch.no_grad():
        a = net(x, *args) @ rot.T
        b = net(x @ rot.T + torch.tensor([1.0, 2.0, -3.0], dtype=torch.float64) * mask[..., None],
                *args)
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-10)
    model.net_.float()
    S = model.sample(20, rng=np.random.default_rng(3))
    for row in S:
        n = arrays["mask"][int(row[0])].sum()
        xyz = row[1:].reshape(-1, 3)
        np.testing.assert_allclose(xyz[:n].mean(0), 0, atol=1e-4)
        assert (xyz[n:] == 0).all()
    # a molecule never trained on can be generated
    gen = model.generate([11, 11], rng=np.random.default_rng(0))
    assert gen.shape == (2,) + arrays["coords"].shape[2:] and np.isfinite(gen).all()


def test_forward_marginal_matches_closed_form(table):
    """q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) P), P = I - 11^T/n on each axis (noise
    projected to zero centre of mass): Monte Carlo mean and covariance within their error."""
    arrays, *_ = table
    model = _model(arrays, n_steps=20)
    k = 2
    n = arrays["mask"][k].sum()
    x0 = torch.as_tensor(arrays["coords"][k, 0] / model.coord_scale)[None]  # (1, A, 3)
    g = torch.Generator().manual_seed(0)
    N = 20000
    mask = model._mask[[k] * N]
    for t in (1, 10, 20):
        ab = model._abar[t - 1]
        eps = model._noise((N,) + x0.shape[1:], mask, g)
        xt = (np.sqrt(ab) * x0 + np.sqrt(1 - ab) * eps).numpy()[:, :n]         # (N, n, 3)
        mean_err = xt.mean(0) - np.sqrt(ab) * x0.numpy()[0, :n]
        assert np.abs(mean_err).max() < 5 * np.sqrt((1 - ab) / N)
        cov = np.einsum("sia,sja->ija", xt - xt.mean(0), xt - xt.mean(0)) / N  # (n, n, 3)
        target = (1 - ab) * (np.eye(n) - 1.0 / n)[:, :, None]
        assert np.abs(cov - target).max() < 6 * (1 - ab) * np.sqrt(2 / N)
    betas = cosine_schedule(1000)
    assert betas[0] > 0 and betas[-1] == 0.999 and (np.diff(betas) > 0).all()


def test_get_state_set_state_round_trip(table):
    arrays, *_ = table
    X, Xt = _rows(arrays, np.arange(8)), _rows(arrays, np.arange(8, 12))
    a = _model(arrays).fit(X, rng=np.random.default_rng(0))
    state = a.get_state()
    assert all(isinstance(v, np.ndarray) for v in state.values()) and state["status"].ndim == 0
    b = _model(arrays).set_state({k: v.copy() for k, v in state.items()})
    assert all(np.array_equal(x, y) for x, y in zip(_weights(a), _weights(b)))
    assert b.status_ == a.status_ and b.loss_history_ == a.loss_history_
    np.testing.assert_array_equal(a.score_samples(Xt), b.score_samples(Xt))
    np.testing.assert_array_equal(a.sample(9, rng=np.random.default_rng(4)),
                                  b.sample(9, rng=np.random.default_rng(4)))
    # warm start from a restored state continues exactly like the original
    a.init = b.init = "warm_start"
    a.fit(X, rng=np.random.default_rng(5))
    b.fit(X, rng=np.random.default_rng(5))
    assert all(np.array_equal(x, y) for x, y in zip(_weights(a), _weights(b)))


def test_non_finite_is_a_status_and_bad_rows_raise(table):
    arrays, *_ = table
    X = _rows(arrays, np.arange(4))
    bad = X.copy()
    bad[0, 1] = np.nan
    model = _model(arrays).fit(bad, rng=np.random.default_rng(0))
    assert model.status_ == "non_finite" and len(model.loss_history_) == 1
    wrong = X.copy()
    wrong[0, 0] = 99
    with pytest.raises(ValueError, match="molecule indices"):
        _model(arrays).fit(wrong, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="init"):
        _model(arrays, init="warm")


def test_kabsch_rmsd_against_rdkit():
    from rdkit import Chem
    from rdkit.Chem import AllChem, rdMolAlign

    mol = Chem.AddHs(Chem.MolFromSmiles("CC(=O)Nc1ccc(O)cc1"))
    AllChem.EmbedMultipleConfs(mol, 2, randomSeed=1)
    heavy = Chem.RemoveHs(mol)
    P, Q = (np.asarray(c.GetPositions()) for c in heavy.GetConformers())
    # a rotated + translated copy: 0
    rot, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))
    rot *= np.sign(np.linalg.det(rot))
    assert kabsch_rmsd(P, P @ rot.T + [1.0, -2.0, 3.0]) < 1e-9
    # two conformers: RDKit's AlignMol with the identity atom map (no symmetry search)
    ref = rdMolAlign.AlignMol(heavy, heavy, prbCid=1, refCid=0,
                              atomMap=[(i, i) for i in range(len(P))])
    assert kabsch_rmsd(Q, P) == pytest.approx(ref, abs=1e-6)
    # known values: a scaled copy c P is best superposed unrotated, RMSD = |1 - c| R_g
    Pc = P - P.mean(0)
    gyration = np.sqrt((Pc ** 2).sum() / len(P))
    assert kabsch_rmsd(P, 1.1 * P @ rot.T) == pytest.approx(0.1 * gyration, rel=1e-9)
    # one atom moved by d: at most the translation-only fit's d sqrt((1 - 1/n) / n)
    moved = P.copy()
    moved[0] += [0.3, 0.0, 0.0]
    assert 0 < kabsch_rmsd(P, moved) <= 0.3 * np.sqrt((1 - 1 / len(P)) / len(P)) + 1e-12
    # a mirror image is not superposable (proper rotations only); batched shapes broadcast
    chiral = np.array([[0.0, 0, 0], [1, 0, 0], [0, 2, 0], [0, 0, 3]])
    assert kabsch_rmsd(chiral, chiral * [-1, 1, 1]) > 0.1
    assert kabsch_rmsd(np.stack([P, Q])[:, None], np.stack([P, Q])[None]).shape == (2, 2)


def test_coverage_matching_hand_made():
    # 3 generated x 2 references
    rmsd = np.array([[0.2, 1.0],
                     [0.9, 0.6],
                     [2.0, 3.0]])
    out = coverage_matching(rmsd, threshold=0.5)
    assert out["cov_r"] == 0.5            # reference 0 matched (0.2), reference 1 not (0.6)
    assert out["mat_r"] == pytest.approx((0.2 + 0.6) / 2)
    assert out["cov_p"] == pytest.approx(1 / 3)
    out = coverage_matching(rmsd, threshold=0.6)
    assert out["cov_r"] == 1.0 and out["cov_p"] == pytest.approx(2 / 3)
    bad = rmsd.copy()
    bad[0, 0] = np.nan
    assert coverage_matching(bad, 0.5)["cov_r"] == 0.0


def test_tail_conformers_are_the_most_isolated_references():
    # 4 references: 0, 1, 2 close together, 3 far from all (the rare conformation)
    rmsd = np.array([[0.0, 0.2, 0.3, 2.0],
                     [0.2, 0.0, 0.25, 2.2],
                     [0.3, 0.25, 0.0, 1.9],
                     [2.0, 2.2, 1.9, 0.0]])
    assert tail_conformers(rmsd, 0.25).tolist() == [3]
    assert tail_conformers(rmsd, 0.5).tolist() == [1, 3]  # mean RMSD 2.03, 0.88 > 0.83, 0.82
    assert tail_conformers(rmsd, 1.0).tolist() == [0, 1, 2, 3]
    assert tail_conformers(np.zeros((10, 10))).tolist() == [0, 1, 2]  # 30% of 10, ties by index


def test_family_budget_steps_reproduces_epochs(table):
    arrays, *_ = table
    X = _rows(arrays, np.arange(6))                     # 6 molecules x 10 conformers: 60 rows
    by_epochs = _model(arrays).fit(X, rng=np.random.default_rng(4))
    assert by_epochs.train_steps_ == by_epochs.planned_steps(len(X)) == 2 * 4  # 2 x ceil(60/16)
    same = _model(arrays, epochs=50, train_steps=8).fit(X, rng=np.random.default_rng(4))
    assert all(np.array_equal(x, y) for x, y in zip(_weights(by_epochs), _weights(same)))
    assert same.loss_history_ == by_epochs.loss_history_
    assert _model(arrays, train_steps=4).fit(X, rng=np.random.default_rng(4)).train_steps_ == 4


class _References:
    """A stand-in fitted model whose ``generate`` returns a molecule's real test conformers
    (each reference twice, as G = 2 C), optionally moved ``shift`` angstrom away."""

    def __init__(self, test, shift=0.0):
        self.test, self.shift = test, shift
        self.train_steps_ = 7

    def generate(self, molecules, *, rng):
        out = []
        for k in dict.fromkeys(np.asarray(molecules).tolist()):   # in order, each once
            rows = self.test[self.test[:, 0] == k][:, 1:]
            xyz = rows.reshape(len(rows), -1, 3).copy()
            xyz[:, 0] += self.shift                            # one atom moved: large RMSD
            out.append(np.tile(xyz, (2, 1, 1)))
        return np.concatenate(out)


def test_tail_cov_r_of_perfect_and_of_far_conformers():
    task = DiffusionTask.build(DiffusionTask.Params(**TINY), Streams(0, range(2)))

    class Fixed:
        def __init__(self, shift):
            self.models_ = [_References(t, shift) for t in task.test]

        def score_samples(self, X):
            return np.zeros(X.shape[:2])

    perfect, far = task.evaluate(Fixed(0.0), 0), task.evaluate(Fixed(30.0), 0)
    assert (perfect["tail_cov_r"] == 1).all() and (perfect["cov_r"] == 1).all()
    assert (far["tail_cov_r"] == 0).all() and (far["cov_r"] == 0).all()
    assert (perfect["train_steps"] == 7).all()


@pytest.fixture
def diffusion_registered():
    added = "diffusion" not in tasks
    if added:
        tasks.register("diffusion", "modelcollapse.tasks.diffusion:DiffusionTask")
    yield
    if added:
        tasks._entries.pop("diffusion", None)


TINY = {"dataset": "smiles", "smiles": SMILES, "n_molecules": 6, "n_test_molecules": 4,
        "n_conformers": 3, "n_eval_molecules": 2, "hidden": 8, "n_layers": 2, "n_steps": 8,
        "train_steps": 3, "batch_size": 8}


def test_task_split_and_metrics():
    task = DiffusionTask.build(DiffusionTask.Params(**TINY), Streams(0, range(2)))
    assert task.real.shape == (2, 18, task.truth["n_features"])
    assert task.test.shape == (2, 12, task.truth["n_features"])
    for r in range(2):  # held-out molecules are never trained on
        assert not set(task.real[r, :, 0]) & set(task.test[r, :, 0])
    model = task.make_model()
    streams = Streams(0, range(2))
    model.fit(task.real, rngs=streams(0, Role.FIT))
    out = task.evaluate(model, 0)
    assert set(out) == {"test_denoising_loss", "cov_r", "mat_r", "cov_p", "tail_cov_r",
                        "bond_length_error", "diversity", "diversity_ratio", "train_steps"}
    assert (out["train_steps"] == 3).all()
    for v in out.values():
        assert v.shape == (2,) and np.isfinite(v).all()
    np.testing.assert_allclose(out["test_denoising_loss"], -model.score_samples(task.test).mean(1))
    again = task.evaluate(model, 0)
    for k in out:
        np.testing.assert_array_equal(out[k], again[k])
    with pytest.raises(ValueError, match="n_eval_molecules"):
        DiffusionTask.Params(**{**TINY, "n_eval_molecules": 5})
    with pytest.raises(ValueError, match="smiles"):
        DiffusionTask.Params(smiles=SMILES)


def test_unprepared_dataset_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELCOLLAPSE_DATA", str(tmp_path))
    with pytest.raises(ValueError, match="modelcollapse data prepare wehi-conformers"):
        DiffusionTask.build(DiffusionTask.Params(), Streams(0, range(1)))


def test_diffusion_study_through_engine(diffusion_registered):
    study = Study.model_validate({
        "name": "diffusion-smoke", "task": "diffusion", "n_iterations": 2, "n_seeds": 2,
        "seed": 0, "paradigms": ["replace", "accumulate"], "task_params": TINY})
    df = run_study(study)
    assert set(df.paradigm) == {"replace", "accumulate"}
    assert df.iteration.max() == 1 and df.seed.nunique() == 2
    loss = df[df.metric == "test_denoising_loss"]
    assert len(loss) == 2 * 2 * 2 and np.isfinite(loss.value).all() and (loss.value > 0).all()
    n_train = df[(df.metric == "n_train") & (df.iteration == 1)].set_index("paradigm").value
    assert (n_train["replace"] == 18).all() and (n_train["accumulate"] == 36).all()
    spec = next(iter(df.attrs["profile_specs"].values()))
    assert spec["risk"] == "test_denoising_loss" and spec["tail_recall"] == "tail_cov_r"
    steps = df[df.metric == "train_steps"].value
    assert (steps == 3).all()  # steps budget: the same for both paradigms and iterations
