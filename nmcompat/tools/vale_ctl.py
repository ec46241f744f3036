"""nmcompat vale-ctl (nmc-vale-ctl): netmap's vale-ctl on nmcompat switches.

usage: vale-ctl [-n|-r|-a|-d|-h|-l|-g|-p|-P name] [-C counts] [-m memid] [-v]

    -n if       create persistent port `if`          -r if      delete it
    -a valeX:if attach persistent port (or NIC)      -d valeX:if detach
    -h valeX:if attach with the host stack (NIC only)
    -l valeX:p  bridge and port index of one port    (no args)  list every port
    -g if       port info                            -v         verbose
    -C tx_slots[,rx_slots[,rings[,rx_rings]]]        -m memid|netmap:port
    -p/-P valeX:if  start/stop polling (NIC attachments only)

Output and exit codes follow netmap's tool: errors print
"failed to <action> <name>: <strerror>" (and, in parentheses, what
nmcompat knows beyond it) and exit 1; the full listing exits 1 even on
success, as the original does.  A name for -n must read back through
open("netmap:<name>"): no '-*^/@{}:', no "vale" prefix, under 16 bytes.
--help (or -h alone) prints this text and exits 0.
"""
from __future__ import annotations

import errno
import getopt
import os
import sys

from nmcompat import vale
from nmcompat.tools._cli import one_line, run

ACTIONS = {"-n": "create", "-r": "delete", "-a": "attach", "-h": "attach", "-d": "detach",
           "-l": "list", "-g": "get info for", "-p": "start polling on", "-P": "stop polling on"}


def _conf(text: str) -> dict:
    keys = ("tx_slots", "rx_slots", "tx_rings", "rx_rings")
    conf, vals = {}, [int(v) for v in text.split(",") if v]
    if any(not 0 <= v < 1 << 32 for v in vals):
        raise ValueError(f"-C {text}: counts are integers in [0, 2**32)")
    for i, v in enumerate(vals[:4]):
        conf[keys[i]] = v
        if i == 0:
            conf["rx_slots"] = v
        if i == 2:
            conf["rx_rings"] = v
    return conf


def _mem_id(text: str) -> int:
    if text.isdigit():
        return int(text)
    name = text.split(":", 1)[1] if text.startswith("netmap:") else text
    return vale.port_info(name)["mem_id"]


def _run(cmd: str, name: str, conf: dict, mem_id: int, verbose: bool) -> int:
    if cmd == "-n":
        vale.newif(name, mem_id=mem_id, **conf)
        if verbose:
            info = vale.port_info(name)
            print(f"{name}: tx_rings {info['tx_rings']} rx_rings {info['rx_rings']} "
                  f"tx_slots {info['tx_slots']} rx_slots {info['rx_slots']} mem_id {info['mem_id']}")
    elif cmd == "-r":
        vale.delif(name)
    elif cmd in ("-a", "-h"):
        if cmd == "-h":             # host rings: none on persistent ports; a switch does not take a NIC's
            err = errno.EINVAL if vale.is_persistent(name.split(":", 1)[-1]) else errno.EOPNOTSUPP
            raise OSError(err, os.strerror(err))
        idx = vale.attach(name)
        if verbose:
            print(f"attached {name} at port {idx}")
    elif cmd == "-d":
        idx = vale.detach(name)
        if verbose:
            print(f"detached {name} from port {idx}")
    elif cmd == "-l":
        if not name.startswith("vale"):
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        e = vale.lookup(name)
        print(f"bridge_idx: {e.bridge_idx}\nport_idx:   {e.port_idx}")
    elif cmd == "-g":
        i = vale.port_info(name)
        print(f"memsize: {i['memsize']}\ntx_slots: {i['tx_slots']}\nrx_slots: {i['rx_slots']}\n"
              f"tx_rings: {i['tx_rings']}\nrx_rings    {i['rx_rings']}\nmem_id: {i['mem_id']}")
    else:                               # -p / -P
        raise OSError(errno.EOPNOTSUPP, "polling applies to NIC attachments, which need the "
                      "AF_XDP or AF_PACKET backend (not in this version)")
    return 0


def main(argv=None) -> int:
    return run("vale-ctl", _main, argv)


def _why(exc: OSError) -> str:
    """netmap's strerror, and what nmcompat knows beyond it."""
    why = os.strerror(exc.errno) if exc.errno else str(exc)
    detail = getattr(exc, "reason", "")
    return f"{why} ({detail})" if detail and detail != why else why


def _main(argv) -> int:
    if argv in (["-h"], ["--help"]):      # -h NAME attaches with the host stack
        print(__doc__)
        return 0
    try:
        opts, rest = getopt.getopt(argv, "d:a:h:g:l:n:r:C:p:P:m:v")
    except getopt.GetoptError as exc:
        print(f"vale-ctl: {exc} (vale-ctl --help for usage)", file=sys.stderr)
        return 1
    if rest:
        print(f"vale-ctl: unexpected argument {rest[0]} (vale-ctl --help for usage)",
              file=sys.stderr)
        return 1
    cmd, name, conf, mem_id, verbose = None, None, {}, 0, False
    try:
        for opt, val in opts:
            if opt == "-C":
                conf = _conf(val)
            elif opt == "-m":
                mem_id = _mem_id(val)
            elif opt == "-v":
                verbose = True
            else:
                cmd, name = opt, val
    except (OSError, ValueError) as exc:
        print(f"vale-ctl: bad -m/-C value: {one_line(exc)}", file=sys.stderr)
        return 1
    if cmd is None:
        try:
            for e in vale.ports():
                print(f"{e.name} bridge_idx {e.bridge_idx} port_idx {e.port_idx}")
        except OSError as exc:          # not ENOENT (the end): e.g. another user's rundir
            print(f"failed to list ports: {_why(exc)}", file=sys.stderr)
        return 1                        # as netmap's list_all
    try:
        return _run(cmd, name, conf, mem_id, verbose)
    except OSError as exc:
        print(f"failed to {ACTIONS[cmd]} {name}: {_why(exc)}", file=sys.stderr)
        return 1
