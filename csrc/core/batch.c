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

/* Write one packet at ring->cur as a chain; the caller checked the room. */
static void put_packet(struct nmc_port *p, struct netmap_ring *ring, uint32_t n,
                       const uint8_t *data, size_t len)
{
    uint32_t cur = nmc_user_u32(&ring->cur), bs = p->g.buf_size;

    if (cur >= n)
        return;
    do {
        struct netmap_slot *s = &ring->slot[cur];
        uint32_t chunk = len > bs ? bs : (uint32_t)len, idx = nmc_user_u32(&s->buf_idx);
        if (idx < 2 || idx >= p->g.buf_num)
            break;                      /* corrupt slot: txsync will reinit */
        memcpy(nmc_buf(p->mem, &p->g, idx), data, chunk);
        s->len = (uint16_t)chunk;
        data += chunk;
        len -= chunk;
        s->flags = (uint16_t)((s->flags & NS_BUF_CHANGED) | (len ? NS_MOREFRAG : 0));
        cur = nmc_next(cur, n);
    } while (len);
    ring->head = ring->cur = cur;
}

static uint32_t ring_room(const struct nmc_lring *lr)
{
    uint32_t cur = nmc_user_u32(&lr->ring->cur), tail = nmc_user_u32(&lr->ring->tail);

    if (cur >= lr->n || tail >= lr->n)
        return 0;
    return nmc_dist(cur, tail, lr->n);
}

/* Queue one packet on the first bound TX ring (from cur_tx) with room for
 * the whole chain.  Returns 1, 0 when no ring has room, or -EMSGSIZE. */
static int inject_one(struct nmc_port *p, const uint8_t *buf, size_t len)
{
    uint32_t need = frags_for(p, len);

    if (need > NETMAP_MAX_FRAGS)
        return -EMSGSIZE;
    for (uint32_t k = 0; k < p->ntx; k++) {
        uint32_t i = (p->cur_tx + k) % p->ntx;
        if (ring_room(&p->tx[i]) < need)
            continue;
        put_packet(p, p->tx[i].ring, p->tx[i].n, buf, len);
        p->cur_tx = i;
        return 1;
    }
    return 0;
}

int nmc_inject(struct nmc_port *p, const void *buf, size_t len)
{
    int r = inject_one(p, buf, len);

    return r == 1 ? (int)len : r;
}

int nmc_send_batch(struct nmc_port *p, const uint8_t *data, size_t stride,
                   const uint32_t *lens, uint32_t n)
{
    uint32_t sent = 0;

    for (; sent < n; sent++) {
        size_t len = lens[sent] < stride ? lens[sent] : stride;
        int r = inject_one(p, data + (size_t)sent * stride, len);
        if (r < 0)
            return sent ? (int)sent : r;
        if (r == 0)
            break;
    }
    return (int)sent;
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

int nmc_next_packet(struct nmc_port *p, int whole, struct nmc_pkt *pkt)
{
    for (uint32_t k = 0; k < p->nrx; k++) {
        uint32_t i = (p->cur_rx + k) % p->nrx, total, nfr;
        struct nmc_lring *lr = &p->rx[i];
        uint32_t cur = nmc_user_u32(&lr->ring->cur);
        struct netmap_slot s;
        if ((nfr = chain_at(p, lr, cur, &total)) == 0)
            continue;
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
    struct nmc_pkt pkt;
    uint32_t got = 0;

    while (got < n && nmc_next_packet(p, 1, &pkt) == 1) {
        copy_chain(p, &p->rx[pkt.ring], pkt.slot, pkt.nfrags, out + (size_t)got * stride, stride);
        lens[got++] = pkt.len;
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
    p->fd_exported = true;              /* from now on, bare poll(2) must work */
    return p->sock;
}
void *nmc_port_mem(const struct nmc_port *p) { return p->mem; }
struct netmap_if *nmc_port_nifp(const struct nmc_port *p) { return p->nifp; }
