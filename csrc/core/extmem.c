/*
 * extmem.c -- a region in memory the user gives (netmap's @extmem,
 * NETMAP_REQ_OPT_EXTMEM): the user's file becomes the region's memory
 * file, hard-linked as mem.<id> (region.c), so that every process that
 * reaches the region maps it by the region's own name.  Here: what such a
 * region is made of, from the file's size and the pools asked for.
 */
#include "nmc_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

/* The user's file: a regular file of ours on the runtime directory's
 * filesystem; its size in *size. */
static int check_file(const char *rundir, const char *file, uint64_t *size)
{
    struct stat st, dir;

    if (!file || !*file)
        return -EINVAL;
    if (stat(file, &st) < 0)
        return -errno;
    if (!S_ISREG(st.st_mode))
        return -EINVAL;
    if (st.st_uid != geteuid())
        return -EACCES;                 /* region files are the owner's (§13) */
    if (stat(rundir, &dir) < 0)
        return -errno;
    if (dir.st_dev != st.st_dev)
        return -EXDEV;                  /* a hard link cannot reach it */
    *size = (uint64_t)st.st_size;
    return 0;
}

/* The pools asked for that the engine's fixed ones cannot hold. */
static int check_fixed_pools(const struct nmc_extmem *x)
{
    uint64_t ring_obj = sizeof(struct netmap_ring) + NMC_MAXSLOTS * sizeof(struct netmap_slot);
    uint64_t if_size = x->if_size ? x->if_size : NMC_IF_UNIT;

    if (x->ring_num > NMC_DEF_RING_NUM || (x->ring_size && x->ring_size > ring_obj))
        return -EINVAL;
    if ((uint64_t)x->if_num * if_size > (uint64_t)NMC_IF_UNITS * NMC_IF_UNIT)
        return -EINVAL;
    return 0;
}

/* The most buffers of buf_size that fit in size bytes after the IF and
 * RING pools of ring_num objects (0 if none). */
static uint32_t bufs_that_fit(uint64_t size, uint32_t buf_size, uint32_t ring_num)
{
    struct nmc_geom g;
    uint64_t n;

    nmc_region_layout(&g, 0, buf_size, ring_num);
    if (size <= g.buf_pool_ofs)
        return 0;
    n = (size - g.buf_pool_ofs) / buf_size;
    n = n > (1u << 24) ? (1u << 24) : n;
    while (n > 0 && (nmc_region_layout(&g, (uint32_t)n, buf_size, ring_num), g.memsize > size))
        n--;                            /* the memory ends on a page */
    return (uint32_t)n;
}

int nmc_extmem_shape(const char *rundir, const struct nmc_extmem *x, struct nmc_shape *out)
{
    uint32_t buf_size = x->buf_size ? x->buf_size : NMC_DEF_BUF_SIZE;
    uint32_t ring_num = x->ring_num ? x->ring_num : NMC_DEF_RING_NUM;
    uint64_t size = 0;
    uint32_t fit;
    int err;

    if ((err = check_file(rundir, x->file, &size)) < 0 || (err = check_fixed_pools(x)) < 0)
        return err;
    if (buf_size < 64 || buf_size > 65536 || buf_size % 64)
        return -EINVAL;
    fit = bufs_that_fit(size, buf_size, ring_num);
    if (x->buf_num > fit || fit < 64 || (x->buf_num && x->buf_num < 64))
        return -EINVAL;                 /* the file cannot hold the pools asked for */
    *out = (struct nmc_shape){ .buf_num = x->buf_num ? x->buf_num : fit, .buf_size = buf_size,
                               .ring_num = ring_num, .extmem = x->file };
    return 0;
}

bool nmc_extmem_is(const char *rundir, const struct nmc_region *r, const struct nmc_extmem *x)
{
    struct stat a, b;
    char path[256];

    nmc_region_path(rundir, r->mem_id, path, sizeof(path));
    return r->hdr->extmem && x->file && stat(x->file, &a) == 0 && stat(path, &b) == 0 &&
           a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* The name a region built in x's file is linked to: the file's identity. */
int nmc_extmem_key(const struct nmc_extmem *x, char *out, size_t len)
{
    struct stat st;

    if (!x->file || !*x->file)
        return -EINVAL;
    if (stat(x->file, &st) < 0)
        return -errno;
    snprintf(out, len, "extmem.%llx.%llx", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
    return 0;
}
