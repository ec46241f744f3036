"""The native backend (nmcompat/backends/native/): a Python program whose
/dev/netmap is netmap's registers its ports through NIOCCTRL and maps the
netmap memory of its descriptor.  No netmap module loads on this kernel, so
these tests run Python under `nmcompat exec`, whose /dev/netmap emulation
speaks the same ABI (open, NIOCCTRL, mmap, NIOC*SYNC, poll): with admode=1
or backend="native", every port of the program is then a /dev/netmap port,
and it meets the engine's ports of other processes (the emulation serves
the engine's pipes and switches).  Outside exec, forcing native fails."""
from __future__ import annotations

import errno
import json
import os
import select
import subprocess
import sys
from pathlib import Path

import pytest

import nmcompat
from nmcompat.backends.native._port import bound_rings
from nmcompat._portspec import (NR_REG_ALL_NIC, NR_REG_NIC_SW, NR_REG_ONE_NIC, NR_REG_ONE_SW,
                                NR_REG_SW, NR_RX_RINGS_ONLY, NR_TX_RINGS_ONLY)
from testlib import rundir_entries

CHILD = Path(__file__).resolve().parent / "native_child.py"
COUNT = 3000                    # more than a ring holds: back-pressure is part of it


def child(*args, native: bool, rundir, timeout: int = 120, **popen):
    """native_child.py with args, under `nmcompat exec` when native."""
    argv = [sys.executable, str(CHILD), *map(str, args)]
    if native:
        argv = [sys.executable, "-m", "nmcompat.tools", "exec", "--rundir", str(rundir), "--"] + argv
    env = dict(os.environ, NMCOMPAT_RUNDIR=str(rundir))
    if popen:
        return subprocess.Popen(argv, env=env, text=True, **popen)
    out = subprocess.run(argv, env=env, text=True, capture_output=True, timeout=timeout)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


def wait_ready(proc) -> None:
    """The receiver printed "ready" (bounded: it has 30 s)."""
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    assert ready, "the receiver did not open its port"
    assert proc.stdout.readline() == "ready\n"


def _native_info_is_consistent(port: dict, slots: int, buf_size: int = 2048) -> None:
    assert port["backend"] == "native" and port["region"] == "/dev/netmap", port
    assert port["tx_slots"] == port["rx_slots"] == slots
    assert port["ring_slots"] == [slots] * len(port["ring_slots"])
    assert port["buf_size"] == buf_size and 0 < port["buf_num"] * port["buf_size"] < port["memsize"]


@pytest.mark.parametrize("how", ["admode=1", "backend=native"])
def test_a_native_pipe_pair_in_one_process(rundir, how):
    report = child("pair", "netmap:np{1", "netmap:np}1", COUNT, how, "slots=256",
                   native=True, rundir=rundir)
    tx, rx = report["ports"]
    for port in (tx, rx):
        _native_info_is_consistent(port, 256)
    assert tx["why"] == ("admode 1 (native)" if how == "admode=1" else "forced (backend='native')")
    assert tx["mem_id"] == rx["mem_id"] and tx["bound_tx"] == rx["bound_rx"] == [0]
    assert report["got"] == list(range(COUNT))
    assert rundir_entries(rundir) in (["lock"], [])


@pytest.mark.parametrize("native_end", ["sender", "receiver"])
def test_a_native_end_meets_an_engine_end_of_another_process(rundir, native_end):
    receiver = child("recv", "netmap:nx}1", COUNT, *(["admode=1"] if native_end == "receiver" else []),
                     native=native_end == "receiver", rundir=rundir, stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE)
    try:
        wait_ready(receiver)
        sent = child("send", "netmap:nx{1", COUNT, *(["admode=1"] if native_end == "sender" else []),
                     native=native_end == "sender", rundir=rundir)
        out, err = receiver.communicate(timeout=120)
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait()
    assert receiver.returncode == 0, err
    got = json.loads(out.splitlines()[-1])
    backends = {"sender": sent["ports"][0]["backend"], "receiver": got["ports"][0]["backend"]}
    assert backends == {native_end: "native", ({"sender", "receiver"} - {native_end}).pop(): "pipe"}
    assert got["got"] == list(range(COUNT))
    assert sent["ports"][0]["mem_id"] == got["ports"][0]["mem_id"], "one region, the engine's"


def test_a_native_vale_pair(rundir):
    report = child("pair", "valenv:a", "valenv:b", COUNT, "admode=1", native=True, rundir=rundir)
    for port in report["ports"]:
        _native_info_is_consistent(port, 1024, buf_size=2112)     # a VALE port's default
    assert report["got"] == list(range(COUNT))


def test_a_native_vale_port_meets_an_engine_port_of_another_process(rundir):
    """Fewer frames than the receiver's RX ring holds: a switch drops what
    finds it full."""
    count = 1000
    receiver = child("recv", "valenw:b", count, native=False, rundir=rundir,
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_ready(receiver)
        sent = child("send", "valenw:a", count, "backend=native", native=True, rundir=rundir)
        out, err = receiver.communicate(timeout=120)
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait()
    assert receiver.returncode == 0, err
    got = json.loads(out.splitlines()[-1])
    assert (sent["ports"][0]["backend"], got["ports"][0]["backend"]) == ("native", "vale")
    assert got["got"] == list(range(count))


def test_under_exec_only_forcing_chooses_native(rundir):
    """The emulation has no device node: a real module alone is the default;
    forced, the emulation's descriptor answers NIOCCTRL."""
    code = ("from nmcompat import backends; n = backends.get('native'); "
            "print(n.probe().ok, n.probe(forced=True).ok, n.probe().reason)")
    out = subprocess.run([sys.executable, "-m", "nmcompat.tools", "exec", "--rundir", str(rundir), "--",
                          sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("False True no /dev/netmap ("), out.stdout


FORCED = [({"admode": 1}, {}), ({"admode": "native"}, {}), ({"backend": "native"}, {}),
          ({}, {"NMCOMPAT_ADMODE": "1"}), ({}, {"NMCOMPAT_BACKEND": "native"})]


@pytest.mark.parametrize("name", ["netmap:nf{1", "valenf:a", "netmap:nf0"])
@pytest.mark.parametrize("kw,env", FORCED, ids=["kw-1", "kw-native", "backend", "env-1", "env-backend"])
def test_forcing_native_without_dev_netmap_fails_and_never_uses_the_engine(rundir, monkeypatch,
                                                                          name, kw, env):
    if os.path.exists("/dev/netmap"):
        pytest.fail("this machine has a /dev/netmap: the test expects none")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(nmcompat.NmcompatError) as info:
        nmcompat.open(name, **kw)
    exc = info.value
    assert isinstance(exc, nmcompat.errors.BackendUnavailable) and exc.errno == errno.ENXIO
    assert list(exc.reasons) == ["native"]
    assert exc.strerror.startswith(f"couldn't open {name}: no backend can serve it (native: no "
                               "/dev/netmap: backend native needs /dev/netmap (the netmap kernel "
                               "module"), str(exc)
    assert rundir_entries(rundir) == [], "the engine was used"


def test_forcing_another_backend_beats_admode_1_for_a_pipe(rundir):
    with pytest.raises(nmcompat.errors.OptionError, match="served by 'pipe' or 'native'"):
        nmcompat.open("netmap:nb{1", admode=1, backend="afxdp")
    with nmcompat.open("netmap:nb{1", backend="pipe", admode=0) as port:
        assert port.info.backend == "pipe"


HELPERS = """
import json, numpy as np, nmcompat
out = {}
try:
    nmcompat.open('netmap:nh{9', admode=1, buf_size=4096)
except nmcompat.errors.OptionError as e:
    out['buf_size'] = str(e)
a, b = nmcompat.open('netmap:nh{1', admode=1), nmcompat.open('netmap:nh}1', admode=1)
c, d = nmcompat.open('netmap:nh{2', admode=1), nmcompat.open('netmap:nh}2', admode=1)
rows = np.zeros((5, 100), np.uint8)
rows[:, 14] = np.arange(5)
out['sent'] = a.send(rows, [60, 61, 62, 63, 64])
out['injected'] = a.inject(bytes(range(256)) * 20)        # 5120 bytes: a chain of 3
a.txsync()
b.poll(nmcompat.POLLIN, 5000)
data, lens = b.recv(3)
out['recv'] = [[int(n), int(row[14])] for n, row in zip(lens, data)]
hdr, view = b.nextpkt()
out['nextpkt'] = [hdr.len, view[14]]
got = []
out['dispatched'] = b.dispatch(lambda h, v: got.append([h.len, bytes(v) == bytes(range(256)) * 20]))
out['dispatch'] = got
b.rxsync()
a.send(rows)
b.poll(nmcompat.POLLIN, 5000)
out['forwarded'] = b.forward(c)
c.txsync()
d.poll(nmcompat.POLLIN, 5000)
ring = d.rx_rings[0]
ring.cur = ring.num_slots + 7                               # out of range: nothing is read
out['corrupt'] = int(d.recv(10, sync=False)[1].size)
ring.cur = ring.head
out['forward'] = [int(n) for n in d.recv(10, sync=False)[1]]
errors = []
for call in (lambda: a.stats(), lambda: a.xdp_stats(), lambda: a._live()):
    try:
        call()
    except OSError as e:
        errors.append([e.errno, str(e)])
out['errors'] = errors
out['fd'] = a.fileno() >= 0
for p in (a, b, c, d):
    p.close()
print(json.dumps(out))
"""


def test_the_batch_helpers_work_on_native_rings(rundir, tmp_path):
    """send, recv, inject, nextpkt, dispatch and forward run the engine's
    loops on the rings of the native memory; what a native port does not
    have (counters, a handle for the tools' C loops) is refused, and indexes
    written out of range are not followed."""
    script = tmp_path / "helpers.py"
    script.write_text(HELPERS)
    out = subprocess.run([sys.executable, "-m", "nmcompat.tools", "exec", "--rundir", str(rundir), "--",
                          sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.splitlines()[-1])
    assert "option buf_size: not used by native ports" in result["buf_size"]
    assert (result["sent"], result["injected"]) == (5, 5120)
    assert result["recv"] == [[60, 0], [61, 1], [62, 2]]
    assert result["nextpkt"] == [63, 3]
    assert (result["dispatched"], result["dispatch"]) == (2, [[64, False], [5120, True]])
    assert (result["forwarded"], result["forward"]) == (5, [100] * 5)
    assert result["corrupt"] == 0
    assert [e for e, _ in result["errors"]] == [errno.EOPNOTSUPP] * 3, result["errors"]
    assert all("netmap keeps none" in text for _, text in result["errors"][:2])
    assert "nmcompat's tools drive engine ports" in result["errors"][2][1]
    assert result["fd"]


LIFETIME = """
import errno, json, threading, nmcompat
out = {}
a = nmcompat.open('netmap:nl{1/x', admode=1)
try:
    nmcompat.open('netmap:nl{1', admode=1)
except OSError as e:
    out['exclusive'] = [e.errno, e.strerror]
b = nmcompat.open('netmap:nl}1', admode=1)
seen = []
def wait():
    try:
        b.poll(nmcompat.POLLIN, -1)
        seen.append('returned')
    except nmcompat.errors.PortClosed as e:
        seen.append(type(e).__name__)
t = threading.Thread(target=wait)
t.start()
while 'poll' not in b._calls and t.is_alive():
    t.join(0.01)
b.close()
t.join(30)
out['poll'] = seen
try:
    b.txsync()
except nmcompat.errors.PortClosed as e:
    out['after'] = type(e).__name__
out['fd'] = a.fileno()
a.close()
print(json.dumps(out))
"""


def test_exclusive_registration_and_a_close_that_ends_a_poll(rundir, tmp_path):
    """The kernel's EBUSY for a ring held with /x, named; close() in one
    thread ends a poll() waiting forever in another with PortClosed."""
    script = tmp_path / "lifetime.py"
    script.write_text(LIFETIME)
    out = subprocess.run([sys.executable, "-m", "nmcompat.tools", "exec", "--rundir", str(rundir), "--",
                          sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.splitlines()[-1])
    assert result["exclusive"][0] == errno.EBUSY
    assert result["exclusive"][1].startswith("couldn't open netmap:nl{1: NETMAP_REQ_REGISTER: ")
    assert result["poll"] == ["PortClosed"] and result["after"] == "PortClosed"
    assert rundir_entries(rundir) in (["lock"], [])


@pytest.mark.parametrize("mode,ringid,flags,tx,rx", [
    (NR_REG_ALL_NIC, 0, 0, [0, 1, 2, 3], [0, 1]),
    (NR_REG_ONE_NIC, 3, 0, [3], [0]),                    # RX has 2 rings: ring 0, as netmap
    (NR_REG_ONE_NIC, 1, NR_RX_RINGS_ONLY, [], [1]),
    (NR_REG_ALL_NIC, 0, NR_TX_RINGS_ONLY, [0, 1, 2, 3], []),
    (NR_REG_SW, 0, 0, [4], [2]),
    (NR_REG_NIC_SW, 0, 0, [0, 1, 2, 3, 4], [0, 1, 2]),
    (NR_REG_ONE_SW, 0, 0, [4], [2]),
])
def test_the_rings_a_registration_binds(mode, ringid, flags, tx, rx):
    """netmap_interp_ringid, for a port of 4 TX and 2 RX rings plus one
    host ring pair."""
    assert list(bound_rings(mode, ringid, flags, 4, 1, NR_RX_RINGS_ONLY)) == tx
    assert list(bound_rings(mode, ringid, flags, 2, 1, NR_TX_RINGS_ONLY)) == rx


@pytest.mark.parametrize("names,backend", [(("netmap:ee{1", "netmap:ee}1"), "pipe"),
                                           (("vale7:a", "vale7:b"), "vale")])
def test_engine_ports_of_a_python_program_under_exec(rundir, names, backend):
    """Without admode=1, a Python program under exec opens the engine's
    ports in its own process: the engine maps its region and switch files
    while it holds their locks, and the emulation's mmap must not take
    those for descriptors passed by another process (it did, and the open
    waited for its own lock for ever)."""
    report = child("pair", *names, COUNT, native=True, rundir=rundir, timeout=60)
    assert [p["backend"] for p in report["ports"]] == [backend, backend]
    assert report["got"] == list(range(COUNT))
