"""The adding problem: an LSTM and a GRU carry two marked numbers over 50 steps; a tanh RNN trained alike does not.

Each sequence has T steps of two channels: channel 0 holds numbers drawn from
U[0, 1], channel 1 is 1 at exactly two positions (one in the first half, one in
the second) and 0 elsewhere. The target is the sum of the two marked numbers
(the variant of Le, Jaitly and Hinton, 2015). Always predicting 1, the mean of
the target, gives an MSE of Var(u1 + u2) = 2/12 = 1/6: a model has learned
something only when it gets well below that. Run it with ``make example-adding``:

    python examples/adding.py [--T 50] [--hidden 32] [--epochs 30] [--lr 0.01] [--cells lstm,gru,rnn,rnn-orthogonal]
                              [--n-train 10000] [--seed S] [--out DIR] [--quick]

It trains one many-to-one model per cell with the same data, optimizer and
clipping (full backpropagation through time with the TBPTTTrainer), prints a
results table, and writes two plots: the validation MSE per epoch of every
model, and how much of the gradient of the prediction reaches the state k steps
back, for the LSTM and the two tanh RNNs before and after training.
"""

import argparse
import os
import sys
import time

import numpy as np

import minidl as mdl
from minidl import diagnostics, plotting

BASELINE_MSE = 1.0 / 6.0   # MSE of the constant prediction 1
TARGET_MSE = 0.01          # "solved"

CELLS = {
    "lstm": ("LSTM", lambda f, h: mdl.LSTMCell(f, h)),
    "gru": ("GRU", lambda f, h: mdl.GRUCell(f, h)),
    "rnn": ("RNN (tanh)", lambda f, h: mdl.RNNCell(f, h)),
    "rnn-orthogonal": ("RNN (tanh), orthogonal", lambda f, h: mdl.RNNCell(f, h, recurrent_initializer="orthogonal")),
}


def make_adding(n, T, rng):
    """``n`` adding-problem sequences of ``T`` steps from the generator ``rng``.

    Returns ``x: (n, T, 2)`` float32 and ``y: (n, 1)`` float32 with
    ``y[i] = x[i, a, 0] + x[i, b, 0]`` for the marked steps ``a < T // 2 <= b``.
    """
    if T < 2:
        raise ValueError(f"make_adding: T must be >= 2, got {T}")
    half = T // 2
    x = np.zeros((n, T, 2), np.float32)
    x[:, :, 0] = rng.uniform(0.0, 1.0, (n, T))
    rows = np.arange(n)
    first = rng.integers(0, half, n)
    second = rng.integers(half, T, n)
    x[rows, first, 1] = 1.0
    x[rows, second, 1] = 1.0
    y = (x[rows, first, 0] + x[rows, second, 0])[:, None]
    return x, y


def build_model(cell_key, hidden):
    return mdl.Sequential([mdl.RNN(CELLS[cell_key][1](2, hidden)), mdl.Dense(hidden, 1)])


def n_params(model):
    return sum(p.data.size for p in model.parameters())


def output_direction(model, batch):
    """``dy/dh_T`` of the prediction ``y = h_T @ kernel + bias``: the Dense kernel scaled to norm 1,
    repeated for each sample: ``(batch, H)``."""
    w = model.layers[-1].kernel.data[:, 0].astype(np.float64)
    return np.broadcast_to(w / np.linalg.norm(w), (batch, w.size))


def gradient_flow(model, x):
    """Root mean square over the sequences of ``||d prediction / d h(T-k)||``, ``k = 0 .. T-1`` (1 at ``k = 0``).

    ``diagnostics.gradient_flow`` gives the norm over the whole batch; the output
    direction has norm 1 per sequence, so dividing by ``sqrt(batch)`` makes it per sequence.
    """
    return diagnostics.gradient_flow(model, x, grad_output=output_direction(model, len(x))) / np.sqrt(len(x))


def spectral_radius(model):
    """Largest ``|eigenvalue|`` of a square recurrent kernel (the tanh RNN's ``(H, H)``), else None."""
    w = model.layers[0].cell.recurrent_kernel.data
    return float(np.abs(np.linalg.eigvals(w.astype(np.float64))).max()) if w.shape[0] == w.shape[1] else None


class EpochLog(mdl.Callback):
    """Prints a line with the losses and the time so far after the first epoch and every ``every`` epochs."""

    def __init__(self, name, every):
        self.name, self.every = name, every
        self.start = None

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if self.every and ((epoch + 1) % self.every == 0 or epoch == 0):
            print(f"  {self.name:<24} epoch {epoch + 1:>3}: loss {logs['loss']:.5f}  val MSE {logs['val_loss']:.5f}"
                  f"  ({time.perf_counter() - self.start:.1f} s)", flush=True)


def train(cell_key, train_set, val_set, hidden, epochs, lr, batch_size, seed, log_every):
    """Fit one model; returns ``(model, history, seconds, flow_before, spectral_radius_before)``."""
    mdl.set_seed(seed)
    model = build_model(cell_key, hidden)
    flow_before = gradient_flow(model, val_set[0][:64])
    rho_before = spectral_radius(model)
    trainer = mdl.TBPTTTrainer(model, mdl.MSELoss(), mdl.Adam(model.parameters(), lr=lr),
                               clipper=mdl.ClipByGlobalNorm(1.0), seed=seed)
    start = time.perf_counter()
    history = trainer.fit(*train_set, epochs=epochs, batch_size=batch_size, validation_data=val_set,
                          callbacks=[EpochLog(CELLS[cell_key][0], log_every)], verbose=0)
    return model, history, time.perf_counter() - start, flow_before, rho_before


def first_epoch_below(values, level):
    hits = [i + 1 for i, v in enumerate(values) if v <= level]
    return hits[0] if hits else None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--T", type=int, default=50, help="sequence length")
    parser.add_argument("--hidden", type=int, default=32, help="units of every recurrent layer")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=0.01, help="Adam learning rate")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--n-train", type=int, default=10000, help="training sequences (validation: a tenth)")
    parser.add_argument("--cells", default="lstm,gru,rnn,rnn-orthogonal",
                        help=f"comma-separated, from {', '.join(CELLS)}")
    parser.add_argument("--seed", type=int, default=0, help="seeds the data, the weights and the shuffling")
    parser.add_argument("--out", default="out/adding", help="folder for the PNG plots")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and 2 epochs (used by the tests)")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.n_train, args.hidden = min(args.epochs, 2), min(args.n_train, 200), min(args.hidden, 8)
    cells = [c.strip() for c in args.cells.split(",") if c.strip()]
    unknown = [c for c in cells if c not in CELLS]
    if unknown or not cells:
        parser.error(f"--cells: unknown {unknown}; choose from {', '.join(CELLS)}")

    rng = np.random.default_rng(args.seed)
    train_set = make_adding(args.n_train, args.T, rng)
    val_set = make_adding(max(args.n_train // 10, 50), args.T, rng)
    baseline = float(np.mean((val_set[1] - 1.0) ** 2))
    print(f"data: {len(train_set[0])} training and {len(val_set[0])} validation sequences of T = {args.T} steps")
    print(f"baseline (always predict 1): val MSE {baseline:.4f}   (expected 1/6 = {BASELINE_MSE:.4f})")

    log_every = 0 if args.quick else 5
    results, curves, flows, radius = [], {}, {}, {}
    for key in cells:
        name = CELLS[key][0]
        model, history, seconds, before, rho_before = train(key, train_set, val_set, args.hidden, args.epochs, args.lr,
                                                args.batch_size, args.seed, log_every)
        val = history.history["val_loss"]
        results.append((name, n_params(model), len(val), first_epoch_below(val, TARGET_MSE), val[-1], seconds))
        curves[name] = val
        if key in ("lstm", "rnn", "rnn-orthogonal"):
            flows[f"{name}, initial"] = before
            flows[f"{name}, trained"] = gradient_flow(model, val_set[0][:64])
        if key.startswith("rnn"):
            radius[name] = (rho_before, spectral_radius(model))

    print()
    print(f"| {'cell':<24} | {'params':>6} | {'epochs':>6} | {'MSE <= 0.01 at':>14} "
          f"| {'val MSE':>8} | {'seconds':>7} |")
    print(f"|{'-' * 26}|{'-' * 8}|{'-' * 8}|{'-' * 16}|{'-' * 10}|{'-' * 9}|")
    for name, params, epochs, hit, mse, seconds in results:
        hit_text = f"epoch {hit}" if hit else "never"
        print(f"| {name:<24} | {params:>6} | {epochs:>6} | {hit_text:>14} | {mse:>8.5f} | {seconds:>7.1f} |")
    print()
    for name, *_, mse, _ in results:
        verdict = "solved" if mse <= TARGET_MSE else f"{mse / baseline:.0%} of the baseline"
        print(f"{name}: val MSE {mse:.5f} ({verdict})")

    if flows:
        shown = [k for k in (0, 1, 10, 25, args.T - 1) if k < args.T]
        print(f"\ngradient of the prediction reaching the state k steps back, ||d y / d h(T-k)||:")
        print(f"  {'k =':<32}" + "".join(f"{k:>10}" for k in shown))
        for name, norms in flows.items():
            print(f"  {name:<32}" + "".join(f"{norms[k]:>10.1e}" for k in shown))
    for name, (before, after) in radius.items():
        print(f"{name}: spectral radius of the recurrent kernel {before:.2f} initially, {after:.2f} after training")

    os.makedirs(args.out, exist_ok=True)
    fig = plotting.plot_history(curves, title=f"Adding problem, T = {args.T}: validation MSE per epoch")
    ax = fig.axes[0]
    ax.set_yscale("log")
    ax.axhline(BASELINE_MSE, color="0.4", linestyle="--", linewidth=1, label="predict 1 (1/6)")
    ax.axhline(TARGET_MSE, color="0.4", linestyle=":", linewidth=1, label="target 0.01")
    ax.set_ylabel("validation MSE")
    ax.legend()
    fig.savefig(os.path.join(args.out, "val_mse.png"), format="png", dpi=100)
    if flows:
        plotting.plot_gradient_flow(flows, path=os.path.join(args.out, "gradient_flow.png"),
                                    title=f"Gradient of the prediction at the state k steps back "
                                          f"(RMS over 64 sequences), T = {args.T}")
    written = "val_mse.png" + (", gradient_flow.png" if flows else "")
    print(f"plots written to {os.path.abspath(args.out)}: {written}")
    return {name: mse for name, *_, mse, _ in results}


if __name__ == "__main__":
    sys.exit(0 if main() is not None else 1)
