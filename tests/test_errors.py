"""A table of bad inputs: each raises the expected exception with a message that names
the layer or argument, what was expected and what was received."""

import numpy as np
import pytest

import minidl as mdl

X2 = np.zeros((2, 3))
X3 = np.zeros((2, 4, 3))
RNN_NAME = r"RNN\((RNN|LSTM|GRU)Cell\(input_size="


def _after_forward(layer, x):
    layer.forward(x)
    return layer


def _stateful_rnn():
    return _after_forward(mdl.RNN(mdl.RNNCell(3, 4), stateful=True), X3)


CASES = [
    # ---- constructors ------------------------------------------------------------------
    ("dense_zero_in", lambda: mdl.Dense(0, 2), ValueError, r"Dense: in_features must be >= 1, got 0"),
    ("dense_negative_out", lambda: mdl.Dense(3, -1), ValueError, r"Dense: out_features must be >= 1, got -1"),
    (
        "dense_float_size",
        lambda: mdl.Dense(3, 2.0),
        TypeError,
        r"Dense: out_features must be an int, got 2\.0 \(float\)",
    ),
    ("dense_str_size", lambda: mdl.Dense("3", 2), TypeError, r"Dense: in_features must be an int, got '3' \(str\)"),
    ("dense_bias_not_bool", lambda: mdl.Dense(3, 2, bias="yes"), TypeError, r"Dense: bias must be a bool, got 'yes'"),
    ("rnncell_zero_input", lambda: mdl.RNNCell(0, 4), ValueError, r"RNNCell: input_size must be >= 1, got 0"),
    ("lstm_float_hidden", lambda: mdl.LSTMCell(3, 2.5), TypeError, r"LSTMCell: hidden_size must be an int, got 2\.5"),
    ("gru_negative_hidden", lambda: mdl.GRUCell(3, -2), ValueError, r"GRUCell: hidden_size must be >= 1, got -2"),
    (
        "gru_bool_size",
        lambda: mdl.GRUCell(True, 2),
        TypeError,
        r"GRUCell: input_size must be an int, got True \(bool\)",
    ),
    (
        "unknown_activation",
        lambda: mdl.RNNCell(3, 4, activation="gelu"),
        ValueError,
        r"RNNCell: activation must be one of 'tanh', 'sigmoid', 'relu', got 'gelu'",
    ),
    (
        "activation_none",
        lambda: mdl.RNNCell(3, 4, activation=None),
        ValueError,
        r"RNNCell: activation must be one of .*got None",
    ),
    ("rnn_non_cell", lambda: mdl.RNN(mdl.Dense(3, 2)), TypeError, r"RNN: cell must be a Cell .*got Dense"),
    (
        "rnn_flag_not_bool",
        lambda: mdl.RNN(mdl.GRUCell(3, 2), return_sequences=1),
        TypeError,
        r"RNN: return_sequences must be a bool, got 1",
    ),
    (
        "rnn_stateful_str",
        lambda: mdl.RNN(mdl.GRUCell(3, 2), stateful="no"),
        TypeError,
        r"RNN: stateful must be a bool, got 'no'",
    ),
    (
        "sequential_non_layer",
        lambda: mdl.Sequential([mdl.Dense(3, 2), "relu"]),
        TypeError,
        r"Sequential: layers\[1\] must be a Layer, got str",
    ),
    (
        "sequential_function",
        lambda: mdl.Sequential([np.tanh]),
        TypeError,
        r"Sequential: layers\[0\] must be a Layer, got ufunc",
    ),
    # ---- forward inputs ----------------------------------------------------------------
    (
        "dense_wrong_features",
        lambda: mdl.Dense(3, 2).forward(np.zeros((2, 4))),
        ValueError,
        r"Dense\(in_features=3.*expected input \(\.\.\., 3\), got shape \(2, 4\)",
    ),
    (
        "dense_scalar",
        lambda: mdl.Dense(3, 2).forward(1.0),
        ValueError,
        r"Dense\(in_features=3.*expected input \(\.\.\., 3\), got shape \(\)",
    ),
    (
        "dense_string",
        lambda: mdl.Dense(3, 2).forward("abc"),
        TypeError,
        r"Dense\(in_features=3.*input must be a real numeric array, got dtype <U3",
    ),
    (
        "dense_object",
        lambda: mdl.Dense(3, 2).forward(np.array([None, 1, 2], dtype=object)),
        TypeError,
        r"Dense\(.*input must be a real numeric array, got dtype object",
    ),
    (
        "dense_complex",
        lambda: mdl.Dense(3, 2).forward(np.ones((1, 3), complex)),
        TypeError,
        r"Dense\(.*input must be a real numeric array, got dtype complex128",
    ),
    (
        "dense_ragged",
        lambda: mdl.Dense(3, 2).forward([[1, 2, 3], [1]]),
        TypeError,
        r"Dense\(.*input must be a numeric array, got list",
    ),
    (
        "tanh_string",
        lambda: mdl.Tanh().forward(["a", "b"]),
        TypeError,
        r"Tanh\(\): input must be a real numeric array, got dtype <U1",
    ),
    (
        "sigmoid_complex",
        lambda: mdl.Sigmoid().forward(np.array([1j])),
        TypeError,
        r"Sigmoid\(\): input must be a real numeric array, got dtype complex128",
    ),
    (
        "rnn_rank2",
        lambda: mdl.RNN(mdl.LSTMCell(3, 4)).forward(X2),
        ValueError,
        RNN_NAME + r".*expected input \(batch, time, 3\), got shape \(2, 3\)",
    ),
    (
        "rnn_rank4",
        lambda: mdl.RNN(mdl.GRUCell(3, 4)).forward(np.zeros((1, 2, 4, 3))),
        ValueError,
        RNN_NAME + r".*expected input \(batch, time, 3\), got shape \(1, 2, 4, 3\)",
    ),
    (
        "rnn_wrong_features",
        lambda: mdl.RNN(mdl.RNNCell(3, 4)).forward(np.zeros((2, 4, 5))),
        ValueError,
        RNN_NAME + r".*expected input \(batch, time, 3\), got shape \(2, 4, 5\)",
    ),
    (
        "rnn_zero_steps",
        lambda: mdl.RNN(mdl.RNNCell(3, 4)).forward(np.zeros((2, 0, 3))),
        ValueError,
        RNN_NAME + r".*at least one sample and one step, got shape \(2, 0, 3\)",
    ),
    (
        "rnn_string",
        lambda: mdl.RNN(mdl.RNNCell(3, 4)).forward(np.full((2, 4, 3), "x")),
        TypeError,
        RNN_NAME + r".*input must be a real numeric array, got dtype <U1",
    ),
    (
        "rnn_complex",
        lambda: mdl.RNN(mdl.LSTMCell(3, 4)).forward(X3 + 0j),
        TypeError,
        RNN_NAME + r".*got dtype complex128",
    ),
    (
        "cell_wrong_features",
        lambda: mdl.RNNCell(3, 4).forward(np.zeros((2, 5))),
        ValueError,
        r"RNNCell\(input_size=3.*expected input \(batch, 3\), got shape \(2, 5\)",
    ),
    (
        "cell_rank1",
        lambda: mdl.GRUCell(3, 4).forward(np.zeros(3)),
        ValueError,
        r"GRUCell\(input_size=3.*expected input \(batch, 3\), got shape \(3,\)",
    ),
    (
        "cell_string",
        lambda: mdl.LSTMCell(3, 4).forward("abc"),
        TypeError,
        r"LSTMCell\(.*input must be a real numeric array, got dtype <U3",
    ),
    (
        "lstm_state_count",
        lambda: mdl.LSTMCell(3, 4).forward(X2, (np.zeros((2, 4)),)),
        ValueError,
        r"LSTMCell\(.*expected state as a tuple of 2 arrays, got tuple of length 1",
    ),
    (
        "gru_state_shape",
        lambda: mdl.GRUCell(3, 4).forward(X2, (np.zeros((2, 5)),)),
        ValueError,
        r"GRUCell\(.*expected state\[0\] of shape \(2, 4\), got \(2, 5\)",
    ),
    (
        "sequential_inner_shape",
        lambda: mdl.Sequential([mdl.Dense(3, 2), mdl.Dense(4, 1)]).forward(X2),
        ValueError,
        r"Dense\(in_features=4.*expected input \(\.\.\., 4\), got shape \(2, 2\)",
    ),
    # ---- backward --------------------------------------------------------------------------
    (
        "dense_backward_first",
        lambda: mdl.Dense(3, 2).backward(np.zeros((2, 2))),
        RuntimeError,
        r"Dense\(in_features=3.*backward called before forward",
    ),
    (
        "rnn_backward_first",
        lambda: mdl.RNN(mdl.GRUCell(3, 2)).backward(np.zeros((2, 2))),
        RuntimeError,
        RNN_NAME + r".*backward called before forward",
    ),
    (
        "sigmoid_backward_first",
        lambda: mdl.Sigmoid().backward(np.zeros(2)),
        RuntimeError,
        r"Sigmoid\(\): backward called before forward",
    ),
    (
        "sequential_backward_first",
        lambda: mdl.Sequential([mdl.Dense(3, 2)]).backward(np.zeros((2, 2))),
        RuntimeError,
        r"Dense\(.*backward called before forward",
    ),
    (
        "dense_grad_shape",
        lambda: _after_forward(mdl.Dense(3, 2), X2).backward(np.zeros((2, 3))),
        ValueError,
        r"Dense\(.*expected grad_out of shape \(2, 2\), got \(2, 3\)",
    ),
    (
        "rnn_grad_shape",
        lambda: _after_forward(mdl.RNN(mdl.LSTMCell(3, 4)), X3).backward(np.zeros((2, 4, 4))),
        ValueError,
        RNN_NAME + r".*expected grad_out of shape \(2, 4\), got \(2, 4, 4\)",
    ),
    (
        "rnn_seq_grad_shape",
        lambda: _after_forward(mdl.RNN(mdl.GRUCell(3, 4), return_sequences=True), X3).backward(np.zeros((2, 4))),
        ValueError,
        RNN_NAME + r".*expected grad_out of shape \(2, 4, 4\), got \(2, 4\)",
    ),
    (
        "tanh_grad_shape",
        lambda: _after_forward(mdl.Tanh(), X2).backward(np.zeros((3, 2))),
        ValueError,
        r"Tanh\(\): expected grad_out of shape \(2, 3\), got \(3, 2\)",
    ),
    (
        "relu_grad_string",
        lambda: _after_forward(mdl.ReLU(), X2).backward(np.full((2, 3), "a")),
        TypeError,
        r"ReLU\(\): grad_out must be a real numeric array, got dtype <U1",
    ),
    (
        "rnn_grad_complex",
        lambda: _after_forward(mdl.RNN(mdl.RNNCell(3, 4)), X3).backward(np.zeros((2, 4), complex)),
        TypeError,
        RNN_NAME + r".*grad_out must be a real numeric array, got dtype complex128",
    ),
    # ---- state -----------------------------------------------------------------------------
    (
        "set_state_width",
        lambda: mdl.RNN(mdl.RNNCell(3, 4)).set_state((np.zeros((2, 5)),)),
        ValueError,
        RNN_NAME + r".*set_state: expected state\[0\] of shape \(batch, 4\), got \(2, 5\)",
    ),
    (
        "set_state_count",
        lambda: mdl.RNN(mdl.LSTMCell(3, 4)).set_state((np.zeros((2, 4)),)),
        ValueError,
        RNN_NAME + r".*set_state: expected state as a tuple of 2 arrays, got tuple of length 1",
    ),
    (
        "set_state_array",
        lambda: mdl.RNN(mdl.GRUCell(3, 4)).set_state(np.zeros((2, 4))),
        ValueError,
        RNN_NAME + r".*set_state: expected state as a tuple of 1 arrays, got ndarray",
    ),
    (
        "set_state_string",
        lambda: mdl.RNN(mdl.GRUCell(3, 4)).set_state((np.full((2, 4), "a"),)),
        TypeError,
        RNN_NAME + r".*state\[0\] must be a real numeric array, got dtype <U1",
    ),
    (
        "stateful_batch_change",
        lambda: _stateful_rnn().forward(np.zeros((3, 4, 3))),
        ValueError,
        RNN_NAME + r".*batch size 2 but the input has 3; call reset_states\(\)",
    ),
    ("state_at_before_forward", lambda: mdl.RNN(mdl.RNNCell(3, 4)).state_at(0), RuntimeError, RNN_NAME + r".*state_at"),
    (
        "state_at_past_end",
        lambda: _stateful_rnn().state_at(5),
        ValueError,
        RNN_NAME + r".*state_at\(t\) expected .*0 <= t <= 4, got 5",
    ),
    ("state_at_negative", lambda: _stateful_rnn().state_at(-1), ValueError, RNN_NAME + r".*0 <= t <= 4, got -1"),
    # ---- library-wide --------------------------------------------------------------------
    (
        "default_dtype_int",
        lambda: mdl.set_default_dtype(np.int32),
        TypeError,
        r"dtype: expected float32 or float64, got int32",
    ),
    (
        "default_dtype_float16",
        lambda: mdl.set_default_dtype("float16"),
        TypeError,
        r"dtype: expected float32 or float64, got float16",
    ),
    ("seed_negative", lambda: mdl.set_seed(-1), ValueError, r"set_seed: seed must be a non-negative int, got -1"),
    ("seed_float", lambda: mdl.set_seed(1.5), TypeError, r"set_seed: seed must be a non-negative int, got 1\.5"),
    (
        "parameter_int",
        lambda: mdl.Parameter(np.arange(3), "w"),
        TypeError,
        r"Parameter 'w': expected a float array, got dtype int64",
    ),
    (
        "load_state_dict_list",
        lambda: mdl.Dense(3, 2).load_state_dict([1, 2]),
        TypeError,
        r"Dense\(.*load_state_dict expected a mapping, got list",
    ),
    (
        "astype_int",
        lambda: mdl.Dense(3, 2).astype(np.int64),
        TypeError,
        r"dtype: expected float32 or float64, got int64",
    ),
    (
        "gradcheck_grad_out",
        lambda: mdl.gradcheck(mdl.Dense(3, 2), X2, grad_out=np.zeros(2)),
        ValueError,
        r"gradcheck: expected grad_out of shape \(2, 2\), got \(2,\)",
    ),
]


@pytest.mark.parametrize("make, exc, pattern", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input(make, exc, pattern):
    with pytest.raises(exc, match=pattern):
        make()


def test_table_is_large_and_ids_unique():
    ids = [c[0] for c in CASES]
    assert len(ids) >= 25 and len(set(ids)) == len(ids)
