"""bench compare's CPU columns on a loaded machine: a side that got no CPU
time in the measuring window is not reported as 0 ns per packet; the window
widens until each side has run, and a side that never ran in it by the
run's end is unmeasured (None, named in "cpu_unmeasured")."""
import sys

from testlib import BENCH_DIR

sys.path.insert(0, str(BENCH_DIR))
from nmcompat_bench import _peers  # noqa: E402


class _Child:
    def __init__(self, cpu):
        self.cpu, self.reads = cpu, 0

    def cpu_ns(self):
        self.reads += 1
        return self.cpu(self.reads)

    def kill(self):
        pass


class _End:
    counts = False

    def __init__(self, cpu, result=None):
        self.child, self.res = _Child(cpu), result or {}

    def ready(self):
        pass

    def go(self):
        pass

    def result(self, timeout):
        return self.res


RECEIVED = {"packets": 1000, "elapsed_ns": 1_000_000}


def test_the_window_widens_until_the_sender_has_run():
    rx = _End(lambda n: 10**8 * n, RECEIVED)
    tx = _End(lambda n: 5000 if n < 4 else 5000 + 10**8 * n)   # no CPU for its first reads
    r = _peers.timed_run(rx, tx, seconds=1.0)
    assert tx.child.reads >= 4, "the window ended before the sender had run"
    assert r["cpu_unmeasured"] == []
    assert r["tx_cpu_ns_per_pkt"] > 0 and r["rx_cpu_ns_per_pkt"] > 0, r


def test_a_side_that_never_ran_in_the_window_is_unmeasured_not_zero():
    rx = _End(lambda n: 10**8 * n, RECEIVED)
    tx = _End(lambda n: 5000)                                  # never scheduled
    r = _peers.timed_run(rx, tx, seconds=0.2)
    assert r["cpu_unmeasured"] == ["tx"], r
    assert r["tx_cpu_ns_per_pkt"] is None and r["cpu_ns_per_pkt"] is None, r
    assert r["rx_cpu_ns_per_pkt"] > 0, r


def test_a_side_that_ended_in_the_window_is_unmeasured():
    rx = _End(lambda n: 10**8 * n, RECEIVED)
    tx = _End(lambda n: 5000 if n == 1 else 0)                 # gone: /proc reads 0
    r = _peers.timed_run(rx, tx, seconds=0.2)
    assert r["cpu_unmeasured"] == ["tx"] and r["tx_cpu_ns_per_pkt"] is None, r
