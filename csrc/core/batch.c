/*
 * batch.c -- netmap's pcap-like helpers (nm_inject, nm_nextpkt,
 * nm_dispatch) and batch send/receive, one call per batch.
 */
#include "nmc_transport.h"
#include "ring_loops.h"

#include <errno.h>
#include <string.h>

/* Queue packets [*done, n) on TX ring i while it has room for the next
 * whole chain, inside the ring (another thread or process of this port
 * may sync it).  A slot whose index the user wrote out of range gets a
 * fresh buffer first (nmc_ring_refill).  Returns 0, or -EMSGSIZE for a
 * packet no ring can take, -EINVAL when a slot is left without a buffer
 * (the region has none to give). */
static int fill_ring(struct nmc_port *p, uint32_t i, const uint8_t *data, size_t stride,
                     const uint32_t *lens, uint32_t n, uint32_t *done)
{
    struct nmc_lring *lr = &p->tx[i];
    struct nmc_bufs b = nmc_port_bufs(p);
    struct nmc_refill refill = { p, lr };
    uint64_t entry = nmc_ring_enter(p, lr, 0);
    uint32_t before = *done;
    int err;

    if (!entry)
        return 0;                       /* someone else is inside: try another ring */
    err = nmc_ring_queue(lr->ring, lr->n, &b, &refill, data, stride, lens, n, done);
    if (*done > before)
        p->cur_tx = i;
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

/* Take the next packet of RX ring i (entered by the caller). */
static int take_packet(struct nmc_port *p, uint32_t i, int whole, struct nmc_pkt *pkt)
{
    struct nmc_bufs b = nmc_port_bufs(p);

    if (!nmc_chain_take(p->rx[i].ring, p->rx[i].n, i, &b, whole, pkt))
        return 0;
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
        got = take_packet(p, i, whole, pkt);
        nmc_ring_leave(&p->rx[i], entry);
        if (got)
            return 1;
    }
    return 0;
}

int nmc_copy_packet(struct nmc_port *p, const struct nmc_pkt *pkt, uint8_t *dst, size_t cap)
{
    struct nmc_bufs b = nmc_port_bufs(p);

    if (pkt->ring >= p->nrx || pkt->slot >= p->rx[pkt->ring].n)
        return -EINVAL;
    return (int)nmc_chain_copy(p->rx[pkt->ring].ring, p->rx[pkt->ring].n, pkt->slot, pkt->nfrags,
                               &b, dst, cap);
}

int nmc_recv_batch(struct nmc_port *p, uint8_t *out, size_t stride, uint32_t *lens, uint32_t n)
{
    uint32_t got = 0, first = p->cur_rx;
    struct nmc_bufs b = nmc_port_bufs(p);

    for (uint32_t k = 0; k < p->nrx && got < n; k++) {
        uint32_t i = (first + k) % p->nrx;
        struct nmc_lring *lr = &p->rx[i];
        uint64_t entry = nmc_ring_enter(p, lr, 1);
        struct nmc_pkt pkt;
        if (!entry)
            continue;                   /* someone else is inside */
        while (got < n && take_packet(p, i, 1, &pkt)) {
            nmc_chain_copy(lr->ring, lr->n, pkt.slot, pkt.nfrags, &b, out + (size_t)got * stride,
                           stride);
            lens[got++] = pkt.len;
        }
        nmc_ring_leave(lr, entry);
    }
    return (int)got;
}

/* The host rings of the port's adapter in direction d, bound or not. */
static uint32_t adapter_host_rings(const struct nmc_port *p, int d)
{
    uint32_t n = p->rec->nhost[d];

    return n == 0 && p->ops && p->ops->adapter_host_rings ? 1 : n;
}

int nmc_port_info(const struct nmc_port *p, struct nmc_port_info *info)
{
    memset(info, 0, sizeof(*info));
    info->nr_offset = (uint64_t)((const uint8_t *)p->nifp - p->mem);
    info->nr_memsize = p->g.memsize;
    info->nr_tx_rings = (uint16_t)p->nifp->ni_tx_rings;
    info->nr_rx_rings = (uint16_t)p->nifp->ni_rx_rings;
    info->nr_host_tx_rings = (uint16_t)adapter_host_rings(p, 0);
    info->nr_host_rx_rings = (uint16_t)adapter_host_rings(p, 1);
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

void nmc_geom_pools(const struct nmc_geom *g, uint16_t mem_id, struct nmc_pools_info *out)
{
    memset(out, 0, sizeof(*out));
    out->memsize = g->memsize;
    out->mem_id = mem_id;
    out->if_pool_offset = g->if_pool_ofs;
    out->if_objtotal = g->if_units;
    out->if_objsize = NMC_IF_UNIT;
    out->ring_pool_offset = g->ring_pool_ofs;
    out->ring_objtotal = g->ring_num;
    out->ring_objsize = g->ring_size;
    out->buf_pool_offset = g->buf_pool_ofs;
    out->buf_objtotal = g->buf_num;
    out->buf_objsize = g->buf_size;
}

int nmc_port_pools(const struct nmc_port *p, struct nmc_pools_info *out)
{
    if (!p || !out)
        return -EINVAL;
    nmc_geom_pools(&p->g, p->mem_id, out);
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
