/*
 * port.c -- opening and closing ports of any kind: holders, netmap_if,
 * extra buffers, process-local rings; the kind's ops do the rest.
 */
#include "nmc_transport.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t *if_map(struct nmc_region *r) { return (uint64_t *)(r->ctl + r->g.if_map_ofs); }

static int holder_lock(int fd, uint32_t h)
{
    struct flock fl = {
        .l_type = F_WRLCK, .l_whence = SEEK_SET,
        .l_start = NMC_HOLDER_BYTE(h), .l_len = 1,
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

/* The rings of a host-ring mode (netmap order: host rings after the
 * nhw hardware rings; nhost[d] host rings in direction d).  ONE_SW: ring
 * ringid of each direction that has it, else its first (netmap_interp_ringid). */
static int host_range(const struct nmc_pipe_req *req, uint32_t nhw, const uint32_t nhost[2],
                      uint32_t first[2], uint32_t last[2])
{
    if (nhost[0] == 0 || nhost[1] == 0)
        return -EINVAL;                 /* a port without host rings */
    if (req->mode == NR_REG_ONE_SW && req->ringid >= nhost[0] && req->ringid >= nhost[1])
        return -EINVAL;
    for (int d = 0; d < 2; d++) {
        first[d] = req->mode == NR_REG_NIC_SW ? 0 : nhw;
        last[d] = nhw + nhost[d];
        if (req->mode == NR_REG_ONE_SW) {
            first[d] = nhw + (req->ringid < nhost[d] ? req->ringid : 0);
            last[d] = first[d] + 1;
        }
    }
    return 0;
}

static int bind_range(const struct nmc_pipe_req *req, uint32_t ntx, uint32_t nrx, const uint32_t nhost[2],
                      uint32_t first[2], uint32_t last[2])
{
    ntx -= nhost[0];                    /* the hardware rings */
    nrx -= nhost[1];
    if (req->mode == NR_REG_SW || req->mode == NR_REG_NIC_SW || req->mode == NR_REG_ONE_SW) {
        if (ntx != nrx || host_range(req, ntx, nhost, first, last) < 0)
            return -EINVAL;
    } else if (req->mode == NR_REG_ALL_NIC) {
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
        return -EINVAL;                 /* pipes take ALL_NIC or ONE_NIC only, NICs also host modes */
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

/* Why this thread's last open failed with EBUSY, when the engine knows
 * (nmc_busy_cause): NMC_BUSY_*, and the holder's process. */
static __thread int busy_cause;
static __thread int32_t busy_pid;

void nmc_busy_note(int cause, int32_t pid)
{
    busy_cause = cause;
    busy_pid = pid;
}

int nmc_busy_cause(int32_t *pid)
{
    if (pid)
        *pid = busy_pid;
    return busy_cause;
}

static int check_exclusive(struct nmc_region *r, uint32_t port, uint32_t end, uint64_t flags,
                           const uint32_t first[2], const uint32_t last[2])
{
    struct nmc_holder *hs = nmc_holders(r);

    for (uint32_t h = 0; h < NMC_MAX_HOLDERS; h++) {
        if (hs[h].state != NMC_LIVE || hs[h].port != port || hs[h].end != end)
            continue;
        if (((flags | hs[h].flags) & NR_EXCLUSIVE) && overlaps(&hs[h], first, last)) {
            if (!nmc_holder_alive(r->fd, h))
                return -ESTALE;         /* see nmc_open_with */
            nmc_busy_note(hs[h].flags & NR_EXCLUSIVE ? NMC_BUSY_HELD_EXCLUSIVE : NMC_BUSY_ASKS_EXCLUSIVE,
                          hs[h].pid);
            return -EBUSY;
        }
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
    uint8_t *mem = r->mem;
    uint32_t ntx = end_rings(rec, end, 0), nrx = end_rings(rec, end, 1);
    uint32_t htx = rec->nhost[0], hrx = rec->nhost[1];
    uint32_t rx_base = htx + hrx ? ntx : ntx + 1;       /* else one fake host ring */
    uint64_t size = sizeof(struct netmap_if) + sizeof(ssize_t) * (ntx + 1 + nrx + 1);
    uint32_t units = (uint32_t)((size + NMC_IF_UNIT - 1) / NMC_IF_UNIT), head = 0;
    int64_t unit = nmc_bits_alloc_run(if_map(r), r->g.if_units, units);
    struct netmap_if *nifp;
    ssize_t *ofs;
    int err;

    if (unit < 0)
        return (int)unit;
    if ((err = nmc_region_claim(r, r->g.if_pool_ofs + (uint64_t)unit * NMC_IF_UNIT,
                                (uint64_t)units * NMC_IF_UNIT)) < 0 ||
        (extra && (err = nmc_buf_alloc_list(r, extra, &head)) < 0)) {
        nmc_bits_free_run(if_map(r), r->g.if_units, (uint32_t)unit, units);
        return err;
    }
    nifp = (struct netmap_if *)(mem + (uint64_t)unit * NMC_IF_UNIT);
    memset(nifp, 0, units * NMC_IF_UNIT);
    nmc_copy_name((char *)nifp->ni_name, sizeof(nifp->ni_name), name);
    *(uint32_t *)&nifp->ni_flags = NI_PRIV_MEM;
    *(uint32_t *)&nifp->ni_tx_rings = ntx - htx;
    *(uint32_t *)&nifp->ni_rx_rings = nrx - hrx;
    *(uint32_t *)&nifp->ni_host_tx_rings = htx + hrx ? htx : 1;   /* else fake: ring_ofs 0 */
    *(uint32_t *)&nifp->ni_host_rx_rings = htx + hrx ? hrx : 1;
    nifp->ni_bufs_head = head;
    ofs = (ssize_t *)nifp->ring_ofs;
    for (uint32_t k = hd->first[0]; k < hd->last[0]; k++)
        ofs[k] = (ssize_t)((uint8_t *)nmc_ring_obj(mem, &r->g, ring_obj(rec, end, 0, k)) - (uint8_t *)nifp);
    for (uint32_t k = hd->first[1]; k < hd->last[1]; k++)
        ofs[rx_base + k] = (ssize_t)((uint8_t *)nmc_ring_obj(mem, &r->g, ring_obj(rec, end, 1, k)) - (uint8_t *)nifp);
    hd->nifp_unit = (uint32_t)unit;
    hd->nifp_units = units;
    hd->extra_bufs = extra;
    return 0;
}

static void count_users(struct nmc_region *r, const struct nmc_port_rec *rec, const struct nmc_holder *hd)
{
    struct nmc_kring *krs = nmc_krings(r->ctl, &r->g);

    for (uint32_t dir = 0; dir < 2; dir++)
        for (uint32_t k = hd->first[dir]; k < hd->last[dir]; k++)
            krs[ring_obj(rec, hd->end, dir, k) % r->g.ring_num].users++;
}

static void setup_lrings(struct nmc_port *p)
{
    struct nmc_kring *krs = nmc_krings(p->ctl, &p->g);

    for (uint32_t dir = 0; dir < 2; dir++) {
        struct nmc_lring *lr = dir == 0 ? p->tx : p->rx;
        uint32_t first = p->holder->first[dir], cnt = dir == 0 ? p->ntx : p->nrx;
        for (uint32_t i = 0; i < cnt; i++) {
            uint32_t obj = ring_obj(p->rec, p->end, dir, first + i) % p->g.ring_num;
            uint32_t peer = krs[obj].peer % p->g.ring_num;     /* itself, or a crossed ring */
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

/* Bound rings on cache lines of their own: a sync writes its ring's
 * (entry count, clock), and another thread may sync another port. */
static struct nmc_lring *lrings_alloc(uint32_t n)
{
    struct nmc_lring *lr = aligned_alloc(NMC_CACHELINE, n * sizeof(*lr));

    if (lr)
        memset(lr, 0, n * sizeof(*lr));
    return lr;
}

int nmc_port_fill(struct nmc_port *p, struct nmc_region *r, uint32_t h, uint32_t port,
                  const struct nmc_pipe_req *req, const char *rundir)
{
    p->ctl_fd = r->fd;
    p->ctl = r->ctl;
    p->g = r->g;
    p->mem = r->mem;
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
    p->spin_us = req->spin_us;
    if (req->spin_us < 0) {             /* on an open and on an adoption: checked where read */
        uint32_t us;
        if (nmc_env_u32_checked("NMCOMPAT_SPIN_US", 20, 0, INT32_MAX, true, &us) < 0)
            return -EINVAL;
        p->spin_us = (int)us;
    }
    snprintf(p->rundir, sizeof(p->rundir), "%s", rundir);
    if (p->ops->port_name)
        p->ops->port_name(req, p->name, sizeof(p->name));
    else
        snprintf(p->name, sizeof(p->name), "%s", req->parent);
    p->tx = lrings_alloc(p->ntx + 1);
    p->rx = lrings_alloc(p->nrx + 1);
    if (!p->tx || !p->rx)
        return -ENOMEM;
    setup_lrings(p);
    p->attach_gen = p->rec->attach_gen;
    return nmc_wake_setup(p);
}

void nmc_port_free(struct nmc_port *p)
{
    if (p->ops && p->ops->detach)
        p->ops->detach(p, NULL);
    nmc_wake_teardown(p);
    free(p->tx);
    free(p->rx);
    free(p);
}

/* Resolve the port (its region comes back locked), bind a holder, and
 * unlock the region once the port is complete. */
static int open_port(const struct nmc_pipe_req *req, const char *rundir, struct nmc_port *p,
                     const struct nmc_transport_ops *ops)
{
    struct nmc_region r = { .fd = -1 };
    uint32_t port, first[2], last[2];
    struct nmc_holder *hd;
    int h, err;

    if ((err = ops->resolve(rundir, req, &r, &port)) < 0)
        goto fail;
    struct nmc_port_rec *rec = &nmc_ports(&r)[port];
    if (!(p->ops = nmc_transport_of(rec->kind))) {
        err = -EPROTO;                  /* a record of a kind this build does not know */
        goto fail;
    }
    if ((err = bind_range(req, end_rings(rec, req->role, 0), end_rings(rec, req->role, 1), rec->nhost,
                          first, last)) < 0 ||
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
    if ((err = nmc_port_fill(p, &r, (uint32_t)h, port, req, rundir)) < 0 ||
        (p->ops->attach && (err = p->ops->attach(p, &r, req)) < 0)) {
        nmc_wake_teardown(p);           /* its descriptors free room for the reaper's */
        if (p->ops->detach)
            p->ops->detach(p, &r);
        nmc_holder_release(&r, (uint32_t)h);
        goto fail;
    }
    nmc_copy_name((char *)p->nifp->ni_name, sizeof(p->nifp->ni_name), p->name);
    for (uint32_t i = 0; i < p->nrx; i++)          /* senders waiting for a reader */
        nmc_wake_sleepers(p, p->rx[i].peer_kr);
    nmc_region_unlock(&r);                          /* r.fd, r.ctl and r.mem are the port's now */
    return 0;
fail:
    if (r.ctl) {
        r.ask_all = err == -ESTALE;
        nmc_region_reap(rundir, &r);
        nmc_region_detach(&r);
    }
    return err;
}

int nmc_open_with(const struct nmc_pipe_req *req, struct nmc_port **out,
                  const struct nmc_transport_ops *ops)
{
    char rundir[160];
    struct nmc_port *p;
    int err;

    nmc_busy_note(NMC_BUSY_UNKNOWN, 0);
    if (!ops || (ops->validate && (err = ops->validate(req)) < 0))
        return !ops ? -EINVAL : err;
    if ((req->flags & (NR_MONITOR_TX | NR_MONITOR_RX | NR_ZCOPY_MON)) &&
        (!(ops = nmc_transport_monitors()) || (err = ops->validate(req)) < 0))
        return !ops ? -EOPNOTSUPP : err;    /* EOPNOTSUPP: a build without monitors */
    if ((err = nmc_rundir_resolve(req->rundir, rundir, sizeof(rundir))) < 0 ||
        (err = nmc_rundir_check(rundir)) < 0 ||
        (err = nmc_claim_precheck(rundir, req)) < 0)
        return err;
    p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->ctl_fd = p->sock = p->bell = p->wake_dir = p->epfd = -1;
    nmc_rundir_gc_some(rundir, NMC_GC_OPEN_BUDGET);    /* regions dead processes left */
    err = open_port(req, rundir, p, ops);
    if (err == -ESTALE)                 /* a dead holder was in the way: reaped now, once more */
        err = open_port(req, rundir, p, ops);
    if (err == -ESTALE)
        err = -EBUSY;
    if (err < 0) {
        nmc_port_free(p);
        return err;
    }
    *out = p;
    return 0;
}

/* Only this process's descriptors and mappings of p go: for a port
 * inherited across fork() whose transport state is its opener's
 * (ops->inherited), and for a port of a kind without detach_kept whose
 * netmap device descriptor another description still has open (its
 * holder lives on: close_kept). */
static void close_locally(struct nmc_port *p)
{
    struct nmc_region r = { .fd = p->ctl_fd, .ctl = p->ctl, .mem = p->mem, .g = p->g };

    nmc_wake_close_fds(p);              /* its socket's path is the opener's: not unlinked */
    nmc_region_detach(&r);
    nmc_port_free(p);
}

/* The region lock of p's region, through a description of its own (the
 * port's may be shared with a fork); -ESTALE if the path names another
 * file now. */
int nmc_port_lock_region(const struct nmc_port *p)
{
    char path[256];
    struct stat mine, st;
    int fd, err;

    nmc_region_ctl_path(p->rundir, p->mem_id, path, sizeof(path));
    if ((fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW)) < 0)
        return -errno;
    err = -ESTALE;
    if (fstat(p->ctl_fd, &mine) < 0 || fstat(fd, &st) < 0 ||
        mine.st_ino != st.st_ino || mine.st_dev != st.st_dev ||
        (err = nmc_lock_byte(fd, NMC_REGION_LOCK_BYTE, F_WRLCK, true)) < 0) {
        close(fd);
        return err;
    }
    return fd;
}

/* Port p's region as the control path sees it, its region lock held
 * through lock_fd (< 0: not held).  The one place a region is made from a
 * port, so that close and ring refill see every field alike. */
struct nmc_region nmc_port_region(const struct nmc_port *p, int lock_fd)
{
    return (struct nmc_region){ .fd = lock_fd, .ctl = p->ctl, .mem = p->mem, .g = p->g,
                                .hdr = (struct nmc_region_hdr *)p->ctl, .mem_id = p->mem_id,
                                .locked = lock_fd >= 0, .rundir = p->rundir };
}

/* The region lock for p's close.  A process out of descriptors (EMFILE,
 * ENFILE), or one that may no longer open the control file (EACCES: it
 * dropped its privileges since the open), takes it through the port's own
 * description, which the close ends anyway: p->ctl_fd is handed over
 * (closed once, with the lock). */
static int lock_for_close(struct nmc_port *p)
{
    int fd = nmc_port_lock_region(p);

    if ((fd == -EMFILE || fd == -ENFILE || fd == -EACCES || fd == -EPERM) && p->ctl_fd >= 0 &&
        nmc_lock_byte(p->ctl_fd, NMC_REGION_LOCK_BYTE, F_WRLCK, true) == 0) {
        fd = p->ctl_fd;
        p->ctl_fd = -1;
    }
    return fd;
}

/* Does another description keep p's holder alive: its device descriptor
 * (nmc_port_dev_fd) open anywhere, or, for a port adopted from a device
 * descriptor (adopt.c), the opener's own description?  Asked through
 * p->ctl_fd, whose own lock (the holder byte of a port this process
 * opened) never conflicts. */
static bool held_elsewhere(const struct nmc_port *p)
{
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
                        .l_start = NMC_HOLDER_BYTE(p->hidx), .l_len = NMC_HOLDER_LOCK_BYTES };

    return p->ctl_fd >= 0 && fcntl(p->ctl_fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
}

/* A new description of p's control file that keeps p's holder alive (a
 * read lock on its device byte) while any process has it open: what a
 * netmap device descriptor is (a /dev/netmap fd bound to p).  Read-only:
 * the fd gives no way to write the control state.  A NIC port's keeps its
 * holder, rings and buffers; its kernel sockets are the opening process's,
 * which another process adopting it duplicates while they are open
 * (core/adopt.c).  One per port (-EBUSY
 * for a second); the caller owns it and closes it before
 * nmc_port_close(p), which then leaves the holder to whoever else still
 * has it. */
int nmc_port_dev_fd(struct nmc_port *p)
{
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
                        .l_start = NMC_DEVICE_BYTE(p ? p->hidx : 0), .l_len = 1 };
    char path[256];
    struct stat mine, st;
    int fd, err;

    if (!p || p->ctl_fd < 0)
        return -EINVAL;
    if (p->ops->inherited && p->ops->inherited(p))
        return -EOWNERDEAD;             /* its transport state is another process's sockets */
    nmc_region_ctl_path(p->rundir, p->mem_id, path, sizeof(path));
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
        return -errno;
    err = -ESTALE;
    if (fstat(p->ctl_fd, &mine) < 0 || fstat(fd, &st) < 0 ||
        mine.st_ino != st.st_ino || mine.st_dev != st.st_dev)
        goto fail;
    err = -EBUSY;                       /* read locks share: ask first */
    if (fcntl(fd, F_OFD_GETLK, &fl) < 0 || fl.l_type != F_UNLCK)
        goto fail;
    if ((err = nmc_lock_byte(fd, NMC_DEVICE_BYTE(p->hidx), F_RDLCK, false)) < 0)
        goto fail;
    return fd;
fail:
    close(fd);
    return err == -EAGAIN || err == -EACCES ? -EBUSY : err;
}

/* The close of a port whose holder another description keeps alive: the
 * holder, its socket path and its rings stay; a kind with detach_kept
 * gives up this process's transport state with the region at hand (region
 * lock held), the others as close_locally does. */
static int close_kept(struct nmc_port *p)
{
    struct nmc_region r;
    int lock;

    if (!p->ops->detach_kept) {
        close_locally(p);
        return 0;
    }
    nmc_wake_close_fds(p);              /* the holder's socket path stays with it */
    lock = lock_for_close(p);
    r = nmc_port_region(p, lock);
    p->ops->detach_kept(p, lock >= 0 ? &r : NULL);
    nmc_region_detach(&r);              /* unmaps, releases the lock */
    if (p->ctl_fd >= 0)
        close(p->ctl_fd);
    nmc_port_free(p);
    return lock < 0 ? lock : 0;
}

/* Give up the biases this process holds on p's rings (ring_own.c). */
static void unbias_rings(struct nmc_port *p)
{
    for (uint32_t i = 0; i < p->ntx; i++)
        nmc_ring_unbias(&p->tx[i]);
    for (uint32_t i = 0; i < p->nrx; i++)
        nmc_ring_unbias(&p->rx[i]);
}

int nmc_port_close(struct nmc_port *p)
{
    struct nmc_region r;
    int lock;

    if (!p)
        return -EINVAL;
    unbias_rings(p);
    if (p->ops->inherited && p->ops->inherited(p)) {
        close_locally(p);
        return 0;
    }
    if (held_elsewhere(p))
        return close_kept(p);
    if (nmc_wake_teardown(p) < 0)       /* first: its descriptors free room for the lock's */
        __atomic_store_n(&p->holder->sock_left, 1, __ATOMIC_RELAXED);  /* the reaper unlinks it */
    lock = lock_for_close(p);
    r = nmc_port_region(p, lock);
    r.keep_spare = true;                /* if the kind allows it (spare.c) */
    if (p->ops->detach)
        p->ops->detach(p, lock >= 0 ? &r : NULL);
    if (lock >= 0) {                    /* without the lock, reaping waits for the next open */
        nmc_holder_release(&r, p->hidx);
        nmc_region_reap(p->rundir, &r);
    }
    nmc_region_detach(&r);              /* unmaps, releases the lock */
    if (p->ctl_fd >= 0)
        close(p->ctl_fd);               /* releases the holder's byte */
    nmc_port_free(p);
    return lock < 0 ? lock : 0;
}
