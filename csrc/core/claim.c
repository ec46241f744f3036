/*
 * claim.c -- memory is claimed before it is used.
 *
 * A region's memory file is sparse: its size is what the region could
 * hold (netmap's pools), its pages are taken only as the allocators hand
 * out rings, netmap_if units and buffers.  A page first touched through a
 * mapping when the tmpfs is full would be a SIGBUS; so every chunk is
 * claimed with fallocate() when an allocator first hands out something in
 * it, under the region lock, and exhaustion is -ENOSPC (or -ENOMEM from a
 * memory cgroup) from the open that asked.  The claim map in the control
 * file has one bit per chunk (1 << g.claim_shift bytes), then one per
 * kring (the control file is claimed whole but for its krings, which are
 * claimed with their ring objects); what is claimed stays claimed while
 * the region lives.  Control path only: the data path
 * writes only what an allocator handed out.
 */
#include "nmc_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

static inline bool bit_get(const uint64_t *m, uint64_t i) { return (m[i / 64] >> (i % 64)) & 1; }
static inline void bit_set(uint64_t *m, uint64_t i) { m[i / 64] |= 1ULL << (i % 64); }

static uint64_t *claim_map(struct nmc_region *r) { return (uint64_t *)(r->ctl + r->g.claim_map_ofs); }

/* The memory file: kept open while the region is locked (region.c), else
 * opened here by path when r->rundir says where. */
static int mem_fd(struct nmc_region *r)
{
    char path[256];
    int fd;

    if (r->mem_open)
        return r->mem_fd;
    if (!r->rundir)
        return -EBADF;
    nmc_region_path(r->rundir, r->mem_id, path, sizeof(path));
    if ((fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW)) < 0)
        return -errno;
    r->mem_fd = fd;
    r->mem_open = true;
    return fd;
}

void nmc_region_close_mem(struct nmc_region *r)
{
    if (r->mem_open)
        close(r->mem_fd);
    r->mem_open = false;
    r->mem_fd = -1;
}

/* Claim chunks [from, to), none of them claimed yet, with one fallocate;
 * a failed fallocate takes back what it allocated (shmem undoes it). */
static int claim_run(struct nmc_region *r, uint64_t from, uint64_t to)
{
    uint64_t a = from << r->g.claim_shift, b = to << r->g.claim_shift;
    bool released = false;
    int fd = mem_fd(r);

    if (fd < 0)
        return fd;
    if (b > r->g.memsize)
        b = r->g.memsize;
    while (fallocate(fd, FALLOC_FL_KEEP_SIZE, (off_t)a, (off_t)(b - a)) < 0) {
        if (errno == ENOSPC && !released && r->rundir) {
            released = true;            /* the spares' memory first (spare.c) */
            if (nmc_spare_release(r->rundir, r->mem_id) > 0)
                continue;
            errno = ENOSPC;
        }
        if (errno != EINTR)
            return -errno;
    }
    for (uint64_t c = from; c < to; c++)
        bit_set(claim_map(r), c);
    return 0;
}

/* Claim bytes [ofs, ofs + len) of the memory: each run of chunks not yet
 * claimed in one fallocate.  Under the region lock. */
int nmc_region_claim(struct nmc_region *r, uint64_t ofs, uint64_t len)
{
    const uint64_t *m = claim_map(r);
    uint64_t c, end;

    if (len == 0)
        return 0;
    if (ofs >= r->g.memsize || len > r->g.memsize - ofs)
        return -EINVAL;
    c = ofs >> r->g.claim_shift;
    end = ((ofs + len - 1) >> r->g.claim_shift) + 1;
    while (c < end) {
        uint64_t run = c;
        int err;
        if (c % 64 == 0 && c + 64 <= end && m[c / 64] == ~0ULL) {
            c += 64;                    /* a word of claimed chunks */
            continue;
        }
        if (bit_get(m, c)) {
            c++;
            continue;
        }
        while (run < end && !bit_get(m, run))
            run++;
        if ((err = claim_run(r, c, run)) < 0)
            return err;
        c = run;
    }
    return 0;
}

/* The claim map's bit of kring `obj`: after those of the memory's chunks. */
static uint64_t kring_bit(const struct nmc_geom *g, uint32_t obj)
{
    return ((g->memsize + (1ULL << g->claim_shift) - 1) >> g->claim_shift) + obj;
}

/* Claim the krings of ring objects [first, first + n) in the control file
 * (the rest of the control file is claimed when the region is made). */
int nmc_claim_krings(struct nmc_region *r, uint32_t first, uint32_t n)
{
    uint64_t *m = claim_map(r);

    if (first >= r->g.ring_num || n > r->g.ring_num - first)
        return -EINVAL;
    for (uint32_t k = first; k < first + n; k++) {
        uint64_t ofs = r->g.krings_ofs + (uint64_t)k * sizeof(struct nmc_kring);
        if (bit_get(m, kring_bit(&r->g, k)))
            continue;
        while (fallocate(r->fd, FALLOC_FL_KEEP_SIZE, (off_t)ofs, sizeof(struct nmc_kring)) < 0)
            if (errno != EINTR)
                return -errno;
        bit_set(m, kring_bit(&r->g, k));
    }
    return 0;
}

/* Claim the buffers idx[0..n): consecutive indexes in one range. */
int nmc_claim_bufs(struct nmc_region *r, const uint32_t *idx, uint32_t n)
{
    for (uint32_t i = 0, j; i < n; i = j) {
        int err;
        for (j = i + 1; j < n && idx[j] == idx[j - 1] + 1; j++)
            ;
        if (idx[i] >= r->g.buf_num || j - i > r->g.buf_num - idx[i])
            return -EINVAL;
        err = nmc_region_claim(r, r->g.buf_pool_ofs + (uint64_t)idx[i] * r->g.buf_size,
                               (uint64_t)(j - i) * r->g.buf_size);
        if (err < 0)
            return err;
    }
    return 0;
}

/* MemAvailable of /proc/meminfo in bytes, or UINT64_MAX if unknown. */
static uint64_t mem_available(void)
{
    unsigned long long kb;
    char line[128];
    uint64_t v = UINT64_MAX;
    FILE *f = fopen("/proc/meminfo", "re");

    if (!f)
        return v;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
            v = (uint64_t)kb * 1024;
            break;
        }
    fclose(f);
    return v;
}

/* What a claim in the runtime directory can still get: the tmpfs's free
 * space, and no more than the memory the system has available (a tmpfs
 * may be larger than the RAM behind it). */
uint64_t nmc_space_free(const char *rundir)
{
    struct statfs sfs;
    uint64_t fs, mem = mem_available();

    if (statfs(rundir, &sfs) < 0)
        return 0;
    fs = (uint64_t)sfs.f_bavail * (uint64_t)sfs.f_bsize;
    return fs < mem ? fs : mem;
}

/* Can the runtime directory still claim `bytes`?  If not, once more after
 * the spare regions gave their memory back (spare.c). */
bool nmc_space_enough(const char *rundir, uint64_t bytes)
{
    return bytes <= nmc_space_free(rundir) ||
           (nmc_spare_release(rundir, 0) > 0 && bytes <= nmc_space_free(rundir));
}

/* Before anything is created: extra buffers no region could hold are
 * -ENOMEM (netmap's answer), and more than the runtime directory can
 * still claim -ENOSPC.  The claims themselves are the real check; this
 * one only refuses early what cannot succeed. */
int nmc_claim_precheck(const char *rundir, const struct nmc_pipe_req *req)
{
    uint32_t size = req->buf_size;

    if (req->extra_bufs == 0)
        return 0;
    if (!size && nmc_env_buf_size(NMC_DEF_BUF_SIZE, &size) < 0)
        size = NMC_DEF_BUF_SIZE;        /* an estimate: new_region refuses it where it is read */
    if ((uint64_t)req->extra_bufs + 2 > (1u << 24))
        return -ENOMEM;
    if (!nmc_space_enough(rundir, (uint64_t)req->extra_bufs * size))
        return -ENOSPC;
    return 0;
}

static bool has_cap_ipc_lock(void)
{
    struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct data[2];

    memset(data, 0, sizeof(data));
    if (syscall(SYS_capget, &hdr, data) < 0)
        return false;
    return (data[CAP_IPC_LOCK / 32].effective >> (CAP_IPC_LOCK % 32)) & 1;
}

/* An AF_XDP UMEM of `bytes` is charged to RLIMIT_MEMLOCK unless the
 * process has CAP_IPC_LOCK: -ENOBUFS (the kernel's answer) if it cannot
 * fit, before any socket is made. */
int nmc_claim_memlock(uint64_t bytes)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_MEMLOCK, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
        return 0;
    if (bytes <= (uint64_t)rl.rlim_cur || has_cap_ipc_lock())
        return 0;
    return -ENOBUFS;
}
