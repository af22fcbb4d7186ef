"""History: the per-epoch record that ``fit`` returns."""


class History:
    """Per-epoch metrics of a ``fit`` call.

    Attributes:
        history: dict of lists, e.g. ``{"loss": [...], "val_loss": [...]}``, one
            entry per completed epoch (``None`` where an epoch lacks a metric).
        epoch: list of the (0-based) epoch numbers recorded.

    An epoch is recorded as soon as it is complete, before the epoch-end callbacks
    run; what they add to its logs (a schedule adds ``"lr"``, and schedules run before
    the other callbacks) still shows in ``history``, since the record keeps the logs
    dict itself.
    """

    def __init__(self):
        self.epoch = []
        self._logs = []

    def record(self, epoch, logs):
        """Record the logs of one epoch.

        Args:
            epoch: int, the epoch's index (0-based, as the trainer counts).
            logs: dict of floats, kept by reference (``"loss"``, metrics, ``"val_..."``).
        """
        self.epoch.append(epoch)
        self._logs.append(logs)

    @property
    def history(self):
        keys = []
        for logs in self._logs:
            keys.extend(k for k in logs if k not in keys)
        return {k: [None if logs.get(k) is None else float(logs[k]) for logs in self._logs] for k in keys}

    @history.setter
    def history(self, values):
        n = len(self.epoch)
        self._logs = [{k: v[i] for k, v in values.items() if i < len(v)} for i in range(n)]

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={sorted(self.history)})"
