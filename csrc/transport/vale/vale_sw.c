/*
 * vale_sw.c -- VALE switches: the switch file and its port table.
 *
 * <rundir>/vale.<sw> (mode 0600) holds the switch: up to 254 port entries
 * (state, generation, where the port's rings are: region mem_id, record,
 * RX ring objects) and VALE's 1024-entry learning table.  Entries change
 * only under the switch lock (an OFD lock on byte 0 of the file); senders
 * read them lock-free and re-check the generation before using a cached
 * mapping.
 */
#include "nmc_vale.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

void nmc_sw_path(const char *rundir, const char *sw, char *out, size_t len)
{
    snprintf(out, len, "%s/vale.%s", rundir, sw);
}

bool nmc_sw_name_ok(const char *sw)
{
    size_t n = strlen(sw);

    if (n < 4 || n >= NMC_SW_NAMELEN || strncmp(sw, "vale", 4) != 0)
        return false;
    for (size_t i = 4; i < n; i++) {
        char c = sw[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

/* $NMCOMPAT_BRIDGE_BATCH for a switch this process creates: NMC_BDG_BATCH
 * when unset, -EINVAL unless a number in 1..NMC_BDG_BATCH_MAX. */
static int env_batch(uint32_t *batch)
{
    return nmc_env_u32_checked("NMCOMPAT_BRIDGE_BATCH", NMC_BDG_BATCH, 1, NMC_BDG_BATCH_MAX, false,
                               batch);
}

/* Open the switch file (creating it with NMC_SW_CREATE) and, with
 * NMC_SW_LOCK, take the switch lock; a file unlinked while we waited
 * (an empty switch removed) is opened again. */
static int open_switch(const char *path, int flags)
{
    for (;;) {
        struct stat st;
        int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW |
                            ((flags & NMC_SW_CREATE) ? O_CREAT : 0), 0600);
        int err;
        if (fd < 0)
            return -errno;
        if (!(flags & NMC_SW_LOCK))
            return fd;
        if ((err = nmc_lock_byte(fd, NMC_SW_LOCK_BYTE, F_WRLCK, true)) < 0) {
            close(fd);
            return err;
        }
        if (fstat(fd, &st) < 0 || st.st_nlink > 0)
            return fd;
        close(fd);
        if (!(flags & NMC_SW_CREATE))
            return -ENOENT;
    }
}

/* Write a new switch header into a file that has none: just created, or
 * left empty or zeroed by a creator killed before the magic was stored.
 * Only done under the switch lock, so nobody is writing it meanwhile. */
static int init_switch(struct nmc_switch *m, const char *sw)
{
    uint32_t batch;

    if (__atomic_load_n(&m->magic, __ATOMIC_ACQUIRE) != 0)
        return 0;
    if (env_batch(&batch) < 0)
        return -EINVAL;
    memset(m, 0, sizeof(*m));
    nmc_copy_name(m->name, sizeof(m->name), sw);
    m->version = NMC_SW_VERSION;
    m->bridge_batch = batch;
    nmc_store_rel(&m->magic, NMC_SW_MAGIC);
    return 0;
}

/* Map the switch file; -ENOENT if absent (without NMC_SW_CREATE).  The
 * mapping keeps the file open (m->fd): for the lock, and for the liveness
 * bytes of the ports. */
int nmc_sw_attach(const char *rundir, const char *sw, int flags, struct nmc_swmap *m)
{
    char path[256];
    struct stat st;
    int fd, err;

    m->sw = NULL;
    m->locked = false;
    if (!nmc_sw_name_ok(sw))
        return -EINVAL;
    nmc_sw_path(rundir, sw, path, sizeof(path));
    if ((fd = open_switch(path, flags)) < 0)
        return fd;
    err = -EACCES;
    if (fstat(fd, &st) < 0 || st.st_uid != geteuid() || !S_ISREG(st.st_mode))
        goto fail;
    if ((flags & NMC_SW_CREATE) && st.st_size == 0) {
        /* claimed whole: senders write the learning table at any time */
        if (fallocate(fd, 0, 0, sizeof(struct nmc_switch)) < 0) {
            err = -errno;
            unlink(path);               /* empty, and ours: the lock is held */
            goto fail;
        }
        st.st_size = sizeof(struct nmc_switch);
    }
    err = -EINVAL;
    if ((size_t)st.st_size != sizeof(struct nmc_switch))
        goto fail;
    m->sw = nmc_map_shared(sizeof(struct nmc_switch), fd);
    if (m->sw == MAP_FAILED) {
        m->sw = NULL;
        err = -errno;
        goto fail;
    }
    if ((flags & NMC_SW_CREATE) && (err = init_switch(m->sw, sw)) < 0) {
        munmap(m->sw, sizeof(struct nmc_switch));
        m->sw = NULL;
        unlink(path);                   /* never a switch, and ours: the lock is held */
        goto fail;
    }
    err = -EINVAL;
    if (__atomic_load_n(&m->sw->magic, __ATOMIC_ACQUIRE) != NMC_SW_MAGIC ||
        m->sw->version != NMC_SW_VERSION) {
        munmap(m->sw, sizeof(struct nmc_switch));
        m->sw = NULL;
        goto fail;
    }
    m->fd = fd;
    m->locked = (flags & NMC_SW_LOCK) != 0;
    nmc_copy_name(m->name, sizeof(m->name), sw);
    return 0;
fail:
    close(fd);
    return err;
}

void nmc_sw_detach(struct nmc_swmap *m)
{
    if (m->sw) {
        munmap(m->sw, sizeof(struct nmc_switch));
        close(m->fd);           /* releases the lock and the liveness bytes */
    }
    m->sw = NULL;
    m->locked = false;
}

/* Does some process hold port q (a read lock on its liveness byte)? */
bool nmc_sw_port_held(const struct nmc_swmap *m, uint32_t q)
{
    struct flock fl = {
        .l_type = F_WRLCK, .l_whence = SEEK_SET,
        .l_start = NMC_SW_LIVE_BASE + (off_t)(q % NMC_SW_MAXPORTS), .l_len = 1,
    };

    if (fcntl(m->fd, F_OFD_GETLK, &fl) < 0)
        return true;                    /* cannot tell: keep it */
    return fl.l_type != F_UNLCK;
}

/* Mark port q held by us for as long as this mapping is. */
int nmc_sw_hold(struct nmc_swmap *m, uint32_t q)
{
    return nmc_lock_byte(m->fd, NMC_SW_LIVE_BASE + (off_t)(q % NMC_SW_MAXPORTS), F_RDLCK, false);
}

int nmc_sw_active(const struct nmc_switch *sw)
{
    int n = 0;

    for (uint32_t i = 0; i < NMC_SW_MAXPORTS; i++)
        n += sw->ports[i].state == NMC_LIVE;
    return n;
}

int nmc_sw_find(const struct nmc_switch *sw, const char *name)
{
    for (uint32_t i = 0; i < NMC_SW_MAXPORTS; i++)
        if (sw->ports[i].state == NMC_LIVE && strncmp(sw->ports[i].name, name, NMC_NAMELEN) == 0)
            return (int)i;
    return -ENOENT;
}

/* Add a port whose rings are record `rec` of region `mem_id`. */
int nmc_sw_add(struct nmc_switch *sw, const char *name, uint16_t mem_id, uint32_t recidx,
               const struct nmc_port_rec *rec)
{
    if (nmc_sw_find(sw, name) >= 0)
        return -EBUSY;
    if (nmc_sw_active(sw) + 2 >= (int)NMC_BDG_MAXPORTS)
        return -ENOMEM;                 /* netmap: active + 2 < 254 */
    for (uint32_t i = 0; i < NMC_SW_MAXPORTS; i++) {
        struct nmc_sw_port *sp = &sw->ports[i];
        uint32_t gen;
        if (sp->state != NMC_FREE)
            continue;
        gen = sp->gen + 1;
        memset(sp, 0, sizeof(*sp));
        nmc_copy_name(sp->name, sizeof(sp->name), name);
        sp->mem_id = mem_id;
        sp->stream_min = NMC_VALE_STREAM_MIN;  /* until an opener that reads says otherwise */
        sp->pid = getpid();
        sp->rec = recidx;
        sp->nrx = rec->nrings[0][1];
        sp->ntx = rec->nrings[0][0];
        sp->rx_first_obj = rec->first_obj[0][1];
        sp->rx_slots = rec->nslots[0][1];
        sp->gen = gen;
        __atomic_store_n(&sp->state, NMC_LIVE, __ATOMIC_RELEASE);
        return (int)i;
    }
    return -ENOMEM;
}

void nmc_sw_remove(struct nmc_switch *sw, uint32_t idx)
{
    struct nmc_sw_port *sp = &sw->ports[idx % NMC_SW_MAXPORTS];

    __atomic_store_n(&sp->state, NMC_FREE, __ATOMIC_RELEASE);
    __atomic_fetch_add(&sp->gen, 1, __ATOMIC_RELEASE);
    for (uint32_t i = 0; i < NMC_BDG_HASH; i++) {      /* forget what it taught */
        uint64_t e = sw->ht[i];
        if ((e >> 63) && ((e >> 48) & 0xff) == idx)
            sw->ht[i] = 0;
    }
}

/* Unlink the switch file when no port is left (netmap frees empty bridges).
 * Under the switch lock: an attacher waiting for it sees the file unlinked
 * and opens (creates) it again. */
void nmc_sw_gc(const char *rundir, struct nmc_swmap *m)
{
    char path[256];

    if (m->sw && m->locked && nmc_sw_active(m->sw) == 0) {
        nmc_sw_path(rundir, m->name, path, sizeof(path));     /* not sw->name: user-writable */
        unlink(path);
    }
}
