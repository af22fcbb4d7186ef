"""Model: the base class of models (several inputs, predict, summary, save); the helpers that
``Sequential`` (``sequential.py``) and users' models share."""

import inspect

import numpy as np

from ._checks import fmt_shape, positive_int
from ._grad_mode import no_grad
from .io import save_model
from .layers.layer import Layer, layers_with_state


class Model(Layer):
    """Base class of ``Sequential`` and of your own models.

    A ``Model`` is a ``Layer`` whose ``forward`` may take several arrays,
    ``forward(x1, x2, ...)``, each batch-first; its inputs are ``forward``'s
    positional parameters without defaults (or ``*xs``). With several inputs,
    ``backward(grad_out)`` returns a tuple of gradients, one per input (None for an
    integer input such as token ids); with one input it returns that input's
    gradient. A model may return a tuple of outputs; ``backward`` then takes a
    tuple of output gradients.

    Sub-layers assigned as attributes (or held in a list attribute) are found
    automatically: ``self.encoder = RNN(...)`` gives parameters named
    ``"encoder.cell.kernel"``. To be saved, a model whose ``__init__`` takes
    arguments returns them from ``get_config()``; ``minidl.load_model`` rebuilds
    it as ``cls(**get_config())`` and loads the weights (the class must be defined).
    """

    # ---- inference -------------------------------------------------------------------
    def predict(self, x, batch_size=None):
        """Output for ``x`` in eval mode without keeping history (``no_grad``).

        Args:
            x: one input array, or a tuple of arrays (one per input of ``forward``)
                with the same batch size.
            batch_size: when given (int >= 1), run the inputs in slices of that many
                samples (each slice vectorized) and concatenate the outputs along
                the batch axis (each output of a model returning a tuple); the
                result equals the whole-batch one.

        Returns:
            What ``forward`` returns for the whole batch: an array, or a tuple of
            arrays for a model with several outputs.

        Raises:
            TypeError: an input is not a numeric array, or ``batch_size`` not an int.
            ValueError: an input without a batch axis, inputs of different batch sizes,
                another number of inputs than ``forward`` takes, or ``batch_size < 1``.

        The train/eval mode of every layer is restored afterwards; ``backward``
        cannot follow a ``predict``. Stateful layers carry their state as in
        ``forward``, so with ``batch_size`` each slice would start from the
        previous slice's final state: predict stateful models without it.
        """
        return self._predict(x, batch_size, {}, self.forward)

    def _predict(self, x, batch_size, sliced, run):
        """``predict`` with ``sliced`` keyword arrays (``mask=``) cut with the inputs and
        ``run(*inputs, **sliced)`` computing one slice."""
        owner = f"{type(self).__name__}.predict"
        if batch_size is not None:
            batch_size = positive_int(batch_size, "batch_size", owner)
        inputs = batch_arrays(x, owner)
        check_input_count(self, len(inputs), owner)
        n = inputs[0].shape[0]
        for name, value in sliced.items():
            if np.shape(value)[:1] != (n,):
                raise ValueError(f"{owner}: {name} must have the batch size of x ({n}), got shape {fmt_shape(np.shape(value))}")
        modes = [(layer, layer.training) for layer in self.sublayers()]
        self.eval()
        try:
            with no_grad():
                if batch_size is None or batch_size >= n:
                    return run(*inputs, **sliced)
                outs = [run(*(a[i : i + batch_size] for a in inputs), **{k: v[i : i + batch_size] for k, v in sliced.items()})
                        for i in range(0, n, batch_size)]
                if isinstance(outs[0], tuple):
                    return tuple(np.concatenate(parts, axis=0) for parts in zip(*outs))
                return np.concatenate(outs, axis=0)
        finally:
            for layer, mode in modes:
                layer.training = mode

    def reset_states(self):
        """Reset the carried state of every stateful layer below (back to zeros)."""
        for layer in layers_with_state(self):
            layer.reset_states()

    # ---- summary ---------------------------------------------------------------------
    def summary(self):
        """A text table: one row per direct sub-layer (attribute name and class), its
        output shape where known (from the sub-layer's ``expected_input_shape()``,
        ``?`` otherwise) and its parameter count, then the total (each parameter once)."""
        rows = []
        for name, layer in self.children():
            shape = layer.expected_input_shape()
            if shape is not None:
                shape = (None,) + tuple(layer.compute_output_shape(shape))[1:]
            rows.append((f"{name} {class_label(layer)}", "?" if shape is None else fmt_shape(shape), param_count(layer)))
        own = sum(p.size for p in self.parameters()) - sum(param_count(l) for _, l in self.children())
        if own:
            rows.append(("(own parameters)", "-", own))
        return summary_table(f"{type(self).__name__}: dtype {np.dtype(self.dtype).name}", rows, param_count(self))

    # ---- files -------------------------------------------------------------------------
    def save(self, path):
        """Save architecture and weights to ONE file at ``path`` (used as is; use ``.npz``).

        The file is an npz archive: each parameter under its state-dict name, plus
        ``__config__``, JSON text with the format name and version, minidl's version,
        the dtype, ``get_config()`` and (for a model other than ``Sequential``) the
        class name. No pickle. The write is atomic (temporary file in the same
        folder, then ``os.replace``). Carried RNN states are not saved. A layer whose
        ``__init__`` takes arguments that its ``get_config`` does not return is
        refused, never saved with defaults. Reload with ``minidl.load_model(path)``.

        Args:
            path: str or path-like, the destination, used as is (no suffix is added).

        Raises:
            TypeError: ``path`` is not a str or path-like, a layer's ``get_config``
                does not return every argument of its ``__init__``, or a config is not JSON.
            ValueError: the model cannot be saved: parameters shared between layers, a
                class registered under another name, an abstract class.
        """
        save_model(self, path)


def batch_arrays(x, owner, name="x"):
    """``x`` (an array, or a tuple of arrays: several inputs) as a tuple of ndarrays, each
    with a batch axis, all of the same batch size; ``ValueError`` / ``TypeError`` otherwise,
    naming the inputs ``name`` or ``name[k]``."""
    named = [(f"{name}[{k}]", v) for k, v in enumerate(x)] if isinstance(x, tuple) else [(name, x)]
    if not named:
        raise ValueError(f"{owner}: {name} is an empty tuple; give one array per input")
    arrays = []
    for name, value in named:
        try:
            value = np.asarray(value)
        except (ValueError, TypeError) as err:
            raise TypeError(f"{owner}: {name} must be a numeric array, got {type(value).__name__} ({err})") from None
        if value.ndim == 0:
            raise ValueError(f"{owner}: {name} must have a batch axis, got shape {fmt_shape(value.shape)}")
        arrays.append(value)
    if len({a.shape[0] for a in arrays}) > 1:
        sizes = ", ".join(f"{name} has {a.shape[0]}" for (name, _), a in zip(named, arrays))
        raise ValueError(f"{owner}: the inputs must have the same batch size, got {sizes}")
    return tuple(arrays)


def check_input_count(model, count, owner):
    """Raise ``ValueError`` unless ``model.forward`` takes ``count`` inputs (its positional
    parameters without defaults; any number from that on with ``*xs``)."""
    params = inspect.signature(model.forward).parameters.values()
    names = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
    variadic = any(p.kind is p.VAR_POSITIONAL for p in params)
    if count < len(names) or (count > len(names) and not variadic):
        takes = f"{len(names)}{' or more' if variadic else ''} input{'s' * (variadic or len(names) != 1)} ({', '.join(names)})"
        raise ValueError(f"{owner}: {type(model).__name__}.forward takes {takes}, got {count} array{'s' * (count != 1)}")


def class_label(layer):
    """A layer's name in a summary: its class, and its cell's for a recurrent layer (``RNN(LSTMCell)``)."""
    cell = getattr(layer, "cell", None)
    return type(layer).__name__ + (f"({type(cell).__name__})" if isinstance(cell, Layer) else "")


def param_count(layer):
    """The number of parameter elements of ``layer`` and its sub-layers."""
    return sum(p.size for p in layer.parameters())


def summary_table(header, rows, total):
    """The summary text: ``header``, then rows of (layer, output shape, count) and the total."""
    rows = [(a, b, f"{c:,}") for a, b, c in rows]
    head = ("Layer", "Output shape", "Params")
    w = [max(len(r[k]) for r in rows + [head]) for k in range(3)]
    rule = "=" * (sum(w) + 4)

    def line(r):
        return f"{r[0]:<{w[0]}}  {r[1]:<{w[1]}}  {r[2]:>{w[2]}}"

    return "\n".join([header, rule, line(head), rule, *(line(r) for r in rows), rule, f"Total params: {total:,}"])
