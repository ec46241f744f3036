"""The soak benchmark (./run bench soak) in --quick mode: pipe and VALE
traffic between processes with every frame accounted for, and its verdict
catching what it must.  Never its speed."""
import json
import subprocess
import sys

from testlib import BENCH_DIR, bench_command, bench_env

sys.path.insert(0, str(BENCH_DIR))
from nmcompat_bench.soak import verdict  # noqa: E402


def test_quick_soak_accounts_for_every_frame(rundir):
    proc = subprocess.run(bench_command("soak", "--quick", "--rundir", str(rundir)), env=bench_env(),
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    res = json.loads(proc.stdout.splitlines()[-1].removeprefix("RESULT "))
    assert res["ok"] and res["problems"] == []
    assert res["frames_sent"] == res["frames_received"] + res["frames_dropped_counted"]
    for rx in res["receivers"]:
        assert sum(f["received"] for f in rx["flows"].values()) > 0, rx
        assert all(f["reordered"] == f["corrupt"] == 0 for f in rx["flows"].values()), rx
        if "soakp" in rx["port"]:
            assert rx["stats"]["rx_dropped"] == 0
    assert "verdict: every frame accounted for" in proc.stdout


def _rx(received, gaps=0, end=0, reordered=0, corrupt=0, dropped=0, foreign=0, empty=0):
    return {"port": "p", "foreign": foreign, "empty": empty, "stats": {"rx_dropped": dropped},
            "flows": {"0": {"received": received, "gaps": gaps, "missing_at_end": end,
                            "reordered": reordered, "corrupt": corrupt}}}


def test_verdict_names_every_kind_of_loss():
    assert verdict("pipe", [0], {0: 10}, _rx(10), 0) == []
    assert verdict("vale", [0], {0: 10}, _rx(7, gaps=2, end=1, dropped=3), 0) == []
    assert verdict("vale", [0], {0: 10}, _rx(7, gaps=2, end=1, dropped=2), 1) == []
    assert "sent 10 != received 9 + dropped 0" in verdict("pipe", [0], {0: 10}, _rx(9, end=1), 0)[0]
    # dropped as many as missing, but the counts do not add up to what was sent
    assert verdict("vale", [0], {0: 10}, _rx(8, gaps=1, dropped=1), 0)
    assert "1 reordered" in verdict("pipe", [0], {0: 10}, _rx(10, reordered=1), 0)[0]
    assert "1 corrupt" in verdict("pipe", [0], {0: 10}, _rx(10, corrupt=1), 0)[0]
    assert "2 foreign" in verdict("pipe", [0], {0: 10}, _rx(10, foreign=2), 0)[0]
    assert "3 zero-length frames on a pipe" in verdict("pipe", [0], {0: 10}, _rx(10, empty=3), 0)[0]
    assert verdict("vale", [0], {0: 10}, _rx(10, empty=3), 0) == []
