"""nmcompat: the netmap packet I/O API on a stock Linux kernel.

    import nmcompat
    with nmcompat.open("netmap:x{1") as tx, nmcompat.open("netmap:x}1") as rx:
        tx.inject(b"hello")
        tx.txsync()
        rx.rxsync()
        print(rx.nextpkt())
"""
from nmcompat._open import open  # noqa: A004 - netmap's verb
from nmcompat._port import NM_MORE_PKTS, POLLERR, POLLIN, POLLOUT, PktHdr, Port, PortInfo
from nmcompat._portspec import PortSpec, parse_legacy, parse_nmport
from nmcompat._ring import (NR_FORWARD, NR_TIMESTAMP, NS_BUF_CHANGED, NS_FORWARD, NS_INDIRECT,
                            NS_MOREFRAG, NS_NO_LEARN, NS_REPORT, NS_TXMON, Ring)
from nmcompat._version import __version__
from nmcompat.errors import (BackendUnavailable, BadArgument, NmcompatError, NmcompatOSError,
                             OptionError, PortClosed, PortSpecError)

__all__ = [
    "open", "Port", "PortInfo", "PktHdr", "Ring", "PortSpec", "parse_nmport", "parse_legacy",
    "NmcompatError", "NmcompatOSError", "OptionError", "PortClosed", "PortSpecError",
    "BackendUnavailable", "BadArgument",
    "POLLIN", "POLLOUT", "POLLERR", "NM_MORE_PKTS",
    "NS_BUF_CHANGED", "NS_MOREFRAG", "NS_INDIRECT", "NS_REPORT", "NS_FORWARD", "NS_NO_LEARN",
    "NS_TXMON", "NR_TIMESTAMP", "NR_FORWARD", "__version__",
]
