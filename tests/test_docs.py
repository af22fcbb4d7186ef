"""The documentation runs: every ```python block of README.md and docs/*.md.

Each Markdown file is one test (id = file name). Its ```python blocks run in
order in one shared namespace, in a fresh temporary working directory, with
matplotlib's Agg backend. Blocks fenced as ```text, ```console, ```bash (or any
other language) are shown, not run. A failing block is reported with the file
and the line of its opening fence; tracebacks point at lines of the Markdown
file itself. New pages under docs/ are picked up without editing this module.

The cells and layers that docs/custom-cell.md and docs/custom-layer.md teach
users to write are then taken out of the executed pages and checked here in
more settings than the pages show (both ``return_sequences``, a carried state,
2-D and 3-D input, saving and loading).
"""

import os
import re
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import pytest

import minidl as mdl
from tests.helpers import assert_fit_is_one_manual_step

ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))

# A page's blocks should take well under 2 s; this generous cap only catches a
# page that has become a benchmark (the machine running the suite may be busy).
PAGE_TIME_LIMIT = 15.0

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\s`]*)[^`]*$")


# Namespaces of the pages run by test_doc_page_runs, reused by the fixtures below so
# that a class the page defines is defined (and registered for load_model) once.
_EXECUTED = {}


class DocBlockError(AssertionError):
    """A ```python block of a Markdown file raised."""


def extract_blocks(text):
    """Fenced code blocks of a Markdown text as ``(language, first_line, code)``.

    ``first_line`` is the 1-based line of the opening fence; ``code`` is the
    block's content with the fence's indentation removed. An unclosed fence
    is a ``ValueError`` (a page whose rest would silently vanish).
    """
    blocks = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, info = m.group("indent"), m.group("fence"), m.group("info").lower()
        start = i + 1
        body = []
        i += 1
        while i < len(lines):
            stripped = lines[i].strip()
            if stripped.startswith(fence[0] * len(fence)) and set(stripped) == {fence[0]}:
                break
            line = lines[i]
            body.append(line[len(indent):] if line.startswith(indent) else line.lstrip())
            i += 1
        else:
            raise ValueError(f"line {start}: code fence {fence}{info} is never closed")
        blocks.append((info, start, "\n".join(body) + "\n"))
        i += 1
    return blocks


def python_blocks(path):
    """The ```python blocks of the Markdown file ``path``: ``[(first_line, code)]``."""
    blocks = extract_blocks(Path(path).read_text(encoding="utf-8"))
    return [(start, code) for info, start, code in blocks if info in ("python", "py", "python3")]


def run_markdown(path, namespace=None):
    """Run the ```python blocks of ``path`` in order in one namespace; return it.

    Code is compiled under the file's name with its own line numbers, so a
    traceback reads ``File "docs/layers.md", line 57``. A failing block raises
    ``DocBlockError`` naming the file and the line of the block's opening fence.
    """
    path = Path(path)
    try:
        shown = str(path.relative_to(ROOT))
    except ValueError:
        shown = str(path)
    if namespace is None:
        namespace = {"__name__": f"__doc_{path.stem.replace('-', '_')}__"}
    for start, code in python_blocks(path):
        # ``start`` blank lines put the block's first code line at line start + 1.
        source = "\n" * start + code
        try:
            exec(compile(source, shown, "exec"), namespace)
        except Exception as err:
            tb = "".join(traceback.format_exception(type(err), err, err.__traceback__.tb_next))
            raise DocBlockError(
                f"{shown}: the python block starting at line {start} failed: {type(err).__name__}: {err}\n{tb}"
            ) from err
    return namespace


@pytest.fixture
def doc_env(tmp_path, monkeypatch):
    """A temporary working directory and a non-interactive matplotlib backend."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    if "matplotlib" in sys.modules:
        sys.modules["matplotlib"].use("Agg")
    yield tmp_path
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


@pytest.mark.parametrize("path", DOC_FILES, ids=[p.name for p in DOC_FILES])
def test_doc_page_runs(path, doc_env):
    assert path.is_file(), f"{path} is missing"
    if not python_blocks(path):
        pytest.skip(f"{path.name} has no python blocks")
    t0 = time.perf_counter()
    failure = None
    try:
        _EXECUTED[path.name] = run_markdown(path)
    except DocBlockError as err:
        failure = str(err)
    if failure is not None:  # outside the except: report the page's traceback only, once
        pytest.fail(failure, pytrace=False)
    elapsed = time.perf_counter() - t0
    assert elapsed < PAGE_TIME_LIMIT, f"{path.name}: the python blocks took {elapsed:.1f} s (keep each page under 2 s)"


# ---- the runner itself ------------------------------------------------------------------------
def test_runner_reports_file_and_line_of_failing_block(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n"
        "\n"
        "```python\n"          # line 3
        "a = 1\n"
        "```\n"
        "\n"
        "```text\n"            # not run
        "this is not python\n"
        "```\n"
        "\n"
        "```python\n"          # line 11: shares the namespace, fails on its second line
        "b = a + 1\n"
        "assert b == 3, 'b is ' + str(b)\n"
        "```\n",
        encoding="utf-8",
    )
    assert [start for start, _ in python_blocks(page)] == [3, 11]
    with pytest.raises(DocBlockError) as info:
        run_markdown(page)
    message = str(info.value)
    assert "page.md: the python block starting at line 11 failed" in message
    assert "AssertionError: b is 2" in message
    assert "line 13" in message  # the traceback points at the Markdown line of the assert


def test_runner_ignores_other_languages_and_strips_list_indentation():
    text = (
        "1. step\n"
        "   ```python\n"
        "   x = [1,\n"
        "        2]\n"
        "   ```\n"
        "```console\n"
        "$ make test\n"
        "```\n"
        "````markdown\n"
        "```python\n"
        "nested, shown only\n"
        "```\n"
        "````\n"
    )
    blocks = extract_blocks(text)
    assert [(info, start) for info, start, _ in blocks] == [("python", 2), ("console", 6), ("markdown", 9)]
    assert blocks[0][2] == "x = [1,\n     2]\n"
    with pytest.raises(ValueError, match="line 1: code fence"):
        extract_blocks("```python\nx = 1\n")


def test_every_page_is_collected():
    names = {p.name for p in DOC_FILES}
    for name in ("README.md", "index.md", "layers.md", "custom-cell.md", "custom-layer.md"):
        assert name in names


# Pages that the docs already link to and that arrive with the trainer.
PENDING_PAGES = {"tbptt.md", "training.md", "sine-example.md"}
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def test_relative_links_resolve():
    missing, pending = [], []
    for path in DOC_FILES:
        text = path.read_text(encoding="utf-8")
        for target in _LINK.findall(text):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue
            file_part = target.split("#", 1)[0]
            if (path.parent / file_part).exists():
                continue
            (pending if Path(file_part).name in PENDING_PAGES else missing).append(f"{path.name} -> {target}")
    assert not missing, f"broken relative links: {missing}"
    if pending:
        pytest.skip(f"links to pages not written yet: {sorted(set(pending))}")


# ---- the user-written cell and layer that the guides build -------------------------------------
def _defined_in(namespace, base):
    """The subclasses of ``base`` that the executed page itself defines."""
    found = [
        v for v in namespace.values()
        if isinstance(v, type) and issubclass(v, base) and v.__module__ == namespace["__name__"]
    ]
    return found


def _page_namespace(name, tmp_path_factory):
    """The namespace of docs/<name> as run by its page test, else from a fresh run."""
    if name in _EXECUTED:
        return _EXECUTED[name]
    cwd = os.getcwd()
    os.chdir(tmp_path_factory.mktemp(name.replace(".", "_")))
    try:
        return run_markdown(ROOT / "docs" / name)
    finally:
        os.chdir(cwd)
        mdl.set_default_dtype(np.float32)


@pytest.fixture(scope="module")
def custom_cell_class(tmp_path_factory):
    ns = _page_namespace("custom-cell.md", tmp_path_factory)
    classes = _defined_in(ns, mdl.Cell)
    assert len(classes) == 1, f"docs/custom-cell.md should define exactly one Cell subclass, found {classes}"
    return classes[0]


@pytest.fixture(scope="module")
def custom_layer_class(tmp_path_factory):
    ns = _page_namespace("custom-layer.md", tmp_path_factory)
    classes = [c for c in _defined_in(ns, mdl.Layer) if not issubclass(c, mdl.Cell)]
    assert len(classes) == 1, f"docs/custom-layer.md should define exactly one Layer subclass, found {classes}"
    return classes[0]


def _require_load_model():
    if not hasattr(mdl, "load_model") or not callable(getattr(mdl.Sequential, "save", None)):
        pytest.skip("minidl has no Sequential.save / load_model yet: the save/load round trip is not checked")


@pytest.mark.parametrize("return_sequences", [False, True])
def test_custom_cell_gradcheck_through_rnn(custom_cell_class, float64, return_sequences):
    mdl.set_seed(7)
    cell = custom_cell_class(3, 4)
    assert cell.dtype == np.float64
    x = np.random.default_rng(0).standard_normal((2, 5, 3))
    assert mdl.gradcheck(mdl.RNN(cell, return_sequences=return_sequences), x)


def test_custom_cell_stateful_carry(custom_cell_class, float64):
    mdl.set_seed(8)
    cell = custom_cell_class(2, 3)
    x = np.random.default_rng(1).standard_normal((2, 7, 2))
    full = mdl.RNN(cell, return_sequences=True).forward(x)

    stateful = mdl.RNN(cell, return_sequences=True, stateful=True)
    first = stateful.forward(x[:, :4])
    second = stateful.forward(x[:, 4:])
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), full, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(stateful.state_at(0)[0], full[:, 3], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(stateful.get_state()[0], full[:, -1], rtol=1e-12, atol=1e-12)

    # Gradients with the carried state as the (constant) starting point.
    assert mdl.gradcheck(stateful, x[:, 4:])
    stateful.reset_states()
    np.testing.assert_allclose(stateful.forward(x[:, :4]), full[:, :4], rtol=1e-12, atol=1e-12)


def test_custom_cell_state_gradient(custom_cell_class, float64):
    """``initial_state_grad`` (the cell's dstate_prev chained over time) against differences."""
    mdl.set_seed(9)
    rnn = mdl.RNN(custom_cell_class(2, 3), stateful=True)
    rng = np.random.default_rng(2)
    x, h0, g = rng.standard_normal((2, 4, 2)), rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    rnn.set_state((h0,))
    rnn.forward(x)
    rnn.backward(g)
    analytic = rnn.initial_state_grad[0]
    numeric = np.empty_like(h0)
    eps = 1e-6
    for idx in np.ndindex(h0.shape):
        values = []
        for sign in (1, -1):
            h = h0.copy()
            h[idx] += sign * eps
            rnn.set_state((h,))
            values.append(np.sum(rnn.forward(x) * g))
        numeric[idx] = (values[0] - values[1]) / (2 * eps)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_custom_cell_in_sequential_save_load(custom_cell_class, tmp_path):
    mdl.set_seed(10)
    model = mdl.Sequential([mdl.RNN(custom_cell_class(2, 5)), mdl.Dense(5, 1)])
    x = np.random.default_rng(3).standard_normal((3, 6, 2)).astype(np.float32)
    _require_load_model()
    path = tmp_path / "cell_model.npz"
    model.save(path)
    loaded = mdl.load_model(path)
    assert type(loaded.layers[0].cell) is custom_cell_class
    assert loaded.state_dict().keys() == model.state_dict().keys()
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[name], value)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


@pytest.mark.parametrize("shape", [(4, 3), (2, 5, 3)], ids=["2d", "3d"])
def test_custom_layer_gradcheck(custom_layer_class, float64, shape):
    mdl.set_seed(11)
    layer = custom_layer_class(3, 2)
    x = np.random.default_rng(4).standard_normal(shape)
    assert mdl.gradcheck(layer, x)


def test_custom_layer_values_and_sequential(custom_layer_class, float64):
    mdl.set_seed(12)
    layer = custom_layer_class(3, 2)
    W, b, V, c = (layer.kernel.data, layer.bias.data, layer.gate_kernel.data, layer.gate_bias.data)
    assert [a.shape for a in (W, b, V, c)] == [(3, 2), (2,), (3, 2), (2,)]
    assert len(layer.parameters()) == 4
    x = np.random.default_rng(5).standard_normal((2, 4, 3))
    expected = (x @ W + b) / (1.0 + np.exp(-(x @ V + c)))
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12, atol=1e-12)

    model = mdl.Sequential([mdl.RNN(mdl.GRUCell(3, 4), return_sequences=True), custom_layer_class(4, 2), mdl.Dense(2, 1)])
    assert mdl.gradcheck(model, x)


def test_custom_layer_save_load(custom_layer_class, tmp_path):
    mdl.set_seed(13)
    model = mdl.Sequential([mdl.RNN(mdl.LSTMCell(2, 4)), custom_layer_class(4, 3), mdl.Dense(3, 1)])
    x = np.random.default_rng(6).standard_normal((3, 5, 2)).astype(np.float32)
    _require_load_model()
    path = tmp_path / "layer_model.npz"
    model.save(path)
    loaded = mdl.load_model(path)
    assert type(loaded.layers[1]) is custom_layer_class
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_custom_cell_in_trainer(custom_cell_class):
    """The trainer drives the page's cell: full-BPTT fit == one manual step; TBPTT runs."""
    if not hasattr(mdl, "TBPTTTrainer"):
        pytest.skip("minidl has no TBPTTTrainer yet")
    rng = np.random.default_rng(7)
    x = rng.standard_normal((6, 8, 2)).astype(np.float32)
    y = rng.standard_normal((6, 1)).astype(np.float32)

    def build():
        mdl.set_seed(14)
        return mdl.Sequential([mdl.RNN(custom_cell_class(2, 3)), mdl.Dense(3, 1)])

    assert_fit_is_one_manual_step(build, mdl.MSELoss, x, y, lr=0.1, rtol=1e-5)

    ys = rng.standard_normal((6, 8, 1)).astype(np.float32)
    seq = mdl.Sequential([mdl.RNN(custom_cell_class(2, 3), return_sequences=True), mdl.Dense(3, 1)])
    history = mdl.TBPTTTrainer(seq, mdl.MSELoss(), mdl.Adam(seq.parameters(), lr=0.01), k1=3, k2=5, seed=0).fit(
        x, ys, epochs=2, batch_size=3, verbose=0
    )
    assert len(history.history["loss"]) == 2 and np.all(np.isfinite(history.history["loss"]))
