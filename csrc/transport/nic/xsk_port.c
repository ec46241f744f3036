/*
 * xsk_port.c -- netmap NIC ports over AF_XDP: one region per process (and
 * runtime directory) holds the rings of every NIC port the process opens
 * there (netmap's global region: a bridge between two NICs swaps buffers
 * with no copy), and its buffer pool is the UMEM shared by the AF_XDP
 * sockets of those ports (nic_state.c).
 */
#include "nmc_xsk.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static uint32_t pow2(uint32_t v)
{
    uint32_t p = 1;

    while (p < v)
        p <<= 1;
    return p;
}

/* A socket on the region's UMEM to bind a new one to: one of this
 * process, else a copy of another process's on the record (*tmp: the
 * caller closes it), else -1 (the first socket: it registers the UMEM).
 * -EBUSY: this process's record of another ring count holds the queue, or
 * another process refused its socket.  Takes the NIC lock. */
static int umem_peer(struct nmc_port *p, struct nmc_nic_share *sh, const struct nmc_xsk *x, int *tmp)
{
    int fd, err = 0;
    bool taken;

    *tmp = -1;
    nmc_nic_lock();
    taken = nmc_nic_queue_taken(p, x->ifindex, x->queue);
    fd = taken ? -EBUSY : nmc_nic_umem_peer(p);
    nmc_nic_unlock();
    if (taken)
        nmc_busy_note(NMC_BUSY_OWN_OTHER_LAYOUT, (int32_t)getpid());
    if (fd == -1)                       /* fetched under the lock itself (fetch_fd) */
        fd = *tmp = nmc_nic_shm_umem_peer(sh, &err);
    return err < 0 ? err : fd;
}

/* Did this thread's last open lose a race of first opens: the first
 * socket of a new record (no queue of it has one yet) found the queue
 * bound (EBUSY), most likely by another process's first open of the
 * interface, whose record it can join now (nmc_xsk_open). */
static __thread bool lost_first_bind;

/* Has no queue of the record a socket yet (a record this open made)? */
static bool record_unbound(const struct nmc_nic_share *sh)
{
    for (uint32_t k = 0; sh->shm && k < sh->nq; k++)
        if (sh->shm->q[k].sock_ino)
            return false;
    return true;
}

/* A new socket for queue q on the region's UMEM (own or shared), with its
 * rings, bound. */
static int make_xsk(struct nmc_port *p, struct nmc_nic_share *sh, const struct nmc_pipe_req *req,
                    struct nmc_xsk *x, uint32_t nslots)
{
    int tmp, shared, err = 0;

    shared = umem_peer(p, sh, x, &tmp);
    if (shared < -1)
        return shared;
    if (shared < 0)
        err = nmc_xsk_umem_reg(x->fd, p->mem, &p->g);
    if (err == 0 && (err = nmc_xsk_rings(x, pow2(NMC_XSK_RX_FACTOR * nslots), pow2(nslots))) == 0)
        err = nmc_xsk_bind(x, shared, req->xdp_bind, !req->no_sg);
    if (tmp >= 0) {
        nmc_nic_settle(tmp);
        close(tmp);
    }
    lost_first_bind |= err == -EBUSY && req->nic_nsocks == 0 && record_unbound(sh);
    if (err < 0)
        return err;
    if (shared >= 0) {                  /* the owner's bind flags apply */
        for (uint32_t k = 0; k < sh->nq; k++)
            x->sg |= sh->shm->q[k].sock_ino && sh->shm->q[k].sg;
    }
    return 0;
}

/* Does socket x, which this open shares (a port's of this process or of
 * another, or the owner's flags of a shared UMEM), honour what req asks
 * as the open's own bind would: -EOPNOTSUPP for zero-copy asked of a
 * socket in copy mode (the error of such a bind alone), copy mode asked
 * of a zero-copy socket, or no multi-buffer frames asked of a socket that
 * delivers them. */
static int honours(const struct nmc_pipe_req *req, const struct nmc_xsk *x)
{
    if (((req->xdp_bind & NMC_XDP_ZEROCOPY) && !x->zerocopy) ||
        ((req->xdp_bind & NMC_XDP_COPY) && x->zerocopy) || (req->no_sg && x->sg))
        return -EOPNOTSUPP;
    return 0;
}

/* A new socket for ring `ring` of p's record (sh), published in the
 * record's share memory. */
static int new_xsk(struct nmc_port *p, const struct nmc_pipe_req *req, struct nmc_nic_share *sh,
                   uint32_t ring, uint32_t nslots, struct nmc_xsk **out)
{
    struct nmc_xsk *x;
    int fd, err;

    if (p->holder->pid != getpid())
        return -EOWNERDEAD;             /* adopted: the sockets were its opener's, now gone */
    if ((x = calloc(1, sizeof(*x))) == NULL)
        return -ENOMEM;
    nmc_nic_lock();                     /* listed until stored in sh->q[] (queue_xsk) */
    fd = nmc_nic_inflight_add(nmc_nic_socket(p, req, AF_XDP, 0));
    nmc_nic_unlock();
    if (fd < 0) {
        free(x);
        return fd;
    }
    x->fd = fd;
    x->ifindex = req->ifindex;
    x->queue = ring;
    if ((err = make_xsk(p, sh, req, x, nslots)) < 0 || (err = honours(req, x)) < 0) {
        nmc_nic_settle(x->fd);
        nmc_xsk_close(x);               /* socket, rings: nothing of a failed queue stays */
        free(x);
        return err;
    }
    nmc_nic_shm_publish(sh, x);
    *out = x;
    return 0;
}

/* Our socket for ring `ring` of p's record (sh): the one a port of this
 * process has, a copy of another process's, or a new one.  Region lock
 * held: no other open runs meanwhile. */
static int queue_xsk(struct nmc_port *p, const struct nmc_pipe_req *req, struct nmc_nic_share *sh,
                     uint32_t ring, uint32_t nslots, struct nmc_xsk **out)
{
    struct nmc_xsk *x = sh->q[ring];
    int err = 0;

    if (!x && (err = nmc_nic_shm_queue(sh, req->ifindex, ring, &x)) < 0)
        return err;                     /* another process refused its socket */
    if (x && (err = honours(req, x)) < 0) {
        if (!sh->q[ring]) {             /* a copy taken just now: it goes */
            sh->shm->procs[sh->slot].sock_fd[ring] = 0;
            nmc_nic_settle(x->fd);
            nmc_xsk_close(x);
            free(x);
        }
        return err;
    }
    if (x && req->nic_nsocks)
        p->nic_taken++;                 /* a helper's socket per bound queue, in order: unused */
    if (!x && (err = new_xsk(p, req, sh, ring, nslots, &x)) < 0)
        return err;
    nmc_nic_lock();
    sh->q[ring] = x;                    /* under the lock: a fork sees it and closes it */
    nmc_nic_inflight_del(x->fd);
    nmc_nic_unlock();
    *out = x;
    return 0;
}

/* How many slots of RX ring lr the user holds, [hwcur, hwtail). */
static uint32_t user_part(const struct nmc_lring *lr)
{
    uint32_t cur = lr->kr->hwcur, tail = lr->kr->hwtail;

    return cur < lr->n && tail < lr->n ? nmc_dist(cur, tail, lr->n) : 0;
}

/* The buffers a new socket's FILL ring starts with: the first time, the
 * RX ring's own but for the user's part [hwcur, hwtail) (none on a new
 * record; a retired one's stays the user's: nmc_nic_retire); after a
 * socket that every process closed, those its queues held (the ledger)
 * and its spare list.  Returns how many are in give (room: cap). */
static uint32_t stock_gather(struct nmc_lring *lr, uint32_t user, uint32_t buf_num, uint32_t *give,
                             uint32_t cap)
{
    struct nmc_xsk *x = lr->xsk;
    uint32_t n = 0, j = lr->kr->hwtail < lr->n ? lr->kr->hwtail : 0;

    if (!x->sq->ever) {
        for (uint32_t i = 0; i < lr->n - user && n < cap; i++, j = nmc_next(j, lr->n)) {
            uint32_t idx = lr->ring->slot[j].buf_idx;
            if (idx >= 2 && idx < buf_num)
                give[n++] = idx;
        }
        return n;
    }
    while (n < cap && nmc_xsk_spare_pop(x, &give[n]))
        n++;
    return n;
}

static uint32_t stock_ledger(struct nmc_xsk *x, uint32_t buf_num, uint32_t *give, uint32_t n, uint32_t cap)
{
    for (uint32_t b = 0; b < buf_num && n < cap; b++)
        if (x->queued[b] == x->tag) {
            x->queued[b] = 0;
            give[n++] = b;
        }
    return n;
}

/* Stock the FILL ring of a socket not stocked yet (nic_xproc.c), as many
 * buffers as the FILL ring holds; from then on the ring's slots name only
 * what the user holds (nic_state.c), and what does not fit waits on the
 * queue's spare list.  Once per socket: a second port binding the ring, in
 * any process, finds it stocked.  Region lock held. */
static int stock(struct nmc_port *p, struct nmc_region *r, struct nmc_lring *lr)
{
    struct nmc_xsk *x = lr->xsk;
    struct nmc_shm_queue *q = x->sq;
    uint32_t total = x->fill.size > lr->n ? x->fill.size : lr->n, cap = total + x->spare_cap;
    uint32_t *give, n, want, in, user;
    int err = 0;

    if (q->stocked_ino == q->sock_ino)
        return 0;
    if ((give = calloc(cap, sizeof(uint32_t))) == NULL)
        return -ENOMEM;
    user = user_part(lr);
    want = total - user;
    n = stock_gather(lr, user, p->g.buf_num, give, cap);
    if (q->ever)
        n = stock_ledger(x, p->g.buf_num, give, n, cap);
    if (n < want && (err = nmc_buf_alloc(r, give + n, want - n)) == 0)
        n = want;
    if (err == 0) {
        in = nmc_xsk_fill(x, &p->g, give, n);
        for (uint32_t k = in; k < n; k++) {
            if (!nmc_xsk_spare_push(x, give[k]))
                nmc_buf_free(r, give[k]);
        }
        q->stocked_ino = q->sock_ino;
        q->ever = 1;
    }
    free(give);
    return err;
}

/* The UMEM (the buffer pool and the page before it) is pinned whole when
 * it is registered: it must fit RLIMIT_MEMLOCK, and its memory is claimed
 * first, so that a full tmpfs is -ENOSPC rather than a failed pin. */
static int claim_umem(struct nmc_region *r)
{
    uint64_t len = NMC_PAGE + (uint64_t)r->g.buf_num * r->g.buf_size;
    int err = nmc_claim_memlock(len);

    return err < 0 ? err : nmc_region_claim(r, r->g.buf_pool_ofs - NMC_PAGE, len);
}

/* p joins the sockets of its record in this process, and the record's
 * share memory (nic_xproc.c). */
static int join_share(struct nmc_port *p, struct nmc_nic_share **out)
{
    struct nmc_nic_share *sh;

    nmc_nic_lock();
    sh = nmc_nic_share_join(p);
    nmc_nic_unlock();
    *out = sh;
    return sh ? nmc_nic_shm_join(p, sh) : -ENOMEM;
}

/* After the generic open (region lock held): the socket of every bound
 * queue (shared with the other ports on the record, of this process or
 * another), FILL stocked. */
static int xsk_attach(struct nmc_port *p, struct nmc_region *r, const struct nmc_pipe_req *req)
{
    uint32_t first = p->holder->first[1] < p->holder->first[0] ? p->holder->first[1] : p->holder->first[0];
    uint32_t hw_tx = nmc_nic_bound_hw(p, 0), hw_rx = nmc_nic_bound_hw(p, 1);
    uint32_t nq = hw_tx > hw_rx ? hw_tx : hw_rx;
    struct nmc_nic_share *sh;
    int err;

    p->xsk = calloc(nq + 1, sizeof(*p->xsk));
    p->kfd = calloc(nq + 2, sizeof(*p->kfd));       /* and the tap of the host rings */
    if (!p->xsk || !p->kfd) {           /* detach needs p->xsk: undo both here */
        free(p->xsk);
        free(p->kfd);
        p->xsk = NULL;
        p->kfd = NULL;
        return -ENOMEM;
    }
    if ((err = claim_umem(r)) < 0 || (err = nmc_nic_join(p)) < 0 ||
        (err = join_share(p, &sh)) < 0)
        return err;
    for (uint32_t k = 0; k < nq; k++) {
        uint32_t n = hw_rx ? p->rx[k % hw_rx].n : p->tx[k].n;
        if ((err = queue_xsk(p, req, sh, first + k, n, &p->xsk[k])) < 0)
            return err;
        p->nxsk++;
        p->kfd[p->nkfd++] = (struct nmc_kfd){ p->xsk[k]->fd, POLLIN | POLLOUT };
        if (k < hw_tx)
            p->tx[k].xsk = p->xsk[k];
        if (k < hw_rx)
            p->rx[k].xsk = p->xsk[k];
    }
    for (uint32_t i = 0; i < hw_rx && err == 0; i++)
        err = stock(p, r, &p->rx[i]);
    if (err == 0)
        err = nmc_nic_host_attach(p, req);
    return err < 0 ? err : nmc_nic_hold(p, req);
}

/* Leave the record's sockets.  The last port of the process on the record
 * closes this process's copies; with the region (region lock held) and in
 * the process that opened the port, the last port anywhere (no other live
 * holder on the record, p's own not kept: `kept`, its device descriptor
 * open elsewhere) gives back every buffer of the record, and the last
 * process with the record's sockets, holders left, what the kernel held
 * (nmc_nic_retire).  Without, only this process's resources go (a failed
 * lock: the buffers stay allocated; an inherited port: they are the
 * parent's). */
static void xsk_leave(struct nmc_port *p, struct nmc_region *r, bool kept)
{
    bool own = !nmc_nic_foreign(p), give_back = r && own;
    struct nmc_nic_share *last;

    if (!p->xsk)
        return;
    nmc_nic_lock();
    last = nmc_nic_share_leave(p);
    for (uint32_t k = 0; last && k < last->nq; k++)
        if (last->q[k])
            nmc_xsk_close(last->q[k]);
    nmc_nic_unlock();
    if (last) {
        bool everything = give_back && !kept && !nmc_nic_shm_others(p, r);
        bool retire = give_back && !everything && last->shm && !nmc_nic_shm_elsewhere(p->rec);
        if (everything)
            nmc_nic_reclaim(p, r, last);
        else if (retire)
            nmc_nic_retire(p, r, last);
        if (own && r)                   /* else its entry is left stale (inode-checked) */
            nmc_nic_shm_unlist(p->rec);
        nmc_nic_shm_leave(last, own && r, everything || retire);
    }
    nmc_nic_share_free(last);
    nmc_nic_leave(p);
    for (uint32_t i = 0; i < p->nrx; i++)
        p->rx[i].xsk = NULL;
    for (uint32_t i = 0; i < p->ntx; i++)
        p->tx[i].xsk = NULL;
    free(p->xsk);
    p->xsk = NULL;
    p->nxsk = 0;
    nmc_nic_forget_fds(p);
}

static void xsk_detach(struct nmc_port *p, struct nmc_region *r)
{
    xsk_leave(p, r, false);
}

static void xsk_detach_kept(struct nmc_port *p, struct nmc_region *r)
{
    xsk_leave(p, r, true);
}

static struct nmc_xsk *xsk_of(struct nmc_port *p, uint32_t k)
{
    return p->xsk && k < (uint32_t)p->nxsk ? p->xsk[k] : NULL;
}

int nmc_xsk_fd(struct nmc_port *p, uint32_t k)
{
    struct nmc_xsk *x = xsk_of(p, k);

    return x ? x->fd : -EINVAL;
}

int nmc_xsk_info(struct nmc_port *p, uint32_t k, struct nmc_xsk_info *info)
{
    struct nmc_xsk *x = xsk_of(p, k);
    uint64_t st[6] = { 0 };
    socklen_t len = sizeof(st);

    if (!x)
        return -EINVAL;
    memset(info, 0, sizeof(*info));
    info->queue = x->queue;
    info->zerocopy = x->zerocopy;
    info->sg = x->sg;
    info->bind_flags = x->bind_flags;
    if (getsockopt(x->fd, SOL_XDP, NMC_XDP_STATISTICS, st, &len) < 0)
        return -errno;
    info->rx_dropped = st[0];
    info->rx_invalid_descs = st[1];
    info->tx_invalid_descs = st[2];
    info->rx_ring_full = st[3];
    info->rx_fill_ring_empty_descs = st[4];
    info->tx_ring_empty_descs = st[5];
    for (uint32_t i = 0; i < p->ntx; i++)
        if (p->tx[i].xsk == x)
            info->tx_dropped = p->tx[i].tx_dropped;
    return 0;
}

/* The descriptor users poll: the socket itself for one queue (POLLIN and
 * POLLOUT from the kernel), an epoll set of them (and of the tap of host
 * rings) otherwise (POLLIN).  The same one for the port's life: a tap
 * borrowed later for transparent mode changes nothing. */
static int xsk_port_fd(struct nmc_port *p)
{
    if (nmc_nic_foreign(p))
        return -EOWNERDEAD;
    return p->nxsk == 1 && !nmc_nic_binds_host(p) ? p->xsk[0]->fd : nmc_nic_poll_fd(p);
}

/* A ring's sync: its AF_XDP socket's, or the tap's for a host ring. */
static int xsk_txsync(struct nmc_port *p, struct nmc_lring *lr)
{
    return lr->host ? nmc_nic_host_txsync(p, lr) : nmc_xsk_txsync_one(p, lr);
}

static int xsk_rxsync(struct nmc_port *p, struct nmc_lring *lr)
{
    return lr->host ? nmc_nic_host_rxsync(p, lr) : nmc_xsk_rxsync_one(p, lr);
}

static int xsk_resolve(const char *rundir, const struct nmc_pipe_req *req, struct nmc_region *r,
                       uint32_t *port)
{
    return nmc_nic_resolve(rundir, req, r, port, NMC_KIND_NIC);
}

/* A port adopted from its device descriptor (core/adopt.c) joins the
 * record as a port of another process would (nic_xproc.c), its sockets
 * duplicates of the opener's, taken while the opener lives.  Not with host
 * rings (their tap is the opener's alone). */
static int xsk_adopt_req(const struct nmc_port_rec *rec, struct nmc_pipe_req *req)
{
    struct nmc_nic_where w;
    char name[IF_NAMESIZE];
    int err;

    if (rec->nhost[0] + rec->nhost[1] || rec->nrings[0][0] != rec->nrings[0][1])
        return -EOPNOTSUPP;
    if ((err = nmc_nic_here(rec->nic_ifindex, &w)) < 0)
        return err;
    if (!nmc_nic_rec_is(rec, &w))
        return -EXDEV;                  /* the interface is in another network namespace */
    if (if_indextoname(rec->nic_ifindex, name) == NULL)
        return -ENXIO;
    req->ifindex = rec->nic_ifindex;
    req->tx_rings = req->rx_rings = rec->nrings[0][0];
    req->nic_tap_fd = -1;
    req->nic_hold_fd = -1;              /* the link: nmc_xsk_keep() once adopted */
    nmc_nic_refusal_clear();
    return 0;
}

static const struct nmc_transport_ops xsk_ops = {
    .name = "afxdp",
    .kind = NMC_KIND_NIC,
    .validate = nmc_nic_validate,
    .resolve = xsk_resolve,
    .attach = xsk_attach,
    .detach = xsk_detach,
    .detach_kept = xsk_detach_kept,
    .txsync_one = xsk_txsync,
    .rxsync_one = xsk_rxsync,
    .rxsync_long = true,
    .destroy = nmc_nic_destroy,
    .shared_bufs = true,
    .poll_fd = xsk_port_fd,
    .wait = nmc_nic_wait,
    .inherited = nmc_nic_foreign,
    .adopt_req = xsk_adopt_req,
    .adapter_host_rings = true,
};
NMC_TRANSPORT(xsk_ops)

int nmc_xsk_keep(struct nmc_port *port, int fd)
{
    int dup;

    if (!port || port->ops != &xsk_ops || fd < 0)
        return -EINVAL;
    if (port->nic_hold > 0)
        return -EBUSY;
    if ((dup = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
        return -errno;
    port->nic_hold = dup + 1;
    return 0;
}

/* An open that lost a race of first opens in two processes (each made
 * its own record; the other's bind came first) opens again, once: it then
 * finds the winner's record and joins it, as a later open would. */
int nmc_xsk_open(const struct nmc_pipe_req *req, struct nmc_port **out)
{
    int err;

    nmc_nic_refusal_clear();
    lost_first_bind = false;
    err = nmc_open_with(req, out, &xsk_ops);
    if (err == -EBUSY && lost_first_bind && !nmc_nic_refusal(NULL)) {
        lost_first_bind = false;
        err = nmc_open_with(req, out, &xsk_ops);
    }
    return err;
}

/* Only join a live record of the interface (another process's, or this
 * one's), as nmc_xsk_open would, taking its sockets: -ENXIO when none
 * binds every queue the request binds with its ring count. */
int nmc_xsk_join(const struct nmc_pipe_req *req, struct nmc_port **out)
{
    int err;

    if (req->nic_nsocks || req->host_tx_rings || req->host_rx_rings || nmc_nic_host_mode(req->mode))
        return -ENXIO;
    nmc_nic_set_join_only(true);
    err = nmc_xsk_open(req, out);
    nmc_nic_set_join_only(false);
    return err;
}
