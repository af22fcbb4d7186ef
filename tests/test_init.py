"""minidl.init: initializers (golden draws, fans, orthogonality, PyTorch's torch.nn.init),
layer arguments, configs."""

import json
import math

import numpy as np
import pytest

import minidl as mdl
from minidl import init


def _gen(seed=7):
    return np.random.default_rng(seed)


# ---- the initializers themselves ---------------------------------------------------
@pytest.mark.parametrize(
    "shape, fans",
    [((3, 5), (3, 5)), ((7,), (7, 7)), ((2, 3, 4, 5), (24, 30)), ((), (1, 1)), (4, (4, 4))],
)
def test_compute_fans_in_out_layout(shape, fans):
    assert init.compute_fans(shape) == fans


@pytest.mark.parametrize(
    "initializer, reference",
    [
        (init.glorot_uniform, lambda g: g.uniform(-math.sqrt(6 / 8), math.sqrt(6 / 8), (3, 5))),
        (init.GlorotUniform(gain=2.0), lambda g: g.uniform(-2 * math.sqrt(6 / 8), 2 * math.sqrt(6 / 8), (3, 5))),
        (init.glorot_normal, lambda g: g.normal(0.0, math.sqrt(2 / 8), (3, 5))),
        (init.he_uniform, lambda g: g.uniform(-math.sqrt(2.0), math.sqrt(2.0), (3, 5))),  # sqrt(6 / 3)
        (init.he_normal, lambda g: g.normal(0.0, math.sqrt(2 / 3), (3, 5))),
        (init.uniform, lambda g: g.uniform(-0.05, 0.05, (3, 5))),
        (init.Uniform(1.0, 3.0), lambda g: g.uniform(1.0, 3.0, (3, 5))),
        (init.normal, lambda g: g.normal(0.0, 0.05, (3, 5))),
        (init.Normal(2.0, 0.5), lambda g: g.normal(2.0, 0.5, (3, 5))),
        (init.zeros, lambda g: np.zeros((3, 5))),
        (init.ones, lambda g: np.ones((3, 5))),
        (init.Constant(0.25), lambda g: np.full((3, 5), 0.25)),
    ],
    ids=lambda v: repr(v) if isinstance(v, init.Initializer) else "",
)
def test_draws_match_the_formula(initializer, reference):
    out = initializer((3, 5), np.float64, _gen())
    assert out.shape == (3, 5) and out.dtype == np.float64
    np.testing.assert_array_equal(out, reference(_gen()))


def test_bounds_and_spread_on_large_draws():
    w = init.glorot_uniform((200, 300), np.float64, _gen())
    limit = math.sqrt(6 / 500)
    assert np.abs(w).max() <= limit and np.abs(w).max() > 0.99 * limit
    assert w.std() == pytest.approx(limit / math.sqrt(3), rel=0.02)
    assert init.he_normal((400, 300), np.float64, _gen()).std() == pytest.approx(math.sqrt(2 / 400), rel=0.02)


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (init.glorot_uniform, lambda t, w: t.nn.init.xavier_uniform_(w)),
        (init.glorot_normal, lambda t, w: t.nn.init.xavier_normal_(w)),
        (init.he_uniform, lambda t, w: t.nn.init.kaiming_uniform_(w, nonlinearity="relu")),
        (init.he_normal, lambda t, w: t.nn.init.kaiming_normal_(w, nonlinearity="relu")),
        (init.GlorotUniform(gain=2.0), lambda t, w: t.nn.init.xavier_uniform_(w, gain=2.0)),
    ],
    ids=["glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "glorot_uniform-gain2"],
)
def test_fan_scaled_initializers_match_torch_nn_init(ours, theirs):
    """torch's distribution: our (in, out) kernel is torch's (out, in) weight transposed."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    mine = ours((300, 200), np.float64, _gen())
    ref = theirs(torch, torch.empty(200, 300, dtype=torch.float64)).numpy().T
    assert mine.std() == pytest.approx(ref.std(), rel=0.02)  # 60,000 draws: 0.3 % standard error
    if "Uniform" in type(ours).__name__:  # the same bound
        assert np.abs(mine).max() == pytest.approx(np.abs(ref).max(), rel=0.001)


def test_orthogonal_matches_torch_nn_init():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    for shape in ((5, 3), (3, 5)):
        q = init.orthogonal(shape, np.float64, _gen())
        r = torch.nn.init.orthogonal_(torch.empty(shape[::-1], dtype=torch.float64)).numpy().T
        small = min(shape)  # both orthonormal along the shorter side
        gram = (lambda w: w.T @ w) if shape[0] >= shape[1] else (lambda w: w @ w.T)
        np.testing.assert_allclose(gram(q), np.eye(small), atol=1e-12)
        np.testing.assert_allclose(gram(r), np.eye(small), atol=1e-12)


def test_dtype_and_generator_defaults():
    assert init.glorot_uniform((2, 3)).dtype == np.float32  # the default dtype
    mdl.set_default_dtype(np.float64)
    assert init.glorot_uniform((2, 3)).dtype == np.float64
    mdl.set_default_dtype(np.float32)
    mdl.set_seed(5)
    a = init.orthogonal((4, 4))
    mdl.set_seed(5)
    np.testing.assert_array_equal(init.orthogonal((4, 4)), a)  # drawn from the global generator
    np.testing.assert_array_equal(init.uniform((2,), np.float32, _gen(1)),
                                  _gen(1).uniform(-0.05, 0.05, 2).astype(np.float32))


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (5, 5), (2, 3, 4)])
def test_orthogonal(shape):
    w = init.Orthogonal(gain=1.0)(shape, np.float64, _gen(3))
    m = w.reshape(-1, shape[-1])
    rows, cols = m.shape
    if rows >= cols:
        np.testing.assert_allclose(m.T @ m, np.eye(cols), atol=1e-12)
    else:
        np.testing.assert_allclose(m @ m.T, np.eye(rows), atol=1e-12)
    # Sign correction: Q is the factor of the drawn normal matrix A whose R has a
    # positive diagonal, so Q.T @ A is upper triangular with a positive diagonal.
    a = _gen(3).standard_normal((max(rows, cols), min(rows, cols)))
    q = m if rows >= cols else m.T
    r = q.T @ a
    np.testing.assert_allclose(np.tril(r, -1), 0, atol=1e-12)
    assert np.all(np.diag(r) > 0)


def test_orthogonal_gain_and_errors():
    w = init.Orthogonal(gain=2.0)((3, 3), np.float64, _gen())
    np.testing.assert_allclose(w.T @ w, 4 * np.eye(3), atol=1e-12)
    with pytest.raises(ValueError, match=r"Orthogonal: needs a shape of at least 2 dimensions, got \(5,\)"):
        init.orthogonal((5,))


def test_gate_blocks_draws_each_block_in_order():
    w = init.GateBlocks(init.orthogonal, 4)((3, 12), np.float64, _gen(2))
    g = _gen(2)
    expected = np.concatenate([init.orthogonal((3, 3), np.float64, g) for _ in range(4)], axis=1)
    np.testing.assert_array_equal(w, expected)
    with pytest.raises(ValueError, match=r"does not split into 4 equal blocks"):
        init.GateBlocks("zeros", 4)((3, 10))


@pytest.mark.parametrize(
    "make, err, pattern",
    [
        (lambda: init.Uniform(1.0, 0.0), ValueError, r"Uniform: high must be >= low, got low=1.0, high=0.0"),
        (lambda: init.Normal(std=-1.0), ValueError, r"Normal: std must be >= 0.0, got -1.0"),
        (lambda: init.Constant("a"), TypeError, r"Constant: value must be a real number, got 'a'"),
        (lambda: init.GlorotUniform(gain=float("nan")), ValueError, r"GlorotUniform: gain must be finite"),
        (lambda: init.zeros((2, -1)), ValueError, r"Zeros: shape must be a tuple of non-negative ints"),
        (lambda: init.zeros((2, 2), np.int32), TypeError, r"Zeros: dtype: expected float32 or float64, got int32"),
        (lambda: init.zeros((2, 2), None, 3), TypeError, r"rng must be a numpy.random.Generator"),
        (lambda: init.get("glorot"), ValueError, r"unknown initializer 'glorot'; expected one of constant, "
                                                 r"glorot_normal, glorot_uniform, he_normal, he_uniform, normal, "
                                                 r"ones, orthogonal, sum_of_uniforms, uniform, zeros"),
        (lambda: init.sum_of_uniforms((3,)), ValueError, r"^SumOfUniforms: bound=None is the bound of the layer "
                                                         r"that builds the weight; give bound=$"),
        (lambda: init.SumOfUniforms(bound=-1.0), ValueError, r"^SumOfUniforms: bound must be >= 0\.0, got -1\.0"),
        (lambda: init.SumOfUniforms(0.1, terms=0), ValueError, r"^SumOfUniforms: terms must be >= 1, got 0"),
        (lambda: init.SumOfUniforms(0.1, terms=2.0), TypeError, r"^SumOfUniforms: terms must be an int"),
        (lambda: init.get(3), TypeError, r"must be None, a name"),
        (lambda: init.get(lambda s, d, r: 0), TypeError, r"wrap a function in an Initializer subclass"),
        (lambda: init.get({"class_name": "Nope", "config": {}}), ValueError, r"config must be"),
    ],
)
def test_errors(make, err, pattern):
    with pytest.raises(err, match=pattern):
        make()


def test_get_and_serialize_round_trip_through_json():
    assert init.get(None) is None
    assert init.get("orthogonal") == init.Orthogonal()
    assert init.get(init.he_normal) is init.he_normal
    assert init.serialize("glorot_uniform") == "glorot_uniform"
    assert init.serialize(init.Constant()) == "constant"
    for obj in (init.Orthogonal(gain=2.0), init.Uniform(-1.0, 2.0), init.Constant(3.0),
                init.GateBlocks(init.Orthogonal(gain=0.5), 3)):
        config = json.loads(json.dumps(init.serialize(obj)))
        assert isinstance(config, dict)
        assert init.get(config) == obj
    assert init.serialize(init.Orthogonal(gain=2.0)) == {"class_name": "Orthogonal", "config": {"gain": 2.0}}
    assert init.Orthogonal(gain=2.0) != init.Orthogonal()
    assert repr(init.Normal(1.0, 2.0)) == "Normal(mean=1.0, std=2.0)"
    assert init.names()[:3] == ["constant", "glorot_normal", "glorot_uniform"]


def test_user_initializer_subclass_is_saved_by_class_name():
    class _EyeInit(init.Initializer):
        def sample(self, shape, rng):
            return np.eye(*shape)

    cell = mdl.RNNCell(2, 2, recurrent_initializer=_EyeInit())
    np.testing.assert_array_equal(cell.recurrent_kernel.data, np.eye(2))
    assert cell.get_config()["recurrent_initializer"] == {"class_name": "_EyeInit", "config": {}}
    assert isinstance(init.get(cell.get_config()["recurrent_initializer"]), _EyeInit)


# ---- layer arguments ---------------------------------------------------------------
def test_default_construction_draws_the_pytorch_default_exactly():
    mdl.set_seed(11)
    cell = mdl.LSTMCell(3, 4)
    dense = mdl.Dense(4, 2)
    g = np.random.default_rng(11)
    b = 1 / math.sqrt(4)
    for p, shape in zip(cell.parameters(), [(3, 16), (4, 16), (16,)]):
        np.testing.assert_array_equal(p.data, g.uniform(-b, b, shape).astype(np.float32))
    b = 1 / math.sqrt(4)
    np.testing.assert_array_equal(dense.kernel.data, g.uniform(-b, b, (4, 2)).astype(np.float32))
    np.testing.assert_array_equal(dense.bias.data, g.uniform(-b, b, (2,)).astype(np.float32))
    assert cell.kernel_initializer is None and dense.bias_initializer is None


def test_draw_order_kernel_recurrent_bias():
    """A zeros kernel draws nothing, so the recurrent kernel gets the numbers the kernel would have."""
    mdl.set_seed(3)
    cell = mdl.RNNCell(2, 3, kernel_initializer="zeros")
    g = np.random.default_rng(3)
    b = 1 / math.sqrt(3)
    np.testing.assert_array_equal(cell.kernel.data, np.zeros((2, 3)))
    np.testing.assert_array_equal(cell.recurrent_kernel.data, g.uniform(-b, b, (3, 3)).astype(np.float32))
    np.testing.assert_array_equal(cell.bias.data, g.uniform(-b, b, (3,)).astype(np.float32))


def test_dense_initializers():
    mdl.set_default_dtype(np.float64)
    mdl.set_seed(0)
    dense = mdl.Dense(3, 5, kernel_initializer="glorot_uniform", bias_initializer=init.Constant(0.5))
    np.testing.assert_array_equal(dense.kernel.data, np.random.default_rng(0).uniform(-math.sqrt(6 / 8), math.sqrt(6 / 8), (3, 5)))
    np.testing.assert_array_equal(dense.bias.data, np.full(5, 0.5))
    assert dense.get_config() == {"in_features": 3, "out_features": 5, "bias": True,
                                  "kernel_initializer": "glorot_uniform",
                                  "bias_initializer": {"class_name": "Constant", "config": {"value": 0.5}}}
    assert mdl.Dense(3, 5, bias=False, bias_initializer="ones").bias is None  # ignored, as in Keras
    with pytest.raises(ValueError, match=r"Dense: unknown kernel_initializer 'xavier'; expected one of constant"):
        mdl.Dense(3, 5, kernel_initializer="xavier")


@pytest.mark.parametrize("cls, gates", [(mdl.RNNCell, 1), (mdl.LSTMCell, 4), (mdl.GRUCell, 3)])
def test_recurrent_initializer_is_applied_per_gate_block(cls, gates):
    H = 5
    cell = cls(3, H, recurrent_initializer="orthogonal", kernel_initializer="glorot_normal", bias_initializer="zeros")
    rec = cell.recurrent_kernel.data.astype(np.float64)
    for j in range(gates):
        block = rec[:, j * H:(j + 1) * H]
        np.testing.assert_allclose(block.T @ block, np.eye(H), atol=1e-6)
    np.testing.assert_array_equal(cell.bias.data, 0.0)
    assert cell.get_config()["recurrent_initializer"] == "orthogonal"


def test_cells_seeded_twice_are_identical():
    def build():
        mdl.set_seed(21)
        return mdl.Sequential([mdl.RNN(mdl.GRUCell(2, 4, recurrent_initializer="orthogonal",
                                                    kernel_initializer=init.GlorotUniform(gain=0.5))),
                               mdl.Dense(4, 1, kernel_initializer="he_normal")])

    a, b = build(), build()
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(pa.data, pb.data, err_msg=name)


def test_unit_forget_bias():
    H = 3
    mdl.set_seed(4)
    cell = mdl.LSTMCell(2, H, unit_forget_bias=True)
    mdl.set_seed(4)
    plain = mdl.LSTMCell(2, H)
    np.testing.assert_array_equal(cell.bias.data[H:2 * H], 1.0)
    keep = np.r_[0:H, 2 * H:4 * H]
    np.testing.assert_array_equal(cell.bias.data[keep], plain.bias.data[keep])  # same draws elsewhere
    zero = mdl.LSTMCell(2, H, bias_initializer="zeros", unit_forget_bias=True)
    np.testing.assert_array_equal(zero.bias.data, np.r_[np.zeros(H), np.ones(H), np.zeros(2 * H)])
    assert cell.get_config() == {"input_size": 2, "hidden_size": 3, "unit_forget_bias": True}
    assert plain.get_config() == {"input_size": 2, "hidden_size": 3}
    with pytest.raises(TypeError, match=r"LSTMCell: unit_forget_bias must be a bool, got 1"):
        mdl.LSTMCell(2, H, unit_forget_bias=1)


def test_cell_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"GRUCell: unknown recurrent_initializer 'orth'"):
        mdl.GRUCell(2, 3, recurrent_initializer="orth")
    with pytest.raises(TypeError, match=r"RNNCell: bias_initializer must be None, a name"):
        mdl.RNNCell(2, 3, bias_initializer=0.0)


def test_save_load_round_trip_keeps_the_initializer_config(tmp_path):
    model = mdl.Sequential([
        mdl.RNN(mdl.LSTMCell(2, 3, recurrent_initializer=init.Orthogonal(gain=1.5), unit_forget_bias=True),
                return_sequences=True),
        mdl.RNN(mdl.RNNCell(3, 2, activation="relu", kernel_initializer="he_uniform", bias_initializer="zeros")),
        mdl.Dense(2, 1, kernel_initializer="glorot_uniform"),
    ])
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = mdl.load_model(path)
    assert loaded.get_config() == model.get_config()
    assert loaded.get_config()["layers"][0]["config"]["cell"]["config"]["recurrent_initializer"] == {
        "class_name": "Orthogonal", "config": {"gain": 1.5}}
    for (name, pa), (_, pb) in zip(model.named_parameters(), loaded.named_parameters()):
        np.testing.assert_array_equal(pa.data, pb.data, err_msg=name)
    assert isinstance(loaded.layers[0].cell.recurrent_initializer, init.Orthogonal)
    assert "recurrent_initializer=" in repr(loaded.layers[0].cell)


def test_top_level_module_access():
    assert mdl.init.orthogonal is init.orthogonal
    assert mdl.init.get("he_uniform") == init.HeUniform()


def test_user_cell_takes_the_initializer_arguments():
    class _ScaledTanhCell(mdl.Cell):
        def __init__(self, input_size, hidden_size, kernel_initializer=None, recurrent_initializer=None):
            super().__init__(input_size, hidden_size, kernel_initializer, recurrent_initializer)
            self.kernel = init.make_weight(self, "kernel", (input_size, hidden_size), self.kernel_initializer)
            self.recurrent_kernel = init.make_weight(self, "recurrent_kernel", (hidden_size, hidden_size),
                                                     self.recurrent_initializer)

    mdl.set_seed(8)
    cell = _ScaledTanhCell(2, 3, recurrent_initializer="ones")
    np.testing.assert_array_equal(cell.recurrent_kernel.data, np.ones((3, 3)))
    b = 1 / math.sqrt(3)  # None: Cell.add_weight's default draw
    np.testing.assert_array_equal(cell.kernel.data, np.random.default_rng(8).uniform(-b, b, (2, 3)).astype(np.float32))
    config = cell.get_config()
    assert config == {"input_size": 2, "hidden_size": 3, "recurrent_initializer": "ones"}
    assert _ScaledTanhCell.from_config(config).recurrent_initializer == init.Ones()


# ---- PyTorch's two biases: SumOfUniforms -----------------------------------------------
def test_sum_of_uniforms_has_the_distribution_of_two_biases():
    """U(-k, k) has variance k^2/3; the sum of two independent ones, PyTorch's b_ih + b_hh,
    has mean 0, variance 2k^2/3, support [-2k, 2k] and a triangular density (P(|v| < k) = 3/4)."""
    k = 0.25
    v = init.SumOfUniforms(k)((200_000,), np.float64, _gen(3))
    one = init.Uniform(-k, k)((200_000,), np.float64, _gen(3))
    assert abs(v.mean()) < 0.005 * k and abs(one.mean()) < 0.005 * k
    assert v.var() == pytest.approx(2 * k * k / 3, rel=0.01)
    assert one.var() == pytest.approx(k * k / 3, rel=0.01)
    assert np.abs(v).max() <= 2 * k and np.abs(v).max() > 1.9 * k
    assert np.mean(np.abs(v) < k) == pytest.approx(0.75, abs=0.005)
    three = init.SumOfUniforms(k, terms=3)((200_000,), np.float64, _gen(3))
    assert three.var() == pytest.approx(3 * k * k / 3, rel=0.01) and np.abs(three).max() <= 3 * k
    np.testing.assert_array_equal(init.SumOfUniforms(k)((4,), np.float64, _gen(9)),
                                  sum(_gen(9).uniform(-k, k, (2, 4))))  # two draws, in order, added


@pytest.mark.parametrize("cls, gates", [(mdl.RNNCell, 1), (mdl.LSTMCell, 4)])
def test_a_cell_built_with_sum_of_uniforms_draws_its_bias_with_the_cells_bound(cls, gates):
    """bias_initializer="sum_of_uniforms" takes the cell's 1/sqrt(H); the kernels keep the
    default draws; the cell runs in an RNN and is saved and rebuilt with the name."""
    H = 256
    k = 1 / math.sqrt(H)
    mdl.set_seed(4)
    cell = cls(3, H, bias_initializer="sum_of_uniforms")
    mdl.set_seed(4)
    default = cls(3, H)
    bias = cell.bias.data.astype(np.float64)
    assert cell.bias.data.dtype == np.float32 and bias.shape == (gates * H,)
    assert np.abs(bias).max() <= 2 * k and np.abs(bias).max() > k  # beyond one uniform's support
    assert bias.var() == pytest.approx(2 * k * k / 3, rel=0.15) and abs(bias.mean()) < 0.1 * k
    np.testing.assert_array_equal(cell.kernel.data, default.kernel.data)
    assert cell.get_config()["bias_initializer"] == "sum_of_uniforms"
    rebuilt = cls.from_config(cell.get_config())
    assert np.abs(rebuilt.bias.data).max() <= 2 * k and rebuilt.bias_initializer == init.SumOfUniforms()
    out = mdl.RNN(cell, return_sequences=True).forward(np.ones((2, 4, 3), np.float32))
    assert out.shape == (2, 4, H) and np.isfinite(out).all()


def test_sum_of_uniforms_in_a_dense_and_with_an_explicit_bound():
    mdl.set_seed(1)
    dense = mdl.Dense(16, 4000, bias_initializer="sum_of_uniforms")  # Dense's bound: 1/sqrt(16)
    assert np.abs(dense.bias.data).max() <= 0.5 and dense.bias.data.var() == pytest.approx(2 / 16 / 3, rel=0.05)
    cell = mdl.RNNCell(2, 4, bias_initializer=init.SumOfUniforms(bound=0.01))
    assert np.abs(cell.bias.data).max() <= 0.02
    assert init.serialize(init.SumOfUniforms(0.01)) == {"class_name": "SumOfUniforms",
                                                        "config": {"bound": 0.01, "terms": 2}}
    assert init.get(init.serialize(init.SumOfUniforms(0.01))) == init.SumOfUniforms(0.01)


def test_sum_of_uniforms_matches_torchs_two_biases_in_distribution():
    """nn.LSTM's b_ih + b_hh has the variance and support SumOfUniforms gives the one bias."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    H = 512
    lstm = torch.nn.LSTM(3, H)
    theirs = (lstm.bias_ih_l0 + lstm.bias_hh_l0).detach().double().numpy()
    ours = init.SumOfUniforms(1 / math.sqrt(H))((4 * H,), np.float64, _gen(0))
    assert theirs.var() == pytest.approx(ours.var(), rel=0.1) == pytest.approx(2 / (3 * H), rel=0.1)
    assert np.abs(theirs).max() <= 2 / math.sqrt(H) and np.abs(ours).max() <= 2 / math.sqrt(H)
    single = lstm.bias_ih_l0.detach().double().numpy()
    assert single.var() == pytest.approx(1 / (3 * H), rel=0.1)  # minidl's default: one of them
