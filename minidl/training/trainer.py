"""TBPTTTrainer: Williams & Peng's truncated backpropagation through time, TBPTT(k1, k2)."""

import math

import numpy as np

from .._checks import flag, fmt_shape, non_negative_int, positive_int
from .._checks import seed as checked_seed
from .._grad_mode import no_grad
from .._random import get_rng
from ..io import load_checkpoint, save_checkpoint
from ..layers.layer import Layer, layers_with_state
from ..optim.clipping import total_grad_norm
from .callbacks import CallbackList
from .guard import UpdateGuard
from .history import History
from .inputs import Reading, check_data, check_truncation, has_time_axis, real_elements, validation_set
from .metrics import Tally, resolve
from .position import EpochPosition
from .progress import Progress
from .windows import tbptt_windows


class TBPTTTrainer:
    """Trains a sequence model with truncated backpropagation through time.

    Args:
        model: a ``Layer`` (usually ``Sequential``) mapping ``x: (B, T, F)`` to
            ``(B, T, out)`` (many-to-many) or ``(B, out)`` (many-to-one).
        loss: a ``Loss`` (``forward(pred, target) -> float``, ``backward()``).
        optimizer: an ``Optimizer`` built on the model's parameters.
        clipper: a ``GradientClipper`` applied before every step, or None (the default).
        k1: int >= 1, steps between updates (chunk length); default None, the whole sequence.
        k2: int >= ``k1``, steps backpropagated through at each update; default None, ``k1``.
        seed: seed of the trainer's own generator (shuffling); default drawn from
            the generator seeded by ``minidl.set_seed``.

    Raises:
        TypeError: ``model`` is not a ``Layer``, ``loss`` lacks ``forward``/``backward``,
            ``optimizer`` lacks ``step``/``zero_grad``, ``clipper`` is not callable or
            None, or ``k1``, ``k2``, ``seed`` is not an int.
        ValueError: ``k1`` or ``k2`` < 1, ``k2 < k1``, a negative ``seed``, or truncation
            (``k1``/``k2`` given) of a model holding a layer that cannot be truncated
            (``Bidirectional``).

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
        self.epoch, self.updates = 0, 0  # updates: optimizer steps so far (kept by checkpoints)
        self.stop_training = False
        self.history = History()
        self._params = model.parameters()  # zeroed before each update (model.zero_grad() walks the layers)
        self._stateful = layers_with_state(model)  # the recurrent-state protocol: see Layer
        self._guard = UpdateGuard(self._params)
        self._callbacks = CallbackList((), self)
        self._position = None  # the EpochPosition fit is at; None between epochs
        self._resume = None  # the position a loaded mid-epoch checkpoint stored; the next epoch starts there

    # ---- public ------------------------------------------------------------------
    def fit(self, x, y, epochs=1, batch_size=32, validation_data=None, shuffle=True, callbacks=(), verbose=1,
            metrics=(), mask=None):
        """Train for ``epochs`` more epochs.

        The last batch may be smaller and the last chunk shorter. Every update runs inside the
        guard (``training/guard.py``): a non-finite loss, gradient norm or weight stops ``fit``
        with a ``FloatingPointError``; Ctrl-C never interrupts an optimizer step halfway.

        Args:
            x: ``(N, T, F)``, or a tuple of batch-first arrays for a ``Model`` of several
                inputs (without truncation).
            y: ``(N, T, out)`` (many-to-many; without truncation its time length may differ
                from x's: sequence-to-sequence) or ``(N, out)`` (many-to-one); class
                indices without the last axis for ``CrossEntropyLoss``.
            epochs: int >= 0, the epochs to run; default 1.
            batch_size: int >= 1; default 32.
            validation_data: ``(x_val, y_val)`` or ``(x_val, y_val, mask_val)``, evaluated
                after each epoch into ``"val_loss"`` (and ``"val_<metric>"``), or None.
            shuffle: bool, shuffle the samples each epoch (the trainer's generator);
                default True.
            callbacks: iterable of ``Callback`` (and schedules: an ``LRScheduler`` steps
                each epoch, a ``ReduceLROnPlateau`` on its metric); default none.
            verbose: 0 silent, 1 a progress bar per epoch (the default), 2 one line per epoch.
            metrics: names (``"accuracy"``, ``"mae"``) or callables
                ``metric(pred, target, mask) -> float`` (``minidl.training.metrics``),
                computed on the outputs each update's loss is taken on.
            mask: bool ``(N, T)``, True at real steps (``minidl.training.inputs``),
                shuffled, batched and cut into chunks with ``x``; a chunk whose targets are
                all masked makes no update. None: every step is real.

        Returns:
            A ``History`` of this call: a list per epoch for ``"loss"``, each metric, their
            ``"val_"`` versions and ``"lr"`` with a schedule.

        Raises:
            TypeError: an argument of the wrong type (arrays, ints, ``shuffle``,
                ``validation_data`` not a 2- or 3-tuple, an unknown kind of metric or callback).
            ValueError: shapes that do not fit the model, the loss or each other, an int
                out of range, ``verbose`` not 0, 1 or 2, an unknown metric name, or
                many-to-many training with ``k2`` set but ``k1`` left to the whole sequence.
            FloatingPointError: a non-finite loss, gradient norm or weight.
        """
        data = self._check_data(x, y, mask, ("x", "y"), "fit")
        epochs = non_negative_int(epochs, "epochs", "fit")
        batch_size = positive_int(batch_size, "batch_size", "fit")
        validation = validation_set(validation_data, self._check_data)
        check_truncation(data, self.k1, self.k2)
        shuffle = flag(shuffle, "shuffle", "fit")
        metric_specs, metrics = metrics, resolve(metrics, "fit")
        n_batches = math.ceil(len(data) / batch_size)
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
                    logs = self._fit_epoch(data, batch_size, shuffle, epoch, progress, metrics)
                    if validation is not None:
                        vx = validation.xs if len(validation.xs) > 1 or isinstance(validation_data[0], (tuple, list)) \
                            else validation.xs[0]
                        val = self.evaluate(vx, validation.y, batch_size=batch_size, metrics=metric_specs,
                                            mask=validation.mask)
                        logs.update({f"val_{k}": v for k, v in (val if metrics else {"loss": val}).items()})
                        self.model.train()
                    self.epoch += 1
                    self._position = None  # kept through validation: a checkpoint saved there resumes after it
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

    def evaluate(self, x, y, batch_size=None, metrics=(), mask=None):
        """Loss over ``(x, y)`` on whole sequences (no truncation), eval mode, no history.

        Args:
            x: the inputs, as in ``fit``.
            y: the targets, as in ``fit``.
            batch_size: int >= 1, or None (the default) for one batch of everything.
            metrics: as in ``fit``; default none.
            mask: bool ``(N, T)`` as in ``fit``, or None.

        Returns:
            The mean loss over all batches, weighted by their number of real target
            elements, a float; with ``metrics``, a dict ``{"loss": ..., name: ...}``.

        Raises:
            TypeError: an argument of the wrong type (as in ``fit``).
            ValueError: shapes that do not fit, ``batch_size < 1``, an unknown metric, or
                every target masked.
        """
        data = self._check_data(x, y, mask, ("x", "y"), "evaluate", truncated=False)
        batch_size = len(data) if batch_size is None else positive_int(batch_size, "batch_size", "evaluate")
        metrics = resolve(metrics, "evaluate")
        was_training = self.model.training
        self.model.eval()
        tally = Tally(metrics, getattr(self.loss, "ignore_index", None))
        try:
            with no_grad():
                for start in range(0, len(data), batch_size):
                    batch = data.take(slice(start, start + batch_size))
                    self._reset_states()
                    out, loss_mask = self._forward(batch.xs, batch.mask, batch.y)
                    if loss_mask is None or loss_mask.any():
                        loss = float(self._loss_of(out, batch.y, loss_mask))
                        tally.add(loss, real_elements(batch.y, loss_mask), out, batch.y, loss_mask)
        finally:
            self._reset_states()
            self.model.train(was_training)
        if not tally.loss_count:
            raise ValueError("evaluate: every target is masked; there is nothing to evaluate")
        return tally.logs() if metrics else tally.loss

    def save_checkpoint(self, path):
        """Save everything training depends on to ``path`` (npz + JSON; the write is atomic).

        Stored: weights, optimizer state, epoch and update counts, every generator training
        draws from (shuffling, Dropout's, any a layer holds), the architecture, dtype,
        optimizer, clipper, loss, ``k1``/``k2`` and the history: N epochs, save, load, M more
        give bit-identical weights to N+M in one go. Between batches it also stores the place
        in the epoch (the resumed ``fit`` finishes it exactly); inside a batch
        (``on_update_end``) it is refused (the remaining chunks and states are not stored).

        Args:
            path: str or path-like, the file (used as is; ``.npz`` is customary).

        Raises:
            TypeError: ``path`` is not a str or path-like, or a layer config is not JSON.
            ValueError: called inside a batch (see above).
        """
        position = self._position
        if position is not None and position.in_batch:
            raise ValueError(
                f"save_checkpoint({str(path)!r}): called inside batch {position.batch} of epoch {self.epoch} "
                "(from on_update_end, or after a fit that stopped inside a batch); a checkpoint there could not "
                "resume exactly. Save from on_batch_end or on_epoch_end"
            )
        save_checkpoint(self, path, position=self._resume if position is None else position.state())

    def load_checkpoint(self, path):
        """Restore what ``save_checkpoint`` stored; the optimizer's ``lr`` is taken from the checkpoint.

        Args:
            path: str or path-like, a file ``save_checkpoint`` wrote.

        Raises:
            FileNotFoundError: ``path`` does not exist.
            TypeError: ``path`` is not a str or path-like.
            ValueError: a checkpoint that cannot resume exactly here (another architecture,
                dtype, optimizer class or hyperparameter, clipper, loss, ``k1``/``k2``;
                damaged values), naming what differs; the trainer is left as it was.
        """
        position = load_checkpoint(self, path)
        self._position = None
        self._resume = position

    # ---- one epoch, one mini-batch ------------------------------------------------------
    def _fit_epoch(self, data, batch_size, shuffle, epoch, progress, metrics):
        """The updates of one epoch; returns its logs, ``{"loss": mean training loss, metric: ...}``.

        ``self._position`` says where in the epoch training is (what a checkpoint stores; ``fit``
        clears it when it counts the epoch); an epoch resumed from a mid-epoch checkpoint starts
        at its batch, with its permutation and the running sums of its logs."""
        n = len(data)
        tally = Tally(metrics, getattr(self.loss, "ignore_index", None))
        if self._resume is not None:
            position = EpochPosition.resumed(self._resume, n, batch_size, shuffle, tally, epoch)
            self._resume = None
        else:
            position = EpochPosition(n, batch_size, shuffle, self.rng.permutation(n) if shuffle else None, tally)
        self._position, order = position, position.order
        for b in range(position.batch, math.ceil(n / batch_size)):
            self._callbacks.on_batch_begin(b)
            sel = slice(b * batch_size, (b + 1) * batch_size)
            self._guard.at(epoch, b)
            loss_sum, elems = tally.loss_sum, tally.loss_count
            position.in_batch = True
            self._train_batch(data.take(sel if order is None else order[sel]), tally)
            position.batch, position.in_batch = b + 1, False
            done = tally.loss_count - elems
            progress.batch_end(tally.loss)
            self._callbacks.on_batch_end(b, {"loss": (tally.loss_sum - loss_sum) / done if done else math.nan})
            if self.stop_training:
                break
        return tally.logs()

    def _train_batch(self, batch, tally):
        """Run the updates of one mini-batch, adding each chunk's loss and metrics to ``tally``."""
        self._reset_states()
        if self.k1 is None and self.k2 is None:  # no truncation: one update on the whole output
            out, loss_mask = self._forward(batch.xs, batch.mask, batch.y)
            self._learn(out, batch.y, loss_mask, tally)
        elif batch.many_to_many:
            self._train_windows(batch.xs[0], batch.y, batch.mask, tally)
        else:
            self._many_to_one(batch.xs[0], batch.y, batch.mask, tally)

    def _train_windows(self, xb, yb, mb, tally):
        """TBPTT(k1, k2) over one many-to-many batch: one update per chunk."""
        windows = tbptt_windows(xb.shape[1], self.k1, self.k2)
        start_state = None  # the stored state at the window start; None is the zero state
        for n, (s, p, e) in enumerate(windows):
            self._set_states(start_state)
            out, loss_mask = self._forward((xb[:, s:e],), None if mb is None else mb[:, s:e], yb[:, s:e])
            chunk_mask = None if loss_mask is None else loss_mask[:, p - s:]
            self._learn(out, yb[:, p:e], chunk_mask, tally, start=p - s)
            if n + 1 < len(windows):
                # the next window starts within (s, e]: its state comes from this forward, the most recent
                s_next = windows[n + 1][0]
                start_state = None if s_next == 0 else [r.state_at(s_next - s) for r in self._stateful]

    def _many_to_one(self, xb, yb, mb, tally):
        """Many-to-one with ``k2``: the steps before the last ``k2`` run forward without history."""
        T = xb.shape[1]
        s = 0 if self.k2 is None else max(0, T - self.k2)
        if s > 0:
            with no_grad():
                self._forward((xb[:, :s],), None if mb is None else mb[:, :s], yb)
            self._set_states([r.state_at(s) for r in self._stateful])
        out, _ = self._forward((xb[:, s:],), None if mb is None else mb[:, s:], yb)
        self._learn(out, yb, None, tally)

    def _forward(self, xs, mask, y):
        """The model's output for the inputs ``xs``, and the mask the loss takes on it.

        With one input, ``mask`` is the input's mask and goes to the model; the loss then
        takes the model's own mask of its output (``output_mask``) or, for a many-to-many
        output aligned with the input, ``mask`` itself. With several inputs, ``mask`` is the
        targets' mask and goes to the loss alone.
        """
        if len(xs) > 1 or mask is None:
            out = self.model.forward(*xs)
            given = mask if len(xs) > 1 else None
        else:
            if not self.model.takes_mask:
                raise TypeError(f"fit: a mask was given, but {type(self.model).__name__}.forward takes no mask "
                                "(takes_mask is False); use a Sequential or a layer that takes one")
            out = self.model.forward(xs[0], mask=mask)
            given = mask
        if has_time_axis(y) and out.ndim < 3:
            raise ValueError(
                f"fit: y has a time axis (many-to-many) but the model output has shape {fmt_shape(out.shape)}; "
                f"use return_sequences=True on the last RNN; {Reading(self.loss).describe(y)}"
            )
        if has_time_axis(y) and out.shape[1] != y.shape[1]:
            raise ValueError(f"fit: y has {y.shape[1]} steps but the model's output has {out.shape[1]} "
                             f"(x has {xs[0].shape[1] if xs[0].ndim > 1 else '?'}); {Reading(self.loss).describe(y)}")
        own = getattr(self.model, "output_mask", None)
        loss_mask = own if own is not None else given
        if loss_mask is not None and (not has_time_axis(y) or out.ndim < 2 or loss_mask.shape != out.shape[:2]):
            loss_mask = None  # the output has no time axis (many-to-one): every target is real
        return out, loss_mask

    def _loss_of(self, pred, target, mask):
        """The loss; a mask is passed only when there is one (a loss written as
        ``forward(pred, target)`` trains unmasked data unchanged)."""
        return self.loss.forward(pred, target) if mask is None else self.loss.forward(pred, target, mask)

    def _learn(self, out, target, mask, tally, start=0):
        """One update from the loss on ``out[:, start:]``; none when every target is masked."""
        if mask is not None and not mask.any():
            return  # padding never moves the weights, not even through momentum
        pred = out[:, start:] if start else out
        loss = self._guard.check_loss(self._loss_of(pred, target, mask))
        if start:
            grad_out = np.zeros_like(out)
            grad_out[:, start:] = self.loss.backward()
        else:
            grad_out = self.loss.backward()
        self._update(grad_out, loss)
        tally.add(loss, real_elements(target, mask), pred, target, mask)

    def _update(self, grad_out, loss):
        """One update from ``grad_out``, the gradient of the window's loss w.r.t. the model output."""
        for p in self._params:
            p.zero_grad()
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

    def _check_data(self, x, y, mask, names, owner, truncated=None):
        truncated = (self.k1 is not None or self.k2 is not None) if truncated is None else truncated
        return check_data(x, y, mask, self.model.dtype, names, owner, truncated, Reading(self.loss))
