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

#include <errno.h>
#include <string.h>

static uint8_t *view_buf(const struct nmc_rings *r, uint32_t idx)
{
    return r->mem + r->buf_pool_ofs + (uint64_t)idx * r->buf_size;
}

static bool buf_ok(const struct nmc_rings *r, uint32_t idx)
{
    return idx >= 2 && idx < r->buf_num;
}

static uint32_t view_room(const struct netmap_ring *ring, uint32_t n)
{
    uint32_t cur = nmc_user_u32(&ring->cur), tail = nmc_user_u32(&ring->tail);

    return cur < n && tail < n ? nmc_dist(cur, tail, n) : 0;
}

/* Write one packet at ring->cur as a chain of `need` slots (room checked);
 * -EINVAL and nothing published when a slot has no valid buffer. */
static int view_put(const struct nmc_rings *r, struct netmap_ring *ring, uint32_t n,
                    const uint8_t *data, size_t len, uint32_t need)
{
    uint32_t cur = nmc_user_u32(&ring->cur), j = cur;

    for (uint32_t k = 0; k < need; k++, j = nmc_next(j, n))
        if (!buf_ok(r, nmc_user_u32(&ring->slot[j].buf_idx)))
            return -EINVAL;
    do {
        struct netmap_slot *s = &ring->slot[cur];
        uint32_t chunk = len > r->buf_size ? r->buf_size : (uint32_t)len;
        uint32_t idx = nmc_user_u32(&s->buf_idx);
        if (!buf_ok(r, idx))
            return -EINVAL;             /* another thread rewrote it: not published */
        memcpy(view_buf(r, idx), data, chunk);
        s->len = (uint16_t)chunk;
        data += chunk;
        len -= chunk;
        s->flags = (uint16_t)((s->flags & NS_BUF_CHANGED) | (len ? NS_MOREFRAG : 0));
        cur = nmc_next(cur, n);
    } while (len);
    ring->head = ring->cur = cur;
    return 0;
}

int nmc_rings_send(struct nmc_rings *r, const uint8_t *data, size_t stride,
                   const uint32_t *lens, uint32_t n)
{
    uint32_t done = 0;

    for (uint32_t k = 0; k < r->ntx && done < n; k++) {
        uint32_t i = (r->cur_tx + k) % r->ntx, slots = r->tx_slots[i];
        struct netmap_ring *ring = r->tx[i];
        for (; done < n; done++) {
            size_t len = lens[done] < stride ? lens[done] : stride;
            uint32_t need = len == 0 ? 1 : (uint32_t)((len + r->buf_size - 1) / r->buf_size);
            int err = 0;
            if (need > NETMAP_MAX_FRAGS)
                err = -EMSGSIZE;
            else if (view_room(ring, slots) < need)
                break;
            else
                err = view_put(r, ring, slots, data + (size_t)done * stride, len, need);
            if (err < 0)
                return done ? (int)done : err;
            r->cur_tx = i;
        }
    }
    return (int)done;
}

/* The slot count of the whole packet at slot cur of an RX ring (0: none
 * complete yet), and its length. */
static uint32_t view_chain(const struct nmc_rings *r, const struct netmap_ring *ring, uint32_t n,
                           uint32_t cur, uint32_t *total)
{
    uint32_t tail = nmc_user_u32(&ring->tail), k = 0;

    *total = 0;
    if (cur >= n || tail >= n)
        return 0;
    for (uint32_t j = cur; j != tail && k < NETMAP_MAX_FRAGS; j = nmc_next(j, n)) {
        struct netmap_slot s = nmc_slot_read(&ring->slot[j]);
        *total += s.len <= r->buf_size ? s.len : 0;
        k++;
        if (!(s.flags & NS_MOREFRAG))
            return k;
    }
    return k == NETMAP_MAX_FRAGS ? k : 0;   /* over-long chain: deliver what there is */
}

static uint32_t view_copy(const struct nmc_rings *r, uint32_t ring_i, uint32_t first,
                          uint32_t nfrags, uint8_t *dst, size_t cap)
{
    const struct netmap_ring *ring = r->rx[ring_i];
    uint32_t n = r->rx_slots[ring_i], j = first, done = 0;

    for (uint32_t k = 0; k < nfrags && j < n; k++, j = nmc_next(j, n)) {
        struct netmap_slot s = nmc_slot_read(&ring->slot[j]);
        uint32_t len = s.len <= r->buf_size ? s.len : 0;
        if (s.buf_idx >= r->buf_num)
            continue;
        if (len > cap - done)
            len = (uint32_t)(cap - done);
        memcpy(dst + done, view_buf(r, s.buf_idx), len);
        done += len;
    }
    return done;
}

static int view_take(struct nmc_rings *r, uint32_t i, int whole, struct nmc_pkt *pkt)
{
    struct netmap_ring *ring = r->rx[i];
    uint32_t n = r->rx_slots[i], cur = nmc_user_u32(&ring->cur), total, nfr;
    struct netmap_slot s;

    if ((nfr = view_chain(r, ring, n, cur, &total)) == 0)
        return 0;
    s = nmc_slot_read(&ring->slot[cur]);
    memset(pkt, 0, sizeof(*pkt));
    pkt->slot = cur;
    pkt->ring = i;
    pkt->nfrags = whole ? nfr : 1;
    pkt->flags = s.flags;
    pkt->first_len = s.len <= r->buf_size ? s.len : 0;
    pkt->len = whole ? total : pkt->first_len;
    pkt->buf_ofs = r->buf_pool_ofs + (uint64_t)(s.buf_idx < r->buf_num ? s.buf_idx : 0) * r->buf_size;
    pkt->ts_sec = ring->ts.tv_sec;
    pkt->ts_usec = ring->ts.tv_usec;
    for (uint32_t f = 0; f < pkt->nfrags; f++)
        cur = nmc_next(cur, n);
    ring->head = ring->cur = cur;
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
    if (pkt->ring >= r->nrx || pkt->slot >= r->rx_slots[pkt->ring])
        return -EINVAL;
    return (int)view_copy(r, pkt->ring, pkt->slot, pkt->nfrags, dst, cap);
}

int nmc_rings_recv(struct nmc_rings *r, uint8_t *out, size_t stride, uint32_t *lens, uint32_t n)
{
    uint32_t got = 0, first = r->cur_rx;
    struct nmc_pkt pkt;

    for (uint32_t k = 0; k < r->nrx && got < n; k++) {
        uint32_t i = (first + k) % r->nrx;
        while (got < n && view_take(r, i, 1, &pkt)) {
            view_copy(r, i, pkt.slot, pkt.nfrags, out + (size_t)got * stride, stride);
            lens[got++] = pkt.len;
        }
    }
    return (int)got;
}

/* One slot from src's RX ring to dst's TX ring: buffer swap, or a copy. */
static void view_move(const struct nmc_rings *src, const struct nmc_rings *dst,
                      struct netmap_slot *rs, struct netmap_slot *ts, bool swap)
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
        if (len > dst->buf_size)
            len = dst->buf_size;
        if (len > src->buf_size)
            len = src->buf_size;
        if (r.buf_idx < src->buf_num && buf_ok(dst, t.buf_idx))
            memcpy(view_buf(dst, t.buf_idx), view_buf(src, r.buf_idx), len);
        else
            len = 0;
        ts->flags = (uint16_t)((t.flags & ~NS_MOREFRAG) | more);
    }
    ts->len = (uint16_t)len;
}

/* Slots from cur that end whole packets, at most `room`. */
static uint32_t view_whole(const struct netmap_ring *ring, uint32_t n, uint32_t cur, uint32_t avail,
                           uint32_t room)
{
    uint32_t lim = avail < room ? avail : room, end = 0, j = cur;

    for (uint32_t k = 0; k < lim; k++, j = nmc_next(j, n))
        if (!(ring->slot[j].flags & NS_MOREFRAG))
            end = k + 1;
    return end;
}

static uint32_t view_move_ring(const struct nmc_rings *src, const struct nmc_rings *dst,
                               uint32_t ri, uint32_t ti, uint32_t limit, bool swap)
{
    struct netmap_ring *r = src->rx[ri], *t = dst->tx[ti];
    uint32_t rn = src->rx_slots[ri], tn = dst->tx_slots[ti];
    uint32_t rc = nmc_user_u32(&r->cur), tc = nmc_user_u32(&t->cur), m = view_room(t, tn);

    if (rc >= rn || nmc_user_u32(&r->tail) >= rn)
        return 0;
    m = view_whole(r, rn, rc, nmc_dist(rc, nmc_user_u32(&r->tail), rn), m < limit ? m : limit);
    for (uint32_t k = 0; k < m; k++) {
        view_move(src, dst, &r->slot[rc], &t->slot[tc], swap);
        rc = nmc_next(rc, rn);
        tc = nmc_next(tc, tn);
    }
    r->head = r->cur = rc;
    t->head = t->cur = tc;
    return m;
}

int nmc_rings_forward(struct nmc_rings *src, struct nmc_rings *dst, uint32_t limit, uint32_t flags)
{
    bool swap = !(flags & NMC_FWD_COPY) && src->mem_id == dst->mem_id &&
                src->buf_size == dst->buf_size && src->buf_num == dst->buf_num;
    uint32_t moved = 0, ri = 0, ti = 0;

    if (!src->nrx || !dst->ntx)
        return 0;
    for (uint32_t rounds = 0; rounds < src->nrx + dst->ntx && moved < limit; rounds++) {
        uint32_t m, i = ri % src->nrx, o = ti % dst->ntx;
        if (view_room(src->rx[i], src->rx_slots[i]) == 0) {
            ri++;                       /* empty (cur == tail) */
            continue;
        }
        if (view_room(dst->tx[o], dst->tx_slots[o]) == 0) {
            ti++;                       /* full */
            continue;
        }
        m = view_move_ring(src, dst, i, o, limit - moved, swap);
        moved += m;
        if (m == 0)
            break;
    }
    return (int)moved;
}
