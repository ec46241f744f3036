/*
 * wake.c -- a pollable file descriptor per port, woken across processes.
 *
 * Each open port (holder h) owns an AF_UNIX datagram socket bound to
 * <rundir>/wake/mem.<id>.h<h>.sock: that is the port's fd.
 *   POLLIN:  a one-byte "bell" datagram is queued on it.  A sync that
 *            publishes into a ring rings the bell of every holder that
 *            declared itself asleep on that ring (a bit in kring.sleepers,
 *            set with a full fence before its final re-check), and only
 *            then: no system call while everybody is busy.
 *   POLLOUT: the socket's own send buffer (kept at the minimum) has room.
 *            A holder about to wait for TX space sends filler datagrams to
 *            the socket of a holder of the peer RX ring until its own
 *            socket stops being writable; that holder's rxsync, when it
 *            releases slots and sees the sleeper, drains its socket, which
 *            frees our send buffer and makes our fd writable again.
 * A process that drops its privileges after the open (setuid to another
 * user) can no longer search the 0700 runtime directory: every datagram it
 * sends then goes through the wake directory's descriptor, taken at open
 * (/proc/self/fd/<n>/<socket>; the directory is 0711 and its sockets 0622,
 * so the lookup from that descriptor on needs no privilege of the owner).
 */
#include "nmc_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

void nmc_sock_path(const char *rundir, uint16_t mem_id, uint32_t h, char *out, size_t len)
{
    snprintf(out, len, "%s/" NMC_WAKE_DIR "/mem.%u.h%u.sock", rundir, (unsigned)mem_id, (unsigned)h);
}

static int make_addr(const char *path, struct sockaddr_un *sun)
{
    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun->sun_path))
        return -ENAMETOOLONG;
    strcpy(sun->sun_path, path);
    return 0;
}

/* The wake directory, made if missing (0711: searchable, not listable, by
 * whoever reaches it; only its owner can, through the 0700 runtime
 * directory, or a process holding its descriptor), opened O_PATH. */
int nmc_wake_dir_open(const char *rundir)
{
    char path[256];
    struct stat st;
    int fd;

    snprintf(path, sizeof(path), "%s/" NMC_WAKE_DIR, rundir);
    if (mkdir(path, NMC_WAKE_DIR_MODE) < 0 && errno != EEXIST)
        return -errno;
    if ((fd = open(path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        return -errno;
    if (fstat(fd, &st) < 0 || st.st_uid != geteuid()) {
        close(fd);
        return -EACCES;                 /* not ours: the runtime directory's rule */
    }
    if ((st.st_mode & 07777) != NMC_WAKE_DIR_MODE && chmod(path, NMC_WAKE_DIR_MODE) < 0) {
        int err = -errno;               /* a umask took bits away */
        close(fd);
        return err;
    }
    return fd;
}

int nmc_wake_setup(struct nmc_port *p)
{
    struct sockaddr_un sun;
    char path[256];
    int zero = 0, err;

    nmc_sock_path(p->rundir, p->mem_id, p->hidx, path, sizeof(path));
    if ((err = make_addr(path, &sun)) < 0)
        return err;
    if ((p->wake_dir = nmc_wake_dir_open(p->rundir)) < 0)
        return p->wake_dir;
    p->sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    p->bell = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (p->sock < 0 || p->bell < 0)
        return -errno;
    unlink(path);                       /* left by a dead holder of this index */
    if (bind(p->sock, (struct sockaddr *)&sun, sizeof(sun)) < 0)
        return -errno;
    /* whatever the umask: writable by whoever reaches it (the directory
     * decides who can) */
    if (chmod(path, NMC_WAKE_SOCK_MODE) < 0)
        return -errno;
    /* the kernel raises 0 to its minimum send buffer */
    setsockopt(p->sock, SOL_SOCKET, SO_SNDBUF, &zero, sizeof(zero));
    return 0;
}

/* This process's descriptors of p's wakeups, closed; the socket's path is
 * left to whoever unlinks it. */
void nmc_wake_close_fds(struct nmc_port *p)
{
    if (p->sock >= 0)
        close(p->sock);
    if (p->bell >= 0)
        close(p->bell);
    if (p->wake_dir >= 0)
        close(p->wake_dir);
    p->sock = p->bell = p->wake_dir = -1;
}

/* Unlink p's socket and close its descriptors; -errno if the path could
 * not be unlinked (a closer that dropped its privileges may no longer
 * write the directory: nmc_port_close leaves it to the reaper). */
int nmc_wake_teardown(struct nmc_port *p)
{
    char path[256];
    int err = 0;

    if (p->sock >= 0) {
        nmc_sock_path(p->rundir, p->mem_id, p->hidx, path, sizeof(path));
        if (unlink(path) < 0 && errno != ENOENT)
            err = -errno;
    }
    nmc_wake_close_fds(p);
    return err;
}

/* One datagram from socket `from` to holder h of region mem_id: by path,
 * else (EACCES: this process dropped its privileges since the open)
 * through the wake directory's descriptor, from then on. */
static ssize_t wake_send(struct nmc_port *p, int from, uint16_t mem_id, uint32_t h,
                         const void *buf, size_t len)
{
    struct sockaddr_un sun;
    char path[256];
    ssize_t n;

    if (!__atomic_load_n(&p->wake_by_fd, __ATOMIC_RELAXED)) {
        nmc_sock_path(p->rundir, mem_id, h, path, sizeof(path));
        if (make_addr(path, &sun) < 0)
            return -1;
        n = sendto(from, buf, len, MSG_DONTWAIT, (struct sockaddr *)&sun, sizeof(sun));
        if (n >= 0 || (errno != EACCES && errno != EPERM) || p->wake_dir < 0)
            return n;
        __atomic_store_n(&p->wake_by_fd, true, __ATOMIC_RELAXED);
    }
    snprintf(path, sizeof(path), "/proc/self/fd/%d/mem.%u.h%u.sock", p->wake_dir,
             (unsigned)mem_id, (unsigned)h);
    if (make_addr(path, &sun) < 0)
        return -1;
    return sendto(from, buf, len, MSG_DONTWAIT, (struct sockaddr *)&sun, sizeof(sun));
}

static void ring_bell_path(struct nmc_port *p, uint16_t mem_id, uint32_t h)
{
    char b = 1;

    if (wake_send(p, p->bell, mem_id, h, &b, 1) == 1)
        p->st.wakeups_sent++;
}

/* Wake holder h of region mem_id: drain our socket if its filler sits
 * there (it waits for TX room), else send it a bell unless one is
 * already pending. */
static void ring_bell(struct nmc_port *p, struct nmc_holder *hs, uint16_t mem_id, uint32_t h)
{
    struct nmc_holder *hd = &hs[h];

    if (mem_id == p->mem_id && __atomic_load_n(&hd->fill_target, __ATOMIC_ACQUIRE) == p->hidx + 1) {
        bool ours = __atomic_load_n(&p->holder->bells_pending, __ATOMIC_ACQUIRE) != 0;
        nmc_wake_drain(p);
        if (ours && p->fd_exported)
            nmc_wake_self(p);           /* a bell of ours went with the filler: put it back */
        return;
    }
    if (__atomic_exchange_n(&hd->bells_pending, 1, __ATOMIC_ACQ_REL) == 0)
        ring_bell_path(p, mem_id, h);
}

/* Make our own fd readable (a publish raced with our arming). */
void nmc_wake_self(struct nmc_port *p)
{
    if (__atomic_exchange_n(&p->holder->bells_pending, 1, __ATOMIC_ACQ_REL) == 0)
        ring_bell_path(p, p->mem_id, p->hidx);
}

/* Wake this port's own nmc_poll, from another thread: one datagram on its
 * socket whatever bells are pending (the sleeper then sees p->interrupted). */
void nmc_wake_interrupt(struct nmc_port *p)
{
    char b = 1;

    wake_send(p, p->bell, p->mem_id, p->hidx, &b, 1);
}

/* Ring the bell of every holder whose bit is set in kr's sleepers. */
static void __attribute__((noinline)) wake_set_sleepers(struct nmc_port *p, struct nmc_kring *kr,
                                                        uint8_t *holders, uint16_t mem_id)
{
    for (uint32_t w = 0; w < NMC_SLEEP_WORDS; w++) {
        uint64_t bits;
        if (!__atomic_load_n(&kr->sleepers[w], __ATOMIC_RELAXED))
            continue;
        bits = __atomic_exchange_n(&kr->sleepers[w], 0, __ATOMIC_ACQ_REL);
        while (bits) {
            uint32_t h = w * 64 + (uint32_t)__builtin_ctzll(bits);
            bits &= bits - 1;
            if (h != p->hidx || mem_id != p->mem_id)
                ring_bell(p, (struct nmc_holder *)holders, mem_id, h);
        }
    }
}

/* The sleepers of kr, read after a full barrier.  The usual case, nobody
 * asleep, is one test of the sleeper words ORed together. */
static inline void wake_fenced(struct nmc_port *p, struct nmc_kring *kr, uint8_t *holders,
                               uint16_t mem_id)
{
    uint64_t any = 0;

#pragma GCC unroll 8
    for (uint32_t w = 0; w < NMC_SLEEP_WORDS; w++)
        any |= __atomic_load_n(&kr->sleepers[w], __ATOMIC_RELAXED);
    if (any)
        wake_set_sleepers(p, kr, holders, mem_id);
}

/* Called after publishing into kr, a ring of region mem_id whose holder
 * table is at `holders` (release store + this full fence). */
void nmc_wake_sleepers_in(struct nmc_port *p, struct nmc_kring *kr, uint8_t *holders, uint16_t mem_id)
{
    nmc_fence();
    wake_fenced(p, kr, holders, mem_id);
}

void nmc_wake_sleepers(struct nmc_port *p, struct nmc_kring *kr)
{
    nmc_wake_sleepers_in(p, kr, p->ctl + p->g.holders_ofs, p->mem_id);
}

/* A sync inside a ring published into kr (it returned NMC_SYNC_WAKE_PEER):
 * wake kr's sleepers once the ring is left (nmc_ring_leave_wake).
 *  - Left by a locked read-modify-write of the owner word (`locked`): that
 *    is the full barrier between the publish before it and the sleeper
 *    words read after it, so the wakeup needs no fence of its own.
 *  - Left by bias, a plain store: no barrier at all on this side.  A sleeper
 *    pays for both with membarrier between its arming and its last look
 *    at the ring (nmc_wake_sleep_barrier), so one of the two sees the other.
 *    Only a holder waiting on its bare fd cannot (it arms at every sync
 *    that empties its ring): it marks the ring fenced_wake once, and then
 *    the publisher fences here. */
void nmc_wake_left(struct nmc_port *p, struct nmc_kring *kr, bool locked)
{
    if (locked)
        nmc_fence_after_rmw();
    else if (__atomic_load_n(&kr->fenced_wake, __ATOMIC_RELAXED))
        nmc_fence();
    wake_fenced(p, kr, p->ctl + p->g.holders_ofs, p->mem_id);
}

void nmc_wake_arm(struct nmc_kring *kr, uint32_t hidx)
{
    __atomic_fetch_or(&kr->sleepers[hidx / 64], 1ULL << (hidx % 64), __ATOMIC_SEQ_CST);
    nmc_fence();
}

/* Mark p's RX rings (POLLIN) and TX rings (POLLOUT) fenced_wake: their
 * publishers fence before they read the sleepers (nmc_wake_left). */
static void mark_fenced(struct nmc_port *p, int events)
{
    for (uint32_t i = 0; (events & POLLIN) && i < p->nrx; i++)
        __atomic_store_n(&p->rx[i].kr->fenced_wake, 1, __ATOMIC_SEQ_CST);
    for (uint32_t i = 0; (events & POLLOUT) && i < p->ntx; i++)
        __atomic_store_n(&p->tx[i].kr->fenced_wake, 1, __ATOMIC_SEQ_CST);
}

/* membarrier, or -errno; a failure ends this process's fast side. */
static int barrier(void)
{
    int err = nmc_membar_global();

    if (err < 0)
        nmc_membar_lost();
    return err;
}

/* After arming p's rings for `events` (nmc_wake_arm), before the last
 * look at them of a holder about to sleep in poll(): the barrier a
 * publisher that left its ring by bias did not pay (nmc_wake_left).  0, or
 * -errno when membarrier cannot be had here: then the rings are marked
 * fenced_wake (their publishers fence from then on) and the caller bounds
 * its sleep, since a publisher that read the mark too early may have
 * missed its bit. */
int nmc_wake_sleep_barrier(struct nmc_port *p, int events)
{
    int err = barrier();

    if (err < 0)
        mark_fenced(p, events);
    return err;
}

/* A holder that hands its fd out arms at every sync that leaves its ring
 * empty: too often for a membarrier each time.  Mark its rings once, then
 * one barrier, after which every publisher fences before it reads their
 * sleepers (nmc_wake_left).  -errno when the barrier cannot be had: the
 * mark is then seen by the publishers' next syncs, and until then a wakeup
 * may come only with the next publish. */
int nmc_wake_mark_fenced(struct nmc_port *p)
{
    mark_fenced(p, POLLIN | POLLOUT);
    return barrier();
}

void nmc_wake_disarm(struct nmc_kring *kr, uint32_t hidx)
{
    uint64_t bit = 1ULL << (hidx % 64);

    if (__atomic_load_n(&kr->sleepers[hidx / 64], __ATOMIC_RELAXED) & bit)
        __atomic_fetch_and(&kr->sleepers[hidx / 64], ~bit, __ATOMIC_RELAXED);
}

/* Empty our socket: bells for us, and filler of holders waiting for space.
 * The pending mark is cleared only once the socket is empty: a bell sent
 * while we drained may have been taken with the others, and a mark left
 * set without a bell queued would silence every later waker.  (A mark
 * cleared with a bell still queued only costs a spare bell.)  The caller
 * looks at the rings again afterwards. */
void nmc_wake_drain(struct nmc_port *p)
{
    char buf[16];

    while (recv(p->sock, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC) > 0)
        ;
    __atomic_store_n(&p->holder->bells_pending, 0, __ATOMIC_SEQ_CST);
    p->st.drains++;
}

/* Is our own socket writable now (no filler of ours left unread)? */
bool nmc_wake_writable(struct nmc_port *p)
{
    struct pollfd pfd = { .fd = p->sock, .events = POLLOUT };

    return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLOUT);
}

static int pick_fill_target(struct nmc_port *p, struct nmc_lring *lr)
{
    struct nmc_holder *hs = (struct nmc_holder *)(p->ctl + p->g.holders_ofs);
    uint32_t peer_end = 1 - p->end, rid = lr->id;

    for (uint32_t h = 0; h < NMC_MAX_HOLDERS; h++) {
        struct nmc_holder *o = &hs[h];
        if (h == p->hidx || __atomic_load_n(&o->state, __ATOMIC_ACQUIRE) != NMC_LIVE)
            continue;
        if (o->port == p->holder->port && o->end == peer_end &&
            o->first[1] <= rid && rid < o->last[1])
            return (int)h;
    }
    return -1;
}

/* Make our fd non-writable until a holder of the peer RX ring drains. */
void nmc_wake_fill(struct nmc_port *p, struct nmc_lring *lr)
{
    struct pollfd pfd = { .fd = p->sock, .events = POLLOUT };
    char b[2048] = { 0 };
    int h = pick_fill_target(p, lr);

    if (h < 0 || p->filled)
        return;
    p->holder->fill_target = (uint32_t)h + 1;
    nmc_fence();
    /* one datagram larger than a quarter of the minimum send buffer is
     * usually enough; check, and add more only if it was not */
    for (int i = 0; i < 8; i++) {
        if (wake_send(p, p->sock, p->mem_id, (uint32_t)h, b, sizeof(b)) < 0)
            break;
        if (poll(&pfd, 1, 0) == 1 && !(pfd.revents & POLLOUT))
            break;
    }
    /* the target drains at its next rxsync even if it already looked */
    __atomic_store_n(&((struct nmc_holder *)(p->ctl + p->g.holders_ofs))[h].bells_pending, 1,
                     __ATOMIC_RELEASE);
    p->filled = true;
}
