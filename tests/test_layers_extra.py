"""Embedding, Dropout, LayerNorm, Bidirectional, Flatten and Reshape: hand-computed
values, gradient checks in float64, bad inputs, seeding, and save/load."""

import math

import numpy as np
import pytest

import minidl as mdl
from tests.helpers import assert_fit_is_one_manual_step
from minidl.layers.embedding import _scatter_add_rows


class FixedMaskDropout(mdl.Dropout):
    """Test-only Dropout whose mask is given, so that gradcheck sees one function."""

    def __init__(self, p, keep):
        super().__init__(p)
        self.keep = np.asarray(keep, bool)

    def sample_mask(self, shape):
        return self.keep


def _roundtrip(model, tmp_path, x):
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = mdl.load_model(path)
    assert [type(a) for a in loaded.layers] == [type(b) for b in model.layers]
    assert loaded.state_dict().keys() == model.state_dict().keys()
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[name], value, err_msg=name)
        assert loaded.state_dict()[name].dtype == value.dtype
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    return loaded


# ---- Embedding -------------------------------------------------------------------------------
def test_embedding_lookup_and_backward_by_hand(float64):
    emb = mdl.Embedding(4, 2)
    emb.embeddings.data[...] = [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0], [6.0, 7.0]]
    x = np.array([[0, 2], [2, 1]])
    y = emb.forward(x)
    np.testing.assert_array_equal(y, [[[0, 1], [4, 5]], [[4, 5], [2, 3]]])
    g = np.array([[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]]])
    assert emb.backward(g) is None                       # no gradient w.r.t. indices
    # row 2 was read twice: it receives g[0, 1] + g[1, 0]; row 3 was never read
    np.testing.assert_array_equal(emb.embeddings.grad, [[1, 2], [7, 8], [8, 10], [0, 0]])
    emb.forward(np.array([3]))
    emb.backward(np.array([[0.5, -0.5]]))                # adds into the grad
    np.testing.assert_array_equal(emb.embeddings.grad, [[1, 2], [7, 8], [8, 10], [0.5, -0.5]])


@pytest.mark.parametrize("shape", [(), (5,), (2, 3), (2, 3, 4)])
def test_embedding_any_input_shape(shape, rng):
    emb = mdl.Embedding(10, 3)
    x = rng.integers(0, 10, shape, dtype=np.int32)
    y = emb(x)
    assert y.shape == shape + (3,) and y.dtype == np.float32
    np.testing.assert_array_equal(y.reshape(-1, 3), emb.embeddings.data[np.ravel(x)])
    assert emb.compute_output_shape((None,) + shape[1:]) == (None,) + shape[1:] + (3,)


def test_embedding_init_is_standard_normal_from_the_global_seed():
    mdl.set_seed(3)
    a = mdl.Embedding(200, 50)
    mdl.set_seed(3)
    b = mdl.Embedding(200, 50)
    np.testing.assert_array_equal(a.embeddings.data, b.embeddings.data)
    assert a.embeddings.data.dtype == np.float32 and a.embeddings.name == "embeddings"
    expected = np.random.default_rng(3).standard_normal((200, 50)).astype(np.float32)
    np.testing.assert_array_equal(a.embeddings.data, expected)
    assert abs(a.embeddings.data.mean()) < 0.05 and abs(a.embeddings.data.std() - 1.0) < 0.05
    assert not np.array_equal(mdl.Embedding(200, 50).embeddings.data, a.embeddings.data)
    mdl.set_default_dtype(np.float64)
    mdl.set_seed(3)
    c = mdl.Embedding(200, 50)
    assert c.embeddings.data.dtype == np.float64
    np.testing.assert_allclose(c.embeddings.data, a.embeddings.data, rtol=1e-7)


def test_embedding_gradcheck_parameters_only(float64, rng):
    emb = mdl.Embedding(6, 3)
    x = rng.integers(0, 6, (3, 5))
    assert mdl.gradcheck(emb, x)
    model = mdl.Sequential([mdl.Embedding(6, 3), mdl.RNN(mdl.GRUCell(3, 4), return_sequences=True), mdl.Dense(4, 2)])
    assert mdl.gradcheck(model, x)
    # Sequential.backward passes the first layer's None through (also when nested)
    model.forward(x)
    assert model.backward(np.ones((3, 5, 2))) is None
    nested = mdl.Sequential([mdl.Sequential([mdl.Embedding(6, 3), mdl.RNN(mdl.LSTMCell(3, 2))]), mdl.Dense(2, 1)])
    assert mdl.gradcheck(nested, x)


@pytest.mark.parametrize("n, vocab", [(1000, 7), (500, 5000), (1, 3), (0, 3)])
def test_scatter_add_matches_np_add_at(n, vocab):
    rng = np.random.default_rng(n)
    index = rng.integers(0, vocab, n) if vocab < 5000 else rng.permutation(vocab)[:n]  # repeats / none
    rows = rng.standard_normal((n, 4))
    out = rng.standard_normal((vocab, 4))
    expected = out.copy()
    np.add.at(expected, index, rows)
    _scatter_add_rows(out, index, rows)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "x, err, pattern",
    [
        (np.array([[0.0, 1.0]]), TypeError, r"Embedding\(num_embeddings=5, embedding_dim=2\): input must be an integer array of indices in \[0, 4\], got dtype float64"),
        (np.array([True, False]), TypeError, r"integer array .* got booleans"),
        (np.array([[0, 5]]), ValueError, r"indices must be in \[0, 4\], got 5 at position \(0, 1\)"),
        (np.array([3, -1, 2]), ValueError, r"indices must be in \[0, 4\], got -1 at position \(1,\)"),
        (["a"], TypeError, r"got dtype <U1"),
    ],
)
def test_embedding_bad_inputs(x, err, pattern):
    with pytest.raises(err, match=pattern):
        mdl.Embedding(5, 2).forward(x)


def test_embedding_bad_arguments_and_calls():
    with pytest.raises(ValueError, match="Embedding: num_embeddings must be >= 1, got 0"):
        mdl.Embedding(0, 2)
    with pytest.raises(TypeError, match="Embedding: embedding_dim must be an int, got 2.0"):
        mdl.Embedding(3, 2.0)
    emb = mdl.Embedding(3, 2)
    with pytest.raises(RuntimeError, match="backward called before forward"):
        emb.backward(np.ones((1, 2)))
    emb.forward(np.array([[0, 1, 2]]))
    with pytest.raises(ValueError, match=r"expected grad_out of shape \(1, 3, 2\), got \(3, 2\)"):
        emb.backward(np.ones((3, 2)))
    with mdl.no_grad():
        emb.forward(np.array([0]))
    with pytest.raises(RuntimeError, match="no_grad"):
        emb.backward(np.ones((1, 2)))


def test_embedding_keeps_its_own_copy_of_the_indices(float64):
    emb = mdl.Embedding(3, 1)
    emb.embeddings.data[:, 0] = [1.0, 2.0, 3.0]
    x = np.array([0, 0])
    emb.forward(x)
    x[:] = 2                                     # the caller reuses its buffer
    emb.backward(np.array([[1.0], [1.0]]))
    np.testing.assert_array_equal(emb.embeddings.grad[:, 0], [2.0, 0.0, 0.0])


# ---- Dropout -----------------------------------------------------------------------------------
def test_dropout_values_with_a_fixed_mask(float64):
    keep = np.array([[True, False, True], [False, True, True]])
    drop = FixedMaskDropout(0.25, keep)
    x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    y = drop.forward(x)
    np.testing.assert_allclose(y, [[4 / 3, 0.0, 4.0], [0.0, 20 / 3, 8.0]], rtol=1e-15)
    dx = drop.backward(np.array([[3.0, 3.0, 3.0], [-3.0, -3.0, -3.0]]))
    np.testing.assert_allclose(dx, [[4.0, 0.0, 4.0], [0.0, -4.0, -4.0]], rtol=1e-15)


def test_dropout_statistics_and_scaling():
    mdl.set_seed(0)
    p = 0.3
    x = np.ones((200, 500), np.float32)
    y = mdl.Dropout(p).forward(x)
    assert y.dtype == np.float32
    values = np.unique(y)
    np.testing.assert_allclose(values, [0.0, 1 / 0.7], rtol=1e-6)
    kept = np.mean(y > 0)
    assert abs(kept - 0.7) < 0.006                       # 4 standard errors of 1e5 draws
    assert abs(y.mean() - 1.0) < 0.01                    # inverted dropout keeps the mean


def test_dropout_masks_follow_set_seed():
    x = np.ones((4, 6, 5))
    mdl.set_seed(7)
    drop = mdl.Dropout(0.5)
    a1, a2 = drop(x), drop(x)
    mdl.set_seed(7)
    b1, b2 = mdl.Dropout(0.5)(x), drop(x)
    np.testing.assert_array_equal(a1, b1)
    np.testing.assert_array_equal(a2, b2)
    assert not np.array_equal(a1, a2)                    # a fresh mask on every forward


@pytest.mark.parametrize("mode", ["eval", "p0"])
def test_dropout_identity_in_eval_mode_and_for_p0(mode, rng):
    drop = mdl.Dropout(0.0) if mode == "p0" else mdl.Dropout(0.9).eval()
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    state = mdl._random.get_rng().bit_generator.state
    y = drop.forward(x)
    np.testing.assert_array_equal(y, x)
    g = rng.standard_normal((3, 4, 5)).astype(np.float32)
    np.testing.assert_array_equal(drop.backward(g), g)
    assert mdl._random.get_rng().bit_generator.state == state   # no draw
    assert mdl.gradcheck(drop, x.astype(np.float64))


def test_dropout_predict_is_identity_and_train_mode_is_restored(rng):
    model = mdl.Sequential([mdl.Dense(3, 4), mdl.Dropout(0.5)])
    x = rng.standard_normal((6, 3)).astype(np.float32)
    np.testing.assert_array_equal(model.predict(x), model.layers[0].forward(x))
    assert model.layers[1].training
    assert np.sum(model.forward(x) == 0) > 0


def test_dropout_gradcheck_needs_a_fixed_mask(float64, rng):
    x = rng.standard_normal((4, 5))
    with pytest.raises(AssertionError, match="gradcheck: gradient of 'input' differs"):
        mdl.gradcheck(mdl.Dropout(0.5), x)               # a new mask on every forward
    keep = rng.random((4, 5)) >= 0.5
    assert mdl.gradcheck(FixedMaskDropout(0.5, keep), x)


def test_dropout_between_stacked_rnns_gradcheck(float64, rng):
    B, T, H = 2, 5, 4
    keep = rng.random((B, T, H)) >= 0.4
    model = mdl.Sequential([
        mdl.RNN(mdl.LSTMCell(3, H), return_sequences=True),
        FixedMaskDropout(0.4, keep),
        mdl.RNN(mdl.GRUCell(H, 2), return_sequences=True),
    ])
    x = rng.standard_normal((B, T, 3))
    assert mdl.gradcheck(model, x)
    # the second RNN sees exactly the masked, rescaled outputs of the first
    h1 = model.layers[0].forward(x)
    np.testing.assert_allclose(model.layers[1].forward(h1), h1 * keep / 0.6, rtol=1e-15)


@pytest.mark.parametrize(
    "p, err, pattern",
    [
        (1.0, ValueError, r"Dropout: p must be in \[0, 1\), got 1.0"),
        (-0.1, ValueError, r"Dropout: p must be in \[0, 1\), got -0.1"),
        (float("nan"), ValueError, r"got nan"),
        ("0.5", TypeError, r"Dropout: p must be a real number, got '0.5' \(str\)"),
        (True, TypeError, r"got True \(bool\)"),
    ],
)
def test_dropout_bad_p(p, err, pattern):
    with pytest.raises(err, match=pattern):
        mdl.Dropout(p)


def test_dropout_bad_calls():
    drop = mdl.Dropout(0.5)
    with pytest.raises(RuntimeError, match=r"Dropout\(p=0.5\): backward called before forward"):
        drop.backward(np.ones(3))
    drop.forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"expected grad_out of shape \(2, 3\), got \(3, 2\)"):
        drop.backward(np.ones((3, 2)))
    with pytest.raises(TypeError, match="input must be a real numeric array"):
        drop.forward(np.array(["a", "b"]))
    bad = FixedMaskDropout(0.5, np.ones((2, 2), bool))
    with pytest.raises(ValueError, match=r"sample_mask must return a bool array of shape \(2, 3\)"):
        bad.forward(np.ones((2, 3)))


# ---- LayerNorm ----------------------------------------------------------------------------------
def test_layernorm_forward_by_hand(float64):
    ln = mdl.LayerNorm(4, eps=1e-5)
    assert [(n, p.shape) for n, p in ln.named_parameters()] == [("gamma", (4,)), ("beta", (4,))]
    np.testing.assert_array_equal(ln.gamma.data, 1.0)
    np.testing.assert_array_equal(ln.beta.data, 0.0)
    ln.gamma.data[...] = [1.0, 2.0, 0.5, -1.0]
    ln.beta.data[...] = [0.0, 1.0, 0.0, 0.5]
    y = ln.forward(np.array([[1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 2.0, 2.0]]))
    # row 0: mean 2.5, variance (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25
    r = 1.0 / math.sqrt(1.25 + 1e-5)
    row0 = [-1.5 * r, 2.0 * -0.5 * r + 1.0, 0.5 * 0.5 * r, -1.0 * 1.5 * r + 0.5]
    # row 1: constant, so xhat = 0 and y = beta
    np.testing.assert_allclose(y, [row0, [0.0, 1.0, 0.0, 0.5]], rtol=1e-14, atol=1e-15)


def test_layernorm_backward_by_hand(float64):
    ln = mdl.LayerNorm(3)
    x = np.array([[0.0, 1.0, 5.0]])
    y = ln.forward(x)
    # with gamma = 1, a gradient of ones (a shift of every output) gives dx = 0
    dx = ln.backward(np.ones((1, 3)))
    np.testing.assert_allclose(dx, 0.0, atol=1e-14)
    np.testing.assert_allclose(ln.beta.grad, [1.0, 1.0, 1.0])
    np.testing.assert_allclose(ln.gamma.grad, y[0], rtol=1e-14)
    # along xhat (a scaling): dx = r * xhat * (1 - mean(xhat**2)), small only because of eps
    xhat = y[0]
    var = 26.0 / 3 - 4.0                                   # mean(x**2) - mean(x)**2 = 14/3
    r = 1.0 / math.sqrt(var + 1e-5)
    np.testing.assert_allclose(ln.backward(y), [r * xhat * (1e-5 / (var + 1e-5))], rtol=1e-6)
    # a gradient on one element: dx = r * (e0 - 1/3 - xhat * xhat[0] / 3)
    expected = r * (np.array([1.0, 0.0, 0.0]) - 1 / 3 - xhat * xhat[0] / 3)
    np.testing.assert_allclose(ln.backward(np.array([[1.0, 0.0, 0.0]])), [expected], rtol=1e-12)


@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 5)])
def test_layernorm_gradcheck_and_normalization(float64, rng, shape):
    ln = mdl.LayerNorm(5)
    x = 3.0 + 2.0 * rng.standard_normal(shape)
    y = ln.forward(x)
    np.testing.assert_allclose(y.mean(axis=-1), 0.0, atol=1e-13)
    np.testing.assert_allclose(y.var(axis=-1), 1.0 / (1.0 + 1e-5 / x.var(axis=-1)), rtol=1e-12)
    ln.gamma.data[...] = rng.standard_normal(5)
    ln.beta.data[...] = rng.standard_normal(5)
    assert mdl.gradcheck(ln, x)


def test_layernorm_dtypes(rng):
    ln = mdl.LayerNorm((6,))
    assert ln.normalized_shape == 6 and ln.gamma.data.dtype == np.float32
    y = ln(rng.standard_normal((2, 6)))                  # float64 input computed in float32
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.mean(axis=-1), 0.0, atol=1e-6)


@pytest.mark.parametrize(
    "args, err, pattern",
    [
        ((0,), ValueError, "LayerNorm: normalized_shape must be >= 1, got 0"),
        (((3, 4),), ValueError, r"normalized_shape must be an int or a one-element tuple .* got \(3, 4\)"),
        (("4",), TypeError, "LayerNorm: normalized_shape must be an int, got '4'"),
        ((4, 0.0), ValueError, r"LayerNorm: eps must be > 0.0, got 0.0"),
        ((4, "x"), TypeError, "LayerNorm: eps must be a real number"),
    ],
)
def test_layernorm_bad_arguments(args, err, pattern):
    with pytest.raises(err, match=pattern):
        mdl.LayerNorm(*args)


def test_layernorm_bad_inputs():
    ln = mdl.LayerNorm(4)
    with pytest.raises(ValueError, match=r"LayerNorm\(normalized_shape=4, eps=1e-05\): expected input \(\.\.\., 4\), got shape \(2, 3\)"):
        ln.forward(np.ones((2, 3)))
    with pytest.raises(TypeError, match="input must be a real numeric array"):
        ln.forward(np.array([["a"] * 4]))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        ln.backward(np.ones((2, 4)))
    ln.forward(np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"expected grad_out of shape \(2, 4\), got \(4,\)"):
        ln.backward(np.ones(4))


# ---- Bidirectional -------------------------------------------------------------------------------
def _cell(kind, F, H):
    return {"lstm": mdl.LSTMCell, "gru": mdl.GRUCell, "rnn": mdl.RNNCell}[kind](F, H)


def test_bidirectional_by_hand_with_constant_weights(float64):
    fwd = mdl.RNN(mdl.RNNCell(1, 1), return_sequences=True)
    bi = mdl.Bidirectional(fwd)
    for cell, (k, u) in ((bi.forward_layer.cell, (0.5, -1.0)), (bi.backward_layer.cell, (1.0, 0.5))):
        cell.kernel.data[...] = k
        cell.recurrent_kernel.data[...] = u
        cell.bias.data[...] = 0.0
    x = np.array([[[1.0], [2.0], [3.0]]])
    t = math.tanh
    f1 = t(0.5)
    f2 = t(1.0 - f1)
    f3 = t(1.5 - f2)
    b3 = t(3.0)                     # the backward direction reads 3, 2, 1
    b2 = t(2.0 + 0.5 * b3)
    b1 = t(1.0 + 0.5 * b2)
    np.testing.assert_allclose(bi.forward(x), [[[f1, b1], [f2, b2], [f3, b3]]], rtol=1e-14)
    last = mdl.Bidirectional(mdl.RNN(bi.forward_layer.cell))
    last.backward_layer.cell.load_state_dict(bi.backward_layer.cell.state_dict())
    np.testing.assert_allclose(last.forward(x), [[f3, b1]], rtol=1e-14)   # Keras: [fwd last, bwd after all steps]


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_bidirectional_equals_two_rnns_by_hand_and_gradcheck(float64, rng, kind, return_sequences):
    mdl.set_seed(21)
    bi = mdl.Bidirectional(mdl.RNN(_cell(kind, 3, 4), return_sequences=return_sequences))
    x = rng.standard_normal((2, 5, 3))
    y = bi.forward(x)
    hf = mdl.RNN(bi.forward_layer.cell, return_sequences=True).forward(x)
    hb = mdl.RNN(bi.backward_layer.cell, return_sequences=True).forward(x[:, ::-1])
    if return_sequences:
        expected = np.concatenate([hf, hb[:, ::-1]], axis=-1)
    else:
        expected = np.concatenate([hf[:, -1], hb[:, -1]], axis=-1)
    assert y.shape == expected.shape == bi.compute_output_shape((2, 5, 3))
    np.testing.assert_allclose(y, expected, rtol=1e-14, atol=1e-15)

    # backward: the sum of the two directions' input gradients, re-reversed
    g = rng.standard_normal(y.shape)
    bi.zero_grad()
    dx = bi.backward(g)
    f_ref = mdl.RNN(bi.forward_layer.cell, return_sequences=return_sequences)
    b_ref = mdl.RNN(bi.backward_layer.cell, return_sequences=return_sequences)
    f_ref.forward(x)
    b_ref.forward(x[:, ::-1])
    grads = {name: p.grad.copy() for name, p in bi.named_parameters()}
    bi.zero_grad()
    gb = g[..., 4:][:, ::-1] if return_sequences else g[..., 4:]
    dx_ref = f_ref.backward(g[..., :4]) + b_ref.backward(gb)[:, ::-1]
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-13, atol=1e-14)
    for name, p in bi.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad, rtol=1e-13, atol=1e-14, err_msg=name)

    assert mdl.gradcheck(bi, x)


@pytest.mark.parametrize("merge_mode", ["sum", "ave", "mul"])
def test_bidirectional_other_merge_modes(float64, rng, merge_mode):
    mdl.set_seed(22)
    bi = mdl.Bidirectional(mdl.RNN(mdl.GRUCell(2, 3), return_sequences=True), merge_mode=merge_mode)
    x = rng.standard_normal((2, 4, 2))
    hf = mdl.RNN(bi.forward_layer.cell, return_sequences=True).forward(x)
    hb = mdl.RNN(bi.backward_layer.cell, return_sequences=True).forward(x[:, ::-1])[:, ::-1]
    expected = {"sum": hf + hb, "ave": (hf + hb) / 2, "mul": hf * hb}[merge_mode]
    np.testing.assert_allclose(bi.forward(x), expected, rtol=1e-14, atol=1e-15)
    assert bi.compute_output_shape((None, 4, 2)) == (None, 4, 3)
    assert mdl.gradcheck(bi, x)


def test_bidirectional_structure_and_seeding():
    mdl.set_seed(5)
    a = mdl.Bidirectional(mdl.RNN(mdl.RNNCell(3, 4, activation="relu")))
    mdl.set_seed(5)
    b = mdl.Bidirectional(mdl.RNN(mdl.RNNCell(3, 4, activation="relu")))
    names = [n for n, _ in a.named_parameters()]
    assert names == [f"{d}_layer.cell.{w}" for d in ("forward", "backward") for w in ("kernel", "recurrent_kernel", "bias")]
    for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=n)
    # a fresh cell of the same class and config, with its own weights
    assert type(a.backward_layer.cell) is mdl.RNNCell and a.backward_layer.cell.get_config() == a.forward_layer.cell.get_config()
    assert a.backward_layer.cell is not a.forward_layer.cell
    assert not np.array_equal(a.forward_layer.cell.kernel.data, a.backward_layer.cell.kernel.data)
    assert a.supports_truncation is False and mdl.Bidirectional.supports_truncation is False
    for method in ("get_state", "set_state", "state_at"):
        assert not hasattr(a, method)
    assert a.compute_output_shape((None, 7, 3)) == (None, 8)
    # the backward cell takes the forward cell's dtype, whatever the default
    c64 = mdl.LSTMCell(2, 3).astype(np.float64)
    assert mdl.Bidirectional(mdl.RNN(c64)).backward_layer.cell.kernel.data.dtype == np.float64


def test_bidirectional_bad_arguments_and_inputs():
    with pytest.raises(TypeError, match=r"Bidirectional: rnn must be an RNN \(e.g. RNN\(LSTMCell\(F, H\)\)\), got LSTMCell"):
        mdl.Bidirectional(mdl.LSTMCell(2, 3))
    with pytest.raises(TypeError, match="Bidirectional: rnn must be an RNN instance, got the class RNN"):
        mdl.Bidirectional(mdl.RNN)
    with pytest.raises(ValueError, match="Bidirectional: a stateful RNN is not supported"):
        mdl.Bidirectional(mdl.RNN(mdl.GRUCell(2, 3), stateful=True))
    with pytest.raises(ValueError, match=r"Bidirectional: merge_mode must be one of 'concat', 'sum', 'ave', 'mul', got 'max'"):
        mdl.Bidirectional(mdl.RNN(mdl.GRUCell(2, 3)), merge_mode="max")
    bi = mdl.Bidirectional(mdl.RNN(mdl.GRUCell(2, 3), return_sequences=True))
    with pytest.raises(ValueError, match=r"Bidirectional\(RNN\(GRUCell.*expected input \(batch, time, 2\).*got shape \(4, 2\)"):
        bi.forward(np.ones((4, 2)))
    with pytest.raises(ValueError, match=r"got shape \(1, 0, 2\)"):
        bi.forward(np.ones((1, 0, 2)))
    with pytest.raises(TypeError, match="input must be a real numeric array"):
        bi.forward(np.full((1, 2, 2), "a"))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        bi.backward(np.ones((1, 2, 6)))
    bi.forward(np.ones((1, 2, 2)))
    with pytest.raises(ValueError, match=r"expected grad_out of shape \(1, 2, 6\), got \(1, 2, 3\)"):
        bi.backward(np.ones((1, 2, 3)))
    bi.forward_layer.set_state((np.ones((1, 3)),))
    with pytest.raises(ValueError, match="both directions start from zero states, but a state was set"):
        bi.forward(np.ones((1, 2, 2)))
    bi.forward_layer.reset_states()
    bi.forward(np.ones((1, 2, 2)))
    bi.forward_layer.stateful = True
    with pytest.raises(ValueError, match="the wrapped RNN was made stateful"):
        bi.forward(np.ones((1, 2, 2)))


def test_bidirectional_trains_with_full_bptt_exactly_like_a_manual_step(rng):
    x = rng.standard_normal((6, 5, 2)).astype(np.float32)
    y = rng.standard_normal((6, 1)).astype(np.float32)

    def build():
        mdl.set_seed(30)
        return mdl.Sequential([mdl.Bidirectional(mdl.RNN(mdl.LSTMCell(2, 3))), mdl.Dense(6, 1)])

    assert_fit_is_one_manual_step(build, mdl.MSELoss, x, y, lr=0.1)
    model = build()

    # truncation would cut the backward direction's view of the future: refused
    with pytest.raises(ValueError, match="Bidirectional reads each sequence in both directions"):
        mdl.TBPTTTrainer(model, mdl.MSELoss(), mdl.SGD(model.parameters(), lr=0.1), k1=2)


def test_token_model_trains_in_the_trainer_exactly_like_a_manual_step(rng):
    """Integer tokens (B, T) into Embedding, integer targets (B, T): full BPTT == one manual step."""
    tokens = rng.integers(0, 5, (6, 7))
    targets = rng.integers(0, 5, (6, 7))

    def build():
        mdl.set_seed(31)
        return mdl.Sequential([mdl.Embedding(5, 3), mdl.RNN(mdl.GRUCell(3, 4), return_sequences=True), mdl.Dense(4, 5)])

    assert assert_fit_is_one_manual_step(build, mdl.CrossEntropyLoss, tokens, targets, lr=0.5) is None
    trained = build()
    mdl.TBPTTTrainer(trained, mdl.CrossEntropyLoss(), mdl.SGD(trained.parameters(), lr=0.5)).fit(
        tokens, targets, batch_size=len(tokens), shuffle=False, verbose=0)
    assert not np.array_equal(trained.state_dict()["0.embeddings"], build().state_dict()["0.embeddings"])


# ---- Flatten and Reshape -----------------------------------------------------------------------
def test_flatten_and_reshape_values_and_gradients(float64, rng):
    x = np.arange(24.0).reshape(2, 3, 4)
    flat, reshape = mdl.Flatten(), mdl.Reshape((4, -1))
    np.testing.assert_array_equal(flat.forward(x), [np.arange(12.0), np.arange(12.0, 24.0)])
    np.testing.assert_array_equal(reshape.forward(x), x.reshape(2, 4, 3))
    g = rng.standard_normal((2, 4, 3))
    np.testing.assert_array_equal(reshape.backward(g), g.reshape(2, 3, 4))
    assert flat.forward(np.arange(3)).shape == (3, 1)                       # Keras: (batch,) -> (batch, 1)
    assert flat.compute_output_shape((None, 3, 4)) == (None, 12)
    assert flat.compute_output_shape((None, None, 4)) == (None, None)
    assert reshape.compute_output_shape((None, 3, 4)) == (None, 4, 3)
    assert mdl.Reshape((2, 6)).compute_output_shape((None, 12)) == (None, 2, 6)
    model = mdl.Sequential([mdl.RNN(mdl.GRUCell(4, 2), return_sequences=True), mdl.Flatten(), mdl.Dense(6, 4), mdl.Reshape((2, 2))])
    assert mdl.gradcheck(model, rng.standard_normal((2, 3, 4)))
    assert mdl.Reshape((2,)).forward(np.array([[1, 2]])).dtype.kind == "i"  # indices stay integers
    tokens = mdl.Sequential([mdl.Flatten(), mdl.Embedding(5, 2), mdl.Dense(2, 1)])
    x = rng.integers(0, 5, (3, 2, 2))
    assert tokens.forward(x).shape == (3, 4, 1)
    assert tokens.backward(np.ones((3, 4, 1))) is None                       # None passes through Flatten
    assert mdl.gradcheck(tokens, x)


def test_flatten_and_reshape_errors():
    with pytest.raises(ValueError, match=r"Reshape: shape\[1\] must be an int >= 1 or -1, got 0"):
        mdl.Reshape((2, 0))
    with pytest.raises(ValueError, match="at most one -1"):
        mdl.Reshape((-1, -1))
    with pytest.raises(TypeError, match="Reshape: shape must be a tuple of ints"):
        mdl.Reshape(6)
    with pytest.raises(ValueError, match=r"Reshape\(shape=\[5\]\): cannot reshape a sample of shape \(2, 3\) \(6 elements\) to \(5,\)"):
        mdl.Reshape((5,)).forward(np.ones((1, 2, 3)))
    with pytest.raises(ValueError, match=r"to \(4, -1\)"):
        mdl.Reshape((4, -1)).forward(np.ones((1, 6)))
    with pytest.raises(ValueError, match="Flatten\\(\\): input must have a batch axis"):
        mdl.Flatten().forward(np.float64(1.0))
    flat = mdl.Flatten()
    with pytest.raises(RuntimeError, match="backward called before forward"):
        flat.backward(np.ones((1, 2)))
    flat.forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"expected grad_out of shape \(2, 3\), got \(3, 2\)"):
        flat.backward(np.ones((3, 2)))


# ---- saving and loading -----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_save_load_model_with_every_new_layer(tmp_path, rng, dtype):
    mdl.set_default_dtype(dtype)
    mdl.set_seed(40)
    model = mdl.Sequential([
        mdl.Embedding(9, 4),
        mdl.Bidirectional(mdl.RNN(mdl.LSTMCell(4, 3), return_sequences=True), merge_mode="ave"),
        mdl.LayerNorm(3, eps=1e-3),
        mdl.Dropout(0.25),
        mdl.Bidirectional(mdl.RNN(mdl.GRUCell(3, 2))),
        mdl.Reshape((2, 2)),
        mdl.Flatten(),
        mdl.Dense(4, 2),
    ])
    for p in model.parameters():                         # make gamma/beta non-trivial too
        p.data[...] = rng.standard_normal(p.shape)
    x = rng.integers(0, 9, (3, 6))
    loaded = _roundtrip(model, tmp_path, x)
    assert loaded.layers[1].merge_mode == "ave" and loaded.layers[1].return_sequences
    assert loaded.layers[2].eps == 1e-3 and loaded.layers[3].p == 0.25
    assert loaded.layers[5].shape == (2, 2)
    assert loaded.get_config() == model.get_config()
    assert "0.embeddings" in model.state_dict() and "1.backward_layer.cell.kernel" in model.state_dict()
    table = model.summary(input_shape=(None, 6))
    assert "(None, 6, 4)" in table and "(None, 4)" in table
