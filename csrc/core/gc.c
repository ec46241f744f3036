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
#include <errno.h>
#include <fcntl.h>
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

static int scan_ids(const char *rundir, struct idset *ids)
{
    struct dirent *de;
    uint32_t id;
    DIR *d = opendir(rundir);

    if (!d)
        return errno == ENOENT || errno == ENOTDIR ? -ENXIO : -errno;
    memset(ids, 0, sizeof(*ids));
    while ((de = readdir(d)) != NULL) {
        if (parse_id(de->d_name, "ctl.", &id))
            put(ids->ctl, id);
        else if (parse_id(de->d_name, "mem.", &id))
            put(ids->mem, id);
    }
    closedir(d);
    return 0;
}

/* No process holds any holder of the region (one fcntl on every holder
 * byte of its control file); false if it cannot tell. */
static bool nobody_holds(const char *rundir, uint16_t id)
{
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
                        .l_start = NMC_LOCK_BASE, .l_len = NMC_MAX_HOLDERS };
    char path[256];
    int fd, ok;

    nmc_region_ctl_path(rundir, id, path, sizeof(path));
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
        return false;
    ok = fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type == F_UNLCK;
    close(fd);
    return ok;
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

/* Reap region id if its lock is free; counts in rep. */
static void collect(const char *rundir, uint16_t id, struct nmc_gc_report *rep)
{
    struct nmc_region r = { .fd = -1 };
    int err;

    rep->regions++;
    if ((err = nmc_region_attach(rundir, id, &r, NMC_LOCK_TRY)) < 0) {
        rep->busy += err == -EAGAIN;
        return;
    }
    if (dead_holders(&r) || unheld_ports(&r))
        rep->reaped++;
    if (nmc_region_reap(rundir, &r))
        rep->removed++;
    nmc_region_detach(&r);
}

/* The round-robin cursor of the per-open collection, a hint kept at
 * offset 4 of the name-lock file (read and written without the lock). */
#define CURSOR_OFS 4

static uint32_t cursor_get(int fd)
{
    uint32_t c = 0;

    if (fd < 0 || pread(fd, &c, sizeof(c), CURSOR_OFS) != (ssize_t)sizeof(c))
        return 0;
    return c % ID_LIMIT;
}

static void cursor_put(int fd, uint32_t c)
{
    if (fd >= 0 && pwrite(fd, &c, sizeof(c), CURSOR_OFS) < 0) {
        /* a hint: the next open starts where this one did */
    }
}

void nmc_rundir_gc_some(const char *rundir, uint32_t budget)
{
    struct nmc_gc_report rep = { 0 };
    struct idset *ids = malloc(sizeof(*ids));
    char path[256];
    uint32_t id, checked = 0;
    int fd;

    if (!ids || scan_ids(rundir, ids) < 0) {
        free(ids);
        return;
    }
    snprintf(path, sizeof(path), "%s/lock", rundir);
    fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    id = cursor_get(fd);
    for (uint32_t n = 0; n < ID_LIMIT && checked < budget; n++, id = (id + 1) % ID_LIMIT) {
        if (!has(ids->ctl, id))
            continue;
        checked++;
        if (nobody_holds(rundir, (uint16_t)id))
            collect(rundir, (uint16_t)id, &rep);
    }
    cursor_put(fd, id);
    if (fd >= 0)
        close(fd);
    free(ids);
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
 * file, a holder socket or a parent.* link of an id without one. */
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
    if (strncmp(name, "parent.", 7) == 0) {
        char link[512];
        snprintf(link, sizeof(link), "%s/%s", rundir, name);
        if ((n = readlink(link, target, sizeof(target) - 1)) <= 0)
            return false;
        target[n] = 0;
        return !parse_id(target, "mem.", &id) || !has(ids->ctl, id);
    }
    return false;
}

/* Under the name lock: stillborn regions, then orphan names. */
static void remove_orphans(const char *rundir, struct nmc_gc_report *rep)
{
    struct idset *ids = malloc(sizeof(*ids));
    struct dirent *de;
    char name[64];
    DIR *d;

    if (!ids || scan_ids(rundir, ids) < 0) {
        free(ids);
        return;
    }
    for (uint32_t id = 2; id < ID_LIMIT; id++) {
        if (has(ids->ctl, id) && stillborn(rundir, (uint16_t)id)) {
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
    free(ids);
}

int nmc_rundir_gc(const char *rundir, struct nmc_gc_report *out)
{
    struct nmc_gc_report rep = { 0 };
    struct idset *ids;
    char dir[160];
    int names, err;

    if ((err = nmc_rundir_resolve(rundir, dir, sizeof(dir))) < 0)
        return err;
    if (!(ids = malloc(sizeof(*ids))))
        return -ENOMEM;
    if ((err = scan_ids(dir, ids)) < 0) {
        free(ids);
        return err;
    }
    for (uint32_t id = 2; id < ID_LIMIT; id++)
        if (has(ids->ctl, id))
            collect(dir, (uint16_t)id, &rep);
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
