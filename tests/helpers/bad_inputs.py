"""The bad-input tables of the unit test modules: their shared inputs and the one check.

Each unit module holds a table ``BAD_INPUTS`` of ``(id, make, exception, pattern)``: calling
``make()`` must raise ``exception`` with a message matching ``pattern`` (naming the owner and
argument, what was expected and what was received), and must raise it in minidl's own
code, at the public boundary, not deep inside numpy or the standard library.
"""

import os
import traceback

import numpy as np
import pytest

import minidl as mdl

MINIDL_DIR = os.path.dirname(mdl.__file__)

BAD_X = np.zeros((4, 5, 2), np.float32)
BAD_Y = np.zeros((4, 1), np.float32)
BAD_P = mdl.Parameter(np.zeros(2), "w")
BAD_X2 = np.zeros((2, 3))
BAD_X3 = np.zeros((2, 4, 3))
RNN_NAME = r"RNN\((RNN|LSTM|GRU)Cell\(input_size="


def raised_in_minidl(err):
    """True when the innermost frame that raised ``err`` is minidl's own code."""
    frames = traceback.extract_tb(err.__traceback__)
    return bool(frames) and frames[-1].filename.startswith(MINIDL_DIR)


def assert_bad_input(make, exc, pattern):
    """``make()`` raises ``exc`` matching ``pattern``, from minidl's own code."""
    with pytest.raises(exc, match=pattern) as info:
        make()
    where = traceback.extract_tb(info.value.__traceback__)[-1]
    assert raised_in_minidl(info.value), f"raised in {where.filename}:{where.lineno}, not by minidl itself"


def bad_input_params(cases):
    """``pytest.mark.parametrize`` arguments for a ``BAD_INPUTS`` table."""
    return {"argnames": "make, exc, pattern", "argvalues": [c[1:] for c in cases], "ids": [c[0] for c in cases]}


def after_forward(layer, x):
    layer.forward(x)
    return layer


def stateful_rnn():
    return after_forward(mdl.RNN(mdl.RNNCell(3, 4), stateful=True), BAD_X3)


def bad_model():
    mdl.set_seed(0)
    return mdl.Sequential([mdl.RNN(mdl.GRUCell(2, 3)), mdl.Dense(3, 1)])


def bad_trainer(**kw):
    model = bad_model()
    return mdl.TBPTTTrainer(model, mdl.MSELoss(), mdl.SGD(model.parameters(), lr=0.1), **kw)


def bad_fit(x=BAD_X, y=BAD_Y, **kw):
    return bad_trainer().fit(x, y, verbose=0, **kw)


def adam_state(exp_avg):
    return {
        "type": "Adam",
        "config": {"lr": 0.1, "betas": [0.9, 0.99], "eps": 1e-8, "weight_decay": 0.0},
        "state": [{"step": 1, "exp_avg": exp_avg, "exp_avg_sq": np.zeros(2)}],
    }
