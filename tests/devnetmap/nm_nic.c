/*
 * nm_nic.c -- a netmap program on a NIC port, speaking only netmap's fd
 * interface (open /dev/netmap, NIOCCTRL REGISTER, mmap, poll, close), run
 * under nmcompat exec by tests/kernel/test_devnetmap_nic.py.
 *
 *   nm_nic rxtx IFNAME N       register IFNAME (all queues), say "ready RINGS", take N
 *                              test frames (checked byte for byte), then send N
 *                              test frames; "rxtx ok N"
 *   nm_nic legacy IFNAME N     the same through netmap's legacy API: nm_open
 *                              ("netmap:IFNAME", NIOCREGIF), nm_nextpkt, nm_inject
 *   nm_nic register IFNAME MODE RINGID
 *                              one REGISTER; "register errno=E" (0: it worked)
 *   nm_nic info IFNAME         PORT_INFO_GET, NIOCGINFO (legacy) and POOLS_INFO_GET
 *                              on IFNAME, a line each ("info errno=E" if refused);
 *                              then, after a line on stdin, REGISTER (all queues)
 *                              and POOLS_INFO_GET again, a line each
 *
 *   nm_nic hold IFNAME         register IFNAME's NIC rings (NR_REG_ALL_NIC), say
 *                              "held"; at each line on stdin send test frame 0
 *                              (a marker) and say "sent"; exit at end of input
 *   nm_nic hostcount IFNAME    one REGISTER of the NIC rings only (NR_REG_ALL_NIC):
 *                              "hostcount HOST_TX HOST_RX", the reply's host ring
 *                              counts (the adapter's, bound or not)
 *   nm_nic host IFNAME         register IFNAME with its host rings (NR_REG_NIC_SW),
 *                              say "host TX RX HOST_TX HOST_RX", then wait (10 s)
 *                              for an ARP frame on the host RX ring: "host rx arp"
 *
 * A test frame: broadcast from 02:00:00:00:00:0b (the peer) or ...:0a (us),
 * ethertype 0x88B5, a 32-bit sequence number, then bytes that depend on it;
 * 60 + seq % 200 bytes.  Frames of another ethertype are skipped.
 */
#define NETMAP_WITH_LIBS
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

#include "nm_eth_test.h"

static int wait_ready(struct port *p, short events)
{
    return wait_for(p, events, 10000);
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
                if (is_test(buf, s->len)) {
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

static int run_hold(const char *name)
{
    struct port p;
    char line[64];

    open_port(&p, name, NR_REG_ALL_NIC);
    printf("held\n");
    fflush(stdout);
    while (fgets(line, sizeof(line), stdin)) {
        send_frames(&p, 1);
        printf("sent\n");
        fflush(stdout);
    }
    close_port(&p);
    return 0;
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

static void legacy_wait(struct nm_desc *d, short events)
{
    struct pollfd pfd = { .fd = NETMAP_FD(d), .events = events };

    CHECK(poll(&pfd, 1, 10000) > 0 && !(pfd.revents & POLLERR), "poll %d", events);
}

static int run_legacy(const char *ifname, unsigned n)
{
    char name[64];
    unsigned char want[2048];
    struct nm_pkthdr h;
    struct nm_desc *d;
    unsigned got = 0;

    snprintf(name, sizeof(name), "netmap:%s", ifname);
    CHECK((d = nm_open(name, NULL, 0, NULL)) != NULL, "nm_open %s", name);
    printf("ready %u\n", d->req.nr_rx_rings);
    fflush(stdout);
    while (got < n) {
        const unsigned char *buf;
        legacy_wait(d, POLLIN);
        while (got < n && (buf = nm_nextpkt(d, &h)) != NULL) {
            if (!is_test(buf, h.len))
                continue;
            test_frame(want, got, 0x0b);
            CHECK(h.len == test_len(got) && memcmp(buf, want, h.len) == 0, "frame %u (len %u)", got, h.len);
            got++;
        }
    }
    for (unsigned i = 0; i < n; i++) {
        test_frame(want, i, 0x0a);
        while (nm_inject(d, want, test_len(i)) == 0)
            legacy_wait(d, POLLOUT);
    }
    for (unsigned r = d->first_tx_ring; r <= d->last_tx_ring; r++)
        while (nm_tx_pending(NETMAP_TXRING(d->nifp, r)))
            legacy_wait(d, POLLOUT);
    CHECK(nm_close(d) == 0, "nm_close");
    printf("legacy ok %u\n", n);
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

static int run_hostcount(const char *name)
{
    struct nmreq_register reg;
    int fd = open("/dev/netmap", O_RDWR | O_CLOEXEC);

    CHECK(fd >= 0, "open /dev/netmap");
    memset(&reg, 0, sizeof(reg));
    reg.nr_mode = NR_REG_ALL_NIC;
    CHECK(ctrl(fd, name, NETMAP_REQ_REGISTER, &reg, 0) == 0, "REGISTER %s", name);
    printf("hostcount %u %u\n", reg.nr_host_tx_rings, reg.nr_host_rx_rings);
    CHECK(close(fd) == 0, "close");
    return 0;
}

/* "WHAT tx_rings rx_rings tx_slots rx_slots memsize mem_id" */
static void say_counts(const char *what, unsigned txr, unsigned rxr, unsigned txs, unsigned rxs,
                       unsigned long long memsize, unsigned mem_id)
{
    printf("%s %u %u %u %u %llu %u\n", what, txr, rxr, txs, rxs, memsize, mem_id);
}

static void say_pools(int fd, const char *name)
{
    struct nmreq_pools_info pi;

    memset(&pi, 0, sizeof(pi));
    CHECK(ctrl(fd, name, NETMAP_REQ_POOLS_INFO_GET, &pi, 0) == 0, "POOLS_INFO_GET %s", name);
    printf("pools %llu %u %u %u %u %u %u %u\n", (unsigned long long)pi.nr_memsize, pi.nr_mem_id,
           pi.nr_if_pool_objtotal, pi.nr_ring_pool_objtotal, pi.nr_ring_pool_objsize,
           pi.nr_buf_pool_objtotal, pi.nr_buf_pool_objsize, (unsigned)pi.nr_buf_pool_offset);
}

static void say_legacy_info(int fd, const char *name)
{
    struct nmreq nmr;

    memset(&nmr, 0, sizeof(nmr));
    snprintf(nmr.nr_name, sizeof(nmr.nr_name), "%s", name);
    nmr.nr_version = NETMAP_API;
    nmr.nr_flags = NR_REG_ALL_NIC;
    CHECK(ioctl(fd, NIOCGINFO, &nmr) == 0, "NIOCGINFO %s", name);
    say_counts("legacy", nmr.nr_tx_rings, nmr.nr_rx_rings, nmr.nr_tx_slots, nmr.nr_rx_slots,
               nmr.nr_memsize, nmr.nr_arg2);
}

static int run_info(const char *name)
{
    struct nmreq_port_info_get pi;
    struct nmreq_register reg;
    char line[16];
    int fd = open("/dev/netmap", O_RDWR | O_CLOEXEC);

    CHECK(fd >= 0, "open /dev/netmap");
    memset(&pi, 0, sizeof(pi));
    if (ctrl(fd, name, NETMAP_REQ_PORT_INFO_GET, &pi, 0) < 0) {
        printf("info errno=%d\n", errno);
        return 0;
    }
    say_counts("info", pi.nr_tx_rings, pi.nr_rx_rings, pi.nr_tx_slots, pi.nr_rx_slots,
               (unsigned long long)pi.nr_memsize, pi.nr_mem_id);
    say_legacy_info(fd, name);
    say_pools(fd, name);
    fflush(stdout);
    CHECK(fgets(line, sizeof(line), stdin) != NULL, "the go-ahead on stdin");
    memset(&reg, 0, sizeof(reg));
    reg.nr_mode = NR_REG_ALL_NIC;
    CHECK(ctrl(fd, name, NETMAP_REQ_REGISTER, &reg, 0) == 0, "REGISTER %s", name);
    say_counts("register", reg.nr_tx_rings, reg.nr_rx_rings, reg.nr_tx_slots, reg.nr_rx_slots,
               (unsigned long long)reg.nr_memsize, reg.nr_mem_id);
    say_pools(fd, name);
    CHECK(close(fd) == 0, "close");
    return 0;
}

/* The stack's frames on the host RX ring (ring nr_rx_rings). */
static int run_host(const char *name)
{
    struct port p;
    struct netmap_ring *ring;
    bool arp = false;

    open_port(&p, name, NR_REG_NIC_SW);
    printf("host %u %u %u %u\n", p.reg.nr_tx_rings, p.reg.nr_rx_rings, p.reg.nr_host_tx_rings,
           p.reg.nr_host_rx_rings);
    fflush(stdout);
    ring = NETMAP_RXRING(p.nifp, p.reg.nr_rx_rings);
    while (!arp) {
        CHECK(wait_ready(&p, POLLIN) > 0, "no frame on the host RX ring within 10 s");
        for (; !nm_ring_empty(ring); ring->head = ring->cur = nm_ring_next(ring, ring->head)) {
            const unsigned char *buf = (const unsigned char *)NETMAP_BUF(ring, ring->slot[ring->head].buf_idx);
            arp |= ring->slot[ring->head].len >= 42 && buf[12] == 0x08 && buf[13] == 0x06;
        }
    }
    printf("host rx arp\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "host") == 0)
        return run_host(argv[2]);
    if (argc == 3 && strcmp(argv[1], "hold") == 0)
        return run_hold(argv[2]);
    if (argc == 3 && strcmp(argv[1], "hostcount") == 0)
        return run_hostcount(argv[2]);
    if (argc == 4 && strcmp(argv[1], "rxtx") == 0)
        return run_rxtx(argv[2], (unsigned)atoi(argv[3]));
    if (argc == 4 && strcmp(argv[1], "legacy") == 0)
        return run_legacy(argv[2], (unsigned)atoi(argv[3]));
    if (argc == 5 && strcmp(argv[1], "register") == 0)
        return run_register(argv[2], (uint32_t)atoi(argv[3]), (uint32_t)atoi(argv[4]));
    if (argc == 3 && strcmp(argv[1], "info") == 0)
        return run_info(argv[2]);
    fprintf(stderr, "usage: nm_nic rxtx|legacy IFNAME N | register IFNAME MODE RINGID | info IFNAME | host|hostcount|hold IFNAME\n");
    return 2;
}
