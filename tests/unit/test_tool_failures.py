"""Every tool ends a failure with one line on stderr and its exit status,
never a traceback; -h/--help exits 0; values netmap's tools would choke on
(a zero bit rate, a negative rate or wait, a speedup of 0) are refused by
name.  Most cases call the tool's main() in this process (an exception
escaping it fails the test); the ones that need a real command run it."""
from __future__ import annotations

import importlib
import re
import subprocess
import sys
from importlib import metadata

import pytest

from nmcompat.tools import __main__ as cli, demo
from nmcompat.tools import _pcap
from testlib import REPO_ROOT
from tools_helpers import udp

NOFILE = "/nonexistent/in.pcap"
CASES = [
    # tool, argv, exit status, text of the last stderr line
    ("pkt_gen", ["-i", "netmap:x{"], 1, "invalid empty pipe name"),
    ("pkt_gen", ["-i", "netmap:x{1", "-R", "-1"], 255, "bad rate -1"),
    ("pkt_gen", ["-i", "netmap:x{1", "-w", "-1"], 255, "bad wait -1"),
    ("pkt_gen", ["-i", "netmap:x{1", "-l", "10"], 255, "bad pktsize 10 [16..65536]"),
    ("pkt_gen", ["-i", "netmap:x{1", "-l", "20"], 255, "need 42 bytes"),
    ("pkt_gen", ["-i", "netmap:x{1", "--pcapng"], 255, "give --pcap FILE too"),
    ("pkt_gen", ["-i", "netmap:x{1", "-f", "bogus"], 255, "unrecognised function bogus"),
    ("pkt_gen", ["-i", "netmap:x{1", "-F", "64"], 255, "invalid frags 64 [1..63]"),
    ("pkt_gen", ["-i", "netmap:x{1", "-b", "abc"], 255, "-b needs an integer, not 'abc'"),
    ("pkt_gen", ["-i", "netmap:x{1", "-C", "1,2,3,4,5"], 255, "-C takes at most 4 numbers"),
    ("pkt_gen", ["-i", "netmap:x{1", "extra"], 255, "unexpected arguments: extra"),
    ("status", ["--rundir", "/nonexistent/rundir"], 2, "/nonexistent/rundir"),
    ("gc", ["--rundir", "/nonexistent/rundir"], 2, "/nonexistent/rundir"),
    ("replay", ["-f", NOFILE, "-i", "netmap:x{1", "-B", "0"], 1, "-B '0'"),
    ("replay", ["-f", NOFILE, "-i", "netmap:x{1", "-B", "ether,0"], 1, "bit rate"),
    ("replay", ["-f", NOFILE, "-i", "netmap:x{1", "-R", "-5"], 1, "-R '-5'"),
    ("replay", ["-f", NOFILE, "-i", "netmap:x{1", "-B", "real,0"], 1, "speedup > 0"),
    ("replay", ["-f", NOFILE, "-i", "netmap:x{1", "-w", "-1"], 1, "-w '-1'"),
    ("replay", ["-f", NOFILE, "-i", "netmap:x{1", "-L", "2"], 1, "[0, 1]"),
    ("replay", ["-f", NOFILE, "-i", "netmap:x{1", "-D", "uniform,1m"], 1, "2 time(s)"),
    ("replay", ["-f", NOFILE, "-i", "netmap:x{1"], 1, "No such file"),
    ("replay", ["-f", NOFILE], 1, "need -f pcap-file and -i port"),
    ("bridge", ["-i", "netmap:x{", "-i", "netmap:y{1"], 1, "invalid empty pipe name"),
    ("bridge", ["-b", "x"], 1, "invalid literal"),
    ("lb", ["-i", "netmap:x{", "-p", "2"], 1, "invalid empty pipe name"),
    ("lb", ["-i", "netmap:lbx", "-w", "-1"], 1, "-w -1"),
    ("vale_ctl", ["-n", "a/b"], 1, "failed to create a/b: Invalid argument (open('netmap:a/b')"),
    ("vale_ctl", ["-n", "../../x"], 1, "failed to create ../../x: Invalid argument"),
    ("vale_ctl", ["-n", "-r"], 1, "failed to create -r: Invalid argument"),
    ("vale_ctl", ["-n", "vi0", "-C", "-1"], 1, "[0, 2**32)"),
    ("check", ["--rundir", "/nonexistent/rundir"], 2, "/nonexistent/rundir"),
]


@pytest.mark.parametrize("tool,argv,status,says", CASES,
                         ids=[f"{c[0]}{' '.join(c[1])}" for c in CASES])
def test_failure_is_one_line(rundir, capsys, tool, argv, status, says):
    module = importlib.import_module(f"nmcompat.tools.{tool}")
    rc = module.main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert rc == status and lines and says in lines[-1], (rc, err)


@pytest.mark.parametrize("tool,argv", [("replay", ["-h"]), ("replay", ["--help"]), ("bridge", ["-h"]),
                                       ("lb", ["-h"]), ("vale_ctl", ["--help"]), ("vale_ctl", ["-h"]),
                                       ("pkt_gen", ["-h"]), ("__main__", ["--help"]), ("__main__", ["-h"])])
def test_help_exits_zero(capsys, tool, argv):
    module = importlib.import_module(f"nmcompat.tools.{tool}")
    assert module.main(argv) == 0
    out = capsys.readouterr()
    assert "usage" in (out.out + out.err).lower()


def test_command_list(capsys):
    assert cli.main([]) == 2 and cli.main(["nosuch"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == "nmcompat: unknown subcommand 'nosuch'"
    assert "veth pair" in cli.SUBCOMMANDS["demo"][1]


def test_every_tool_has_its_nmc_command():
    """The README promises nmc-<name> for each tool (bridge is nmc-bridge)."""
    scripts = {e.name: e.value for e in metadata.entry_points(group="console_scripts")}
    for name, (module, what) in cli.SUBCOMMANDS.items():
        if not what.startswith("(internal)"):
            assert scripts.get(f"nmc-{name}") == f"{module}:main", name


def test_installed_command_help_exits_zero():
    for cmd in (["nmcompat", "--help"], ["nmc-vale-ctl", "--help"]):
        proc = subprocess.run([str(REPO_ROOT / ".venv" / "bin" / cmd[0]), *cmd[1:]],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc


def test_replay_with_speedup_zero_fails_at_once(rundir, tmp_path):
    """nmreplay -B real,0 used to print "Sent 0 packets" and run until killed."""
    path = tmp_path / "small.pcap"
    with open(path, "wb") as f:
        _pcap.write_header(f)
        for i in range(3):
            _pcap.write_record(f, 1.0 + i, udp(1, 2, 3, 4, seq=i))
    proc = subprocess.run([sys.executable, "-m", "nmcompat.tools", "replay", "-f", str(path),
                           "-i", "netmap:rb{1", "-B", "real,0", "-w", "0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "Sent" not in proc.stdout, proc
    assert proc.stderr.strip().splitlines()[-1].startswith("replay: -B 'real,0'"), proc.stderr


def _role(msg: dict) -> subprocess.Popen:
    """A stand-in demo process that prints one JSON line and exits."""
    code = f"import json; print(json.dumps({msg!r}))"
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)


@pytest.mark.parametrize("rx,code,says", [
    # frames dropped by the receiving socket after the last one received: no gap, but counted
    (dict(count=900, errors=0, gaps=40, kernel_drops=100), 0, "OK: every frame sent was received "
                                                              "in order or counted as dropped"),
    (dict(count=1000, errors=0, gaps=0, kernel_drops=0), 0, "OK: every frame sent was received in order"),
    (dict(count=900, errors=0, gaps=0, kernel_drops=50), 1, "FAILED: 50 frames were neither received"),
    (dict(count=1000, errors=3, gaps=0, kernel_drops=0), 1, "FAILED: 3 frames arrived out of order"),
])
def test_demo_verdict_matches_what_happened(capsys, rx, code, says):
    tx = _role(dict(kind="done", who="tx", count=1000))
    rxp = _role(dict(kind="done", who="rx", **rx))
    try:
        assert demo._report(tx, rxp) == code
    finally:
        tx.wait(30), rxp.wait(30)
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith(says)


def test_demo_role_failure_is_one_line(rundir):
    proc = subprocess.run([sys.executable, "-m", "nmcompat.tools.demo_role", "tx", "netmap:x{",
                           "1", "8"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()], proc.stderr


def test_readme_says_what_a_new_user_needs():
    """Every nmc-<name> the README names is installed; a C program linked with
    -lnmcompat needs an rpath or LD_LIBRARY_PATH; a queue pair is not written
    as a literal "netmap:eth0-k"."""
    readme = (REPO_ROOT / "README.md").read_text()
    scripts = {e.name for e in metadata.entry_points(group="console_scripts")}
    named = set(re.findall(r"`(nmc-[a-z-]+)`", readme))
    assert "nmc-vale-ctl" in named and named <= scripts, named - scripts
    assert "LD_LIBRARY_PATH" in readme and "rpath" in readme
    assert "netmap:eth0-k`" not in readme


def test_lb_statistics_interval_zero_means_none():
    """lb's usage says -o 0 turns the statistics off: it is accepted, and only
    values between 0 and 1 ms are refused."""
    from nmcompat.tools import lb
    assert lb._parse(["-i", "netmap:lbz", "-o", "0"])["every"] == 0
    with pytest.raises(lb.Usage, match="must be 0 or at least"):
        lb._parse(["-i", "netmap:lbz", "-o", "0.0001"])
