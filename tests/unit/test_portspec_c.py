"""The C interface of the port-name parser (nmcompat_portspec.h) where the
Python wrapper does not reach: the grammar argument, @offset under
NMC_PORTSPEC_OFFSETS, byte positions, the text limit and the split of
kernel names."""
from __future__ import annotations

import errno

import pytest

from nmcompat._ffi import ffi, lib
from nmcompat._portspec import parse_nmport
from nmcompat.errors import PortSpecError


def c_parse(text: bytes, grammar: int):
    out = ffi.new("struct nmc_portspec *")
    err = ffi.new("struct nmc_portspec_error *")
    ret = lib.nmc_portspec_parse(text, grammar, out, err)
    return ret, out, err


def message(err) -> str:
    return ffi.string(err.message).decode()


def test_an_unknown_grammar_is_refused():
    ret, _, err = c_parse(b"netmap:a", 3)
    assert ret == -errno.EINVAL and err.errnum == errno.EINVAL
    assert message(err) == "unknown port-name grammar 3"


def test_the_legacy_grammar_takes_no_option_flag():
    ret, _, err = c_parse(b"netmap:a", lib.NMC_PORTSPEC_LEGACY | lib.NMC_PORTSPEC_OFFSETS)
    assert ret == -errno.EINVAL and "no options" in message(err)


def test_offset_is_refused_without_the_flag():
    ret, _, err = c_parse(b"netmap:a@offset=64", lib.NMC_PORTSPEC_NMPORT)
    assert ret == -errno.EOPNOTSUPP and err.position == 9
    assert message(err) == "option 'offset' is not supported"


@pytest.mark.parametrize("text, initial, bits", [
    (b"netmap:a@offset=64", 64, 0),
    (b"netmap:a@offset:initial=18446744073709551615,bits=12", 2 ** 64 - 1, 12),
])
def test_offset_with_the_flag(text, initial, bits):
    ret, out, _ = c_parse(text, lib.NMC_PORTSPEC_NMPORT | lib.NMC_PORTSPEC_OFFSETS)
    assert ret == 0 and out.offset_given
    assert (out.offset_initial, out.offset_bits) == (initial, bits)


@pytest.mark.parametrize("text, position, reason", [
    (b"netmap:a@offset:bits=3", 9, "option 'offset': mandatory key 'initial' not assigned"),
    (b"netmap:a@offset=18446744073709551616", 16,
     "option 'offset': key 'initial': '18446744073709551616' out of range [0, 18446744073709551615]"),
    (b"netmap:a@offset:initial=1,bits=4294967296", 31,
     "option 'offset': key 'bits': '4294967296' out of range [0, 4294967295]"),
    (b"netmap:a@offset=1@offset=2", 25, "option 'offset': offset already in use"),
])
def test_offset_errors(text, position, reason):
    ret, out, err = c_parse(text, lib.NMC_PORTSPEC_NMPORT | lib.NMC_PORTSPEC_OFFSETS)
    assert ret == -errno.EINVAL and (err.position, message(err)) == (position, reason)
    assert not out.offset_given                      # nothing half-parsed is left in out


def test_the_request_and_options_in_the_struct():
    text = b"vale0:p}2-3/xT@7@conf:rings=4,tx-slots=9@extmem:file=/f,buf-num=5@share=vale1:q"
    ret, out, _ = c_parse(text, lib.NMC_PORTSPEC_NMPORT)
    assert ret == 0
    assert ffi.string(out.nr_name) == b"vale0:p}2" and out.subsys == lib.NMC_PORTSPEC_VALE
    assert (out.nr_mode, out.nr_ringid, out.nr_flags, out.mem_id) == (4, 3, 0x4800, 7)
    assert out.name.pipe_role == lib.NMC_PORTSPEC_PIPE_SLAVE
    assert ffi.string(out.name.vale_switch) == b"vale0" and ffi.string(out.name.vale_port) == b"p"
    assert out.conf_given == 1 | 2 | 16
    assert (out.conf_tx_rings, out.conf_rx_rings, out.conf_tx_slots) == (4, 4, 9)
    assert ffi.string(out.extmem_file) == b"/f" and out.extmem_buf_num == 5
    span = out.extmem_span[lib.NMC_PORTSPEC_EXTMEM_BUF_NUM]
    assert text[span.pos:span.pos + span.len] == b"5"
    assert out.share_given and ffi.string(out.share) == b"vale1:q"


def test_positions_are_bytes_in_c_and_characters_in_python():
    ret, _, err = c_parse("netmap:é€-x".encode(), lib.NMC_PORTSPEC_NMPORT)
    assert ret == -errno.EINVAL and err.position == 13
    with pytest.raises(PortSpecError) as exc:
        parse_nmport("netmap:é€-x")
    assert exc.value.position == 10 and exc.value.reason == "got 'x' while expecting a number"


def test_a_multibyte_character_is_quoted_whole():
    with pytest.raises(PortSpecError) as exc:
        parse_nmport("netmap:a^€")
    assert exc.value.reason == "unexpected character: '€'" and exc.value.position == 9


@pytest.mark.parametrize("size, refused", [(4095, False), (4096, True)])
def test_the_text_limit(size, refused):
    text = "netmap:a@extmem=/" + "f" * (size - 17)
    assert len(text.encode()) == size
    if not refused:
        assert parse_nmport(text).extmem["file"] == text[16:]
        return
    with pytest.raises(PortSpecError) as exc:
        parse_nmport(text)
    assert exc.value.reason == "port name too long (4095 bytes at most)" and exc.value.position == 4095


def test_the_text_limit_counts_bytes_and_points_at_a_character():
    text = "netmap:a@extmem=/" + "f" * 4076 + "€"          # the euro sign takes bytes 4093-4095
    with pytest.raises(PortSpecError) as exc:
        parse_nmport(text)
    assert exc.value.position == len(text) - 1


def split(name: bytes):
    out = ffi.new("struct nmc_portname *")
    return lib.nmc_portname_split(name, out), out


@pytest.mark.parametrize("name, parent, pipe_id, role, vale", [
    (b"eth0", b"eth0", b"", 0, None),
    (b"eth0{in", b"eth0", b"in", 1, None),
    (b"x}3", b"x", b"3", 2, None),
    (b"a}b{c", b"a}b", b"c", 1, None),                  # '{' first, as the kernel
    (b"a{b}c", b"a", b"b}c", 1, None),
    (b"vale0:p{1", b"vale0:p", b"1", 1, (b"vale0", b"p")),
    (b"valx:a:b", b"valx:a:b", b"", 0, (b"valx", b"a:b")),
    (b"{1", b"", b"1", 1, None),
])
def test_split(name, parent, pipe_id, role, vale):
    ret, out = split(name)
    assert ret == 0
    assert (ffi.string(out.parent), ffi.string(out.pipe_id), out.pipe_role) == (parent, pipe_id, role)
    assert out.vale == (vale is not None)
    if vale:
        assert (ffi.string(out.vale_switch), ffi.string(out.vale_port)) == vale


def test_split_of_a_val_name_without_colon():
    ret, out = split(b"valeX")
    assert ret == 0 and out.val_prefix and not out.vale


@pytest.mark.parametrize("name", [b"", b"x" * 64])
def test_split_refuses_an_empty_or_unterminated_name(name):
    assert split(name)[0] == -errno.EINVAL
