/*
 * tools_fwd.c -- the inner loop of the bridge tool: both directions of a
 * port pair (or one port looped onto itself) in one call per batch.
 *
 * A round is rxsync, the bridge step each way (nmc_forward: buffer swap
 * when the ports share a region, else a copy), txsync.  When a round moves
 * nothing, the call waits on the ports' own descriptors as netmap's bridge
 * does (POLLIN on a side with nothing to read, POLLOUT on the side that
 * must make room) and tries again, until something moves or the timeout.
 */
#include "tools_port.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>

#define OUT_SLICE_MS 1      /* POLLOUT may stay asserted with no reader: re-check this often */

static int64_t mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static bool rx_pending(const struct nmc_port *p)
{
    struct netmap_ring *ring;

    for (uint32_t i = 0; (ring = nmc_port_ring(p, 1, i, NULL)) != NULL; i++)
        if (ring->cur != ring->tail)
            return true;
    return false;
}

static void note_sync(int err, uint32_t side, struct nmc_bridge_stats *st)
{
    if (err < 0) {
        st->errors++;
        st->err_side |= 1u << side;
    }
}

/* One round both ways.  Returns the slots moved. */
static int round_once(struct nmc_port *a, struct nmc_port *b, uint32_t burst, uint32_t flags,
                      struct nmc_bridge_stats *st)
{
    int ab, ba = 0;

    note_sync(nmc_rxsync(a), 0, st);
    if (b != a)
        note_sync(nmc_rxsync(b), 1, st);
    ab = nmc_forward(a, b, burst, flags);
    if (b != a)
        ba = nmc_forward(b, a, burst, flags);
    note_sync(nmc_txsync(b), 1, st);
    if (b != a)
        note_sync(nmc_txsync(a), 0, st);
    st->rounds++;
    st->slots[0] += (uint64_t)(ab > 0 ? ab : 0);
    st->slots[1] += (uint64_t)(ba > 0 ? ba : 0);
    return (ab > 0 ? ab : 0) + (ba > 0 ? ba : 0);
}

static bool spin(struct nmc_port *a, struct nmc_port *b, int64_t until)
{
    for (uint32_t i = 1;; i++) {
        if (nmc_port_pending(a, POLLIN | POLLOUT) || nmc_port_pending(b, POLLIN | POLLOUT))
            return true;
        tl_cpu_relax();
        if (i % 64 == 0 && mono_us() >= until)
            return false;
    }
}

/* The events netmap's bridge asks for: a side with packets waiting needs
 * room on the other side (POLLOUT there), a side with none needs input. */
static bool pick_events(struct nmc_port *a, struct nmc_port *b, struct nmc_bridge_stats *st)
{
    bool out = false;

    st->events[0] = st->events[1] = 0;
    if (rx_pending(a)) {
        st->events[1] |= POLLOUT;
        out = true;
    } else {
        st->events[0] |= POLLIN;
    }
    if (b != a && rx_pending(b)) {
        st->events[0] |= POLLOUT;
        out = true;
    } else if (b != a) {
        st->events[1] |= POLLIN;
    }
    return out;
}

/* Sleep on the two descriptors.  Returns 0 or -errno. */
static int wait_fds(struct nmc_port *a, struct nmc_port *b, int64_t deadline,
                    struct nmc_bridge_stats *st)
{
    struct pollfd pf[2];
    int64_t left = deadline < 0 ? -1 : deadline - mono_us();
    int ms = left < 0 ? -1 : (int)((left + 999) / 1000), n = b != a ? 2 : 1;

    if (pick_events(a, b, st) && (ms < 0 || ms > OUT_SLICE_MS))
        ms = OUT_SLICE_MS;
    pf[0] = (struct pollfd){ .fd = nmc_port_fd(a), .events = (short)st->events[0] };
    pf[1] = (struct pollfd){ .fd = nmc_port_fd(b), .events = (short)st->events[1] };
    if (b == a)
        pf[0].events = (short)(pf[0].events | st->events[1]);
    st->sleeps++;
    if (poll(pf, (nfds_t)n, ms) < 0)
        return -errno;
    st->revents[0] = pf[0].revents;
    st->revents[1] = n == 2 ? pf[1].revents : 0;
    /* Our own sockets (pipes, VALE): empty them.  Besides bells they can
     * hold a peer sender's filler, which would keep the descriptor readable
     * with nothing to read; draining it also lets that sender, waiting for
     * room, look again.  The next round's rxsync re-arms before any sleep. */
    if (pf[0].revents & POLLIN)
        nmc_port_drain(a);
    if (n == 2 && (pf[1].revents & POLLIN))
        nmc_port_drain(b);
    return 0;
}

/* Bridge a and b (b == a: loop a's traffic back onto it): rounds until one
 * moves something, waiting in between at most timeout_ms in all (< 0:
 * forever).  Returns the slots moved (> 0), 0 on timeout, or -errno
 * (-EINTR when a signal interrupted the wait).  st accumulates. */
int nmc_bridge_step(struct nmc_port *a, struct nmc_port *b, uint32_t burst, uint32_t flags,
                    int timeout_ms, struct nmc_bridge_stats *st)
{
    int64_t deadline = timeout_ms < 0 ? -1 : mono_us() + (int64_t)timeout_ms * 1000;
    struct nmc_port_info ia, ib;
    int spin_us;

    if (!a || !b || !st || burst == 0)
        return -EINVAL;
    if (nmc_port_info(a, &ia) < 0 || nmc_port_info(b, &ib) < 0)
        return -EINVAL;
    spin_us = ia.spin_us > ib.spin_us ? ia.spin_us : ib.spin_us;
    st->err_side = 0;
    /* from the first round on, a sync that leaves a ring empty (or full)
     * must arm the descriptor we may sleep on */
    nmc_port_fd(a);
    nmc_port_fd(b);
    for (;;) {
        int moved = round_once(a, b, burst, flags, st), err;
        if (moved > 0)
            return moved;
        if (deadline >= 0 && mono_us() >= deadline) {
            st->timeouts++;
            return 0;
        }
        if (spin_us > 0 && spin(a, b, mono_us() + spin_us))
            continue;
        if ((err = wait_fds(a, b, deadline, st)) < 0)
            return err;
    }
}
