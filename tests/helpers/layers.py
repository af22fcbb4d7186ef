"""The output-aliasing check of a layer, the relative-error comparison with PyTorch, warnings as errors."""

import contextlib
import warnings

import numpy as np

import minidl as mdl


# ---- layers ------------------------------------------------------------------------------
def assert_output_edits_leave_gradients(layer, x, seed=0):
    """Editing a forward's output in place (``y[...] = ...``, a next layer working in place)
    leaves that forward's ``backward`` unchanged: the output shares no memory with what
    ``backward`` reads. ``set_seed(seed)`` before each forward gives a Dropout the same mask."""

    def run(edit):
        layer.zero_grad()
        mdl.set_seed(seed)
        y = layer.forward(np.array(x, copy=True))
        g = np.random.default_rng(seed).standard_normal(y.shape)
        if edit:
            y[...] = 1e3
        dx = layer.backward(g)
        return dx, [p.grad.copy() for p in layer.parameters()]

    dx, grads = run(edit=False)
    assert any(np.any(a != 0) for a in grads + ([] if dx is None else [dx])), "the check needs a nonzero gradient"
    dx_edited, grads_edited = run(edit=True)
    if dx is None:
        assert dx_edited is None
    else:
        np.testing.assert_array_equal(dx_edited, dx, err_msg="input gradient")
    for (name, _), a, b in zip(layer.named_parameters(), grads_edited, grads):
        np.testing.assert_array_equal(a, b, err_msg=name)


# ---- against PyTorch ----------------------------------------------------------------------
def assert_close_rel(ours, ref, what, tol=1e-8):
    """``max |ours - ref| / max |ref| <= tol`` (float64 comparisons with torch), same shapes."""
    ours, ref = np.asarray(ours), np.asarray(ref)
    assert ours.shape == ref.shape, f"{what}: shape {ours.shape} != {ref.shape}"
    err = float(np.max(np.abs(ours - ref)) / max(np.max(np.abs(ref)), 1e-300))
    assert err <= tol, f"{what}: relative error {err:.3g} > {tol}"


@contextlib.contextmanager
def warnings_as_errors():
    """Every Python warning and numpy floating-point warning (but underflow) raises inside."""
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        warnings.simplefilter("error")
        yield
