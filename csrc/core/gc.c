/*
 * gc.c -- reclaiming what processes that died left anywhere in a runtime
 * directory, not only under the name being opened.
 *
 *  - nmc_rundir_gc_some(), on every open: the next few regions (round
 *    robin, the cursor kept in the name-lock file) are checked with one
 *    fcntl each; a region no process holds any holder of is reaped (its
 *    ports freed, the region removed when none is left).  Bounded cost:
 *    one directory listing and `budget` fcntl calls.
 *  - nmc_rundir_gc(), `nmcompat gc`: every region is reaped (dead holders
 *    of live regions too), then, under the name lock, files no region owns
 *    are removed, and every port kind reclaims its own state (switches).
 *
 * Region locks are only tried: a region someone else has locked is being
 * opened, closed or reaped by them.  Why removing orphan files is safe:
 * a region is created only under the name lock, control file first and
 * memory file second, and removed memory file first, control file last
 * (reap.c); so while we hold the name lock, a memory file without its
 * control file, a control file whose header was never finished, and a
 * socket or a parent.* name of an id without a control file belong to no
 * region, now or later.
 */
#include "nmc_transport.h"

#include <dirent.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define ID_LIMIT 65536u

struct idset {
    uint64_t ctl[ID_LIMIT / 64], mem[ID_LIMIT / 64];
};

static bool has(const uint64_t *set, uint32_t id) { return set[id / 64] >> (id % 64) & 1; }
static void put(uint64_t *set, uint32_t id) { set[id / 64] |= 1ULL << (id % 64); }

/* "<prefix><id>" with nothing after, id a region id. */
static bool parse_id(const char *name, const char *prefix, uint32_t *id)
{
    size_t n = strlen(prefix);
    char *end;
    unsigned long v;

    if (strncmp(name, prefix, n) != 0 || name[n] < '0' || name[n] > '9')
        return false;
    v = strtoul(name + n, &end, 10);
    if (*end || v < 2 || v >= ID_LIMIT)
        return false;
    *id = (uint32_t)v;
    return true;
}

/* The ids of the control files (and, if mem is not NULL, of the memory
 * files) in rundir. */
static int scan_ids(const char *rundir, uint64_t *ctl, uint64_t *mem)
{
    struct dirent *de;
    uint32_t id;
    DIR *d = opendir(rundir);

    if (!d)
        return errno == ENOENT || errno == ENOTDIR ? -ENXIO : -errno;
    memset(ctl, 0, ID_LIMIT / 8);
    if (mem)
        memset(mem, 0, ID_LIMIT / 8);
    while ((de = readdir(d)) != NULL) {
        if (parse_id(de->d_name, "ctl.", &id))
            put(ctl, id);
        else if (mem && parse_id(de->d_name, "mem.", &id))
            put(mem, id);
    }
    closedir(d);
    return 0;
}

/* The first id of the set at or after `from`, or ID_LIMIT. */
static uint32_t next_id(const uint64_t *set, uint32_t from)
{
    for (uint32_t w = from / 64; w < ID_LIMIT / 64; w++) {
        uint64_t bits = set[w] & (w == from / 64 ? ~0ULL << (from % 64) : ~0ULL);
        if (bits)
            return w * 64 + (uint32_t)__builtin_ctzll(bits);
    }
    return ID_LIMIT;
}

/* What one look at a region's control file tells, without mapping it. */
struct glance {
    bool gone;          /* no control file */
    bool unheld;        /* no process holds any holder (one fcntl on every holder byte) */
    bool spare;         /* unheld, a spare by its header, and linked as one (spare.c) */
};

static struct glance glance_at(const char *rundir, uint16_t id)
{
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
                        .l_start = NMC_LOCK_BASE,
                        .l_len = (off_t)NMC_MAX_HOLDERS * NMC_HOLDER_LOCK_BYTES };
    struct glance gl = { false, false, false };
    uint32_t spare = 0;
    char path[256];
    int fd;

    nmc_region_ctl_path(rundir, id, path, sizeof(path));
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
        gl.gone = errno == ENOENT;
        return gl;
    }
    gl.unheld = fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type == F_UNLCK;
    gl.spare = gl.unheld &&
               pread(fd, &spare, sizeof(spare), offsetof(struct nmc_region_hdr, spare)) ==
               (ssize_t)sizeof(spare) && spare == 1 && nmc_spare_linked(rundir, id);
    close(fd);
    return gl;
}

static uint32_t dead_holders(struct nmc_region *r)
{
    struct nmc_holder *hs = nmc_holders(r);
    uint32_t n = 0;

    for (uint32_t h = 0; h < NMC_MAX_HOLDERS; h++)
        n += hs[h].state == NMC_LIVE && !nmc_holder_alive(r->fd, h);
    return n;
}

static bool unheld_ports(struct nmc_region *r)
{
    struct nmc_port_rec *ports = nmc_ports(r);

    for (uint32_t i = 0; i < NMC_MAX_PORTS; i++)
        if (ports[i].state == NMC_LIVE && !ports[i].persistent && !nmc_port_in_use(r, i))
            return true;
    return false;
}

/* Reap region id if its lock is free (a spare too, unless keep_spares);
 * counts in rep. */
static void collect(const char *rundir, uint16_t id, bool keep_spares, struct nmc_gc_report *rep)
{
    struct nmc_region r = { .fd = -1 };
    int err;

    rep->regions++;
    if ((err = nmc_region_attach(rundir, id, &r, NMC_LOCK_TRY)) < 0) {
        rep->busy += err == -EAGAIN;
        return;
    }
    if (keep_spares && r.hdr->spare && nmc_spare_linked(rundir, r.mem_id)) {
        nmc_region_detach(&r);
        return;
    }
    r.ask_all = true;
    if (dead_holders(&r) || unheld_ports(&r))
        rep->reaped++;
    if (nmc_region_reap(rundir, &r))
        rep->removed++;
    nmc_region_detach(&r);
}

/* The per-open collection's hints in the name-lock file (nmc_int.h),
 * read and written without the lock. */
static uint32_t hint_get(int fd, off_t ofs)
{
    uint32_t v = 0;

    if (fd < 0 || pread(fd, &v, sizeof(v), ofs) != (ssize_t)sizeof(v))
        return 0;
    return v;
}

static void hint_put(int fd, off_t ofs, uint32_t v)
{
    if (fd >= 0 && pwrite(fd, &v, sizeof(v), ofs) < 0) {
        /* a hint: the next open starts where this one did */
    }
}

/* This process's list of one runtime directory's control files, listed
 * again only when the lock file's count of created regions moved (or it is
 * another lock file: a directory removed and made again): one directory
 * listing per region created anywhere, not one per open (a region removed
 * since costs a failed open, and leaves the list).  Busy (another thread,
 * or a fork taken while one held it): a list of the caller's own. */
static struct {
    pthread_mutex_t mu;
    bool valid;
    uint32_t gen;
    dev_t dev;
    ino_t ino;
    uint64_t ctl[ID_LIMIT / 64];
} seen = { .mu = PTHREAD_MUTEX_INITIALIZER };

struct idlist {
    uint64_t *ids;      /* NULL: none could be made */
    bool own;           /* malloc'd for this call, else seen.ctl (seen.mu held) */
};

static struct idlist ids_own(const char *rundir)
{
    struct idlist l = { malloc(ID_LIMIT / 8), true };

    if (l.ids && scan_ids(rundir, l.ids, NULL) < 0) {
        free(l.ids);
        l.ids = NULL;
    }
    return l;
}

static struct idlist ids_get(const char *rundir, int names_fd)
{
    uint32_t gen = hint_get(names_fd, NMC_NAMES_GEN_OFS);
    struct stat st;

    if (names_fd < 0 || fstat(names_fd, &st) < 0 || pthread_mutex_trylock(&seen.mu) != 0)
        return ids_own(rundir);
    if (!seen.valid || seen.gen != gen || seen.dev != st.st_dev || seen.ino != st.st_ino) {
        seen.valid = scan_ids(rundir, seen.ctl, NULL) == 0;
        seen.gen = gen;
        seen.dev = st.st_dev;
        seen.ino = st.st_ino;
    }
    if (!seen.valid) {
        pthread_mutex_unlock(&seen.mu);
        return (struct idlist){ NULL, false };
    }
    return (struct idlist){ seen.ctl, false };
}

static void ids_put(struct idlist l)
{
    if (l.own)
        free(l.ids);
    else if (l.ids)
        pthread_mutex_unlock(&seen.mu);
}

/* Reap region id if nobody holds it and it is no linked spare (a spare
 * that lost its link is removed); forget it if it is gone. */
static void visit(const char *rundir, uint64_t *ids, uint16_t id, struct nmc_gc_report *rep)
{
    struct glance gl = glance_at(rundir, id);

    if (gl.unheld && !gl.spare)
        collect(rundir, id, true, rep);
    else if (gl.gone)
        ids[id / 64] &= ~(1ULL << (id % 64));
}

void nmc_rundir_gc_some(const char *rundir, uint32_t budget)
{
    struct nmc_gc_report rep = { 0 };
    struct idlist l;
    char path[256];
    uint32_t id, checked = 0;
    int fd;

    snprintf(path, sizeof(path), "%s/lock", rundir);
    fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if ((l = ids_get(rundir, fd)).ids) {
        uint32_t start = hint_get(fd, NMC_NAMES_CURSOR_OFS) % ID_LIMIT;
        bool wrapped = false;
        id = start;
        while (checked < budget) {      /* from the cursor to the end, then from 0 to it */
            if ((id = next_id(l.ids, id)) >= (wrapped ? start : ID_LIMIT)) {
                if (wrapped)
                    break;
                wrapped = true;
                id = 0;
                continue;
            }
            checked++;
            visit(rundir, l.ids, (uint16_t)id++, &rep);
        }
        hint_put(fd, NMC_NAMES_CURSOR_OFS, id % ID_LIMIT);
    }
    ids_put(l);
    if (fd >= 0)
        close(fd);
}

/* A control file whose creator died before it was complete (no magic). */
static bool stillborn(const char *rundir, uint16_t id)
{
    uint64_t magic = 0;
    char path[256];
    int fd;
    bool dead;

    nmc_region_ctl_path(rundir, id, path, sizeof(path));
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
        return false;
    dead = nmc_lock_byte(fd, NMC_REGION_LOCK_BYTE, F_RDLCK, false) == 0 &&
           pread(fd, &magic, sizeof(magic), 0) >= 0 && magic != NMC_REGION_MAGIC;
    close(fd);
    return dead;
}

static uint32_t unlink_path(const char *dir, const char *name)
{
    char path[512];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return unlink(path) == 0;
}

/* A name that belongs to no region: a memory file without its control
 * file, a holder socket, a parent.* or spare.* link of an id without one. */
static bool orphan(const char *rundir, const char *name, const struct idset *ids)
{
    char target[64];
    uint32_t id;
    ssize_t n;

    if (parse_id(name, "mem.", &id))
        return !has(ids->ctl, id);
    if (strncmp(name, "mem.", 4) == 0 && strstr(name, ".sock")) {
        char head[32];
        snprintf(head, sizeof(head), "%.*s", (int)strcspn(name + 4, ".") + 4, name);
        return parse_id(head, "mem.", &id) && !has(ids->ctl, id);
    }
    if (strncmp(name, "parent.", 7) == 0 || strncmp(name, "spare.", 6) == 0) {
        char link[512];
        snprintf(link, sizeof(link), "%s/%s", rundir, name);
        if ((n = readlink(link, target, sizeof(target) - 1)) <= 0)
            return false;
        target[n] = 0;
        return !parse_id(target, "mem.", &id) || !has(ids->ctl, id);
    }
    return false;
}

/* An entry of wake/ of an id without a region: a holder socket, or a
 * second name of a region file (region.c). */
static bool wake_orphan(const char *rundir, const char *name, const struct idset *ids)
{
    uint32_t id;

    if (nmc_region_wake_name(name, &id))
        return !has(ids->ctl, id);
    return strstr(name, ".sock") && orphan(rundir, name, ids);
}

/* Under the name lock: stillborn regions, then orphan names. */
static void remove_orphans(const char *rundir, struct nmc_gc_report *rep)
{
    struct idset *ids = malloc(sizeof(*ids));
    struct dirent *de;
    char name[64], wake[200];
    DIR *d;

    if (!ids || scan_ids(rundir, ids->ctl, ids->mem) < 0) {
        free(ids);
        return;
    }
    for (uint32_t id = 2; id < ID_LIMIT; id++) {
        if (has(ids->ctl, id) && stillborn(rundir, (uint16_t)id)) {
            rep->files += nmc_region_unlink_wake(rundir, (uint16_t)id);
            snprintf(name, sizeof(name), "mem.%u", (unsigned)id);
            rep->files += unlink_path(rundir, name);
            snprintf(name, sizeof(name), "ctl.%u", (unsigned)id);
            rep->files += unlink_path(rundir, name);
            ids->ctl[id / 64] &= ~(1ULL << (id % 64));
        }
    }
    if ((d = opendir(rundir)) != NULL) {
        while ((de = readdir(d)) != NULL)
            if (orphan(rundir, de->d_name, ids))
                rep->files += unlink_path(rundir, de->d_name);
        closedir(d);
    }
    snprintf(wake, sizeof(wake), "%s/" NMC_WAKE_DIR, rundir);
    if ((d = opendir(wake)) != NULL) {  /* holder sockets (wake.c), second names of region files */
        while ((de = readdir(d)) != NULL)
            if (wake_orphan(rundir, de->d_name, ids))
                rep->files += unlink_path(wake, de->d_name);
        closedir(d);
    }
    free(ids);
}

int nmc_rundir_gc(const char *rundir, struct nmc_gc_report *out)
{
    struct nmc_gc_report rep = { 0 };
    struct idset *ids;
    char dir[160];
    int names, err;

    if ((err = nmc_rundir_resolve(rundir, dir, sizeof(dir))) < 0 || (err = nmc_rundir_verify(dir)) < 0)
        return err;
    if (!(ids = malloc(sizeof(*ids))))
        return -ENOMEM;
    if ((err = scan_ids(dir, ids->ctl, ids->mem)) < 0) {
        free(ids);
        return err;
    }
    for (uint32_t id = 2; id < ID_LIMIT; id++)
        if (has(ids->ctl, id))
            collect(dir, (uint16_t)id, false, &rep);
    free(ids);
    if ((names = nmc_names_lock(dir)) >= 0) {
        remove_orphans(dir, &rep);
        nmc_names_unlock(names);
    }
    for (uint32_t k = 1; k < NMC_MAX_KINDS; k++) {
        const struct nmc_transport_ops *ops = nmc_transport_of(k);
        if (ops && ops->rundir_gc)
            rep.other += ops->rundir_gc(dir);
    }
    if (out)
        *out = rep;
    return 0;
}

/* -- regions of another build ------------------------------------------------ */

/* Is fd a control file of another nmcompat build: the magic every build
 * writes first, then another layout stamp or version?  Nothing after
 * those is read: the rest is that build's layout. */
static bool foreign_ctl(int fd)
{
    struct nmc_region_hdr hdr;

    return pread(fd, &hdr, offsetof(struct nmc_region_hdr, mem_id), 0) ==
               (ssize_t)offsetof(struct nmc_region_hdr, mem_id) &&
           hdr.magic == NMC_REGION_MAGIC &&
           (hdr.layout != nmc_layout_hash() || hdr.version != NMC_REGION_VERSION);
}

/* Does another open file description lock any byte of fd?  Every build's
 * holders keep a lock on their region's control file while they live
 * (the reaper's rule); with no layout known, any byte counts. */
static bool any_lock(int fd)
{
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };

    return fcntl(fd, F_OFD_GETLK, &fl) != 0 || fl.l_type != F_UNLCK;
}

static int open_region_file(const char *rundir, const char *kind, uint16_t id, int flags)
{
    char path[256];

    snprintf(path, sizeof(path), "%s/%s.%u", rundir, kind, (unsigned)id);
    return open(path, flags | O_CLOEXEC | O_NOFOLLOW);
}

/* Region id of another build: 1 held, 0 nobody holds it, -EINVAL not one. */
static int foreign_state(const char *rundir, uint16_t id)
{
    int ctl = open_region_file(rundir, "ctl", id, O_RDONLY), mem, held;

    if (ctl < 0)
        return -errno;
    if (!foreign_ctl(ctl)) {
        close(ctl);
        return -EINVAL;
    }
    held = any_lock(ctl);
    if (!held && (mem = open_region_file(rundir, "mem", id, O_RDONLY)) >= 0) {
        held = any_lock(mem);
        close(mem);
    }
    close(ctl);
    return held;
}

int nmc_region_foreign(const char *rundir, uint16_t mem_id)
{
    char dir[160];
    int err;

    if ((err = nmc_rundir_resolve(rundir, dir, sizeof(dir))) < 0)
        return err;
    return foreign_state(dir, mem_id);
}

/* Under the name lock: remove region id of another build if nobody holds
 * it, holding a write lock on its whole control file meanwhile (an open
 * of any build then waits, and finds the file unlinked after).  1 removed,
 * 0 held, -errno. */
static int remove_foreign(const char *rundir, uint16_t id)
{
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
    int ctl = open_region_file(rundir, "ctl", id, O_RDWR), mem, err = 1;
    char name[32];

    if (ctl < 0)
        return -errno;
    if (!foreign_ctl(ctl))
        err = -EINVAL;
    else if (fcntl(ctl, F_OFD_SETLK, &fl) != 0)
        err = 0;
    else if ((mem = open_region_file(rundir, "mem", id, O_RDONLY)) >= 0) {
        err = any_lock(mem) ? 0 : 1;
        close(mem);
    }
    if (err == 1) {                     /* memory file first, control file last (reap.c) */
        snprintf(name, sizeof(name), "mem.%u", (unsigned)id);
        unlink_path(rundir, name);
        snprintf(name, sizeof(name), "ctl.%u", (unsigned)id);
        unlink_path(rundir, name);
    }
    close(ctl);
    return err;
}

int nmc_rundir_foreign(const char *rundir, int remove, struct nmc_foreign_report *out)
{
    struct nmc_foreign_report rep = { 0 };
    uint64_t *ids;
    char dir[160];
    int names = -1, err, st;

    if ((err = nmc_rundir_resolve(rundir, dir, sizeof(dir))) < 0 || (err = nmc_rundir_verify(dir)) < 0)
        return err;
    if (!(ids = calloc(ID_LIMIT / 64, sizeof(*ids))))
        return -ENOMEM;
    if ((err = scan_ids(dir, ids, NULL)) == 0 && remove && (names = err = nmc_names_lock(dir)) >= 0)
        err = 0;
    for (uint32_t id = 2; err == 0 && id < ID_LIMIT; id++) {
        if (!has(ids, id) || (st = foreign_state(dir, (uint16_t)id)) < 0)
            continue;
        rep.found++;
        rep.held += st == 1;
        if (remove && st == 0) {
            st = remove_foreign(dir, (uint16_t)id);
            rep.removed += st == 1;
            rep.held += st == 0;        /* taken meanwhile */
        }
    }
    if (names >= 0)
        nmc_names_unlock(names);
    free(ids);
    if (out && err == 0)
        *out = rep;
    return err;
}
