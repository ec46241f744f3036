/*
 * bench.c -- throughput loops for the pipe benchmark, in C so that the
 * caller (nmcompat_bench.pipe) only orchestrates processes.
 *
 * nmc_bench_pipe() drives one end of a netmap pipe the way pkt-gen does:
 * the sender fills up to `batch` TX slots from head (an 8-byte sequence
 * number written into each buffer, len set), advances head/cur and
 * txsyncs, polling for POLLOUT when the ring is full; the receiver
 * rxsyncs (polling for POLLIN when empty), checks each sequence number
 * and releases up to `batch` slots at a time.
 *
 * nmc_bench_raw() is the physical limit for the same work: a bare
 * single-producer/single-consumer ring of the same geometry (1024 slots
 * of 16-byte descriptors, 2048-byte buffers) in a tmpfs file, with the
 * indexes on separate cache lines, spinning instead of sleeping.
 * nmc_bench_shape() is the same ring driven in netmap's two-ring shape
 * (see shape_send): the floor of the netmap API itself; stamped, with the
 * time stamp netmap's rxsync writes by default (see stamp()).
 *
 * Rendezvous: the receiver starts first.  When it is ready it publishes a
 * file the sender waits for (the pipe: <rundir>/bench.<parent>.<id>.ready;
 * the raw ring: the ring file itself, renamed into place when built).
 * The receiver's clock runs from the first packet it sees to the last.
 */
#include "bench_int.h"
#include "nmcompat_bench.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <net/netmap_user.h>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

#define BENCH_STALL_NS   (30ull * 1000000000ull)  /* give up after no progress */
#define BENCH_POLL_MS    1000
#define RAW_SLOTS        1024u
#define RAW_BUF_SIZE     2048u
#define RAW_MAGIC        0x676e697277617221ull     /* "!rawring" */

struct bench_args {
    uint32_t batch, pkt_len;
    uint64_t count;
};

uint64_t bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

static uint32_t min3(uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t m = a < b ? a : b;

    return (uint32_t)(m < c ? m : c);
}

static int check_args(uint32_t batch, uint32_t pkt_len, uint64_t count, uint32_t buf_size)
{
    if (batch == 0 || count == 0 || pkt_len < sizeof(uint64_t) || pkt_len > buf_size)
        return -EINVAL;
    return 0;
}

static void finish(struct nmc_bench_result *out, uint64_t t0, uint64_t t1, uint64_t pkts)
{
    out->start_ns = t0;
    out->end_ns = t1;
    out->elapsed_ns = t1 > t0 ? t1 - t0 : 0;
    out->packets = pkts;
}

/* Wait until path exists (the peer's "ready" signal).  Returns 0 or -errno. */
static int wait_for_file(const char *path)
{
    uint64_t deadline = bench_now_ns() + BENCH_STALL_NS;

    while (access(path, F_OK) != 0) {
        if (errno != ENOENT)
            return -errno;
        if (bench_now_ns() > deadline)
            return -ETIMEDOUT;
        sleep_ms(1);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* The netmap pipe                                                     */
/* ------------------------------------------------------------------ */

/* nmc_poll() for one event; -ETIMEDOUT once nothing moved for too long. */
static int wait_ring(struct nmc_port *p, int events, uint64_t *idle_since)
{
    int r = nmc_poll(p, events, BENCH_POLL_MS);

    if (r < 0 && r != -EINTR)
        return r;
    if (r > 0 && (r & (POLLERR | POLLNVAL)))
        return -EIO;
    if (r > 0 && (r & events)) {
        *idle_since = 0;
        return 0;
    }
    if (*idle_since == 0)
        *idle_since = bench_now_ns();
    else if (bench_now_ns() - *idle_since > BENCH_STALL_NS)
        return -ETIMEDOUT;
    return 0;
}

/* Fill n slots from head with frames carrying *seq, *seq + 1, ... */
static void tx_fill(struct netmap_ring *ring, uint32_t n, uint32_t len, uint64_t *seq)
{
    uint32_t j = ring->head;

    for (uint32_t i = 0; i < n; i++) {
        struct netmap_slot *s = &ring->slot[j];
        char *buf = NETMAP_BUF(ring, s->buf_idx);
        uint64_t v = (*seq)++;

        memcpy(buf, &v, sizeof(v));
        s->len = (uint16_t)len;
        j = nm_ring_next(ring, j);
    }
    ring->head = ring->cur = j;
}

/* Read n frames from head; count the ones out of sequence. */
static uint64_t rx_check(struct netmap_ring *ring, uint32_t n, uint32_t len, uint64_t *seq)
{
    uint32_t j = ring->head;
    uint64_t errors = 0;

    for (uint32_t i = 0; i < n; i++) {
        struct netmap_slot *s = &ring->slot[j];
        const char *buf = NETMAP_BUF(ring, s->buf_idx);
        uint64_t v;

        memcpy(&v, buf, sizeof(v));
        if (v != *seq || s->len != len) {
            errors++;
            *seq = v;                   /* resynchronize on what arrived */
        }
        (*seq)++;
        j = nm_ring_next(ring, j);
    }
    ring->head = ring->cur = j;
    return errors;
}

static int pipe_send(struct nmc_port *p, const struct bench_args *a, struct nmc_bench_result *out)
{
    struct netmap_ring *ring = NETMAP_TXRING(nmc_port_nifp(p), 0);
    uint64_t seq = 0, idle = 0, t0 = 0;
    int err;

    if (a->pkt_len > ring->nr_buf_size)
        return -EINVAL;
    while (seq < a->count) {
        uint32_t n = min3(nm_ring_space(ring), a->batch, a->count - seq);
        if (n == 0) {
            if ((err = wait_ring(p, POLLOUT, &idle)) < 0)
                return err;
            continue;
        }
        if (t0 == 0)
            t0 = bench_now_ns();
        tx_fill(ring, n, a->pkt_len, &seq);
        if ((err = nmc_txsync(p)) < 0)
            return err;
        out->batches++;
    }
    finish(out, t0, bench_now_ns(), seq);
    return 0;
}

static int pipe_recv(struct nmc_port *p, const struct bench_args *a, struct nmc_bench_result *out)
{
    struct netmap_ring *ring = NETMAP_RXRING(nmc_port_nifp(p), 0);
    uint64_t got = 0, seq = 0, idle = 0, t0 = 0;
    int err;

    if (a->pkt_len > ring->nr_buf_size)
        return -EINVAL;
    while (got < a->count) {
        uint32_t n;
        if ((err = nmc_rxsync(p)) < 0)
            return err;
        if (nm_ring_space(ring) == 0 && (err = wait_ring(p, POLLIN, &idle)) < 0)
            return err;
        n = min3(nm_ring_space(ring), a->batch, a->count - got);
        if (n == 0)
            continue;
        if (t0 == 0)
            t0 = bench_now_ns();
        out->errors += rx_check(ring, n, a->pkt_len, &seq);
        got += n;
        out->batches++;
    }
    finish(out, t0, bench_now_ns(), got);
    nmc_rxsync(p);                      /* hand the last slots back */
    return 0;
}

static void take_stats(struct nmc_port *p, struct nmc_bench_result *out)
{
    struct nmc_port_stats st;

    nmc_port_stats(p, &st);
    out->syncs = st.txsyncs + st.rxsyncs;
    out->polls = st.polls;
    out->sleeps = st.sleeps;
    out->wakeups = st.wakeups_sent;
    out->drains = st.drains;
}

/* The rendezvous file in rundir (which the caller always names). */
static int ready_path(const char *rundir, const char *parent, const char *pipe_id,
                      char *out, size_t len)
{
    int n;

    if (!rundir)
        return -EINVAL;
    n = snprintf(out, len, "%s/bench.%s.%s.ready", rundir, parent, pipe_id);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int signal_ready(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    if (fd < 0)
        return -errno;
    close(fd);
    return 0;
}

static int open_end(const char *rundir, const char *parent, const char *pipe_id, int role,
                    uint32_t flags, struct nmc_port **port)
{
    struct nmc_pipe_req req = {
        .rundir = rundir, .parent = parent, .pipe_id = pipe_id,
        .role = (uint32_t)role, .mode = NR_REG_ALL_NIC, .spin_us = -1,
        .no_timestamp = (flags & NMC_BENCH_NO_TIMESTAMP) != 0,
    };

    return nmc_pipe_open(&req, port);
}

int nmc_bench_pipe(const char *rundir, const char *parent, const char *pipe_id, int role,
                   uint32_t batch, uint32_t pkt_len, uint64_t count, uint32_t flags,
                   struct nmc_bench_result *out)
{
    struct bench_args a = { .batch = batch, .pkt_len = pkt_len, .count = count };
    struct nmc_port *p = NULL;
    char ready[256];
    int err;

    if (!out || !parent || !pipe_id || (role != NMC_PIPE_MASTER && role != NMC_PIPE_SLAVE) ||
        (flags & ~NMC_BENCH_NO_TIMESTAMP))
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    if ((err = check_args(batch, pkt_len, count, UINT16_MAX)) < 0 ||
        (err = ready_path(rundir, parent, pipe_id, ready, sizeof(ready))) < 0)
        return err;
    if (role == NMC_PIPE_MASTER && (err = wait_for_file(ready)) < 0)
        return err;
    if ((err = open_end(rundir, parent, pipe_id, role, flags, &p)) < 0)
        return err;
    if (role == NMC_PIPE_SLAVE) {
        err = signal_ready(ready);
        if (err == 0)
            err = pipe_recv(p, &a, out);
    } else {
        unlink(ready);
        err = pipe_send(p, &a, out);
    }
    take_stats(p, out);
    nmc_port_close(p);
    return err;
}

/* Release every slot the monitor's RX rings hold; how many. */
static uint64_t monitor_take(struct nmc_port *p)
{
    struct netmap_if *nifp = nmc_port_nifp(p);
    uint64_t n = 0;

    for (uint32_t k = 0; k < nifp->ni_rx_rings; k++) {
        struct netmap_ring *ring = NETMAP_RXRING(nifp, k);
        n += nm_ring_space(ring);
        ring->head = ring->cur = ring->tail;
    }
    return n;
}

int nmc_bench_pipe_monitor(const char *rundir, const char *parent, const char *pipe_id, int role,
                           uint64_t flags, uint64_t count, int ready_fd,
                           struct nmc_bench_result *out)
{
    struct nmc_pipe_req req = {
        .rundir = rundir, .parent = parent, .pipe_id = pipe_id, .role = (uint32_t)role,
        .mode = NR_REG_ALL_NIC, .flags = flags, .spin_us = -1,
    };
    struct nmc_port *p = NULL;
    char ready[256];
    int err;

    if (!out || !parent || !pipe_id || (role != NMC_PIPE_MASTER && role != NMC_PIPE_SLAVE))
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    if ((err = ready_path(rundir, parent, pipe_id, ready, sizeof(ready))) < 0 ||
        (err = wait_for_file(ready)) < 0 || (err = nmc_pipe_open(&req, &p)) < 0)
        return err;
    if (write(ready_fd, "m", 1) != 1)
        err = -errno;
    while (err == 0 && out->packets < count) {
        int r = nmc_poll(p, POLLIN, -1);
        if (r < 0) {
            err = r == -EINTR ? 0 : r;  /* interrupted: the run is over */
            break;
        }
        uint64_t n = monitor_take(p);
        if (n && !out->packets)
            out->start_ns = bench_now_ns();
        out->packets += n;
        out->batches += n != 0;
    }
    out->end_ns = bench_now_ns();
    out->elapsed_ns = out->packets ? out->end_ns - out->start_ns : 0;
    nmc_rxsync(p);
    take_stats(p, out);
    nmc_port_close(p);
    return err;
}

/* ------------------------------------------------------------------ */
/* The raw ring: the same geometry with nothing but the ring           */
/* ------------------------------------------------------------------ */

struct raw_ctl {
    uint64_t magic;
    uint32_t nslots, buf_size;
    bench_aligned uint32_t prod;          /* written by the producer only */
    bench_aligned uint32_t guard0;
    bench_aligned uint32_t cons;          /* written by the consumer only */
    bench_aligned uint32_t guard1;
    bench_aligned struct timeval rx_ts;   /* the stamped shape's ring->ts (consumer only) */
};

struct raw_ring {
    struct raw_ctl *ctl;
    struct netmap_slot *slot;
    uint8_t *bufs;
    void *map;
    size_t len;
};

#define RAW_SLOTS_OFS  BENCH_PAGE
#define RAW_BUFS_OFS   (RAW_SLOTS_OFS + RAW_SLOTS * sizeof(struct netmap_slot))
#define RAW_FILE_SIZE  (RAW_BUFS_OFS + (size_t)RAW_SLOTS * RAW_BUF_SIZE)

static int raw_map(int fd, struct raw_ring *r)
{
    void *m = mmap(NULL, RAW_FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

    if (m == MAP_FAILED)
        return -errno;
    r->map = m;
    r->len = RAW_FILE_SIZE;
    r->ctl = m;
    r->slot = (struct netmap_slot *)((uint8_t *)m + RAW_SLOTS_OFS);
    r->bufs = (uint8_t *)m + RAW_BUFS_OFS;
    return 0;
}

/* Receiver: build the ring in <path>.tmp, then rename it into place. */
static int raw_create(const char *path, struct raw_ring *r)
{
    char tmp[256];
    int fd, err;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    err = ftruncate(fd, (off_t)RAW_FILE_SIZE) < 0 ? -errno : raw_map(fd, r);
    close(fd);
    if (err == 0) {
        for (uint32_t i = 0; i < RAW_SLOTS; i++)
            r->slot[i] = (struct netmap_slot){ .buf_idx = i, .len = RAW_BUF_SIZE };
        r->ctl->nslots = RAW_SLOTS;
        r->ctl->buf_size = RAW_BUF_SIZE;
        bench_store_rel(&r->ctl->magic, RAW_MAGIC);
        if (rename(tmp, path) < 0)
            err = -errno;
    }
    if (err < 0)
        unlink(tmp);
    return err;
}

/* Sender: map the ring the receiver published, then unlink its name. */
static int raw_attach(const char *path, struct raw_ring *r)
{
    struct stat st;
    int fd, err;

    if ((err = wait_for_file(path)) < 0)
        return err;
    fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0)
        err = -errno;
    else if ((size_t)st.st_size != RAW_FILE_SIZE)
        err = -EINVAL;
    else
        err = raw_map(fd, r);
    close(fd);
    if (err == 0 && bench_load_acq(&r->ctl->magic) != RAW_MAGIC)
        err = -EINVAL;
    unlink(path);
    return err;
}

/* Spin until the other side's index differs from `seen`, for at most
 * the stall limit.  Returns the new value, or *err = -ETIMEDOUT.  Shared
 * with the VALE benchmark's copy rings. */
uint32_t bench_spin_wait(const uint32_t *idx, uint32_t seen, uint64_t *spins, int *err)
{
    uint64_t deadline = 0;
    uint32_t v;

    for (uint32_t i = 1; (v = bench_load_acq(idx)) == seen; i++) {
        bench_cpu_relax();
        if (i % 4096)
            continue;
        if (deadline == 0)
            deadline = bench_now_ns() + BENCH_STALL_NS;
        else if (bench_now_ns() > deadline) {
            *err = -ETIMEDOUT;
            break;
        }
    }
    (*spins)++;
    return v;
}

/* Fill n slots of `slots` from position pos: the next sequence numbers
 * into their buffers, len into each slot. */
static inline void raw_fill(struct raw_ring *r, struct netmap_slot *slots, uint32_t pos,
                            uint32_t n, uint32_t len, uint64_t *seq)
{
    for (uint32_t i = 0; i < n; i++, pos++, (*seq)++) {
        struct netmap_slot *s = &slots[pos % RAW_SLOTS];
        memcpy(r->bufs + (size_t)(s->buf_idx % RAW_SLOTS) * RAW_BUF_SIZE, seq, sizeof(*seq));
        s->len = (uint16_t)len;
    }
}

/* Check n shared slots from position pos against the expected sequence
 * numbers and length; returns the frames out of sequence (resynchronising
 * on what arrived). */
static inline uint64_t raw_check(const struct raw_ring *r, uint32_t pos, uint32_t n, uint32_t len,
                                 uint64_t *seq)
{
    uint64_t errors = 0;

    for (uint32_t i = 0; i < n; i++, pos++, (*seq)++) {
        const struct netmap_slot *s = &r->slot[pos % RAW_SLOTS];
        uint64_t v;
        memcpy(&v, r->bufs + (size_t)(s->buf_idx % RAW_SLOTS) * RAW_BUF_SIZE, sizeof(v));
        if (v != *seq || s->len != len) {
            errors++;
            *seq = v;
        }
    }
    return errors;
}

static int raw_send(struct raw_ring *r, const struct bench_args *a, struct nmc_bench_result *out)
{
    uint32_t prod = r->ctl->prod, cons = bench_load_acq(&r->ctl->cons);
    uint64_t seq = 0, t0 = bench_now_ns();
    int err = 0;

    while (seq < a->count) {
        uint32_t n = min3(RAW_SLOTS - 1 - (prod - cons), a->batch, a->count - seq);
        if (n == 0) {
            cons = bench_spin_wait(&r->ctl->cons, cons, &out->spins, &err);
            if (err < 0)
                return err;
            continue;
        }
        raw_fill(r, r->slot, prod, n, a->pkt_len, &seq);
        prod += n;
        bench_store_rel(&r->ctl->prod, prod);
        out->batches++;
    }
    finish(out, t0, bench_now_ns(), seq);
    return 0;
}

static int raw_recv(struct raw_ring *r, const struct bench_args *a, struct nmc_bench_result *out)
{
    uint32_t cons = r->ctl->cons, prod = bench_load_acq(&r->ctl->prod);
    uint64_t got = 0, seq = 0, t0 = 0;
    int err = 0;

    while (got < a->count) {
        uint32_t n = min3(prod - cons, a->batch, a->count - got);
        if (n == 0) {
            prod = bench_spin_wait(&r->ctl->prod, prod, &out->spins, &err);
            if (err < 0)
                return err;
            continue;
        }
        if (t0 == 0)
            t0 = bench_now_ns();
        out->errors += raw_check(r, cons, n, a->pkt_len, &seq);
        cons += n;
        got += n;
        bench_store_rel(&r->ctl->cons, cons);
        out->batches++;
    }
    finish(out, t0, bench_now_ns(), got);
    return 0;
}

/* The raw ring in netmap's shape: what netmap's API asks of any pipe,
 * with nothing else.  The sender fills its own TX slots and "txsyncs":
 * copies them to the shared RX slots (writing only those that differ) and
 * publishes, fetching the reader's index only when under half the ring is
 * free by the one it saw last.  The receiver "rxsyncs" before each batch:
 * looks at the flags of the slots it released (a buffer it swapped,
 * NS_BUF_CHANGED, would go back to the sender), publishes them and reads
 * the writer's index afresh, as an rxsync must report what has arrived.
 * No checks, no owner, no counters, no timestamps, no wakeups: the floor
 * of the two-ring API here. */
static int shape_send(struct raw_ring *r, const struct bench_args *a, struct nmc_bench_result *out)
{
    static struct netmap_slot txs[RAW_SLOTS] __attribute__((aligned(64)));
    uint32_t prod = r->ctl->prod, cons = bench_load_acq(&r->ctl->cons), head = prod;
    uint64_t seq = 0, t0 = bench_now_ns();
    int err = 0;

    memcpy(txs, r->slot, sizeof(txs));
    while (seq < a->count) {
        uint32_t n = min3(RAW_SLOTS - 1 - (head - cons), a->batch, a->count - seq);
        if (n == 0) {
            cons = bench_spin_wait(&r->ctl->cons, cons, &out->spins, &err);
            if (err < 0)
                return err;
            continue;
        }
        raw_fill(r, txs, head, n, a->pkt_len, &seq);
        head += n;
        for (; prod != head; prod++) {                      /* txsync */
            const struct netmap_slot *t = &txs[prod % RAW_SLOTS];
            struct netmap_slot *d = &r->slot[prod % RAW_SLOTS];
            if (d->buf_idx != t->buf_idx || d->len != t->len || d->flags != t->flags)
                *d = *t;
        }
        bench_store_rel(&r->ctl->prod, prod);
        if (RAW_SLOTS - 1 - (head - cons) < RAW_SLOTS / 2)
            cons = bench_load_acq(&r->ctl->cons);
        out->batches++;
    }
    finish(out, t0, bench_now_ns(), seq);
    return 0;
}

/* netmap's rxsync stamps ring->ts with the wall clock (microtime()) unless
 * timestamps are off.  The cheapest way a process can: one TSC read scaled
 * from an anchor (TSC, CLOCK_REALTIME) taken again every millisecond, the
 * rate measured over the first 2 ms of the run.  Without a TSC, or with a
 * clocksource other than the TSC (a rate that may not hold), the clock is
 * read each time. */
#define STAMP_WINDOW_NS 1000000ull
#define STAMP_CAL_NS    2000000ull

struct stamp_clock {
    uint64_t tsc0, mult, win;           /* mult: ns per TSC cycle << 32; 0: read the clock */
    int64_t ns0;
};

#if defined(__x86_64__) || defined(__i386__)
static inline uint64_t stamp_tsc(void) { return __rdtsc(); }
#else
static inline uint64_t stamp_tsc(void) { return 0; }
#endif

static int64_t wall_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static bool tsc_is_clocksource(void)
{
    char buf[16] = "";
    int fd = open("/sys/devices/system/clocksource/clocksource0/current_clocksource",
                  O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

    if (fd >= 0)
        close(fd);
    return stamp_tsc() != 0 && n >= 3 && strncmp(buf, "tsc", 3) == 0;
}

static void stamp_init(struct stamp_clock *c)
{
    uint64_t t0 = stamp_tsc(), start = bench_now_ns(), t1;

    *c = (struct stamp_clock){ .ns0 = wall_ns() };
    if (!tsc_is_clocksource())
        return;
    while (bench_now_ns() - start < STAMP_CAL_NS)
        bench_cpu_relax();
    t1 = stamp_tsc();
    if (t1 <= t0)
        return;
    c->mult = (uint64_t)(((unsigned __int128)(bench_now_ns() - start) << 32) / (t1 - t0));
    c->win = c->mult ? (STAMP_WINDOW_NS << 32) / c->mult : 0;
    c->tsc0 = stamp_tsc();
    c->ns0 = wall_ns();
}

static inline void stamp(struct stamp_clock *c, struct timeval *tv)
{
    uint64_t d = stamp_tsc() - c->tsc0;
    int64_t ns;

    if (c->mult && d < c->win) {
        ns = c->ns0 + (int64_t)((d * c->mult) >> 32);
    } else {
        ns = wall_ns();
        if (c->mult) {
            c->tsc0 = stamp_tsc();
            c->ns0 = ns;
        }
    }
    tv->tv_sec = ns / 1000000000ll;
    tv->tv_usec = (ns % 1000000000ll) / 1000;
}

static int shape_recv(struct raw_ring *r, const struct bench_args *a, bool stamped,
                      struct nmc_bench_result *out)
{
    uint32_t head = r->ctl->cons, released = head, prod;
    uint64_t got = 0, seq = 0, t0 = 0;
    struct stamp_clock clock = { 0 };
    int err = 0;

    if (stamped)
        stamp_init(&clock);

    while (got < a->count) {
        uint32_t n;
        if (released != head) {                             /* rxsync */
            for (; released != head; released++)           /* swapped buffers go back */
                if (r->slot[released % RAW_SLOTS].flags & NS_BUF_CHANGED)
                    out->errors++;                          /* (never here: counted as odd) */
            bench_store_rel(&r->ctl->cons, head);
        }
        if (stamped)                    /* before the index, as the engine stamps */
            stamp(&clock, &r->ctl->rx_ts);
        prod = bench_load_acq(&r->ctl->prod);
        if (prod == head) {
            bench_spin_wait(&r->ctl->prod, prod, &out->spins, &err);
            if (err < 0)
                return err;
            continue;
        }
        n = min3(prod - head, a->batch, a->count - got);
        if (t0 == 0)
            t0 = bench_now_ns();
        out->errors += raw_check(r, head, n, a->pkt_len, &seq);
        head += n;
        got += n;
        out->batches++;
    }
    bench_store_rel(&r->ctl->cons, head);
    finish(out, t0, bench_now_ns(), got);
    return 0;
}

enum raw_kind { RAW_PLAIN, RAW_SHAPE, RAW_SHAPE_STAMPED };

static int raw_run(const char *shm_path, int role, enum raw_kind kind, uint32_t batch,
                   uint32_t pkt_len, uint64_t count, struct nmc_bench_result *out)
{
    struct bench_args a = { .batch = batch, .pkt_len = pkt_len, .count = count };
    struct raw_ring r;
    int err;

    if (!out || !shm_path || (role != 0 && role != 1))
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    if ((err = check_args(batch, pkt_len, count, RAW_BUF_SIZE)) < 0)
        return err;
    err = role == 1 ? raw_create(shm_path, &r) : raw_attach(shm_path, &r);
    if (err < 0)
        return err;
    if (kind != RAW_PLAIN)
        err = role == 1 ? shape_recv(&r, &a, kind == RAW_SHAPE_STAMPED, out)
                        : shape_send(&r, &a, out);
    else
        err = role == 1 ? raw_recv(&r, &a, out) : raw_send(&r, &a, out);
    if (role == 1)
        unlink(shm_path);               /* in case the sender never came */
    munmap(r.map, r.len);
    return err;
}

int nmc_bench_raw(const char *shm_path, int role, uint32_t batch, uint32_t pkt_len,
                  uint64_t count, struct nmc_bench_result *out)
{
    return raw_run(shm_path, role, RAW_PLAIN, batch, pkt_len, count, out);
}

int nmc_bench_shape(const char *shm_path, int role, uint32_t batch, uint32_t pkt_len,
                    uint64_t count, int stamped, struct nmc_bench_result *out)
{
    if (stamped != 0 && stamped != 1)
        return -EINVAL;
    return raw_run(shm_path, role, stamped ? RAW_SHAPE_STAMPED : RAW_SHAPE, batch, pkt_len,
                   count, out);
}
