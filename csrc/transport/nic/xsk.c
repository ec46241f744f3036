/*
 * xsk.c -- AF_XDP sockets: setup, and the translation between netmap rings
 * and XSK rings in txsync/rxsync.
 *
 * The UMEM is the region's buffer pool, registered in unaligned-chunk mode
 * starting one page before buffer 0.  netmap buffer i is UMEM offset
 * PAGE + i * buf_size; the fill address handed to the kernel for it is 256
 * bytes earlier, so that the kernel (which writes received data
 * XDP_PACKET_HEADROOM after the chunk start) puts the frame exactly where
 * netmap expects it: at the start of the buffer.  No copy in user space.
 *
 * RX: released slots' buffers go to the FILL ring; received descriptors
 * become slots with the buffer they arrived in (NS_BUF_CHANGED), fragments
 * of one packet chained with NS_MOREFRAG.  TX: slots [hwcur, head) become
 * TX descriptors of their own buffers (which therefore never change); the
 * tail advances as the completion ring returns them, as netmap's native
 * drivers do.  Ring indexes use acquire loads and release stores.
 */
#include "nmc_xsk.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

static uint64_t umem_ofs(const struct nmc_geom *g, uint32_t idx)
{
    return NMC_PAGE + (uint64_t)idx * g->buf_size;
}

/* UMEM offset of a received frame -> buffer index, or UINT32_MAX. */
static uint32_t buf_of(const struct nmc_geom *g, uint64_t addr)
{
    uint64_t a = addr & ((1ULL << 48) - 1);     /* unaligned mode: low 48 bits */

    a += addr >> 48;
    if (a < NMC_PAGE || (a - NMC_PAGE) % g->buf_size)
        return UINT32_MAX;
    a = (a - NMC_PAGE) / g->buf_size;
    return a >= 2 && a < g->buf_num ? (uint32_t)a : UINT32_MAX;
}

static int map_ring(int fd, const struct nmc_xdp_ring_offset *o, uint32_t n, size_t esize,
                    uint64_t pgoff, struct nmc_xring *r)
{
    if (n == 0 || (n & (n - 1)) || n > NMC_XSK_RX_FACTOR * NMC_MAXSLOTS)
        return -EPROTO;                 /* a size from the share memory, garbled */
    r->map_len = o->desc + n * esize;
    r->map = mmap(NULL, r->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
                  (off_t)pgoff);
    if (r->map == MAP_FAILED) {
        r->map = NULL;
        return -errno;
    }
    r->producer = (uint32_t *)((uint8_t *)r->map + o->producer);
    r->consumer = (uint32_t *)((uint8_t *)r->map + o->consumer);
    r->flags = (uint32_t *)((uint8_t *)r->map + o->flags);
    r->desc = (uint8_t *)r->map + o->desc;
    r->size = n;
    r->mask = n - 1;
    return 0;
}

static void unmap_ring(struct nmc_xring *r)
{
    if (r->map)
        munmap(r->map, r->map_len);
    r->map = r->desc = NULL;
    r->producer = r->consumer = r->flags = NULL;
}

static int set_u32(int fd, int opt, uint32_t v)
{
    return setsockopt(fd, SOL_XDP, opt, &v, sizeof(v)) < 0 ? -errno : 0;
}

/* Register the UMEM on fd (the first socket of this process). */
int nmc_xsk_umem_reg(int fd, uint8_t *mem, const struct nmc_geom *g)
{
    struct nmc_xdp_umem_reg reg;

    memset(&reg, 0, sizeof(reg));
    reg.addr = (uint64_t)(uintptr_t)(mem + g->buf_pool_ofs - NMC_PAGE);
    reg.len = NMC_PAGE + (uint64_t)g->buf_num * g->buf_size;
    reg.chunk_size = g->buf_size;
    reg.flags = NMC_XDP_UMEM_UNALIGNED_CHUNK;
    return setsockopt(fd, SOL_XDP, NMC_XDP_UMEM_REG, &reg, sizeof(reg)) < 0 ? -errno : 0;
}

/* Create the rings of x and map them; sizes are powers of two.  RX and
 * FILL are `rx_size` (the kernel side of a receive queue: bursts wait
 * there), TX and COMP `tx_size`. */
int nmc_xsk_rings(struct nmc_xsk *x, uint32_t rx_size, uint32_t tx_size)
{
    int err;

    if ((err = set_u32(x->fd, NMC_XDP_UMEM_FILL_RING, rx_size)) < 0 ||
        (err = set_u32(x->fd, NMC_XDP_UMEM_COMPLETION_RING, tx_size)) < 0 ||
        (err = set_u32(x->fd, NMC_XDP_RX_RING, rx_size)) < 0 ||
        (err = set_u32(x->fd, NMC_XDP_TX_RING, tx_size)) < 0 ||
        (err = nmc_xsk_map(x, rx_size, tx_size)) < 0)
        return err;
    /* more descriptors per sendto than the default 32, but no more than a
     * veth peer's 256-frame queue takes in one go (absent before 6.x: fine) */
    set_u32(x->fd, NMC_XDP_MAX_TX_SKB_BUDGET, tx_size < 256 ? tx_size : 256);
    return 0;
}

/* Map the rings of x, made with these sizes (here, or by the process
 * whose socket x is a copy of). */
int nmc_xsk_map(struct nmc_xsk *x, uint32_t rx_size, uint32_t tx_size)
{
    struct nmc_xdp_mmap_offsets off;
    socklen_t len = sizeof(off);
    int err;

    memset(&off, 0, sizeof(off));
    if (getsockopt(x->fd, SOL_XDP, NMC_XDP_MMAP_OFFSETS, &off, &len) < 0)
        return -errno;
    if (len < sizeof(off))
        return -EOPNOTSUPP;             /* pre-5.4 layout: not supported */
    if ((err = map_ring(x->fd, &off.rx, rx_size, sizeof(struct nmc_xdp_desc), NMC_XDP_PGOFF_RX_RING, &x->rx)) < 0 ||
        (err = map_ring(x->fd, &off.tx, tx_size, sizeof(struct nmc_xdp_desc), NMC_XDP_PGOFF_TX_RING, &x->tx)) < 0 ||
        (err = map_ring(x->fd, &off.fr, rx_size, sizeof(uint64_t), NMC_XDP_UMEM_PGOFF_FILL_RING, &x->fill)) < 0 ||
        (err = map_ring(x->fd, &off.cr, tx_size, sizeof(uint64_t), NMC_XDP_UMEM_PGOFF_COMP_RING, &x->comp)) < 0)
        return err;
    return 0;
}

void nmc_xsk_close(struct nmc_xsk *x)
{
    unmap_ring(&x->rx);
    unmap_ring(&x->tx);
    unmap_ring(&x->fill);
    unmap_ring(&x->comp);
    if (x->fd >= 0)
        close(x->fd);
    x->fd = -1;
}

/* Bind; SG first when wanted, then without it.  `shared_fd` >= 0 binds
 * with XDP_SHARED_UMEM (flags are the UMEM owner's then). */
int nmc_xsk_bind(struct nmc_xsk *x, int shared_fd, uint32_t mode_flags, bool want_sg)
{
    struct nmc_sockaddr_xdp sa = { .sxdp_family = AF_XDP, .sxdp_ifindex = x->ifindex,
                                   .sxdp_queue_id = x->queue };
    uint32_t opt = 0;
    socklen_t len = sizeof(opt);
    int err = -EINVAL;

    if (shared_fd >= 0) {
        sa.sxdp_flags = NMC_XDP_SHARED_UMEM;
        sa.sxdp_shared_umem_fd = (uint32_t)shared_fd;
        err = bind(x->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
    } else {
        for (int sg = want_sg ? 1 : 0; sg >= 0 && err < 0; sg--) {
            sa.sxdp_flags = (uint16_t)(mode_flags | NMC_XDP_USE_NEED_WAKEUP | (sg ? NMC_XDP_USE_SG : 0));
            err = bind(x->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
            x->sg = sg && err == 0;
            if (err == -EBUSY || err == -ENXIO || err == -ENODEV)
                break;                  /* not an SG problem: no point retrying */
        }
    }
    if (err < 0)
        return err;
    x->bind_flags = sa.sxdp_flags;
    if (getsockopt(x->fd, SOL_XDP, NMC_XDP_OPTIONS, &opt, &len) == 0)
        x->zerocopy = opt & NMC_XDP_OPTIONS_ZEROCOPY;
    return 0;
}

/* Give buffers to the FILL ring, marked in the ledger as in our queues;
 * returns how many went in. */
uint32_t nmc_xsk_fill(struct nmc_xsk *x, const struct nmc_geom *g, const uint32_t *idx, uint32_t n)
{
    struct nmc_xring *f = &x->fill;
    uint32_t prod = *f->producer, cons = nmc_load_acq(f->consumer);
    uint32_t room = f->size - (prod - cons), k;
    uint64_t *addr = f->desc;

    if (n > room)
        n = room;
    for (k = 0; k < n; k++) {
        addr[(prod + k) & f->mask] = umem_ofs(g, idx[k]) - NMC_XDP_HEADROOM;
        if (x->queued && idx[k] < g->buf_num)
            x->queued[idx[k]] = x->tag;
    }
    nmc_store_rel(f->producer, prod + n);
    return n;
}

/* Wake the kernel until it has taken every queued descriptor (in copy
 * mode each sendto sends at most the TX budget), or stops making
 * progress: one txsync sends everything, as netmap's does. */
static void kick_tx(struct nmc_xsk *x)
{
    for (int i = 0; i < 64; i++) {
        uint32_t cons = nmc_load_acq(x->tx.consumer);
        if (cons == *x->tx.producer || !(nmc_load_acq(x->tx.flags) & NMC_XDP_RING_NEED_WAKEUP))
            return;
        sendto(x->fd, NULL, 0, MSG_DONTWAIT, NULL, 0);
        if (nmc_load_acq(x->tx.consumer) == cons)
            return;                     /* no room downstream now: the next sync retries */
    }
}

static void kick_fill(struct nmc_xsk *x)
{
    if (nmc_load_acq(x->fill.flags) & NMC_XDP_RING_NEED_WAKEUP)
        recvfrom(x->fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
}

/* Completed TX descriptors: their count frees that many slots. */
static uint32_t reap_completions(struct nmc_xsk *x)
{
    struct nmc_xring *c = &x->comp;
    uint32_t cons = *c->consumer, n = nmc_load_acq(c->producer) - cons, inflight = nmc_xsk_inflight(x);

    if (n > inflight)
        n = inflight;                   /* never trust more than we sent */
    nmc_store_rel(c->consumer, cons + n);
    return n;
}

int nmc_xsk_txsync_one(struct nmc_port *p, struct nmc_lring *lr)
{
    struct nmc_xsk *x = lr->xsk;
    struct nmc_kring *kr = lr->kr;
    struct netmap_ring *ring = lr->ring;
    struct nmc_xring *t = &x->tx;
    struct nmc_xdp_desc *d = t->desc;
    uint32_t n = lr->n, head, j, prod, room, sent = 0, bytes = 0;
    int err = 0;

    if (nmc_nic_foreign(p))
        return -EOWNERDEAD;             /* inherited across fork(): the sockets are not ours */
    if (nmc_txsync_prologue(lr, &head) < 0) {
        nmc_ring_reinit(lr, &p->g);
        return -EINVAL;
    }
    reap_completions(x);
    prod = *t->producer;
    room = t->size - (prod - nmc_load_acq(t->consumer));
    for (j = kr->hwcur; j != head && sent < room; j = nmc_next(j, n)) {
        struct netmap_slot *s = &ring->slot[j];
        if (s->buf_idx < 2 || s->buf_idx >= p->g.buf_num || s->len > p->g.buf_size) {
            err = -EINVAL;
            break;
        }
        if (lr->tx_in_drop || s->len == 0 || ((s->flags & NS_MOREFRAG) && !x->sg)) {
            lr->tx_dropped++;           /* nothing to send, or a chain without multi-buffer */
            lr->tx_in_drop = (s->flags & NS_MOREFRAG) != 0;
            continue;
        }
        d[(prod + sent) & t->mask] = (struct nmc_xdp_desc){
            .addr = umem_ofs(&p->g, s->buf_idx), .len = s->len,
            .options = (s->flags & NS_MOREFRAG) && x->sg ? NMC_XDP_PKT_CONTD : 0 };
        s->flags &= ~NS_BUF_CHANGED;
        bytes += s->len;
        sent++;
    }
    nmc_store_rel(t->producer, prod + sent);
    kr->hwcur = j;
    kick_tx(x);
    reap_completions(x);
    nmc_ring_count(kr, sent, bytes);
    kr->hwtail = kr->rtail = (kr->hwcur + n - 1 - nmc_xsk_inflight(x)) % n;
    ring->tail = kr->hwtail;
    if (err < 0)
        nmc_ring_reinit(lr, &p->g);
    return err;
}

/* Buffers for the FILL ring; what does not fit waits in x->spare. */
static void refill(struct nmc_port *p, struct nmc_xsk *x, const uint32_t *give, uint32_t n)
{
    uint32_t in = n ? nmc_xsk_fill(x, &p->g, give, n) : 0;

    for (uint32_t k = in; k < n && nmc_xsk_spare_push(x, give[k]); k++)
        ;
    kick_fill(x);
}

/* How many of the `avail` RX descriptors from `cons` end whole packets
 * within `room` slots. */
static uint32_t whole_packets(const struct nmc_xring *r, uint32_t cons, uint32_t avail, uint32_t room)
{
    const struct nmc_xdp_desc *d = r->desc;
    uint32_t lim = avail < room ? avail : room, end = 0;

    for (uint32_t k = 0; k < lim; k++)
        if (!(d[(cons + k) & r->mask].options & NMC_XDP_PKT_CONTD))
            end = k + 1;
    return lim == avail ? avail : end;
}

int nmc_xsk_rxsync_one(struct nmc_port *p, struct nmc_lring *lr)
{
    struct nmc_xsk *x = lr->xsk;
    struct nmc_kring *kr = lr->kr;
    struct netmap_ring *ring = lr->ring;
    struct nmc_xring *r = &x->rx;
    struct nmc_xdp_desc *d = r->desc;
    uint32_t n = lr->n, head, j, cons, avail, got = 0, pkts = 0, bytes = 0;
    uint32_t give[NMC_MAXSLOTS], ngive = 0;

    if (nmc_nic_foreign(p))
        return -EOWNERDEAD;
    if (nmc_rxsync_prologue(lr, &head) < 0) {
        nmc_ring_reinit(lr, &p->g);
        return -EINVAL;
    }
    head = nmc_rx_whole_head(p, lr, head);
    nmc_nic_forward_up(p, lr, head);                     /* transparent mode */
    for (j = kr->hwcur; j != head; j = nmc_next(j, n)) {  /* fewer than NMC_MAXSLOTS */
        uint32_t idx = ring->slot[j].buf_idx;           /* released: back to FILL */
        if (idx >= 2 && idx < p->g.buf_num)
            give[ngive++] = idx;
    }
    while (ngive < NMC_MAXSLOTS && nmc_xsk_spare_pop(x, &give[ngive]))  /* left over last time */
        ngive++;
    kr->hwcur = head;
    refill(p, x, give, ngive);
    cons = *r->consumer;
    avail = whole_packets(r, cons, nmc_load_acq(r->producer) - cons,
                          nmc_dist(kr->hwtail, nmc_prev(kr->hwcur, n), n));
    for (j = kr->hwtail; got < avail; got++, j = nmc_next(j, n)) {
        struct nmc_xdp_desc *e = &d[(cons + got) & r->mask];
        struct netmap_slot *s = &ring->slot[j];
        uint32_t idx = buf_of(&p->g, e->addr);
        bool more = e->options & NMC_XDP_PKT_CONTD;
        if (idx != UINT32_MAX && x->queued)
            x->queued[idx] = 0;         /* out of the kernel's queues: into a slot */
        s->buf_idx = idx == UINT32_MAX ? 0 : idx;
        s->len = (uint16_t)(idx == UINT32_MAX || e->len > p->g.buf_size ? 0 : e->len);
        s->flags = NS_BUF_CHANGED | (more ? NS_MOREFRAG : 0);
        bytes += s->len;
        pkts += !more;
    }
    nmc_store_rel(r->consumer, cons + got);
    kr->hwtail = kr->rtail = j;
    ring->tail = j;
    nmc_ring_count(kr, pkts, bytes);
    return 0;
}
