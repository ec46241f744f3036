/*
 * nm_edge.c -- edge cases of the /dev/netmap emulation, each a mode; like
 * nm_raw.c it speaks only netmap's fd interface.  Each prints "<mode> ok".
 *
 *   pollout-nopeer   poll(POLLOUT) on a full pipe TX ring with no reader
 *                    returns at its timeout (0 and 200 ms)
 *   rdnorm           POLLRDNORM alone is reported for a pending frame
 *   close-poll [n]   one thread closes a netmap fd another waits on in poll()
 *                    (n rounds, 10 by default)
 *   close-sync [n]   ... and one that loops on NIOCRXSYNC: the number, freed
 *                    and reused by the engine's own close, is never taken
 *                    for a device descriptor to adopt; after both, the
 *                    process has nothing of the runtime directory open or
 *                    mapped (a leaked entry keeps its port's files)
 *   stale            an fd closed with close_range() and the number reused by
 *                    a file: the file is the file (mmap, ioctl, close)
 *   exclusive-info   PORT_INFO_GET, NIOCGINFO and POOLS_INFO_GET of a port
 *                    registered with NR_EXCLUSIVE
 *   readonly         the netmap fd cannot write or truncate what it names
 *   open-null        open(NULL) fails with EFAULT
 *   options          option chains as netmap sizes and checks them
 *   xproc            across processes: NR_EXCLUSIVE keeps a second process
 *                    out until the first closes; a sender meets back-pressure
 *                    from a reader elsewhere; a pipe end closed with a full
 *                    TX ring and opened again by another process finds the
 *                    ring as it was, and the reader gets every frame in order
 *   dup-unbound      dups made before REGISTER name the registered file too
 *                    (fstat, control requests, cloexec kept, syncs after the
 *                    first number is closed)
 *   reuse-adopted    an adopted number closed behind the emulation's back and
 *                    reused by open("/dev/netmap"): the adopted port goes
 *   bind-closed      another thread closes the number a REGISTER is binding
 *                    and opens a file there: EBADF, the file left alone
 *   bind-adopted     another thread adopts a REGISTER's temporary device
 *                    descriptor: that entry goes with the number
 *   unbind-emfile    a registration undone (an unserved option) while the
 *                    process can open no descriptor: the fd is /dev/null again
 *   vale-ctl NAME SW VALE_NEWIF of persistent port NAME (the reply: its rings,
 *                    slots and mem_id; REGISTER by that name alone opens it),
 *                    VALE_ATTACH to switch SW, VALE_LIST by
 *                    name and by walking bridge/port indexes (ENOENT at the
 *                    end), VALE_DETACH, VALE_DELIF, and netmap's errnos for
 *                    the bad cases (netmap.md sections 1.9-1.11); LIST of a
 *                    port its switch does not hold: the switch, NM_BDG_NOPORT
 *   vale-make NAME SW  the first half (NEWIF and ATTACH), the port left there
 *   vale-drop NAME SW  the second half (DETACH and DELIF)
 *   rings-only       NR_TX_RINGS_ONLY / NR_RX_RINGS_ONLY: the reply's counts
 *                    are the port's, the other direction's rings are not bound
 *                    (ring_ofs 0) and its sync does nothing; frames pass;
 *                    NR_ACCEPT_VNET_HDR on a port whose header length is 0
 *   kernel-features  polling threads, the sync kloop, CSB: the answers of a
 *                    netmap kernel to these requests on the ports here
 *
 * The bind-* and unbind-* modes force their interleaving through the
 * emulation's test hook (nmcompat_test_bind_hook, called where a REGISTER
 * has made its device descriptor; this program is linked with -rdynamic).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nm_test.h"

static void queue(struct port *p, unsigned max)
{
    struct netmap_ring *r = NETMAP_TXRING(p->nifp, 0);

    for (unsigned i = 0; i < max && nm_ring_space(r); i++) {
        struct netmap_slot *s = &r->slot[r->head];
        memset(NETMAP_BUF(r, s->buf_idx), 0xff, 60);
        s->len = 60;
        r->head = r->cur = nm_ring_next(r, r->head);
    }
    CHECK(ioctl(p->fd, NIOCTXSYNC, NULL) == 0, "txsync");
}

static int pollout_nopeer(void)
{
    struct port m;
    struct pollfd pfd;

    open_port(&m, "eo{1", NR_REG_ALL_NIC);
    queue(&m, 100000);
    queue(&m, 100000);
    for (int tmo = 0; tmo <= 200; tmo += 200) {
        pfd = (struct pollfd){ .fd = m.fd, .events = POLLOUT };
        CHECK(poll(&pfd, 1, tmo) == 0 && pfd.revents == 0, "poll(POLLOUT, %d) with no room", tmo);
    }
    close_port(&m);
    return 0;
}

static int rdnorm(void)
{
    struct port m, s;
    struct pollfd pfd;

    open_port(&m, "er{1", NR_REG_ALL_NIC);
    open_port(&s, "er}1", NR_REG_ALL_NIC);
    queue(&m, 1);
    pfd = (struct pollfd){ .fd = s.fd, .events = POLLRDNORM };
    CHECK(poll(&pfd, 1, 5000) == 1 && pfd.revents == POLLRDNORM, "revents %#x", pfd.revents);
    close_port(&m);
    close_port(&s);
    return 0;
}

static struct port shared;
static volatile int stop;

static void *user(void *arg)
{
    while (!stop) {
        if (arg) {
            ioctl(shared.fd, NIOCRXSYNC, NULL);
        } else {
            struct pollfd pfd = { .fd = shared.fd, .events = POLLIN };
            poll(&pfd, 1, 20);
        }
    }
    return NULL;
}

/* This process's descriptors and mappings of files in the runtime
 * directory: none once every port is closed (an entry leaked with its
 * port keeps the region's control file open and its memory mapped). */
static unsigned rundir_residue(void)
{
    char dir[512], prefix[600], link[300], path[1024], line[1280];
    const char *env = getenv("NMCOMPAT_RUNDIR");
    unsigned n = 0;
    struct dirent *e;
    DIR *d;
    FILE *maps;

    snprintf(dir, sizeof(dir), "%s", env ? env : "");
    if (!env)
        snprintf(dir, sizeof(dir), "/dev/shm/nmcompat-%u", (unsigned)getuid());
    snprintf(prefix, sizeof(prefix), "%s/", dir);
    CHECK((d = opendir("/proc/self/fd")) != NULL, "opendir /proc/self/fd");
    while ((e = readdir(d))) {
        ssize_t len;
        snprintf(link, sizeof(link), "/proc/self/fd/%s", e->d_name);
        if ((len = readlink(link, path, sizeof(path) - 1)) < 0)
            continue;
        path[len] = '\0';
        if (strncmp(path, prefix, strlen(prefix)) == 0) {
            fprintf(stderr, "left open: fd %s %s\n", e->d_name, path);
            n++;
        }
    }
    closedir(d);
    CHECK((maps = fopen("/proc/self/maps", "r")) != NULL, "open /proc/self/maps");
    while (fgets(line, sizeof(line), maps))
        if (strstr(line, prefix)) {
            fprintf(stderr, "left mapped: %s", line);
            n++;
        }
    fclose(maps);
    return n;
}

/* One thread uses the fd, another closes it (rounds times): no crash. */
static int close_while(int sync, int rounds)
{
    struct port m;

    for (int round = 0; round < rounds; round++) {
        pthread_t t;
        open_port(&m, "ec{1", NR_REG_ALL_NIC);
        open_port(&shared, "ec}1", NR_REG_ALL_NIC);
        stop = 0;
        CHECK(pthread_create(&t, NULL, user, sync ? (void *)1 : NULL) == 0, "thread");
        for (volatile int spin = 0; spin < 200000; spin++)
            ;
        munmap(shared.mem, shared.reg.nr_memsize);
        CHECK(close(shared.fd) == 0, "close");
        stop = 1;
        pthread_join(t, NULL);
        close_port(&m);
    }
    CHECK(rundir_residue() == 0, "every port closed: nothing of them is left in the process");
    return 0;
}

static int stale(const char *file)
{
    struct port m, s;
    char want[16] = { 0 }, *map;
    int fd, f;

    open_port(&m, "es{1", NR_REG_ALL_NIC);
    open_port(&s, "es}1", NR_REG_ALL_NIC);
    fd = m.fd;
    munmap(m.mem, m.reg.nr_memsize);
    CHECK(syscall(SYS_close_range, fd, fd, 0) == 0, "close_range");
    CHECK((f = open(file, O_RDONLY)) == fd, "the number is reused: %d", f);
    CHECK(pread(f, want, sizeof(want) - 1, 0) > 0, "read");
    map = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, f, 0);
    CHECK(map != MAP_FAILED && memcmp(map, want, strlen(want)) == 0, "mmap maps the file");
    CHECK(ioctl(f, NIOCTXSYNC, NULL) < 0 && errno == ENOTTY, "a netmap ioctl on the file");
    CHECK(close(f) == 0, "close the file");
    close_port(&s);
    return 0;
}

static int exclusive_info(void)
{
    struct port m;
    struct nmreq_port_info_get pi;
    struct nmreq_pools_info pools;
    struct nmreq nr;
    int fd = open("/dev/netmap", O_RDWR);

    open_port_flags(&m, "ex{1", NR_REG_ALL_NIC, NR_EXCLUSIVE);
    memset(&pi, 0, sizeof(pi));
    CHECK(ctrl(fd, "ex{1", NETMAP_REQ_PORT_INFO_GET, &pi, 0) == 0 && pi.nr_memsize == m.reg.nr_memsize,
          "PORT_INFO_GET");
    memset(&pools, 0, sizeof(pools));
    CHECK(ctrl(fd, "ex{1", NETMAP_REQ_POOLS_INFO_GET, &pools, 0) == 0, "POOLS_INFO_GET");
    memset(&nr, 0, sizeof(nr));
    snprintf(nr.nr_name, sizeof(nr.nr_name), "ex{1");
    nr.nr_version = NETMAP_API;
    CHECK(ioctl(fd, NIOCGINFO, &nr) == 0 && nr.nr_memsize == (uint32_t)m.reg.nr_memsize, "NIOCGINFO");
    struct nmreq_register reg = { .nr_mode = NR_REG_ALL_NIC };
    CHECK(ctrl(fd, "ex{1", NETMAP_REQ_REGISTER, &reg, 0) < 0 && errno == EBUSY, "still exclusive");
    close(fd);
    close_port(&m);
    return 0;
}

static int readonly(void)
{
    struct port m, s;

    open_port(&m, "ew{1", NR_REG_ALL_NIC);
    open_port(&s, "ew}1", NR_REG_ALL_NIC);
    CHECK(ftruncate(m.fd, 0) < 0, "ftruncate of a netmap fd");
    CHECK(write(m.fd, "x", 1) < 0, "write to a netmap fd");
    queue(&m, 1);
    CHECK(ioctl(s.fd, NIOCRXSYNC, NULL) == 0 && !nm_ring_empty(NETMAP_RXRING(s.nifp, 0)), "traffic");
    close_port(&m);
    close_port(&s);
    return 0;
}

static int open_null(void)
{
    const char *volatile path = NULL;

    CHECK(open(path, O_RDONLY) < 0 && errno == EFAULT, "open(NULL)");
    return 0;
}

static int options(void)
{
    static struct nmreq_option o[80];
    struct nmreq_register reg = { .nr_mode = NR_REG_ALL_NIC };
    int fd = open("/dev/netmap", O_RDWR);

    for (unsigned i = 0; i < 80; i++)           /* 80 distinct unknown options: 1,920 bytes */
        o[i] = (struct nmreq_option){ .nro_reqtype = 100 + i, .nro_next = i + 1 < 80 ? (uintptr_t)&o[i + 1] : 0 };
    CHECK(ctrl(fd, "eq{1", NETMAP_REQ_REGISTER, &reg, (uintptr_t)o) < 0 && errno == EOPNOTSUPP &&
          o[79].nro_status == EOPNOTSUPP, "80 unknown options");
    CHECK(ctrl(fd, "eq{1", NETMAP_REQ_REGISTER, &reg, 0) == 0, "the undone registration left the fd free");
    CHECK(ctrl(fd, "eq{1", NETMAP_REQ_REGISTER, &reg, (uintptr_t)o) < 0 && errno == EBUSY,
          "an fd already registered: EBUSY, options or not");
    o[0] = (struct nmreq_option){ .nro_reqtype = 0, .nro_next = (uintptr_t)&o[0] };
    CHECK(ctrl(fd, "eq{1", NETMAP_REQ_REGISTER, &reg, (uintptr_t)o) < 0 && errno == EMSGSIZE,
          "a self-looping option: EMSGSIZE before its type");
    reg = (struct nmreq_register){ .nr_mode = NR_REG_NULL };
    int fd2 = open("/dev/netmap", O_RDWR);
    CHECK(ctrl(fd2, "nmc-no-such-if0", NETMAP_REQ_REGISTER, &reg, 0) < 0 && errno == EINVAL,
          "a null port is looked at before the name (no nr_mem_id: EINVAL, not ENXIO)");
    close(fd2);
    close(fd);
    return 0;
}

static void say(int fd, uint32_t v)
{
    CHECK(write(fd, &v, sizeof(v)) == sizeof(v), "say");
}

static uint32_t hear(int fd)
{
    uint32_t v;

    CHECK(read(fd, &v, sizeof(v)) == sizeof(v), "hear");
    return v;
}

/* Frames numbered from 0 until the TX ring is full after a txsync. */
static uint32_t fill_ring(struct port *p)
{
    struct netmap_ring *r = NETMAP_TXRING(p->nifp, 0);
    uint32_t n = 0;

    do {
        for (; nm_ring_space(r); n++) {
            struct netmap_slot *sl = &r->slot[r->head];
            memcpy(NETMAP_BUF(r, sl->buf_idx), &n, sizeof(n));
            sl->len = 60;
            r->head = r->cur = nm_ring_next(r, r->head);
        }
        CHECK(ioctl(p->fd, NIOCTXSYNC, NULL) == 0, "txsync");
    } while (nm_ring_space(r));
    return n;
}

/* The child: kept out, then the reader of frames sent elsewhere. */
static void xproc_child(int in, int out)
{
    struct port m2, s;
    struct nmreq_register reg = { .nr_mode = NR_REG_ALL_NIC };
    struct pollfd pfd;
    int fd = open("/dev/netmap", O_RDWR);
    uint32_t k, got = 0;

    CHECK(ctrl(fd, "xp{1", NETMAP_REQ_REGISTER, &reg, 0) < 0 && errno == EBUSY, "exclusive elsewhere");
    close(fd);
    open_port(&s, "xp}1", NR_REG_ALL_NIC);
    say(out, 0);
    k = hear(in);                       /* the sender filled its ring and closed */
    open_port(&m2, "xp{1", NR_REG_ALL_NIC);
    CHECK(nm_ring_space(NETMAP_TXRING(m2.nifp, 0)) == 0, "the full TX ring found as it was");
    struct netmap_ring *rx = NETMAP_RXRING(s.nifp, 0);
    CHECK(ioctl(s.fd, NIOCRXSYNC, NULL) == 0, "rxsync");
    for (; !nm_ring_empty(rx); got++) {
        uint32_t seq;
        memcpy(&seq, NETMAP_BUF(rx, rx->slot[rx->head].buf_idx), sizeof(seq));
        CHECK(seq == got, "frame %u is %u", got, seq);
        rx->head = rx->cur = nm_ring_next(rx, rx->head);
    }
    CHECK(got == k, "got %u of %u", got, k);
    CHECK(ioctl(s.fd, NIOCRXSYNC, NULL) == 0, "release");
    pfd = (struct pollfd){ .fd = m2.fd, .events = POLLOUT };
    CHECK(poll(&pfd, 1, 5000) == 1 && pfd.revents == POLLOUT, "room again: %#x", pfd.revents);
    close_port(&m2);
    close_port(&s);
}

static int xproc(void)
{
    int down[2], up[2], status;
    struct port m;
    struct pollfd pfd;
    uint32_t k;
    pid_t pid;

    CHECK(pipe(down) == 0 && pipe(up) == 0, "pipe");
    open_port_flags(&m, "xp{1", NR_REG_ALL_NIC, NR_EXCLUSIVE);
    if ((pid = fork()) == 0) {
        close_port(&m);                 /* its copy only: the parent keeps the port */
        xproc_child(down[0], up[1]);
        _exit(0);
    }
    CHECK(pid > 0, "fork");
    hear(up[0]);                        /* kept out, and reading end open */
    k = fill_ring(&m);
    pfd = (struct pollfd){ .fd = m.fd, .events = POLLOUT };
    CHECK(poll(&pfd, 1, 100) == 0, "back-pressure from the other process: %#x", pfd.revents);
    close_port(&m);
    say(down[1], k);
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0, "child");
    return 0;
}

static int dup_unbound(void)
{
    struct port m, s = { 0 };
    struct stat a, b, c;
    struct nmreq_register again = { .nr_mode = NR_REG_ALL_NIC };
    int d, d2;

    open_port(&m, "du{1", NR_REG_ALL_NIC);
    s.fd = open("/dev/netmap", O_RDWR);
    CHECK(s.fd >= 0 && (d = dup(s.fd)) >= 0 && (d2 = fcntl(s.fd, F_DUPFD_CLOEXEC, 100)) >= 100, "dup");
    s.reg.nr_mode = NR_REG_ALL_NIC;
    CHECK(ctrl(s.fd, "du}1", NETMAP_REQ_REGISTER, &s.reg, 0) == 0, "register");
    CHECK(fstat(s.fd, &a) == 0 && fstat(d, &b) == 0 && fstat(d2, &c) == 0, "fstat");
    CHECK(a.st_ino == b.st_ino && a.st_ino == c.st_ino && a.st_dev == b.st_dev, "one file: %lu %lu %lu",
          (unsigned long)a.st_ino, (unsigned long)b.st_ino, (unsigned long)c.st_ino);
    CHECK(fcntl(d2, F_GETFD) == FD_CLOEXEC && fcntl(d, F_GETFD) == 0, "close-on-exec flags kept");
    CHECK(ctrl(d, "du}1", NETMAP_REQ_REGISTER, &again, 0) < 0 && errno == EBUSY, "registered through the dup");
    close(s.fd);
    s.fd = d;
    s.mem = mmap(NULL, s.reg.nr_memsize, PROT_READ | PROT_WRITE, MAP_SHARED, d2, 0);
    CHECK(s.mem != MAP_FAILED, "mmap through the second dup");
    s.nifp = NETMAP_IF(s.mem, s.reg.nr_offset);
    queue(&m, 3);
    CHECK(ioctl(d, NIOCRXSYNC, NULL) == 0, "rxsync");
    CHECK(nm_ring_space(NETMAP_RXRING(s.nifp, 0)) == 3, "3 frames through the dup");
    close(d2);
    close_port(&s);
    close_port(&m);
    return 0;
}

/* An adopted entry left at a number the kernel has freed (closed behind
 * the emulation's back, as here, or closed by another thread between an
 * adoption's check and its publication: the same entry, made
 * deterministic) is stale; the open that reuses the number unnames it,
 * and its port closes. */
static int reuse_adopted(void)
{
    struct port m, s;
    int n, fd;

    open_port(&m, "ea{1", NR_REG_ALL_NIC);
    open_port(&s, "ea}1", NR_REG_ALL_NIC);
    CHECK((n = (int)syscall(SYS_dup, s.fd)) >= 0, "a number the emulation does not know");
    CHECK(ioctl(n, NIOCRXSYNC, NULL) == 0, "adopted by its first sync");
    CHECK(syscall(SYS_close, n) == 0, "closed behind the emulation's back");
    CHECK((fd = open("/dev/netmap", O_RDWR)) == n, "the number reused by /dev/netmap: %d, not %d", fd, n);
    CHECK(close(fd) == 0, "close");
    close_port(&s);
    close_port(&m);
    CHECK(rundir_residue() == 0, "the adopted port went with the entry");
    return 0;
}

/* The bind hook hands its work to this thread, whose calls are the
 * program's own (the hook runs inside the emulation, where calls are not
 * emulated), and waits for it. */
static struct {
    int go[2], done[2];                 /* pipes: hook -> helper, helper -> hook */
    const char *mode, *file;
    int fd, dev;                        /* the hook's arguments */
    int file_fd, sync_rc;               /* what the helper did */
    struct rlimit lim;
} hk;

static void *hook_helper(void *arg)
{
    char c;

    (void)arg;
    CHECK(read(hk.go[0], &c, 1) == 1, "helper: go");
    if (!strcmp(hk.mode, "bind-closed")) {
        CHECK(close(hk.fd) == 0, "helper: close the registering number");
        hk.file_fd = open(hk.file, O_RDONLY);
    } else {                            /* bind-adopted */
        hk.sync_rc = ioctl(hk.dev, NIOCTXSYNC, NULL);
    }
    CHECK(write(hk.done[1], "d", 1) == 1, "helper: done");
    return NULL;
}

__attribute__((visibility("default"))) void nmcompat_test_bind_hook(int fd, int dev);
void nmcompat_test_bind_hook(int fd, int dev)
{
    char c;

    if (!hk.mode)
        return;
    hk.fd = fd;
    hk.dev = dev;
    if (!strcmp(hk.mode, "unbind-emfile")) {   /* from here on no descriptor can be opened */
        CHECK(getrlimit(RLIMIT_NOFILE, &hk.lim) == 0, "getrlimit");
        struct rlimit low = { .rlim_cur = (rlim_t)dev, .rlim_max = hk.lim.rlim_max };
        CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0, "setrlimit");
        return;
    }
    CHECK(write(hk.go[1], "g", 1) == 1 && read(hk.done[0], &c, 1) == 1, "hook: helper");
}

static pthread_t hook_start(const char *mode, const char *file)
{
    pthread_t t;

    hk.mode = mode;
    hk.file = file;
    CHECK(pipe(hk.go) == 0 && pipe(hk.done) == 0, "pipe");
    CHECK(pthread_create(&t, NULL, hook_helper, NULL) == 0, "thread");
    return t;
}

static void hook_join(pthread_t t)
{
    CHECK(pthread_join(t, NULL) == 0, "join");
    hk.mode = NULL;
}

/* Once the numbers freed meanwhile have been looked at (the pipes, made
 * first, hold numbers below those). */
static void hook_close(void)
{
    close(hk.go[0]), close(hk.go[1]), close(hk.done[0]), close(hk.done[1]);
}

/* Another thread closes the number a REGISTER is binding and opens a file
 * that takes it: the REGISTER fails with EBADF and the file stays the
 * file (the device descriptor was put over it). */
static int bind_closed(const char *file)
{
    struct nmreq_register reg = { .nr_mode = NR_REG_ALL_NIC };
    struct stat want, got;
    char buf[16] = { 0 };
    pthread_t t;
    int fd = open("/dev/netmap", O_RDWR);

    CHECK(fd >= 0 && stat(file, &want) == 0, "open");
    t = hook_start("bind-closed", file);
    CHECK(ctrl(fd, "eb}1", NETMAP_REQ_REGISTER, &reg, 0) < 0 && errno == EBADF,
          "a REGISTER whose number was closed meanwhile: EBADF");
    hook_join(t);
    hook_close();
    CHECK(hk.file_fd == fd, "the file took the number: %d, not %d", hk.file_fd, fd);
    CHECK(fstat(fd, &got) == 0 && got.st_ino == want.st_ino && got.st_dev == want.st_dev, "the file is the file");
    CHECK(pread(fd, buf, sizeof(buf) - 1, 0) > 0 && !strncmp(buf, "the file", 8), "the file's bytes");
    CHECK(close(fd) == 0, "close the file");
    CHECK(rundir_residue() == 0, "the port closed");
    return 0;
}

/* Another thread adopts a REGISTER's temporary device descriptor (a netmap
 * ioctl on a number it does not own): the entry goes when the REGISTER
 * closes that number, so a file that takes the number next is the file. */
static int bind_adopted(const char *file)
{
    struct nmreq_register reg = { .nr_mode = NR_REG_ALL_NIC };
    struct port m;
    pthread_t t;
    int fd = open("/dev/netmap", O_RDWR), f;

    open_port(&m, "eb{2", NR_REG_ALL_NIC);
    t = hook_start("bind-adopted", file);
    CHECK(ctrl(fd, "eb}2", NETMAP_REQ_REGISTER, &reg, 0) == 0, "register");
    hook_join(t);
    CHECK(hk.sync_rc == 0, "the other thread's sync adopted the device descriptor");
    CHECK((f = open(file, O_RDONLY)) == hk.dev, "the number reused by a file: %d, not %d", f, hk.dev);
    CHECK(ioctl(f, NIOCTXSYNC, NULL) < 0 && errno == ENOTTY, "a netmap ioctl on the file");
    CHECK(close(f) == 0 && close(fd) == 0, "close");
    hook_close();
    close_port(&m);
    CHECK(rundir_residue() == 0, "the adopted port closed");
    return 0;
}

/* An unserved option undoes a registration while the process can open no
 * descriptor: the fd names /dev/null again (not the device descriptor of a
 * closed port) and registers afterwards.  A REGISTER with options that
 * cannot keep the means of its undo (a descriptor) is refused (EMFILE)
 * before anything is registered. */
static int unbind_emfile(void)
{
    struct nmreq_option o = { .nro_reqtype = 100 };
    struct nmreq_register reg = { .nr_mode = NR_REG_ALL_NIC };
    struct rlimit lim, none;
    struct stat st;
    int fd = open("/dev/netmap", O_RDWR), next;

    CHECK(fd >= 0 && (next = dup(0)) > fd && close(next) == 0, "open");
    CHECK(getrlimit(RLIMIT_NOFILE, &lim) == 0, "getrlimit");
    none = (struct rlimit){ .rlim_cur = (rlim_t)next, .rlim_max = lim.rlim_max };
    CHECK(setrlimit(RLIMIT_NOFILE, &none) == 0, "setrlimit");
    errno = 0;
    CHECK(ctrl(fd, "ef}1", NETMAP_REQ_REGISTER, &reg, (uintptr_t)&o) < 0 && errno == EMFILE,
          "options, and no descriptor to keep for the undo");
    CHECK(setrlimit(RLIMIT_NOFILE, &lim) == 0 && fstat(fd, &st) == 0 && S_ISCHR(st.st_mode), "not registered");
    hk.mode = "unbind-emfile";
    CHECK(ctrl(fd, "ef}1", NETMAP_REQ_REGISTER, &reg, (uintptr_t)&o) < 0 && errno == EOPNOTSUPP,
          "an unserved option");
    CHECK(hk.dev > 0 && setrlimit(RLIMIT_NOFILE, &hk.lim) == 0, "the hook ran; limit restored");
    hk.mode = NULL;
    CHECK(o.nro_status == EOPNOTSUPP, "the option's status");
    CHECK(fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3),
          "the fd is /dev/null again (mode %o)", st.st_mode);
    CHECK(ctrl(fd, "ef}1", NETMAP_REQ_REGISTER, &reg, 0) == 0, "registers afterwards");
    CHECK(close(fd) == 0, "close");
    CHECK(rundir_residue() == 0, "the ports closed");
    return 0;
}

/* ---- control requests (netmap.md sections 1.9-1.11) ---- */

/* netmap_bdg.h NM_BDG_NOPORT (NM_BDG_MAXPORTS 254, plus 1): VALE_LIST's port
 * index for a name its switch does not hold. */
#define BDG_NOPORT 255

/* The errno of one request, 0 on success. */
static int ctrl_err(int fd, const char *name, uint16_t type, void *body, uint64_t options)
{
    return ctrl(fd, name, type, body, options) == 0 ? 0 : errno;
}

/* VALE_LIST with an empty name from (0, 0) to its ENOENT: how often the walk
 * met `want` (at bridge b, port p, the indexes VALE_LIST of the name gave). */
static unsigned walk_meets(int fd, const char *want, uint16_t b, uint32_t p)
{
    struct nmreq_vale_list l = { 0 };
    struct nmreq_header h;
    unsigned met = 0;

    for (unsigned n = 0;; n++) {
        CHECK(n < 100000, "the walk ends");
        memset(&h, 0, sizeof(h));
        h.nr_version = NETMAP_API;
        h.nr_reqtype = NETMAP_REQ_VALE_LIST;
        h.nr_body = (uintptr_t)&l;
        if (ioctl(fd, NIOCCTRL, &h) < 0)
            break;
        if (!strcmp(h.nr_name, want)) {
            CHECK(l.nr_bridge_idx == b && l.nr_port_idx == p, "walk: %s at %u/%u, by name %u/%u", want,
                  l.nr_bridge_idx, l.nr_port_idx, b, p);
            met++;
        }
        l.nr_port_idx++;                /* the next one after this */
    }
    CHECK(errno == ENOENT, "the walk ends with ENOENT");
    return met;
}

/* NEWIF NAME (its errnos, its reply), ATTACH to SW, LIST by name and walk. */
static int vale_make(const char *name, const char *sw)
{
    struct nmreq_vale_newif n = { .nr_tx_slots = 512, .nr_rx_slots = 256, .nr_tx_rings = 2, .nr_rx_rings = 1 };
    struct nmreq_vale_newif again = n;
    struct nmreq_vale_attach a = { .reg = { .nr_mode = NR_REG_ALL_NIC } };
    struct nmreq_vale_list l = { 0 };
    struct nmreq_port_info_get pi = { 0 };
    char port[NETMAP_REQ_IFNAMSIZ];
    struct port p;
    int fd = open("/dev/netmap", O_RDWR);

    CHECK(fd >= 0, "open /dev/netmap");
    snprintf(port, sizeof(port), "%s:%s", sw, name);
    CHECK(ctrl_err(fd, "valeq0", NETMAP_REQ_VALE_NEWIF, &again, 0) == EINVAL, "NEWIF of a vale name: EINVAL");
    CHECK(ctrl_err(fd, "lo", NETMAP_REQ_VALE_NEWIF, &again, 0) == EEXIST, "NEWIF of an interface: EEXIST");
    CHECK(ctrl_err(fd, name, NETMAP_REQ_VALE_NEWIF, &n, 0) == 0, "NEWIF %s", name);
    CHECK(n.nr_tx_slots == 512 && n.nr_rx_slots == 256 && n.nr_tx_rings == 2 && n.nr_rx_rings == 1,
          "NEWIF reply: slots %u/%u rings %u/%u", n.nr_tx_slots, n.nr_rx_slots, n.nr_tx_rings, n.nr_rx_rings);
    CHECK(n.nr_mem_id != 0, "NEWIF reply: the port's mem_id");
    CHECK(ctrl_err(fd, name, NETMAP_REQ_VALE_NEWIF, &again, 0) == EEXIST, "NEWIF twice: EEXIST");
    open_port(&p, name, NR_REG_ALL_NIC);         /* the port by its own name, as the interface NEWIF made */
    CHECK(p.reg.nr_tx_rings == 2 && p.reg.nr_rx_rings == 1 && p.reg.nr_tx_slots == 512 &&
          p.reg.nr_rx_slots == 256 && p.reg.nr_mem_id == n.nr_mem_id, "REGISTER %s: the port NEWIF made", name);
    close_port(&p);
    CHECK(ctrl_err(fd, name, NETMAP_REQ_VALE_ATTACH, &a, 0) == EINVAL, "ATTACH without the vale prefix: EINVAL");
    CHECK(ctrl_err(fd, port, NETMAP_REQ_VALE_ATTACH, &a, 0) == 0, "ATTACH %s", port);
    CHECK(ctrl_err(fd, port, NETMAP_REQ_VALE_ATTACH, &a, 0) == EBUSY, "ATTACH of an attached port: EBUSY");
    CHECK(ctrl_err(fd, port, NETMAP_REQ_PORT_INFO_GET, &pi, 0) == 0 && pi.nr_mem_id == n.nr_mem_id &&
          pi.nr_tx_rings == 2 && pi.nr_rx_rings == 1 && pi.nr_tx_slots == 512 && pi.nr_rx_slots == 256,
          "PORT_INFO_GET of %s: the port NEWIF made (mem_id %u)", port, pi.nr_mem_id);
    CHECK(ctrl_err(fd, name, NETMAP_REQ_VALE_LIST, &l, 0) == EINVAL, "LIST of a name that is not VALE: EINVAL");
    CHECK(ctrl_err(fd, "valenmcnosw:x", NETMAP_REQ_VALE_LIST, &l, 0) == ENOENT, "LIST of a missing switch: ENOENT");
    CHECK(ctrl_err(fd, port, NETMAP_REQ_VALE_LIST, &l, 0) == 0 && l.nr_port_idx == a.port_index,
          "LIST %s: port %u, ATTACH said %u", port, l.nr_port_idx, a.port_index);
    CHECK(walk_meets(fd, port, l.nr_bridge_idx, l.nr_port_idx) == 1, "the walk meets %s once", port);
    close(fd);
    return 0;
}

/* DETACH NAME from SW and DELIF it, with the errnos on the way; a port of
 * our own keeps SW alive meanwhile. */
static int vale_drop(const char *name, const char *sw)
{
    struct nmreq_vale_detach d = { 0 };
    struct nmreq_vale_list l = { 0 };
    uint16_t b;
    char port[NETMAP_REQ_IFNAMSIZ], keep[NETMAP_REQ_IFNAMSIZ];
    struct port k, p;
    int fd = open("/dev/netmap", O_RDWR);

    CHECK(fd >= 0, "open /dev/netmap");
    snprintf(port, sizeof(port), "%s:%s", sw, name);
    snprintf(keep, sizeof(keep), "%s:keep", sw);
    open_port(&k, keep, NR_REG_ALL_NIC);
    CHECK(ctrl_err(fd, port, NETMAP_REQ_VALE_LIST, &l, 0) == 0, "LIST %s", port);
    CHECK(ctrl_err(fd, name, NETMAP_REQ_VALE_DELIF, NULL, 0) == EBUSY, "DELIF of an attached port: EBUSY");
    CHECK(ctrl_err(fd, port, NETMAP_REQ_VALE_DETACH, &d, 0) == 0 && d.port_index == l.nr_port_idx,
          "DETACH %s: port %u, LIST said %u", port, d.port_index, l.nr_port_idx);
    CHECK(ctrl_err(fd, port, NETMAP_REQ_VALE_DETACH, &d, 0) == ENXIO, "DETACH of a detached port: ENXIO");
    CHECK(walk_meets(fd, port, 0, 0) == 0, "the walk no longer meets %s", port);
    b = l.nr_bridge_idx;
    CHECK(ctrl_err(fd, port, NETMAP_REQ_VALE_LIST, &l, 0) == 0 && l.nr_bridge_idx == b &&
          l.nr_port_idx == BDG_NOPORT, "LIST of a port not on its switch: the switch, port %u", l.nr_port_idx);
    open_port(&p, name, NR_REG_ALL_NIC);
    CHECK(ctrl_err(fd, name, NETMAP_REQ_VALE_DELIF, NULL, 0) == EBUSY, "DELIF of a port in use: EBUSY");
    close_port(&p);
    CHECK(ctrl_err(fd, "lo", NETMAP_REQ_VALE_DELIF, NULL, 0) == EINVAL, "DELIF of an interface: EINVAL");
    CHECK(ctrl_err(fd, name, NETMAP_REQ_VALE_DELIF, NULL, 0) == 0, "DELIF %s", name);
    CHECK(ctrl_err(fd, name, NETMAP_REQ_VALE_DELIF, NULL, 0) == ENXIO, "DELIF of a missing port: ENXIO");
    close_port(&k);
    close(fd);
    return 0;
}

/* ring_ofs of TX (rx 0) or RX (rx 1) ring i: 0 when this fd binds no such ring. */
static ssize_t ring_ofs(const struct port *p, int rx, unsigned i)
{
    const struct netmap_if *ni = p->nifp;

    return ni->ring_ofs[rx ? i + ni->ni_tx_rings + ni->ni_host_tx_rings : i];
}

static void check_bound(const struct port *p, const char *name, int tx_bound, int rx_bound)
{
    CHECK(p->reg.nr_tx_rings == p->nifp->ni_tx_rings && p->reg.nr_rx_rings == p->nifp->ni_rx_rings &&
          p->reg.nr_tx_rings >= 1 && p->reg.nr_rx_rings >= 1, "%s: the reply's counts are the port's", name);
    for (unsigned i = 0; i < p->nifp->ni_tx_rings; i++)
        CHECK((ring_ofs(p, 0, i) != 0) == tx_bound, "%s: TX ring %u bound %d", name, i, tx_bound);
    for (unsigned i = 0; i < p->nifp->ni_rx_rings; i++)
        CHECK((ring_ofs(p, 1, i) != 0) == rx_bound, "%s: RX ring %u bound %d", name, i, rx_bound);
    CHECK(ioctl(p->fd, NIOCTXSYNC, NULL) == 0 && ioctl(p->fd, NIOCRXSYNC, NULL) == 0, "%s: both syncs", name);
}

/* n frames from tx (TX rings only) to each of the receivers (RX ring 0), in
 * batches each receiver's ring holds (a switch drops what does not fit). */
static void pass_frames(struct port *tx, struct port *rx, unsigned nrx, unsigned n)
{
    unsigned sent = 0, got[2] = { 0, 0 };

    while (sent < n) {
        put_frames(tx, &sent, sent + 200 < n ? sent + 200 : n);
        CHECK(ioctl(tx->fd, NIOCTXSYNC, NULL) == 0, "txsync");
        for (unsigned k = 0; k < nrx; k++)
            for (unsigned round = 0; got[k] < sent; round++) {
                struct pollfd pfd = { .fd = rx[k].fd, .events = POLLIN };
                CHECK(round < 100 && poll(&pfd, 1, 1000) >= 0, "receiver %u: %u of %u frames", k, got[k], sent);
                CHECK(ioctl(rx[k].fd, NIOCRXSYNC, NULL) == 0, "rxsync");
                take_frames(&rx[k], &got[k]);
            }
    }
}

static int rings_only(void)
{
    struct port tx, rx[2], ptx, prx;

    open_port_flags(&tx, "valero:tx", NR_REG_ALL_NIC, NR_TX_RINGS_ONLY);
    open_port_flags(&rx[0], "valero:rx", NR_REG_ALL_NIC, NR_RX_RINGS_ONLY);
    open_port_flags(&rx[1], "valero:vnet", NR_REG_ALL_NIC, NR_ACCEPT_VNET_HDR);
    check_bound(&tx, "valero:tx", 1, 0);
    check_bound(&rx[0], "valero:rx", 0, 1);
    check_bound(&rx[1], "valero:vnet", 1, 1);
    pass_frames(&tx, rx, 2, 3000);
    open_port_flags(&ptx, "ro{1", NR_REG_ALL_NIC, NR_TX_RINGS_ONLY);
    open_port_flags(&prx, "ro}1", NR_REG_ONE_NIC, NR_RX_RINGS_ONLY);
    check_bound(&ptx, "ro{1", 1, 0);
    CHECK(ring_ofs(&prx, 1, 0) != 0 && ring_ofs(&prx, 0, 0) == 0, "ro}1: RX ring 0 alone");
    pass_frames(&ptx, &prx, 1, 3000);
    close_port(&prx);
    close_port(&ptx);
    close_port(&rx[1]);
    close_port(&rx[0]);
    close_port(&tx);
    return 0;
}

/* Polling threads (netmap_bdg.c nm_bdg_polling: a VALE port that is no NIC
 * attachment EOPNOTSUPP, a name that is not VALE EINVAL); the sync kloop
 * (netmap_kloop.c: sleep over a second EINVAL, an unregistered fd ENXIO,
 * START without CSB mode EINVAL, STOP with no kloop running 0); CSB_ENABLE
 * without the CSB option EINVAL (netmap.c). */
static int kernel_features(void)
{
    struct nmreq_sync_kloop_start ks = { .sleep_us = 100 }, slow = { .sleep_us = 2000000 };
    struct nmreq_vale_polling vp = { .nr_mode = NETMAP_POLLING_MODE_SINGLE_CPU, .nr_num_polling_cpus = 1 };
    struct port p;
    int fd = open("/dev/netmap", O_RDWR);

    CHECK(fd >= 0, "open /dev/netmap");
    CHECK(ctrl_err(fd, "", NETMAP_REQ_SYNC_KLOOP_START, &slow, 0) == EINVAL, "kloop sleeping over 1 s: EINVAL");
    CHECK(ctrl_err(fd, "", NETMAP_REQ_SYNC_KLOOP_START, &ks, 0) == ENXIO, "kloop START unregistered: ENXIO");
    CHECK(ctrl_err(fd, "", NETMAP_REQ_SYNC_KLOOP_STOP, NULL, 0) == ENXIO, "kloop STOP unregistered: ENXIO");
    CHECK(ctrl_err(fd, "", NETMAP_REQ_CSB_ENABLE, NULL, 0) == EINVAL, "CSB_ENABLE without the option: EINVAL");
    open_port(&p, "valekf:a", NR_REG_ALL_NIC);
    CHECK(ctrl_err(p.fd, "", NETMAP_REQ_SYNC_KLOOP_START, &ks, 0) == EINVAL, "kloop START without CSB: EINVAL");
    CHECK(ctrl_err(p.fd, "", NETMAP_REQ_SYNC_KLOOP_STOP, NULL, 0) == 0, "kloop STOP with none running: 0");
    CHECK(ctrl_err(p.fd, "", NETMAP_REQ_CSB_ENABLE, NULL, 0) == EINVAL, "CSB_ENABLE registered, no option: EINVAL");
    CHECK(ctrl_err(fd, "valekf:a", NETMAP_REQ_VALE_POLLING_ENABLE, &vp, 0) == EOPNOTSUPP,
          "polling of a VALE port that is no NIC: EOPNOTSUPP");
    CHECK(ctrl_err(fd, "valekf:a", NETMAP_REQ_VALE_POLLING_DISABLE, &vp, 0) == EOPNOTSUPP,
          "polling off on a VALE port that is no NIC: EOPNOTSUPP");
    CHECK(ctrl_err(fd, "kf{1", NETMAP_REQ_VALE_POLLING_ENABLE, &vp, 0) == EINVAL, "polling of a pipe: EINVAL");
    CHECK(ctrl_err(fd, "lo", NETMAP_REQ_VALE_POLLING_DISABLE, &vp, 0) == EINVAL, "polling of a NIC name: EINVAL");
    close_port(&p);
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    int rc = -1;

    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 2)
        return 2;
    if (!strcmp(argv[1], "pollout-nopeer")) rc = pollout_nopeer();
    else if (!strcmp(argv[1], "rdnorm")) rc = rdnorm();
    else if (!strcmp(argv[1], "close-poll")) rc = close_while(0, argc > 2 ? atoi(argv[2]) : 10);
    else if (!strcmp(argv[1], "close-sync")) rc = close_while(1, argc > 2 ? atoi(argv[2]) : 10);
    else if (!strcmp(argv[1], "stale") && argc == 3) rc = stale(argv[2]);
    else if (!strcmp(argv[1], "exclusive-info")) rc = exclusive_info();
    else if (!strcmp(argv[1], "readonly")) rc = readonly();
    else if (!strcmp(argv[1], "open-null")) rc = open_null();
    else if (!strcmp(argv[1], "options")) rc = options();
    else if (!strcmp(argv[1], "dup-unbound")) rc = dup_unbound();
    else if (!strcmp(argv[1], "xproc")) rc = xproc();
    else if (!strcmp(argv[1], "reuse-adopted")) rc = reuse_adopted();
    else if (!strcmp(argv[1], "bind-closed") && argc == 3) rc = bind_closed(argv[2]);
    else if (!strcmp(argv[1], "bind-adopted") && argc == 3) rc = bind_adopted(argv[2]);
    else if (!strcmp(argv[1], "unbind-emfile")) rc = unbind_emfile();
    else if (!strcmp(argv[1], "vale-ctl") && argc == 4) rc = vale_make(argv[2], argv[3]) || vale_drop(argv[2], argv[3]);
    else if (!strcmp(argv[1], "vale-make") && argc == 4) rc = vale_make(argv[2], argv[3]);
    else if (!strcmp(argv[1], "vale-drop") && argc == 4) rc = vale_drop(argv[2], argv[3]);
    else if (!strcmp(argv[1], "rings-only")) rc = rings_only();
    else if (!strcmp(argv[1], "kernel-features")) rc = kernel_features();
    if (rc == 0)
        printf("%s ok\n", argv[1]);
    return rc == 0 ? 0 : 2;
}
