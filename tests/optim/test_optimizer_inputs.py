"""The Optimizer base's refusals at the public boundary, on the built-ins: a bad state dict
(Adam's rejection table, the running squares no step makes negative) changes nothing, and
bad parameter lists are refused naming the entry."""

import numpy as np
import pytest

import minidl as mdl
from tests.helpers import assert_load_rejected, edited_state, make_params, run


@pytest.mark.parametrize("cls, key", [(mdl.Adam, "exp_avg_sq"), (mdl.AdamW, "exp_avg_sq"),
                                      (mdl.RMSprop, "square_avg"), (mdl.Adagrad, "sum")])
def test_built_in_running_squares_are_declared_never_negative(cls, key):
    params = make_params(np.float64)
    opt = cls(params, lr=0.01)
    run(opt, params, 2)
    state = opt.state_dict()
    state["state"][0][key][0, 0] = -1.0
    assert cls.non_negative_state == (key,)
    assert_load_rejected(opt, params, state, ValueError,
                         f"state[0]['{key}'] holds negative values, which {cls.__name__} never makes")


def _edit(change):
    return edited_state(mdl.Adam, change)


@pytest.mark.parametrize(
    ("state", "exc", "fragment"),
    [
        ([1, 2], TypeError, "expected a mapping, got list"),
        (_edit(lambda s: s.pop("config")), ValueError, "missing keys ['config']"),
        (_edit(lambda s: s.update(extra=1)), ValueError, "unexpected keys ['extra']"),
        (_edit(lambda s: s.update(type="SGD")), ValueError, "for a 'SGD' optimizer, not 'Adam'"),
        (_edit(lambda s: s["state"].pop()), ValueError, "'state' has 2 entries but the optimizer has 3 parameters"),
        (_edit(lambda s: s["state"].append({})), ValueError, "'state' has 4 entries"),
        (
            _edit(lambda s: s["state"][1].update(exp_avg=np.zeros(5))),
            ValueError,
            "state[1]['exp_avg'] has shape (5,), but params[1] ('bias') has shape (4,)",
        ),
        (_edit(lambda s: s["state"][0].pop("step")), ValueError, "state[0] has missing keys ['step']"),
        (_edit(lambda s: s["state"][2].update(momentum_buffer=0)), ValueError, "unexpected keys ['momentum_buffer']"),
        (_edit(lambda s: s["state"][0].update(step=-1)), ValueError, "state[0]['step'] must be >= 0, got -1"),
        (_edit(lambda s: s["state"][0].update(step=1.5)), TypeError, "state[0]['step'] must be an int"),
        (_edit(lambda s: s["config"].update(lr=-1.0)), ValueError, "Adam: lr must be >= 0.0, got -1.0"),
        (_edit(lambda s: s["config"].pop("eps")), ValueError, "config has missing keys ['eps']"),
        (_edit(lambda s: s["config"].update(betas=[0.9, 1.0])), ValueError, "betas[1] must be in [0, 1), got 1.0"),
        (_edit(lambda s: s.update(state="x")), TypeError, "'state' must be a list"),
    ],
)
def test_load_state_dict_rejects_bad_state_and_changes_nothing(state, exc, fragment):
    params = make_params()
    assert_load_rejected(mdl.Adam(params, lr=0.5), params, state, exc, fragment)


# ---- parameter lists -------------------------------------------------------------------------

P = mdl.Parameter(np.zeros(2), "w")
Q = mdl.Parameter(np.zeros(3), "b")


@pytest.mark.parametrize(
    ("make", "exc", "fragment"),
    [
        (lambda: mdl.SGD([], lr=0.1), ValueError, "SGD: params is empty"),
        (lambda: mdl.SGD([P, Q, P], lr=0.1), ValueError, "params[2] is the same Parameter as params[0] ('w')"),
        (lambda: mdl.SGD([P, np.zeros(2)], lr=0.1), TypeError, "params[1] must be a Parameter, got ndarray"),
        (lambda: mdl.SGD(P, lr=0.1), TypeError, "iterable of Parameter (e.g. model.parameters()), got a Parameter"),
        (lambda: mdl.SGD({P}, lr=0.1), TypeError, "got an unordered set"),
        (lambda: mdl.SGD(mdl.Dense(2, 2), lr=0.1), TypeError, "got Dense"),
        (lambda: mdl.SGD(5, lr=0.1), TypeError, "got int"),
    ],
)
def test_bad_parameter_lists(make, exc, fragment):
    with pytest.raises(exc) as info:
        make()
    assert fragment in str(info.value)


def test_params_may_be_a_generator_and_repr():
    opt = mdl.SGD((p for p in [P, Q]), lr=0.1)
    assert opt.params == [P, Q]
    assert isinstance(opt, mdl.Optimizer)
    assert repr(opt) == "SGD(2 parameters, lr=0.1, momentum=0.0, nesterov=False, weight_decay=0.0)"
