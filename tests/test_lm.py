"""The GPT-style LM family and the LM task (skipped without torch or tokenizers).

Text comes from the task's built-in toy corpus, written by a fixture as a fake prepared ``austen``
dataset under a temporary MODELCOLLAPSE_DATA: the real prepared corpus is never read.
"""

import copy
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the lm family needs PyTorch (pip install torch)")
pytest.importorskip("tokenizers", reason="the lm task needs tokenizers (extra 'text')")

from modelcollapse.config import Study  # noqa: E402
from modelcollapse.engine import run_study  # noqa: E402
from modelcollapse.families.lm import LM, _generate  # noqa: E402
from modelcollapse.registry import tasks  # noqa: E402
from modelcollapse.rng import Role, Streams  # noqa: E402
from modelcollapse.tasks import lm as lm_task  # noqa: E402
from modelcollapse.metrics.text import (  # noqa: E402
    distinct_n, novel_ngram_share, pack_ngrams, rare_types, type_recall, unigram_entropy)
from modelcollapse.tasks.lm import (  # noqa: E402
    AUSTEN, LMTask, draw_windows, tail_token_positions)

V, L = 48, 12
TINY = dict(vocab_size=V, context=L, n_layer=2, n_head=2, d_model=16, batch_size=16)


@pytest.fixture
def lm_registered():
    added = "lm" not in tasks
    if added:
        tasks.register("lm", "modelcollapse.tasks.lm:LMTask")
    yield
    if added:
        tasks._entries.pop("lm", None)


@pytest.fixture(scope="module")
def rows():
    """Rows of a 3-state Markov chain over tokens 1..V-1 (BOS = 0): learnable structure."""
    g = np.random.default_rng(0)
    X = np.zeros((96, L + 1), dtype=np.int64)
    X[:, 1] = g.integers(1, V, 96)
    for t in range(2, L + 1):
        X[:, t] = np.where(g.random(96) < 0.8, X[:, t - 1] % (V - 1) + 1, g.integers(1, V, 96))
    return X


@pytest.fixture(scope="module")
def fitted(rows):
    return LM(epochs=3, **TINY).fit(rows, rng=np.random.default_rng(7))


def _weights(model):
    return {k: v for k, v in model.get_state().items() if k.startswith("net.")}


def test_parameter_count(fitted):
    d, n_layer = 16, 2
    by_hand = V * d + L * d + n_layer * (4 * d + (3 * d * d + 3 * d) + (d * d + d)
                                         + (4 * d * d + 4 * d) + (4 * d * d + d)) + 2 * d
    assert sum(p.numel() for p in fitted.net_.parameters()) == by_hand
    assert fitted.n_parameters() == LM.count_parameters(V, L, n_layer, d) == by_hand == 7552


def test_same_rng_bit_identical(rows, fitted):
    again = LM(epochs=3, **TINY).fit(rows, rng=np.random.default_rng(7))
    a, b = _weights(fitted), _weights(again)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    s = fitted.sample(20, rng=np.random.default_rng(1))
    assert s.shape == (20, L + 1) and s.dtype == np.int64 and (s[:, 0] == 0).all()
    assert s.min() >= 0 and s.max() < V
    np.testing.assert_array_equal(s, again.sample(20, rng=np.random.default_rng(1)))
    assert not np.array_equal(s, fitted.sample(20, rng=np.random.default_rng(2)))
    np.testing.assert_array_equal(fitted.score_samples(rows), again.score_samples(rows))
    other = LM(epochs=3, **TINY).fit(rows, rng=np.random.default_rng(8))
    assert not np.array_equal(a["net.wte.weight"], _weights(other)["net.wte.weight"])
    # generation batch size does not change the noise of a row
    small = copy.copy(fitted)
    small.gen_batch_size = 7
    np.testing.assert_array_equal(s, small.sample(20, rng=np.random.default_rng(1)))


def test_kv_cache_generation_equals_full_recompute(fitted):
    """The key/value cache reproduces the uncached forward pass exactly (same tokens for the same
    noise), checked in float64 on a sharpened copy (peaked next-token distributions) and through
    the public float32 ``sample``."""
    net = copy.deepcopy(fitted.net_).double()
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(3.0)
    noise = torch.rand((40, L), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    cached = _generate(net, noise, 0, 1.0, use_cache=True)
    full = _generate(net, noise, 0, 1.0, use_cache=False)
    torch.testing.assert_close(cached, full, rtol=0, atol=0)
    assert len(torch.unique(cached[:, 1:])) > 5  # a non-degenerate draw
    # the cached step logits equal the full forward's logits at every position
    with torch.no_grad():
        cache = net.new_cache(40)
        step = torch.stack([net(cached[:, t:t + 1], cache, pos=t)[:, -1] for t in range(L)], 1)
        torch.testing.assert_close(step, net(cached[:, :-1]), rtol=1e-12, atol=1e-12)
    rng = np.random.default_rng(5)
    np.testing.assert_array_equal(fitted.sample(30, rng=rng),
                                  fitted.sample(30, rng=np.random.default_rng(5), use_cache=False))


def test_score_of_a_row_does_not_depend_on_the_batch(rows, fitted):
    scores = fitted.score_samples(rows)
    assert scores.shape == (len(rows),) and scores.dtype == np.float64 and (scores < 0).all()
    np.testing.assert_allclose(fitted.score_samples(rows[3:7]), scores[3:7], rtol=1e-12)
    mixed = np.concatenate([rows[10:11], fitted.sample(5, rng=np.random.default_rng(0))])
    np.testing.assert_allclose(fitted.score_samples(mixed)[0], scores[10], rtol=1e-12)
    tok = fitted.token_log_likelihood(rows[:4])
    assert tok.shape == (4, L) and (tok <= 0).all()
    np.testing.assert_allclose(tok.sum(1), scores[:4], rtol=1e-12)


def test_learns_a_repeated_sequence():
    seq = np.concatenate([[0], np.arange(1, L + 1) * 3 % (V - 1) + 1])
    X = np.tile(seq, (64, 1))
    model = LM(epochs=25, lr=2e-2, **TINY).fit(X, rng=np.random.default_rng(0))
    ce = -model.score_samples(X[:1])[0] / L  # nats per token
    assert ce < 0.05, ce
    assert model.loss_history_[-1] < 0.1 < model.loss_history_[0]
    s = model.sample(20, rng=np.random.default_rng(0))
    assert (s == seq).all(1).mean() > 0.8


def test_state_round_trip(rows, fitted):
    state = fitted.get_state()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    assert state["context"].shape == () and int(state["vocab_size"]) == V
    restored = LM(epochs=3, **TINY).set_state(state)
    b = restored.get_state()
    assert state.keys() == b.keys()
    for k in state:
        np.testing.assert_array_equal(state[k], b[k], err_msg=k)
    assert restored.status_ == fitted.status_
    np.testing.assert_array_equal(restored.sample(25, rng=np.random.default_rng(3)),
                                  fitted.sample(25, rng=np.random.default_rng(3)))
    np.testing.assert_array_equal(restored.score_samples(rows), fitted.score_samples(rows))
    with pytest.raises(ValueError, match="d_model"):
        LM(**{**TINY, "d_model": 32}).set_state(state)


def test_sample_weight_and_non_finite(rows):
    a = LM(epochs=1, **TINY).fit(rows, rng=np.random.default_rng(0))
    b = LM(epochs=1, **TINY).fit(rows, sample_weight=np.full(len(rows), 3.0),
                                 rng=np.random.default_rng(0))
    c = LM(epochs=1, **TINY).fit(rows, sample_weight=np.where(np.arange(len(rows)) < 48, 2.0, 0.1),
                                 rng=np.random.default_rng(0))
    wa, wb, wc = _weights(a), _weights(b), _weights(c)
    assert all(np.allclose(wa[k], wb[k], atol=1e-6) for k in wa)
    assert not np.allclose(wa["net.wte.weight"], wc["net.wte.weight"], atol=1e-6)
    bad = LM(epochs=3, **{**TINY, "lr": 1e30}).fit(rows, rng=np.random.default_rng(0))
    assert bad.status_ == "non_finite" and len(bad.loss_history_) < 3
    out = bad.sample(4, rng=np.random.default_rng(0))  # collapse is data: no crash
    assert out.shape == (4, L + 1) and out.min() >= 0 and out.max() < V


def test_bad_input():
    with pytest.raises(ValueError, match="init"):
        LM(vocab_size=V, init="warm")
    with pytest.raises(ValueError, match="n_head"):
        LM(vocab_size=V, d_model=10, n_head=4)
    model = LM(epochs=1, **TINY)
    with pytest.raises(ValueError, match="context"):
        model.fit(np.zeros((4, L), np.int64), rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="vocab_size"):
        model.fit(np.full((4, L + 1), V), rng=np.random.default_rng(0))


def test_fit_sample_score_leave_torch_global_rng_alone(rows):
    """Every random choice comes from the rng argument: the torch global RNG is neither read
    nor advanced (no default module initialisation drawn from it before ``_init_``)."""
    before = torch.get_rng_state()
    model = LM(epochs=1, **TINY).fit(rows, rng=np.random.default_rng(0))
    model.sample(4, rng=np.random.default_rng(0))
    model.score_samples(rows[:4])
    LM(epochs=1, **TINY).set_state(model.get_state())
    assert torch.equal(torch.get_rng_state(), before)


def test_fit_syncs_with_the_host_once_per_epoch(rows, monkeypatch):
    """No per-step host synchronisation: the loss is accumulated on the device and read once
    per epoch (here 6 steps per epoch, 2 epochs -> 2 reads)."""
    reads = []
    for name in ("item", "__float__", "__bool__", "__int__", "tolist", "cpu", "numpy"):
        original = getattr(torch.Tensor, name)

        def counted(self, *a, _original=original, _name=name, **k):
            reads.append(_name)
            return _original(self, *a, **k)
        monkeypatch.setattr(torch.Tensor, name, counted)
    model = LM(epochs=2, **TINY)
    model.fit(rows, rng=np.random.default_rng(0))
    monkeypatch.undo()
    assert model.train_steps_ == 12
    assert reads == ["__float__", "__float__"], reads


def test_optimizer_is_fused_adamw_with_decay_on_matrices_only():
    model = LM(**TINY)
    net = model._new_net()
    opt = model._optimizer(net)
    assert isinstance(opt, torch.optim.AdamW) and opt.defaults["fused"] is True
    decay, rest = opt.param_groups
    assert decay["weight_decay"] == model.weight_decay and rest["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() < 2 for p in rest["params"])
    assert len(decay["params"]) + len(rest["params"]) == len(list(net.parameters()))


def test_token_cross_entropy_equals_torch_in_value_and_gradient():
    """fit's loss (``_TokenCrossEntropy``, backward written in place over the log-softmax) gives
    F.cross_entropy's per-token values and gradients, under a non-uniform upstream gradient (the
    row weights), in float64."""
    import torch.nn.functional as F

    from modelcollapse.families.lm import _TokenCrossEntropy

    g = torch.Generator().manual_seed(0)
    logits = (3 * torch.randn(40, 9, generator=g, dtype=torch.float64)).requires_grad_()
    target = torch.randint(9, (40,), generator=g)
    w = torch.rand(40, generator=g, dtype=torch.float64)
    ours = _TokenCrossEntropy.apply(logits, target)                     # (40,)
    (grad_ours,) = torch.autograd.grad((w * ours).sum(), logits)
    ref = F.cross_entropy(logits, target, reduction="none")
    (grad_ref,) = torch.autograd.grad((w * ref).sum(), logits)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(grad_ours, grad_ref, rtol=0, atol=1e-12)


def test_fit_uses_the_in_place_cross_entropy(rows, monkeypatch):
    """The cheaper loss is what fit trains with (F.cross_entropy is never called)."""
    import torch.nn.functional as F

    def refuse(*a, **k):
        raise AssertionError("fit called F.cross_entropy")
    monkeypatch.setattr(F, "cross_entropy", refuse)
    assert LM(epochs=1, **TINY).fit(rows, rng=np.random.default_rng(0)).status_ == "ok"


def test_mlp_uses_exact_gelu():
    """The block's MLP is d -> 4d -> d with the exact (erf) GELU, as nanoGPT (checked where the
    tanh approximation differs: O(1) pre-activations, float64)."""
    import torch.nn.functional as F

    from modelcollapse.families.lm import _Block

    torch.manual_seed(0)
    block = _Block(8, 2).double()
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(torch.randn_like(p))
        h = x + block.attn_proj(F.scaled_dot_product_attention(
            *(block._heads(t) for t in block.attn_qkv(block.ln_1(x)).split(8, dim=2)),
            is_causal=True).transpose(1, 2).reshape(2, 5, 8))
        pre = block.mlp_fc(block.ln_2(h))
        exact = h + block.mlp_proj(F.gelu(pre))
        tanh = h + block.mlp_proj(F.gelu(pre, approximate="tanh"))
        out = block(x)
    assert (exact - tanh).abs().max() > 1e-4                            # the check can tell
    torch.testing.assert_close(out, exact, rtol=0, atol=1e-10)


# ------------------------------------------------------------------------------- metrics

def test_text_metrics_by_hand():
    toks = np.array([[1, 2, 1, 2], [3, 3, 3, 3]])
    assert distinct_n(toks, 1) == 3 / 8
    assert distinct_n(toks, 2) == 3 / 6  # (1,2), (2,1), (3,3): n-grams never span rows
    assert distinct_n(np.array([[5, 6, 7]]), 3) == 1.0
    np.testing.assert_allclose(unigram_entropy(np.array([0, 0, 1, 1]), 4), np.log(2))
    np.testing.assert_allclose(unigram_entropy(toks, 8),
                               -(2 * 0.25 * np.log(0.25) + 0.5 * np.log(0.5)))
    reference = np.unique(pack_ngrams(np.array([1, 2, 3, 4, 5]), 3))  # (1,2,3), (2,3,4), (3,4,5)
    sample = np.array([[1, 2, 3, 4], [2, 3, 5, 5]])            # 4 trigrams, 2 in reference
    assert novel_ngram_share(sample, reference, 3) == 0.5
    assert novel_ngram_share(np.array([[9, 9, 9]]), reference, 3) == 1.0
    counts = np.array([0, 50, 1, 7, 1, 30, 2, 9, 100, 4, 3, 60])  # 11 occurring types
    np.testing.assert_array_equal(rare_types(counts, 0.1), [2])     # round(1.1) = 1: the rarest
    np.testing.assert_array_equal(rare_types(counts, 0.3), [2, 4, 6])  # ties by id
    assert type_recall(np.array([2, 4, 6]), np.array([[4, 4, 1], [8, 2, 0]])) == 2 / 3
    targets = np.array([[1, 2], [3, 8], [4, 1]])  # counts 50, 1, 7, 100, 1, 50
    np.testing.assert_array_equal(tail_token_positions(counts, targets, 0.34), [1, 4])


def test_draw_windows_stay_inside_units():
    units = [np.arange(10, 20, dtype=np.int32), np.arange(100, 103, dtype=np.int32),
             np.arange(200, 206, dtype=np.int32)]
    w = draw_windows(units, 500, 4, 0, np.random.default_rng(0))
    assert w.shape == (500, 5) and w.dtype == np.int64 and (w[:, 0] == 0).all()
    assert (np.diff(w[:, 1:], axis=1) == 1).all()  # consecutive tokens of one unit
    assert set(np.unique(w[:, 1] // 100)) == {0, 2}  # unit 2 is too short for a window
    assert w[:, 1].max() == 202 and w[w[:, 1] < 100, 1].max() == 16
    with pytest.raises(ValueError, match="context"):
        draw_windows(units, 5, 11, 0, np.random.default_rng(0))


# ------------------------------------------------------------------------------- task

@pytest.fixture
def fake_austen(tmp_path, monkeypatch):
    """A prepared-looking ``austen`` dataset made of the toy corpus' six books."""
    monkeypatch.setenv("MODELCOLLAPSE_DATA", str(tmp_path))
    root = tmp_path / "austen"
    root.mkdir()
    books = lm_task.toy_text(words_per_book=1500)
    for name, text in zip(AUSTEN, books.values()):
        (root / f"{name}.txt").write_text(text.replace(". ", ".\n\n"), encoding="utf-8")
    (root / "meta.json").write_text(json.dumps({"name": "austen"}))
    return root


TASK = dict(vocab_size=300, context=16, n_samples=40, n_test=30, n_layer=1, n_head=2,
            d_model=16, epochs=1)


def test_task_builds_from_prepared_text_and_caches_the_tokenizer(fake_austen, monkeypatch):
    params = LMTask.Params(**TASK)
    assert params.held_out == "persuasion"
    task = LMTask.build(params, Streams(0, range(3)))
    assert task.real.shape == (3, 40, 17) and task.test.shape == (3, 30, 17)
    assert task.real.dtype == np.int64 and (task.real[:, :, 0] == 0).all()
    assert task.truth["vocab_size"] == 300 and task.real.max() < 300
    assert not np.array_equal(task.real[0], task.real[1])
    cached = sorted(p.name for p in (fake_austen / "lm").iterdir())
    assert cached == ["bpe-v1-persuasion-300.json", "bpe-v1-persuasion-300.npz"]
    # the test windows are windows of the held-out novel, the training windows never are
    _, train_units, test_units = lm_task.tokenize("austen", "persuasion", 300)
    held = test_units[0]
    starts = np.flatnonzero(held[:-15] == task.test[0, 0, 1])
    assert any(np.array_equal(held[s:s + 16], task.test[0, 0, 1:]) for s in starts)
    # a second build reads the cache (no retraining) and gives the same data
    monkeypatch.setattr(lm_task, "_train_tokenizer", None)
    again = LMTask.build(params, Streams(0, range(3)))
    np.testing.assert_array_equal(again.real, task.real)
    np.testing.assert_array_equal(again.test, task.test)


def test_task_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELCOLLAPSE_DATA", str(tmp_path))
    with pytest.raises(ValueError, match="modelcollapse data prepare austen"):
        LMTask.build(LMTask.Params(), Streams(0, range(1)))
    with pytest.raises(ValueError, match="held_out"):
        LMTask.Params(held_out="ulysses")
    with pytest.raises(ValueError, match="n_head"):
        LMTask.Params(d_model=30, n_head=4)
    with pytest.raises(ValueError, match="held_out"):
        LMTask.build(LMTask.Params(dataset="toy", held_out="book9"), Streams(0, range(1)))


def test_evaluate_metrics(fake_austen):
    task = LMTask.build(LMTask.Params(**TASK), Streams(0, range(2)))
    streams = Streams(0, range(2))
    model = task.make_model().fit(task.real, rngs=streams(0, Role.FIT))
    out = task.evaluate(model, 0)
    assert set(out) == {"test_ce", "tail_ce", "distinct_1", "distinct_2", "unigram_entropy",
                        "unigram_entropy_ratio", "rare_token_recall", "novel_ngram_share",
                        "train_steps"}
    assert all(v.shape == (2,) and np.isfinite(v).all() for v in out.values())
    assert (out["train_steps"] == 3).all()  # steps budget default: 1 epoch x ceil(40 / 16)
    np.testing.assert_allclose(out["test_ce"], -model.score_samples(task.test).mean(1) / 16)
    assert (out["tail_ce"] > out["test_ce"]).all()  # rare tokens are harder
    for k in ("distinct_1", "distinct_2", "rare_token_recall", "novel_ngram_share"):
        assert ((out[k] >= 0) & (out[k] <= 1)).all(), k
    again = task.evaluate(model, 0)
    assert all(np.array_equal(out[k], again[k]) for k in out)  # EVAL stream: reproducible


def test_train_budget_steps_reproduces_epochs(rows):
    """``train_steps = epochs x ceil(n / batch)`` gives bit-identical weights to the epochs
    budget (same batches, same learning-rate schedule); other step counts are honoured exactly,
    whatever the training-set size."""
    by_epochs = LM(epochs=2, **TINY).fit(rows, rng=np.random.default_rng(3))
    assert by_epochs.train_steps_ == by_epochs.planned_steps(len(rows)) == 2 * 6
    same = LM(epochs=7, train_steps=12, **TINY).fit(rows, rng=np.random.default_rng(3))
    assert all(np.array_equal(v, _weights(same)[k]) for k, v in _weights(by_epochs).items())
    assert same.loss_history_ == by_epochs.loss_history_
    for n in (96, 40):
        model = LM(train_steps=9, **TINY).fit(rows[:n], rng=np.random.default_rng(3))
        assert model.train_steps_ == 9 and model.get_state()["train_steps"] == 9
    with pytest.raises(ValueError, match="train_steps"):
        LM(train_steps=0, **TINY)
    assert LMTask.Params(**TASK).train_steps == 3
    assert LMTask.Params(**TASK, train_budget="epochs").train_steps is None


@pytest.mark.parametrize("init", ["fresh", "warm_start"])
def test_lm_study_through_engine(init, lm_registered):
    study = Study.model_validate({
        "name": "lm-smoke", "task": "lm", "n_iterations": 2, "n_seeds": 2, "seed": 0,
        "paradigms": ["replace", "accumulate"],
        "task_params": {**TASK, "dataset": "toy", "init": init},
    })
    df = run_study(study)
    assert set(df.paradigm) == {"replace", "accumulate"}
    assert df.iteration.max() == 1 and df.seed.nunique() == 2
    expected = {"test_ce", "tail_ce", "distinct_1", "distinct_2", "unigram_entropy",
                "unigram_entropy_ratio", "rare_token_recall", "novel_ngram_share"}
    assert expected <= set(df.metric)
    assert (df.groupby("metric").size()[list(expected)] == 2 * 2 * 2).all()
    assert set(df.status) == {"ok"}
    assert np.isfinite(df[df.metric.isin(expected)].value).all()
    n_train = df[(df.metric == "n_train") & (df.iteration == 1)].set_index("paradigm").value
    assert (n_train["replace"] == 40).all() and (n_train["accumulate"] == 80).all()
    spec = next(iter(df.attrs["profile_specs"].values()))
    assert spec["risk"] == "test_ce" and spec["variance"] == "unigram_entropy_ratio"
    assert spec["tail"] == "tail_ce" and spec["hallucination"] == "novel_ngram_share"
