/*
 * sync.c -- txsync, rxsync and netmap's poll() for a port's bound rings.
 */
#include "nmc_transport.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>

static int sync_rings(struct nmc_port *p, int dir)
{
    struct nmc_lring *lr = dir == 0 ? p->tx : p->rx;
    uint32_t cnt = dir == 0 ? p->ntx : p->nrx;
    int ret = 0;

    for (uint32_t i = 0; i < cnt; i++) {
        uint64_t entry = nmc_ring_enter(p, &lr[i], dir), reinits;
        struct nmc_kring *wake;
        uint32_t nmon, old_tail = 0;
        int err;
        if (!entry)
            continue;                   /* someone else is inside: skip, as netmap */
        if (dir == 1 && !p->ops->rxsync_long)
            nmc_ring_stamp(p, &lr[i]);
        reinits = lr[i].kr->reinits;
        nmon = __atomic_load_n(&lr[i].kr->nmon, __ATOMIC_RELAXED);    /* monitor.c */
        if (nmon) {
            old_tail = lr[i].kr->hwtail;
            nmc_monitor_before(p, &lr[i], dir);
        }
        err = dir == 0 ? p->ops->txsync_one(p, &lr[i]) : p->ops->rxsync_one(p, &lr[i]);
        if (dir == 1 && p->ops->rxsync_long)
            nmc_ring_stamp(p, &lr[i]);
        wake = err == NMC_SYNC_WAKE_PEER ? lr[i].peer_kr : NULL;
        if (wake)
            err = 0;
        if (nmon && err == 0)
            nmc_monitor_after(p, &lr[i], dir, old_tail);
        if (lr[i].kr->reinits != reinits)       /* repaired: every slot gets a buffer back */
            nmc_ring_refill(p, &lr[i], dir, 0, lr[i].n);
        nmc_ring_leave_wake(p, &lr[i], entry, wake);
        if (err < 0)
            ret = err;
    }
    return ret;
}

static void settle_doorbell(struct nmc_port *p)
{
    if (__atomic_load_n(&p->holder->bells_pending, __ATOMIC_RELAXED))
        nmc_wake_drain(p);
}

/* A port whose fd was handed out may be waited on with a bare poll(2):
 * a TX ring left without room withdraws POLLOUT (filler towards the peer
 * reader) until a later txsync sees room again.  Filler the reader drained
 * while the ring is still full is sent again, so that the fd is writable
 * exactly while a txsync would find room. */
static void arm_bare_tx(struct nmc_port *p)
{
    for (uint32_t i = 0; i < p->ntx; i++) {
        struct netmap_ring *ring = p->tx[i].ring;
        if (ring->head != ring->tail) {
            if (p->filled) {
                nmc_wake_disarm(p->tx[i].kr, p->hidx);
                p->filled = false;
                p->holder->fill_target = 0;
            }
            return;
        }
    }
    if (!p->ntx)
        return;
    nmc_wake_arm(p->tx[0].kr, p->hidx);
    if (nmc_load_acq(&p->tx[0].kr->pipe_tail) != p->tx[0].kr->hwtail)
        return;                         /* released meanwhile: a txsync finds room */
    if (p->filled && nmc_wake_writable(p))
        p->filled = false;              /* drained while still full: fill again */
    nmc_wake_fill(p, &p->tx[0]);
}

int nmc_txsync(struct nmc_port *p)
{
    int err = sync_rings(p, 0);

    p->st.txsyncs++;
    if (err < 0)
        p->err_pending = true;
    if (p->fd_exported)
        arm_bare_tx(p);
    return err;
}

/* A port whose fd was handed out keeps that fd readable exactly while an
 * RX ring has slots to read (netmap's poll is level-triggered): a bell
 * stays pending while there is data, is drained when the rings run dry,
 * and then the rings are armed so that senders ring again. */
static void bare_rx_state(struct nmc_port *p)
{
    bool data = false;

    for (uint32_t i = 0; i < p->nrx; i++)
        data |= p->rx[i].ring->cur != p->rx[i].ring->tail;
    if (data) {
        for (uint32_t i = 0; i < p->nrx; i++)
            nmc_wake_disarm(p->rx[i].kr, p->hidx);
        nmc_wake_self(p);               /* no system call while one is pending */
        return;
    }
    settle_doorbell(p);
    for (uint32_t i = 0; i < p->nrx; i++) {
        nmc_wake_arm(p->rx[i].kr, p->hidx);
        if (nmc_load_acq(&p->rx[i].kr->pipe_tail) != p->rx[i].kr->hwtail) {
            nmc_wake_disarm(p->rx[i].kr, p->hidx);
            nmc_wake_self(p);           /* published while we armed: stay readable */
        }
    }
}

/* The fd is handed out: from now on it follows the rings, from their
 * present state (data may already wait, the TX ring may already be full). */
void nmc_fd_export(struct nmc_port *p)
{
    if (!p->fd_exported)
        nmc_wake_mark_fenced(p);        /* its arming pays no membarrier: publishers fence */
    p->fd_exported = true;
    nmc_fence();
    bare_rx_state(p);
    arm_bare_tx(p);
}

int nmc_rxsync(struct nmc_port *p)
{
    int err = sync_rings(p, 1);

    p->st.rxsyncs++;
    if (err < 0)
        p->err_pending = true;
    if (p->fd_exported)
        bare_rx_state(p);
    else
        settle_doorbell(p);
    return err;
}

static bool ring_ready(const struct nmc_lring *lr)
{
    return lr->ring->cur != lr->ring->tail;
}

/* Would a sync change anything?  Reads only shared indexes. */
static bool peer_moved(const struct nmc_port *p, int events)
{
    if (events & POLLIN)
        for (uint32_t i = 0; i < p->nrx; i++)
            if (nmc_load_acq(&p->rx[i].kr->pipe_tail) != p->rx[i].kr->hwtail)
                return true;
    if (events & POLLOUT)
        for (uint32_t i = 0; i < p->ntx; i++)
            if (nmc_load_acq(&p->tx[i].kr->pipe_tail) != p->tx[i].kr->hwtail)
                return true;
    return false;
}

int nmc_port_pending(const struct nmc_port *p, int events)
{
    return !p->ops->wait && peer_moved(p, events);
}

void nmc_port_drain(struct nmc_port *p)
{
    if (!p->ops->wait)
        nmc_wake_drain(p);
    if (p->ops->woken)
        p->ops->woken(p);
}

/* Revents after the syncs; -errno when a sync failed for another reason
 * than a repaired ring (which is reported as POLLERR). */
static int check_ready(struct nmc_port *p, int events)
{
    int revents = 0, err = 0;

    settle_doorbell(p);                 /* a bell left pending would silence the next ones */
    bool want_tx = (events & POLLOUT) || !(p->flags & NR_NO_TX_POLL);

    if (want_tx)
        err = nmc_txsync(p);
    if ((err == 0 || err == -EINVAL) && (events & POLLIN))
        err = nmc_rxsync(p);
    if (p->fwd_pending && (err == 0 || err == -EINVAL)) {  /* transparent mode, host -> NIC */
        p->fwd_pending = false;
        err = nmc_txsync(p);
    }
    if (err < 0 && err != -EINVAL) {
        p->err_pending = false;
        return err;
    }
    if (p->err_pending) {
        p->err_pending = false;
        return POLLERR;
    }
    for (uint32_t i = 0; (events & POLLOUT) && i < p->ntx; i++)
        if (ring_ready(&p->tx[i]))
            revents |= POLLOUT;
    for (uint32_t i = 0; (events & POLLIN) && i < p->nrx; i++)
        if (ring_ready(&p->rx[i]))
            revents |= POLLIN;
    return revents;
}

bool nmc_port_interrupted(const struct nmc_port *p)
{
    return __atomic_load_n(&p->interrupted, __ATOMIC_SEQ_CST) != 0;
}

int nmc_port_interrupt(struct nmc_port *p)
{
    if (!p)
        return -EINVAL;
    __atomic_store_n(&p->interrupted, 1, __ATOMIC_SEQ_CST);
    nmc_wake_interrupt(p);
    return 0;
}

static int64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Busy-wait up to spin_us for the peer to move, reading the clock only
 * every 64 rounds (it costs more than a look at the peer's index). */
static void spin(struct nmc_port *p, int events)
{
    int64_t end = now_us() + p->spin_us;

    for (uint32_t i = 1; p->spin_us > 0; i++) {
        if (peer_moved(p, events))
            return;
        nmc_cpu_relax();
        if (i % 64 == 0 && (now_us() >= end || nmc_port_interrupted(p)))
            return;
    }
}

static void arm_all(struct nmc_port *p, int events, bool on)
{
    for (uint32_t i = 0; (events & POLLIN) && i < p->nrx; i++)
        on ? nmc_wake_arm(p->rx[i].kr, p->hidx) : nmc_wake_disarm(p->rx[i].kr, p->hidx);
    for (uint32_t i = 0; (events & POLLOUT) && i < p->ntx; i++)
        on ? nmc_wake_arm(p->tx[i].kr, p->hidx) : nmc_wake_disarm(p->tx[i].kr, p->hidx);
}

/* poll() stops waiting.  Once the fd has been handed out, arming follows
 * the rings (nmc_rxsync, arm_bare_tx), so that a bare poll(2) on the fd
 * still works after poll() returns, on a timeout too: leave it armed. */
static void stop_waiting(struct nmc_port *p, int events, bool slept)
{
    if (p->fd_exported)
        return;
    arm_all(p, events, false);
    if (slept) {
        p->filled = false;
        p->holder->fill_target = 0;
    }
}

/* Block in poll(2) on the port socket, at most 1 ms when `bounded` (a
 * publisher may have missed our arming); returns 0 or -errno. */
static int sleep_once(struct nmc_port *p, int events, int64_t deadline, bool bounded)
{
    struct pollfd pfd = { .fd = p->sock, .events = POLLIN };
    int64_t left = deadline < 0 ? -1 : deadline - now_us();
    int ms = left < 0 ? (deadline < 0 ? -1 : 0) : (int)((left + 999) / 1000);
    int n;

    if (bounded && (ms < 0 || ms > 1))
        ms = 1;

    if ((events & POLLOUT) && p->ntx && !ring_ready(&p->tx[0])) {
        nmc_wake_fill(p, &p->tx[0]);
        if (p->filled)
            pfd.events |= POLLOUT;
        if (peer_moved(p, events))
            return 0;                   /* the reader released while we filled */
    }
    p->st.sleeps++;
    if (nmc_port_interrupted(p))        /* checked after any drain: the datagram is still queued */
        return -ECANCELED;
    n = poll(&pfd, 1, ms);
    if (n < 0)
        return errno == EINTR ? -EINTR : -errno;
    if (pfd.revents & POLLIN)
        nmc_wake_drain(p);
    return 0;
}

/* What to wait for on the port's fd (nmc_port_fd) so that `events` that
 * are not ready wake the waiter: POLLIN (bells) always, and POLLOUT only
 * while a peer reader holds our filler, so that the socket turns writable
 * exactly when TX room comes (with no reader it cannot withdraw POLLOUT:
 * that wait is on the bell a reader rings when it opens). */
int nmc_port_wait_events(struct nmc_port *p, int events)
{
    if (!p)
        return -EINVAL;
    if (!(events & POLLOUT) || p->ops->wait)
        return POLLIN | (events & POLLOUT);
    if (p->ntx && !ring_ready(&p->tx[0])) {
        nmc_wake_fill(p, &p->tx[0]);
        return p->filled ? POLLIN | POLLOUT : POLLIN;
    }
    return POLLIN | POLLOUT;
}

int nmc_poll(struct nmc_port *p, int events, int timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? -1 : now_us() + (int64_t)timeout_ms * 1000;
    int revents, err;
    bool bounded;

    p->st.polls++;
    for (;;) {
        if (nmc_port_interrupted(p))
            return -ECANCELED;
        if ((revents = check_ready(p, events)) != 0 || timeout_ms == 0)
            return revents;
        if (p->ops->wait) {             /* the kernel's sockets wake us */
            int64_t left = deadline < 0 ? -1 : deadline - now_us();
            if (deadline >= 0 && left <= 0)
                return 0;
            p->st.sleeps++;
            if ((err = p->ops->wait(p, events, left < 0 ? -1 : (int)((left + 999) / 1000))) < 0)
                return err;
            continue;
        }
        spin(p, events);
        if (peer_moved(p, events))
            continue;
        arm_all(p, events, true);
        bounded = nmc_wake_sleep_barrier(p, events) < 0;
        if (peer_moved(p, events)) {
            stop_waiting(p, events, false);
            continue;
        }
        if (deadline >= 0 && now_us() >= deadline) {
            stop_waiting(p, events, false);
            return 0;
        }
        err = sleep_once(p, events, deadline, bounded);
        stop_waiting(p, events, true);
        if (err < 0)
            return err;
    }
}
