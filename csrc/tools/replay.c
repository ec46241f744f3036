/*
 * replay.c -- paced transmission: frames go out at given times.
 *
 * The caller computes the schedule (recorded pcap timing, a bit rate, a
 * packet rate) as CLOCK_MONOTONIC nanoseconds; this sends a batch of
 * frames, each not before its time.  Waits longer than SLEEP_MIN_NS sleep
 * (clock_nanosleep) until SPIN_NS before the deadline and spin the rest;
 * frames already due go out together, up to `burst` per txsync.
 */
#include "tools_port.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>

#define SLEEP_MIN_NS 100000ull
#define SPIN_NS      60000ull

static uint64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Wait until `when`.  Returns 0, or -EINTR when a signal arrived. */
static int wait_until(uint64_t when, struct nmc_replay_result *res)
{
    uint64_t now = mono_ns();

    if (when <= now)
        return 0;
    res->waits++;
    if (when - now > SLEEP_MIN_NS) {
        uint64_t t = when - SPIN_NS;
        struct timespec ts = { .tv_sec = (time_t)(t / 1000000000ull),
                               .tv_nsec = (long)(t % 1000000000ull) };
        int rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        if (rc == EINTR)
            return -EINTR;
    }
    while (mono_ns() < when)
        tl_cpu_relax();
    return 0;
}

/* Queue the frames from *i on that are due, at most burst.  Returns how
 * many were queued; *full tells whether a frame did not fit. */
static uint32_t queue_due(struct nmc_port *p, const uint8_t *data, const uint64_t *offs,
                          const uint32_t *lens, const uint64_t *when, uint32_t n, uint32_t *i,
                          uint32_t burst, bool *full, struct nmc_replay_result *res)
{
    uint64_t now = mono_ns();
    uint32_t k = 0;

    *full = false;
    while (*i < n && k < burst && when[*i] <= now) {
        int r = nmc_inject(p, data + offs[*i], lens[*i]);
        if (r == 0) {
            *full = true;
            break;
        }
        if (r < 0) {
            res->errors++;              /* too large for a chain: skipped */
        } else {
            res->sent++;
            res->bytes += lens[*i];
            k++;
            if (now - when[*i] > res->max_late_ns)
                res->max_late_ns = now - when[*i];
        }
        (*i)++;
    }
    return k;
}

/* Send frame i (lens[i] bytes at data + offs[i]) not before monotonic time
 * when_ns[i] (non-decreasing), for i in [0, n).  Returns how many frames
 * were consumed (sent or skipped as too large): n, or fewer when a signal
 * interrupted a wait; -errno if nothing was. */
int nmc_replay_send(struct nmc_port *p, const uint8_t *data, const uint64_t *offs,
                    const uint32_t *lens, const uint64_t *when_ns, uint32_t n, uint32_t burst,
                    struct nmc_replay_result *res)
{
    uint32_t i = 0;
    int err = 0;

    if (!p || !res || (n && (!data || !offs || !lens || !when_ns)))
        return -EINVAL;
    if (burst == 0)
        burst = 1;
    while (i < n) {
        bool full;
        if ((err = wait_until(when_ns[i], res)) < 0)
            break;
        if (queue_due(p, data, offs, lens, when_ns, n, &i, burst, &full, res) > 0)
            err = nmc_txsync(p);
        if (err < 0 && err != -EINVAL)
            break;
        if (full) {
            res->full_waits++;
            if ((err = nmc_poll(p, POLLOUT, 1000)) < 0)
                break;
        }
        err = 0;
    }
    return i ? (int)i : err;
}
