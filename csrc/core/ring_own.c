/*
 * ring_own.c -- who is inside a ring.  Every write of a kring's owner
 * state is here: entering a ring, leaving it, taking it over from an owner
 * that died inside, and clearing it for the reaper, each a
 * compare-and-swap, and the bias (below), by plain stores of its holder.
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
 *
 * The bias.  A compare-and-swap at every entry and exit waits, each time,
 * for the stores before it (the frame just written, the index just
 * published) to own their lines: between two cores that is most of a
 * one-packet sync.  So the first thread that enters a ring uncontended, in
 * a process registered for the asymmetric barrier (membar.c), keeps its
 * owner word in kr->busy and is given the bias (kr->bias = that word): from
 * then on it enters by storing kr->bias_in = 1 and checking that the bias
 * is still its own, and leaves by storing 0, with no locked instruction.
 * Anyone else who finds the ring held by a bias revokes it: clears
 * kr->bias, makes every registered thread pass a full barrier
 * (membarrier), and then either sees bias_in set (the holder is inside:
 * wait for it to leave, or judge it dead as above) or the holder will see
 * the bias gone at its next entry and take the locked path.  A ring whose
 * bias was revoked once is never biased again (bias_off) until its object
 * is reused: two users of one ring take turns by compare-and-swap, as
 * before.  The bias is per thread (pthread_self) and per process (a count
 * of forks: a forked child copied the holder's memory): another thread of
 * the holder, or a forked child, revokes.
 */
#include "nmc_transport.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define HOLDER_BITS  9u
#define HOLDER_MASK  ((1u << HOLDER_BITS) - 1)
#define ENTRY_MASK   ((1u << (32 - HOLDER_BITS)) - 1)

/* This process: its pid and start time, reset in a forked child, and the
 * forks since the engine was loaded (a child's count differs from its
 * parent's even when a new pid namespace gives it the same pid). */
static struct { int32_t pid; uint32_t forks; uint64_t start; } g_self;
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

static void forget_self(void)
{
    __atomic_store_n(&g_self.pid, 0, __ATOMIC_RELAXED);
    __atomic_add_fetch(&g_self.forks, 1, __ATOMIC_RELAXED);
}
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
 * path), drawn atomically: two threads of one port never draw the same
 * word at once, so a word in busy is one entry's (or the bias's), which
 * the bias's rules below rely on.  It tells a dead process's entry apart
 * from a later one of the same pid.  Only the compare-and-swap path draws
 * (it pays a locked instruction anyway, and the second one finds the
 * store buffer drained by the first). */
static uint64_t draw_entry(const struct nmc_port *p, struct nmc_lring *lr)
{
    uint32_t e = __atomic_add_fetch(&lr->entries, 1, __ATOMIC_RELAXED) & ENTRY_MASK;

    return (uint64_t)(uint32_t)self_pid() << 32 | (uint64_t)e << HOLDER_BITS | (p->hidx + 1);
}

/* A word for a new entry that is none of the words the ring's bias used
 * (its holder's, ours revoked, the last one revoked there): the count
 * comes round again after 2^23 entries, and a word equal to a bias word
 * would be taken for that bias's (stale_bias, the bias_prev path). */
static uint64_t new_entry(const struct nmc_port *p, struct nmc_lring *lr)
{
    uint64_t me = draw_entry(p, lr);

    while (me == __atomic_load_n(&lr->bias_word, __ATOMIC_RELAXED) ||
           me == __atomic_load_n(&lr->bias_prev, __ATOMIC_RELAXED) ||
           me == __atomic_load_n(&lr->kr->bias_gone, __ATOMIC_RELAXED) ||
           me == __atomic_load_n(&lr->kr->bias, __ATOMIC_RELAXED))
        me = draw_entry(p, lr);
    return me;
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

/* The ring was just taken from w, a dead owner: if w held the bias, or
 * held it until a revoker without membarrier cleared it, the bias goes
 * with it. */
static void drop_dead_bias(struct nmc_kring *kr, uint64_t w)
{
    uint64_t b = w;

    if (__atomic_compare_exchange_n(&kr->bias, &b, 0, false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED) ||
        (b == 0 && __atomic_load_n(&kr->bias_off, __ATOMIC_RELAXED))) {
        __atomic_store_n(&kr->bias_off, 1, __ATOMIC_RELAXED);
        __atomic_store_n(&kr->bias_in, 0, __ATOMIC_RELEASE);
    }
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
    drop_dead_bias(kr, w);
    if (p->ops->ring_repair)
        p->ops->ring_repair(p->ctl, p->mem, &p->g, lr->obj, (uint32_t)dir, NMC_REPAIR_DIED_INSIDE);
    return me;
}

/* The bound ring's bias words (process-local, but two threads of the
 * process may use one port). */
static inline uint64_t word(const uint64_t *w) { return __atomic_load_n(w, __ATOMIC_RELAXED); }
static inline void set_word(uint64_t *w, uint64_t v) { __atomic_store_n(w, v, __ATOMIC_RELAXED); }

/* Was lr's bias taken in this process (not in the parent it was forked
 * from, whose memory it copied)? */
static inline bool mine_here(const struct nmc_lring *lr)
{
    return lr->bias_forks == __atomic_load_n(&g_self.forks, __ATOMIC_RELAXED);
}

/* The fast entry: this thread holds the ring's bias.  bias_in is stored
 * before the bias is read again, with only the compiler held back: a
 * revoker's membarrier orders the two (see the top of this file). */
static inline bool enter_biased(struct nmc_lring *lr, uint64_t b)
{
    struct nmc_kring *kr = lr->kr;

    __atomic_store_n(&kr->bias_in, 1, __ATOMIC_RELAXED);
    __asm__ __volatile__("" ::: "memory");
    if (__atomic_load_n(&kr->bias, __ATOMIC_ACQUIRE) == b)
        return true;
    __atomic_store_n(&kr->bias_in, 0, __ATOMIC_RELEASE);    /* revoked: never ours again */
    set_word(&lr->bias_prev, b);
    set_word(&lr->bias_word, 0);
    return false;
}

/* Entered by compare-and-swap with word me: keep it as the bias when the
 * ring has none and never had one revoked. */
static void maybe_take_bias(struct nmc_lring *lr, uint64_t me)
{
    struct nmc_kring *kr = lr->kr;

    if (__atomic_load_n(&kr->bias_off, __ATOMIC_RELAXED) || __atomic_load_n(&kr->bias, __ATOMIC_RELAXED) ||
        !nmc_membar_ready())
        return;
    __atomic_store_n(&kr->bias_in, 1, __ATOMIC_RELAXED);    /* before anyone can see the bias */
    __atomic_store_n(&lr->bias_thread, pthread_self(), __ATOMIC_RELAXED);
    lr->bias_forks = __atomic_load_n(&g_self.forks, __ATOMIC_RELAXED);
    set_word(&lr->bias_word, me);       /* before the bias: a signal handler's entry is nested */
    __atomic_store_n(&kr->bias, me, __ATOMIC_RELEASE);
}

/* kr->busy holds w, the word of a bias that is revoked (bias_gone) and
 * whose holder is outside: nobody can enter by it any more, so the ring is
 * free for a compare-and-swap against it. */
static bool stale_bias(const struct nmc_kring *kr, uint64_t w)
{
    return w != 0 && __atomic_load_n(&kr->bias_gone, __ATOMIC_ACQUIRE) == w &&
           __atomic_load_n(&kr->bias, __ATOMIC_ACQUIRE) != w &&
           !__atomic_load_n(&kr->bias_in, __ATOMIC_ACQUIRE);
}

enum revoked { REVOKE_FAILED, REVOKED_OUTSIDE, REVOKED_DIED_INSIDE };

/* Revoke the bias w: after the barrier its holder either shows bias_in
 * (inside) or will find the bias gone.  Wait for it to leave, a bounded
 * number of rounds, or until it is judged dead inside (its bias_in stays
 * set until the caller has the ring).  Without the barrier (membarrier refused to this
 * process) the bias stays revoked but nobody may judge the holder out: it
 * takes its ring back itself at its next entry (bias_prev), or gives it up
 * when it closes, or the reaper clears it when it dies. */
static enum revoked revoke_bias(struct nmc_port *p, struct nmc_kring *kr, uint64_t w)
{
    uint64_t want = w;

    __atomic_store_n(&kr->bias_off, 1, __ATOMIC_RELAXED);
    if (!__atomic_compare_exchange_n(&kr->bias, &want, 0, false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
        return REVOKE_FAILED;           /* another bias than the one judged: look again later */
    if (nmc_membar_global() < 0) {
        nmc_membar_lost();              /* and take no bias of our own from now on */
        return REVOKE_FAILED;
    }
    __atomic_store_n(&kr->bias_gone, w, __ATOMIC_RELEASE);
    for (uint32_t i = 1; __atomic_load_n(&kr->bias_in, __ATOMIC_ACQUIRE); i++) {
        if (i % 1024 == 0) {
            if (owner_dead(p, kr, w))
                return REVOKED_DIED_INSIDE;     /* bias_in stays set until the ring is ours */
            if (i >= 64 * 1024)
                return REVOKE_FAILED;   /* still inside: skip the ring this time */
            sched_yield();
        }
        nmc_cpu_relax();
    }
    return REVOKED_OUTSIDE;
}

/* The ring is owned by w, a bias (of another thread or process, or ours
 * from another thread) or a revoked bias whose holder is out: revoke it if
 * needed, then take the ring by compare-and-swap against w. */
static uint64_t take_from_bias(struct nmc_port *p, struct nmc_lring *lr, int dir, uint64_t w,
                               uint64_t me)
{
    struct nmc_kring *kr = lr->kr;
    enum revoked how = REVOKED_OUTSIDE;

    if (__atomic_load_n(&kr->bias, __ATOMIC_ACQUIRE) == w)
        how = revoke_bias(p, kr, w);
    else if (!stale_bias(kr, w))
        how = REVOKE_FAILED;
    if (how == REVOKE_FAILED ||
        !__atomic_compare_exchange_n(&kr->busy, &w, me, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
        return 0;
    mark_owner(kr, me);
    if (how == REVOKED_DIED_INSIDE) {   /* until now, nobody else could judge it out */
        __atomic_store_n(&kr->bias_in, 0, __ATOMIC_RELEASE);
        if (p->ops->ring_repair)
            p->ops->ring_repair(p->ctl, p->mem, &p->g, lr->obj, (uint32_t)dir, NMC_REPAIR_DIED_INSIDE);
    }
    return me;
}

/* Enter ring lr: returns the entry (for nmc_ring_leave), or 0 when another
 * live owner is inside (skip the ring). */
uint64_t nmc_ring_enter(struct nmc_port *p, struct nmc_lring *lr, int dir)
{
    uint64_t b = word(&lr->bias_word), me, w = 0;

    if (b && __atomic_load_n(&lr->bias_thread, __ATOMIC_RELAXED) == pthread_self() && mine_here(lr)) {
        if (__atomic_load_n(&lr->kr->bias_in, __ATOMIC_RELAXED))
            return 0;                   /* we are inside already (a signal handler): skip */
        if (enter_biased(lr, b))
            return b;
    }
    me = new_entry(p, lr);
    if (__atomic_compare_exchange_n(&lr->kr->busy, &w, me, false,
                                    __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
        mark_owner(lr->kr, me);
        maybe_take_bias(lr, me);
        return me;
    }
    if (w == me)
        return 0;                       /* another thread of ours drew the same word: it is inside */
    if (w == word(&lr->bias_prev) && mine_here(lr) &&  /* our own revoked bias: nobody is in by it */
        __atomic_compare_exchange_n(&lr->kr->busy, &w, me, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
        set_word(&lr->bias_prev, 0);
        mark_owner(lr->kr, me);
        return me;
    }
    if (w && (__atomic_load_n(&lr->kr->bias, __ATOMIC_ACQUIRE) == w || stale_bias(lr->kr, w)))
        return take_from_bias(p, lr, dir, w, me);
    return take_from_dead(p, lr, dir, me);
}

/* Leave the ring.  true: by a locked read-modify-write, a full barrier
 * (succeeded or not); false: by bias, a plain store. */
bool nmc_ring_leave(struct nmc_lring *lr, uint64_t entry)
{
    if (entry == word(&lr->bias_word)) {
        __atomic_store_n(&lr->kr->bias_in, 0, __ATOMIC_RELEASE);
        return false;
    }
    __atomic_compare_exchange_n(&lr->kr->busy, &entry, 0, false,
                                __ATOMIC_RELEASE, __ATOMIC_RELAXED);
    return true;
}

/* Leave the ring, then wake the sleepers of kr (if any), into which the
 * sync inside published.  After a locked leave, that leave is the barrier
 * between the publish and the sleeper words read after it; after a biased
 * one, a sleeper's membarrier is (wake.c, DESIGN section 8). */
void nmc_ring_leave_wake(struct nmc_port *p, struct nmc_lring *lr, uint64_t entry,
                         struct nmc_kring *kr)
{
    bool fenced = nmc_ring_leave(lr, entry);

    if (kr)
        nmc_wake_left(p, kr, fenced);
}

/* This process stops using lr (its port closes): give up a bias it holds,
 * so that the next user takes the ring without a revocation. */
void nmc_ring_unbias(struct nmc_lring *lr)
{
    uint64_t b = word(&lr->bias_word) ? word(&lr->bias_word) : word(&lr->bias_prev), w = b;

    if (!b || !mine_here(lr))
        return;
    set_word(&lr->bias_word, 0);
    set_word(&lr->bias_prev, 0);
    __atomic_compare_exchange_n(&lr->kr->bias, &w, 0, false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
    __atomic_compare_exchange_n(&lr->kr->busy, &b, 0, false, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}

/* Was the ring entered through holder h (and not left)?  A bias held
 * through h is inside only while its bias_in is set. */
bool nmc_ring_owned_by(const struct nmc_kring *kr, uint32_t h)
{
    uint64_t w = __atomic_load_n(&kr->busy, __ATOMIC_ACQUIRE);

    if (w == 0 || owner_holder(w) != h + 1)
        return false;
    if (w == __atomic_load_n(&kr->bias, __ATOMIC_ACQUIRE) || w == kr->bias_gone)
        return __atomic_load_n(&kr->bias_in, __ATOMIC_ACQUIRE) != 0;
    return true;
}

/* The reaper: holder h is dead (no process holds its open file
 * description), so whoever entered the ring through it, or holds its bias,
 * is dead too. */
void nmc_ring_clear_dead(struct nmc_kring *kr, uint32_t h)
{
    uint64_t w = __atomic_load_n(&kr->busy, __ATOMIC_ACQUIRE), b = w;

    if (w == 0 || owner_holder(w) != h + 1)
        return;
    if (__atomic_compare_exchange_n(&kr->bias, &b, 0, false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED) ||
        w == kr->bias_gone)
        __atomic_store_n(&kr->bias_in, 0, __ATOMIC_RELEASE);
    __atomic_compare_exchange_n(&kr->busy, &w, 0, false, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}
