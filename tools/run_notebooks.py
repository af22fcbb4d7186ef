"""Execute the notebooks of examples/notebooks/ top to bottom (``make notebooks``).

    python tools/run_notebooks.py [NAME ...] [--out DIR]

Each notebook runs in a fresh Python kernel, in its own folder, with matplotlib's
inline backend; the executed copy, with its outputs and plots, is written to
``DIR/<name>.ipynb`` (default ``out/notebooks``), so the committed notebooks stay
without outputs. A cell that raises stops that notebook and the run fails.
``tests/test_notebooks.py`` runs the same function.
"""

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "examples" / "notebooks"


def notebooks():
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def execute(path, timeout=600):
    """Run the notebook at ``path``; returns the executed ``NotebookNode`` (outputs filled in)."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(Path(path).parent)}})
    client.execute()
    return nb


def images(nb):
    """How many PNG images the executed notebook shows."""
    return sum("image/png" in out.get("data", {}) for cell in nb.cells if cell.cell_type == "code"
               for out in cell.get("outputs", []))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="notebook names (default: all), e.g. sine")
    parser.add_argument("--out", default=str(ROOT / "out" / "notebooks"))
    args = parser.parse_args(argv)
    paths = [NOTEBOOKS / f"{n.removesuffix('.ipynb')}.ipynb" for n in args.names] or notebooks()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for path in paths:
        start = time.perf_counter()
        nb = execute(path)
        nbformat.write(nb, out / path.name)
        print(f"{path.name}: {len(nb.cells)} cells, {images(nb)} plots, {time.perf_counter() - start:.1f} s "
              f"-> {out / path.name}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
