"""gradcheck itself: passes correct layers, catches wrong ones, leaves the layer alone."""

import numpy as np
import pytest

import minidl as mdl
from tests.helpers.bad_inputs import assert_bad_input, bad_input_params, BAD_X2
from tests.helpers import TokensAndFeatures, TwoHeads, TwoSequenceModel, two_sequences


class _ScaleForGradcheck(mdl.Layer):
    """``y = x * weight`` on the last axis, with optional deliberate errors in backward."""

    def __init__(self, features, input_factor=1.0, weight_factor=1.0):
        super().__init__()
        self.weight = mdl.Parameter(np.linspace(0.5, 1.5, features).astype(mdl.get_default_dtype()), "weight")
        self.input_factor = input_factor
        self.weight_factor = weight_factor

    def forward(self, x):
        self._x = np.asarray(x, self.weight.data.dtype)
        return self._x * self.weight.data

    def backward(self, grad_out):
        axes = tuple(range(self._x.ndim - 1))
        self.weight.grad += self.weight_factor * np.sum(grad_out * self._x, axis=axes)
        return self.input_factor * grad_out * self.weight.data


def test_returns_true_for_correct_layers(float64, rng):
    x = rng.standard_normal((3, 4))
    assert mdl.gradcheck(_ScaleForGradcheck(4), x) is True
    assert mdl.gradcheck(mdl.Dense(4, 2), x) is True
    assert mdl.gradcheck(mdl.Sequential([mdl.Dense(4, 3), mdl.Sigmoid(), _ScaleForGradcheck(3)]), x) is True


def test_wrong_input_gradient_is_named(float64, rng):
    with pytest.raises(AssertionError, match=r"gradient of 'input' differs at index \(\d+, \d+\): backward gives"):
        mdl.gradcheck(_ScaleForGradcheck(4, input_factor=1.5), rng.standard_normal((3, 4)))


def test_wrong_parameter_gradient_is_named(float64, rng):
    pattern = r"gradient of 'weight' differs at index \(\d,\): backward gives .*, central differences give"
    with pytest.raises(AssertionError, match=pattern):
        mdl.gradcheck(_ScaleForGradcheck(4, weight_factor=0.5), rng.standard_normal((3, 4)))


def test_wrong_gradient_inside_a_model_gets_dotted_name(float64, rng):
    model = mdl.Sequential([mdl.Dense(4, 3), mdl.Tanh(), _ScaleForGradcheck(3, weight_factor=2.0)])
    with pytest.raises(AssertionError, match=r"gradient of '2\.weight'"):
        mdl.gradcheck(model, rng.standard_normal((2, 4)))


def test_small_errors_are_caught_and_counted(float64, rng):
    x = rng.standard_normal((3, 4))
    with pytest.raises(AssertionError, match=r"12 of 12 elements fail"):
        mdl.gradcheck(_ScaleForGradcheck(4, input_factor=1.001), x)
    assert mdl.gradcheck(_ScaleForGradcheck(4, input_factor=1.001), x, rtol=1e-2)


def test_max_elements_samples_but_still_checks(float64, rng):
    x = rng.standard_normal((5, 4))
    assert mdl.gradcheck(mdl.RNN(mdl.LSTMCell(4, 3)), x[None].repeat(2, 0), max_elements=5)
    with pytest.raises(AssertionError, match=r"'input'.*3 of 3 elements fail"):
        mdl.gradcheck(_ScaleForGradcheck(4, input_factor=1.5), x + 3.0, max_elements=3)


def test_does_not_modify_the_layer(rng):
    mdl.set_seed(0)
    model = mdl.Sequential([mdl.RNN(mdl.LSTMCell(3, 4), stateful=True), mdl.Dense(4, 2)])  # float32
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    model.forward(x)
    state = model.layers[0].get_state()
    before = {n: p.data.copy() for n, p in model.named_parameters()}
    ids = {n: id(p.data) for n, p in model.named_parameters()}
    assert mdl.gradcheck(model, x, atol=1e-7, rtol=1e-6)  # tight: runs in float64
    for n, p in model.named_parameters():
        assert p.data.dtype == np.float32 and p.grad.dtype == np.float32
        assert id(p.data) == ids[n]
        np.testing.assert_array_equal(p.data, before[n])
        np.testing.assert_array_equal(p.grad, 0.0)
    for a, b in zip(model.layers[0].get_state(), state):
        np.testing.assert_array_equal(a, b)
    assert x.dtype == np.float32


def test_float32_layer_checked_in_float64(rng):
    """A float32 check with eps=1e-6 would be noise; a pass at rtol 1e-6 shows float64."""
    mdl.set_seed(1)
    rnn = mdl.RNN(mdl.GRUCell(2, 3), return_sequences=True)
    assert mdl.gradcheck(rnn, rng.standard_normal((2, 4, 2)).astype(np.float32), atol=1e-8, rtol=1e-6)


def test_explicit_grad_out_and_its_shape(float64, rng):
    dense = mdl.Dense(3, 2)
    x = rng.standard_normal((4, 3))
    assert mdl.gradcheck(dense, x, grad_out=np.ones((4, 2)))
    with pytest.raises(ValueError, match=r"gradcheck: expected grad_out of shape \(4, 2\), got \(2, 4\)"):
        mdl.gradcheck(dense, x, grad_out=np.ones((2, 4)))
    with pytest.raises(TypeError, match=r"gradcheck: grad_out must be a real numeric array, got dtype <U1"):
        mdl.gradcheck(dense, x, grad_out=np.full((4, 2), "a"))


def test_non_contiguous_input(float64, rng):
    x = rng.standard_normal((5, 2, 3)).transpose(1, 0, 2)  # a view with time-major strides
    assert not x.flags.c_contiguous
    assert mdl.gradcheck(mdl.RNN(mdl.RNNCell(3, 2), return_sequences=True), x)


def test_integer_input_is_not_differentiated(float64):
    x = np.array([[1, 2, 0], [0, -1, 3]])
    assert mdl.gradcheck(mdl.Dense(3, 2), x)
    # the wrong input gradient goes unnoticed only because integer input is skipped
    assert mdl.gradcheck(_ScaleForGradcheck(3, input_factor=2.0), x)
    with pytest.raises(AssertionError, match="'weight'"):
        mdl.gradcheck(_ScaleForGradcheck(3, weight_factor=2.0), x)


def test_refuses_to_run_under_no_grad(rng):
    with mdl.no_grad(), pytest.raises(RuntimeError, match="gradcheck cannot run under no_grad"):
        mdl.gradcheck(mdl.Dense(2, 2), rng.standard_normal((1, 2)))


# ---- models of several inputs and outputs ------------------------------------------------------------
class _ScaledPair(mdl.Model):
    """``forward(a, b) = a * wa + b * wb`` (last axis), with optional deliberate errors in backward."""

    def __init__(self, features, b_factor=1.0, count=2, b_none=False):
        super().__init__()
        self.wa = mdl.Parameter(np.linspace(0.5, 1.5, features), "wa")
        self.wb = mdl.Parameter(np.linspace(-1.0, 1.0, features), "wb")
        self.b_factor, self.count, self.b_none = b_factor, count, b_none

    def forward(self, a, b):
        self._a, self._b = a, b
        return a * self.wa.data + b * self.wb.data

    def backward(self, grad_out):
        self.wa.grad += np.sum(grad_out * self._a, axis=0)
        self.wb.grad += np.sum(grad_out * self._b, axis=0)
        grads = (grad_out * self.wa.data, None if self.b_none else self.b_factor * grad_out * self.wb.data)
        return grads[: self.count]


def test_two_sequence_inputs(float64, rng):
    assert mdl.gradcheck(TwoSequenceModel(2, 3), two_sequences(rng)) is True


def test_an_integer_input_beside_a_float_input(float64, rng):
    tokens, x = rng.integers(0, 5, (3, 4)), rng.standard_normal((3, 4, 2))
    assert mdl.gradcheck(TokensAndFeatures(), (tokens, x)) is True


def test_a_model_returning_two_outputs(float64, rng):
    x = rng.standard_normal((3, 4, 2))
    assert mdl.gradcheck(TwoHeads(), x) is True
    assert mdl.gradcheck(TwoHeads(), x, grad_out=(np.ones((3, 1)), np.zeros((3, 4, 2))))  # the first output alone
    with pytest.raises(ValueError, match=r"returns 2 outputs; expected grad_out as a tuple of 2 arrays, got an array of shape \(3, 1\)"):
        mdl.gradcheck(TwoHeads(), x, grad_out=np.ones((3, 1)))
    with pytest.raises(ValueError, match=r"gradcheck: grad_out\[1\]: expected grad_out of shape \(3, 4, 2\), got \(3, 4\)"):
        mdl.gradcheck(TwoHeads(), x, grad_out=(np.ones((3, 1)), np.ones((3, 4))))


def test_a_wrong_gradient_of_the_second_input_is_named_by_position(float64, rng):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    assert mdl.gradcheck(_ScaledPair(4), (a, b))
    with pytest.raises(AssertionError, match=r"gradient of 'input\[1\]' differs at index \(\d+, \d+\)"):
        mdl.gradcheck(_ScaledPair(4, b_factor=1.01), (a, b))


def test_backward_must_return_one_gradient_per_input(float64, rng):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    with pytest.raises(AssertionError, match=r"backward returned a tuple of length 1; expected a tuple of 2 gradients, one per input"):
        mdl.gradcheck(_ScaledPair(4, count=1), (a, b))
    with pytest.raises(AssertionError, match=r"backward returned None as the gradient of 'input\[1\]' of shape \(3, 4\)"):
        mdl.gradcheck(_ScaledPair(4, b_none=True), (a, b))


def test_the_number_of_inputs_must_fit_forward(float64, rng):
    a = rng.standard_normal((3, 4))
    with pytest.raises(ValueError, match=r"^gradcheck: _ScaledPair\.forward takes 2 inputs \(a, b\), got 3 arrays$"):
        mdl.gradcheck(_ScaledPair(4), (a, a, a))
    with pytest.raises(ValueError, match=r"^gradcheck: Sequential\.forward takes 1 input \(x\), got 2 arrays$"):
        mdl.gradcheck(mdl.Sequential([mdl.Dense(4, 1)]), (a, a))  # the second is not taken as the mask


def test_a_one_element_tuple_names_the_input_by_position(float64, rng):
    x = rng.standard_normal((3, 4))
    assert mdl.gradcheck(mdl.Dense(4, 2), (x,))
    with pytest.raises(AssertionError, match=r"gradient of 'input\[0\]'"):
        mdl.gradcheck(_ScaleForGradcheck(4, input_factor=1.5), (x,))


# ---- bad inputs: the exception, and a message naming what is wrong, raised by minidl itself ----
BAD_INPUTS = [
    (
            "gradcheck_grad_out",
            lambda: mdl.gradcheck(mdl.Dense(3, 2), BAD_X2, grad_out=np.zeros(2)),
            ValueError,
            r"gradcheck: expected grad_out of shape \(2, 2\), got \(2,\)",
        ),
    ("gradcheck_zero_eps", lambda: mdl.gradcheck(mdl.Dense(2, 1), np.ones((1, 2)), eps=0),
         ValueError, r"^gradcheck: eps must be > 0\.0, got 0\.0"),
    ("gradcheck_string_eps", lambda: mdl.gradcheck(mdl.Dense(2, 1), np.ones((1, 2)), eps="a"),
         TypeError, r"^gradcheck: eps must be a real number, got 'a' \(str\)"),
    ("gradcheck_negative_atol", lambda: mdl.gradcheck(mdl.Dense(2, 1), np.ones((1, 2)), atol=-1),
         ValueError, r"^gradcheck: atol must be >= 0\.0, got -1\.0"),
    ("gradcheck_negative_max_elements", lambda: mdl.gradcheck(mdl.Dense(2, 1), np.ones((1, 2)), max_elements=-1),
         ValueError, r"^gradcheck: max_elements must be >= 1, got -1"),
    ("gradcheck_negative_seed", lambda: mdl.gradcheck(mdl.Dense(2, 1), np.ones((1, 2)), seed=-1),
         ValueError, r"^gradcheck: seed must be a non-negative int, got -1"),
    ("gradcheck_string_input", lambda: mdl.gradcheck(mdl.Dense(2, 1), np.array([["a", "b"]])),
         TypeError, r"^Dense\(.*input must be a real numeric array, got dtype <U1"),
    ("gradcheck_layer_name", lambda: mdl.gradcheck("dense", np.ones((1, 2))),
         TypeError, r"^gradcheck: layer must be a minidl Layer \(a built-in layer, an RNN, a Sequential or your "
                    r"own Model\) to check, got str 'dense'$"),
    ("gradcheck_layer_class", lambda: mdl.gradcheck(mdl.Dense, np.ones((1, 2))),
         TypeError, r"^gradcheck: layer must be a minidl Layer .*got type"),
    ("gradcheck_training_dropout", lambda: mdl.gradcheck(_with_dropout(), np.ones((3, 2))),
         AssertionError, r"^gradcheck: gradient of .* differs .*\. Dropout '1' \(p=0\.5\) is in training mode and "
                         r"draws a new mask at every forward, so central differences cannot match backward: call "
                         r"model\.eval\(\) before gradcheck"),
]


def _with_dropout():
    mdl.set_seed(0)
    return mdl.Sequential([mdl.Dense(2, 3), mdl.Dropout(0.5), mdl.Dense(3, 2)])


def test_the_dropout_hint_names_the_nested_layer_and_only_a_random_one():
    """The hint names the Dropout by its state-dict path; in eval mode, or with p = 0, the
    check passes; a failure that has nothing to do with dropout carries no hint."""
    model = mdl.Sequential([mdl.Dense(2, 3), mdl.Sequential([mdl.Tanh(), mdl.Dropout(0.3)])])
    with pytest.raises(AssertionError, match=r"Dropout '1\.1' \(p=0\.3\) is in training mode"):
        mdl.gradcheck(model, np.ones((3, 2)))
    assert mdl.gradcheck(model.eval(), np.ones((3, 2))) and not model.training
    assert mdl.gradcheck(mdl.Sequential([mdl.Dense(2, 3), mdl.Dropout(0.0)]), np.ones((3, 2)))

    class WrongBias(mdl.Dense):
        def backward(self, grad_out):
            dx = super().backward(grad_out)
            self.bias.grad += 1.0
            return dx

    with pytest.raises(AssertionError, match=r"gradient of '0\.bias' differs .*elements fail\)$"):
        mdl.gradcheck(mdl.Sequential([WrongBias(2, 3), mdl.Dropout(0.5)]).eval(), np.ones((3, 2)))


@pytest.mark.parametrize(**bad_input_params(BAD_INPUTS))
def test_bad_input(make, exc, pattern):
    assert_bad_input(make, exc, pattern)
