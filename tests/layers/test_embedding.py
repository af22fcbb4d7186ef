"""Embedding: lookups and the scatter-add backward by hand, any index shape, the seeded
N(0, 1) init, gradcheck of the parameters, training in the trainer, PyTorch's
nn.Embedding, output aliasing and bad inputs."""

import numpy as np
import pytest

import minidl as mdl
from minidl.layers.embedding import _scatter_add_rows
from tests.helpers import assert_close_rel, assert_fit_is_one_manual_step, assert_output_edits_leave_gradients


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


def test_embedding_matches_torch(float64):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    ref = torch.nn.Embedding(11, 4).double()
    emb = mdl.Embedding(11, 4)
    emb.embeddings.data[...] = ref.weight.detach().numpy()
    x = np.random.default_rng(0).integers(0, 11, (3, 7))   # repeats on purpose
    g = np.random.default_rng(1).standard_normal((3, 7, 4))
    out = ref(torch.from_numpy(x))
    out.backward(torch.from_numpy(g))
    assert_close_rel(emb.forward(x), out.detach().numpy(), "output")
    assert emb.backward(g) is None
    assert_close_rel(emb.embeddings.grad, ref.weight.grad.numpy(), "embeddings.grad")


def test_embedding_output_edits_leave_gradients(rng):
    assert_output_edits_leave_gradients(mdl.Embedding(5, 3), rng.integers(0, 5, (2, 4)))


# ---- mask_zero ---------------------------------------------------------------------------------
def test_embedding_mask_zero(float64, rng):
    """Token 0 is padding: the mask is ``tokens != 0``, the lookup is unchanged, the config keeps
    it; an RNN given the mask reads only the real tokens."""
    tokens = np.array([[3, 1, 0, 0], [2, 2, 4, 1]])
    plain, masked = mdl.Embedding(5, 3), mdl.Embedding(5, 3, mask_zero=True)
    masked.embeddings.data[...] = plain.embeddings.data
    np.testing.assert_array_equal(masked.forward(tokens), plain.forward(tokens))
    np.testing.assert_array_equal(masked.compute_mask(tokens, None), tokens != 0)
    incoming = np.ones((2, 4), bool)
    assert plain.compute_mask(tokens, incoming) is incoming and plain.compute_mask(tokens, None) is None
    assert masked.get_config() == {"num_embeddings": 5, "embedding_dim": 3, "mask_zero": True}
    assert plain.get_config() == {"num_embeddings": 5, "embedding_dim": 3}
    assert mdl.Embedding.from_config(masked.get_config()).mask_zero
    rnn = mdl.RNN(mdl.GRUCell(3, 2))
    y = rnn.forward(masked.forward(tokens), mask=masked.compute_mask(tokens, None))
    np.testing.assert_allclose(y[0], rnn.forward(masked.forward(tokens[:1, :2]))[0], rtol=0, atol=1e-14)


def test_embedding_mask_zero_bad_values(rng):
    with pytest.raises(TypeError, match=r"Embedding: mask_zero must be a bool, got 1"):
        mdl.Embedding(5, 3, mask_zero=1)
    with pytest.raises(ValueError, match=r"indices must be in \[0, 4\]"):
        mdl.Embedding(5, 3, mask_zero=True).compute_mask(np.array([[5]]), None)
