/*
 * lnm_monitor.c -- netmap monitors through netmap's C API: libnetmap's
 * nmport_open and the legacy nm_open, on a pipe and on VALE ports.
 * Prints "monitor ok".
 *
 *   - a monitor of a port nobody has open: EINVAL;
 *   - "P/t" gets a byte-exact copy of what P's TX ring sends, each slot
 *     with NS_TXMON, and so does "P/tR" (/R binds the monitor's RX rings,
 *     not the watched ones); "P/r" of what P's RX ring receives, without it; two
 *     "/r" monitors of one port both get everything;
 *   - the monitored port still receives every frame;
 *   - a monitor waiting in poll() is woken by the monitored port's sync.
 *
 *     lnm_monitor PREFIX
 *
 * With "nic IFNAME N": opens "netmap:IFNAME/r", a monitor of the NIC port
 * another process has open, prints "ready", then each of the first N frames
 * it sees as one line of hex.
 */
#define NETMAP_WITH_LIBS
#include <net/netmap_user.h>

#include <poll.h>
#include <stdbool.h>
#include <sys/ioctl.h>

#include "lnm_test.h"

#define NFRAMES 40

static char name[128];

static const char *named(const char *fmt, const char *prefix)
{
    snprintf(name, sizeof(name), fmt, prefix, prefix);
    return name;
}

static struct nmport_d *must_open(const char *fmt, const char *prefix)
{
    struct nmport_d *d = nmport_open(named(fmt, prefix));

    CHECK(d != NULL, "nmport_open %s", name);
    return d;
}

static unsigned frame_len(unsigned i)
{
    return 60 + (i * 37) % 1400;
}

static unsigned char frame_byte(unsigned i, unsigned k)
{
    return (unsigned char)(i * 7 + k * 13 + 1);
}

static void send_frames(struct nmport_d *d)
{
    struct netmap_ring *ring = NETMAP_TXRING(d->nifp, 0);

    for (unsigned i = 0; i < NFRAMES; i++) {
        struct netmap_slot *s = &ring->slot[ring->cur];
        unsigned char *buf = (unsigned char *)NETMAP_BUF(ring, s->buf_idx);
        CHECK(!nm_ring_empty(ring), "TX room");
        for (unsigned k = 0; k < frame_len(i); k++)
            buf[k] = frame_byte(i, k);
        s->len = (uint16_t)frame_len(i);
        s->flags = 0;
        ring->head = ring->cur = nm_ring_next(ring, ring->cur);
    }
    CHECK(ioctl(d->fd, NIOCTXSYNC, NULL) == 0, "txsync");
}

/* Every frame, in order, byte for byte, each slot's flags & NS_TXMON as
 * want_txmon; waits in poll() for them. */
static void expect_frames(int fd, struct netmap_if *nifp, bool want_txmon, const char *what)
{
    struct netmap_ring *ring = NETMAP_RXRING(nifp, 0);
    unsigned got = 0;

    while (got < NFRAMES) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        CHECK(poll(&pfd, 1, 10000) == 1 && (pfd.revents & POLLIN), "%s: frame %u comes", what, got);
        while (!nm_ring_empty(ring)) {
            struct netmap_slot *s = &ring->slot[ring->cur];
            const unsigned char *buf = (const unsigned char *)NETMAP_BUF(ring, s->buf_idx);
            CHECK(got < NFRAMES && s->len == frame_len(got), "%s: frame %u length %u", what, got, s->len);
            CHECK(!!(s->flags & NS_TXMON) == want_txmon, "%s: frame %u flags %#x", what, got, s->flags);
            for (unsigned k = 0; k < s->len; k++)
                CHECK(buf[k] == frame_byte(got, k), "%s: frame %u byte %u", what, got, k);
            got++;
            ring->head = ring->cur = nm_ring_next(ring, ring->cur);
        }
    }
    CHECK(ioctl(fd, NIOCRXSYNC, NULL) == 0 && nm_ring_empty(ring), "%s: nothing more", what);
}

static void refusals(const char *prefix)
{
    errno = 0;
    CHECK(nmport_open(named("netmap:%snobody{1/r", prefix)) == NULL && errno == EINVAL, "%s", name);
    errno = 0;
    CHECK(nmport_open(named("vale0:%snobody/t", prefix)) == NULL && errno == EINVAL, "%s", name);
}

static void on_pipe(const char *prefix)
{
    struct nmport_d *m = must_open("netmap:%sp{1", prefix), *s = must_open("netmap:%sp}1", prefix);
    struct nmport_d *mt = must_open("netmap:%sp{1/t", prefix), *sr = must_open("netmap:%sp}1/r", prefix);
    struct nmport_d *mtr = must_open("netmap:%sp{1/tR", prefix);
    struct nm_desc *legacy;

    snprintf(name, sizeof(name), "netmap:%sp}1/r", prefix);
    legacy = nm_open(name, NULL, 0, NULL);
    CHECK(legacy != NULL, "nm_open %s", name);
    send_frames(m);
    expect_frames(s->fd, s->nifp, false, "pipe slave");
    expect_frames(mt->fd, mt->nifp, true, "pipe master/t");
    expect_frames(mtr->fd, mtr->nifp, true, "pipe master/tR");
    expect_frames(sr->fd, sr->nifp, false, "pipe slave/r");
    expect_frames(legacy->fd, legacy->nifp, false, "pipe slave/r (nm_open)");
    nm_close(legacy);
    nmport_close(sr);
    nmport_close(mtr);
    nmport_close(mt);
    nmport_close(s);
    nmport_close(m);
}

static void on_vale(const char *prefix)
{
    struct nmport_d *a = must_open("vale0:%sa", prefix), *b = must_open("vale0:%sb", prefix);
    struct nmport_d *at = must_open("vale0:%sa/t", prefix), *br = must_open("vale0:%sb/r", prefix);

    send_frames(a);
    expect_frames(b->fd, b->nifp, false, "vale b");
    expect_frames(at->fd, at->nifp, true, "vale a/t");
    expect_frames(br->fd, br->nifp, false, "vale b/r");
    nmport_close(br);
    nmport_close(at);
    nmport_close(b);
    nmport_close(a);
}

static void watch_nic(const char *ifname, unsigned want)
{
    struct nmport_d *d;
    struct netmap_ring *ring;
    unsigned got = 0;

    snprintf(name, sizeof(name), "netmap:%s/r", ifname);
    d = nmport_open(name);
    CHECK(d != NULL, "nmport_open %s", name);
    printf("ready\n");
    fflush(stdout);
    ring = NETMAP_RXRING(d->nifp, 0);
    while (got < want) {
        struct pollfd pfd = { .fd = d->fd, .events = POLLIN };
        CHECK(poll(&pfd, 1, 10000) == 1, "frame %u comes", got);
        for (; !nm_ring_empty(ring) && got < want; got++) {
            struct netmap_slot *s = &ring->slot[ring->cur];
            const unsigned char *buf = (const unsigned char *)NETMAP_BUF(ring, s->buf_idx);
            for (unsigned k = 0; k < s->len; k++)
                printf("%02x", buf[k]);
            printf("\n");
            ring->head = ring->cur = nm_ring_next(ring, ring->cur);
        }
    }
    nmport_close(d);
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "nic")) {
        watch_nic(argv[2], (unsigned)atoi(argv[3]));
        return 0;
    }
    CHECK(argc == 2, "usage: lnm_monitor PREFIX | nic IFNAME N");
    nmctx_set_error(NULL, keep_msg);
    refusals(argv[1]);
    on_pipe(argv[1]);
    on_vale(argv[1]);
    printf("monitor ok\n");
    return 0;
}
