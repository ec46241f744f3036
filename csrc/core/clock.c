/*
 * clock.c -- the wall clock of ring->ts (netmap's microtime()), cheaper
 * than a gettimeofday() per rxsync.
 *
 * Each bound ring keeps an anchor: the TSC and CLOCK_REALTIME read
 * together (within NMC_CLOCK_READ_MAX cycles), and the nanoseconds per TSC
 * cycle measured against CLOCK_MONOTONIC_RAW between two anchors at least
 * NMC_CLOCK_CAL_NS apart.  A stamp within NMC_CLOCK_WINDOW_NS (1 ms) of
 * TSC after the anchor is the anchor's time plus the cycles since, scaled;
 * anything else (no rate yet, a TSC behind the anchor or past the window:
 * another CPU's TSC, a suspended VM) reads the clock again and anchors
 * there.  The TSC is used only where the kernel keeps its own time on it
 * (its clocksource is "tsc": constant rate, in step across CPUs, as the
 * vDSO assumes); elsewhere every stamp reads the clock.  A stamp is then
 * the wall clock to within about a microsecond (the read window, the
 * wall clock's slewing against the raw rate over 1 ms), never more than
 * one window ahead of it, and a step of the wall clock shows at the next
 * anchor, within 1 ms.
 *
 * The state is the ring's (struct nmc_lring, process-local), used only by
 * the thread inside the ring: no lock, no shared line; a forked child
 * keeps a valid anchor (one TSC per machine).
 */
#include "nmc_transport.h"

#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NMC_CLOCK_WINDOW_NS  1000000ull       /* an anchor is good for 1 ms of TSC */
#define NMC_CLOCK_CAL_NS     1000000ll        /* calibrate over at least 1 ms */
#define NMC_CLOCK_CAL_MAX_NS 2000000000ll     /* and at most 2 s (no overflow) */
#define NMC_CLOCK_READ_MAX   2000ull          /* cycles a TSC/clock/TSC read may take */

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
static inline uint64_t tsc_now(void) { return __rdtsc(); }
#define NMC_HAVE_TSC 1
#else
static inline uint64_t tsc_now(void) { return 0; }
#define NMC_HAVE_TSC 0
#endif

/* 1 when the kernel keeps its own time on the TSC (then the TSC is
 * constant-rate and in step across CPUs, as its vDSO assumes), -1 when
 * not; asked once per process. */
static int g_tsc_state;

static int tsc_trusted(void)
{
    int s = __atomic_load_n(&g_tsc_state, __ATOMIC_RELAXED);
    char buf[32] = "";
    ssize_t n;
    int fd;

    if (s)
        return s > 0;
    s = -1;
    fd = open("/sys/devices/system/clocksource/clocksource0/current_clocksource", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (NMC_HAVE_TSC && n >= 3 && strncmp(buf, "tsc", 3) == 0 && (n == 3 || buf[3] == '\n'))
            s = 1;
    }
    __atomic_store_n(&g_tsc_state, s, __ATOMIC_RELAXED);
    return s > 0;
}

static int64_t ts_ns(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * 1000000000ll + ts->tv_nsec;
}

static void to_timeval(int64_t ns, struct timeval *tv)
{
    tv->tv_sec = ns / 1000000000ll;
    tv->tv_usec = (ns % 1000000000ll) / 1000;
}

/* The wall clock now; with a trusted TSC also the TSC and CLOCK_MONOTONIC_RAW
 * read with it (*tsc 0 when the three reads are not tight enough to anchor on). */
static int64_t read_clocks(uint64_t *tsc, int64_t *raw)
{
    struct timespec ts, rs;
    uint64_t a, b;

    *tsc = 0;
    if (!tsc_trusted()) {
        clock_gettime(CLOCK_REALTIME, &ts);
        return ts_ns(&ts);
    }
    a = tsc_now();
    clock_gettime(CLOCK_REALTIME, &ts);
    clock_gettime(CLOCK_MONOTONIC_RAW, &rs);
    b = tsc_now();
    if (b > a && b - a < NMC_CLOCK_READ_MAX) {
        *tsc = a + (b - a) / 2;
        *raw = ts_ns(&rs);
    }
    return ts_ns(&ts);
}

/* Anchor at (tsc, ns).  The rate comes from CLOCK_MONOTONIC_RAW, which is
 * never stepped or slewed: a step of the wall clock cannot make the window
 * longer than its 1 ms, and it shows at the next anchor.  It is measured
 * again against the anchor before when they are far enough apart. */
static void anchor(struct nmc_usclock *c, uint64_t tsc, int64_t ns, int64_t raw)
{
    int64_t draw = raw - c->cal_raw;

    if (c->cal_tsc && tsc > c->cal_tsc && draw >= NMC_CLOCK_CAL_NS && draw <= NMC_CLOCK_CAL_MAX_NS) {
        uint64_t mult = (uint64_t)(((unsigned __int128)draw << 32) / (tsc - c->cal_tsc));
        if (mult) {
            c->mult = mult;
            c->win = (uint64_t)(((unsigned __int128)NMC_CLOCK_WINDOW_NS << 32) / mult);
        }
    }
    if (c->mult || !c->cal_tsc || tsc <= c->cal_tsc || draw < 0 || draw > NMC_CLOCK_CAL_MAX_NS) {
        c->cal_tsc = tsc;               /* the next measurement starts here */
        c->cal_raw = raw;
    }
    c->tsc0 = tsc;
    c->ns0 = ns;
}

static void clock_slow(struct nmc_usclock *c, struct timeval *tv)
{
    uint64_t tsc;
    int64_t raw = 0, ns = read_clocks(&tsc, &raw);

    if (tsc)                            /* else: exact now, anchor at a later stamp */
        anchor(c, tsc, ns, raw);
    to_timeval(ns, tv);
}

void nmc_clock_stamp(struct nmc_usclock *c, struct timeval *tv)
{
    if (NMC_HAVE_TSC && c->mult) {
        uint64_t d = tsc_now() - c->tsc0;
        if (d < c->win) {
            to_timeval(c->ns0 + (int64_t)((d * c->mult) >> 32), tv);
            return;
        }
    }
    clock_slow(c, tv);
}

/* ring->ts at every rxsync of every kind, failed ones too, as netmap's
 * (sync.c, once inside the ring), unless the port was opened without
 * timestamps and the ring does not ask for one (NR_TIMESTAMP).  netmap
 * stamps after the kind's sync, so that the stamp is never earlier than a
 * frame the sync reports.  Kinds whose rxsync reads one index in memory
 * are stamped just before it, which a pipe at batch 1 measured faster
 * (BENCHMARKS.md, "The stamp before the sync"): the two differ by well
 * under the stamp's microsecond, the truncation netmap's stamp has too.
 * Kinds whose rxsync moves frames through the kernel (NIC ports, their
 * host rings) say rxsync_long and are stamped after it. */
void nmc_ring_stamp(const struct nmc_port *p, struct nmc_lring *lr)
{
    if (!p->no_timestamp || (lr->ring->flags & NR_TIMESTAMP))
        nmc_clock_stamp(&lr->clock, &lr->ring->ts);
}
