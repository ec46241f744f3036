/*
 * spare.c -- a region whose last port was closed, kept for the next
 * region of the same shape.
 *
 * Making a region claims its memory (claim.c) and removing it frees the
 * pages again: about 4 MiB of tmpfs pages allocated, zeroed and freed for
 * every VALE port opened and closed, most of the cost of that open.  So a
 * close that empties a region of a kind that allows it (ops->spare_regions)
 * keeps the region, with no port and no name, behind a link
 * "spare.<buf_num>.<buf_size>.<k>" (k < NMC_SPARES_PER_SHAPE), and the next
 * new region of that shape is that one, its memory already claimed.
 *
 *  - Kept under the region lock alone (reap.c); taken under the name lock,
 *    then the region lock, as every region is given a name.
 *  - Its ring objects are reused as within a live region: every ring's
 *    generation (kgen) moved when its port went, so a sender that still
 *    maps it finds its lease refused, and no lock that may be held is
 *    reinitialised (vale_lease.c).
 *  - What a port left in its buffers stays there, as netmap leaves it: the
 *    same user's next port may read it.
 *  - Memory kept: at most NMC_SPARES_PER_SHAPE regions of each shape, all
 *    returned by `nmcompat gc`, and by a claim that finds the tmpfs full
 *    (claim.c, nmc_spare_release); the per-open collection (gc.c) leaves
 *    spares alone, and a spare is removed, not kept, when a reap finds it.
 */
#include "nmc_transport.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void spare_link(const char *rundir, const struct nmc_geom *g, uint32_t k, char *out, size_t len)
{
    snprintf(out, len, "%s/spare.%u.%u.%u", rundir, g->buf_num, g->buf_size, k);
}

static void mem_name(uint16_t mem_id, char *out, size_t len)
{
    snprintf(out, len, "mem.%u", (unsigned)mem_id);
}

/* Does `link` name region mem_id? */
static bool names(const char *link, uint16_t mem_id)
{
    char want[32], target[32];
    ssize_t n = readlink(link, target, sizeof(target) - 1);

    mem_name(mem_id, want, sizeof(want));
    return n > 0 && (target[n] = 0, strcmp(target, want) == 0);
}

/* Is r behind one of its shape's spare links? */
bool nmc_spare_linked(const char *rundir, const struct nmc_region *r)
{
    char link[256];

    for (uint32_t k = 0; k < NMC_SPARES_PER_SHAPE; k++) {
        spare_link(rundir, &r->g, k, link, sizeof(link));
        if (names(link, r->mem_id))
            return true;
    }
    return false;
}

/* r is a spare no more: the link naming it goes, if one still does. */
void nmc_spare_unlink(const char *rundir, struct nmc_region *r)
{
    char link[256];

    for (uint32_t k = 0; k < NMC_SPARES_PER_SHAPE; k++) {
        spare_link(rundir, &r->g, k, link, sizeof(link));
        if (names(link, r->mem_id))
            unlink(link);
    }
    r->hdr->spare = 0;
}

/* Keep r, which has no port left, as a spare: its names go, a spare link
 * comes.  False if every spare link of its shape is taken (the caller
 * removes the region).  Under r's region lock. */
bool nmc_spare_keep(const char *rundir, struct nmc_region *r)
{
    char link[256], target[32];

    mem_name(r->mem_id, target, sizeof(target));
    for (uint32_t k = 0; k < NMC_SPARES_PER_SHAPE; k++) {
        spare_link(rundir, &r->g, k, link, sizeof(link));
        if (symlink(target, link) < 0)
            continue;
        nmc_region_unlink_parents(rundir, r);
        r->hdr->nlinks = r->hdr->links_overflow = 0;
        r->hdr->spare = 1;
        return true;
    }
    return false;
}

/* A spare of this shape, returned with its region lock held and no longer
 * a spare; -ENOENT if there is none.  Under the name lock. */
int nmc_spare_take(const char *rundir, uint32_t buf_num, uint32_t buf_size, struct nmc_region *r)
{
    struct nmc_geom shape = { .buf_num = buf_num, .buf_size = buf_size };
    char link[256];

    for (uint32_t k = 0; k < NMC_SPARES_PER_SHAPE; k++) {
        int id;
        spare_link(rundir, &shape, k, link, sizeof(link));
        if ((id = nmc_region_lookup_link(link)) < 0)
            continue;
        if (nmc_region_attach(rundir, (uint16_t)id, r, NMC_LOCK_WAIT) < 0) {
            if (names(link, (uint16_t)id))
                unlink(link);           /* names a region that is gone */
            continue;
        }
        if (r->hdr->spare && r->g.buf_num == buf_num && r->g.buf_size == buf_size &&
            !nmc_region_has_ports(r)) {
            nmc_spare_unlink(rundir, r);
            return 0;
        }
        nmc_region_detach(r);           /* taken, or reaped, meanwhile */
    }
    return -ENOENT;
}

/* Remove every spare of the runtime directory but region `keep` (whose
 * lock the caller may hold): their memory goes back to the tmpfs.  Their
 * region locks are only tried (the caller may hold another region's).
 * Returns how many were removed. */
uint32_t nmc_spare_release(const char *rundir, uint16_t keep)
{
    char link[512];
    struct dirent *de;
    uint32_t removed = 0;
    DIR *d = opendir(rundir);

    if (!d)
        return 0;
    while ((de = readdir(d)) != NULL) {
        struct nmc_region r = { .fd = -1 };
        int id;
        if (strncmp(de->d_name, "spare.", 6) != 0)
            continue;
        snprintf(link, sizeof(link), "%s/%s", rundir, de->d_name);
        if ((id = nmc_region_lookup_link(link)) < 0 || id == keep ||
            nmc_region_attach(rundir, (uint16_t)id, &r, NMC_LOCK_TRY) < 0)
            continue;
        r.ask_all = true;
        if (r.hdr->spare)
            removed += (uint32_t)nmc_region_reap(rundir, &r);     /* no port: removed */
        nmc_region_detach(&r);
    }
    closedir(d);
    return removed;
}
