/*
 * nmd_select.c -- select(2)/pselect(2) over sets that hold emulated netmap
 * descriptors: the sets become a poll set served by nmd_poll (netmap's
 * semantics for the emulated ones), and the result goes back into the
 * sets as select reports it (readable: POLLIN, POLLHUP or POLLERR;
 * writable: POLLOUT or POLLERR; exceptional: POLLPRI).
 */
#include "nmd.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/select.h>

static bool in(const fd_set *s, int fd)
{
    return s && FD_ISSET(fd, s);
}

/* Does a set name an emulated descriptor (emulated() asked of every fd in
 * the sets: it adopts one that arrived from elsewhere)? */
bool nmd_select_has_emulated(int nfds, const fd_set *r, const fd_set *w, const fd_set *e,
                             bool (*emulated)(int fd))
{
    bool any = false;

    for (int fd = 0; fd < nfds && fd < FD_SETSIZE; fd++)
        if ((in(r, fd) || in(w, fd) || in(e, fd)) && emulated(fd))
            any = true;
    return any;
}

/* timeout_ms < 0: wait forever.  Returns the number of bits set, or -errno. */
int nmd_select(int nfds, fd_set *r, fd_set *w, fd_set *e, int timeout_ms, const sigset_t *mask)
{
    struct pollfd *p;
    nfds_t n = 0;
    int rc, bits = 0;

    if (nfds < 0 || nfds > FD_SETSIZE)
        return -EINVAL;
    if (!(p = calloc((size_t)nfds + 1, sizeof(*p))))
        return -ENOMEM;
    for (int fd = 0; fd < nfds; fd++) {
        short ev = (short)((in(r, fd) ? POLLIN : 0) | (in(w, fd) ? POLLOUT : 0) | (in(e, fd) ? POLLPRI : 0));
        if (ev)
            p[n++] = (struct pollfd){ .fd = fd, .events = ev };
    }
    rc = nmd_poll(p, n, timeout_ms, mask);
    for (nfds_t i = 0; rc >= 0 && i < n; i++)
        if (p[i].revents & POLLNVAL)
            rc = -EBADF;
    if (rc >= 0) {
        for (nfds_t i = 0; i < n; i++) {
            int fd = p[i].fd;
            short rv = p[i].revents;
            bool rd = in(r, fd) && (rv & (POLLIN | POLLHUP | POLLERR));
            bool wr = in(w, fd) && (rv & (POLLOUT | POLLERR));
            bool ex = in(e, fd) && (rv & POLLPRI);
            if (r && in(r, fd) && !rd)
                FD_CLR(fd, r);
            if (w && in(w, fd) && !wr)
                FD_CLR(fd, w);
            if (e && in(e, fd) && !ex)
                FD_CLR(fd, e);
            bits += rd + wr + ex;
        }
        rc = bits;
    }
    free(p);
    return rc;
}
