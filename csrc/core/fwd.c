/*
 * fwd.c -- moving packets from one port's RX rings to another's TX rings,
 * as netmap's bridge does: buffer swaps (NS_BUF_CHANGED on both slots) when
 * the two ports share a region, a copy otherwise.  Whole packets only.
 */
#include "nmc_int.h"

#include <string.h>

/* Slots from rx->cur that end whole packets, at most `room`. */
static uint32_t whole(const struct nmc_lring *rx, uint32_t cur, uint32_t avail, uint32_t room)
{
    const struct netmap_ring *r = rx->ring;
    uint32_t lim = avail < room ? avail : room, end = 0, j = cur;

    for (uint32_t k = 0; k < lim; k++, j = nmc_next(j, rx->n))
        if (!(r->slot[j].flags & NS_MOREFRAG))
            end = k + 1;
    return end;
}

static void move_slot(struct nmc_port *src, struct nmc_port *dst, struct netmap_slot *rs,
                      struct netmap_slot *ts, bool swap)
{
    struct netmap_slot r = nmc_slot_read(rs), t = nmc_slot_read(ts);
    uint16_t more = r.flags & NS_MOREFRAG;
    uint32_t len = r.len;

    if (swap) {
        ts->buf_idx = r.buf_idx;
        rs->buf_idx = t.buf_idx;
        ts->flags = (uint16_t)((t.flags & ~NS_MOREFRAG) | more | NS_BUF_CHANGED);
        rs->flags = r.flags | NS_BUF_CHANGED;
    } else {
        if (len > dst->g.buf_size)
            len = dst->g.buf_size;
        if (len > src->g.buf_size)      /* never read past the source buffer */
            len = src->g.buf_size;
        if (r.buf_idx < src->g.buf_num && t.buf_idx >= 2 && t.buf_idx < dst->g.buf_num)
            memcpy(nmc_buf(dst->mem, &dst->g, t.buf_idx), nmc_buf(src->mem, &src->g, r.buf_idx), len);
        else
            len = 0;
        ts->flags = (uint16_t)((t.flags & ~NS_MOREFRAG) | more);
    }
    ts->len = (uint16_t)len;
}

static uint32_t move_ring(struct nmc_port *src, struct nmc_port *dst, struct nmc_lring *rx,
                          struct nmc_lring *tx, uint32_t limit, bool swap)
{
    struct netmap_ring *r = rx->ring, *t = tx->ring;
    uint32_t rc = nmc_user_u32(&r->cur), tc = nmc_user_u32(&t->cur), m;

    if (rc >= rx->n || tc >= tx->n || r->tail >= rx->n || t->tail >= tx->n)
        return 0;
    m = nmc_dist(tc, t->tail, tx->n);
    m = whole(rx, rc, nmc_dist(rc, r->tail, rx->n), m < limit ? m : limit);
    for (uint32_t k = 0; k < m; k++) {
        move_slot(src, dst, &r->slot[rc], &t->slot[tc], swap);
        rc = nmc_next(rc, rx->n);
        tc = nmc_next(tc, tx->n);
    }
    r->head = r->cur = rc;
    t->head = t->cur = tc;
    return m;
}

/* Move up to `limit` slots from src's RX rings to dst's TX rings (ring
 * pairs taken round robin, as netmap's bridge).  NMC_FWD_COPY forces a
 * copy.  No sync: the caller syncs (or polls) both ports.  Returns the
 * number of slots moved. */
int nmc_forward(struct nmc_port *src, struct nmc_port *dst, uint32_t limit, uint32_t flags)
{
    bool swap = !(flags & NMC_FWD_COPY) && src->mem_id == dst->mem_id &&
                strcmp(src->rundir, dst->rundir) == 0 && src->g.buf_size == dst->g.buf_size;
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
        m = move_ring(src, dst, rx, tx, limit - moved, swap);
        nmc_ring_leave(tx, out);
        nmc_ring_leave(rx, in);
        moved += m;
        if (m == 0)
            break;
    }
    return (int)moved;
}
