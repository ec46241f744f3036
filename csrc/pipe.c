/*
 * pipe.c -- netmap pipes: "X{id" (master) and "X}id" (slave).
 *
 * Both ends live in one region.  Ring k of one end's TX is crossed with
 * ring k of the other end's RX and the two share slot positions: txsync
 * copies 16-byte slot descriptors [hwcur, head) to the same indexes of the
 * peer RX ring (buffers move, payload is never copied) and publishes the
 * peer's pipe_tail only at packet boundaries; rxsync hands buffers the
 * receiver swapped (NS_BUF_CHANGED) back to the TX slot and publishes
 * prev(head) as the sender's new tail.  Each index has one writer, so the
 * data path takes no lock: release stores publish, acquire loads consume.
 */
#include "nmc_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

static uint32_t bound(uint32_t v, uint32_t dflt, uint32_t lo, uint32_t hi)
{
    if (v == 0)
        return dflt;
    return v < lo ? lo : v > hi ? hi : v;
}

int nmc_pipe_find(struct nmc_region *r, const char *parent, const char *id)
{
    struct nmc_pipe_rec *ports = nmc_ports(r);

    for (uint32_t i = 0; i < NMC_MAX_PORTS; i++) {
        if (ports[i].state == NMC_LIVE &&
            strncmp(ports[i].parent, parent, NMC_NAMELEN) == 0 &&
            strncmp(ports[i].pipe_id, id, NMC_NAMELEN) == 0)
            return (int)i;
    }
    return -ENOENT;
}

static uint64_t *ring_map(struct nmc_region *r) { return (uint64_t *)(r->map + r->g.ring_map_ofs); }

/* Give every TX slot a buffer and mirror it in the crossed RX ring. */
static int fill_side(struct nmc_region *r, uint32_t first, uint32_t nrings, uint32_t nslots,
                     uint32_t side)
{
    uint8_t *mem = r->map + r->g.ctl_size;
    struct nmc_kring *kr = nmc_krings(r->map, &r->g);

    for (uint32_t k = 0; k < nrings; k++) {
        uint32_t tobj = first + k, robj = first + nrings + k;
        struct netmap_ring *tx = nmc_ring_obj(mem, &r->g, tobj);
        struct netmap_ring *rx = nmc_ring_obj(mem, &r->g, robj);
        uint32_t idx[NMC_MAXSLOTS];
        int err;

        nmc_ring_init(tx, &kr[tobj], mem, &r->g, tobj, nslots, (uint16_t)k, 0);
        nmc_ring_init(rx, &kr[robj], mem, &r->g, robj, nslots, (uint16_t)k, 1);
        kr[tobj].peer = robj;
        kr[robj].peer = tobj;
        kr[tobj].end = side;
        kr[robj].end = 1 - side;
        err = nmc_buf_alloc(r, idx, nslots);
        if (err < 0)
            return err;
        for (uint32_t i = 0; i < nslots; i++) {
            tx->slot[i].buf_idx = rx->slot[i].buf_idx = idx[i];
            tx->slot[i].len = rx->slot[i].len = (uint16_t)(r->g.buf_size > 65535 ? 65535 : r->g.buf_size);
        }
    }
    return 0;
}

static void free_side(struct nmc_region *r, uint32_t first, uint32_t nrings, uint32_t nslots)
{
    uint8_t *mem = r->map + r->g.ctl_size;

    if (first >= r->g.ring_num || first + 2 * nrings > r->g.ring_num || nslots > NMC_MAXSLOTS)
        return;
    for (uint32_t k = 0; k < 2 * nrings; k++) {
        struct netmap_ring *ring = nmc_ring_obj(mem, &r->g, first + k);
        for (uint32_t i = 0; i < nslots; i++)
            nmc_buf_free(r, ring->slot[i].buf_idx);   /* idempotent: RX mirrors TX */
    }
    nmc_bits_free_run(ring_map(r), r->g.ring_num, first, 2 * nrings);
}

int nmc_pipe_create(struct nmc_region *r, const struct nmc_pipe_req *req, uint32_t *port)
{
    struct nmc_pipe_rec *ports = nmc_ports(r), *rec = NULL;
    uint32_t i, s;
    int err = -ENOMEM;

    for (i = 0; i < NMC_MAX_PORTS && !rec; i++)
        if (ports[i].state == NMC_FREE)
            rec = &ports[i];
    if (!rec)
        return -ENOMEM;
    memset(rec, 0, sizeof(*rec));
    nmc_copy_name(rec->parent, NMC_NAMELEN, req->parent);
    nmc_copy_name(rec->pipe_id, NMC_NAMELEN, req->pipe_id);
    rec->nrings[0] = bound(req->tx_rings, 1, 1, NMC_PIPE_MAXRINGS);
    rec->nrings[1] = bound(req->rx_rings, 1, 1, NMC_PIPE_MAXRINGS);
    rec->nslots[0] = bound(req->tx_slots, NMC_DEF_SLOTS, 2, NMC_MAXSLOTS);
    rec->nslots[1] = bound(req->rx_slots, NMC_DEF_SLOTS, 2, NMC_MAXSLOTS);
    if (req->role == NMC_PIPE_SLAVE) {      /* counts are given as the opener sees them */
        uint32_t t = rec->nrings[0]; rec->nrings[0] = rec->nrings[1]; rec->nrings[1] = t;
        t = rec->nslots[0]; rec->nslots[0] = rec->nslots[1]; rec->nslots[1] = t;
    }
    for (s = 0; s < 2; s++) {
        int64_t first = nmc_bits_alloc_run(ring_map(r), r->g.ring_num, 2 * rec->nrings[s]);
        if (first < 0)
            goto undo;
        rec->ring_first[s] = (uint32_t)first;
        if ((err = fill_side(r, (uint32_t)first, rec->nrings[s], rec->nslots[s], s)) < 0) {
            s++;
            goto undo;
        }
    }
    rec->gen++;
    rec->state = NMC_LIVE;
    *port = (uint32_t)(rec - ports);
    return 0;
undo:
    while (s-- > 0)
        free_side(r, rec->ring_first[s], rec->nrings[s], rec->nslots[s]);
    memset(rec, 0, sizeof(*rec));
    return err;
}

void nmc_pipe_destroy(struct nmc_region *r, uint32_t port)
{
    struct nmc_pipe_rec *rec = &nmc_ports(r)[port];

    for (uint32_t s = 0; s < 2; s++)
        free_side(r, rec->ring_first[s], rec->nrings[s], rec->nslots[s]);
    memset(rec, 0, sizeof(*rec));
}

/* A TX ring lost its last holder: drop a chain the dead writer left half
 * published (slots copied after the peer's pipe_tail), and trim the user
 * head back to the last complete packet, so that the next writer never
 * glues its first packet onto someone else's fragments. */
void nmc_pipe_repair_tx(struct nmc_region *r, uint32_t obj)
{
    uint8_t *mem = r->map + r->g.ctl_size;
    struct nmc_kring *kr = &nmc_krings(r->map, &r->g)[obj];
    struct netmap_ring *ring = nmc_ring_obj(mem, &r->g, obj);
    uint32_t n = kr->nslots, pub, head, keep;

    if (n < 2 || n > NMC_MAXSLOTS || kr->peer >= r->g.ring_num)
        return;
    pub = nmc_krings(r->map, &r->g)[kr->peer].pipe_tail;
    if (pub >= n)
        return;
    head = ring->head < n ? ring->head : pub;
    if (nmc_dist(pub, head, n) > nmc_dist(pub, kr->rtail < n ? kr->rtail : pub, n))
        head = pub;
    keep = pub;
    for (uint32_t j = pub; j != head; j = nmc_next(j, n))
        if (!(ring->slot[j].flags & NS_MOREFRAG))
            keep = nmc_next(j, n);
    kr->hwcur = kr->rhead = kr->rcur = pub;
    ring->head = ring->cur = keep;
    kr->busy = 0;
}

int nmc_pipe_txsync_one(struct nmc_port *p, struct nmc_lring *lr)
{
    struct netmap_ring *tx = lr->ring, *rx = lr->peer_ring;
    struct nmc_kring *kr = lr->kr, *pk = lr->peer_kr;
    uint32_t n = lr->n, head, j, pub = 0, npkts = 0, nbytes = 0;
    bool publish = false, bad = false;

    if (nmc_txsync_prologue(lr, &head) < 0) {
        nmc_ring_reinit(lr, &p->g);
        return -EINVAL;
    }
    for (j = kr->hwcur; j != head; j = nmc_next(j, n)) {
        struct netmap_slot *ts = &tx->slot[j];
        uint32_t idx = ts->buf_idx;
        uint16_t len = ts->len, flags = ts->flags;
        if (idx < 2 || idx >= p->g.buf_num || len > p->g.buf_size) {
            bad = true;
            break;
        }
        rx->slot[j].buf_idx = idx;
        rx->slot[j].len = len;
        rx->slot[j].flags = flags;
        rx->slot[j].ptr = ts->ptr;
        if (flags & NS_BUF_CHANGED)
            ts->flags = flags & ~NS_BUF_CHANGED;
        nbytes += len;
        if (!(flags & NS_MOREFRAG)) {
            pub = nmc_next(j, n);
            publish = true;
            npkts++;
        }
    }
    kr->hwcur = j;
    if (publish) {
        nmc_store_rel(&pk->pipe_tail, pub);
        nmc_wake_sleepers(p, pk);
    }
    kr->pkts += npkts;
    kr->bytes += nbytes;
    kr->syncs++;
    kr->hwtail = nmc_load_acq(&kr->pipe_tail);
    if (kr->hwtail >= n)
        kr->hwtail = nmc_prev(kr->hwcur, n);
    kr->rtail = kr->hwtail;
    tx->tail = kr->hwtail;
    if (bad) {
        nmc_ring_reinit(lr, &p->g);
        return -EINVAL;
    }
    return 0;
}

int nmc_pipe_rxsync_one(struct nmc_port *p, struct nmc_lring *lr)
{
    struct netmap_ring *rx = lr->ring, *tx = lr->peer_ring;
    struct nmc_kring *kr = lr->kr, *pk = lr->peer_kr;
    uint32_t n = lr->n, head, j, tail, npkts = 0, nbytes = 0;

    if (nmc_rxsync_prologue(lr, &head) < 0) {
        nmc_ring_reinit(lr, &p->g);
        return -EINVAL;
    }
    for (j = kr->hwcur; j != head; j = nmc_next(j, n)) {
        struct netmap_slot *rs = &rx->slot[j];
        uint16_t flags = rs->flags;
        nbytes += rs->len;
        npkts += !(flags & NS_MOREFRAG);
        if (flags & NS_BUF_CHANGED) {       /* the receiver swapped: hand it back */
            if (rs->buf_idx < 2 || rs->buf_idx >= p->g.buf_num) {
                nmc_ring_reinit(lr, &p->g);
                return -EINVAL;
            }
            tx->slot[j].buf_idx = rs->buf_idx;
            tx->slot[j].len = rs->len;
            tx->slot[j].flags = flags;
            rs->flags = flags & ~NS_BUF_CHANGED;
        }
    }
    if (head != kr->hwcur) {
        kr->hwcur = head;
        nmc_store_rel(&pk->pipe_tail, nmc_prev(head, n));
        nmc_wake_sleepers(p, pk);
    }
    kr->pkts += npkts;
    kr->bytes += nbytes;
    kr->syncs++;
    tail = nmc_load_acq(&kr->pipe_tail);
    if (tail >= n)
        tail = kr->hwcur;
    kr->hwtail = kr->rtail = tail;
    rx->tail = tail;
    if (!p->no_timestamp || (rx->flags & NR_TIMESTAMP))
        gettimeofday(&rx->ts, NULL);
    return 0;
}
