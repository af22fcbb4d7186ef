"""Property-based tests (hypothesis): random shapes, dtypes and seeds.

* gradcheck passes for Dense, the activations, RNN around each cell (both
  ``return_sequences``) and a Sequential stack, built in float32 or float64;
* TBPTT with ``k2 >= T`` (and ``k1 >= T`` for many-to-many) makes exactly the updates of
  full BPTT (a hand-written loop of forward, loss, backward, step per batch);
* ``predict(x, batch_size=b)`` equals ``predict(x)``;
* state dicts (model, optimizer, scalers) and model files round-trip exactly;
* ``sliding_windows`` and the scalers of ``minidl.data`` satisfy their defining identities.

Examples are few per test (``max_examples``) and derandomized, so the suite stays fast
and deterministic; ``EXAMPLES`` counts the examples that ran.
"""

import collections

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minidl as mdl
from minidl import data

EXAMPLES = collections.Counter()


def _settings(n):
    return settings(
        max_examples=n,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


DTYPES = st.sampled_from([np.float32, np.float64])
SEEDS = st.integers(0, 2**32 - 1)
CELLS = ("rnn_tanh", "rnn_sigmoid", "lstm", "gru")


def _cell(kind, f, h):
    if kind.startswith("rnn"):
        return mdl.RNNCell(f, h, activation=kind[4:])
    return {"lstm": mdl.LSTMCell, "gru": mdl.GRUCell}[kind](f, h)


def _normal(seed, shape, dtype, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


# ---- gradcheck ------------------------------------------------------------------------------------
@_settings(40)
@given(batch=st.integers(1, 3), lead=st.lists(st.integers(1, 3), max_size=2), fin=st.integers(1, 4),
       fout=st.integers(1, 3), bias=st.booleans(), dtype=DTYPES, seed=SEEDS)
def test_dense_gradcheck(batch, lead, fin, fout, bias, dtype, seed):
    EXAMPLES["dense_gradcheck"] += 1
    mdl.set_seed(seed % 1000)
    layer = mdl.Dense(fin, fout, bias=bias).astype(dtype)
    x = _normal(seed, (batch, *lead, fin), dtype)
    assert layer.forward(x).shape == (batch, *lead, fout)
    assert mdl.gradcheck(layer, x)


@_settings(40)
@given(kind=st.sampled_from(["Tanh", "Sigmoid", "ReLU"]), shape=st.lists(st.integers(1, 4), min_size=1, max_size=3),
       scale=st.floats(0.1, 6.0), dtype=DTYPES, seed=SEEDS)
def test_activation_gradcheck(kind, shape, scale, dtype, seed):
    EXAMPLES["activation_gradcheck"] += 1
    x = _normal(seed, shape, dtype, scale)
    if kind == "ReLU":  # keep away from the kink at 0, where the derivative is not defined
        x = np.where(np.abs(x) < 1e-2, np.asarray(0.5, dtype), x)
    layer = getattr(mdl, kind)()
    y = layer.forward(x)
    assert y.shape == x.shape and y.dtype == dtype
    assert mdl.gradcheck(layer, x)


@_settings(80)
@given(kind=st.sampled_from(CELLS), return_sequences=st.booleans(), batch=st.integers(1, 3), time=st.integers(1, 6),
       features=st.integers(1, 3), hidden=st.integers(1, 4), dtype=DTYPES, seed=SEEDS)
def test_rnn_gradcheck(kind, return_sequences, batch, time, features, hidden, dtype, seed):
    EXAMPLES["rnn_gradcheck"] += 1
    mdl.set_seed(seed % 1000)
    rnn = mdl.RNN(_cell(kind, features, hidden), return_sequences=return_sequences).astype(dtype)
    x = _normal(seed, (batch, time, features), dtype)
    out = rnn.forward(x)
    assert out.shape == ((batch, time, hidden) if return_sequences else (batch, hidden)) and out.dtype == dtype
    assert mdl.gradcheck(rnn, x)


@_settings(40)
@given(first=st.sampled_from(CELLS), second=st.sampled_from(CELLS), return_sequences=st.booleans(),
       sizes=st.tuples(*[st.integers(1, 3)] * 5), time=st.integers(1, 4), dtype=DTYPES, seed=SEEDS)
def test_sequential_stack_gradcheck(first, second, return_sequences, sizes, time, dtype, seed):
    EXAMPLES["sequential_gradcheck"] += 1
    f, h1, d, h2, out = sizes
    mdl.set_seed(seed % 1000)
    model = mdl.Sequential([
        mdl.RNN(_cell(first, f, h1), return_sequences=True),
        mdl.Dense(h1, d),
        mdl.Tanh(),
        mdl.RNN(_cell(second, d, h2), return_sequences=return_sequences),
        mdl.Dense(h2, out),
        mdl.Sigmoid(),
    ]).astype(dtype)
    x = _normal(seed, (2, time, f), dtype)
    assert mdl.gradcheck(model, x)


# ---- TBPTT with a long enough window is full BPTT ------------------------------------------------
def _full_bptt(model, opt, loss, x, y, batch_size):
    """One epoch of plain BPTT, written out: per batch forward, loss, backward, step."""
    for start in range(0, len(x), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        opt.zero_grad()
        pred = model.forward(xb)
        loss.forward(pred, yb)
        model.backward(loss.backward())
        opt.step()


def _optimizer(name, model):
    return mdl.SGD(model.parameters(), lr=0.1, momentum=0.5) if name == "sgd" else mdl.Adam(model.parameters(), lr=0.05)


@_settings(60)
@given(kind=st.sampled_from(CELLS), many_to_many=st.booleans(), n=st.integers(1, 6), time=st.integers(1, 6),
       batch_size=st.integers(1, 6), extra=st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(1, 8)),
       opt=st.sampled_from(["sgd", "adam"]), seed=SEEDS)
def test_tbptt_with_k2_at_least_T_is_full_bptt(kind, many_to_many, n, time, batch_size, extra, opt, seed):
    EXAMPLES["tbptt_equals_bptt"] += 1
    k2 = time + extra[1]
    # many-to-many needs k1 >= T for a single update per batch; many-to-one ignores k1
    k1 = min(time + extra[0], k2) if many_to_many else min(extra[2], k2)
    mdl.set_default_dtype(np.float64)
    x = _normal(seed, (n, time, 2), np.float64)
    y = _normal(seed + 1, (n, time, 1) if many_to_many else (n, 1), np.float64)

    def build():
        mdl.set_seed(seed % 1000)
        return mdl.Sequential([mdl.RNN(_cell(kind, 2, 3), return_sequences=many_to_many), mdl.Dense(3, 1)])

    model = build()
    trainer = mdl.TBPTTTrainer(model, mdl.MSELoss(), _optimizer(opt, model), k1=k1, k2=k2, seed=0)
    trainer.fit(x, y, epochs=1, batch_size=batch_size, shuffle=False, verbose=0)

    reference = build()
    _full_bptt(reference, _optimizer(opt, reference), mdl.MSELoss(), x, y, batch_size)
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)


# ---- predict in batches ------------------------------------------------------------------------------
@_settings(50)
@given(kind=st.sampled_from(CELLS), return_sequences=st.booleans(), n=st.integers(1, 9), batch_size=st.integers(1, 10),
       time=st.integers(1, 5), dtype=DTYPES, seed=SEEDS)
def test_predict_in_batches_equals_predict_whole(kind, return_sequences, n, batch_size, time, dtype, seed):
    EXAMPLES["predict_batches"] += 1
    mdl.set_seed(seed % 1000)
    model = mdl.Sequential([mdl.RNN(_cell(kind, 2, 4), return_sequences=return_sequences), mdl.Dense(4, 2)]).astype(dtype)
    x = _normal(seed, (n, time, 2), dtype)
    whole = model.predict(x)
    batched = model.predict(x, batch_size=batch_size)
    assert batched.shape == whole.shape and batched.dtype == whole.dtype == dtype
    # row by row the same arithmetic, but BLAS may block a matrix product differently for
    # another row count: the last bits may differ (they do for larger sizes)
    tol = 64 * np.finfo(dtype).eps
    np.testing.assert_allclose(batched, whole, rtol=tol, atol=tol)


# ---- state dict round trips ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("roundtrip")


@_settings(40)
@given(kind=st.sampled_from(CELLS), return_sequences=st.booleans(), hidden=st.integers(1, 4), dtype=DTYPES,
       seeds=st.tuples(SEEDS, SEEDS), steps=st.integers(0, 3))
def test_state_dict_round_trips(folder, kind, return_sequences, hidden, dtype, seeds, steps):
    EXAMPLES["state_dict_round_trip"] += 1

    def build(seed):
        mdl.set_seed(seed % 1000)
        return mdl.Sequential([mdl.RNN(_cell(kind, 2, hidden), return_sequences=return_sequences),
                               mdl.Dense(hidden, 1)]).astype(dtype)

    a, b = build(seeds[0]), build(seeds[1] + 1)
    opt_a = mdl.Adam(a.parameters(), lr=0.01)
    x = _normal(seeds[0], (3, 4, 2), dtype)
    for _ in range(steps):  # give the optimizer some state
        opt_a.zero_grad()
        a.backward(np.ones_like(a.forward(x)))
        opt_a.step()
    state = a.state_dict()
    b.load_state_dict(state)
    for k, v in state.items():
        assert b.state_dict()[k].dtype == dtype
        np.testing.assert_array_equal(b.state_dict()[k], v)
    state[next(iter(state))][...] += 1.0  # a copy: editing it leaves both models alone
    np.testing.assert_array_equal(a.predict(x), b.predict(x))

    opt_b = mdl.Adam(b.parameters(), lr=0.5)
    opt_b.load_state_dict(opt_a.state_dict())
    for model, opt in ((a, opt_a), (b, opt_b)):  # the same next step
        opt.zero_grad()
        model.backward(np.ones_like(model.forward(x)))
        opt.step()
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p.data, q.data)

    path = folder / "m.npz"
    a.save(path)
    loaded = mdl.load_model(path)
    assert loaded.get_config() == a.get_config()
    for (n, p), (m, q) in zip(a.named_parameters(), loaded.named_parameters()):
        assert n == m and q.data.dtype == dtype
        np.testing.assert_array_equal(p.data, q.data)


# ---- minidl.data -----------------------------------------------------------------------------------
@_settings(60)
@given(length=st.integers(1, 40), features=st.sampled_from([None, 1, 3]), window=st.integers(1, 12),
       horizon=st.integers(1, 4), stride=st.integers(1, 5), seed=SEEDS)
def test_sliding_windows_identities(length, features, window, horizon, stride, seed):
    EXAMPLES["sliding_windows"] += 1
    series = _normal(seed, (length,) if features is None else (length, features), np.float64)
    if length < window + horizon:
        with pytest.raises(ValueError, match="too short"):
            data.sliding_windows(series, window, horizon=horizon, stride=stride)
        return
    x, y = data.sliding_windows(series, window, horizon=horizon, stride=stride)
    s = series[:, None] if features is None else series
    n = (length - window - horizon) // stride + 1
    assert x.shape == (n, window, s.shape[1])
    assert y.shape == ((n, s.shape[1]) if horizon == 1 else (n, horizon, s.shape[1]))
    for i in range(n):  # x[i, j] = s[i*stride + j], the targets right after
        start = i * stride
        np.testing.assert_array_equal(x[i], s[start:start + window])
        target = y[i] if horizon > 1 else y[i][None]
        np.testing.assert_array_equal(target, s[start + window:start + window + horizon])
    # no window start is skipped: the next one would not fit
    assert n * stride + window + horizon > length


@st.composite
def _table(draw):
    rows, cols = draw(st.integers(1, 12)), draw(st.integers(1, 4))
    values = draw(st.lists(st.floats(-1e6, 1e6, allow_subnormal=False), min_size=rows * cols, max_size=rows * cols))
    x = np.array(values, np.float64).reshape(rows, cols)
    constant = draw(st.lists(st.booleans(), min_size=cols, max_size=cols))
    x[:, np.array(constant)] = x[0, np.array(constant)]  # some constant features
    return x


@_settings(60)
@given(x=_table(), lo_width=st.tuples(st.floats(-5, 5), st.floats(0.01, 10)), dtype=DTYPES)
def test_scalers_invert_and_map_to_their_ranges(x, lo_width, dtype):
    EXAMPLES["scalers"] += 1
    x = x.astype(dtype)
    span = float(np.max(np.abs(x)))
    lo, hi = lo_width[0], lo_width[0] + lo_width[1]
    eps = np.finfo(dtype).eps
    for scaler in (data.MinMaxScaler((lo, hi)), data.StandardScaler()):
        t = scaler.fit_transform(x)
        assert t.shape == x.shape and t.dtype == dtype
        # the scaled values are rounded to dtype: a narrow (hi - lo) far from 0 amplifies that
        amplify = max(1.0, abs(lo), abs(hi)) / (hi - lo) if isinstance(scaler, data.MinMaxScaler) else 1.0
        np.testing.assert_allclose(scaler.inverse_transform(t), x, rtol=50 * eps,
                                   atol=50 * eps * max(1.0, span) * max(1.0, amplify))
        again = type(scaler)(*(((lo, hi),) if isinstance(scaler, data.MinMaxScaler) else ()))
        again.load_state_dict(scaler.state_dict())
        np.testing.assert_array_equal(again.transform(x), t)
        x64 = x.astype(np.float64)
        varies = np.ptp(x64, axis=0) > 1e-3 * max(1.0, span)
        if isinstance(scaler, data.MinMaxScaler):
            tt = t.astype(np.float64)
            np.testing.assert_allclose(tt.min(axis=0)[varies], lo, atol=1e-4 * (hi - lo) + 1e-6)
            np.testing.assert_allclose(tt.max(axis=0)[varies], hi, atol=1e-4 * (hi - lo) + 1e-6)
            np.testing.assert_allclose(tt[:, np.ptp(x64, axis=0) == 0], lo, atol=1e-6)
        else:
            tt = t.astype(np.float64)
            np.testing.assert_allclose(tt.mean(axis=0)[varies], 0.0, atol=1e-3)
            np.testing.assert_allclose(tt.std(axis=0)[varies], 1.0, rtol=1e-3)
            np.testing.assert_allclose(tt[:, np.ptp(x64, axis=0) == 0], 0.0, atol=1e-6)


@pytest.mark.parametrize("n", [5, 7, 12])
def test_standard_scaler_maps_a_constant_feature_to_zero(n):
    """Found by the property above: the rounded mean of five copies of 116508.68864973 misses
    it by an ulp, the std came out 1.5e-11 instead of 0, and the value mapped to -1."""
    x = np.full((n, 2), 116508.68864973)
    x[:, 1] = np.arange(n)
    scaler = data.StandardScaler().fit(x)
    assert scaler.state_dict()["std"][0] == 0.0
    t = scaler.transform(x)
    np.testing.assert_array_equal(t[:, 0], 0.0)
    np.testing.assert_array_equal(scaler.inverse_transform(t)[:, 0], x[:, 0])


def test_examples_ran():
    """Runs last: how many examples the properties above ran (shown with ``pytest -s``)."""
    if len(EXAMPLES) < 9:
        pytest.skip("run the whole module to count the examples")
    print(f"hypothesis examples: {dict(EXAMPLES)}, total {sum(EXAMPLES.values())}")
    assert all(n >= 10 for n in EXAMPLES.values()), EXAMPLES
