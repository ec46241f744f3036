/*
 * nm_openers.c -- two netmap descriptors of one program on the same NIC
 * queue (netmap's fd interface only), run under nmcompat exec by
 * tests/kernel/test_nic_openers.py.
 *
 *   nm_openers rt IFNAME N     REGISTER IFNAME twice, RX rings only (/R) and TX
 *                              rings only (/T); "ready"; take N test frames on
 *                              the first, send N on the second; "rt ok N"
 *   nm_openers two IFNAME N    REGISTER IFNAME twice (all rings each); "ready";
 *                              take the first N/2 test frames on the first
 *                              descriptor, the rest on the second, then check
 *                              that neither has one more; "two ok N"
 *
 * Frames are nm_nic.c's test frames: broadcast from 02:00:00:00:00:0b (the
 * peer) or ...:0a (us), ethertype 0x88B5, a 32-bit sequence number, then
 * bytes that depend on it; 60 + seq % 200 bytes.  Others are skipped.
 */
#define NETMAP_WITH_LIBS
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

#include "nm_eth_test.h"

/* Test frames *got .. until - 1 from p's RX ring 0, in order, every byte
 * checked; stops at `until` (what follows stays in the ring). */
static void take_until(struct port *p, unsigned *got, unsigned until)
{
    struct netmap_ring *ring = NETMAP_RXRING(p->nifp, 0);
    unsigned char want[2048];

    while (*got < until) {
        CHECK(wait_for(p, POLLIN, 10000) > 0, "no frame %u of %u within 10 s", *got, until);
        while (*got < until && !nm_ring_empty(ring)) {
            struct netmap_slot *s = &ring->slot[ring->head];
            const unsigned char *buf = (const unsigned char *)NETMAP_BUF(ring, s->buf_idx);
            if (is_test(buf, s->len)) {
                test_frame(want, *got, 0x0b);
                CHECK(s->len == test_len(*got) && memcmp(buf, want, s->len) == 0,
                      "frame %u (len %u)", *got, s->len);
                (*got)++;
            }
            ring->head = ring->cur = nm_ring_next(ring, ring->head);
        }
    }
    CHECK(ioctl(p->fd, NIOCRXSYNC, NULL) == 0, "rxsync");     /* release what was taken */
}

static void ready(void)
{
    printf("ready 1\n");
    fflush(stdout);
}

static int run_rt(const char *name, unsigned n)
{
    struct port r, t;
    unsigned got = 0;

    open_port_flags(&r, name, NR_REG_ALL_NIC, NR_RX_RINGS_ONLY);
    open_port_flags(&t, name, NR_REG_ALL_NIC, NR_TX_RINGS_ONLY);
    CHECK(r.reg.nr_mem_id == t.reg.nr_mem_id, "one region: %u, %u", r.reg.nr_mem_id, t.reg.nr_mem_id);
    ready();
    take_until(&r, &got, n);
    send_frames(&t, n);
    close_port(&t);
    close_port(&r);
    printf("rt ok %u\n", n);
    return 0;
}

static int run_two(const char *name, unsigned n)
{
    struct port a, b;
    unsigned got = 0;

    open_port(&a, name, NR_REG_ALL_NIC);
    open_port(&b, name, NR_REG_ALL_NIC);
    ready();
    take_until(&a, &got, n / 2);
    take_until(&b, &got, n);
    CHECK(ioctl(a.fd, NIOCRXSYNC, NULL) == 0 && nm_ring_empty(NETMAP_RXRING(a.nifp, 0)),
          "a frame after the last");
    close_port(&a);
    close_port(&b);
    printf("two ok %u\n", n);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 4 && strcmp(argv[1], "rt") == 0)
        return run_rt(argv[2], (unsigned)atoi(argv[3]));
    if (argc == 4 && strcmp(argv[1], "two") == 0)
        return run_two(argv[2], (unsigned)atoi(argv[3]));
    fprintf(stderr, "usage: nm_openers rt|two IFNAME N\n");
    return 2;
}
