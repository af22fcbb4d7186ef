"""Sequential: a stack of layers, each applied to the previous one's output, masks handed on."""

import numbers

import numpy as np

from ._checks import LOSS_VALUE_HINT, fmt_shape
from .layers.layer import Layer
from .layers.registry import layer_class
from .model import Model, class_label, param_count, summary_table


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
            rows.append((f"{i} {class_label(layer)}", "?" if shape is None else fmt_shape(shape), param_count(layer)))
        return summary_table(f"Sequential: input shape {shown}, dtype {np.dtype(self.dtype).name}", rows, param_count(self))

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
                f"Sequential: layers[{failed}] ({class_label(layers[failed])}) takes sequences (batch, time, "
                f"features), but layers[{j}] ({class_label(layer)}) returns only its last step (batch, {width}): "
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
