/*
 * nmd_epoll.c -- epoll over emulated netmap descriptors.
 *
 * A netmap descriptor added to an epoll set (a "member") is represented in
 * the kernel's set by its port's wakeup socket (nmc_port_fd, §8 of
 * docs/DESIGN.md), registered with the member's own address as its data.
 * epoll_wait first looks at the set's members as netmap's poll would
 * (their syncs, then slots for the user), then waits in the kernel; an
 * event carrying a member's address drains that port's socket and the
 * member is looked at again; the program gets its own epoll_data back.
 *
 * Level-triggered always: EPOLLET on a netmap descriptor is served as
 * level-triggered (a program written for edge-triggered wakeups reads
 * until nothing is left and takes an extra wakeup at most); EPOLLONESHOT
 * disables the member after one report until EPOLL_CTL_MOD, as the kernel.
 */
#include "nmd.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>

struct member {
    struct member *next;
    int epfd, fd;                       /* the epoll set, the netmap descriptor */
    int wakefd;                         /* what the kernel's set holds for it */
    struct epoll_event ev;              /* what the program asked, its data */
    uint32_t kev;                       /* what the kernel's set waits for on wakefd */
    bool disabled;                      /* EPOLLONESHOT, reported */
};

static struct member *members;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void lock_members(void) { pthread_mutex_lock(&lock); }
static void unlock_members(void) { pthread_mutex_unlock(&lock); }

__attribute__((constructor)) static void members_init(void)
{
    pthread_atfork(lock_members, unlock_members, unlock_members);
}
static int any;                         /* members exist: a fast no for every other call */

static struct member *find(int epfd, int fd)
{
    for (struct member *m = members; m; m = m->next)
        if (m->epfd == epfd && m->fd == fd)
            return m;
    return NULL;
}

static bool is_member(int epfd, const void *ptr)
{
    for (struct member *m = members; m; m = m->next)
        if (m == ptr && m->epfd == epfd)
            return true;
    return false;
}

static void unlink_member(struct member *gone)
{
    for (struct member **pp = &members; *pp; pp = &(*pp)->next)
        if (*pp == gone) {
            *pp = gone->next;
            free(gone);
            break;
        }
    __atomic_store_n(&any, members != NULL, __ATOMIC_RELEASE);
}

static uint32_t kernel_events(uint32_t asked)
{
    return EPOLLIN | (asked & EPOLLOUT);    /* the socket: bells (POLLIN), room (POLLOUT) */
}

/* EPOLL_CTL_* on an emulated, registered descriptor. */
int nmd_epoll_ctl(int epfd, int op, int fd, struct nmd_file *f, struct epoll_event *ev)
{
    struct epoll_event kev;
    struct member *m;
    int err = 0;

    if (!f->port)
        return -EPERM;                  /* nothing to wait for before REGISTER */
    pthread_mutex_lock(&lock);
    m = find(epfd, fd);
    if (op == EPOLL_CTL_ADD) {
        if (m)
            err = -EEXIST;
        else if (!(m = calloc(1, sizeof(*m))))
            err = -ENOMEM;
        else {
            *m = (struct member){ .epfd = epfd, .fd = fd, .wakefd = nmc_port_fd(f->port), .ev = *ev,
                                  .kev = kernel_events(ev->events) };
            kev = (struct epoll_event){ .events = m->kev, .data.ptr = m };
            if (m->wakefd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, m->wakefd, &kev) < 0) {
                err = m->wakefd < 0 ? m->wakefd : -errno;
                free(m);
            } else {
                m->next = members;
                members = m;
                __atomic_store_n(&any, 1, __ATOMIC_RELEASE);
            }
        }
    } else if (!m) {
        err = -ENOENT;
    } else if (op == EPOLL_CTL_MOD) {
        kev = (struct epoll_event){ .events = kernel_events(ev->events), .data.ptr = m };
        if (epoll_ctl(epfd, EPOLL_CTL_MOD, m->wakefd, &kev) < 0)
            err = -errno;
        else {
            m->ev = *ev;
            m->kev = kev.events;
            m->disabled = false;
        }
    } else if (op == EPOLL_CTL_DEL) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, m->wakefd, NULL);
        unlink_member(m);
    } else {
        err = -EINVAL;
    }
    pthread_mutex_unlock(&lock);
    return err;
}

/* The epoll set epfd is being closed: its members go. */
void nmd_epoll_forget(int epfd)
{
    struct member *m, *next;

    if (!__atomic_load_n(&any, __ATOMIC_ACQUIRE))
        return;
    pthread_mutex_lock(&lock);
    for (m = members; m; m = next) {
        next = m->next;
        if (m->epfd == epfd)
            unlink_member(m);
    }
    pthread_mutex_unlock(&lock);
}

bool nmd_epoll_has_members(int epfd)
{
    bool yes = false;

    if (!__atomic_load_n(&any, __ATOMIC_ACQUIRE))
        return false;
    pthread_mutex_lock(&lock);
    for (struct member *m = members; m && !yes; m = m->next)
        yes = m->epfd == epfd;
    pthread_mutex_unlock(&lock);
    return yes;
}

/* Members of epfd ready as netmap's poll sees them, into out[n..max). */
static int look(int epfd, struct epoll_event *out, int n, int max)
{
    for (struct member *m = members; m && n < max; m = m->next) {
        struct nmd_file *f;
        int rev;
        if (m->epfd != epfd || m->disabled)
            continue;
        if (!(f = nmd_get(m->fd)))
            continue;                   /* closed since: the kernel dropped its socket too */
        rev = f->port ? nmc_poll(f->port, (short)(m->ev.events & (EPOLLIN | EPOLLOUT)), 0) : -EBADF;
        nmd_put(f);
        rev = rev < 0 ? EPOLLERR : rev;
        rev &= (int)(m->ev.events | EPOLLERR | EPOLLHUP);
        if (!rev)
            continue;
        out[n].events = (uint32_t)rev;
        out[n].data = m->ev.data;
        n++;
        if (m->ev.events & EPOLLONESHOT)
            m->disabled = true;
    }
    return n;
}

/* Before the kernel wait: each member's socket waited for what the engine
 * says will wake it (nmc_port_wait_events: no POLLOUT while its ring has no
 * room and no reader holds our filler, so the wait cannot spin). */
static void arm(int epfd)
{
    for (struct member *m = members; m; m = m->next) {
        struct nmd_file *f;
        uint32_t want;
        int ev;
        if (m->epfd != epfd || m->disabled || !(f = nmd_get(m->fd)))
            continue;
        ev = f->port ? nmc_port_wait_events(f->port, (int)(m->ev.events & (EPOLLIN | EPOLLOUT))) : 0;
        nmd_put(f);
        want = (uint32_t)(ev > 0 ? ev : EPOLLIN) | EPOLLIN;
        if (want != m->kev) {
            struct epoll_event kev = { .events = want, .data.ptr = m };
            if (epoll_ctl(epfd, EPOLL_CTL_MOD, m->wakefd, &kev) == 0)
                m->kev = want;
        }
    }
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* epoll_pwait on a set with members; `wait` is the kernel's epoll_pwait. */
int nmd_epoll_wait(int epfd, struct epoll_event *out, int max, int timeout_ms, const sigset_t *mask,
                   int (*wait)(int, struct epoll_event *, int, int, const sigset_t *))
{
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;

    if (max <= 0)
        return -EINVAL;
    for (;;) {
        int n, got, kept;
        pthread_mutex_lock(&lock);
        n = look(epfd, out, 0, max);
        if (n == 0)
            arm(epfd);
        pthread_mutex_unlock(&lock);
        int left = n ? 0 : deadline < 0 ? -1 : (int)(deadline > now_ms() ? deadline - now_ms() : 0);
        if ((got = wait(epfd, out + n, max - n, left, mask)) < 0)
            return n ? n : -errno;
        pthread_mutex_lock(&lock);
        kept = n;
        for (int i = n; i < n + got; i++) {
            struct member *m = out[i].data.ptr;
            if (is_member(epfd, m)) {   /* a bell: drained, looked at next round */
                struct nmd_file *f = nmd_get(m->fd);
                if (f && f->port && (out[i].events & EPOLLIN))
                    nmc_port_drain(f->port);
                if (f)
                    nmd_put(f);
                continue;
            }
            out[kept++] = out[i];
        }
        if (n == 0 && kept == 0 && got > 0)
            kept = look(epfd, out, kept, max);      /* woken by a bell: look again now */
        pthread_mutex_unlock(&lock);
        if (kept > 0 || left == 0)
            return kept;
    }
}
