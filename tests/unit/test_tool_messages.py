"""What the tools print, read as a new user reads it: usage texts show
port names as they are typed, and a failure's one line is nmcompat's
message ("couldn't open X: why"), not Python's "[Errno N]" decoration."""
from __future__ import annotations

import importlib

import pytest

from nmcompat.tools import __main__ as cli


@pytest.mark.parametrize("name", sorted(cli.SUBCOMMANDS))
def test_usage_shows_port_names_as_typed(capsys, name):
    """pkt-gen -h showed netmap:x{{1: a brace doubled for a format string
    in a text that is never formatted."""
    module = importlib.import_module(cli.SUBCOMMANDS[name][0])
    try:
        rc = module.main(["-h"])
    except SystemExit as exc:               # argparse's -h
        rc = exc.code
    out = capsys.readouterr()
    text = out.out + out.err
    assert rc == 0 and "usage" in text.lower(), (name, rc, text)
    assert "{{" not in text and "}}" not in text, (name, text)


def test_no_tool_docstring_doubles_a_brace():
    """Docstrings are not format strings either (lb.base_name's said -*^{{}}/@)."""
    import inspect
    for module_name, _ in cli.SUBCOMMANDS.values():
        module = importlib.import_module(module_name)
        for name, obj in [("", module), *inspect.getmembers(module, inspect.isfunction)]:
            doc = obj.__doc__ or ""
            assert "{{" not in doc and "}}" not in doc, (module_name, name)
