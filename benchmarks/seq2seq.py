"""Workload: training the encoder-decoder of ``examples/seq2seq.py`` on 2-digit sums, against PyTorch.

The example's task and model, float32: questions ``"a+b"`` (5 characters, reversed, one-hot
over 13 symbols), answers of 3 characters; an LSTM encoder of 128 units whose final
``(h, c)`` starts an LSTM decoder of 128 units fed the answer shifted right (teacher
forcing), a Dense head, cross-entropy on every answer character, Adam(5e-3), global-norm
clip at 1, shuffled mini-batches of 32.

* minidl: the example's ``Adder`` through ``TBPTTTrainer.fit((question, answer_in), target,
  epochs=1, verbose=0)``, as the example trains it;
* PyTorch, in its usual idiom: ``nn.LSTM`` encoder, its ``(h_n, c_n)`` as the initial state
  of an ``nn.LSTM`` decoder, ``nn.Linear`` head, ``nn.CrossEntropyLoss``, ``Adam``,
  ``clip_grad_norm_``, a loop over shuffled mini-batches (no DataLoader), ``loss.item()``.

Figure: training examples per second (epoch size / median epoch time), minidl / torch.
"""

import numpy as np

import minidl as mdl

from .common import Result, load_example, torch_training_epoch, training_throughput, with_torch

FULL = {"examples": 1024, "hidden": 128, "batch": 32, "digits": 2}
QUICK = {"examples": 64, "hidden": 16, "batch": 32, "digits": 2}
LR, MAX_NORM = 5e-3, 1.0


def addition_data(n, digits, seed=0):
    """``(question, answer_in), target`` of ``n`` sums, as the example encodes them."""
    example = load_example("seq2seq")
    return example.encode(example.make_sums(n, digits, np.random.default_rng(seed)), digits)


def minidl_epoch(inputs, target, hidden, batch, seed=0):
    """One training epoch of the example's ``Adder`` per call (the model persists across calls)."""
    example = load_example("seq2seq")
    mdl.set_seed(seed)
    model = example.Adder(inputs[0].shape[2], hidden).astype(np.float32)
    trainer = mdl.TBPTTTrainer(model, mdl.CrossEntropyLoss(), mdl.Adam(model.parameters(), lr=LR),
                               clipper=mdl.ClipByGlobalNorm(MAX_NORM), seed=seed)
    losses = []

    def epoch():
        losses.append(trainer.fit(inputs, target, epochs=1, batch_size=batch, verbose=0).history["loss"][-1])

    epoch.losses, epoch.model = losses, model
    return epoch


def torch_epoch(torch, inputs, target, hidden, batch, seed=0):
    """The same model and training in PyTorch's usual idiom."""
    nn = torch.nn
    torch.manual_seed(seed)
    vocab = inputs[0].shape[2]
    encoder = nn.LSTM(vocab, hidden, batch_first=True)
    decoder = nn.LSTM(vocab, hidden, batch_first=True)
    head = nn.Linear(hidden, vocab)
    params = [*encoder.parameters(), *decoder.parameters(), *head.parameters()]
    optimizer = torch.optim.Adam(params, lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    question, answer_in = (torch.from_numpy(a) for a in inputs)
    answer = torch.from_numpy(target)

    def loss_of(idx):
        _, state = encoder(question[idx])
        out, _ = decoder(answer_in[idx], state)
        return loss_fn(head(out).reshape(-1, vocab), answer[idx].reshape(-1))

    return torch_training_epoch(torch, len(answer), batch, seed, params, optimizer, MAX_NORM, loss_of)


def run(settings):
    size = QUICK if settings.quick else FULL
    n, hidden, batch, digits = size["examples"], size["hidden"], size["batch"], size["digits"]
    inputs, target = addition_data(n, digits)
    label = (f"seq2seq addition training ({digits} digits, LSTM {hidden} encoder-decoder, B={batch}, "
             f"Adam, clip 1, float32)")
    result = Result("seq2seq")
    fns = with_torch({"minidl": minidl_epoch(inputs, target, hidden, batch)}, "seq2seq",
                     lambda torch: torch_epoch(torch, inputs, target, hidden, batch))
    training_throughput(result, label, fns, n, settings, settings.repetitions(full=3))
    return result
