/*
 * preload.c -- the libc calls libnmcompat-netmap.so interposes (loaded by
 * `nmcompat exec` through LD_PRELOAD, or linked into a program before
 * libc).  A call that names /dev/netmap or an emulated descriptor goes to
 * the emulation (nmd_*.c); every other call goes straight to the next
 * definition (RTLD_NEXT), so the engine's own calls and the program's
 * other files are untouched.  Nothing here prints.
 */
#include "nmd.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))
#define DEV_NETMAP "/dev/netmap"

/* path names /dev/netmap (a NULL path goes on to the kernel: EFAULT).
 * libc declares path non-null; the empty asm hides that from the compiler,
 * which would otherwise drop the test. */
static bool is_dev_netmap(const char *path)
{
    __asm__("" : "+r"(path));
    return path != NULL && strcmp(path, DEV_NETMAP) == 0;
}

struct nmd_libc nmd_real;

/* Inside the emulation (and so inside the engine, whose own calls come
 * back through these symbols), every call is the real one. */
static __thread int inside __attribute__((tls_model("initial-exec")));
#define ENTER() (inside++)
#define LEAVE() (inside--)

static void resolve(void)
{
    nmd_real.open = dlsym(RTLD_NEXT, "open");
    nmd_real.close = dlsym(RTLD_NEXT, "close");
    nmd_real.ioctl = dlsym(RTLD_NEXT, "ioctl");
    nmd_real.mmap = dlsym(RTLD_NEXT, "mmap");
    nmd_real.munmap = dlsym(RTLD_NEXT, "munmap");
    nmd_real.poll = dlsym(RTLD_NEXT, "poll");
    nmd_real.ppoll = dlsym(RTLD_NEXT, "ppoll");
    nmd_real.dup3 = dlsym(RTLD_NEXT, "dup3");
    nmd_real.fcntl = dlsym(RTLD_NEXT, "fcntl");
}

__attribute__((constructor)) static void init(void)
{
    resolve();
    ENTER();
    nmd_arrive_inherited();             /* kept across exec: adopted at first use */
    LEAVE();
}

static void ready(void)
{
    if (!__atomic_load_n(&nmd_real.fcntl, __ATOMIC_ACQUIRE))
        resolve();                      /* called before our constructor ran */
}

static int fail(int err)
{
    errno = -err;
    return -1;
}

static int real_openat(int dirfd, const char *path, int flags, mode_t mode)
{
    static int (*next)(int, const char *, int, ...);

    if (!next)
        next = dlsym(RTLD_NEXT, "openat");
    return next(dirfd, path, flags, mode);
}

/* Every open: /dev/netmap is the emulation's, anything else the kernel's
 * (dirfd AT_FDCWD for open itself). */
static int open_any(int dirfd, const char *path, int flags, mode_t mode)
{
    int fd;

    ready();
    if (!is_dev_netmap(path))
        return real_openat(dirfd, path, flags, mode);
    fd = nmd_open(flags);
    return fd < 0 ? fail(fd) : fd;
}

/* The mode argument, which only O_CREAT and O_TMPFILE opens pass. */
#define MODE_ARG(flags, mode) do { va_list ap; va_start(ap, flags); \
        mode = ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) ? (mode_t)va_arg(ap, int) : 0; \
        va_end(ap); } while (0)

EXPORT int open(const char *path, int flags, ...)
{
    mode_t mode;

    MODE_ARG(flags, mode);
    return open_any(AT_FDCWD, path, flags, mode);
}

EXPORT int open64(const char *path, int flags, ...)
{
    mode_t mode;

    MODE_ARG(flags, mode);
    return open_any(AT_FDCWD, path, flags | O_LARGEFILE, mode);
}

EXPORT int __open_2(const char *path, int flags)
{
    return open_any(AT_FDCWD, path, flags, 0);
}

EXPORT int __open64_2(const char *path, int flags)
{
    return open_any(AT_FDCWD, path, flags | O_LARGEFILE, 0);
}

EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
    mode_t mode;

    MODE_ARG(flags, mode);
    return open_any(dirfd, path, flags, mode);
}

EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
    mode_t mode;

    MODE_ARG(flags, mode);
    return open_any(dirfd, path, flags | O_LARGEFILE, mode);
}

EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
    return openat(dirfd, path, flags);
}

EXPORT int __openat64_2(int dirfd, const char *path, int flags)
{
    return openat64(dirfd, path, flags);
}

EXPORT int close(int fd)
{
    int mine;

    ready();
    if (inside)
        return nmd_real.close(fd);
    ENTER();
    nmd_arrived_clear(fd);
    if (!(mine = nmd_close(fd)))
        nmd_epoll_forget(fd);           /* an epoll set with netmap members: they go */
    LEAVE();
    return mine ? 0 : nmd_real.close(fd);
}

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

EXPORT int close_range(unsigned first, unsigned last, int flags)
{
    static int (*next)(unsigned, unsigned, int);
    int rc;

    ready();
    if (!next)
        next = dlsym(RTLD_NEXT, "close_range");
    if (!next) {
        errno = ENOSYS;
        return -1;
    }
    if ((rc = next(first, last, flags)) == 0 && !inside && !(flags & CLOSE_RANGE_CLOEXEC)) {
        ENTER();
        nmd_forget_range(first, last);  /* closed: their ports close as close() would */
        nmd_arrived_clear_range(first, last);
        LEAVE();
    }
    return rc;
}

EXPORT void closefrom(int lowfd)
{
    static void (*next)(int);

    ready();
    if (!next)
        next = dlsym(RTLD_NEXT, "closefrom");
    if (next)
        next(lowfd);
    if (!inside && lowfd >= 0) {
        ENTER();
        nmd_forget_range((unsigned)lowfd, ~0u);
        nmd_arrived_clear_range((unsigned)lowfd, ~0u);
        LEAVE();
    }
}

static bool netmap_request(unsigned long req)
{
    return _IOC_TYPE(req) == 'i';       /* netmap's requests, all of type 'i' */
}

EXPORT int ioctl(int fd, unsigned long req, ...)
{
    struct nmd_file *f;
    va_list ap;
    void *arg;
    int rc;

    ready();
    va_start(ap, req);
    arg = va_arg(ap, void *);
    va_end(ap);
    if (inside)
        return nmd_real.ioctl(fd, req, arg);
    ENTER();
    if (req == NIOCTXSYNC || req == NIOCRXSYNC)
        f = nmd_get(fd);                /* the data path: no fstat */
    else
        f = nmd_get_checked(fd);
    if (!f && netmap_request(req) && !(f = nmd_adopt(fd)) && nmd_adopt_err) {
        LEAVE();                        /* a NIC port whose opener is gone */
        return fail(nmd_adopt_err);
    }
    rc = f ? nmd_ioctl(fd, f, req, arg) : 1;
    if (f)
        nmd_put(f);
    LEAVE();
    if (rc <= 0)
        return rc < 0 ? fail(rc) : 0;
    return nmd_real.ioctl(fd, req, arg);
}

EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    struct nmd_file *f;

    struct stat st;
    void *map;

    ready();
    if (inside || fd < 0 || (flags & MAP_ANONYMOUS))
        return nmd_real.mmap(addr, len, prot, flags, fd, off);
    ENTER();
    if (!(f = nmd_get_checked(fd)) && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
        !(f = nmd_adopt(fd)) && nmd_adopt_err) {
        LEAVE();                        /* a NIC port whose opener is gone */
        errno = -nmd_adopt_err;
        return MAP_FAILED;
    }
    map = f ? nmd_mmap(f, addr, len, prot, flags, off) : NULL;
    if (f)
        nmd_put(f);
    LEAVE();
    return f ? map : nmd_real.mmap(addr, len, prot, flags, fd, off);
}

EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    return mmap(addr, len, prot, flags, fd, off);
}

/* Is fd emulated: in the table, or a descriptor that arrived from
 * elsewhere (nmd_arrive.c), adopted here if it is a device descriptor.
 * For a number in the table, no system call. */
static bool emulated(int fd)
{
    struct nmd_file *f;

    if (nmd_lookup(fd))
        return true;
    if (!nmd_arrived(fd))
        return false;
    ENTER();
    if ((f = nmd_adopt_arrived(fd)))
        nmd_put(f);
    LEAVE();
    return f != NULL;
}

/* Every fd is looked at: each arrived one in the set is adopted. */
static bool any_emulated(const struct pollfd *fds, nfds_t n)
{
    bool any = false;

    for (nfds_t i = 0; i < n; i++)
        if (emulated(fds[i].fd))
            any = true;
    return any;
}

EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout)
{
    int rc;

    ready();
    if (inside || !any_emulated(fds, n))
        return nmd_real.poll(fds, n, timeout);
    ENTER();
    rc = nmd_poll(fds, n, timeout, NULL);
    LEAVE();
    return rc < 0 ? fail(rc) : rc;
}

EXPORT int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen)
{
    (void)fdslen;
    return poll(fds, n, timeout);
}

static int ms_of(const struct timespec *ts);

EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *mask)
{
    int rc;

    ready();
    if (inside || !any_emulated(fds, n) || ms_of(ts) == -2)
        return nmd_real.ppoll(fds, n, ts, mask);   /* an invalid timeout: the kernel's EINVAL */
    ENTER();
    rc = nmd_poll(fds, n, ms_of(ts), mask);
    LEAVE();
    return rc < 0 ? fail(rc) : rc;
}

EXPORT int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *mask,
                       size_t fdslen)
{
    (void)fdslen;
    return ppoll(fds, n, ts, mask);
}

static int ms_of(const struct timespec *ts)
{
    int64_t ms;

    if (!ts)
        return -1;
    if (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000L)
        return -2;                      /* invalid: the caller fails with EINVAL */
    ms = (int64_t)ts->tv_sec * 1000 + (ts->tv_nsec + 999999) / 1000000;
    return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

EXPORT int select(int nfds, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv)
{
    static int (*next)(int, fd_set *, fd_set *, fd_set *, struct timeval *);
    struct timespec ts;
    int rc;

    ready();
    if (!next)
        next = dlsym(RTLD_NEXT, "select");
    if (inside || !nmd_select_has_emulated(nfds, r, w, e, emulated))
        return next(nfds, r, w, e, tv);
    struct timespec t0, t1;
    if (tv) {
        ts.tv_sec = tv->tv_sec;
        ts.tv_nsec = tv->tv_usec * 1000;
        clock_gettime(CLOCK_MONOTONIC, &t0);
    }
    ENTER();
    rc = nmd_select(nfds, r, w, e, ms_of(tv ? &ts : NULL), NULL);
    LEAVE();
    if (tv) {                           /* Linux leaves the time not slept in *tv */
        int64_t left;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        left = ((int64_t)tv->tv_sec * 1000000 + tv->tv_usec) -
               ((int64_t)(t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000);
        left = left < 0 ? 0 : left;
        tv->tv_sec = left / 1000000;
        tv->tv_usec = left % 1000000;
    }
    return rc < 0 ? fail(rc) : rc;
}

EXPORT int pselect(int nfds, fd_set *r, fd_set *w, fd_set *e, const struct timespec *ts,
                   const sigset_t *mask)
{
    static int (*next)(int, fd_set *, fd_set *, fd_set *, const struct timespec *, const sigset_t *);
    int rc;

    ready();
    if (!next)
        next = dlsym(RTLD_NEXT, "pselect");
    if (inside || !nmd_select_has_emulated(nfds, r, w, e, emulated) || ms_of(ts) == -2)
        return next(nfds, r, w, e, ts, mask);
    ENTER();
    rc = nmd_select(nfds, r, w, e, ms_of(ts), mask);
    LEAVE();
    return rc < 0 ? fail(rc) : rc;
}

static int (*real_epoll_pwait)(int, struct epoll_event *, int, int, const sigset_t *);

EXPORT int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    static int (*next)(int, int, int, struct epoll_event *);
    struct nmd_file *f;
    int rc;

    ready();
    if (!next)
        next = dlsym(RTLD_NEXT, "epoll_ctl");
    if (inside || !emulated(fd))
        return next(epfd, op, fd, ev);
    ENTER();
    if ((f = nmd_get(fd))) {
        rc = f->port ? nmd_epoll_ctl(epfd, op, fd, f, ev) : 1;
        nmd_put(f);
    } else {
        rc = 1;
    }
    LEAVE();
    if (rc == 1)
        return next(epfd, op, fd, ev);
    return rc < 0 ? fail(rc) : 0;
}

EXPORT int epoll_pwait(int epfd, struct epoll_event *out, int max, int timeout, const sigset_t *mask)
{
    int rc;

    ready();
    if (!real_epoll_pwait)
        real_epoll_pwait = dlsym(RTLD_NEXT, "epoll_pwait");
    if (inside || !nmd_epoll_has_members(epfd))
        return real_epoll_pwait(epfd, out, max, timeout, mask);
    ENTER();
    rc = nmd_epoll_wait(epfd, out, max, timeout, mask, real_epoll_pwait);
    LEAVE();
    return rc < 0 ? fail(rc) : rc;
}

EXPORT int epoll_wait(int epfd, struct epoll_event *out, int max, int timeout)
{
    return epoll_pwait(epfd, out, max, timeout, NULL);
}

EXPORT int epoll_pwait2(int epfd, struct epoll_event *out, int max, const struct timespec *ts,
                        const sigset_t *mask)
{
    static int (*next)(int, struct epoll_event *, int, const struct timespec *, const sigset_t *);

    ready();
    if (!next)
        next = dlsym(RTLD_NEXT, "epoll_pwait2");
    if (next && (inside || !nmd_epoll_has_members(epfd)))
        return next(epfd, out, max, ts, mask);
    return epoll_pwait(epfd, out, max, ms_of(ts), mask);
}

/* Descriptors received with SCM_RIGHTS are marked as arrived
 * (nmd_arrive.c): a message without control data costs one test. */
EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    static ssize_t (*next)(int, struct msghdr *, int);
    ssize_t rc;

    ready();
    if (!next)
        next = dlsym(RTLD_NEXT, "recvmsg");
    if ((rc = next(fd, msg, flags)) >= 0 && !inside && msg->msg_controllen > 0) {
        ENTER();
        nmd_arrive_cmsgs(msg);
        LEAVE();
    }
    return rc;
}

EXPORT int recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags, struct timespec *timeout)
{
    static int (*next)(int, struct mmsghdr *, unsigned int, int, struct timespec *);
    int rc;

    ready();
    if (!next)
        next = dlsym(RTLD_NEXT, "recvmmsg");
    if ((rc = next(fd, vec, vlen, flags, timeout)) > 0 && !inside) {
        ENTER();
        for (int i = 0; i < rc; i++)
            if (vec[i].msg_hdr.msg_controllen > 0)
                nmd_arrive_cmsgs(&vec[i].msg_hdr);
        LEAVE();
    }
    return rc;
}

static int dup_done(int oldfd, int newfd)
{
    int err;

    if (inside || newfd < 0)
        return newfd;
    ENTER();
    nmd_arrived_dup(oldfd, newfd);
    err = nmd_dup(oldfd, newfd);
    LEAVE();
    if (err < 0) {
        nmd_real.close(newfd);
        return fail(err);
    }
    return newfd;
}

EXPORT int dup(int fd)
{
    ready();
    return dup_done(fd, nmd_real.fcntl(fd, F_DUPFD, 0));
}

EXPORT int dup3(int oldfd, int newfd, int flags)
{
    int rc, err;

    ready();
    if ((rc = nmd_real.dup3(oldfd, newfd, flags)) < 0 || inside)
        return rc;
    ENTER();
    if (!nmd_lookup(oldfd))
        nmd_forget(newfd);              /* the kernel closed an emulated one: dropped */
    if (oldfd != newfd)
        nmd_arrived_dup(oldfd, newfd);
    err = nmd_lookup(oldfd) ? nmd_dup(oldfd, newfd) : 0;
    LEAVE();
    if (err < 0) {
        nmd_real.close(newfd);
        return fail(err);
    }
    return rc;
}

EXPORT int dup2(int oldfd, int newfd)
{
    ready();
    if (oldfd == newfd)
        return nmd_real.fcntl(oldfd, F_GETFD) < 0 ? -1 : newfd;
    return dup3(oldfd, newfd, 0);
}

EXPORT int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    uintptr_t arg;

    ready();
    va_start(ap, cmd);
    arg = va_arg(ap, uintptr_t);
    va_end(ap);
    if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)
        return dup_done(fd, nmd_real.fcntl(fd, cmd, arg));
    return nmd_real.fcntl(fd, cmd, arg);
}

EXPORT int fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    uintptr_t arg;

    va_start(ap, cmd);
    arg = va_arg(ap, uintptr_t);
    va_end(ap);
    return fcntl(fd, cmd, arg);
}
