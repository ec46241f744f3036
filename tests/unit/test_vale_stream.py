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
from nmcompat import config
from nmcompat.errors import OptionError
from vale_helpers import BCAST, Agents, frame, mac, pattern

# around the line size, the default threshold and the buffer size (2048),
# and one frame of three fragments (2048 + 2048 + 904)
SIZES = [60, 63, 64, 65, 127, 255, 256, 257, 511, 1514, 1999, 2047, 2048, 5000]
BUF = 2048


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
