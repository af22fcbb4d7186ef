"""Bidirectional: run an RNN forwards and a copy of it backwards in time, and merge."""

import numpy as np

from .._checks import as_float_array, fmt_shape, grad_shape, one_of, time_mask
from .._grad_mode import is_grad_enabled
from .layer import Layer
from .registry import layer_class
from .rnn import RNN

_MERGE_MODES = ("concat", "sum", "ave", "mul")


class Bidirectional(Layer):
    """Bidirectional wrapper of an ``RNN`` (Keras semantics).

    Args:
        rnn: a non-stateful ``RNN``; it becomes ``forward_layer``. ``backward_layer``
            is a new ``RNN`` with a fresh cell of the same class and config (built
            with the cell's ``get_config`` / ``from_config``, so it has its own
            initial weights from the generator seeded by ``minidl.set_seed``) and the
            same ``return_sequences``.
        merge_mode: how the two outputs are combined: ``"concat"`` (default, on the
            last axis), ``"sum"``, ``"ave"`` or ``"mul"``.

    Raises:
        TypeError: ``rnn`` is not an ``RNN`` instance.
        ValueError: ``rnn`` is stateful, or ``merge_mode`` is not one of the four.

    Shapes, with ``H`` the cell's hidden size and ``M = 2H`` for ``"concat"``,
    else ``M = H``: ``x: (batch, time, features) -> (batch, M)``, or
    ``(batch, time, M)`` with ``return_sequences=True``.

    Forward, with ``rev`` reversing the time axis::

        hf = forward_layer(x)                 hb = backward_layer(rev(x))
        return_sequences=True:   y = merge(hf, rev(hb))   step t holds both directions' outputs at t
        return_sequences=False:  y = merge(hf, hb)        forward's last output, and backward's
                                                          after reading the whole reversed sequence

    Backward, with ``g = dL/dy`` split by the merge into ``gf`` and ``gb``
    (``concat``: the two halves; ``sum``: ``g`` both; ``ave``: ``g / 2`` both;
    ``mul``: ``g * hb`` and ``g * hf``)::

        dL/dx = forward_layer.backward(gf) + rev(backward_layer.backward(gb'))

    where ``gb' = rev(gb)`` for ``return_sequences=True``, else ``gb``.

    Masks: ``forward(x, mask=None, initial_state=None)`` with ``mask: (batch, time)``
    bool (True at real steps). Each direction skips the masked steps: the backward
    direction runs over ``rev(x)`` with ``rev(mask)``, so with right padding it
    carries its initial state over the padding and starts at each sequence's last real
    step (PyTorch's packed bidirectional RNN); its outputs are reversed back. Padded
    steps output zeros in both directions. ``compute_mask`` passes the mask on with
    ``return_sequences=True`` and gives None otherwise.

    States: ``initial_state`` is a pair ``(forward's, backward's)``, each a tuple of
    ``(batch, n)`` arrays or None (zeros); the backward direction's state is the one
    it starts from at the last time step. After a forward ``final_state`` is the pair
    of the directions' ``final_state`` (the backward direction's: after its last real
    step, i.e. the first real step in time). ``backward(grad_out, grad_final_state=None)``
    takes such a pair (entries None or tuples like ``RNN.backward``'s), and leaves the
    pair of the directions' ``initial_state_grad`` in ``initial_state_grad``.

    Parameters are named ``forward_layer.cell.kernel``, ...,
    ``backward_layer.cell.kernel``, .... Each forward starts both directions from
    zeros (unless ``initial_state`` is given); a stateful ``RNN`` is not supported (a carried state has no meaning for
    the backward direction), and neither is truncated BPTT: the backward direction
    needs the whole sequence, so ``supports_truncation`` is False and the TBPTT
    trainer trains a model holding this layer with full BPTT only.
    """

    supports_truncation = False
    takes_mask = True

    def __init__(self, rnn, merge_mode="concat"):
        super().__init__()
        self.forward_layer = _non_stateful_rnn(rnn)
        self.merge_mode = one_of(merge_mode, _MERGE_MODES, "merge_mode", "Bidirectional")
        self.backward_layer = RNN(_fresh_copy(rnn.cell), return_sequences=rnn.return_sequences)
        self._outputs = None
        self._out_shape = None

    @property
    def return_sequences(self):
        return self.forward_layer.return_sequences

    @property
    def final_state(self):
        """``(forward_layer.final_state, backward_layer.final_state)`` of the last forward."""
        return (self.forward_layer.final_state, self.backward_layer.final_state)

    @property
    def initial_state_grad(self):
        """``(forward_layer.initial_state_grad, backward_layer.initial_state_grad)`` of the last backward."""
        return (self.forward_layer.initial_state_grad, self.backward_layer.initial_state_grad)

    def compute_mask(self, x, mask):
        """The mask with ``return_sequences=True`` (the time axis stays); None otherwise.

        Args:
            x: the input ``(batch, time, features)``.
            mask: ``(batch, time)`` bool, or None.

        Returns:
            ``mask`` with ``return_sequences``, else None (as each direction's ``RNN`` gives it).
        """
        return self.forward_layer.compute_mask(x, mask)

    def get_config(self):
        return {
            "rnn": {"class_name": type(self.forward_layer).__name__, "config": self.forward_layer.get_config()},
            "merge_mode": self.merge_mode,
        }

    @classmethod
    def from_config(cls, config):
        """Build a Bidirectional from ``get_config()``: the wrapped RNN from its class name and config.

        Args:
            config: dict with ``"rnn"`` (``{"class_name", "config"}``) and ``"merge_mode"``.

        Returns:
            The new ``Bidirectional``, with new weights in both directions.
        """
        config = dict(config)
        spec = config.pop("rnn")
        rnn = layer_class(spec["class_name"]).from_config(spec["config"])
        return cls(rnn, **config)

    def __repr__(self):
        return f"Bidirectional({self.forward_layer!r}, merge_mode={self.merge_mode!r})"

    def expected_input_shape(self):
        return self.forward_layer.expected_input_shape()

    def compute_output_shape(self, input_shape):
        shape = tuple(self.forward_layer.compute_output_shape(input_shape))
        width = 2 * shape[-1] if self.merge_mode == "concat" else shape[-1]
        return shape[:-1] + (width,)

    # ---- computation -------------------------------------------------------------
    def forward(self, x, mask=None, initial_state=None):
        """Run both directions over ``x`` and merge them (see the class docstring for the math).

        Args:
            x: ``(batch, time, features)``.
            mask: ``(batch, time)`` bool, True at real steps, or None.
            initial_state: None, or a pair of the directions' initial states (each None or
                a tuple as ``RNN.forward`` takes).

        Returns:
            ``(batch, M)``, or ``(batch, time, M)`` with ``return_sequences``.

        Raises:
            TypeError: ``x`` is not numeric, or ``mask`` is not bool.
            ValueError: ``x`` is not ``(batch, time, features)`` with the cell's features,
                a ``mask`` or ``initial_state`` of the wrong shape, a wrapped RNN made
                stateful or holding a state, or directions that disagree on
                ``return_sequences``.
        """
        owner = self
        fwd, bwd = self.forward_layer, self.backward_layer
        if fwd.stateful:
            raise ValueError(f"{owner}: the wrapped RNN was made stateful; Bidirectional does not support that")
        if fwd.get_state() is not None or bwd.get_state() is not None:
            raise ValueError(
                f"{owner}: both directions start from zero states, but a state was set on "
                "forward_layer or backward_layer; call reset_states() on it"
            )
        if bwd.return_sequences != fwd.return_sequences:
            raise ValueError(f"{owner}: forward_layer and backward_layer disagree on return_sequences")
        F = fwd.cell.input_size
        x = as_float_array(x, "input", owner, fwd.cell.dtype)
        if x.ndim != 3 or x.shape[2] != F or x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(
                f"{owner}: expected input (batch, time, {F}) with batch, time >= 1, got shape {fmt_shape(x.shape)}"
            )
        mask = time_mask(mask, x.shape[:2], owner)
        init_f, init_b = _pair(initial_state, "initial_state", owner)
        hf = fwd.forward(x, mask=mask, initial_state=init_f)
        hb = bwd.forward(x[:, ::-1], mask=None if mask is None else mask[:, ::-1], initial_state=init_b)
        if self.return_sequences:
            hb = hb[:, ::-1]
        if self.merge_mode == "concat":
            y = np.concatenate([hf, hb], axis=-1)
        elif self.merge_mode == "sum":
            y = hf + hb
        elif self.merge_mode == "ave":
            y = 0.5 * (hf + hb)
        else:
            y = hf * hb
        keep = is_grad_enabled()
        self._out_shape = y.shape if keep else None
        self._outputs = (hf, hb) if keep and self.merge_mode == "mul" else None
        return y

    def backward(self, grad_out, grad_final_state=None):
        """Backpropagate through both directions; adds into their cells' grads.

        Args:
            grad_out: ``dL/dy``, shaped like the output.
            grad_final_state: None, or a pair of the directions' final-state gradients
                (each None or a tuple, as ``RNN.backward`` takes).

        Returns:
            ``dL/dx: (batch, time, features)``.

        Raises:
            RuntimeError: no forward with history before it.
            ValueError: ``grad_out`` or ``grad_final_state`` of the wrong shape.
        """
        if self._out_shape is None:
            raise self._missing_forward()
        H = self.forward_layer.cell.hidden_size
        g = grad_shape(grad_out, self._out_shape, self, self.forward_layer.cell.dtype)
        if self.merge_mode == "concat":
            gf, gb = g[..., :H], g[..., H:]
        elif self.merge_mode == "sum":
            gf = gb = g
        elif self.merge_mode == "ave":
            gf = gb = 0.5 * g
        else:
            hf, hb = self._outputs
            gf, gb = g * hb, g * hf
        if self.return_sequences:
            gb = gb[:, ::-1]
        final_f, final_b = _pair(grad_final_state, "grad_final_state", self)
        return (self.forward_layer.backward(gf, grad_final_state=final_f)
                + self.backward_layer.backward(gb, grad_final_state=final_b)[:, ::-1])


def _pair(value, name, owner):
    """``(forward's, backward's)`` from None or a pair of per-direction values."""
    if value is None:
        return None, None
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        got = f"{type(value).__name__} of length {len(value)}" if isinstance(value, (tuple, list)) else type(value).__name__
        raise ValueError(f"{owner}: expected {name} as a pair (forward direction's, backward direction's), "
                         f"each None or a tuple of (batch, n) arrays, got {got}")
    return tuple(value)


def _non_stateful_rnn(rnn):
    """``rnn``, or a clear error unless it is a non-stateful ``RNN`` instance."""
    if isinstance(rnn, type):
        raise TypeError(f"Bidirectional: rnn must be an RNN instance, got the class {rnn.__name__}")
    if not isinstance(rnn, RNN):
        raise TypeError(f"Bidirectional: rnn must be an RNN (e.g. RNN(LSTMCell(F, H))), got {type(rnn).__name__}")
    if rnn.stateful:
        raise ValueError(
            "Bidirectional: a stateful RNN is not supported (each forward runs both directions over the "
            f"whole sequence from zeros), got {rnn!r}; build the RNN with stateful=False"
        )
    return rnn


def _fresh_copy(cell):
    """A new cell of ``cell``'s class and config, with its own initial weights, in ``cell``'s dtype."""
    copy = type(cell).from_config(cell.get_config())
    if copy.parameters() and copy.dtype != cell.dtype:
        copy.astype(cell.dtype)
    return copy
