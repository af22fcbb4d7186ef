"""``python -m benchmarks`` (``make bench``): minidl against PyTorch and a naive numpy loop.

    python -m benchmarks [--quick] [--only NAME[,NAME]] [--reps N] [--out DIR]

Prints the machine, a Markdown table (figure, reference, ratio, target, pass/fail) and
the scaling details, and writes ``results.md``, ``results.json`` and ``benchmarks.png``
to ``--out`` (default ``benchmarks/out``). The workloads are described in their modules
and in docs/performance.md.
"""

import argparse
import json
import os
import sys
import time

from . import activations, forward_backward, masked, memory, overhead, scaling, seq2seq, sine, soak, varlen
from .common import NOISY, OutsideLoad, Settings, load_torch, torch_error
from .machine import machine_info
from .report import machine_lines, markdown_table, scaling_table, write_figure

WORKLOADS = {"sine": sine, "overhead": overhead, "forward_backward": forward_backward, "masked": masked,
             "seq2seq": seq2seq, "varlen": varlen, "activations": activations, "memory": memory, "scaling": scaling,
             "soak": soak}
ALIASES = {"fwdbwd": "forward_backward", "mem": "memory", "act": "activations", "classify": "varlen"}
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes and few repetitions (for the tests)")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help=f"run only these workloads ({', '.join(WORKLOADS)}); repeat or separate with commas")
    parser.add_argument("--reps", type=int, default=None, metavar="N", help="timed repetitions per block (>= 1)")
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help="folder for results.md/json and the PNG")
    args = parser.parse_args(argv)
    if args.reps is not None and args.reps < 1:
        parser.error(f"--reps must be >= 1, got {args.reps}")
    names = []
    for item in args.only:
        for name in filter(None, (s.strip() for s in item.split(","))):
            name = ALIASES.get(name, name)
            if name not in WORKLOADS:
                parser.error(f"--only: unknown workload {name!r}; expected one of {', '.join(WORKLOADS)}")
            if name not in names:
                names.append(name)
    args.names = names or list(WORKLOADS)
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    settings = Settings(quick=args.quick, reps=args.reps)
    if load_torch() is None:
        print(f"note: PyTorch is not importable ({torch_error()}); its references are skipped")
    info = machine_info()
    print("machine:")
    print("\n".join(machine_lines(info)))
    print(f"mode: {'quick' if args.quick else 'full'}; workloads: {', '.join(args.names)}\n", flush=True)

    results, outside = {}, {}
    start = time.perf_counter()
    with OutsideLoad() as whole:
        for name in args.names:
            t0 = time.perf_counter()
            print(f"running {name} ...", end=" ", flush=True)
            seen = len(settings.noise)
            with OutsideLoad() as load:
                results[name] = WORKLOADS[name].run(settings)
            outside[name] = load.cores
            print(f"{time.perf_counter() - t0:.1f} s{_load_text(load.cores, settings.noise[seen:])}", flush=True)
    total = time.perf_counter() - start
    info["outside_load"] = _load_summary(whole.cores, outside)
    dirty = [n["block"] for n in settings.noise if not n["clean"]]
    info["disturbed_blocks"] = ", ".join(dirty) if dirty else "none"

    rows = [row for r in results.values() for row in r.rows]
    table = markdown_table(rows)
    sections = [table]
    if "scaling" in results:
        sections.append(scaling_table(results["scaling"].plot["curves"], results["scaling"].plot["labels"]))
    if "overhead" in results:
        sections.append("Profile summary:\n\n- " + overhead.profile_line(results["overhead"].raw))
    print()
    print("\n\n".join(sections))

    os.makedirs(args.out, exist_ok=True)
    png = os.path.join(args.out, "benchmarks.png")
    write_figure(results, png)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write("Machine:\n\n" + "\n".join(machine_lines(info)) + "\n\n")
        f.write(f"Mode: {'quick' if args.quick else 'full'}, total {total:.0f} s; "
                f"CPU used by other processes during the run: {info['outside_load']}; timed blocks still "
                f"disturbed after retries: {info['disturbed_blocks']}.\n\n")
        f.write("\n\n".join(sections) + "\n")
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"machine": info, "quick": args.quick, "seconds": total, "noise": settings.noise,
                   "rows": [_row_json(r) for r in rows],
                   "raw": {name: r.raw for name, r in results.items()}}, f, indent=1, default=float)
    print(f"\nCPU used by other processes during the run: {info['outside_load']}")
    print(f"timed blocks still disturbed after retries: {info['disturbed_blocks']}")
    print(f"total {total:.1f} s; wrote {png}, results.md and results.json in {args.out}")
    return 0


def _load_text(cores, noise):
    text = "" if cores is None else f" (other processes used {cores:.2f} cores on average)"
    retried = sum(1 for n in noise if n["retries"])
    if retried:
        text += f"; {retried} timed block(s) measured again because other processes were busy"
    dirty = [n["block"] for n in noise if not n["clean"]]
    if dirty:
        text += (f"\nwarning: still disturbed after retries (> {NOISY} cores used by other processes): "
                 f"{', '.join(dirty)}; those figures are unreliable")
    return text


def _load_summary(total, per_workload):
    if total is None:
        return "unknown (no /proc/stat)"
    parts = ", ".join(f"{name} {c:.2f}" for name, c in per_workload.items() if c is not None)
    return f"{total:.2f} cores on average over the run ({parts})"


def _row_json(r):
    return {"workload": r.workload, "measure": r.case, "minidl": r.minidl, "reference": r.reference,
            "ratio": r.ratio, "target": None if r.target is None else str(r.target), "passed": r.passed,
            "note": r.note}


if __name__ == "__main__":
    sys.exit(main())
