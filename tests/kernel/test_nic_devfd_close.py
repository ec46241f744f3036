"""A NIC port's device descriptor (nmc_port_dev_fd) that outlives its
opener's port: every buffer comes back once the descriptor's last holder is
gone.

The opener A (with a keeper port on vb in its NIC region, which counts the
region's free buffers) opens va-0, hands the port's device descriptor to a
plain process H and closes its port: H's descriptor keeps the port's holder
alive, so A's close is a local one.  Then H exits, and an open and close of
va-0 in A reaps the dead holder and its record.  While H holds the port,
only the buffers of its rings stay allocated (what the kernel held came
back with the record's last sockets); once H is gone, the region's free
count is what it was before va-0 was opened.  Before, A's local close
unmapped the region and closed the sockets without the transport's detach:
the buffers the kernel held (FILL ring, queues) stayed allocated, and the
ring buffers too once the record was freed, 5,120 of them here; 8,192 with
a process opening and closing va-0 meanwhile.

Variants: nobody else on va-0; another process opening and closing it after
A's close; another process on it (AF_XDP: joined to A's record) before A's
close and closing after it, so that its close is the last on the record's
sockets while H still holds the port; another process on it killed before
A's close and not yet waited for (a zombie: its pid answers kill(pid, 0),
but it has no sockets, so A's close is the last on them), or one that
exec'd another program (the same); va-0 opened again in A while H holds
the port, receiving more frames than a FILL ring holds (AF_XDP: on the
record H holds, whose ring still has frames the first port left unread,
which arrive first and intact).
"""
from __future__ import annotations

import json
import sys

import pytest

pytestmark = pytest.mark.kernel

OPENER = r"""
import json, os, subprocess, sys, time
import nmcompat
from nmcompat._ffi import lib

backend, other = sys.argv[1], sys.argv[2]
OPTS = {"xdp_mode": "skb"} if backend == "afxdp" else {}
HOLDER = "import sys; sys.stdin.readline()"
EXECD = "import sys; print('execd', flush=True); sys.stdin.readline(); print('closed', flush=True)"
JOINER = ("import os, sys, nmcompat\n"
          f"EXECD = {EXECD!r}\n"
          "opts = {'xdp_mode': 'skb'} if sys.argv[1] == 'afxdp' else {}\n"
          "p = nmcompat.open('netmap:va-0', backend=sys.argv[1], **opts)\n"
          "print('open', flush=True)\n"
          "if sys.argv[2] == 'exec':\n"
          "    os.execv(sys.executable, [sys.executable, '-c', EXECD])\n"
          "sys.stdin.readline()\n"
          "p.close()\n"
          "print('closed', flush=True)\n")

def free(port):
    return port.stats()["buf_free"]

MINE = bytes.fromhex("020000000001")

def frames(tag, n):                 # broadcast frames from MINE, tagged (tag, i)
    return [b"\xff" * 6 + MINE + b"\x88\xb5" + bytes([tag]) + i.to_bytes(4, "big") + bytes(45)
            for i in range(n)]

def send(tx, batch):
    for f in batch:
        while tx.inject(f) == 0:
            tx.poll(nmcompat.POLLOUT, 100)
    tx.txsync()

def unread(ring):                   # our frames in ring's slots [head, tail), left there
    out, j = [], ring.head
    while j != ring.tail:
        slot = ring.slots[j]
        f = bytes(ring.buf(int(slot["buf_idx"]))[:int(slot["len"])])
        out += [f] if f[6:12] == MINE else []
        j = ring.next(j)
    return out

def wait_unread(rx, n):
    deadline = time.monotonic() + 10
    while len(unread(rx.rx_rings[0])) < n and time.monotonic() < deadline:
        rx.poll(nmcompat.POLLIN, 100)
    return unread(rx.rx_rings[0])

def take(rx, n):                    # our next n frames on rx (10 s at most), released
    got, deadline = [], time.monotonic() + 10
    while len(got) < n and time.monotonic() < deadline:
        rx.poll(nmcompat.POLLIN, 100)
        rx.dispatch(lambda hdr, d: got.append(bytes(d)) if bytes(d[6:12]) == MINE else None)
    return got

# va-0 opened again while H holds the port: what it receives (the frames
# the first port left unread, on AF_XDP's shared ring, then 5,000 more, more
# than its FILL ring holds) is exactly what was sent.
def reopen_and_receive():
    q = nmcompat.open("netmap:va-0", backend=backend, **OPTS)
    want = (left if backend == "afxdp" else []) + frames(2, 5000)
    got, unread_left, sent = [], len(want) - 5000, 0
    for size in [2000] + [200] * 15:    # 2,000 arrive before the old frames are read
        batch = frames(2, 5000)[sent:sent + size]
        send(k, batch)
        got += take(q, len(batch) + (unread_left if sent == 0 else 0))
        sent += size
    q.close()
    assert got == want, f"{len(got)} frames of {len(want)}, first difference at " \
        f"{next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))}"

def joiner():
    return subprocess.Popen([sys.executable, "-c", JOINER, backend, other], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)

def finish(c):
    c.stdin.write("x\n")
    c.stdin.flush()
    out = c.stdout.read()
    assert c.wait(timeout=30) == 0 and out == "closed\n", out

k = nmcompat.open("netmap:vb", backend=backend, **OPTS)
base = free(k)
p = nmcompat.open("netmap:va-0", backend=backend, **OPTS)
dfd = lib.nmc_port_dev_fd(p._h)
assert dfd >= 0, dfd
h = subprocess.Popen([sys.executable, "-c", HOLDER], stdin=subprocess.PIPE, pass_fds=(dfd,))
os.close(dfd)
c = joiner() if other in ("during", "killed", "exec") else None
if c:
    assert c.stdout.readline() == "open\n"
if other == "exec":                 # its pid lives on in another program, without our files
    assert c.stdout.readline() == "execd\n"
if other == "killed":               # a zombie: its pid lives, its descriptors are gone
    c.kill()
    os.waitid(os.P_PID, c.pid, os.WEXITED | os.WNOWAIT)     # dead, not reaped
left = []
if other == "reopen":               # p's ring keeps frames it did not release
    send(k, frames(1, 16))
    left = wait_unread(p, 16)
    assert left == frames(1, 16), len(left)
rings = sum(r.num_slots for r in p.tx_rings + p.rx_rings)
p.close()                           # H's descriptor keeps the holder: a local close
if c and other == "killed":
    c.wait(timeout=30)
elif c:
    finish(c)                       # the last process with the record's sockets
held = free(k)
if other == "reopen":
    reopen_and_receive()
if other == "after":
    c = joiner()
    assert c.stdout.readline() == "open\n"
    finish(c)
h.stdin.close()                     # the descriptor's last holder goes
assert h.wait(timeout=30) == 0
q = nmcompat.open("netmap:va-0", backend=backend, **OPTS)    # reaps the dead holder
q.close()
print("result", json.dumps({"base": base, "rings": rings, "held": held, "free": free(k)}), flush=True)
k.close()
"""


@pytest.fixture(autouse=True)
def _own_rundir(rundir):
    yield rundir


@pytest.mark.parametrize("backend, other", [("afxdp", "none"), ("afxdp", "after"), ("afxdp", "during"),
                                            ("afxdp", "reopen"), ("afxdp", "killed"), ("afxdp", "exec"),
                                            ("afpacket", "none"),
                                            ("afpacket", "after"), ("afpacket", "reopen")])
def test_every_buffer_back_after_a_device_descriptor_outlived_its_port(netns, procs, backend, other):
    a = procs.spawn(["ip", "netns", "exec", netns.name, sys.executable, "-c", OPENER, backend, other])
    out = json.loads(a.expect("result ", timeout=90).split(" ", 1)[1])
    assert a.wait(30) == 0, a.describe()
    assert out["held"] == out["base"] - out["rings"], \
        f"while H holds the port, not its rings' buffers alone stay allocated: {out}"
    assert out["free"] == out["base"], f"{out['base'] - out['free']} buffers not given back: {out}"
