/*
 * host.c -- the host rings of a NIC port (netmap's "host stack" rings,
 * numbered after the hardware rings).
 *
 * The host stack's side is a tap device the port owns (made by the
 * Python setup, nmcompat/backends/_host.py): tc programs send what the
 * stack transmits on the interface to the tap, so reading the tap's
 * descriptor fills the host RX ring; what the port writes to the
 * descriptor enters the tap, whose tc program puts it into the interface's
 * ingress, as if the interface had received it.  Frames are copied, one
 * read() or write() each, all in C.
 *
 * Transparent mode (netmap's NR_FORWARD on an RX ring, NS_FORWARD on its
 * slots): released NIC RX slots go up to the stack through the tap (the
 * port's own, or that of another port of the same interface in this
 * process); released host RX slots are copied into the port's NIC TX rings
 * (only when it binds all of them, as netmap) and leave at the next txsync
 * or poll.
 */
#define _GNU_SOURCE
#include "nmc_nic.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HOST_FRAME_MAX 65536u

#define HOST_HOLDS 4u

/* One per NIC port with a tap.  Every host ring of the port shares the
 * tap (and frame[]), so their syncs, and forwarding up, take `lock`. */
struct nmc_host_tap {
    pthread_mutex_t lock;
    int fd;                     /* the tap (a duplicate of the request's or of a sibling port's), or -1 */
    int holds[HOST_HOLDS];      /* the request's nic_host_holds, duplicated */
    uint32_t nholds;
    uint32_t pend_len;          /* a frame read that did not fit the ring yet */
    uint64_t rx_truncated, rx_dropped, fwd_up, fwd_down;
    uint8_t frame[HOST_FRAME_MAX + 1];  /* one more: a longer frame read shows it was cut */
};

static bool nmc_nic_has_tap(const struct nmc_port *p)
{
    return p->nic_host && p->nic_host->fd >= 0;
}

/* Does p bind host rings (and so wait on its own tap)?  A sibling's tap
 * used for transparent mode (nmc_nic_forward_up) is written to, never
 * waited on. */
bool nmc_nic_binds_host(const struct nmc_port *p)
{
    for (uint32_t i = 0; i < p->ntx; i++)
        if (p->tx[i].host)
            return true;
    for (uint32_t i = 0; i < p->nrx; i++)
        if (p->rx[i].host)
            return true;
    return false;
}

/* The request's hold descriptors, duplicated into h. */
static int take_holds(struct nmc_host_tap *h, const struct nmc_pipe_req *req)
{
    if (req->nic_host_nholds > HOST_HOLDS || (req->nic_host_nholds && !req->nic_host_holds))
        return -EINVAL;
    for (uint32_t i = 0; i < req->nic_host_nholds; i++) {
        if ((h->holds[i] = fcntl(req->nic_host_holds[i], F_DUPFD_CLOEXEC, 0)) < 0)
            return -errno;
        h->nholds = i + 1;
    }
    return 0;
}

/* With host rings bound: take the tap, mark the host rings, and wait on
 * the tap too (p->kfd has room for one more descriptor); with holds, keep
 * them. */
int nmc_nic_host_attach(struct nmc_port *p, const struct nmc_pipe_req *req)
{
    uint32_t hw_tx = nmc_nic_bound_hw(p, 0), hw_rx = nmc_nic_bound_hw(p, 1);
    bool host = hw_tx < p->ntx || hw_rx < p->nrx;
    struct nmc_host_tap *h;
    int err;

    if (!host && req->nic_host_nholds == 0)
        return 0;
    if (!(h = calloc(1, sizeof(*h))))
        return -ENOMEM;
    pthread_mutex_init(&h->lock, NULL);
    h->fd = -1;
    p->nic_host = h;                    /* nmc_nic_host_close() undoes a failure */
    if ((err = take_holds(h, req)) < 0)
        return err;
    if (!host)
        return 0;
    if ((h->fd = fcntl(req->nic_tap_fd, F_DUPFD_CLOEXEC, 0)) < 0)
        return -errno;
    for (uint32_t i = hw_tx; i < p->ntx; i++)
        p->tx[i].host = true;
    for (uint32_t i = hw_rx; i < p->nrx; i++)
        p->rx[i].host = true;
    p->kfd[p->nkfd++] = (struct nmc_kfd){ h->fd, (hw_rx < p->nrx ? POLLIN : 0) | POLLOUT };
    return 0;
}

int nmc_host_info(struct nmc_port *p, struct nmc_host_info *info)
{
    if (!p || !info || (!p->xsk && !p->pkts && !p->nic_host))
        return -EINVAL;
    memset(info, 0, sizeof(*info));
    info->tap_fd = p->nic_host ? p->nic_host->fd : -1;
    if (p->nic_host) {
        info->rx_truncated = p->nic_host->rx_truncated;
        info->rx_dropped = p->nic_host->rx_dropped;
        info->fwd_up = p->nic_host->fwd_up;
        info->fwd_down = p->nic_host->fwd_down;
    }
    return 0;
}

void nmc_nic_host_close(struct nmc_port *p)
{
    if (!p->nic_host)
        return;
    if (p->nic_host->fd >= 0)
        close(p->nic_host->fd);
    for (uint32_t i = 0; i < p->nic_host->nholds; i++)
        close(p->nic_host->holds[i]);
    pthread_mutex_destroy(&p->nic_host->lock);
    free(p->nic_host);
    p->nic_host = NULL;
}

/* Frame [j, ...) of the host TX ring into h->frame; its length, or -1 when
 * the chain is not complete before head; *corrupt for a slot that names
 * no buffer. */
static int64_t gather(struct nmc_port *p, struct nmc_lring *lr, uint32_t *j, uint32_t head,
                      bool *corrupt)
{
    struct nmc_host_tap *h = p->nic_host;
    uint32_t len = 0, k = *j;
    bool more;

    do {
        struct netmap_slot v = nmc_slot_read(&lr->ring->slot[k]);
        if (v.buf_idx < 2 || v.buf_idx >= p->g.buf_num || v.len > p->g.buf_size) {
            *corrupt = true;
            return -1;
        }
        if (len + v.len <= HOST_FRAME_MAX)
            memcpy(h->frame + len, nmc_buf(p->mem, &p->g, v.buf_idx), v.len);
        len += v.len;
        more = v.flags & NS_MOREFRAG;
        k = nmc_next(k, lr->n);
    } while (more && k != head);
    if (more)
        return -1;
    *j = k;
    return len > HOST_FRAME_MAX ? 0 : len;      /* too long: dropped */
}

/* The tap of another port of p's interface in this process that binds
 * host rings, or -1.  Used under the NIC lock only, never kept: once that
 * port closes (nmc_nic_leave() before its tap closes), its tap's program
 * no longer marks what enters there, and a frame written to it would come
 * back to p's own NIC RX ring (an AF_PACKET socket sees it), forwarded up
 * again at every rxsync.  NIC lock held. */
static int lender_tap(struct nmc_port *p)
{
    struct nmc_nic_state *st = nmc_nic_of(p);

    for (int i = 0; st && i < st->nports; i++) {
        struct nmc_port *o = st->ports[i];
        if (o != p && nmc_nic_binds_host(o) && nmc_nic_has_tap(o) &&
            strcmp(o->rec->parent, p->rec->parent) == 0)
            return o->nic_host->fd;
    }
    return -1;
}

/* p's frame buffer, made on first use (a port without host rings has
 * none, or one without a tap for its holds).  NIC lock held. */
static struct nmc_host_tap *frame_of(struct nmc_port *p)
{
    if (!p->nic_host && (p->nic_host = calloc(1, sizeof(*p->nic_host)))) {
        pthread_mutex_init(&p->nic_host->lock, NULL);
        p->nic_host->fd = -1;
    }
    return p->nic_host;
}

/* Transparent mode, NIC RX -> stack: before the NIC RX ring lr takes back
 * its released slots [hwcur, head), the frames whose first slot carries
 * NS_FORWARD are written to the tap fd (with no tap anywhere they are only
 * consumed, docs/DESIGN.md §12). */
static void forward_up(struct nmc_port *p, struct nmc_lring *lr, uint32_t head,
                       struct nmc_host_tap *h, int fd)
{
    uint32_t j = lr->kr->hwcur;

    while (j != head) {
        uint32_t start = j;
        bool corrupt = false, fwd = lr->ring->slot[j].flags & NS_FORWARD;
        int64_t len = gather(p, lr, &j, head, &corrupt);
        if (len < 0) {
            if (!corrupt)
                break;
            j = nmc_next(start, lr->n); /* a slot naming no buffer: skipped */
            continue;
        }
        if (fwd && len > 0 && write(fd, h->frame, (size_t)len) > 0)
            h->fwd_up++;
    }
}

/* Through the port's own tap, or that of a sibling with host rings, found
 * again at every call and used under the NIC lock (which also serialises
 * the use of p's frame buffer: p has no host ring syncs). */
void nmc_nic_forward_up(struct nmc_port *p, struct nmc_lring *lr, uint32_t head)
{
    struct nmc_host_tap *h;
    int fd;

    if (!(lr->ring->flags & NR_FORWARD) || lr->host)
        return;
    if (nmc_nic_has_tap(p)) {
        h = p->nic_host;
        pthread_mutex_lock(&h->lock);
        forward_up(p, lr, head, h, h->fd);
        pthread_mutex_unlock(&h->lock);
        return;
    }
    nmc_nic_lock();
    if ((fd = lender_tap(p)) >= 0 && (h = frame_of(p)) != NULL)
        forward_up(p, lr, head, h, fd);
    nmc_nic_unlock();
}

/* The chain of n slots at j of ring lr copied into NIC TX ring t at its
 * head, as the user would put it there; -ENOSPC without room for all. */
static int copy_chain(struct nmc_port *p, struct nmc_lring *lr, uint32_t j, uint32_t n,
                      struct nmc_lring *t)
{
    struct netmap_ring *dst = t->ring;
    uint32_t head = nmc_user_u32(&dst->head), tail = nmc_user_u32(&dst->tail);

    if (head >= t->n || tail >= t->n || nmc_dist(head, tail, t->n) < n)
        return -ENOSPC;
    for (uint32_t i = 0; i < n; i++, j = nmc_next(j, lr->n), head = nmc_next(head, t->n)) {
        struct netmap_slot v = nmc_slot_read(&lr->ring->slot[j]);
        struct netmap_slot *d = &dst->slot[head];
        bool ok = v.buf_idx >= 2 && v.buf_idx < p->g.buf_num && v.len <= p->g.buf_size &&
                  d->buf_idx >= 2 && d->buf_idx < p->g.buf_num;
        if (ok)
            memcpy(nmc_buf(p->mem, &p->g, d->buf_idx), nmc_buf(p->mem, &p->g, v.buf_idx), v.len);
        d->len = (uint16_t)(ok ? v.len : 0);
        d->flags = (uint16_t)(v.flags & NS_MOREFRAG);
    }
    dst->head = dst->cur = head;
    return 0;
}

/* Transparent mode, host RX -> NIC: released host RX slots [hwcur, head)
 * with NS_FORWARD are copied into the NIC TX rings at their head (as the
 * user would), when the port binds all of them (netmap's
 * NAF_CAN_FORWARD_DOWN).  A chain that finds no room is consumed. */
static void forward_down(struct nmc_port *p, struct nmc_lring *lr, uint32_t head)
{
    uint32_t nhw = p->rec->nrings[0][0] - p->rec->nhost[0], ntx = nmc_nic_bound_hw(p, 0);
    uint32_t j = lr->kr->hwcur, t = 0;

    if (!(lr->ring->flags & NR_FORWARD) || ntx == 0 || ntx != nhw || p->holder->first[0] != 0)
        return;
    while (j != head) {
        uint32_t n = 1, k = j;
        while ((lr->ring->slot[k].flags & NS_MOREFRAG) && nmc_next(k, lr->n) != head) {
            k = nmc_next(k, lr->n);
            n++;
        }
        if (lr->ring->slot[j].flags & NS_FORWARD)
            for (uint32_t tries = 0; tries < ntx; tries++, t = (t + 1) % ntx)
                if (copy_chain(p, lr, j, n, &p->tx[t]) == 0) {
                    p->nic_host->fwd_down++;
                    p->fwd_pending = true;
                    break;
                }
        j = nmc_next(k, lr->n);
    }
}

/* Host TX: every released frame goes to the stack; slots come back at once. */
static int host_txsync(struct nmc_port *p, struct nmc_lring *lr)
{
    struct nmc_kring *kr = lr->kr;
    uint32_t head, j, sent = 0, bytes = 0;
    bool corrupt = false;

    if (nmc_nic_foreign(p))
        return -EOWNERDEAD;
    if (nmc_txsync_prologue(lr, &head) < 0) {
        nmc_ring_reinit(lr, &p->g);
        return -EINVAL;
    }
    for (j = kr->hwcur; j != head;) {
        uint32_t start = j;
        int64_t len = gather(p, lr, &j, head, &corrupt);
        if (len < 0)
            break;
        if (len > 0 && write(p->nic_host->fd, p->nic_host->frame, (size_t)len) < 0 &&
            errno == EAGAIN) {
            j = start;                  /* the tap is full: retry at the next sync */
            break;
        }
        sent++;
        bytes += (uint32_t)len;
    }
    kr->hwcur = j;
    kr->hwtail = kr->rtail = nmc_prev(j, lr->n);
    lr->ring->tail = kr->hwtail;
    nmc_ring_count(kr, sent, bytes);
    if (corrupt) {
        nmc_ring_reinit(lr, &p->g);
        return -EINVAL;
    }
    return 0;
}

/* The next frame of the tap into h->frame (pend_len), cut to what a chain
 * of the ring holds: 64 KiB (the tap copies no more than asked, or says
 * the frame was longer) and NETMAP_MAX_FRAGS buffers; a cut frame is
 * counted here, once, however many rxsyncs it then waits for room.  false:
 * nothing to read. */
static bool read_frame(struct nmc_host_tap *h, uint32_t bs)
{
    ssize_t got = read(h->fd, h->frame, sizeof(h->frame));
    uint32_t len;

    if (got <= 0)
        return false;                   /* EAGAIN: nothing more */
    len = got > (ssize_t)HOST_FRAME_MAX ? HOST_FRAME_MAX : (uint32_t)got;
    if (len > NETMAP_MAX_FRAGS * bs)
        len = NETMAP_MAX_FRAGS * bs;
    if (len < (uint64_t)got)
        h->rx_truncated++;
    h->pend_len = len;
    return true;
}

/* Can a frame of len bytes ever fit ring lr: a chain of at most n - 1
 * slots (one always stays empty), 1 slot for an empty frame. */
static bool ring_holds(const struct nmc_lring *lr, uint32_t len, uint32_t bs)
{
    uint32_t nfr = len ? (len + bs - 1) / bs : 1;

    return nfr < lr->n;
}

/* The pending frame into free slots from j (room of them); the slot after
 * it, or j when it does not fit. */
static uint32_t put_pending(struct nmc_port *p, struct nmc_lring *lr, uint32_t j, uint32_t *room)
{
    struct nmc_host_tap *h = p->nic_host;
    uint32_t bs = p->g.buf_size, len = h->pend_len, pos = 0;
    uint32_t nfr = len ? (len + bs - 1) / bs : 1;

    if (nfr > *room)
        return j;
    do {
        struct netmap_slot *s = &lr->ring->slot[j];
        uint32_t chunk = len - pos > bs ? bs : len - pos;
        if (s->buf_idx >= 2 && s->buf_idx < p->g.buf_num)
            memcpy(nmc_buf(p->mem, &p->g, s->buf_idx), h->frame + pos, chunk);
        s->len = (uint16_t)(s->buf_idx >= 2 && s->buf_idx < p->g.buf_num ? chunk : 0);
        pos += chunk;
        s->flags = pos < len ? NS_MOREFRAG : 0;
        j = nmc_next(j, lr->n);
    } while (pos < len);
    *room -= nfr;
    h->pend_len = 0;
    return j;
}

/* Host RX: what the stack sent on the interface, read from the tap. */
static int host_rxsync(struct nmc_port *p, struct nmc_lring *lr)
{
    struct nmc_host_tap *h = p->nic_host;
    uint32_t n = lr->n, head, j, room, pkts = 0, bytes = 0;
    int err;

    if ((err = nmc_nic_rx_release(p, lr, &head, forward_down)) < 0)
        return err;
    j = lr->kr->hwtail;
    room = nmc_dist(j, nmc_prev(head, n), n);
    for (;;) {
        if (h->pend_len == 0 && !read_frame(h, p->g.buf_size))
            break;
        if (!ring_holds(lr, h->pend_len, p->g.buf_size)) {
            h->rx_dropped++;            /* it would wait forever: netmap drops it too */
            h->pend_len = 0;
            continue;
        }
        uint32_t len = h->pend_len, next = put_pending(p, lr, j, &room);
        if (next == j && h->pend_len)
            break;                      /* no room: it waits for the next rxsync */
        j = next;
        pkts++;
        bytes += len;
    }
    nmc_nic_rx_publish(lr, j, pkts, bytes);
    return 0;
}

int nmc_nic_host_txsync(struct nmc_port *p, struct nmc_lring *lr)
{
    int err;

    if (nmc_nic_foreign(p) || !p->nic_host)
        return -EOWNERDEAD;             /* inherited across fork(): the tap is not ours */
    pthread_mutex_lock(&p->nic_host->lock);
    err = host_txsync(p, lr);
    pthread_mutex_unlock(&p->nic_host->lock);
    return err;
}

int nmc_nic_host_rxsync(struct nmc_port *p, struct nmc_lring *lr)
{
    int err;

    if (nmc_nic_foreign(p) || !p->nic_host)
        return -EOWNERDEAD;             /* inherited across fork(): the tap is not ours */
    pthread_mutex_lock(&p->nic_host->lock);
    err = host_rxsync(p, lr);
    pthread_mutex_unlock(&p->nic_host->lock);
    return err;
}
