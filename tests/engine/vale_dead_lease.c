/*
 * vale_dead_lease.c -- a sender dies holding a lease on a VALE port's RX
 * ring, and the ring fills behind that lease before the death can be seen
 * (its pid still answers: the process is dying, or not yet reaped).  Once
 * the pid is gone, the next sender that finds the ring full must find the
 * dead lease, pad it and publish what was copied after it, so that the
 * receiver gets traffic again.
 *
 *   vale_dead_lease          (rundir: $NMCOMPAT_RUNDIR)
 *
 * The "dead sender" is a lease taken in this process on behalf of a child
 * that only sleeps; its holder is this process's own port (alive), so the
 * child's pid alone says whether the lease's owner lives.
 *
 * Output: "done key=value ..." and exit 0, or "FAIL <why>" and exit 1.
 */
#include "nmc_vale.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <net/netmap_user.h>

#include "vale_open.h"

#define ROUNDS 8

/* Fill s's TX ring with broadcast frames (d is the only other port) and
 * send it, `rounds` times; returns the frames handed to txsync. */
static unsigned send_rounds(struct nmc_port *s, int rounds)
{
    uint8_t frame[60];
    unsigned sent = 0;

    memset(frame, 0, sizeof(frame));
    memset(frame, 0xff, 6);
    frame[6] = 0x02, frame[11] = 0x01, frame[12] = 0x88, frame[13] = 0xb5;
    for (int r = 0; r < rounds; r++) {
        while (nmc_inject(s, frame, sizeof(frame)) > 0)
            sent++;
        if (nmc_txsync(s) < 0) {
            printf("FAIL txsync: %s\n", strerror(errno));
            exit(1);
        }
    }
    return sent;
}

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

int main(void)
{
    const char *rundir = getenv("NMCOMPAT_RUNDIR");
    struct nmc_port *s = open_port("vale6:s"), *d = open_port("vale6:d");
    struct nmc_region own = { .fd = -1 };
    struct nmc_port_stats st;
    struct nmc_kring *kr;
    struct netmap_ring *ring;
    uint32_t kgen, start, id, obj = d->rx[0].obj, before, after;
    uint64_t drops;
    pid_t child;
    bool moved;
    int got, err;

    setvbuf(stdout, NULL, _IONBF, 0);  /* a FAIL line survives the leak report's exit */
    if (!rundir) {
        printf("FAIL NMCOMPAT_RUNDIR is not set\n");
        return 1;
    }
    if ((child = fork()) == 0) {
        pause();
        _exit(0);
    }
    struct nmc_lease who = { .owner_mem = s->mem_id, .owner_h = s->hidx, .pid = child };
    if ((err = nmc_region_attach(rundir, d->mem_id, &own, NMC_NOLOCK)) < 0) {
        printf("FAIL couldn't map d's region: %s\n", strerror(-err));
        return 1;
    }
    kr = &nmc_krings(own.ctl, &own.g)[obj];
    ring = nmc_ring_obj(own.mem, &own.g, obj);
    kgen = __atomic_load_n(&kr->kgen, __ATOMIC_ACQUIRE);
    if ((got = nmc_lease_get(kr, ring, rundir, kgen, 4, &who, &start, &id, &moved)) != 4) {
        printf("FAIL couldn't take a lease of 4 slots: %d\n", got);
        return 1;
    }
    /* the ring fills behind the child's lease while the child lives */
    send_rounds(s, ROUNDS);
    before = readable(d);
    nmc_port_stats(d, &st);
    drops = st.rx_dropped;
    if (before != 0 || drops == 0 || kr->lease_count >= NMC_MAX_LEASES) {
        printf("FAIL the ring did not fill behind the lease: readable %u, dropped %llu, leases %u\n",
               before, (unsigned long long)drops, kr->lease_count);
        return 1;
    }
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    send_rounds(s, 1);
    after = readable(d);
    if (after == 0) {
        printf("FAIL nothing readable after the lease's owner died: leases %u, hwlease %u, tail %u\n",
               kr->lease_count, kr->hwlease, kr->pipe_tail);
        return 1;
    }
    if (ring->slot[start].len != 0) {
        printf("FAIL the dead lease's slot %u was not padded (len %u)\n", start, ring->slot[start].len);
        return 1;
    }
    printf("done readable=%u dropped=%llu nslots=%u\n", after, (unsigned long long)drops, kr->nslots);
    nmc_region_detach(&own);
    nmc_port_close(d);
    nmc_port_close(s);
    return 0;
}
