/*
 * lb.c -- the load balancer's data path: packets from one input port are
 * hashed by flow (lb_hash.c) onto the pipes of each group.
 *
 * Groups form a chain, as in netmap's lb: a packet goes to one pipe of the
 * first group; once that group's reader has released it (the TX tail moved
 * past its slot) and the slot still carries it (slot.ptr has CARRIES), the
 * packet moves on to the next group, and the slot gets a free buffer back.
 * (netmap's lb passes it on only when it reuses the slot, so a group's last
 * ring-full of packets waits for more traffic; here it goes on at once.)
 * So every group sees every packet and no payload is copied.  This needs
 * the pipe in the input port's region; a pipe elsewhere gets a copy, and
 * then the packet goes on to the next group at once.
 *
 * Extra buffers of the input port are the overflow: when a pipe's ring is
 * full, the packet's buffer joins that pipe's overflow queue and the RX
 * slot gets a free extra buffer instead (zero-copy), or the packet is
 * copied into a free extra buffer (copy).  Queues drain in order before
 * new packets reach their pipe.  With no free buffer left, the oldest
 * BUF_REVOKE packets of the longest queue are dropped to make room.
 * Invariant: free + queued buffers == extra buffers; nmc_lb_free() puts
 * every one of them back on the input port's ni_bufs_head list.
 */
#include "tools_port.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BUF_REVOKE 100
#define CARRIES    (1ull << 32)       /* slot.ptr: a packet still to pass on */

struct oq {                            /* circular queue of slots */
    struct netmap_slot *s;
    uint32_t head, n, size;
};

struct lb_pipe {
    struct tl_port *port, view;        /* port points at view once loaded */
    struct tl_ring *lr;                /* its TX ring 0 */
    struct oq q;
    uint32_t group;
    bool zc, touched;
    uint64_t pkts, drops;
};

struct lb_group {
    uint32_t first, n;
};

struct nmc_lb {
    struct tl_port *in, in_view;       /* in points at in_view once loaded */
    struct lb_pipe *pipes;
    struct lb_group *groups;
    uint32_t npipes, ngroups, batch, nextra;
    struct oq freeq;
    struct nmc_lb_stats st;
};

/* -- queues ------------------------------------------------------------ */
static int oq_init(struct oq *q, uint32_t size)
{
    q->head = q->n = 0;
    q->size = size;
    q->s = size ? calloc(size, sizeof(*q->s)) : NULL;
    return size && !q->s ? -ENOMEM : 0;
}

static void oq_put(struct oq *q, const struct netmap_slot *s)
{
    uint32_t i = q->head + q->n;

    q->s[i >= q->size ? i - q->size : i] = *s;
    q->n++;
}

static struct netmap_slot oq_take(struct oq *q)
{
    struct netmap_slot s = q->s[q->head];

    q->head = q->head + 1 == q->size ? 0 : q->head + 1;
    q->n--;
    return s;
}

static void free_put(struct nmc_lb *lb, uint32_t idx)
{
    struct netmap_slot s = { .buf_idx = idx };

    oq_put(&lb->freeq, &s);
}

/* -- rings and buffers -------------------------------------------------- */
static uint32_t room(const struct lb_pipe *p)
{
    const struct netmap_ring *r = p->lr->ring;

    return tl_dist(r->cur, r->tail, p->lr->n);
}

static struct netmap_slot *take_tx(struct lb_pipe *p)
{
    struct netmap_ring *r = p->lr->ring;
    struct netmap_slot *ts = &r->slot[r->cur];

    r->head = r->cur = tl_next(r->cur, p->lr->n);
    p->touched = true;
    p->pkts++;
    return ts;
}

static bool buf_ok(const struct tl_port *p, uint32_t idx)
{
    return tl_buf_ok(p, idx);
}

static void copy_buf(struct tl_port *dp, uint32_t didx, struct tl_port *sp, uint32_t sidx,
                     uint32_t len)
{
    if (buf_ok(dp, didx) && buf_ok(sp, sidx))
        memcpy(tl_buf(dp, didx), tl_buf(sp, sidx), len);
}

static uint32_t clamp_len(const struct nmc_lb *lb, const struct lb_pipe *p, uint32_t len)
{
    uint32_t cap = lb->in->buf_size < p->port->buf_size ? lb->in->buf_size : p->port->buf_size;

    return len < cap ? len : cap;
}

/* No free extra buffer: drop the oldest packets of the longest queue. */
static void revoke(struct nmc_lb *lb)
{
    struct lb_pipe *lp = NULL;

    for (uint32_t i = 0; i < lb->npipes; i++)
        if (lb->pipes[i].q.n && (!lp || lb->pipes[i].q.n > lp->q.n))
            lp = &lb->pipes[i];
    for (uint32_t k = 0; lp && lp->q.n && k < BUF_REVOKE; k++) {
        struct netmap_slot s = oq_take(&lp->q);
        free_put(lb, s.buf_idx);
        lp->drops++;
        lb->st.dropped++;
        lb->st.revoked++;
    }
}

/* A free extra buffer, or 0 when there is none to be had. */
static uint32_t get_free(struct nmc_lb *lb)
{
    if (!lb->freeq.n)
        revoke(lb);
    return lb->freeq.n ? oq_take(&lb->freeq).buf_idx : 0;
}

static void drop(struct nmc_lb *lb, struct lb_pipe *p)
{
    p->drops++;
    lb->st.dropped++;
}

/* -- delivery ------------------------------------------------------------ */
static uint32_t deliver(struct nmc_lb *lb, uint32_t g, const struct netmap_slot *s);

/* A packet leaving group g's ring (its reader is done with it): on to the
 * next group if it carries one, else its buffer is free.  Returns a free
 * buffer. */
static uint32_t pass_on(struct nmc_lb *lb, uint32_t g, const struct netmap_slot *old)
{
    if ((old->ptr & CARRIES) && g + 1 < lb->ngroups)
        return deliver(lb, g + 1, old);
    return old->buf_idx;
}

/* Zero-copy: s's buffer moves into the pipe.  Returns a free buffer. */
static uint32_t deliver_zc(struct nmc_lb *lb, struct lb_pipe *p, const struct netmap_slot *s)
{
    struct netmap_slot *ts, old;
    uint32_t idx;

    if (room(p) && !p->q.n) {
        ts = take_tx(p);
        old = *ts;
        *ts = *s;
        ts->flags = NS_BUF_CHANGED;
        lb->st.forwarded++;
        return pass_on(lb, p->group, &old);
    }
    if (!lb->nextra || (idx = get_free(lb)) == 0) {
        drop(lb, p);
        return s->buf_idx;
    }
    oq_put(&p->q, s);
    return idx;
}

/* Copy: s's buffer stays with the caller. */
static void deliver_copy(struct nmc_lb *lb, struct lb_pipe *p, const struct netmap_slot *s)
{
    uint32_t len = clamp_len(lb, p, s->len), idx;
    struct netmap_slot e;

    if (room(p) && !p->q.n) {
        struct netmap_slot *ts = take_tx(p);
        copy_buf(p->port, ts->buf_idx, lb->in, s->buf_idx, len);
        ts->len = (uint16_t)len;
        ts->flags = 0;
        ts->ptr = 0;
        lb->st.forwarded++;
        return;
    }
    if (!lb->nextra || (idx = get_free(lb)) == 0) {
        drop(lb, p);
        return;
    }
    copy_buf(lb->in, idx, lb->in, s->buf_idx, len);
    e = (struct netmap_slot){ .buf_idx = idx, .len = (uint16_t)len };
    oq_put(&p->q, &e);
}

/* Deliver s (a buffer of the input region) to group g and, for copies,
 * the groups after it.  Returns a free buffer for the caller's slot. */
static uint32_t deliver(struct nmc_lb *lb, uint32_t g, const struct netmap_slot *s)
{
    const struct lb_group *grp = &lb->groups[g];
    struct lb_pipe *p = &lb->pipes[grp->first + (uint32_t)s->ptr % grp->n];

    if (p->zc)
        return deliver_zc(lb, p, s);
    deliver_copy(lb, p, s);
    return g + 1 < lb->ngroups ? deliver(lb, g + 1, s) : s->buf_idx;
}

/* Move queued packets into their pipe while it has room.  Returns how many. */
static uint32_t drain(struct nmc_lb *lb, struct lb_pipe *p)
{
    uint32_t moved = 0;

    while (p->q.n && room(p)) {
        struct netmap_slot e = oq_take(&p->q), *ts = take_tx(p), old = *ts;
        if (p->zc) {
            *ts = e;
            ts->flags = NS_BUF_CHANGED;
            free_put(lb, pass_on(lb, p->group, &old));
        } else {
            copy_buf(p->port, ts->buf_idx, lb->in, e.buf_idx, clamp_len(lb, p, e.len));
            ts->len = e.len;
            ts->flags = 0;
            ts->ptr = 0;
            free_put(lb, e.buf_idx);
        }
        lb->st.forwarded++;
        moved++;
    }
    return moved;
}

/* -- the input ------------------------------------------------------------ */
/* One RX slot (a whole packet in one buffer): hash it and deliver it. */
static void take_one(struct nmc_lb *lb, struct netmap_slot *rs)
{
    uint32_t non_ip, len = rs->len < lb->in->buf_size ? rs->len : lb->in->buf_size, idx;
    uint32_t h;

    if (!buf_ok(lb->in, rs->buf_idx)) {
        lb->st.dropped++;
        return;
    }
    h = nmc_lb_hash(tl_buf(lb->in, rs->buf_idx), len, &non_ip);
    lb->st.non_ip += non_ip;
    rs->len = (uint16_t)len;
    rs->ptr = CARRIES | h;
    idx = deliver(lb, 0, rs);
    if (idx != rs->buf_idx) {
        rs->buf_idx = idx;
        rs->flags |= NS_BUF_CHANGED;
    }
}

/* Up to `budget` packets from one RX ring.  A packet spread over several
 * slots (NS_MOREFRAG) is dropped whole: lb balances single-buffer frames. */
static uint32_t take_ring(struct nmc_lb *lb, struct tl_ring *lr, uint32_t budget)
{
    struct netmap_ring *r = lr->ring;
    uint32_t cur = r->cur, tail = r->tail, done = 0;
    bool in_chain = false;

    if (cur >= lr->n || tail >= lr->n)
        return 0;
    for (; cur != tail && done < budget; cur = tl_next(cur, lr->n)) {
        struct netmap_slot *rs = &r->slot[cur];
        bool more = rs->flags & NS_MOREFRAG;
        if (more || in_chain) {
            if (!more) {
                lb->st.oversize++;
                lb->st.dropped++;
                done++;
            }
            in_chain = more;
            continue;
        }
        take_one(lb, rs);
        done++;
    }
    if (in_chain)                       /* never stop inside a chain */
        while (cur != r->cur && (r->slot[tl_prev(cur, lr->n)].flags & NS_MOREFRAG))
            cur = tl_prev(cur, lr->n);
    r->head = r->cur = cur;
    lb->st.received += done;
    return done;
}

static uint32_t take_input(struct nmc_lb *lb)
{
    uint32_t done = 0;

    for (uint32_t i = 0; i < lb->in->nrx && done < lb->batch; i++)
        done += take_ring(lb, &lb->in->rx[i], lb->batch - done);
    return done;
}

/* Slots [from, tail) of p's ring, just released by its reader: packets
 * they carry go on to the next group now (not when the slot is reused),
 * and the slot gets the free buffer that gives back. */
static uint32_t pass_released(struct nmc_lb *lb, struct lb_pipe *p, uint32_t from)
{
    struct netmap_ring *r = p->lr->ring;
    uint32_t to = r->tail, n = p->lr->n, passed = 0;

    for (uint32_t i = from; i != to && i < n; i = tl_next(i, n)) {
        struct netmap_slot *s = &r->slot[i], old = *s;
        uint32_t idx;
        if (!(old.ptr & CARRIES))
            continue;
        s->ptr = 0;
        idx = deliver(lb, p->group + 1, &old);
        if (idx != old.buf_idx) {
            s->buf_idx = idx;
            s->flags |= NS_BUF_CHANGED;
        }
        passed++;
    }
    return passed;
}

/* txsync the pipes written to, and those whose readers still hold slots
 * (in group order, so that packets passed on are synced in the same call).
 * Returns the packets passed on to a next group. */
static uint32_t sync_pipes(struct nmc_lb *lb)
{
    uint32_t passed = 0;

    for (uint32_t i = 0; i < lb->npipes; i++) {
        struct lb_pipe *p = &lb->pipes[i];
        const struct netmap_ring *r = p->lr->ring;
        uint32_t before = r->tail;
        if (!p->touched && tl_next(r->tail, p->lr->n) == r->cur && !p->q.n)
            continue;
        if (nmc_txsync(p->port->port) < 0)
            lb->st.sync_errors++;
        p->touched = false;
        if (p->zc && p->group + 1 < lb->ngroups)
            passed += pass_released(lb, p, before);
    }
    return passed;
}

/* How long to sleep at most: 1 ms while packets are queued, 10 ms (as
 * netmap's lb) while a group's reader may release packets due to the next
 * group (neither wakes us), else as long as asked. */
static int wait_slice(const struct nmc_lb *lb, int ms)
{
    int slice = -1;

    for (uint32_t i = 0; i < lb->npipes && slice != 1; i++) {
        const struct lb_pipe *p = &lb->pipes[i];
        const struct netmap_ring *r = p->lr->ring;
        if (p->q.n)
            slice = 1;
        else if (p->zc && p->group + 1 < lb->ngroups && tl_next(r->tail, p->lr->n) != r->cur)
            slice = 10;
    }
    return slice > 0 && (ms < 0 || ms > slice) ? slice : ms;
}

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One round: reclaim pipe slots, drain the queues, then up to `batch`
 * input packets; when nothing moved, wait for input (at most timeout_ms,
 * < 0 forever; in 1 ms slices while packets are queued, since a reader
 * making room does not wake us) and try again.  Returns packets moved
 * (input taken, queued ones delivered, released ones passed on to the
 * next group), 0 on timeout, or -errno. */
int nmc_lb_step(struct nmc_lb *lb, int timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? -1 : mono_ms() + timeout_ms;

    for (;;) {
        uint32_t moved;
        int r, ms;
        moved = sync_pipes(lb);
        if (nmc_rxsync(lb->in->port) < 0)
            lb->st.sync_errors++;
        for (uint32_t i = 0; i < lb->npipes; i++)
            moved += drain(lb, &lb->pipes[i]);
        moved += take_input(lb);
        moved += sync_pipes(lb);
        if (moved)
            return (int)moved;
        ms = deadline < 0 ? -1 : (int)(deadline - mono_ms());
        if (deadline >= 0 && ms <= 0)
            return 0;
        if ((r = nmc_poll(lb->in->port, POLLIN, wait_slice(lb, ms))) < 0)
            return r;
    }
}

/* -- set-up and teardown ------------------------------------------------------ */
static bool same_region(const struct tl_port *a, const struct tl_port *b)
{
    return strcmp(a->region, b->region) == 0 && a->buf_size == b->buf_size;
}

/* Take the input port's extra buffers off its ni_bufs_head list. */
static int take_extra(struct nmc_lb *lb)
{
    struct tl_port *in = lb->in;
    uint32_t want = in->extra_bufs, idx = __atomic_load_n(&in->nifp->ni_bufs_head, __ATOMIC_RELAXED);
    int err;

    if ((err = oq_init(&lb->freeq, want)) < 0)
        return err;
    while (idx && lb->freeq.n < want && buf_ok(in, idx)) {
        free_put(lb, idx);
        idx = *(uint32_t *)tl_buf(in, idx);
    }
    *(volatile uint32_t *)&in->nifp->ni_bufs_head = idx;    /* whatever we did not take stays */
    lb->nextra = lb->freeq.n;
    return 0;
}

static int setup_pipes(struct nmc_lb *lb, struct nmc_port **ports, uint32_t flags)
{
    for (uint32_t g = 0, k = 0; g < lb->ngroups; g++) {
        for (uint32_t j = 0; j < lb->groups[g].n; j++, k++) {
            struct lb_pipe *p = &lb->pipes[k];
            struct netmap_ring *r;
            int err;
            if ((err = tl_port_load(&p->view, ports[k])) < 0)
                return err;
            p->port = &p->view;
            if (!p->port->ntx)
                return -EINVAL;
            p->lr = &p->port->tx[0];
            p->group = g;
            p->zc = !(flags & NMC_LB_COPY) && same_region(lb->in, p->port);
            lb->st.zerocopy_pipes += p->zc;
            if ((err = oq_init(&p->q, lb->nextra)) < 0)
                return err;
            r = p->lr->ring;            /* slots we own carry nothing yet */
            for (uint32_t i = r->cur; i != r->tail && i < p->lr->n; i = tl_next(i, p->lr->n))
                r->slot[i].ptr = 0;
        }
    }
    return 0;
}

int nmc_lb_new(struct nmc_port *in, struct nmc_port **pipes, const uint32_t *group_sizes,
               uint32_t ngroups, uint32_t batch, uint32_t flags, struct nmc_lb **out)
{
    struct nmc_lb *lb;
    uint32_t npipes = 0;
    int err;

    if (!in || !pipes || !group_sizes || !ngroups || !nmc_port_ring(in, 1, 0, NULL) || ngroups > 1024)
        return -EINVAL;
    for (uint32_t g = 0; g < ngroups; g++) {
        if (group_sizes[g] == 0 || group_sizes[g] > 4096)
            return -EINVAL;
        npipes += group_sizes[g];
    }
    if (!(lb = calloc(1, sizeof(*lb))))
        return -ENOMEM;
    if ((err = tl_port_load(&lb->in_view, in)) < 0) {
        free(lb);
        return err;
    }
    lb->in = &lb->in_view;
    lb->npipes = npipes;
    lb->ngroups = ngroups;
    lb->batch = batch ? batch : 2048;
    lb->pipes = calloc(npipes, sizeof(*lb->pipes));
    lb->groups = calloc(ngroups, sizeof(*lb->groups));
    err = lb->pipes && lb->groups ? 0 : -ENOMEM;
    for (uint32_t g = 0, first = 0; !err && g < ngroups; first += group_sizes[g++])
        lb->groups[g] = (struct lb_group){ .first = first, .n = group_sizes[g] };
    if (!err)
        err = take_extra(lb);
    if (!err)
        err = setup_pipes(lb, pipes, flags);
    if (err) {
        nmc_lb_free(lb);
        return err;
    }
    *out = lb;
    return 0;
}

static uint32_t give_back(struct nmc_lb *lb, struct oq *q)
{
    struct tl_port *in = lb->in;
    uint32_t n = 0;

    while (q->s && q->n) {
        struct netmap_slot s = oq_take(q);
        if (!buf_ok(in, s.buf_idx))
            continue;
        *(uint32_t *)tl_buf(in, s.buf_idx) = in->nifp->ni_bufs_head;
        in->nifp->ni_bufs_head = s.buf_idx;
        n++;
    }
    free(q->s);
    q->s = NULL;
    return n;
}

/* Publish what the pipes hold, put every extra buffer (free or queued)
 * back on the input port's ni_bufs_head list, and free lb.  Call it
 * before closing any of the ports.  Returns the buffers given back. */
int nmc_lb_free(struct nmc_lb *lb)
{
    uint32_t n = 0;

    if (!lb)
        return 0;
    for (uint32_t i = 0; lb->pipes && i < lb->npipes; i++) {
        if (lb->pipes[i].port && lb->pipes[i].lr)
            nmc_txsync(lb->pipes[i].port->port);
        n += give_back(lb, &lb->pipes[i].q);
        tl_port_unload(&lb->pipes[i].view);
    }
    n += give_back(lb, &lb->freeq);
    tl_port_unload(&lb->in_view);
    free(lb->pipes);
    free(lb->groups);
    free(lb);
    return (int)n;
}

int nmc_lb_stats(const struct nmc_lb *lb, struct nmc_lb_stats *st, struct nmc_lb_pipe_stats *per,
                 uint32_t n)
{
    *st = lb->st;
    st->extra_bufs = lb->nextra;
    st->free_bufs = lb->freeq.n;
    for (uint32_t i = 0; per && i < n && i < lb->npipes; i++)
        per[i] = (struct nmc_lb_pipe_stats){ .pkts = lb->pipes[i].pkts, .drops = lb->pipes[i].drops,
                                             .queued = lb->pipes[i].q.n, .zerocopy = lb->pipes[i].zc };
    return (int)lb->npipes;
}
