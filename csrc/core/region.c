/*
 * region.c -- the runtime directory and shared-memory regions (mem_id).
 */
#include "nmc_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#define TMPFS_MAGIC_    0x01021994
#define HUGETLBFS_MAGIC_ 0x958458f6

static uint64_t round_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

int nmc_rundir_resolve(const char *req, char *out, size_t len)
{
    const char *env = getenv("NMCOMPAT_RUNDIR");
    int n;

    if (req && *req)
        n = snprintf(out, len, "%s", req);
    else if (env && *env)
        n = snprintf(out, len, "%s", env);
    else
        n = snprintf(out, len, "/dev/shm/nmcompat-%u", (unsigned)geteuid());
    if (n < 0 || (size_t)n >= len)
        return -ENAMETOOLONG;
    return 0;
}

/* Create the directory if needed, check that it is ours, private and on
 * tmpfs (AF_XDP cannot register a UMEM backed by a disk file), then take
 * the control lock. */
int nmc_rundir_lock(const char *rundir)
{
    char path[256];
    struct statfs sfs;
    struct stat st;
    int fd;

    if (mkdir(rundir, 0700) < 0 && errno != EEXIST)
        return -errno;
    if (lstat(rundir, &st) < 0)
        return -errno;
    if (!S_ISDIR(st.st_mode))
        return -ENOTDIR;
    if (st.st_uid != geteuid() || (st.st_mode & 0077))
        return -EACCES;
    if (statfs(rundir, &sfs) < 0)
        return -errno;
    if ((unsigned)sfs.f_type != TMPFS_MAGIC_ && (unsigned)sfs.f_type != HUGETLBFS_MAGIC_)
        return -EXDEV;
    snprintf(path, sizeof(path), "%s/lock", rundir);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -errno;
    if (flock(fd, LOCK_EX) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

void nmc_rundir_unlock(int lockfd)
{
    if (lockfd >= 0)
        close(lockfd);          /* releases the flock */
}

void nmc_region_path(const char *rundir, uint16_t mem_id, char *out, size_t len)
{
    snprintf(out, len, "%s/mem.%u", rundir, (unsigned)mem_id);
}

/* The layout is a pure function of the parameters: creation computes it,
 * attach recomputes it and refuses a header that disagrees. */
static void layout(struct nmc_geom *g, uint32_t buf_num, uint32_t buf_size)
{
    uint64_t o = NMC_PAGE;              /* header page */

    memset(g, 0, sizeof(*g));
    g->if_units = NMC_IF_UNITS;
    g->ring_num = NMC_DEF_RING_NUM;
    g->ring_size = (uint32_t)round_up(sizeof(struct netmap_ring) +
                                      NMC_MAXSLOTS * sizeof(struct netmap_slot), NMC_PAGE);
    g->buf_num = buf_num;
    g->buf_size = buf_size;
    g->holders_ofs = o;
    o += round_up(NMC_MAX_HOLDERS * sizeof(struct nmc_holder), NMC_PAGE);
    g->ports_ofs = o;
    o += round_up(NMC_MAX_PORTS * sizeof(struct nmc_port_rec), NMC_PAGE);
    g->krings_ofs = o;
    o += round_up((uint64_t)g->ring_num * sizeof(struct nmc_kring), NMC_PAGE);
    g->if_map_ofs = o;
    o += round_up(g->if_units / 8, 64);
    g->ring_map_ofs = o;
    o += round_up(g->ring_num / 8 + 8, 64);
    g->buf_map_ofs = o;
    o += round_up(((uint64_t)buf_num + 63) / 64 * 8, 64);
    g->ctl_size = round_up(o, NMC_PAGE);
    g->if_pool_ofs = 0;
    g->ring_pool_ofs = round_up((uint64_t)g->if_units * NMC_IF_UNIT, NMC_PAGE);
    /* one spare page before the buffers: an AF_XDP UMEM starts there, so
     * that a fill address of (buffer - 256) puts received data exactly at
     * the start of the netmap buffer */
    g->buf_pool_ofs = g->ring_pool_ofs + (uint64_t)g->ring_num * g->ring_size + NMC_PAGE;
    g->memsize = round_up(g->buf_pool_ofs + (uint64_t)buf_num * buf_size, NMC_PAGE);
    g->file_size = g->ctl_size + g->memsize;
}

static int map_region(int fd, const struct nmc_geom *g, struct nmc_region *r)
{
    void *m = mmap(NULL, g->file_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

    if (m == MAP_FAILED)
        return -errno;
    r->fd = fd;
    r->map = m;
    r->map_len = g->file_size;
    r->g = *g;
    r->hdr = (struct nmc_region_hdr *)r->map;
    return 0;
}

static int free_mem_id(const char *rundir)
{
    char path[256];
    struct stat st;

    for (unsigned id = 2; id < 65536; id++) {
        nmc_region_path(rundir, (uint16_t)id, path, sizeof(path));
        if (lstat(path, &st) < 0 && errno == ENOENT)
            return (int)id;
    }
    return -ENOSPC;
}

int nmc_region_create(const char *rundir, uint32_t buf_num, uint32_t buf_size,
                      struct nmc_region *r)
{
    struct nmc_geom g;
    char path[256];
    uint64_t *bufmap;
    int id, fd, err;

    if (buf_size < 64 || buf_size > 65536 || buf_size % 64)
        return -EINVAL;
    if (buf_num < 64 || buf_num > (1u << 24))
        return -EINVAL;
    id = free_mem_id(rundir);
    if (id < 0)
        return id;
    layout(&g, buf_num, buf_size);
    nmc_region_path(rundir, (uint16_t)id, path, sizeof(path));
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -errno;
    if (ftruncate(fd, (off_t)g.file_size) < 0 || (err = map_region(fd, &g, r)) < 0) {
        err = errno ? -errno : -ENOMEM;
        unlink(path);
        close(fd);
        return err;
    }
    r->mem_id = (uint16_t)id;
    bufmap = (uint64_t *)(r->map + g.buf_map_ofs);
    bufmap[0] |= 3;                      /* buffers 0 and 1 are reserved */
    r->hdr->g = g;
    r->hdr->mem_id = (uint32_t)id;
    r->hdr->version = NMC_REGION_VERSION;
    r->hdr->buf_hint = 2;
    r->hdr->buf_free = buf_num - 2;
    nmc_store_rel(&r->hdr->magic, NMC_REGION_MAGIC);
    return 0;
}

int nmc_region_attach(const char *rundir, uint16_t mem_id, struct nmc_region *r)
{
    struct nmc_region_hdr hdr;
    struct nmc_geom g;
    char path[256];
    struct stat st;
    int fd, err;

    nmc_region_path(rundir, mem_id, path, sizeof(path));
    fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? -ENXIO : -errno;
    err = -EACCES;
    if (fstat(fd, &st) < 0 || st.st_uid != geteuid() || !S_ISREG(st.st_mode))
        goto fail;
    err = -EINVAL;
    if (pread(fd, &hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr))
        goto fail;
    if (hdr.magic != NMC_REGION_MAGIC || hdr.version != NMC_REGION_VERSION ||
        hdr.mem_id != mem_id || hdr.g.buf_size < 64 || hdr.g.buf_size > 65536 ||
        hdr.g.buf_num < 64 || hdr.g.buf_num > (1u << 24))
        goto fail;
    layout(&g, hdr.g.buf_num, hdr.g.buf_size);
    if (memcmp(&g, &hdr.g, sizeof(g)) != 0 || (uint64_t)st.st_size != g.file_size)
        goto fail;
    if ((err = map_region(fd, &g, r)) < 0)
        goto fail;
    r->mem_id = mem_id;
    return 0;
fail:
    close(fd);
    return err;
}

void nmc_region_detach(struct nmc_region *r)
{
    if (r->map)
        munmap(r->map, r->map_len);
    if (r->fd >= 0)
        close(r->fd);
    r->map = NULL;
    r->fd = -1;
}

/* Parent names map to regions through symlinks "parent.<hex name>". */
static void parent_link(const char *rundir, const char *parent, char *out, size_t len)
{
    int n = snprintf(out, len, "%s/parent.", rundir);

    for (const unsigned char *c = (const unsigned char *)parent; *c && n + 3 < (int)len; c++)
        n += snprintf(out + n, len - (size_t)n, "%02x", *c);
}

int nmc_region_lookup_parent(const char *rundir, const char *parent)
{
    char link[512], target[64];
    unsigned id;
    ssize_t n;

    parent_link(rundir, parent, link, sizeof(link));
    n = readlink(link, target, sizeof(target) - 1);
    if (n < 0)
        return errno == ENOENT ? -ENXIO : -errno;
    target[n] = 0;
    if (sscanf(target, "mem.%u", &id) != 1 || id < 2 || id > 65535)
        return -EINVAL;
    return (int)id;
}

int nmc_region_link_parent(const char *rundir, const char *parent, uint16_t mem_id)
{
    char link[512], target[64];

    parent_link(rundir, parent, link, sizeof(link));
    snprintf(target, sizeof(target), "mem.%u", (unsigned)mem_id);
    unlink(link);                       /* a stale link from a dead region */
    return symlink(target, link) < 0 ? -errno : 0;
}

/* Remove every parent link that points at region mem_id. */
void nmc_region_unlink_parents(const char *rundir, uint16_t mem_id)
{
    char target[64], want[64], link[512];
    struct dirent *de;
    DIR *d = opendir(rundir);

    if (!d)
        return;
    snprintf(want, sizeof(want), "mem.%u", (unsigned)mem_id);
    while ((de = readdir(d)) != NULL) {
        ssize_t n;
        if (strncmp(de->d_name, "parent.", 7) != 0)
            continue;
        snprintf(link, sizeof(link), "%s/%s", rundir, de->d_name);
        n = readlink(link, target, sizeof(target) - 1);
        if (n > 0 && (target[n] = 0, strcmp(target, want) == 0))
            unlink(link);
    }
    closedir(d);
}

bool nmc_holder_alive(int fd, uint32_t h)
{
    struct flock fl = {
        .l_type = F_WRLCK, .l_whence = SEEK_SET,
        .l_start = NMC_LOCK_BASE + (off_t)h, .l_len = 1,
    };

    if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
        return true;                    /* cannot tell: keep it */
    return fl.l_type != F_UNLCK;
}
