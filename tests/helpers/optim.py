"""Optimizer fixtures: parameters, a deterministic gradient, a step loop, state-rejection checks."""

import numpy as np
import pytest

import minidl as mdl


# ---- optimizers -----------------------------------------------------------------------
def make_params(dtype=np.float64, seed=7):
    rng = np.random.default_rng(seed)
    return [
        mdl.Parameter(rng.normal(size=(3, 4)).astype(dtype), "kernel"),
        mdl.Parameter(rng.normal(size=(4,)).astype(dtype), "bias"),
        mdl.Parameter(rng.normal(size=(2, 1, 3)).astype(dtype), "other"),
    ]


def grad_at(value, t):
    """A gradient that depends on the parameter value and on the step."""
    return np.sin(value * (t + 1)) + 0.1 * (t + 1)


def run(opt, params, steps, start=0):
    """``steps`` optimizer steps, each after setting every gradient to ``grad_at``."""
    for t in range(start, start + steps):
        for p in params:
            p.grad[...] = grad_at(p.data, t)
        opt.step()


def edited_state(make_optimizer, change):
    """The ``state_dict`` of ``make_optimizer(params)`` after one step, passed through ``change``.

    For tables of corrupted optimizer states: ``change`` edits the dict in place.
    """
    params = make_params()
    opt = make_optimizer(params)
    run(opt, params, 1)
    state = opt.state_dict()
    change(state)
    return state


def assert_load_rejected(opt, params, state, exc, fragment):
    """``opt.load_state_dict(state)`` raises ``exc`` naming ``fragment`` and leaves ``opt`` as it was."""
    run(opt, params, 2)
    before = opt.state_dict()
    with pytest.raises(exc) as info:
        opt.load_state_dict(state)
    assert fragment in str(info.value)
    after = opt.state_dict()
    assert after["config"] == before["config"]
    assert len(after["state"]) == len(before["state"])
    for a, b in zip(after["state"], before["state"]):
        assert a.keys() == b.keys() and a["step"] == b["step"]
        for key in a.keys() - {"step"}:
            np.testing.assert_array_equal(a[key], b[key])
