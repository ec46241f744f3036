/*
 * nmd_file.c -- the process's emulated /dev/netmap descriptors: which fd
 * numbers name which description, binding one to a port, mapping it.
 *
 * The table is two-level (chunks of fd numbers allocated on first use and
 * never freed), so a lookup on the data path (every NIOC*SYNC and poll)
 * takes no lock; inserting and removing take `table_lock`.
 */
#include "nmd.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define CHUNK_BITS  10
#define CHUNK       (1u << CHUNK_BITS)
#define CHUNKS      1024u               /* fd numbers below 1,048,576 */

static struct nmd_file **_Atomic chunks[CHUNKS];
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;

static struct nmd_file **slot_of(int fd, bool make)
{
    unsigned c = (unsigned)fd >> CHUNK_BITS;
    struct nmd_file **chunk;

    if (fd < 0 || c >= CHUNKS)
        return NULL;
    chunk = __atomic_load_n(&chunks[c], __ATOMIC_ACQUIRE);
    if (!chunk && make) {
        chunk = calloc(CHUNK, sizeof(*chunk));
        if (chunk)
            __atomic_store_n(&chunks[c], chunk, __ATOMIC_RELEASE);
    }
    return chunk ? &chunk[(unsigned)fd & (CHUNK - 1)] : NULL;
}

struct nmd_file *nmd_lookup(int fd)
{
    struct nmd_file **s = slot_of(fd, false);

    return s ? __atomic_load_n(s, __ATOMIC_ACQUIRE) : NULL;
}

static int put(int fd, struct nmd_file *f)
{
    struct nmd_file **s = slot_of(fd, true);

    if (!s)
        return -EMFILE;
    __atomic_store_n(s, f, __ATOMIC_RELEASE);
    return 0;
}

/* A new unbound descriptor: a description of /dev/null until REGISTER. */
int nmd_open(int flags)
{
    struct nmd_file *f = calloc(1, sizeof(*f));
    int fd, err;

    if (!f)
        return -ENOMEM;
    fd = nmd_real.open("/dev/null", O_RDWR | (flags & O_CLOEXEC));
    if (fd < 0) {
        err = -errno;
        free(f);
        return err;
    }
    f->refs = 1;
    pthread_mutex_lock(&table_lock);
    err = put(fd, f);
    pthread_mutex_unlock(&table_lock);
    if (err < 0) {
        nmd_real.close(fd);
        free(f);
        return err;
    }
    return fd;
}

/* fd no longer names f (closed, or replaced by dup2).  Under table_lock;
 * returns f when that was its last name: the caller finishes it with
 * finish() after letting the lock go (the port's close calls close(2),
 * which comes back here). */
static struct nmd_file *unname(int fd, struct nmd_file *f)
{
    struct nmd_file **s = slot_of(fd, false);

    if (s)
        __atomic_store_n(s, NULL, __ATOMIC_RELEASE);
    return --f->refs ? NULL : f;
}

/* The last name is gone: the port closes (its holder lives on if another
 * process has the descriptor: nmc_port_close). */
static void finish(struct nmd_file *f)
{
    if (!f)
        return;
    if (f->port)
        nmc_port_close(f->port);
    free(f);
}

int nmd_close(int fd)
{
    struct nmd_file *f, *last;

    if (!nmd_lookup(fd))
        return 0;                       /* not ours: no lock on the way to close(2) */
    pthread_mutex_lock(&table_lock);
    if (!(f = nmd_lookup(fd))) {
        pthread_mutex_unlock(&table_lock);
        return 0;
    }
    nmd_real.close(fd);                 /* first: the port's close asks who else has it */
    last = unname(fd, f);
    pthread_mutex_unlock(&table_lock);
    finish(last);
    return 1;
}

void nmd_forget(int fd)
{
    struct nmd_file *f, *last = NULL;

    if (!nmd_lookup(fd))
        return;
    pthread_mutex_lock(&table_lock);
    if ((f = nmd_lookup(fd)))
        last = unname(fd, f);
    pthread_mutex_unlock(&table_lock);
    finish(last);
}

/* newfd (already made by the kernel) names oldfd's description. */
int nmd_dup(int oldfd, int newfd)
{
    struct nmd_file *f, *last = NULL;
    int err = 0;

    pthread_mutex_lock(&table_lock);
    if ((f = nmd_lookup(oldfd)) && newfd != oldfd) {
        struct nmd_file *was = nmd_lookup(newfd);
        if (was)
            last = unname(newfd, was);
        if ((err = put(newfd, f)) == 0)
            f->refs++;
    }
    pthread_mutex_unlock(&table_lock);
    finish(last);
    return err;
}

/* fd, unknown here, may be a device descriptor another process registered
 * (received with SCM_RIGHTS, or kept across exec): its port, adopted
 * (nmc_port_adopt), under that number.  NULL if it is none. */
struct nmd_file *nmd_adopt(int fd)
{
    struct nmd_file *f, *was;
    struct nmc_port *port;

    if (nmc_port_adopt(fd, &port) < 0)
        return NULL;
    if (!(f = calloc(1, sizeof(*f)))) {
        nmc_port_close(port);           /* fd still holds it: only our copy goes */
        return NULL;
    }
    f->refs = 1;
    f->port = port;
    f->tx_poll = true;
    nmc_port_info(port, &f->info);
    pthread_mutex_lock(&table_lock);
    if (!(was = nmd_lookup(fd)) && put(fd, f) < 0)
        was = NULL, f->refs = 0;
    pthread_mutex_unlock(&table_lock);
    if (was || !f->refs) {              /* another thread adopted it first, or no room */
        nmc_port_close(port);
        free(f);
        return was;
    }
    return f;
}

/* REGISTER succeeded: fd's description becomes the port's device
 * descriptor, under the same number and close-on-exec flag. */
int nmd_bind(int fd, struct nmd_file *f, struct nmc_port *port)
{
    int dev = nmc_port_dev_fd(port), fdflags, err = 0;

    if (dev < 0)
        return dev;
    fdflags = nmd_real.fcntl(fd, F_GETFD);
    if (fdflags < 0 ||
        nmd_real.dup3(dev, fd, (fdflags & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0)
        err = -errno;
    nmd_real.close(dev);
    if (err == 0)
        f->port = port;
    return err;
}

/* mmap of a registered descriptor: its netmap memory, [off, off + len)
 * within nr_memsize (EINVAL otherwise, and before REGISTER, as netmap). */
void *nmd_mmap(struct nmd_file *f, void *addr, size_t len, int prot, int flags, off_t off)
{
    void *map;
    int memfd, err;

    if (!f->port || off < 0 || len == 0 || (uint64_t)off > f->info.nr_memsize ||
        len > f->info.nr_memsize - (uint64_t)off) {
        errno = EINVAL;
        return MAP_FAILED;
    }
    memfd = nmd_real.open(f->info.region_path, ((prot & PROT_WRITE) ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (memfd < 0)
        return MAP_FAILED;
    map = nmd_real.mmap(addr, len, prot, flags, memfd, off);
    err = errno;
    nmd_real.close(memfd);
    errno = err;
    return map;
}
