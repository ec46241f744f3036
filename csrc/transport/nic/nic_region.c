/*
 * nic_region.c -- what both NIC transports share: one region per process
 * holds the rings of every NIC port the process opens (netmap's global
 * region: a bridge between two NICs swaps buffers with no copy), and a NIC
 * port waits on its kernel sockets.
 */
#include "nmc_nic.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int nmc_nic_validate(const struct nmc_pipe_req *req)
{
    uint32_t q = req ? req->tx_rings : 0;

    if (!req || !req->parent || !*req->parent || strlen(req->parent) >= 16 || req->ifindex == 0)
        return -EINVAL;
    if (q == 0 || q > NMC_NIC_MAXQ || req->rx_rings != q)
        return -EINVAL;
    if (req->host_tx_rings > NMC_NIC_MAXHOST || req->host_rx_rings > NMC_NIC_MAXHOST)
        return -EINVAL;
    if (nmc_nic_host_mode(req->mode))
        return req->nic_tap_fd >= 0 ? 0 : -EINVAL;     /* host rings go through a tap */
    if (req->mode != NR_REG_ALL_NIC && req->mode != NR_REG_ONE_NIC)
        return -EINVAL;
    if (req->extmem)
        return -EOPNOTSUPP;             /* NIC ports live in the process's interface region */
    return 0;
}

bool nmc_nic_host_mode(uint32_t mode)
{
    return mode == NR_REG_SW || mode == NR_REG_NIC_SW || mode == NR_REG_ONE_SW;
}

/* Bound hardware rings of direction dir: the first of p's rings (its host
 * rings, when bound, come after them). */
uint32_t nmc_nic_bound_hw(const struct nmc_port *p, uint32_t dir)
{
    uint32_t nhw = p->rec->nrings[0][dir] - p->rec->nhost[dir], first = p->holder->first[dir];
    uint32_t n = dir == 0 ? p->ntx : p->nrx;

    if (first >= nhw)
        return 0;
    return nhw - first < n ? nhw - first : n;
}

/* The key of the process's NIC region for req, and the slots of its rings. */
static struct nmc_pipe_req nic_region_key(const struct nmc_pipe_req *req, char *name, size_t len,
                                          uint32_t *slots, uint32_t *rslots)
{
    struct nmc_pipe_req key = *req;

    *slots = nmc_bound(req->tx_slots, NMC_DEF_SLOTS, 2, NMC_MAXSLOTS);
    *rslots = nmc_bound(req->rx_slots, NMC_DEF_SLOTS, 2, NMC_MAXSLOTS);
    nmc_ifregion_name(name, len);
    key.parent = name;
    key.mem_id = 0;
    key.extmem = NULL;
    if (!key.buf_num) {
        uint32_t need = 2 * req->tx_rings * (*slots + 2 * NMC_XSK_RX_FACTOR * *rslots) + req->extra_bufs + 2;
        key.buf_num = need * 2 > NMC_NIC_DEF_BUF_NUM ? need * 2 : NMC_NIC_DEF_BUF_NUM;
    }
    return key;
}

/* An AF_XDP record of interface `name` with this many rings in the
 * process's region: a second open of the interface binds its rings, as
 * several netmap fds bind one kring (their queues share one socket:
 * nmc_nic_share), with their slot counts (a count asked for applies to the
 * open that makes the record, as for every port).  AF_PACKET ports, and
 * ports with host rings (one port at a time: backends/_host.py), keep a
 * record each. */
static struct nmc_port_rec *live_rec(struct nmc_region *r, uint32_t kind, const char *name,
                                     const struct nmc_nic_where *w, const uint32_t nrings[2])
{
    struct nmc_port_rec *ports = nmc_ports(r);

    for (uint32_t i = 0; kind == NMC_KIND_NIC && i < NMC_MAX_PORTS; i++) {
        struct nmc_port_rec *rec = &ports[i];
        if (rec->state == NMC_LIVE && rec->kind == kind && rec->nhost[0] + rec->nhost[1] == 0 &&
            strncmp(rec->parent, name, NMC_NAMELEN) == 0 && nmc_nic_rec_is(rec, w) &&
            memcmp(rec->nrings[0], nrings, sizeof(rec->nrings[0])) == 0)
            return rec;
    }
    return NULL;
}

static struct nmc_port_rec *live_nic_rec(struct nmc_region *r, const char *name,
                                         const struct nmc_nic_where *w, const uint32_t *nrings)
{
    return live_rec(r, NMC_KIND_NIC, name, w, nrings);
}

/* Interface ifindex of the calling thread's network namespace. */
int nmc_nic_here(uint32_t ifindex, struct nmc_nic_where *w)
{
    struct stat sb;

    if (stat("/proc/thread-self/ns/net", &sb) < 0)
        return -errno;
    w->netns[0] = (uint64_t)sb.st_dev;
    w->netns[1] = (uint64_t)sb.st_ino;
    w->ifindex = ifindex;
    return 0;
}

/* Is rec the interface w? */
bool nmc_nic_rec_is(const struct nmc_port_rec *rec, const struct nmc_nic_where *w)
{
    return rec->nic_ifindex == w->ifindex && rec->nic_netns[0] == w->netns[0] &&
           rec->nic_netns[1] == w->netns[1];
}

/* Is this thread's open one that only joins a live record (nmc_xsk_join:
 * a program under nmcompat exec), never making a record or a socket? */
static __thread bool join_only;

void nmc_nic_set_join_only(bool only)
{
    join_only = only;
}

/* A live AF_XDP record to join: in the process's own NIC region, else in
 * another process's (nic_xproc.c; not with sockets a control plane
 * granted: a program under nmcompat exec joins with nmc_xsk_join, §14).
 * *r locked, or -ENXIO. */
static int joinable_rec(const char *rundir, const struct nmc_pipe_req *key, struct nmc_region *r,
                        uint32_t *port, const uint32_t nrings[2], const char *name,
                        const struct nmc_nic_where *w)
{
    struct nmc_port_rec *rec;

    if (nmc_get_region_of(rundir, key->parent, r) == 0) {
        if ((rec = live_rec(r, NMC_KIND_NIC, name, w, nrings)) != NULL) {
            *port = (uint32_t)(rec - nmc_ports(r));
            return 0;
        }
        nmc_region_detach(r);
    }
    if (key->nic_nsocks)
        return -ENXIO;
    return nmc_nic_find_rec(rundir, name, w, nrings, r, port, live_nic_rec);
}

/* The NIC region, and in it the record of kind with one ring pair of
 * ntx/nrx rings of the given slot counts: a live one to join (live_rec,
 * this process's or another's) or a new one in the process's region. */
static int nic_region_rec(const char *rundir, const struct nmc_pipe_req *key, struct nmc_region *r,
                          uint32_t *port, uint32_t kind, uint32_t ntx, uint32_t tx_slots,
                          uint32_t nrx, uint32_t rx_slots, const uint32_t nhost[2], const char *name)
{
    struct nmc_port_rec *rec;
    struct nmc_nic_where w;
    int err;

    if ((err = nmc_nic_here(key->ifindex, &w)) < 0)
        return err;
    if (kind == NMC_KIND_NIC && nhost[0] + nhost[1] == 0 &&
        (err = joinable_rec(rundir, key, r, port, (uint32_t[2]){ ntx, nrx }, name, &w)) != -ENXIO)
        return err;
    if (join_only)
        return -ENXIO;                  /* nothing to join: the control plane's grant serves it */
    if ((err = nmc_get_region(rundir, key, r)) < 0)
        return err;
    if (nhost[0] + nhost[1] == 0 && (rec = live_rec(r, kind, name, &w, (uint32_t[2]){ ntx, nrx }))) {
        *port = (uint32_t)(rec - nmc_ports(r));
        return 0;
    }
    if (!(rec = nmc_rec_alloc(r, kind, name)))
        return -ENOMEM;
    rec->nends = 1;
    memcpy(rec->nic_netns, w.netns, sizeof(rec->nic_netns));
    rec->nic_ifindex = w.ifindex;
    rec->nhost[0] = nhost[0];
    rec->nhost[1] = nhost[1];
    if ((err = nmc_rec_add_rings(r, rec, 0, 0, ntx + nhost[0], tx_slots, true)) < 0 ||
        (err = nmc_rec_add_rings(r, rec, 0, 1, nrx + nhost[1], rx_slots, true)) < 0) {
        nmc_rec_free(r, rec);
        return err;
    }
    rec->state = NMC_LIVE;
    *port = (uint32_t)(rec - nmc_ports(r));
    return 0;
}

static bool rec_in_use(struct nmc_region *r, uint32_t port)
{
    const struct nmc_holder *hs = nmc_holders(r);

    for (uint32_t h = 0; h < NMC_MAX_HOLDERS; h++)
        if (hs[h].state == NMC_LIVE && hs[h].port == port)
            return true;
    return false;
}

/* The NIC region, and a NIC record in it (nic_region_rec). */
int nmc_nic_resolve(const char *rundir, const struct nmc_pipe_req *req, struct nmc_region *r,
                    uint32_t *port, uint32_t kind)
{
    char name[32];
    uint32_t slots, rslots, one = nmc_nic_host_mode(req->mode) ? 1 : 0;
    struct nmc_pipe_req key = nic_region_key(req, name, sizeof(name), &slots, &rslots);
    uint32_t nhost[2] = { req->host_tx_rings ? req->host_tx_rings : one,
                          req->host_rx_rings ? req->host_rx_rings : one };
    int err = nic_region_rec(rundir, &key, r, port, kind, req->tx_rings, slots, req->rx_rings, rslots,
                             nhost, req->parent);

    if (err == 0 && req->mem_id && req->mem_id != r->mem_id) {
        if (!rec_in_use(r, *port))      /* never a live record another port binds */
            nmc_rec_free(r, &nmc_ports(r)[*port]);
        nmc_region_detach(r);
        return -EOPNOTSUPP;             /* @share: NIC ports live in the process's interface region */
    }
    return err;
}

/* An information request of a process whose NIC region does not exist yet
 * makes it, as netmap's NIC memory is there before any REGISTER, and keeps
 * it with an anchor: a null port with no ring bound ("null:IFNAME"), held
 * until the process's first NIC port opens (nmc_nic_drop_anchor), so that
 * the REGISTER finds the region the answer described. */
static struct nmc_port *anchor;
static pid_t anchor_pid;                /* a child's inherited anchor is its parent's: not used */
static pthread_mutex_t anchor_lock = PTHREAD_MUTEX_INITIALIZER;

static int anchor_resolve(const char *rundir, const struct nmc_pipe_req *req, struct nmc_region *r,
                          uint32_t *port)
{
    char name[32];
    uint32_t slots, rslots;
    struct nmc_pipe_req key = nic_region_key(req, name, sizeof(name), &slots, &rslots);

    static const uint32_t none[2] = { 0, 0 };

    return nic_region_rec(rundir, &key, r, port, NMC_KIND_NULL, 1, 2, 1, 2, none, req->parent);
}

static const struct nmc_transport_ops anchor_ops = {
    .name = "null",
    .kind = NMC_KIND_NULL,
    .resolve = anchor_resolve,
};

void nmc_nic_drop_anchor(void)
{
    struct nmc_port *p;

    pthread_mutex_lock(&anchor_lock);
    p = anchor_pid == getpid() ? anchor : NULL;
    anchor = NULL;
    pthread_mutex_unlock(&anchor_lock);
    if (p)
        nmc_port_close(p);
}

/* The process's NIC region: its pools (existing, or made and anchored). */
static int nic_region_pools(const char *rundir, const struct nmc_pipe_req *req,
                            struct nmc_pools_info *pools)
{
    char name[32];
    struct nmc_region r;
    int err;

    nmc_ifregion_name(name, sizeof(name));
    pthread_mutex_lock(&anchor_lock);
    if ((err = nmc_get_region_of(rundir, name, &r)) == 0) {
        nmc_geom_pools(&r.g, r.mem_id, pools);
        nmc_region_detach(&r);
    } else if (err == -ENXIO) {
        struct nmc_pipe_req areq = *req;
        areq.mode = NR_REG_ALL_NIC;
        areq.flags = NR_RX_RINGS_ONLY | NR_TX_RINGS_ONLY;      /* binding no ring */
        if (anchor_pid != getpid())
            anchor = NULL;
        if (!anchor && (err = nmc_open_with(&areq, &anchor, &anchor_ops)) == 0)
            anchor_pid = getpid();
        if (anchor)
            err = nmc_port_pools(anchor, pools);
    }
    pthread_mutex_unlock(&anchor_lock);
    return err;
}

/* What a NIC REGISTER of req would report, without opening the port: its
 * rings and slots, and the process's NIC region. */
int nmc_nic_describe(const struct nmc_pipe_req *req, struct nmc_port_info *info,
                     struct nmc_pools_info *pools)
{
    char rundir[160];
    uint32_t slots, rslots;
    int err;

    if (!req || !info || !pools || !req->parent || req->tx_rings == 0 || req->tx_rings > NMC_NIC_MAXQ)
        return -EINVAL;
    if ((err = nmc_rundir_resolve(req->rundir, rundir, sizeof(rundir))) < 0 ||
        (err = nic_region_pools(rundir, req, pools)) < 0)
        return err;
    slots = nmc_bound(req->tx_slots, NMC_DEF_SLOTS, 2, NMC_MAXSLOTS);
    rslots = nmc_bound(req->rx_slots, NMC_DEF_SLOTS, 2, NMC_MAXSLOTS);
    memset(info, 0, sizeof(*info));
    info->nr_memsize = pools->memsize;
    info->nr_tx_rings = info->nr_rx_rings = (uint16_t)req->tx_rings;
    info->nr_tx_slots = slots;
    info->nr_rx_slots = rslots;
    info->nr_host_tx_rings = (uint16_t)(req->host_tx_rings ? req->host_tx_rings : 1);
    info->nr_host_rx_rings = (uint16_t)(req->host_rx_rings ? req->host_rx_rings : 1);
    info->nr_mem_id = pools->mem_id;
    return 0;
}

/* A socket's pending error (a packet socket's ENETDOWN once its interface
 * went down, kept after it came back up) reads POLLERR until it is read:
 * read it, or every later wait returns at once and poll() spins.  netmap's
 * poll knows no such event: a NIC ring whose link went down receives
 * nothing, and receives again once it is back. */
static void clear_error(int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);

    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
}

/* Block until a kernel socket of a NIC port has something for `events`,
 * or nmc_port_interrupt() rings the port's own socket. */
int nmc_nic_wait(struct nmc_port *p, int events, int timeout_ms)
{
    struct pollfd pf[512] = { { .fd = p->sock, .events = POLLIN } };
    int n = 1;

    for (int k = 0; k < p->nkfd && n < 512; k++)
        if (events & p->kfd[k].serves)
            pf[n++] = (struct pollfd){ .fd = p->kfd[k].fd, .events = (short)(events & p->kfd[k].serves) };
    if (nmc_port_interrupted(p))
        return -ECANCELED;
    if (poll(pf, (nfds_t)n, timeout_ms) < 0)
        return -errno;
    if (pf[0].revents & POLLIN)
        nmc_wake_drain(p);
    for (int i = 1; i < n; i++)
        if (pf[i].revents & POLLERR)
            clear_error(pf[i].fd);
    return 0;
}


/* The descriptor users poll when there are several kernel sockets: an
 * epoll set of those that serve POLLIN. */
int nmc_nic_poll_fd(struct nmc_port *p)
{
    if (nmc_nic_foreign(p))
        return -EOWNERDEAD;             /* inherited across fork() (nic_state.c) */
    if (p->epfd < 0) {
        p->epfd = epoll_create1(EPOLL_CLOEXEC);
        for (int k = 0; p->epfd >= 0 && k < p->nkfd; k++) {
            struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)k };
            if (p->kfd[k].serves & POLLIN)
                epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->kfd[k].fd, &ev);
        }
    }
    return p->epfd < 0 ? -errno : p->epfd;
}

/* The kernel descriptors a port waited on are closed (detach). */
void nmc_nic_forget_fds(struct nmc_port *p)
{
    nmc_nic_host_close(p);
    if (p->nic_hold > 0)
        close(p->nic_hold - 1);
    p->nic_hold = 0;
    if (p->epfd >= 0)
        close(p->epfd);
    p->epfd = -1;
    free(p->kfd);
    p->kfd = NULL;
    p->nkfd = 0;
}

/* A new socket for p: the next one the request's helper made (a duplicate
 * of it; the caller keeps its own), or, without a helper, socket(2). */
int nmc_nic_socket(struct nmc_port *p, const struct nmc_pipe_req *req, int domain, int protocol)
{
    int fd;

    if (req->nic_nsocks == 0 && join_only)
        return -ENXIO;                  /* a queue the joined record does not bind */
    if (req->nic_nsocks == 0)
        fd = socket(domain, SOCK_RAW | SOCK_CLOEXEC, protocol);
    else if (p->nic_taken >= req->nic_nsocks || !req->nic_socks)
        return -EINVAL;
    else
        fd = fcntl(req->nic_socks[p->nic_taken++], F_DUPFD_CLOEXEC, 0);
    return fd < 0 ? -errno : fd;
}

/* After a successful attach: keep the helper's hold descriptor while the
 * port is open (nmc_nic_forget_fds closes it). */
int nmc_nic_hold(struct nmc_port *p, const struct nmc_pipe_req *req)
{
    int fd;

    if (req->nic_nsocks == 0 || req->nic_hold_fd < 0)
        return 0;
    if ((fd = fcntl(req->nic_hold_fd, F_DUPFD_CLOEXEC, 0)) < 0)
        return -errno;
    p->nic_hold = fd + 1;
    return 0;
}

/* -- claims on a queue, for ports whose sockets do not exclude each other -- */

#define CLAIM_PREFIX "nmcompat/nic/"

/* Does /proc/net/unix list a name under `prefix` (the abstract names of
 * this network namespace, "@" for the leading NUL) other than `own`, and,
 * with `only_x`, one of an exclusive claim ("/x/" after the prefix)? */
static int other_claim(const char *prefix, const char *own, bool only_x)
{
    FILE *f = fopen("/proc/net/unix", "re");
    char line[512], path[256];
    size_t plen = strlen(prefix);
    int found = 0;

    if (!f)
        return -errno;
    while (!found && fgets(line, sizeof(line), f))
        if (sscanf(line, "%*s %*s %*s %*s %*s %*s %*s %255s", path) == 1 && path[0] == '@' &&
            strncmp(path + 1, prefix, plen) == 0 && strcmp(path + 1, own) != 0)
            found = !only_x || strncmp(path + 1 + plen, "x/", 2) == 0;
    fclose(f);
    return found;
}

/* A claim on direction `tx` of queue `queue` of interface `ifindex`: a
 * socket bound to an abstract name in the interface's network namespace
 * (the kernel drops it when its holder closes or dies), announced first
 * and then checked against the others, so of two racing claims at least
 * one sees the other.  An exclusive claim refuses any other, a shared one
 * an exclusive one: -EBUSY.  Returns the descriptor. */
int nmc_nic_claim(uint32_t ifindex, uint32_t queue, bool tx, bool exclusive)
{
    static uint32_t seq;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char prefix[96];
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), len, err;

    if (fd < 0)
        return -errno;
    snprintf(prefix, sizeof(prefix), CLAIM_PREFIX "%u/%u/%s/", ifindex, queue, tx ? "tx" : "rx");
    len = snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1, "%s%s/%d.%u", prefix, exclusive ? "x" : "s",
                   (int)getpid(), __atomic_fetch_add(&seq, 1, __ATOMIC_RELAXED));
    err = bind(fd, (struct sockaddr *)&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len)) < 0
          ? -errno : other_claim(prefix, sa.sun_path + 1, !exclusive);
    if (err != 0) {
        close(fd);
        return err > 0 ? -EBUSY : err;
    }
    return fd;
}
