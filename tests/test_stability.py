"""Numerical stability at extreme inputs: finite results and no floating-point warnings.

Every check runs with warnings as errors and ``np.errstate(over, invalid, divide =
"raise")``, so an overflow inside ``exp`` or an ``inf - inf`` anywhere fails the test
even where the final value would come out right. Underflow is left alone: a gradient
that becomes exactly 0 in a saturated unit is the correct result.
"""

import numpy as np
import pytest

import minidl as mdl
from tests.helpers import warnings_as_errors

DTYPES = [np.float32, np.float64]
EXTREMES = [-1e4, -1e3, -710.0, -100.0, -89.0, -20.0, -1.0, -1e-30, 0.0, 1e-30, 1.0, 20.0, 89.0, 100.0, 710.0, 1e3, 1e4]


def _extreme_inputs(dtype, shape=(6, 10)):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1e4, 1e4, size=shape)
    flat = x.reshape(-1)
    n = min(len(EXTREMES), flat.size)
    flat[:n] = np.array(EXTREMES)[np.linspace(0, len(EXTREMES) - 1, n).round().astype(int)]
    return x.astype(dtype)


# ---- activation layers ------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["Sigmoid", "Tanh"])
def test_activation_layers_at_extremes(kind, dtype):
    x = _extreme_inputs(dtype)
    layer = getattr(mdl, kind)()
    g = np.ones_like(x)
    with warnings_as_errors():
        y = layer.forward(x)
        dx = layer.backward(g)
    assert y.dtype == dtype and dx.dtype == dtype
    assert np.isfinite(y).all() and np.isfinite(dx).all()
    lo = 0.0 if kind == "Sigmoid" else -1.0
    assert (y >= lo).all() and (y <= 1.0).all()
    # saturation is exact: f(+-1e4) hits the limits, and the derivative there is 0
    big = np.abs(x) >= 1e3
    np.testing.assert_array_equal(y[big & (x > 0)], 1.0)
    np.testing.assert_array_equal(y[big & (x < 0)], lo)
    np.testing.assert_array_equal(dx[big], 0.0)
    # and the middle is right: f(0), f'(0)
    zero = x == 0
    np.testing.assert_array_equal(y[zero], 0.5 if kind == "Sigmoid" else 0.0)
    np.testing.assert_allclose(dx[zero], 0.25 if kind == "Sigmoid" else 1.0)
    # against float64 reference formulas written differently (exp-based, stable branches).
    # The absolute error is a few ulps of 1; sigmoid = (1 + tanh(x/2)) / 2 returns 0 where
    # the true value is below ~eps (x < -20 in float32), so no relative accuracy there.
    x64 = x.astype(np.float64)
    e = np.exp(-np.abs(x64))
    ref = np.where(x64 >= 0, 1 / (1 + e), e / (1 + e)) if kind == "Sigmoid" else np.tanh(x64)
    np.testing.assert_allclose(y, ref, rtol=0, atol=2 * np.finfo(dtype).eps)


# ---- recurrent cells -----------------------------------------------------------------------------------
CELLS = [
    ("rnn_tanh", lambda f, h: mdl.RNNCell(f, h, activation="tanh")),
    ("rnn_sigmoid", lambda f, h: mdl.RNNCell(f, h, activation="sigmoid")),
    ("lstm", mdl.LSTMCell),
    ("gru", mdl.GRUCell),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name, make", CELLS, ids=[c[0] for c in CELLS])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_cells_in_rnn_at_extremes(name, make, dtype, return_sequences):
    """Inputs up to |x| = 1e4 saturate every gate; forward and backward stay finite."""
    mdl.set_seed(0)
    rnn = mdl.RNN(make(3, 4), return_sequences=return_sequences).astype(dtype)
    x = _extreme_inputs(dtype, (4, 12, 3))
    with warnings_as_errors():
        out = rnn.forward(x)
        g = np.ones_like(out)
        dx = rnn.backward(g)
    assert out.dtype == dtype and np.isfinite(out).all()
    assert np.abs(out).max() <= 1.0  # tanh / sigmoid outputs; LSTM: |h| = |o tanh(c)| <= 1
    assert np.isfinite(dx).all()
    for p in rnn.parameters():
        assert np.isfinite(p.grad).all(), p.name


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name, make", CELLS, ids=[c[0] for c in CELLS])
def test_cells_with_huge_weights(name, make, dtype):
    """Weights scaled to 1e3 (a diverged model): activations saturate, nothing overflows."""
    mdl.set_seed(1)
    rnn = mdl.RNN(make(2, 3), return_sequences=True).astype(dtype)
    for p in rnn.parameters():
        p.data *= dtype(1e3)
    x = np.random.default_rng(1).standard_normal((3, 8, 2)).astype(dtype) * 10
    with warnings_as_errors():
        out = rnn.forward(x)
        dx = rnn.backward(np.ones_like(out))
    assert np.isfinite(out).all() and np.abs(out).max() <= 1.0
    assert np.isfinite(dx).all() and all(np.isfinite(p.grad).all() for p in rnn.parameters())


@pytest.mark.parametrize("dtype", DTYPES)
def test_single_cell_steps_at_extremes(dtype):
    """The one-step ``Cell.forward`` path with a saturating state as well."""
    mdl.set_seed(2)
    x = _extreme_inputs(dtype, (5, 3))
    for name, make in CELLS:
        cell = make(3, 2).astype(dtype)
        state = tuple(np.full((5, n), 1e4, dtype) for n in cell.state_size)
        with warnings_as_errors():
            new = cell.forward(x, state)
        assert all(np.isfinite(s).all() for s in new), name


# ---- losses ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "dtype, big", [(np.float32, 1e20), (np.float32, 3e38), (np.float64, 1e200), (np.float64, 1.7e308)]
)
def test_mse_reports_inf_without_warnings(dtype, big):
    pred = np.array([[big, 1.0], [-big, 0.0]], dtype)
    target = np.array([[-big, 1.0], [big, 0.0]], dtype)
    loss = mdl.MSELoss()
    with warnings_as_errors():
        value = loss.forward(pred, target)
        grad = loss.backward()
    assert value == np.inf  # the mean of squares overflows: reported, not hidden
    assert grad.shape == pred.shape and grad.dtype == dtype
    # dL/dpred = 2 (pred - target) / 4, in dtype: inf where pred - target itself overflows
    with np.errstate(over="ignore"):
        expected = (pred - target) * dtype(0.5)
    np.testing.assert_array_equal(grad, expected)
    assert grad[0, 1] == 0.0 and grad[0, 0] > 0 and grad[1, 0] < 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_mse_at_large_but_representable_values_is_exact(dtype):
    pred = np.array([1e4, -1e4], dtype)
    target = np.zeros(2, dtype)
    loss = mdl.MSELoss()
    with warnings_as_errors():
        assert loss.forward(pred, target) == 1e8
        np.testing.assert_array_equal(loss.backward(), [1e4, -1e4])


def _loss(name):
    if not hasattr(mdl, name):
        pytest.skip(f"minidl has no {name}")
    return getattr(mdl, name)()


def _logsumexp(z):
    m = z.max(axis=-1, keepdims=True)
    return (m + np.log(np.exp(z - m).sum(axis=-1, keepdims=True)))[..., 0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_at_extreme_logits(dtype):
    loss = _loss("CrossEntropyLoss")
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [1e4, 1e4, -1e4], [0.0, 0.0, 0.0]], dtype)
    classes = np.array([1, 2, 0, 1])  # a hopelessly wrong, a right, a tied and a uniform row
    with warnings_as_errors():
        value = loss.forward(logits, classes)
        grad = loss.backward()
    z = logits.astype(np.float64)
    expected = np.mean(_logsumexp(z) - z[np.arange(4), classes])  # (2e4 + 0 + log 2 + log 3) / 4
    assert np.isfinite(value)
    assert value == pytest.approx(expected, rel=1e-6)
    assert grad.shape == logits.shape and np.isfinite(grad).all()
    softmax = np.exp(z - _logsumexp(z)[:, None])
    onehot = np.eye(3)[classes]
    np.testing.assert_allclose(grad, (softmax - onehot) / 4, atol=1e-7)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_with_logits_at_extreme_logits(dtype):
    loss = _loss("BCEWithLogitsLoss")
    logits = np.array([1e4, -1e4, 1e4, -1e4, 0.0, 88.0, -88.0], dtype)
    target = np.array([1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0], dtype)
    with warnings_as_errors():
        value = loss.forward(logits, target)
        grad = loss.backward()
    z = logits.astype(np.float64)
    # log(1 + exp(-|z|)) + max(z, 0) - z * t, written without overflow
    terms = np.maximum(z, 0) - z * target + np.log1p(np.exp(-np.abs(z)))
    assert np.isfinite(value) and value == pytest.approx(terms.mean(), rel=1e-6)
    sig = np.where(z >= 0, 1 / (1 + np.exp(-np.abs(z))), np.exp(-np.abs(z)) / (1 + np.exp(-np.abs(z))))
    assert np.isfinite(grad).all()
    np.testing.assert_allclose(grad, (sig - target) / z.size, atol=1e-7)


# ---- a whole model on extreme data ---------------------------------------------------------------------------
def test_training_step_on_extreme_inputs_stays_finite():
    """One trainer update on inputs of magnitude 1e4: saturated, finite, warning-free."""
    mdl.set_seed(3)
    model = mdl.Sequential([mdl.RNN(mdl.LSTMCell(2, 4), return_sequences=True), mdl.Dense(4, 1)])
    trainer = mdl.TBPTTTrainer(model, mdl.MSELoss(), mdl.Adam(model.parameters(), lr=0.01), k1=3, k2=5, seed=0)
    x = _extreme_inputs(np.float32, (4, 9, 2))
    y = np.sign(x[..., :1])
    with warnings_as_errors():
        hist = trainer.fit(x, y, epochs=2, batch_size=2, verbose=0)
    assert np.isfinite(hist.history["loss"]).all()
    assert all(np.isfinite(p.data).all() for p in model.parameters())


@pytest.mark.parametrize("lr", [1e38, 1e30])
def test_diverging_training_under_strict_floating_point_settings(lr):
    """With warnings as errors and np.errstate(raise), a diverging run still ends in the
    trainer's FloatingPointError with the last finite weights, not in a numpy warning
    raised halfway through an update."""
    mdl.set_seed(0)
    model = mdl.Sequential([mdl.RNN(mdl.GRUCell(1, 8)), mdl.Dense(8, 1)])
    trainer = mdl.TBPTTTrainer(model, mdl.MSELoss(), mdl.SGD(model.parameters(), lr=lr), seed=0)
    x = np.random.default_rng(0).standard_normal((16, 10, 1)).astype(np.float32)
    y = x.sum(axis=1)
    snapshots = []

    class Keep(mdl.Callback):
        def on_batch_end(self, batch, logs=None):
            snapshots.append(self.model.state_dict())

    first = model.state_dict()
    with warnings_as_errors(), pytest.raises(FloatingPointError, match=r"^fit: the (loss is inf|update) at epoch"):
        trainer.fit(x, y, epochs=3, batch_size=8, callbacks=[Keep()], verbose=0)
    last = snapshots[-1] if snapshots else first  # the weights after the last completed batch
    for k, v in last.items():
        assert np.isfinite(model.state_dict()[k]).all(), k
        np.testing.assert_array_equal(model.state_dict()[k], v, err_msg=k)


def test_an_overflowing_step_under_warnings_as_errors_is_rolled_back():
    """The optimizer overflows after updating every parameter: under -W error numpy would
    raise inside the step, after the first parameters changed; the trainer rolls back."""
    mdl.set_seed(12)
    model = mdl.Sequential([mdl.RNN(mdl.GRUCell(2, 3)), mdl.Dense(3, 1)])

    class Overflowing(mdl.SGD):
        def step(self):
            super().step()
            self.params[-1].data *= np.float32(1e38)
            self.params[-1].data *= np.float32(1e38)

    trainer = mdl.TBPTTTrainer(model, mdl.MSELoss(), Overflowing(model.parameters(), lr=0.1))
    before = model.state_dict()
    x = np.random.default_rng(0).standard_normal((4, 5, 2)).astype(np.float32)
    with warnings_as_errors(), pytest.raises(FloatingPointError, match=r"update at epoch 1, batch 1 made weights non-finite"):
        trainer.fit(x, np.ones((4, 1), np.float32), batch_size=4, verbose=0)
    for k, v in before.items():
        np.testing.assert_array_equal(model.state_dict()[k], v, err_msg=k)
