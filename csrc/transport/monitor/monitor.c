/*
 * monitor.c -- netmap monitors as a port kind: "X/r", "X/t", "X/rt",
 * "X/z"
 * (docs/DESIGN.md, "Monitors").
 *
 * A monitor is a port of its own in the monitored port's region, with as
 * many RX rings as that port's end has rings in either direction, and one
 * TX ring (netmap's shape).  Only its RX rings are used: ring k receives
 * copies of what X's TX ring k sends (with NS_TXMON) and of what X's RX
 * ring k delivers; a zero-copy monitor ("X/z", both directions) receives
 * X's buffers themselves once X is done with them, in exchange for its own.
 * X's own syncs do this (core/monitor.c) through links the open puts in X's
 * krings; the monitor's rxsync releases slots and takes what was published.
 * Its TX ring has no buffers and never offers room.
 *
 * Monitors have no name of their own (a name with /r or /t always means a
 * monitor of the port it names), so a monitor is never monitored.
 */
#include "nmc_transport.h"
#include "nmc_kinds.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define MON_FLAGS (NR_MONITOR_TX | NR_MONITOR_RX | NR_ZCOPY_MON)

/* In netmap mode: some live holder binds a ring of that end of it. */
/* Does holder h bind a ring a monitor watches: a ring of either direction
 * below the port's host rings (a NIC's host rings are the last of nrings;
 * a port of host rings only, IF^, binds none and is not the one watched). */
static bool binds_watched_ring(const struct nmc_port_rec *p, const struct nmc_holder *h)
{
    for (int d = 0; d < 2; d++)
        if (h->first[d] < h->last[d] && h->first[d] < p->nrings[h->end][d] - p->nhost[d])
            return true;
    return false;
}

static bool target_open(struct nmc_region *r, uint32_t port, uint32_t end)
{
    struct nmc_holder *hs = nmc_holders(r);
    const struct nmc_port_rec *p = &nmc_ports(r)[port];

    for (uint32_t h = 0; h < NMC_MAX_HOLDERS; h++)
        if (hs[h].state == NMC_LIVE && hs[h].port == port && hs[h].end == end &&
            binds_watched_ring(p, &hs[h]))
            return true;
    return false;
}

/* The monitored port: an open port with the name, of a kind that moves
 * traffic (not a monitor, not a null port). */
static int find_target(struct nmc_region *r, const struct nmc_pipe_req *req)
{
    struct nmc_port_rec *ports = nmc_ports(r);
    const char *id = req->pipe_id ? req->pipe_id : "";

    for (uint32_t i = 0; i < NMC_MAX_PORTS; i++)
        if (ports[i].state == NMC_LIVE && ports[i].kind != NMC_KIND_MONITOR &&
            ports[i].kind != NMC_KIND_NULL &&
            strncmp(ports[i].parent, req->parent, NMC_NAMELEN) == 0 &&
            strncmp(ports[i].pipe_id, id, NMC_NAMELEN) == 0 && target_open(r, i, req->role))
            return (int)i;
    return -EINVAL;
}

struct search {
    const char *rundir;
    const struct nmc_pipe_req *req;
    struct nmc_region *r;
    int port;
};

static int search_region(const char *name, void *arg)
{
    struct search *s = arg;

    if (strcmp(name, s->req->parent) == 0 || nmc_get_region_of(s->rundir, name, s->r) < 0)
        return 0;
    if ((s->port = find_target(s->r, s->req)) >= 0)
        return 1;                       /* found: the region stays locked */
    nmc_region_detach(s->r);
    return 0;
}

/* The region that holds the open port, locked, and the port.  A pipe or
 * VALE port is in the region its name links; a NIC port is in its opening
 * process's region (nic.<pid>, DESIGN section 12), found among the others. */
static int find_port(const char *rundir, const struct nmc_pipe_req *req, struct nmc_region *r)
{
    struct search s = { .rundir = rundir, .req = req, .r = r, .port = -EINVAL };
    int err = nmc_get_region_of(rundir, req->parent, r);

    if (err == -EPROTO)
        return err;
    if (err == 0) {
        if ((s.port = find_target(r, req)) >= 0)
            return s.port;
        nmc_region_detach(r);
    }
    return nmc_region_each_parent(rundir, search_region, &s) == 1 ? s.port : -EINVAL;
}

/* The zero-copy link of a kring, or -1. */
static int zlink(const struct nmc_kring *kr)
{
    uint32_t n = kr->nmon < NMC_MAX_MONITORS ? kr->nmon : NMC_MAX_MONITORS;

    for (uint32_t i = 0; i < n; i++)
        if (kr->mon[i].flags & NR_ZCOPY_MON)
            return (int)i;
    return -1;
}

/* The ring a zero-copy link of kring obj leads to (obj itself if none). */
static uint32_t zfollow(struct nmc_region *r, uint32_t obj)
{
    struct nmc_kring *kr = &nmc_krings(r->ctl, &r->g)[obj];
    int i = zlink(kr);

    return i < 0 ? obj : kr->mon[i].obj % r->g.ring_num;
}

/* A new zero-copy monitor ring mobj goes at the end of the chain of
 * watched ring tobj: it monitors the last zero-copy monitor there and gets
 * the buffers once that one releases them (netmap's chain of zmons). */
static void zchain_add(struct nmc_region *r, uint32_t tobj, uint32_t mobj, uint32_t want)
{
    struct nmc_kring *krs = nmc_krings(r->ctl, &r->g);
    uint32_t end = tobj, next;

    for (uint32_t hops = 0; hops < r->g.ring_num && (next = zfollow(r, end)) != end; hops++)
        end = next;
    if (end == mobj)
        return;                         /* linked already, through the other direction */
    if (end == tobj)
        nmc_monitor_link(&krs[tobj], mobj, krs[mobj].kgen, want | NR_ZCOPY_MON);
    else
        nmc_monitor_link(&krs[end], mobj, krs[mobj].kgen,
                         NR_MONITOR_RX | NR_ZCOPY_MON | NMC_MON_CHAIN);
}

/* Zero-copy monitor ring mobj leaves the chain of tobj: the ring before it
 * now links the one after it, or nothing. */
static void zchain_remove(struct nmc_region *r, uint32_t tobj, uint32_t mobj)
{
    struct nmc_kring *krs = nmc_krings(r->ctl, &r->g);
    uint32_t prev = tobj;
    int i, j;

    for (uint32_t hops = 0; hops < r->g.ring_num && (i = zlink(&krs[prev])) >= 0; hops++) {
        if (krs[prev].mon[i].obj % r->g.ring_num != mobj) {
            prev = krs[prev].mon[i].obj % r->g.ring_num;
            continue;
        }
        if ((j = zlink(&krs[mobj])) < 0) {
            nmc_monitor_unlink(&krs[prev], mobj);
            return;
        }
        __atomic_store_n(&krs[prev].mon[i].kgen, krs[mobj].mon[j].kgen, __ATOMIC_RELAXED);
        __atomic_store_n(&krs[prev].mon[i].obj, krs[mobj].mon[j].obj, __ATOMIC_RELEASE);
        return;
    }
}

/* Link (or unlink) the monitor's RX rings [kfirst, klast) to the rings
 * they watch. */
static void for_each_link(struct nmc_region *r, const struct nmc_port_rec *mon, bool link,
                          uint32_t kfirst, uint32_t klast)
{
    struct nmc_kring *krs = nmc_krings(r->ctl, &r->g);
    const struct nmc_port_rec *t = &nmc_ports(r)[mon->mon_port % NMC_MAX_PORTS];
    uint32_t e = mon->mon_end, nmrx = mon->nrings[e][1];
    bool z = mon->mon_flags & NR_ZCOPY_MON;

    if (t->state != NMC_LIVE || t->gen != mon->mon_gen)
        return;                         /* the monitored port is gone: its rings with it */
    for (uint32_t d = 0; d < 2; d++) {
        uint32_t want = d == 0 ? NR_MONITOR_TX : NR_MONITOR_RX;
        if (!(mon->mon_flags & want))
            continue;
        for (uint32_t k = kfirst; k < t->nrings[e][d] && k < nmrx && k < klast; k++) {
            uint32_t tobj = nmc_rec_obj(t, e, d, k) % r->g.ring_num;
            uint32_t mobj = nmc_rec_obj(mon, e, 1, k) % r->g.ring_num;
            if (link && z)
                zchain_add(r, tobj, mobj, want);
            else if (link)
                nmc_monitor_link(&krs[tobj], mobj, krs[mobj].kgen, want);
            else if (z)
                zchain_remove(r, tobj, mobj);
            else
                nmc_monitor_unlink(&krs[tobj], mobj);
        }
    }
}

/* Does a ring take one more monitor: fewer than NMC_MAX_MONITORS links,
 * and a zero-copy monitor always once one is there (it joins the chain,
 * no new link on the ring). */
static bool ring_takes(const struct nmc_kring *kr, bool zcopy)
{
    return kr->nmon < NMC_MAX_MONITORS || (zcopy && zlink(kr) >= 0);
}

static bool links_free(struct nmc_region *r, const struct nmc_port_rec *t, uint32_t e,
                       uint32_t flags)
{
    struct nmc_kring *krs = nmc_krings(r->ctl, &r->g);

    for (uint32_t d = 0; d < 2; d++)
        for (uint32_t k = 0; (flags & (d ? NR_MONITOR_RX : NR_MONITOR_TX)) && k < t->nrings[e][d]; k++)
            if (!ring_takes(&krs[nmc_rec_obj(t, e, d, k) % r->g.ring_num], flags & NR_ZCOPY_MON))
                return false;
    return true;
}

/* netmap: a zero-copy monitor watches both directions. */
static uint32_t watched(uint64_t flags)
{
    return (uint32_t)(flags & MON_FLAGS) | (flags & NR_ZCOPY_MON ? NR_MONITOR_TX | NR_MONITOR_RX : 0);
}

static int mon_create(struct nmc_region *r, const struct nmc_pipe_req *req, uint32_t tport,
                      uint32_t *port)
{
    struct nmc_port_rec *t = &nmc_ports(r)[tport], *rec;
    struct nmc_kring *krs = nmc_krings(r->ctl, &r->g);
    uint32_t e = req->role, n, slots, tx;
    int err;

    n = t->nrings[e][0] > t->nrings[e][1] ? t->nrings[e][0] : t->nrings[e][1];
    slots = t->nslots[e][0] > t->nslots[e][1] ? t->nslots[e][0] : t->nslots[e][1];
    slots = nmc_bound(req->rx_slots, slots, 2, NMC_MAXSLOTS);     /* netmap: asked, else the port's */
    if (!(rec = nmc_rec_alloc(r, NMC_KIND_MONITOR, req->parent)))
        return -ENOMEM;
    nmc_copy_name(rec->pipe_id, NMC_NAMELEN, t->pipe_id);
    rec->nends = e + 1;
    rec->mon_port = tport;
    rec->mon_end = e;
    rec->mon_flags = watched(req->flags);
    rec->mon_gen = t->gen;
    if ((err = nmc_rec_add_rings(r, rec, e, 1, n, slots, true)) < 0 ||
        (err = nmc_rec_add_rings(r, rec, e, 0, 1, nmc_bound(req->tx_slots, slots, 2, NMC_MAXSLOTS),
                                 false)) < 0) {
        nmc_rec_free(r, rec);
        return err;
    }
    tx = nmc_rec_obj(rec, e, 0, 0);
    krs[tx].hwtail = krs[tx].rtail = krs[tx].pipe_tail = 0;        /* never any room */
    nmc_ring_obj(r->mem, &r->g, tx)->tail = 0;
    for (uint32_t k = 0; k < n; k++)
        nmc_monitor_ring_init(&krs[nmc_rec_obj(rec, e, 1, k)]);
    rec->state = NMC_LIVE;
    if (req->mode == NR_REG_ONE_NIC)    /* netmap: only the rings the monitor binds */
        for_each_link(r, rec, true, req->ringid, req->ringid + 1);
    else
        for_each_link(r, rec, true, 0, n);
    *port = (uint32_t)(rec - nmc_ports(r));
    return 0;
}

/* The monitored port's region, and a new monitor record in it: EINVAL
 * when no such port is open (netmap: the port must be in netmap mode). */
static int mon_resolve(const char *rundir, const struct nmc_pipe_req *req, struct nmc_region *r,
                       uint32_t *port)
{
    int t;

    if ((t = find_port(rundir, req, r)) < 0)
        return t;
    if (req->mem_id && req->mem_id != r->mem_id) {
        nmc_region_detach(r);
        return -EINVAL;                 /* it is in the region of the port it watches */
    }
    if (!links_free(r, &nmc_ports(r)[t], req->role, watched(req->flags)))
        return -EBUSY;                  /* no more monitors of that kind on one of its rings */
    return mon_create(r, req, (uint32_t)t, port);
}

/* A monitor that would watch nothing, refused (EINVAL, netmap's errno for
 * a bad binding): with NR_TX_RINGS_ONLY it binds none of its RX rings, the
 * only ones a monitor fills (netmap links a monitored ring to a monitor RX
 * ring the monitor binds).  NR_RX_RINGS_ONLY binds all of them: the
 * directions watched are the monitor flags', as in netmap, where the
 * rings-only flags choose the monitor's own rings, not the watched ones. */
static bool watches_nothing(const struct nmc_pipe_req *req)
{
    return req->flags & NR_TX_RINGS_ONLY;
}

static int mon_validate(const struct nmc_pipe_req *req)
{
    if (!req || !req->parent || !*req->parent || req->role > NMC_PIPE_SLAVE)
        return -EINVAL;
    if (strlen(req->parent) >= NMC_NAMELEN || (req->pipe_id && strlen(req->pipe_id) >= NMC_NAMELEN))
        return -ENAMETOOLONG;
    if (req->extmem)
        return -EOPNOTSUPP;             /* a monitor lives in the region of the port it watches */
    return watched(req->flags) && !watches_nothing(req) ? 0 : -EINVAL;
}

static void mon_name(const struct nmc_pipe_req *req, char *out, size_t len)
{
    const char *id = req->pipe_id && *req->pipe_id ? req->pipe_id : NULL;

    uint32_t f = watched(req->flags);

    snprintf(out, len, "%s%s%s/%s%s%s", req->parent, id ? (req->role ? "}" : "{") : "",
             id ? id : "", f & NR_ZCOPY_MON ? "z" : "", f & NR_MONITOR_RX ? "r" : "",
             f & NR_MONITOR_TX ? "t" : "");
}

/* TX rings: never any room, nothing to send. */
static int mon_txsync_one(struct nmc_port *p, struct nmc_lring *lr)
{
    uint32_t head;

    if (nmc_txsync_prologue(lr, &head) < 0) {
        nmc_ring_reinit(lr, &p->g);
        return -EINVAL;
    }
    return 0;
}

/* RX rings: release [hwcur, head) to the writers, take what they published. */
static int mon_rxsync_one(struct nmc_port *p, struct nmc_lring *lr)
{
    struct nmc_kring *kr = lr->kr;
    uint32_t n = lr->n, head, tail;

    if (nmc_rxsync_prologue(lr, &head) < 0) {
        nmc_ring_reinit(lr, &p->g);
        return -EINVAL;
    }
    if (head != kr->hwcur) {
        nmc_ring_count(kr, nmc_dist(kr->hwcur, head, n), 0);
        nmc_store_rel(&kr->hwcur, head);
    }
    tail = nmc_load_acq(&kr->pipe_tail);
    if (tail >= n)
        tail = kr->hwcur;
    kr->hwtail = kr->rtail = tail;
    lr->ring->tail = tail;
    return 0;
}

/* Unlink from the monitored rings, and make writers that read a link
 * earlier copy nothing more (lock held). */
static void mon_destroy(struct nmc_region *r, const char *rundir, struct nmc_port_rec *rec)
{
    struct nmc_kring *krs = nmc_krings(r->ctl, &r->g);
    uint32_t e = rec->mon_end % 2;

    (void)rundir;
    for_each_link(r, rec, false, 0, rec->nrings[e][1]);
    for (uint32_t k = 0; k < rec->nrings[e][1]; k++) {
        struct nmc_kring *mkr = &krs[nmc_rec_obj(rec, e, 1, k) % r->g.ring_num];
        __atomic_store_n(&mkr->nmon, 0, __ATOMIC_RELEASE);     /* its link to the next /z */
        nmc_monitor_retire(mkr);
    }
}

/* A monitor as it was opened, with its ni_name: "x}1/r", "vale0:a/zrt"
 * (its record has the rings of one end, that of the port it watches). */
static void mon_status(const struct nmc_port_rec *rec, struct nmc_port_status *out)
{
    uint32_t e = rec->mon_end ? 1 : 0, f = rec->mon_flags;
    char parent[NMC_NAMELEN], id[NMC_NAMELEN], text[2 * NMC_NAMELEN + 8];

    nmc_copy_name(parent, sizeof(parent), rec->parent);
    nmc_copy_name(id, sizeof(id), rec->pipe_id);
    snprintf(text, sizeof(text), "%s%s%s/%s%s%s", parent, id[0] ? (e ? "}" : "{") : "", id,
             f & NR_ZCOPY_MON ? "z" : "", f & NR_MONITOR_RX ? "r" : "", f & NR_MONITOR_TX ? "t" : "");
    nmc_copy_name(out->name, sizeof(out->name), text);
    memset(out->pipe_id, 0, sizeof(out->pipe_id));      /* the name says the end */
    out->tx_rings = rec->nrings[e][0];
    out->rx_rings = rec->nrings[e][1];
    out->tx_slots = rec->nslots[e][0];
    out->rx_slots = rec->nslots[e][1];
}

static const struct nmc_transport_ops monitor_ops = {
    .name = "monitor",
    .kind = NMC_KIND_MONITOR,
    .validate = mon_validate,
    .resolve = mon_resolve,
    .port_name = mon_name,
    .txsync_one = mon_txsync_one,
    .rxsync_one = mon_rxsync_one,
    .destroy = mon_destroy,
    .status = mon_status,
    .monitors = true,
};
NMC_TRANSPORT(monitor_ops)

int nmc_monitor_open(const struct nmc_pipe_req *req, struct nmc_port **out)
{
    return nmc_open_with(req, out, &monitor_ops);
}
