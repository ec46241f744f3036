"""netmap monitors (X/r, X/t, X/rt, X/z) on pipes and VALE ports:
byte-exact copies, the monitored port still receiving everything, NS_TXMON,
the zero-copy monitor's ordering, several monitors, dropping what does not
fit, netmap's errors, and a monitor in another process woken by the
monitored port's syncs."""
from __future__ import annotations

import errno
import json
import os
import random
import subprocess
import sys
import textwrap

import pytest

import nmcompat
from nmcompat._ring import NS_MOREFRAG, NS_TXMON
from testlib import rundir_entries

BCAST = b"\xff" * 6


def drain(port, keep_flags=False):
    """Every frame the port's RX rings hold now (chains joined), released."""
    port.rxsync()
    out = []
    for ring in port.rx_rings:
        frame, flags = b"", 0
        i = ring.cur
        while i != ring.tail:
            s = ring.slots[i]
            frame += bytes(ring.buf(int(s["buf_idx"]))[:int(s["len"])])
            flags |= int(s["flags"])
            if not int(s["flags"]) & NS_MOREFRAG:
                out.append((frame, flags & ~NS_MOREFRAG) if keep_flags else frame)
                frame, flags = b"", 0
            i = ring.next(i)
        ring.head = ring.cur = i
    port.rxsync()
    return out


def frames(n, seed=1, maxlen=3000):
    rnd = random.Random(seed)
    return [BCAST + bytes(rnd.randrange(256) for _ in range(rnd.randrange(60, maxlen)))
            for _ in range(n)]


def send(port, data):
    port.txsync()                               # slots the peer released
    for d in data:
        assert port.inject(d) == len(d)
    port.txsync()


def test_pipe_monitors_copy_byte_exact(rundir):
    data = frames(20)
    with nmcompat.open("netmap:x{1") as m, nmcompat.open("netmap:x}1") as s, \
            nmcompat.open("netmap:x{1/t") as mt, nmcompat.open("netmap:x}1/r") as sr:
        assert mt.nifp.ni_rx_rings == 1
        assert nmcompat._ffi.ffi.string(sr.nifp.ni_name) == b"x}1/r"
        send(m, data)
        assert drain(s) == data                 # the monitored port still gets everything
        assert drain(mt, True) == [(d, NS_TXMON) for d in data]
        assert drain(sr, True) == [(d, 0) for d in data]
    assert rundir_entries(rundir) == ["lock"]


def pipe_monitor_sees_both_directions(parent, flags, seeds, counts=(5, 7)):
    """A monitor `{parent}{{1/{flags}` of a pipe's master sees what it sends
    (NS_TXMON) and what it receives, while both ends get everything."""
    out, back = frames(counts[0], seed=seeds[0]), frames(counts[1], seed=seeds[1])
    with nmcompat.open(f"netmap:{parent}{{1") as m, nmcompat.open(f"netmap:{parent}}}1") as s, \
            nmcompat.open(f"netmap:{parent}{{1/{flags}") as mon:
        send(m, out)
        assert drain(s) == out
        send(s, back)
        assert drain(m) == back
        seen = drain(mon, True)
        assert sorted(seen) == sorted([(d, NS_TXMON) for d in out] + [(d, 0) for d in back])


def test_pipe_rt_sees_both_directions(rundir):
    pipe_monitor_sees_both_directions("y", "rt", (2, 3))


def test_vale_monitors(rundir):
    data = frames(10, seed=4, maxlen=1500)
    with nmcompat.open("vale0:a") as a, nmcompat.open("vale0:b") as b, \
            nmcompat.open("vale0:a/t") as at, nmcompat.open("vale0:b/r") as br, \
            nmcompat.open("vale0:b/t") as bt:
        send(a, data)
        assert drain(b) == data
        assert drain(at, True) == [(d, NS_TXMON) for d in data]
        assert drain(br, True) == [(d, 0) for d in data]
        assert drain(bt) == []                  # b sent nothing


def test_several_monitors_and_their_limit(rundir):
    data = frames(4, seed=5)
    with nmcompat.open("netmap:z{1") as m, nmcompat.open("netmap:z}1") as s:
        mons = [nmcompat.open("netmap:z{1/t") for _ in range(8)]
        try:
            with pytest.raises(OSError) as e:
                nmcompat.open("netmap:z{1/t")
            assert e.value.errno == errno.EBUSY
            send(m, data)
            assert drain(s) == data
            for mon in mons:
                assert drain(mon) == data
        finally:
            for mon in mons:
                mon.close()
        for _ in range(20):                     # closing unlinks: no limit reached again
            nmcompat.open("netmap:z{1/t").close()
        with nmcompat.open("netmap:z{1/t") as mon:
            send(m, data)
            assert drain(s) == data
            assert drain(mon) == data


def test_excess_is_dropped_oldest_first_and_the_port_unaffected(rundir):
    data = frames(23, seed=6, maxlen=200)
    with nmcompat.open("netmap:w{1", slots=16) as m, nmcompat.open("netmap:w}1", slots=16) as s, \
            nmcompat.open("netmap:w}1/r") as mon:
        send(m, data[:10])
        assert drain(s) == data[:10]
        send(m, data[10:20])
        assert drain(s) == data[10:20]
        # 16 slots, 15 usable: of the second batch only the newest 5 fit (netmap)
        assert drain(mon) == data[:10] + data[15:20]
        send(m, data[20:])
        assert drain(s) == data[20:]
        assert drain(mon) == data[20:]          # room again once released


@pytest.mark.parametrize("name", ["netmap:never{1/r", "netmap:never}1/t", "vale0:never/r",
                                  "vale7:none/rt"])
def test_monitor_of_a_port_nobody_has_open_is_einval(rundir, name):
    with pytest.raises(OSError) as e:
        nmcompat.open(name)
    assert e.value.errno == errno.EINVAL


def test_monitor_of_the_other_end_only(rundir):
    with nmcompat.open("netmap:v{1"):
        with pytest.raises(OSError) as e:
            nmcompat.open("netmap:v}1/r")       # the slave end is not open
        assert e.value.errno == errno.EINVAL


def held(port):
    """Every frame the RX rings hold now, not released."""
    port.rxsync()
    out = []
    for ring in port.rx_rings:
        i = ring.cur
        while i != ring.tail:
            s = ring.slots[i]
            out.append(bytes(ring.buf(int(s["buf_idx"]))[:int(s["len"])]))
            i = ring.next(i)
    return out


def release(port):
    for ring in port.rx_rings:
        ring.head = ring.cur = ring.tail
    port.rxsync()


def test_zero_copy_monitor_sees_rx_only_once_released(rundir):
    data = frames(6, seed=9, maxlen=2000)
    with nmcompat.open("netmap:q{1") as m, nmcompat.open("netmap:q}1") as s, \
            nmcompat.open("netmap:q}1/z") as zs:
        assert nmcompat._ffi.ffi.string(zs.nifp.ni_name) == b"q}1/zrt"
        send(m, data)
        assert held(s) == data
        assert drain(zs) == []                  # not released yet: nothing seen
        s.rxsync()
        assert drain(zs) == []
        release(s)
        assert drain(zs, True) == [(d, 0) for d in data]
        send(m, data[:2])                       # the buffers traded keep working
        assert drain(s) == data[:2]
        assert drain(zs) == data[:2]
    assert rundir_entries(rundir) == ["lock"]   # no buffer lost in the trades


def test_zero_copy_monitor_sees_tx_once_completed(rundir):
    data = frames(5, seed=10, maxlen=1500)
    with nmcompat.open("netmap:o{1") as m, nmcompat.open("netmap:o}1") as s, \
            nmcompat.open("netmap:o{1/z") as zm:
        send(m, data)
        assert drain(zm) == []                  # sent, not yet completed
        assert held(s) == data
        release(s)
        assert drain(zm) == []                  # completed, but m has not synced since
        m.txsync()
        assert drain(zm, True) == [(d, NS_TXMON) for d in data]
        send(m, data[:3])
        assert drain(s) == data[:3]


def test_zero_copy_monitor_on_vale(rundir):
    data = frames(5, seed=11, maxlen=1500)
    with nmcompat.open("vale2:a") as a, nmcompat.open("vale2:b") as b, \
            nmcompat.open("vale2:a/z") as za, nmcompat.open("vale2:b/z") as zb, \
            nmcompat.open("vale2:b/r") as rb:
        send(a, data)                           # VALE completes TX in the sync itself
        assert drain(za, True) == [(d, NS_TXMON) for d in data]
        assert held(b) == data
        assert drain(rb) == data                # a copy monitor sees them on arrival
        assert drain(zb) == []
        release(b)
        assert drain(zb) == data
        with nmcompat.open("vale2:b/z") as zb2:     # chained after zb
            send(a, data[:2])
            assert drain(b) == data[:2]
            assert drain(zb) == data[:2]
            assert drain(zb2) == data[:2]
    assert rundir_entries(rundir) == ["lock"]


def test_monitor_outlives_its_target(rundir):
    data = frames(3, seed=7)
    m = nmcompat.open("netmap:t{1")
    s = nmcompat.open("netmap:t}1")
    mon = nmcompat.open("netmap:t}1/r")
    send(m, data)
    assert drain(s) == data
    m.close()
    s.close()
    assert drain(mon) == data                   # what was copied stays readable
    assert mon.poll(nmcompat.POLLIN, 0) == 0    # and nothing more comes
    mon.close()
    with pytest.raises(OSError) as e:
        nmcompat.open("netmap:t}1/r")
    assert e.value.errno == errno.EINVAL
    assert rundir_entries(rundir) == ["lock"]


CHILD = textwrap.dedent("""
    import sys, nmcompat
    from nmcompat._ring import NS_TXMON
    mon = nmcompat.open(sys.argv[1])
    print("ready", flush=True)
    want, got = int(sys.argv[2]), []
    while len(got) < want:
        if mon.poll(nmcompat.POLLIN, 10000) <= 0:
            break
        r = mon.rx_rings[0]
        while r.cur != r.tail:
            s = r.slots[r.cur]
            got.append((bytes(r.buf(int(s["buf_idx"]))[:int(s["len"])]).hex(), int(s["flags"])))
            r.head = r.cur = r.next(r.cur)
    for d, f in got:
        print(d, f, flush=True)
    mon.close()
""")


def test_monitor_in_another_process_is_woken(rundir):
    data = frames(5, seed=8, maxlen=1000)
    with nmcompat.open("vale1:src") as a, nmcompat.open("vale1:dst") as b:
        child = subprocess.Popen([sys.executable, "-c", CHILD, "vale1:src/t", str(len(data))],
                                 stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout.readline().strip() == "ready"
            send(a, data)
            out, _ = child.communicate(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        assert drain(b) == data
        assert [line.split() for line in out.splitlines()] == \
            [[d.hex(), str(NS_TXMON)] for d in data]


def test_refusals_say_why(rundir):
    with pytest.raises(OSError) as e:
        nmcompat.open("netmap:gone{1/r")
    assert "gone{1 is not open" in str(e.value), str(e.value)
    with nmcompat.open("netmap:busy{1"):
        mons = [nmcompat.open("netmap:busy{1/t") for _ in range(8)]
        try:
            with pytest.raises(OSError) as e:
                nmcompat.open("netmap:busy{1/t")
            assert "as many monitors as it takes" in str(e.value), str(e.value)
        finally:
            for mon in mons:
                mon.close()


def test_every_buffer_in_one_place_with_monitors_open(rundir):
    """`nmcompat check`: after zero-copy trades and copies, with the monitors
    still open, every buffer of the region is in exactly one place."""
    data = frames(8, seed=12, maxlen=1500)
    with nmcompat.open("netmap:k{1") as m, nmcompat.open("netmap:k}1") as s, \
            nmcompat.open("netmap:k}1/z") as z, nmcompat.open("netmap:k{1/rt") as c:
        send(m, data)
        assert drain(s) == data
        assert drain(z) == data
        assert drain(c) == data
        proc = subprocess.run([sys.executable, "-m", "nmcompat.tools", "check", "--json"],
                              capture_output=True, text=True, timeout=60,
                              env=dict(os.environ, NMCOMPAT_RUNDIR=str(rundir)))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert json.loads(proc.stdout)["violations"] == 0


def put(ring, data):
    s = ring.slots[ring.cur]
    ring.buf(int(s["buf_idx"]))[:len(data)] = data
    s["len"], s["flags"] = len(data), 0
    ring.head = ring.cur = ring.next(ring.cur)


def test_a_monitor_of_one_ring_pair_sees_that_ring_only(rundir):
    a, b = frames(1, seed=13)[0], frames(1, seed=14)[0]
    with nmcompat.open("netmap:mr{1", rings=2) as m, nmcompat.open("netmap:mr}1", rings=2) as s, \
            nmcompat.open("netmap:mr}1-1/r") as one, nmcompat.open("netmap:mr}1/r") as every:
        assert [r.ringid for r in one.rx_rings] == [1]
        put(m.tx_rings[0], a)
        put(m.tx_rings[1], b)
        m.txsync()
        assert sorted(drain(s)) == sorted([a, b])
        assert drain(one) == [b]
        assert sorted(drain(every)) == sorted([a, b])


def test_monitor_of_an_interface(rundir):
    with pytest.raises(OSError) as e:
        nmcompat.open("netmap:nmcnosuch0/r")
    assert e.value.errno == errno.ENXIO
    with pytest.raises(OSError) as e:
        nmcompat.open("netmap:lo/t")            # exists, but no process has it open
    assert e.value.errno == errno.EINVAL and "lo is not open" in str(e.value)


def test_a_monitor_takes_the_slot_count_asked(rundir):
    data = frames(10, seed=15, maxlen=100)
    with nmcompat.open("netmap:sl{1") as m, nmcompat.open("netmap:sl}1") as s, \
            nmcompat.open("netmap:sl}1/r", slots=4) as small, nmcompat.open("netmap:sl}1/r") as dflt:
        assert small.rx_rings[0].num_slots == 4
        assert dflt.rx_rings[0].num_slots == s.rx_rings[0].num_slots
        send(m, data)
        assert drain(s) == data
        assert drain(small) == data[-3:]        # 3 usable slots: the newest 3
        assert drain(dflt) == data


MON_CHILD = textwrap.dedent("""
    import sys, nmcompat
    mon = nmcompat.open(sys.argv[1])
    print("monitoring", flush=True)
    told = False
    while True:
        mon.poll(nmcompat.POLLIN, 1000)
        for r in mon.rx_rings:
            if r.cur != r.tail and not told:
                print("saw", flush=True)
                told = True
            r.head = r.cur = r.tail
""")


def test_monitors_come_and_go_beside_a_stream(rundir, procs):
    """Monitors of both ends, copy and zero-copy, opened and closed here or
    in a process SIGKILLed (reaped by the next open), one round after the
    other while frames stream through the pipe: each sees its round's
    frames, the stream stays exact, and every buffer ends in one place."""
    names = ["netmap:ms}1/r", "netmap:ms{1/t", "netmap:ms}1/z", "netmap:ms{1/rt"]
    with nmcompat.open("netmap:ms{1") as m, nmcompat.open("netmap:ms}1") as s:
        for rounds in range(12):
            name, data = names[rounds % len(names)], frames(40, seed=100 + rounds)
            if rounds % 2:
                child = procs.spawn([sys.executable, "-c", MON_CHILD, name])
                child.expect("monitoring")
                send(m, data)
                assert drain(s) == data
                m.txsync()                      # completions, for a zero-copy TX monitor
                child.expect("saw", timeout=30)
                child.kill()                    # its holder is reaped by a later open
                child.wait()
            else:
                with nmcompat.open(name) as mon:
                    send(m, data)
                    assert drain(s) == data
                    m.txsync()
                    assert drain(mon), name
        proc = subprocess.run([sys.executable, "-m", "nmcompat.tools", "check", "--json"],
                              capture_output=True, text=True, timeout=60,
                              env=dict(os.environ, NMCOMPAT_RUNDIR=str(rundir)))
        assert json.loads(proc.stdout)["violations"] == 0, proc.stdout


def test_share_and_extmem_on_a_monitor_are_refused(rundir, tmp_path):
    with nmcompat.open("netmap:sh{1"), nmcompat.open("vale0:sh"):
        with pytest.raises(OSError) as e:
            nmcompat.open("netmap:sh{1/r@share=vale0:sh")
        assert e.value.errno == errno.EOPNOTSUPP and "'@share'" in str(e.value)
        with pytest.raises(OSError) as e:
            nmcompat.open(f"netmap:sh{{1/t@extmem:file={tmp_path / 'f'}")
        assert e.value.errno == errno.EOPNOTSUPP and "'@extmem'" in str(e.value)
