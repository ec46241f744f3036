"""One process of the demo: python -m nmcompat.tools.demo_role tx|rx PORT SECONDS BATCH."""
import sys

from nmcompat.tools import _demo_roles

if __name__ == "__main__":
    role, port, seconds, batch = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    if role == "tx":
        _demo_roles.sender(port, seconds, batch)
    else:
        _demo_roles.receiver(port, batch)
