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


NOFILE = "/nonexistent/nmc-trial.pcap"
BRACKETED = [
    # tool, argv, how the last line starts (it has no "[Errno")
    ("pkt_gen", ["-i", "netmap:nosuchnic0", "-f", "rx", "-n", "1"],
     "pkt-gen: couldn't open netmap:nosuchnic0: no interface 'nosuchnic0'"),
    ("bridge", ["-i", "netmap:nosuchnic0", "-i", "netmap:tm{3"],
     "bridge: couldn't open netmap:nosuchnic0: no interface 'nosuchnic0'"),
    ("lb", ["-i", "netmap:nosuchnic0", "-p", "2"],
     "lb: couldn't open netmap:nosuchnic0: no interface 'nosuchnic0'"),
    ("replay", ["-f", NOFILE, "-i", "netmap:tm{1"], f"replay: {NOFILE}: No such file or directory"),
    ("pkt_gen", ["-i", "netmap:tm{1", "-f", "tx", "-P", NOFILE],
     f"pkt-gen: failed to read a packet from {NOFILE}: No such file or directory"),
    ("vale_ctl", ["-m", "netmap:nosuchport", "-n", "tmq"],
     "vale-ctl: bad -m/-C value: couldn't get info of nosuchport: No such device or address"),
]


@pytest.mark.parametrize("tool,argv,says", BRACKETED, ids=[f"{c[0]} {' '.join(c[1])}" for c in BRACKETED])
def test_failure_line_has_no_errno_bracket(rundir, capsys, tool, argv, says):
    """pkt-gen printed "pkt-gen: [Errno 6] couldn't open ...": str() of an
    OSError, where the tool's line is its message."""
    module = importlib.import_module(f"nmcompat.tools.{tool}")
    try:
        rc = module.main(argv)
    except SystemExit as exc:
        rc = exc.code
        print(exc.code if isinstance(exc.code, str) else "", file=__import__("sys").stderr)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc not in (0, None) and err and err[-1].startswith(says), (rc, err)
    assert "[Errno" not in err[-1], err


def test_one_line_of_each_kind_of_error():
    from nmcompat.errors import PortSpecError, os_error
    from nmcompat.tools._cli import one_line
    assert one_line(os_error(6, "open", "netmap:q0")) == \
        "couldn't open netmap:q0: No such device or address"
    assert one_line(PortSpecError("vale0:a/q", "unrecognized flag: 'q'", 8)) == \
        "couldn't parse port name 'vale0:a/q': unrecognized flag: 'q' at position 8"
    assert one_line(FileNotFoundError(2, "No such file or directory", "/x")) == \
        "/x: No such file or directory"
    assert one_line(OSError(5, "Input/output error")) == "Input/output error"
    assert one_line(ValueError("bad\nsecond")) == "bad"
    assert one_line(ValueError()) == "ValueError"


def test_pkt_gen_names_an_empty_packet_file(rundir, tmp_path):
    from nmcompat.tools import _pcap, pkt_gen
    path = tmp_path / "empty.pcap"
    with open(path, "wb") as f:
        _pcap.write_header(f)
    with pytest.raises(SystemExit) as ei:
        pkt_gen.main(["-i", "netmap:tm{1", "-f", "tx", "-P", str(path)])
    assert ei.value.code == f"pkt-gen: failed to read a packet from {path}: it holds none"


def test_vale_attachd_reports_the_message_to_vale_ctl(rundir):
    """The forwarder's "error N <text>" line becomes vale-ctl's message: its
    text carried "[Errno 6]" into it."""
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-m", "nmcompat.tools", "vale-attachd",
                           "vale0:nosuchnic0"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and proc.stdout.strip() == (
        "error 6 couldn't open netmap:nosuchnic0: no interface 'nosuchnic0' in this network "
        "namespace"), proc


def test_exec_names_a_missing_interpreter(capsys, tmp_path):
    from nmcompat.tools import exec as exec_tool
    script = tmp_path / "script"
    script.write_text("#!/nonexistent/interp\n")
    script.chmod(0o755)
    assert exec_tool.main([str(script)]) == 2
    assert capsys.readouterr().err.strip() == \
        "nmcompat exec: /nonexistent/interp: No such file or directory"
