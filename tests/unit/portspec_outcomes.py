"""The recorded outcomes of both port-name grammars (portspec_outcomes.json.gz)
and how they were recorded.

The fixture holds, for every name of a generated corpus (COUNT names from
SEED) and both grammars, what the parser answered: the request (every PortSpec field) or the error
(errno, position, reason).  It was recorded from the Python parser that
preceded the C one (nmcompat/_portspec.py and _portspec_options.py of
commit 78fa79a), after checking that the C parser gave the same answers
for every name:

    python tests/unit/portspec_outcomes.py --oracle DIR OUT.json.gz

where DIR holds that parser as a package ``oldps`` (_portspec.py,
_portspec_options.py).  tests/unit/test_portspec_outcomes.py replays it.
"""
from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
from pathlib import Path
from typing import Callable, Iterator, List

FIXTURE = Path(__file__).with_name("portspec_outcomes.json.gz")
GRAMMARS = ("nmport", "legacy")
SEED = 20261204
COUNT = 100_000

# the grammars' alphabet, a few look-alikes and multi-byte characters
ALPHABET = "netmapvl:{}-*^/@=,xztrRT0123456789_ +\t.é€\U0001F600\udc80"
PREFIXES = ("netmap:",) * 16 + ("vale0:",) * 8 + ("vale:", "valeA_1:", "vale", "netmap", "",
                                                 "netmapx:", "val:", "VALE0:", "netmap:vale0:", "vale{:")
OPTION_KEYS = {
    "conf": ("rings", "host-rings", "slots", "tx_rings", "rx-rings", "host_tx_rings", "host_rx_rings",
             "tx_slots", "rx_slots"),
    "share": ("port",), "extmem": ("file", "if_num", "if-size", "ring_num", "ring_size", "buf_num",
                                   "buf_size"),
    "offset": ("initial", "bits"), "bogus": ("x",), "": ("",),
}
NUMBERS = ("0", "1", "7", "63", "4094", "4095", "65535", "65536", "4294967295", "4294967296",
           "99999999999999999999", "-1", "+3", " 2", "", "0x10", "010")
SHARED = ("netmap:x{1", "vale0:b", "", "y", "netmap:", "netmap:a-1/x", "vale0:b,c", "vale{:a")


def _number(rng: random.Random) -> str:
    if rng.random() < 0.3:
        return rng.choice(NUMBERS)
    return str(rng.randrange(1 << rng.choice([2, 4, 12, 16, 33])))


def _ident(rng: random.Random) -> str:
    size = rng.choice([1, 2, 3, 4, 5, 8]) if rng.random() < 0.8 else rng.choice([0, 14, 15, 16, 62, 63, 64])
    chars = "abcdefghij0123456789_" if rng.random() < 0.9 else "abc_é€\U0001F600\udc80"
    return "".join(rng.choice(chars) for _ in range(size))


def _value(rng: random.Random, key: str) -> str:
    if key == "file":
        return rng.choice(["/f", "/tmp/x,y", "", "/dev/shm/é"])
    if key == "port":
        return rng.choice(SHARED)
    return _number(rng)


def _option(rng: random.Random) -> str:
    name = rng.choice(("conf", "conf", "conf", "share", "extmem", "extmem", "offset", "bogus", ""))
    own = OPTION_KEYS[name]
    if rng.random() < 0.3:
        return f"@{name}={_value(rng, own[0])}"
    keys = [rng.choice(own) if rng.random() < 0.9 else rng.choice(OPTION_KEYS["conf"] + ("", "x"))
            for _ in range(rng.randrange(0, 4))]
    if name in ("share", "extmem", "offset") and rng.random() < 0.8:
        keys.insert(0, own[0])
    return f"@{name}:" + ",".join(f"{k}={_value(rng, k)}" for k in keys)


def structured(rng: random.Random) -> str:
    """A name from the grammars' pieces."""
    text = rng.choice(PREFIXES) + _ident(rng)
    if rng.random() < 0.3:
        text += rng.choice("{}") + rng.choice(["1", "in", "", "_a", _number(rng)])
    text += rng.choice(["", "", "^", "*", "-" + _number(rng), "^" + _number(rng),
                        "{" + _number(rng), "}" + _number(rng)])
    if rng.random() < 0.4:
        text += "/" + "".join(rng.sample("xztrRT", rng.randrange(0, 4)))
    for _ in range(rng.choice([0, 0, 0, 1, 2])):
        text += "@" + (str(rng.randrange(1, 8)) if rng.random() < 0.7 else _number(rng))
    if rng.random() < 0.1:
        text += "/" + "".join(rng.sample("xztrRT", rng.randrange(0, 3)))
    for _ in range(rng.choice([0, 0, 1, 1, 2])):
        text += _option(rng)
    return text


def mutated(rng: random.Random) -> str:
    """A structured name with characters inserted, dropped or replaced."""
    text = structured(rng)
    for _ in range(rng.randrange(1, 4)):
        i = rng.randrange(len(text) + 1)
        c = rng.choice(ALPHABET)
        op = rng.randrange(3)
        text = text[:i] + c + text[i:] if op == 0 else text[:i] + text[i + 1:] if op == 1 \
            else text[:i] + c + text[i + 1:]
    return text


def scrambled(rng: random.Random) -> str:
    """A prefix and random characters of the alphabet."""
    return rng.choice(PREFIXES) + "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(0, 30)))


def corpus(seed: int = SEED, count: int = COUNT) -> Iterator[str]:
    rng = random.Random(seed)
    makers = (structured, structured, structured, mutated, mutated, scrambled)
    seen = set()
    while len(seen) < count:
        text = rng.choice(makers)(rng)
        if text not in seen:
            seen.add(text)
            yield text


def outcome(parse: Callable, text: str, grammar: str) -> list:
    """What parse(text, grammar) answered, as plain JSON values."""
    try:
        spec = parse(text, grammar)
    except ValueError as exc:           # PortSpecError is a ValueError
        return ["error", exc.errno, exc.position, exc.reason]
    pipe = [spec.pipe.parent, spec.pipe.pipe_id, spec.pipe.role] if spec.pipe else None
    return ["spec", spec.subsys, spec.name, spec.mode, spec.ringid, spec.flags, spec.mem_id,
            dict(spec.conf), spec.share, None if spec.extmem is None else dict(spec.extmem),
            pipe, spec.vale_switch, spec.vale_port]


def load() -> List[list]:
    """The recorded [text, nmport outcome, legacy outcome] triples."""
    with gzip.open(FIXTURE, "rt", encoding="ascii") as f:
        return json.load(f)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--oracle", required=True, help="directory holding the package oldps")
    ap.add_argument("out", help="the fixture to write")
    args = ap.parse_args(argv)
    sys.path.insert(0, args.oracle)
    from oldps._portspec import parse as oracle  # noqa: E402
    from nmcompat._portspec import parse as current  # noqa: E402

    records, differences = [], 0
    for text in corpus():
        record = [text]
        for grammar in GRAMMARS:
            want = outcome(oracle, text, grammar)
            got = outcome(current, text, grammar)
            if got != want:
                differences += 1
                if differences <= 20:
                    print(f"DIFF {text!r} {grammar}\n  oracle  {want}\n  current {got}")
            record.append(want)
        records.append(record)
    print(f"{len(records)} names, {2 * len(records)} outcomes, {differences} differences")
    if differences:
        return 1
    with gzip.open(args.out, "wt", encoding="ascii", compresslevel=9) as f:
        json.dump(records, f, separators=(",", ":"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
