"""Port names through both grammars, built by Hypothesis from the grammars'
pieces: parsing gives a PortSpec or a PortSpecError, never another
exception, and a spec written back as text parses to the same request
(nmcompat_bench.fuzz_names.check, which ./run bench fuzz-names runs on
10^6 names; the counts are in docs/BENCHMARKS.md)."""
from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from testlib import BENCH_DIR, bench_command, bench_env

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

sys.path.insert(0, str(BENCH_DIR))
from nmcompat_bench import fuzz_names  # noqa: E402
from nmcompat_bench.fuzz_names import check, generate, render  # noqa: E402

import nmcompat  # noqa: E402

GRAMMARS = ("nmport", "legacy")
number = st.one_of(st.integers(0, 70000).map(str),
                   st.sampled_from(["", "-1", "+2", " 3", "0x1", "4095", "65536", "9" * 25]))
ident = st.text(alphabet="abcxyz0189_", min_size=0, max_size=66)
name = st.one_of(ident, st.text(max_size=12),
                 st.tuples(ident, st.sampled_from("{}"), ident).map("".join))
ring = st.one_of(st.just(""), st.sampled_from(["^", "*", "-", "^"]).flatmap(
    lambda c: number.map(lambda n: c + n if c in "-^" else c)),
    st.sampled_from("{}").flatmap(lambda c: number.map(lambda n: c + n)))
suffix = st.one_of(st.text(alphabet="xztrRT/", max_size=4).map(lambda f: "/" + f), number.map(lambda n: "@" + n))
conf = st.dictionaries(st.sampled_from(fuzz_names.CONF_KEYS), number, max_size=3).map(
    lambda d: "@conf:" + ",".join(f"{k}={v}" for k, v in d.items()))
option = st.one_of(conf, st.sampled_from(["@share=netmap:x{1", "@share:port=vale0:b", "@share=",
                                          "@extmem:file=/nonexistent,if-num=2", "@extmem=",
                                          "@offset=8", "@bogus=1", "@"]))
portname = st.tuples(st.sampled_from(fuzz_names.PREFIXES), name, ring, st.lists(suffix, max_size=3),
                     st.lists(option, max_size=2)).map(
    lambda t: t[0] + t[1] + t[2] + "".join(t[3]) + "".join(t[4]))


@settings(max_examples=600, deadline=None)
@given(portname)
def test_names_from_the_grammars_pieces(text):
    for grammar in GRAMMARS:
        check(text, grammar)


@settings(max_examples=400, deadline=None)
@given(st.randoms(use_true_random=False))
def test_names_of_the_long_run_generator(rng):
    text = generate(rng)
    for grammar in GRAMMARS:
        check(text, grammar)


@pytest.mark.parametrize("text, grammar, back", [
    ("netmap:eth0-3/Tx@2@conf:rings=2", "nmport",
     "netmap:eth0-3/xT@2@conf:rx_rings=2,tx_rings=2"),
    ("vale0:a{in^", "nmport", None),
    ("vale1:b^7@share=netmap:x{1", "nmport", "vale1:b^7@share=netmap:x{1"),
    ("netmap:x{3/R", "legacy", "netmap:x{3/R"),
    ("netmap:eth0*@9", "legacy", "netmap:eth0*@9"),
    ("netmap:a@extmem=x=1,y", "nmport", "netmap:a@extmem=x=1,y"),
    ("netmap:a@extmem:file=/f,if-num=2", "nmport", "netmap:a@extmem:file=/f,if_num=2"),
])
def test_render_writes_the_request_back(text, grammar, back):
    spec = check(text, grammar)
    if back is None:
        assert spec is None
        return
    assert render(spec) == back


def test_an_extmem_file_name_with_a_comma_is_written_back_whole():
    """@extmem=<file> takes the rest up to the next '@' as the file name,
    commas included (found by ./run bench fuzz-names: the key=value form
    would split it)."""
    spec = nmcompat.parse_nmport("netmap:a@extmem=x,y")
    assert spec.extmem == {"file": "x,y"} and render(spec) == "netmap:a@extmem=x,y"


def test_check_catches_a_parser_that_breaks_its_promises(monkeypatch):
    monkeypatch.setitem(fuzz_names.PARSERS, "nmport", lambda text: int(text))
    with pytest.raises(ValueError):
        check("netmap:x", "nmport")
    real = nmcompat.parse_nmport
    monkeypatch.setitem(fuzz_names.PARSERS, "nmport",      # a mem id that grows on each parse
                        lambda text: dataclasses.replace(real(text), mem_id=real(text).mem_id + 1))
    with pytest.raises(AssertionError, match="mem_id 1 != 2"):
        check("netmap:eth0-3", "nmport")


def test_long_run_entry(tmp_path):
    proc = subprocess.run(bench_command("fuzz-names", "--count", "300", "--seed", "5"), env=bench_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("fuzz-names: 300 names x 2 grammars checked") and "no failure" in proc.stdout
