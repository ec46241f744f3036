/*
 * vale_dead_lease.c -- a sender dies holding a lease on a VALE port's RX
 * ring, and the ring fills behind that lease before the death can be seen.
 * The next senders that find the ring full must find the dead lease, pad
 * it, publish what was copied after it and wake the reader, so that the
 * receiver gets traffic again.  Two deaths:
 *
 *   - reaped: the lease's pid is gone (its holder, this process's own port,
 *     lives, so the pid alone says it); the reader sleeps in nmc_poll()
 *     meanwhile and must be woken;
 *   - not reaped: the lease's owner is a child holding a port of its own,
 *     killed and left a zombie, so its pid still answers and only its
 *     holder's released lock byte (looked at every 16th check) says it;
 *   - in the lock: the owner also dies holding the lease lock, so the
 *     repair runs on EOWNERDEAD, and it is that repair that must wake the
 *     sleeping reader;
 *   - behind a live lease: leases [live A, dead D, B]; B completes, then A:
 *     all 12 slots must be published (a repair that stopped at the first
 *     live lease left D, and B behind it, unpublished).
 *
 * And, with the argument other_ns (root: it makes a pid namespace), a live
 * one: this process holds a lease while a sender in a new pid namespace,
 * where our pid is nobody's, fills the ring behind it.  That sender must
 * not find the lease dead (kill() said ESRCH there, and it padded the slots
 * of a sender still copying into them).
 *
 *   vale_dead_lease [other_ns]   (rundir: $NMCOMPAT_RUNDIR)
 *
 * Output: "done key=value ..." and exit 0, or "FAIL <why>" and exit 1.
 */
#include "nmc_vale.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <net/netmap_user.h>

#include "vale_open.h"

#define ROUNDS 8

/* What d's rxsync hands out now (then released). */
static uint32_t readable(struct nmc_port *d)
{
    struct netmap_ring *ring;
    uint32_t n;

    if (nmc_rxsync(d) < 0) {
        printf("FAIL rxsync\n");
        exit(1);
    }
    ring = NETMAP_RXRING(nmc_port_nifp(d), 0);
    n = nm_ring_space(ring);
    ring->head = ring->cur = ring->tail;
    return n;
}

/* d's RX ring 0 as a sender maps it (dst_map) */
struct dst {
    struct nmc_region reg;
    struct nmc_kring *kr;
    struct netmap_ring *ring;
    uint32_t kgen, nslots;
};

static void map_dst(const char *rundir, struct nmc_port *d, struct dst *m)
{
    int err;

    m->reg.fd = -1;
    if ((err = nmc_region_attach(rundir, d->mem_id, &m->reg, NMC_NOLOCK)) < 0) {
        printf("FAIL couldn't map the receiver's region: %s\n", strerror(-err));
        exit(1);
    }
    m->kr = &nmc_krings(m->reg.ctl, &m->reg.g)[d->rx[0].obj];
    m->ring = nmc_ring_obj(m->reg.mem, &m->reg.g, d->rx[0].obj);
    m->kgen = __atomic_load_n(&m->kr->kgen, __ATOMIC_ACQUIRE);
    m->nslots = d->rx[0].n;
}

/* Fill d's ring from s behind a lease someone holds: nothing readable, frames dropped. */
static void fill_ring(struct dst *m, struct nmc_port *s, struct nmc_port *d)
{
    struct nmc_port_stats st;
    uint32_t before;

    send_rounds(s, ROUNDS);
    before = readable(d);
    nmc_port_stats(d, &st);
    if (before != 0 || st.rx_dropped == 0 || m->kr->lease_count >= NMC_MAX_LEASES) {
        printf("FAIL the ring did not fill behind the lease: readable %u, dropped %llu, leases %u\n",
               before, (unsigned long long)st.rx_dropped, m->kr->lease_count);
        exit(1);
    }
}

/* Take a lease of 4 slots for `who`, then fill the ring behind it from s. */
static uint32_t fill_behind_lease(struct dst *m, const char *rundir, const struct nmc_lease *who,
                                  struct nmc_port *s, struct nmc_port *d)
{
    uint32_t start, id;
    bool moved;
    int got = nmc_lease_get(m->kr, m->ring, rundir, m->kgen, m->nslots, 4, who, &start, &id, &moved);

    if (got != 4) {
        printf("FAIL couldn't take a lease of 4 slots: %d\n", got);
        exit(1);
    }
    fill_ring(m, s, d);
    return start;
}

/* A child that only sleeps until it is killed: a lease owner to be. */
static pid_t pausing_child(void)
{
    pid_t child = fork();

    if (child == 0) {
        pause();
        _exit(0);
    }
    if (child < 0) {
        printf("FAIL fork: %s\n", strerror(errno));
        exit(1);
    }
    return child;
}

static void close_scenario(struct dst *m, struct nmc_port *s, struct nmc_port *d)
{
    nmc_region_detach(&m->reg);
    nmc_port_close(d);
    nmc_port_close(s);
}

static void check_padded(const struct dst *m, uint32_t start, const char *what)
{
    if (m->ring->slot[start].len != 0) {
        printf("FAIL %s: the dead lease's slot %u was not padded (len %u)\n", what, start,
               m->ring->slot[start].len);
        exit(1);
    }
}

struct sleeper {
    struct nmc_port *d;
    int revents, done;
};

static void *sleep_in_poll(void *arg)
{
    struct sleeper *z = arg;

    z->revents = nmc_poll(z->d, POLLIN, -1);
    __atomic_store_n(&z->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static bool asleep(const struct nmc_kring *kr)
{
    for (uint32_t w = 0; w < NMC_SLEEP_WORDS; w++)
        if (__atomic_load_n(&kr->sleepers[w], __ATOMIC_ACQUIRE))
            return true;
    return false;
}

/* The reader sleeps in nmc_poll() with no timeout; one round from s must
 * wake it (only a wakeup ends its poll). */
static void send_to_sleeper(struct nmc_port *s, struct nmc_port *d, const struct dst *m, const char *what)
{
    struct sleeper z = { .d = d, .revents = -1, .done = 0 };
    pthread_t t;

    pthread_create(&t, NULL, sleep_in_poll, &z);
    for (int i = 0; i < 20000 && !asleep(d->rx[0].kr); i++)
        usleep(1000);
    if (!asleep(d->rx[0].kr)) {
        printf("FAIL %s: the reader never slept in nmc_poll\n", what);
        exit(1);
    }
    send_rounds(s, 1);
    for (int i = 0; i < 60000 && !__atomic_load_n(&z.done, __ATOMIC_ACQUIRE); i++)
        usleep(1000);
    if (!__atomic_load_n(&z.done, __ATOMIC_ACQUIRE)) {
        printf("FAIL %s: the sleeping reader was not woken within 60 s; leases %u, tail %u\n",
               what, m->kr->lease_count, m->kr->pipe_tail);
        exit(1);
    }
    pthread_join(t, NULL);
    if (z.revents <= 0 || !(z.revents & POLLIN)) {
        printf("FAIL %s: nmc_poll returned %d; leases %u, tail %u\n", what, z.revents,
               m->kr->lease_count, m->kr->pipe_tail);
        exit(1);
    }
}

/* The reader, asleep, is woken by the next round from s; the dead lease
 * at `start` was padded; then the scenario ends. */
static void wake_and_close(struct dst *m, struct nmc_port *s, struct nmc_port *d, uint32_t start,
                           const char *what)
{
    send_to_sleeper(s, d, m, what);
    check_padded(m, start, what);
    printf("%s readable=%u\n", what, readable(d));
    close_scenario(m, s, d);
}

/* A scenario with a lease owner that only sleeps: the sender s and the
 * receiver d on switch sw, d's ring mapped as s maps it, and the lease
 * `dead` that names the pausing child (in s's port, as a sender's would). */
struct scene {
    struct nmc_port *s, *d;
    struct dst m;
    pid_t child;
    struct nmc_lease dead;
};

static void open_scene(const char *rundir, const char *sw, struct scene *sc)
{
    char name[32];

    snprintf(name, sizeof(name), "%s:s", sw);
    sc->s = open_port(name);
    snprintf(name, sizeof(name), "%s:d", sw);
    sc->d = open_port(name);
    sc->child = pausing_child();
    sc->dead = (struct nmc_lease){ .owner_mem = sc->s->mem_id, .owner_h = sc->s->hidx, .pid = sc->child };
    map_dst(rundir, sc->d, &sc->m);
}

/* The lease's pid is gone; the reader sleeps in nmc_poll() until the
 * sender that pads the lease wakes it. */
static void reaped(const char *rundir)
{
    struct scene sc;
    uint32_t start;

    open_scene(rundir, "vale6", &sc);
    start = fill_behind_lease(&sc.m, rundir, &sc.dead, sc.s, sc.d);
    kill(sc.child, SIGKILL);
    waitpid(sc.child, NULL, 0);
    wake_and_close(&sc.m, sc.s, sc.d, start, "reaped");
}

/* The lease's owner is a zombie: its pid answers, its holder is gone. */
static void zombie(const char *rundir)
{
    struct nmc_port *s = open_port("vale7:s"), *d = open_port("vale7:d");
    uint32_t ids[2], start, after = 0;
    int fds[2], rounds = 0;
    struct dst m;
    pid_t child;

    if (pipe(fds) < 0 || (child = fork()) < 0) {
        printf("FAIL pipe/fork: %s\n", strerror(errno));
        exit(1);
    }
    if (child == 0) {
        struct nmc_port *c = open_port("vale7:c");
        ids[0] = c->mem_id, ids[1] = c->hidx;
        if (write(fds[1], ids, sizeof(ids)) != sizeof(ids))
            _exit(1);
        pause();
        _exit(0);
    }
    if (read(fds[0], ids, sizeof(ids)) != sizeof(ids)) {
        printf("FAIL the child did not open its port\n");
        exit(1);
    }
    struct nmc_lease who = { .owner_mem = ids[0], .owner_h = ids[1], .pid = child };
    map_dst(rundir, d, &m);
    start = fill_behind_lease(&m, rundir, &who, s, d);
    kill(child, SIGKILL);
    waitid(P_PID, (id_t)child, NULL, WEXITED | WNOWAIT);    /* dead, not reaped */
    while (after == 0 && rounds++ < 64) {
        send_rounds(s, 1);
        after = readable(d);
    }
    if (after == 0) {
        printf("FAIL nothing readable after the zombie's lease, %d rounds: leases %u, tail %u\n",
               rounds, m.kr->lease_count, m.kr->pipe_tail);
        exit(1);
    }
    check_padded(&m, start, "zombie");
    waitpid(child, NULL, 0);
    printf("zombie readable=%u rounds=%d\n", after, rounds);
    close_scenario(&m, s, d);
}

/* The owner takes a lease, the ring fills behind it, then the owner dies
 * inside the lease lock: the next sender's lock call repairs, and wakes. */
static void in_lock(const char *rundir)
{
    struct nmc_port *s = open_port("vale8:s"), *d = open_port("vale8:d");
    int go[2], ready[2];
    uint32_t start;
    struct dst m;
    pid_t child;
    char c = 0;

    map_dst(rundir, d, &m);
    if (pipe(go) < 0 || pipe(ready) < 0 || (child = fork()) < 0) {
        printf("FAIL pipe/fork: %s\n", strerror(errno));
        exit(1);
    }
    if (child == 0) {                   /* the lease, then (told) the lock, and death */
        struct nmc_lease who = { .owner_mem = s->mem_id, .owner_h = s->hidx, .pid = getpid() };
        uint32_t id;
        bool moved;
        if (nmc_lease_get(m.kr, m.ring, rundir, m.kgen, m.nslots, 4, &who, &start, &id, &moved) != 4 ||
            write(ready[1], &start, sizeof(start)) != sizeof(start) || read(go[0], &c, 1) != 1)
            _exit(1);
        pthread_mutex_lock(&m.kr->lease_lock);
        _exit(0);
    }
    if (read(ready[0], &start, sizeof(start)) != sizeof(start)) {
        printf("FAIL in_lock: the child took no lease\n");
        exit(1);
    }
    fill_ring(&m, s, d);                /* behind the child's lease */
    if (write(go[1], &c, 1) != 1 || waitpid(child, NULL, 0) != child) {
        printf("FAIL in_lock: the child did not die in the lock\n");
        exit(1);
    }
    wake_and_close(&m, s, d, start, "in_lock");
}

/* Leases [live A, dead D, live B] of 4 slots each; B completes, then A. */
static void behind_live(const char *rundir)
{
    struct scene sc;
    struct dst *m = &sc.m;
    uint32_t sa, sd, sb, ia, id, ib, got;
    bool moved;

    open_scene(rundir, "vale9", &sc);
    struct nmc_lease live = { .owner_mem = sc.s->mem_id, .owner_h = sc.s->hidx, .pid = getpid() };
    if (nmc_lease_get(m->kr, m->ring, rundir, m->kgen, m->nslots, 4, &live, &sa, &ia, &moved) != 4 ||
        nmc_lease_get(m->kr, m->ring, rundir, m->kgen, m->nslots, 4, &sc.dead, &sd, &id, &moved) != 4 ||
        nmc_lease_get(m->kr, m->ring, rundir, m->kgen, m->nslots, 4, &live, &sb, &ib, &moved) != 4) {
        printf("FAIL behind_live: couldn't take three leases\n");
        exit(1);
    }
    for (uint32_t j = 0; j < 12; j++)
        m->ring->slot[(sa + j) % m->kr->nslots].len = 60;
    kill(sc.child, SIGKILL);
    waitpid(sc.child, NULL, 0);
    nmc_lease_put(m->kr, m->ring, rundir, m->kgen, m->nslots, ib, sb + 4);
    nmc_lease_put(m->kr, m->ring, rundir, m->kgen, m->nslots, ia, sa + 4);
    if ((got = readable(sc.d)) != 12) {
        printf("FAIL behind_live: %u of 12 slots published; leases %u, tail %u, dead lease at %u\n",
               got, m->kr->lease_count, m->kr->pipe_tail, sd);
        exit(1);
    }
    check_padded(m, sd, "behind_live");
    printf("behind_live readable=%u\n", got);
    close_scenario(m, sc.s, sc.d);
}

/* The child: a sender in a new pid namespace (it is that namespace's
 * first process) fills d's ring behind our lease; its exit status says
 * whether it could. */
static void fill_from_other_ns(void)
{
    pid_t g;
    int st;

    if (unshare(CLONE_NEWPID) < 0) {
        printf("SKIP other_ns: unshare(CLONE_NEWPID): %s\n", strerror(errno));
        _exit(77);
    }
    if ((g = fork()) == 0) {
        struct nmc_port *o = open_port("vale10:o");
        send_rounds(o, ROUNDS);
        nmc_port_close(o);
        _exit(0);
    }
    if (g < 0 || waitpid(g, &st, 0) != g) {
        printf("FAIL other_ns: fork in the new namespace: %s\n", strerror(errno));
        _exit(1);
    }
    _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 1);
}

/* A live sender's lease, judged from another pid namespace. */
static void other_ns(const char *rundir)
{
    struct nmc_port *s = open_port("vale10:s"), *d = open_port("vale10:d");
    struct nmc_port_stats st;
    struct nmc_lease me;
    uint32_t start, id;
    struct dst m;
    bool moved;
    pid_t child;
    int status;

    map_dst(rundir, d, &m);
    nmc_vale_lease_self(s, &me);
    if (me.pidns == 0 ||
        nmc_lease_get(m.kr, m.ring, rundir, m.kgen, m.nslots, 4, &me, &start, &id, &moved) != 4) {
        printf("FAIL other_ns: no pid namespace (%u) or no lease\n", me.pidns);
        exit(1);
    }
    for (uint32_t j = 0; j < 4; j++)
        m.ring->slot[(start + j) % m.nslots].len = 60;          /* our copy, under way */
    if ((child = fork()) == 0)
        fill_from_other_ns();
    if (child < 0 || waitpid(child, &status, 0) != child) {
        printf("FAIL other_ns: fork or wait: %s\n", strerror(errno));
        exit(1);
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
        _exit(77);                      /* no pid namespace to be had here: skipped */
    if (!WIFEXITED(status) || WEXITSTATUS(status)) {
        printf("FAIL other_ns: the sender in the new pid namespace failed\n");
        exit(1);
    }
    nmc_port_stats(d, &st);
    if (st.rx_dropped == 0) {
        printf("FAIL other_ns: the ring never filled behind the lease\n");
        exit(1);
    }
    if (m.kr->leases[id].done || m.ring->slot[start].len != 60) {
        printf("FAIL other_ns: a live sender's lease was found dead from another pid namespace "
               "and padded (done %u, len %u)\n", m.kr->leases[id].done, m.ring->slot[start].len);
        exit(1);
    }
    nmc_lease_put(m.kr, m.ring, rundir, m.kgen, m.nslots, id, start + 4);
    printf("other_ns readable=%u\n", readable(d));
    close_scenario(&m, s, d);
}

int main(int argc, char **argv)
{
    const char *rundir = getenv("NMCOMPAT_RUNDIR");

    setvbuf(stdout, NULL, _IONBF, 0);  /* a FAIL line survives the leak report's exit */
    if (!rundir) {
        printf("FAIL NMCOMPAT_RUNDIR is not set\n");
        return 1;
    }
    if (argc > 1 && strcmp(argv[1], "other_ns") == 0) {
        other_ns(rundir);
        printf("done\n");
        return 0;
    }
    reaped(rundir);
    zombie(rundir);
    in_lock(rundir);
    behind_live(rundir);
    printf("done\n");
    return 0;
}
