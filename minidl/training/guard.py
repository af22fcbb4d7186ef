"""The update guard: what keeps a model's weights sound while ``fit`` trains it.

``TBPTTTrainer`` makes every update as zero grads, backward, clip, step; the guard
stands around that core and decides what happens when something goes wrong:

1. a non-finite loss stops training before the backward pass (``check_loss``);
2. a non-finite gradient norm stops it before the optimizer step (``step``);
3. the optimizer step itself (``step``) is all or nothing:

   - a step that makes a weight NaN or inf is undone: every parameter gets back the
     value it had before the step (numpy's overflow warnings inside the step are
     silenced, so ``-W error`` or ``np.errstate(raise)`` cannot leave it half done);
   - Ctrl-C arriving during the step is held until the step ends, then raised as
     ``KeyboardInterrupt``. Anywhere else (forward, loss, backward, clipping,
     callbacks) it raises at once, between two updates.

Each stop is a ``FloatingPointError`` naming the epoch and batch (1-based). The
optimizer's own state is not rolled back.

Ctrl-C is deferred only when Python's default SIGINT handler
(``signal.default_int_handler``) is in place and ``fit`` runs in the main thread:
``armed()`` then installs the guard's handler once for the whole ``fit`` and puts
the default one back at the end. A program that installed its own handler, or
ignores SIGINT (``SIG_IGN``), keeps it untouched, and nothing is deferred.
"""

import contextlib
import math
import signal
import threading

import numpy as np


class UpdateGuard:
    """Guards the updates of one model's ``params`` (a list of ``Parameter``).

    Use: ``with guard.armed():`` around a whole ``fit``; ``guard.at(epoch, batch)``
    before each mini-batch (0-based; for the messages); ``guard.check_loss(loss)``
    after each loss forward; ``guard.step(optimizer.step, grad_norm)`` for each step.
    """

    def __init__(self, params):
        self.params = list(params)
        self.epoch = self.batch = 0
        self._before = None  # the weights from before the current step, while armed
        self._in_step = False
        self._interrupted = False

    def at(self, epoch, batch):
        """Where training is (0-based), for the error messages."""
        self.epoch, self.batch = epoch, batch

    def _where(self):
        return f"epoch {self.epoch + 1}, batch {self.batch + 1}"

    @contextlib.contextmanager
    def armed(self):
        """For one ``fit``: the rollback buffers, and the SIGINT handler when the default one is in place."""
        self._before = [np.empty_like(p.data) for p in self.params]
        handler = self._on_sigint
        install = threading.current_thread() is threading.main_thread() and (
            signal.getsignal(signal.SIGINT) is signal.default_int_handler
        )
        if install:
            signal.signal(signal.SIGINT, handler)
        try:
            yield self
        finally:
            if install and signal.getsignal(signal.SIGINT) is handler:
                signal.signal(signal.SIGINT, signal.default_int_handler)
            self._before = None

    def _on_sigint(self, signum, frame):
        if not self._in_step:
            raise KeyboardInterrupt
        self._interrupted = True

    # ---- the checks ----------------------------------------------------------------
    def check_loss(self, loss):
        """Return ``loss`` as a float; a NaN or inf stops training before any gradient is computed."""
        loss = float(loss)
        if not math.isfinite(loss):
            raise FloatingPointError(
                f"fit: the loss is {loss} at {self._where()}; "
                "training stopped and the model keeps the weights of the last finite update"
            )
        return loss

    def step(self, optimizer_step, grad_norm):
        """Run ``optimizer_step()`` all or nothing, after checking ``grad_norm`` (the clipper's total norm)."""
        grad_norm = float(grad_norm)
        if not math.isfinite(grad_norm):
            raise FloatingPointError(
                f"fit: the gradient norm is {grad_norm} at {self._where()}; "
                "training stopped before the update and the model keeps its last finite weights"
            )
        for before, p in zip(self._before, self.params):
            np.copyto(before, p.data)
        self._in_step, self._interrupted = True, False
        try:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                optimizer_step()
            finite = all(np.isfinite(p.data).all() for p in self.params)
            if not finite:
                for before, p in zip(self._before, self.params):
                    np.copyto(p.data, before)
        finally:
            self._in_step = False
        if self._interrupted:
            self._interrupted = False
            raise KeyboardInterrupt
        if not finite:
            raise FloatingPointError(
                f"fit: the update at {self._where()} made weights non-finite (learning rate too large?); "
                "the model keeps the weights from before it (the optimizer's state is not rolled back)"
            )
