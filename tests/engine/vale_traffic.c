/*
 * vale_traffic.c -- numbered, self-checking traffic through a VALE switch
 * of the nmcompat engine, driven through the netmap ring API.  Built with
 * the engine sources by tests/unit/vale_helpers.py.
 *
 *   vale_traffic send [options]   write numbered frames into a VALE port
 *   vale_traffic recv [options]   read them from another port and check them
 *
 * Frame layout (every frame, whatever its length):
 *   0  dst MAC        6  src MAC 02:00:00:00:00:<id>    12  ethertype 88 b5
 *   14 sender id      15 0x5a                           16  seq (u64 LE)
 *   24 frame length (u32 LE)                            28  pattern bytes
 * Pattern byte at offset j is (seq * 131 + id * 7 + j) & 0xff, so a torn,
 * truncated, shifted or mixed-up frame is detected.  Frames longer than a
 * buffer go out as NS_MOREFRAG chains.
 *
 * Output lines go straight to write(2) (they survive a SIGKILL):
 *   ready ...                 the port is open
 *   progress <id> <seq>       (send) frames below seq were handed to txsync
 *   seen <id> <seq>           (recv) highest seq received from sender id
 *   bad <reason> ...          (recv) a frame failed a check
 *   done key=value ...        the end (exit 0; SIGTERM ends a run early)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <net/netmap.h>
#include <net/netmap_user.h>
#include "nmcompat.h"

#define ETH_HI 0x88
#define ETH_LO 0xb5
#define HELLO_LO 0xb6
#define HDR 28u
#define MAXFRAME 65535u

struct opts {
    const char *port;
    unsigned id, dst;           /* dst: last MAC byte, 0x100 = broadcast */
    uint64_t count;             /* 0: forever */
    unsigned batch, minlen, maxlen, seed;
    unsigned wait_us, max_round, idle_ms, total_s;
    unsigned rx_slots, tx_slots, rings;
    int ring;                   /* send: TX ring to use (-1: every bound ring in turn) */
    int hello;
};

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static void out(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    (void)!write(1, line, (size_t)n);
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint32_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (uint32_t)(*s >> 11);
}

static uint8_t pat(uint64_t seq, unsigned id, uint32_t j)
{
    return (uint8_t)(seq * 131u + id * 7u + j);
}

static void make_frame(uint8_t *f, uint32_t len, unsigned id, unsigned dst, uint64_t seq)
{
    if (dst > 0xff) {
        memset(f, 0xff, 6);
    } else {
        static const uint8_t base[5] = { 0x02, 0, 0, 0, 0 };
        memcpy(f, base, 5);
        f[5] = (uint8_t)dst;
    }
    f[6] = 0x02; f[7] = f[8] = f[9] = f[10] = 0; f[11] = (uint8_t)id;
    f[12] = ETH_HI; f[13] = ETH_LO;
    f[14] = (uint8_t)id; f[15] = 0x5a;
    memcpy(f + 16, &seq, 8);
    memcpy(f + 24, &len, 4);
    for (uint32_t j = HDR; j < len; j++)
        f[j] = pat(seq, id, j);
}

static struct nmc_port *open_port(const struct opts *o)
{
    struct nmc_pipe_req req;
    struct nmc_port *p = NULL;
    int err;

    memset(&req, 0, sizeof(req));
    req.parent = o->port;
    req.mode = NR_REG_ALL_NIC;
    req.tx_rings = req.rx_rings = o->rings;
    req.tx_slots = o->tx_slots;
    req.rx_slots = o->rx_slots;
    req.spin_us = -1;
    err = nmc_vale_open(&req, &p);
    if (err < 0) {
        out("FAIL open %s: %s", o->port, strerror(-err));
        exit(2);
    }
    return p;
}

static void usage(void)
{
    fprintf(stderr, "usage: vale_traffic send|recv -p valeX:Y [-i id] [-d dst|ff] [-n count] "
                    "[-b batch] [-l min] [-L max] [-s seed] [-w usec] [-m max/round] "
                    "[-t idle_ms] [-T total_s] [-R rx_slots] [-X tx_slots] [-G rings] "
                    "[-r ring] [-H]\n");
    exit(2);
}

static void parse(int argc, char **argv, struct opts *o)
{
    int c;

    memset(o, 0, sizeof(*o));
    o->id = 1;
    o->dst = 0x100;
    o->batch = 256;
    o->minlen = o->maxlen = 60;
    o->seed = 1;
    o->idle_ms = 3000;
    o->total_s = 120;
    o->ring = -1;
    while ((c = getopt(argc, argv, "p:i:d:n:b:l:L:s:w:m:t:T:R:X:G:r:H")) != -1) {
        switch (c) {
        case 'p': o->port = optarg; break;
        case 'i': o->id = (unsigned)strtoul(optarg, NULL, 0) & 0xff; break;
        case 'd': o->dst = strcmp(optarg, "ff") == 0 ? 0x100 : (unsigned)strtoul(optarg, NULL, 0) & 0xff; break;
        case 'n': o->count = strtoull(optarg, NULL, 0); break;
        case 'b': o->batch = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'l': o->minlen = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'L': o->maxlen = (unsigned)strtoul(optarg, NULL, 0); break;
        case 's': o->seed = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'w': o->wait_us = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'm': o->max_round = (unsigned)strtoul(optarg, NULL, 0); break;
        case 't': o->idle_ms = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'T': o->total_s = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'R': o->rx_slots = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'X': o->tx_slots = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'G': o->rings = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'r': o->ring = atoi(optarg); break;
        case 'H': o->hello = 1; break;
        default: usage();
        }
    }
    if (!o->port || o->minlen < 60 || o->maxlen < o->minlen || o->maxlen > MAXFRAME || o->batch == 0)
        usage();
}

/* ------------------------------------------------------------------ send */

static int do_send(const struct opts *o)
{
    struct nmc_port *p = open_port(o);
    struct nmc_port_info info;
    struct netmap_if *nifp = nmc_port_nifp(p);
    uint8_t *frame = malloc(MAXFRAME);
    uint64_t seq = 0, s = o->seed * 2654435761u + o->id + 1, last_print = 0;
    uint32_t bs, k = 0, ntx;
    struct nmc_port_stats st;

    nmc_port_info(p, &info);
    bs = info.buf_size;
    ntx = info.last_tx_ring - info.first_tx_ring;
    out("ready send id=%u port=%s rings=%u region=%s", o->id, o->port, ntx, info.region_path);
    while (!stop && (o->count == 0 || seq < o->count)) {
        uint32_t ri = o->ring >= 0 ? (uint32_t)o->ring : info.first_tx_ring + (k++ % ntx);
        struct netmap_ring *ring = NETMAP_TXRING(nifp, ri);
        uint32_t head = ring->head, n = ring->num_slots;
        for (uint32_t b = 0; b < o->batch && (o->count == 0 || seq < o->count); b++) {
            uint32_t len = o->minlen + (o->maxlen > o->minlen ? rnd(&s) % (o->maxlen - o->minlen + 1) : 0);
            uint32_t frags = (len + bs - 1) / bs, room = (ring->tail + n - head) % n;
            if (frags > room)
                break;
            make_frame(frame, len, o->id, o->dst, seq);
            for (uint32_t f = 0, off = 0; f < frags; f++) {
                struct netmap_slot *sl = &ring->slot[head];
                uint32_t chunk = len - off > bs ? bs : len - off;
                memcpy(NETMAP_BUF(ring, sl->buf_idx), frame + off, chunk);
                sl->len = (uint16_t)chunk;
                sl->flags = f + 1 < frags ? NS_MOREFRAG : 0;
                off += chunk;
                head = nm_ring_next(ring, head);
            }
            seq++;
        }
        ring->head = ring->cur = head;
        if (nmc_txsync(p) < 0) {
            out("FAIL txsync");
            return 1;
        }
        if (now_ms() - last_print >= 20) {
            last_print = now_ms();
            out("progress %u %" PRIu64, o->id, seq);
        }
        if (o->wait_us)
            usleep(o->wait_us);
    }
    nmc_port_stats(p, &st);
    out("progress %u %" PRIu64, o->id, seq);
    out("done sent=%" PRIu64 " tx_pkts=%" PRIu64 " tx_dropped=%" PRIu64, seq, st.tx_pkts, st.tx_dropped);
    nmc_port_close(p);
    free(frame);
    return 0;
}

/* ------------------------------------------------------------------ recv */

struct rstate {
    uint64_t pkts, pads, bad, other, bytes;
    uint64_t count[256], last[256];
    uint8_t seen[256], moved[256];
};

static void bad(struct rstate *r, const char *fmt, ...)
{
    char msg[400];
    va_list ap;

    r->bad++;
    if (r->bad > 20)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    out("bad %s", msg);
}

static void check_frame(struct rstate *r, const uint8_t *f, uint32_t len, uint32_t ring, uint32_t slot)
{
    uint64_t seq;
    uint32_t flen;
    unsigned id;

    if (len >= 14 && f[12] == ETH_HI && f[13] == HELLO_LO) {
        r->other++;
        return;
    }
    if (len < HDR || f[12] != ETH_HI || f[13] != ETH_LO || f[15] != 0x5a) {
        bad(r, "header len=%u ring=%u slot=%u", len, ring, slot);
        return;
    }
    id = f[14];
    memcpy(&seq, f + 16, 8);
    memcpy(&flen, f + 24, 4);
    if (flen != len || f[6] != 0x02 || f[11] != id) {
        bad(r, "length/source id=%u seq=%" PRIu64 " len=%u want=%u", id, seq, len, flen);
        return;
    }
    for (uint32_t j = HDR; j < len; j++) {
        if (f[j] != pat(seq, id, j)) {
            bad(r, "payload id=%u seq=%" PRIu64 " len=%u at=%u", id, seq, len, j);
            return;
        }
    }
    if (r->seen[id] && seq <= r->last[id]) {
        bad(r, "order id=%u seq=%" PRIu64 " after %" PRIu64, id, seq, r->last[id]);
        return;
    }
    r->seen[id] = r->moved[id] = 1;
    r->last[id] = seq;
    r->count[id]++;
    r->pkts++;
    r->bytes += len;
}

/* Consume what ring holds; returns the number of slots taken. */
static uint32_t drain_ring(struct rstate *r, struct netmap_ring *ring, uint8_t *buf, uint32_t max)
{
    uint32_t j = ring->cur, n = ring->num_slots, taken = 0, pkts = 0;

    while (j != ring->tail && (max == 0 || pkts < max)) {
        uint32_t k = j, nfr = 0, len = 0, rf;
        int whole = 0;
        /* a chain: up to 64 slots, the last without NS_MOREFRAG */
        while (k != ring->tail && nfr < NETMAP_MAX_FRAGS) {
            struct netmap_slot *s = &ring->slot[k];
            nfr++;
            k = nm_ring_next(ring, k);
            if (!(s->flags & NS_MOREFRAG)) {
                whole = 1;
                break;
            }
        }
        if (!whole) {
            if (nfr == NETMAP_MAX_FRAGS)
                bad(r, "chain longer than 64 slots at ring=%u slot=%u", ring->ringid, j);
            else
                bad(r, "chain cut at the tail ring=%u slot=%u", ring->ringid, j);
            j = k;
            taken += nfr;
            break;
        }
        if (nfr == 1 && ring->slot[j].len == 0) {
            if (ring->slot[j].flags != 0 && NS_RFRAGS(&ring->slot[j]) != 1)
                bad(r, "padding slot with flags %#x", ring->slot[j].flags);
            r->pads++;
        } else {
            int ok = 1;
            rf = NS_RFRAGS(&ring->slot[j]);
            for (uint32_t f = 0, x = j; f < nfr; f++, x = nm_ring_next(ring, x)) {
                struct netmap_slot *s = &ring->slot[x];
                if (NS_RFRAGS(s) != nfr || s->len > ring->nr_buf_size || (f > 0 && s->len == 0)) {
                    bad(r, "fragment ring=%u slot=%u frag=%u/%u len=%u flags=%#x rfrags=%u",
                        ring->ringid, x, f, nfr, s->len, s->flags, rf);
                    ok = 0;
                    break;
                }
                memcpy(buf + len, NETMAP_BUF(ring, s->buf_idx), s->len);
                len += s->len;
            }
            if (ok)
                check_frame(r, buf, len, ring->ringid, j);
        }
        pkts++;
        taken += nfr;
        j = k;
        (void)n;
    }
    ring->head = ring->cur = j;
    return taken;
}

static void print_seen(struct rstate *r, int all)
{
    for (unsigned id = 0; id < 256; id++) {
        if (r->moved[id] || (all && r->seen[id]))
            out("seen %u %" PRIu64, id, r->last[id]);
        r->moved[id] = 0;
    }
}

static int do_recv(const struct opts *o)
{
    struct nmc_port *p = open_port(o);
    struct netmap_if *nifp = nmc_port_nifp(p);
    struct nmc_port_info info;
    struct nmc_port_stats st;
    struct rstate *r = calloc(1, sizeof(*r));
    uint8_t *buf = malloc(64 * 65536);
    uint64_t start = now_ms(), last_rx = now_ms(), last_print = 0;

    nmc_port_info(p, &info);
    if (o->hello) {             /* let the switch learn our MAC: a frame to
                                 * ourselves is learned from, then dropped */
        uint8_t h[60];
        memset(h, 0, sizeof(h));
        h[0] = h[6] = 0x02;
        h[5] = h[11] = (uint8_t)o->id;
        h[12] = ETH_HI; h[13] = HELLO_LO;
        nmc_inject(p, h, sizeof(h));
        nmc_txsync(p);
    }
    out("ready recv id=%u port=%s rx_slots=%u rings=%u region=%s", o->id, o->port, info.nr_rx_slots,
        info.last_rx_ring - info.first_rx_ring, info.region_path);
    while (!stop) {
        uint32_t got = 0;
        if (o->wait_us)
            usleep(o->wait_us);
        if (o->wait_us || o->max_round)
            nmc_rxsync(p);
        else
            nmc_poll(p, POLLIN, 20);
        for (uint32_t i = info.first_rx_ring; i < info.last_rx_ring; i++)
            got += drain_ring(r, NETMAP_RXRING(nifp, i), buf, o->max_round);
        if (got)
            last_rx = now_ms();
        if (now_ms() - last_print >= 20) {
            last_print = now_ms();
            print_seen(r, 0);
        }
        nmc_port_stats(p, &st);
        /* every frame is either in our rings or counted as dropped; the
         * senders bump `forwarded` just after publishing, so wait for it */
        if (o->count && r->pkts + st.rx_dropped >= o->count && st.forwarded + st.rx_dropped >= o->count)
            break;
        if (now_ms() - last_rx >= o->idle_ms || now_ms() - start >= (uint64_t)o->total_s * 1000)
            break;
    }
    nmc_rxsync(p);              /* one more sweep: nothing should be left */
    for (uint32_t i = info.first_rx_ring; i < info.last_rx_ring; i++)
        drain_ring(r, NETMAP_RXRING(nifp, i), buf, 0);
    nmc_port_stats(p, &st);
    print_seen(r, 1);
    {
        char ids[2048];
        int n = 0;
        ids[0] = 0;
        for (unsigned id = 0; id < 256 && n < (int)sizeof(ids) - 64; id++)
            if (r->seen[id])
                n += snprintf(ids + n, sizeof(ids) - (size_t)n, "%s%u:%" PRIu64 ":%" PRIu64,
                              n ? "," : "", id, r->count[id], r->last[id]);
        out("done pkts=%" PRIu64 " pads=%" PRIu64 " bad=%" PRIu64 " other=%" PRIu64
            " rx_dropped=%" PRIu64 " forwarded=%" PRIu64 " ids=%s",
            r->pkts, r->pads, r->bad, r->other, st.rx_dropped, st.forwarded, n ? ids : "-");
    }
    nmc_port_close(p);
    free(buf);
    free(r);
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o;

    if (argc < 2)
        usage();
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_term);           /* stop, print the totals, exit 0 */
    parse(argc - 1, argv + 1, &o);
    if (strcmp(argv[1], "send") == 0)
        return do_send(&o);
    if (strcmp(argv[1], "recv") == 0)
        return do_recv(&o);
    usage();
    return 2;
}
