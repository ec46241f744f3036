/*
 * nmd_file.c -- the process's emulated /dev/netmap descriptors: which fd
 * numbers name which description, binding one to a port, mapping it.
 *
 * The table is two-level (chunks of fd numbers allocated on first use and
 * never freed); `table_lock` guards it and every entry's names (refs).  An
 * entry lives while an fd number names it or a call is using it (nmd_get ..
 * nmd_put), as the kernel keeps a file while a call uses it: a close from
 * another thread unnames the fd at once, and the last of the two to go
 * closes the port.  Calls take no lock: an entry's `state` counts its users
 * and says CLOSED (no name left) and DONE (finished, its port closed), and
 * finishing is one compare-and-swap from "CLOSED, no user".  Entries are
 * never freed but kept for reuse, so a call that loaded one just before it
 * was finished only ever touches an entry, and sees it is not the fd's
 * any more.  Each entry knows its file (device and inode),
 * so a number that was closed behind the emulation's back (close_range, a
 * raw syscall) and reused is told apart where it matters: close, mmap and
 * the control requests (nmd_get_checked).
 */
#include "nmd.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define CHUNK_BITS  10
#define CHUNK       (1u << CHUNK_BITS)
#define CHUNKS      1024u               /* fd numbers below 1,048,576 */

#define F_CLOSED  0x80000000u            /* state: no fd number names it */
#define F_DONE    0x40000000u            /* state: finished */
#define F_USERS   0x3fffffffu            /* state: calls using it */

static struct nmd_file **_Atomic chunks[CHUNKS];
static struct nmd_file *pool;           /* finished entries, for reuse */
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;

/* fork() while another thread holds the lock: the child's copy is free. */
static void lock_table(void) { pthread_mutex_lock(&table_lock); }
static void unlock_table(void) { pthread_mutex_unlock(&table_lock); }

__attribute__((constructor)) static void table_init(void)
{
    pthread_atfork(lock_table, unlock_table, unlock_table);
}

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

/* A hint, without a reference: is fd emulated? */
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

static bool unname(int fd, struct nmd_file *f);

/* put, under table_lock, for a number the kernel has just given out (open,
 * dup): an entry still there is stale (its number was closed behind our
 * back, or adopted by another thread just before that) and is unnamed;
 * *was is set when that was its last name, for the caller to finish after
 * letting the lock go. */
static int put_over(int fd, struct nmd_file *f, struct nmd_file **was)
{
    struct nmd_file *old = nmd_lookup(fd);

    *was = old && unname(fd, old) ? old : NULL;
    return put(fd, f);
}

static void know_file(struct nmd_file *f, int fd)
{
    struct stat st;

    if (fstat(fd, &st) == 0) {
        f->dev = st.st_dev;
        f->ino = st.st_ino;
    }
}

static bool still_names(const struct nmd_file *f, int fd)
{
    struct stat st;

    return fstat(fd, &st) == 0 && st.st_dev == f->dev && st.st_ino == f->ino;
}

/* A fresh entry: from the pool (its count of users kept: a late call may
 * still be leaving it) or new. */
static struct nmd_file *alloc_file(void)
{
    struct nmd_file *f;

    pthread_mutex_lock(&table_lock);
    if ((f = pool))
        pool = f->next_free;
    pthread_mutex_unlock(&table_lock);
    if (!f)
        return calloc(1, sizeof(*f));
    f->refs = 0;
    f->port = NULL;
    f->dev = 0;
    f->ino = 0;
    f->next_free = NULL;
    memset(&f->info, 0, sizeof(f->info));
    __atomic_and_fetch(&f->state, F_USERS, __ATOMIC_ACQ_REL);
    return f;
}

/* Finish f if it is closed and unused, once: the port closes (its holder
 * lives on if another process has the descriptor: nmc_port_close) and the
 * entry goes back to the pool. */
static void try_finish(struct nmd_file *f)
{
    uint32_t closed = F_CLOSED;

    if (!__atomic_compare_exchange_n(&f->state, &closed, F_CLOSED | F_DONE, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        return;                         /* in use: its last user finishes it */
    if (f->port)
        nmc_port_close(f->port);
    f->port = NULL;
    pthread_mutex_lock(&table_lock);
    f->next_free = pool;
    pool = f;
    pthread_mutex_unlock(&table_lock);
}

/* fd no longer names f.  Under table_lock; true when that was its last
 * name: the caller then calls try_finish after letting the lock go (the
 * port's close calls close(2), which comes back through here). */
static bool unname(int fd, struct nmd_file *f)
{
    struct nmd_file **s = slot_of(fd, false);

    if (s)
        __atomic_store_n(s, NULL, __ATOMIC_RELEASE);
    if (--f->refs)
        return false;
    __atomic_or_fetch(&f->state, F_CLOSED, __ATOMIC_ACQ_REL);
    return true;
}

static void finish(struct nmd_file *f)
{
    try_finish(f);
}

/* A reference for one call, with no lock and no system call. */
struct nmd_file *nmd_get(int fd)
{
    struct nmd_file *f = nmd_lookup(fd);
    uint32_t was;

    if (!f)
        return NULL;
    was = __atomic_fetch_add(&f->state, 1, __ATOMIC_ACQ_REL);
    if ((was & F_CLOSED) || nmd_lookup(fd) != f) {
        nmd_put(f);                     /* closed meanwhile, or the fd names another now */
        return NULL;
    }
    return f;
}

/* nmd_get, and fd still names the file the entry was made for; an entry
 * whose number was closed behind our back is dropped. */
struct nmd_file *nmd_get_checked(int fd)
{
    struct nmd_file *f = nmd_get(fd);

    if (f && !still_names(f, fd)) {
        nmd_put(f);
        nmd_forget(fd);
        return NULL;
    }
    return f;
}

void nmd_put(struct nmd_file *f)
{
    if (__atomic_sub_fetch(&f->state, 1, __ATOMIC_ACQ_REL) == F_CLOSED)
        try_finish(f);                  /* the last user of a closed entry */
}

/* A new unbound descriptor: a description of /dev/null until REGISTER. */
int nmd_open(int flags)
{
    struct nmd_file *f = alloc_file(), *was = NULL;
    int fd, err;

    if (!f)
        return -ENOMEM;
    fd = nmd_real.open("/dev/null", O_RDWR | (flags & O_CLOEXEC));
    err = fd < 0 ? -errno : 0;
    if (fd >= 0) {
        f->refs = 1;
        know_file(f, fd);
        pthread_mutex_lock(&table_lock);
        err = put_over(fd, f, &was);
        pthread_mutex_unlock(&table_lock);
        if (was)
            finish(was);
    }
    if (err < 0) {
        if (fd >= 0)
            nmd_real.close(fd);
        __atomic_or_fetch(&f->state, F_CLOSED, __ATOMIC_ACQ_REL);
        try_finish(f);                  /* back to the pool */
        return err;
    }
    return fd;
}

/* close(fd): 1 if it was ours (closed), 0 if not (the caller closes it).
 * The number is unnamed and closed under the lock, so no other thread
 * can be given it while the table still says it is ours. */
int nmd_close(int fd)
{
    struct nmd_file *f;
    bool done = false;

    if (!nmd_lookup(fd))
        return 0;                       /* not ours: no lock on the way to close(2) */
    pthread_mutex_lock(&table_lock);
    if ((f = nmd_lookup(fd))) {
        if (still_names(f, fd)) {
            nmd_real.close(fd);         /* first: the port's close asks who else has it */
            done = unname(fd, f);
        } else {
            done = unname(fd, f);       /* closed behind our back and reused: not ours */
            f = (struct nmd_file *)((uintptr_t)f | 1);
        }
    }
    pthread_mutex_unlock(&table_lock);
    if (!f)
        return 0;
    if ((uintptr_t)f & 1) {
        f = (struct nmd_file *)((uintptr_t)f & ~(uintptr_t)1);
        if (done)
            finish(f);
        return 0;
    }
    if (done)
        finish(f);
    return 1;
}

/* fd was closed by the kernel (dup2 onto it, close_range): unnamed. */
void nmd_forget(int fd)
{
    struct nmd_file *f;
    bool done = false;

    if (!nmd_lookup(fd))
        return;
    pthread_mutex_lock(&table_lock);
    if ((f = nmd_lookup(fd)))
        done = unname(fd, f);
    pthread_mutex_unlock(&table_lock);
    if (done)
        finish(f);
}

void nmd_forget_range(unsigned first, unsigned last)
{
    for (unsigned c = first >> CHUNK_BITS; c < CHUNKS && c <= (last >> CHUNK_BITS); c++) {
        if (!__atomic_load_n(&chunks[c], __ATOMIC_ACQUIRE))
            continue;
        for (unsigned i = 0; i < CHUNK; i++) {
            unsigned fd = (c << CHUNK_BITS) | i;
            if (fd >= first && fd <= last && nmd_lookup((int)fd))
                nmd_forget((int)fd);
        }
    }
}

/* newfd (already made by the kernel) names oldfd's description. */
int nmd_dup(int oldfd, int newfd)
{
    struct nmd_file *f, *was = NULL;
    int err = 0;

    pthread_mutex_lock(&table_lock);
    if ((f = nmd_lookup(oldfd)) && newfd != oldfd && (err = put_over(newfd, f, &was)) == 0)
        f->refs++;
    pthread_mutex_unlock(&table_lock);
    if (was)
        finish(was);
    return err;
}

/* Undo a publication of f under fd (nmd_adopt): unnamed if fd still names
 * it, and finished with the caller's reference. */
static void unpublish(int fd, struct nmd_file *f)
{
    pthread_mutex_lock(&table_lock);
    if (nmd_lookup(fd) == f)
        unname(fd, f);                  /* marks it closed: the put below finishes it */
    pthread_mutex_unlock(&table_lock);
    nmd_put(f);
}

/* A new entry for port, published under fd unless fd names an entry
 * already (another thread adopted it first: that one, referenced).  *mine
 * says which. */
static struct nmd_file *publish(int fd, struct nmc_port *port, bool *mine)
{
    struct nmd_file *f = alloc_file(), *was;
    int err = 0;

    *mine = false;
    if (!f) {
        nmc_port_close(port);
        return NULL;
    }
    f->refs = 1;
    f->port = port;
    know_file(f, fd);
    nmc_port_info(port, &f->info);
    __atomic_fetch_add(&f->state, 1, __ATOMIC_ACQ_REL);     /* the caller's reference */
    pthread_mutex_lock(&table_lock);
    if ((was = nmd_lookup(fd)))
        __atomic_fetch_add(&was->state, 1, __ATOMIC_ACQ_REL);
    else
        err = put(fd, f);
    pthread_mutex_unlock(&table_lock);
    if (was || err < 0) {
        f->refs = 0;
        __atomic_or_fetch(&f->state, F_CLOSED, __ATOMIC_ACQ_REL);
        nmd_put(f);                     /* its port closes with it, back to the pool */
        return was;
    }
    *mine = true;
    return f;
}

/* fd, unknown here, may be a device descriptor another process registered
 * (received with SCM_RIGHTS, or kept across exec): its port, adopted
 * (nmc_port_adopt), under that number.  Returned as by nmd_get; NULL if it
 * is none.  Another thread may close fd meanwhile and the number be reused
 * (the engine's own close of a port opens the control file there): the
 * adoption fails if the number stops naming a device descriptor before the
 * holder is found, and the entry, once published, stays only if fd still
 * names the port's device descriptor (a close that missed the entry has
 * closed the number; one that came later goes through nmd_close; an open
 * that reuses the number unnames what is there, put_over).  A concurrent
 * REGISTER's own device descriptor, adopted under its temporary number, is
 * unnamed where nmd_bind closes it (replace_all). */
__thread int nmd_adopt_err;

struct nmd_file *nmd_adopt(int fd)
{
    struct nmd_file *f;
    struct nmc_port *port = NULL;
    bool mine;
    int err = nmc_port_adopt(fd, &port);
    struct nmc_adopt_info ai;

    if ((err = nmd_nic_adopted(err == 0 ? port : NULL, err)) < 0 && port) {
        nmc_port_close(port);           /* adopted, but its XDP link could not be held */
        port = NULL;
    }
    nmc_port_adopt_info(&ai);
    nmd_adopt_err = err == -EOWNERDEAD || err == -EBUSY || err == -EXDEV ||
                    ((err == -EOPNOTSUPP || err == -EINVAL) && ai.kind[0]) ? err : 0;
    if (err < 0)
        return NULL;
    if ((f = publish(fd, port, &mine)) && mine && !nmc_port_is_device(port, fd)) {
        unpublish(fd, f);
        return NULL;
    }
    return f;
}

/* Put description `src` in place at number n, keeping n's close-on-exec
 * flag: 0 or -errno. */
static int replace_at(int src, int n)
{
    int fdflags = nmd_real.fcntl(n, F_GETFD);

    if (fdflags < 0 || nmd_real.dup3(src, n, (fdflags & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0)
        return -errno;
    return 0;
}

/* The numbers other than fd that name f (dups made before REGISTER) get
 * description src too, as they share fd's file in netmap: a REGISTER or
 * its undo through one number is seen through every one.  Under
 * table_lock, so none is closed or dup'ed meanwhile; a number closed
 * behind our back (it no longer names f's file) is left alone. */
static void replace_other_names(struct nmd_file *f, int fd, int src)
{
    unsigned left = f->refs - 1;

    for (unsigned c = 0; left && c < CHUNKS; c++) {
        struct nmd_file **chunk = __atomic_load_n(&chunks[c], __ATOMIC_ACQUIRE);
        for (unsigned i = 0; chunk && left && i < CHUNK; i++) {
            int n = (int)((c << CHUNK_BITS) | i);
            if (n == fd || __atomic_load_n(&chunk[i], __ATOMIC_ACQUIRE) != f)
                continue;
            left--;
            if (still_names(f, n))
                replace_at(src, n);
        }
    }
}

/* fd's description, and that of every other number naming f, becomes src
 * (f then knows src's file), and src is closed; -EBADF when fd no longer
 * names f (another thread closed it: the number may be another file now).
 * All under table_lock, so the number is not closed or reused between the
 * check and the dup3.  src is a number of its own until that close, which
 * another thread may have adopted meanwhile (a netmap ioctl on a number
 * it does not own while a REGISTER's device descriptor had it): that entry
 * would outlive the number, so it is unnamed with it. */
static int replace_all(int fd, struct nmd_file *f, int src)
{
    struct nmd_file *stale;
    int err = -EBADF;

    pthread_mutex_lock(&table_lock);
    if (nmd_lookup(fd) == f && still_names(f, fd) && (err = replace_at(src, fd)) == 0) {
        if (f->refs > 1)
            replace_other_names(f, fd, src);
        know_file(f, fd);
    }
    nmd_real.close(src);
    if ((stale = nmd_lookup(src)) && !unname(src, stale))
        stale = NULL;
    pthread_mutex_unlock(&table_lock);
    if (stale)
        finish(stale);
    return err;
}

/* Tests force interleavings with another thread where a REGISTER has made
 * its device descriptor and not yet put it in place: a program that
 * exports nmcompat_test_bind_hook (linked with -rdynamic) is called there
 * with the registering number and the device descriptor's. */
static void bind_hook(int fd, int dev)
{
    static void (*hook)(int, int);
    static int looked;

    if (!__atomic_load_n(&looked, __ATOMIC_ACQUIRE)) {
        __atomic_store_n(&hook, (void (*)(int, int))dlsym(RTLD_DEFAULT, "nmcompat_test_bind_hook"),
                         __ATOMIC_RELEASE);
        __atomic_store_n(&looked, 1, __ATOMIC_RELEASE);
    }
    if (__atomic_load_n(&hook, __ATOMIC_ACQUIRE))
        hook(fd, dev);
}

/* REGISTER succeeded: fd's description becomes the port's device
 * descriptor, under the same number and close-on-exec flag, and so does
 * that of every dup of fd made before. */
int nmd_bind(int fd, struct nmd_file *f, struct nmc_port *port)
{
    int dev = nmc_port_dev_fd(port), err;

    if (dev < 0)
        return dev;
    bind_hook(fd, dev);
    if ((err = replace_all(fd, f, dev)) == 0)
        f->port = port;
    return err;
}

/* Undo nmd_bind (a REGISTER failed after it): fd and its dups name again
 * the description `null` keeps (fd's /dev/null, dup'ed before the
 * REGISTER: nothing needs opening here, so a process out of descriptors
 * (EMFILE) is undone too); null is closed. */
void nmd_unbind(int fd, struct nmd_file *f, int null)
{
    replace_all(fd, f, null);
    nmc_port_close(f->port);            /* the device descriptor is gone: the holder too */
    f->port = NULL;
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
