"""An encoder-decoder learns to add: "54+7" in, "61" out, on Keras's addition task.

The task of Keras's ``addition_rnn`` example: each number has 1 to ``d`` digits
(the count drawn uniformly, then the digits), the question ``"a+b"`` is padded
with spaces to ``2d + 1`` characters and **reversed**, the answer ``str(a + b)``
is padded to ``d + 1`` characters. Pairs are unique (``a+b`` and ``b+a`` count
once); a tenth of them is held out. Keras's published results with one
LSTM(128): 99 % accuracy in 55 epochs for 2 digits (5,000 examples) and in 100
epochs for 3 digits (50,000 examples).

The model is a ``mdl.Model`` subclass of two inputs, written as a user would:
an LSTM encoder reads the question; its final ``(h, c)`` starts an LSTM decoder
(``initial_state=encoder.final_state``) that reads the answer shifted right by a
start token (teacher forcing); a ``Dense`` head scores the next character. At
test time the decoder runs **greedily**, one step at a time, feeding back its
own best character: that is the accuracy reported, per character and per whole
sum, on the held-out sums after every epoch. Run it with
``make example-seq2seq``:

    python examples/seq2seq.py [--digits 2,3] [--hidden 128] [--lr 0.005] [--decay 0.95] [--batch-size 32]
                               [--target 0.99] [--seed S] [--out DIR] [--quick]

Training stops at the first epoch whose greedy exact-match accuracy reaches
``--target`` (or at Keras's epoch count). It prints a table per task, a few
decoded sums, and writes the learning curves (greedy accuracies and losses).
"""

import argparse
import os
import sys
import time

import numpy as np

import minidl as mdl
from minidl import plotting
from minidl.text import Vocabulary

START = "="                                    # the decoder's first input
VOCAB = Vocabulary("0123456789+ " + START)     # 13 characters: " +0123456789="
KERAS = {2: (5_000, 55), 3: (50_000, 100)}     # digits: (examples, Keras's epochs to 99 %)


def make_sums(n, digits, rng):
    """``n`` unique unordered pairs ``(a, b)`` as Keras draws them: ``(n, 2)`` int64.

    Each number gets a digit count uniform in ``1 .. digits`` and then uniform digits
    (so ``"07"`` is 7); a pair and its swap count once. The pairs come in random order
    (the first drawn are the most frequent ones, such as ``3+4``). Raises ``ValueError`` when
    fewer than ``n`` distinct pairs exist.
    """
    top = 10 ** digits
    if n > top * (top + 1) // 2:
        raise ValueError(f"make_sums: only {top * (top + 1) // 2} distinct pairs of {digits}-digit numbers, asked {n}")
    seen, pairs = set(), []
    while len(pairs) < n:
        counts = rng.integers(1, digits + 1, (4 * n, 2))
        numbers = rng.integers(0, 10 ** counts)                       # uniform digits of that count
        for a, b in np.sort(numbers, axis=1).tolist():
            if (a, b) not in seen:
                seen.add((a, b))
                pairs.append((a, b))
                if len(pairs) == n:
                    break
    pairs = np.array(pairs, dtype=np.int64)[rng.permutation(n)]        # not in the order first drawn
    swap = rng.random(n) < 0.5                                         # either order, as Keras's questions
    pairs[swap] = pairs[swap, ::-1]
    return pairs


def questions_and_answers(pairs, digits):
    """The strings: reversed questions of ``2 * digits + 1`` and answers of ``digits + 1`` characters."""
    q_len, a_len = 2 * digits + 1, digits + 1
    questions = [f"{a}+{b}".ljust(q_len)[::-1] for a, b in pairs.tolist()]
    answers = [str(a + b).ljust(a_len) for a, b in pairs.tolist()]
    return questions, answers


def one_hot(strings):
    """``(n, length, len(VOCAB))`` float32 one-hot rows of equal-length strings."""
    ids = np.stack([VOCAB.encode(s) for s in strings])
    return np.eye(len(VOCAB), dtype=np.float32)[ids]


def encode(pairs, digits):
    """The arrays of a set of sums: ``(question, decoder_input), target``.

    ``question: (n, 2d+1, V)`` one-hot, ``decoder_input: (n, d+1, V)`` one-hot of the
    start token followed by the answer without its last character, ``target: (n, d+1)``
    int64 ids of the answer.
    """
    questions, answers = questions_and_answers(pairs, digits)
    target = np.stack([VOCAB.encode(s) for s in answers])
    decoder_input = one_hot([START + s[:-1] for s in answers])
    return (one_hot(questions), decoder_input), target


class Adder(mdl.Model):
    """Encoder-decoder: ``forward(question: (B, Tq, V), answer_in: (B, Ta, V)) -> logits (B, Ta, V)``.

    ``encoder`` reads the question; its final state ``(h, c)`` is the decoder's initial
    state; ``decoder`` reads ``answer_in`` (teacher forcing); ``head`` scores each step.
    """

    def __init__(self, vocab, hidden):
        super().__init__()
        self.vocab, self.hidden = vocab, hidden
        self.encoder = mdl.RNN(mdl.LSTMCell(vocab, hidden))
        self.decoder = mdl.RNN(mdl.LSTMCell(vocab, hidden), return_sequences=True)
        self.head = mdl.Dense(hidden, vocab)

    def get_config(self):
        return {"vocab": self.vocab, "hidden": self.hidden}

    def forward(self, question, answer_in):
        self.encoder.forward(question)                     # only its final state is used
        h = self.decoder.forward(answer_in, initial_state=self.encoder.final_state)
        return self.head.forward(h)

    def backward(self, grad_out):
        d_answer_in = self.decoder.backward(self.head.backward(grad_out))
        no_output_grad = np.zeros((len(grad_out), self.hidden), grad_out.dtype)
        d_question = self.encoder.backward(no_output_grad, grad_final_state=self.decoder.initial_state_grad)
        return d_question, d_answer_in

    def greedy(self, question, steps):
        """Decode ``steps`` characters, each step fed the previous step's best one: ``(B, steps)`` ids."""
        with mdl.no_grad():
            self.encoder.forward(question)
            state = self.encoder.final_state
            x_t = np.zeros((len(question), 1, self.vocab), question.dtype)
            x_t[:, 0, VOCAB.index[START]] = 1.0
            ids = []
            for _ in range(steps):
                h = self.decoder.forward(x_t, initial_state=state)      # (B, 1, hidden)
                state = self.decoder.final_state
                best = self.head.forward(h[:, 0]).argmax(axis=-1)       # (B,)
                ids.append(best)
                x_t = np.eye(self.vocab, dtype=question.dtype)[best][:, None, :]
        return np.stack(ids, axis=1)


class GreedyAccuracy(mdl.Callback):
    """After each epoch: greedy character and exact-match accuracy on held-out sums, printed as a
    table row; stops training at ``target_accuracy`` exact matches."""

    def __init__(self, question, target, target_accuracy, verbose=True):
        self.question, self.target, self.target_accuracy, self.verbose = question, target, target_accuracy, verbose
        self.char, self.exact = [], []

    def on_train_begin(self, logs=None):
        if self.verbose:
            print(f"| {'epoch':>5} | {'train loss':>10} | {'teacher-forced acc':>18} | {'greedy char acc':>15} "
                  f"| {'greedy exact':>12} |")
            print(f"|{'-' * 7}|{'-' * 12}|{'-' * 20}|{'-' * 17}|{'-' * 14}|")

    def on_epoch_end(self, epoch, logs=None):
        self.model.eval()
        correct = self.model.greedy(self.question, self.target.shape[1]) == self.target
        self.model.train()
        self.char.append(float(correct.mean()))
        self.exact.append(float(correct.all(axis=1).mean()))
        if self.verbose:
            print(f"| {epoch + 1:>5} | {logs['loss']:>10.4f} | {logs['val_accuracy']:>18.4f} "
                  f"| {self.char[-1]:>15.4f} | {self.exact[-1]:>12.4f} |", flush=True)
        if self.exact[-1] >= self.target_accuracy:
            self.trainer.stop_training = True


def first_epoch_at(values, level):
    hits = [i + 1 for i, v in enumerate(values) if v >= level]
    return hits[0] if hits else None


def run_task(digits, n, epochs, hidden, lr, decay, batch_size, target, seed):
    """Train one adder; returns a dict of its curves, figures and a few decoded sums."""
    rng = np.random.default_rng(seed)
    pairs = make_sums(n, digits, rng)
    n_val = n // 10
    print(f"\n{digits} digits: {n - n_val} training and {n_val} held-out sums, questions reversed")
    (q_train, in_train), y_train = encode(pairs[n_val:], digits)
    (q_val, in_val), y_val = encode(pairs[:n_val], digits)
    mdl.set_seed(seed)
    model = Adder(len(VOCAB), hidden)
    optimizer = mdl.Adam(model.parameters(), lr=lr)
    trainer = mdl.TBPTTTrainer(model, mdl.CrossEntropyLoss(), optimizer, clipper=mdl.ClipByGlobalNorm(1.0), seed=seed)
    greedy = GreedyAccuracy(q_val, y_val, target)
    schedule = mdl.ExponentialLR(optimizer, gamma=decay)
    start = time.perf_counter()
    history = trainer.fit((q_train, in_train), y_train, epochs=epochs, batch_size=batch_size,
                          validation_data=((q_val, in_val), y_val), metrics=("accuracy",),
                          callbacks=[schedule, greedy], verbose=0)
    seconds = time.perf_counter() - start
    questions, answers = questions_and_answers(pairs[:n_val], digits)
    decoded = [VOCAB.decode(row) for row in model.greedy(q_val[:8], digits + 1)]
    examples = [(q[::-1].strip(), a.strip(), d.strip()) for q, a, d in zip(questions, answers, decoded)]
    return {"digits": digits, "n_train": n - n_val, "n_val": n_val, "epochs": len(greedy.exact),
            "char": greedy.char, "exact": greedy.exact, "teacher_forced": history.history["val_accuracy"],
            "loss": history.history["loss"], "val_loss": history.history["val_loss"], "seconds": seconds,
            "char_99": first_epoch_at(greedy.char, 0.99), "exact_99": first_epoch_at(greedy.exact, 0.99),
            "examples": examples, "model": model}


def report(result):
    keras_epochs = KERAS[result["digits"]][1]

    def at(epoch):
        return f"epoch {epoch}" if epoch else "not reached"
    print(f"{result['epochs']} epochs in {result['seconds']:.1f} s; greedy character accuracy >= 99 %: "
          f"{at(result['char_99'])}; exact match >= 99 %: {at(result['exact_99'])} "
          f"(Keras, one LSTM(128), character accuracy >= 99 %: epoch {keras_epochs})")
    for question, answer, decoded in result["examples"]:
        print(f"  {question:>9} = {decoded:<5} {'ok' if decoded == answer else 'wrong, ' + answer}")


def plot(results, series, title, path):
    """One figure of both tasks' curves: ``series`` maps a result key to its label."""
    curves = {f"{r['digits']} digits, {label}": r[key] for r in results for key, label in series.items()}
    fig = plotting.plot_history(curves, title=title)
    ax = fig.axes[0]
    ax.set_ylabel("cross-entropy per character")
    if "exact" in series:                                  # accuracies: linear axis, the 99 % line
        ax.set_yscale("linear")
        ax.set_ylabel("accuracy")
        ax.axhline(0.99, color="0.4", linestyle="--", linewidth=1, label="99 %")
        ax.legend()
    fig.savefig(path, format="png", dpi=100)
    return fig


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--digits", default="2,3", help="comma-separated digit counts, from 2 and 3")
    parser.add_argument("--hidden", type=int, default=128, help="units of each LSTM")
    parser.add_argument("--lr", type=float, default=0.005, help="Adam learning rate")
    parser.add_argument("--decay", type=float, default=0.95, help="the lr is multiplied by this after each epoch")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--target", type=float, default=0.99, help="stop at this greedy exact-match accuracy")
    parser.add_argument("--seed", type=int, default=0, help="seeds the data, the weights and the shuffling")
    parser.add_argument("--out", default="out/seq2seq", help="folder for the PNG plots")
    parser.add_argument("--quick", action="store_true", help="2 digits, 600 sums, 2 epochs (used by the tests)")
    args = parser.parse_args(argv)
    try:
        tasks = [int(d) for d in args.digits.split(",") if d.strip()]
    except ValueError:
        tasks = []
    if not tasks or any(d not in KERAS for d in tasks):
        parser.error(f"--digits: choose from {', '.join(map(str, KERAS))}, got {args.digits!r}")

    results = []
    for digits in tasks:
        n, epochs = KERAS[digits]
        hidden = args.hidden
        if args.quick:
            n, epochs, hidden = 600, 2, min(hidden, 16)
        results.append(run_task(digits, n, epochs, hidden, args.lr, args.decay, args.batch_size, args.target, args.seed))
        report(results[-1])

    os.makedirs(args.out, exist_ok=True)
    plot(results, {"exact": "greedy exact match", "char": "greedy per character"},
         "Addition, held-out sums: greedy-decoding accuracy per epoch", os.path.join(args.out, "greedy_accuracy.png"))
    plot(results, {"loss": "training", "val_loss": "held out (teacher forcing)"},
         "Addition: cross-entropy per character, per epoch", os.path.join(args.out, "loss.png"))
    print(f"\nplots written to {os.path.abspath(args.out)}: greedy_accuracy.png, loss.png")
    return results


if __name__ == "__main__":
    sys.exit(0 if main() is not None else 1)
