"""TBPTTTrainer: Williams & Peng's truncated backpropagation through time, TBPTT(k1, k2)."""

import math

import numpy as np

from .._checks import as_float_array, flag, fmt_shape, non_negative_int, positive_int
from .._checks import seed as checked_seed
from .._grad_mode import no_grad
from .._random import get_rng
from ..io import load_checkpoint, save_checkpoint
from ..layers.layer import Layer, layers_with_state
from ..optim.clipping import total_grad_norm
from .callbacks import CallbackList
from .guard import UpdateGuard
from .history import History
from .metrics import Tally, resolve
from .progress import Progress
from .windows import tbptt_windows


class TBPTTTrainer:
    """Trains a sequence model with truncated backpropagation through time.

    Args:
        model: a ``Layer`` (usually ``Sequential``) mapping ``x: (B, T, F)`` to
            ``(B, T, out)`` (many-to-many) or ``(B, out)`` (many-to-one).
        loss: a ``Loss`` (``forward(pred, target) -> float``, ``backward()``).
        optimizer: an ``Optimizer`` built on the model's parameters.
        clipper: optional ``GradientClipper`` applied before every step.
        k1: steps between updates (chunk length); default the whole sequence.
        k2: steps backpropagated through at each update, ``k2 >= k1``; default ``k1``.
        seed: seed of the trainer's own generator (shuffling); default drawn from
            the generator seeded by ``minidl.set_seed``.

    Each mini-batch starts from a zero state and is processed in chunks of ``k1``
    steps. At the end ``e`` of a chunk that began at ``p``, the steps
    ``[max(0, e-k2), e)`` run forward from the state stored at ``max(0, e-k2)``
    (a constant), the loss is taken on the outputs of ``[p, e)``, and the gradient
    of that loss through the whole window makes one clipped optimizer step. States
    are stored from the most recent forward through each step; the state reached
    at ``e`` carries on. Many-to-one targets ``y: (B, out)`` give one update per
    batch on the last output, backpropagated through the last ``k2`` steps (all
    steps when ``k2`` is not given; ``k1`` plays no part); the steps before run
    forward without keeping history.
    """

    def __init__(self, model, loss, optimizer, clipper=None, k1=None, k2=None, seed=None):
        if not isinstance(model, Layer):
            raise TypeError(f"TBPTTTrainer: model must be a Layer (e.g. Sequential), got {type(model).__name__}")
        for name, obj, methods in (("loss", loss, ("forward", "backward")), ("optimizer", optimizer, ("step", "zero_grad"))):
            if not all(callable(getattr(obj, m, None)) for m in methods):
                raise TypeError(f"TBPTTTrainer: {name} must have {' and '.join(methods)}, got {type(obj).__name__}")
        if clipper is not None and not callable(clipper):
            raise TypeError(f"TBPTTTrainer: clipper must be a GradientClipper or None, got {type(clipper).__name__}")
        self.k1 = None if k1 is None else positive_int(k1, "k1", "TBPTTTrainer")
        self.k2 = None if k2 is None else positive_int(k2, "k2", "TBPTTTrainer")
        if self.k1 is not None and self.k2 is not None and self.k2 < self.k1:
            raise ValueError(f"TBPTTTrainer: k2 must be >= k1, got k1={self.k1}, k2={self.k2}")
        seed = checked_seed(seed, "seed", "TBPTTTrainer", allow_none=True)
        if seed is None:
            seed = int(get_rng().integers(2**63))
        if self.k1 is not None or self.k2 is not None:
            whole = [type(l).__name__ for l in model.sublayers() if not l.supports_truncation]
            if whole:
                raise ValueError(
                    f"TBPTTTrainer: {whole[0]} reads each sequence in both directions and cannot be truncated; "
                    "use full BPTT (k1=None, k2=None)"
                )
        self.model, self.loss, self.optimizer, self.clipper = model, loss, optimizer, clipper
        self.rng = np.random.default_rng(seed)
        self.epoch = 0
        self.updates = 0  # optimizer steps so far (kept by checkpoints)
        self.stop_training = False
        self.history = History()
        self._params = model.parameters()
        self._stateful = layers_with_state(model)  # the recurrent-state protocol: see Layer
        self._guard = UpdateGuard(self._params)
        self._callbacks = CallbackList((), self)

    # ---- public ------------------------------------------------------------------
    def fit(self, x, y, epochs=1, batch_size=32, validation_data=None, shuffle=True, callbacks=(), verbose=1,
            metrics=()):
        """Train for ``epochs`` more epochs; returns a ``History`` of this call.

        Shapes: ``x: (N, T, F)``; ``y: (N, T, out)`` (many-to-many) or ``(N, out)``
        (many-to-one). The last batch may be smaller and the last chunk shorter.
        ``metrics``: names (``"accuracy"``, ``"mae"``) or callables
        ``metric(pred, target, mask) -> float`` (``minidl.training.metrics``), computed on
        the outputs each update's loss is taken on; ``History`` gets a list per metric
        under its name (and ``"val_<name>"`` with validation data).
        Every update runs inside the guard (``training/guard.py``): a non-finite loss,
        gradient norm or weight stops ``fit`` with a ``FloatingPointError``, and Ctrl-C
        never interrupts an optimizer step halfway.
        """
        x, y = self._check_data(x, y, "x", "y")
        epochs = non_negative_int(epochs, "epochs", "fit")
        batch_size = positive_int(batch_size, "batch_size", "fit")
        validation = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise TypeError("fit: validation_data must be a tuple (x_val, y_val)")
            validation = self._check_data(*validation_data, "validation x", "validation y")
        if _has_time_axis(y) and self.k1 is None and self.k2 is not None and self.k2 < x.shape[1]:
            raise ValueError(
                f"fit: many-to-many training with k2={self.k2} needs k1 <= k2, but k1 defaults to the whole "
                f"sequence ({x.shape[1]} steps); pass k1"
            )
        shuffle = flag(shuffle, "shuffle", "fit")
        metric_specs, metrics = metrics, resolve(metrics, "fit")
        n_batches = math.ceil(len(x) / batch_size)
        progress = Progress(verbose, self.epoch + epochs, n_batches)
        cbs = self._callbacks = CallbackList(callbacks, self)
        history = History()
        self.history = history
        self.stop_training = False
        self.model.train()
        cbs.on_train_begin()
        try:
            with self._guard.armed():
                for _ in range(epochs):
                    epoch = self.epoch
                    cbs.on_epoch_begin(epoch)
                    progress.epoch_begin(epoch, epoch + 1)
                    logs = self._fit_epoch(x, y, batch_size, shuffle, epoch, progress, metrics)
                    if validation is not None:
                        val = self.evaluate(*validation, batch_size=batch_size, metrics=metric_specs)
                        logs.update({f"val_{k}": v for k, v in (val if metrics else {"loss": val}).items()})
                        self.model.train()
                    self.epoch += 1
                    history.record(epoch, logs)
                    cbs.on_epoch_end(epoch, logs)
                    progress.epoch_end(epoch + 1, logs)
                    if self.stop_training:
                        break
            cbs.on_train_end()
        finally:
            progress.close()
            self._reset_states()
            self._callbacks = CallbackList((), self)
        return history

    def evaluate(self, x, y, batch_size=None, metrics=()):
        """Loss over ``(x, y)`` on whole sequences (no truncation), eval mode, no history.

        Returns the mean over all batches, weighted by batch size; with ``metrics`` (as in
        ``fit``), a dict ``{"loss": ..., name: ...}`` instead.
        """
        x, y = self._check_data(x, y, "x", "y", owner="evaluate")
        batch_size = len(x) if batch_size is None else positive_int(batch_size, "batch_size", "evaluate")
        metrics = resolve(metrics, "evaluate")
        tally = self._evaluate(x, y, batch_size, metrics)
        return tally.logs() if metrics else tally.loss

    def _evaluate(self, x, y, batch_size, metrics):
        was_training = self.model.training
        self.model.eval()
        tally = Tally(metrics, getattr(self.loss, "ignore_index", None))
        try:
            with no_grad():
                for start in range(0, len(x), batch_size):
                    xb, yb = x[start:start + batch_size], y[start:start + batch_size]
                    self._reset_states()
                    out = self.model.forward(xb)
                    tally.add(float(self.loss.forward(out, yb)), len(xb), out, yb)
        finally:
            self._reset_states()
            self.model.train(was_training)
        return tally

    def save_checkpoint(self, path):
        """Save weights, optimizer state, epoch count and generator state to ``path`` (npz + JSON).

        Training N epochs, saving, loading into a fresh trainer and training M more
        gives bit-identical weights to N+M epochs in one go. The write is atomic.
        """
        save_checkpoint(self, path)

    def load_checkpoint(self, path):
        """Restore what ``save_checkpoint`` stored; a file that does not fit raises ``ValueError``
        and leaves the trainer as it was."""
        load_checkpoint(self, path)

    # ---- one epoch, one mini-batch ------------------------------------------------------
    def _fit_epoch(self, x, y, batch_size, shuffle, epoch, progress, metrics):
        """The updates of one epoch; returns its logs, ``{"loss": mean training loss, metric: ...}``."""
        n = len(x)
        order = self.rng.permutation(n) if shuffle else None
        tally = Tally(metrics, getattr(self.loss, "ignore_index", None))
        for b in range(math.ceil(n / batch_size)):
            self._callbacks.on_batch_begin(b)
            sel = slice(b * batch_size, (b + 1) * batch_size)
            idx = sel if order is None else order[sel]
            self._guard.at(epoch, b)
            loss_sum, elems = tally.loss_sum, tally.loss_count
            self._train_batch(x[idx], y[idx], tally)
            progress.batch_end(tally.loss)
            self._callbacks.on_batch_end(b, {"loss": (tally.loss_sum - loss_sum) / (tally.loss_count - elems)})
            if self.stop_training:
                break
        return tally.logs()

    def _train_batch(self, xb, yb, tally):
        """Run the updates of one mini-batch, adding each chunk's loss and metrics to ``tally``."""
        self._reset_states()
        if not _has_time_axis(yb):
            return self._many_to_one(xb, yb, tally)
        windows = tbptt_windows(xb.shape[1], self.k1, self.k2)
        start_state = None  # the stored state at the window start; None is the zero state
        for n, (s, p, e) in enumerate(windows):
            self._set_states(start_state)
            out = self.model.forward(xb[:, s:e])
            if out.ndim != 3 or out.shape[1] != e - s:
                raise ValueError(
                    f"fit: y has a time axis (many-to-many) but the model output has shape {fmt_shape(out.shape)}; "
                    "use return_sequences=True on the last RNN"
                )
            pred, target = out[:, p - s:], yb[:, p:e]
            loss = self._guard.check_loss(self.loss.forward(pred, target))
            grad_out = np.zeros_like(out)
            grad_out[:, p - s:] = self.loss.backward()
            self._update(grad_out, loss)
            tally.add(loss, target.size, pred, target)
            if n + 1 < len(windows):
                # the next window starts within (s, e]: its state comes from this forward, the most recent
                s_next = windows[n + 1][0]
                start_state = None if s_next == 0 else [r.state_at(s_next - s) for r in self._stateful]

    def _many_to_one(self, xb, yb, tally):
        T = xb.shape[1]
        s = 0 if self.k2 is None else max(0, T - self.k2)
        if s > 0:
            with no_grad():
                self.model.forward(xb[:, :s])
            self._set_states([r.state_at(s) for r in self._stateful])
        out = self.model.forward(xb[:, s:])
        loss = self._guard.check_loss(self.loss.forward(out, yb))
        self._update(self.loss.backward(), loss)
        tally.add(loss, yb.size, out, yb)

    def _update(self, grad_out, loss):
        """One update from ``grad_out``, the gradient of the window's loss w.r.t. the model output."""
        self.model.zero_grad()
        self.model.backward(grad_out)
        norm = self.clipper(self._params) if self.clipper is not None else total_grad_norm(self._params)
        self._guard.step(self.optimizer.step, norm)
        self.updates += 1
        self._callbacks.on_update_end(self.updates, {"loss": loss, "grad_norm": float(norm)})

    # ---- helpers -----------------------------------------------------------------------
    def _set_states(self, states):
        for i, r in enumerate(self._stateful):
            r.set_state(None if states is None else states[i])

    def _reset_states(self):
        for r in self._stateful:
            r.reset_states()

    def _check_data(self, x, y, xname, yname, owner="fit"):
        """Validate and convert one data set.

        ``x``: floats ``(batch, time, features)``, or integer tokens ``(batch, time)`` for a
        model that starts with an ``Embedding``. ``y``: floats ``(batch, out)`` or
        ``(batch, time, out)``, or integer class indices ``(batch,)`` or ``(batch, time)``
        (for ``CrossEntropyLoss``). The time axis of ``y`` makes it many-to-many.
        """
        dtype = self.model.dtype
        x, y = _as_data(x, xname, dtype, owner), _as_data(y, yname, dtype, owner)
        x_tokens, y_classes = x.dtype.kind in "iu", y.dtype.kind in "iu"
        if x.ndim != (2 if x_tokens else 3):
            expected = "(batch, time) of integer tokens" if x_tokens else "(batch, time, features)"
            raise ValueError(f"{owner}: {xname} must be {expected}, got shape {fmt_shape(x.shape)}")
        if y.ndim not in ((1, 2) if y_classes else (2, 3)):
            expected = ("(batch,) or (batch, time) of class indices" if y_classes else
                        "(batch, out) for many-to-one or (batch, time, out) for many-to-many")
            raise ValueError(f"{owner}: {yname} must be {expected}, got shape {fmt_shape(y.shape)}")
        if len(x) != len(y):
            raise ValueError(f"{owner}: {xname} and {yname} must have the same number of samples, got {len(x)} and {len(y)}")
        if x.size == 0 or y.size == 0:
            raise ValueError(f"{owner}: {xname} and {yname} must not be empty, got shapes {fmt_shape(x.shape)} and {fmt_shape(y.shape)}")
        if _has_time_axis(y) and y.shape[1] != x.shape[1]:
            raise ValueError(f"{owner}: {yname} has {y.shape[1]} steps but {xname} has {x.shape[1]} (many-to-many needs the same)")
        for name, arr in ((xname, x), (yname, y)):
            if arr.dtype.kind == "f" and not np.isfinite(arr).all():
                raise ValueError(f"{owner}: {name} contains NaN or infinite values")
        return x, y


def _as_data(arr, name, dtype, owner):
    """``arr`` as an array: integers stay integer (tokens, class indices), the rest becomes ``dtype``."""
    try:
        probe = np.asarray(arr)
    except (ValueError, TypeError):  # ragged nested lists: as_float_array names the problem
        probe = None
    if probe is not None and probe.dtype.kind in "iu":
        return probe
    return as_float_array(arr, name, owner, dtype)


def _has_time_axis(y):
    """True for many-to-many targets: ``(batch, time, out)`` floats or ``(batch, time)`` class indices."""
    return y.ndim == (2 if y.dtype.kind in "iu" else 3)
