"""EpochPosition: where ``fit`` is inside an epoch, which a mid-epoch checkpoint stores.

Between two batches the training state is the weights, the optimizer and the generators
(all in every checkpoint) plus the place in the epoch: the batches done, the epoch's
permutation and the running sums of its logs. Stored, a resumed ``fit`` finishes the epoch
exactly as the straight run does. Inside a batch (during ``on_update_end``) the remaining
chunks and the carried recurrent states would be needed too: ``in_batch`` says so, and
``TBPTTTrainer.save_checkpoint`` refuses to save there.
"""


class EpochPosition:
    """The place in one epoch: ``batch`` batches done of ``n`` sequences in batches of
    ``batch_size``, in the order ``order`` (a permutation, or None without shuffling);
    ``tally`` holds the epoch's running sums (``metrics.Tally``)."""

    def __init__(self, n, batch_size, shuffle, order, tally, batch=0):
        self.n, self.batch_size, self.shuffle, self.order, self.tally = n, batch_size, shuffle, order, tally
        self.batch, self.in_batch = batch, False

    def state(self):
        """The dict a checkpoint stores (``minidl.io.checkpoint.save_checkpoint``'s ``position``)."""
        t = self.tally
        return {"batch": self.batch, "batch_size": self.batch_size, "n": self.n, "shuffle": self.shuffle,
                "order": self.order,
                "tally": {"loss_sum": float(t.loss_sum), "loss_count": int(t.loss_count),
                          "sums": {k: float(v) for k, v in t.sums.items()},
                          "counts": {k: int(v) for k, v in t.counts.items()}}}

    @classmethod
    def resumed(cls, saved, n, batch_size, shuffle, tally, epoch):
        """The position of a loaded checkpoint (``saved``, as ``state()`` made it), checked against
        this ``fit``'s data and arguments; its running sums go into ``tally``."""
        names = sorted(tally.sums)
        if (saved["n"], saved["batch_size"], saved["shuffle"], sorted(saved["tally"]["sums"])) != \
                (n, batch_size, shuffle, names):
            raise ValueError(
                f"fit: the checkpoint was saved after batch {saved['batch']} of epoch {epoch} of a fit over "
                f"{saved['n']} sequences with batch_size={saved['batch_size']}, shuffle={saved['shuffle']}, "
                f"metrics {sorted(saved['tally']['sums'])}; this fit has {n}, {batch_size}, {shuffle}, {names}. "
                "Resume with the same data and arguments"
            )
        totals = saved["tally"]
        tally.loss_sum, tally.loss_count = totals["loss_sum"], totals["loss_count"]
        tally.sums.update(totals["sums"])
        tally.counts.update(totals["counts"])
        return cls(n, batch_size, shuffle, saved["order"], tally, saved["batch"])
