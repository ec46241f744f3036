/*
 * rings_view.c -- nm_inject, nm_nextpkt/nm_dispatch, batch send/receive and
 * the bridge step on the bound rings of any netmap memory (struct
 * nmc_rings): the kernel's, mapped from a /dev/netmap descriptor, for the
 * native backend.  The same semantics as batch.c and fwd.c on engine ports,
 * without the engine's ring ownership (on netmap's own rings, serialising
 * threads is the application's job, as in netmap).  Every index read from
 * the shared rings is checked against the slot counts the caller recorded
 * at registration, and every buffer index against the buffer pool.
 */
#include "nmc_int.h"
#include "ring_loops.h"

#include <errno.h>

static struct nmc_bufs view_bufs(const struct nmc_rings *r)
{
    return (struct nmc_bufs){ r->mem, r->buf_pool_ofs, r->buf_size, r->buf_num };
}

int nmc_rings_send(struct nmc_rings *r, const uint8_t *data, size_t stride,
                   const uint32_t *lens, uint32_t n)
{
    struct nmc_bufs b = view_bufs(r);
    uint32_t done = 0;

    for (uint32_t k = 0; k < r->ntx && done < n; k++) {
        uint32_t i = (r->cur_tx + k) % r->ntx, before = done;
        int err = nmc_ring_queue(r->tx[i], r->tx_slots[i], &b, NULL, data, stride, lens, n, &done);
        if (done > before)
            r->cur_tx = i;
        if (err < 0)
            return done ? (int)done : err;
    }
    return (int)done;
}

static int view_take(struct nmc_rings *r, uint32_t i, int whole, struct nmc_pkt *pkt)
{
    struct nmc_bufs b = view_bufs(r);

    if (!nmc_chain_take(r->rx[i], r->rx_slots[i], i, &b, whole, pkt))
        return 0;
    r->cur_rx = i;
    return 1;
}

int nmc_rings_next(struct nmc_rings *r, int whole, struct nmc_pkt *pkt)
{
    for (uint32_t k = 0; k < r->nrx; k++)
        if (view_take(r, (r->cur_rx + k) % r->nrx, whole, pkt))
            return 1;
    return 0;
}

int nmc_rings_copy(const struct nmc_rings *r, const struct nmc_pkt *pkt, uint8_t *dst, size_t cap)
{
    struct nmc_bufs b = view_bufs(r);

    if (pkt->ring >= r->nrx || pkt->slot >= r->rx_slots[pkt->ring])
        return -EINVAL;
    return (int)nmc_chain_copy(r->rx[pkt->ring], r->rx_slots[pkt->ring], pkt->slot, pkt->nfrags,
                               &b, dst, cap);
}

int nmc_rings_recv(struct nmc_rings *r, uint8_t *out, size_t stride, uint32_t *lens, uint32_t n)
{
    uint32_t got = 0, first = r->cur_rx;
    struct nmc_bufs b = view_bufs(r);
    struct nmc_pkt pkt;

    for (uint32_t k = 0; k < r->nrx && got < n; k++) {
        uint32_t i = (first + k) % r->nrx;
        while (got < n && view_take(r, i, 1, &pkt)) {
            nmc_chain_copy(r->rx[i], r->rx_slots[i], pkt.slot, pkt.nfrags, &b,
                           out + (size_t)got * stride, stride);
            lens[got++] = pkt.len;
        }
    }
    return (int)got;
}

int nmc_rings_forward(struct nmc_rings *src, struct nmc_rings *dst, uint32_t limit, uint32_t flags)
{
    bool swap = !(flags & NMC_FWD_COPY) && src->mem_id == dst->mem_id &&
                src->buf_size == dst->buf_size && src->buf_num == dst->buf_num;
    struct nmc_bufs from = view_bufs(src), to = view_bufs(dst);
    uint32_t moved = 0, ri = 0, ti = 0;

    if (!src->nrx || !dst->ntx)
        return 0;
    for (uint32_t rounds = 0; rounds < src->nrx + dst->ntx && moved < limit; rounds++) {
        uint32_t m, i = ri % src->nrx, o = ti % dst->ntx;
        if (nmc_ring_span(src->rx[i], src->rx_slots[i]) == 0) {
            ri++;                       /* empty (cur == tail) */
            continue;
        }
        if (nmc_ring_span(dst->tx[o], dst->tx_slots[o]) == 0) {
            ti++;                       /* full */
            continue;
        }
        m = nmc_ring_move(src->rx[i], src->rx_slots[i], dst->tx[o], dst->tx_slots[o], &from, &to,
                          limit - moved, swap);
        moved += m;
        if (m == 0)
            ti++;                       /* its next packet does not fit this TX ring's room */
    }
    return (int)moved;
}
