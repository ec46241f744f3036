/*
 * bench_xsk.c -- benchmark loops for NIC ports (AF_XDP or any other NIC
 * backend), driven as pkt-gen drives a netmap port: one C call runs a whole
 * measurement, so no interpreter sits in the data path.
 *
 * TX: every TX slot's buffer gets the frame once, at the start (a port's TX
 * buffers are its own and never change on a NIC port, so the payload
 * stays); the loop then only sets lengths, advances head and cur over the
 * free slots (at most `batch` per ring per round), and txsyncs, or waits in
 * nmc_poll(POLLOUT) when every ring is full.
 *
 * RX: rxsync (busy), count the packets from head to tail (a NS_MOREFRAG
 * chain counts once) and release them all.  With `use_poll` the loop calls
 * nmc_poll(POLLIN) every round instead, as pkt-gen does; otherwise it only
 * sleeps in poll when nothing came for a while.
 *
 * Times are CLOCK_MONOTONIC; a receiver's window starts at its first packet.
 */
#include "bench_int.h"
#include "nmcompat_bench.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <net/netmap_user.h>

/* An Ethernet frame of len bytes: locally administered MACs, the IEEE
 * local experimental ethertype, a counter pattern as payload. */
static void make_frame(uint8_t *buf, uint32_t len)
{
    static const uint8_t head[14] = { 0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0x88, 0xb5 };
    uint32_t k;

    memcpy(buf, head, len < sizeof(head) ? len : sizeof(head));
    for (k = sizeof(head); k < len; k++)
        buf[k] = (uint8_t)k;
}

/* The port's bound rings of one direction: ring i is NETMAP_*RING(nifp, first + i). */
static int bound_rings(struct nmc_port *port, int tx, uint32_t *first, uint32_t *n)
{
    struct nmc_port_info info;
    int err = nmc_port_info(port, &info);

    if (err < 0)
        return err;
    *first = tx ? info.first_tx_ring : info.first_rx_ring;
    *n = (tx ? info.last_tx_ring : info.last_rx_ring) - *first;
    return *n ? 0 : -EINVAL;
}

int nmc_bench_xsk_tx(struct nmc_port *port, uint32_t pkt_len, uint64_t count,
                     uint64_t duration_ns, uint32_t batch, struct nmc_bench_xsk_result *out)
{
    struct netmap_if *nifp = nmc_port_nifp(port);
    uint64_t start, end, sent = 0, bytes = 0;
    uint32_t first, ntx, i, k;
    int err;

    if (!nifp || !out || pkt_len < 14)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    if ((err = bound_rings(port, 1, &first, &ntx)) < 0)
        return err;
    if (batch == 0)
        batch = 512;
    for (i = 0; i < ntx; i++) {
        struct netmap_ring *r = NETMAP_TXRING(nifp, first + i);
        if (pkt_len > r->nr_buf_size)
            return -EMSGSIZE;
        for (k = 0; k < r->num_slots; k++) {
            make_frame((uint8_t *)NETMAP_BUF(r, r->slot[k].buf_idx), pkt_len);
            r->slot[k].len = (uint16_t)pkt_len;
        }
    }
    start = end = bench_now_ns();
    while ((count == 0 || sent < count) && (duration_ns == 0 || end - start < duration_ns)) {
        uint32_t moved = 0;
        for (i = 0; i < ntx; i++) {
            struct netmap_ring *r = NETMAP_TXRING(nifp, first + i);
            uint32_t n = nm_ring_space(r), head = r->head;
            if (n > batch)
                n = batch;
            if (count && n > count - sent)
                n = (uint32_t)(count - sent);
            for (k = 0; k < n; k++) {
                struct netmap_slot *s = &r->slot[head];
                s->len = (uint16_t)pkt_len;
                s->flags = 0;
                head = head + 1 == r->num_slots ? 0 : head + 1;
            }
            r->head = r->cur = head;
            moved += n;
        }
        sent += moved;
        bytes += (uint64_t)moved * pkt_len;
        if (moved) {
            out->batches++;
            err = nmc_txsync(port);
        } else {
            int rc = nmc_poll(port, POLLOUT, 100);
            out->polls++;
            err = rc < 0 ? rc : 0;
        }
        out->syncs++;
        if (err < 0)
            return err;
        end = bench_now_ns();
    }
    /* let the last slots complete, for a receiver counting them */
    for (k = 0; k < 200; k++) {
        bool pending = false;
        nmc_txsync(port);
        for (i = 0; i < ntx; i++) {
            struct netmap_ring *r = NETMAP_TXRING(nifp, first + i);
            pending |= nm_ring_space(r) != r->num_slots - 1;
        }
        if (!pending)
            break;
        nmc_poll(port, POLLOUT, 5);
    }
    out->packets = sent;
    out->bytes = bytes;
    out->start_ns = start;
    out->end_ns = end;
    out->elapsed_ns = end - start;
    return 0;
}

int nmc_bench_xsk_rx(struct nmc_port *port, uint64_t duration_ns, uint64_t wait_ns,
                     uint64_t idle_ns, int use_poll, struct nmc_bench_xsk_result *out)
{
    struct netmap_if *nifp = nmc_port_nifp(port);
    uint64_t t0, now, first = 0, last = 0;
    uint32_t ring0, nrx, i;
    int err;

    if (!nifp || !out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    if ((err = bound_rings(port, 0, &ring0, &nrx)) < 0)
        return err;
    t0 = now = bench_now_ns();
    for (;;) {
        uint64_t pkts = 0, bytes = 0;
        err = use_poll ? nmc_poll(port, POLLIN, 100) : nmc_rxsync(port);
        if (err < 0)
            return err;
        out->syncs++;
        for (i = 0; i < nrx; i++) {
            struct netmap_ring *r = NETMAP_RXRING(nifp, ring0 + i);
            uint32_t j = r->head, tail = r->tail;
            while (j != tail) {
                struct netmap_slot *s = &r->slot[j];
                pkts += !(s->flags & NS_MOREFRAG);
                bytes += s->len;
                j = j + 1 == r->num_slots ? 0 : j + 1;
            }
            r->head = r->cur = tail;
        }
        now = bench_now_ns();
        if (pkts) {
            if (!first)
                first = now;
            last = now;
            out->packets += pkts;
            out->bytes += bytes;
            out->batches++;
        }
        if (first && now - first >= duration_ns)
            break;
        if (!first && now - t0 >= wait_ns)
            break;                      /* nothing ever came */
        if (first && now - last >= idle_ns)
            break;                      /* the sender stopped */
        if (!pkts && !use_poll && now - (last ? last : t0) > 1000000ull) {
            out->polls++;
            nmc_poll(port, POLLIN, 1);  /* idle for 1 ms: stop spinning */
        }
    }
    nmc_rxsync(port);                   /* hand the last buffers back */
    out->start_ns = first;
    out->end_ns = last;
    out->elapsed_ns = last - first;
    return 0;
}
