"""One process of the demo: python -m nmcompat.tools.demo_role tx|rx PORT SECONDS BATCH."""
import sys

from nmcompat.tools import _demo_roles
from nmcompat.tools._cli import run


def _main(argv) -> int:
    role, port, seconds, batch = argv[0], argv[1], float(argv[2]), int(argv[3])
    if role == "tx":
        _demo_roles.sender(port, seconds, batch)
    else:
        _demo_roles.receiver(port, batch)
    return 0


if __name__ == "__main__":
    sys.exit(run(f"demo {sys.argv[1] if len(sys.argv) > 1 else ''}".strip(), _main))
