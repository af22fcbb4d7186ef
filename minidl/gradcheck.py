"""gradcheck: compare a layer's backward with central differences in float64."""

import copy

import numpy as np

from ._checks import finite_number, grad_shape, positive_int
from ._checks import seed as checked_seed
from ._grad_mode import is_grad_enabled
from .layers.layer import layers_with_state


def gradcheck(layer, x, grad_out=None, eps=1e-6, atol=1e-6, rtol=1e-5, seed=0, max_elements=None):
    """Check ``layer.backward`` against central differences of ``layer.forward``.

    The check runs on a float64 copy of ``layer`` (the layer itself is not touched),
    so a float32 model can be checked without false alarms. The scalar differentiated
    is ``sum(forward(x) * grad_out)``; ``grad_out`` defaults to a fixed random array.

    Args:
        layer: any ``Layer`` (a built-in, an ``RNN`` around any cell, a ``Sequential``,
            or your own).
        x: input array; integer inputs (indices) are not differentiated.
        grad_out: the output gradient to backpropagate (default: random normal).
        eps: step of the central difference.
        atol, rtol: an element passes when ``|analytic - numeric| <= atol + rtol * |numeric|``.
        seed: seed of the default ``grad_out`` and of the element sampling.
        max_elements: check at most this many randomly chosen elements per tensor
            (default: all of them).

    Returns:
        True when every checked element passes.

    Raises:
        AssertionError: naming the tensor (``"input"`` or the parameter's dotted
            name), the index, both values and the tolerance, for the worst element.
    """
    if not is_grad_enabled():
        raise RuntimeError("gradcheck cannot run under no_grad()")
    eps = finite_number(eps, "eps", "gradcheck", minimum=0.0, min_open=True)
    atol = finite_number(atol, "atol", "gradcheck", minimum=0.0)
    rtol = finite_number(rtol, "rtol", "gradcheck", minimum=0.0)
    seed = checked_seed(seed, "seed", "gradcheck")
    if max_elements is not None:
        max_elements = positive_int(max_elements, "max_elements", "gradcheck")
    model = copy.deepcopy(layer).astype(np.float64)
    # every forward starts from the states the layer had (the recurrent-state protocol, see Layer)
    saved_states = [(l, l.get_state()) for l in layers_with_state(model)]
    x = np.asarray(x)
    differentiable_input = x.dtype.kind == "f"
    if differentiable_input:
        # A C-ordered copy: the perturbation loop writes through ``x.reshape(-1)``,
        # which would be a detached copy for a transposed (non-contiguous) input.
        x = np.array(x, dtype=np.float64, order="C")
    rng = np.random.default_rng(seed)

    def run(inp):
        for l, s in saved_states:
            l.set_state(s)
        return model.forward(inp)

    out = run(x)
    if grad_out is None:
        g = rng.standard_normal(np.shape(out))
    else:
        g = grad_shape(grad_out, np.shape(out), "gradcheck", np.float64)
    model.zero_grad()
    dx = model.backward(g)

    def objective(inp):
        return float(np.sum(run(inp) * g))

    tensors = []
    if differentiable_input:
        tensors.append(("input", x, np.asarray(dx), lambda: objective(x)))
    for name, p in model.named_parameters():
        tensors.append((name, p.data, p.grad.copy(), lambda: objective(x)))

    for name, arr, analytic, f in tensors:
        flat = arr.reshape(-1)
        idx = np.arange(flat.size)
        if max_elements is not None and flat.size > max_elements:
            idx = rng.choice(flat.size, max_elements, replace=False)
        numeric = np.empty(idx.size)
        for k, i in enumerate(idx):
            old = flat[i]
            flat[i] = old + eps
            plus = f()
            flat[i] = old - eps
            minus = f()
            flat[i] = old
            numeric[k] = (plus - minus) / (2 * eps)
        got = analytic.reshape(-1)[idx]
        err = np.abs(got - numeric) - (atol + rtol * np.abs(numeric))
        if np.any(err > 0):
            w = int(np.argmax(err))
            where = np.unravel_index(idx[w], arr.shape)
            raise AssertionError(
                f"gradcheck: gradient of {name!r} differs at index {tuple(int(i) for i in where)}: "
                f"backward gives {got[w]:.10g}, central differences give {numeric[w]:.10g} "
                f"(tolerance atol={atol}, rtol={rtol}; {int(np.sum(err > 0))} of {idx.size} elements fail)"
            )
    return True
