"""gradcheck: compare a layer's backward with central differences in float64."""

import copy

import numpy as np

from ._checks import finite_number, grad_shape, positive_int
from ._checks import seed as checked_seed
from ._grad_mode import is_grad_enabled
from .layers.dropout import Dropout
from .layers.layer import Layer, layers_with_state
from .model import check_input_count


def gradcheck(layer, x, grad_out=None, eps=1e-6, atol=1e-6, rtol=1e-5, seed=0, max_elements=None):
    """Check ``layer.backward`` against central differences of ``layer.forward``.

    The check runs on a float64 copy of ``layer`` (the layer itself is not touched),
    so a float32 model can be checked without false alarms. The scalar differentiated
    is ``sum(forward(x) * grad_out)`` (for a model returning a tuple of outputs, the
    sum of that over the outputs, ``grad_out`` then a tuple); ``grad_out`` defaults to
    a fixed random array (tuple).

    Args:
        layer: any ``Layer`` (a built-in, an ``RNN`` around any cell, a ``Sequential``,
            or your own ``Model``).
        x: input array, or a tuple ``(x1, x2, ...)`` of the inputs of a model of several
            inputs (``layer.forward(x1, x2, ...)``, whose ``backward`` returns one
            gradient per input). Integer inputs (indices) are not differentiated.
        grad_out: the output gradient to backpropagate (default: random normal).
        eps: step of the central difference.
        atol: absolute tolerance: an element passes when
            ``|analytic - numeric| <= atol + rtol * |numeric|``.
        rtol: relative tolerance (see ``atol``).
        seed: seed of the default ``grad_out`` and of the element sampling.
        max_elements: check at most this many randomly chosen elements per tensor
            (default: all of them).

    Returns:
        True when every checked element passes.

    Raises:
        TypeError: ``layer`` is not a ``Layer``.
        AssertionError: naming the tensor (``"input"``, ``"input[1]"`` for the second of
            a tuple, or the parameter's dotted name), the index, both values and the
            tolerance, for the worst element; or saying that ``backward`` did not
            return one gradient per input. When a ``Dropout`` (p > 0, the built-in
            ``sample_mask``) is in training mode, the message says so: it draws a new
            mask at every forward, so no difference quotient can match; call
            ``layer.eval()`` first (or fix the mask by overriding ``sample_mask``).
    """
    if not is_grad_enabled():
        raise RuntimeError("gradcheck cannot run under no_grad()")
    if not isinstance(layer, Layer):
        raise TypeError(f"gradcheck: layer must be a minidl Layer (a built-in layer, an RNN, a Sequential or your "
                        f"own Model) to check, got {type(layer).__name__} {layer!r:.80}")
    hint = _random_layers_hint(layer)
    eps = finite_number(eps, "eps", "gradcheck", minimum=0.0, min_open=True)
    atol = finite_number(atol, "atol", "gradcheck", minimum=0.0)
    rtol = finite_number(rtol, "rtol", "gradcheck", minimum=0.0)
    seed = checked_seed(seed, "seed", "gradcheck")
    if max_elements is not None:
        max_elements = positive_int(max_elements, "max_elements", "gradcheck")
    model = copy.deepcopy(layer).astype(np.float64)
    # every forward starts from the states the layer had (the recurrent-state protocol, see Layer)
    saved_states = [(l, l.get_state()) for l in layers_with_state(model)]
    several = isinstance(x, tuple)
    if several:
        check_input_count(layer, len(x), "gradcheck")
    names = [f"input[{k}]" for k in range(len(x))] if several else ["input"]
    # C-ordered float64 copies: the perturbation loop writes through ``x.reshape(-1)``,
    # which would be a detached copy for a transposed (non-contiguous) input.
    inputs = [_as_input(v) for v in (x if several else (x,))]
    rng = np.random.default_rng(seed)

    def run():
        for l, s in saved_states:
            l.set_state(s)
        return model.forward(*inputs)

    out = run()
    outputs = isinstance(out, tuple)
    if grad_out is None:
        g = tuple(rng.standard_normal(np.shape(o)) for o in out) if outputs else rng.standard_normal(np.shape(out))
    else:
        g = _grad_outs(grad_out, out) if outputs else grad_shape(grad_out, np.shape(out), "gradcheck", np.float64)
    model.zero_grad()
    dx = model.backward(g)
    dxs = _per_input(dx, len(inputs)) if several else [dx]

    def objective():
        y = run()
        return float(sum(np.sum(o * go) for o, go in zip(y, g))) if outputs else float(np.sum(y * g))

    tensors = [(n, a, d) for n, a, d in zip(names, inputs, dxs) if a.dtype.kind == "f"]
    for n, a, d in tensors:
        if d is None or np.shape(d) != a.shape:
            raise AssertionError(f"gradcheck: backward returned {_describe(d)} as the gradient of {n!r} of shape {a.shape}")
    tensors = [(n, a, np.asarray(d)) for n, a, d in tensors]
    tensors += [(name, p.data, p.grad.copy()) for name, p in model.named_parameters()]

    for name, arr, analytic in tensors:
        flat = arr.reshape(-1)
        idx = np.arange(flat.size)
        if max_elements is not None and flat.size > max_elements:
            idx = rng.choice(flat.size, max_elements, replace=False)
        numeric = np.empty(idx.size)
        for k, i in enumerate(idx):
            old = flat[i]
            flat[i] = old + eps
            plus = objective()
            flat[i] = old - eps
            minus = objective()
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
                f"(tolerance atol={atol}, rtol={rtol}; {int(np.sum(err > 0))} of {idx.size} elements fail)" + hint
            )
    return True


def _random_layers_hint(layer):
    """The end of the failure message when a ``Dropout`` below ``layer`` draws a new mask at
    every forward (training mode, ``p > 0``, masks from minidl's generator); else ``""``."""
    for name, sub in _named_sublayers(layer, ""):
        if isinstance(sub, Dropout) and sub.training and sub.p > 0 and type(sub).sample_mask is Dropout.sample_mask:
            where = f"Dropout {name!r}" if name else "the Dropout"
            return (f". {where} (p={sub.p}) is in training mode and draws a new mask at every forward, so central "
                    "differences cannot match backward: call model.eval() before gradcheck (train() restores it), "
                    "or fix the mask by overriding Dropout.sample_mask")
    return ""


def _named_sublayers(layer, prefix):
    """``(dotted name, layer)`` for ``layer`` and every layer below it, names as in ``state_dict``."""
    yield prefix, layer
    for name, child in layer.children():
        yield from _named_sublayers(child, f"{prefix}.{name}" if prefix else name)


def _as_input(x):
    x = np.asarray(x)
    return np.array(x, dtype=np.float64, order="C") if x.dtype.kind == "f" else x


def _grad_outs(grad_out, out):
    """``grad_out`` for a tuple of outputs: a tuple of float64 arrays of the outputs' shapes."""
    if not isinstance(grad_out, (tuple, list)) or len(grad_out) != len(out):
        raise ValueError(f"gradcheck: the model returns {len(out)} outputs; expected grad_out as a tuple of "
                         f"{len(out)} arrays, got {_describe(grad_out)}")
    return tuple(grad_shape(go, np.shape(o), f"gradcheck: grad_out[{k}]", np.float64)
                 for k, (go, o) in enumerate(zip(grad_out, out)))


def _per_input(dx, count):
    """The list of input gradients ``backward`` returned for ``count`` inputs (one input: the
    gradient itself, or a 1-tuple)."""
    if count == 1 and not isinstance(dx, (tuple, list)):
        return [dx]
    if not isinstance(dx, (tuple, list)) or len(dx) != count:
        raise AssertionError(f"gradcheck: backward returned {_describe(dx)}; expected a tuple of {count} "
                             "gradients, one per input (None for an integer input)")
    return list(dx)


def _describe(value):
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of length {len(value)}"
    return "None" if value is None else f"an array of shape {np.shape(value)}"
