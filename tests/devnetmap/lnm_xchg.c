/*
 * lnm_xchg.c -- one end of a pipe opened with netmap's libnetmap
 * (nmport_open, nmport_inject, poll, the rx rings read directly): sends N
 * frames of direction 1 and receives N frames of direction 0, checking
 * each.  Written as for netmap itself: <libnetmap.h> and nothing else of
 * nmcompat.  Its peer is nm_xchg_legacy.c.
 *
 *     lnm_xchg NAME N
 */
#include <libnetmap.h>

#include <errno.h>
#include <poll.h>
#include <sys/ioctl.h>

#include "xchg_frames.h"

/* Every frame the rx rings hold, checked; -1 on a wrong one. */
static int take(struct nmport_d *d, uint32_t *got)
{
    for (unsigned r = d->first_rx_ring; r <= d->last_rx_ring; r++) {
        struct netmap_ring *ring = NETMAP_RXRING(d->nifp, r);
        while (!nm_ring_empty(ring)) {
            struct netmap_slot *s = &ring->slot[ring->head];
            if (xchg_check(NETMAP_BUF(ring, s->buf_idx), s->len, 0, *got) != 0)
                return -1;
            (*got)++;
            ring->head = ring->cur = nm_ring_next(ring, ring->head);
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct nmport_d *d;
    uint32_t n, sent = 0, got = 0;
    char frame[XCHG_MAX];

    if (argc != 3)
        return 2;
    n = (uint32_t)strtoul(argv[2], NULL, 10);
    d = nmport_open(argv[1]);
    if (d == NULL) {
        fprintf(stderr, "FAIL nmport_open %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    while (sent < n || got < n) {
        struct pollfd p = { d->fd, 0, 0 };
        while (sent < n) {
            unsigned len = xchg_fill(frame, 1, sent);
            if (nmport_inject(d, frame, len) != (int)len)
                break;
            sent++;
        }
        p.events = (short)((got < n ? POLLIN : 0) | (sent < n ? POLLOUT : 0));
        if (p.events == 0)
            break;                      /* the last frames go with the txsync below */
        if (poll(&p, 1, 10000) <= 0) {
            fprintf(stderr, "FAIL poll: nothing for 10 s (sent %u, got %u)\n", sent, got);
            return 1;
        }
        if (take(d, &got) != 0 || got > n)
            return 1;
    }
    if (ioctl(d->fd, NIOCTXSYNC, NULL) != 0) {
        fprintf(stderr, "FAIL txsync: %s\n", strerror(errno));
        return 1;
    }
    nmport_close(d);
    printf("libnetmap ok sent %u got %u\n", sent, got);
    return 0;
}
