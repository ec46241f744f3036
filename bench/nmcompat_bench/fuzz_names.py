"""./run bench fuzz-names [--count N] [--seed S]: port names through both
grammars (nmcompat.parse_nmport and parse_legacy), N of them.

Names are put together from the grammars' pieces (prefixes, names near the
length limits, pipe braces, ring selectors, flag groups, mem ids, @conf,
@share, @extmem and @offset options with good and bad keys and values),
then mutated at random (characters inserted, deleted, replaced) half of the
time.  For each name and each grammar (check):

- parsing returns a PortSpec or raises PortSpecError (errno 0, EINVAL or
  EOPNOTSUPP, a position inside the text, "couldn't parse port name ...");
  no other exception;
- a PortSpec has sane fields (mode, ring id, flags, mem id, name length,
  pipe parts);
- the round trip holds: the spec written back as text (render) parses to
  the same request, in the grammar it came from (where it can be written
  back: not an @extmem file name with a ',' beside other keys).

tests/unit/test_portspec_fuzz.py runs the same check on names Hypothesis
builds.  This module prints how many names were checked, how many parsed,
and exits 1 on the first failure (with the name).
"""
from __future__ import annotations

import argparse
import errno
import random
import sys
import time

from nmcompat import PortSpecError, parse_legacy, parse_nmport
from nmcompat import _portspec as ps

PARSERS = {"nmport": parse_nmport, "legacy": parse_legacy}
MODES = {ps.NR_REG_ALL_NIC: "", ps.NR_REG_SW: "^", ps.NR_REG_NIC_SW: "*"}
FLAG_LETTERS = {bit: c for c, bit in ps._FLAG_BITS.items()}
CONF_KEYS = ("rings", "host_rings", "slots", "tx_rings", "rx_rings", "host_tx_rings",
             "host_rx_rings", "tx_slots", "rx_slots", "tx-slots", "bogus", "")
EXTMEM_KEYS = ("file", "if_num", "if-size", "ring_num", "ring_size", "buf_num", "buf_size", "x")
PREFIXES = ("netmap:",) * 6 + ("vale0:",) * 3 + ("vale:", "valeA_1:", "vale0", "netmap", "",
                                                 "netmapx:", "val:", "VALE0:", "netmap:vale0:")
NAME_CHARS = "abcxyz019_.:-+ \t\u00e9{}^*/@=,\0"
MUTATION_CHARS = "-*^{}/@:=,0123456789xztrRT \u00e9\0"


def _number(rng: random.Random) -> str:
    if rng.random() < 0.7:
        return str(rng.choice([0, 1, rng.randrange(1, 64), rng.randrange(4095), rng.randrange(1, 65536)]))
    return rng.choice(["0", "1", "7", "4094", "4095", "65535", "65536", "99999999999999999999",
                       "-1", "+3", " 2", "", "0x10", str(rng.randrange(1 << 16))])


def _name(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.6:
        size = rng.choice([1, 2, 3, 5, 8, 14, 15, 16, 62, 63, 64])
        return "".join(rng.choice("abcdefghij0123456789_") for _ in range(size))
    if kind < 0.85:
        return rng.choice(["eth0", "x", "va", "p", "vale0:a", "eth0.100"]) + rng.choice(["{", "}"]) \
            + rng.choice(["1", "in", "0", "", "_a", "63"])
    return "".join(rng.choice(NAME_CHARS) for _ in range(rng.randrange(0, 20)))


def _option(rng: random.Random) -> str:
    kind = rng.randrange(5)
    if kind == 0:
        keys = rng.sample(CONF_KEYS[:9] if rng.random() < 0.8 else CONF_KEYS, rng.randrange(0, 4))
        return "@conf:" + ",".join(f"{k}={_number(rng)}" for k in keys)
    if kind == 1:
        return "@share=" + rng.choice(["netmap:x{1", "vale0:b", "", "y"]) if rng.random() < 0.7 \
            else "@share:port=netmap:x"
    if kind == 2:
        keys = rng.sample(EXTMEM_KEYS, rng.randrange(0, 4))
        return "@extmem:" + ",".join(f"{k}={rng.choice(['/tmp/x', _number(rng), ''])}" for k in keys)
    if kind == 3:
        return "@offset=" + _number(rng)
    return "@" + rng.choice(["conf", "bogus", "share", ""]) + rng.choice([":", "=", ""]) + _name(rng)


def generate(rng: random.Random) -> str:
    """A port name built from the grammars' pieces, mutated half of the time."""
    text = rng.choice(PREFIXES) + _name(rng)
    text += rng.choice(["", "", "", "^", "*", "-" + _number(rng), "^" + _number(rng),
                        "{" + _number(rng), "}" + _number(rng)])
    for _ in range(rng.choice([0, 0, 1, 2, 3])):
        if rng.random() < 0.6:
            text += "/" + "".join(rng.sample("xztrRT", rng.randrange(0, 4)))
        else:
            text += "@" + _number(rng)
    for _ in range(rng.choice([0, 0, 1, 2])):
        text += _option(rng)
    if rng.random() < 0.25 and text:
        for _ in range(rng.randrange(1, 4)):
            i = rng.randrange(len(text) + 1)
            op = rng.randrange(3)
            c = rng.choice(MUTATION_CHARS)
            text = text[:i] + c + text[i:] if op == 0 else text[:i] + text[i + 1:] if op == 1 \
                else text[:i] + c + text[i + 1:]
    return text


def render(spec):
    """The request of spec written back as a name of its grammar; None when
    it has none (an @extmem file name holding a ',' beside other keys: the
    key=value form cannot carry it)."""
    text = ("netmap:" if spec.subsys == "netmap" else "") + spec.name
    if spec.grammar == "legacy" and spec.pipe is not None:
        return text + _suffix(spec)         # "x{1" is the name itself
    if spec.mode in MODES:
        text += MODES[spec.mode]
    else:
        text += ("-" if spec.mode == ps.NR_REG_ONE_NIC else "^") + str(spec.ringid)
    text += _suffix(spec)
    if spec.conf:
        text += "@conf:" + ",".join(f"{k}={v}" for k, v in sorted(spec.conf.items()))
    if spec.share is not None:
        text += "@share=" + spec.share
    if spec.extmem is not None:
        if list(spec.extmem) == ["file"]:
            return text + "@extmem=" + spec.extmem["file"]
        if any("," in v for v in spec.extmem.values()):
            return None
        text += "@extmem:" + ",".join(f"{k}={v}" for k, v in sorted(spec.extmem.items()))
    return text


def _suffix(spec) -> str:
    flags = "".join(c for bit, c in sorted(FLAG_LETTERS.items()) if spec.flags & bit)
    return ("/" + flags if flags else "") + (f"@{spec.mem_id}" if spec.mem_id else "")


REQUEST = ("subsys", "name", "mode", "ringid", "flags", "mem_id", "conf", "share", "extmem",
           "pipe", "vale_switch", "vale_port")


def check(text: str, grammar: str):
    """The properties above for one name and grammar; returns the spec or
    None (a PortSpecError); raises AssertionError saying what broke."""
    try:
        spec = PARSERS[grammar](text)
    except PortSpecError as exc:
        assert exc.text == text, (text, exc.text)
        assert exc.errno in (0, errno.EINVAL, errno.EOPNOTSUPP), (text, exc.errno)
        assert exc.position is None or 0 <= exc.position <= len(text), (text, exc.position)
        assert str(exc).startswith("couldn't parse port name"), (text, str(exc))
        return None
    assert spec.text == text and spec.grammar == grammar
    assert spec.mode in (ps.NR_REG_ALL_NIC, ps.NR_REG_SW, ps.NR_REG_NIC_SW, ps.NR_REG_ONE_NIC,
                         ps.NR_REG_ONE_SW), (text, spec.mode)
    assert 0 <= spec.ringid < 4095 and 0 <= spec.mem_id <= 0xFFFF, (text, spec)
    assert spec.flags & ~sum(ps._FLAG_BITS.values()) == 0, (text, spec.flags)
    limit = 64 if grammar == "nmport" else 16 + 5
    assert len(spec.name.encode("utf-8", "surrogatepass")) < limit, (text, spec.name)
    if spec.pipe is not None:
        brace = "{" if spec.pipe.role == "master" else "}"
        assert spec.name == spec.pipe.parent + brace + spec.pipe.pipe_id, (text, spec)
    hash(spec)
    back = render(spec)
    if back is None:
        return spec
    again = PARSERS[grammar](back)
    for field in REQUEST:
        assert getattr(again, field) == getattr(spec, field), \
            f"{text!r} -> {back!r}: {field} {getattr(spec, field)!r} != {getattr(again, field)!r}"
    return spec


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="./run bench fuzz-names", description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=1_000_000, help="names to check (default 10^6)")
    ap.add_argument("--seed", type=int, default=None, help="random seed (default: from the clock)")
    args = ap.parse_args(argv)
    if args.count <= 0:
        ap.error("--count must be positive")
    seed = args.seed if args.seed is not None else time.time_ns() & 0xFFFFFFFF
    rng, parsed, start = random.Random(seed), {"nmport": 0, "legacy": 0}, time.monotonic()
    for i in range(args.count):
        text = generate(rng)
        for grammar in PARSERS:
            try:
                parsed[grammar] += check(text, grammar) is not None
            except Exception as exc:        # noqa: BLE001 - what broke, with the name
                print(f"fuzz-names: name {i} {text!r} ({grammar}, seed {seed}): "
                      f"{type(exc).__name__}: {exc}", file=sys.stderr)
                return 1
    took = time.monotonic() - start
    print(f"fuzz-names: {args.count} names x 2 grammars checked in {took:.0f} s (seed {seed}), "
          f"parsed: nmport {parsed['nmport']}, legacy {parsed['legacy']}; no failure")
    return 0


if __name__ == "__main__":
    sys.exit(main())
