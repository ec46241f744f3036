/*
 * batch.c -- netmap's pcap-like helpers (nm_inject, nm_nextpkt,
 * nm_dispatch) and batch send/receive, one call per batch.
 */
#include "nmc_transport.h"

#include <errno.h>
#include <string.h>

static uint32_t frags_for(const struct nmc_port *p, size_t len)
{
    return len == 0 ? 1 : (uint32_t)((len + p->g.buf_size - 1) / p->g.buf_size);
}

/* Slots [cur, cur + need) all own a buffer. */
static bool slots_usable(const struct nmc_port *p, const struct netmap_ring *ring, uint32_t n,
                         uint32_t cur, uint32_t need)
{
    for (uint32_t k = 0; k < need; k++, cur = nmc_next(cur, n)) {
        uint32_t idx = nmc_user_u32(&ring->slot[cur].buf_idx);
        if (idx < 2 || idx >= p->g.buf_num)
            return false;
    }
    return true;
}

/* Write one packet at ring->cur as a chain of `need` slots; the caller
 * checked the room.  A slot whose index the user wrote out of range gets a
 * fresh buffer first (nmc_ring_refill).  0, or -EINVAL and nothing written
 * when a slot is left without a buffer (the region has none to give). */
static int put_packet(struct nmc_port *p, struct nmc_lring *lr, const uint8_t *data, size_t len,
                      uint32_t need)
{
    struct netmap_ring *ring = lr->ring;
    uint32_t n = lr->n, cur = nmc_user_u32(&ring->cur), bs = p->g.buf_size;

    if (cur >= n)
        return -EINVAL;
    if (!slots_usable(p, ring, n, cur, need)) {
        nmc_ring_refill(p, lr, 0, cur, need);
        if (!slots_usable(p, ring, n, cur, need))
            return -EINVAL;
    }
    do {
        struct netmap_slot *s = &ring->slot[cur];
        uint32_t chunk = len > bs ? bs : (uint32_t)len, idx = nmc_user_u32(&s->buf_idx);
        if (idx < 2 || idx >= p->g.buf_num)
            return -EINVAL;             /* another thread rewrote it: not queued */
        memcpy(nmc_buf(p->mem, &p->g, idx), data, chunk);
        s->len = (uint16_t)chunk;
        data += chunk;
        len -= chunk;
        s->flags = (uint16_t)((s->flags & NS_BUF_CHANGED) | (len ? NS_MOREFRAG : 0));
        cur = nmc_next(cur, n);
    } while (len);
    ring->head = ring->cur = cur;
    return 0;
}

static uint32_t ring_room(const struct nmc_lring *lr)
{
    uint32_t cur = nmc_user_u32(&lr->ring->cur), tail = nmc_user_u32(&lr->ring->tail);

    if (cur >= lr->n || tail >= lr->n)
        return 0;
    return nmc_dist(cur, tail, lr->n);
}

/* Queue packets [*done, n) on TX ring i while it has room for the next
 * whole chain, inside the ring (another thread or process of this port
 * may sync it).  Returns 0, or -EMSGSIZE for a packet no ring can take. */
static int fill_ring(struct nmc_port *p, uint32_t i, const uint8_t *data, size_t stride,
                     const uint32_t *lens, uint32_t n, uint32_t *done)
{
    struct nmc_lring *lr = &p->tx[i];
    uint64_t entry = nmc_ring_enter(p, lr, 0);
    int err = 0;

    if (!entry)
        return 0;                       /* someone else is inside: try another ring */
    for (; *done < n; (*done)++) {
        size_t len = lens[*done] < stride ? lens[*done] : stride;
        uint32_t need = frags_for(p, len);
        if (need > NETMAP_MAX_FRAGS) {
            err = -EMSGSIZE;
            break;
        }
        if (ring_room(lr) < need)
            break;
        if ((err = put_packet(p, lr, data + (size_t)*done * stride, len, need)) < 0)
            break;
        p->cur_tx = i;
    }
    nmc_ring_leave(lr, entry);
    return err;
}

/* Queue packets on the bound TX rings, from cur_tx on, each ring while it
 * has room for the next whole chain.  Returns how many were queued, or
 * -errno when the first one could not be: -EMSGSIZE when it can never fit,
 * -EINVAL when a slot it needs has no buffer and none was left to give. */
static int queue_packets(struct nmc_port *p, const uint8_t *data, size_t stride,
                         const uint32_t *lens, uint32_t n)
{
    uint32_t done = 0, first = p->cur_tx;

    for (uint32_t k = 0; k < p->ntx && done < n; k++) {
        int err = fill_ring(p, (first + k) % p->ntx, data, stride, lens, n, &done);
        if (err < 0)
            return done ? (int)done : err;
    }
    return (int)done;
}

int nmc_inject(struct nmc_port *p, const void *buf, size_t len)
{
    uint32_t len32 = len > UINT32_MAX ? UINT32_MAX : (uint32_t)len;
    int r = queue_packets(p, buf, len, &len32, 1);

    return r == 1 ? (int)len : r;
}

int nmc_send_batch(struct nmc_port *p, const uint8_t *data, size_t stride,
                   const uint32_t *lens, uint32_t n)
{
    return queue_packets(p, data, stride, lens, n);
}

/* Locate the next whole packet at slot cur (< n) of an RX ring; returns
 * its slot count or 0. */
static uint32_t chain_at(const struct nmc_port *p, const struct nmc_lring *lr, uint32_t cur,
                         uint32_t *total)
{
    struct netmap_ring *ring = lr->ring;
    uint32_t tail = nmc_user_u32(&ring->tail), n = lr->n, k = 0;

    *total = 0;
    if (cur >= n || tail >= n)
        return 0;
    for (uint32_t j = cur; j != tail && k < NETMAP_MAX_FRAGS; j = nmc_next(j, n)) {
        struct netmap_slot s = nmc_slot_read(&ring->slot[j]);
        *total += s.len <= p->g.buf_size ? s.len : 0;
        k++;
        if (!(s.flags & NS_MOREFRAG))
            return k;
    }
    return k == NETMAP_MAX_FRAGS ? k : 0;   /* over-long chain: deliver what there is */
}

static uint32_t copy_chain(const struct nmc_port *p, const struct nmc_lring *lr, uint32_t first,
                           uint32_t nfrags, uint8_t *dst, size_t cap)
{
    struct netmap_ring *ring = lr->ring;
    uint32_t j = first, done = 0;

    for (uint32_t k = 0; k < nfrags && j < lr->n; k++, j = nmc_next(j, lr->n)) {
        struct netmap_slot s = nmc_slot_read(&ring->slot[j]);
        uint32_t len = s.len <= p->g.buf_size ? s.len : 0;
        if (s.buf_idx >= p->g.buf_num)
            continue;
        if (len > cap - done)
            len = (uint32_t)(cap - done);
        memcpy(dst + done, nmc_buf(p->mem, &p->g, s.buf_idx), len);
        done += len;
    }
    return done;
}

/* Take the next packet of RX ring lr (entered by the caller). */
static int take_packet(struct nmc_port *p, struct nmc_lring *lr, uint32_t i, int whole,
                       struct nmc_pkt *pkt)
{
    uint32_t cur = nmc_user_u32(&lr->ring->cur), total, nfr;
    struct netmap_slot s;

    if ((nfr = chain_at(p, lr, cur, &total)) == 0)
        return 0;
    s = nmc_slot_read(&lr->ring->slot[cur]);
    if (!whole)
        nfr = 1;
    memset(pkt, 0, sizeof(*pkt));
    pkt->slot = cur;
    pkt->ring = i;
    pkt->nfrags = nfr;
    pkt->flags = s.flags;
    pkt->first_len = s.len <= p->g.buf_size ? s.len : 0;
    pkt->len = whole ? total : pkt->first_len;
    pkt->buf_ofs = s.buf_idx < p->g.buf_num
                   ? p->g.buf_pool_ofs + (uint64_t)s.buf_idx * p->g.buf_size
                   : p->g.buf_pool_ofs;
    pkt->ts_sec = lr->ring->ts.tv_sec;
    pkt->ts_usec = lr->ring->ts.tv_usec;
    for (uint32_t f = 0; f < nfr; f++)
        cur = nmc_next(cur, lr->n);
    lr->ring->head = lr->ring->cur = cur;
    p->cur_rx = i;
    return 1;
}

int nmc_next_packet(struct nmc_port *p, int whole, struct nmc_pkt *pkt)
{
    for (uint32_t k = 0; k < p->nrx; k++) {
        uint32_t i = (p->cur_rx + k) % p->nrx;
        uint64_t entry = nmc_ring_enter(p, &p->rx[i], 1);
        int got;
        if (!entry)
            continue;                   /* someone else is inside */
        got = take_packet(p, &p->rx[i], i, whole, pkt);
        nmc_ring_leave(&p->rx[i], entry);
        if (got)
            return 1;
    }
    return 0;
}

int nmc_copy_packet(struct nmc_port *p, const struct nmc_pkt *pkt, uint8_t *dst, size_t cap)
{
    if (pkt->ring >= p->nrx || pkt->slot >= p->rx[pkt->ring].n)
        return -EINVAL;
    return (int)copy_chain(p, &p->rx[pkt->ring], pkt->slot, pkt->nfrags, dst, cap);
}

int nmc_recv_batch(struct nmc_port *p, uint8_t *out, size_t stride, uint32_t *lens, uint32_t n)
{
    uint32_t got = 0, first = p->cur_rx;

    for (uint32_t k = 0; k < p->nrx && got < n; k++) {
        uint32_t i = (first + k) % p->nrx;
        struct nmc_lring *lr = &p->rx[i];
        uint64_t entry = nmc_ring_enter(p, lr, 1);
        struct nmc_pkt pkt;
        if (!entry)
            continue;                   /* someone else is inside */
        while (got < n && take_packet(p, lr, i, 1, &pkt)) {
            copy_chain(p, lr, pkt.slot, pkt.nfrags, out + (size_t)got * stride, stride);
            lens[got++] = pkt.len;
        }
        nmc_ring_leave(lr, entry);
    }
    return (int)got;
}

int nmc_port_info(const struct nmc_port *p, struct nmc_port_info *info)
{
    memset(info, 0, sizeof(*info));
    info->nr_offset = (uint64_t)((const uint8_t *)p->nifp - p->mem);
    info->nr_memsize = p->g.memsize;
    info->nr_tx_rings = (uint16_t)p->nifp->ni_tx_rings;
    info->nr_rx_rings = (uint16_t)p->nifp->ni_rx_rings;
    info->nr_tx_slots = p->rec->nslots[p->end][0];
    info->nr_rx_slots = p->rec->nslots[p->end][1];
    info->nr_mem_id = p->mem_id;
    info->holder = (uint16_t)p->hidx;
    info->nr_extra_bufs = p->holder->extra_bufs;
    info->buf_size = p->g.buf_size;
    info->buf_num = p->g.buf_num;
    info->first_tx_ring = p->holder->first[0];
    info->last_tx_ring = p->holder->last[0];
    info->first_rx_ring = p->holder->first[1];
    info->last_rx_ring = p->holder->last[1];
    nmc_region_path(p->rundir, p->mem_id, info->region_path, sizeof(info->region_path));
    info->buf_pool_ofs = p->g.buf_pool_ofs;
    info->spin_us = p->spin_us;
    return 0;
}

int nmc_port_pools(const struct nmc_port *p, struct nmc_pools_info *out)
{
    if (!p || !out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    out->memsize = p->g.memsize;
    out->mem_id = p->mem_id;
    out->if_pool_offset = p->g.if_pool_ofs;
    out->if_objtotal = p->g.if_units;
    out->if_objsize = NMC_IF_UNIT;
    out->ring_pool_offset = p->g.ring_pool_ofs;
    out->ring_objtotal = p->g.ring_num;
    out->ring_objsize = p->g.ring_size;
    out->buf_pool_offset = p->g.buf_pool_ofs;
    out->buf_objtotal = p->g.buf_num;
    out->buf_objsize = p->g.buf_size;
    return 0;
}

struct netmap_ring *nmc_port_ring(const struct nmc_port *p, int dir, uint32_t i, uint32_t *nslots)
{
    const struct nmc_lring *lr = dir == 0 ? p->tx : p->rx;

    if ((dir != 0 && dir != 1) || i >= (dir == 0 ? p->ntx : p->nrx))
        return NULL;
    if (nslots)
        *nslots = lr[i].n;
    return lr[i].ring;
}

int nmc_port_stats(const struct nmc_port *p, struct nmc_port_stats *st)
{
    *st = p->st;
    st->buf_free = ((const struct nmc_region_hdr *)p->ctl)->buf_free;
    if (p->ops->stats)
        p->ops->stats(p, st);
    for (uint32_t i = 0; i < p->ntx; i++) {
        st->tx_pkts += p->tx[i].kr->pkts;
        st->tx_bytes += p->tx[i].kr->bytes;
        st->reinits += p->tx[i].kr->reinits;
    }
    for (uint32_t i = 0; i < p->nrx; i++) {
        st->rx_pkts += p->rx[i].kr->pkts;
        st->rx_bytes += p->rx[i].kr->bytes;
        st->reinits += p->rx[i].kr->reinits;
    }
    return 0;
}

int nmc_port_fd(struct nmc_port *p)
{
    if (p->ops->poll_fd)
        return p->ops->poll_fd(p);
    nmc_fd_export(p);                   /* from now on, bare poll(2) must work */
    return p->sock;
}
void *nmc_port_mem(const struct nmc_port *p) { return p->mem; }
struct netmap_if *nmc_port_nifp(const struct nmc_port *p) { return p->nifp; }
