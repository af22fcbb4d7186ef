"""History: the per-epoch record that ``fit`` returns."""


class History:
    """Per-epoch metrics of a ``fit`` call.

    Attributes:
        history: dict of lists, e.g. ``{"loss": [...], "val_loss": [...]}``, one
            entry per completed epoch.
        epoch: list of the (0-based) epoch numbers recorded.
    """

    def __init__(self):
        self.history = {}
        self.epoch = []

    def record(self, epoch, logs):
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={sorted(self.history)})"
