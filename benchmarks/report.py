"""The outputs of a run: the Markdown tables and the PNG figure (matplotlib Figure API, Agg)."""

import numpy as np

from .common import fmt_bytes, fmt_ratio, fmt_seconds

TABLE_HEADER = ("workload", "measure", "minidl", "reference", "ratio", "target", "result")
RATIO_NOTE = (
    "ratio: minidl / reference, measured in the same run (windows per second: higher is better; "
    "times per batch or per element: lower is better); for memory, peak(long) / peak(short)."
)


def _result_cell(row):
    if row.note == "skipped":
        return "skipped"
    passed = row.passed
    return "-" if passed is None else ("pass" if passed else "**FAIL**")


def markdown_table(rows):
    """The main table: one line per row, with the target and pass/fail."""
    lines = ["| " + " | ".join(TABLE_HEADER) + " |", "|" + "---|" * len(TABLE_HEADER)]
    for r in rows:
        cells = (r.workload, r.case, r.minidl, r.reference, fmt_ratio(r.ratio),
                 "-" if r.target is None else str(r.target), _result_cell(r))
        lines.append("| " + " | ".join(cells) + " |")
    notes = [f"- {r.workload}: {r.note}" for r in rows if r.note and r.note != "skipped"]
    return "\n".join(lines + ["", RATIO_NOTE] + ([""] + notes if notes else []))


def scaling_table(curves, labels):
    """Per-point times of the scaling workload and the fitted slopes, one table per axis."""
    impls = sorted({name for c in curves.values() for name in c}, key=lambda n: n != "minidl")
    head = ["size"] + [f"{n} per batch" for n in impls]
    lines = []
    for axis, c in curves.items():
        lines += [f"{labels[axis]}:", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for i, size in enumerate(c[impls[0]]["sizes"]):
            cells = [str(size)] + [fmt_seconds(c[n]["seconds"][i]) if n in c else "-" for n in impls]
            lines.append("| " + " | ".join(cells) + " |")
        slopes = [f"{c[n]['slope']:.2f}" if n in c else "-" for n in impls]
        lines += ["| slope k (time ~ size^k) | " + " | ".join(slopes) + " |", ""]
    return "\n".join(lines).rstrip()


def machine_lines(info):
    keys = (("cpu", "CPU"), ("logical_cpus", "logical CPUs"), ("usable_cpus", "usable CPUs"),
            ("load_average", "load average at start"), ("python", "Python"), ("minidl", "minidl"), ("numpy", "numpy"),
            ("blas", "BLAS"), ("cpu_kind", "CPU kind"), ("threadpools", "thread pools"), ("torch", "PyTorch"), ("platform", "platform"))
    return [f"- {label}: {info[k]}" for k, label in keys if k in info]


def write_figure(results, path):
    """Write the PNG: sine throughput, forward+backward times, memory, and the three scaling plots."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 9), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 3)
    colors = {"minidl": "tab:blue", "torch": "tab:orange", "naive": "tab:gray", "floor": "tab:green",
              "article": "tab:red"}

    ax = axes[0, 0]
    if "sine" in results:
        rates = results["sine"].plot["rates"]
        names = list(rates)
        ax.bar(names, [rates[n] for n in names], color=[colors[n] for n in names])
        ax.set_yscale("log")
        for i, n in enumerate(names):
            ax.annotate(f"{rates[n]:,.0f}", (i, rates[n]), ha="center", va="bottom")
        ax.set_ylabel("windows / second (log)")
        ax.set_title("sine training throughput")
    else:
        _not_run(ax, "sine training")

    ax = axes[0, 1]
    if "forward_backward" in results:
        bars = results["forward_backward"].plot["bars"]
        xs = range(len(bars))
        width = 0.4
        ax.bar([i - width / 2 for i in xs], [b[1] * 1e3 for b in bars], width, label="minidl", color=colors["minidl"])
        if any(b[2] is not None for b in bars):
            ax.bar([i + width / 2 for i in xs], [(b[2] or 0) * 1e3 for b in bars], width, label="torch",
                   color=colors["torch"])
        for i, b in enumerate(bars):
            if b[2]:
                top = max(b[1], b[2]) * 1e3
                ax.annotate(f"{b[1] / b[2]:.2f}x", (i, top), ha="center", va="bottom")
        ax.set_xticks(list(xs), [b[0] for b in bars])
        ax.set_ylabel("ms per batch")
        ax.set_title("forward + backward, one batch (label: minidl / torch)")
        ax.legend()
    else:
        _not_run(ax, "forward + backward")

    ax = axes[0, 2]
    if "memory" in results:
        peaks = results["memory"].plot["peaks"]
        steps = list(peaks)
        ax.bar([f"{s:,} steps" for s in steps], [peaks[s] / 2**20 for s in steps], color=colors["minidl"])
        for i, s in enumerate(steps):
            ax.annotate(fmt_bytes(peaks[s]), (i, peaks[s] / 2**20), ha="center", va="bottom")
        ax.set_ylabel("peak traced memory of fit (MiB)")
        ax.set_title("TBPTT memory, one stream")
    else:
        _not_run(ax, "TBPTT memory")

    for ax, axis in zip(axes[1], ("steps", "hidden", "batch")):
        if "scaling" not in results:
            _not_run(ax, f"scaling with {axis}")
            continue
        curves, labels = results["scaling"].plot["curves"], results["scaling"].plot["labels"]
        for name, c in curves[axis].items():
            sizes, secs = np.asarray(c["sizes"], float), np.asarray(c["seconds"], float)
            ax.loglog(sizes, secs, "o", color=colors[name], label=f"{name}: slope {c['slope']:.2f}")
            # the fitted line through the geometric means: log t = k log s + const
            const = np.mean(np.log(secs)) - c["slope"] * np.mean(np.log(sizes))
            ax.loglog(sizes, np.exp(const) * sizes ** c["slope"], "--", color=colors[name], alpha=0.7)
        ax.set_xticks(c["sizes"], [str(v) for v in c["sizes"]])
        ax.minorticks_off()
        ax.set_xlabel(labels[axis])
        ax.set_ylabel("seconds per mini-batch")
        ax.set_title(f"training time vs {labels[axis]} (log-log)")
        ax.legend()
        ax.grid(True, which="both", alpha=0.3)
    fig.savefig(path, dpi=90)


def _not_run(ax, title):
    ax.set_axis_off()
    ax.set_title(title)
    ax.text(0.5, 0.5, "not run", ha="center", va="center", transform=ax.transAxes)
