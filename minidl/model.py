"""Model: the base class of models (several inputs, predict, summary, save), and Sequential."""

import inspect
import numbers

import numpy as np

from ._checks import LOSS_VALUE_HINT, fmt_shape, positive_int
from ._grad_mode import no_grad
from .io import save_model
from .layers.layer import Layer, layer_class, layers_with_state


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
            rows.append((f"{name} {_class_label(layer)}", "?" if shape is None else fmt_shape(shape), _count(layer)))
        own = sum(p.size for p in self.parameters()) - sum(_count(l) for _, l in self.children())
        if own:
            rows.append(("(own parameters)", "-", own))
        return _table(f"{type(self).__name__}: dtype {np.dtype(self.dtype).name}", rows, _count(self))

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


def _class_label(layer):
    cell = getattr(layer, "cell", None)
    return type(layer).__name__ + (f"({type(cell).__name__})" if isinstance(cell, Layer) else "")


def _count(layer):
    return sum(p.size for p in layer.parameters())


def _table(header, rows, total):
    """The summary text: ``header``, then rows of (layer, output shape, count) and the total."""
    rows = [(a, b, f"{c:,}") for a, b, c in rows]
    head = ("Layer", "Output shape", "Params")
    w = [max(len(r[k]) for r in rows + [head]) for k in range(3)]
    rule = "=" * (sum(w) + 4)

    def line(r):
        return f"{r[0]:<{w[0]}}  {r[1]:<{w[1]}}  {r[2]:>{w[2]}}"

    return "\n".join([header, rule, line(head), rule, *(line(r) for r in rows), rule, f"Total params: {total:,}"])


class Sequential(Model):
    """Applies ``layers`` in order; ``backward`` runs them in reverse.

    Args:
        layers: iterable of ``Layer`` objects, kept in the ``layers`` list.

    Raises:
        TypeError: ``layers`` is a single ``Layer`` or not iterable, or an item is not a ``Layer``.

    Shapes: whatever the layers take and give, e.g. ``RNN`` then ``Dense``:
    ``x: (batch, time, features) -> (batch, out)``.

    Masks (the mask protocol of ``Layer``): ``forward(x, mask=None)`` hands the mask
    of each layer's input (the given one, or one made by a layer before it, e.g.
    ``Masking``) to every layer with ``takes_mask = True`` as ``forward(x, mask=mask)``
    (others get ``forward(x)``), then ``mask = layer.compute_mask(x, mask)``.
    After a forward, ``output_mask`` is the mask of the output (None when there is none).

    State-dict names are ``"<index>.<param path>"``, e.g. ``"0.cell.kernel"``,
    ``"1.bias"`` (and ``"0.1.kernel"`` for a Sequential nested at index 0).
    """

    takes_mask = True

    def __init__(self, layers):
        super().__init__()
        if isinstance(layers, Layer) or not hasattr(layers, "__iter__"):
            raise TypeError(f"Sequential: layers must be a list of Layer objects, got {type(layers).__name__}")
        layers = list(layers)
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: layers[{i}] must be a Layer, got {type(layer).__name__}")
        self.layers = layers
        self.output_mask = None
        self._output_shape = None  # of the last forward: backward tells a loss value from a gradient

    def expected_input_shape(self):
        return _infer_input_shape(self)

    def children(self):
        return [(str(i), layer) for i, layer in enumerate(self.layers)]

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def __getitem__(self, index):
        return self.layers[index]

    def __repr__(self):
        return f"Sequential([{', '.join(repr(layer) for layer in self.layers)}])"

    # ---- computation -------------------------------------------------------------
    def forward(self, x, mask=None):
        """Apply the layers in order, handing the mask on (see the class docstring).

        Args:
            x: the first layer's input, e.g. ``(batch, time, features)``.
            mask: ``(batch, time)`` bool, True at real steps, or None.

        Returns:
            The last layer's output; ``output_mask`` holds its mask.

        Raises:
            TypeError: ``mask`` is not bool.
            ValueError: ``mask`` is not ``(batch, time)`` with x's batch; a layer's own
                errors pass through (a 2-D input to a recurrent layer is explained).
        """
        if mask is not None:
            mask = _checked_mask(mask, x)
        for i, layer in enumerate(self.layers):
            x_in = x
            try:
                x = layer.forward(x, mask=mask) if layer.takes_mask else layer.forward(x)
            except ValueError as err:
                if np.ndim(x_in) == 2:
                    _explain_stacking(self.layers, i, err)
                raise
            mask = layer.compute_mask(x_in, mask)
        self.output_mask = mask
        self._output_shape = np.shape(x) if isinstance(x, np.ndarray) else None
        return x

    def compute_mask(self, x, mask):
        """The mask of the output of the last ``forward`` (``output_mask``).

        Args:
            x: the input (unused: the mask was computed by ``forward``).
            mask: the input's mask (unused, as ``x``).

        Returns:
            ``output_mask``, ``(batch, time)`` bool or None.
        """
        return self.output_mask

    def backward(self, grad_out):
        """Run the layers' ``backward`` in reverse order.

        Args:
            grad_out: ``dL/dy``, shaped like the last output (not the loss value).

        Returns:
            ``dL/dx``, shaped like the input (None when the first layer is an ``Embedding``).

        Raises:
            ValueError: ``grad_out`` is a scalar loss value instead of its gradient; a
                layer's own errors pass through.
        """
        _refuse_loss_value(grad_out, getattr(self, "_output_shape", None), "Sequential.backward")
        for layer in reversed(self.layers):
            grad_out = layer.backward(grad_out)
        return grad_out

    def predict(self, x, batch_size=None, mask=None):
        """Output for ``x`` in eval mode without keeping history (``no_grad``).

        Args:
            x: input batch, e.g. ``(batch, time, features)``.
            batch_size: when given (int >= 1), run ``x`` (and ``mask``) in slices of
                that many samples (each slice vectorized) and concatenate the outputs
                along the batch axis; the result equals the whole-batch one.
            mask: optional ``(batch, time)`` bool mask of ``x`` (see ``forward``);
                ``output_mask`` is then that of the whole output.

        Returns:
            The last layer's output for the whole batch.

        Raises:
            TypeError, ValueError: as ``Model.predict``, and ``ValueError`` for a
                ``mask`` whose batch size is not that of ``x``.

        The train/eval mode of every layer is restored afterwards; ``backward``
        cannot follow a ``predict``. Stateful layers carry their state as in
        ``forward``, so with ``batch_size`` each slice would start from the
        previous slice's final state: predict stateful models without it.
        """
        masks = []

        def run(x, **mask):
            y = self.forward(x, **mask)
            masks.append(self.output_mask)
            return y

        y = self._predict(x, batch_size, {} if mask is None else {"mask": np.asarray(mask)}, run)
        self.output_mask = None if masks[0] is None else np.concatenate(masks, axis=0)
        return y

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.layers:
            shape = tuple(layer.compute_output_shape(shape))
        return shape

    # ---- summary -------------------------------------------------------------------
    def summary(self, input_shape=None):
        """A text table: one row per layer (index and class), output shape, parameter count.

        Args:
            input_shape: full input shape including the batch axis, e.g.
                ``(None, 50, 1)``; the batch entry is always shown as ``None``.
                When None it is the first layer's ``expected_input_shape()``
                (``RNN``: ``(None, None, input_size)``, ``Dense``: ``(None, in_features)``);
                when that is unknown too, shapes are shown as ``?``.

        Counts use thousands separators (``10,200``); the total counts each
        parameter once.

        Returns:
            The table, a str.
        """
        shape = _infer_input_shape(self) if input_shape is None else _check_input_shape(input_shape)
        shown = "?" if shape is None else fmt_shape(shape)
        rows = []
        for i, layer in enumerate(self.layers):
            if shape is not None:
                shape = (None,) + tuple(layer.compute_output_shape(shape))[1:]
            rows.append((f"{i} {_class_label(layer)}", "?" if shape is None else fmt_shape(shape), _count(layer)))
        return _table(f"Sequential: input shape {shown}, dtype {np.dtype(self.dtype).name}", rows, _count(self))

    # ---- configuration -------------------------------------------------------------
    def get_config(self):
        """``{"layers": [{"class_name": ..., "config": layer.get_config()}, ...]}``."""
        return {"layers": [{"class_name": type(layer).__name__, "config": layer.get_config()} for layer in self.layers]}

    @classmethod
    def from_config(cls, config):
        """Build a Sequential from ``get_config()``'s dict; layer classes are looked up by name
        and built with their ``from_config``. New layers get fresh initial weights.

        Args:
            config: ``{"layers": [{"class_name": ..., "config": {...}}, ...]}``.

        Returns:
            The new ``Sequential``.

        Raises:
            ValueError: ``config`` is not of that form, or names an unknown layer class.
            TypeError: a layer's ``from_config`` raised one; it is re-raised naming the
                layer's index, as are its ``ValueError`` and ``KeyError``.
        """
        if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
            raise ValueError(f"Sequential.from_config: expected {{'layers': [...]}}, got {config!r:.200}")
        layers = []
        for i, spec in enumerate(config["layers"]):
            if not (isinstance(spec, dict) and isinstance(spec.get("class_name"), str)
                    and isinstance(spec.get("config"), dict)):
                raise ValueError(
                    f"Sequential.from_config: layers[{i}] must be {{'class_name': str, 'config': dict}}, got {spec!r:.200}"
                )
            try:
                layers.append(layer_class(spec["class_name"]).from_config(spec["config"]))
            except (ValueError, TypeError, KeyError) as err:
                raise type(err)(f"Sequential.from_config: layers[{i}] ({spec['class_name']}): {err}") from None
        return cls(layers)


def _refuse_loss_value(grad_out, output_shape, owner):
    """Raise ``ValueError`` when ``grad_out`` is a number but the output (of ``output_shape``,
    None when unknown) is not: the loss value passed where its gradient belongs."""
    scalar = isinstance(grad_out, numbers.Number) or (isinstance(grad_out, np.ndarray) and grad_out.ndim == 0)
    if scalar and output_shape not in (None, ()):
        value = np.asarray(grad_out).item()
        raise ValueError(f"{owner}: grad_out must be the gradient of the loss with respect to the model's output, "
                         f"an array of shape {fmt_shape(output_shape)}, got the number {value!r}: {LOSS_VALUE_HINT}")


def _explain_stacking(layers, failed, err):
    """Raise a ``ValueError`` with the hint, from ``err``, when ``layers[failed]``, which takes
    sequences ``(batch, time, features)``, failed on a ``(batch, n)`` input that comes from an
    ``RNN`` (or ``Bidirectional``) with ``return_sequences=False``, directly or through built-in
    layers that keep two axes (``Dense``, ``Dropout``, activations, ...); else return. A
    ``RepeatVector`` (or any layer of unknown output rank) in between ends the search."""
    expected = layers[failed].expected_input_shape()
    if expected is None or len(expected) != 3:
        return
    for j in range(failed - 1, -1, -1):
        layer = layers[j]
        shape = layer.expected_input_shape()
        if shape is not None and len(shape) == 3 and getattr(layer, "return_sequences", None) is False:
            width = layer.compute_output_shape((None, None, None))[-1]
            raise ValueError(
                f"Sequential: layers[{failed}] ({_class_label(layers[failed])}) takes sequences (batch, time, "
                f"features), but layers[{j}] ({_class_label(layer)}) returns only its last step (batch, {width}): "
                f"build layers[{j}] with return_sequences=True to stack recurrent layers"
            ) from err
        if not _keeps_two_axes(layer):
            return


def _keeps_two_axes(layer):
    """True for a built-in layer whose output of a ``(batch, n)`` input is ``(batch, m)``."""
    if not type(layer).__module__.startswith("minidl."):
        return False  # a user's layer may not declare its output shape: no guess
    try:
        return len(layer.compute_output_shape((None, 5))) == 2
    except (ValueError, TypeError, IndexError):
        return False


def _checked_mask(mask, x):
    """``mask`` as a ``(batch, time)`` bool array whose batch is ``x``'s, or raise."""
    mask = np.asarray(mask)
    if mask.dtype != bool:
        raise TypeError(f"Sequential: mask must be a bool array (batch, time), got dtype {mask.dtype}")
    batch = np.shape(x)[:1]
    if mask.ndim != 2 or mask.shape[:1] != batch:
        expected = fmt_shape((batch[0] if batch else "batch", "time"))
        raise ValueError(f"Sequential: expected mask of shape {expected} (the batch of x), got {fmt_shape(mask.shape)}")
    return mask


def _infer_input_shape(model):
    """``(None, ...)`` input shape the first layer expects, or None when unknown."""
    return model.layers[0].expected_input_shape() if model.layers else None


def _check_input_shape(input_shape):
    owner = "Sequential.summary"
    if not isinstance(input_shape, (tuple, list)) or not input_shape:
        raise TypeError(f"{owner}: input_shape must be a non-empty tuple like (None, time, features), got {input_shape!r}")
    for k, s in enumerate(input_shape):
        if s is not None and (isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1):
            raise ValueError(f"{owner}: input_shape[{k}] must be None or an int >= 1, got {s!r}")
    return (None,) + tuple(None if s is None else int(s) for s in input_shape[1:])
