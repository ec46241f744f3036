/*
 * nm_nic_pipe.c -- a netmap program with a NIC port and a pipe of that
 * interface, speaking only netmap's fd interface, run under nmcompat exec
 * by tests/kernel/test_devnetmap_nic_pipe.py.
 *
 *   nm_nic_pipe IFNAME     register IFNAME, IFNAME{1 and IFNAME}1; say
 *                          "ready MEMID" (the pipe ends' mem_id must be the
 *                          NIC's), wait for a frame of ethertype 0x88B5 on
 *                          the NIC's RX ring, swap its buffer into the pipe's
 *                          TX ring and check the other end receives that
 *                          buffer with those bytes: "zero-copy ok IDX"
 */
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

#include "nm_test.h"

/* The slot of the first test frame on p's RX ring 0 (earlier ones released). */
static uint32_t wait_test_frame(struct port *p)
{
    struct netmap_ring *rx = NETMAP_RXRING(p->nifp, 0);
    struct pollfd pfd = { .fd = p->fd, .events = POLLIN };

    for (int round = 0; round < 200; round++) {
        CHECK(poll(&pfd, 1, 100) >= 0, "poll");
        for (; rx->head != rx->tail; rx->head = rx->cur = nm_ring_next(rx, rx->head)) {
            const unsigned char *b = (unsigned char *)NETMAP_BUF(rx, rx->slot[rx->head].buf_idx);
            if (rx->slot[rx->head].len >= 18 && b[12] == 0x88 && b[13] == 0xB5)
                return rx->head;
        }
        CHECK(ioctl(p->fd, NIOCRXSYNC, NULL) == 0, "rxsync");
    }
    CHECK(0, "no test frame on the NIC's RX ring");
    return 0;
}

int main(int argc, char **argv)
{
    struct port nic, m, s;
    char name[64];
    unsigned char copy[2048];
    struct netmap_ring *rx, *tx, *prx;
    uint32_t i, idx, len;

    CHECK(argc == 2, "usage: nm_nic_pipe IFNAME");
    open_port(&nic, argv[1], NR_REG_ALL_NIC);
    snprintf(name, sizeof(name), "%s{1", argv[1]);
    open_port(&m, name, NR_REG_ALL_NIC);
    snprintf(name, sizeof(name), "%s}1", argv[1]);
    open_port(&s, name, NR_REG_ALL_NIC);
    CHECK(m.reg.nr_mem_id == nic.reg.nr_mem_id && s.reg.nr_mem_id == nic.reg.nr_mem_id,
          "mem_ids %u %u %u", nic.reg.nr_mem_id, m.reg.nr_mem_id, s.reg.nr_mem_id);
    printf("ready %u\n", nic.reg.nr_mem_id);
    fflush(stdout);
    rx = NETMAP_RXRING(nic.nifp, 0);
    i = wait_test_frame(&nic);
    idx = rx->slot[i].buf_idx;
    len = rx->slot[i].len;
    CHECK(len <= sizeof(copy), "length %u", len);
    memcpy(copy, NETMAP_BUF(rx, idx), len);
    tx = NETMAP_TXRING(m.nifp, 0);
    rx->slot[i].buf_idx = tx->slot[tx->head].buf_idx;       /* the NIC gets the pipe's buffer */
    rx->slot[i].flags |= NS_BUF_CHANGED;
    tx->slot[tx->head].buf_idx = idx;
    tx->slot[tx->head].len = (uint16_t)len;
    tx->slot[tx->head].flags |= NS_BUF_CHANGED;
    tx->head = tx->cur = nm_ring_next(tx, tx->head);
    rx->head = rx->cur = nm_ring_next(rx, i);
    CHECK(ioctl(m.fd, NIOCTXSYNC, NULL) == 0 && ioctl(nic.fd, NIOCRXSYNC, NULL) == 0, "syncs");
    CHECK(ioctl(s.fd, NIOCRXSYNC, NULL) == 0, "rxsync of the other end");
    prx = NETMAP_RXRING(s.nifp, 0);
    CHECK(prx->head != prx->tail && prx->slot[prx->head].buf_idx == idx &&
          prx->slot[prx->head].len == len && memcmp(NETMAP_BUF(prx, idx), copy, len) == 0,
          "the NIC's buffer %u through the pipe", idx);
    printf("zero-copy ok %u\n", idx);
    close_port(&s);
    close_port(&m);
    close_port(&nic);
    return 0;
}
