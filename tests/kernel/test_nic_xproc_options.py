"""An open that joins a NIC record another port made (one AF_XDP socket per
queue, shared) gets that socket's bind: options it cannot honour are
refused, never ignored.  Zero-copy asked of a copy-mode socket fails as the
open alone fails (EOPNOTSUPP, the same message); copy mode asked of a
zero-copy socket, or no multi-buffer frames of a socket that delivers them,
fail with a message naming the port joined.  In one process as across
processes."""
from __future__ import annotations

import errno
import json
import signal
import sys

import pytest

pytestmark = pytest.mark.kernel

HOLDER = r"""
import signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
import nmcompat
p = nmcompat.open("netmap:va-0", backend="afxdp", xdp_mode="skb")
print("ready", p.info.region, flush=True)
signal.sigwait({signal.SIGUSR1})
p.close()
"""


@pytest.fixture(autouse=True)
def _own_rundir(rundir):
    yield rundir


def _open(**kw):
    """(errno, message) of an open of va-0 in skb mode with kw, or (0, zerocopy)."""
    import nmcompat
    try:
        p = nmcompat.open("netmap:va-0", backend="afxdp", xdp_mode="skb", **kw)
    except OSError as exc:
        return exc.errno, str(exc)
    zc = p.info.zerocopy
    p.close()
    return 0, zc


def _beside_a_port(**kw):
    """_open(**kw) while this process holds a plain skb open of va-0."""
    import nmcompat
    with nmcompat.open("netmap:va-0", backend="afxdp", xdp_mode="skb"):
        return _open(**kw)


def _ask(netns, procs, kw, where):
    if where == "same process":
        return netns.run(lambda: _beside_a_port(**kw))
    holder = procs.spawn(["ip", "netns", "exec", netns.name, sys.executable, "-c", HOLDER])
    holder.expect("ready", timeout=20)
    try:
        return netns.run(lambda: _open(**kw))
    finally:
        holder.kill(signal.SIGUSR1)
        assert holder.wait(20) == 0, holder.describe()


@pytest.mark.parametrize("where", ["same process", "another process"])
def test_zerocopy_join_of_copy_socket_fails_as_alone(netns, procs, where):
    alone = netns.run(lambda: _open(zerocopy=True))
    assert alone[0] == errno.EOPNOTSUPP, alone
    assert _ask(netns, procs, {"zerocopy": True}, where) == alone


@pytest.mark.parametrize("where", ["same process", "another process"])
def test_no_multibuffer_join_of_sg_socket_is_refused(netns, procs, where):
    assert netns.run(lambda: _open(multibuffer=False))[0] == 0
    err, msg = _ask(netns, procs, {"multibuffer": False}, where)
    assert err == errno.EOPNOTSUPP and "bound with multi-buffer frames by the port this open joins" in msg, msg


@pytest.mark.parametrize("where", ["same process", "another process"])
def test_compatible_options_still_join(netns, procs, where):
    assert _ask(netns, procs, {"zerocopy": False}, where) == (0, False)
