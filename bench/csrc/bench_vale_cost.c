/*
 * bench_vale_cost.c -- the CPU cost of VALE's forwarding per frame, in one
 * thread, so that other load on the machine (which only delays a thread)
 * hardly changes it: nmc_bench_vale_cost() opens <sw>:r0 and <sw>:tx on a
 * fresh switch in <rundir>, has r0 announce its MAC (one broadcast frame),
 * then repeats: fill `batch` frames on tx (a 64-bit sequence number after
 * the Ethernet header), txsync (the switch's whole work: learning, lookup,
 * lease, copy, completion), rxsync r0, check every frame's sequence number,
 * release them.  The ring never fills, so nothing may drop.  cpu_ns is the
 * thread's CPU time (CLOCK_THREAD_CPUTIME_ID) over the loop: the sender's
 * and the receiver's work together, without the cross-core traffic that two
 * processes add (bench-vale measures that).
 *
 * tx_bufs 0 sends from the TX ring's buffers in ring order, as a netmap
 * sender does (1024 buffers, 2 MB: read from L3).  tx_bufs n (>= batch)
 * sends from n buffers only, the way a DPDK sender's mempool cache hands out
 * the same few hot mbufs: slot j carries slot (j mod n)'s buffer, set once
 * with NS_BUF_CHANGED (netmap's idiom for a program's own buffer
 * management), and given back before the ports close.
 */
#include "bench_int.h"
#include "nmcompat_bench.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <net/netmap_user.h>

#define VC_SEQ_OFS   14u                /* after the Ethernet header */

static const uint8_t vc_rx_mac[6] = { 0x02, 0x6e, 0x6d, 0x63, 0x52, 0x00 };
static const uint8_t vc_tx_mac[6] = { 0x02, 0x6e, 0x6d, 0x63, 0x54, 0x00 };

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void put_macs(uint8_t *buf, const uint8_t *dst, const uint8_t *src)
{
    memcpy(buf, dst, 6);
    memcpy(buf + 6, src, 6);
    buf[12] = 0x88;                     /* IEEE local experimental */
    buf[13] = 0xb5;
}

/* r0 sends one broadcast frame, so that the switch learns its MAC. */
static int announce_rx(struct nmc_port *rx)
{
    struct netmap_ring *ring = NETMAP_TXRING(nmc_port_nifp(rx), 0);
    struct netmap_slot *s = &ring->slot[ring->head];
    uint8_t *buf = (uint8_t *)NETMAP_BUF(ring, s->buf_idx);
    static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

    memset(buf, 0, 60);
    put_macs(buf, bcast, vc_rx_mac);
    s->len = 60;
    ring->head = ring->cur = nm_ring_next(ring, ring->head);
    return nmc_txsync(rx);
}

/* Fill n frames from tx's head, sequence numbers from seq; txsync. */
static int send_batch(struct nmc_port *tx, uint32_t n, uint32_t len, uint64_t seq)
{
    struct netmap_ring *ring = NETMAP_TXRING(nmc_port_nifp(tx), 0);
    uint32_t j = ring->head;

    for (uint32_t i = 0; i < n; i++, seq++, j = nm_ring_next(ring, j)) {
        memcpy((uint8_t *)NETMAP_BUF(ring, ring->slot[j].buf_idx) + VC_SEQ_OFS, &seq, sizeof(seq));
        ring->slot[j].len = (uint16_t)len;
    }
    ring->head = ring->cur = j;
    return nmc_txsync(tx);
}

/* rxsync r0, check and release what arrived; *next is the expected number.
 * The release reaches the switch at the next rxsync, after the next batch
 * is sent: two batches must fit the ring. */
static int receive_all(struct nmc_port *rx, uint32_t len, uint64_t *next,
                       struct nmc_bench_vale_cost *out)
{
    struct netmap_ring *ring = NETMAP_RXRING(nmc_port_nifp(rx), 0);
    int err = nmc_rxsync(rx);

    if (err < 0)
        return err;
    for (uint32_t j = ring->head; j != ring->tail; j = nm_ring_next(ring, j)) {
        uint64_t v;
        memcpy(&v, (uint8_t *)NETMAP_BUF(ring, ring->slot[j].buf_idx) + VC_SEQ_OFS, sizeof(v));
        out->errors += v != *next || ring->slot[j].len != len;
        *next = v + 1;
        out->packets++;
    }
    ring->head = ring->cur = ring->tail;
    return 0;
}

static int cost_loop(struct nmc_port *tx, struct nmc_port *rx, uint32_t batch, uint32_t len,
                     uint64_t count, struct nmc_bench_vale_cost *out)
{
    struct netmap_ring *ring = NETMAP_TXRING(nmc_port_nifp(tx), 0);
    uint64_t seq = 0, next = 0, c0;
    struct nmc_port_stats st;
    int err = 0;

    for (uint32_t j = 0; j < ring->num_slots; j++) {
        uint8_t *buf = (uint8_t *)NETMAP_BUF(ring, ring->slot[j].buf_idx);
        memset(buf, 0, len);
        put_macs(buf, vc_rx_mac, vc_tx_mac);
    }
    c0 = thread_cpu_ns();
    while (seq < count && err == 0) {
        uint32_t n = count - seq < batch ? (uint32_t)(count - seq) : batch;
        if ((err = send_batch(tx, n, len, seq)) == 0)
            err = receive_all(rx, len, &next, out);
        seq += n;
    }
    out->cpu_ns = thread_cpu_ns() - c0;
    out->sent = seq;
    nmc_port_stats(rx, &st);
    out->drops = st.rx_dropped;
    return err;
}

int nmc_bench_vale_cost(const char *rundir, const char *sw, uint32_t batch, uint32_t pkt_len,
                        uint32_t tx_bufs, uint64_t count, struct nmc_bench_vale_cost *out)
{
    uint32_t orig[BENCH_MAXSLOTS];
    struct nmc_port *tx = NULL, *rx = NULL;
    int err;

    memset(out, 0, sizeof(*out));
    if (batch == 0 || count == 0 || pkt_len < VC_SEQ_OFS + 8 || (tx_bufs && tx_bufs < batch))
        return -EINVAL;
    if ((err = bench_vale_open(rundir, sw, "r0", true, &rx)) < 0)
        return err;
    if ((err = bench_vale_open(rundir, sw, "tx", false, &tx)) == 0) {
        struct netmap_ring *ring = NETMAP_TXRING(nmc_port_nifp(tx), 0);
        if (pkt_len > ring->nr_buf_size || batch >= ring->num_slots || tx_bufs >= ring->num_slots ||
            ring->num_slots > BENCH_MAXSLOTS ||
            2 * batch >= NETMAP_RXRING(nmc_port_nifp(rx), 0)->num_slots) {   /* see receive_all */
            err = -EINVAL;
        } else if ((err = announce_rx(rx)) == 0) {
            bench_share_tx_bufs(ring, tx_bufs, orig, false);
            err = cost_loop(tx, rx, batch, pkt_len, count, out);
            bench_share_tx_bufs(ring, tx_bufs, orig, true);
        }
        nmc_port_close(tx);
    }
    nmc_port_close(rx);
    return err;
}
