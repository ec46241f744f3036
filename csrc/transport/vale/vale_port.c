/*
 * vale_port.c -- VALE ports: creation in their own region, attachment to
 * their switch, and removal.  Control path: the port's region is locked,
 * and the switch lock is taken inside it (region, then switch).
 */
#include "nmc_vale.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* "valeX:Y": X a valid switch name, Y non-empty. */
static int split_name(const char *name, char sw[NMC_SW_NAMELEN])
{
    const char *colon = strchr(name, ':');
    size_t n;

    if (!colon || colon[1] == 0)
        return -EINVAL;
    n = (size_t)(colon - name);
    if (n >= NMC_SW_NAMELEN)
        return -ENAMETOOLONG;
    memcpy(sw, name, n);
    sw[n] = 0;
    return nmc_sw_name_ok(sw) ? 0 : -EINVAL;
}

/* $NMCOMPAT_VALE_STREAM_MIN as this process's last VALE open or adoption
 * read it (a bad value fails that with EINVAL): what its ports that bind
 * RX rings ask senders to stream, also when one is attached to a switch
 * later (follow_attachment, which then cannot fail on it). */
static uint32_t g_stream_min = NMC_VALE_STREAM_MIN;

uint32_t nmc_vale_stream_min(void)
{
    return __atomic_load_n(&g_stream_min, __ATOMIC_RELAXED);
}

static int read_stream_min(void)
{
    uint32_t v;
    int err = nmc_env_u32_checked("NMCOMPAT_VALE_STREAM_MIN", NMC_VALE_STREAM_MIN, 64, 65536, true,
                                  &v);

    if (err == 0)
        __atomic_store_n(&g_stream_min, v, __ATOMIC_RELAXED);
    return err;
}

static int vale_validate(const struct nmc_pipe_req *req)
{
    char sw[NMC_SW_NAMELEN];

    if (!req || !req->parent || strlen(req->parent) >= NMC_NAMELEN)
        return -EINVAL;
    if (req->pipe_id && *req->pipe_id)
        return -EINVAL;
    if (req->mode != NR_REG_ALL_NIC && req->mode != NR_REG_ONE_NIC)
        return -EINVAL;                 /* a VALE port has no host rings */
    if (!strchr(req->parent, ':'))
        return *req->parent ? 0 : -EINVAL;      /* a persistent port, "netmap:vi0" */
    return split_name(req->parent, sw);
}

static int find_vale(struct nmc_region *r, const char *name)
{
    struct nmc_port_rec *ports = nmc_ports(r);

    for (uint32_t i = 0; i < NMC_MAX_PORTS; i++)
        if (ports[i].state == NMC_LIVE && ports[i].kind == NMC_KIND_VALE &&
            strncmp(ports[i].parent, name, NMC_NAMELEN) == 0)
            return (int)i;
    return -ENOENT;
}

static int create_vale(struct nmc_region *r, const struct nmc_pipe_req *req, const char *sw,
                       struct nmc_port_rec **out)
{
    struct nmc_port_rec *rec = nmc_rec_alloc(r, NMC_KIND_VALE, req->parent);
    struct nmc_kring *krs = nmc_krings(r->ctl, &r->g);
    uint32_t ntx = nmc_bound(req->tx_rings, 1, 1, NMC_VALE_MAXRINGS);
    uint32_t nrx = nmc_bound(req->rx_rings, 1, 1, NMC_VALE_MAXRINGS);
    uint32_t tslots = nmc_bound(req->tx_slots, NMC_DEF_SLOTS, 2, NMC_MAXSLOTS);
    uint32_t rslots = nmc_bound(req->rx_slots, NMC_DEF_SLOTS, 2, NMC_MAXSLOTS);
    int err;

    if (!rec)
        return -ENOMEM;
    rec->nends = 1;
    nmc_copy_name(rec->sw, sizeof(rec->sw), sw);
    if ((err = nmc_rec_add_rings(r, rec, 0, 0, ntx, tslots, true)) < 0 ||
        (err = nmc_rec_add_rings(r, rec, 0, 1, nrx, rslots, true)) < 0) {
        nmc_rec_free(r, rec);
        return err;
    }
    for (uint32_t k = 0; k < nrx; k++)
        nmc_lease_init(&krs[nmc_rec_obj(rec, 0, 1, k)]);
    *out = rec;
    return 0;
}

/* Put port `name` (record recidx of region mem_id) on switch sw, created
 * if needed; a full switch is reaped once and tried again.  Returns the
 * port's index in the switch.  The caller holds the region lock. */
int nmc_sw_join(const char *rundir, const char *sw, const char *name, uint16_t mem_id,
                uint32_t recidx, const struct nmc_port_rec *rec)
{
    for (int tries = 0;; tries++) {
        struct nmc_swmap m;
        int err = nmc_sw_attach(rundir, sw, NMC_SW_LOCK | NMC_SW_CREATE, &m);
        if (err < 0)
            return err;
        if ((err = nmc_sw_add(m.sw, name, mem_id, recidx, rec)) < 0)
            nmc_sw_gc(rundir, &m);
        nmc_sw_detach(&m);
        if (err != -ENOMEM || tries)
            return err;
        nmc_sw_reap_name(rundir, sw, NMC_SW_MAXPORTS);
    }
}

/* Create VALE port req->parent in region r and put it on its switch. */
static int create_on_switch(const char *rundir, const struct nmc_pipe_req *req, struct nmc_region *r,
                            uint32_t *port)
{
    char sw[NMC_SW_NAMELEN];
    struct nmc_port_rec *rec;
    int err;

    if ((err = split_name(req->parent, sw)) < 0 || (err = create_vale(r, req, sw, &rec)) < 0)
        return err;
    if ((err = nmc_sw_join(rundir, sw, req->parent, r->mem_id, (uint32_t)(rec - nmc_ports(r)), rec)) < 0) {
        nmc_rec_free(r, rec);
        return err;
    }
    rec->sw_port = (uint32_t)err;
    rec->state = NMC_LIVE;
    *port = (uint32_t)(rec - nmc_ports(r));
    return 0;
}

/* Does switch entry q (sp, a copy) describe a live VALE port record of
 * region r, attached at q under that name?  The switch table is writable
 * by every process of the user and may be left half-written by a crash:
 * it is trusted no further than this. */
bool nmc_sw_entry_ok(struct nmc_region *r, const struct nmc_sw_port *sp, uint32_t q)
{
    char full[NMC_SW_NAMELEN + 1 + NMC_NAMELEN];
    struct nmc_port_rec *rec;

    if (sp->rec >= NMC_MAX_PORTS)
        return false;
    rec = &nmc_ports(r)[sp->rec];
    if (rec->state != NMC_LIVE || rec->kind != NMC_KIND_VALE || rec->sw_port != q || !rec->sw[0])
        return false;
    if (rec->persistent)                    /* attached as "valeX:<its name>" */
        snprintf(full, sizeof(full), "%.*s:%.*s", (int)NMC_SW_NAMELEN - 1, rec->sw,
                 (int)NMC_NAMELEN - 1, rec->parent);
    else
        nmc_copy_name(full, sizeof(full), rec->parent);
    return strncmp(full, sp->name, NMC_NAMELEN) == 0;
}

/* The port switch m has under `name`, with its region locked and reaped;
 * an entry that no longer names a live port is taken off the switch. */
static int port_on_switch(const char *rundir, struct nmc_swmap *m, const char *name,
                          struct nmc_region *r, uint32_t *port)
{
    int q = nmc_sw_find(m->sw, name);
    struct nmc_sw_port sp;
    int err;

    if (q < 0)
        return q;
    sp = m->sw->ports[q];
    if ((err = nmc_region_attach(rundir, sp.mem_id, r, NMC_LOCK_WAIT)) == -EPROTO)
        return err;
    if (err == 0) {
        if (nmc_region_reap(rundir, r) == 0 && nmc_sw_entry_ok(r, &sp, (uint32_t)q)) {
            *port = sp.rec;
            return 0;
        }
    }
    nmc_sw_remove_stale(rundir, m->name, (uint32_t)q, sp.gen);
    if (err == 0)
        nmc_region_detach(r);
    return -ENOENT;
}

/* "valeX:Y" is either a port the switch already has (ephemeral, or a
 * persistent port attached under that name), or a new ephemeral port.
 * Each open also reclaims a few ports nobody holds. */
/* req, with the buffer size of a VALE port's new region filled in: the
 * open's, else $NMCOMPAT_BUF_SIZE, else NMC_VALE_BUF_SIZE (-EINVAL: a bad
 * variable).  A region named by mem_id or @extmem keeps its own. */
int nmc_vale_region_req(const struct nmc_pipe_req *req, struct nmc_pipe_req *out)
{
    *out = *req;
    if (out->buf_size || out->mem_id || out->extmem)
        return 0;
    return nmc_env_buf_size(NMC_VALE_BUF_SIZE, &out->buf_size);
}

static int vale_find_or_create(const char *rundir, const struct nmc_pipe_req *req,
                               struct nmc_region *r, uint32_t *port)
{
    struct nmc_pipe_req vreq;
    char sw[NMC_SW_NAMELEN];
    struct nmc_swmap m;
    int i, err;

    if (!strchr(req->parent, ':')) {        /* persistent ports exist or not */
        if ((err = nmc_get_region_of(rundir, req->parent, r)) < 0)
            return err;
        if ((i = find_vale(r, req->parent)) < 0) {
            nmc_region_detach(r);
            return -ENXIO;
        }
        *port = (uint32_t)i;
        return 0;
    }
    if ((err = split_name(req->parent, sw)) < 0)
        return err;
    if (nmc_sw_attach(rundir, sw, 0, &m) == 0) {
        nmc_sw_reap(rundir, &m, NMC_SW_REAP_BUDGET);
        err = port_on_switch(rundir, &m, req->parent, r, port);
        nmc_sw_detach(&m);
        if (err == 0 || err == -EPROTO)
            return err;         /* -EPROTO: another build's region, left alone */
    }
    if ((err = nmc_vale_region_req(req, &vreq)) < 0 || (err = nmc_get_region(rundir, &vreq, r)) < 0)
        return err;
    if ((i = find_vale(r, req->parent)) >= 0) {
        *port = (uint32_t)i;
        return 0;
    }
    return create_on_switch(rundir, req, r, port);
}

/* The port, in the region asked for (@share's mem_id, @extmem's file) if
 * the open asked for one: an existing port elsewhere is -EINVAL. */
static int vale_resolve(const char *rundir, const struct nmc_pipe_req *req, struct nmc_region *r,
                        uint32_t *port)
{
    int err = vale_find_or_create(rundir, req, r, port);

    return err < 0 ? err : nmc_region_wanted(rundir, req, r);
}

/* A port nobody holds is about to be freed: take it off its switch. */
static void vale_destroy(struct nmc_region *r, const char *rundir, struct nmc_port_rec *rec)
{
    struct nmc_kring *krs = nmc_krings(r->ctl, &r->g);
    uint8_t *mem = r->mem;
    struct nmc_swmap m = { 0 };

    if (nmc_sw_attach(rundir, rec->sw, NMC_SW_LOCK, &m) == 0) {
        uint32_t i = rec->sw_port % NMC_SW_MAXPORTS;
        struct nmc_sw_port *sp = &m.sw->ports[i];
        if (sp->state == NMC_LIVE && sp->mem_id == r->mem_id &&
            sp->rec == (uint32_t)(rec - nmc_ports(r)))
            nmc_sw_remove(m.sw, i);
        nmc_sw_gc(rundir, &m);
        nmc_sw_detach(&m);
    }
    for (uint32_t k = 0; k < rec->nrings[0][1] && k < NMC_VALE_MAXRINGS; k++) {
        uint32_t obj = nmc_rec_obj(rec, 0, 1, k);
        if (obj < r->g.ring_num &&      /* senders that mapped it are out before its buffers go */
            !nmc_lease_quiesce(&krs[obj], nmc_ring_obj(mem, &r->g, obj), rundir))
            r->keep_spare = false;      /* one is not: its late copy must not reach a next port */
    }
}

/* NEWIF: a persistent port, on no switch until attached. */
int nmc_vale_create_persistent(struct nmc_region *r, const struct nmc_pipe_req *req)
{
    struct nmc_port_rec *rec;
    int err = create_vale(r, req, "", &rec);

    if (err < 0)
        return err;
    rec->persistent = 1;
    rec->state = NMC_LIVE;
    return 0;
}

/* On a switch: map it (the port follows later attach/detach itself). */
static int vale_attach(struct nmc_port *p, struct nmc_region *r, const struct nmc_pipe_req *req)
{
    (void)r;
    (void)req;
    if (read_stream_min() < 0)
        return -EINVAL;                 /* on an open, and on an adoption after exec */
    return p->rec->sw[0] ? nmc_vale_ctx_open(p, p->rec->sw, p->rec->sw_port) : 0;
}

static void vale_detach(struct nmc_port *p, struct nmc_region *r)
{
    (void)r;
    nmc_vale_ctx_close(p);
}

/* A sender that died inside its txsync: what it had validated counts as
 * sent (a frame may be lost, never forwarded twice). */
static void vale_ring_repair(uint8_t *ctl, uint8_t *mem, const struct nmc_geom *g, uint32_t obj,
                             uint32_t dir, unsigned why)
{
    struct nmc_kring *kr = &nmc_krings(ctl, g)[obj];

    (void)mem;

    if (dir == 0 && (why & NMC_REPAIR_DIED_INSIDE) && kr->rhead < kr->nslots) {
        kr->hwcur = kr->rhead;
        kr->hwtail = kr->rtail = nmc_prev(kr->rhead, kr->nslots);
    }
}

static const struct nmc_transport_ops vale_ops = {
    .name = "vale",
    .kind = NMC_KIND_VALE,
    .validate = vale_validate,
    .resolve = vale_resolve,
    .attach = vale_attach,
    .detach = vale_detach,
    .txsync_one = nmc_vale_txsync_one,
    .rxsync_one = nmc_vale_rxsync_one,
    .ring_repair = vale_ring_repair,
    .destroy = vale_destroy,
    .stats = nmc_vale_counters,
    .rundir_gc = nmc_vale_rundir_gc,
    .spare_regions = true,
};
NMC_TRANSPORT(vale_ops)

int nmc_vale_open(const struct nmc_pipe_req *req, struct nmc_port **out)
{
    return nmc_open_with(req, out, &vale_ops);
}

int nmc_port_vhdr_len(const struct nmc_port *p)
{
    const struct nmc_vale_ctx *c;

    if (!p || p->ops != &vale_ops || (c = nmc_vale_of(p)) == NULL)
        return 0;                       /* not a VALE port, or on no switch */
    return (int)nmc_vhdr_len(&c->m.sw->ports[c->me]);
}
