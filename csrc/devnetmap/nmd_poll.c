/*
 * nmd_poll.c -- poll(2)/ppoll(2) over a set that holds emulated netmap
 * descriptors, with netmap's semantics for those (netmap.md section 1.12):
 * each is synced (txsync unless NR_NO_TX_POLL and no POLLOUT asked; rxsync
 * for POLLIN) and reports the bits asked (POLLIN/POLLRDNORM,
 * POLLOUT/POLLWRNORM) when a ring has slots for the user, POLLERR before
 * REGISTER or after a repaired ring.
 *
 * Nothing ready: one real ppoll over the ordinary descriptors and each
 * port's wakeup socket (nmc_port_fd, taken once per call, which arms the
 * rings: docs/DESIGN.md section 8), waiting only for the directions asked,
 * then the emulated ones are looked at again, until the deadline.  What
 * each socket is waited for comes from the engine before every wait
 * (nmc_port_wait_events): POLLOUT only while it will turn writable when TX
 * room comes (a pipe with no reader cannot withdraw POLLOUT: that wait is
 * on the bell a reader rings when it opens), so no wait spins.
 */
#include "nmd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ON_STACK 64
#define WANT_IN  (POLLIN | POLLRDNORM)
#define WANT_OUT (POLLOUT | POLLWRNORM)

struct entry {
    struct nmd_file *f;                 /* a reference (nmd_get), or NULL: ordinary */
    int wakefd;
    short asked;                        /* POLLIN and/or POLLOUT */
};

/* What netmap's poll reports for f and `events`. */
static short check(struct nmd_file *f, short events)
{
    int ev = ((events & WANT_IN) ? POLLIN : 0) | ((events & WANT_OUT) ? POLLOUT : 0), rev;

    if (!f->port)
        return POLLERR;
    rev = nmc_poll(f->port, ev, 0);
    if (rev < 0)
        return POLLERR;
    return (short)(((rev & POLLIN) ? (events & WANT_IN) : 0) | ((rev & POLLOUT) ? (events & WANT_OUT) : 0) |
                   (rev & POLLERR));
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The emulated entries looked at: their revents set, how many are ready. */
static int look(struct pollfd *fds, nfds_t n, const struct entry *e)
{
    int ready = 0;

    for (nfds_t i = 0; i < n; i++)
        if (e[i].f) {
            fds[i].revents = check(e[i].f, fds[i].events);
            ready += fds[i].revents != 0;
        }
    return ready;
}

/* One real ppoll; the ordinary entries' revents copied back, bells drained.
 * The count of ordinary entries ready, or -errno. */
static int wait_once(struct pollfd *fds, nfds_t n, struct entry *e, struct pollfd *tmp, int timeout_ms,
                     const sigset_t *mask)
{
    struct timespec ts, *tsp = NULL;
    int ready = 0;

    for (nfds_t i = 0; i < n; i++) {
        tmp[i] = fds[i];
        if (e[i].f) {
            int ev = e[i].f->port ? nmc_port_wait_events(e[i].f->port, e[i].asked) : 0;
            tmp[i] = (struct pollfd){ .fd = ev > 0 ? e[i].wakefd : -1, .events = (short)(ev > 0 ? ev : 0) };
        }
    }
    if (timeout_ms >= 0) {
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000;
        tsp = &ts;
    }
    if (nmd_real.ppoll(tmp, n, tsp, mask) < 0)
        return -errno;
    for (nfds_t i = 0; i < n; i++) {
        if (!e[i].f) {
            fds[i].revents = tmp[i].revents;
            ready += tmp[i].revents != 0;
            continue;
        }
        if (tmp[i].revents & POLLIN)
            nmc_port_drain(e[i].f->port);
    }
    return ready;
}

static int serve(struct pollfd *fds, nfds_t n, struct entry *e, struct pollfd *tmp, int timeout_ms,
                 const sigset_t *mask)
{
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;

    for (nfds_t i = 0; i < n; i++)
        if (e[i].f && e[i].f->port) {
            e[i].wakefd = nmc_port_fd(e[i].f->port);
            e[i].asked = (short)(((fds[i].events & WANT_IN) ? POLLIN : 0) |
                                 ((fds[i].events & WANT_OUT) ? POLLOUT : 0));
        }
    bool ordinary = false;

    for (nfds_t i = 0; i < n; i++)
        ordinary |= !e[i].f && fds[i].fd >= 0;
    for (;;) {
        int ready = look(fds, n, e), others;
        int64_t left;
        if (ready && !ordinary)
            return ready;               /* a ring is ready: no system call added */
        left = deadline < 0 ? -1 : deadline - now_ms();
        if (ready || (deadline >= 0 && left <= 0))
            left = 0;
        if ((others = wait_once(fds, n, e, tmp, (int)(left > INT32_MAX ? INT32_MAX : left), mask)) < 0)
            return others;
        if (ready || others || left == 0)
            return ready + others + (left == 0 && !ready ? look(fds, n, e) : 0);
    }
}

int nmd_poll(struct pollfd *fds, nfds_t n, int timeout_ms, const sigset_t *mask)
{
    struct entry e_s[ON_STACK], *e = e_s;
    struct pollfd tmp_s[ON_STACK], *tmp = tmp_s;
    int rc;

    if (n > ON_STACK) {
        e = calloc(n, sizeof(*e));
        tmp = calloc(n, sizeof(*tmp));
        if (!e || !tmp) {
            free(e);
            free(tmp);
            return -ENOMEM;
        }
    }
    memset(e, 0, n * sizeof(*e));
    for (nfds_t i = 0; i < n; i++)
        e[i].f = nmd_get(fds[i].fd);
    rc = serve(fds, n, e, tmp, timeout_ms, mask);
    for (nfds_t i = 0; i < n; i++)
        if (e[i].f)
            nmd_put(e[i].f);
    if (n > ON_STACK) {
        free(e);
        free(tmp);
    }
    return rc;
}
