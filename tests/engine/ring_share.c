/*
 * ring_share.c -- one port used by several threads, or by a process and
 * its forked child, at the same time: every packet must arrive exactly
 * once and intact.
 *
 *   ring_share threads [-n packets] [-r rundir] [-t timeout_s]
 *       one process, two sender threads on the same pipe end (one TX ring)
 *       and two receiver threads on the same other end (one RX ring)
 *   ring_share fork [-n packets] [-r rundir] [-t timeout_s]
 *       the ports are opened, then the process forks: parent and child
 *       each run one sender on the same TX ring and one receiver on the
 *       same RX ring (the same holders: fork keeps them)
 *
 * Stream s (one per sender) carries packets seq 0..n/2-1 of 64 bytes:
 * s, seq, then a pattern of both.  Receivers check the pattern, that each
 * stream's sequence numbers increase within one receiver, and, in a
 * bitmap shared by all of them, that no packet is seen twice; the run
 * ends when all n arrived.  Output: "done key=value ..." (exit 0),
 * "FAIL <reason>" (exit 1) or "TIMEOUT ..." (exit 3).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nmcompat.h"

#define PKT_LEN  64u
#define BATCH    64u
#define NSTREAMS 2u

struct shared {                         /* MAP_SHARED: seen by a forked child too */
    uint64_t received;
    uint64_t per_stream;
    double deadline;
    uint32_t failed;
    char why[256];
    uint64_t seen[];                    /* NSTREAMS * per_stream bits */
};

static struct shared *g_sh;

static void say(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n > 0 && write(1, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1) < 0)
        return;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fail(const char *fmt, ...)
{
    va_list ap;

    if (__atomic_exchange_n(&g_sh->failed, 1, __ATOMIC_ACQ_REL))
        return;
    va_start(ap, fmt);
    vsnprintf(g_sh->why, sizeof(g_sh->why), fmt, ap);
    va_end(ap);
}

#define FAIL_RET(...) do { fail(__VA_ARGS__); return; } while (0)

static bool stop(void)
{
    return __atomic_load_n(&g_sh->failed, __ATOMIC_ACQUIRE) ||
           __atomic_load_n(&g_sh->received, __ATOMIC_ACQUIRE) >= NSTREAMS * g_sh->per_stream ||
           now_s() > g_sh->deadline;
}

static uint8_t pattern(uint32_t s, uint32_t seq, uint32_t i)
{
    return (uint8_t)(s * 131u + seq * 7u + i * 13u + (seq >> 8));
}

static void make_packet(uint8_t *b, uint32_t s, uint32_t seq)
{
    memcpy(b, &s, 4);
    memcpy(b + 4, &seq, 4);
    for (uint32_t i = 8; i < PKT_LEN; i++)
        b[i] = pattern(s, seq, i);
}

struct worker {
    struct nmc_port *port;
    uint32_t stream;
    pthread_t tid;
    uint64_t count;                     /* packets sent or received */
};

static void *sender(void *arg)
{
    struct worker *w = arg;
    uint8_t buf[BATCH * PKT_LEN];
    uint32_t lens[BATCH];
    uint64_t next = 0;

    for (uint32_t i = 0; i < BATCH; i++)
        lens[i] = PKT_LEN;
    while (next < g_sh->per_stream && !stop()) {
        uint32_t k = 0;
        int r;
        for (; k < BATCH && next + k < g_sh->per_stream; k++)
            make_packet(buf + k * PKT_LEN, w->stream, (uint32_t)(next + k));
        if ((r = nmc_send_batch(w->port, buf, PKT_LEN, lens, k)) < 0) {
            fail("send_batch: %s", strerror(-r));
            break;
        }
        next += (uint64_t)r;
        if ((r = nmc_txsync(w->port)) < 0) {
            fail("txsync: %s", strerror(-r));
            break;
        }
        if (next < g_sh->per_stream && nmc_poll(w->port, POLLOUT, 5) < 0) {
            fail("poll POLLOUT: %s", strerror(errno));
            break;
        }
    }
    w->count = next;
    return NULL;
}

/* Check one received packet; last[s]: the last seq of stream s seen by
 * this receiver (+1, 0 for none). */
static void check_packet(const uint8_t *b, uint32_t len, uint64_t *last)
{
    uint32_t s, seq;
    uint64_t bit, old;

    if (len != PKT_LEN)
        FAIL_RET("length %u, expected %u", len, PKT_LEN);
    memcpy(&s, b, 4);
    memcpy(&seq, b + 4, 4);
    if (s >= NSTREAMS || seq >= g_sh->per_stream)
        FAIL_RET("header stream %u seq %u out of range", s, seq);
    for (uint32_t i = 8; i < PKT_LEN; i++)
        if (b[i] != pattern(s, seq, i))
            FAIL_RET("stream %u seq %u: byte %u corrupt", s, seq, i);
    if (last[s] && seq + 1u <= last[s])
        FAIL_RET("stream %u: seq %u after %" PRIu64 " in one receiver", s, seq, last[s] - 1);
    last[s] = seq + 1u;
    bit = (uint64_t)s * g_sh->per_stream + seq;
    old = __atomic_fetch_or(&g_sh->seen[bit / 64], 1ull << (bit % 64), __ATOMIC_RELAXED);
    if (old & (1ull << (bit % 64)))
        FAIL_RET("stream %u seq %u received twice", s, seq);
    __atomic_add_fetch(&g_sh->received, 1, __ATOMIC_RELEASE);
}

static void *receiver(void *arg)
{
    struct worker *w = arg;
    uint8_t buf[BATCH * PKT_LEN];
    uint32_t lens[BATCH];
    uint64_t last[NSTREAMS] = { 0 };

    while (!stop()) {
        int n, r;
        if ((r = nmc_rxsync(w->port)) < 0) {
            fail("rxsync: %s", strerror(-r));
            break;
        }
        if ((n = nmc_recv_batch(w->port, buf, PKT_LEN, lens, BATCH)) < 0) {
            fail("recv_batch: %s", strerror(-n));
            break;
        }
        for (int i = 0; i < n; i++)
            check_packet(buf + i * PKT_LEN, lens[i], last);
        w->count += (uint64_t)n;
        if (n == 0 && nmc_poll(w->port, POLLIN, 5) < 0) {
            fail("poll POLLIN: %s", strerror(errno));
            break;
        }
    }
    nmc_rxsync(w->port);                /* hand back what was read */
    return NULL;
}

static struct nmc_port *open_end(const char *rundir, uint32_t role)
{
    struct nmc_pipe_req req = {
        .rundir = rundir, .parent = "rs", .pipe_id = "1", .role = role,
        .mode = NR_REG_ALL_NIC, .spin_us = 0,
    };
    struct nmc_port *p;
    int err = nmc_pipe_open(&req, &p);

    if (err < 0) {
        say("FAIL couldn't open the pipe: %s\n", strerror(-err));
        exit(1);
    }
    return p;
}

static void run(struct nmc_port *tx, struct nmc_port *rx, const uint32_t *streams, uint32_t nsend,
                uint32_t nrecv, uint64_t *sent, uint64_t *got)
{
    struct worker w[4] = { { 0 } };
    uint32_t n = 0;

    for (uint32_t i = 0; i < nsend; i++, n++) {
        w[n] = (struct worker){ .port = tx, .stream = streams[i] };
        pthread_create(&w[n].tid, NULL, sender, &w[n]);
    }
    for (uint32_t i = 0; i < nrecv; i++, n++) {
        w[n] = (struct worker){ .port = rx };
        pthread_create(&w[n].tid, NULL, receiver, &w[n]);
    }
    for (uint32_t i = 0; i < n; i++) {
        pthread_join(w[i].tid, NULL);
        *(i < nsend ? sent : got) += w[i].count;
    }
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "", *rundir = NULL;
    uint64_t count = 1000000, sent = 0, got = 0;
    double timeout = 120, t0;
    struct nmc_port *tx, *rx;
    size_t size;
    int opt, status = 0;

    optind = 2;
    while ((opt = getopt(argc, argv, "n:r:t:")) != -1) {
        if (opt == 'n')
            count = strtoull(optarg, NULL, 0);
        else if (opt == 'r')
            rundir = optarg;
        else if (opt == 't')
            timeout = strtod(optarg, NULL);
        else
            return 2;
    }
    if ((strcmp(mode, "threads") && strcmp(mode, "fork")) || count < NSTREAMS)
        return 2;
    size = sizeof(struct shared) + (count / 64 + 2) * sizeof(uint64_t);
    g_sh = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (g_sh == MAP_FAILED)
        return 1;
    g_sh->per_stream = count / NSTREAMS;
    g_sh->deadline = now_s() + timeout;
    tx = open_end(rundir, NMC_PIPE_MASTER);
    rx = open_end(rundir, NMC_PIPE_SLAVE);
    t0 = now_s();
    if (strcmp(mode, "threads") == 0) {
        uint32_t streams[2] = { 0, 1 };
        run(tx, rx, streams, 2, 2, &sent, &got);
    } else {
        uint32_t mine = 0, childs = 1;
        pid_t pid = fork();
        if (pid < 0)
            return 1;
        if (pid == 0) {                 /* the same holders, used from here too */
            run(tx, rx, &childs, 1, 1, &sent, &got);
            _exit(0);                   /* closing would release the parent's holders */
        }
        run(tx, rx, &mine, 1, 1, &sent, &got);
        if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fail("the child ended with status %#x", status);
    }
    if (g_sh->failed) {
        say("FAIL %s\n", g_sh->why);
        return 1;
    }
    if (g_sh->received < NSTREAMS * g_sh->per_stream) {
        say("TIMEOUT received %" PRIu64 " of %" PRIu64 "\n", g_sh->received,
            NSTREAMS * g_sh->per_stream);
        return 3;
    }
    say("done mode=%s packets=%" PRIu64 " seconds=%.3f\n", mode, g_sh->received, now_s() - t0);
    nmc_port_close(tx);
    nmc_port_close(rx);
    return 0;
}
