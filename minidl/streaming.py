"""Stream: run a trained model one step (or one chunk) at a time, carrying its recurrent state."""

import numpy as np

from ._checks import fmt_shape
from ._grad_mode import no_grad
from .layers.layer import Layer, layers_with_state
from .model import batch_arrays, check_input_count


class Stream:
    """Feed a model a long sequence piece by piece, the recurrent state running on between pieces.

    ``stream = Stream(model)`` starts from zero states. Each call ``y = stream(x_chunk)``
    runs ``model`` on the next ``steps`` steps of the sequence, starting from the state the
    previous call ended in, so that streaming a sequence in chunks of any sizes gives
    what one ``model.forward`` over the whole sequence gives:

    - ``stream(x_chunk)``: ``x_chunk: (batch, steps, features)``, or ``(batch, steps)``
      integer tokens for a model that starts with ``Embedding``. A many-to-many model
      (its last ``RNN`` has ``return_sequences=True``) returns the output of every step,
      ``(batch, steps, ...)``; a many-to-one model returns its output after the chunk's
      last step, ``(batch, ...)``.
    - ``stream.step(x_t)``: one step, ``x_t: (batch, features)`` or ``(batch,)`` tokens;
      returns that step's output ``(batch, ...)`` (the time axis dropped).
    - a ``Model`` of several inputs takes a tuple in both calls, one array per input of its
      ``forward``, with the same batch size and the same number of steps: the inputs advance
      together.
    - ``stream.reset()``: back to zero states (needed before changing the batch size);
      ``stream.reset(state)`` starts from given states instead (a list like ``stream.state``).
    - ``stream.state``: the carried states, a list with one entry per stateful layer
      (``layers_with_state(model)`` order), each a tuple of ``(batch, n)`` arrays
      (copies), or None before the first call (zeros).

    Each call runs the model in eval mode (dropout off) under ``no_grad`` (no history
    is kept, so memory does not grow with the length streamed) and leaves the model as
    it found it: every layer's training flag, every stateful layer's own carried state
    and its ``stateful`` flag. The weights are the model's own (nothing is copied), so
    the model may keep training between calls and the stream uses the new weights.
    A call does drop the history of the model's last forward: run ``backward`` before
    streaming, not across a call.

    The state is carried through the recurrent-state protocol of ``Layer``: before a
    call each stateful layer gets ``set_state(carried)``, after it ``state_at(steps)``
    is read. A layer that needs whole sequences (``supports_truncation = False``:
    ``Bidirectional``) cannot be streamed and is refused here.

    Args:
        model: a ``Layer`` (usually a ``Sequential``).

    Raises:
        TypeError: ``model`` is not a ``Layer``.
        ValueError: ``model`` holds a layer that needs whole sequences (``Bidirectional``).
    """

    def __init__(self, model):
        if not isinstance(model, Layer):
            raise TypeError(f"Stream: model must be a Layer (e.g. a Sequential), got {type(model).__name__}")
        whole = [layer for layer in model.sublayers() if not layer.supports_truncation]
        if whole:
            raise ValueError(
                f"Stream: {type(whole[0]).__name__} needs each whole sequence in one forward "
                "(supports_truncation is False), so the model cannot be run step by step"
            )
        self.model = model
        self._layers = layers_with_state(model)
        self._features = _feature_shape(model.expected_input_shape())
        self.reset()

    def __repr__(self):
        return f"Stream({type(self.model).__name__}, batch={self._batch}, steps={self.steps})"

    # ---- state -------------------------------------------------------------------------
    def reset(self, state=None):
        """Forget the carried states: the next call starts from zeros, with any batch size.

        Args:
            state: None (zeros), or the states to start from instead (e.g. an encoder's
                final state for a decoder): a list like ``stream.state``, one entry per
                stateful layer, each a tuple of ``(batch, n)`` arrays or None for zeros.
                Each entry is checked by its layer's ``set_state`` (the layer's own state
                is put back); copies are kept.

        Raises:
            ValueError: ``state`` is not a list of one entry per stateful layer, an entry
                does not fit its layer, or the entries have different batch sizes.
        """
        checked, batch = [None] * len(self._layers), None
        if state is not None:
            if not isinstance(state, (list, tuple)) or len(state) != len(self._layers):
                raise ValueError(f"Stream.reset: state must be a list with one entry per stateful layer "
                                 f"({len(self._layers)}), like stream.state; got {_describe(state)}")
            checked = [_checked_state(layer, entry) for layer, entry in zip(self._layers, state)]
            batches = {entry[0].shape[0] for entry in checked if entry is not None}
            if len(batches) > 1:
                raise ValueError(f"Stream.reset: the states have different batch sizes {sorted(batches)}")
            batch = batches.pop() if batches else None
        self._states, self._batch = checked, batch
        self.steps = 0  # steps streamed since the last reset

    @property
    def state(self):
        """The carried states: one entry per stateful layer, a tuple of arrays (copies) or None."""
        return [None if s is None else tuple(a.copy() for a in s) for s in self._states]

    @property
    def returns_sequences(self):
        """True when the model gives one output per step: its last stateful layer keeps the
        time axis (``RNN(return_sequences=True)``), or it has no stateful layer."""
        return not self._layers or bool(getattr(self._layers[-1], "return_sequences", True))

    # ---- computation -------------------------------------------------------------------
    def step(self, x_t):
        """One step of the sequence, from the carried state.

        Args:
            x_t: ``(batch, features)``, or ``(batch,)`` tokens; for a model of several
                inputs a tuple, one ``x_t`` per input of its ``forward``.

        Returns:
            That step's output ``(batch, ...)`` (the time axis dropped).

        Raises:
            ValueError: an input without a batch axis, of the wrong shape, another number
                of inputs than ``forward`` takes, or a batch size other than the carried
                state's (call ``reset()`` first).
        """
        xs = x_t if isinstance(x_t, tuple) else (x_t,)
        xs = tuple(np.asarray(x) for x in xs)
        for name, x in zip(_names("x_t", xs), xs):
            if x.ndim == 0:
                raise ValueError(f"Stream.step: {name} must have a batch axis, e.g. (batch, features) or (batch,) "
                                 "tokens, got a scalar")
        y = self._run(tuple(x[:, None] for x in xs), "Stream.step", "x_t", step=True)
        if not self.returns_sequences:
            return y
        return tuple(out[:, 0] for out in y) if isinstance(y, tuple) else y[:, 0]

    def __call__(self, x_chunk):
        """The next chunk: ``x_chunk: (batch, steps, features)`` or ``(batch, steps)`` tokens ->
        every step's output ``(batch, steps, ...)`` (many-to-many) or the last one's (many-to-one).

        A model of several inputs takes a tuple of chunks, one per input of its ``forward``,
        with the same batch and the same number of steps (the state advances by ``steps``)."""
        xs = x_chunk if isinstance(x_chunk, tuple) else (x_chunk,)
        return self._run(tuple(np.asarray(x) for x in xs), "Stream", "x_chunk", step=False)

    def _run(self, xs, owner, name, step):
        check_input_count(self.model, len(xs), owner)
        names = _names(name, xs)
        for x_name, x in zip(names, xs):
            self._check_input(x, owner, x_name, step, features=self._features if len(xs) == 1 else None)
        batch_arrays(xs if len(xs) > 1 else xs[0], owner, name)
        lengths = {x.shape[1] for x in xs}
        if len(lengths) > 1:
            got = ", ".join(f"{n} has {x.shape[1]}" for n, x in zip(names, xs))
            raise ValueError(f"{owner}: the inputs of a stream advance together and need the same number of steps, "
                             f"got {got}")
        batch, steps = xs[0].shape[0], xs[0].shape[1]
        if self._batch is not None and batch != self._batch:
            raise ValueError(
                f"{owner}: the carried state has batch size {self._batch} but {names[0]} has {batch}; "
                "call reset() before changing the batch size"
            )
        model = self.model
        modes = [(layer, layer.training) for layer in model.sublayers()]
        own = [layer.get_state() for layer in self._layers]
        model.eval()
        try:
            with no_grad():
                for layer, state in zip(self._layers, self._states):
                    layer.set_state(state)
                y = model.forward(*xs)
                states = [layer.state_at(steps) for layer in self._layers]
        finally:
            for layer, mode in modes:
                layer.training = mode
            for layer, state in zip(self._layers, own):
                layer.set_state(state)
        self._states, self._batch = states, batch
        self.steps += steps
        return y

    @staticmethod
    def _check_input(x, owner, name, step, features):
        if features is None:  # the model does not say: only the batch and time axes are needed
            if x.ndim < 2 or 0 in x.shape[:2]:
                raise ValueError(f"{owner}: {name} must have a batch and a time axis, got shape {fmt_shape(x.shape)}")
            return
        fits = x.ndim == 2 + len(features) and all(e is None or e == s for e, s in zip(features, x.shape[2:]))
        if not fits:
            wanted = ("batch",) + features if step else ("batch", "steps") + features
            got = x.shape[:1] + x.shape[2:] if step else x.shape
            raise ValueError(f"{owner}: expected {name} of shape {fmt_shape(wanted)}, got {fmt_shape(got)}")
        if 0 in x.shape:
            raise ValueError(f"{owner}: {name} must have at least one sample and one step, got shape "
                             f"{fmt_shape(x.shape)}")


def _names(name, xs):
    """How errors name the inputs: ``x_chunk`` alone, ``x_chunk[k]`` in a tuple."""
    return [name] if len(xs) == 1 else [f"{name}[{k}]" for k in range(len(xs))]


def _checked_state(layer, entry):
    """``entry`` as ``layer.get_state()`` gives it after ``layer.set_state(entry)`` (which checks
    it), with the layer's own state put back."""
    own = layer.get_state()
    try:
        layer.set_state(entry)
        return layer.get_state()
    finally:
        layer.set_state(own)


def _describe(value):
    return f"a list of {len(value)}" if isinstance(value, (list, tuple)) else type(value).__name__


def _feature_shape(expected):
    """The per-step feature axes of a model's input from its ``expected_input_shape()``:
    ``(None, None, F)`` (``RNN``) -> ``(F,)``; ``(None, None)`` (``Embedding``: tokens) -> ``()``;
    ``(None, F)`` (``Dense``, which maps any leading axes) -> ``(F,)``; None when unknown."""
    if expected is None or len(expected) < 2:
        return None
    return tuple(expected[2:]) if expected[1] is None else tuple(expected[1:])
