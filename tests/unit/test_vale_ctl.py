"""VALE control: persistent ports through `python -m nmcompat.tools vale-ctl`
(netmap's vale-ctl messages and exit codes), the Python API beside it,
traffic between a persistent and an ephemeral port, and the runtime
directory refusing another user."""
from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest

import nmcompat
from nmcompat import vale
from testlib import REPO_ROOT, rundir_entries, skip_or_fail
from vale_helpers import BCAST, agents, chains, frame, mac  # noqa: F401


def ctl(*args, timeout=60):
    """Run vale-ctl; (exit status, stdout lines, stderr lines)."""
    proc = subprocess.run([sys.executable, "-m", "nmcompat.tools", "vale-ctl", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT,
                          env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
    return proc.returncode, proc.stdout.splitlines(), proc.stderr.splitlines()


def failed(action, name, err):
    return [f"failed to {action} {name}: {os.strerror(err)}"]


def listing():
    rc, out, err = ctl()
    assert rc == 1 and err == [], (rc, out, err)         # list_all exits 1, as netmap's
    return out


# ---------------------------------------------------------------------------
# the CLI


def test_persistent_port_life_cycle_through_the_cli(rundir):
    assert ctl("-n", "vi0") == (0, [], [])
    assert ctl("-n", "vi0") == (1, [], failed("create", "vi0", errno.EEXIST))
    assert listing() == []                               # on no switch yet
    assert ctl("-a", "vale0:vi0") == (0, [], [])
    assert ctl("-a", "vale0:vi0") == (1, [], failed("attach", "vale0:vi0", errno.EBUSY))
    assert ctl("-a", "vale1:vi0") == (1, [], failed("attach", "vale1:vi0", errno.EBUSY))
    assert ctl("-r", "vi0") == (1, [], failed("delete", "vi0", errno.EBUSY))
    assert listing() == ["vale0:vi0 bridge_idx 0 port_idx 0"]
    assert ctl("-l", "vale0:vi0") == (0, ["bridge_idx: 0", "port_idx:   0"], [])
    assert ctl("-d", "vale0:vi0") == (0, [], [])
    assert ctl("-d", "vale0:vi0") == (1, [], failed("detach", "vale0:vi0", errno.ENXIO))
    assert listing() == []
    assert ctl("-l", "vale0:vi0") == (1, [], failed("list", "vale0:vi0", errno.ENOENT))
    assert ctl("-r", "vi0") == (0, [], [])
    assert ctl("-r", "vi0") == (1, [], failed("delete", "vi0", errno.ENXIO))
    assert ctl("-g", "vi0") == (1, [], failed("get info for", "vi0", errno.ENXIO))
    assert rundir_entries(rundir) == ["lock"]


def test_cli_errors_for_names_of_the_wrong_kind(rundir):
    for name in ("vale0", "valefoo"):       # netmap's line, then why in parentheses
        rc, out, err = ctl("-n", name)
        assert (rc, out, len(err)) == (1, [], 1) and err[0].startswith(
            failed("create", name, errno.EINVAL)[0] + " (the name of a VALE port"), err
    assert ctl("-a", "vale0:nosuchport0") == (1, [], failed("attach", "vale0:nosuchport0", errno.ENXIO))
    assert ctl("-d", "vale0:nosuchport0") == (1, [], failed("detach", "vale0:nosuchport0", errno.ENXIO))
    assert ctl("-l", "vi0") == (1, [], failed("list", "vi0", errno.EINVAL))   # must start with "vale"
    assert ctl("-l", "vale0:nosuchport0") == (1, [], failed("list", "vale0:nosuchport0", errno.ENOENT))
    assert ctl("-n", "vi1") == (0, [], [])
    assert ctl("-h", "vale0:vi1") == (1, [], failed("attach", "vale0:vi1", errno.EINVAL))  # no host rings
    assert ctl("-r", "vi1") == (0, [], [])
    rc, out, err = ctl("-x")
    assert rc == 1 and err and err[0].startswith("vale-ctl:")


def test_cli_geometry_info_and_verbose_lines(rundir):
    assert ctl("-n", "vi0", "-C", "512,256,2,4") == (0, [], [])
    rc, out, err = ctl("-g", "vi0")
    assert rc == 0 and err == []
    memsize = out[0].split()[1]
    assert out == [f"memsize: {memsize}", "tx_slots: 512", "rx_slots: 256", "tx_rings: 2",
                   "rx_rings    4", out[5]]
    assert out[5].startswith("mem_id: ") and int(memsize) > 0
    mem_id = int(out[5].split()[1])
    assert vale.port_info("vi0") == {"memsize": int(memsize), "tx_slots": 512, "rx_slots": 256,
                                     "tx_rings": 2, "rx_rings": 4, "mem_id": mem_id}
    rc, out, err = ctl("-v", "-n", "vi2", "-C", "128")
    assert (rc, err) == (0, [])
    assert out == [f"vi2: tx_rings 1 rx_rings 1 tx_slots 128 rx_slots 128 mem_id {vale.port_info('vi2')['mem_id']}"]
    assert ctl("-v", "-a", "vale0:vi0") == (0, ["attached vale0:vi0 at port 0"], [])
    assert ctl("-v", "-a", "vale0:vi2") == (0, ["attached vale0:vi2 at port 1"], [])
    assert ctl("-a", "vale1:vi2") == (1, [], failed("attach", "vale1:vi2", errno.EBUSY))
    assert listing() == ["vale0:vi0 bridge_idx 0 port_idx 0", "vale0:vi2 bridge_idx 0 port_idx 1"]
    assert ctl("-v", "-d", "vale0:vi0") == (0, ["detached vale0:vi0 from port 0"], [])
    assert ctl("-l", "vale0:vi2") == (0, ["bridge_idx: 0", "port_idx:   1"], [])
    assert ctl("-d", "vale0:vi2") == (0, [], [])
    assert ctl("-r", "vi0") == (0, [], [])
    assert ctl("-r", "vi2") == (0, [], [])


def test_listing_spans_switches_in_order(agents, rundir):
    agents.open("vale1:x")
    agents.open("vale0:b")
    agents.open("vale0:a")
    agents.open("vale2:z")
    assert ctl("-n", "vi0") == (0, [], [])
    assert ctl("-a", "vale1:vi0") == (0, [], [])
    assert listing() == ["vale0:b bridge_idx 0 port_idx 0", "vale0:a bridge_idx 0 port_idx 1",
                         "vale1:x bridge_idx 1 port_idx 0", "vale1:vi0 bridge_idx 1 port_idx 1",
                         "vale2:z bridge_idx 2 port_idx 0"]
    assert ctl("-l", "vale1:vi0") == (0, ["bridge_idx: 1", "port_idx:   1"], [])
    assert ctl("-l", "vale2:z") == (0, ["bridge_idx: 2", "port_idx:   0"], [])
    assert ctl("-l", "vale3:z") == (1, [], failed("list", "vale3:z", errno.ENOENT))
    assert ctl("-d", "vale1:vi0") == (0, [], [])
    assert ctl("-r", "vi0") == (0, [], [])


# ---------------------------------------------------------------------------
# the Python API


def test_python_api_errnos(rundir):
    vale.newif("vi0")
    with pytest.raises(FileExistsError):
        vale.newif("vi0")
    with pytest.raises(OSError) as exc:
        vale.newif("vale0")
    assert exc.value.errno == errno.EINVAL
    assert vale.attach("vale0:vi0") == 0
    with pytest.raises(OSError) as exc:
        vale.attach("vale0:vi0")
    assert exc.value.errno == errno.EBUSY
    with pytest.raises(OSError) as exc:
        vale.delif("vi0")
    assert exc.value.errno == errno.EBUSY
    with pytest.raises(OSError) as exc:
        vale.attach("vale0:nosuchport0")
    assert exc.value.errno == errno.ENXIO
    assert vale.lookup("vale0:vi0") == vale.PortEntry("vale0:vi0", 0, 0)
    with pytest.raises(FileNotFoundError):
        vale.lookup("vale0:unknown")
    with pytest.raises(FileNotFoundError):
        vale.lookup("vale7:vi0")
    assert list(vale.ports()) == [vale.PortEntry("vale0:vi0", 0, 0)]   # ends with ENOENT
    with pytest.raises(OSError) as exc:
        vale.detach("vale0:nosuchport0")
    assert exc.value.errno == errno.ENXIO
    assert vale.detach("vale0:vi0") == 0
    assert list(vale.ports()) == []
    vale.delif("vi0")
    with pytest.raises(OSError) as exc:
        vale.delif("vi0")
    assert exc.value.errno == errno.ENXIO
    with pytest.raises(OSError) as exc:
        vale.port_info("vi0")
    assert exc.value.errno == errno.ENXIO


def test_an_ephemeral_port_cannot_be_deleted_and_an_open_persistent_one_is_busy(agents, rundir):
    agents.open("vale0:eph")
    with pytest.raises(OSError) as exc:
        vale.delif("vale0:eph")
    assert exc.value.errno in (errno.EINVAL, errno.ENXIO)
    vale.newif("vi0")
    holder = agents.open("netmap:vi0")
    with pytest.raises(OSError) as exc:
        vale.delif("vi0")
    assert exc.value.errno == errno.EBUSY
    holder.close()
    vale.delif("vi0")


# ---------------------------------------------------------------------------
# traffic through persistent ports


def _learned(port, ident):
    port.send([frame(mac(ident), mac(ident), b"learn-me", 60)])     # learned, then dropped


def test_persistent_port_exchanges_traffic_with_an_ephemeral_port(agents, rundir):
    vale.newif("vi0")
    vale.attach("vale0:vi0")
    try:
        p_netmap = agents.open("netmap:vi0")
        eph = agents.open("vale0:e")
        _learned(p_netmap, 1)
        _learned(eph, 2)
        eph.send([frame(mac(1), mac(2), b"to-vi0", 60)])
        assert [f[14:20] for f in p_netmap.frames()] == [b"to-vi0"]
        p_netmap.send([frame(mac(2), mac(1), b"from-vi0", 60)])
        assert [f[14:22] for f in eph.frames()] == [b"from-vi0"]
        p_netmap.close()
        # the same port, opened by its switch name
        p_vale = agents.open("vale0:vi0")
        assert [e.name for e in vale.ports()] == ["vale0:vi0", "vale0:e"]
        eph.send([frame(mac(1), mac(2), b"again", 60)])
        assert [f[14:19] for f in p_vale.frames()] == [b"again"]
        p_vale.send([frame(BCAST, mac(1), b"bcast-vi0", 60)])
        assert [f[14:23] for f in eph.frames()] == [b"bcast-vi0"]
        p_vale.close()
    finally:
        vale.detach("vale0:vi0")
        vale.delif("vi0")


def test_an_open_persistent_port_follows_detach_and_attach(agents, rundir):
    vale.newif("vi0")
    holder = agents.open("netmap:vi0")
    eph = agents.open("vale0:e")
    _learned(eph, 2)
    holder.send([frame(BCAST, mac(1), b"on-no-switch", 60)])      # goes nowhere
    assert eph.frames() == []
    vale.attach("vale0:vi0")
    holder.send([frame(BCAST, mac(1), b"attached", 60)])
    assert [f[14:22] for f in eph.frames()] == [b"attached"]
    eph.send([frame(mac(1), mac(2), b"back", 60)])
    assert [f[14:18] for f in holder.frames()] == [b"back"]
    vale.detach("vale0:vi0")
    holder.send([frame(BCAST, mac(1), b"detached", 60)])
    assert eph.frames() == []
    eph.send([frame(mac(1), mac(2), b"lost", 60)])               # vi0 is not on the switch
    assert holder.frames() == []
    holder.close()
    vale.delif("vi0")


# ---------------------------------------------------------------------------
# another user


EACCES_CHILD = r"""
import contextlib, errno, io, os, sys
import nmcompat
from nmcompat import vale
from nmcompat.tools import vale_ctl      # everything is imported before giving up root
os.setgroups([])
os.setgid(65534)
os.setuid(65534)
results = []
for what, fn in (("open", lambda: nmcompat.open("vale0:intruder")),
                 ("open-existing", lambda: nmcompat.open("vale0:a")),
                 ("list", lambda: list(vale.ports())),
                 ("newif", lambda: vale.newif("vi9"))):
    try:
        fn()
        results.append(f"{what}:ok")
    except PermissionError as exc:
        results.append(f"{what}:EACCES")
    except OSError as exc:
        results.append(f"{what}:{errno.errorcode.get(exc.errno, exc.errno)}")
print(" ".join(results))
out, err = io.StringIO(), io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    rc = vale_ctl.main([])                  # the listing of vale-ctl, run in this process
print(f"cli {rc} {out.getvalue()!r} {err.getvalue().strip()!r}")
"""


def _tree(path):
    out = []
    for name in sorted(os.listdir(path)):
        st = os.lstat(path / name)
        out.append((name, st.st_size, st.st_mode, st.st_uid, st.st_mtime_ns))
    return out


def test_another_user_gets_eacces_and_changes_nothing(agents, rundir, procs):
    if os.geteuid() != 0:
        skip_or_fail("switching to uid 65534 needs root")
    a = agents.open("vale0:a")
    b = agents.open("vale0:b")
    a.send([frame(BCAST, mac(1), b"before", 60)])
    before = _tree(rundir)
    out = procs.run_python(EACCES_CHILD, timeout=60).splitlines()
    assert out[0].split() == ["open:EACCES", "open-existing:EACCES", "list:EACCES", "newif:EACCES"]
    assert out[1].startswith(f"cli 1 '' 'failed to list ports: Permission denied (the runtime "
                             f"directory {rundir} belongs to uid 0, not to you (uid 65534); "), out[1]
    assert _tree(rundir) == before
    assert [f[14:20] for f in b.frames()] == [b"before"]          # the switch still works
