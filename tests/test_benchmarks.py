"""The benchmark suite: a --quick run end to end, and the naive reference's correctness.

The naive per-sample RNN is the baseline every "x times faster than naive" figure divides
by, so its gradients are checked against central differences and against minidl, and its
clipping and Adam against hand-computed values and minidl's optimizer.
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minidl as mdl
from benchmarks import common
from benchmarks.__main__ import parse_args
from benchmarks.common import Row, Target, loglog_slope
from benchmarks.activations import accuracy, gates_one_tanh, gates_per_block, sigmoid_exp, tanh_exp
from benchmarks.floors import lstm_gate_arithmetic, lstm_matmuls, rnn_recurrence
from benchmarks.naive import PARAM_NAMES, NaiveRNN
from benchmarks.report import markdown_table

ROOT = Path(__file__).resolve().parents[1]
HEADER = "| workload | measure | minidl | reference | ratio | target | result |"


def _batch(rng, B=3, T=5, F=2, O=2):
    return rng.standard_normal((B, T, F)), rng.standard_normal((B, O))


# ---- the suite end to end ------------------------------------------------------------
@pytest.mark.slow
def test_quick_run_prints_the_table_and_writes_the_png(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--out", str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert HEADER in out
    table = [line for line in out.splitlines() if line.startswith("| ") and line.count("|") == 8]
    rows = table[1:]  # after the header
    # 5 sine rows, 1 trainer-overhead row, 6 forward+backward rows (3 cells x 2 dtypes) and the LSTM's
    # matmul floor, 2 masked-vs-unmasked rows (LSTM, GRU), 1 seq2seq row, 1 variable-length row,
    # 6 activation rows, 3 memory rows (fit, no_grad forward, predict), 3 scaling rows, 2 soak rows
    assert sum("sine training" in r for r in rows) == 5
    assert sum("trainer overhead" in r and "<= 0.1" in r for r in rows) == 1
    assert sum("seq2seq addition training" in r for r in rows) == 1
    assert sum("variable-length classification" in r for r in rows) == 1
    assert sum("forward+backward" in r for r in rows) == 6
    assert sum("LSTM numpy floor" in r for r in rows) == 1
    assert sum("masked vs unmasked" in r and "<= 1.25" in r for r in rows) == 2
    assert sum(("sigmoid" in r or "tanh" in r or "gate block" in r) and "ns per element" in r for r in rows) == 6
    assert sum("memory (LSTM" in r and "<= 1.5" in r for r in rows) == 3
    assert sum("scaling:" in r for r in rows) == 3
    assert sum("soak:" in r for r in rows) == 2
    for target in (">= 3x", ">= 100x", "<= 1 ", "<= 1.4", "<= 1.5", "<= 1.05", "<= 0 "):
        assert any(target in r for r in rows), target
    # every row with a target has a verdict
    for r in rows:
        cells = [c.strip() for c in r.strip("|").split("|")]
        if cells[5] != "-":
            assert cells[6] in ("pass", "**FAIL**", "skipped"), r
    assert "machine:" in out and "numpy:" in out

    png = (tmp_path / "benchmarks.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    results = json.loads((tmp_path / "results.json").read_text())
    assert len(results["rows"]) == 31 and results["quick"] is True
    # the training rows: examples/s of both sides and their ratio
    for name, prefix, unit in (("seq2seq", "seq2seq addition", "examples/s"),
                               ("varlen", "variable-length", "examples/s (masks)")):
        row = next(r for r in results["rows"] if r["workload"].startswith(prefix))
        raw = results["raw"][name]
        assert row["measure"] == "training examples/s vs torch" and row["minidl"].endswith(unit)
        assert row["ratio"] == pytest.approx(raw["minidl"]["examples_per_s"] / raw["torch"]["examples_per_s"])
        assert row["reference"].startswith("torch ") and row["target"] is None
        assert all(len(raw[side]["losses"]) >= 2 and all(map(math.isfinite, raw[side]["losses"]))
                   for side in ("minidl", "torch"))
    over = results["raw"]["overhead"]
    assert 0 < over["overhead_seconds"] < over["epoch_seconds"]
    assert over["share"] == pytest.approx(over["overhead_seconds"] / over["epoch_seconds"])
    assert all(s > 0 for s in over["parts_seconds"].values()) and set(over["parts_seconds"]) == {
        "forward", "backward", "clip", "optimizer"}
    assert "Profile summary:" in out and "- trainer overhead: " in out
    user_row = next(r for r in results["rows"] if r["measure"] == "bench's minidl figure vs a user's fit loop")
    user = results["raw"]["sine"]["user_process"]["windows_per_s"]
    assert user > 0 and user_row["ratio"] == pytest.approx(results["raw"]["sine"]["minidl"]["windows_per_s"] / user)
    naive_row = next(r for r in results["rows"] if r["measure"] == "windows/s vs naive")
    raw = results["raw"]["sine"]
    assert naive_row["ratio"] == pytest.approx(raw["minidl"]["windows_per_s"] / raw["naive"]["windows_per_s"])
    assert naive_row["target"] is None                      # the 100x is against the article's own code:
    article_row = next(r for r in results["rows"] if r["measure"] == "windows/s vs the article's code")
    assert article_row["ratio"] == pytest.approx(raw["minidl"]["windows_per_s"] / raw["article"]["windows_per_s"])
    assert article_row["target"] == ">= 100x"
    floor_row = next(r for r in results["rows"] if r["measure"] == "numpy floor vs naive")
    assert floor_row["ratio"] == pytest.approx(raw["floor"]["windows_per_s"] / raw["naive"]["windows_per_s"])
    assert floor_row["target"] is None and floor_row["passed"] is None
    memory = results["raw"]["memory"]
    assert all(v["peak_bytes"] > 0 for v in memory.values())
    assert {"no_grad_200", "no_grad_2000", "predict_200", "predict_2000"} <= set(memory)
    assert "| workload |" in (tmp_path / "results.md").read_text()
    soak = results["raw"]["soak"]
    assert soak["drift"] == 0.0 and len(soak["readings"]) == 10 and min(soak["readings"]) > 0


@pytest.mark.slow
def test_quick_run_without_torch_skips_its_references(tmp_path):
    code = ("import sys; sys.modules['torch'] = None; from benchmarks.__main__ import main; "
            f"sys.exit(main(['--quick', '--only', 'sine,fwdbwd,seq2seq,varlen', '--out', {str(tmp_path)!r}]))")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "note: PyTorch is not importable" in proc.stdout
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ") and "workload" not in line]
    assert len(rows) == 14  # sine: 5, forward_backward: 6 and the LSTM matmul floor, seq2seq: 1, varlen: 1
    torch_rows = [r for r in rows if "naive" not in r and "user's fit loop" not in r and "article" not in r]
    assert sum("training examples/s vs torch" in r for r in torch_rows) == 2
    assert all("torch not available" in r and r.endswith("| skipped |") for r in torch_rows)
    article_row = next(r for r in rows if "windows/s vs the article's code" in r)
    assert article_row.endswith("| pass |") or article_row.endswith("| **FAIL** |")
    assert (tmp_path / "benchmarks.png").stat().st_size > 10_000


def test_command_line_flags():
    args = parse_args(["--quick", "--only", "fwdbwd,memory", "--only", "memory", "--reps", "3", "--out", "x"])
    assert (args.quick, args.names, args.reps, args.out) == (True, ["forward_backward", "memory"], 3, "x")
    assert parse_args([]).names == ["sine", "overhead", "forward_backward", "masked", "seq2seq", "varlen",
                                    "activations", "memory", "scaling", "soak"]
    assert parse_args(["--only", "classify"]).names == ["varlen"]
    for bad in (["--only", "nope"], ["--reps", "0"]):
        with pytest.raises(SystemExit):
            parse_args(bad)


def test_disturbed_blocks_are_measured_again(monkeypatch):
    loads = iter([1.0, 0.9, 0.1, 2.0, 2.0, 2.0, 2.0])

    class FakeLoad:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.cores = next(loads)

    monkeypatch.setattr(common, "OutsideLoad", FakeLoad)
    monkeypatch.setattr(common, "RETRY_PAUSE", 0.0)
    settings = common.Settings()  # full mode: 3 retries
    monkeypatch.setattr(common.Settings, "settle", 0.0)
    calls = []
    times = common.timed_block(lambda: calls.append(1), settings, reps=2, warmup=1, label="a")
    assert len(times) == 2 and len(calls) == 3 * 3  # three attempts of warm-up + 2 reps
    times = common.timed_block(lambda: calls.append(1), settings, reps=1, warmup=0, label="b")
    assert len(calls) == 9 + 4  # one attempt and 3 retries, all disturbed
    assert settings.noise == [{"block": "a", "retries": 2, "outside_cores": 0.1, "clean": True},
                              {"block": "b", "retries": 3, "outside_cores": 2.0, "clean": False}]


def test_targets_slopes_and_verdicts():
    assert loglog_slope([1, 2, 4, 8], [3, 12, 48, 192]) == pytest.approx(2.0)
    assert loglog_slope([10, 100], [5, 5]) == pytest.approx(0.0)
    at_least = Target(">=", 2.5)
    assert (at_least.check(2.5), at_least.check(2.49), at_least.check(math.nan), at_least.check(None)) == (
        True, False, None, None)
    at_most = Target("<=", 1.0)
    assert (at_most.check(0.99), at_most.check(1.01)) == (True, False)
    text = markdown_table([Row("w", "m", "1 /s", "torch 2 /s", 0.5, at_least),
                           Row("w", "m", "3 ms", "torch 4 ms", 0.75, at_most),
                           Row("w", "m", "k = 1.00")])
    lines = text.splitlines()
    assert lines[0] == HEADER
    assert lines[2] == "| w | m | 1 /s | torch 2 /s | 0.5x | >= 2.5x | **FAIL** |"
    assert lines[3] == "| w | m | 3 ms | torch 4 ms | 0.75x | <= 1 | pass |"
    assert lines[4] == "| w | m | k = 1.00 | - | - | - | - |"


# ---- the training workloads: the same models on both sides, the overhead's split -------------
def test_seq2seq_and_varlen_compare_the_same_models():
    """minidl's and PyTorch's models have the same weights, up to PyTorch's second LSTM bias."""
    torch = pytest.importorskip("torch")
    from benchmarks import seq2seq, varlen

    inputs, target = seq2seq.addition_data(40, 2)
    assert inputs[0].shape == (40, 5, 13) and inputs[1].shape == (40, 3, 13) and target.shape == (40, 3)
    mine = seq2seq.minidl_epoch(inputs, target, 8, 16)
    theirs = seq2seq.torch_epoch(torch, inputs, target, 8, 16)
    count = sum(p.data.size for p in mine.model.parameters())
    assert count == sum(p.numel() for p in theirs.params) - 2 * 4 * 8  # b_hh of the encoder and the decoder
    assert all(p.data.dtype == np.float32 for p in mine.model.parameters())
    x, mask, y = varlen.padded_patterns(60)
    assert x.shape == (60, 60, 1) and x.dtype == np.float32 and 5 <= mask.sum(axis=1).min()
    assert not x[~mask].any()  # zeros after each sequence: the packed side reads none of them
    mine = varlen.minidl_epoch(x, mask, y, 4, 20)
    theirs = varlen.torch_epoch(torch, x, mask, y, 4, 20)
    assert sum(p.data.size for p in mine.model.parameters()) == sum(p.numel() for p in theirs.params)
    for epoch in (mine, theirs):
        epoch()
        epoch()
        assert len(epoch.losses) == 2 and all(math.isfinite(v) for v in epoch.losses)


def test_overhead_timers_split_an_epoch_without_changing_it():
    from benchmarks.overhead import PARTS, sectional_timers, split_epoch
    from benchmarks.sine import minidl_epoch, sine_windows

    x, y = sine_windows(64, 6)
    plain, timed = minidl_epoch(x, y, 4, 16), minidl_epoch(x, y, 4, 16)
    totals = sectional_timers(timed.trainer)
    seconds, parts, overhead = split_epoch(timed, totals, reps=3)
    for _ in range(3):
        plain()
    assert set(parts) == set(PARTS) and all(v > 0 for v in parts.values())
    assert overhead == pytest.approx(seconds - sum(parts.values())) and 0 < overhead < seconds
    # the wrappers time the trainer's calls and change nothing of the training
    assert timed.losses == plain.losses
    for a, b in zip(timed.trainer.model.parameters(), plain.trainer.model.parameters()):
        np.testing.assert_array_equal(a.data, b.data)


# ---- the naive reference ---------------------------------------------------------------
def test_naive_gradients_match_central_differences():
    rng = np.random.default_rng(0)
    xb, yb = _batch(rng)
    net = NaiveRNN(2, 4, 2, dtype=np.float64, seed=1)
    _, grads = net.loss_and_grads(xb, yb)
    eps = 1e-6
    for name in PARAM_NAMES:
        p = net.params[name]
        numeric = np.empty_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + eps
            up, _ = net.loss_and_grads(xb, yb)
            p[i] = old - eps
            down, _ = net.loss_and_grads(xb, yb)
            p[i] = old
            numeric[i] = (up - down) / (2 * eps)
        assert np.abs(grads[name]).max() > 1e-3, name  # a gradient that is really there
        np.testing.assert_allclose(grads[name], numeric, rtol=1e-6, atol=1e-9, err_msg=name)


def test_naive_matches_minidl_loss_and_gradients(float64):
    rng = np.random.default_rng(2)
    xb, yb = _batch(rng, B=4, T=6, F=3, O=2)
    net = NaiveRNN(3, 5, 2, dtype=np.float64, seed=3)
    loss, grads = net.loss_and_grads(xb, yb)
    model = mdl.Sequential([mdl.RNN(mdl.RNNCell(3, 5)), mdl.Dense(5, 2)])
    cell, dense = model.layers[0].cell, model.layers[1]
    P = net.params
    cell.kernel.data[...] = P["U"].T
    cell.recurrent_kernel.data[...] = P["W"].T
    cell.bias.data[...] = P["b"][:, 0]
    dense.kernel.data[...] = P["V"].T
    dense.bias.data[...] = P["c"][:, 0]
    mse = mdl.MSELoss()
    assert mse.forward(model.forward(xb), yb) == pytest.approx(loss, rel=1e-12)
    model.backward(mse.backward())
    pairs = ((cell.kernel, grads["U"].T), (cell.recurrent_kernel, grads["W"].T), (cell.bias, grads["b"][:, 0]),
             (dense.kernel, grads["V"].T), (dense.bias, grads["c"][:, 0]))
    for p, expected in pairs:
        np.testing.assert_allclose(p.grad, expected, rtol=1e-10, atol=1e-13, err_msg=p.name)


def test_naive_clip_by_global_norm():
    net = NaiveRNN(1, 2, 1, dtype=np.float64, max_norm=5.0)
    grads = {n: np.zeros_like(p) for n, p in net.params.items()}
    grads["W"][0, 0], grads["c"][0, 0] = 6.0, 8.0  # norm 10
    assert net.clip(grads) == pytest.approx(10.0)
    assert grads["W"][0, 0] == pytest.approx(6.0 * 5.0 / (10.0 + 1e-6), rel=1e-12)
    assert grads["c"][0, 0] == pytest.approx(8.0 * 5.0 / (10.0 + 1e-6), rel=1e-12)
    small = {n: np.full_like(p, 0.1) for n, p in net.params.items()}
    before = {n: g.copy() for n, g in small.items()}
    net.clip(small)
    for n in small:
        np.testing.assert_array_equal(small[n], before[n])


def test_naive_adam_matches_minidl_adam():
    rng = np.random.default_rng(4)
    net = NaiveRNN(2, 3, 1, dtype=np.float64, seed=5, lr=0.01)
    start = {n: p.copy() for n, p in net.params.items()}
    params = [mdl.Parameter(start[n].copy(), n) for n in PARAM_NAMES]
    adam = mdl.Adam(params, lr=0.01)
    first = None
    for step in range(3):
        grads = {n: rng.standard_normal(p.shape) for n, p in net.params.items()}
        first = first or {n: g.copy() for n, g in grads.items()}
        for p in params:
            p.grad[...] = grads[p.name]
        adam.step()
        net.adam_step(grads)
        if step == 0:
            # first bias-corrected step: lr * g / (|g| + eps)
            for n in PARAM_NAMES:
                g = first[n]
                np.testing.assert_allclose(net.params[n], start[n] - 0.01 * g / (np.abs(g) + 1e-8), rtol=1e-12)
    for p in params:
        np.testing.assert_allclose(net.params[p.name], p.data, rtol=1e-12, atol=1e-15)


def test_naive_training_lowers_the_loss():
    from benchmarks.sine import sine_windows

    x, y = sine_windows(64, 10, np.float32)
    net = NaiveRNN(1, 8, 1, dtype=np.float32, seed=0, lr=1e-2)
    first = net.fit_epoch(x, y, batch_size=16, rng=np.random.default_rng(0))
    for _ in range(4):
        last = net.fit_epoch(x, y, batch_size=16, rng=np.random.default_rng(0))
    assert net.params["W"].dtype == np.float32
    assert last < 0.5 * first


# ---- the floors ------------------------------------------------------------------------
def test_rnn_floor_does_the_whole_recurrence():
    """The floor must do all the recurrent work of minidl's RNN, or its ceiling would be too high."""
    B, T, H = 3, 6, 4
    run = rnn_recurrence(B, T, H, dtype=np.float64)
    hs, dh0 = run()
    cell = mdl.RNNCell(H, H).astype(np.float64)
    cell.kernel.data[...] = np.eye(H)  # so that x @ kernel + bias is the floor's projection
    cell.bias.data[...] = 0.0
    cell.recurrent_kernel.data[...] = run.recurrent_kernel
    out, (h_T,), cache = cell.forward_sequence(run.projection, (np.zeros((B, H)),))
    np.testing.assert_allclose(hs[1:], out, rtol=1e-12, atol=1e-14)
    _, (dh_ref,) = cell.backward_sequence(None, (np.ones((B, H)),), cache)
    np.testing.assert_allclose(dh0, dh_ref, rtol=1e-12, atol=1e-14)
    hs2, dh2 = run()  # a second run starts afresh
    np.testing.assert_array_equal(hs2, hs)
    np.testing.assert_array_equal(dh2, dh0)


def test_lstm_floor_products_have_the_gradients_shapes():
    B, T, F, H = 2, 3, 5, 4
    for layout, run in lstm_matmuls(B, T, F, H).items():
        shapes = [p.shape for p in run()]
        expected = [(F, 4 * H), (H, 4 * H), (T * B, F)]
        if layout == "feature-major":
            expected = [s[::-1] for s in expected]
        assert shapes == expected, layout


def test_lstm_gate_floor_gives_the_bias_gradient_of_minidl():
    """The floor's gate arithmetic is a whole LSTM forward + backward minus the matrix products.

    Without them the floor's states do not feed its gates and its ``dh`` is never replaced,
    so it matches minidl's LSTM with a zero recurrent kernel fed the pre-activations
    ``(z + rec) / scale`` (minidl folds the 1/2 of its sigmoids into the weights) and the
    output gradients summed from the end (what the floor's ``dh`` holds at each step).
    """
    B, T, H = 2, 4, 3
    run = lstm_gate_arithmetic(B, T, H, dtype=np.float64)
    z0 = run.pre_activations.copy()
    db = run()
    scale = np.repeat([0.5, 0.5, 1.0, 0.5], H)[:, None]
    cell = mdl.LSTMCell(4 * H, H).astype(np.float64)
    cell.kernel.data[...] = np.eye(4 * H)
    cell.recurrent_kernel.data[...] = 0.0
    cell.bias.data[...] = 0.0
    xs = ((z0 + run.recurrent) / scale).transpose(0, 2, 1)
    zeros = (np.zeros((B, H)), np.zeros((B, H)))
    _, _, cache = cell.forward_sequence(xs, zeros)
    dhs = np.cumsum(run.output_grad[::-1], axis=0)[::-1].transpose(0, 2, 1)
    cell.zero_grad()
    cell.backward_sequence(dhs, zeros, cache)
    assert np.abs(db).max() > 1e-2
    np.testing.assert_allclose(db, cell.bias.grad, rtol=1e-12, atol=1e-14)


# ---- the activation forms ----------------------------------------------------------------
def test_activation_forms_compute_the_functions():
    x = np.linspace(-30, 30, 601)
    np.testing.assert_allclose(sigmoid_exp(x, np.empty_like(x)), 1 / (1 + np.exp(-x)), rtol=1e-15)
    np.testing.assert_allclose(tanh_exp(x, np.empty_like(x)), np.tanh(x), rtol=0, atol=1e-15)
    H = 3
    z = np.random.default_rng(0).standard_normal((2, 4 * H)) * 4
    scale = np.repeat([0.5, 0.5, 1.0, 0.5], H)
    shift = np.repeat([0.5, 0.5, 0.0, 0.5], H)
    one = gates_one_tanh(z, np.empty_like(z), scale, shift)
    np.testing.assert_allclose(one, gates_per_block(z, np.empty_like(z), H), rtol=0, atol=1e-15)
    expected = np.concatenate([1 / (1 + np.exp(-z[:, :2 * H])), np.tanh(z[:, 2 * H:3 * H]),
                               1 / (1 + np.exp(-z[:, 3 * H:]))], axis=1)
    np.testing.assert_allclose(one, expected, rtol=0, atol=1e-15)


def test_activation_accuracy_measure():
    eps32 = float(np.finfo(np.float32).eps)
    err, warned = accuracy(lambda x, out: np.tanh(x, out=out), np.tanh, np.float32)
    assert err <= 1.0 and not warned
    # float32 exp overflows beyond 88: the textbook sigmoid warns there
    assert accuracy(sigmoid_exp, lambda x: 1 / (1 + np.exp(-x)), np.float32)[1]
    # a form off by 1e-5 shows up as about 1e-5 / eps32
    err, _ = accuracy(lambda x, out: np.add(np.tanh(x, out=out), 1e-5, out=out), np.tanh, np.float32)
    assert err == pytest.approx(1e-5 / eps32, rel=0.05)
