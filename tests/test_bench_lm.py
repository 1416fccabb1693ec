"""benchmarks/bench_lm.py: the nanoGPT-style reference it times ours against is a correct causal
LM of our size, and ``--quick`` runs every measurement (no timing asserted)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="bench_lm needs PyTorch")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_lm", ROOT / "benchmarks" / "bench_lm.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_reference_is_a_causal_lm_of_our_size(bench):
    from modelcollapse.families.lm import LM

    torch.manual_seed(0)
    V, T = 40, 12
    ref = bench.RefGPT(V, T, 2, 2, 16)
    assert sum(p.numel() for p in ref.parameters()) == LM.count_parameters(V, T, 2, 16)
    assert ref.head.weight is ref.tok.weight  # tied
    x = torch.randint(0, V, (3, T))
    y = x.clone()
    y[:, 7] = (y[:, 7] + 1) % V
    with torch.no_grad():
        a, b = ref(x), ref(y)
    assert a.shape == (3, T, V)
    torch.testing.assert_close(a[:, :7], b[:, :7])            # no position sees the future
    assert not torch.allclose(a[:, 7:], b[:, 7:])
    out = ref.generate(torch.zeros((2, 1), dtype=torch.long), 5,
                       generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 6) and out.max() < V


def test_reference_trainer_learns(bench):
    """The timed loop really trains: the loss on a repeating token stream falls."""
    torch.manual_seed(0)
    V, T = 16, 8
    data = torch.arange(4000) % V
    ref = bench.RefGPT(V, T, 1, 2, 16)
    tr = bench.RefTrainer(ref, ref, bench.ref_optimizer(ref, 1e-2, 0.0), data, 8, T, lr=1e-2,
                          warmup=2, total=60)
    tr.run(1)
    first = float(tr.last_loss)
    tr.run(59)
    assert float(tr.last_loss) < 0.2 * first


def test_measure_wall_or_cpu_clock(bench):
    """wall: the seconds the callable reports (its timed part); cpu: the process CPU seconds
    of the call (a no-op that claims 1000 s takes far less CPU)."""
    items = {"a": (lambda: 1000.0, 500)}
    assert bench.measure(items, 2, "wall") == {"a": 0.5}
    assert bench.measure(items, 2, "cpu")["a"] > 1.0


def test_clock_option_reaches_every_measurement(bench, monkeypatch, capsys):
    keys = ("reference", "reference, fused AdamW", "ours, step", "LM.fit end to end")
    clocks = []

    def fake_measure(items, rounds, clock="wall"):
        clocks.append(clock)
        return {k: 1.0 for k in items}
    gen = {"reference generate, no cache": None}
    monkeypatch.setattr(bench, "build", lambda a: ({k: None for k in keys}, gen, 1))
    monkeypatch.setattr(bench, "measure", fake_measure)
    bench.main(["--quick", "--clock", "cpu"])
    assert clocks == ["cpu", "cpu"] and "cpu clock" in capsys.readouterr().out


def test_quick_run_prints_every_row(clock="cpu"):
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_lm.py"), "--quick",
                          "--clock", clock], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    lines = res.stdout.splitlines()
    for label in ("reference ", "reference, fused AdamW", "ours, step", "LM.fit end to end",
                  "LM.sample, KV cache", "LM.sample, no cache", "reference generate, no cache"):
        assert any(ln.startswith(label) for ln in lines), (label, res.stdout)
    assert any(ln.startswith("ratios: ours step / reference ") for ln in lines), res.stdout
    assert "load average before" in res.stdout and "load average after" in res.stdout
    assert f"steps each, {clock} clock" in res.stdout
