/*
 * null.c -- null ports (NETMAP_REQ_REGISTER with nr_mode NR_REG_NULL).
 *
 * What they are is netmap's null adapter (sys/dev/netmap/netmap_null.c,
 * netmap_get_null_na, and the generic sync path of netmap.c it relies on):
 *   - a null port lives in an existing memory region, the one nr_mem_id
 *     names; without one (0, or an id no region has) it is EINVAL;
 *   - every REGISTER makes a new one ("null ports cannot be re-opened"),
 *     with the ring and slot counts asked for (0: the defaults), each ring
 *     with buffers of its own in that region, named "null:<nr_name>"; it
 *     goes with its last holder;
 *   - its txsync and rxsync do nothing: the kernel side of every ring stays
 *     where netmap_krings_create put it (hwcur 0, hwtail n - 1 for TX and
 *     0 for RX), and the sync's finalize copies that hwtail into the ring's
 *     tail.  So a TX ring hands no slot back: the program fills its n - 1
 *     slots and the ring stays full; an RX ring never receives.  The
 *     prologues still check head and cur (a bad one: the ring reinit), and
 *     an RX sync stamps ring->ts as netmap's NIOCRXSYNC does.
 *   - netmap_interp_ringid binds a null port as NR_REG_ALL_NIC (every ring;
 *     NR_RX_RINGS_ONLY and NR_TX_RINGS_ONLY apply); the caller asks so.
 * netmap's prologue checks head against the previous head (kring->rhead),
 * not against hwcur: here hwcur stands for it (a sync moves it to the
 * checked head; tail never moves), so a head that goes back is refused as
 * netmap refuses it, and a reinit puts head back where the last sync left
 * it.  Nothing wakes a sleeper on a null port (no peer): a poll for POLLIN
 * waits out its timeout, as netmap's.
 */
#include "nmc_transport.h"
#include "nmc_kinds.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int null_validate(const struct nmc_pipe_req *req)
{
    if (req && req->extmem)
        return -EOPNOTSUPP;             /* null ports join an existing region only */
    if (!req || req->mem_id == 0)
        return -EINVAL;                 /* "null ports must use an existing allocator" */
    if (req->parent && strlen(req->parent) >= NMC_NAMELEN)
        return -ENAMETOOLONG;
    return req->pipe_id || req->role != 0 ? -EINVAL : 0;
}

/* A new record in region req->mem_id: rings of the counts asked for, every
 * slot with a buffer of its own. */
static int null_resolve(const char *rundir, const struct nmc_pipe_req *req, struct nmc_region *r,
                        uint32_t *port)
{
    uint32_t ntx = nmc_bound(req->tx_rings, 1, 1, NMC_PIPE_MAXRINGS);
    uint32_t nrx = nmc_bound(req->rx_rings, 1, 1, NMC_PIPE_MAXRINGS);
    uint32_t tx_slots = nmc_bound(req->tx_slots, NMC_DEF_SLOTS, 2, NMC_MAXSLOTS);
    uint32_t rx_slots = nmc_bound(req->rx_slots, NMC_DEF_SLOTS, 2, NMC_MAXSLOTS);
    struct nmc_port_rec *rec;
    int err;

    if ((err = nmc_get_region_id(rundir, req->mem_id, r)) < 0)
        return err;
    if (!(rec = nmc_rec_alloc(r, NMC_KIND_NULL, req->parent ? req->parent : "")))
        return -ENOMEM;
    rec->nends = 1;
    if ((err = nmc_rec_add_rings(r, rec, 0, 0, ntx, tx_slots, true)) < 0 ||
        (err = nmc_rec_add_rings(r, rec, 0, 1, nrx, rx_slots, true)) < 0) {
        nmc_rec_free(r, rec);
        return err;
    }
    rec->state = NMC_LIVE;
    *port = (uint32_t)(rec - nmc_ports(r));
    return 0;
}

static void null_name(const struct nmc_pipe_req *req, char *out, size_t len)
{
    snprintf(out, len, "null:%s", req->parent ? req->parent : "");
}

/* netmap_null_txsync: nothing.  The prologue's checked head becomes the
 * base of the next check; tail stays. */
static int null_txsync_one(struct nmc_port *p, struct nmc_lring *lr)
{
    uint32_t head;

    if (nmc_txsync_prologue(lr, &head) < 0) {
        nmc_ring_reinit(lr, &p->g);
        return -EINVAL;
    }
    lr->kr->hwcur = head;
    lr->ring->tail = lr->kr->rtail = lr->kr->hwtail;
    return 0;
}

/* netmap_null_rxsync: nothing (hwtail stays at hwcur: the ring is empty,
 * and the prologue allows no other head); the core stamps the ring. */
static int null_rxsync_one(struct nmc_port *p, struct nmc_lring *lr)
{
    uint32_t head;

    if (nmc_rxsync_prologue(lr, &head) < 0) {
        nmc_ring_reinit(lr, &p->g);
        return -EINVAL;
    }
    lr->ring->tail = lr->kr->rtail = lr->kr->hwtail;
    return 0;
}

static const struct nmc_transport_ops null_ops = {
    .name = "null",
    .kind = NMC_KIND_NULL,
    .validate = null_validate,
    .resolve = null_resolve,
    .port_name = null_name,
    .txsync_one = null_txsync_one,
    .rxsync_one = null_rxsync_one,
};
NMC_TRANSPORT(null_ops)

int nmc_null_open(const struct nmc_pipe_req *req, struct nmc_port **out)
{
    return nmc_open_with(req, out, &null_ops);
}
