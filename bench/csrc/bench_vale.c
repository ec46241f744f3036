/*
 * bench_vale.c -- throughput loops for the VALE benchmark, in C so that
 * the caller (nmcompat.tools.bench_vale) only orchestrates processes.
 *
 * nmc_bench_vale() drives one side of a VALE switch <sw> in <rundir>:
 *
 *  - the receiver opens <sw>:r0 .. <sw>:r<nports-1>.  For unicast (one
 *    port) it first sends one broadcast frame from r0, so that the switch
 *    learns r0's MAC before anyone else is there to receive it.  Then it
 *    publishes <rundir>/bench.<sw>.ready and drains every port in turn:
 *    rxsync, check up to `batch` frames (sequence number, length, source
 *    MAC), release them.  When no port has anything it waits in
 *    nmc_poll(POLLIN) (spin, then sleep) on a port still expecting frames.  A port is
 *    done when the frames it received plus those the switch dropped for it
 *    make up `count` (the sender never waits: an overloaded switch drops).
 *  - the sender opens <sw>:tx, writes the Ethernet header (to r0's MAC, or
 *    to the broadcast address) into every TX buffer once, then fills up to
 *    `batch` slots from head (an 8-byte sequence number after the header,
 *    len set) and txsyncs.  VALE reclaims the whole TX ring in txsync, so
 *    it never has to wait for room.
 *
 * nmc_bench_copy_raw() is the physical limit of that work: one bare
 * single-producer/single-consumer ring per receiving port (1024 slots of
 * 16-byte descriptors, 2048-byte buffers) in a tmpfs file.  The producer
 * fills frames in a private pool of the same geometry, as the VALE sender
 * fills its TX ring, then copies each batch into every ring (64-byte
 * chunks below 256 bytes, non-temporal stores of whole lines above, as
 * VALE copies), publishing each ring's index once per batch.  It waits (spinning) instead of dropping.
 *
 * Clocks (CLOCK_MONOTONIC): the sender's runs from its first fill to its
 * last sync, the receiver's from the first frame it sees to the moment it
 * finds every ring empty after the last.  cpu_ns is the thread's CPU time
 * over the same span (to the end of the loop for the receiver), which the
 * time spent descheduled does not inflate.
 */
#include "bench_int.h"
#include "nmcompat_bench.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <net/netmap_user.h>

#define BV_STALL_NS     (30ull * 1000000000ull)   /* give up after no progress */
#define BV_NAMELEN      64                        /* port names, as struct nmc_vale_list's */
#define BV_POLL_MS      1                         /* then look at the drop counters */
#define BV_SETTLE_NS    1000000ull                /* at most this often */
#define BV_SEQ_OFS      14u                       /* after the Ethernet header */
#define BV_MIN_LEN      (BV_SEQ_OFS + 8u)
#define BV_ETHERTYPE    0x88b5                    /* IEEE local experimental */
#define BV_SLOTS        1024u
#define BV_VALE_BUF     2112u                     /* a VALE port's buffers (NMC_VALE_BUF_SIZE) */
#define BV_MAGIC        0x676e697279706f63ull     /* "copyring" */

/* The copy ring's buffer size: a VALE port's ($NMCOMPAT_BUF_SIZE, else
 * its default), so that the limit has VALE's geometry; 0 for a variable
 * the engine would refuse (bv_check_args: EINVAL, as a VALE open). */
static uint32_t bv_buf_size(void)
{
    const char *v = getenv("NMCOMPAT_BUF_SIZE");
    unsigned long x;
    char *end;

    if (!v || !*v)
        return BV_VALE_BUF;
    if (*v < '0' || *v > '9')
        return 0;
    x = strtoul(v, &end, 0);
    return *end == 0 && x >= 64 && x <= 65536 && x % 64 == 0 ? (uint32_t)x : 0;
}

/* Locally administered MACs: the sender, and receiving port i. */
static const uint8_t tx_mac[6] = { 0x02, 0x6e, 0x6d, 0x63, 0x54, 0x00 };
static const uint8_t bcast_mac[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static void rx_mac(uint32_t i, uint8_t mac[6])
{
    static const uint8_t base[6] = { 0x02, 0x6e, 0x6d, 0x63, 0x52, 0x00 };

    memcpy(mac, base, 6);
    mac[5] = (uint8_t)i;
}

struct bv_args {
    uint32_t nports, bcast, batch, len;
    uint32_t tx_bufs;               /* 0: the sender's buffers in ring order; n: n hot ones */
    uint64_t count;
};


/* CPU time of this thread: what the loop cost, whoever else ran on the CPU. */
static uint64_t cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint32_t min_u32(uint64_t a, uint64_t b)
{
    return (uint32_t)(a < b ? a : b);
}

static int bv_check_args(const struct bv_args *a)
{
    if (a->nports < 1 || a->nports > NMC_BENCH_VALE_MAXPORTS || a->batch == 0 || a->count == 0 ||
        a->len < BV_MIN_LEN || bv_buf_size() == 0 || a->len > bv_buf_size() || (!a->bcast && a->nports != 1) ||
        (a->tx_bufs && (a->tx_bufs < min_u32(a->batch, BV_SLOTS - 1) || a->tx_bufs >= BV_SLOTS)))
        return -EINVAL;
    return 0;
}

static void bv_finish(struct nmc_bench_vale_result *out, uint64_t t0, uint64_t t1, uint64_t pkts)
{
    out->start_ns = t0;
    out->end_ns = t1;
    out->elapsed_ns = t1 > t0 ? t1 - t0 : 0;
    out->packets = pkts;
}

/* An Ethernet header: dst, src, our ethertype. */
static void put_header(uint8_t *buf, const uint8_t *dst, const uint8_t *src)
{
    memcpy(buf, dst, 6);
    memcpy(buf + 6, src, 6);
    buf[12] = BV_ETHERTYPE >> 8;
    buf[13] = BV_ETHERTYPE & 0xff;
}

/* Per receiving port: where the next frame's sequence number should be. */
struct bv_rx {
    uint64_t got, next, gaps, drops;
    bool done;
};

/* Check one received frame.  Frames may be missing (the switch drops when
 * a ring is full) but never reordered, repeated, resized or foreign. */
static inline uint64_t check_frame(struct bv_rx *r, const uint8_t *buf, uint32_t len, uint32_t want)
{
    uint64_t v;

    memcpy(&v, buf + BV_SEQ_OFS, sizeof(v));
    r->got++;
    if (len != want || memcmp(buf + 6, tx_mac, 6) != 0 || v < r->next) {
        r->next = v + 1;
        return 1;
    }
    r->gaps += v - r->next;
    r->next = v + 1;
    return 0;
}

/* Wait until path exists (the receiver's "ready").  Returns 0 or -errno. */
static int await_file(const char *path)
{
    uint64_t deadline = bench_now_ns() + BV_STALL_NS;
    struct timespec ms = { 0, 1000000 };

    while (access(path, F_OK) != 0) {
        if (errno != ENOENT)
            return -errno;
        if (bench_now_ns() > deadline)
            return -ETIMEDOUT;
        nanosleep(&ms, NULL);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* VALE                                                                */
/* ------------------------------------------------------------------ */

int bench_vale_open(const char *rundir, const char *sw, const char *suffix, bool rx,
                    struct nmc_port **p)
{
    char name[BV_NAMELEN];
    struct nmc_pipe_req req = {
        .rundir = rundir, .parent = name, .mode = NR_REG_ALL_NIC, .spin_us = -1,
        .flags = rx ? NR_NO_TX_POLL : 0,
    };

    if (snprintf(name, sizeof(name), "%s:%s", sw, suffix) >= (int)sizeof(name))
        return -ENAMETOOLONG;
    return nmc_vale_open(&req, p);
}

static void add_stats(struct nmc_port *p, struct nmc_bench_vale_result *out, uint32_t i)
{
    struct nmc_port_stats st;

    nmc_port_stats(p, &st);
    out->syncs += st.txsyncs + st.rxsyncs;
    out->polls += st.polls;
    out->sleeps += st.sleeps;
    out->wakeups += st.wakeups_sent;
    out->drains += st.drains;
    out->sw_sent += st.tx_pkts;         /* counted by the switch's txsync */
    out->sw_tx_dropped += st.tx_dropped;
    out->sw_forwarded += st.forwarded;
    out->sw_drops += st.rx_dropped;
    if (i < NMC_BENCH_VALE_MAXPORTS) {
        out->port_drops[i] = st.rx_dropped;
        out->port_forwarded[i] = st.forwarded;
    }
}

/* Send one frame from the receiver's first port so the switch learns it. */
static int announce(struct nmc_port *p)
{
    struct netmap_ring *ring = NETMAP_TXRING(nmc_port_nifp(p), 0);
    struct netmap_slot *s = &ring->slot[ring->head];
    uint8_t *buf = (uint8_t *)NETMAP_BUF(ring, s->buf_idx), mac[6];

    if (nm_ring_space(ring) == 0)
        return -ENOBUFS;
    rx_mac(0, mac);
    memset(buf, 0, 60);
    put_header(buf, bcast_mac, mac);
    s->len = 60;
    ring->head = ring->cur = nm_ring_next(ring, ring->head);
    return nmc_txsync(p);
}

/* Is r0's MAC in the switch's table, on r0's entry? */
static bool learned(const char *rundir, const char *sw)
{
    struct nmc_vale_list l = { .name = "" };
    uint8_t mac[6];

    snprintf(l.name, sizeof(l.name), "%s:r0", sw);
    if (nmc_vale_list(rundir, &l) < 0)
        return false;
    rx_mac(0, mac);
    return nmc_vale_lookup(rundir, sw, mac) == (int)l.port_idx;
}

void bench_share_tx_bufs(struct netmap_ring *ring, uint32_t n, uint32_t *orig, bool back)
{
    for (uint32_t j = 0; n && j < ring->num_slots; j++) {
        if (!back)
            orig[j] = ring->slot[j].buf_idx;
        ring->slot[j].buf_idx = back ? orig[j] : orig[j % n];
        ring->slot[j].flags |= NS_BUF_CHANGED;
    }
}

static int vale_send(struct nmc_port *p, const struct bv_args *a, struct nmc_bench_vale_result *out)
{
    struct netmap_ring *ring = NETMAP_TXRING(nmc_port_nifp(p), 0);
    const uint16_t len = (uint16_t)a->len;    /* not reloaded after each frame's store */
    uint64_t seq = 0, t0, c0;
    uint8_t dst[6];
    int err;

    if (a->len > ring->nr_buf_size)
        return -EINVAL;
    if (a->bcast)
        memcpy(dst, bcast_mac, 6);
    else
        rx_mac(0, dst);
    for (uint32_t j = 0; j < ring->num_slots; j++) {
        uint8_t *buf = (uint8_t *)NETMAP_BUF(ring, ring->slot[j].buf_idx);
        memset(buf, 0, a->len);
        put_header(buf, dst, tx_mac);
    }
    c0 = cpu_ns();
    t0 = bench_now_ns();
    while (seq < a->count) {
        uint32_t n = min_u32(nm_ring_space(ring), a->batch), j = ring->head;
        n = min_u32(n, a->count - seq);
        if (n == 0)
            return -ENOBUFS;            /* VALE hands the TX ring back on every txsync */
        for (uint32_t i = 0; i < n; i++, seq++) {
            struct netmap_slot *s = &ring->slot[j];
            memcpy((uint8_t *)NETMAP_BUF(ring, s->buf_idx) + BV_SEQ_OFS, &seq, sizeof(seq));
            s->len = len;
            j = nm_ring_next(ring, j);
        }
        ring->head = ring->cur = j;
        if ((err = nmc_txsync(p)) < 0)
            return err;
        out->batches++;
    }
    bv_finish(out, t0, bench_now_ns(), seq);
    out->cpu_ns = cpu_ns() - c0;
    return 0;
}

/* Has every port got its `count` frames, received or dropped?  The drop
 * counters are read only when `shared`: they sit on cache lines the sender
 * updates on every flush, so reading them on every idle round would slow
 * the sender down. */
static uint32_t settle(struct nmc_port **ps, struct bv_rx *rx, const struct bv_args *a, bool shared)
{
    uint32_t done = 0;

    for (uint32_t i = 0; i < a->nports; i++) {
        struct nmc_port_stats st;
        if (!rx[i].done && rx[i].got >= a->count)
            rx[i].done = true;
        if (!rx[i].done && shared) {
            nmc_port_stats(ps[i], &st);
            rx[i].drops = st.rx_dropped;
            rx[i].done = rx[i].got + st.rx_dropped >= a->count;
        }
        done += rx[i].done;
    }
    return done;
}

static int vale_recv(struct nmc_port **ps, const struct bv_args *a,
                     struct nmc_bench_vale_result *out)
{
    struct netmap_ring *rings[NMC_BENCH_VALE_MAXPORTS];
    struct bv_rx rx[NMC_BENCH_VALE_MAXPORTS] = { 0 };
    uint64_t t0 = 0, t1 = 0, c0 = 0, now, idle_since = 0, last_settle = 0, got = 0;
    bool busy = false, shared;
    int err;

    for (uint32_t i = 0; i < a->nports; i++)
        rings[i] = NETMAP_RXRING(nmc_port_nifp(ps[i]), 0);
    for (;;) {
        uint32_t moved = 0;
        for (uint32_t i = 0; i < a->nports; i++) {
            struct netmap_ring *ring = rings[i];
            uint32_t n, j;
            if (rx[i].done)
                continue;
            if ((err = nmc_rxsync(ps[i])) < 0)
                return err;
            n = min_u32(nm_ring_space(ring), a->batch);
            if (n == 0)
                continue;
            if (t0 == 0) {
                t0 = bench_now_ns();
                c0 = cpu_ns();
            }
            j = ring->head;
            for (uint32_t k = 0; k < n; k++) {
                const struct netmap_slot *s = &ring->slot[j];
                out->errors += check_frame(&rx[i], (const uint8_t *)NETMAP_BUF(ring, s->buf_idx),
                                           s->len, a->len);
                j = nm_ring_next(ring, j);
            }
            ring->head = ring->cur = j;
            moved += n;
            out->batches++;
        }
        if (moved) {
            got += moved;
            idle_since = 0;
            busy = true;
            continue;
        }
        /* nothing anywhere (the receiver's time is free here): the last
         * frame came before now; finished, or wait for a port expecting more */
        now = bench_now_ns();
        if (busy)
            t1 = now;
        busy = false;
        if (idle_since == 0)
            idle_since = now;
        else if (now - idle_since > BV_STALL_NS)
            return -ETIMEDOUT;
        shared = now - last_settle >= BV_SETTLE_NS;
        if (shared)
            last_settle = now;
        if (settle(ps, rx, a, shared) == a->nports)
            break;
        for (uint32_t i = 0; i < a->nports; i++) {
            if (rx[i].done)
                continue;
            err = nmc_poll(ps[i], POLLIN, BV_POLL_MS);
            if (err < 0 && err != -EINTR)
                return err;
            if (err > 0 && (err & (POLLERR | POLLNVAL)))
                return -EIO;
            break;
        }
    }
    for (uint32_t i = 0; i < a->nports; i++) {
        nmc_rxsync(ps[i]);              /* hand the last slots back */
        out->port_packets[i] = rx[i].got;
        out->port_gaps[i] = rx[i].gaps;
    }
    bv_finish(out, t0, t1, got);
    out->cpu_ns = t0 ? cpu_ns() - c0 : 0;
    return 0;
}

/* The rendezvous file in rundir (which the caller always names). */
static int vale_ready_path(const char *rundir, const char *sw, char *out, size_t len)
{
    int n;

    if (!rundir)
        return -EINVAL;
    n = snprintf(out, len, "%s/bench.%s.ready", rundir, sw);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int vale_receiver(const char *rundir, const char *sw, const struct bv_args *a,
                         const char *ready, struct nmc_bench_vale_result *out)
{
    struct nmc_port *ps[NMC_BENCH_VALE_MAXPORTS] = { 0 };
    uint32_t opened = 0;
    int err = 0, fd;

    for (; opened < a->nports; opened++) {
        char suffix[16];
        snprintf(suffix, sizeof(suffix), "r%u", opened);
        if ((err = bench_vale_open(rundir, sw, suffix, true, &ps[opened])) < 0)
            break;
        if (opened == 0 && !a->bcast && (err = announce(ps[0])) < 0) {
            opened++;
            break;
        }
    }
    if (err == 0) {
        fd = open(ready, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
            err = -errno;
        else
            close(fd);
    }
    if (err == 0)
        err = vale_recv(ps, a, out);
    out->nports = a->nports;
    for (uint32_t i = 0; i < opened; i++) {
        add_stats(ps[i], out, i);
        nmc_port_close(ps[i]);
    }
    return err;
}

/* vale_send, from a->tx_bufs hot buffers if set: the TX slots get their
 * own buffers back before the port closes. */
static int vale_send_from(struct nmc_port *p, const struct bv_args *a, struct nmc_bench_vale_result *out)
{
    struct netmap_ring *ring = NETMAP_TXRING(nmc_port_nifp(p), 0);
    uint32_t orig[BENCH_MAXSLOTS];
    int err;

    if (ring->num_slots > BENCH_MAXSLOTS)
        return -EINVAL;
    bench_share_tx_bufs(ring, a->tx_bufs, orig, false);
    err = vale_send(p, a, out);
    bench_share_tx_bufs(ring, a->tx_bufs, orig, true);
    return err;
}

static int vale_sender(const char *rundir, const char *sw, const struct bv_args *a,
                       const char *ready, struct nmc_bench_vale_result *out)
{
    struct nmc_port *p = NULL;
    int err;

    if ((err = await_file(ready)) < 0)
        return err;
    err = bench_vale_open(rundir, sw, "tx", false, &p);
    unlink(ready);
    if (err < 0)
        return err;
    out->nports = 1;
    if (!a->bcast && !learned(rundir, sw))
        err = -EHOSTUNREACH;            /* unicast would silently become broadcast */
    if (err == 0)
        err = vale_send_from(p, a, out);
    add_stats(p, out, NMC_BENCH_VALE_MAXPORTS);
    nmc_port_close(p);
    return err;
}

int nmc_bench_vale(const char *rundir, const char *sw, int role, uint32_t nports, int bcast,
                   uint32_t batch, uint32_t pkt_len, uint32_t tx_bufs, uint64_t count,
                   struct nmc_bench_vale_result *out)
{
    struct bv_args a = { .nports = nports, .bcast = bcast != 0, .batch = batch, .len = pkt_len,
                         .tx_bufs = tx_bufs, .count = count };
    char ready[256];
    int err;

    if (!out || !sw || (role != 0 && role != 1))
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    if ((err = bv_check_args(&a)) < 0 ||
        (err = vale_ready_path(rundir, sw, ready, sizeof(ready))) < 0)
        return err;
    if (role == 1)
        return vale_receiver(rundir, sw, &a, ready, out);
    return vale_sender(rundir, sw, &a, ready, out);
}

/* ------------------------------------------------------------------ */
/* The raw copy ring: the same geometry with nothing but the copy      */
/* ------------------------------------------------------------------ */

struct cr_idx {
    bench_aligned uint32_t prod;          /* written by the producer only */
    bench_aligned uint32_t guard0;
    bench_aligned uint32_t cons;          /* written by the consumer only */
    bench_aligned uint32_t guard1;
};

struct cr_ctl {
    uint64_t magic;
    uint32_t nrings, nslots, buf_size;
    bench_aligned struct cr_idx idx[NMC_BENCH_VALE_MAXPORTS];
};

#define CR_CTL_SIZE    (((sizeof(struct cr_ctl) + BENCH_PAGE - 1) / BENCH_PAGE) * BENCH_PAGE)
#define CR_SLOTS_SIZE  (BV_SLOTS * sizeof(struct netmap_slot))
#define CR_RING_SIZE   (CR_SLOTS_SIZE + (size_t)BV_SLOTS * bv_buf_size())

struct copy_ring {
    struct cr_ctl *ctl;
    struct netmap_slot *slot[NMC_BENCH_VALE_MAXPORTS];
    uint8_t *bufs[NMC_BENCH_VALE_MAXPORTS];
    size_t buf_size;                /* bv_buf_size(), read once */
    void *map;
    size_t len;
};

static size_t cr_file_size(uint32_t nrings)
{
    return CR_CTL_SIZE + nrings * CR_RING_SIZE;
}

static int cr_map(int fd, uint32_t nrings, struct copy_ring *r)
{
    size_t len = cr_file_size(nrings);
    uint8_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

    if (m == MAP_FAILED)
        return -errno;
    r->map = m;
    r->len = len;
    r->buf_size = bv_buf_size();
    r->ctl = (struct cr_ctl *)m;
    for (uint32_t i = 0; i < nrings; i++) {
        uint8_t *ring = m + CR_CTL_SIZE + i * CR_RING_SIZE;
        r->slot[i] = (struct netmap_slot *)ring;
        r->bufs[i] = ring + CR_SLOTS_SIZE;
    }
    return 0;
}

/* Consumer: build the rings in <path>.tmp, then rename it into place. */
static int cr_create(const char *path, uint32_t nrings, struct copy_ring *r)
{
    char tmp[256];
    int fd, err;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    err = ftruncate(fd, (off_t)cr_file_size(nrings)) < 0 ? -errno : cr_map(fd, nrings, r);
    close(fd);
    if (err == 0) {
        for (uint32_t i = 0; i < nrings; i++)
            for (uint32_t j = 0; j < BV_SLOTS; j++)
                r->slot[i][j] = (struct netmap_slot){ .buf_idx = j,
                                                      .len = (uint16_t)min_u32((uint32_t)r->buf_size, 65535) };
        r->ctl->nrings = nrings;
        r->ctl->nslots = BV_SLOTS;
        r->ctl->buf_size = (uint32_t)r->buf_size;
        bench_store_rel(&r->ctl->magic, BV_MAGIC);
        if (rename(tmp, path) < 0)
            err = -errno;
    }
    if (err < 0) {
        if (r->map)
            munmap(r->map, r->len);
        unlink(tmp);
    }
    return err;
}

/* Producer: map the rings the consumer published, then unlink the name. */
static int cr_attach(const char *path, uint32_t nrings, struct copy_ring *r)
{
    struct stat st;
    int fd, err;

    if ((err = await_file(path)) < 0)
        return err;
    fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0)
        err = -errno;
    else if ((size_t)st.st_size != cr_file_size(nrings))
        err = -EINVAL;
    else
        err = cr_map(fd, nrings, r);
    close(fd);
    if (err == 0 && (bench_load_acq(&r->ctl->magic) != BV_MAGIC || r->ctl->nrings != nrings)) {
        munmap(r->map, r->len);
        err = -EINVAL;
    }
    unlink(path);
    return err;
}


/* What VALE does with a frame (csrc/core/copy.c): 64-byte chunks below
 * 256 bytes (buffers are 64-byte multiples), whole 64-byte lines with
 * non-temporal stores from there on (AVX2 where the CPU has it, else
 * SSE2), fenced once before the batch is published. */
#if defined(__x86_64__)
#include <immintrin.h>

#define CR_STREAM_MIN 256

__attribute__((target("avx2"))) static void stream_avx2(uint8_t *dst, const uint8_t *src,
                                                       uint32_t len)
{
    for (uint32_t i = 0; i < len; i += 64) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(src + i));
        __m256i b = _mm256_loadu_si256((const __m256i *)(src + i + 32));
        _mm256_stream_si256((__m256i *)(dst + i), a);
        _mm256_stream_si256((__m256i *)(dst + i + 32), b);
    }
}

static void stream_sse2(uint8_t *dst, const uint8_t *src, uint32_t len)
{
    for (uint32_t i = 0; i < len; i += 16)
        _mm_stream_si128((__m128i *)(dst + i), _mm_loadu_si128((const __m128i *)(src + i)));
}

static inline void copy_frame(uint8_t *dst, const uint8_t *src, uint32_t len, bool avx2)
{
    if (len >= CR_STREAM_MIN) {
        if (avx2)
            stream_avx2(dst, src, len);
        else
            stream_sse2(dst, src, (len + 63) & ~63u);
        return;
    }
    for (uint32_t i = 0; i < len; i += 64)
        memcpy(dst + i, src + i, 64);
}

static inline void copy_publish_fence(uint32_t len)
{
    if (len >= CR_STREAM_MIN)
        _mm_sfence();
}

/* As VALE, the next frame's source is prefetched while one is streamed. */
static inline void prefetch_frame(const uint8_t *src, uint32_t len)
{
    if (len < CR_STREAM_MIN)
        return;
    for (uint32_t o = 0; o < len; o += 64)
        __builtin_prefetch(src + o);
}
#else
static inline void prefetch_frame(const uint8_t *src, uint32_t len)
{
    (void)src;
    (void)len;
}

static inline void copy_frame(uint8_t *dst, const uint8_t *src, uint32_t len, bool avx2)
{
    (void)avx2;
    memcpy(dst, src, len);
}

static inline void copy_publish_fence(uint32_t len)
{
    (void)len;
}
#endif

static int cr_send(struct copy_ring *r, const struct bv_args *a, struct nmc_bench_vale_result *out)
{
    uint32_t prod[NMC_BENCH_VALE_MAXPORTS], cons[NMC_BENCH_VALE_MAXPORTS], head = 0;
    const uint32_t pool_bufs = a->tx_bufs ? a->tx_bufs : BV_SLOTS;     /* the sender's buffers */
    uint64_t seq = 0, t0, c0;
    const size_t bsz = r->buf_size;     /* a local: the loops' stores cannot change it */
    uint8_t *pool = aligned_alloc(BENCH_CACHELINE, (size_t)BV_SLOTS * bsz);
    int err = 0;
#if defined(__x86_64__)
    const bool avx2 = __builtin_cpu_supports("avx2");
#else
    const bool avx2 = false;
#endif

    if (!pool)
        return -ENOMEM;
    for (uint32_t j = 0; j < BV_SLOTS; j++) {
        uint8_t *buf = pool + (size_t)j * bsz, dst[6];
        if (a->bcast)
            memcpy(dst, bcast_mac, 6);
        else
            rx_mac(0, dst);
        memset(buf, 0, a->len);
        put_header(buf, dst, tx_mac);
    }
    for (uint32_t i = 0; i < a->nports; i++) {
        prod[i] = r->ctl->idx[i].prod;
        cons[i] = bench_load_acq(&r->ctl->idx[i].cons);
    }
    c0 = cpu_ns();
    t0 = bench_now_ns();
    while (seq < a->count && err == 0) {
        uint32_t n = min_u32(a->batch, a->count - seq), full = 0;
        for (uint32_t i = 0; i < a->nports; i++) {
            uint32_t room = BV_SLOTS - 1 - (prod[i] - cons[i]);
            if (room < n) {
                n = room;
                full = i;
            }
        }
        if (n == 0) {
            cons[full] = bench_spin_wait(&r->ctl->idx[full].cons, cons[full], &out->spins, &err);
            continue;
        }
        /* the sender's part: fill n frames of its own pool */
        for (uint32_t k = 0, j = head; k < n; k++, j = (j + 1) % BV_SLOTS) {
            uint64_t v = seq + k;
            memcpy(pool + (size_t)(j % pool_bufs) * bsz + BV_SEQ_OFS, &v, sizeof(v));
        }
        /* the switch's part: copy them into every ring, publish once */
        for (uint32_t i = 0; i < a->nports; i++) {
            uint32_t p = prod[i];
            for (uint32_t k = 0, j = head; k < n; k++, j = (j + 1) % BV_SLOTS, p++) {
                struct netmap_slot *s = &r->slot[i][p % BV_SLOTS];
                if (k + 1 < n)
                    prefetch_frame(pool + (size_t)((j + 1) % BV_SLOTS % pool_bufs) * bsz, a->len);
                copy_frame(r->bufs[i] + (size_t)(s->buf_idx % BV_SLOTS) * bsz,
                           pool + (size_t)(j % pool_bufs) * bsz, a->len, avx2);
                s->len = (uint16_t)a->len;
            }
            prod[i] = p;
            copy_publish_fence(a->len);
            bench_store_rel(&r->ctl->idx[i].prod, p);
        }
        head = (head + n) % BV_SLOTS;
        seq += n;
        out->batches++;
    }
    free(pool);
    if (err == 0) {
        bv_finish(out, t0, bench_now_ns(), seq);
        out->cpu_ns = cpu_ns() - c0;
    }
    return err;
}

/* Consumer: spin until the producer published into any ring not done
 * (it may be copying into another one than we would pick). */
static int cr_wait_any(struct copy_ring *r, const struct bv_rx *rx, uint32_t nrings, uint32_t *prod,
                       uint64_t *spins)
{
    uint64_t deadline = 0;

    (*spins)++;
    for (uint32_t round = 1;; round++) {
        for (uint32_t i = 0; i < nrings; i++) {
            uint32_t v;
            if (rx[i].done || (v = bench_load_acq(&r->ctl->idx[i].prod)) == prod[i])
                continue;
            prod[i] = v;
            return 0;
        }
        bench_cpu_relax();
        if (round % 4096)
            continue;
        if (deadline == 0)
            deadline = bench_now_ns() + BV_STALL_NS;
        else if (bench_now_ns() > deadline)
            return -ETIMEDOUT;
    }
}

static int cr_recv(struct copy_ring *r, const struct bv_args *a, struct nmc_bench_vale_result *out)
{
    uint32_t prod[NMC_BENCH_VALE_MAXPORTS], cons[NMC_BENCH_VALE_MAXPORTS], left = a->nports;
    struct bv_rx rx[NMC_BENCH_VALE_MAXPORTS] = { 0 };
    const size_t bsz = r->buf_size;
    uint64_t t0 = 0, c0 = 0, got = 0;
    int err = 0;

    for (uint32_t i = 0; i < a->nports; i++) {
        cons[i] = r->ctl->idx[i].cons;
        prod[i] = bench_load_acq(&r->ctl->idx[i].prod);
    }
    while (left > 0) {
        uint32_t moved = 0;
        for (uint32_t i = 0; i < a->nports; i++) {
            uint32_t n, c = cons[i];
            if (rx[i].done)
                continue;
            if (prod[i] == c)
                prod[i] = bench_load_acq(&r->ctl->idx[i].prod);
            n = min_u32(prod[i] - c, a->batch);
            if (n == 0)
                continue;
            if (t0 == 0) {
                t0 = bench_now_ns();
                c0 = cpu_ns();
            }
            for (uint32_t k = 0; k < n; k++, c++) {
                const struct netmap_slot *s = &r->slot[i][c % BV_SLOTS];
                const uint8_t *buf = r->bufs[i] + (size_t)(s->buf_idx % BV_SLOTS) * bsz;
                out->errors += check_frame(&rx[i], buf, s->len, a->len);
            }
            cons[i] = c;
            bench_store_rel(&r->ctl->idx[i].cons, c);
            moved += n;
            out->batches++;
            if (rx[i].got >= a->count) {
                rx[i].done = true;
                left--;
            }
        }
        if (moved)
            got += moved;
        else if ((err = cr_wait_any(r, rx, a->nports, prod, &out->spins)) < 0) {
            return err;
        }
    }
    out->nports = a->nports;
    for (uint32_t i = 0; i < a->nports; i++) {
        out->port_packets[i] = rx[i].got;
        out->port_gaps[i] = rx[i].gaps;
    }
    bv_finish(out, t0, bench_now_ns(), got);
    out->cpu_ns = cpu_ns() - c0;
    return 0;
}

int nmc_bench_copy_raw(const char *shm_path, int role, uint32_t nports, int bcast, uint32_t batch,
                       uint32_t pkt_len, uint32_t tx_bufs, uint64_t count,
                       struct nmc_bench_vale_result *out)
{
    struct bv_args a = { .nports = nports, .bcast = bcast != 0, .batch = batch, .len = pkt_len,
                         .tx_bufs = tx_bufs, .count = count };
    struct copy_ring r = { 0 };
    int err;

    if (!out || !shm_path || (role != 0 && role != 1))
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    if ((err = bv_check_args(&a)) < 0)
        return err;
    err = role == 1 ? cr_create(shm_path, nports, &r) : cr_attach(shm_path, nports, &r);
    if (err < 0)
        return err;
    out->nports = role == 1 ? nports : 1;
    err = role == 1 ? cr_recv(&r, &a, out) : cr_send(&r, &a, out);
    if (role == 1)
        unlink(shm_path);               /* in case the producer never came */
    munmap(r.map, r.len);
    return err;
}
