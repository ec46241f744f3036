/*
 * spare.c -- a region whose last port was closed, kept for the next
 * region of the same shape.
 *
 * Making a region claims its memory (claim.c) and removing it frees the
 * pages again: about 4 MiB of tmpfs pages allocated, zeroed and freed for
 * every VALE port opened and closed, most of the cost of that open.  So a
 * close that empties a region of a kind that allows it (ops->spare_regions)
 * keeps the region, with no port and no name, behind a link "spare.<k>"
 * (k < NMC_SPARES, for the whole runtime directory), and the next new
 * region of that shape (buf_num, buf_size: in its header) is that one, its
 * memory already claimed.
 *
 *  - Kept under the region lock alone (reap.c); taken under the name lock,
 *    then the region lock, as every region is given a name.
 *  - Its ring objects are reused as within a live region: every ring's
 *    generation (kgen) moved when its port went, so a sender that still
 *    maps it has its lease refused, or, holding one, its completion
 *    dropped (vale_lease.c); a port whose senders did not let go in time is
 *    removed, not kept (vale_destroy).  No lock that may be held is
 *    reinitialised.
 *  - Every buffer is free in a kept spare: no port and no holder is left
 *    to own one, so buffers a corrupted ring lost track of (a slot whose
 *    buf_idx was overwritten) come back at the keep.
 *  - What a port left in its buffers stays there, as netmap leaves it: the
 *    same user's next port may read it.
 *  - When every link is taken, a spare of another shape than the region
 *    being kept gives way to it (evict_other_shape): the shapes opened
 *    change (a VALE port's default buffers, a NIC's on its switch port).
 *  - Memory kept: at most NMC_SPARES regions, all returned by `nmcompat gc`
 *    and by an open that finds the tmpfs full (nmc_spare_release).  The
 *    per-open collection (gc.c) leaves a linked spare alone and removes one
 *    that lost its link; a reap that removes a region removes its link.
 */
#include "nmc_transport.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void spare_link(const char *rundir, uint32_t k, char *out, size_t len)
{
    snprintf(out, len, "%s/spare.%u", rundir, k);
}

/* Does the link name region mem_id ("mem.<id>")? */
static bool link_names_region(const char *link, uint16_t mem_id)
{
    return nmc_region_lookup_link(link) == (int)mem_id;
}

/* Is region mem_id behind a spare link? */
bool nmc_spare_linked(const char *rundir, uint16_t mem_id)
{
    char link[256];

    for (uint32_t k = 0; k < NMC_SPARES; k++) {
        spare_link(rundir, k, link, sizeof(link));
        if (link_names_region(link, mem_id))
            return true;
    }
    return false;
}

/* Region r is a spare no more (taken, or being removed): the link naming
 * it goes, if one still does. */
void nmc_spare_unlink(const char *rundir, struct nmc_region *r)
{
    char link[256];

    for (uint32_t k = 0; k < NMC_SPARES; k++) {
        spare_link(rundir, k, link, sizeof(link));
        if (link_names_region(link, r->mem_id))
            unlink(link);
    }
    r->hdr->spare = 0;
}

/* Has region `id` this shape?  Its header, read without a lock (a hint,
 * checked again under the lock); -ENXIO if the region is gone. */
static int shape_is(const char *rundir, int id, uint32_t buf_num, uint32_t buf_size)
{
    struct nmc_region_hdr hdr;
    char path[256];
    bool same;
    int fd;

    nmc_region_ctl_path(rundir, (uint16_t)id, path, sizeof(path));
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
        return errno == ENOENT ? -ENXIO : 0;
    same = pread(fd, &hdr, sizeof(hdr), 0) == (ssize_t)sizeof(hdr) &&
           hdr.g.buf_num == buf_num && hdr.g.buf_size == buf_size;
    close(fd);
    return same;
}

/* Every link is taken: the spare behind `link` gives way if it has
 * another shape than r (the shapes opened change: a VALE port's default
 * buffers, a NIC's on its switch port, an earlier release's default), so
 * that the spares follow what is opened now.  Its lock is only tried (the
 * caller holds r's).  True if the link may be free now. */
static bool evict_other_shape(const char *rundir, const struct nmc_region *r, const char *link)
{
    struct nmc_region o = { .fd = -1 };
    int id = nmc_region_lookup_link(link), shape;
    bool gone = false;

    if (id < 0)
        return true;                    /* freed meanwhile: try it */
    if ((shape = shape_is(rundir, id, r->g.buf_num, r->g.buf_size)) == -ENXIO) {
        if (link_names_region(link, (uint16_t)id))
            unlink(link);               /* names a region that is gone */
        return true;
    }
    if (id == r->mem_id || shape != 0 || nmc_region_attach(rundir, (uint16_t)id, &o, NMC_LOCK_TRY) < 0)
        return false;
    o.ask_all = true;
    if (o.hdr->spare && (o.g.buf_num != r->g.buf_num || o.g.buf_size != r->g.buf_size))
        gone = nmc_region_reap(rundir, &o) > 0;             /* no port: removed, link too */
    nmc_region_detach(&o);
    return gone;
}

/* Keep r, which has no port left, as a spare: its names go, a spare link
 * comes.  False if every spare link is taken by a spare of r's shape (the
 * caller removes the region).  Under r's region lock. */
bool nmc_spare_keep(const char *rundir, struct nmc_region *r)
{
    char link[256], target[32];

    snprintf(target, sizeof(target), "mem.%u", (unsigned)r->mem_id);
    for (uint32_t k = 0; k < 2 * NMC_SPARES; k++) {     /* free links first, then others' */
        spare_link(rundir, k % NMC_SPARES, link, sizeof(link));
        if (k >= NMC_SPARES && !evict_other_shape(rundir, r, link))
            continue;
        if (symlink(target, link) < 0)
            continue;
        nmc_region_unlink_parents(rundir, r);
        r->hdr->nlinks = r->hdr->links_overflow = 0;
        nmc_buf_free_all(r);            /* no owner is left: a lost buffer comes back */
        r->hdr->spare = 1;
        return true;
    }
    return false;
}

/* A spare of this shape, returned with its region lock held and no longer
 * a spare; -ENOENT if there is none.  Under the name lock. */
int nmc_spare_take(const char *rundir, uint32_t buf_num, uint32_t buf_size, struct nmc_region *r)
{
    char link[256];

    for (uint32_t k = 0; k < NMC_SPARES; k++) {
        int id, err;
        spare_link(rundir, k, link, sizeof(link));
        if ((id = nmc_region_lookup_link(link)) < 0)
            continue;
        if ((err = shape_is(rundir, id, buf_num, buf_size)) == 0)
            continue;                   /* another shape */
        if (err > 0)
            err = nmc_region_attach(rundir, (uint16_t)id, r, NMC_LOCK_WAIT);
        if (err == -ENXIO && link_names_region(link, (uint16_t)id))
            unlink(link);               /* names a region that is gone */
        if (err < 0)
            continue;
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
 * lock the caller may hold; 0: none): their memory goes back to the
 * tmpfs.  Their region locks are only tried (the caller may hold another
 * region's).  Returns how many were removed. */
uint32_t nmc_spare_release(const char *rundir, uint16_t keep)
{
    char link[256];
    uint32_t removed = 0;

    for (uint32_t k = 0; k < NMC_SPARES; k++) {
        struct nmc_region r = { .fd = -1 };
        int id;
        spare_link(rundir, k, link, sizeof(link));
        if ((id = nmc_region_lookup_link(link)) < 0 || id == keep ||
            nmc_region_attach(rundir, (uint16_t)id, &r, NMC_LOCK_TRY) < 0)
            continue;
        r.ask_all = true;
        if (r.hdr->spare)
            removed += (uint32_t)nmc_region_reap(rundir, &r);     /* no port: removed */
        nmc_region_detach(&r);
    }
    return removed;
}
