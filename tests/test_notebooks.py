"""The notebooks of examples/notebooks/ run top to bottom (tools/run_notebooks.py) and show their plots.

They need the ``notebook`` extra (nbclient, nbformat, ipykernel); without it the tests skip,
saying so. ``.ci/run`` installs it.
"""

import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
pytest.importorskip("nbclient", reason="the notebook extra is not installed: pip install -e '.[notebook]'")
pytest.importorskip("ipykernel", reason="the notebook extra is not installed: pip install -e '.[notebook]'")

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("run_notebooks", ROOT / "tools" / "run_notebooks.py")
run_notebooks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run_notebooks)

# name: (plots it must show, texts its outputs must hold)
EXPECTED = {
    "sine": (5, ["x_train (100, 50, 1) y_train (100, 1)", "gradcheck passed", "gradcheck refused it"]),
    "seq2seq": (2, ["gradcheck passed for both inputs", "12+34 = 46  ok"]),
    "custom_cell": (1, ["gradcheck passed, many-to-many and many-to-one", "differs at", "DiagonalCell"]),
}


def test_every_notebook_is_listed_here():
    assert sorted(p.stem for p in run_notebooks.notebooks()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_notebook_runs_top_to_bottom(name):
    path = run_notebooks.NOTEBOOKS / f"{name}.ipynb"
    committed = path.read_text()
    nb = run_notebooks.execute(path)
    plots, texts = EXPECTED[name]
    assert run_notebooks.images(nb) == plots
    printed = "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs)
    for text in texts:
        assert text in printed, text
    assert path.read_text() == committed                       # executing never writes the committed file
    assert '"outputs": []' in committed and '"image/png"' not in committed   # committed without outputs
