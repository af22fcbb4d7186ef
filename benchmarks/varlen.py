"""Workload: variable-length classification with masks, against PyTorch's packed sequences.

The task and model of ``examples/classify.py``, float32: noisy sequences of 5 to 60 steps,
each holding a rising or a falling ramp, padded with zeros after their end to 60 steps;
a bidirectional GRU of 16 units per direction whose two final states (the forward one at
each sequence's last real step, the backward one after reading it back to its first)
feed a Dense layer of 2 logits; cross-entropy, Adam(1e-2), global-norm clip at 1,
shuffled mini-batches of 50.

* minidl: the example's ``Sequential([Bidirectional(RNN(GRUCell(1, 16))), Dense(32, 2)])``
  through ``TBPTTTrainer.fit(x, y, mask=mask, epochs=1, verbose=0)``: the RNNs skip the
  padded steps;
* PyTorch, in its usual idiom: ``pack_padded_sequence(x, lengths, batch_first=True,
  enforce_sorted=False)`` into a bidirectional ``nn.GRU``, ``h_n`` of both directions
  concatenated into an ``nn.Linear``; ``nn.CrossEntropyLoss``, ``Adam``,
  ``clip_grad_norm_``, ``loss.item()``.

Figure: training examples (sequences) per second, minidl / torch.
"""

import numpy as np

import minidl as mdl

from .common import Result, load_example, torch_training_epoch, training_throughput, with_torch

FULL = {"examples": 500, "hidden": 16, "batch": 50}
QUICK = {"examples": 50, "hidden": 4, "batch": 50}
LR, MAX_NORM = 1e-2, 1.0


def padded_patterns(n, seed=0):
    """``x: (n, 60, 1)`` float32 zero-padded after each sequence, ``mask: (n, 60)``, ``y: (n,)`` int64."""
    example = load_example("classify")
    seqs, labels = example.make_patterns(n, np.random.default_rng(seed))
    x, mask = example.pad(seqs, example.MAX_LEN, "post")
    return x, mask, labels


def minidl_epoch(x, mask, y, hidden, batch, seed=0):
    """One masked training epoch of the example's bidirectional GRU per call."""
    example = load_example("classify")
    mdl.set_seed(seed)
    model = example.build_model("bigru", hidden).astype(np.float32)
    trainer = mdl.TBPTTTrainer(model, mdl.CrossEntropyLoss(), mdl.Adam(model.parameters(), lr=LR),
                               clipper=mdl.ClipByGlobalNorm(MAX_NORM), seed=seed)
    losses = []

    def epoch():
        losses.append(trainer.fit(x, y, mask=mask, epochs=1, batch_size=batch, verbose=0).history["loss"][-1])

    epoch.losses, epoch.model = losses, model
    return epoch


def torch_epoch(torch, x, mask, y, hidden, batch, seed=0):
    """The same model and training with packed sequences, PyTorch's idiom for variable lengths."""
    nn = torch.nn
    pack = nn.utils.rnn.pack_padded_sequence
    torch.manual_seed(seed)
    gru = nn.GRU(x.shape[2], hidden, batch_first=True, bidirectional=True)
    head = nn.Linear(2 * hidden, 2)
    params = [*gru.parameters(), *head.parameters()]
    optimizer = torch.optim.Adam(params, lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    lengths = torch.from_numpy(mask.sum(axis=1))

    def loss_of(idx):
        _, h_n = gru(pack(xt[idx], lengths[idx], batch_first=True, enforce_sorted=False))
        return loss_fn(head(torch.cat([h_n[0], h_n[1]], dim=1)), yt[idx])

    return torch_training_epoch(torch, len(yt), batch, seed, params, optimizer, MAX_NORM, loss_of)


def run(settings):
    size = QUICK if settings.quick else FULL
    n, hidden, batch = size["examples"], size["hidden"], size["batch"]
    x, mask, y = padded_patterns(n)
    label = f"variable-length classification (lengths 5-60 padded to 60, BiGRU {hidden}+{hidden}, B={batch}, float32)"
    result = Result("varlen")
    fns = with_torch({"minidl": minidl_epoch(x, mask, y, hidden, batch)}, "varlen",
                     lambda torch: torch_epoch(torch, x, mask, y, hidden, batch))
    training_throughput(result, label, fns, n, settings, settings.repetitions(full=3), ("(masks)", "(packed)"))
    return result
