/*
 * nic_region.c -- what both NIC transports share: one region per process
 * holds the rings of every NIC port the process opens (netmap's global
 * region: a bridge between two NICs swaps buffers with no copy), and a NIC
 * port waits on its kernel sockets.
 */
#include "nmc_nic.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

int nmc_nic_validate(const struct nmc_pipe_req *req)
{
    uint32_t q = req ? req->tx_rings : 0;

    if (!req || !req->parent || !*req->parent || strlen(req->parent) >= 16 || req->ifindex == 0)
        return -EINVAL;
    if (q == 0 || q > NMC_NIC_MAXQ || req->rx_rings != q)
        return -EINVAL;
    if (req->mode != NR_REG_ALL_NIC && req->mode != NR_REG_ONE_NIC)
        return -EOPNOTSUPP;             /* host rings: not reachable through AF_XDP */
    return 0;
}

/* The process's NIC region, and a new NIC record in it. */
int nmc_nic_resolve(const char *rundir, const struct nmc_pipe_req *req, struct nmc_region *r,
                    uint32_t *port, uint32_t kind)
{
    struct nmc_pipe_req key = *req;
    char name[32];
    uint32_t slots = nmc_bound(req->tx_slots, NMC_DEF_SLOTS, 2, NMC_MAXSLOTS);
    uint32_t rslots = nmc_bound(req->rx_slots, NMC_DEF_SLOTS, 2, NMC_MAXSLOTS);
    struct nmc_port_rec *rec;
    int err;

    snprintf(name, sizeof(name), "nic.%d", (int)getpid());
    key.parent = name;
    key.mem_id = 0;
    if (!key.buf_num) {
        uint32_t need = 2 * req->tx_rings * (slots + 2 * NMC_XSK_RX_FACTOR * rslots) + req->extra_bufs + 2;
        key.buf_num = need * 2 > NMC_NIC_DEF_BUF_NUM ? need * 2 : NMC_NIC_DEF_BUF_NUM;
    }
    if ((err = nmc_get_region(rundir, &key, r)) < 0)
        return err;
    if (!(rec = nmc_rec_alloc(r, kind, req->parent)))
        return -ENOMEM;
    rec->nends = 1;
    if ((err = nmc_rec_add_rings(r, rec, 0, 0, req->tx_rings, slots, true)) < 0 ||
        (err = nmc_rec_add_rings(r, rec, 0, 1, req->rx_rings, rslots, true)) < 0) {
        nmc_rec_free(r, rec);
        return err;
    }
    rec->state = NMC_LIVE;
    *port = (uint32_t)(rec - nmc_ports(r));
    return 0;
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
