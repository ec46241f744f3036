/*
 * xsk_port.c -- netmap NIC ports over AF_XDP: one region per process holds
 * the rings of every NIC port the process opens (netmap's global region:
 * a bridge between two NICs swaps buffers with no copy), and its buffer
 * pool is the UMEM shared by all the process's AF_XDP sockets.
 */
#include "nmc_xsk.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* Live sockets on this process's UMEM: a new one binds with
 * XDP_SHARED_UMEM to any of them.  Their (ifindex, queue) too: the kernel
 * answers a shared-UMEM bind to a queue this process already holds with
 * EINVAL (the new socket has its own FILL ring), not with EBUSY. */
struct umem_sock { int fd; uint32_t ifindex, queue; };
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct umem_sock g_socks[1024];
static int g_nfds;
static uint16_t g_mem_id;

static int umem_peer(uint16_t mem_id)
{
    return g_nfds > 0 && g_mem_id == mem_id ? g_socks[0].fd : -1;
}

static bool umem_holds(uint32_t ifindex, uint32_t queue)
{
    for (int i = 0; i < g_nfds; i++)
        if (g_socks[i].ifindex == ifindex && g_socks[i].queue == queue)
            return true;
    return false;
}

static void umem_add(uint16_t mem_id, const struct nmc_xsk *x)
{
    if (g_nfds < (int)(sizeof(g_socks) / sizeof(g_socks[0]))) {
        g_mem_id = mem_id;
        g_socks[g_nfds++] = (struct umem_sock){ x->fd, x->ifindex, x->queue };
    }
}

static void umem_del(int fd)
{
    for (int i = 0; i < g_nfds; i++)
        if (g_socks[i].fd == fd) {
            g_socks[i] = g_socks[--g_nfds];
            return;
        }
}

static uint32_t pow2(uint32_t v)
{
    uint32_t p = 1;

    while (p < v)
        p <<= 1;
    return p;
}

/* Socket for queue q: UMEM (own or shared), rings, bind. */
static int make_xsk(struct nmc_port *p, const struct nmc_pipe_req *req, uint32_t q,
                    uint32_t nslots, struct nmc_xsk *x)
{
    int shared, err;

    memset(x, 0, sizeof(*x));
    x->ifindex = req->ifindex;
    x->queue = q;
    x->fd = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (x->fd < 0)
        return -errno;
    pthread_mutex_lock(&g_lock);
    shared = umem_peer(p->mem_id);
    err = umem_holds(x->ifindex, q) ? -EBUSY : 0;
    if (err == 0 && shared < 0)
        err = nmc_xsk_umem_reg(x->fd, p->mem, &p->g);
    if (err == 0)
        err = nmc_xsk_rings(x, pow2(NMC_XSK_RX_FACTOR * nslots), pow2(nslots));
    if (err == 0)
        err = nmc_xsk_bind(x, shared, req->xdp_bind, !req->no_sg);
    if (err == 0)
        umem_add(p->mem_id, x);
    pthread_mutex_unlock(&g_lock);
    if (err < 0) {
        nmc_xsk_close(x);               /* socket, rings: nothing of a failed queue stays */
        return err;
    }
    if (shared >= 0) {                  /* the owner's bind flags apply */
        x->sg = false;
        for (int i = 0; i < p->nxsk; i++)
            x->sg |= p->xsk[i].sg;
    }
    return err;
}

/* Stock the FILL ring with the RX ring's buffers plus extras, up to the
 * FILL ring's size; every buffer that circulates is remembered in owned. */
static int stock(struct nmc_port *p, struct nmc_region *r, struct nmc_lring *lr)
{
    uint32_t n = lr->n, total = lr->xsk->fill.size, *give;
    int err;

    if (total < n)
        total = n;
    give = calloc(total, sizeof(uint32_t));
    lr->spare = calloc(total, sizeof(uint32_t));
    lr->spare_cap = total;
    if (!give || !lr->spare) {
        free(give);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++)
        give[i] = lr->ring->slot[i].buf_idx;
    if ((err = nmc_buf_alloc(r, give + n, total - n)) == 0) {
        memcpy(p->owned + p->nowned, give, total * sizeof(uint32_t));
        p->nowned += total;
        if (nmc_xsk_fill(lr->xsk, &p->g, give, total) != total)
            err = -ENOSPC;
    }
    free(give);
    return err;
}

/* After the generic open: one socket per bound queue, FILL stocked. */
static int xsk_attach(struct nmc_port *p, struct nmc_region *r, const struct nmc_pipe_req *req)
{
    uint32_t first = p->holder->first[1] < p->holder->first[0] ? p->holder->first[1] : p->holder->first[0];
    uint32_t nq = p->ntx > p->nrx ? p->ntx : p->nrx, extra = 0;
    int err;

    for (uint32_t i = 0; i < p->nrx; i++)
        extra += pow2(NMC_XSK_RX_FACTOR * p->rx[i].n) + p->rx[i].n;
    p->xsk = calloc(nq + 1, sizeof(*p->xsk));
    p->owned = calloc(extra + 1, sizeof(uint32_t));
    p->kfd = calloc(nq + 1, sizeof(*p->kfd));
    if (!p->xsk || !p->owned || !p->kfd)
        return -ENOMEM;
    for (uint32_t k = 0; k < nq; k++) {
        uint32_t n = p->nrx ? p->rx[k % p->nrx].n : p->tx[k].n;
        if ((err = make_xsk(p, req, first + k, n, &p->xsk[k])) < 0)
            return err;
        p->nxsk++;
        p->kfd[p->nkfd++] = (struct nmc_kfd){ p->xsk[k].fd, POLLIN | POLLOUT };
        if (k < p->ntx)
            p->tx[k].xsk = &p->xsk[k];
        if (k < p->nrx)
            p->rx[k].xsk = &p->xsk[k];
    }
    for (uint32_t i = 0; i < p->nrx; i++)
        if ((err = stock(p, r, &p->rx[i])) < 0)
            return err;
    return 0;
}

/* Close the sockets and give back the FILL buffers (lock held). */
static void xsk_detach(struct nmc_port *p, struct nmc_region *r)
{
    pthread_mutex_lock(&g_lock);
    for (int k = 0; k < p->nxsk; k++) {
        umem_del(p->xsk[k].fd);
        nmc_xsk_close(&p->xsk[k]);
    }
    pthread_mutex_unlock(&g_lock);
    /* The buffers stay allocated: NIC ports of one process share the region
     * and swap buffers (bridge), so some of this port's may now sit in
     * another port's rings or kernel queues.  They are reclaimed with the
     * region, when the process's last NIC port closes. */
    (void)r;
    for (uint32_t i = 0; i < p->nrx; i++) {
        free(p->rx[i].spare);
        p->rx[i].spare = NULL;
    }
    free(p->xsk);
    free(p->owned);
    p->xsk = NULL;
    p->owned = NULL;
    p->nxsk = 0;
    p->nowned = 0;
    nmc_nic_forget_fds(p);
}


static struct nmc_xsk *xsk_of(struct nmc_port *p, uint32_t k)
{
    return p->xsk && k < (uint32_t)p->nxsk ? &p->xsk[k] : NULL;
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
 * POLLOUT from the kernel), an epoll set of them for several (POLLIN). */
static int xsk_port_fd(struct nmc_port *p)
{
    return p->nxsk == 1 ? p->xsk[0].fd : nmc_nic_poll_fd(p);
}

static int xsk_resolve(const char *rundir, const struct nmc_pipe_req *req, struct nmc_region *r,
                       uint32_t *port)
{
    return nmc_nic_resolve(rundir, req, r, port, NMC_KIND_NIC);
}

static const struct nmc_transport_ops xsk_ops = {
    .name = "afxdp",
    .kind = NMC_KIND_NIC,
    .validate = nmc_nic_validate,
    .resolve = xsk_resolve,
    .attach = xsk_attach,
    .detach = xsk_detach,
    .txsync_one = nmc_xsk_txsync_one,
    .rxsync_one = nmc_xsk_rxsync_one,
    .shared_bufs = true,
    .poll_fd = xsk_port_fd,
    .wait = nmc_nic_wait,
};
NMC_TRANSPORT(xsk_ops)

int nmc_xsk_open(const struct nmc_pipe_req *req, struct nmc_port **out)
{
    return nmc_open_with(req, out, &xsk_ops);
}
