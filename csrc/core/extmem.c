/*
 * extmem.c -- a region in memory the user gives (netmap's @extmem,
 * NETMAP_REQ_OPT_EXTMEM): the user's file becomes the region's memory
 * file, hard-linked as mem.<id> (region.c), so that every process that
 * reaches the region maps it by the region's own name.  Here: what such a
 * region is made of, from the file's size and the pools asked for.
 */
#include "nmc_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

/* Is st one of the runtime directory's own files (a region's memory or
 * control file, a switch's, the name lock)?  Its bytes would then be a
 * second region's memory too.  Under the name lock: no region file is
 * made meanwhile. */
static int in_rundir(const char *rundir, const struct stat *st)
{
    DIR *d = opendir(rundir);
    struct dirent *de;
    struct stat e;
    int found = 0;

    if (!d)
        return -errno;
    while (!found && (de = readdir(d)) != NULL)
        found = fstatat(dirfd(d), de->d_name, &e, AT_SYMLINK_NOFOLLOW) == 0 &&
                e.st_dev == st->st_dev && e.st_ino == st->st_ino;
    closedir(d);
    return found;
}

/* The user's file: a regular file of ours that no one else may write (who
 * may write it may truncate it: a SIGBUS in every process mapping the
 * region), on the runtime directory's filesystem, not one of that
 * directory's (-EBUSY); its size in *size. */
static int check_file(const char *rundir, const char *file, uint64_t *size)
{
    struct stat st, dir;
    int err;

    if (!file || !*file)
        return -EINVAL;
    if (stat(file, &st) < 0)
        return -errno;
    if (!S_ISREG(st.st_mode))
        return -EINVAL;
    if (stat(rundir, &dir) < 0)
        return -errno;
    if (dir.st_dev != st.st_dev)
        return -EXDEV;                  /* a hard link cannot reach it */
    if ((err = in_rundir(rundir, &st)) != 0)
        return err < 0 ? err : -EBUSY;
    if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)))
        return -EACCES;                 /* the owner's, and only the owner truncates it (§13) */
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

static bool buf_size_ok(uint32_t buf_size)
{
    return buf_size >= 64 && buf_size <= 65536 && buf_size % 64 == 0;
}

int64_t nmc_extmem_min_size(const struct nmc_extmem *x)
{
    uint32_t buf_size = x->buf_size ? x->buf_size : NMC_DEF_BUF_SIZE;
    uint32_t ring_num = x->ring_num ? x->ring_num : NMC_DEF_RING_NUM;
    uint32_t buf_num = x->buf_num > 64 ? x->buf_num : 64;
    struct nmc_geom g;
    int err;

    if ((err = check_fixed_pools(x)) < 0)
        return err;
    if (!buf_size_ok(buf_size) || buf_num > (1u << 24))
        return -EINVAL;
    nmc_region_layout(&g, buf_num, buf_size, ring_num);
    return (int64_t)g.memsize;
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
    if (!buf_size_ok(buf_size))
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
