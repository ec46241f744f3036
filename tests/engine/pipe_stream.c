/*
 * pipe_stream.c -- drive a netmap pipe of the nmcompat engine through the
 * netmap ring API, one packet at a time, and check everything that comes
 * out.  Built together with the engine sources by tests/unit/test_engine_c.py
 * (normally and under AddressSanitizer).
 *
 *   pipe_stream send [options]   write a numbered stream into one end
 *   pipe_stream recv [options]   read it from the other end and verify it
 *   pipe_stream fuzz [options]   corrupt rings of both ends at random, sync,
 *                                and check the pipe still works afterwards
 *
 * Packet i of a stream has a length L(seed, i) between 17 and the maximum
 * (default 9000) and is split into fragments of nr_buf_size bytes, every
 * one but the last flagged NS_MOREFRAG.  Each fragment starts with a header
 * (stream tag, sequence number, total length, fragment index, fragment
 * count) and ends with a pattern byte derived from those, so the receiver
 * can check order, lengths, chain structure and payload placement.
 *
 * Output lines go straight to write(2), so whatever was printed before a
 * SIGKILL reaches the reader:
 *   ready ...                       the port is open
 *   sent <next seq>                 (send -q) after each txsync
 *   stream <tag> <first seq>        (recv) a stream starts
 *   seen <tag> <seq>                (recv -q) before releasing a batch
 *   done key=value ...              success (exit 0)
 *   FAIL <reason>                   a check failed (exit 1)
 *   TIMEOUT <what>                  the deadline passed (exit 3)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
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

#define HDR_LEN 16u
#define MIN_LEN (HDR_LEN + 1u)
#define FLUSH_TAG 0xf1f1f1f1u
#define CHECK_TAG 0x0c0ffee0u

struct frag_hdr {
    uint32_t tag;
    uint32_t seq;
    uint32_t total;
    uint16_t idx;
    uint16_t nfrags;
};

struct opts {
    const char *rundir, *parent, *pipe_id;
    int role;                   /* -1: the subcommand's default */
    uint64_t count;             /* send: packets (0: forever); recv: see stop_seq */
    uint64_t start;             /* first sequence number */
    int64_t stop_seq;           /* recv: absolute seq that ends the run, -1 none */
    int64_t stop_tag;           /* recv: tag that stop_seq refers to, -1 any */
    uint64_t seed;
    uint32_t tag;
    uint32_t maxlen;
    uint32_t batch;             /* send: slots between txsyncs */
    uint32_t slots;             /* ring size when this open creates the pipe */
    int any_start;              /* recv: the first packet may have any seq */
    int report;
    int tear;                   /* send: txsync in the middle of chains */
    int nowait;                 /* send: do not wait for the receiver to drain */
    double timeout;
    uint64_t iters;             /* fuzz */
};

/* ------------------------------------------------------------------ */

static void say(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(line))
        n = sizeof(line) - 1;
    for (int off = 0; off < n;) {
        ssize_t w = write(1, line + off, (size_t)(n - off));
        if (w <= 0) {
            if (w < 0 && errno == EINTR)
                continue;
            return;
        }
        off += (int)w;
    }
}

#define FAIL(...) do { say("FAIL " __VA_ARGS__); exit(1); } while (0)

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Length of packet seq: uniform in [MIN_LEN, maxlen], nudged so that a
 * last fragment is never shorter than a header plus the pattern byte. */
static uint32_t pkt_len(uint64_t seed, uint64_t seq, uint32_t bs, uint32_t maxlen)
{
    uint32_t len = MIN_LEN + (uint32_t)(mix64(seed * 0x100000001b3ULL ^ seq) % (maxlen - MIN_LEN + 1));
    uint32_t rem = len % bs;

    if (len > bs && rem != 0 && rem < MIN_LEN)
        len -= rem;
    return len;
}

static inline uint8_t pattern(uint32_t tag, uint32_t seq, uint32_t idx)
{
    return (uint8_t)((seq * 131u) ^ (idx * 29u) ^ (tag * 71u) ^ (seq >> 8) ^ 0xa5u);
}

static uint32_t frag_len(uint32_t total, uint32_t bs, uint32_t i, uint32_t nf)
{
    return i + 1 < nf ? bs : total - i * bs;
}

static struct nmc_port *open_end(const struct opts *o, int role, struct nmc_port_info *info)
{
    struct nmc_pipe_req req;
    struct nmc_port *p = NULL;
    int rc;

    memset(&req, 0, sizeof(req));
    req.rundir = o->rundir;
    req.parent = o->parent;
    req.pipe_id = o->pipe_id;
    req.role = (uint32_t)role;
    req.mode = NR_REG_ALL_NIC;
    req.tx_slots = req.rx_slots = o->slots;
    req.spin_us = -1;
    req.no_timestamp = 1;
    rc = nmc_pipe_open(&req, &p);
    if (rc < 0)
        FAIL("open %s%c%s: %s\n", o->parent, role ? '}' : '{', o->pipe_id, strerror(-rc));
    if ((rc = nmc_port_info(p, info)) < 0)
        FAIL("port info: %s\n", strerror(-rc));
    return p;
}

/* ------------------------------------------------------------------ */
/* send                                                                */
/* ------------------------------------------------------------------ */

static void write_frag(struct netmap_ring *ring, uint32_t slot, uint32_t buf_num,
                       const struct frag_hdr *h, uint32_t len, int more)
{
    struct netmap_slot *s = &ring->slot[slot];
    char *b;

    if (s->buf_idx < 2 || s->buf_idx >= buf_num)
        FAIL("TX slot %u holds buffer %u (buf_num %u)\n", slot, s->buf_idx, buf_num);
    b = NETMAP_BUF(ring, s->buf_idx);
    memcpy(b, h, sizeof(*h));
    b[len - 1] = (char)pattern(h->tag, h->seq, h->idx);
    s->len = (uint16_t)len;
    s->flags = more ? NS_MOREFRAG : 0;
}

static int do_send(const struct opts *o)
{
    struct nmc_port_info info;
    struct nmc_port *p = open_end(o, o->role < 0 ? NMC_PIPE_MASTER : o->role, &info);
    struct netmap_ring *ring;
    uint64_t seq = o->start, end = o->count ? o->start + o->count : UINT64_MAX;
    uint64_t bytes = 0, frags = 0, sum = 0, waits = 0;
    uint32_t bs, since_sync = 0;
    double deadline = now_s() + o->timeout;
    struct nmc_port_stats st;
    int rc;

    if (info.first_tx_ring >= info.last_tx_ring)
        FAIL("no TX ring bound\n");
    ring = NETMAP_TXRING(nmc_port_nifp(p), info.first_tx_ring);
    bs = ring->nr_buf_size;
    if (bs < MIN_LEN)
        FAIL("buffer size %u too small\n", bs);
    say("ready send slots=%u buf_size=%u head=%u tail=%u\n", ring->num_slots, bs, ring->head, ring->tail);
    while (seq < end) {
        uint32_t len = pkt_len(o->seed, seq, bs, o->maxlen);
        uint32_t nf = (len + bs - 1) / bs, cur;
        struct frag_hdr h = { o->tag, (uint32_t)seq, len, 0, (uint16_t)nf };

        if (nf >= ring->num_slots)
            FAIL("a %u-byte packet never fits a %u-slot ring\n", len, ring->num_slots);
        if (nm_ring_space(ring) < nf) {
            rc = nmc_poll(p, POLLOUT, 200);
            since_sync = 0;
            waits++;
            if (rc < 0 && rc != -EINTR)
                FAIL("poll: %s\n", strerror(-rc));
            if (rc > 0 && (rc & POLLERR))
                FAIL("poll returned POLLERR on a well-formed ring\n");
            if (now_s() > deadline) {
                say("TIMEOUT send at seq %" PRIu64 "\n", seq);
                exit(3);
            }
            continue;
        }
        cur = ring->head;
        for (uint32_t i = 0; i < nf; i++) {
            h.idx = (uint16_t)i;
            write_frag(ring, cur, info.buf_num, &h, frag_len(len, bs, i, nf), i + 1 < nf);
            cur = nm_ring_next(ring, cur);
            if (o->tear && i + 1 < nf && (seq + i) % 3 == 0) {
                /* hand the engine half a chain: nothing of it may be published */
                ring->head = ring->cur = cur;
                if ((rc = nmc_txsync(p)) < 0)
                    FAIL("txsync mid-chain: %s\n", strerror(-rc));
            }
        }
        ring->head = ring->cur = cur;
        seq++;
        bytes += len;
        frags += nf;
        sum = sum * 1000003u + len;
        since_sync += nf;
        if (since_sync >= o->batch) {
            if ((rc = nmc_txsync(p)) < 0)
                FAIL("txsync: %s\n", strerror(-rc));
            since_sync = 0;
            if (o->report)
                say("sent %" PRIu64 "\n", seq);
        }
    }
    if ((rc = nmc_txsync(p)) < 0)
        FAIL("final txsync: %s\n", strerror(-rc));
    if (o->report)
        say("sent %" PRIu64 "\n", seq);
    while (!o->nowait && nm_tx_pending(ring)) {
        if (now_s() > deadline) {
            say("TIMEOUT waiting for the receiver to drain\n");
            exit(3);
        }
        usleep(200);
        if ((rc = nmc_txsync(p)) < 0)
            FAIL("txsync while draining: %s\n", strerror(-rc));
    }
    nmc_port_stats(p, &st);
    say("done sent=%" PRIu64 " bytes=%" PRIu64 " frags=%" PRIu64 " sum=%" PRIu64
        " next=%" PRIu64 " waits=%" PRIu64 " tx_pkts=%" PRIu64 " tx_bytes=%" PRIu64
        " wakeups=%" PRIu64 " sleeps=%" PRIu64 "\n",
        seq - o->start, bytes, frags, sum, seq, waits, st.tx_pkts, st.tx_bytes,
        st.wakeups_sent, st.sleeps);
    if ((rc = nmc_port_close(p)) < 0)
        FAIL("close: %s\n", strerror(-rc));
    return 0;
}

/* ------------------------------------------------------------------ */
/* recv                                                                */
/* ------------------------------------------------------------------ */

struct rx_state {
    int have_first;
    uint32_t tag;
    uint64_t last;
    uint64_t pkts, bytes, frags, sum, streams;
};

/* Check the packet starting at slot *j (all its fragments before tail);
 * advance *j past it.  Returns 1 when it is the stop packet. */
static int check_packet(const struct opts *o, struct netmap_ring *ring, uint32_t *j, uint32_t tail,
                        uint32_t buf_num, struct rx_state *st)
{
    uint32_t bs = ring->nr_buf_size, k = *j, nf, len;
    struct netmap_slot *s = &ring->slot[k];
    struct frag_hdr h0;
    const char *b;

    if (s->buf_idx < 2 || s->buf_idx >= buf_num)
        FAIL("RX slot %u holds buffer %u\n", k, s->buf_idx);
    if (s->len < MIN_LEN)
        FAIL("RX slot %u: fragment of %u bytes (after tag %u seq %" PRIu64 ")\n",
             k, s->len, st->tag, st->last);
    b = NETMAP_BUF(ring, s->buf_idx);
    memcpy(&h0, b, sizeof(h0));
    if (!st->have_first) {
        if (!o->any_start && h0.seq != (uint32_t)o->start)
            FAIL("first packet has seq %u, expected %" PRIu64 "\n", h0.seq, o->start);
        st->have_first = 1;
        st->tag = h0.tag;
        st->streams = 1;
        say("stream %u %u\n", h0.tag, h0.seq);
    } else if (h0.tag == st->tag) {
        if (h0.seq != (uint32_t)(st->last + 1))
            FAIL("tag %u: seq %u after %" PRIu64 " (gap or reordering)\n", h0.tag, h0.seq, st->last);
    } else {
        if (h0.seq != (uint32_t)o->start)
            FAIL("stream %u starts at seq %u after stream %u ended at %" PRIu64 "\n",
                 h0.tag, h0.seq, st->tag, st->last);
        st->tag = h0.tag;
        st->streams++;
        say("stream %u %u\n", h0.tag, h0.seq);
    }
    len = pkt_len(o->seed, h0.seq, bs, o->maxlen);
    nf = (len + bs - 1) / bs;
    if (h0.total != len || h0.nfrags != nf)
        FAIL("tag %u seq %u: header says %u bytes in %u fragments, expected %u in %u\n",
             h0.tag, h0.seq, h0.total, h0.nfrags, len, nf);
    for (uint32_t i = 0; i < nf; i++) {
        uint32_t fl = frag_len(len, bs, i, nf);
        struct frag_hdr h;

        if (k == tail)
            FAIL("tag %u seq %u: chain cut at fragment %u by tail %u (published mid-chain)\n",
                 h0.tag, h0.seq, i, tail);
        s = &ring->slot[k];
        if (s->buf_idx < 2 || s->buf_idx >= buf_num)
            FAIL("RX slot %u holds buffer %u\n", k, s->buf_idx);
        if (s->len != fl)
            FAIL("tag %u seq %u frag %u: slot len %u, expected %u\n", h0.tag, h0.seq, i, s->len, fl);
        if (!!(s->flags & NS_MOREFRAG) != (i + 1 < nf))
            FAIL("tag %u seq %u frag %u/%u: flags 0x%x (MOREFRAG wrong)\n",
                 h0.tag, h0.seq, i, nf, s->flags);
        b = NETMAP_BUF(ring, s->buf_idx);
        memcpy(&h, b, sizeof(h));
        if (h.tag != h0.tag || h.seq != h0.seq || h.total != len || h.idx != i || h.nfrags != nf)
            FAIL("tag %u seq %u frag %u: fragment header (tag %u seq %u total %u idx %u/%u) "
                 "belongs elsewhere (torn or glued chain)\n",
                 h0.tag, h0.seq, i, h.tag, h.seq, h.total, h.idx, h.nfrags);
        if ((uint8_t)b[fl - 1] != pattern(h0.tag, h0.seq, i))
            FAIL("tag %u seq %u frag %u: pattern byte 0x%02x, expected 0x%02x\n",
                 h0.tag, h0.seq, i, (uint8_t)b[fl - 1], pattern(h0.tag, h0.seq, i));
        k = nm_ring_next(ring, k);
    }
    *j = k;
    st->last = h0.seq;
    st->pkts++;
    st->bytes += len;
    st->frags += nf;
    st->sum = st->sum * 1000003u + len;
    return o->stop_seq >= 0 && (int64_t)h0.seq == o->stop_seq &&
           (o->stop_tag < 0 || (int64_t)h0.tag == o->stop_tag);
}

static int do_recv(const struct opts *o)
{
    struct nmc_port_info info;
    struct nmc_port *p = open_end(o, o->role < 0 ? NMC_PIPE_SLAVE : o->role, &info);
    struct netmap_ring *ring;
    struct rx_state st;
    double deadline = now_s() + o->timeout;
    struct nmc_port_stats ps;
    uint64_t polls = 0;
    int done = 0, rc;

    memset(&st, 0, sizeof(st));
    if (info.first_rx_ring >= info.last_rx_ring)
        FAIL("no RX ring bound\n");
    ring = NETMAP_RXRING(nmc_port_nifp(p), info.first_rx_ring);
    say("ready recv slots=%u buf_size=%u head=%u cur=%u tail=%u\n",
        ring->num_slots, ring->nr_buf_size, ring->head, ring->cur, ring->tail);
    while (!done) {
        uint32_t j, tail;

        if (ring->cur == ring->tail) {
            rc = nmc_poll(p, POLLIN, 200);
            polls++;
            if (rc < 0 && rc != -EINTR)
                FAIL("poll: %s\n", strerror(-rc));
            if (rc > 0 && (rc & POLLERR))
                FAIL("poll returned POLLERR on a well-formed ring\n");
            if (now_s() > deadline) {
                say("TIMEOUT recv after tag %u seq %" PRIu64 " (%" PRIu64 " packets)\n",
                    st.tag, st.last, st.pkts);
                exit(3);
            }
            continue;
        }
        j = ring->cur;
        tail = ring->tail;
        if (j >= ring->num_slots || tail >= ring->num_slots)
            FAIL("RX ring indexes out of range: cur %u tail %u\n", j, tail);
        while (j != tail && !done)
            done = check_packet(o, ring, &j, tail, info.buf_num, &st);
        if (o->report)
            say("seen %u %" PRIu64 "\n", st.tag, st.last);
        ring->head = ring->cur = j;
    }
    if ((rc = nmc_rxsync(p)) < 0)
        FAIL("final rxsync: %s\n", strerror(-rc));
    nmc_port_stats(p, &ps);
    say("done pkts=%" PRIu64 " bytes=%" PRIu64 " frags=%" PRIu64 " sum=%" PRIu64
        " last=%u:%" PRIu64 " streams=%" PRIu64 " polls=%" PRIu64 " rx_pkts=%" PRIu64
        " rx_bytes=%" PRIu64 " sleeps=%" PRIu64 " wakeups=%" PRIu64 "\n",
        st.pkts, st.bytes, st.frags, st.sum, st.tag, st.last, st.streams, polls,
        ps.rx_pkts, ps.rx_bytes, ps.sleeps, ps.wakeups_sent);
    if ((rc = nmc_port_close(p)) < 0)
        FAIL("close: %s\n", strerror(-rc));
    return 0;
}

/* ------------------------------------------------------------------ */
/* fuzz                                                                */
/* ------------------------------------------------------------------ */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}

static uint32_t rnd_below(uint32_t n) { return n ? (uint32_t)(rnd() % n) : 0; }

struct fend {
    struct nmc_port *p;
    struct nmc_port_info info;
    uint32_t ntx, nrx;
    struct netmap_ring *tx[4], *rx[4];
};

struct fuzz {
    struct fend e[2];               /* [0] master, [1] slave */
    uint32_t n, buf_num, bs;
    uint32_t *snap[2][4];           /* buffers of e[k].tx[r] at open */
    uint64_t gen, stuck, reinits, syncs;
};

static void fuzz_open(struct fuzz *f, const struct opts *base)
{
    static const uint32_t sizes[] = { 2, 3, 4, 5, 8, 16, 64, 256 };
    struct opts o = *base;
    char id[32];
    uint32_t nt = 1 + rnd_below(2), nr = 1 + rnd_below(2);

    snprintf(id, sizeof(id), "f%" PRIu64, f->gen++);
    o.pipe_id = id;
    o.slots = sizes[rnd_below(sizeof(sizes) / sizeof(sizes[0]))];
    for (int k = 0; k < 2; k++) {
        struct nmc_pipe_req req;
        struct fend *e = &f->e[k];
        int rc;

        memset(&req, 0, sizeof(req));
        req.rundir = o.rundir;
        req.parent = o.parent;
        req.pipe_id = o.pipe_id;
        req.role = (uint32_t)k;
        req.mode = NR_REG_ALL_NIC;
        req.tx_rings = nt;
        req.rx_rings = nr;
        req.tx_slots = req.rx_slots = o.slots;
        req.spin_us = 0;
        rc = nmc_pipe_open(&req, &e->p);
        if (rc < 0)
            FAIL("fuzz open %s end %d: %s\n", id, k, strerror(-rc));
        nmc_port_info(e->p, &e->info);
        e->ntx = e->info.last_tx_ring - e->info.first_tx_ring;
        e->nrx = e->info.last_rx_ring - e->info.first_rx_ring;
        if (e->ntx > 4 || e->nrx > 4)
            FAIL("unexpected ring counts %u/%u\n", e->ntx, e->nrx);
        for (uint32_t r = 0; r < e->ntx; r++)
            e->tx[r] = NETMAP_TXRING(nmc_port_nifp(e->p), r);
        for (uint32_t r = 0; r < e->nrx; r++)
            e->rx[r] = NETMAP_RXRING(nmc_port_nifp(e->p), r);
    }
    if (f->e[0].ntx != nt || f->e[0].nrx != nr || f->e[1].ntx != nr || f->e[1].nrx != nt)
        FAIL("ring counts: master %u/%u slave %u/%u, asked %u/%u\n",
             f->e[0].ntx, f->e[0].nrx, f->e[1].ntx, f->e[1].nrx, nt, nr);
    f->n = f->e[0].tx[0]->num_slots;
    f->bs = f->e[0].tx[0]->nr_buf_size;
    f->buf_num = f->e[0].info.buf_num;
    for (int k = 0; k < 2; k++)
        for (uint32_t r = 0; r < f->e[k].ntx; r++) {
            struct netmap_ring *ring = f->e[k].tx[r];
            f->snap[k][r] = calloc(f->n, sizeof(uint32_t));
            if (!f->snap[k][r])
                FAIL("out of memory\n");
            if (ring->num_slots != f->n)
                FAIL("ring sizes differ\n");
            for (uint32_t i = 0; i < f->n; i++)
                f->snap[k][r][i] = ring->slot[i].buf_idx;
        }
}

static void fuzz_close(struct fuzz *f)
{
    for (int k = 0; k < 2; k++) {
        int rc = nmc_port_close(f->e[k].p);
        if (rc < 0)
            FAIL("fuzz close: %s\n", strerror(-rc));
        for (uint32_t r = 0; r < 4; r++) {
            free(f->snap[k][r]);
            f->snap[k][r] = NULL;
        }
        memset(&f->e[k], 0, sizeof(f->e[k]));
    }
}

static uint32_t pick_index(uint32_t n)
{
    switch (rnd_below(9)) {
    case 0: return 0;
    case 1: return n - 1;
    case 2: return n;
    case 3: return n + 1 + rnd_below(100);
    case 4: return UINT32_MAX;
    case 5: return (uint32_t)rnd();
    default: return rnd_below(n);
    }
}

static uint32_t pick_buf(uint32_t buf_num)
{
    switch (rnd_below(8)) {
    case 0: return 0;
    case 1: return 1;
    case 2: return buf_num;
    case 3: return buf_num + 1 + rnd_below(1000);
    case 4: return UINT32_MAX;
    case 5: return buf_num - 1;
    default: return 2 + rnd_below(buf_num - 2);
    }
}

/* The engine leaves every index of a ring it synced inside the ring. */
static void check_ring(const struct fuzz *f, const struct netmap_ring *r, const char *what)
{
    if (r->head >= f->n || r->cur >= f->n || r->tail >= f->n)
        FAIL("%s: after a sync head %u cur %u tail %u with %u slots\n",
             what, r->head, r->cur, r->tail, f->n);
}

static void check_rc(int rc, const char *what)
{
    if (rc != 0 && rc != -EINVAL)
        FAIL("%s returned %d (%s): only 0 or -EINVAL are allowed\n", what, rc, strerror(-rc));
}

static void fuzz_sync(struct fuzz *f, int k, int op)
{
    struct fend *e = &f->e[k];
    int rc;

    f->syncs++;
    switch (op) {
    case 0:
        rc = nmc_txsync(e->p);
        check_rc(rc, "txsync");
        f->reinits += rc != 0;
        for (uint32_t r = 0; r < e->ntx; r++)
            check_ring(f, e->tx[r], "txsync");
        break;
    case 1:
        rc = nmc_rxsync(e->p);
        check_rc(rc, "rxsync");
        f->reinits += rc != 0;
        for (uint32_t r = 0; r < e->nrx; r++)
            check_ring(f, e->rx[r], "rxsync");
        break;
    default: {
        int ev = op == 2 ? POLLIN : op == 3 ? POLLOUT : POLLIN | POLLOUT;
        rc = nmc_poll(e->p, ev, 0);
        if (rc < 0 || (rc & ~(POLLIN | POLLOUT | POLLERR)))
            FAIL("poll(0x%x, 0) returned %d\n", ev, rc);
        if (rc & POLLERR)
            f->reinits++;
        for (uint32_t r = 0; r < e->ntx; r++)
            check_ring(f, e->tx[r], "poll tx");
        if (ev & POLLIN)
            for (uint32_t r = 0; r < e->nrx; r++)
                check_ring(f, e->rx[r], "poll rx");
        break;
    }
    }
}

/* Queue one well-formed packet of nf fragments if it fits; the user side
 * of a fuzzed ring may hold any index, so check it first. */
static void fuzz_put(struct fuzz *f, struct netmap_ring *r, uint32_t tag, uint32_t seq, uint32_t nf,
                     int tear)
{
    uint32_t cur;
    struct frag_hdr h = { tag, seq, 0, 0, (uint16_t)nf };

    if (r->head >= f->n || r->tail >= f->n || nm_ring_space(r) < nf)
        return;
    cur = r->head;
    h.total = (nf - 1) * f->bs + MIN_LEN + seq % 64;
    for (uint32_t i = 0; i < nf; i++) {
        struct netmap_slot *s = &r->slot[cur];
        uint32_t fl = i + 1 < nf ? f->bs : h.total - i * f->bs;
        h.idx = (uint16_t)i;
        if (s->buf_idx >= 2 && s->buf_idx < f->buf_num) {
            char *b = NETMAP_BUF(r, s->buf_idx);
            memcpy(b, &h, sizeof(h));
            b[fl - 1] = (char)pattern(tag, seq, i);
        }
        s->len = (uint16_t)fl;
        s->flags = i + 1 < nf ? NS_MOREFRAG : 0;
        cur = nm_ring_next(r, cur);
        if (tear && i == 0 && nf > 1)
            break;              /* leave the user head in the middle of the chain */
    }
    r->head = r->cur = cur;
}

/* Give every slot its original buffer back and bring every ring to a
 * consistent state through the API only. */
static int fuzz_restore(struct fuzz *f)
{
    int rc;

    for (int k = 0; k < 2; k++) {
        struct fend *e = &f->e[k], *peer = &f->e[1 - k];
        for (uint32_t r = 0; r < e->ntx; r++)
            for (uint32_t i = 0; i < f->n; i++) {
                struct netmap_slot *t = &e->tx[r]->slot[i], *x = &peer->rx[r]->slot[i];
                t->buf_idx = x->buf_idx = f->snap[k][r][i];
                t->len = x->len = (uint16_t)f->bs;
                t->flags = x->flags = 0;
            }
    }
    for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < 2; k++) {
            rc = nmc_txsync(f->e[k].p);
            if (pass && rc)
                FAIL("txsync after repair: %s\n", strerror(-rc));
            rc = nmc_rxsync(f->e[k].p);
            if (pass && rc)
                FAIL("rxsync after repair: %s\n", strerror(-rc));
        }
    /* terminate any chain left open, then drain everything */
    for (int round = 0; round < 2; round++) {
        for (int k = 0; k < 2; k++) {
            struct fend *e = &f->e[k];
            if ((rc = nmc_rxsync(e->p)) != 0)
                FAIL("rxsync before draining: %s\n", strerror(-rc));
            for (uint32_t r = 0; r < e->nrx; r++)
                e->rx[r]->head = e->rx[r]->cur = e->rx[r]->tail;
            if ((rc = nmc_rxsync(e->p)) != 0)
                FAIL("draining rxsync: %s\n", strerror(-rc));
        }
        for (int k = 0; k < 2; k++) {
            struct fend *e = &f->e[k];
            if ((rc = nmc_txsync(e->p)) != 0)
                FAIL("txsync before flush: %s\n", strerror(-rc));
            for (uint32_t r = 0; r < e->ntx && round == 0; r++) {
                if (nm_ring_space(e->tx[r]) == 0)
                    return -1;  /* a chain as long as the ring: nothing can end it */
                fuzz_put(f, e->tx[r], FLUSH_TAG, 0, 1, 0);
            }
            if ((rc = nmc_txsync(e->p)) != 0)
                FAIL("flush txsync: %s\n", strerror(-rc));
        }
    }
    return 0;
}

/* Move 2n+3 packets through every ring pair, both ways, and check them. */
static void fuzz_verify(struct fuzz *f)
{
    for (int k = 0; k < 2; k++) {
        struct fend *e = &f->e[k], *peer = &f->e[1 - k];
        for (uint32_t r = 0; r < e->ntx; r++) {
            struct netmap_ring *tx = e->tx[r], *rx = peer->rx[r];
            uint32_t want = 2 * f->n + 3, sent = 0, got = 0;
            for (uint32_t loops = 0; got < want; loops++) {
                int rc;
                if (loops > 8 * want)
                    FAIL("pipe stuck after repair: sent %u received %u of %u (n=%u)\n",
                         sent, got, want, f->n);
                while (sent < want) {
                    uint32_t nf = 1 + (sent % 3 == 2 && f->n > 3), before = tx->head;
                    fuzz_put(f, tx, CHECK_TAG, sent, nf, 0);
                    if (tx->head == before)
                        break;
                    sent++;
                }
                if ((rc = nmc_txsync(e->p)) != 0)
                    FAIL("verify txsync: %s\n", strerror(-rc));
                if ((rc = nmc_rxsync(peer->p)) != 0)
                    FAIL("verify rxsync: %s\n", strerror(-rc));
                while (rx->cur != rx->tail) {
                    struct netmap_slot *s = &rx->slot[rx->cur];
                    struct frag_hdr h;
                    uint32_t nf = 1 + (got % 3 == 2 && f->n > 3);
                    for (uint32_t i = 0; i < nf; i++) {
                        s = &rx->slot[rx->cur];
                        if (rx->cur == rx->tail || s->buf_idx < 2 || s->buf_idx >= f->buf_num)
                            FAIL("verify: bad slot %u (buf %u) for packet %u\n", rx->cur, s->buf_idx, got);
                        memcpy(&h, NETMAP_BUF(rx, s->buf_idx), sizeof(h));
                        if (h.tag != CHECK_TAG || h.seq != got || h.idx != i ||
                            !!(s->flags & NS_MOREFRAG) != (i + 1 < nf))
                            FAIL("verify: packet %u frag %u: got tag %x seq %u idx %u flags %x\n",
                                 got, i, h.tag, h.seq, h.idx, s->flags);
                        rx->head = rx->cur = nm_ring_next(rx, rx->cur);
                    }
                    got++;
                }
            }
            if (nmc_rxsync(peer->p) != 0 || nmc_txsync(e->p) != 0)
                FAIL("verify: final syncs failed\n");
        }
    }
}

static int do_fuzz(const struct opts *o)
{
    struct fuzz f;
    struct nmc_port_stats st;
    uint64_t reopen_every = 400, check_every = 37, checks = 0;

    memset(&f, 0, sizeof(f));
    rng_state = o->seed ? o->seed : 0x853c49e6748fea9bULL;
    fuzz_open(&f, o);
    say("ready fuzz seed=%" PRIu64 " iters=%" PRIu64 "\n", o->seed, o->iters);
    for (uint64_t it = 1; it <= o->iters; it++) {
        int k = (int)rnd_below(2);
        struct fend *e = &f.e[k];
        int tx = (int)rnd_below(2);
        uint32_t nr = tx ? e->ntx : e->nrx;
        struct netmap_ring *r = tx ? e->tx[rnd_below(nr)] : e->rx[rnd_below(nr)];
        struct netmap_slot *s = &r->slot[rnd_below(f.n)];

        switch (rnd_below(12)) {
        case 0: r->head = pick_index(f.n); break;
        case 1: r->cur = pick_index(f.n); break;
        case 2: r->tail = pick_index(f.n); break;
        case 3: s->buf_idx = pick_buf(f.buf_num); break;
        case 4: s->len = (uint16_t)(rnd_below(2) ? f.bs + 1 + rnd_below(65535 - f.bs) : rnd()); break;
        case 5: s->flags = (uint16_t)rnd(); break;
        case 6: r->head = pick_index(f.n); r->cur = pick_index(f.n); break;
        case 7: s->flags |= NS_BUF_CHANGED; s->buf_idx = pick_buf(f.buf_num); break;
        case 8: case 9:
            if (e->ntx)
                fuzz_put(&f, e->tx[rnd_below(e->ntx)], 7, (uint32_t)it, 1 + rnd_below(3), rnd_below(4) == 0);
            break;
        default:
            if (e->nrx) {       /* release some received slots, legitimately */
                struct netmap_ring *x = e->rx[rnd_below(e->nrx)];
                if (x->head < f.n && x->tail < f.n) {
                    uint32_t adv = rnd_below(nm_ring_space(x) + 1), h = x->head;
                    while (adv--)
                        h = nm_ring_next(x, h);
                    x->head = x->cur = h;
                }
            }
            break;
        }
        if (rnd_below(3))
            fuzz_sync(&f, (int)rnd_below(2), (int)rnd_below(5));
        if (it % check_every == 0) {
            if (fuzz_restore(&f) < 0) {
                f.stuck++;
                fuzz_close(&f);
                fuzz_open(&f, o);
                continue;
            }
            fuzz_verify(&f);
            checks++;
        }
        if (it % reopen_every == 0) {
            fuzz_close(&f);
            fuzz_open(&f, o);
        }
    }
    if (fuzz_restore(&f) == 0) {
        fuzz_verify(&f);
        checks++;
    }
    nmc_port_stats(f.e[0].p, &st);
    fuzz_close(&f);
    say("done iters=%" PRIu64 " syncs=%" PRIu64 " reinits=%" PRIu64 " checks=%" PRIu64
        " stuck=%" PRIu64 " pipes=%" PRIu64 "\n",
        o->iters, f.syncs, f.reinits, checks, f.stuck, f.gen);
    return 0;
}

/* ------------------------------------------------------------------ */

static void usage(void)
{
    fprintf(stderr,
            "usage: pipe_stream send|recv|fuzz [-d rundir] [-p parent] [-i pipe_id]\n"
            "         [-r master|slave] [-n count] [-S first_seq] [-E stop_seq] [-G stop_tag]\n"
            "         [-s seed] [-t tag] [-L max_len] [-b batch] [-k slots] [-T timeout_s]\n"
            "         [-I fuzz_iterations] [-A any start] [-q report] [-x tear] [-W no drain wait]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct opts o = {
        .parent = "x", .pipe_id = "1", .role = -1, .stop_seq = -1, .stop_tag = -1,
        .seed = 1, .tag = 1, .maxlen = 9000, .batch = 256, .timeout = 60, .iters = 10000,
    };
    const char *cmd;
    int c;

    if (argc < 2)
        usage();
    cmd = argv[1];
    optind = 2;
    while ((c = getopt(argc, argv, "d:p:i:r:n:S:E:G:s:t:L:b:k:T:I:AqxW")) != -1) {
        switch (c) {
        case 'd': o.rundir = optarg; break;
        case 'p': o.parent = optarg; break;
        case 'i': o.pipe_id = optarg; break;
        case 'r': o.role = strcmp(optarg, "slave") == 0 ? NMC_PIPE_SLAVE : NMC_PIPE_MASTER; break;
        case 'n': o.count = strtoull(optarg, NULL, 0); break;
        case 'S': o.start = strtoull(optarg, NULL, 0); break;
        case 'E': o.stop_seq = strtoll(optarg, NULL, 0); break;
        case 'G': o.stop_tag = strtoll(optarg, NULL, 0); break;
        case 's': o.seed = strtoull(optarg, NULL, 0); break;
        case 't': o.tag = (uint32_t)strtoul(optarg, NULL, 0); break;
        case 'L': o.maxlen = (uint32_t)strtoul(optarg, NULL, 0); break;
        case 'b': o.batch = (uint32_t)strtoul(optarg, NULL, 0); break;
        case 'k': o.slots = (uint32_t)strtoul(optarg, NULL, 0); break;
        case 'T': o.timeout = strtod(optarg, NULL); break;
        case 'I': o.iters = strtoull(optarg, NULL, 0); break;
        case 'A': o.any_start = 1; break;
        case 'q': o.report = 1; break;
        case 'x': o.tear = 1; break;
        case 'W': o.nowait = 1; break;
        default: usage();
        }
    }
    if (o.maxlen < MIN_LEN || o.maxlen > 65535 || o.batch == 0)
        usage();
    if (strcmp(cmd, "recv") == 0 && o.stop_seq < 0 && o.count)
        o.stop_seq = (int64_t)(o.start + o.count - 1);
    if (strcmp(cmd, "send") == 0)
        return do_send(&o);
    if (strcmp(cmd, "recv") == 0)
        return do_recv(&o);
    if (strcmp(cmd, "fuzz") == 0)
        return do_fuzz(&o);
    usage();
    return 2;
}
