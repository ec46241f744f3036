"""The slot and ring flags a netmap user sets or reads are nmcompat's
attributes, with the values of <net/netmap.h>: NR_FORWARD and NS_FORWARD
for transparent mode, NS_TXMON on a monitor's slots, without reaching into
a private module."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import nmcompat

HEADER = Path(__file__).resolve().parents[2] / "csrc" / "include" / "net" / "netmap.h"
FLAGS = ["NS_BUF_CHANGED", "NS_REPORT", "NS_FORWARD", "NS_NO_LEARN", "NS_INDIRECT", "NS_MOREFRAG",
         "NS_TXMON", "NR_TIMESTAMP", "NR_FORWARD"]


def header_value(name: str) -> int:
    found = re.search(rf"^#define\s+{name}\s+(0x[0-9a-fA-F]+)\b", HEADER.read_text(), re.M)
    assert found, f"{name} is not defined in {HEADER}"
    return int(found.group(1), 16)


@pytest.mark.parametrize("name", FLAGS)
def test_a_netmap_flag_is_an_attribute_of_nmcompat_with_the_headers_value(name):
    assert getattr(nmcompat, name) == header_value(name)
    assert name in nmcompat.__all__
