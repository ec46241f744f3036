/*
 * nm_raw.c -- a program written against netmap's own interface, as netmap's
 * tools are: open("/dev/netmap"), ioctl(NIOCCTRL / NIOCREGIF), mmap,
 * NIOCTXSYNC/NIOCRXSYNC, poll, close.  It knows nothing of nmcompat and is
 * linked with nothing of it; tests run it under `nmcompat exec`.
 *
 *   nm_raw traffic TX RX N      N frames from port TX to port RX (a pipe's
 *                               two ends, or two VALE ports), the receiver
 *                               waiting in poll() beside a pipe(2) fd, the
 *                               sender for POLLOUT; prints "traffic ok N"
 *   nm_raw errors PARENT        netmap's errnos for bad requests; prints
 *                               "errors ok"
 *   nm_raw select TX RX N       traffic, the receiver waiting in select()
 *                               and the sender in pselect()
 *   nm_raw epoll TX RX N        traffic, both waiting in epoll_wait() (one
 *                               set: the two netmap fds and the pipe(2) fd)
 *   nm_raw pass|passnic|passgone|passkeep|passrefused|passbadenv|keepexec|firstwait|
 *          bystander|arrivals ...
 *                               a port's fd that moves between processes
 *                               (nm_raw_fds.c)
 *   nm_raw daemon TX RX N       traffic after closing fds 0, 1 and 2, as a
 *                               daemon does (the emulation's descriptors may
 *                               then get those numbers); the exit status says
 *   nm_raw legacy PARENT N      the same traffic through NIOCREGIF pipe modes
 *   nm_raw fork TX RX N         TX and RX registered, then fork(): the parent
 *                               closes TX at once and receives; the child, the
 *                               only holder of TX's fd left, sends N frames
 *                               and exits; prints "fork ok N"
 *   nm_raw dropped TX RX N      TX and RX registered, then the process
 *                               becomes user and group 65534 (nobody) and
 *                               prints "dropped"; then sends N frames on TX
 *                               and receives N on RX, waiting in poll() for
 *                               room and for frames; prints "dropped done N",
 *                               waits for SIGUSR1, closes both and prints
 *                               "dropped ok N"
 *   nm_raw dropsend PORT N      PORT registered, then the process becomes
 *                               nobody and prints "dropped"; waits for
 *                               SIGUSR1 (its peers are there), polls for
 *                               POLLOUT, sends N frames on PORT, then
 *                               receives N on it in poll(); prints
 *                               "dropsend done N", waits for SIGUSR1,
 *                               closes and prints "dropsend ok N"
 *   nm_raw peer RX TX N         the other side: receives N frames on RX,
 *                               then sends N on TX, both through poll();
 *                               prints "peer done N", waits for SIGUSR1,
 *                               closes and prints "peer ok N"
 *   nm_raw send TX N            sends N frames on TX (poll() for room);
 *                               prints "send ok N"
 *   nm_raw recv RX N            prints "ready", receives N frames on RX in
 *                               poll(); prints "recv ok N"
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <grp.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "nm_raw.h"

static int use_select;                  /* 1: select/pselect; 2: epoll */
static int epfd = -1;

/* One epoll set for the run: fd (data: fd) for `events`, `other` for POLLIN. */
static void epoll_wait_for(int fd, int other, uint32_t events)
{
    struct epoll_event ev = { .events = events, .data.fd = fd }, got[4];
    int rc;

    if (epfd < 0) {
        struct epoll_event oev = { .events = EPOLLIN, .data.fd = other };
        CHECK((epfd = epoll_create1(EPOLL_CLOEXEC)) >= 0, "epoll_create1");
        CHECK(epoll_ctl(epfd, EPOLL_CTL_ADD, other, &oev) == 0, "epoll_ctl other");
    }
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) < 0) {
        CHECK(errno == ENOENT, "epoll_ctl MOD");
        CHECK(epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0, "epoll_ctl ADD");
    }
    rc = epoll_wait(epfd, got, 4, 5000);
    CHECK(rc == 1 && got[0].data.fd == fd && (got[0].events & events), "epoll_wait rc %d fd %d events %x",
          rc, rc > 0 ? got[0].data.fd : -1, rc > 0 ? got[0].events : 0);
    CHECK(epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL) == 0, "epoll_ctl DEL");
}

/* Wait until fd is readable (want_out 0) or writable, beside `other`, which
 * must not become ready: poll() or select()/pselect(). */
static void wait_for(int fd, int other, int want_out)
{
    if (use_select == 2) {
        epoll_wait_for(fd, other, want_out ? EPOLLOUT : EPOLLIN);
        return;
    }
    if (!use_select) {
        struct pollfd pfd[2] = { { .fd = other, .events = POLLIN },
                                 { .fd = fd, .events = want_out ? POLLOUT : POLLIN } };
        int rc = poll(pfd, 2, 5000);
        CHECK(rc == 1 && pfd[1].revents == pfd[1].events && pfd[0].revents == 0, "poll rc %d revents %d/%d",
              rc, pfd[0].revents, pfd[1].revents);
        return;
    }
    fd_set set;
    int rc, top = (fd > other ? fd : other) + 1;
    FD_ZERO(&set);
    FD_SET(fd, &set);
    FD_SET(other, &set);
    if (want_out) {
        fd_set rset;
        struct timespec ts = { 5, 0 };
        FD_ZERO(&rset);
        FD_SET(other, &rset);
        FD_CLR(other, &set);
        rc = pselect(top, &rset, &set, NULL, &ts, NULL);
        CHECK(rc == 1 && FD_ISSET(fd, &set) && !FD_ISSET(other, &rset), "pselect rc %d", rc);
    } else {
        struct timeval tv = { 5, 0 };
        rc = select(top, &set, NULL, NULL, &tv);
        CHECK(rc == 1 && FD_ISSET(fd, &set) && !FD_ISSET(other, &set), "select rc %d", rc);
        CHECK(tv.tv_sec <= 5 && tv.tv_usec < 1000000, "select's time left");
    }
}

/* N frames from tx to rx, the receiver in poll() with an idle pipe(2) fd beside. */
static void traffic(struct port *tx, struct port *rx, unsigned n)
{
    struct netmap_ring *tr = NETMAP_TXRING(tx->nifp, 0);
    unsigned sent = 0, got = 0;
    int other[2];

    CHECK(pipe(other) == 0, "pipe");
    while (got < n) {
        if (sent < n && nm_ring_space(tr) == 0)            /* room comes back through poll */
            wait_for(tx->fd, other[0], 1);
        put_frames(tx, &sent, n);
        CHECK(ioctl(tx->fd, NIOCTXSYNC, NULL) == 0, "txsync");
        wait_for(rx->fd, other[0], 0);
        take_frames(rx, &got);
        CHECK(ioctl(rx->fd, NIOCRXSYNC, NULL) == 0, "rxsync");      /* releases what was read */
    }
    close(other[0]);
    close(other[1]);
}

static int run_traffic(const char *txname, const char *rxname, unsigned n)
{
    struct port m, s;

    open_port(&m, txname, NR_REG_ALL_NIC);
    open_port(&s, rxname, NR_REG_ALL_NIC);
    traffic(&m, &s, n);
    close_port(&m);
    close_port(&s);
    printf("traffic ok %u\n", n);
    return 0;
}

/* The receiving half of traffic(): N frames on rx, in poll(). */
void receive(struct port *rx, unsigned n)
{
    unsigned got = 0;

    while (got < n) {
        struct pollfd pfd = { .fd = rx->fd, .events = POLLIN };
        CHECK(poll(&pfd, 1, 10000) == 1 && pfd.revents == POLLIN, "poll POLLIN %d at %u", pfd.revents, got);
        take_frames(rx, &got);
    }
}

/* The sending half: N frames on tx, waiting for room in poll(). */
void send_all(struct port *tx, unsigned n)
{
    struct netmap_ring *tr = NETMAP_TXRING(tx->nifp, 0);

    for (unsigned sent = 0; sent < n;) {
        if (nm_ring_space(tr) == 0) {
            struct pollfd out = { .fd = tx->fd, .events = POLLOUT };
            CHECK(poll(&out, 1, 10000) == 1 && out.revents == POLLOUT, "poll POLLOUT %d", out.revents);
        }
        put_frames(tx, &sent, n);
        CHECK(ioctl(tx->fd, NIOCTXSYNC, NULL) == 0, "txsync");
    }
}

static int run_fork(const char *txname, const char *rxname, unsigned n)
{
    struct port m, s;
    int status;
    pid_t pid;

    open_port(&m, txname, NR_REG_ALL_NIC);
    open_port(&s, rxname, NR_REG_ALL_NIC);
    if ((pid = fork()) == 0) {
        close_port(&s);
        send_all(&m, n);
        close_port(&m);
        _exit(0);
    }
    CHECK(pid > 0, "fork");
    close_port(&m);                     /* the child has it: the port lives */
    receive(&s, n);
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0, "child");
    close_port(&s);
    printf("fork ok %u\n", n);
    return 0;
}

static int run_send(const char *txname, unsigned n)
{
    struct port tx;

    open_port(&tx, txname, NR_REG_ALL_NIC);
    send_all(&tx, n);                   /* its last NIOCTXSYNC put every frame in the peer's ring */
    close_port(&tx);
    printf("send ok %u\n", n);
    return 0;
}

static int run_recv(const char *rxname, unsigned n)
{
    struct port rx;

    open_port(&rx, rxname, NR_REG_ALL_NIC);
    printf("ready\n");
    receive(&rx, n);
    close_port(&rx);
    printf("recv ok %u\n", n);
    return 0;
}

/* SIGUSR1, blocked from the start so that none is lost before the wait. */
static void wait_usr1(void)
{
    sigset_t set;
    int sig;

    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    CHECK(sigwait(&set, &sig) == 0 && sig == SIGUSR1, "sigwait");
}

static void block_usr1(void)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    CHECK(sigprocmask(SIG_BLOCK, &set, NULL) == 0, "sigprocmask");
}

/* Ports registered as root, then the privileges go for good (as a daemon
 * that switches to its own user after opening what it needs). */
static int run_dropped(const char *txname, const char *rxname, unsigned n)
{
    struct port tx, rx;

    block_usr1();
    open_port(&tx, txname, NR_REG_ALL_NIC);
    open_port(&rx, rxname, NR_REG_ALL_NIC);
    CHECK(setgroups(0, NULL) == 0 && setgid(65534) == 0 && setuid(65534) == 0, "dropping privileges");
    CHECK(getuid() == 65534 && geteuid() == 65534 && getegid() == 65534, "still privileged");
    printf("dropped\n");
    send_all(&tx, n);
    receive(&rx, n);
    printf("dropped done %u\n", n);
    wait_usr1();
    close_port(&tx);
    close_port(&rx);
    printf("dropped ok %u\n", n);
    return 0;
}

/* One port (a VALE port: sent to whoever is on its switch, received from
 * them) used only after the privileges went. */
static int run_dropsend(const char *name, unsigned n)
{
    struct pollfd out;
    struct port p;

    block_usr1();
    open_port(&p, name, NR_REG_ALL_NIC);
    CHECK(setgroups(0, NULL) == 0 && setgid(65534) == 0 && setuid(65534) == 0, "dropping privileges");
    CHECK(getuid() == 65534 && geteuid() == 65534 && getegid() == 65534, "still privileged");
    printf("dropped\n");
    wait_usr1();
    out = (struct pollfd){ .fd = p.fd, .events = POLLOUT };
    CHECK(poll(&out, 1, 10000) == 1 && out.revents == POLLOUT, "poll POLLOUT %d", out.revents);
    send_all(&p, n);
    receive(&p, n);
    printf("dropsend done %u\n", n);
    wait_usr1();
    close_port(&p);
    printf("dropsend ok %u\n", n);
    return 0;
}

static int run_peer(const char *rxname, const char *txname, unsigned n)
{
    struct port rx, tx;

    block_usr1();
    open_port(&rx, rxname, NR_REG_ALL_NIC);
    open_port(&tx, txname, NR_REG_ALL_NIC);
    receive(&rx, n);
    send_all(&tx, n);
    printf("peer done %u\n", n);
    wait_usr1();
    close_port(&rx);
    close_port(&tx);
    printf("peer ok %u\n", n);
    return 0;
}

static void legacy_open(struct port *p, const char *parent, uint32_t mode)
{
    struct nmreq nr;

    p->fd = open("/dev/netmap", O_RDWR);
    CHECK(p->fd >= 0, "open");
    memset(&nr, 0, sizeof(nr));
    snprintf(nr.nr_name, sizeof(nr.nr_name), "%s", parent);
    nr.nr_version = NETMAP_API;
    nr.nr_flags = mode;
    nr.nr_ringid = 1;                   /* the pipe id */
    CHECK(ioctl(p->fd, NIOCREGIF, &nr) == 0, "NIOCREGIF mode %u", mode);
    memset(&p->reg, 0, sizeof(p->reg));
    p->reg.nr_memsize = nr.nr_memsize;
    p->reg.nr_offset = nr.nr_offset;
    p->mem = mmap(NULL, nr.nr_memsize, PROT_READ | PROT_WRITE, MAP_SHARED, p->fd, 0);
    CHECK(p->mem != MAP_FAILED, "mmap");
    p->nifp = NETMAP_IF(p->mem, nr.nr_offset);
}

static int run_legacy(const char *parent, unsigned n)
{
    struct port m, s;

    legacy_open(&m, parent, NR_REG_PIPE_MASTER);
    legacy_open(&s, parent, NR_REG_PIPE_SLAVE);
    traffic(&m, &s, n);
    close_port(&m);
    close_port(&s);
    printf("legacy ok %u\n", n);
    return 0;
}

static int run_errors(const char *parent)
{
    struct nmreq_register reg;
    struct nmreq_header h;
    struct nmreq_option opt[3];
    char name[64];
    int fd = open("/dev/netmap", O_RDWR);

    CHECK(fd >= 0, "open /dev/netmap");
    snprintf(name, sizeof(name), "%s{7", parent);
    CHECK(ioctl(fd, NIOCTXSYNC, NULL) < 0 && errno == ENXIO, "txsync before register");
    CHECK(mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED && errno == EINVAL, "mmap before register");
    memset(&h, 0, sizeof(h));
    h.nr_version = 13;
    h.nr_reqtype = NETMAP_REQ_REGISTER;
    h.nr_body = (uintptr_t)&reg;
    CHECK(ioctl(fd, NIOCCTRL, &h) < 0 && errno == EINVAL, "version 13");
    h.nr_version = NETMAP_API;
    h.nr_reserved = 1;
    CHECK(ioctl(fd, NIOCCTRL, &h) < 0 && errno == EINVAL, "reserved");
    h.nr_reserved = 0;
    h.nr_body = 0;
    CHECK(ioctl(fd, NIOCCTRL, &h) < 0 && errno == EINVAL, "no body");
    memset(&reg, 0, sizeof(reg));
    memset(opt, 0, sizeof(opt));
    opt[0].nro_reqtype = 99;            /* unknown */
    CHECK(ctrl(fd, name, NETMAP_REQ_REGISTER, &reg, (uintptr_t)&opt[0]) < 0 && errno == EOPNOTSUPP &&
          opt[0].nro_status == EOPNOTSUPP, "unknown option: status %u", opt[0].nro_status);
    opt[0].nro_reqtype = NETMAP_REQ_OPT_OFFSETS;
    opt[0].nro_next = (uintptr_t)&opt[1];
    opt[1].nro_reqtype = NETMAP_REQ_OPT_OFFSETS;
    CHECK(ctrl(fd, name, NETMAP_REQ_REGISTER, &reg, (uintptr_t)&opt[0]) < 0 && errno == EINVAL &&
          opt[1].nro_status == EINVAL, "duplicate option");
    opt[1].nro_reqtype = 98;
    opt[1].nro_next = (uintptr_t)&opt[0];   /* a loop */
    CHECK(ctrl(fd, name, NETMAP_REQ_REGISTER, &reg, (uintptr_t)&opt[0]) < 0 && errno == EMSGSIZE, "loop");
    opt[0].nro_reqtype = 0;
    opt[0].nro_next = 0;
    CHECK(ctrl(fd, name, NETMAP_REQ_REGISTER, &reg, (uintptr_t)&opt[0]) < 0 && errno == EINVAL, "type 0");
    CHECK(ctrl(fd, name, NETMAP_REQ_REGISTER, &reg, (uintptr_t)8) < 0 && errno == EFAULT, "bad pointer");
    reg.nr_mode = NR_REG_SW;
    CHECK(ctrl(fd, name, NETMAP_REQ_REGISTER, &reg, 0) < 0 && errno == EINVAL, "host rings of a pipe");
    reg.nr_mode = NR_REG_PIPE_MASTER;
    CHECK(ctrl(fd, name, NETMAP_REQ_REGISTER, &reg, 0) < 0 && errno == EINVAL, "pipe mode on NIOCCTRL");
    reg.nr_mode = NR_REG_ALL_NIC;
    CHECK(ctrl(fd, "nmc-no-such-if0", NETMAP_REQ_REGISTER, &reg, 0) < 0 && errno == ENXIO, "no such interface");
    CHECK(ctrl(fd, "valexyz", NETMAP_REQ_REGISTER, &reg, 0) < 0 && errno == EINVAL, "vale name without ':'");
    CHECK(ctrl(fd, name, NETMAP_REQ_REGISTER, &reg, 0) == 0, "register");
    CHECK(reg.nr_mode == NR_REG_ALL_NIC && reg.nr_memsize > 0, "reply");
    CHECK(ctrl(fd, name, NETMAP_REQ_REGISTER, &reg, 0) < 0 && errno == EBUSY, "register twice");
    struct nmreq_pools_info pools;
    memset(&pools, 0, sizeof(pools));
    CHECK(ctrl(fd, name, NETMAP_REQ_POOLS_INFO_GET, &pools, 0) == 0, "pools info");
    CHECK(pools.nr_memsize == reg.nr_memsize && pools.nr_mem_id == reg.nr_mem_id &&
          pools.nr_buf_pool_objsize == 2048 && pools.nr_if_pool_offset == 0 &&
          pools.nr_ring_pool_offset >= pools.nr_if_pool_objtotal * (uint64_t)pools.nr_if_pool_objsize &&
          pools.nr_buf_pool_offset + (uint64_t)pools.nr_buf_pool_objtotal * pools.nr_buf_pool_objsize <=
          pools.nr_memsize, "pools: %llu %u %u", (unsigned long long)pools.nr_memsize,
          pools.nr_buf_pool_objtotal, pools.nr_buf_pool_objsize);
    CHECK(ctrl(fd, "", NETMAP_REQ_POOLS_INFO_GET, &pools, 0) < 0 && errno == EINVAL, "pools of no name");
    struct nmreq_port_info_get pinfo;
    memset(&pinfo, 0, sizeof(pinfo));
    CHECK(ctrl(fd, name, NETMAP_REQ_PORT_INFO_GET, &pinfo, 0) == 0 && pinfo.nr_memsize == reg.nr_memsize &&
          pinfo.nr_mem_id == reg.nr_mem_id && pinfo.nr_rx_slots == reg.nr_rx_slots, "port info");
    struct nmreq_port_hdr hdr = { .nr_hdr_len = 99 };
    CHECK(ctrl(fd, name, NETMAP_REQ_PORT_HDR_GET, &hdr, 0) == 0 && hdr.nr_hdr_len == 0, "hdr get");
    hdr.nr_hdr_len = 7;
    CHECK(ctrl(fd, name, NETMAP_REQ_PORT_HDR_SET, &hdr, 0) < 0 && errno == EINVAL, "hdr set 7");
    CHECK(mmap(NULL, reg.nr_memsize + 4096, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED && errno == EINVAL,
          "mmap past nr_memsize");
    CHECK(ioctl(fd, NIOCTXSYNC, NULL) == 0 && ioctl(fd, NIOCRXSYNC, NULL) == 0, "syncs");
    CHECK(close(fd) == 0, "close");
    printf("errors ok\n");
    return 0;
}

int main(int argc, char **argv)
{
    int rc;

    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc == 5 && (strcmp(argv[1], "traffic") == 0 || strcmp(argv[1], "select") == 0 ||
                      strcmp(argv[1], "epoll") == 0)) {
        use_select = argv[1][0] == 's' ? 1 : argv[1][0] == 'e' ? 2 : 0;
        return run_traffic(argv[2], argv[3], (unsigned)atoi(argv[4]));
    }
    if (argc == 4 && strcmp(argv[1], "legacy") == 0)
        return run_legacy(argv[2], (unsigned)atoi(argv[3]));
    if (argc == 5 && strcmp(argv[1], "daemon") == 0) {
        close(0);
        close(1);
        close(2);                       /* from here on, failures only in the exit status */
        struct port m, s;
        open_port(&m, argv[2], NR_REG_ALL_NIC);
        open_port(&s, argv[3], NR_REG_ALL_NIC);
        if (m.fd > 2 && s.fd > 2)
            return 3;                   /* the numbers 0-2 were meant to be reused */
        traffic(&m, &s, (unsigned)atoi(argv[4]));
        close_port(&m);
        close_port(&s);
        return 0;
    }
    if ((rc = fd_mode(argc, argv)) >= 0)
        return rc;
    if (argc == 5 && strcmp(argv[1], "fork") == 0)
        return run_fork(argv[2], argv[3], (unsigned)atoi(argv[4]));
    if (argc == 5 && strcmp(argv[1], "dropped") == 0)
        return run_dropped(argv[2], argv[3], (unsigned)atoi(argv[4]));
    if (argc == 4 && strcmp(argv[1], "dropsend") == 0)
        return run_dropsend(argv[2], (unsigned)atoi(argv[3]));
    if (argc == 5 && strcmp(argv[1], "peer") == 0)
        return run_peer(argv[2], argv[3], (unsigned)atoi(argv[4]));
    if (argc == 4 && strcmp(argv[1], "send") == 0)
        return run_send(argv[2], (unsigned)atoi(argv[3]));
    if (argc == 4 && strcmp(argv[1], "recv") == 0)
        return run_recv(argv[2], (unsigned)atoi(argv[3]));
    if (argc == 3 && strcmp(argv[1], "errors") == 0)
        return run_errors(argv[2]);
    fprintf(stderr, "usage: nm_raw traffic|select|epoll|fork|pass|dropped TX RX N | dropsend PORT N | firstwait poll|select|epoll scm|exec TX RX N | peer RX TX N | send TX N | recv RX N | legacy PARENT N | errors PARENT\n");
    return 2;
}
