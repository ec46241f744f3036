/*
 * nm_eth_test.h -- the test frames of the interface programs (nm_nic.c,
 * nm_openers.c): broadcast from 02:00:00:00:00:<src_last>, ethertype 0x88B5,
 * a 32-bit sequence number, then bytes that depend on it; 60 + seq % 200
 * bytes; sending N of them; and a poll of a port that fails the test on
 * POLLERR.
 */
#ifndef NM_ETH_TEST_H
#define NM_ETH_TEST_H

#include <poll.h>
#include <stdbool.h>

#include "nm_test.h"

#define ETH_TEST 0x88B5

static inline unsigned test_len(unsigned seq)
{
    return 60 + seq % 200;
}

static inline void test_frame(unsigned char *buf, unsigned seq, unsigned char src_last)
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

static inline bool is_test(const unsigned char *buf, unsigned len)
{
    return len >= 18 && buf[12] == (ETH_TEST >> 8) && buf[13] == (ETH_TEST & 0xff);
}

/* poll(2) on the port: how many are ready (0 after timeout_ms). */
static inline int wait_for(struct port *p, short events, int timeout_ms)
{
    struct pollfd pfd = { .fd = p->fd, .events = events };
    int n = poll(&pfd, 1, timeout_ms);

    CHECK(n >= 0, "poll");
    CHECK(!(pfd.revents & POLLERR), "poll POLLERR");
    return n;
}

/* N test frames out of TX ring 0, then every one of them handed to the NIC. */
static inline void send_frames(struct port *p, unsigned n)
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
            CHECK(wait_for(p, POLLOUT, 10000) > 0, "TX ring not drained within 10 s");
    }
}

#endif
