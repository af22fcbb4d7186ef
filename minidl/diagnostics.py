"""Gradient-flow diagnostic: how much gradient reaches the hidden state k steps back.

For a recurrent layer run on ``x: (B, T, F)`` with states ``h_0 .. h_T`` (``h_t``
after ``t`` steps) and a loss ``L`` on the last output ``h_T``,
``gradient_flow`` returns ``norms[k] = ||dL/dh_{T-k}||`` for ``k = 0 .. T-1``
(the Frobenius norm over the batch and the hidden units). Vanishing gradients show
as norms falling geometrically with ``k``, exploding ones as norms growing.
"""

import numpy as np

from ._checks import as_float_array, fmt_shape
from ._grad_mode import no_grad
from .layers import RNN
from .sequential import Sequential

__all__ = ["gradient_flow"]


def _probe(model, owner):
    """``(rnn, layers_before)``: the recurrent layer to probe and the layers feeding it."""
    if isinstance(model, RNN):
        return model, []
    if isinstance(model, Sequential):
        for i, layer in enumerate(model.layers):
            if isinstance(layer, RNN):
                return layer, model.layers[:i]
        raise ValueError(f"{owner}: the Sequential has no RNN layer among its layers "
                         f"{[type(l).__name__ for l in model.layers]}")
    raise TypeError(f"{owner}: expected an RNN or a Sequential containing one, got {type(model).__name__}")


def gradient_flow(model, x, grad_output=None, *, state_index=0, seed=0):
    """Norms of the gradient reaching the state ``k`` steps back, ``k = 0 .. T-1``.

    Args:
        model: an ``RNN`` (any cell, built-in or user-written), or a ``Sequential``,
            whose *first* ``RNN`` layer is probed: the layers before it only compute
            its input (forward, no history, in their current train/eval mode), the
            layers after it play no part.
        x: ``(B, T, F)`` input of ``model``.
        grad_output: ``dL/dh_T`` of shape ``(B, H)``, the gradient of the loss with
            respect to the probed layer's last output. None: the loss
            ``L = sum_b h_T[b] . v`` with a fixed unit vector ``v ~ N(0, I)``
            normalized, drawn from ``numpy.random.default_rng(seed)`` (minidl's global
            generator is not used), so ``norms[0] = sqrt(B)``.
        state_index: which state entry to measure (LSTM: 0 for ``h``, 1 for ``c``).
        seed: seed of ``v``.

    Returns:
        ``norms: (T,)`` float64, ``norms[k] = ||dL/ds_{T-k}||`` with ``s_t`` the
        ``state_index`` entry of the state after ``t`` steps; ``norms[0]`` is the
        norm of ``grad_output`` itself (zero for the LSTM cell state, which the loss
        does not read).

    Raises:
        TypeError: ``model`` is neither an ``RNN`` nor a ``Sequential`` holding one, or
            ``x`` / ``grad_output`` is not a numeric array.
        ValueError: a ``Sequential`` without an ``RNN``, ``x`` not ``(B, T, F)`` with the
            cell's ``F`` and ``B, T >= 1``, ``state_index`` not an index of the state,
            ``grad_output`` not ``(B, H)``, or a stored state of another batch size.

    The forward starts from the layer's current state (``get_state()``, zeros if
    None) and runs in the cell's dtype. It uses the cell's public step interface
    (``step`` and ``step_backward``): one forward and one backward pass, each
    ``T`` steps, so the cost is that of one training step on ``x``, not the
    ``T(T+1)/2`` steps of re-running the layer from ``state_at(T-k)`` for every
    ``k`` (which gives the same numbers). The layer's state, history and the
    parameters' ``.grad`` are left as they were.
    """
    owner = "gradient_flow"
    rnn, before = _probe(model, owner)
    cell = rnn.cell
    if before:
        x = np.asarray(x)
        with no_grad():
            for layer in before:
                x = layer.forward(x)
    x = as_float_array(x, "x", owner, cell.dtype)
    if x.ndim != 3 or x.shape[2] != cell.input_size or 0 in x.shape[:2]:
        raise ValueError(f"{owner}: expected x of shape (batch, time, {cell.input_size}) for {cell!r}, "
                         f"got {fmt_shape(x.shape)}")
    B, T, _ = x.shape
    sizes = cell.state_size
    if isinstance(state_index, bool) or not isinstance(state_index, (int, np.integer)) or not 0 <= state_index < len(sizes):
        raise ValueError(f"{owner}: state_index must be an int in [0, {len(sizes)}), got {state_index!r}")
    H = sizes[0]
    if grad_output is None:
        v = np.random.default_rng(seed).standard_normal(H)
        grad_output = np.broadcast_to(v / np.linalg.norm(v), (B, H))
    g = as_float_array(grad_output, "grad_output", owner, cell.dtype)
    if g.shape != (B, H):
        raise ValueError(f"{owner}: expected grad_output of shape {fmt_shape((B, H))}, got {fmt_shape(g.shape)}")

    state = rnn.get_state()
    if state is None:
        state = cell.initial_state(B)
    elif state[0].shape[0] != B:
        raise ValueError(f"{owner}: the layer's stored state has batch size {state[0].shape[0]} but x has {B}")
    caches = []
    for t in range(T):
        state, cache = cell.step(x[:, t], tuple(state))
        caches.append(cache)

    params = cell.parameters()
    saved = [p.grad.copy() for p in params]  # step_backward adds into the grads
    try:
        dstate = tuple(np.array(g) if k == 0 else np.zeros((B, n), g.dtype) for k, n in enumerate(sizes))
        norms = np.empty(T)
        norms[0] = np.linalg.norm(dstate[state_index])
        for k in range(1, T):  # dL/ds_{T-k}: back through step T-k (0-based index T-k)
            _, dstate = cell.step_backward(dstate, caches[T - k])
            dstate = tuple(dstate)
            norms[k] = np.linalg.norm(dstate[state_index])
    finally:
        for p, grad in zip(params, saved):
            p.grad[...] = grad
    return norms
