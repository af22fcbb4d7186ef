"""docs/api.md and docs/reference/*.md are generated from the package (tools/api_reference.py) and
must be up to date; the site's configuration (mkdocs.yml) lists every page; the docstrings they
render keep the Google style of docs/architecture.md ("Docstrings"): each argument once in
``Args:``, ``Returns:`` and ``Raises:`` where due, forward and backward math for layers and cells."""

import ast
import importlib.util
import inspect
import re
import textwrap
from pathlib import Path

import minidl as mdl
from minidl import _checks

# The validation vocabulary (each raises TypeError / ValueError naming the argument).
VALIDATORS = {n for n, o in vars(_checks).items() if inspect.isfunction(o) and not n.startswith("_")} - {"fmt_shape"}

TOOL = Path(__file__).resolve().parent.parent / "tools" / "api_reference.py"


def load_tool():
    spec = importlib.util.spec_from_file_location("api_reference", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_api_page_is_up_to_date():
    tool = load_tool()
    assert tool.PAGE.read_text() == tool.render(), "docs/api.md is stale: run python tools/api_reference.py"
    paths, wanted = tool.stale()
    assert not paths, f"stale: {[str(p) for p in paths]}: run python tools/api_reference.py"
    assert set(tool.REFERENCE.glob("*.md")) == {p for p in wanted if p.parent == tool.REFERENCE}


def test_reference_pages_name_every_public_name():
    pages = "".join(load_tool().render_reference().values())
    for name in (n for n in vars(mdl) if not n.startswith("_")):
        if isinstance(getattr(mdl, name), type) or (callable(getattr(mdl, name)) and name != "annotations"):
            assert f"::: minidl.{name}\n" in pages, name
    assert "::: minidl.init.Orthogonal\n" in pages and "::: minidl.text.Vocabulary\n" in pages


def test_every_docs_page_is_in_the_site_nav_and_every_nav_entry_exists():
    root = TOOL.parent.parent
    nav = re.findall(r"^\s+- (?:[^:\n]+: )?(\S+\.md)$", (root / "mkdocs.yml").read_text(), re.M)
    docs = root / "docs"
    pages = {str(p.relative_to(docs)) for p in docs.rglob("*.md")}
    assert len(nav) == len(set(nav)), "a page is twice in the nav"
    assert set(nav) == pages, f"missing from the nav: {sorted(pages - set(nav))}; not a page: {sorted(set(nav) - pages)}"


def test_api_page_names_every_public_name_with_a_summary():
    text = load_tool().render()
    for name in (n for n in vars(mdl) if not n.startswith("_")):
        obj = getattr(mdl, name)
        if isinstance(obj, type) or callable(obj):
            assert f"`mdl.{name}(" in text, name
    assert "(no docstring)" not in text


# The docstring style (Google, docs/architecture.md "Docstrings"): every public class (its
# __init__) and function, and every public method of the classes users extend, documents
# each of its parameters exactly once in an ``Args:`` section, one ``name: text`` per entry.
SECTION = re.compile(r"^(\s*)(Args|Arguments|Parameters|Returns|Yields|Raises|Shapes|Attributes|"
                     r"Examples?|Notes?|Warns|Warnings|See Also|References|Math):\s*$")


def documented_args(doc):
    """The names of the ``Args:`` entries of ``doc`` (in order, repeats kept), or None without one."""
    lines = doc.splitlines()
    starts = [i for i, line in enumerate(lines) if (m := SECTION.match(line)) and m.group(2) == "Args"]
    if not starts:
        return None
    names, indent = [], None
    for line in lines[starts[0] + 1:]:
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        if SECTION.match(line) and (indent is None or depth < indent):
            break
        if indent is None:
            indent = depth
        if depth < indent:
            break
        if depth == indent:
            m = re.match(r"\s*\**([A-Za-z_][A-Za-z0-9_]*)(?:\s*\([^)]*\))?:(\s|$)", line)
            names.append(m.group(1) if m else line.strip())
    return names


def parameters(func, method):
    """``(wanted, allowed)``: the names an ``Args:`` section must name (all but self, cls,
    ``*args`` and ``**kwargs``) and those it may name (``*args`` and ``**kwargs`` too)."""
    params = list(inspect.signature(func).parameters.values())
    if method and params and params[0].name in ("self", "cls"):
        params = params[1:]
    wanted = [p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return wanted, [p.name for p in params]


def docstring_problems(label, func, doc, method=False):
    try:
        wanted, allowed = parameters(func, method)
    except (TypeError, ValueError):
        return []
    if not doc or not doc.strip():
        return [f"{label}: no docstring"]
    if not wanted:
        return []
    names = documented_args(doc)
    if names is None:
        return [f"{label}: no Args: section for {wanted}"]
    problems = []
    for name in names:
        if name not in allowed:
            problems.append(f"{label}: Args: entry {name!r} is not a parameter (one name per entry)")
    for name in wanted:
        if names.count(name) != 1:
            problems.append(f"{label}: Args: names {name!r} {names.count(name)} times")
    return problems


# Besides the classes users extend, the classes whose every public method users call.
CALLED = ("Sequential", "Bidirectional", "TBPTTTrainer", "Stream", "RNN", "History", "Parameter", "Vocabulary",
          "Initializer")


def public_callables():
    """``(label, function, docstring, is_method)`` for every name the reference documents."""
    tool = load_tool()
    for _title, prefix, members, _module in tool.sections():
        for name, obj in members:
            label = f"{prefix}{name}"
            if inspect.isclass(obj):
                init = obj.__dict__.get("__init__")
                doc = inspect.getdoc(obj) or ""
                if init is None:  # inherited: the class still documents what it takes
                    init = obj.__init__
                if init is not object.__init__:
                    doc = doc + "\n" + (init.__doc__ and inspect.cleandoc(init.__doc__) or "")
                    yield label, init, doc, True
                else:
                    yield label, obj, doc, False
                if name in tool.EXTENDED or name in CALLED:
                    for method in tool.public_names(obj):
                        if name in CALLED and method not in vars(obj):
                            continue  # inherited: documented where it is defined
                        member = inspect.getattr_static(obj, method)
                        if isinstance(member, (classmethod, staticmethod)):
                            member = member.__func__
                        elif not inspect.isfunction(member):
                            continue
                        yield f"{label}.{method}", member, inspect.getdoc(member) or "", True
            elif callable(obj):
                yield label, obj, inspect.getdoc(obj) or "", False


def own_statements(func):
    """The AST nodes of ``func``'s body, without those of functions or classes defined in it."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(func))).body[0]
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def has_section(doc, name):
    return re.search(rf"^\s*{name}:\s*$", doc, re.M) is not None


def section_problems(label, func, doc, method=False):
    """A function with parameters that returns a value says what in ``Returns:``; one that
    raises ``TypeError`` / ``ValueError`` itself, or checks an argument with ``_checks.py``,
    says when in ``Raises:``."""
    try:
        wanted, _ = parameters(func, method)
        nodes = list(own_statements(func))
    except (TypeError, ValueError, OSError):
        return []
    returns = any(isinstance(n, ast.Return) and n.value is not None
                  and not (isinstance(n.value, ast.Constant) and n.value.value is None) for n in nodes)
    raises = any(isinstance(n, ast.Raise) and n.exc is not None
                 and re.match(r"(TypeError|ValueError)\b", ast.unparse(n.exc)) for n in nodes)
    raises = raises or any(isinstance(n, ast.Call) and ast.unparse(n.func).split(".")[-1] in VALIDATORS
                           for n in nodes)
    problems = []
    if returns and wanted and func.__name__ != "__init__" and not has_section(doc, "Returns"):
        problems.append(f"{label}: returns a value but has no Returns: section")
    if raises and not has_section(doc, "Raises"):
        problems.append(f"{label}: raises TypeError/ValueError but has no Raises: section")
    return problems


def test_documented_args_reads_one_name_per_entry():
    doc = """Sum.

    Args:
        x: (batch, n) the input,
            continued here.
        a, b: combined.
        *rest: more.
        y (int): typed.

    Returns:
        x: not an argument.
    """
    assert documented_args(inspect.cleandoc(doc)) == ["x", "a, b: combined.", "rest", "y"]
    assert documented_args("No sections.") is None

    def f(x, y, *args, z=1, **kwargs):
        """F.

        Args:
            x: one.
            x: twice.
            w: not a parameter.
            **kwargs: may be named.
        """
    problems = docstring_problems("f", f, inspect.getdoc(f))
    assert problems == ["f: Args: entry 'w' is not a parameter (one name per entry)",
                        "f: Args: names 'x' 2 times", "f: Args: names 'y' 0 times", "f: Args: names 'z' 0 times"]


def test_every_public_class_and_function_documents_each_argument_once():
    problems = [p for args in public_callables() for p in docstring_problems(*args)]
    assert not problems, f"{len(problems)} docstring problems:\n" + "\n".join(problems)


def test_section_problems_finds_a_missing_returns_and_raises():
    def f(x):
        """F.

        Args:
            x: a number.
        """
        def inner():
            raise ValueError("not f's own")
        if x < 0:
            raise ValueError("x must be >= 0")
        return x

    def g(x):
        """G.

        Args:
            x: a number.

        Returns:
            ``x``.

        Raises:
            ValueError: ``x < 0``.
        """
        if x < 0:
            raise ValueError("x must be >= 0")
        return x

    def h(n):
        """H.

        Args:
            n: an int >= 1.
        """
        _checks.positive_int(n, "n", "h")

    assert section_problems("f", f, inspect.getdoc(f)) == [
        "f: returns a value but has no Returns: section", "f: raises TypeError/ValueError but has no Raises: section"]
    assert section_problems("g", g, inspect.getdoc(g)) == []
    assert section_problems("h", h, inspect.getdoc(h)) == ["h: raises TypeError/ValueError but has no Raises: section"]


def test_every_public_function_that_returns_or_raises_says_so():
    problems = [p for args in public_callables() for p in section_problems(*args)]
    assert not problems, f"{len(problems)} docstring problems:\n" + "\n".join(problems)


def test_every_layer_and_cell_docstring_holds_its_forward_and_backward():
    """The math of forward and backward lives in each layer's docstring (docs/architecture.md)."""
    missing = []
    for title, prefix, members, _module in load_tool().sections():
        if title not in ("Cells", "Layers"):
            continue
        for name, obj in members:
            if name in ("Layer", "Cell"):  # the bases: a contract, no computation of their own
                continue
            doc = inspect.getdoc(obj) or ""
            if "=" not in doc or not re.search(r"backward|dL/d|\bd[a-z_]+ *\+?=", doc, re.I):
                missing.append(f"{prefix}{name}")
    assert not missing, f"no forward formula or no backward in the docstring of {missing}"
