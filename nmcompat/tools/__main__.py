"""nmcompat <subcommand> [args]: one command, netmap's tools as subcommands."""
from __future__ import annotations

import importlib
import sys

SUBCOMMANDS = {
    "demo": ("nmcompat.tools.demo", "a sender and a receiver process, on a veth pair (root) "
             "or a pipe"),
    "vale-ctl": ("nmcompat.tools.vale_ctl", "netmap's vale-ctl: persistent ports, attach, list"),
    "vale-attachd": ("nmcompat.tools.vale_attachd", "(internal) forwarder of a NIC attached to VALE"),
    "pkt-gen": ("nmcompat.tools.pkt_gen", "netmap's pkt-gen: packet generator, sink, ping/pong"),
    "bridge": ("nmcompat.tools.bridge", "netmap's bridge: forward between two ports (zero-copy if possible)"),
    "lb": ("nmcompat.tools.lb", "netmap's lb: balance flows from a port onto groups of pipes"),
    "check": ("nmcompat.tools.check", "verify that every buffer of every region has exactly one owner"),
    "status": ("nmcompat.tools.status", "what a runtime directory holds: regions, ports, holders, switches"),
    "gc": ("nmcompat.tools.gc", "reclaim now what processes that died left in the runtime directory"),
    "replay": ("nmcompat.tools.replay", "netmap's nmreplay: send a pcap file at its timing or a rate"),
    "exec": ("nmcompat.tools.exec", "run an unmodified netmap program with /dev/netmap served by nmcompat"),
}


def _listing() -> str:
    lines = ["usage: nmcompat <subcommand> [args]  (nmcompat <subcommand> -h: its options)", ""]
    lines += [f"  {name:12} {what}" for name, (_, what) in SUBCOMMANDS.items()]
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-h", "--help", "help"):
        print(_listing())
        return 0
    if not argv or argv[0] not in SUBCOMMANDS:
        print(_listing(), file=sys.stderr)
        why = f"unknown subcommand '{argv[0]}'" if argv else "a subcommand is needed"
        print(f"nmcompat: {why}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[argv[0]][0])
    return module.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
