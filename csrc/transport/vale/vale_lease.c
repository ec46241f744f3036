/*
 * vale_lease.c -- leases on a VALE destination RX ring, so that several
 * senders fill one ring in parallel: reserve under a short robust lock,
 * copy outside it, complete in order.  A sender that died holding a lease
 * (or the lock) is detected and its slots are padded with len = 0 and
 * completed, so the ring never stalls.
 */
#include "nmc_vale.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

/* A new destination RX ring.  The lock is initialised once in the life of
 * the region (the ring object may have been a destination before, and a
 * sender that mapped it then may still be inside the lock: it finds kgen
 * changed); the queue is empty, as nmc_lease_quiesce left it. */
void nmc_lease_init(struct nmc_kring *kr)
{
    pthread_mutexattr_t a;

    if (__atomic_load_n(&kr->lock_ready, __ATOMIC_ACQUIRE) != NMC_LOCK_READY) {
        pthread_mutexattr_init(&a);
        pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
        pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
        pthread_mutex_init(&kr->lease_lock, &a);
        pthread_mutexattr_destroy(&a);
        __atomic_store_n(&kr->lock_ready, NMC_LOCK_READY, __ATOMIC_RELEASE);
    }
    kr->hwlease = kr->lease_first = kr->lease_count = 0;
    kr->lease_init = 1;
}

/* Is the process that took a lease gone?  (pid gone, or its holder's lock
 * byte in its region released: a reused pid does not fool us.)  my_ns: the
 * pid namespace of the caller.  A pid of another namespace (a sender in
 * another container on the same runtime directory) means nothing here, and
 * kill() would call a live sender dead and pad its lease under its copy:
 * then only the holder's byte says, so a sender that dies while its port
 * lives on in another process (fork, SCM_RIGHTS) is found only when that
 * port closes.  A lease that says no namespace is judged by its pid; one
 * that says a namespace, by a judge that cannot tell its own, by the byte. */
static bool owner_dead(const char *rundir, const struct nmc_lease *l, uint32_t my_ns)
{
    bool pid_here = !l->pidns || l->pidns == my_ns;     /* our own unknown: not ours to ask */
    char path[256];
    bool dead;
    int fd;

    if (pid_here && kill(l->pid, 0) < 0 && errno == ESRCH)
        return true;
    if (++((struct nmc_lease *)l)->checks % 16)
        return false;                   /* alive by pid, or not ours to ask: look closer now and then */
    nmc_region_ctl_path(rundir, (uint16_t)l->owner_mem, path, sizeof(path));
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)                         /* gone; or out of reach (we dropped privileges): alive, */
        return errno == ENOENT;         /* unless its pid said otherwise above */
    dead = !nmc_holder_alive(fd, l->owner_h);
    close(fd);
    return dead;
}

static void pad(struct netmap_ring *ring, uint32_t n, uint32_t start, uint32_t end)
{
    for (uint32_t j = start % n; j != end % n; j = nmc_next(j, n)) {
        ring->slot[j].len = 0;
        ring->slot[j].flags = 0;
    }
}

/* Publish the tail over consecutive completed leases.  Lock held. */
static bool advance(struct nmc_kring *kr)
{
    bool moved = false;

    for (uint32_t i = 0; i < NMC_MAX_LEASES && kr->lease_count > 0; i++) {  /* a scribbled count */
        struct nmc_lease *l = &kr->leases[kr->lease_first % NMC_MAX_LEASES];
        if (!l->done)
            break;
        nmc_store_rel(&kr->pipe_tail, l->end);
        kr->lease_first = (kr->lease_first + 1) % NMC_MAX_LEASES;
        kr->lease_count--;
        moved = true;
    }
    return moved;
}

/* Pad and complete the leases of dead senders.  upto_live: stop at the
 * first live sender's lease (a ring found full, looked at again and again
 * while it stays full; the leases behind that one are looked at by the
 * completions, which look at them all).  Lock held.  Returns true if the
 * published tail may have moved. */
static bool repair(struct nmc_kring *kr, struct netmap_ring *ring, const char *rundir, bool upto_live)
{
    const uint32_t my_ns = nmc_vale_pidns();
    uint32_t n = kr->nslots;

    if (n < 2 || n > NMC_MAXSLOTS || kr->lease_count > NMC_MAX_LEASES ||
        kr->lease_first >= NMC_MAX_LEASES || kr->hwlease >= n) {
        kr->lease_count = 0;            /* unusable state: restart from the published tail */
        kr->lease_first = 0;
        kr->hwlease = kr->pipe_tail < n ? kr->pipe_tail : 0;
        return false;
    }
    for (uint32_t i = 0; i < kr->lease_count; i++) {
        struct nmc_lease *l = &kr->leases[(kr->lease_first + i) % NMC_MAX_LEASES];
        if (l->done)
            continue;
        if (!owner_dead(rundir, l, my_ns)) {
            if (upto_live)
                break;
            continue;
        }
        pad(ring, n, l->start, l->end);
        l->done = 1;
    }
    return advance(kr);
}

/* Take the lease lock; *moved: a repair after a sender died inside it
 * published slots (the caller wakes the reader). */
static int lock(struct nmc_kring *kr, struct netmap_ring *ring, const char *rundir, bool *moved)
{
    int err = pthread_mutex_lock(&kr->lease_lock);

    if (err == EOWNERDEAD) {            /* a sender died inside the lock */
        *moved |= repair(kr, ring, rundir, false);
        pthread_mutex_consistent(&kr->lease_lock);
        err = 0;
    }
    return -err;
}

/* Free slots a new lease may take.  Lock held. */
static uint32_t room(const struct nmc_kring *kr, uint32_t n)
{
    uint32_t hwcur = nmc_load_acq(&kr->hwcur);

    if (hwcur >= n || kr->lease_count >= NMC_MAX_LEASES)
        return 0;
    return nmc_dist(kr->hwlease, nmc_prev(hwcur, n), n);
}

/* Reserve up to `want` slots of the ring as it was when the caller mapped
 * it (kgen, and its size nslots, which the caller checked against its
 * mapping); returns how many (0: ring full, or -ESTALE when the ring was
 * retired or reused since, or its kring no longer says nslots) and the
 * lease slot through *id.  The caller copies into [*start, *start + got),
 * which lies in [0, nslots) modulo nslots whatever the shared kring says.
 * A ring found full while leases are out is checked for dead senders'
 * leases (the ring may be full behind one, and then no sender would
 * complete a lease again to look): *moved says whether that published
 * slots, for the caller to wake the reader. */
int nmc_lease_get(struct nmc_kring *kr, struct netmap_ring *ring, const char *rundir, uint32_t kgen,
                  uint32_t nslots, uint32_t want, const struct nmc_lease *who, uint32_t *start,
                  uint32_t *id, bool *moved)
{
    const uint32_t n = nslots;
    uint32_t avail, got, hwlease;
    struct nmc_lease *l;

    *moved = false;
    if (lock(kr, ring, rundir, moved) < 0)
        return 0;
    if (__atomic_load_n(&kr->kgen, __ATOMIC_ACQUIRE) != kgen || !kr->lease_init || kr->nslots != n) {
        pthread_mutex_unlock(&kr->lease_lock);
        return -ESTALE;
    }
    if (kr->hwlease >= n || kr->lease_count >= NMC_MAX_LEASES)
        *moved |= repair(kr, ring, rundir, false);
    avail = room(kr, n);
    if (avail == 0 && kr->lease_count > 0) {
        *moved |= repair(kr, ring, rundir, true);
        avail = room(kr, n);
    }
    hwlease = kr->hwlease;              /* read once: the copy's bounds come from it */
    if (hwlease >= n)
        avail = 0;                      /* scribbled since repair() looked */
    got = want < avail ? want : avail;
    if (got) {
        *id = (kr->lease_first + kr->lease_count) % NMC_MAX_LEASES;
        l = &kr->leases[*id];
        *l = *who;
        l->start = *start = hwlease;
        l->end = kr->hwlease = (hwlease + got) % n;
        l->done = 0;
        kr->lease_count++;
    }
    pthread_mutex_unlock(&kr->lease_lock);
    return (int)got;
}

/* Complete lease `id`, whose slots were used up to `used_end`: the rest is
 * given back if no later lease exists, else padded with len = 0 slots (as
 * netmap).  A ring retired or reused since the lease was taken (kgen: the
 * retirement gave up waiting for this sender) is left alone.  Returns true
 * if the published tail may have moved. */
bool nmc_lease_put(struct nmc_kring *kr, struct netmap_ring *ring, const char *rundir, uint32_t kgen,
                   uint32_t nslots, uint32_t id, uint32_t used_end)
{
    struct nmc_lease *l = &kr->leases[id % NMC_MAX_LEASES];
    const uint32_t n = nslots;
    bool moved = false;

    if (lock(kr, ring, rundir, &moved) < 0)
        return false;
    if (__atomic_load_n(&kr->kgen, __ATOMIC_ACQUIRE) != kgen) {
        pthread_mutex_unlock(&kr->lease_lock);
        return moved;
    }
    if (l->end != used_end % n) {
        if (kr->hwlease == l->end && (kr->lease_first + kr->lease_count - 1) % NMC_MAX_LEASES == id)
            kr->hwlease = l->end = used_end % n;
        else
            pad(ring, n, used_end, l->end);
    }
    l->done = 1;
    moved |= advance(kr);
    if (kr->lease_count && !moved)      /* an older lease is still out: is its sender alive? */
        moved = repair(kr, ring, rundir, false);
    pthread_mutex_unlock(&kr->lease_lock);
    return moved;
}

/* The ring stops being a destination (its port is being freed): no sender
 * that mapped it may take a lease any more (kgen), and the ones holding
 * leases finish their copies (or are found dead and padded) before its
 * buffers can go to anyone else.  Waits at most about a second for a live
 * sender that does not finish; false if one still holds a lease then (its
 * late copy may land in the ring: the caller does not reuse the region). */
bool nmc_lease_quiesce(struct nmc_kring *kr, struct netmap_ring *ring, const char *rundir)
{
    if (__atomic_load_n(&kr->lock_ready, __ATOMIC_ACQUIRE) != NMC_LOCK_READY)
        return true;
    for (int round = 0; round < 100000; round++) {
        bool idle, moved = false;       /* nobody reads a retired ring */
        if (lock(kr, ring, rundir, &moved) < 0)
            return false;
        if (round == 0) {
            __atomic_add_fetch(&kr->kgen, 1, __ATOMIC_RELEASE);
            kr->lease_init = 0;
        }
        repair(kr, ring, rundir, false);
        idle = kr->lease_count == 0;
        pthread_mutex_unlock(&kr->lease_lock);
        if (idle)
            return true;
        sched_yield();
    }
    return false;
}
