/*
 * vale_stalled.c -- a VALE port is closed while a live sender holds a
 * lease on its RX ring and does not let go (stopped, or in a debugger):
 * the close waits about a second, then gives up; the port's region must
 * then not be kept for reuse (spare.c), and the sender's late completion
 * must be refused (the ring's kgen moved), so that its late copy can reach
 * no port opened later.
 *
 *   vale_stalled          (rundir: $NMCOMPAT_RUNDIR)
 *
 * Output: "done key=value ..." and exit 0, or "FAIL <why>" and exit 1.
 */
#include "nmc_vale.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <net/netmap_user.h>

#include "vale_open.h"

static int spare_links(const char *rundir)
{
    struct dirent *de;
    DIR *d = opendir(rundir);
    int n = 0;

    while (d && (de = readdir(d)) != NULL)
        n += strncmp(de->d_name, "spare.", 6) == 0;
    if (d)
        closedir(d);
    return n;
}

int main(void)
{
    const char *rundir = getenv("NMCOMPAT_RUNDIR");
    struct nmc_port *s = open_port("vale5:s"), *d = open_port("vale5:d"), *e;
    struct nmc_lease who = { .owner_mem = s->mem_id, .owner_h = s->hidx, .pid = getpid() };
    struct nmc_region own = { .fd = -1 };
    struct nmc_kring *kr;
    struct netmap_ring *ring;
    uint32_t kgen, start, id, obj = d->rx[0].obj, nslots = d->rx[0].n;
    bool moved;
    int got, err;

    if (!rundir) {
        printf("FAIL NMCOMPAT_RUNDIR is not set\n");
        return 1;
    }
    /* the sender's own mapping of d's region, as dst_map makes it */
    if ((err = nmc_region_attach(rundir, d->mem_id, &own, NMC_NOLOCK)) < 0) {
        printf("FAIL couldn't map d's region: %s\n", strerror(-err));
        return 1;
    }
    kr = &nmc_krings(own.ctl, &own.g)[obj];
    ring = nmc_ring_obj(own.mem, &own.g, obj);
    kgen = __atomic_load_n(&kr->kgen, __ATOMIC_ACQUIRE);
    if ((got = nmc_lease_get(kr, ring, rundir, kgen, nslots, 4, &who, &start, &id, &moved)) != 4) {
        printf("FAIL couldn't take a lease of 4 slots: %d\n", got);
        return 1;
    }
    nmc_port_close(d);                  /* gives up waiting for the lease */
    if (spare_links(rundir) != 0) {
        printf("FAIL the region of a port whose sender did not let go was kept for reuse\n");
        return 1;
    }
    e = open_port("vale5:e");           /* a new region: nothing of d's */
    if (e->mem_id == own.mem_id) {
        printf("FAIL vale5:e was given d's region %u\n", (unsigned)own.mem_id);
        return 1;
    }
    if (nmc_lease_put(kr, ring, rundir, kgen, nslots, id, start + 4)) {
        printf("FAIL the late completion was taken\n");
        return 1;
    }
    if (kr->lease_count != 1) {
        printf("FAIL the late completion changed the lease queue (%u)\n", kr->lease_count);
        return 1;
    }
    printf("done obj=%u kgen=%u\n", obj, kgen);
    nmc_region_detach(&own);
    nmc_port_close(e);
    nmc_port_close(s);                  /* the sender, alive all along */
    return 0;
}
