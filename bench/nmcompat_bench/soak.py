"""./run bench soak [--minutes N] [--quick]: pipe and VALE traffic between
several processes for a long time, every frame accounted for.

Processes (each one port, nmcompat_bench._soak_worker):

- pipes: PIPES sender/receiver pairs on ``netmap:soakp<pid>{i`` /
  ``netmap:soakp<pid>}i`` (one region), each sender FLOWS flows;
- VALE: VALE_SENDERS senders ``valesk<pid>:s<i>`` sending to the MAC of one
  receiver ``valesk<pid>:r`` on the same switch, each FLOWS flows.

Frames have random lengths from 60 to 9000 bytes (NS_MOREFRAG chains of up
to five 2048-byte buffers) and carry their flow, sequence number and
length; receivers check the bytes of every frame and the order per flow.
After the run time the senders stop and drain their rings, the receivers
are told how many frames each flow sent and read until every flow is
complete (or nothing arrives for a while).  The verdict, per receiver:

- pipes: every frame sent arrived (a pipe never drops);
- VALE: frames sent == frames received + frames the switch counted as
  dropped (rx_dropped of the receiver's port, tx_dropped of the senders'),
  and the frames missing per flow add up to those drops;
- everywhere: no frame reordered, duplicated or corrupt, nothing foreign.
  Zero-length frames are counted apart: a VALE sender pads the slots it
  leased on the receiver's ring but could not fill (a chain that did not
  fit) with len = 0 slots when another sender's lease follows, as netmap
  does; on a pipe one is a failure.

It prints a summary, then the result as one JSON line ("RESULT {...}");
--json PATH also writes it to a file.  Exit status 0 when every check
holds, 1 otherwise.  Never a timing assertion: the rates are figures.
The runtime directory is private (under /dev/shm, or --rundir) and its
tmpfs usage must be back to what it was once every port is closed.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time

PIPES, VALE_SENDERS, FLOWS = 2, 2, 3
RX_MAC = "02:00:00:00:02:01"


class Worker:
    """A worker process; its stdout JSON lines are read by a thread."""

    def __init__(self, args: list, env: dict) -> None:
        self.args = args
        self.proc = subprocess.Popen([sys.executable, "-m", "nmcompat_bench._soak_worker", *args],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env)
        self.lines: "queue.Queue" = queue.Queue()
        self.err: list = []
        threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=lambda: self.err.extend(self.proc.stderr), daemon=True).start()

    def _pump(self) -> None:
        for line in self.proc.stdout:
            try:
                self.lines.put(json.loads(line))
            except ValueError:
                self.lines.put({"error": line.strip()})
        self.lines.put(None)

    def next(self, timeout: float) -> dict:
        try:
            msg = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"{' '.join(self.args)}: nothing within {timeout:.0f} s") from None
        if msg is None or "error" in msg:
            raise RuntimeError(f"{' '.join(self.args)} failed: "
                               f"{(msg or {}).get('error', '')}{''.join(self.err)[-2000:]}")
        return msg

    def tell(self, msg: dict) -> None:
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()


def topology(pid: int) -> tuple:
    """[(sender args)], [(receiver args, flows, kind)]."""
    senders, receivers, flow = [], [], 0
    for i in range(PIPES):
        flows = list(range(flow, flow + FLOWS))
        flow += FLOWS
        ids = ",".join(map(str, flows))
        senders.append(["send", f"netmap:soakp{pid}{{{i}", str(1000 + i), ids])
        receivers.append((["recv", f"netmap:soakp{pid}}}{i}", ids], flows, "pipe"))
    vale_flows = []
    for i in range(VALE_SENDERS):
        flows = list(range(flow, flow + FLOWS))
        flow += FLOWS
        vale_flows += flows
        senders.append(["send", f"valesk{pid}:s{i}", str(2000 + i), ",".join(map(str, flows)),
                        RX_MAC, f"02:00:00:00:01:{i + 1:02x}"])
    receivers.append((["recv", f"valesk{pid}:r", ",".join(map(str, vale_flows)), RX_MAC],
                      vale_flows, "vale"))
    return senders, receivers


def verdict(kind: str, flows: list, sent: dict, rx: dict, tx_dropped: int) -> list:
    """What is wrong with one receiver's result ([] when nothing)."""
    bad = []
    got = rx["flows"]
    total_sent = sum(sent[f] for f in flows)
    received = sum(got[str(f)]["received"] for f in flows)
    missing = sum(got[str(f)]["gaps"] + got[str(f)]["missing_at_end"] for f in flows)
    drops = rx["stats"]["rx_dropped"] + tx_dropped if kind == "vale" else 0
    if total_sent != received + drops:
        bad.append(f"{rx['port']}: sent {total_sent} != received {received} + dropped {drops}")
    if missing != drops:
        bad.append(f"{rx['port']}: {missing} frames missing, {drops} counted as dropped")
    for f in flows:
        g = got[str(f)]
        if g["reordered"] or g["corrupt"]:
            bad.append(f"{rx['port']} flow {f}: {g['reordered']} reordered, {g['corrupt']} corrupt")
    if rx["empty"] and kind != "vale":
        bad.append(f"{rx['port']}: {rx['empty']} zero-length frames on a pipe")
    if rx["foreign"]:
        bad.append(f"{rx['port']}: {rx['foreign']} foreign frames: {rx.get('foreign_samples', [])[:3]}")
    return bad


def run(seconds: float, rundir: str) -> dict:
    import nmcompat.rundir as nrd
    env = dict(os.environ, NMCOMPAT_RUNDIR=rundir, PYTHONUNBUFFERED="1")
    import nmcompat
    nmcompat.open(f"netmap:soakw{os.getpid()}{{0", rundir=rundir).close()    # the runtime
    nrd.gc(rundir)                              # directory's own files, as after the run
    baseline = nrd.usage(rundir)
    senders, receivers = topology(os.getpid())
    workers: list = []
    try:
        rx = [Worker(args, env) for args, _, _ in receivers]
        workers += rx
        for w in rx:
            w.next(60)
        tx = [Worker(args, env) for args in senders]
        workers += tx
        for w in tx:
            w.next(60)
        start = time.monotonic()
        time.sleep(seconds)                         # the run itself: traffic flows meanwhile
        for w in tx:
            w.proc.terminate()
        sent_res = [w.next(60) for w in tx]
        elapsed = time.monotonic() - start
        sent = {int(f): n for r in sent_res for f, n in r["sent"].items()}
        for w, (_, flows, _) in zip(rx, receivers):
            w.tell({"expect": {f: sent[f] for f in flows}})
        rx_res = [w.next(120) for w in rx]
        for w in workers:
            w.proc.stdin.close()
            w.proc.wait(30)
    finally:
        for w in workers:
            if w.proc.poll() is None:
                w.proc.kill()
                w.proc.wait()
    tx_dropped = sum(r["stats"]["tx_dropped"] for r in sent_res if "vale" in r["port"])
    problems = [p for r in sent_res if not r["drained"] for p in [f"{r['port']}: TX not drained"]]
    for res, (_, flows, kind) in zip(rx_res, receivers):
        problems += verdict(kind, flows, sent, res, tx_dropped if kind == "vale" else 0)
    nrd.gc(rundir)
    after = nrd.usage(rundir)
    if after != baseline:
        problems.append(f"tmpfs usage {after} bytes after the run, {baseline} before")
    return {"seconds": round(elapsed, 1), "senders": sent_res, "receivers": rx_res,
            "frames_sent": sum(sent.values()),
            "frames_received": sum(g["received"] for r in rx_res for g in r["flows"].values()),
            "frames_dropped_counted": sum(r["stats"]["rx_dropped"] for r in rx_res) + tx_dropped,
            "problems": problems, "ok": not problems}


def summary(res: dict) -> str:
    lines = [f"soak: {res['seconds']} s, {PIPES} pipe pairs and {VALE_SENDERS} VALE senders -> 1 "
             f"VALE receiver, {FLOWS} flows per sender, frames of 60..9000 bytes"]
    for r in res["receivers"]:
        f = r["flows"].values()
        lines.append(f"  {r['port']:24} received {sum(g['received'] for g in f):>10}  "
                     f"dropped (counted) {r['stats']['rx_dropped']:>8}  "
                     f"reordered {sum(g['reordered'] for g in f)}  corrupt {sum(g['corrupt'] for g in f)}"
                     f"  empty {r['empty']}")
    rate = res["frames_sent"] / res["seconds"] if res["seconds"] else 0
    lines.append(f"  sent {res['frames_sent']} = received {res['frames_received']} + dropped "
                 f"{res['frames_dropped_counted']}  ({rate:.0f} frames/s)")
    lines += [f"  PROBLEM: {p}" for p in res["problems"]]
    lines.append("  verdict: " + ("every frame accounted for, none reordered"
                                  if res["ok"] else "FAILED"))
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="./run bench soak", description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="run time (default 10)")
    ap.add_argument("--quick", action="store_true", help="a 3-second run (CI)")
    ap.add_argument("--rundir", help="runtime directory (default: a private one under /dev/shm)")
    ap.add_argument("--json", metavar="PATH", help="also write the result to PATH")
    args = ap.parse_args(argv)
    if args.minutes <= 0:
        ap.error("--minutes must be positive")
    seconds = 3.0 if args.quick else args.minutes * 60
    rundir = args.rundir or tempfile.mkdtemp(prefix="nmc-soak-", dir="/dev/shm")
    try:
        res = run(seconds, rundir)
    except RuntimeError as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return 1
    finally:
        if not args.rundir:
            shutil.rmtree(rundir, ignore_errors=True)
    res["conditions"] = {"cpus": os.cpu_count(), "kernel": platform.release(),
                         "python": platform.python_version()}
    print(summary(res))
    print("RESULT " + json.dumps(res))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
