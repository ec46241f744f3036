"""`nmcompat status` lists each VALE switch with the ports attached to it,
as vale-ctl lists them, whatever the name: a persistent port (vale-ctl -n)
is on the switch it was attached to, not on a switch named after it."""
from __future__ import annotations

import json
import subprocess
import sys

import nmcompat
from nmcompat import rundir as rd, vale


def _status_text(rundir) -> str:
    out = subprocess.run([sys.executable, "-m", "nmcompat.tools", "status"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_persistent_port_is_listed_on_its_switch(rundir):
    vale.newif("stp0")
    try:
        assert rd.status(str(rundir))["switches"] == {}        # on no switch yet
        vale.attach("vale0:stp0")
        st = rd.status(str(rundir))
        assert st["switches"] == {"vale0": ["vale0:stp0"]}
        [port] = [p for r in st["regions"] for p in r["ports"]]
        assert (port["name"], port["switch"], port["persistent"]) == ("stp0", "vale0", True)
        assert "  switch vale0: vale0:stp0\n" in _status_text(rundir)
        assert "switch stp0" not in _status_text(rundir)
        vale.detach("vale0:stp0")
        assert rd.status(str(rundir))["switches"] == {}
    finally:
        vale.delif("stp0")


def test_every_vale_name_form_is_on_the_switch_vale_ctl_lists(rundir):
    names = ["valeA:b", "vale:x", "vale0:a:b", "vale:x:y:z", "netmap:vale1:q"]
    ports = [nmcompat.open(n) for n in names]
    vale.newif("stp1")
    try:
        vale.attach("valeA:stp1")
        listed = {}
        for e in vale.ports():
            sw = next(s for s in ("valeA", "vale0", "vale1", "vale") if e.name.startswith(s + ":"))
            listed.setdefault(sw, []).append(e.name)
        st = rd.status(str(rundir))
        assert st["switches"] == {sw: sorted(n) for sw, n in listed.items()}
        assert st["switches"] == {"vale": ["vale:x", "vale:x:y:z"], "vale0": ["vale0:a:b"],
                                  "vale1": ["vale1:q"], "valeA": ["valeA:b", "valeA:stp1"]}
        out = subprocess.run([sys.executable, "-m", "nmcompat.tools", "status", "--json"],
                             capture_output=True, text=True, timeout=60)
        assert json.loads(out.stdout)["switches"] == st["switches"]
        vale.detach("valeA:stp1")
    finally:
        for p in ports:
            p.close()
        vale.delif("stp1")
