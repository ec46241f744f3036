"""Fault injection: SIGKILL a random participant at a random moment, on
pipes, VALE and a veth NIC, and nothing else may suffer.

Topologies (fresh names for each kill; processes in this test's network
namespace; S senders and R receivers are fault_worker.py):

- pipe: S -> ``fa{1`` | ``nmcompat bridge fa}1 fb}1`` | ``fb{1`` -> R
- lb:   S -> ``fl{0`` | ``nmcompat lb -i fl}0 -p fo:2`` | ``fo}0`` -> R0, ``fo}1`` -> R1
- vale: two senders on ``valeN:s1``/``valeN:s2`` -> R on ``valeN:r``
- nic:  S -> ``netmap:va`` (AF_XDP or AF_PACKET) ~ veth ~ ``nmcompat bridge
  netmap:vb fn}1`` | ``fn{1`` -> R

Once traffic reaches every receiver, one participant is SIGKILLed after a
random delay.  Then:

1. the survivors continue within 1 s: each surviving worker's heartbeat
   advances, each receiver with a live path receives again (waited for
   with a 1 s bound), each surviving tool is still running;
2. ``nmcompat check`` is clean (its walk, nmcompat.tools.check.check_rundir,
   run in this process; survivors stopped with SIGSTOP meanwhile, so that no
   buffer moves during the walk);
3. no XDP program is attached to an interface nobody alive holds;
4. the victim, started again, gets traffic going again everywhere; then
   everything is SIGKILLed, and after ``nmcompat gc`` the tmpfs usage is its
   baseline, ``nmcompat check`` is clean and no XDP program is attached.

CI runs SHORT_KILLS kills (every topology); NMCOMPAT_FAULT_KILLS=N runs N
(the long mode), NMCOMPAT_FAULT_SEED picks the random sequence, and
NMCOMPAT_FAULT_REPORT=PATH writes the counts as JSON.
"""
from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nmcompat import rundir as rd
from nmcompat.bpf.netlink import xdp_query
from nmcompat.tools.check import check_rundir
from testlib import parse_kv

pytestmark = pytest.mark.kernel

WORKER = str(Path(__file__).resolve().parent / "fault_worker.py")
TOOL = [sys.executable, "-m", "nmcompat.tools"]
CONTINUE_WITHIN = 1.0       # the survivors' bound
RESUME_WITHIN = 30.0        # traffic again after the victim restarts (startup included)
SHORT_KILLS = 5
KINDS = ("pipe", "lb", "vale", "nic")
RX_MAC, S1_MAC, S2_MAC = "02:00:00:00:00:0a", "02:00:00:00:00:01", "02:00:00:00:00:02"


class Part:
    def __init__(self, name, argv, needs=(), receiver=False, any_of=False):
        self.name, self.argv, self.needs = name, argv, needs
        self.receiver, self.any_of = receiver, any_of
        self.tool = argv[0] != "send" and argv[0] != "recv"


def topology(kind: str, n: int) -> list:
    w = lambda *a: list(a)      # noqa: E731 - a worker's arguments
    if kind == "pipe":
        return [Part("R", w("recv", f"netmap:fb{n}{{1"), ("S", "B"), receiver=True),
                Part("B", ["bridge", "-w", "0", "-i", f"netmap:fa{n}}}1", "-i", f"netmap:fb{n}}}1"], ("S",)),
                Part("S", w("send", f"netmap:fa{n}{{1"))]
    if kind == "lb":
        return [Part("R0", w("recv", f"netmap:fo{n}}}0"), ("S", "LB"), receiver=True),
                Part("R1", w("recv", f"netmap:fo{n}}}1"), ("S", "LB"), receiver=True),
                Part("LB", ["lb", "-w", "0", "-i", f"netmap:fl{n}}}0", "-p", f"fo{n}:2"], ("S",)),
                Part("S", w("send", f"netmap:fl{n}{{0"))]
    if kind == "vale":
        return [Part("R", w("recv", f"valef{n}:r", RX_MAC), ("S1", "S2"), receiver=True, any_of=True),
                Part("S1", w("send", f"valef{n}:s1", RX_MAC, S1_MAC)),
                Part("S2", w("send", f"valef{n}:s2", RX_MAC, S2_MAC))]
    return [Part("R", w("recv", f"netmap:fn{n}{{1"), ("S", "B"), receiver=True),
            Part("B", ["bridge", "-w", "0", "-i", "netmap:vb", "-i", f"netmap:fn{n}}}1"], ("S",)),
            Part("S", w("send", "netmap:va"))]


class Round:
    """One topology, started; kills and checks."""

    def __init__(self, procs, netns, kind: str, n: int, backend: str) -> None:
        self.procs, self.netns, self.kind = procs, netns, kind
        self.env = {"NMCOMPAT_BACKEND": backend, "NMCOMPAT_SPIN_US": "0"}
        self.parts = {p.name: p for p in topology(kind, n)}
        self.running = {}
        for p in self.parts.values():
            self.start(p)

    def start(self, p: Part) -> None:
        argv = TOOL + p.argv if p.tool else [sys.executable, WORKER, *p.argv]
        proc = self.procs.spawn(["ip", "netns", "exec", self.netns.name, *argv], env=self.env)
        if not p.tool:
            proc.expect("ready", timeout=60)
        self.running[p.name] = proc

    def hb(self, name: str) -> dict:
        lines = [ln for ln in self.running[name].out[-5:] if ln.startswith("hb ")]
        return {k: int(v) for k, v in parse_kv(lines[-1]).items()} if lines else \
            {"loops": 0, "tx": 0, "rx": 0}

    def wait(self, cond, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def receivers(self):
        return [p for p in self.parts.values() if p.receiver and p.name in self.running]

    def traffic_everywhere(self, timeout: float) -> list:
        """The receivers that got nothing new within timeout."""
        before = {p.name: self.hb(p.name)["rx"] for p in self.receivers()}
        return [name for name in before
                if not self.wait(lambda: self.hb(name)["rx"] > before[name], timeout)]

    def live_path(self, p: Part) -> bool:
        alive = [n in self.running for n in p.needs]
        return any(alive) if p.any_of else all(alive)

    def kill(self, name: str) -> list:
        """SIGKILL name; what did not continue within CONTINUE_WITHIN."""
        before = {n: self.hb(n) for n in self.running}
        self.running.pop(name).kill(signal.SIGKILL)
        late = []
        for n, proc in self.running.items():
            p = self.parts[n]
            if p.tool:
                if not proc.alive():
                    late.append(f"{n} died")
                continue
            key = "rx" if p.receiver and self.live_path(p) else "loops"
            if not self.wait(lambda: self.hb(n)[key] > before[n][key], CONTINUE_WITHIN):
                late.append(f"{n}: no {key} within {CONTINUE_WITHIN} s")
        return late

    def check(self, rundir) -> str:
        """nmcompat check (its walk, check_rundir) with every process
        paused; '' when clean, else the violations."""
        for proc in self.running.values():
            os.kill(proc.pid, signal.SIGSTOP)
        try:
            reports = check_rundir(str(rundir))
        finally:
            for proc in self.running.values():
                os.kill(proc.pid, signal.SIGCONT)
        return "; ".join(v["text"] for r in reports for v in r["listed"]) or \
            ("; ".join(f"region {r['mem_id']}: {r['violations']} violations" for r in reports
                       if r["violations"]))

    def xdp_left(self) -> list:
        """Interfaces with an XDP program that no live process holds."""
        held = {"va": "S", "vb": "B"} if self.kind == "nic" else {}
        idle = [dev for dev in ("va", "vb") if held.get(dev) not in self.running]
        return [dev for dev in idle if self.netns.run(_attached, dev)]

    def stop(self) -> None:
        for proc in self.running.values():
            proc.kill(signal.SIGKILL)
        self.running.clear()


def _attached(dev: str) -> bool:
    return xdp_query(socket.if_nametoindex(dev)).attached


def one_kill(procs, netns, rundir, rng, kind: str, n: int, baseline: int) -> dict:
    backend = rng.choice(["afxdp", "afpacket"])
    r = Round(procs, netns, kind, n, backend)
    out = {"kind": kind, "backend": backend if kind == "nic" else None}
    try:
        assert r.traffic_everywhere(RESUME_WITHIN) == [], f"{kind}: no traffic at the start"
        victim = rng.choice(sorted(r.parts))
        time.sleep(rng.uniform(0, 0.3))                 # a random moment of the traffic
        out["victim"] = victim
        out["late"] = r.kill(victim)
        out["check"] = r.check(rundir)
        out["xdp_after_kill"] = r.xdp_left()
        r.start(r.parts[victim])
        out["no_traffic_after_restart"] = r.traffic_everywhere(RESUME_WITHIN)
    finally:
        r.stop()
    rd.gc(str(rundir))
    out["usage"], out["baseline"] = rd.usage(str(rundir)), baseline
    out["check_after_gc"] = r.check(rundir)
    out["xdp_at_end"] = r.xdp_left()
    return out


def failures(o: dict) -> list:
    bad = [f"{k}: {o[k]}" for k in ("late", "check", "xdp_after_kill", "no_traffic_after_restart",
                                   "check_after_gc", "xdp_at_end") if o.get(k)]
    if o["usage"] != o["baseline"]:
        bad.append(f"tmpfs usage {o['usage']} != baseline {o['baseline']}")
    return bad


def test_sigkill_of_any_participant_harms_nobody_else(procs, netns, rundir):
    kills = int(os.environ.get("NMCOMPAT_FAULT_KILLS", SHORT_KILLS))
    seed = int(os.environ.get("NMCOMPAT_FAULT_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    netns.ip("link", "set", "dev", "va", "mtu", "1500")
    subprocess.run(["ip", "netns", "exec", netns.name, "sysctl", "-qw",
                    "net.ipv6.conf.all.disable_ipv6=1"], check=True)
    with __import__("nmcompat").open("netmap:fwarm{0"):
        pass
    rd.gc(str(rundir))
    baseline = rd.usage(str(rundir))
    results, bad = [], []
    for i in range(kills):
        kind = KINDS[i % len(KINDS)] if i < len(KINDS) else rng.choice(KINDS)
        o = one_kill(procs, netns, rundir, rng, kind, i, baseline)
        results.append(o)
        print(f"kill {i}: {kind} {o['victim']} {failures(o) or 'ok'}", flush=True)   # seen with -s
        bad += [f"kill {i} ({kind}, {o['victim']}): {b}" for b in failures(o)]
        if bad and kills <= SHORT_KILLS:
            break
    report = {"seed": seed, "kills": len(results), "clean": len(results) - len({b.split(':')[0] for b in bad}),
              "by_kind": {k: sum(o["kind"] == k for o in results) for k in KINDS},
              "by_victim": {}, "failures": bad}
    for o in results:
        key = f"{o['kind']}:{o['victim']}"
        report["by_victim"][key] = report["by_victim"].get(key, 0) + 1
    if os.environ.get("NMCOMPAT_FAULT_REPORT"):
        Path(os.environ["NMCOMPAT_FAULT_REPORT"]).write_text(json.dumps(report, indent=1) + "\n")
    assert not bad, f"seed {seed}:\n" + "\n".join(bad)
