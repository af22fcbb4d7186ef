"""The sine-wave predictor: given 50 values of sin(t), t = 0, 1, 2, ..., predict the 51st.

The task of the article in the project's seed: the sine of 0..199, windows of 50 values
each predicting the next one, the first 100 windows for training and the last 50 for
validation, and a recurrent layer of 100 units. Run it with ``make example-sine``:

    python examples/sine.py [--epochs N] [--hidden H] [--k1 K1] [--k2 K2] [--seed S] [--out DIR] [--quick]

It trains with full backpropagation through time, compares with truncation to the
last ``k2 = 5`` steps (the article's setting), prints the validation RMSE beside the
article's figure (0.127) and writes three PNG plots to the output folder.
"""

import argparse
import os
import sys
import time

import numpy as np

import minidl as mdl
from minidl import data, plotting

ARTICLE_RMSE = 0.127


def make_dataset():
    """Windows of 50 values of sin(0..199) and the value after each: 100 train, 50 validation."""
    series = data.sine_wave(200)
    x, y = data.sliding_windows(series, window=50)  # x: (150, 50, 1), y: (150, 1)
    return (x[:100], y[:100]), (x[100:], y[100:]), series


def build_model(hidden):
    return mdl.Sequential([mdl.RNN(mdl.RNNCell(1, hidden)), mdl.Dense(hidden, 1)])


def train(train_set, val_set, hidden, epochs, k1, k2, seed, lr, callbacks=(), verbose=1):
    """Build a model and fit it with TBPTT(k1, k2); returns (model, history, seconds)."""
    mdl.set_seed(seed)
    model = build_model(hidden)
    optimizer = mdl.Adam(model.parameters(), lr=lr)
    trainer = mdl.TBPTTTrainer(model, mdl.MSELoss(), optimizer, clipper=mdl.ClipByGlobalNorm(1.0),
                               k1=k1, k2=k2, seed=seed)
    start = time.perf_counter()
    history = trainer.fit(*train_set, epochs=epochs, batch_size=20, validation_data=val_set,
                          callbacks=list(callbacks), verbose=verbose)
    return model, history, time.perf_counter() - start


def rmse(model, x, y):
    return float(np.sqrt(np.mean((model.predict(x) - y) ** 2)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=300, help="maximum epochs (early stopping may end sooner)")
    parser.add_argument("--hidden", type=int, default=100, help="units of the recurrent layer")
    parser.add_argument("--k1", type=int, default=None, help="TBPTT k1 of the main run (default: whole sequence)")
    parser.add_argument("--k2", type=int, default=None, help="TBPTT k2 of the main run (default: full BPTT)")
    parser.add_argument("--compare-k2", type=int, default=5, help="k2 of the truncated run in the comparison table")
    parser.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="out/sine", help="folder for the PNG plots")
    parser.add_argument("--quick", action="store_true", help="a few epochs only (used by the tests)")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs = min(args.epochs, 3)

    train_set, val_set, series = make_dataset()
    print(f"data: {len(train_set[0])} training and {len(val_set[0])} validation windows of 50 steps")

    callbacks = [mdl.EarlyStopping(monitor="val_loss", patience=30, restore_best_weights=True)]
    model, history, seconds = train(train_set, val_set, args.hidden, args.epochs, args.k1, args.k2,
                                    args.seed, args.lr, callbacks=callbacks)
    val_rmse = rmse(model, *val_set)

    rows = [("full BPTT" if args.k2 is None else f"TBPTT(k1={args.k1}, k2={args.k2})", len(history.epoch), val_rmse, seconds)]
    truncated, t_hist, t_sec = train(train_set, val_set, args.hidden, args.epochs, None, args.compare_k2, args.seed,
                                     args.lr, callbacks=[mdl.EarlyStopping(patience=30, restore_best_weights=True)],
                                     verbose=0)
    rows.append((f"truncated, k2={args.compare_k2}", len(t_hist.epoch), rmse(truncated, *val_set), t_sec))

    print()
    print(f"| {'training':<22} | {'epochs':>6} | {'val RMSE':>9} | {'seconds':>7} |")
    print(f"|{'-' * 24}|{'-' * 8}|{'-' * 11}|{'-' * 9}|")
    for name, ep, r, sec in rows:
        print(f"| {name:<22} | {ep:>6} | {r:>9.6f} | {sec:>7.1f} |")
    print()
    print(f"validation RMSE: {val_rmse:.5f}   (the article reports {ARTICLE_RMSE})")

    os.makedirs(args.out, exist_ok=True)
    x_val, y_val = val_set
    plotting.plot_history(history, path=os.path.join(args.out, "loss.png"), title="Sine: training and validation loss")
    plotting.plot_predictions(y_val[:, 0], model.predict(x_val)[:, 0], path=os.path.join(args.out, "validation.png"),
                              title="Sine: validation predictions")
    seed_window = series[100:150]
    forecast = data.forecast(model, seed_window, steps=100)
    truth = np.sin(np.arange(150, 250))
    print(f"100-step free-running forecast RMSE: {np.sqrt(np.mean((forecast - truth) ** 2)):.5f}")
    plotting.plot_forecast(truth, forecast, context=seed_window, path=os.path.join(args.out, "forecast.png"),
                           title="Sine: 100-step free-running forecast")
    print(f"plots written to {os.path.abspath(args.out)}: loss.png, validation.png, forecast.png")
    return val_rmse


if __name__ == "__main__":
    sys.exit(0 if main() is not None else 1)
