/*
 * nm_nic.c -- a netmap program on a NIC port, speaking only netmap's fd
 * interface (open /dev/netmap, NIOCCTRL REGISTER, mmap, poll, close), run
 * under nmcompat exec by tests/kernel/test_devnetmap_nic.py.
 *
 *   nm_nic rxtx IFNAME N       register IFNAME (all queues), say "ready RINGS", take N
 *                              test frames (checked byte for byte), then send N
 *                              test frames; "rxtx ok N"
 *   nm_nic register IFNAME MODE RINGID
 *                              one REGISTER; "register errno=E" (0: it worked)
 *
 * A test frame: broadcast from 02:00:00:00:00:0b (the peer) or ...:0a (us),
 * ethertype 0x88B5, a 32-bit sequence number, then bytes that depend on it;
 * 60 + seq % 200 bytes.  Frames of another ethertype are skipped.
 */
#include <poll.h>
#include <stdint.h>

#include "nm_test.h"

#define ETH_TEST 0x88B5

static unsigned test_len(unsigned seq)
{
    return 60 + seq % 200;
}

static void test_frame(unsigned char *buf, unsigned seq, unsigned char src_last)
{
    unsigned len = test_len(seq);

    memset(buf, 0xff, 6);
    memcpy(buf + 6, "\x02\x00\x00\x00\x00", 5);
    buf[11] = src_last;
    buf[12] = ETH_TEST >> 8;
    buf[13] = ETH_TEST & 0xff;
    memcpy(buf + 14, &seq, 4);
    for (unsigned k = 18; k < len; k++)
        buf[k] = (unsigned char)(seq * 13 + k);
}

static int wait_ready(struct port *p, short events)
{
    struct pollfd pfd = { .fd = p->fd, .events = events };
    int n = poll(&pfd, 1, 10000);

    CHECK(n >= 0, "poll");
    CHECK(!(pfd.revents & POLLERR), "poll POLLERR");
    return n;
}

/* N test frames from the peer, in order, every byte checked. */
static void take(struct port *p, unsigned n)
{
    unsigned got = 0;
    unsigned char want[2048];

    while (got < n) {
        CHECK(wait_ready(p, POLLIN) > 0, "no frame %u of %u within 10 s", got, n);
        for (unsigned r = 0; r < p->nifp->ni_rx_rings; r++) {
            struct netmap_ring *ring = NETMAP_RXRING(p->nifp, r);
            while (!nm_ring_empty(ring)) {
                struct netmap_slot *s = &ring->slot[ring->head];
                const unsigned char *buf = (const unsigned char *)NETMAP_BUF(ring, s->buf_idx);
                if (s->len >= 18 && buf[12] == (ETH_TEST >> 8) && buf[13] == (ETH_TEST & 0xff)) {
                    test_frame(want, got, 0x0b);
                    CHECK(s->len == test_len(got) && memcmp(buf, want, s->len) == 0,
                          "frame %u (len %u)", got, s->len);
                    got++;
                }
                ring->head = ring->cur = nm_ring_next(ring, ring->head);
            }
        }
    }
}

/* N test frames out of TX ring 0, then every one of them handed to the NIC. */
static void send_frames(struct port *p, unsigned n)
{
    struct netmap_ring *ring = NETMAP_TXRING(p->nifp, 0);
    unsigned sent = 0;

    while (sent < n || nm_tx_pending(ring)) {
        while (sent < n && nm_ring_space(ring) > 0) {
            struct netmap_slot *s = &ring->slot[ring->head];
            test_frame((unsigned char *)NETMAP_BUF(ring, s->buf_idx), sent, 0x0a);
            s->len = (uint16_t)test_len(sent);
            ring->head = ring->cur = nm_ring_next(ring, ring->head);
            sent++;
        }
        CHECK(ioctl(p->fd, NIOCTXSYNC, NULL) == 0, "txsync");
        if (sent == n && nm_tx_pending(ring))
            CHECK(wait_ready(p, POLLOUT) > 0, "TX ring not drained within 10 s");
    }
}

static int run_rxtx(const char *name, unsigned n)
{
    struct port p;

    open_port(&p, name, NR_REG_ALL_NIC);
    CHECK(p.nifp->ni_rx_rings == p.reg.nr_rx_rings && p.reg.nr_rx_rings == p.reg.nr_tx_rings,
          "one ring pair per queue");
    printf("ready %u\n", p.reg.nr_rx_rings);
    fflush(stdout);
    take(&p, n);
    send_frames(&p, n);
    close_port(&p);
    printf("rxtx ok %u\n", n);
    return 0;
}

static int run_register(const char *name, uint32_t mode, uint32_t ringid)
{
    struct nmreq_register reg;
    int fd = open("/dev/netmap", O_RDWR | O_CLOEXEC), rc;

    CHECK(fd >= 0, "open /dev/netmap");
    memset(&reg, 0, sizeof(reg));
    reg.nr_mode = mode;
    reg.nr_ringid = ringid;
    rc = ctrl(fd, name, NETMAP_REQ_REGISTER, &reg, 0);
    printf("register errno=%d\n", rc == 0 ? 0 : errno);
    CHECK(close(fd) == 0, "close");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "rxtx") == 0)
        return run_rxtx(argv[2], (unsigned)atoi(argv[3]));
    if (argc == 5 && strcmp(argv[1], "register") == 0)
        return run_register(argv[2], (uint32_t)atoi(argv[3]), (uint32_t)atoi(argv[4]));
    fprintf(stderr, "usage: nm_nic rxtx IFNAME N | register IFNAME MODE RINGID\n");
    return 2;
}
