"""Backend selection for NIC ports: netmap's admode, forced backends, and
what the error says when nothing can serve a port.

netmap picks the adapter of an interface by its ``admode`` module parameter
(0 best: native, else emulated; 1 native only; 2 emulated only).  nmcompat
reads it from ``admode=`` or $NMCOMPAT_ADMODE and orders its backends as
native, AF_XDP (drv, then skb), AF_PACKET (emulated); ``backend=`` or
$NMCOMPAT_BACKEND forces one.  A backend whose mechanism is unusable passes to
the next and ``info.why`` says why; when none works, BackendUnavailable (an
OSError, ENXIO) names each backend tried with its reason.

Each test has its own network namespace with veth va <-> vb (conftest.py's
``netns``) and runtime directory; bodies run in the namespace through
``netns.run``.  The unprivileged cases run in that forked child after it
drops to uid 65534, or keeps uid 0 with every capability removed.
"""
from __future__ import annotations

import ctypes
import errno
import os
import socket
import time
from contextlib import closing

import pytest

import nmcompat
from nmcompat.bpf import attached_programs
from nmcompat.bpf import syscall as bpf_syscall
from nmcompat.bpf.netlink import xdp_query, xdp_set_fd

from nic_support import (MAC_A, MAC_B, frame, peer_receiver, peer_recv, peer_sender, port_collect,
                         port_send, quiet)

pytestmark = pytest.mark.kernel

NATIVE_REASON = "no /dev/netmap"
PASS_INSNS = bytes([0xB7, 0, 0, 0, 2, 0, 0, 0,          # r0 = XDP_PASS
                    0x95, 0, 0, 0, 0, 0, 0, 0])         # exit


@pytest.fixture(autouse=True)
def _own_rundir(rundir, monkeypatch):
    for name in ("NMCOMPAT_ADMODE", "NMCOMPAT_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    yield rundir


def _open_with(env: dict, kw: dict):
    """Open netmap:va with these environment variables and open() keywords;
    returns (backend, why, xdp_mode), or the error as (type name, errno, str,
    reasons)."""
    quiet()
    os.environ.update(env)
    try:
        port = open_nic_retrying_any("netmap:va", **kw)
    except (OSError, ValueError) as exc:
        return ("error", type(exc).__name__, getattr(exc, "errno", None),
                getattr(exc, "strerror", None) or str(exc), dict(getattr(exc, "reasons", {})))
    with port:
        with closing(peer_sender()) as tx, closing(peer_receiver()) as rx:
            tx.send(frame(1, 80))
            assert port_collect(port, 1) == [frame(1, 80)], "no traffic on the chosen backend"
            port_send(port, [frame(2, 80, src=MAC_A, dst=MAC_B)])
            assert peer_recv(rx, 1) == [frame(2, 80, src=MAC_A, dst=MAC_B)]
        return ("ok", port.info.backend, port.info.why, port.info.xdp_mode)


def open_nic_retrying_any(name: str, **kw):
    """nmcompat.open, retried while AF_XDP still releases a closed socket."""
    deadline = time.monotonic() + 5
    while True:
        try:
            return nmcompat.open(name, **kw)
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() > deadline or \
                    isinstance(exc, nmcompat.BackendUnavailable):
                raise
            time.sleep(0.05)


# -- admode ---------------------------------------------------------------------------

@pytest.mark.parametrize("env,kw", [({}, {"admode": 2}), ({}, {"admode": "emulated"}),
                                    ({"NMCOMPAT_ADMODE": "2"}, {}),
                                    ({"NMCOMPAT_ADMODE": "emulated"}, {}),
                                    ({"NMCOMPAT_ADMODE": "0"}, {"admode": 2})],
                         ids=["kw-2", "kw-emulated", "env-2", "env-emulated", "kw-over-env"])
def test_admode_emulated_is_afpacket(netns, env, kw):
    result = netns.run(_open_with, env, kw)
    assert result[:2] == ("ok", "afpacket"), result
    assert result[2] == "first choice (emulated)"
    assert result[3] is None


@pytest.mark.parametrize("env,kw", [({}, {}), ({}, {"admode": 0}), ({}, {"admode": "best"}),
                                    ({"NMCOMPAT_ADMODE": "0"}, {}),
                                    ({"NMCOMPAT_ADMODE": "2"}, {"admode": 0})],
                         ids=["default", "kw-0", "kw-best", "env-0", "kw-over-env"])
def test_admode_best_is_afxdp_after_native(netns, env, kw):
    result = netns.run(_open_with, env, kw)
    assert result[:2] == ("ok", "afxdp"), result
    assert result[2].startswith("native unusable: ") and NATIVE_REASON in result[2], result
    assert result[3] == "drv", "a veth takes native XDP: best is drv mode"


@pytest.mark.parametrize("env,kw", [({}, {"admode": 1}), ({}, {"admode": "native"}),
                                    ({"NMCOMPAT_ADMODE": "1"}, {})],
                         ids=["kw-1", "kw-native", "env-1"])
def test_admode_native_only_fails_with_native_reason(netns, env, kw):
    result = netns.run(_open_with, env, kw)
    assert result[:3] == ("error", "BackendUnavailable", errno.ENXIO), result
    message, reasons = result[3], result[4]
    assert list(reasons) == ["native"] and NATIVE_REASON in reasons["native"]
    assert message.startswith("couldn't open netmap:va: no backend can serve it (native: ")
    assert "afxdp" not in message and "afpacket" not in message


@pytest.mark.parametrize("bad", [{"admode": 3}, {"admode": "fast"},
                                 {"env": {"NMCOMPAT_ADMODE": "7"}},
                                 {"backend": "dpdk"}, {"env": {"NMCOMPAT_BACKEND": "pcap"}}])
def test_bad_admode_or_backend_is_valueerror(netns, bad):
    bad = dict(bad)
    env = bad.pop("env", {})
    result = netns.run(_open_with, env, bad)
    assert result[:2] == ("error", "OptionError"), result
    text = result[3]
    if "admode" in bad or "NMCOMPAT_ADMODE" in env:
        assert "must be 0/best, 1/native or 2/emulated" in text, text
        assert ("bad environment variable NMCOMPAT_ADMODE" if env else "bad option admode") in text
    else:
        assert "afpacket" in text and ("bad environment variable NMCOMPAT_BACKEND" if env
                                       else "bad option backend") in text, text


# -- forced backends --------------------------------------------------------------------

@pytest.mark.parametrize("env,kw,want", [
    ({}, {"backend": "afpacket"}, "afpacket"),
    ({"NMCOMPAT_BACKEND": "afpacket"}, {}, "afpacket"),
    ({}, {"backend": "afxdp"}, "afxdp"),
    ({"NMCOMPAT_BACKEND": "afxdp"}, {}, "afxdp"),
    ({}, {"backend": "afxdp", "admode": 2}, "afxdp"),             # forcing beats admode
    ({"NMCOMPAT_BACKEND": "afxdp", "NMCOMPAT_ADMODE": "2"}, {}, "afxdp"),
    ({"NMCOMPAT_BACKEND": "afxdp"}, {"backend": "afpacket"}, "afpacket"),   # keyword first
    ({}, {"backend": "afpacket", "admode": 1}, "afpacket"),
], ids=["kw-afpacket", "env-afpacket", "kw-afxdp", "env-afxdp", "kw-afxdp-admode2",
        "env-afxdp-admode2", "kw-over-env", "kw-afpacket-admode1"])
def test_forced_backend(netns, env, kw, want):
    result = netns.run(_open_with, env, kw)
    assert result[:2] == ("ok", want), result
    assert result[2].startswith("first choice"), result


@pytest.mark.parametrize("how", ["kw", "env"])
def test_forced_native_fails_with_its_reason(netns, how):
    env, kw = ({"NMCOMPAT_BACKEND": "native"}, {}) if how == "env" else ({}, {"backend": "native"})
    result = netns.run(_open_with, env, kw)
    assert result[:3] == ("error", "BackendUnavailable", errno.ENXIO), result
    assert list(result[4]) == ["native"]


@pytest.mark.parametrize("kw", [{"admode": 2}, {"backend": "afxdp"}, {}])
def test_missing_interface_is_enxio(netns, kw):
    """A name that is no interface here: the user's error, not a fallback."""
    def body():
        try:
            nmcompat.open("netmap:nosuch0", **kw)
        except OSError as exc:
            return exc.errno, exc.strerror, type(exc).__name__
        return None
    err, text, kind = netns.run(body)
    assert err == errno.ENXIO and kind != "BackendUnavailable", text
    assert "nosuch0" in text


# -- without privileges -------------------------------------------------------------------

CAP_VERSION_3 = 0x20080522
SYS_CAPSET = 126                       # x86_64


def _drop_to_nobody(rundir: str) -> None:
    os.makedirs(rundir, mode=0o700)
    os.chown(rundir, 65534, 65534)
    os.environ["NMCOMPAT_RUNDIR"] = rundir
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
    assert os.geteuid() == 65534


def _drop_capabilities(rundir: str) -> None:
    os.makedirs(rundir, mode=0o700)
    os.environ["NMCOMPAT_RUNDIR"] = rundir
    libc = ctypes.CDLL(None, use_errno=True)
    header = (ctypes.c_uint32 * 2)(CAP_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()                      # effective, permitted, inheritable x 2
    if libc.syscall(SYS_CAPSET, header, data) != 0:
        raise OSError(ctypes.get_errno(), "capset")
    with open("/proc/self/status") as f:
        caps = dict(line.split(":", 1) for line in f if line.startswith("Cap"))
    assert int(caps["CapEff"], 16) == 0 and os.geteuid() == 0


def _unprivileged(how: str, rundir: str, kw: dict):
    quiet()
    (_drop_to_nobody if how == "nobody" else _drop_capabilities)(os.path.join(rundir, how))
    out = {}
    for label, options in kw.items():
        try:
            nmcompat.open("netmap:va", **options).close()
            out[label] = ("opened",)
        except nmcompat.BackendUnavailable as exc:
            out[label] = ("unavailable", exc.errno, exc.strerror, dict(exc.reasons))
        except OSError as exc:
            out[label] = ("oserror", exc.errno, exc.strerror, {})
    try:
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0):
            out["raw socket"] = "allowed"
    except PermissionError:
        out["raw socket"] = "refused"
    return out


@pytest.mark.parametrize("how", ["nobody", "no-capabilities"])
def test_unprivileged_lists_every_backend_reason(netns, rundir, how):
    cases = {"best": {}, "admode=1": {"admode": 1}, "admode=2": {"admode": 2},
             "afxdp": {"backend": "afxdp"}, "afpacket": {"backend": "afpacket"}}
    out = netns.run(_unprivileged, how, str(rundir), cases)
    assert out.pop("raw socket") == "refused", "the child kept its privileges"
    for label, result in out.items():
        assert result[0] == "unavailable" and result[1] == errno.ENXIO, (label, result)
    best = out["best"]
    assert list(best[3]) == ["native", "afxdp", "afpacket"], best
    assert NATIVE_REASON in best[3]["native"]
    assert "AF_XDP needs root" in best[3]["afxdp"]
    assert "AF_PACKET needs CAP_NET_RAW" in best[3]["afpacket"]
    text = best[2]
    assert text.startswith("couldn't open netmap:va: no backend can serve it (")
    at = [text.index(f"{name}: {best[3][name]}") for name in ("native", "afxdp", "afpacket")]
    assert at == sorted(at), text
    assert list(out["admode=1"][3]) == ["native"]
    assert list(out["admode=2"][3]) == ["afpacket"]
    assert list(out["afxdp"][3]) == ["afxdp"]
    assert list(out["afpacket"][3]) == ["afpacket"]


# -- a foreign XDP program on the interface ------------------------------------------------

def _foreign_program(how: str):
    quiet()
    ifindex = socket.if_nametoindex("va")
    keep = []
    fd = bpf_syscall.prog_load(PASS_INSNS, "GPL", "foreign_pass")
    if how == "netlink-skb":
        xdp_set_fd(ifindex, fd, bpf_syscall.XDP_FLAGS_SKB_MODE)
    elif how == "netlink-drv":
        xdp_set_fd(ifindex, fd, bpf_syscall.XDP_FLAGS_DRV_MODE)
    else:
        keep.append(bpf_syscall.link_create_xdp(fd, ifindex, bpf_syscall.XDP_FLAGS_DRV_MODE))
    os.close(fd)
    before = xdp_query(ifindex)
    try:
        with nmcompat.open("netmap:va") as port:
            backend, why = port.info.backend, port.info.why
            with closing(peer_sender()) as tx, closing(peer_receiver()) as rx:
                tx.send(frame(1, 100))
                assert port_collect(port, 1) == [frame(1, 100)]
                port_send(port, [frame(2, 100, src=MAC_A, dst=MAC_B)])
                assert peer_recv(rx, 1) == [frame(2, 100, src=MAC_A, dst=MAC_B)]
        try:
            nmcompat.open("netmap:va", backend="afxdp").close()
            forced = None
        except OSError as exc:
            forced = (exc.errno, exc.strerror)
        after = xdp_query(ifindex)
        names = sorted(i.name for i in attached_programs(ifindex)[1].values())
    finally:
        for link in keep:
            os.close(link)
    return backend, why, forced, before, after, names


@pytest.mark.parametrize("how", ["netlink-skb", "netlink-drv", "bpf-link"])
def test_foreign_xdp_program_makes_best_fall_back(netns, how):
    backend, why, forced, before, after, names = netns.run(_foreign_program, how)
    assert before.attached and after == before, "the foreign program was touched"
    assert names == ["foreign_pass"]
    assert backend == "afpacket"
    assert "native unusable" in why and "afxdp unusable" in why, why
    assert "'foreign_pass'" in why and "not nmcompat's" in why, why
    assert forced is not None and forced[0] == errno.EBUSY, forced
    assert "'foreign_pass'" in forced[1]
