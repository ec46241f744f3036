/*
 * nmd_arrive.c -- descriptors that arrive from elsewhere: kept across exec
 * (found when the library is loaded) or received with SCM_RIGHTS (recvmsg,
 * recvmmsg).  Each that is a regular file, as a netmap device descriptor
 * is (a region's control file), is marked as arrived; poll, select and
 * epoll_ctl adopt a marked number before they look at it (preload.c), so
 * their first call on a received netmap descriptor is served as netmap's.
 * The first ioctl or mmap adopts it as before (nmd_adopt).
 *
 * Marking adopts nothing: an adopted port binds its wakeup socket anew at
 * its holder's path (docs/DESIGN.md section 14), which would take the
 * wakeups away from the process that uses the port when the fd only went
 * by (a shell, a program run with system(), which inherit it and never
 * use it).  An ordinary descriptor costs one flag load per call that looks
 * for arrived ones while nothing has arrived, one bit test after.
 */
#include "nmd.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#define ARRIVED_FDS (1u << 20)          /* as the table: numbers below 1,048,576 */
#define WORD(fd) ((unsigned)(fd) / 64)
#define BIT(fd) (1ull << ((unsigned)(fd) % 64))

static uint64_t arrived[ARRIVED_FDS / 64];
static bool any_arrived;                /* once set, stays set */
static pthread_mutex_t adopt_lock = PTHREAD_MUTEX_INITIALIZER;

static void lock_adopt(void) { pthread_mutex_lock(&adopt_lock); }
static void unlock_adopt(void) { pthread_mutex_unlock(&adopt_lock); }

__attribute__((constructor)) static void arrive_init(void)
{
    pthread_atfork(lock_adopt, unlock_adopt, unlock_adopt);
}

static bool in_range(int fd)
{
    return fd >= 0 && (unsigned)fd < ARRIVED_FDS;
}

bool nmd_arrived(int fd)
{
    return __atomic_load_n(&any_arrived, __ATOMIC_ACQUIRE) && in_range(fd) &&
           (__atomic_load_n(&arrived[WORD(fd)], __ATOMIC_ACQUIRE) & BIT(fd));
}

static void mark(int fd)
{
    __atomic_fetch_or(&arrived[WORD(fd)], BIT(fd), __ATOMIC_ACQ_REL);
    __atomic_store_n(&any_arrived, true, __ATOMIC_RELEASE);
}

void nmd_arrived_clear(int fd)
{
    if (nmd_arrived(fd))
        __atomic_fetch_and(&arrived[WORD(fd)], ~BIT(fd), __ATOMIC_ACQ_REL);
}

void nmd_arrived_clear_range(unsigned first, unsigned last)
{
    if (!__atomic_load_n(&any_arrived, __ATOMIC_ACQUIRE) || first >= ARRIVED_FDS)
        return;
    if (last >= ARRIVED_FDS)
        last = ARRIVED_FDS - 1;
    for (unsigned fd = first; fd <= last; fd++) {
        if (fd % 64 == 0 && last - fd >= 63 && !__atomic_load_n(&arrived[WORD(fd)], __ATOMIC_ACQUIRE)) {
            fd += 63;                   /* a word with nothing marked */
            continue;
        }
        nmd_arrived_clear((int)fd);
    }
}

/* newfd, just made by the kernel as a copy of oldfd: marked as oldfd is. */
void nmd_arrived_dup(int oldfd, int newfd)
{
    nmd_arrived_clear(newfd);
    if (nmd_arrived(oldfd) && in_range(newfd))
        mark(newfd);
}

/* fd was just given to this process: a number the table still has an
 * entry at was closed behind the emulation's back (the entry goes, as
 * for an open there); a regular file is marked. */
void nmd_arrive(int fd)
{
    struct stat st;
    int saved = errno;

    if (in_range(fd)) {
        if (nmd_lookup(fd))
            nmd_forget(fd);
        nmd_arrived_clear(fd);
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
            mark(fd);
    }
    errno = saved;
}

/* The descriptors of msg's SCM_RIGHTS messages, as far as the control
 * buffer the kernel filled goes (a truncated message, MSG_CTRUNC, holds
 * the descriptors that fit). */
void nmd_arrive_cmsgs(const struct msghdr *msg)
{
    const char *end = (const char *)msg->msg_control + msg->msg_controllen;

    if (!msg->msg_control || msg->msg_controllen < sizeof(struct cmsghdr))
        return;
    for (struct cmsghdr *c = CMSG_FIRSTHDR((struct msghdr *)msg); c;
         c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
        const char *data = (const char *)CMSG_DATA(c);
        size_t len;

        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len < CMSG_LEN(0))
            continue;
        len = c->cmsg_len - CMSG_LEN(0);
        if (data > end)
            break;
        if (len > (size_t)(end - data))
            len = (size_t)(end - data);
        for (size_t i = 0; i + sizeof(int) <= len; i += sizeof(int)) {
            int fd;
            memcpy(&fd, data + i, sizeof(fd));
            nmd_arrive(fd);
        }
    }
}

/* The descriptors this process started with (kept across exec). */
void nmd_arrive_inherited(void)
{
    int saved = errno;
    struct dirent *de;
    DIR *d;

    if (!(d = opendir("/proc/self/fd"))) {
        errno = saved;
        return;                         /* no /proc: the first ioctl or mmap adopts */
    }
    while ((de = readdir(d))) {
        char *end;
        long fd = strtol(de->d_name, &end, 10);

        if (*end == '\0' && end != de->d_name && fd != dirfd(d) && fd >= 0 && fd < (long)ARRIVED_FDS)
            nmd_arrive((int)fd);
    }
    closedir(d);
    errno = saved;
}

/* fd, marked as arrived: its port adopted under that number (the first
 * caller; another waits and finds the entry), referenced as by nmd_get,
 * the mark gone.  NULL if it is no device descriptor. */
struct nmd_file *nmd_adopt_arrived(int fd)
{
    struct nmd_file *f;
    int saved = errno;

    pthread_mutex_lock(&adopt_lock);
    if (!(f = nmd_get(fd)) && nmd_arrived(fd))
        f = nmd_adopt(fd);
    nmd_arrived_clear(fd);
    pthread_mutex_unlock(&adopt_lock);
    errno = saved;
    return f;
}
