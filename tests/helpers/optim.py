"""Optimizer fixtures: parameters, a deterministic gradient, a step loop, state-rejection checks,
state dicts through npz + JSON, the step-for-step comparison with torch.optim."""

import io
import json

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


def scalar_param(value=1.0):
    """A one-element float64 parameter, for updates computed by hand."""
    return mdl.Parameter(np.array([value]), "w")


def constant_grad_trace(opt, p, g, steps):
    """The value of the one-element ``p`` after each of ``steps`` steps with gradient ``g``."""
    values = []
    for _ in range(steps):
        p.grad[...] = g
        opt.step()
        values.append(float(p.data[0]))
    return values


def grad_at(value, t):
    """A gradient that depends on the parameter value and on the step."""
    return np.sin(value * (t + 1)) + 0.1 * (t + 1)


def run(opt, params, steps, start=0):
    """``steps`` optimizer steps, each after setting every gradient to ``grad_at``."""
    for t in range(start, start + steps):
        for p in params:
            p.grad[...] = grad_at(p.data, t)
        opt.step()


def assert_follows_reference(cls, reference, config, seed, steps=5):
    """``steps`` steps of ``cls(params, **config)`` (float64) equal ``reference(start, steps, **config)``
    for each parameter to 1e-12, and move it."""
    params = make_params(seed=seed)
    start = [p.data.copy() for p in params]
    run(cls(params, **config), params, steps)
    for p, p0 in zip(params, start):
        expected = reference(p0, steps, **config)
        assert not np.allclose(expected, p0)
        np.testing.assert_allclose(p.data, expected, rtol=1e-12, atol=1e-14)


def assert_float32_close_to_reference(cls, reference, config, seed, steps=3):
    """In float32 the parameters keep identity and dtype, the state arrays are float32 and shaped
    like them, and the values stay close to the float64 reference."""
    params = make_params(np.float32, seed=seed)
    arrays = [p.data for p in params]
    start = [p.data.astype(np.float64) for p in params]
    opt = cls(params, **config)
    run(opt, params, steps)
    for p, arr, p0 in zip(params, arrays, start):
        assert p.data is arr and p.data.dtype == np.float32
        np.testing.assert_allclose(p.data, reference(p0, steps, **config), rtol=2e-5, atol=1e-6)
        for value in opt.state[p].values():
            if isinstance(value, np.ndarray):
                assert value.dtype == np.float32 and value.shape == p.shape


def assert_step_in_place(make_optimizer):
    """One step on float32 parameters keeps each array (identity, dtype), moves it, leaves the
    gradient alone, and keeps the state arrays float32 and shaped like the parameter."""
    params = make_params(np.float32)
    arrays = [p.data for p in params]
    opt = make_optimizer(params)
    for p in params:
        p.grad[...] = 1.5
    before = [p.data.copy() for p in params]
    opt.step()
    for p, arr, b in zip(params, arrays, before):
        assert p.data is arr
        assert p.data.dtype == np.float32
        assert not np.array_equal(p.data, b)
        np.testing.assert_array_equal(p.grad, 1.5)
        for value in opt.state[p].values():
            if isinstance(value, np.ndarray):
                assert value.dtype == np.float32 and value.shape == p.shape


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
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def save_and_load(state):
    """Round trip through npz (arrays) + JSON (everything else), as a checkpoint does."""
    arrays = {}

    def strip(obj, path):
        if isinstance(obj, np.ndarray):
            arrays[path] = obj
            return {"__array__": path}
        if isinstance(obj, (dict, list)):
            items = obj.items() if isinstance(obj, dict) else enumerate(obj)
            out = {k: strip(v, f"{path}.{k}") for k, v in items}
            return out if isinstance(obj, dict) else list(out.values())
        assert obj is None or isinstance(obj, (bool, int, float, str)), f"{path}: {type(obj).__name__} is not JSON-able"
        return obj

    def restore(obj):
        if isinstance(obj, dict):
            return loaded[obj["__array__"]] if "__array__" in obj else {k: restore(v) for k, v in obj.items()}
        return [restore(v) for v in obj] if isinstance(obj, list) else obj

    text = json.dumps(strip(state, "s"))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as npz:
        loaded = dict(npz)
    return restore(json.loads(text))


TORCH_SHAPES = [(3, 4), (4,), (2, 1, 3)]


def torch_grad_at(value, t):
    """The gradient of the torch comparisons (the same formula on both sides)."""
    return np.sin(value * (t + 1)) + 0.1 * (t + 1) * np.cos(value)


def compare_with_torch(ours_cls, torch_cls, config, steps=6):
    """``steps`` steps of ``ours_cls(params, **config)`` and ``torch_cls(tensors, **config)`` on the
    same float64 values and gradients: equal to a relative 1e-8 after every step. Returns our params."""
    import torch  # optional: only the torch comparisons (which importorskip it) call this

    rng = np.random.default_rng(11)
    values = [rng.normal(size=s) for s in TORCH_SHAPES]
    params = [mdl.Parameter(v.copy(), f"p{i}") for i, v in enumerate(values)]
    tensors = [torch.tensor(v.copy(), dtype=torch.float64, requires_grad=True) for v in values]
    ours, theirs = ours_cls(params, **config), torch_cls(tensors, **config)
    for t in range(steps):
        for p, x in zip(params, tensors):
            p.grad[...] = torch_grad_at(p.data, t)
            x.grad = torch.from_numpy(torch_grad_at(x.detach().numpy(), t))
        ours.step()
        theirs.step()
        for p, x in zip(params, tensors):
            assert_relative_close(p.data, x.detach().numpy())
    assert not np.allclose(params[0].data, values[0])
    return params


def assert_relative_close(ours, theirs, tol=1e-8):
    """``max |ours - theirs| / max |theirs| <= tol``, shapes equal."""
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape
    rel = np.max(np.abs(ours - theirs)) / max(np.max(np.abs(theirs)), 1e-300)
    assert rel <= tol, rel
