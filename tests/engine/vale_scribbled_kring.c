/*
 * vale_scribbled_kring.c -- another process of the same user scribbles the
 * kring of a VALE port's RX ring (its slot count and lease position, in the
 * shared region file): a sender's copy must stay inside the ring's slots
 * as the sender mapped them.  The ring object has room for NMC_MAXSLOTS
 * slots; those past the ring's own carry a canary that no send may touch.
 *
 * And a scribble between a lease and its completion must not leave the
 * lease open (the ring would stall behind it, its sender alive).
 *
 *   vale_scribbled_kring          (rundir: $NMCOMPAT_RUNDIR)
 *
 * Output: "done ..." and exit 0, or "FAIL <why>" and exit 1.
 */
#include "nmc_vale.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <net/netmap_user.h>

#include "vale_open.h"

#define CANARY 0xdeadbeefu

int main(void)
{
    struct nmc_port *s = open_port("vale6:s"), *d = open_port("vale6:d");
    struct nmc_region own = { .fd = -1 };
    uint32_t obj = d->rx[0].obj, n = d->rx[0].n, touched = 0, saved_nslots, saved_hwlease;
    struct netmap_ring *ring;
    struct nmc_kring *kr;
    int err;

    send_rounds(s, 1);                      /* s maps d's region and delivers */
    if (nmc_rxsync(d) < 0 || nm_ring_space(NETMAP_RXRING(nmc_port_nifp(d), 0)) == 0) {
        printf("FAIL nothing arrived before the scribble\n");
        return 1;
    }
    if ((err = nmc_region_attach(getenv("NMCOMPAT_RUNDIR"), d->mem_id, &own, NMC_NOLOCK)) < 0) {
        printf("FAIL couldn't map d's region: %s\n", strerror(-err));
        return 1;
    }
    kr = &nmc_krings(own.ctl, &own.g)[obj];
    ring = nmc_ring_obj(own.mem, &own.g, obj);
    for (uint32_t k = n; k < NMC_MAXSLOTS; k++)
        ring->slot[k] = (struct netmap_slot){ .buf_idx = CANARY, .len = 0xabcd, .flags = 0x5a5a };
    saved_nslots = kr->nslots;
    saved_hwlease = kr->hwlease;
    kr->nslots = NMC_MAXSLOTS;          /* the scribble: a bigger ring, a lease position past ours */
    kr->hwlease = NMC_MAXSLOTS - 100;
    send_rounds(s, 1);
    send_rounds(s, 1);
    for (uint32_t k = n; k < NMC_MAXSLOTS; k++)
        touched += ring->slot[k].buf_idx != CANARY || ring->slot[k].len != 0xabcd ||
                   ring->slot[k].flags != 0x5a5a;
    kr->nslots = saved_nslots;          /* so that the close can reclaim the port */
    kr->hwlease = saved_hwlease;
    if (touched) {
        printf("FAIL a send wrote %u slots past the ring's %u\n", touched, n);
        return 1;
    }
    {
        struct nmc_lease who = { .owner_mem = s->mem_id, .owner_h = s->hidx, .pid = getpid() };
        uint32_t start, id, kgen = __atomic_load_n(&kr->kgen, __ATOMIC_ACQUIRE);
        bool moved;
        int got;
        if (nmc_rxsync(d) < 0) {        /* release what arrived: room for the lease */
            printf("FAIL rxsync\n");
            return 1;
        }
        NETMAP_RXRING(nmc_port_nifp(d), 0)->head = NETMAP_RXRING(nmc_port_nifp(d), 0)->tail;
        NETMAP_RXRING(nmc_port_nifp(d), 0)->cur = NETMAP_RXRING(nmc_port_nifp(d), 0)->tail;
        nmc_rxsync(d);
        if ((got = nmc_lease_get(kr, ring, getenv("NMCOMPAT_RUNDIR"), kgen, n, 4, &who, &start, &id,
                                 &moved)) != 4) {
            printf("FAIL couldn't take a lease of 4 slots: %d\n", got);
            return 1;
        }
        kr->nslots = NMC_MAXSLOTS;      /* scribbled while the lease is out */
        nmc_lease_put(kr, ring, getenv("NMCOMPAT_RUNDIR"), kgen, n, id, (start + 4) % n);
        kr->nslots = saved_nslots;
        if (kr->lease_count != 0) {
            printf("FAIL the lease stayed open: %u out\n", kr->lease_count);
            return 1;
        }
    }
    nmc_region_detach(&own);
    nmc_port_close(s);
    nmc_port_close(d);
    printf("done slots=%u\n", n);
    return 0;
}
