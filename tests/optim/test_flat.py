"""Adam's flat fast path (``minidl/optim/flat.py``) gives the per-parameter update's numbers, bit
for bit, and keeps ``Optimizer.state`` what it was: per-parameter arrays that save, load, copy and
follow a dtype change."""

import copy

import numpy as np
import pytest

import minidl as mdl
from minidl.optim.optimizer import Optimizer

SHAPES = [(3, 4), (4,), (1,), (2, 3, 2)]


def params_and_grads(seed=0, dtype=np.float64, steps=6):
    rng = np.random.default_rng(seed)
    params = [mdl.Parameter(rng.standard_normal(s).astype(dtype), f"p{i}") for i, s in enumerate(SHAPES)]
    grads = [[rng.standard_normal(s).astype(dtype) for s in SHAPES] for _ in range(steps)]
    return params, grads


def train(optimizer, grads, step=None):
    """Run one optimizer step per entry of ``grads``; ``step`` replaces ``optimizer.step``."""
    for gs in grads:
        for p, g in zip(optimizer.params, gs):
            p.grad[...] = g
        (step or optimizer.step)()


def per_parameter(optimizer):
    """The base class's loop over ``update``: the readable path."""
    return lambda: Optimizer.step(optimizer)


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_flat_equals_per_parameter_bit_for_bit(weight_decay, dtype):
    params_a, grads = params_and_grads(dtype=dtype)
    params_b, _ = params_and_grads(dtype=dtype)
    a = mdl.Adam(params_a, lr=0.05, weight_decay=weight_decay)
    b = mdl.Adam(params_b, lr=0.05, weight_decay=weight_decay)
    train(a, grads)
    train(b, grads, per_parameter(b))
    for pa, pb in zip(params_a, params_b):
        np.testing.assert_array_equal(pa.data, pb.data)
        assert pa.data.dtype == dtype
        for key in ("exp_avg", "exp_avg_sq"):
            np.testing.assert_array_equal(a.state[pa][key], b.state[pb][key])
        assert a.state[pa]["step"] == b.state[pb]["step"] == len(grads)
    assert a.state[params_a[0]]["exp_avg"].base is a._flat.flat["exp_avg"]  # the fast path ran


def test_state_dict_and_load_between_steps():
    """A state saved after flat steps and loaded into a fresh optimizer continues the same
    numbers; loading replaces the arrays, so the next step binds fresh flat arrays."""
    params_a, grads = params_and_grads()
    a = mdl.Adam(params_a, lr=0.05)
    train(a, grads[:3])
    saved = a.state_dict()
    params_b = [mdl.Parameter(p.data.copy(), p.name) for p in params_a]
    b = mdl.Adam(params_b, lr=0.05)
    b.load_state_dict(saved)
    a.load_state_dict(saved)  # the same optimizer reloading its own state
    train(a, grads[3:])
    train(b, grads[3:])
    for pa, pb in zip(params_a, params_b):
        np.testing.assert_array_equal(pa.data, pb.data)
    assert saved["state"][0]["exp_avg"].base is None  # state_dict's arrays are copies


def test_deepcopy_and_dtype_change_follow():
    params, grads = params_and_grads()
    a = mdl.Adam(params, lr=0.05)
    train(a, grads[:2])
    clone = copy.deepcopy(a)
    train(a, grads[2:])
    train(clone, grads[2:])
    for p, q in zip(a.params, clone.params):
        np.testing.assert_array_equal(p.data, q.data)
    for p in params:  # what Layer.astype does to a parameter
        p.data, p.grad = p.data.astype(np.float32), p.grad.astype(np.float32)
    train(a, grads[:1])
    assert all(a.state[p]["exp_avg"].dtype == np.float32 == p.data.dtype for p in params)


def test_falls_back_where_the_parameters_cannot_share_arrays():
    """Mixed dtypes or different step counts: the per-parameter loop, with the same numbers."""
    params, grads = params_and_grads()
    params[1].data, params[1].grad = params[1].data.astype(np.float32), params[1].grad.astype(np.float32)
    mixed = mdl.Adam(params, lr=0.05)
    train(mixed, grads[:2])
    assert mixed._flat.flat is None
    params_a, _ = params_and_grads()
    a = mdl.Adam(params_a, lr=0.05)
    train(a, grads[:2])
    state = a.state_dict()
    state["state"][2] = {}  # one parameter not stepped yet
    a.load_state_dict(state)
    train(a, grads[2:3])
    assert [a.state[p]["step"] for p in params_a] == [3, 3, 1, 3]


def test_a_subclass_overriding_update_is_called():
    calls = []

    class Logged(mdl.Adam):
        def update(self, param, grad, state):
            calls.append(param.shape)
            super().update(param, grad, state)

    params, grads = params_and_grads()
    train(Logged(params, lr=0.05), grads[:1])
    assert calls == SHAPES


def test_adamw_keeps_its_own_update():
    params_a, grads = params_and_grads()
    params_b, _ = params_and_grads()
    a, b = mdl.AdamW(params_a, lr=0.05), mdl.AdamW(params_b, lr=0.05)
    train(a, grads)
    train(b, grads, per_parameter(b))
    for pa, pb in zip(params_a, params_b):
        np.testing.assert_array_equal(pa.data, pb.data)
