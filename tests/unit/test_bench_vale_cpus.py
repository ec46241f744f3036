"""bench-vale pins its two processes as bench-compare pins its VALE rows:
the receiver on the second CPU, the sender on the first, so that the two
tools measure the same configuration."""
import sys

from testlib import BENCH_DIR

sys.path.insert(0, str(BENCH_DIR))
from nmcompat_bench import vale  # noqa: E402


def test_receiver_on_the_second_cpu_as_in_bench_compare(monkeypatch):
    seen = {}

    def measure(rundir, plan, count, repeat, cpus, timeout, tx_bufs=0):
        seen["cpus"] = cpus
        raise RuntimeError("measured nothing")

    monkeypatch.setattr(vale, "_pick_cpus", lambda no_pin: [4, 6])
    monkeypatch.setattr(vale, "measure", measure)
    assert vale.main(["--quick"]) == 1
    runner = vale.Runner("/nonexistent", seen["cpus"], 1.0)
    receiver_cpu = runner.cpus[0]               # Runner: cpus[0] for the receiver
    # bench-compare (compare.run_one): receiver on env.cpus[1], sender on env.cpus[0]
    assert seen["cpus"] == [6, 4]
    assert receiver_cpu == 6
