/*
 * ring_loops.h -- the slot loops of nm_inject, nm_nextpkt/nm_dispatch,
 * batch send/receive and the bridge step, over one netmap ring (its slot
 * count as recorded by its user, never the ring's own field) and one buffer
 * pool: written once, used on engine ports (batch.c, fwd.c) and on views of
 * any netmap memory (rings_view.c).  Static inline, so that each caller's
 * loop compiles as if written in place.
 *
 * Another process may write the ring meanwhile (a pipe's peer, a second
 * holder, a corrupting program sharing the memory): every index is read
 * once (nmc_user_u32, nmc_slot_read), checked, and the checked copy used.
 */
#ifndef NMC_RING_LOOPS_H
#define NMC_RING_LOOPS_H

#include "nmc_int.h"

#include <errno.h>
#include <string.h>

/* A buffer pool: buffer idx at mem + ofs + idx * size, for idx < num
 * (0 and 1 are netmap's reserved buffers: never written). */
struct nmc_bufs {
    uint8_t *mem;
    uint64_t ofs;
    uint32_t size, num;
};

static inline uint8_t *nmc_bufs_at(const struct nmc_bufs *b, uint32_t idx)
{
    return b->mem + b->ofs + (uint64_t)idx * b->size;
}

/* An engine port's region (its trusted local geometry). */
static inline struct nmc_bufs nmc_port_bufs(const struct nmc_port *p)
{
    return (struct nmc_bufs){ p->mem, p->g.buf_pool_ofs, p->g.buf_size, p->g.buf_num };
}

static inline bool nmc_bufs_writable(const struct nmc_bufs *b, uint32_t idx)
{
    return idx >= 2 && idx < b->num;
}

/* Slots from cur to tail (TX: free, RX: received), 0 when either is out of
 * range. */
static inline uint32_t nmc_ring_span(const struct netmap_ring *ring, uint32_t n)
{
    uint32_t cur = nmc_user_u32(&ring->cur), tail = nmc_user_u32(&ring->tail);

    return cur < n && tail < n ? nmc_dist(cur, tail, n) : 0;
}

/* Slots a packet of len bytes takes (one, even empty). */
static inline uint32_t nmc_chain_need(size_t len, uint32_t buf_size)
{
    return len == 0 ? 1 : (uint32_t)((len + buf_size - 1) / buf_size);
}

/* Slots [cur, cur + need) (cur < n) all own a writable buffer. */
static inline bool nmc_chain_usable(const struct netmap_ring *ring, uint32_t n, uint32_t cur,
                                    uint32_t need, const struct nmc_bufs *b)
{
    for (uint32_t k = 0; k < need; k++, cur = nmc_next(cur, n))
        if (!nmc_bufs_writable(b, nmc_user_u32(&ring->slot[cur].buf_idx)))
            return false;
    return true;
}

/* Write one packet from slot cur (< n, room checked) as a chain of slots,
 * NS_MOREFRAG on all but the last, and publish it (head = cur = after it).
 * -EINVAL and nothing published when a slot's buffer index is not writable
 * (another thread rewrote it after the check). */
static inline int nmc_chain_write(struct netmap_ring *ring, uint32_t n, uint32_t cur,
                                  const struct nmc_bufs *b, const uint8_t *data, size_t len)
{
    do {
        struct netmap_slot *s = &ring->slot[cur];
        uint32_t chunk = len > b->size ? b->size : (uint32_t)len, idx = nmc_user_u32(&s->buf_idx);
        if (!nmc_bufs_writable(b, idx))
            return -EINVAL;
        memcpy(nmc_bufs_at(b, idx), data, chunk);
        s->len = (uint16_t)chunk;
        data += chunk;
        len -= chunk;
        s->flags = (uint16_t)((s->flags & NS_BUF_CHANGED) | (len ? NS_MOREFRAG : 0));
        cur = nmc_next(cur, n);
    } while (len);
    ring->head = ring->cur = cur;
    return 0;
}

/* On engine ports, a slot the user left without a buffer gets a fresh one
 * of the region (nmc_ring_refill) before a packet is written into it. */
struct nmc_refill {
    struct nmc_port *port;
    struct nmc_lring *lr;
};

/* Queue packets [*done, count) (packet i: lens[i] bytes, at most stride,
 * at data + i * stride) on one TX ring while it has room for the next whole
 * chain.  refill: NULL, or where slots without a buffer get one.  0, or
 * -EMSGSIZE for a packet no ring can take, -EINVAL when a slot it needs has
 * no writable buffer (nothing of that packet written). */
static inline int nmc_ring_queue(struct netmap_ring *ring, uint32_t n, const struct nmc_bufs *b,
                                 const struct nmc_refill *refill, const uint8_t *data,
                                 size_t stride, const uint32_t *lens, uint32_t count,
                                 uint32_t *done)
{
    for (; *done < count; (*done)++) {
        size_t len = lens[*done] < stride ? lens[*done] : stride;
        uint32_t need = nmc_chain_need(len, b->size), cur;
        int err;
        if (need > NETMAP_MAX_FRAGS)
            return -EMSGSIZE;
        if (nmc_ring_span(ring, n) < need)
            return 0;
        if ((cur = nmc_user_u32(&ring->cur)) >= n)
            return -EINVAL;
        if (!nmc_chain_usable(ring, n, cur, need, b)) {
            if (refill)
                nmc_ring_refill(refill->port, refill->lr, 0, cur, need);
            if (!refill || !nmc_chain_usable(ring, n, cur, need, b))
                return -EINVAL;
        }
        if ((err = nmc_chain_write(ring, n, cur, b, data + (size_t)*done * stride, len)) < 0)
            return err;
    }
    return 0;
}

/* The slot count of the whole packet at slot cur of an RX ring (0: none
 * complete yet), and its length (slots longer than a buffer count 0). */
static inline uint32_t nmc_chain_at(const struct netmap_ring *ring, uint32_t n, uint32_t cur,
                                    uint32_t buf_size, uint32_t *total)
{
    uint32_t tail = nmc_user_u32(&ring->tail), k = 0;

    *total = 0;
    if (cur >= n || tail >= n)
        return 0;
    for (uint32_t j = cur; j != tail && k < NETMAP_MAX_FRAGS; j = nmc_next(j, n)) {
        struct netmap_slot s = nmc_slot_read(&ring->slot[j]);
        *total += s.len <= buf_size ? s.len : 0;
        k++;
        if (!(s.flags & NS_MOREFRAG))
            return k;
    }
    return k == NETMAP_MAX_FRAGS ? k : 0;   /* over-long chain: deliver what there is */
}

/* Copy the nfrags slots from first (< n) into dst, at most cap bytes;
 * slots with a buffer index out of the pool are skipped.  Bytes copied. */
static inline uint32_t nmc_chain_copy(const struct netmap_ring *ring, uint32_t n, uint32_t first,
                                      uint32_t nfrags, const struct nmc_bufs *b, uint8_t *dst,
                                      size_t cap)
{
    uint32_t j = first, done = 0;

    for (uint32_t k = 0; k < nfrags && j < n; k++, j = nmc_next(j, n)) {
        struct netmap_slot s = nmc_slot_read(&ring->slot[j]);
        uint32_t len = s.len <= b->size ? s.len : 0;
        if (s.buf_idx >= b->num)
            continue;
        if (len > cap - done)
            len = (uint32_t)(cap - done);
        memcpy(dst + done, nmc_bufs_at(b, s.buf_idx), len);
        done += len;
    }
    return done;
}

/* Take the next packet of RX ring ring_i (whole: its chain, else its first
 * slot) into pkt and release it (head = cur = after it).  1, or 0 when no
 * whole packet is there. */
static inline int nmc_chain_take(struct netmap_ring *ring, uint32_t n, uint32_t ring_i,
                                 const struct nmc_bufs *b, int whole, struct nmc_pkt *pkt)
{
    uint32_t cur = nmc_user_u32(&ring->cur), total, nfr;
    struct netmap_slot s;

    if ((nfr = nmc_chain_at(ring, n, cur, b->size, &total)) == 0)
        return 0;
    s = nmc_slot_read(&ring->slot[cur]);
    if (!whole)
        nfr = 1;
    memset(pkt, 0, sizeof(*pkt));
    pkt->slot = cur;
    pkt->ring = ring_i;
    pkt->nfrags = nfr;
    pkt->flags = s.flags;
    pkt->first_len = s.len <= b->size ? s.len : 0;
    pkt->len = whole ? total : pkt->first_len;
    pkt->buf_ofs = b->ofs + (uint64_t)(s.buf_idx < b->num ? s.buf_idx : 0) * b->size;
    pkt->ts_sec = ring->ts.tv_sec;
    pkt->ts_usec = ring->ts.tv_usec;
    for (uint32_t f = 0; f < nfr; f++)
        cur = nmc_next(cur, n);
    ring->head = ring->cur = cur;
    return 1;
}

/* One slot from an RX ring to a TX ring: a buffer swap (NS_BUF_CHANGED on
 * both), or a copy (bounded by both buffer sizes; nothing copied, len 0,
 * when either index is out of its pool).  NS_MOREFRAG follows the packet. */
static inline void nmc_slot_move(struct netmap_slot *rs, struct netmap_slot *ts,
                                 const struct nmc_bufs *from, const struct nmc_bufs *to, bool swap)
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
        if (len > to->size)
            len = to->size;
        if (len > from->size)           /* never read past the source buffer */
            len = from->size;
        if (r.buf_idx < from->num && nmc_bufs_writable(to, t.buf_idx))
            memcpy(nmc_bufs_at(to, t.buf_idx), nmc_bufs_at(from, r.buf_idx), len);
        else
            len = 0;
        ts->flags = (uint16_t)((t.flags & ~NS_MOREFRAG) | more);
    }
    ts->len = (uint16_t)len;
}

/* Slots from cur (< n) that end whole packets, at most min(avail, room). */
static inline uint32_t nmc_chain_ends(const struct netmap_ring *ring, uint32_t n, uint32_t cur,
                                      uint32_t avail, uint32_t room)
{
    uint32_t lim = avail < room ? avail : room, end = 0, j = cur;

    for (uint32_t k = 0; k < lim; k++, j = nmc_next(j, n))
        if (!(ring->slot[j].flags & NS_MOREFRAG))
            end = k + 1;
    return end;
}

/* TX slots of `size`-byte buffers that RX slot s takes: one, more when it
 * holds more (bounded by its own buffers' size). */
static inline uint32_t nmc_pieces(const struct netmap_slot *s, const struct nmc_bufs *from,
                                  uint32_t size)
{
    uint32_t len = nmc_user_u16(&s->len);

    len = len < from->size ? len : from->size;
    return len <= size ? 1 : (len + size - 1) / size;
}

/* Copy one RX slot into TX slots from *tc, at most `budget` of them (its
 * pieces, each up to the TX buffers' size; nothing copied, len 0, for an
 * index out of its pool).  more: the packet goes on after this slot.
 * Returns the TX slots used. */
static inline uint32_t nmc_slot_split(const struct netmap_slot *rs, struct netmap_ring *tx,
                                      uint32_t tn, uint32_t *tc, const struct nmc_bufs *from,
                                      const struct nmc_bufs *to, uint32_t budget, bool more)
{
    struct netmap_slot r = nmc_slot_read(rs);
    uint32_t len = r.len < from->size ? r.len : from->size, o = 0, used = 0;

    do {
        struct netmap_slot *ts = &tx->slot[*tc];
        struct netmap_slot t = nmc_slot_read(ts);
        uint32_t piece = len - o < to->size ? len - o : to->size, last;
        o += piece;
        last = o >= len || used + 1 == budget;
        if (r.buf_idx < from->num && nmc_bufs_writable(to, t.buf_idx))
            memcpy(nmc_bufs_at(to, t.buf_idx), nmc_bufs_at(from, r.buf_idx) + o - piece, piece);
        else
            piece = 0;
        ts->len = (uint16_t)piece;
        ts->flags = (uint16_t)((t.flags & ~NS_MOREFRAG) | (!last || more ? NS_MOREFRAG : 0));
        *tc = nmc_next(*tc, tn);
        used++;
    } while (o < len && used < budget);
    return used;
}

/* nmc_ring_move() for copies into smaller buffers: an RX slot longer than
 * the TX ring's buffers goes on in the next TX slots (NS_MOREFRAG), so
 * nothing is cut.  Whole packets that fit the TX room only; a packet that
 * needs more slots than the TX ring has at all, or than a netmap chain
 * may have (NETMAP_MAX_FRAGS), is dropped (its RX slots are consumed), as
 * the switch drops what cannot fit a ring, rather than holding every
 * packet behind it forever. */
static inline uint32_t nmc_ring_move_split(struct netmap_ring *rx, uint32_t rn, uint32_t rc,
                                           uint32_t rt, struct netmap_ring *tx, uint32_t tn,
                                           uint32_t tc, uint32_t tt, const struct nmc_bufs *from,
                                           const struct nmc_bufs *to, uint32_t limit)
{
    uint32_t avail = nmc_dist(rc, rt, rn), room = nmc_dist(tc, tt, tn), moved = 0;

    while (moved < avail && moved < limit) {
        uint32_t k = 0, t = 0, j = rc;
        bool whole = false;
        while (moved + k < avail && !whole) {           /* measure one packet */
            t += nmc_pieces(&rx->slot[j], from, to->size);
            whole = !(nmc_user_u16(&rx->slot[j].flags) & NS_MOREFRAG);
            j = nmc_next(j, rn);
            k++;
        }
        if (!whole || moved + k > limit)
            break;
        if (t > tn - 1 || t > NETMAP_MAX_FRAGS) {       /* never fits: dropped */
            for (uint32_t i = 0; i < k; i++)
                rc = nmc_next(rc, rn);
            moved += k;
            continue;
        }
        if (t > room)
            break;
        room -= t;
        for (uint32_t i = 0; i < k; i++) {              /* at most t TX slots, whatever it reads now */
            t -= nmc_slot_split(&rx->slot[rc], tx, tn, &tc, from, to, t - (k - 1 - i), i + 1 < k);
            rc = nmc_next(rc, rn);
        }
        moved += k;
    }
    rx->head = rx->cur = rc;
    tx->head = tx->cur = tc;
    return moved;
}

/* Move whole packets, at most `limit` RX slots, from RX ring rx (rn slots)
 * to TX ring tx (tn slots), and advance both (head = cur).  RX slots moved
 * (a split packet takes more TX slots).
 * A copy into smaller buffers splits (nmc_ring_move_split). */
static inline uint32_t nmc_ring_move(struct netmap_ring *rx, uint32_t rn, struct netmap_ring *tx,
                                     uint32_t tn, const struct nmc_bufs *from,
                                     const struct nmc_bufs *to, uint32_t limit, bool swap)
{
    uint32_t rc = nmc_user_u32(&rx->cur), rt = nmc_user_u32(&rx->tail);
    uint32_t tc = nmc_user_u32(&tx->cur), tt = nmc_user_u32(&tx->tail), m;

    if (rc >= rn || rt >= rn || tc >= tn || tt >= tn)
        return 0;
    if (!swap && from->size > to->size && to->size)
        return nmc_ring_move_split(rx, rn, rc, rt, tx, tn, tc, tt, from, to, limit);
    m = nmc_dist(tc, tt, tn);
    m = nmc_chain_ends(rx, rn, rc, nmc_dist(rc, rt, rn), m < limit ? m : limit);
    for (uint32_t k = 0; k < m; k++) {
        nmc_slot_move(&rx->slot[rc], &tx->slot[tc], from, to, swap);
        rc = nmc_next(rc, rn);
        tc = nmc_next(tc, tn);
    }
    rx->head = rx->cur = rc;
    tx->head = tx->cur = tc;
    return m;
}

#endif /* NMC_RING_LOOPS_H */
