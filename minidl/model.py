"""Sequential: a stack of layers applied in order, with predict, summary and save."""

import numbers

import numpy as np

from ._checks import fmt_shape, positive_int
from ._grad_mode import no_grad
from .io import save_model
from .layers.layer import Layer, layer_class, layers_with_state


class Sequential(Layer):
    """Applies ``layers`` in order; ``backward`` runs them in reverse.

    Args:
        layers: iterable of ``Layer`` objects, kept in the ``layers`` list.

    Shapes: whatever the layers take and give, e.g. ``RNN`` then ``Dense``:
    ``x: (batch, time, features) -> (batch, out)``.

    State-dict names are ``"<index>.<param path>"``, e.g. ``"0.cell.kernel"``,
    ``"1.bias"`` (and ``"0.1.kernel"`` for a Sequential nested at index 0).
    """

    def __init__(self, layers):
        super().__init__()
        if isinstance(layers, Layer) or not hasattr(layers, "__iter__"):
            raise TypeError(f"Sequential: layers must be a list of Layer objects, got {type(layers).__name__}")
        layers = list(layers)
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: layers[{i}] must be a Layer, got {type(layer).__name__}")
        self.layers = layers

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
    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad_out):
        for layer in reversed(self.layers):
            grad_out = layer.backward(grad_out)
        return grad_out

    def predict(self, x, batch_size=None):
        """Output for ``x`` in eval mode without keeping history (``no_grad``).

        Args:
            x: input batch, e.g. ``(batch, time, features)``.
            batch_size: when given (int >= 1), run ``x`` in slices of that many
                samples (each slice vectorized) and concatenate the outputs along
                the batch axis; the result equals the whole-batch one.

        The train/eval mode of every layer is restored afterwards; ``backward``
        cannot follow a ``predict``. Stateful layers carry their state as in
        ``forward``, so with ``batch_size`` each slice would start from the
        previous slice's final state: predict stateful models without it.
        """
        if batch_size is not None:
            batch_size = positive_int(batch_size, "batch_size", "Sequential.predict")
        if not isinstance(x, np.ndarray):
            try:
                x = np.asarray(x)
            except (ValueError, TypeError) as err:
                raise TypeError(
                    f"Sequential.predict: x must be a numeric array, got {type(x).__name__} ({err})"
                ) from None
        if x.ndim == 0:
            raise ValueError(f"Sequential.predict: x must have a batch axis, got shape {fmt_shape(x.shape)}")
        modes = [(layer, layer.training) for layer in self.sublayers()]
        self.eval()
        try:
            with no_grad():
                n = x.shape[0]
                if batch_size is None or batch_size >= n:
                    return self.forward(x)
                outs = [self.forward(x[i : i + batch_size]) for i in range(0, n, batch_size)]
                return np.concatenate(outs, axis=0)
        finally:
            for layer, mode in modes:
                layer.training = mode

    def reset_states(self):
        """Reset the carried state of every stateful layer below (back to zeros)."""
        for layer in layers_with_state(self):
            layer.reset_states()

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
        """
        shape = _infer_input_shape(self) if input_shape is None else _check_input_shape(input_shape)
        shown = "?" if shape is None else fmt_shape(shape)
        header = f"Sequential: input shape {shown}, dtype {np.dtype(self.dtype).name}"
        rows = []
        for i, layer in enumerate(self.layers):
            if shape is not None:
                shape = (None,) + tuple(layer.compute_output_shape(shape))[1:]
            name = type(layer).__name__
            cell = getattr(layer, "cell", None)
            if isinstance(cell, Layer):
                name += f"({type(cell).__name__})"
            count = sum(p.size for p in layer.parameters())
            rows.append((f"{i} {name}", "?" if shape is None else fmt_shape(shape), f"{count:,}"))
        total = sum(p.size for p in self.parameters())
        head = ("Layer", "Output shape", "Params")
        w = [max(len(r[k]) for r in rows + [head]) for k in range(3)]
        rule = "=" * (sum(w) + 4)

        def line(r):
            return f"{r[0]:<{w[0]}}  {r[1]:<{w[1]}}  {r[2]:>{w[2]}}"

        out = [header, rule, line(head), rule, *(line(r) for r in rows), rule, f"Total params: {total:,}"]
        return "\n".join(out)

    # ---- configuration -------------------------------------------------------------
    def get_config(self):
        """``{"layers": [{"class_name": ..., "config": layer.get_config()}, ...]}``."""
        return {"layers": [{"class_name": type(layer).__name__, "config": layer.get_config()} for layer in self.layers]}

    @classmethod
    def from_config(cls, config):
        """Build a Sequential from ``get_config()``'s dict; layer classes are looked
        up by name (``ValueError`` for an unknown one) and built with their
        ``from_config``. New layers get fresh initial weights."""
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

    # ---- files -------------------------------------------------------------------------
    def save(self, path):
        """Save architecture and weights to ONE file at ``path`` (used as is; use ``.npz``).

        The file is an npz archive: each parameter under its state-dict name, plus
        ``__config__``, JSON text with the format name and version, minidl's version,
        the dtype and ``get_config()``. No pickle. The write is atomic (temporary
        file in the same folder, then ``os.replace``). Carried RNN states are not
        saved. A layer whose ``__init__`` takes arguments that its ``get_config`` does
        not return is refused (``TypeError``), never saved with defaults. Reload with
        ``minidl.load_model(path)``.
        """
        save_model(self, path)


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
