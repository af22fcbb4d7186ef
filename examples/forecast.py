"""Multi-step forecasting of the Mackey-Glass series: teacher-forced TBPTT training, then an 84-step free run.

The Mackey-Glass delay differential equation with tau = 17,

    dx/dt = 0.2 x(t - tau) / (1 + x(t - tau)^10) - 0.1 x(t),

is integrated here with fourth-order Runge-Kutta at step 0.1 and sampled every
1 time unit, after a transient. A many-to-many model, RNN(LSTMCell or
GRUCell, return_sequences=True) -> Dense(1), reads the training part as one
long stream and learns to predict the next value at every step (teacher
forcing) with TBPTT(k1, k2), k2 > k1. It then forecasts the 84 values after
the end of the training stream on its own: the state is warmed up on the
training stream, and from there each prediction is fed back as the next
input. Run it with ``make example-forecast``:

    python examples/forecast.py [--cell lstm] [--hidden 32] [--epochs 60] [--k1 20] [--k2 40]
                                [--train-length 2000] [--horizon 84] [--seed S] [--out DIR] [--quick]

It prints the normalized RMSE of the forecast (RMSE divided by the standard
deviation of the true values over the forecast), the same over 20 more
forecast origins in the held-out part of the series, and writes three plots.
"""

import argparse
import os
import sys
import time

import numpy as np

import minidl as mdl
from minidl import plotting


def mackey_glass(n, tau=17.0, dt=0.1, sample_every=1.0, transient=1000.0, x0=1.2,
                 beta=0.2, gamma=0.1, power=10):
    """``n`` samples of the Mackey-Glass series, one every ``sample_every`` time units: ``(n,)`` float64.

    Fourth-order Runge-Kutta with step ``dt`` on
    ``dx/dt = beta x(t - tau) / (1 + x(t - tau)^power) - gamma x(t)``,
    from the constant history ``x(t) = x0`` for ``t <= 0``. The delayed value at the
    half steps of RK4 is the mean of the two stored values around it (linear
    interpolation; ``tau`` must be a multiple of ``dt``). The first ``transient``
    time units are dropped.
    """
    lag = int(round(tau / dt))
    every = int(round(sample_every / dt))
    skip = int(round(transient / dt))
    if lag < 1 or abs(lag * dt - tau) > 1e-9 or every < 1 or abs(every * dt - sample_every) > 1e-9:
        raise ValueError(f"mackey_glass: tau={tau} and sample_every={sample_every} must be positive "
                         f"multiples of dt={dt}")
    steps = skip + (n - 1) * every + 1
    x = np.empty(lag + steps)
    x[: lag + 1] = x0  # x[lag + i] is x(i * dt); indices below lag hold the history t < 0

    def f(value, delayed):
        return beta * delayed / (1.0 + delayed**power) - gamma * value

    for i in range(lag, lag + steps - 1):  # a scalar recurrence: each step needs the one before
        d0, d1 = x[i - lag], x[i - lag + 1]
        dm = 0.5 * (d0 + d1)
        v = x[i]
        k1 = f(v, d0)
        k2 = f(v + 0.5 * dt * k1, dm)
        k3 = f(v + 0.5 * dt * k2, dm)
        k4 = f(v + dt * k3, d1)
        x[i + 1] = v + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    return np.ascontiguousarray(x[lag + skip :: every][:n])


def build_model(cell, hidden):
    cell_class = {"lstm": mdl.LSTMCell, "gru": mdl.GRUCell}[cell]
    return mdl.Sequential([mdl.RNN(cell_class(1, hidden), return_sequences=True), mdl.Dense(hidden, 1)])


def free_run(model, context, steps):
    """Warm up on ``context: (B, W)`` with teacher forcing, then predict ``steps`` values per row on its own.

    ``minidl.data.forecast`` with a many-to-many model: a ``Stream`` (eval mode, no history,
    the model itself untouched) reads the whole context in one chunk; its last output is
    the first forecast, which is fed back as the next input, one step at a time for all B
    rows together, the state carried. Returns ``(B, steps)``.
    """
    context = np.asarray(context, dtype=model.dtype)
    return mdl.data.forecast(model, context[:, :, None], steps)[:, :, 0]


def nrmse(truth, forecast):
    """RMSE of ``forecast`` divided by the standard deviation of ``truth`` (all elements)."""
    truth, forecast = np.asarray(truth, np.float64), np.asarray(forecast, np.float64)
    return float(np.sqrt(np.mean((forecast - truth) ** 2)) / np.std(truth))


class EpochLog(mdl.Callback):
    """Prints the one-step training loss after the first epoch and every ``every`` epochs."""

    def __init__(self, every, epochs):
        self.every, self.epochs, self.start = every, epochs, None

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if self.every and ((epoch + 1) % self.every == 0 or epoch == 0):
            print(f"epoch {epoch + 1:>3}/{self.epochs}: one-step MSE {logs['loss']:.2e} (standardized units)"
                  f"  [{time.perf_counter() - self.start:.0f} s]", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cell", choices=("lstm", "gru"), default="lstm")
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--k1", type=int, default=20, help="steps between updates")
    parser.add_argument("--k2", type=int, default=40, help="steps backpropagated through at each update (> k1)")
    parser.add_argument("--lr", type=float, default=0.003, help="Adam learning rate")
    parser.add_argument("--train-length", type=int, default=2000, help="samples in the training stream")
    parser.add_argument("--horizon", type=int, default=84, help="steps of the free-running forecast")
    parser.add_argument("--origins", type=int, default=20, help="more forecast origins in the held-out part")
    parser.add_argument("--seed", type=int, default=0, help="seeds the weights")
    parser.add_argument("--out", default="out/forecast", help="folder for the PNG plots")
    parser.add_argument("--quick", action="store_true", help="a short stream, a tiny model, 2 epochs (tests)")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.hidden, args.train_length, args.origins = min(args.epochs, 2), min(args.hidden, 8), 300, 3
    if args.k2 <= args.k1:
        parser.error(f"--k2 must be larger than --k1, got k1={args.k1}, k2={args.k2}")

    warmup, gap = 200, 50  # context of each held-out forecast; spacing of the held-out origins
    test_length = args.horizon + warmup + (args.origins - 1) * gap + args.horizon
    start = time.perf_counter()
    series = mackey_glass(args.train_length + test_length)
    print(f"Mackey-Glass, tau = 17: {len(series)} samples (RK4, dt = 0.1, one sample per time unit) "
          f"in {time.perf_counter() - start:.2f} s; min {series.min():.3f}, max {series.max():.3f}, "
          f"std {series.std():.3f}")
    train = series[: args.train_length]
    mean, std = train.mean(), train.std()
    z = ((series - mean) / std).astype(np.float32)  # standardized with the training statistics
    stream = z[: args.train_length]
    x, y = stream[None, :-1, None], stream[None, 1:, None]  # one stream: predict the next value at every step
    print(f"training stream: {args.train_length} steps, TBPTT(k1={args.k1}, k2={args.k2}): "
          f"{-(-(args.train_length - 1) // args.k1)} updates per epoch")

    mdl.set_seed(args.seed)
    model = build_model(args.cell, args.hidden)
    optimizer = mdl.Adam(model.parameters(), lr=args.lr)
    trainer = mdl.TBPTTTrainer(model, mdl.MSELoss(), optimizer, clipper=mdl.ClipByGlobalNorm(1.0),
                               k1=args.k1, k2=args.k2, seed=args.seed)
    # the learning rate falls along a cosine to 1% of its start: small late steps polish the one-step fit
    schedule = mdl.CosineAnnealingLR(optimizer, T_max=args.epochs, eta_min=0.01 * args.lr)
    start = time.perf_counter()
    history = trainer.fit(x, y, epochs=args.epochs, batch_size=1, verbose=0,
                          callbacks=[schedule, EpochLog(0 if args.quick else 10, args.epochs)])
    seconds = time.perf_counter() - start

    # the forecast from the end of the training stream
    truth = series[args.train_length : args.train_length + args.horizon]
    forecast = free_run(model, stream[None], args.horizon)[0].astype(np.float64) * std + mean
    main_nrmse = nrmse(truth, forecast)
    # more origins in the held-out part, each warmed up on the 200 values before it
    origins = args.train_length + args.horizon + warmup + gap * np.arange(args.origins)
    contexts = z[origins[:, None] + np.arange(-warmup, 0)]                 # (origins, warmup)
    truths = series[origins[:, None] + np.arange(args.horizon)]            # (origins, horizon)
    forecasts = free_run(model, contexts, args.horizon).astype(np.float64) * std + mean
    held_out = nrmse(truths, forecasts)
    per_origin = np.sqrt(np.mean((forecasts - truths) ** 2, axis=1)) / truths.std(axis=1)
    naive = nrmse(truth, np.full_like(truth, series[args.train_length - 1]))

    print()
    print(f"{args.cell.upper()} with {args.hidden} units, {sum(p.data.size for p in model.parameters())} parameters, "
          f"{len(history.epoch)} epochs in {seconds:.0f} s; final one-step MSE {history.history['loss'][-1]:.2e}")
    print(f"{args.horizon}-step forecast from the end of the training stream: NRMSE {main_nrmse:.4f}   "
          f"(repeating the last value: {naive:.4f})")
    print(f"{args.horizon}-step forecasts from {args.origins} held-out origins: NRMSE {held_out:.4f} overall, "
          f"per origin median {np.median(per_origin):.4f}, worst {np.max(per_origin):.4f}")

    os.makedirs(args.out, exist_ok=True)
    plotting.plot_history(history, path=os.path.join(args.out, "loss.png"),
                          title="Mackey-Glass: one-step training MSE (standardized units)")
    context = series[args.train_length - 200 : args.train_length]
    plotting.plot_forecast(truth, forecast, context=context, path=os.path.join(args.out, "forecast.png"),
                           title=f"Mackey-Glass: {args.horizon}-step free run after the training stream "
                                 f"(its last 200 values shown), NRMSE {main_nrmse:.3f}")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.0, 4.0), layout="constrained")
    ax = fig.subplots()
    steps = np.arange(1, args.horizon + 1)
    ax.plot(steps, np.sqrt(np.mean((forecasts - truths) ** 2, axis=0)) / np.std(truths),
            label=f"{args.origins} held-out origins")
    ax.plot(steps, np.abs(forecast - truth) / np.std(truth), label="end of the training stream", alpha=0.7)
    ax.set_yscale("log")
    ax.set_xlabel("forecast step")
    ax.set_ylabel("error / std of the truth")
    ax.set_title("Mackey-Glass: error of the free run against the forecast step")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.savefig(os.path.join(args.out, "error_by_step.png"), format="png", dpi=100)
    print(f"plots written to {os.path.abspath(args.out)}: loss.png, forecast.png, error_by_step.png")
    return main_nrmse


if __name__ == "__main__":
    sys.exit(0 if main() is not None else 1)
