"""docs/api.md is generated from the package (tools/api_reference.py) and must be up to date."""

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


def test_api_page_names_every_public_name_with_a_summary():
    text = load_tool().render()
    for name in (n for n in vars(mdl) if not n.startswith("_")):
        obj = getattr(mdl, name)
        if isinstance(obj, type) or callable(obj):
            assert f"`mdl.{name}(" in text, name
    assert "(no docstring)" not in text
