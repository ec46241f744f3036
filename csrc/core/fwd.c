/*
 * fwd.c -- moving packets from one port's RX rings to another's TX rings,
 * as netmap's bridge does: buffer swaps (NS_BUF_CHANGED on both slots) when
 * the two ports share a region, a copy otherwise.  Whole packets only.
 */
#include "nmc_int.h"
#include "ring_loops.h"

#include <string.h>

/* Move up to `limit` slots from src's RX rings to dst's TX rings (ring
 * pairs taken round robin, as netmap's bridge).  NMC_FWD_COPY forces a
 * copy.  No sync: the caller syncs (or polls) both ports.  Returns the
 * number of slots moved. */
int nmc_forward(struct nmc_port *src, struct nmc_port *dst, uint32_t limit, uint32_t flags)
{
    bool swap = !(flags & NMC_FWD_COPY) && src->mem_id == dst->mem_id &&
                strcmp(src->rundir, dst->rundir) == 0 && src->g.buf_size == dst->g.buf_size;
    struct nmc_bufs from = nmc_port_bufs(src), to = nmc_port_bufs(dst);
    uint32_t moved = 0, ri = 0, ti = 0;

    if (!src->nrx || !dst->ntx)
        return 0;
    for (uint32_t rounds = 0; rounds < src->nrx + dst->ntx && moved < limit; rounds++) {
        struct nmc_lring *rx = &src->rx[ri % src->nrx], *tx = &dst->tx[ti % dst->ntx];
        uint64_t in = 0, out = 0;
        uint32_t m;
        if (!(in = nmc_ring_enter(src, rx, 1)) || rx->ring->cur == rx->ring->tail) {
            if (in)
                nmc_ring_leave(rx, in);
            ri++;                       /* empty, or someone else is inside */
            continue;
        }
        if (!(out = nmc_ring_enter(dst, tx, 0)) || tx->ring->cur == tx->ring->tail) {
            if (out)
                nmc_ring_leave(tx, out);
            nmc_ring_leave(rx, in);
            ti++;
            continue;
        }
        m = nmc_ring_move(rx->ring, rx->n, tx->ring, tx->n, &from, &to, limit - moved, swap);
        nmc_ring_leave(tx, out);
        nmc_ring_leave(rx, in);
        moved += m;
        if (m == 0)
            ti++;                       /* its next packet does not fit this TX ring's room */
    }
    return (int)moved;
}
