"""Free-running autoregressive forecasts: a model's predictions fed back as its next inputs."""

import contextlib

import numpy as np

from ._checks import as_real_array, fmt_shape, positive_int
from ._grad_mode import no_grad
from .layers.layer import Layer, layers_with_state
from .streaming import Stream


@contextlib.contextmanager
def _eval_mode(model):
    """Put a layer-like model in eval mode; restore every sub-layer's training flag on exit."""
    sublayers = getattr(model, "sublayers", None)
    layers = sublayers() if callable(sublayers) else [model]
    saved = [(layer, layer.training) for layer in layers if hasattr(layer, "training")]
    if callable(getattr(model, "eval", None)):
        model.eval()
    try:
        yield
    finally:
        for layer, flag in saved:
            layer.training = flag


def _predict_function(model):
    for method in (getattr(model, "predict", None), getattr(model, "forward", None), model):
        if callable(method):
            return method
    raise TypeError(f"forecast: model must have predict(x) or forward(x), or be callable; got {type(model).__name__}")


def forecast(model, seed_window, steps):
    """Free-running autoregressive forecast: each prediction is fed back as the next input.

    Two kinds of model:

    - **many-to-one**, ``(B, window, F) -> (B, F)``, the value after each window. Starting
      from ``seed_window``, it predicts the next value, appends it, drops the oldest one and
      repeats (a sliding window), so from the second step on it reads its own predictions.
      The whole window is fed at every step, so the model should be stateless
      (``RNN(stateful=False)``).
    - **many-to-many**, ``(B, T, F) -> (B, T, F)``, the next value after every step (its
      last ``RNN`` has ``return_sequences=True``; trained with teacher forcing). A ``Stream``
      reads the seed once, its last step's output is the first prediction, and each
      prediction is then fed back as one more step with the recurrent state carried: every
      prediction conditions on the whole seed and all predictions before it, in
      ``O(steps)`` work (no window re-run). The model must be a ``Layer`` that ``Stream``
      accepts (no ``Bidirectional``).

    A ``Layer`` with recurrent layers whose last one returns sequences is many-to-many;
    anything else is called as many-to-one.
    ``model.predict`` is used when it exists, else ``model.forward`` in eval mode; both
    under ``minidl.no_grad()``. The model's training flags and carried states are restored
    afterwards.

    Args:
        model: e.g. ``Sequential([RNN(...), Dense(H, F)])``.
        seed_window: ``(window,)`` (one feature), ``(window, F)``, or ``(B, window, F)``
            for ``B`` independent forecasts computed together.
        steps: number of values to predict, >= 1.

    Returns:
        ``(steps,)``, ``(steps, F)`` or ``(B, steps, F)`` following the seed's rank, in the
        seed's float dtype.

    Raises:
        TypeError: ``steps`` is not an int, ``seed_window`` is not a real array, or the
            model has neither ``predict`` nor ``forward`` and is not callable.
        ValueError: ``steps < 1``, ``seed_window`` of another rank, or a model whose
            output does not map ``(B, window, F)`` to ``(B, F)`` (many-to-one) or
            ``(B, window, F)`` (many-to-many).
    """
    owner = "forecast"
    steps = positive_int(steps, "steps", owner)
    seed = as_real_array(seed_window, "seed_window", owner, np.float64)
    if seed.ndim not in (1, 2, 3) or seed.size == 0:
        raise ValueError(
            f"{owner}: expected seed_window of shape (window,), (window, F) or (B, window, F), "
            f"got {fmt_shape(seed.shape)}"
        )
    batch = {1: seed[None, :, None], 2: seed[None], 3: seed}[seed.ndim]
    b, w, f = batch.shape
    predict = _predict_function(model)
    buf = np.empty((b, w + steps, f), dtype=seed.dtype)
    buf[:, :w] = batch
    stream = _many_to_many_stream(model)
    if stream is not None:
        _free_run(stream, buf, w, owner)
    else:
        with no_grad(), _eval_mode(model):
            for s in range(steps):  # each step needs the previous prediction: a loop over time
                pred = np.asarray(predict(np.ascontiguousarray(buf[:, s : s + w])))
                if pred.shape != (b, f):
                    if pred.shape == (b, w, f) and isinstance(model, Layer):
                        Stream(model)  # a many-to-many model it cannot stream: raises why
                    raise ValueError(
                        f"{owner}: the model must map (B, window, F) = {fmt_shape((b, w, f))} to (B, F) = "
                        f"{fmt_shape((b, f))}, got output of shape {fmt_shape(pred.shape)}"
                    )
                buf[:, w + s] = pred
    out = buf[:, w:]
    if seed.ndim == 1:
        return np.ascontiguousarray(out[0, :, 0])
    return np.ascontiguousarray(out[0] if seed.ndim == 2 else out)


def _many_to_many_stream(model):
    """A ``Stream`` over ``model`` when it is a many-to-many recurrent ``Layer`` (its last
    stateful layer returns sequences), else None (the sliding-window path)."""
    if not isinstance(model, Layer) or not layers_with_state(model):
        return None
    try:
        stream = Stream(model)
    except ValueError:  # e.g. Bidirectional: many-to-one ones forecast with the sliding window
        return None
    return stream if stream.returns_sequences else None


def _free_run(stream, buf, w, owner):
    """Fill ``buf[:, w:]`` from a many-to-many model: the seed ``buf[:, :w]`` in one chunk, then
    one step per prediction, each reading the prediction before it."""
    b, _, f = buf.shape
    out = np.asarray(stream(buf[:, :w]))
    if out.shape != (b, w, f):
        raise ValueError(f"{owner}: a many-to-many model must map (B, window, F) = {fmt_shape((b, w, f))} "
                         f"to (B, window, F), got output of shape {fmt_shape(out.shape)}")
    pred = out[:, -1]
    for s in range(w, buf.shape[1]):
        buf[:, s] = pred
        if s + 1 < buf.shape[1]:
            pred = stream.step(buf[:, s])
