"""Progress reporting for ``fit``: a tqdm bar per epoch, or one line per epoch."""

import sys
import time


def _format_logs(logs):
    return " - ".join(f"{k}: {v:.6g}" for k, v in logs.items())


class Progress:
    """``verbose=0`` silent; ``1`` a tqdm bar per epoch (one line per epoch when
    stderr is not a terminal, e.g. in CI logs); ``2`` one line per epoch."""

    def __init__(self, verbose, epochs, batches, stream=None):
        if verbose not in (0, 1, 2):
            raise ValueError(f"fit: verbose must be 0, 1 or 2, got {verbose!r}")
        self.stream = sys.stderr if stream is None else stream
        self.verbose = verbose
        self.use_bar = verbose == 1 and getattr(self.stream, "isatty", lambda: False)()
        self.epochs, self.batches = epochs, batches
        self._bar = None

    def epoch_begin(self, epoch, index):
        self._t0 = time.perf_counter()
        if self.use_bar:
            # imported here, as matplotlib is in plotting: tqdm.auto takes about as long to import
            # as the rest of minidl, and only a terminal ever shows a bar
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.batches, desc=f"Epoch {index}/{self.epochs}", unit="batch",
                             file=self.stream, leave=True, dynamic_ncols=True)

    def batch_end(self, running_loss):
        if self._bar is not None:
            self._bar.set_postfix(loss=f"{running_loss:.4g}", refresh=False)
            self._bar.update(1)

    def epoch_end(self, index, logs):
        seconds = time.perf_counter() - self._t0
        if self._bar is not None:
            self._bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items()}, refresh=True)
            self._bar.close()
            self._bar = None
        elif self.verbose:
            print(f"Epoch {index}/{self.epochs} - {_format_logs(logs)} - {seconds:.2f}s", file=self.stream, flush=True)

    def close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
