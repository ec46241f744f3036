/*
 * nm_xchg_legacy.c -- one end of a pipe opened with netmap's legacy API
 * (nm_open, nm_inject, poll, nm_dispatch): sends N frames of direction 0
 * and receives N frames of direction 1, checking each, until both are
 * done.  Its peer is lnm_xchg.c (libnetmap).
 *
 *     nm_xchg_legacy NAME N
 */
#define NETMAP_WITH_LIBS
#include <net/netmap_user.h>

#include <errno.h>
#include <poll.h>
#include <sys/ioctl.h>

#include "xchg_frames.h"

struct rx_state {
    uint32_t got;
    int bad;
};

static void on_frame(u_char *arg, const struct nm_pkthdr *h, const u_char *buf)
{
    struct rx_state *st = (struct rx_state *)(void *)arg;

    if (!st->bad && xchg_check((const char *)buf, h->len, 1, st->got) != 0)
        st->bad = 1;
    st->got++;
}

int main(int argc, char **argv)
{
    struct rx_state st = { 0, 0 };
    struct nm_desc *d;
    uint32_t n, sent = 0;
    char frame[XCHG_MAX];

    if (argc != 3)
        return 2;
    n = (uint32_t)strtoul(argv[2], NULL, 10);
    d = nm_open(argv[1], NULL, 0, NULL);
    if (d == NULL) {
        fprintf(stderr, "FAIL nm_open %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    while (sent < n || st.got < n) {
        struct pollfd p = { d->fd, 0, 0 };
        while (sent < n) {
            unsigned len = xchg_fill(frame, 0, sent);
            if (nm_inject(d, frame, len) != (int)len)
                break;
            sent++;
        }
        p.events = (short)((st.got < n ? POLLIN : 0) | (sent < n ? POLLOUT : 0));
        if (p.events == 0)
            break;                      /* the last frames go with the txsync below */
        if (poll(&p, 1, 10000) <= 0) {
            fprintf(stderr, "FAIL poll: nothing for 10 s (sent %u, got %u)\n", sent, st.got);
            return 1;
        }
        nm_dispatch(d, 0, on_frame, (u_char *)&st);
        if (st.bad || st.got > n) {
            fprintf(stderr, "FAIL at frame %u\n", st.got);
            return 1;
        }
    }
    if (ioctl(d->fd, NIOCTXSYNC, NULL) != 0) {
        fprintf(stderr, "FAIL txsync: %s\n", strerror(errno));
        return 1;
    }
    nm_close(d);
    printf("legacy ok sent %u got %u\n", sent, st.got);
    return 0;
}
