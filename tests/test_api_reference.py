"""docs/api.md and docs/reference/*.md are generated from the package (tools/api_reference.py) and
must be up to date; the site's configuration (mkdocs.yml) lists every page."""

import re

import importlib.util
from pathlib import Path

import minidl as mdl

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
