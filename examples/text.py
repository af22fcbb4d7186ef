"""A character-level LSTM language model trained with truncated BPTT, sampling text as it learns.

The text is cut into B parallel streams of token ids (B, L); the model reads
x = streams[:, :-1] and predicts y = streams[:, 1:], the next character at
every step: Embedding -> RNN(LSTMCell, return_sequences=True) -> Dense(vocab),
trained with TBPTT(k1, k2), so the state runs on from chunk to chunk along
each stream while the gradient reaches back at most k2 steps. Run it with
``make example-text``:

    python examples/text.py [--text PATH] [--epochs 20] [--hidden 128] [--k1 25] [--k2 50]
                            [--temperature 0.7] [--seed S] [--out DIR] [--quick]

After every epoch it prints the cross-entropy per character on the training and
validation text next to ln(V), the loss of a uniform guess over the V distinct
characters (where an untrained model starts), and every few epochs it samples
text from the model. The default text is examples/data/notes.txt, written for
this project. The vocabulary, the streams and the sampling are the package's
``minidl.text`` helpers.
"""

import argparse
import math
import os
import sys
import time

import numpy as np

import minidl as mdl
from minidl import plotting
from minidl.text import Vocabulary, make_streams, sample

DEFAULT_TEXT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "notes.txt")


def read_text(paths):
    """The files' contents, joined by newlines."""
    parts = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            parts.append(f.read())
    return "\n".join(parts)


def build_model(vocab_size, embedding_dim, hidden, dropout=0.0):
    """Embedding -> RNN(LSTMCell) -> [Dropout] -> Dense: token ids ``(B, T)`` -> logits ``(B, T, V)``."""
    layers = [
        mdl.Embedding(vocab_size, embedding_dim),
        mdl.RNN(mdl.LSTMCell(embedding_dim, hidden), return_sequences=True),
    ]
    if dropout > 0:
        layers.append(mdl.Dropout(dropout))
    return mdl.Sequential(layers + [mdl.Dense(hidden, vocab_size)])


class Report(mdl.Callback):
    """Prints the loss per character after every epoch, and samples text every ``every`` epochs and
    when training ends (after ``EarlyStopping`` has put back the best weights, if it comes first)."""

    def __init__(self, vocab, prompt, length, temperature, every, seed, epochs):
        self.vocab, self.prompt, self.length = vocab, prompt, length
        self.temperature, self.every, self.seed, self.epochs = temperature, every, seed, epochs
        self.samples = {}
        self.start = None

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        train, val = logs["loss"], logs.get("val_loss", float("nan"))
        print(f"epoch {epoch + 1:>3}/{self.epochs}: loss per character {train:.3f} train, {val:.3f} validation"
              f" ({val / math.log(2):.2f} bits; ln V = {math.log(len(self.vocab)):.3f})"
              f"  [{time.perf_counter() - self.start:.0f} s]", flush=True)
        if self.every and (epoch + 1) % self.every == 0:
            self.show(f"epoch {epoch + 1}", epoch + 1)

    def on_train_end(self, logs=None):
        self.show("after training", 0)

    def show(self, label, key):
        """Two samples from the prompt, seeded by ``(seed, key)``; printed and kept in ``self.samples``."""
        rng = np.random.default_rng([self.seed, key])
        prompts = np.tile(self.vocab.encode(self.prompt), (2, 1))
        ids = sample(self.model, prompts, self.length, self.temperature, seed=rng)
        self.samples[label] = [self.prompt + self.vocab.decode(row) for row in ids]
        print(f"  samples {label}, temperature {self.temperature}:")
        for text in self.samples[label]:
            print("    | " + text.replace("\n", "\n    | "))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--text", nargs="+", default=[DEFAULT_TEXT], metavar="PATH",
                        help="UTF-8 text file(s) to learn, concatenated (default: examples/data/notes.txt)")
    parser.add_argument("--epochs", type=int, default=30, help="maximum epochs (early stopping may end sooner)")
    parser.add_argument("--hidden", type=int, default=128, help="LSTM units")
    parser.add_argument("--embedding", type=int, default=32, help="embedding size")
    parser.add_argument("--dropout", type=float, default=0.2, help="dropout between the LSTM and the output layer")
    parser.add_argument("--streams", type=int, default=32, help="parallel streams B (the batch)")
    parser.add_argument("--k1", type=int, default=25, help="steps between updates")
    parser.add_argument("--k2", type=int, default=50, help="steps backpropagated through at each update")
    parser.add_argument("--lr", type=float, default=0.005, help="Adam learning rate")
    parser.add_argument("--temperature", type=float, default=0.7,
                        help="sampling temperature (0: most likely character)")
    parser.add_argument("--sample-every", type=int, default=5, help="epochs between samples")
    parser.add_argument("--sample-length", type=int, default=240, help="characters per sample")
    parser.add_argument("--prompt", default="The ", help="text each sample starts from")
    parser.add_argument("--patience", type=int, default=3,
                        help="early stopping: epochs without a better validation loss")
    parser.add_argument("--seed", type=int, default=0, help="seeds the weights and the sampling")
    parser.add_argument("--out", default="out/text", help="folder for the PNG plot and the samples")
    parser.add_argument("--quick", action="store_true",
                        help="a short piece of the text, a tiny model, 2 epochs (tests)")
    args = parser.parse_args(argv)
    if args.temperature < 0:
        parser.error(f"--temperature must be >= 0, got {args.temperature}")
    if args.quick:
        args.epochs, args.hidden, args.embedding = min(args.epochs, 2), min(args.hidden, 16), min(args.embedding, 8)
        args.streams, args.sample_every, args.sample_length = min(args.streams, 8), 1, min(args.sample_length, 40)

    text = read_text(args.text)
    if args.quick:
        text = text[:4000]
    vocab = Vocabulary(text)
    ids = vocab.encode(text)
    split = int(0.9 * len(ids))
    train_streams = make_streams(ids[:split], args.streams)
    val_streams = make_streams(ids[split:], max(1, args.streams // 4))
    x, y = train_streams[:, :-1], train_streams[:, 1:]
    name = args.text[0] if len(args.text) == 1 else f"{len(args.text)} files"
    print(f"text: {name}, {len(text):,} characters, V = {len(vocab)} distinct; "
          f"{train_streams.shape[0]} training streams of {train_streams.shape[1]:,} characters, "
          f"{val_streams.shape[0]} validation streams of {val_streams.shape[1]:,}")
    print(f"loss per character of a uniform guess: ln V = {math.log(len(vocab)):.3f} nats")
    if not set(args.prompt) <= set(vocab.chars):
        missing = sorted(set(args.prompt) - set(vocab.chars))
        parser.error(f"--prompt has characters that are not in the text: {missing!r}")

    mdl.set_seed(args.seed)
    model = build_model(len(vocab), args.embedding, args.hidden, args.dropout)
    trainer = mdl.TBPTTTrainer(model, mdl.CrossEntropyLoss(), mdl.Adam(model.parameters(), lr=args.lr),
                               clipper=mdl.ClipByGlobalNorm(1.0), k1=args.k1, k2=args.k2, seed=args.seed)
    # the text is small: stop when the validation loss has not improved for `patience` epochs, keep the best weights
    stop = mdl.EarlyStopping(monitor="val_loss", patience=args.patience, restore_best_weights=True)
    start_loss = trainer.evaluate(val_streams[:, :-1], val_streams[:, 1:])
    print(f"before training: {start_loss:.3f} validation")
    report = Report(vocab, args.prompt, args.sample_length, args.temperature, args.sample_every, args.seed, args.epochs)
    start = time.perf_counter()
    history = trainer.fit(x, y, epochs=args.epochs, batch_size=len(x), shuffle=False,
                          validation_data=(val_streams[:, :-1], val_streams[:, 1:]),
                          callbacks=[stop, report], verbose=0)
    seconds = time.perf_counter() - start
    val = history.history["val_loss"]
    best = int(np.argmin(val))
    final = val[best]
    print(f"\nbest loss per character: {final:.3f} validation ({final / math.log(2):.2f} bits) at epoch {best + 1}, "
          f"{history.history['loss'][best]:.3f} train, from ln V = {math.log(len(vocab)):.3f}; "
          f"{len(val)} epochs in {seconds:.0f} s")

    os.makedirs(args.out, exist_ok=True)
    fig = plotting.plot_history(history, title="Character LSTM: cross-entropy per character")
    fig.axes[0].axhline(math.log(len(vocab)), color="0.4", linestyle="--", linewidth=1, label="ln V (uniform guess)")
    fig.axes[0].set_yscale("linear")
    fig.axes[0].set_ylabel("nats per character")
    fig.axes[0].legend()
    fig.savefig(os.path.join(args.out, "loss.png"), format="png", dpi=100)
    with open(os.path.join(args.out, "samples.txt"), "w", encoding="utf-8") as f:
        for label, texts in report.samples.items():
            f.write(f"== {label}, temperature {args.temperature}\n")
            f.write("\n--\n".join(texts) + "\n\n")
    print(f"plot and samples written to {os.path.abspath(args.out)}: loss.png, samples.txt")
    return final


if __name__ == "__main__":
    sys.exit(0 if main() is not None else 1)
