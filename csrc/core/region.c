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
#include <sys/syscall.h>
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

/* The one check of a runtime directory, for every user of one: a
 * directory (not a link to one), ours, private (no group or other bits)
 * and on tmpfs or hugetlbfs (AF_XDP cannot register a UMEM backed by a
 * disk file).  st is what lstat() said of it. */
static int rundir_usable(const char *rundir, const struct stat *st)
{
    struct statfs sfs;

    if (!S_ISDIR(st->st_mode))
        return -ENOTDIR;
    if (st->st_uid != geteuid() || (st->st_mode & 0077))
        return -EACCES;
    if (statfs(rundir, &sfs) < 0)
        return -errno;
    if ((unsigned)sfs.f_type != TMPFS_MAGIC_ && (unsigned)sfs.f_type != HUGETLBFS_MAGIC_)
        return -EXDEV;
    return 0;
}

/* Create the directory if needed (mode 0700), then check it (rundir_usable). */
int nmc_rundir_check(const char *rundir)
{
    struct stat st;

    if (lstat(rundir, &st) < 0) {
        if (errno != ENOENT || (mkdir(rundir, 0700) < 0 && errno != EEXIST) || lstat(rundir, &st) < 0)
            return -errno;
    }
    return rundir_usable(rundir, &st);
}

int nmc_rundir_verify(const char *rundir)
{
    char dir[160];
    struct stat st;
    int err;

    if ((err = nmc_rundir_resolve(rundir, dir, sizeof(dir))) < 0)
        return err;
    if (lstat(dir, &st) < 0)
        return -errno;
    return rundir_usable(dir, &st);
}

/* The name lock, a flock on <rundir>/lock: held only while a name is given
 * a region (a parent.* link created or replaced, a mem_id allocated).  The
 * file also keeps the next mem_id to try, so ids go up as netmap's do. */
int nmc_names_lock(const char *rundir)
{
    char path[256];
    int fd;

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

void nmc_names_unlock(int fd)
{
    if (fd >= 0)
        close(fd);              /* releases the flock */
}

/* An OFD lock (F_RDLCK, F_WRLCK or F_UNLCK) on one byte of fd's file. */
int nmc_lock_byte(int fd, off_t byte, short type, bool wait)
{
    struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1 };

    while (fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl) < 0) {
        if (errno != EINTR)
            return errno == EACCES ? -EAGAIN : -errno;
    }
    return 0;
}

void nmc_region_unlock(struct nmc_region *r)
{
    if (r->locked && r->fd >= 0)
        nmc_lock_byte(r->fd, NMC_REGION_LOCK_BYTE, F_UNLCK, false);
    r->locked = false;
    nmc_region_close_mem(r);
}

void nmc_region_path(const char *rundir, uint16_t mem_id, char *out, size_t len)
{
    snprintf(out, len, "%s/mem.%u", rundir, (unsigned)mem_id);
}

void nmc_region_ctl_path(const char *rundir, uint16_t mem_id, char *out, size_t len)
{
    snprintf(out, len, "%s/ctl.%u", rundir, (unsigned)mem_id);
}

/* The smallest chunk (a power of two, at least a page) with which the
 * claim map of a memory of `memsize` bytes has at most NMC_CLAIM_BITS bits. */
static uint32_t claim_shift(uint64_t memsize)
{
    uint32_t shift = 12;

    while ((memsize >> shift) >= NMC_CLAIM_BITS)
        shift++;
    return shift;
}

/* The layout is a pure function of the parameters: creation computes it,
 * attach recomputes it and refuses a header that disagrees.  The memory
 * comes first: the control file ends with a map of its chunks. */
void nmc_region_layout(struct nmc_geom *g, uint32_t buf_num, uint32_t buf_size, uint32_t ring_num)
{
    uint64_t o = NMC_PAGE;              /* header page */

    memset(g, 0, sizeof(*g));
    g->if_units = NMC_IF_UNITS;
    g->ring_num = ring_num;
    g->ring_size = (uint32_t)round_up(NMC_RING_LEAD + sizeof(struct netmap_ring) +
                                      NMC_MAXSLOTS * sizeof(struct netmap_slot), NMC_PAGE);
    g->buf_num = buf_num;
    g->buf_size = buf_size;
    g->if_pool_ofs = 0;
    g->ring_pool_ofs = round_up((uint64_t)g->if_units * NMC_IF_UNIT, NMC_PAGE);
    /* one spare page before the buffers: an AF_XDP UMEM starts there, so
     * that a fill address of (buffer - 256) puts received data exactly at
     * the start of the netmap buffer */
    g->buf_pool_ofs = g->ring_pool_ofs + (uint64_t)g->ring_num * g->ring_size + NMC_PAGE;
    g->memsize = round_up(g->buf_pool_ofs + (uint64_t)buf_num * buf_size, NMC_PAGE);
    g->claim_shift = claim_shift(g->memsize);
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
    g->claim_map_ofs = o;              /* a bit per chunk of memory, then per kring */
    o += round_up(((g->memsize >> g->claim_shift) + 1 + g->ring_num + 63) / 64 * 8, 64);
    g->ctl_size = round_up(o, NMC_PAGE);
}

void nmc_region_unmap(uint8_t *ctl, uint8_t *mem, const struct nmc_geom *g)
{
    if (ctl)
        munmap(ctl, g->ctl_size);
    if (mem)
        munmap(mem, g->memsize);
}

void *nmc_map_shared(size_t len, int fd)
{
    long map = syscall(SYS_mmap, NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0L);

    return map == -1 ? MAP_FAILED : (void *)map;     /* errno set by syscall() */
}

/* Map both files; the control file's descriptor is kept (it carries the
 * lock bytes), and so is the memory file's, for claims, until the caller
 * gives it up (nmc_region_close_mem: the mapping holds the file). */
static int map_region(int ctl_fd, int mem_fd, const struct nmc_geom *g, struct nmc_region *r)
{
    void *c = nmc_map_shared(g->ctl_size, ctl_fd);
    void *m = c == MAP_FAILED ? MAP_FAILED : nmc_map_shared(g->memsize, mem_fd);
    int err = -errno;

    if (m == MAP_FAILED) {
        if (c != MAP_FAILED)
            munmap(c, g->ctl_size);
        return err;
    }
    r->fd = ctl_fd;
    r->ctl = c;
    r->mem = m;
    r->g = *g;
    r->hdr = (struct nmc_region_hdr *)r->ctl;
    r->mem_fd = mem_fd;
    r->mem_open = true;
    r->rundir = NULL;
    return 0;
}

/* A region file, with its mode whatever the umask (NMC_REGION_FILE_MODE). */
static int create_file(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    int err;

    if (fd < 0)
        return -errno;
    if (fchmod(fd, NMC_REGION_FILE_MODE) < 0) {
        err = -errno;
        close(fd);
        unlink(path);
        return err;
    }
    return fd;
}

/* The second name of a region file in wake/: "mem.<id>.ctl" or "mem.<id>.mem". */
static void wake_name(uint16_t mem_id, const char *kind, char *out, size_t len)
{
    snprintf(out, len, "mem.%u.%s", (unsigned)mem_id, kind);
}

/* Is `name` (an entry of wake/) a second name of a region file?  Its id. */
bool nmc_region_wake_name(const char *name, uint32_t *mem_id)
{
    char kind[4];
    unsigned id;
    int end = 0;

    if (sscanf(name, "mem.%5u.%3[a-z]%n", &id, kind, &end) != 2 || name[end] ||
        id < 2 || id > 65535 || (strcmp(kind, "ctl") && strcmp(kind, "mem")))
        return false;
    *mem_id = id;
    return true;
}

/* Remove a region's second names (before its files: see nmc_region_reap);
 * how many there were. */
uint32_t nmc_region_unlink_wake(const char *rundir, uint16_t mem_id)
{
    static const char *const kinds[] = { "ctl", "mem" };
    char name[32], path[256];
    uint32_t removed = 0;

    for (int i = 0; i < 2; i++) {
        wake_name(mem_id, kinds[i], name, sizeof(name));
        snprintf(path, sizeof(path), "%s/" NMC_WAKE_DIR "/%s", rundir, name);
        removed += unlink(path) == 0;
    }
    return removed;
}

/* Give a new region's two files their second names in wake/ (a name left
 * by a dead region of this id is replaced). */
static int link_wake(const char *rundir, uint16_t mem_id)
{
    static const char *const kinds[] = { "ctl", "mem" };
    char name[32], path[256];
    int dir, err = 0;

    if ((dir = nmc_wake_dir_open(rundir)) < 0)
        return dir;
    nmc_region_unlink_wake(rundir, mem_id);
    for (int i = 0; i < 2 && !err; i++) {
        if (i == 0)
            nmc_region_ctl_path(rundir, mem_id, path, sizeof(path));
        else
            nmc_region_path(rundir, mem_id, path, sizeof(path));
        wake_name(mem_id, kinds[i], name, sizeof(name));
        if (linkat(AT_FDCWD, path, dir, name, 0) < 0)
            err = -errno;
    }
    close(dir);
    if (err < 0)
        nmc_region_unlink_wake(rundir, mem_id);
    return err;
}

/* One more region created: the per-open collection lists the directory
 * again (gc.c).  Under the name lock. */
static void bump_region_gen(int names_fd)
{
    uint32_t gen = 0;

    if (pread(names_fd, &gen, sizeof(gen), NMC_NAMES_GEN_OFS) != (ssize_t)sizeof(gen))
        gen = 0;
    gen++;
    if (pwrite(names_fd, &gen, sizeof(gen), NMC_NAMES_GEN_OFS) < 0) {
        /* a lock file that cannot be written: gc.c lists the directory every time */
    }
}

/* Create the control file ctl.<id> of a free id, from the hint kept in the
 * name-lock file (the caller holds that lock), and take its region lock
 * before anything is in it: an attacher that got there first finds an
 * empty file and gives up.  O_EXCL settles any race with a file the hint
 * did not know about; a memory file left without its control file (a
 * removal cut short) keeps its id taken. */
static int create_ctl(const char *rundir, int names_fd, uint16_t *id)
{
    char path[256], mem_path[256];
    uint32_t next = 0;
    struct stat st;

    if (pread(names_fd, &next, sizeof(next), NMC_NAMES_NEXT_OFS) != (ssize_t)sizeof(next))
        next = 0;
    for (uint32_t n = 0; n < 65534; n++) {
        uint32_t cand = 2 + (next + n) % 65534;
        int fd, err;
        nmc_region_path(rundir, (uint16_t)cand, mem_path, sizeof(mem_path));
        if (lstat(mem_path, &st) == 0 || errno != ENOENT)
            continue;
        nmc_region_ctl_path(rundir, (uint16_t)cand, path, sizeof(path));
        if ((fd = create_file(path)) == -EEXIST)
            continue;
        if (fd < 0)
            return fd;
        if ((err = nmc_lock_byte(fd, NMC_REGION_LOCK_BYTE, F_WRLCK, true)) < 0) {
            unlink(path);
            close(fd);
            return err;
        }
        next = cand - 1;        /* the id after cand, as an offset from 2 */
        if (pwrite(names_fd, &next, sizeof(next), NMC_NAMES_NEXT_OFS) < 0) {
            /* only a hint: the next creation scans a little longer */
        }
        bump_region_gen(names_fd);
        *id = (uint16_t)cand;
        return fd;
    }
    return -ENOSPC;
}

/* The user's file (@extmem) as the memory file mem_path: a hard link, so
 * that every process opens it by the region's name; -EXDEV when it is on
 * another filesystem than the runtime directory. */
static int link_extmem(const char *file, const char *mem_path, uint64_t memsize)
{
    struct stat st;
    int fd;

    if (linkat(AT_FDCWD, file, AT_FDCWD, mem_path, AT_SYMLINK_FOLLOW) < 0)
        return -errno;
    fd = open(mem_path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        fd = -errno;
    else if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
             (st.st_mode & (S_IWGRP | S_IWOTH)) ||
             (uint64_t)st.st_size < memsize) {      /* changed since it was sized (extmem.c) */
        close(fd);
        fd = -EINVAL;
    }
    if (fd < 0)
        unlink(mem_path);
    return fd;
}

/* Size both files and map them (both descriptors are kept).  The control
 * file is claimed whole (any holder may write any page of it at any time)
 * except the krings, which are claimed with their ring objects (claim.c);
 * the memory file stays sparse, claimed chunk by chunk. */
static int size_and_map(int ctl_fd, const char *mem_path, const struct nmc_geom *g,
                        const char *extmem, struct nmc_region *r)
{
    int mem_fd, err;

    if (ftruncate(ctl_fd, (off_t)g->ctl_size) < 0 ||
        fallocate(ctl_fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)g->krings_ofs) < 0 ||
        fallocate(ctl_fd, FALLOC_FL_KEEP_SIZE, (off_t)g->if_map_ofs,
                  (off_t)(g->ctl_size - g->if_map_ofs)) < 0)
        return -errno;
    if (extmem)                         /* the user's file, its size checked (extmem.c) */
        mem_fd = link_extmem(extmem, mem_path, g->memsize);
    else
        mem_fd = create_file(mem_path);
    if (mem_fd < 0)
        return mem_fd;
    if (!extmem && ftruncate(mem_fd, (off_t)g->memsize) < 0)
        err = -errno;
    else
        err = map_region(ctl_fd, mem_fd, g, r);
    if (err < 0) {
        close(mem_fd);
        unlink(mem_path);
    }
    return err;
}

/* A new region, returned with its region lock held.  The caller holds the
 * name lock (names_fd). */
int nmc_region_create(const char *rundir, int names_fd, const struct nmc_shape *shape,
                      struct nmc_region *r)
{
    char ctl_path[256], mem_path[256];
    uint32_t buf_num = shape->buf_num, buf_size = shape->buf_size;
    struct nmc_geom g;
    uint64_t *bufmap;
    uint16_t id = 0;
    int ctl_fd, err;

    if (buf_size < 64 || buf_size > 65536 || buf_size % 64)
        return -EINVAL;
    if (buf_num < 64 || buf_num > (1u << 24))
        return -EINVAL;
    if (shape->ring_num < 1 || shape->ring_num > NMC_DEF_RING_NUM)
        return -EINVAL;
    nmc_region_layout(&g, buf_num, buf_size, shape->ring_num);
    if ((ctl_fd = create_ctl(rundir, names_fd, &id)) < 0)
        return ctl_fd;
    nmc_region_ctl_path(rundir, id, ctl_path, sizeof(ctl_path));
    nmc_region_path(rundir, id, mem_path, sizeof(mem_path));
    if ((err = size_and_map(ctl_fd, mem_path, &g, shape->extmem, r)) < 0) {
        unlink(ctl_path);
        close(ctl_fd);
        return err;
    }
    if ((err = link_wake(rundir, id)) < 0) {
        nmc_region_detach(r);
        unlink(mem_path);
        unlink(ctl_path);
        return err;
    }
    r->locked = true;
    r->mem_id = id;
    r->rundir = rundir;                 /* for claims (the caller's string outlives r) */
    bufmap = (uint64_t *)(r->ctl + g.buf_map_ofs);
    bufmap[0] |= 3;                      /* buffers 0 and 1 are reserved */
    r->hdr->g = g;
    r->hdr->mem_id = (uint32_t)id;
    r->hdr->version = NMC_REGION_VERSION;
    r->hdr->layout = nmc_layout_hash();
    r->hdr->buf_hint = 2;
    r->hdr->buf_free = buf_num - 2;
    r->hdr->extmem = shape->extmem != NULL;
    nmc_store_rel(&r->hdr->magic, NMC_REGION_MAGIC);
    return 0;
}

/* Where a region's files are opened from: by path in the runtime
 * directory, or (via_wake) by their second names through wake_dir, an
 * O_PATH descriptor of wake/ (-1: none at hand); owner is whose they must
 * then be. */
struct region_files {
    const char *rundir;
    int wake_dir;
    bool via_wake;
    uid_t owner;
};

/* Open one of a region's files, owner's and a regular file of the
 * expected size (0: any, the size is checked later). */
static int open_checked(const char *path, uint64_t size, uid_t owner)
{
    struct stat st;
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);

    if (fd < 0)
        return errno == ENOENT ? -ENXIO : -errno;
    if (fstat(fd, &st) < 0 || st.st_uid != owner || !S_ISREG(st.st_mode)) {
        close(fd);
        return -EACCES;
    }
    if (size && (uint64_t)st.st_size < size) {     /* an extmem file may be larger */
        close(fd);
        return -EINVAL;
    }
    return fd;
}

/* Open file `kind` ("ctl" or "mem") of region mem_id: by path; when the
 * runtime directory is out of reach (EACCES, EPERM) and a descriptor of
 * wake/ is at hand, by its second name through /proc/self/fd, as wake.c
 * sends to sockets; the file must then be wake/'s owner's.  Once one file
 * came that way, the other does too. */
static int open_region_file(struct region_files *f, uint16_t mem_id, const char *kind,
                            uint64_t size)
{
    char path[256], name[32];
    struct stat st;
    int fd;

    if (!f->via_wake) {
        if (kind[0] == 'c')
            nmc_region_ctl_path(f->rundir, mem_id, path, sizeof(path));
        else
            nmc_region_path(f->rundir, mem_id, path, sizeof(path));
        fd = open_checked(path, size, geteuid());
        if ((fd != -EACCES && fd != -EPERM) || f->wake_dir < 0)
            return fd;
        if (fstat(f->wake_dir, &st) < 0)
            return -errno;
        f->via_wake = true;
        f->owner = st.st_uid;
    }
    wake_name(mem_id, kind, name, sizeof(name));
    snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", f->wake_dir, name);
    return open_checked(path, size, f->owner);
}

/* The header of a control file: another build's layout is -EPROTO, a
 * header that disagrees with its own geometry -EINVAL. */
static int check_header(int fd, uint16_t mem_id, struct nmc_geom *g)
{
    struct nmc_region_hdr hdr;
    struct stat st;

    if (pread(fd, &hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) || fstat(fd, &st) < 0)
        return -EINVAL;
    if (hdr.magic != NMC_REGION_MAGIC)
        return -EINVAL;
    if (hdr.layout != nmc_layout_hash() || hdr.version != NMC_REGION_VERSION)
        return -EPROTO;
    if (hdr.mem_id != mem_id || hdr.g.buf_size < 64 || hdr.g.buf_size > 65536 || hdr.g.buf_size % 64 ||
        hdr.g.buf_num < 64 || hdr.g.buf_num > (1u << 24) || hdr.g.ring_num < 1 ||
        hdr.g.ring_num > NMC_DEF_RING_NUM)
        return -EINVAL;
    nmc_region_layout(g, hdr.g.buf_num, hdr.g.buf_size, hdr.g.ring_num);
    if (memcmp(g, &hdr.g, sizeof(*g)) != 0 || (uint64_t)st.st_size != g->ctl_size)
        return -EINVAL;
    return 0;
}

/* Map region mem_id.  With a lock mode, take its region lock first (or
 * only try it: -EAGAIN), then make sure the control file is still linked:
 * a reaper may have removed the region while we waited (-ENXIO, as if
 * absent). */
int nmc_region_attach(const char *rundir, uint16_t mem_id, struct nmc_region *r,
                      enum nmc_lock_mode lock)
{
    return nmc_region_attach_via(rundir, -1, mem_id, r, lock);
}

int nmc_region_attach_via(const char *rundir, int wake_dir, uint16_t mem_id,
                          struct nmc_region *r, enum nmc_lock_mode lock)
{
    struct region_files f = { .rundir = rundir, .wake_dir = wake_dir };
    struct nmc_geom g;
    struct stat st;
    int ctl_fd, mem_fd, err;

    if ((ctl_fd = open_region_file(&f, mem_id, "ctl", 0)) < 0)
        return ctl_fd;
    if (lock != NMC_NOLOCK &&
        (err = nmc_lock_byte(ctl_fd, NMC_REGION_LOCK_BYTE, F_WRLCK, lock == NMC_LOCK_WAIT)) < 0)
        goto fail;
    err = -ENXIO;
    if (fstat(ctl_fd, &st) < 0 || st.st_nlink == 0)
        goto fail;
    if ((err = check_header(ctl_fd, mem_id, &g)) < 0)
        goto fail;
    if ((err = mem_fd = open_region_file(&f, mem_id, "mem", g.memsize)) < 0)
        goto fail;
    if ((err = map_region(ctl_fd, mem_fd, &g, r)) < 0) {
        close(mem_fd);
        goto fail;
    }
    r->mem_id = mem_id;
    r->locked = lock != NMC_NOLOCK;
    if (!r->locked)
        nmc_region_close_mem(r);        /* claims are made under the lock only */
    else
        r->rundir = rundir;             /* for claims (the caller's string outlives r) */
    return 0;
fail:
    close(ctl_fd);                      /* releases the lock */
    return err;
}

/* For an inspection (check, status): region mem_id of rundir (NULL: the
 * default), attached under its region lock, so that it is seen between
 * operations.  The caller detaches it. */
int nmc_region_inspect(const char *rundir, uint16_t mem_id, struct nmc_region *r)
{
    char dir[160];
    int err;

    *r = (struct nmc_region){ .fd = -1 };
    if ((err = nmc_rundir_resolve(rundir, dir, sizeof(dir))) < 0 || (err = nmc_rundir_verify(dir)) < 0)
        return err;
    return nmc_region_attach(dir, mem_id, r, NMC_LOCK_WAIT);
}

void nmc_region_detach(struct nmc_region *r)
{
    nmc_region_close_mem(r);
    nmc_region_unmap(r->ctl, r->mem, &r->g);
    if (r->fd >= 0)
        close(r->fd);
    r->ctl = r->mem = NULL;
    r->fd = -1;
    r->locked = false;          /* closing fd released the lock */
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
    char link[512];

    parent_link(rundir, parent, link, sizeof(link));
    return nmc_region_lookup_link(link);
}

/* The region id a link "... -> mem.<id>" names. */
int nmc_region_lookup_link(const char *link)
{
    char target[64];
    unsigned id;
    ssize_t n = readlink(link, target, sizeof(target) - 1);

    if (n < 0)
        return errno == ENOENT ? -ENXIO : -errno;
    target[n] = 0;
    if (sscanf(target, "mem.%u", &id) != 1 || id < 2 || id > 65535)
        return -EINVAL;
    return (int)id;
}

/* Is `parent` one of the names linked to this region?  (A link left
 * behind by a crash may name a later region that reused the mem_id.) */
bool nmc_region_has_link(const struct nmc_region *r, const char *parent)
{
    uint32_t n = r->hdr->nlinks;

    if (r->hdr->links_overflow)
        return true;                    /* cannot tell: accept */
    for (uint32_t i = 0; i < n && i < NMC_REGION_LINKS; i++)
        if (strncmp(r->hdr->links[i], parent, NMC_NAMELEN) == 0)
            return true;
    return false;
}

/* Link `parent` to region r (under the name lock, with r locked). */
int nmc_region_link_parent(const char *rundir, const char *parent, struct nmc_region *r)
{
    char link[512], target[64];
    struct nmc_region_hdr *h = r->hdr;

    parent_link(rundir, parent, link, sizeof(link));
    snprintf(target, sizeof(target), "mem.%u", (unsigned)r->mem_id);
    unlink(link);                       /* a stale link from a dead region */
    if (symlink(target, link) < 0)
        return -errno;
    if (nmc_region_has_link(r, parent))
        return 0;
    if (h->nlinks < NMC_REGION_LINKS)
        nmc_copy_name(h->links[h->nlinks++], NMC_NAMELEN, parent);
    else
        h->links_overflow = 1;
    return 0;
}

static void unlink_if_ours(const char *link, const char *want)
{
    char target[64];
    ssize_t n = readlink(link, target, sizeof(target) - 1);

    if (n > 0 && (target[n] = 0, strcmp(target, want) == 0))
        unlink(link);
}

/* Remove every parent link that points at region r: the names it
 * recorded, or every link in the directory if it could not record them. */
void nmc_region_unlink_parents(const char *rundir, struct nmc_region *r)
{
    char want[64], link[512];
    struct dirent *de;
    DIR *d;

    snprintf(want, sizeof(want), "mem.%u", (unsigned)r->mem_id);
    if (!r->hdr->links_overflow) {
        for (uint32_t i = 0; i < r->hdr->nlinks && i < NMC_REGION_LINKS; i++) {
            char name[NMC_NAMELEN];
            nmc_copy_name(name, sizeof(name), r->hdr->links[i]);
            parent_link(rundir, name, link, sizeof(link));
            unlink_if_ours(link, want);
        }
        return;
    }
    if (!(d = opendir(rundir)))
        return;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, "parent.", 7) != 0)
            continue;
        snprintf(link, sizeof(link), "%s/%s", rundir, de->d_name);
        unlink_if_ours(link, want);
    }
    closedir(d);
}

/* fn(name) for each parent name linked in rundir, until fn returns
 * non-zero (that value is returned; 0 when every name was seen). */
int nmc_region_each_parent(const char *rundir, int (*fn)(const char *name, void *arg), void *arg)
{
    struct dirent *de;
    int ret = 0;
    DIR *d = opendir(rundir);

    if (!d)
        return -errno;
    while (ret == 0 && (de = readdir(d)) != NULL) {
        char name[NMC_NAMELEN];
        size_t n = 0;
        unsigned byte;
        if (strncmp(de->d_name, "parent.", 7) != 0)
            continue;
        for (const char *h = de->d_name + 7; n + 1 < sizeof(name) && sscanf(h, "%2x", &byte) == 1 &&
             h[1]; h += 2)
            name[n++] = (char)byte;
        name[n] = 0;
        if (n)
            ret = fn(name, arg);
    }
    closedir(d);
    return ret;
}

/* Is holder h alive: its port's byte or its device fd's byte locked? */
bool nmc_holder_alive(int fd, uint32_t h)
{
    struct flock fl = {
        .l_type = F_WRLCK, .l_whence = SEEK_SET,
        .l_start = NMC_HOLDER_BYTE(h), .l_len = NMC_HOLDER_LOCK_BYTES,
    };

    if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
        return true;                    /* cannot tell: keep it */
    return fl.l_type != F_UNLCK;
}
