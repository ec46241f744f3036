/*
 * ring_own.c -- who is inside a ring.  Every write of a kring's owner
 * state is here, and every one is a compare-and-swap: entering a ring,
 * leaving it, taking it over from an owner that died inside, and clearing
 * it for the reaper.
 *
 * The owner word (kr->busy) is pid << 32 | entry << 9 | holder + 1: the
 * process inside, a count of the entries through this bound ring (so that a
 * compare-and-swap taking over a dead process's entry cannot hit a later
 * one that happens to look the same), and the holder (the open port) it
 * entered through.  0 is free.
 *
 * A ring that is owned is skipped, as netmap's busy flag makes a second
 * caller skip: two threads of one process, or two processes holding the
 * same port (fork, SCM_RIGHTS), never work in one ring at once.  The
 * ring is taken over only when its owner is dead, and the judge never
 * trusts its own view of itself:
 *  - an owner in this very process is alive (we are running);
 *  - an owner entered through another holder whose lock byte is free is
 *    dead (no process holds that open file description any more);
 *  - otherwise the owner's process is looked up: gone, a zombie, or a pid
 *    reused by a process started at another time, is dead.
 * The lock byte alone never decides for our own holder: an OFD lock never
 * conflicts with the description that holds it, so a forked copy of a port
 * would see the lock of its own holder free.
 */
#include "nmc_transport.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define HOLDER_BITS  9u
#define HOLDER_MASK  ((1u << HOLDER_BITS) - 1)
#define ENTRY_MASK   ((1u << (32 - HOLDER_BITS)) - 1)

/* This process: its pid and start time, reset in a forked child. */
static struct { int32_t pid; uint64_t start; } g_self;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

/* Start time of process pid (clock ticks after boot), 0 if it is gone or
 * a zombie. */
static uint64_t start_time(int32_t pid)
{
    char path[64], buf[512], *p;
    unsigned long long start = 0;
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return 0;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    if (!(p = strrchr(buf, ')')) || p[1] != ' ')
        return 0;
    if (p[2] == 'Z' || p[2] == 'X')
        return 0;                       /* dead, not yet reaped */
    /* after ") " come fields 3.. ; starttime is field 22 */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
               &start) != 1)
        return 0;
    return start;
}

static void forget_self(void) { __atomic_store_n(&g_self.pid, 0, __ATOMIC_RELAXED); }
static void watch_forks(void) { pthread_atfork(NULL, NULL, forget_self); }

static int32_t self_pid(void)
{
    int32_t pid = __atomic_load_n(&g_self.pid, __ATOMIC_ACQUIRE);

    if (pid)
        return pid;
    pthread_once(&g_once, watch_forks);
    pid = (int32_t)getpid();
    g_self.start = start_time(pid);
    __atomic_store_n(&g_self.pid, pid, __ATOMIC_RELEASE);
    return pid;
}

static uint32_t owner_holder(uint64_t w) { return (uint32_t)(w & HOLDER_MASK); }
static int32_t owner_pid(uint64_t w) { return (int32_t)(w >> 32); }

/* The count is the bound ring's (no thread-local lookup on the sync
 * path).  Two threads entering at once may both take the same count: only
 * one of them gets in, and the count only tells a dead process's entry
 * apart from a later one of the same pid. */
static uint64_t new_entry(const struct nmc_port *p, struct nmc_lring *lr)
{
    uint32_t e = (__atomic_load_n(&lr->entries, __ATOMIC_RELAXED) + 1) & ENTRY_MASK;

    __atomic_store_n(&lr->entries, e, __ATOMIC_RELAXED);

    return (uint64_t)(uint32_t)self_pid() << 32 | (uint64_t)e << HOLDER_BITS | (p->hidx + 1);
}

/* Record who is inside (for a judge that finds the pid reused). */
static void mark_owner(struct nmc_kring *kr, uint64_t w)
{
    if (__atomic_load_n(&kr->owner_start, __ATOMIC_RELAXED) != g_self.start)
        __atomic_store_n(&kr->owner_start, g_self.start, __ATOMIC_RELAXED);
    __atomic_store_n(&kr->owner_tag, w, __ATOMIC_RELEASE);
}

static bool owner_dead(const struct nmc_port *p, const struct nmc_kring *kr, uint64_t w)
{
    uint32_t h = owner_holder(w);
    int32_t pid = owner_pid(w);
    uint64_t start;

    if (pid == self_pid())
        return false;                   /* a thread of ours is inside */
    if (h == 0 || h > NMC_MAX_HOLDERS)
        return true;                    /* not a word any owner writes */
    if (h != p->hidx + 1 && !nmc_holder_alive(p->ctl_fd, h - 1))
        return true;                    /* nobody holds its port any more */
    if (pid <= 0 || (kill(pid, 0) < 0 && errno == ESRCH))
        return true;
    if ((start = start_time(pid)) == 0)
        return true;
    if (__atomic_load_n(&kr->owner_tag, __ATOMIC_ACQUIRE) != w)
        return false;                   /* it has not said when it started yet */
    return __atomic_load_n(&kr->owner_start, __ATOMIC_RELAXED) != start;
}

/* The ring is owned: if its owner died inside, take the ring over and let
 * the port's kind repair it (0 if not taken). */
static uint64_t take_from_dead(struct nmc_port *p, struct nmc_lring *lr, int dir, uint64_t me)
{
    struct nmc_kring *kr = lr->kr;
    uint64_t w = __atomic_load_n(&kr->busy, __ATOMIC_ACQUIRE);

    if (w == 0 || !owner_dead(p, kr, w))
        return 0;
    if (!__atomic_compare_exchange_n(&kr->busy, &w, me, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
        return 0;
    mark_owner(kr, me);
    if (p->ops->ring_repair)
        p->ops->ring_repair(p->ctl, p->mem, &p->g, lr->obj, (uint32_t)dir, NMC_REPAIR_DIED_INSIDE);
    return me;
}

/* Enter ring lr: returns the entry (for nmc_ring_leave), or 0 when another
 * live owner is inside (skip the ring). */
uint64_t nmc_ring_enter(struct nmc_port *p, struct nmc_lring *lr, int dir)
{
    uint64_t me = new_entry(p, lr), idle = 0;

    if (__atomic_compare_exchange_n(&lr->kr->busy, &idle, me, false,
                                    __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
        mark_owner(lr->kr, me);
        return me;
    }
    return take_from_dead(p, lr, dir, me);
}

/* A locked read-modify-write whether or not it succeeds: the wakeup after
 * it takes it as the full barrier it needs (nmc_ring_leave_wake). */
void nmc_ring_leave(struct nmc_lring *lr, uint64_t entry)
{
    __atomic_compare_exchange_n(&lr->kr->busy, &entry, 0, false,
                                __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}

/* Leave the ring, then wake the sleepers of kr (if any), into which the
 * sync inside published: the leave above is the barrier between that
 * publish and the sleeper words read after it (wake.c, DESIGN section 8).
 * Were the leave ever a plain store, the wakeup would need its fence back. */
void nmc_ring_leave_wake(struct nmc_port *p, struct nmc_lring *lr, uint64_t entry,
                         struct nmc_kring *kr)
{
    nmc_ring_leave(lr, entry);
    if (kr)
        nmc_wake_left(p, kr);
}

/* Was the ring entered through holder h (and not left)? */
bool nmc_ring_owned_by(const struct nmc_kring *kr, uint32_t h)
{
    uint64_t w = __atomic_load_n(&kr->busy, __ATOMIC_ACQUIRE);

    return w != 0 && owner_holder(w) == h + 1;
}

/* The reaper: holder h is dead (no process holds its open file
 * description), so whoever entered the ring through it is dead too. */
void nmc_ring_clear_dead(struct nmc_kring *kr, uint32_t h)
{
    uint64_t w = __atomic_load_n(&kr->busy, __ATOMIC_ACQUIRE);

    if (w != 0 && owner_holder(w) == h + 1)
        __atomic_compare_exchange_n(&kr->busy, &w, 0, false, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}
