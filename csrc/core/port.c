/*
 * port.c -- opening and closing ports: holders, netmap_if, extra buffers,
 * reclaiming what dead processes left behind.
 */
#include "nmc_vale.h"
#include "nmc_xsk.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static uint64_t *if_map(struct nmc_region *r) { return (uint64_t *)(r->map + r->g.if_map_ofs); }

static int holder_lock(int fd, uint32_t h)
{
    struct flock fl = {
        .l_type = F_WRLCK, .l_whence = SEEK_SET,
        .l_start = NMC_LOCK_BASE + (off_t)h, .l_len = 1,
    };

    return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}

static uint32_t ring_obj(const struct nmc_port_rec *rec, uint32_t e, uint32_t dir, uint32_t k)
{
    return nmc_rec_obj(rec, e, dir, k);
}

static uint32_t end_rings(const struct nmc_port_rec *rec, uint32_t e, uint32_t dir)
{
    return rec->nrings[e][dir];
}

static bool port_has_live_holder(struct nmc_region *r, uint32_t port, int end, int dir, uint32_t ring)
{
    struct nmc_holder *hs = nmc_holders(r);

    for (uint32_t h = 0; h < NMC_MAX_HOLDERS; h++) {
        if (hs[h].state != NMC_LIVE || hs[h].port != port)
            continue;
        if (end < 0)
            return true;
        if (hs[h].end == (uint32_t)end && hs[h].first[dir] <= ring && ring < hs[h].last[dir])
            return true;
    }
    return false;
}

static void release_holder(struct nmc_region *r, uint32_t h)
{
    struct nmc_holder *hd = &nmc_holders(r)[h];
    uint8_t *mem = r->map + r->g.ctl_size;
    struct nmc_port_rec *rec = hd->port < NMC_MAX_PORTS ? &nmc_ports(r)[hd->port] : NULL;
    struct nmc_kring *krs = nmc_krings(r->map, &r->g);

    if (hd->nifp_unit < r->g.if_units && hd->nifp_units <= r->g.if_units - hd->nifp_unit) {
        struct netmap_if *nifp = (struct netmap_if *)(mem + (uint64_t)hd->nifp_unit * NMC_IF_UNIT);
        nmc_buf_free_list(r, nifp->ni_bufs_head);
        nmc_bits_free_run(if_map(r), r->g.if_units, hd->nifp_unit, hd->nifp_units);
    }
    hd->state = NMC_FREE;
    if (!rec || rec->state != NMC_LIVE || hd->end >= rec->nends)
        return;
    for (uint32_t dir = 0; dir < 2; dir++) {
        for (uint32_t k = 0; k < end_rings(rec, hd->end, dir); k++) {
            uint32_t obj = ring_obj(rec, hd->end, dir, k);
            if (obj >= r->g.ring_num)
                continue;
            nmc_wake_disarm(&krs[obj], h);
            if (hd->first[dir] <= k && k < hd->last[dir] && krs[obj].users > 0)
                krs[obj].users--;
            nmc_wake_disarm(&krs[krs[obj].peer % r->g.ring_num], h);
            if (krs[obj].busy == h + 1) {       /* it died inside a sync */
                if (rec->kind == NMC_KIND_VALE && dir == 0 && krs[obj].rhead < krs[obj].nslots) {
                    /* what it had validated counts as sent: a frame may be
                     * lost, never forwarded twice */
                    krs[obj].hwcur = krs[obj].rhead;
                    krs[obj].hwtail = krs[obj].rtail = nmc_prev(krs[obj].rhead, krs[obj].nslots);
                }
                krs[obj].busy = 0;
            }
            if (rec->kind != NMC_KIND_PIPE)
                continue;
            if (dir == 0 && hd->first[0] <= k && k < hd->last[0] &&
                !port_has_live_holder(r, hd->port, (int)hd->end, 0, k))
                nmc_pipe_repair_tx(r, obj);
        }
    }
}

/* Reclaim dead holders, then ports nobody holds; unlink the region when it
 * is empty.  Returns 1 if the region was destroyed. */
int nmc_region_reap(const char *rundir, struct nmc_region *r)
{
    struct nmc_holder *hs = nmc_holders(r);
    struct nmc_port_rec *ports = nmc_ports(r);
    char path[256];
    bool any = false;

    for (uint32_t h = 0; h < NMC_MAX_HOLDERS; h++) {
        if (hs[h].state == NMC_LIVE && !nmc_holder_alive(r->fd, h)) {
            release_holder(r, h);
            nmc_sock_path(rundir, r->mem_id, h, path, sizeof(path));
            unlink(path);
        }
    }
    for (uint32_t i = 0; i < NMC_MAX_PORTS; i++) {
        if (ports[i].state != NMC_LIVE)
            continue;
        if (port_has_live_holder(r, i, -1, 0, 0) || ports[i].persistent)
            any = true;
        else
            nmc_port_destroy(r, rundir, &ports[i]);
    }
    if (any)
        return 0;
    nmc_region_unlink_parents(rundir, r->mem_id);
    nmc_region_path(rundir, r->mem_id, path, sizeof(path));
    unlink(path);
    return 1;
}

bool nmc_port_in_use(struct nmc_region *r, uint32_t port)
{
    return port_has_live_holder(r, port, -1, 0, 0);
}

static int count_pipes_of(struct nmc_region *r, const char *parent)
{
    struct nmc_port_rec *ports = nmc_ports(r);
    int n = 0;

    for (uint32_t i = 0; i < NMC_MAX_PORTS; i++)
        n += ports[i].state == NMC_LIVE && strncmp(ports[i].parent, parent, NMC_NAMELEN) == 0;
    return n;
}

static uint32_t env_u32(const char *name, uint32_t dflt)
{
    const char *v = getenv(name);
    char *end;
    unsigned long x;

    if (!v || !*v)
        return dflt;
    x = strtoul(v, &end, 0);
    return (*end || x > UINT32_MAX) ? dflt : (uint32_t)x;
}

/* Find (reaping stale state) or create the region of the pipe's parent. */
int nmc_get_region(const char *rundir, const struct nmc_pipe_req *req, struct nmc_region *r)
{
    int id = nmc_region_lookup_parent(rundir, req->parent);
    int err;

    if (id > 0) {
        if (nmc_region_attach(rundir, (uint16_t)id, r) == 0) {
            if (nmc_region_reap(rundir, r) == 0) {
                if (req->mem_id && req->mem_id != id) {
                    nmc_region_detach(r);
                    return -EINVAL;     /* a pipe lives in its parent's region */
                }
                return 0;
            }
            nmc_region_detach(r);
        }
        nmc_region_unlink_parents(rundir, (uint16_t)id);
    }
    if (req->mem_id) {
        if (req->mem_id < 2 || nmc_region_attach(rundir, req->mem_id, r) < 0)
            return -EINVAL;             /* unknown nr_mem_id */
        if (nmc_region_reap(rundir, r)) {
            nmc_region_detach(r);
            return -EINVAL;
        }
    } else {
        /* what this request needs, twice (room for a second port or pipe, as
         * netmap's private regions); an explicit buf_num is taken as it is */
        uint64_t ntx = nmc_bound(req->tx_rings, 1, 1, NMC_PIPE_MAXRINGS);
        uint64_t nrx = nmc_bound(req->rx_rings, 1, 1, NMC_PIPE_MAXRINGS);
        uint64_t need = 2 * (ntx * nmc_bound(req->tx_slots, NMC_DEF_SLOTS, 2, NMC_MAXSLOTS) +
                             nrx * nmc_bound(req->rx_slots, NMC_DEF_SLOTS, 2, NMC_MAXSLOTS)) +
                        req->extra_bufs + 2;
        uint32_t num = req->buf_num ? req->buf_num : env_u32("NMCOMPAT_BUF_NUM", 0);
        uint32_t size = req->buf_size ? req->buf_size : env_u32("NMCOMPAT_BUF_SIZE", NMC_DEF_BUF_SIZE);
        if (num == 0)
            num = need > NMC_DEF_BUF_NUM ? (uint32_t)(need > (1u << 24) ? 1u << 24 : need) : NMC_DEF_BUF_NUM;
        if ((err = nmc_region_create(rundir, num, size, r)) < 0)
            return err;
    }
    if ((err = nmc_region_link_parent(rundir, req->parent, r->mem_id)) < 0) {
        nmc_region_reap(rundir, r);
        nmc_region_detach(r);
        return err;
    }
    return 0;
}

static int bind_range(const struct nmc_pipe_req *req, uint32_t ntx, uint32_t nrx,
                      uint32_t first[2], uint32_t last[2])
{
    if (req->mode == NR_REG_ALL_NIC) {
        first[0] = first[1] = 0;
        last[0] = ntx;
        last[1] = nrx;
    } else if (req->mode == NR_REG_ONE_NIC) {
        if (req->ringid >= ntx && req->ringid >= nrx)
            return -EINVAL;
        first[0] = req->ringid < ntx ? req->ringid : 0;
        first[1] = req->ringid < nrx ? req->ringid : 0;
        last[0] = first[0] + 1;
        last[1] = first[1] + 1;
    } else {
        return -EINVAL;                 /* pipes take ALL_NIC or ONE_NIC only */
    }
    if (req->flags & NR_RX_RINGS_ONLY)
        last[0] = first[0];
    if (req->flags & NR_TX_RINGS_ONLY)
        last[1] = first[1];
    return 0;
}

static bool overlaps(const struct nmc_holder *o, const uint32_t first[2], const uint32_t last[2])
{
    for (int d = 0; d < 2; d++)
        if (o->first[d] < last[d] && first[d] < o->last[d])
            return true;
    return false;
}

static int check_exclusive(struct nmc_region *r, uint32_t port, uint32_t end, uint64_t flags,
                           const uint32_t first[2], const uint32_t last[2])
{
    struct nmc_holder *hs = nmc_holders(r);

    for (uint32_t h = 0; h < NMC_MAX_HOLDERS; h++) {
        if (hs[h].state != NMC_LIVE || hs[h].port != port || hs[h].end != end)
            continue;
        if (((flags | hs[h].flags) & NR_EXCLUSIVE) && overlaps(&hs[h], first, last))
            return -EBUSY;
    }
    return 0;
}

static int take_holder(struct nmc_region *r)
{
    struct nmc_holder *hs = nmc_holders(r);

    for (uint32_t h = 0; h < NMC_MAX_HOLDERS; h++)
        if (hs[h].state == NMC_FREE && holder_lock(r->fd, h) == 0)
            return (int)h;
    return -EBUSY;
}

static int make_nifp(struct nmc_region *r, struct nmc_holder *hd, const struct nmc_port_rec *rec,
                     uint32_t end, uint32_t extra, const char *name)
{
    uint8_t *mem = r->map + r->g.ctl_size;
    uint32_t ntx = end_rings(rec, end, 0), nrx = end_rings(rec, end, 1);
    uint64_t size = sizeof(struct netmap_if) + sizeof(ssize_t) * (ntx + 1 + nrx + 1);
    uint32_t units = (uint32_t)((size + NMC_IF_UNIT - 1) / NMC_IF_UNIT), head = 0;
    int64_t unit = nmc_bits_alloc_run(if_map(r), r->g.if_units, units);
    struct netmap_if *nifp;
    ssize_t *ofs;
    int err;

    if (unit < 0)
        return (int)unit;
    if (extra && (err = nmc_buf_alloc_list(r, extra, &head)) < 0) {
        nmc_bits_free_run(if_map(r), r->g.if_units, (uint32_t)unit, units);
        return err;
    }
    nifp = (struct netmap_if *)(mem + (uint64_t)unit * NMC_IF_UNIT);
    memset(nifp, 0, units * NMC_IF_UNIT);
    nmc_copy_name((char *)nifp->ni_name, sizeof(nifp->ni_name), name);
    *(uint32_t *)&nifp->ni_flags = NI_PRIV_MEM;
    *(uint32_t *)&nifp->ni_tx_rings = ntx;
    *(uint32_t *)&nifp->ni_rx_rings = nrx;
    *(uint32_t *)&nifp->ni_host_tx_rings = 1;    /* fake host rings: ring_ofs 0 */
    *(uint32_t *)&nifp->ni_host_rx_rings = 1;
    nifp->ni_bufs_head = head;
    ofs = (ssize_t *)nifp->ring_ofs;
    for (uint32_t k = hd->first[0]; k < hd->last[0]; k++)
        ofs[k] = (ssize_t)((uint8_t *)nmc_ring_obj(mem, &r->g, ring_obj(rec, end, 0, k)) - (uint8_t *)nifp);
    for (uint32_t k = hd->first[1]; k < hd->last[1]; k++)
        ofs[ntx + 1 + k] = (ssize_t)((uint8_t *)nmc_ring_obj(mem, &r->g, ring_obj(rec, end, 1, k)) - (uint8_t *)nifp);
    hd->nifp_unit = (uint32_t)unit;
    hd->nifp_units = units;
    hd->extra_bufs = extra;
    return 0;
}

static void count_users(struct nmc_region *r, const struct nmc_port_rec *rec, const struct nmc_holder *hd)
{
    struct nmc_kring *krs = nmc_krings(r->map, &r->g);

    for (uint32_t dir = 0; dir < 2; dir++)
        for (uint32_t k = hd->first[dir]; k < hd->last[dir]; k++)
            krs[ring_obj(rec, hd->end, dir, k) % r->g.ring_num].users++;
}

static void setup_lrings(struct nmc_port *p)
{
    struct nmc_kring *krs = nmc_krings(p->map, &p->g);
    bool pipe = p->rec->kind == NMC_KIND_PIPE;

    for (uint32_t dir = 0; dir < 2; dir++) {
        struct nmc_lring *lr = dir == 0 ? p->tx : p->rx;
        uint32_t first = p->holder->first[dir], cnt = dir == 0 ? p->ntx : p->nrx;
        for (uint32_t i = 0; i < cnt; i++) {
            uint32_t obj = ring_obj(p->rec, p->end, dir, first + i);
            uint32_t peer = pipe ? ring_obj(p->rec, 1 - p->end, 1 - dir, first + i) : obj;
            lr[i].obj = obj;
            lr[i].id = first + i;
            lr[i].n = p->rec->nslots[p->end][dir];
            lr[i].ring = nmc_ring_obj(p->mem, &p->g, obj);
            lr[i].peer_ring = nmc_ring_obj(p->mem, &p->g, peer);
            lr[i].kr = &krs[obj];
            lr[i].peer_kr = &krs[peer];
        }
    }
}

static int fill_port(struct nmc_port *p, struct nmc_region *r, uint32_t h, uint32_t port,
                     const struct nmc_pipe_req *req, const char *rundir)
{
    int err;

    p->region_fd = r->fd;
    p->map = r->map;
    p->map_len = r->map_len;
    p->g = r->g;
    p->mem = r->map + r->g.ctl_size;
    p->mem_id = r->mem_id;
    p->hidx = h;
    p->end = req->role;
    p->holder = &nmc_holders(r)[h];
    p->rec = &nmc_ports(r)[port];
    p->nifp = (struct netmap_if *)(p->mem + (uint64_t)p->holder->nifp_unit * NMC_IF_UNIT);
    p->ntx = p->holder->last[0] - p->holder->first[0];
    p->nrx = p->holder->last[1] - p->holder->first[1];
    p->flags = req->flags;
    p->no_timestamp = req->no_timestamp != 0;
    p->spin_us = req->spin_us >= 0 ? req->spin_us : (int)env_u32("NMCOMPAT_SPIN_US", 20);
    snprintf(p->rundir, sizeof(p->rundir), "%s", rundir);
    if (p->rec->kind == NMC_KIND_PIPE)
        snprintf(p->name, sizeof(p->name), "%s%c%s", req->parent, req->role ? '}' : '{', req->pipe_id);
    else
        snprintf(p->name, sizeof(p->name), "%s", req->parent);
    switch (p->rec->kind) {
    case NMC_KIND_PIPE:
        p->txsync_one = nmc_pipe_txsync_one;
        p->rxsync_one = nmc_pipe_rxsync_one;
        break;
    case NMC_KIND_VALE:
        p->txsync_one = nmc_vale_txsync_one;
        p->rxsync_one = nmc_vale_rxsync_one;
        break;
    case NMC_KIND_PKT:
        p->txsync_one = nmc_pkt_txsync_one;
        p->rxsync_one = nmc_pkt_rxsync_one;
        break;
    default:
        p->txsync_one = nmc_xsk_txsync_one;
        p->rxsync_one = nmc_xsk_rxsync_one;
    }
    p->tx = calloc(p->ntx + 1, sizeof(*p->tx));
    p->rx = calloc(p->nrx + 1, sizeof(*p->rx));
    if (!p->tx || !p->rx)
        return -ENOMEM;
    setup_lrings(p);
    p->attach_gen = p->rec->attach_gen;
    if (p->rec->kind == NMC_KIND_VALE && p->rec->sw[0] &&
        (err = nmc_vale_ctx_open(p, p->rec->sw, p->rec->sw_port)) < 0)
        return err;
    return nmc_wake_setup(p);
}

static int validate_req(const struct nmc_pipe_req *req)
{
    if (!req || !req->parent || !req->pipe_id || !*req->parent || !*req->pipe_id)
        return -EINVAL;
    if (strlen(req->parent) >= NMC_NAMELEN || strlen(req->pipe_id) >= NMC_NAMELEN)
        return -ENAMETOOLONG;
    if (req->role > NMC_PIPE_SLAVE || req->ringid >= NETMAP_RING_MASK)
        return -EINVAL;
    return 0;
}

static void free_port(struct nmc_port *p)
{
    nmc_xsk_detach(p, NULL);
    nmc_pkt_detach(p);
    free(p->kfd);
    nmc_vale_ctx_close(p);
    nmc_wake_teardown(p);
    free(p->tx);
    free(p->rx);
    free(p);
}

/* The existing region linked to `name`, reaped; -ENXIO if none. */
int nmc_get_region_of(const char *rundir, const char *name, struct nmc_region *r)
{
    int id = nmc_region_lookup_parent(rundir, name);

    if (id < 0 || nmc_region_attach(rundir, (uint16_t)id, r) < 0)
        return -ENXIO;
    if (nmc_region_reap(rundir, r)) {
        nmc_region_detach(r);
        return -ENXIO;
    }
    return 0;
}

typedef nmc_resolve_fn find_fn;

/* The pipe's region (its parent's) and its record, created if needed. */
static int pipe_resolve(const char *rundir, const struct nmc_pipe_req *req, struct nmc_region *r,
                        uint32_t *port)
{
    int pi, err;

    if ((err = nmc_get_region(rundir, req, r)) < 0)
        return err;
    pi = nmc_pipe_find(r, req->parent, req->pipe_id);
    if (pi >= 0) {
        *port = (uint32_t)pi;
        return 0;
    }
    return count_pipes_of(r, req->parent) >= 64 ? -ENOMEM : nmc_pipe_create(r, req, port);
}

static int open_locked(const struct nmc_pipe_req *req, const char *rundir, struct nmc_port *p,
                       find_fn resolve)
{
    struct nmc_region r = { .fd = -1 };
    uint32_t port, first[2], last[2];
    struct nmc_holder *hd;
    int h, err;

    if ((err = resolve(rundir, req, &r, &port)) < 0)
        goto fail;
    struct nmc_port_rec *rec = &nmc_ports(&r)[port];
    if ((err = bind_range(req, end_rings(rec, req->role, 0), end_rings(rec, req->role, 1), first, last)) < 0 ||
        (err = check_exclusive(&r, port, req->role, req->flags, first, last)) < 0 ||
        (err = h = take_holder(&r)) < 0)
        goto fail;
    hd = &nmc_holders(&r)[h];
    memset(hd, 0, sizeof(*hd));
    hd->port = port;
    hd->end = req->role;
    hd->mode = req->mode;
    hd->ringid = req->ringid;
    hd->flags = req->flags;
    memcpy(hd->first, first, sizeof(first));
    memcpy(hd->last, last, sizeof(last));
    hd->pid = getpid();
    if ((err = make_nifp(&r, hd, rec, req->role, req->extra_bufs, "")) < 0)
        goto fail;
    count_users(&r, rec, hd);
    hd->gen = ++r.hdr->opens;
    __atomic_store_n(&hd->state, NMC_LIVE, __ATOMIC_RELEASE);
    if ((err = fill_port(p, &r, (uint32_t)h, port, req, rundir)) < 0 ||
        (rec->kind == NMC_KIND_NIC && (err = nmc_xsk_attach(p, &r, req)) < 0) ||
        (rec->kind == NMC_KIND_PKT && (err = nmc_pkt_attach(p, req)) < 0)) {
        nmc_xsk_detach(p, &r);
        nmc_pkt_detach(p);
        release_holder(&r, (uint32_t)h);
        goto fail;
    }
    nmc_copy_name((char *)p->nifp->ni_name, sizeof(p->nifp->ni_name), p->name);
    for (uint32_t i = 0; i < p->nrx; i++)          /* senders waiting for a reader */
        nmc_wake_sleepers(p, p->rx[i].peer_kr);
    return 0;
fail:
    if (r.map) {
        nmc_region_reap(rundir, &r);
        nmc_region_detach(&r);
    }
    return err;
}

int nmc_open_with(const struct nmc_pipe_req *req, struct nmc_port **out, find_fn find)
{
    char rundir[160];
    struct nmc_port *p;
    int lock, err;

    if ((err = nmc_rundir_resolve(req->rundir, rundir, sizeof(rundir))) < 0)
        return err;
    p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->region_fd = p->sock = p->bell = p->epfd = -1;
    if ((lock = nmc_rundir_lock(rundir)) < 0) {
        free(p);
        return lock;
    }
    err = open_locked(req, rundir, p, find);
    nmc_rundir_unlock(lock);
    if (err < 0) {
        free_port(p);
        return err;
    }
    *out = p;
    return 0;
}

int nmc_pipe_open(const struct nmc_pipe_req *req, struct nmc_port **out)
{
    int err = validate_req(req);

    return err < 0 ? err : nmc_open_with(req, out, pipe_resolve);
}

int nmc_vale_open(const struct nmc_pipe_req *req, struct nmc_port **out)
{
    int err = nmc_vale_validate(req);

    return err < 0 ? err : nmc_open_with(req, out, nmc_vale_resolve);
}

int nmc_port_close(struct nmc_port *p)
{
    struct nmc_region r;
    int lock;

    if (!p)
        return -EINVAL;
    lock = nmc_rundir_lock(p->rundir);
    r = (struct nmc_region){ .fd = p->region_fd, .map = p->map, .map_len = p->map_len,
                             .g = p->g, .hdr = (struct nmc_region_hdr *)p->map, .mem_id = p->mem_id };
    nmc_wake_teardown(p);
    nmc_xsk_detach(p, lock >= 0 ? &r : NULL);
    nmc_pkt_detach(p);
    if (lock >= 0) {                    /* without the lock, reaping waits for the next open */
        release_holder(&r, p->hidx);
        nmc_region_reap(p->rundir, &r);
    }
    nmc_region_detach(&r);
    nmc_rundir_unlock(lock);
    free_port(p);
    return lock < 0 ? lock : 0;
}
