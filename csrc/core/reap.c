/*
 * reap.c -- finding a port's region, and reclaiming what dead holders
 * left behind: one owner for every buffer (bufcheck.c), their netmap_if
 * and extra buffers, their rings (repaired through the port kind's
 * ring_repair), then ports nobody holds, then regions with no port.
 * Control path, under the region lock (docs/DESIGN.md section 3); only
 * giving a name a region takes the name lock.
 */
#include "nmc_transport.h"

#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static uint64_t *if_map(struct nmc_region *r) { return (uint64_t *)(r->ctl + r->g.if_map_ofs); }


int nmc_env_u32_checked(const char *name, uint32_t dflt, uint32_t lo, uint32_t hi, bool zero_ok,
                        uint32_t *out)
{
    const char *v = getenv(name);
    char *end;
    unsigned long x;

    *out = dflt;
    if (!v || !*v)
        return 0;
    if (*v < '0' || *v > '9')
        return -EINVAL;                 /* no sign, no space: strtoul would take them */
    errno = 0;
    x = strtoul(v, &end, 0);
    if (errno || *end || (x == 0 ? !zero_ok : x < lo || x > hi))
        return -EINVAL;
    *out = (uint32_t)x;
    return 0;
}

/* $NMCOMPAT_BUF_NUM (0: sized for the request) and $NMCOMPAT_BUF_SIZE, for a
 * region created without an explicit value: -EINVAL when set but not a
 * number in range (nmcompat/config.py checks the same, naming them). */
int nmc_env_buf_num(uint32_t *num)
{
    return nmc_env_u32_checked("NMCOMPAT_BUF_NUM", 0, 64, 1u << 24, true, num);
}

int nmc_env_buf_size(uint32_t dflt, uint32_t *size)
{
    int err = nmc_env_u32_checked("NMCOMPAT_BUF_SIZE", dflt, 64, 65536, false, size);

    return err < 0 || *size % 64 ? -EINVAL : 0;
}

/* Does a live holder bind port `port` (end < 0: any), or ring `ring` of
 * direction `dir` of end `end`? */
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

bool nmc_port_in_use(struct nmc_region *r, uint32_t port)
{
    return port_has_live_holder(r, port, -1, 0, 0);
}

/* Holder h is gone: its rings lose a user and its sleeper bits; a ring it
 * left owned, or left without any holder, is repaired by its kind. */
static void release_rings(struct nmc_region *r, const struct nmc_holder *hd, uint32_t h,
                          struct nmc_port_rec *rec)
{
    const struct nmc_transport_ops *ops = nmc_transport_of(rec->kind);
    struct nmc_kring *krs = nmc_krings(r->ctl, &r->g);

    for (uint32_t dir = 0; dir < 2; dir++) {
        for (uint32_t k = 0; k < rec->nrings[hd->end][dir]; k++) {
            uint32_t obj = nmc_rec_obj(rec, hd->end, dir, k);
            unsigned why = 0;
            if (obj >= r->g.ring_num)
                continue;
            nmc_wake_disarm(&krs[obj], h);
            nmc_wake_disarm(&krs[krs[obj].peer % r->g.ring_num], h);
            if (hd->first[dir] > k || k >= hd->last[dir])
                continue;
            if (krs[obj].users > 0)
                krs[obj].users--;
            if (nmc_ring_owned_by(&krs[obj], h))
                why |= NMC_REPAIR_DIED_INSIDE;
            if (!port_has_live_holder(r, hd->port, (int)hd->end, (int)dir, k))
                why |= NMC_REPAIR_LAST_HOLDER;
            if (why && ops && ops->ring_repair)
                ops->ring_repair(r->ctl, r->mem, &r->g, obj, dir, why);
            nmc_ring_clear_dead(&krs[obj], h);  /* inside, or holding a bias outside */
        }
    }
}

void nmc_holder_release(struct nmc_region *r, uint32_t h)
{
    struct nmc_holder *hd = &nmc_holders(r)[h];
    uint8_t *mem = r->mem;
    struct nmc_port_rec *rec = hd->port < NMC_MAX_PORTS ? &nmc_ports(r)[hd->port] : NULL;

    if (hd->nifp_unit < r->g.if_units && hd->nifp_units <= r->g.if_units - hd->nifp_unit) {
        struct netmap_if *nifp = (struct netmap_if *)(mem + (uint64_t)hd->nifp_unit * NMC_IF_UNIT);
        nmc_buf_free_list(r, nifp->ni_bufs_head);
        nmc_bits_free_run(if_map(r), r->g.if_units, hd->nifp_unit, hd->nifp_units);
    }
    hd->state = NMC_FREE;
    if (rec && rec->state == NMC_LIVE && hd->end < rec->nends && hd->end < 2)
        release_rings(r, hd, h, rec);
}

/* A port nobody holds: its kind's destructor, then the record.  A region
 * of a port whose kind keeps no spares is not kept as one. */
static void port_destroy(struct nmc_region *r, const char *rundir, struct nmc_port_rec *rec)
{
    const struct nmc_transport_ops *ops = nmc_transport_of(rec->kind);

    if (ops && ops->destroy)
        ops->destroy(r, rundir, rec);
    if (!ops || !ops->spare_regions)
        r->keep_spare = false;
    nmc_rec_free(r, rec);
}

bool nmc_region_has_ports(struct nmc_region *r)
{
    struct nmc_port_rec *ports = nmc_ports(r);

    for (uint32_t i = 0; i < NMC_MAX_PORTS; i++)
        if (ports[i].state == NMC_LIVE)
            return true;
    return false;
}

/* Is the process `pid` gone?  Asked once per pid and memo (the first
 * NMC_PID_MEMO pids are remembered). */
bool nmc_pid_gone(struct nmc_pid_memo *m, int32_t pid)
{
    bool gone;

    for (uint32_t i = 0; i < m->n; i++)
        if (m->pid[i] == pid)
            return m->gone[i];
    gone = pid <= 0 || (kill(pid, 0) < 0 && errno == ESRCH);
    if (m->n < NMC_PID_MEMO) {
        m->pid[m->n] = pid;
        m->gone[m->n++] = gone;
    }
    return gone;
}

/* Mark the dead holders in `dead`; true if any.  A holder's lock byte
 * says for sure, but each F_OFD_GETLK walks the file's whole lock list, so
 * asking every holder would make a reap cost O(holders^2).  The byte is
 * asked of every holder whose opener's pid is gone (a fork or SCM_RIGHTS
 * copy may still hold it), and of NMC_REAP_ASK_BUDGET others round robin
 * (an opener alive that closed or exec'd away its descriptor): those are
 * found within NMC_MAX_HOLDERS / NMC_REAP_ASK_BUDGET reaps of the region,
 * and at once by `nmcompat gc` (collect() in gc.c sets ask_all). */
static bool find_dead(struct nmc_region *r, uint64_t *dead)
{
    struct nmc_holder *hs = nmc_holders(r);
    struct nmc_pid_memo memo = { .n = 0 };
    uint32_t h = r->hdr->reap_cursor % NMC_MAX_HOLDERS, asked = 0;
    bool found = false;

    for (uint32_t n = 0; n < NMC_MAX_HOLDERS; n++, h = (h + 1) % NMC_MAX_HOLDERS) {
        if (hs[h].state != NMC_LIVE)
            continue;
        if (!r->ask_all && !nmc_pid_gone(&memo, hs[h].pid)) {
            if (asked == NMC_REAP_ASK_BUDGET)
                continue;
            asked++;
            r->hdr->reap_cursor = (h + 1) % NMC_MAX_HOLDERS;
        }
        if (!nmc_holder_alive(r->fd, h)) {
            dead[h / 64] |= 1ULL << (h % 64);
            found = true;
        }
    }
    return found;
}

/* Sockets of released holders whose closer could not unlink them (it had
 * dropped its privileges): unlinked now, if this process may. */
static void unlink_left_sockets(const char *rundir, struct nmc_region *r)
{
    struct nmc_holder *hs = nmc_holders(r);
    char path[256];

    for (uint32_t h = 0; h < NMC_MAX_HOLDERS; h++) {
        if (!hs[h].sock_left || hs[h].state != NMC_FREE)
            continue;
        nmc_sock_path(rundir, r->mem_id, h, path, sizeof(path));
        if (unlink(path) == 0 || errno == ENOENT)
            hs[h].sock_left = 0;
    }
}

/* Reclaim dead holders, then ports nobody holds; unlink the region when it
 * is empty, or keep it as a spare (r->keep_spare, spare.c).  Returns 1 if
 * the region was destroyed or became a spare.  r is locked. */
int nmc_region_reap(const char *rundir, struct nmc_region *r)
{
    struct nmc_port_rec *ports = nmc_ports(r);
    uint64_t dead[NMC_MAX_HOLDERS / 64] = { 0 };
    char path[256];
    bool any = false;

    if (find_dead(r, dead))             /* one owner per buffer before anything is freed */
        nmc_buf_sweep(r, dead);
    for (uint32_t h = 0; h < NMC_MAX_HOLDERS; h++) {
        if (dead[h / 64] & (1ULL << (h % 64))) {
            nmc_holder_release(r, h);
            nmc_sock_path(rundir, r->mem_id, h, path, sizeof(path));
            unlink(path);
        }
    }
    unlink_left_sockets(rundir, r);
    for (uint32_t i = 0; i < NMC_MAX_PORTS; i++) {
        if (ports[i].state != NMC_LIVE)
            continue;
        if (port_has_live_holder(r, i, -1, 0, 0) || ports[i].persistent)
            any = true;
        else
            port_destroy(r, rundir, &ports[i]);
    }
    if (any)
        return 0;
    if (r->keep_spare && !r->hdr->spare && !r->hdr->extmem && nmc_spare_keep(rundir, r))
        return 1;                       /* gone as far as names go */
    nmc_spare_unlink(rundir, r);        /* a link left by a keep or take cut short too */
    /* links first (and the files' second names in wake/: the control
     * file's link count says it was removed): while the files exist,
     * whoever follows a link waits for our lock and then finds the control
     * file unlinked; the control file last, so that while it is absent its
     * id is free */
    nmc_region_unlink_parents(rundir, r);
    nmc_region_unlink_wake(rundir, r->mem_id);
    nmc_region_path(rundir, r->mem_id, path, sizeof(path));
    unlink(path);
    nmc_region_ctl_path(rundir, r->mem_id, path, sizeof(path));
    unlink(path);
    return 1;
}

/* The existing region linked to `name`, locked and reaped; -ENXIO if none
 * (no link, a link to a region that is gone, or to a later region that
 * reused its mem_id), -EPROTO for another build's region (left alone). */
int nmc_get_region_of(const char *rundir, const char *name, struct nmc_region *r)
{
    int id = nmc_region_lookup_parent(rundir, name), err;

    if (id < 0)
        return -ENXIO;
    if ((err = nmc_region_attach(rundir, (uint16_t)id, r, NMC_LOCK_WAIT)) < 0)
        return err == -EPROTO ? err : -ENXIO;
    if (!nmc_region_has_link(r, name) || nmc_region_reap(rundir, r)) {
        nmc_region_detach(r);
        return -ENXIO;
    }
    return 0;
}

/* The region mem_id names (nr_mem_id), locked and reaped; -EINVAL if there
 * is none (as netmap for an unknown nr_mem_id). */
int nmc_get_region_id(const char *rundir, uint16_t mem_id, struct nmc_region *r)
{
    int err = -EINVAL;

    if (mem_id < 2 || (err = nmc_region_attach(rundir, mem_id, r, NMC_LOCK_WAIT)) < 0)
        return mem_id >= 2 && err == -EPROTO ? err : -EINVAL;     /* unknown nr_mem_id */
    if (nmc_region_reap(rundir, r)) {
        nmc_region_detach(r);
        return -EINVAL;
    }
    return 0;
}

/* The region built in x's file: the one there already, found by the name
 * the file's identity gives it (as netmap's netmap_mem_ext_search: the
 * same memory is the same allocator, whatever pools were asked), or a new
 * one, given that name.  Under the name lock. */
static int extmem_region(const char *rundir, int names, const struct nmc_extmem *x,
                         struct nmc_region *r)
{
    struct nmc_shape shape;
    char key[64];
    int err;

    if ((err = nmc_extmem_key(x, key, sizeof(key))) < 0 ||
        (err = nmc_get_region_of(rundir, key, r)) != -ENXIO)
        return err;
    if ((err = nmc_extmem_shape(rundir, x, &shape)) < 0 ||
        (err = nmc_region_create(rundir, names, &shape, r)) < 0)
        return err;
    if ((err = nmc_region_link_parent(rundir, key, r)) < 0) {
        nmc_region_reap(rundir, r);
        nmc_region_detach(r);
    }
    return err;
}

/* A new region sized for `req` (a spare of that shape if there is one:
 * its memory is claimed already), or the one req->mem_id names. */
static int new_region(const char *rundir, int names, const struct nmc_pipe_req *req,
                      struct nmc_region *r)
{
    /* what this request needs, twice (room for a second port or pipe, as
     * netmap's private regions); an explicit buf_num is taken as it is */
    uint64_t ntx = nmc_bound(req->tx_rings, 1, 1, NMC_PIPE_MAXRINGS);
    uint64_t nrx = nmc_bound(req->rx_rings, 1, 1, NMC_PIPE_MAXRINGS);
    uint64_t need = 2 * (ntx * nmc_bound(req->tx_slots, NMC_DEF_SLOTS, 2, NMC_MAXSLOTS) +
                         nrx * nmc_bound(req->rx_slots, NMC_DEF_SLOTS, 2, NMC_MAXSLOTS)) +
                    req->extra_bufs + 2;
    uint32_t num = req->buf_num, size = req->buf_size;
    bool asked;

    if (req->mem_id)
        return nmc_get_region_id(rundir, req->mem_id, r);
    if (req->extmem)                    /* the user's file: no spare, no space check */
        return extmem_region(rundir, names, req->extmem, r);
    if ((!num && nmc_env_buf_num(&num) < 0) || (!size && nmc_env_buf_size(NMC_DEF_BUF_SIZE, &size) < 0))
        return -EINVAL;
    asked = num != 0;
    if (need > (1u << 24))
        return -ENOMEM;                 /* more than any region holds */
    if (num == 0)
        num = need > NMC_DEF_BUF_NUM ? (uint32_t)need : NMC_DEF_BUF_NUM;
    if (nmc_spare_take(rundir, num, size, r) == 0)
        return 0;
    /* a pool asked for must fit where it would be claimed (claim.c); the
     * default one is only reserved, and claimed as it is used */
    if (asked && !nmc_space_enough(rundir, (uint64_t)num * size))
        return -ENOSPC;
    return nmc_region_create(rundir, names, &(struct nmc_shape){ .buf_num = num, .buf_size = size,
                                                                 .ring_num = NMC_DEF_RING_NUM }, r);
}

/* Under the name lock: the region of home->parent (made from home if it
 * has none), or with no home a new region made from req. */
static int home_or_new(const char *rundir, int names, const struct nmc_pipe_req *req,
                       const struct nmc_pipe_req *home, struct nmc_region *r)
{
    int err;

    if (!home)
        return new_region(rundir, names, req, r);
    if ((err = nmc_get_region_of(rundir, home->parent, r)) != -ENXIO)
        return err;
    if ((err = new_region(rundir, names, home, r)) == 0 &&
        (err = nmc_region_link_parent(rundir, home->parent, r)) < 0) {
        nmc_region_reap(rundir, r);
        nmc_region_detach(r);
    }
    return err;
}

/* Find (reaping stale state) or create the region linked to req->parent,
 * returned locked; a name with no region joins home's (NULL: a new one).
 * Only giving a name a region takes the name lock. */
int nmc_get_region_home(const char *rundir, const struct nmc_pipe_req *req,
                        const struct nmc_pipe_req *home, struct nmc_region *r)
{
    int names, err;

    if ((err = nmc_get_region_of(rundir, req->parent, r)) == -EPROTO)
        return err;                     /* another build's region: leave it alone */
    if (err < 0) {
        if ((names = nmc_names_lock(rundir)) < 0)
            return names;
        /* again under the name lock: nobody links this name meanwhile */
        if ((err = nmc_get_region_of(rundir, req->parent, r)) == -ENXIO) {
            if ((err = home_or_new(rundir, names, req, home, r)) == 0 &&
                (err = nmc_region_link_parent(rundir, req->parent, r)) < 0) {
                nmc_region_reap(rundir, r);
                nmc_region_detach(r);
            }
        }
        nmc_names_unlock(names);
        if (err < 0)
            return err;
    }
    return nmc_region_wanted(rundir, req, r);
}

/* A port lives in its parent's region: another one asked for (a mem_id,
 * an @extmem file) is -EINVAL, and r is detached. */
int nmc_region_wanted(const char *rundir, const struct nmc_pipe_req *req, struct nmc_region *r)
{
    if ((req->mem_id && req->mem_id != r->mem_id) ||
        (req->extmem && !nmc_extmem_is(rundir, r, req->extmem))) {
        nmc_region_detach(r);
        return -EINVAL;
    }
    return 0;
}

int nmc_get_region(const char *rundir, const struct nmc_pipe_req *req, struct nmc_region *r)
{
    return nmc_get_region_home(rundir, req, NULL, r);
}

/* This process's interface region ("nic.<pid>"): its NIC ports live
 * there, and the pipes whose parent is an interface (netmap: a pipe lives
 * in its parent's memory). */
void nmc_ifregion_name(char *out, size_t len)
{
    snprintf(out, len, "nic.%d", (int)getpid());
}

int nmc_name_mem_id(const char *rundir, const char *name)
{
    char dir[256], own[32];
    struct nmc_region r = { .ask_all = false };     /* reaping reads it */
    int err;

    if (!name || !*name)
        return -EINVAL;
    if ((err = nmc_rundir_resolve(rundir, dir, sizeof(dir))) < 0 || (err = nmc_rundir_verify(dir)) < 0)
        return err;
    if ((err = nmc_get_region_of(dir, name, &r)) == -ENXIO && if_nametoindex(name) != 0) {
        nmc_ifregion_name(own, sizeof(own));
        err = nmc_get_region_of(dir, own, &r);
    }
    if (err < 0)
        return err;
    err = r.mem_id;
    nmc_region_detach(&r);
    return err;
}
