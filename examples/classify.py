"""Variable-length classification: does a noisy sequence of 5-60 steps hold a rising or a falling ramp?

Each sequence is Gaussian noise (standard deviation 0.3) of a random length from
5 to 60 steps, with a 5-step ramp added at a random position: rising
(-1, -0.5, 0, 0.5, 1) for class 0, falling for class 1. Sequences of different
lengths share a batch by padding them with zeros to 60 steps, and the example
compares three ways of doing so on the same data, with the same model,
optimizer and epochs:

- ``no mask``: zeros after the sequence, fed to the model as if they were data;
- ``pre-padding``: zeros before the sequence, no mask;
- ``mask``: zeros after the sequence and ``mask=`` in ``fit``, so the RNN skips them.

for two models: a unidirectional tanh RNN and a bidirectional GRU. Run it with
``make example-classify``:

    python examples/classify.py [--hidden 16] [--epochs 20] [--lr 0.01] [--n-train 5000]
                                [--models rnn,bigru] [--seed S] [--out DIR] [--quick]

It prints a results table and how much each model's logits move when the same
sequences are padded differently, and writes two plots: the validation accuracy
per epoch, and the accuracy by sequence length.
"""

import argparse
import os
import sys
import time

import numpy as np

import minidl as mdl
from minidl import plotting

MIN_LEN, MAX_LEN, MOTIF_LEN = 5, 60, 5
RAMP = np.linspace(-1.0, 1.0, MOTIF_LEN)        # class 0 rises, class 1 falls
CLASSES = ("rising", "falling")
VARIANTS = ("no mask", "pre-padding", "mask")
TARGET = 0.95                                   # the accuracy the table reports the first epoch of

MODELS = {
    "rnn": ("RNN (tanh)", lambda h: mdl.RNN(mdl.RNNCell(1, h)), 1),
    "bigru": ("Bidirectional GRU", lambda h: mdl.Bidirectional(mdl.RNN(mdl.GRUCell(1, h))), 2),
}


def make_patterns(n, rng, min_len=MIN_LEN, max_len=MAX_LEN, noise=0.3):
    """``n`` noisy sequences, each with a rising or a falling ramp at a random position.

    Returns ``(seqs, labels)``: a list of ``n`` float32 arrays ``(L,)`` with
    ``min_len <= L <= max_len``, and ``labels: (n,)`` int64, 0 for the rising ramp
    ``RAMP``, 1 for the falling one, added to ``N(0, noise^2)`` noise at steps
    ``p .. p + 4`` with ``p`` uniform in ``0 .. L - 5``.
    """
    if not MOTIF_LEN <= min_len <= max_len:
        raise ValueError(f"make_patterns: need {MOTIF_LEN} <= min_len <= max_len, got {min_len} and {max_len}")
    lengths = rng.integers(min_len, max_len + 1, n)
    labels = rng.integers(0, 2, n)
    starts = rng.integers(0, lengths - MOTIF_LEN + 1)
    values = rng.normal(0.0, noise, (n, max_len))
    motif = np.where(labels[:, None] == 0, RAMP, RAMP[::-1])            # (n, 5)
    values[np.arange(n)[:, None], starts[:, None] + np.arange(MOTIF_LEN)] += motif
    values = values.astype(np.float32)
    return [values[i, :length] for i, length in enumerate(lengths)], labels.astype(np.int64)


def pad(seqs, T, side="post", value=0.0):
    """The sequences ``(L,)`` padded with ``value`` to ``T`` steps: ``x: (n, T, 1)`` and ``mask: (n, T)``.

    ``side="post"`` puts the padding after each sequence, ``"pre"`` before; ``mask``
    is True at the real steps.
    """
    x = np.full((len(seqs), T, 1), value, np.float32)
    mask = np.zeros((len(seqs), T), bool)
    for i, seq in enumerate(seqs):
        steps = slice(0, len(seq)) if side == "post" else slice(T - len(seq), T)
        x[i, steps, 0] = seq
        mask[i, steps] = True
    return x, mask


def padded_for(variant, seqs, T, value=0.0):
    """``(x, mask)`` as the variant feeds them to the model (mask None without masks)."""
    x, mask = pad(seqs, T, "pre" if variant == "pre-padding" else "post", value)
    return x, (mask if variant == "mask" else None)


def build_model(model_key, hidden):
    _, recurrent, directions = MODELS[model_key]
    return mdl.Sequential([recurrent(hidden), mdl.Dense(directions * hidden, 2)])


def logits_of(model, variant, seqs, T, value=0.0):
    x, mask = padded_for(variant, seqs, T, value)
    return model.predict(x, mask=mask)


def padding_change(model, variant, seqs):
    """Largest change of any logit when ``seqs`` are padded differently than to ``MAX_LEN`` with zeros.

    Compared: padding to ``2 * MAX_LEN`` steps, padding with 5.0 instead of 0.0 (with a
    mask only: without one the padding value is data), and each sequence run alone,
    unpadded (the first 20).
    """
    base = logits_of(model, variant, seqs, MAX_LEN)
    changes = [np.abs(logits_of(model, variant, seqs, 2 * MAX_LEN) - base).max()]
    if variant == "mask":
        changes.append(np.abs(logits_of(model, variant, seqs, MAX_LEN, value=5.0) - base).max())
    alone = np.concatenate([model.predict(seq[None, :, None]) for seq in seqs[:20]])
    changes.append(np.abs(alone - base[:20]).max())
    return float(max(changes))


def first_epoch_at(values, level):
    hits = [i + 1 for i, v in enumerate(values) if v >= level]
    return hits[0] if hits else None


def accuracy_by_length(correct, lengths, edges):
    """The accuracy of the sequences whose length is in each bin ``[edges[i], edges[i + 1])``."""
    bins = np.digitize(lengths, edges) - 1
    return np.array([correct[bins == b].mean() if (bins == b).any() else np.nan for b in range(len(edges) - 1)])


def train(model_key, variant, train_seqs, y_train, val_seqs, y_val, hidden, epochs, lr, batch_size, seed):
    """Fit one model on one padding variant; returns ``(model, history, seconds)``."""
    mdl.set_seed(seed)
    model = build_model(model_key, hidden)
    x, mask = padded_for(variant, train_seqs, MAX_LEN)
    vx, vmask = padded_for(variant, val_seqs, MAX_LEN)
    trainer = mdl.TBPTTTrainer(model, mdl.CrossEntropyLoss(), mdl.Adam(model.parameters(), lr=lr),
                               clipper=mdl.ClipByGlobalNorm(1.0), seed=seed)
    start = time.perf_counter()
    history = trainer.fit(x, y_train, mask=mask, validation_data=(vx, y_val, vmask), epochs=epochs,
                          batch_size=batch_size, metrics=("accuracy",), verbose=0)
    return model, history, time.perf_counter() - start


def plot_by_length(by_length, edges, path):
    from matplotlib.figure import Figure  # lazy, as in minidl.plotting

    fig = Figure(figsize=(8.0, 4.0), layout="constrained")
    ax = fig.subplots()
    centres = (edges[:-1] + edges[1:] - 1) / 2
    for name, acc in by_length.items():
        ax.plot(centres, acc, marker="o", label=name)
    ax.set_xlabel("sequence length (real steps)")
    ax.set_ylabel("validation accuracy")
    ax.set_title("Accuracy by sequence length (padded to 60 steps)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.savefig(path, format="png", dpi=100)
    return fig


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden", type=int, default=16, help="units of the recurrent layer (per direction)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--lr", type=float, default=0.01, help="Adam learning rate")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--n-train", type=int, default=5000, help="training sequences (validation: a fifth)")
    parser.add_argument("--models", default="rnn,bigru", help=f"comma-separated, from {', '.join(MODELS)}")
    parser.add_argument("--seed", type=int, default=0, help="seeds the data, the weights and the shuffling")
    parser.add_argument("--out", default="out/classify", help="folder for the PNG plots")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and 2 epochs (used by the tests)")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.n_train, args.hidden = min(args.epochs, 2), min(args.n_train, 300), min(args.hidden, 4)
    keys = [k.strip() for k in args.models.split(",") if k.strip()]
    unknown = [k for k in keys if k not in MODELS]
    if unknown or not keys:
        parser.error(f"--models: unknown {unknown}; choose from {', '.join(MODELS)}")

    rng = np.random.default_rng(args.seed)
    train_seqs, y_train = make_patterns(args.n_train, rng)
    val_seqs, y_val = make_patterns(max(args.n_train // 5, 100), rng)
    val_lengths = np.array([len(s) for s in val_seqs])
    print(f"data: {len(train_seqs)} training and {len(val_seqs)} validation sequences of {MIN_LEN}-{MAX_LEN} steps, "
          f"padded to {MAX_LEN}; {np.mean(y_train == 1):.0%} falling")

    edges = np.arange(MIN_LEN, MAX_LEN + 2, 8)
    edges[-1] = MAX_LEN + 1
    results, curves, by_length, changes = [], {}, {}, {}
    for key in keys:
        for variant in VARIANTS:
            name = f"{MODELS[key][0]}, {variant}"
            model, history, seconds = train(key, variant, train_seqs, y_train, val_seqs, y_val, args.hidden,
                                            args.epochs, args.lr, args.batch_size, args.seed)
            acc = history.history["val_accuracy"]
            correct = logits_of(model, variant, val_seqs, MAX_LEN).argmax(axis=-1) == y_val
            changes[name] = padding_change(model, variant, val_seqs)
            longer = np.mean(logits_of(model, variant, val_seqs, 2 * MAX_LEN).argmax(axis=-1) == y_val)
            results.append((name, len(acc), acc[-1], max(acc), first_epoch_at(acc, TARGET), longer, seconds))
            curves[name], by_length[name] = acc, accuracy_by_length(correct, val_lengths, edges)
            print(f"  {name:<34} val accuracy {acc[-1]:.3f}  ({seconds:.1f} s)", flush=True)

    print()
    print(f"| {'model, padding':<34} | {'epochs':>6} | {'val accuracy':>12} | {'best':>5} "
          f"| {'>= 0.95 at':>10} | {'padded to 120':>13} | {'seconds':>7} |")
    print(f"|{'-' * 36}|{'-' * 8}|{'-' * 14}|{'-' * 7}|{'-' * 12}|{'-' * 15}|{'-' * 9}|")
    for name, epochs, final, best, hit, longer, seconds in results:
        hit_text = f"epoch {hit}" if hit else "never"
        print(f"| {name:<34} | {epochs:>6} | {final:>12.3f} | {best:>5.3f} | {hit_text:>10} | {longer:>13.3f} "
              f"| {seconds:>7.1f} |")
    print("\nlargest change of a logit when the validation sequences are padded to 120 steps, "
          "with 5.0 (masks only) or run alone:")
    for name, change in changes.items():
        print(f"  {name:<34} {change:.2e}")

    os.makedirs(args.out, exist_ok=True)
    fig = plotting.plot_history(curves, title="Rising or falling ramp, lengths 5-60: validation accuracy per epoch")
    fig.axes[0].set_yscale("linear")
    fig.axes[0].set_ylabel("validation accuracy")
    fig.axes[0].axhline(0.5, color="0.4", linestyle="--", linewidth=1, label="chance")
    fig.axes[0].legend()
    fig.savefig(os.path.join(args.out, "val_accuracy.png"), format="png", dpi=100)
    plot_by_length(by_length, edges, os.path.join(args.out, "accuracy_by_length.png"))
    print(f"plots written to {os.path.abspath(args.out)}: val_accuracy.png, accuracy_by_length.png")
    return {"accuracy": {name: final for name, _, final, *_ in results},
            "accuracy_padded_to_120": {name: longer for name, *_, longer, _ in results}, "padding_change": changes}


if __name__ == "__main__":
    sys.exit(0 if main() is not None else 1)
