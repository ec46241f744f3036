/*
 * nm_join.c -- a netmap program (netmap's fd interface only) that shares
 * a NIC queue with another process, run under nmcompat exec by
 * tests/kernel/test_devnetmap_nic_join.py.
 *
 *   nm_join NAME all|rx|tx|one0
 *       register NAME: all NIC rings, its RX rings only (NR_RX_RINGS_ONLY),
 *       its TX rings only (NR_TX_RINGS_ONLY) or queue 0 (NR_REG_ONE_NIC);
 *       say "ready"; then, until stdin ends: each test frame of the peer
 *       (02:..:0b) that arrives, checked byte for byte: "rx SEQ"; each line
 *       "send N" on stdin: N test frames sent (02:..:0a), "sent N"; at the
 *       end of stdin the port is closed: "bye"
 *
 * A REGISTER refused: "register errno=E", exit status 0.
 */
#define NETMAP_WITH_LIBS
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

#include "nm_eth_test.h"

static void report_rx(struct port *p)
{
    unsigned char want[2048];

    for (unsigned r = 0; r < p->reg.nr_rx_rings; r++) {
        struct netmap_ring *ring = NETMAP_RXRING(p->nifp, r);
        while (!nm_ring_empty(ring)) {
            struct netmap_slot *s = &ring->slot[ring->head];
            const unsigned char *buf = (const unsigned char *)NETMAP_BUF(ring, s->buf_idx);
            if (is_test(buf, s->len) && buf[11] == 0x0b) {
                uint32_t seq;
                memcpy(&seq, buf + 14, 4);
                test_frame(want, seq, 0x0b);
                CHECK(s->len == test_len(seq) && memcmp(buf, want, s->len) == 0, "frame %u (len %u)",
                      seq, s->len);
                printf("rx %u\n", seq);
            }
            ring->head = ring->cur = nm_ring_next(ring, ring->head);
        }
    }
    fflush(stdout);
}

/* One line of stdin: false at its end. */
static bool command(struct port *p)
{
    char line[64];
    unsigned n;

    if (!fgets(line, sizeof(line), stdin))
        return false;
    CHECK(sscanf(line, "send %u", &n) == 1, "command %s", line);
    send_frames(p, n);
    printf("sent %u\n", n);
    fflush(stdout);
    return true;
}

static int serve(struct port *p, bool rx)
{
    struct pollfd fds[2] = { { .fd = 0, .events = POLLIN }, { .fd = p->fd, .events = POLLIN } };

    setvbuf(stdin, NULL, _IONBF, 0);            /* poll sees what fgets has not read */
    for (;;) {
        CHECK(poll(fds, rx ? 2 : 1, -1) > 0, "poll");
        CHECK(!(fds[1].revents & POLLERR), "poll POLLERR");
        if (rx && (fds[1].revents & POLLIN))
            report_rx(p);
        if ((fds[0].revents & (POLLIN | POLLHUP)) && !command(p))
            return 0;
    }
}

int main(int argc, char **argv)
{
    struct port p;
    uint32_t mode = NR_REG_ALL_NIC;
    uint64_t flags = 0;
    int err;

    if (argc != 3) {
        fprintf(stderr, "usage: nm_join NAME all|rx|tx|one0\n");
        return 2;
    }
    if (strcmp(argv[2], "rx") == 0)
        flags = NR_RX_RINGS_ONLY;
    else if (strcmp(argv[2], "tx") == 0)
        flags = NR_TX_RINGS_ONLY;
    else if (strcmp(argv[2], "one0") == 0)
        mode = NR_REG_ONE_NIC;
    else
        CHECK(strcmp(argv[2], "all") == 0, "mode %s", argv[2]);
    p.fd = open("/dev/netmap", O_RDWR | O_CLOEXEC);
    CHECK(p.fd >= 0, "open /dev/netmap");
    memset(&p.reg, 0, sizeof(p.reg));
    p.reg.nr_mode = mode;
    p.reg.nr_flags = flags;
    err = ctrl(p.fd, argv[1], NETMAP_REQ_REGISTER, &p.reg, 0) == 0 ? 0 : errno;
    if (err) {
        printf("register errno=%d\n", err);
        return 0;
    }
    p.mem = mmap(NULL, p.reg.nr_memsize, PROT_READ | PROT_WRITE, MAP_SHARED, p.fd, 0);
    CHECK(p.mem != MAP_FAILED, "mmap");
    p.nifp = NETMAP_IF(p.mem, p.reg.nr_offset);
    printf("ready\n");
    fflush(stdout);
    err = serve(&p, flags != NR_TX_RINGS_ONLY);
    close_port(&p);
    printf("bye\n");
    return err;
}
