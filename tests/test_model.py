"""Model (minidl/model.py), the base class of models of several inputs: sub-layers found
automatically, forward/backward of several inputs, predict, summary, reset_states.

Sequential, its subclass, has its own module (tests/test_sequential.py); saving and loading
user models is in tests/io/test_model_file_models.py, gradcheck over tuples in tests/test_gradcheck.py.
"""

import numpy as np
import pytest

import minidl as mdl
from minidl.model import check_input_count
from tests.helpers import TokensAndFeatures, TwoHeads, TwoSequenceModel, two_sequences


class _Blocks(mdl.Model):
    """Sub-layers in a list attribute and a parameter of its own: ``y = tanh(x @ k0) @ k1 * scale``."""

    def __init__(self):
        super().__init__()
        self.blocks = [mdl.Dense(2, 3, bias=False), mdl.Tanh(), mdl.Dense(3, 1, bias=False)]
        self.scale = mdl.Parameter(np.array([2.0]), "scale")

    def forward(self, x):
        self._y = x
        for block in self.blocks:
            self._y = block(self._y)
        return self._y * self.scale.data

    def backward(self, grad_out):
        self.scale.grad += np.sum(grad_out * self._y, axis=0)
        g = grad_out * self.scale.data
        for block in reversed(self.blocks):
            g = block.backward(g)
        return g


class _Summed(mdl.Model):
    """``forward(a, b) = a @ kernel + b``; ``backward`` gives ``(g @ kernel.T, g)``."""

    def __init__(self):
        super().__init__()
        self.dense = mdl.Dense(2, 1, bias=False)

    def forward(self, a, b):
        return self.dense(a) + b

    def backward(self, grad_out):
        return self.dense.backward(grad_out), np.array(grad_out, copy=True)


class _Probe2(mdl.Model):
    """Two inputs passed through; records (training, grad enabled, batch) at each forward."""

    def __init__(self):
        super().__init__()
        self.dropout = mdl.Dropout(0.5)
        self.calls = []

    def forward(self, a, b):
        self.calls.append((self.dropout.training, mdl.is_grad_enabled(), a.shape[0], b.shape[0]))
        return a.sum(axis=1, keepdims=True) + b.sum(axis=1, keepdims=True)


# ---- structure ---------------------------------------------------------------------------------
def test_sublayers_in_attributes_are_found_and_named_by_attribute_path():
    model = TwoSequenceModel(2, 3)
    assert [n for n, _ in model.named_parameters()] == [
        "left.cell.kernel", "left.cell.recurrent_kernel", "left.cell.bias",
        "right.cell.kernel", "right.cell.recurrent_kernel", "right.cell.bias",
        "head.kernel", "head.bias",
    ]
    assert [n for n, _ in model.children()] == ["left", "right", "join", "head"]
    assert dict(model.named_parameters())["head.kernel"] is model.head.kernel
    assert isinstance(model, mdl.Layer) and list(model.state_dict()) == [n for n, _ in model.named_parameters()]


def test_sublayers_in_a_list_attribute_and_own_parameters():
    model = _Blocks()
    assert [n for n, _ in model.named_parameters()] == ["scale", "blocks.0.kernel", "blocks.2.kernel"]
    model.eval()
    assert not any(layer.training for layer in model.sublayers())


def test_forward_and_backward_of_two_inputs_are_the_chain_rule(float64):
    model = _Summed()
    model.dense.kernel.data[...] = [[2.0], [-1.0]]
    a, b = np.array([[1.0, 3.0], [0.5, 0.0]]), np.array([[10.0], [20.0]])
    np.testing.assert_array_equal(model.forward(a, b), [[9.0], [21.0]])  # 2*1 - 3 + 10, 2*0.5 + 20
    da, db = model.backward(np.array([[1.0], [-2.0]]))
    np.testing.assert_array_equal(da, [[2.0, -1.0], [-4.0, 2.0]])
    np.testing.assert_array_equal(db, [[1.0], [-2.0]])
    np.testing.assert_array_equal(model.dense.kernel.grad, [[0.0], [3.0]])  # a.T @ g


def test_the_base_class_has_no_computation_of_its_own():
    with pytest.raises(NotImplementedError, match="Model does not implement forward"):
        mdl.Model().forward(np.zeros((1, 2)))
    with pytest.raises(NotImplementedError, match="Model does not implement backward"):
        mdl.Model().backward(np.zeros((1, 2)))


def test_backward_before_forward_is_a_clear_error(rng):
    with pytest.raises(RuntimeError, match=r"backward called before forward"):
        TwoSequenceModel(2, 3).backward(np.zeros((3, 2)))
    model = TwoSequenceModel(2, 3)
    model.predict(two_sequences(rng))  # no history
    with pytest.raises(RuntimeError, match=r"backward called before forward \(or after a forward under no_grad\)"):
        model.backward(np.zeros((3, 2)))


# ---- predict -------------------------------------------------------------------------------------
@pytest.mark.parametrize("batch_size", [None, 1, 2, 3, 7, 100])
def test_predict_of_a_tuple_in_batches_equals_the_whole_batch(float64, rng, batch_size):
    model = TwoSequenceModel(2, 3)
    a, b = two_sequences(rng, batch=7)
    whole = model.forward(a, b)
    y = model.predict((a, b), batch_size=batch_size)
    assert y.shape == (7, 2)
    np.testing.assert_allclose(y, whole, rtol=1e-13, atol=1e-15)


def test_predict_with_an_integer_input(float64, rng):
    model = TokensAndFeatures()
    tokens, x = rng.integers(0, 5, (6, 4)), rng.standard_normal((6, 4, 2))
    np.testing.assert_allclose(model.predict((tokens, x), batch_size=4), model.forward(tokens, x), rtol=1e-13)


@pytest.mark.parametrize("batch_size", [None, 2, 5])
def test_predict_of_a_model_returning_a_tuple_concatenates_each_output(float64, rng, batch_size):
    model = TwoHeads()
    x = rng.standard_normal((5, 4, 2))
    last, steps = model.forward(x)
    got = model.predict(x, batch_size=batch_size)
    assert isinstance(got, tuple) and len(got) == 2
    assert got[0].shape == (5, 1) and got[1].shape == (5, 4, 2)
    np.testing.assert_allclose(got[0], last, rtol=1e-13)
    np.testing.assert_allclose(got[1], steps, rtol=1e-13)


def test_predict_runs_in_eval_mode_without_history_and_restores_the_modes():
    model = _Probe2()
    model.dropout.eval()  # mixed modes: the model training, its dropout not
    model.predict((np.zeros((5, 2)), np.ones((5, 3))), batch_size=2)
    assert [c[2:] for c in model.calls] == [(2, 2), (2, 2), (1, 1)]
    assert all(c[:2] == (False, False) for c in model.calls)
    assert (model.training, model.dropout.training) == (True, False)
    with pytest.raises(ValueError):
        model.predict((np.zeros((5, 2)), np.ones((4, 3))))
    assert (model.training, model.dropout.training) == (True, False) and mdl.is_grad_enabled()


@pytest.mark.parametrize(
    "x, err, pattern",
    [
        ((np.zeros((4, 2)), np.zeros((3, 1))), ValueError,
         r"^_Probe2\.predict: the inputs must have the same batch size, got x\[0\] has 4, x\[1\] has 3$"),
        ((np.zeros((4, 2)),), ValueError, r"^_Probe2\.predict: _Probe2\.forward takes 2 inputs \(a, b\), got 1 array$"),
        ((np.zeros((4, 2)),) * 3, ValueError, r"_Probe2\.forward takes 2 inputs \(a, b\), got 3 arrays"),
        (np.zeros((4, 2)), ValueError, r"_Probe2\.forward takes 2 inputs \(a, b\), got 1 array"),
        ((), ValueError, r"^_Probe2\.predict: x is an empty tuple; give one array per input"),
        ((np.zeros((4, 2)), 3.0), ValueError, r"^_Probe2\.predict: x\[1\] must have a batch axis, got shape \(\)"),
        ((np.zeros((4, 2)), [[1], [1, 2]]), TypeError, r"^_Probe2\.predict: x\[1\] must be a numeric array, got list"),
    ],
)
def test_predict_refuses_bad_tuples(x, err, pattern):
    with pytest.raises(err, match=pattern):
        _Probe2().predict(x)


def test_predict_counts_inputs_of_a_variadic_forward(rng):
    join = mdl.Concatenate()
    a, b, c = rng.standard_normal((3, 2)), rng.standard_normal((3, 1)), rng.standard_normal((3, 4))

    class Joined(mdl.Model):
        def __init__(self):
            super().__init__()
            self.join = mdl.Concatenate()

        def forward(self, first, *rest):
            return self.join(first, *rest)

    np.testing.assert_array_equal(Joined().predict((a, b, c), batch_size=2), join.forward(a, b, c))
    with pytest.raises(ValueError, match=r"Joined\.forward takes 1 or more inputs \(first\), got 0 arrays"):
        check_input_count(Joined(), 0, "Joined.predict")


# ---- summary and states ----------------------------------------------------------------------------
def test_summary_has_a_row_per_direct_sublayer_and_the_total():
    text = TwoSequenceModel(2, 3, hidden=4, out=2).summary()
    lines = text.splitlines()
    assert lines[0] == "TwoSequenceModel: dtype float32"
    assert lines[2].split() == ["Layer", "Output", "shape", "Params"]
    lstm, gru, dense = 4 * 4 * (2 + 4 + 1), 3 * 4 * (3 + 4) + 2 * 3 * 4, 8 * 2 + 2
    assert (lstm, gru, dense) == (112, 108, 18)
    rows = [line.split() for line in lines[4:8]]
    assert rows == [["left", "RNN(LSTMCell)", "(None,", "4)", "112"], ["right", "RNN(GRUCell)", "(None,", "4)", "108"],
                    ["join", "Concatenate", "?", "0"], ["head", "Dense", "(None,", "2)", "18"]]
    assert lines[-1] == "Total params: 238"


def test_summary_lists_list_members_and_own_parameters():
    text = _Blocks().summary()
    rows = [line.split() for line in text.splitlines()[4:-2]]
    assert rows == [["blocks.0", "Dense", "(None,", "3)", "6"], ["blocks.1", "Tanh", "?", "0"],
                    ["blocks.2", "Dense", "(None,", "1)", "3"], ["(own", "parameters)", "-", "1"]]
    assert text.endswith("Total params: 10")


def test_reset_states_reaches_stateful_sublayers(rng):
    model = TwoSequenceModel(2, 3)
    model.left.stateful = True
    a, b = two_sequences(rng, dtype=np.float32)
    first = model.forward(a, b)
    assert not np.allclose(model.forward(a, b), first)  # the carried state of `left`
    model.reset_states()
    assert model.left.get_state() is None
    np.testing.assert_array_equal(model.forward(a, b), first)
