/*
 * nmd_poll.c -- poll(2)/ppoll(2) over a set that holds emulated netmap
 * descriptors, with netmap's semantics for those (netmap.md section 1.12):
 * each is synced (txsync unless NR_NO_TX_POLL and no POLLOUT asked; rxsync
 * for POLLIN) and reports POLLIN/POLLOUT when a ring has slots for the
 * user, POLLERR after a repaired ring or before REGISTER.  Nothing ready:
 * one real ppoll over the ordinary descriptors and each port's wakeup
 * socket (nmc_port_fd, armed when taken: docs/DESIGN.md section 8), then
 * the emulated ones are looked at again.
 */
#include "nmd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ON_STACK 64

static short check(struct nmd_file *f, short events)
{
    int rev;

    if (!f->port)
        return POLLERR;
    rev = nmc_poll(f->port, events & (POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM), 0);
    return rev < 0 ? POLLERR : (short)rev;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One pass: netmap descriptors checked, then one real ppoll (timeout 0
 * when one was ready).  The count of ready entries, 0 when a wakeup
 * socket fired (look again), or -errno. */
static int pass(struct pollfd *fds, nfds_t n, struct nmd_file **files, struct pollfd *tmp,
                int timeout_ms, const sigset_t *mask, bool *woken)
{
    struct timespec ts, *tsp = NULL;
    int ready = 0, rc;

    for (nfds_t i = 0; i < n; i++) {
        tmp[i] = fds[i];
        if (!files[i])
            continue;
        fds[i].revents = check(files[i], fds[i].events);
        ready += fds[i].revents != 0;
        tmp[i].fd = files[i]->port ? nmc_port_fd(files[i]->port) : -1;
        tmp[i].events = POLLIN | (fds[i].events & POLLOUT);
    }
    if (ready)
        timeout_ms = 0;
    if (timeout_ms >= 0) {
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000;
        tsp = &ts;
    }
    if ((rc = nmd_real.ppoll(tmp, n, tsp, mask)) < 0)
        return -errno;
    *woken = false;
    for (nfds_t i = 0; i < n; i++) {
        if (!files[i]) {
            fds[i].revents = tmp[i].revents;
            ready += tmp[i].revents != 0;
        } else if (tmp[i].revents) {
            if (tmp[i].revents & POLLIN)
                nmc_port_drain(files[i]->port);
            *woken = true;
        }
    }
    return ready;
}

int nmd_poll(struct pollfd *fds, nfds_t n, int timeout_ms, const sigset_t *mask)
{
    struct nmd_file *files_s[ON_STACK], **files = files_s;
    struct pollfd tmp_s[ON_STACK], *tmp = tmp_s;
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    int rc;
    bool woken;

    if (n > ON_STACK) {
        files = calloc(n, sizeof(*files));
        tmp = calloc(n, sizeof(*tmp));
        if (!files || !tmp) {
            free(files);
            free(tmp);
            return -ENOMEM;
        }
    }
    for (nfds_t i = 0; i < n; i++)
        files[i] = nmd_lookup(fds[i].fd);
    for (;;) {
        int left = deadline < 0 ? -1 : (int)(deadline - now_ms() > 0 ? deadline - now_ms() : 0);
        rc = pass(fds, n, files, tmp, left, mask, &woken);
        if (rc != 0 || !woken)
            break;
    }
    if (n > ON_STACK) {
        free(files);
        free(tmp);
    }
    return rc;
}
