"""A copy TX monitor opened after syncs made with no monitor gets every slot
the next sync sends: what an earlier monitor's syncs copied says nothing
about the slots queued since."""
from __future__ import annotations

import nmcompat
from test_monitor import drain, frames, send


def test_new_tx_monitor_after_unmonitored_syncs_gets_everything(rundir):
    data = frames(40, seed=60, maxlen=200)
    with nmcompat.open("netmap:gap{1", slots=16) as m, nmcompat.open("netmap:gap}1", slots=16) as s:
        n = m.tx_rings[0].num_slots
        with nmcompat.open("netmap:gap{1/t") as first:
            send(m, data[:3])
            assert drain(s) == data[:3]
            assert drain(first) == data[:3]
        for d in data[3:3 + n - 2]:             # round the ring, unmonitored, to 2 slots
            send(m, [d])                        # before where the first monitor's
            assert drain(s) == [d]              # last sync stopped
        m.txsync()
        with nmcompat.open("netmap:gap{1/t") as second:
            batch = data[n + 1:n + 5]           # [hwcur, head) spans that old point
            for d in batch:
                assert m.inject(d) == len(d)
            m.txsync()                          # the first sync the monitor sees
            assert drain(s) == batch
            assert drain(second) == batch
