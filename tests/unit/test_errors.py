"""One error hierarchy: every failure of the engine or of a backend is an
NmcompatError and the errno's OSError subclass, with errno and filename set;
every option is checked by the backend that serves the port."""
from __future__ import annotations

import ast
import errno
import os
import pickle
from pathlib import Path

import pytest

import nmcompat
from nmcompat import backends
from nmcompat.errors import (BackendUnavailable, BackendUnusable, NmcompatError, NmcompatOSError,
                             OptionError, PortClosed, errno_class, os_error)

PKG = Path(nmcompat.__file__).parent


def _is_nmcompat_oserror(exc, err, builtin=OSError, filename="netmap:x{1"):
    assert isinstance(exc, NmcompatError) and isinstance(exc, builtin), type(exc).__mro__
    assert exc.errno == err and exc.filename == filename, (exc.errno, exc.filename)
    assert exc.strerror.startswith("couldn't "), exc.strerror


@pytest.mark.parametrize("err,builtin", [(errno.EPERM, PermissionError), (errno.EACCES, PermissionError),
                                         (errno.ENOENT, FileNotFoundError), (errno.EAGAIN, BlockingIOError),
                                         (errno.EINTR, InterruptedError), (errno.EINVAL, OSError)])
def test_errno_subclass_is_both(err, builtin):
    exc = os_error(err, "open", "netmap:x{1")
    _is_nmcompat_oserror(exc, err, builtin)
    assert type(exc) is type(os_error(err, "txsync", "other"))     # one class per errno
    assert str(exc) == f"[Errno {err}] {exc.strerror}"
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is type(exc) and back.args == exc.args and back.filename == exc.filename


def test_permission_errors_say_the_fix():
    for err in (errno.EPERM, errno.EACCES):
        text = os_error(err, "open", "netmap:eth0").strerror
        assert text.startswith("couldn't open netmap:eth0: ") and "(" in text and (
            "root" in text or "NMCOMPAT_RUNDIR" in text), text


def test_backend_errors_are_in_the_hierarchy():
    unusable = errno_class(BackendUnusable, errno.EPERM)(errno.EPERM, "couldn't open x: no", "x")
    assert isinstance(unusable, BackendUnusable) and isinstance(unusable, PermissionError)
    assert pickle.loads(pickle.dumps(unusable)).filename == "x"
    none = BackendUnavailable("netmap:eth9", {"afxdp": "why"})
    assert isinstance(none, NmcompatOSError) and none.errno == errno.ENXIO
    assert none.filename == "netmap:eth9" and pickle.loads(pickle.dumps(none)).reasons == {"afxdp": "why"}


def test_failed_open_is_nmcompat_error(rundir, tmp_path):
    afile = rundir / "a-file"
    afile.write_text("")
    with pytest.raises(NmcompatError) as ei:
        nmcompat.open("netmap:x{1", rundir=str(afile))
    _is_nmcompat_oserror(ei.value, errno.ENOTDIR, NotADirectoryError)
    shared = rundir / "group-readable"
    shared.mkdir(mode=0o750)
    shared.chmod(0o750)
    with pytest.raises(PermissionError) as ei:
        nmcompat.open("netmap:x{1", rundir=str(shared))
    _is_nmcompat_oserror(ei.value, errno.EACCES, PermissionError)
    assert "NMCOMPAT_RUNDIR" in ei.value.strerror


def test_failed_txsync_and_rxsync_are_nmcompat_errors(rundir):
    with nmcompat.open("netmap:x{1", slots=16) as tx, nmcompat.open("netmap:x}1") as rx:
        tx.tx_rings[0].head = tx.tx_rings[0].num_slots + 3      # outside the ring
        with pytest.raises(NmcompatError) as ei:
            tx.txsync()
        _is_nmcompat_oserror(ei.value, errno.EINVAL)
        rx.rx_rings[0].cur = rx.rx_rings[0].num_slots + 1
        with pytest.raises(OSError) as ei:
            rx.rxsync()
        _is_nmcompat_oserror(ei.value, errno.EINVAL, filename="netmap:x}1")
        tx.txsync()                                             # repaired by the reinit


def test_use_after_close_is_portclosed(rundir):
    port = nmcompat.open("netmap:x{1")
    port.close()
    port.close()                                                # idempotent
    for call in (port.txsync, port.rxsync, port.poll, port.fileno, lambda: port.inject(b"x")):
        with pytest.raises(PortClosed) as ei:
            call()
        _is_nmcompat_oserror(ei.value, errno.EBADF)
        assert isinstance(ei.value, ValueError)                 # as a closed Python file


def test_nic_open_errors_are_nmcompat_errors(rundir):
    """Whatever the privileges: no such interface (ENXIO), or no backend (ENXIO)."""
    with pytest.raises(NmcompatError) as ei:
        nmcompat.open("netmap:nmcnosuch0")
    _is_nmcompat_oserror(ei.value, errno.ENXIO, filename="netmap:nmcnosuch0")


def test_grammar_is_an_option_too(rundir):
    with pytest.raises(OptionError) as ei:
        nmcompat.open("netmap:x{1", grammar="bogus")
    assert ei.value.option == "grammar" and "'nmport' or 'legacy'" in ei.value.strerror


@pytest.mark.parametrize("kw,option,says", [
    ({"xdp_mode": "skb"}, "xdp_mode", "not used by pipe ports"),
    ({"zerocopy": False}, "zerocopy", "not used by pipe ports"),
    ({"multibuffer": False}, "multibuffer", "not used by pipe ports"),
    ({"admode": 2}, "admode", "NIC ports only"),
    ({"backend": "afxdp"}, "backend", "served by 'pipe'"),
    ({"host_tx_rings": 1}, "host_tx_rings", "no host rings"),
    ({"extra_bufs": -1}, "extra_bufs", "[0, 2**32)"),
    ({"buf_size": 100}, "buf_size", "multiple of 64 in [64, 65536]"),
    ({"buf_num": 10}, "buf_num", "[64, 2**24]"),
    ({"spin_us": -5}, "spin_us", "[0, 2**31)"),
    ({"no_timestamp": "yes"}, "no_timestamp", "True or False"),
    ({"tx_slots": 1.5}, "tx_slots", "integer"),
    ({"rings": 2 ** 40}, "rings", "[0, 2**32)"),
    ({"rings": -1}, "rings", "[0, 2**32)"),                   # not OverflowError
    ({"slots": 1.5}, "slots", "[0, 2**32)"),
    ({"admode": 7}, "admode", "0/best, 1/native or 2/emulated"),  # the range, not just "NIC only"
    ({"backend": "bogus"}, "backend", "'native', 'afxdp', 'afpacket'"),
    ({"xdp_mode": "bogus"}, "xdp_mode", "'auto', 'drv' or 'skb'"),
])
def test_bad_or_unused_option_is_named(rundir, kw, option, says):
    with pytest.raises(OptionError) as ei:
        nmcompat.open("netmap:x{1", **kw)
    exc = ei.value
    _is_nmcompat_oserror(exc, errno.EINVAL)
    assert isinstance(exc, ValueError) and exc.option == option
    assert f"option {option}: " in exc.strerror and says in exc.strerror, exc.strerror
    assert not any(n.startswith("mem.") for n in os.listdir(rundir))


def test_default_values_of_unused_options_are_accepted(rundir):
    with nmcompat.open("netmap:x{1", xdp_mode="auto", zerocopy=None, multibuffer=True,
                       backend="pipe", host_tx_rings=0) as port:
        assert port.info.backend == "pipe"
    with nmcompat.open("vale0:a", buf_size=4096) as port:
        assert port.info.backend == "vale" and port.info.buf_size == 4096


def test_nic_backends_refuse_what_they_do_not_use(rundir):
    """Checked before any socket: the same whatever the privileges."""
    spec = nmcompat.parse_nmport("netmap:lo")
    for name, kw, option in (("afpacket", {"xdp_mode": "drv"}, "xdp_mode"),
                             ("afpacket", {"multibuffer": False}, "multibuffer"),
                             ("afxdp", {"buf_size": 4096}, "buf_size"),
                             ("afxdp", {"conf": {"tx_rings": 4}}, "tx_rings"),
                             ("afxdp", {"xdp_mode": "fast"}, "xdp_mode")):
        with pytest.raises(OptionError) as ei:
            backends.get(name).validate(spec, kw)
        assert ei.value.option == option, ei.value


def test_every_port_kind_goes_through_the_registry(rundir):
    for name in backends.REGISTRY:
        backend = backends.get(name)
        assert isinstance(backend, backends.Backend) and backend.name == name
        assert isinstance(backend.probe(), backends.Probe)
    with nmcompat.open("netmap:x{1") as pipe, nmcompat.open("vale0:p") as vale:
        assert (pipe.info.backend, vale.info.backend) == ("pipe", "vale")


def _private_imports(path: Path):
    """(module, name) of every private name path imports from nmcompat.backends.*."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("nmcompat.backends."):
            parts = node.module.split(".")
            yield from ((node.module, a.name) for a in node.names if a.name.startswith("_"))
            yield from ((node.module, p) for p in parts[2:] if p.startswith("_"))
        elif isinstance(node, ast.Import):
            yield from ((a.name, a.name) for a in node.names
                        if a.name.startswith("nmcompat.backends.") and "._" in a.name)


def test_no_backend_imports_another_backends_private_names():
    root = PKG / "backends"
    bad = []
    for package in (p for p in root.iterdir() if (p / "__init__.py").exists()):
        for path in package.rglob("*.py"):
            for module, name in _private_imports(path):
                owner = module.split(".")[2]
                if not owner.startswith("_") and owner != package.name:
                    bad.append(f"{path.relative_to(PKG)}: {module} {name}")
    assert not bad, bad


def test_poll_goes_on_after_a_signal_handler_returns(rundir):
    """PEP 475: a signal whose handler returns does not end Port.poll() with
    InterruptedError; the wait goes on until its timeout (here: a full ring
    nobody drains, so the answer is 0)."""
    import signal
    import nmcompat
    seen = []
    old = signal.signal(signal.SIGALRM, lambda *_: seen.append(1))
    try:
        with nmcompat.open("netmap:eintr{1", slots=16) as tx, nmcompat.open("netmap:eintr}1"):
            while tx.inject(b"x" * 60):
                pass
            tx.txsync()
            signal.setitimer(signal.ITIMER_REAL, 0.05)
            assert tx.poll(nmcompat.POLLOUT, 400) == 0
            assert seen == [1]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
