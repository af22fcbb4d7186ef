"""More bad inputs across the public API, beyond tests/test_errors.py and tests/training/test_trainer.py.

Each case names the call, the exception type and a regex for the message, which must
name what is wrong (the owner and argument, expected and received). The test also
checks that the exception is raised in minidl's own code, at the public boundary,
not deep inside numpy or the standard library. Backward before forward (and after a
forward under ``no_grad``) is checked for every exported layer type and every loss.
"""

import inspect
import os
import traceback

import numpy as np
import pytest

import minidl as mdl
from minidl import data
from minidl.optim.clipping import total_grad_norm

X = np.zeros((4, 5, 2), np.float32)
Y = np.zeros((4, 1), np.float32)
P = mdl.Parameter(np.zeros(2), "w")
MINIDL_DIR = os.path.dirname(mdl.__file__)


def _model():
    mdl.set_seed(0)
    return mdl.Sequential([mdl.RNN(mdl.GRUCell(2, 3)), mdl.Dense(3, 1)])


def _trainer(**kw):
    model = _model()
    return mdl.TBPTTTrainer(model, mdl.MSELoss(), mdl.SGD(model.parameters(), lr=0.1), **kw)


def _fit(x=X, y=Y, **kw):
    return _trainer().fit(x, y, verbose=0, **kw)


def _adam_state(exp_avg):
    return {
        "type": "Adam",
        "config": {"lr": 0.1, "betas": [0.9, 0.99], "eps": 1e-8, "weight_decay": 0.0},
        "state": [{"step": 1, "exp_avg": exp_avg, "exp_avg_sq": np.zeros(2)}],
    }


CASES = [
    # ---- dtypes into losses (strings, objects, complex, bytes) --------------------------------------
    ("mse_object_pred", lambda: mdl.MSELoss()(np.array([1.0, None], dtype=object), np.zeros(2)),
     TypeError, r"^MSELoss: pred must be a real numeric array, got dtype object"),
    ("mse_bytes_pred", lambda: mdl.MSELoss()(np.array([b"a", b"b"]), np.zeros(2)),
     TypeError, r"^MSELoss: pred must be a real numeric array, got dtype \|S1"),
    ("mse_complex_pred", lambda: mdl.MSELoss()(np.zeros(2, complex), np.zeros(2)),
     TypeError, r"^MSELoss: pred must be a real numeric array, got dtype complex128"),
    ("mse_empty_features", lambda: mdl.MSELoss()(np.zeros((2, 0)), np.zeros((2, 0))),
     ValueError, r"^MSELoss: pred is empty \(shape \(2, 0\)\)"),
    ("l1_object_target", lambda: mdl.L1Loss()(np.zeros(2), np.array([None, 1], dtype=object)),
     TypeError, r"^L1Loss: target must be a real numeric array, got dtype object"),
    ("huber_string_pred", lambda: mdl.HuberLoss()(np.array(["a"]), np.zeros(1)),
     TypeError, r"^HuberLoss: pred must be a real numeric array, got dtype <U1"),
    ("bce_complex_logits", lambda: mdl.BCEWithLogitsLoss()(np.zeros(2, complex), np.zeros(2)),
     TypeError, r"^BCEWithLogitsLoss: pred must be a real numeric array, got dtype complex128"),
    ("bce_nan_target", lambda: mdl.BCEWithLogitsLoss()(np.zeros(2), np.array([0.0, np.nan])),
     ValueError, r"^BCEWithLogitsLoss: target must hold probabilities in \[0, 1\], got nan"),
    ("ce_string_target", lambda: mdl.CrossEntropyLoss()(np.zeros((2, 3)), np.array(["a", "b"])),
     TypeError, r"^CrossEntropyLoss: target must be integer class indices, got dtype <U1"),
    ("ce_scalar_logits", lambda: mdl.CrossEntropyLoss()(np.float64(1.0), np.array(0)),
     ValueError, r"^CrossEntropyLoss: pred must have a class axis \(\.\.\., C\), got a scalar"),
    # ---- dtypes and values into parameters, optimizers, clippers ---------------------------------------
    ("parameter_complex", lambda: mdl.Parameter(np.zeros(2, complex), "w"),
     TypeError, r"^Parameter 'w': expected a float array, got dtype complex128"),
    ("parameter_object", lambda: mdl.Parameter(np.array([None]), "w"),
     TypeError, r"^Parameter 'w': expected a float array, got dtype object"),
    ("parameter_string", lambda: mdl.Parameter(np.array(["a"]), "w"),
     TypeError, r"^Parameter 'w': expected a float array, got dtype <U1"),
    ("sgd_lr_huge_int", lambda: mdl.SGD([P], lr=10**400),
     ValueError, r"^SGD: lr must be finite, got a number too large for a float"),
    ("sgd_lr_complex", lambda: mdl.SGD([P], lr=1j),
     TypeError, r"^SGD: lr must be a real number, got 1j \(complex\)"),
    ("sgd_lr_array", lambda: mdl.SGD([P], lr=np.array([0.1])),
     TypeError, r"^SGD: lr must be a real number, got array\(\[0\.1\]\) \(ndarray\)"),
    ("sgd_momentum_string", lambda: mdl.SGD([P], lr=0.1, momentum="0.9"),
     TypeError, r"^SGD: momentum must be a real number, got '0\.9' \(str\)"),
    ("adam_beta_nan", lambda: mdl.Adam([P], betas=(0.9, float("nan"))),
     ValueError, r"^Adam: betas\[1\] must be finite, got nan"),
    ("adam_betas_string", lambda: mdl.Adam([P], betas="ab"),
     TypeError, r"^Adam: betas must be a pair \(beta1, beta2\), got 'ab' \(str\)"),
    ("adam_eps_inf", lambda: mdl.Adam([P], eps=float("inf")),
     ValueError, r"^Adam: eps must be finite, got inf"),
    ("adam_lr_set_negative", lambda: setattr(mdl.Adam([P]), "lr", -1),
     ValueError, r"^Adam: lr must be >= 0\.0, got -1\.0"),
    ("adam_duplicate_model_params", lambda: mdl.Adam(_model().parameters() * 2),
     ValueError, r"^Adam: params\[5\] is the same Parameter as params\[0\] \('kernel'\); each parameter may appear only once"),
    ("adam_state_of_strings", lambda: mdl.Adam([P]).load_state_dict(_adam_state(np.array(["a", "b"]))),
     TypeError, r"^Adam\.load_state_dict: state\[0\]\['exp_avg'\] must be a real array, got dtype <U1"),
    ("clip_value_huge_int", lambda: mdl.ClipByValue(10**400),
     ValueError, r"^ClipByValue: clip_value must be finite, got a number too large for a float"),
    ("clip_norm_bool", lambda: mdl.ClipByGlobalNorm(True),
     TypeError, r"^ClipByGlobalNorm: max_norm must be a real number, got True \(bool\)"),
    ("clip_norm_nan", lambda: mdl.ClipByGlobalNorm(float("nan")),
     ValueError, r"^ClipByGlobalNorm: max_norm must be finite, got nan"),
    ("total_grad_norm_duplicates", lambda: total_grad_norm([P, P]),
     ValueError, r"^total_grad_norm: params\[1\] is the same Parameter as params\[0\] \('w'\)"),
    ("load_state_dict_complex", lambda: mdl.Dense(2, 1).load_state_dict({"kernel": np.zeros((2, 1), complex), "bias": np.zeros(1)}),
     TypeError, r"load_state_dict: entry 'kernel' must be a real array, got dtype complex128"),
    # ---- the trainer: dtypes, NaN / inf, empty data, sizes ----------------------------------------------------
    ("fit_x_complex", lambda: _fit(x=X + 0j),
     TypeError, r"^fit: x must be a real numeric array, got dtype complex"),
    ("fit_y_object", lambda: _fit(y=Y.astype(object)),
     TypeError, r"^fit: y must be a real numeric array, got dtype object"),
    ("fit_x_ragged_list", lambda: _fit(x=[[[1.0]], [[1.0, 2.0]]], y=Y[:2]),
     TypeError, r"^fit: x must be a numeric array, got list"),
    ("fit_y_inf", lambda: _fit(y=np.full_like(Y, np.inf)),
     ValueError, r"^fit: y contains NaN or infinite values"),
    ("fit_x_minus_inf", lambda: _fit(x=np.full_like(X, -np.inf)),
     ValueError, r"^fit: x contains NaN or infinite values"),
    ("fit_validation_y_nan", lambda: _fit(validation_data=(X, np.full_like(Y, np.nan))),
     ValueError, r"^fit: validation y contains NaN or infinite values"),
    ("fit_validation_x_strings", lambda: _fit(validation_data=(X.astype(str), Y)),
     TypeError, r"^fit: validation x must be a real numeric array, got dtype <U"),
    ("fit_validation_triple", lambda: _fit(validation_data=(X, Y, Y)),
     TypeError, r"^fit: validation_data must be a tuple \(x_val, y_val\)"),
    ("fit_no_samples", lambda: _fit(x=X[:0], y=Y[:0]),
     ValueError, r"^fit: x and y must not be empty, got shapes \(0, 5, 2\) and \(0, 1\)"),
    ("fit_no_steps", lambda: _fit(x=X[:, :0]),
     ValueError, r"^fit: x and y must not be empty, got shapes \(4, 0, 2\) and \(4, 1\)"),
    ("fit_negative_epochs", lambda: _fit(epochs=-1),
     ValueError, r"^fit: epochs must be >= 0, got -1"),
    ("fit_float_epochs", lambda: _fit(epochs=1.5),
     TypeError, r"^fit: epochs must be an int, got 1\.5 \(float\)"),
    ("fit_bool_batch_size", lambda: _fit(batch_size=True),
     TypeError, r"^fit: batch_size must be an int, got True \(bool\)"),
    ("fit_shuffle_string", lambda: _fit(shuffle="yes"),
     TypeError, r"^fit: shuffle must be a bool, got 'yes'"),
    ("fit_many_to_many_k2_without_k1", lambda: _trainer(k2=2).fit(X, np.zeros((4, 5, 1)), verbose=0),
     ValueError, r"^fit: many-to-many training with k2=2 needs k1 <= k2.*pass k1"),
    ("evaluate_nan", lambda: _trainer().evaluate(np.full_like(X, np.nan), Y),
     ValueError, r"x contains NaN or infinite values"),
    ("evaluate_zero_batch", lambda: _trainer().evaluate(X, Y, batch_size=0),
     ValueError, r"^evaluate: batch_size must be >= 1, got 0"),
    ("trainer_zero_k2", lambda: _trainer(k2=0),
     ValueError, r"^TBPTTTrainer: k2 must be >= 1, got 0"),
    ("trainer_string_clipper", lambda: _trainer(clipper="norm"),
     TypeError, r"^TBPTTTrainer: clipper must be a GradientClipper or None, got str"),
    ("save_checkpoint_not_a_path", lambda: _trainer().save_checkpoint(3),
     TypeError, r"^write_archive: path must be a str or os\.PathLike, got int"),
    ("load_checkpoint_none", lambda: _trainer().load_checkpoint(None),
     TypeError, r"^cannot read a 'minidl-checkpoint' file: path must be a str or os\.PathLike, got NoneType"),
    ("save_checkpoint_missing_folder", lambda: _trainer().save_checkpoint("/nonexistent-minidl/c.npz"),
     FileNotFoundError, r"No such file or directory \(writing '/nonexistent-minidl/c\.npz'\)"),
    # ---- models and files -------------------------------------------------------------------------------------
    ("predict_strings", lambda: _model().predict(np.full((2, 3, 2), "a")),
     TypeError, r"^RNN\(GRUCell\(.*input must be a real numeric array, got dtype <U1"),
    ("predict_no_samples", lambda: _model().predict(np.zeros((0, 3, 2))),
     ValueError, r"^RNN\(GRUCell\(.*at least one sample and one step, got shape \(0, 3, 2\)"),
    ("predict_negative_batch_size", lambda: _model().predict(X, batch_size=-2),
     ValueError, r"^Sequential\.predict: batch_size must be >= 1, got -2"),
    ("dense_no_samples", lambda: mdl.Dense(3, 2).forward(np.zeros((0, 3))),
     ValueError, r"^Dense\(in_features=3.*input is empty \(shape \(0, 3\)\)"),
    ("lstm_zero_hidden", lambda: mdl.LSTMCell(3, 0),
     ValueError, r"^LSTMCell: hidden_size must be >= 1, got 0"),
    ("load_model_none", lambda: mdl.load_model(None),
     TypeError, r"^load_model: path must be a str or os\.PathLike, got NoneType"),
    ("save_model_none", lambda: _model().save(None),
     TypeError, r"^Sequential\.save: path must be a str or os\.PathLike, got NoneType"),
    # ---- data helpers ---------------------------------------------------------------------------------------------
    ("windows_complex", lambda: data.sliding_windows(np.zeros(10, complex), 3),
     TypeError, r"^sliding_windows: series must be a real numeric array, got dtype complex128"),
    ("windows_object", lambda: data.sliding_windows(np.array([None] * 10), 3),
     TypeError, r"^sliding_windows: series must be a real numeric array, got dtype object"),
    ("windows_empty", lambda: data.sliding_windows(np.zeros(0), 1),
     ValueError, r"^sliding_windows: series of length 0 is too short for window=1 \+ horizon=1"),
    ("scaler_fit_complex", lambda: data.StandardScaler().fit(np.zeros((3, 2), complex)),
     TypeError, r"^StandardScaler\.fit: x must be a real numeric array, got dtype complex128"),
    ("scaler_transform_object", lambda: data.MinMaxScaler().fit(np.zeros((3, 2))).transform(np.array([[None, 1]], dtype=object)),
     TypeError, r"^MinMaxScaler\.transform: x must be a real numeric array, got dtype object"),
    ("scaler_fit_ragged", lambda: data.MinMaxScaler().fit([[1.0], [1.0, 2.0]]),
     TypeError, r"^MinMaxScaler\.fit: x must be a numeric array, got list"),
    ("forecast_complex_seed", lambda: data.forecast(_model(), np.zeros((5, 2), complex), 3),
     TypeError, r"^forecast: seed_window must be a real numeric array, got dtype complex128"),
    ("split_no_samples", lambda: data.train_val_split(np.zeros(0), np.zeros(0), val_size=1),
     ValueError, r"^train_val_split: both parts must be non-empty: 0 samples give 1 for validation"),
    ("sine_nan_frequency", lambda: data.sine_wave(10, frequencies=[np.nan]),
     ValueError, r"^sine_wave: frequencies must be finite, got \[nan\]"),
    ("sine_complex_amplitude", lambda: data.sine_wave(10, amplitudes=1j),
     TypeError, r"^sine_wave: amplitudes must be a real numeric array, got dtype complex128"),
    # ---- gradcheck arguments -------------------------------------------------------------------------------------
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
]


def _raised_in_minidl(err):
    """True when the innermost frame that raised ``err`` is minidl's own code."""
    frames = traceback.extract_tb(err.__traceback__)
    return bool(frames) and frames[-1].filename.startswith(MINIDL_DIR)


@pytest.mark.parametrize("make, exc, pattern", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input(make, exc, pattern):
    with pytest.raises(exc, match=pattern) as info:
        make()
    where = traceback.extract_tb(info.value.__traceback__)[-1]
    assert _raised_in_minidl(info.value), f"raised in {where.filename}:{where.lineno}, not by minidl itself"


# ---- backward before forward, for every layer type and loss -----------------------------------------------------
def _x(shape):
    return lambda: np.zeros(shape)


LAYERS = {  # type name: (build, a valid input)
    "Dense": (lambda: mdl.Dense(3, 2), _x((2, 3))),
    "Tanh": (mdl.Tanh, _x((2, 3))),
    "Sigmoid": (mdl.Sigmoid, _x((2, 3))),
    "ReLU": (mdl.ReLU, _x((2, 3))),
    "RNN": (lambda: mdl.RNN(mdl.LSTMCell(3, 2), return_sequences=True), _x((2, 4, 3))),
    "Sequential": (lambda: mdl.Sequential([mdl.RNN(mdl.RNNCell(3, 2)), mdl.Dense(2, 1)]), _x((2, 4, 3))),
    "Dropout": (lambda: mdl.Dropout(0.5), _x((2, 3))),
    "Embedding": (lambda: mdl.Embedding(5, 3), lambda: np.zeros((2, 4), np.int64)),
    "LayerNorm": (lambda: mdl.LayerNorm(3), _x((2, 3))),
    "Bidirectional": (lambda: mdl.Bidirectional(mdl.RNN(mdl.GRUCell(3, 2))), _x((2, 4, 3))),
    "Flatten": (mdl.Flatten, _x((2, 3, 1))),
    "Reshape": (lambda: mdl.Reshape((3, 1)), _x((2, 3))),
}
CELL_TYPES = ["RNNCell", "LSTMCell", "GRUCell"]  # one step, no history: backward is RNN's job
ABSTRACT = {"Layer", "Cell"}


def test_every_exported_layer_type_is_in_the_table():
    exported = {n for n in dir(mdl) if inspect.isclass(getattr(mdl, n)) and issubclass(getattr(mdl, n), mdl.Layer)}
    missing = exported - set(LAYERS) - set(CELL_TYPES) - ABSTRACT
    assert not missing, f"add these layer types to LAYERS in {__file__}: {sorted(missing)}"


BACKWARD_CASES = [(n, a) for n in LAYERS if hasattr(mdl, n) for a in ("nothing", "a no_grad forward")]
BACKWARD_CASES.append(("Sequential", "predict"))


@pytest.mark.parametrize("name, after", BACKWARD_CASES)
def test_backward_without_a_recorded_forward(name, after):
    build, make_x = LAYERS[name]
    mdl.set_seed(0)
    layer = build()
    x = make_x()
    if after == "nothing":
        grad = np.zeros_like(np.asarray(layer.forward(x), float))  # the shape only; then a fresh layer
        layer = build()
    elif after == "a no_grad forward":
        with mdl.no_grad():
            grad = np.zeros_like(np.asarray(layer.forward(x), float))
    else:
        grad = np.zeros_like(layer.predict(x))
    with pytest.raises(RuntimeError, match=r"backward called before forward \(or after a forward under no_grad\)") as info:
        layer.backward(grad)
    assert _raised_in_minidl(info.value)


@pytest.mark.parametrize("name", CELL_TYPES)
def test_a_cell_has_no_backward_of_its_own(name):
    cell = getattr(mdl, name)(3, 2)
    cell.forward(np.zeros((2, 3)))
    with pytest.raises(NotImplementedError, match=rf"^{name} does not implement backward"):
        cell.backward(np.zeros((2, 2)))


LOSSES = ["MSELoss", "L1Loss", "HuberLoss", "BCEWithLogitsLoss", "CrossEntropyLoss"]


@pytest.mark.parametrize("name", [n for n in LOSSES if hasattr(mdl, n)])
def test_loss_backward_before_forward(name):
    loss = getattr(mdl, name)()
    with pytest.raises(RuntimeError, match=rf"^{name}: backward\(\) called before forward\(\)"):
        loss.backward()
    # a forward that fails validation does not make an older forward's gradient available
    target = np.array([0, 1]) if name == "CrossEntropyLoss" else np.zeros((2, 3))
    loss(np.zeros((2, 3)), target)
    with pytest.raises((ValueError, TypeError)):
        loss(np.zeros((2, 3)), np.array(["a", "b"]))
    with pytest.raises(RuntimeError, match="before forward"):
        loss.backward()


def test_table_size_and_total():
    """At least 40 distinct bad inputs between this file, test_errors.py and training/test_trainer.py."""
    from tests import test_errors
    from tests.training import test_trainer

    ids = [c[0] for c in CASES]
    assert len(set(ids)) == len(ids)
    layer_cases = len(BACKWARD_CASES) + len(CELL_TYPES) + 2 * len(LOSSES)
    total = len(ids) + layer_cases + len(test_errors.CASES) + len(test_trainer.BAD) + len(test_trainer.BAD_FIT)
    print(f"bad inputs: {len(ids)} + {layer_cases} (backward) here, {len(test_errors.CASES)} in test_errors.py, "
          f"{len(test_trainer.BAD) + len(test_trainer.BAD_FIT)} in test_trainer.py: {total}")
    assert len(ids) >= 40 and total >= 100
