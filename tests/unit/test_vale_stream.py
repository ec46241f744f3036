"""VALE's streamed copies (csrc/core/copy.c): a sender copies frames of at
least the receiving port's stream_min bytes with non-temporal stores of
whole 64-byte lines.  stream_min is $NMCOMPAT_VALE_STREAM_MIN of the process
that opened the receiving port (256 by default, 0 never): the receiver knows
whether it reads whole frames.  Every length arrives byte for byte whichever
way it was copied, the sender's `streamed` counter says which fragments went
which way, and a bad value is refused by name (by the Python layer) and with
EINVAL (by the engine itself)."""
from __future__ import annotations

import errno

import pytest

import nmcompat
from nmcompat import config, vale
from nmcompat.errors import OptionError
from vale_helpers import BCAST, Agents, agents, frame, mac, pattern  # noqa: F401

# around the line size, the default threshold and a VALE port's buffer size
# (2112), and one frame of three fragments (2112 + 2112 + 776)
SIZES = [60, 63, 64, 65, 127, 255, 256, 257, 511, 1514, 1999, 2047, 2048, 2111, 2112, 5000]
BUF = 2112


def fragments(size: int) -> list:
    return [min(BUF, size - k) for k in range(0, size, BUF)]


def with_setting(env: dict, setting) -> dict:
    env = dict(env)
    env.pop("NMCOMPAT_VALE_STREAM_MIN", None)
    if setting is not None:
        env["NMCOMPAT_VALE_STREAM_MIN"] = setting
    return env


def send_all(procs, sizes: list, sender=None, receiver=None) -> tuple:
    """a (its process's setting `sender`) sends frames of `sizes` to b (`receiver`)."""
    pools = [Agents(with_setting(procs.env, sender)), Agents(with_setting(procs.env, receiver))]
    try:
        a, b = pools[0].open("vale0:a"), pools[1].open("vale0:b")
        frames = [frame(BCAST, mac(1), pattern(n - 14, seed=n), n) for n in sizes]
        for f in frames:
            assert a.send([f]) == 1
        got = [p["data"] for p in b.packets("dispatch")]
        return frames, got, a.stats()["streamed"]
    finally:
        for pool in pools:
            pool.close()


def streamed_by(threshold: int, sizes: list) -> int:
    return sum(1 for n in sizes for f in fragments(n) if threshold and f >= threshold)


@pytest.mark.parametrize("setting, threshold", [(None, 256), ("0", 0), ("64", 64), ("1024", 1024),
                                                ("0x800", 2048)])
def test_every_length_arrives_exactly_and_the_setting_decides_what_streams(procs, setting, threshold):
    frames, got, streamed = send_all(procs, SIZES, sender=setting, receiver=setting)
    assert got == frames
    assert streamed == streamed_by(threshold, SIZES)


@pytest.mark.parametrize("sender, receiver, threshold", [(None, "0", 0), ("0", None, 256),
                                                         ("64", "1024", 1024)])
def test_the_receiving_port_decides(procs, sender, receiver, threshold):
    frames, got, streamed = send_all(procs, SIZES, sender=sender, receiver=receiver)
    assert got == frames
    assert streamed == streamed_by(threshold, SIZES)


@pytest.mark.parametrize("value", ["abc", "63", "65537", "-1", " 256", "256 ", "1_000", "0x", "08",
                                   "1e3", "+256"])
def test_a_bad_value_is_refused_by_name(rundir, monkeypatch, value):
    monkeypatch.setenv("NMCOMPAT_VALE_STREAM_MIN", value)
    with pytest.raises(OptionError) as exc:
        nmcompat.open("vale0:a", rundir=str(rundir))
    assert exc.value.errno == errno.EINVAL
    assert "NMCOMPAT_VALE_STREAM_MIN" in str(exc.value) and repr(value) in str(exc.value)


@pytest.mark.parametrize("value, expect", [("0", 0), ("64", 64), ("0x100", 256), ("0400", 256),
                                           ("65536", 65536), ("", 256)])
def test_good_values_as_the_engine_reads_them(rundir, monkeypatch, value, expect):
    monkeypatch.setenv("NMCOMPAT_VALE_STREAM_MIN", value)
    assert config.vale_stream_min() == expect
    with nmcompat.open("vale0:a", rundir=str(rundir)):
        pass


@pytest.mark.parametrize("value", ["abc", "63", "65537", "1_000", "08", "+256"])
def test_the_engine_refuses_a_bad_value_itself(rundir, monkeypatch, value):
    """A C program reaches the engine without the Python check: it must get
    EINVAL, never a silent default."""
    monkeypatch.setenv("NMCOMPAT_VALE_STREAM_MIN", value)
    monkeypatch.setattr(config, "vale_stream_min", lambda port="": 256)
    with pytest.raises(OSError) as exc:
        nmcompat.open("vale0:a", rundir=str(rundir))
    assert exc.value.errno == errno.EINVAL


@pytest.mark.parametrize("value, streams_300", [("0400", True), ("0x100", True), ("0x200", False),
                                                ("300", True), ("301", False), ("0", False)])
def test_the_engine_reads_the_value_as_the_python_layer_does(procs, value, streams_300):
    frames, got, streamed = send_all(procs, [300], receiver=value)
    assert got == frames
    assert streamed == int(streams_300)


@pytest.mark.parametrize("value", [" 256", "256 ", "-0", "0x", "-1"])
def test_the_engine_refuses_what_strtoul_alone_would_take(rundir, monkeypatch, value):
    monkeypatch.setenv("NMCOMPAT_VALE_STREAM_MIN", value)
    monkeypatch.setattr(config, "vale_stream_min", lambda port="": 256)
    with pytest.raises(OSError) as exc:
        nmcompat.open("vale0:a", rundir=str(rundir))
    assert exc.value.errno == errno.EINVAL


def test_unicast_and_a_broadcast_to_receivers_that_differ(procs):
    """The single-destination path, and one broadcast copied into a port that
    streams and one that does not."""
    pools = [Agents(with_setting(procs.env, None)), Agents(with_setting(procs.env, "0"))]
    try:
        a, b = pools[0].open("vale0:a"), pools[0].open("vale0:b")
        c = pools[1].open("vale0:c")
        b.send([frame(BCAST, mac(2), b"learn-b", 60)])          # b's MAC is known now
        a.frames(), c.frames()
        big = frame(mac(2), mac(1), pattern(1500, seed=3), 1514)
        assert a.send([big]) == 1
        assert b.frames() == [big] and c.frames() == []
        assert a.stats()["streamed"] == 1
        flood = frame(BCAST, mac(1), pattern(1500, seed=4), 1514)
        assert a.send([flood]) == 1
        assert b.frames() == [flood] and c.frames() == [flood]
        assert a.stats()["streamed"] == 2                       # b's copy only
    finally:
        for pool in pools:
            pool.close()


def test_an_indirect_frame_is_never_streamed(agents):
    a, b = agents.open("vale0:a"), agents.open("vale0:b")
    pkt = frame(BCAST, mac(1), pattern(1500, seed=5), 1514)
    assert a.send_indirect([[pkt]]) == 1
    assert b.frames() == [pkt]
    assert a.stats()["streamed"] == 0


def test_a_persistent_port_attached_after_it_was_opened(rundir, monkeypatch):
    """Its switch entry starts at the default, before its holder syncs; the
    holder's value is the one it opened with, whatever the environment says
    when the attachment reaches it (which then cannot fail)."""
    monkeypatch.delenv("NMCOMPAT_VALE_STREAM_MIN", raising=False)
    rd = str(rundir)
    vale.newif("vi1", rundir=rd)
    try:
        with nmcompat.open("netmap:vi1", rundir=rd) as holder:
            vale.attach("vale0:vi1", rundir=rd)
            with nmcompat.open("vale0:e", rundir=rd) as e:
                big = frame(BCAST, mac(2), pattern(1500, seed=6), 1514)
                assert e.inject(big) and e.txsync() is None
                assert e.stats()["streamed"] == 1               # before the holder's first sync
                data, lengths = holder.recv()
                assert bytes(data[0][:lengths[0]]) == big
                monkeypatch.setenv("NMCOMPAT_VALE_STREAM_MIN", "abc")
                back = frame(BCAST, mac(1), pattern(1500, seed=7), 1514)
                assert holder.inject(back) and holder.txsync() is None
                data, lengths = e.recv()
                assert [bytes(d[:n]) for d, n in zip(data, lengths)] == [back]
        vale.detach("vale0:vi1", rundir=rd)
    finally:
        vale.delif("vi1", rundir=rd)


def test_a_monitor_and_a_settings_report_do_not_read_it(rundir, monkeypatch):
    """A monitor copies as monitors do, and a report of the settings says
    what is wrong instead of failing."""
    rd = str(rundir)
    monkeypatch.delenv("NMCOMPAT_VALE_STREAM_MIN", raising=False)
    with nmcompat.open("vale0:a", rundir=rd):
        monkeypatch.setenv("NMCOMPAT_VALE_STREAM_MIN", "abc")
        with nmcompat.open("vale0:a/r", rundir=rd):
            pass
        assert config.settings()["vale_stream_min"].startswith("invalid (")
