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
#include "nmc_transport.h"
#include "nmc_kinds.h"

#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>

static int pipe_find(struct nmc_region *r, const char *parent, const char *id)
{
    struct nmc_port_rec *ports = nmc_ports(r);

    for (uint32_t i = 0; i < NMC_MAX_PORTS; i++) {
        if (ports[i].state == NMC_LIVE && ports[i].kind == NMC_KIND_PIPE &&
            strncmp(ports[i].parent, parent, NMC_NAMELEN) == 0 &&
            strncmp(ports[i].pipe_id, id, NMC_NAMELEN) == 0)
            return (int)i;
    }
    return -ENOENT;
}

/* The RX rings of end 1-e start with the buffers of the TX rings of end e,
 * slot for slot, and each pair of krings points at the other. */
static void cross(struct nmc_region *r, struct nmc_port_rec *rec, uint32_t e)
{
    uint8_t *mem = r->mem;
    struct nmc_kring *kr = nmc_krings(r->ctl, &r->g);

    for (uint32_t k = 0; k < rec->nrings[e][0]; k++) {
        uint32_t tobj = nmc_rec_obj(rec, e, 0, k), robj = nmc_rec_obj(rec, 1 - e, 1, k);
        struct netmap_ring *tx = nmc_ring_obj(mem, &r->g, tobj);
        struct netmap_ring *rx = nmc_ring_obj(mem, &r->g, robj);
        for (uint32_t i = 0; i < rec->nslots[e][0]; i++)
            rx->slot[i] = tx->slot[i];
        kr[tobj].peer = robj;
        kr[robj].peer = tobj;
    }
}

static int pipe_create(struct nmc_region *r, const struct nmc_pipe_req *req, uint32_t *port)
{
    uint32_t n[2], slots[2], m = req->role, s = 1 - req->role;
    struct nmc_port_rec *rec = nmc_rec_alloc(r, NMC_KIND_PIPE, req->parent);
    int err;

    if (!rec)
        return -ENOMEM;
    nmc_copy_name(rec->pipe_id, NMC_NAMELEN, req->pipe_id);
    rec->nends = 2;
    n[0] = nmc_bound(req->tx_rings, 1, 1, NMC_PIPE_MAXRINGS);       /* as the opener sees them */
    n[1] = nmc_bound(req->rx_rings, 1, 1, NMC_PIPE_MAXRINGS);
    slots[0] = nmc_bound(req->tx_slots, NMC_DEF_SLOTS, 2, NMC_MAXSLOTS);
    slots[1] = nmc_bound(req->rx_slots, NMC_DEF_SLOTS, 2, NMC_MAXSLOTS);
    if ((err = nmc_rec_add_rings(r, rec, m, 0, n[0], slots[0], true)) < 0 ||
        (err = nmc_rec_add_rings(r, rec, s, 1, n[0], slots[0], false)) < 0 ||
        (err = nmc_rec_add_rings(r, rec, s, 0, n[1], slots[1], true)) < 0 ||
        (err = nmc_rec_add_rings(r, rec, m, 1, n[1], slots[1], false)) < 0) {
        nmc_rec_free(r, rec);
        return err;
    }
    cross(r, rec, m);
    cross(r, rec, s);
    rec->state = NMC_LIVE;
    *port = (uint32_t)(rec - nmc_ports(r));
    return 0;
}

/* Which side of a crossed pair owns each slot position.  The RX ring owns
 * [from, to): what the writer published (the RX ring's pipe_tail, stored by
 * txsync at packet boundaries) and the reader has not yet released (the TX
 * ring's pipe_tail, stored by rxsync as prev(its hwcur) after handing
 * swapped buffers back).  The TX ring owns every other position, including
 * slots copied but not yet published.  In the other ring the slot is a stale
 * mirror and owns nothing.  Both indexes are read with acquire, before the
 * slots, so the slots read after them are the ones they published. */
static void pipe_rx_span(const uint8_t *ctl, const struct nmc_geom *g, uint32_t tx_obj,
                         uint32_t rx_obj, uint32_t n, uint32_t *from, uint32_t *to)
{
    const struct nmc_kring *krs = nmc_krings(ctl, g);
    uint32_t rel = nmc_load_acq(&krs[tx_obj].pipe_tail), pub = nmc_load_acq(&krs[rx_obj].pipe_tail);

    if (n == 0 || rel >= n || pub >= n) {
        *from = *to = 0;
        return;
    }
    *from = nmc_next(rel, n);
    *to = pub;
}

/* A TX ring lost its last holder: drop a chain the dead writer left half
 * published (slots copied after the peer's pipe_tail), and trim the user
 * head back to the last complete packet, so that the next writer never
 * glues its first packet onto someone else's fragments. */
static void repair_tx(uint8_t *ctl, uint8_t *mem, const struct nmc_geom *g, uint32_t obj)
{
    struct nmc_kring *kr = &nmc_krings(ctl, g)[obj];
    struct netmap_ring *ring = nmc_ring_obj(mem, g, obj);
    uint32_t n = kr->nslots, pub, head, keep;

    if (n < 2 || n > NMC_MAXSLOTS || kr->peer >= g->ring_num)
        return;
    pub = nmc_krings(ctl, g)[kr->peer].pipe_tail;
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
}

/* What a sync that died half-way leaves needs no repair (the next one
 * copies [hwcur, head) again); a TX ring left without a holder does. */
static void pipe_ring_repair(uint8_t *ctl, uint8_t *mem, const struct nmc_geom *g, uint32_t obj,
                             uint32_t dir, unsigned why)
{
    if (dir == 0 && (why & NMC_REPAIR_LAST_HOLDER))
        repair_tx(ctl, mem, g, obj);
}

/* A slot as two 64-bit words, each read once (the first holds buf_idx,
 * len and flags): one compare tells whether a slot differs, and the copy
 * writes the peer slot only then, so that an unchanged cache line stays
 * shared instead of bouncing to this core on every packet. */
typedef uint64_t nmc_slot_word __attribute__((may_alias));
union slot_head {
    uint64_t w;
    struct { uint32_t idx; uint16_t len, flags; } f;
};

static inline uint64_t slot_word(const struct netmap_slot *s, unsigned i)
{
    return __atomic_load_n((const nmc_slot_word *)s + i, __ATOMIC_RELAXED);
}

static inline void copy_slot(struct netmap_slot *d, uint64_t w0, uint64_t w1)
{
    nmc_slot_word *dw = (nmc_slot_word *)d;

    if (dw[0] != w0 || dw[1] != w1) {
        dw[0] = w0;
        dw[1] = w1;
    }
}

/* The slot at the same position of the crossed ring, peer_ofs bytes from
 * this one: the position is scaled to an address once per slot, not once
 * for each ring. */
static inline struct netmap_slot *peer_slot(struct netmap_slot *s, ptrdiff_t peer_ofs)
{
    return (struct netmap_slot *)((uint8_t *)s + peer_ofs);
}

/* What a txsync copied: bytes, packets, and the slots up to the end of
 * the last complete packet (0: none ended). */
struct tx_tally {
    uint32_t nbytes, npkts, pkt_end;
    bool bad;
};

/* Copy cnt contiguous user slots (no wrap inside) to the peer ring, each
 * checked first; stops at a bad one.  Returns the slots copied. */
static inline uint32_t tx_copy_run(struct netmap_slot *ts, uint32_t cnt, ptrdiff_t peer_ofs,
                                   uint32_t nbufs, uint32_t buf_size, struct tx_tally *t)
{
    uint32_t i, nbytes = 0, npkts = 0, pkt_end = 0;

    for (i = 0; i < cnt; i++) {
        union slot_head h = { .w = slot_word(&ts[i], 0) };
        uint16_t len = h.f.len, flags = h.f.flags;
        if (h.f.idx - 2 >= nbufs || len > buf_size) {       /* idx < 2 wraps */
            t->bad = true;
            break;
        }
        copy_slot(peer_slot(&ts[i], peer_ofs), h.w, slot_word(&ts[i], 1));
        if (flags & NS_BUF_CHANGED)
            ts[i].flags = flags & ~NS_BUF_CHANGED;
        nbytes += len;
        if (!(flags & NS_MOREFRAG)) {
            pkt_end = i + 1;
            npkts++;
        }
    }
    t->nbytes += nbytes;
    t->npkts += npkts;
    t->pkt_end = pkt_end;
    return i;
}

/* Does this txsync fetch the receiver's releases (the TX ring's
 * pipe_tail) into its tail?  The receiver writes that index at every
 * rxsync; read at every txsync, its line would cross between the two
 * cores once per sync each way.  So, as netmap's NIC drivers reclaim
 * completed slots in poll() only when they run short, a txsync that queued
 * slots keeps the tail it saw last while at least n / 2 (rounded down)
 * slots are free by that tail and the user's cur is not at it.  A txsync
 * that queued nothing (a program waiting for its ring to drain), one whose
 * cur is at the tail (netmap's "wake me when there is more room": by the
 * tail kept, poll(POLLOUT) would find no room), and every txsync of a ring
 * that has monitors (they get completions at the sync that reports them)
 * fetch it.  The tail kept is only the one this process fetched last
 * (last_hwtail, in its own memory): a hwtail someone else wrote in the
 * shared kring, a stray write or another process's sync of the same ring,
 * is fetched over, as every txsync did before.  The tail never runs ahead
 * of the receiver: it only lags, by less than half the ring. */
static inline bool tail_wanted(const struct nmc_lring *lr, bool queued)
{
    uint32_t n = lr->n, seen = lr->kr->hwtail;

    if (!queued || seen >= n || seen + 1 != lr->last_hwtail || lr->kr->rcur == seen ||
        __atomic_load_n(&lr->kr->nmon, __ATOMIC_RELAXED))
        return true;
    return nmc_dist(lr->kr->hwcur, seen, n) < n / 2;
}

static int pipe_txsync_one(struct nmc_port *p, struct nmc_lring *lr)
{
    struct netmap_ring *tx = lr->ring, *rx = lr->peer_ring;
    struct nmc_kring *kr = lr->kr, *pk = lr->peer_kr;
    uint32_t n = lr->n, head, j, pub = 0, buf_size = p->g.buf_size;
    uint32_t nbufs = p->g.buf_num > 2 ? p->g.buf_num - 2 : 0;    /* valid: [2, buf_num) */
    ptrdiff_t peer_ofs = (uint8_t *)rx - (uint8_t *)tx;
    struct tx_tally t = { 0 };
    bool queued;

    if (nmc_txsync_prologue(lr, &head) < 0) {
        nmc_ring_reinit(lr, &p->g);
        return -EINVAL;
    }
    j = kr->hwcur;
    queued = j != head;
    if (queued) {                       /* [j, head) as at most two runs, the first up to the end */
        bool wraps = head < j;
        uint32_t start = j, done;
        done = tx_copy_run(&tx->slot[start], wraps ? n - start : head - start, peer_ofs, nbufs,
                           buf_size, &t);
        if (t.pkt_end)
            pub = start + t.pkt_end == n ? 0 : start + t.pkt_end;
        j = start + done == n ? 0 : start + done;
        if (wraps && !t.bad && head) {
            j = tx_copy_run(tx->slot, head, peer_ofs, nbufs, buf_size, &t);
            if (t.pkt_end)
                pub = t.pkt_end;
        }
    }
    if (queued) {
        kr->hwcur = j;
        nmc_ring_count(kr, t.npkts, t.nbytes);
    }
    if (t.npkts)                        /* a packet boundary was crossed */
        nmc_store_rel(&pk->pipe_tail, pub);
    if (tail_wanted(lr, queued)) {
        kr->hwtail = nmc_load_acq(&kr->pipe_tail);
        if (kr->hwtail >= n)
            kr->hwtail = nmc_prev(kr->hwcur, n);
        lr->last_hwtail = kr->hwtail + 1;
    }
    nmc_store_changed(&kr->rtail, kr->hwtail);
    nmc_store_changed(&tx->tail, kr->hwtail);
    if (t.bad) {
        if (t.npkts)
            nmc_wake_sleepers(p, pk);   /* what came before the bad slot was published */
        nmc_ring_reinit(lr, &p->g);
        return -EINVAL;
    }
    return t.npkts ? NMC_SYNC_WAKE_PEER : 0;
}

static int pipe_rxsync_one(struct nmc_port *p, struct nmc_lring *lr)
{
    struct netmap_ring *rx = lr->ring, *tx = lr->peer_ring;
    struct nmc_kring *kr = lr->kr, *pk = lr->peer_kr;
    uint32_t n = lr->n, head, end, j, tail, npkts = 0, nbytes = 0;
    ptrdiff_t peer_ofs = (uint8_t *)tx - (uint8_t *)rx;
    bool released = false;

    if (nmc_rxsync_prologue(lr, &head) < 0) {
        nmc_ring_reinit(lr, &p->g);
        return -EINVAL;
    }
    end = head;                         /* a register: head's address was taken */
    j = kr->hwcur;
    for (struct netmap_slot *rs = &rx->slot[j]; j != end; ) {
        /* each field read once, and only the ones used: the buffer index
         * only when the receiver swapped the buffer */
        uint16_t flags = nmc_user_u16(&rs->flags), len = nmc_user_u16(&rs->len);
        nbytes += len;
        npkts += !(flags & NS_MOREFRAG);
        if (flags & NS_BUF_CHANGED) {       /* the receiver swapped: hand it back */
            struct netmap_slot *ts = peer_slot(rs, peer_ofs);
            uint32_t idx = nmc_user_u32(&rs->buf_idx);
            if (idx < 2 || idx >= p->g.buf_num) {
                nmc_ring_reinit(lr, &p->g);
                return -EINVAL;
            }
            ts->buf_idx = idx;
            ts->len = len;
            ts->flags = flags;
            rs->flags = flags & ~NS_BUF_CHANGED;
        }
        rs++;
        if (++j == n) {
            j = 0;
            rs = rx->slot;
        }
    }
    if (head != kr->hwcur) {
        kr->hwcur = head;
        nmc_store_rel(&pk->pipe_tail, nmc_prev(head, n));
        nmc_ring_count(kr, npkts, nbytes);
        released = true;
    }
    tail = nmc_load_acq(&kr->pipe_tail);
    if (tail >= n)
        tail = kr->hwcur;
    nmc_store_changed(&kr->hwtail, tail);
    nmc_store_changed(&kr->rtail, tail);
    nmc_store_changed(&rx->tail, tail);
    return released ? NMC_SYNC_WAKE_PEER : 0;
}

static int count_pipes_of(struct nmc_region *r, const char *parent)
{
    struct nmc_port_rec *ports = nmc_ports(r);
    int n = 0;

    for (uint32_t i = 0; i < NMC_MAX_PORTS; i++)
        n += ports[i].state == NMC_LIVE && ports[i].kind == NMC_KIND_PIPE &&
             strncmp(ports[i].parent, parent, NMC_NAMELEN) == 0;
    return n;
}

/* The region a pipe of an interface joins when its parent has none: this
 * process's interface region, where its NIC ports live (as in netmap, a
 * pipe is in its parent's memory: zero-copy with the NIC port).  NULL for
 * other parents, and when the open asked for a region (@share, @extmem). */
static const struct nmc_pipe_req *interface_home(const struct nmc_pipe_req *req,
                                                 struct nmc_pipe_req *home, char *name, size_t len)
{
    if (req->mem_id || req->extmem || if_nametoindex(req->parent) == 0)
        return NULL;
    nmc_ifregion_name(name, len);
    *home = (struct nmc_pipe_req){ .parent = name, .buf_size = req->buf_size, .spin_us = -1,
                                   .buf_num = req->buf_num ? req->buf_num : NMC_IFREGION_BUF_NUM };
    return home;
}

/* The pipe's region (its parent's) and its record, created if needed. */
static int pipe_resolve(const char *rundir, const struct nmc_pipe_req *req, struct nmc_region *r,
                        uint32_t *port)
{
    struct nmc_pipe_req home;
    char name[32];
    int pi, err;

    if ((err = nmc_get_region_home(rundir, req, interface_home(req, &home, name, sizeof(name)), r)) < 0)
        return err;
    pi = pipe_find(r, req->parent, req->pipe_id);
    if (pi >= 0) {
        *port = (uint32_t)pi;
        return 0;
    }
    /* netmap: NM_MAXPIPES per parent, then EINVAL */
    return count_pipes_of(r, req->parent) >= NMC_MAXPIPES ? -EINVAL : pipe_create(r, req, port);
}

static int pipe_validate(const struct nmc_pipe_req *req)
{
    if (!req || !req->parent || !req->pipe_id || !*req->parent || !*req->pipe_id)
        return -EINVAL;
    if (strlen(req->parent) >= NMC_NAMELEN || strlen(req->pipe_id) >= NMC_NAMELEN)
        return -ENAMETOOLONG;
    if (req->role > NMC_PIPE_SLAVE || req->ringid >= NETMAP_RING_MASK)
        return -EINVAL;
    return 0;
}

static void pipe_name(const struct nmc_pipe_req *req, char *out, size_t len)
{
    snprintf(out, len, "%s%c%s", req->parent, req->role ? '}' : '{', req->pipe_id);
}

static const struct nmc_transport_ops pipe_ops = {
    .name = "pipe",
    .kind = NMC_KIND_PIPE,
    .validate = pipe_validate,
    .resolve = pipe_resolve,
    .port_name = pipe_name,
    .txsync_one = pipe_txsync_one,
    .rxsync_one = pipe_rxsync_one,
    .ring_repair = pipe_ring_repair,
    .rx_span = pipe_rx_span,
};
NMC_TRANSPORT(pipe_ops)

int nmc_pipe_open(const struct nmc_pipe_req *req, struct nmc_port **out)
{
    return nmc_open_with(req, out, &pipe_ops);
}
