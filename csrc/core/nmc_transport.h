/*
 * nmc_transport.h -- the one interface between the engine core and a kind
 * of port (netmap's struct netmap_adapter: nm_register, nm_txsync,
 * nm_rxsync, nm_krings_create, nm_dtor).
 *
 * Each transport (transport/<name>/) fills one struct nmc_transport_ops per
 * port kind it serves and registers it at load time with NMC_TRANSPORT();
 * the core finds it by the kind id stored in the port record and never
 * names a transport.  Transports call the core only through the services
 * declared in nmc_int.h and here.
 */
#ifndef NMC_TRANSPORT_H
#define NMC_TRANSPORT_H

#include "nmc_int.h"

#define NMC_MAX_KINDS 16u

/* Why a ring is repaired (flags of ring_repair). */
enum {
    NMC_REPAIR_DIED_INSIDE = 1u << 0,   /* its owner died inside a sync of it */
    NMC_REPAIR_LAST_HOLDER = 1u << 1,   /* no live holder binds it any more */
};

#define NMC_SYNC_WAKE_PEER 1    /* txsync_one/rxsync_one: see there */

struct nmc_transport_ops {
    const char *name;
    uint32_t kind;                      /* the port record's kind id */
    /* The open request is well formed for this kind (before any lock). */
    int (*validate)(const struct nmc_pipe_req *req);
    /* Find or create the port's region and record (netmap's
     * krings_create); the region is attached and its region lock held on
     * success (nmc_get_region and nmc_get_region_of return it so). */
    int (*resolve)(const char *rundir, const struct nmc_pipe_req *req,
                   struct nmc_region *r, uint32_t *port);
    /* The port's name as netmap shows it (ni_name); NULL: req->parent. */
    void (*port_name)(const struct nmc_pipe_req *req, char *out, size_t len);
    /* After the holder and the local rings exist (netmap's nm_register
     * on): process-local state such as sockets or a switch mapping.
     * NULL: nothing to do. */
    int (*attach)(struct nmc_port *p, struct nmc_region *r, const struct nmc_pipe_req *req);
    /* Undo attach; idempotent, also after a failed attach.  r is NULL when
     * the region lock could not be taken.  NULL: nothing to undo. */
    void (*detach)(struct nmc_port *p, struct nmc_region *r);
    /* Undo attach in a close whose holder lives on (its device descriptor
     * is open in another description, port.c): this process's state goes,
     * what the holder keeps (the record's rings and their buffers) stays.
     * r as for detach.  NULL: detach(p, NULL) once the region is unmapped. */
    void (*detach_kept)(struct nmc_port *p, struct nmc_region *r);
    /* Data path: one bound ring, entered by the caller (ring_own.c).
     * Returns 0, NMC_SYNC_WAKE_PEER (it published into lr->peer_kr: the
     * caller wakes that ring's sleepers once it has left the ring: a
     * locked leave is the barrier the wakeup needs, after a biased one the
     * sleeper paid for it, wake.c), or -errno. */
    int (*txsync_one)(struct nmc_port *p, struct nmc_lring *lr);
    int (*rxsync_one)(struct nmc_port *p, struct nmc_lring *lr);
    /* Its rxsync moves frames through the kernel and may last longer than
     * ring->ts's microsecond: the core stamps after it, so that the stamp
     * is never earlier than a frame it reports.  false: the rxsync reads
     * one index in memory, and the core stamps just before it (clock.c). */
    bool rxsync_long;
    /* Put ring object obj (direction dir) back in a state the next sync can
     * start from, for the reasons in `why`.  Called by the reaper (lock
     * held) and by a sync that takes a ring over from a dead owner, always
     * with the ring owned by the caller.  NULL: nothing to repair. */
    void (*ring_repair)(uint8_t *ctl, uint8_t *mem, const struct nmc_geom *g, uint32_t obj,
                        uint32_t dir, unsigned why);
    /* A record nobody holds is about to be freed (netmap's nm_dtor), lock
     * held.  NULL: nothing beyond freeing the record. */
    void (*destroy)(struct nmc_region *r, const char *rundir, struct nmc_port_rec *rec);
    /* Buffers of this kind's rings may sit in another port's rings or
     * kernel queues: freeing the record leaves them to the region, and the
     * buffer-ownership walk (bufcheck.c) cannot place them. */
    bool shared_bufs;
    /* Rings crossed slot for slot with a peer ring (the kring's peer, as a
     * pipe's TX ring of one end and RX ring of the other): the RX ring
     * rx_obj owns the buffers of positions [*from, *to), the TX ring tx_obj
     * those of every other position, and the other ring's slot at a
     * position is a stale copy.  Lock held; called once per walk, before
     * the slots are read.  NULL: every slot of every ring owns its buffer. */
    void (*rx_span)(const uint8_t *ctl, const struct nmc_geom *g, uint32_t tx_obj,
                    uint32_t rx_obj, uint32_t n, uint32_t *from, uint32_t *to);
    /* The port was inherited across fork() and its transport state (kernel
     * sockets, buffers) belongs to the process that opened it: close frees
     * only this process's copies, and leaves the holder, its socket path
     * and the buffers to that process.  NULL: never. */
    bool (*inherited)(const struct nmc_port *p);
    /* A kind with `inherited` whose port another process may adopt from its
     * device descriptor (adopt.c): the open request of rec's port, filled
     * in from the record (-EOPNOTSUPP: not this one).  NULL: never. */
    int (*adopt_req)(const struct nmc_port_rec *rec, struct nmc_pipe_req *req);
    /* Add transport counters to st.  NULL: none. */
    void (*stats)(const struct nmc_port *p, struct nmc_port_stats *st);
    /* Describe rec for `nmcompat status` where the common fields (parent
     * name, pipe id, end 0's rings) say it wrongly; lock held.  NULL: they
     * say it. */
    void (*status)(const struct nmc_port_rec *rec, struct nmc_port_status *out);
    /* The descriptor users poll.  NULL: the port's wakeup socket. */
    int (*poll_fd)(struct nmc_port *p);
    /* Block until the kernel has something for `events` (ports whose
     * wakeups come from kernel sockets).  NULL: the engine's wakeups.
     * Must also return when the port's own socket (p->sock) is readable,
     * after draining it, and return -ECANCELED without blocking once
     * nmc_port_interrupted(p): that is how nmc_port_interrupt() wakes it. */
    int (*wait)(struct nmc_port *p, int events, int timeout_ms);
    /* A caller that waits on the port's descriptor itself reports that it
     * turned readable (nmc_port_drain): the next rxsync must not trust
     * what an earlier one found.  NULL: nothing to do. */
    void (*woken)(struct nmc_port *p);
    /* A full collection of the runtime directory (nmc_rundir_gc, after the
     * regions): state of this kind kept outside regions (a switch file),
     * left by processes that died, reclaimed.  Takes only this kind's own
     * locks, tries region locks.  Returns what it removed.  NULL: none. */
    uint32_t (*rundir_gc)(const char *rundir);
    /* A close that leaves a region with no port of this kind (and no
     * other) may keep it for the next region of its shape (spare.c). */
    bool spare_regions;
    /* This kind opens the monitors (NR_MONITOR_TX, NR_MONITOR_RX,
     * NR_ZCOPY_MON) of the ports of every other kind: nmc_open_with hands
     * such requests to it, after the monitored kind's validate. */
    bool monitors;
    /* This kind's adapters have host rings (NICs): a port that binds none
     * still reports the adapter's count, at least one, in its REGISTER
     * reply (netmap's num_host_tx_rings, bound or not). */
    bool adapter_host_rings;
};

/* transport.c: the registry (kind ids 1 .. NMC_MAX_KINDS - 1). */
int nmc_transport_register(const struct nmc_transport_ops *ops);
const struct nmc_transport_ops *nmc_transport_of(uint32_t kind);
const struct nmc_transport_ops *nmc_transport_monitors(void);   /* NULL: none */

/* monitor.c: linking a monitor's RX rings to the rings it watches (region
 * lock held); the copies themselves are made by the watched ring's syncs. */
void nmc_monitor_ring_init(struct nmc_kring *mkr);
int nmc_monitor_link(struct nmc_kring *kr, uint32_t mobj, uint32_t mkgen, uint32_t flags);
void nmc_monitor_unlink(struct nmc_kring *kr, uint32_t mobj);
void nmc_monitor_retire(struct nmc_kring *mkr);

/* gc.c: a bounded collection on every open (regions nobody holds). */
void nmc_rundir_gc_some(const char *rundir, uint32_t budget);

/* Register `ops` when the engine is loaded. */
#define NMC_TRANSPORT(ops) \
    __attribute__((constructor)) static void nmc_register_##ops(void) \
    { nmc_transport_register(&ops); }

/* port.c: open a port of the kind `ops` serves (validated, resolved,
 * holder taken, attached). */
int nmc_open_with(const struct nmc_pipe_req *req, struct nmc_port **out,
                  const struct nmc_transport_ops *ops);

#endif /* NMC_TRANSPORT_H */
